// The wire <-> machine mapping of the agent (daemons/agent/message_mapping.h): every message a
// participant takes as input, every message it sends, and the participant-number rules.

#include "daemons/agent/message_mapping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::agent {
namespace {

namespace ts = three_phase;
using test::IsOk;
using test::StatusIs;

Xid Global() { return Xid::Make(Xid::kThreePhaseFormatId, "mapping-gtrid", "").value(); }

ts::AgentMessage Wire(uint64_t id, decltype(ts::AgentMessage::body) body) {
  ts::AgentMessage m;
  m.request_id = id;
  m.body = std::move(body);
  return m;
}

TEST(MessageMappingTest, CanCommitCarriesTheParticipantCountAndAddressee) {
  ts::CanCommitMessage m;
  m.xid = Global();
  m.participant = 1;
  m.participants = {{"a", Global().WithBranch(0)}, {"b", Global().WithBranch(1)},
                    {"c", Global().WithBranch(2)}};
  m.fence_session_id = 42;
  Result<MachineInput> in = FromWire(Wire(7, m));
  ASSERT_THAT(in, IsOk());
  EXPECT_EQ(in->global, Global());
  EXPECT_EQ(in->participant, 1u);
  EXPECT_FALSE(in->asker.has_value());
  const auto* can = std::get_if<ts::CanCommit>(&in->message);
  ASSERT_NE(can, nullptr);
  EXPECT_EQ(can->request_id, 7u);
  EXPECT_EQ(can->participant_count, 3u);
}

TEST(MessageMappingTest, RequestsFromTheCoordinatorMapFieldForField) {
  Result<MachineInput> pre = FromWire(Wire(1, ts::PreCommitMessage{Global(), 2}));
  ASSERT_THAT(pre, IsOk());
  ASSERT_TRUE(std::holds_alternative<ts::PreCommit>(pre->message));
  EXPECT_EQ(std::get<ts::PreCommit>(pre->message).request_id, 1u);
  Result<MachineInput> commit = FromWire(Wire(2, ts::DoCommitMessage{Global(), 2, true}));
  ASSERT_THAT(commit, IsOk());
  EXPECT_EQ(std::get<ts::DoCommit>(commit->message).branch_done, true);
  EXPECT_EQ(std::get<ts::DoCommit>(commit->message).request_id, 2u);
  Result<MachineInput> abort = FromWire(Wire(3, ts::AbortMessage{Global(), 0, false}));
  ASSERT_THAT(abort, IsOk());
  EXPECT_EQ(std::get<ts::Abort>(abort->message).branch_done, false);
  EXPECT_EQ(abort->participant, 0u);

  ts::StateQueryMessage query;
  query.xid = Global();
  query.participant = 1;
  query.asker = ts::kCoordinatorAsker;
  Result<MachineInput> asked = FromWire(Wire(4, query));
  ASSERT_THAT(asked, IsOk());
  EXPECT_EQ(asked->asker, ts::Endpoint::Coordinator());
  EXPECT_FALSE(std::get<ts::StateQuery>(asked->message).backup_round);
}

// What one agent's participant sends, another agent's participant receives unchanged: ToWire
// then FromWire is the identity on every message a machine sends to a peer.
TEST(MessageMappingTest, PeerMessagesSurviveTheWireUnchanged) {
  const uint32_t sender = 0, receiver = 2;
  ts::StateQuery query{11, true, true, ts::RoundId{sender, 5, 3}};
  ts::MoveToPre move{12, ts::RoundId{sender, 5, 3}};
  ts::DoCommit commit{13, false};
  ts::Abort abort{14, false};
  for (const ts::OutMessage& out :
       std::vector<ts::OutMessage>{query, move, commit, abort}) {
    ts::AgentMessage wire =
        ToWire(ts::Send{ts::Endpoint::Participant(receiver), out}, Global(), sender);
    ASSERT_THAT(ts::ValidateAgentMessage(wire), IsOk()) << ts::ToString(out);
    // Through the bytes, as a peer reads them.
    Result<std::string> bytes = ts::EncodeAgentMessage(wire);
    ASSERT_THAT(bytes, IsOk());
    Result<ts::AgentMessage> decoded = ts::DecodeAgentMessage(*bytes);
    ASSERT_THAT(decoded, IsOk());
    Result<MachineInput> in = FromWire(*decoded);
    ASSERT_THAT(in, IsOk());
    EXPECT_EQ(in->global, Global());
    EXPECT_EQ(in->participant, receiver) << "a request names its addressee";
    std::visit(
        [&](const auto& got) {
          using T = std::decay_t<decltype(got)>;
          if constexpr (std::is_same_v<T, ts::StateQuery>) {
            EXPECT_EQ(got.request_id, query.request_id);
            EXPECT_EQ(got.asker_restarted, query.asker_restarted);
            EXPECT_EQ(got.backup_round, query.backup_round);
            EXPECT_EQ(got.round, query.round);
            EXPECT_EQ(in->asker, ts::Endpoint::Participant(sender));
          } else if constexpr (std::is_same_v<T, ts::MoveToPre>) {
            EXPECT_EQ(got.request_id, move.request_id);
            EXPECT_EQ(got.round, move.round);
            EXPECT_EQ(in->asker, ts::Endpoint::Participant(sender));
          } else if constexpr (std::is_same_v<T, ts::DoCommit>) {
            EXPECT_EQ(got.request_id, commit.request_id);
            EXPECT_EQ(got.branch_done, commit.branch_done);
          } else if constexpr (std::is_same_v<T, ts::Abort>) {
            EXPECT_EQ(got.request_id, abort.request_id);
          } else {
            ADD_FAILURE() << "unexpected input for " << ts::ToString(out);
          }
        },
        in->message);
  }
}

TEST(MessageMappingTest, RepliesNameTheParticipantThatAnswers) {
  const uint32_t own = 1;
  ts::AgentMessage vote =
      ToWire(ts::Send{ts::Endpoint::Coordinator(), ts::Vote{21, true}}, Global(), own);
  EXPECT_EQ(vote.request_id, 21u);
  EXPECT_EQ(vote.body, (decltype(vote.body){ts::VoteMessage{Global(), own, true, ""}}));

  ts::AgentMessage ack = ToWire(
      ts::Send{ts::Endpoint::Participant(0), ts::Ack{22, ts::ParticipantState::kPre}}, Global(),
      own);
  EXPECT_EQ(ack.body,
            (decltype(ack.body){ts::AckMessage{Global(), own, ts::ParticipantState::kPre}}));
  Result<MachineInput> ack_in = FromWire(ack);
  ASSERT_THAT(ack_in, IsOk());
  EXPECT_EQ(ack_in->participant, own);
  EXPECT_EQ(std::get<ts::Ack>(ack_in->message).state, ts::ParticipantState::kPre);

  ts::AgentMessage reply =
      ToWire(ts::Send{ts::Endpoint::Participant(2),
                      ts::StateReply{23, ts::ParticipantState::kWait, true, false}},
             Global(), own);
  Result<MachineInput> reply_in = FromWire(reply);
  ASSERT_THAT(reply_in, IsOk());
  EXPECT_EQ(reply_in->participant, own);
  const ts::StateReply& got = std::get<ts::StateReply>(reply_in->message);
  EXPECT_EQ(got.request_id, 23u);
  EXPECT_EQ(got.state, ts::ParticipantState::kWait);
  EXPECT_TRUE(got.restarted);
  EXPECT_FALSE(got.undecided_never_restarted);
}

TEST(MessageMappingTest, VoteAndErrorAreNeverAParticipantsInput) {
  EXPECT_THAT(FromWire(Wire(1, ts::VoteMessage{Global(), 0, true, ""})),
              StatusIs(Code::kProto));
  EXPECT_THAT(FromWire(Wire(1, ts::ErrorMessage{Code::kInval, "no"})), StatusIs(Code::kProto));
}

TEST(MessageMappingTest, ParticipantNumberIsFoundFromTheBranchXid) {
  for (uint32_t n : {0u, 1u, 7u, 255u}) {
    EXPECT_EQ(ParticipantNumberOf(Global().WithBranch(static_cast<uint16_t>(n))), n);
  }
  EXPECT_EQ(ParticipantNumberOf(Global().WithBranch(256)), std::nullopt);
  EXPECT_EQ(ParticipantNumberOf(Xid::Make(Xid::kThreePhaseFormatId, "mapping-gtrid", "zz").value()),
            std::nullopt);
}

}  // namespace
}  // namespace xa::agent
