// The agent message codec: every type survives a round trip at its boundary sizes, and the
// decoder refuses each thing the format forbids with XA_CORRUPTION naming the field (the encoder
// refuses the same messages with XA_INVAL).

#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/three_phase/agent_messages.h"
#include "testutil/status_matchers.h"

namespace xa::three_phase {
namespace {

using ::testing::HasSubstr;
using test::IsOk;
using test::StatusIs;

constexpr int32_t kFormat = 0x58414d33;  // "XAM3"

Xid GlobalXid(std::string gtrid = "g1") { return *Xid::Make(kFormat, gtrid, ""); }

std::vector<Participant> Participants(const Xid& xid, size_t n, size_t rm_name_size = 4) {
  std::vector<Participant> out;
  for (size_t i = 0; i < n; ++i) {
    std::string name = "rm" + std::to_string(i);
    name.resize(rm_name_size, 'n');
    out.push_back(Participant{name, xid.WithBranch(static_cast<uint16_t>(i))});
  }
  return out;
}

AgentMessage Message(uint64_t request_id, auto body) {
  AgentMessage m;
  m.request_id = request_id;
  m.body = std::move(body);
  return m;
}

std::string Encoded(const AgentMessage& m) {
  Result<std::string> bytes = EncodeAgentMessage(m);
  EXPECT_THAT(bytes, IsOk());
  return bytes.ok() ? *bytes : std::string();
}

void ExpectRoundTrip(const AgentMessage& m) {
  std::string bytes = Encoded(m);
  Result<AgentMessage> back = DecodeAgentMessage(bytes);
  ASSERT_THAT(back, IsOk()) << AgentMessageTypeName(TypeOf(m));
  EXPECT_EQ(*back, m) << AgentMessageTypeName(TypeOf(m));
  EXPECT_EQ(TypeOf(*back), TypeOf(m));
  Result<std::string> again = EncodeAgentMessage(*back);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, bytes) << "one encoding a message";
}

// A message of each type with small fields (offsets below rely on gtrid "g1": the participant
// number sits at bytes 18..21).
std::vector<AgentMessage> OneOfEachType() {
  const Xid xid = GlobalXid();
  return {
      Message(1, CanCommitMessage{xid, 1, Participants(xid, 3), 77, false}),
      Message(2, VoteMessage{xid, 1, true, ""}),
      Message(3, PreCommitMessage{xid, 2}),
      Message(4, DoCommitMessage{xid, 0, true, kCoordinatorSender}),
      Message(5, AbortMessage{xid, 0, false, 2}),
      Message(6, StateQueryMessage{xid, 2, 0, false, true, 4, 1}),
      Message(7, StateReplyMessage{xid, 2, ParticipantState::kPre, false, true}),
      Message(8, MoveToPreMessage{xid, 1, 0, 4, 1}),
      Message(9, AckMessage{xid, 1, ParticipantState::kCommit}),
      Message(10, ErrorMessage{Code::kNoTa, "no such transaction"}),
  };
}

constexpr size_t kNumberOffset = 18;

std::string Patched(std::string bytes, size_t offset, uint8_t value) {
  bytes.at(offset) = static_cast<char>(value);
  return bytes;
}
std::string PatchedFixed32(std::string bytes, size_t offset, uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes.at(offset + i) = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// ---- Round trips --------------------------------------------------------------------------

TEST(AgentMessagesTest, EveryTypeRoundTripsWithSmallFields) {
  std::vector<AgentMessage> all = OneOfEachType();
  ASSERT_EQ(all.size(), kFirstUnassignedAgentMessageType - 1u);
  for (uint8_t t = 1; t < kFirstUnassignedAgentMessageType; ++t) {
    EXPECT_EQ(static_cast<uint8_t>(TypeOf(all[t - 1])), t);
    ExpectRoundTrip(all[t - 1]);
  }
}

TEST(AgentMessagesTest, EveryTypeRoundTripsWithLargestValues) {
  const Xid xid = GlobalXid(std::string(Xid::kMaxGtridSize, '\xff'));
  const uint64_t max64 = UINT64_MAX;
  const uint32_t last = kMaxAgentParticipants - 1;
  const std::string text(kMaxAgentTextSize, '\0');
  ExpectRoundTrip(Message(max64, CanCommitMessage{xid, 0, Participants(xid, 1, 255), max64, true}));
  ExpectRoundTrip(Message(max64, VoteMessage{xid, last, false, text}));
  ExpectRoundTrip(Message(max64, PreCommitMessage{xid, last}));
  ExpectRoundTrip(Message(max64, DoCommitMessage{xid, last, true, kCoordinatorSender}));
  ExpectRoundTrip(Message(max64, DoCommitMessage{xid, 0, true, last}));
  ExpectRoundTrip(Message(max64, AbortMessage{xid, last, true, kCoordinatorSender}));
  ExpectRoundTrip(Message(max64, AbortMessage{xid, last, true, 0}));
  ExpectRoundTrip(Message(max64, StateQueryMessage{xid, last, last, true, true, max64, max64}));
  ExpectRoundTrip(Message(max64, StateQueryMessage{xid, last, kCoordinatorAsker, true, false}));
  ExpectRoundTrip(Message(max64, StateReplyMessage{xid, last, ParticipantState::kAbort, true, true}));
  ExpectRoundTrip(Message(max64, MoveToPreMessage{xid, last, last, max64, max64}));
  ExpectRoundTrip(Message(max64, AckMessage{xid, last, ParticipantState::kInit}));
  ExpectRoundTrip(Message(max64, ErrorMessage{Code::kNotSupported, text}));
  ExpectRoundTrip(Message(0, ErrorMessage{Code::kRbTransient, ""}));
  ExpectRoundTrip(Message(0, ErrorMessage{Code::kRmError, ""}));  // a negative code
}

TEST(AgentMessagesTest, XidWithLargestFormatIdAndFullBranchQualifiersRoundTrips) {
  const Xid xid = *Xid::Make(Xid::kMaxFormatId, std::string(64, 'g'), "");
  CanCommitMessage m{xid, 2, {}, 1, false};
  for (int i = 0; i < 3; ++i) {
    m.participants.push_back(
        Participant{"rm" + std::to_string(i),
                    *Xid::Make(Xid::kMaxFormatId, xid.gtrid(), std::string(64, 'a' + i))});
  }
  ExpectRoundTrip(Message(42, m));
}

// The most participants, with names that fill the message to exactly kMaxAgentMessageSize.
CanCommitMessage CanCommitOfExactlyTheLargestSize() {
  const Xid xid = GlobalXid(std::string(64, 'g'));
  CanCommitMessage m{xid, kMaxAgentParticipants - 1, Participants(xid, kMaxAgentParticipants, 1),
                     0, false};
  size_t spare = kMaxAgentMessageSize - Encoded(Message(0, m)).size();
  for (Participant& p : m.participants) {
    size_t grow = std::min(spare, kMaxAgentRmNameSize - p.rm_name.size());
    p.rm_name.append(grow, 'x');
    spare -= grow;
  }
  EXPECT_EQ(spare, 0u);
  return m;
}

TEST(AgentMessagesTest, CanCommitWithTheMostParticipantsAtTheSizeLimitRoundTrips) {
  CanCommitMessage m = CanCommitOfExactlyTheLargestSize();
  ASSERT_EQ(m.participants.size(), kMaxAgentParticipants);
  EXPECT_EQ(Encoded(Message(9, m)).size(), kMaxAgentMessageSize);
  ExpectRoundTrip(Message(9, m));
}

// ---- The encoder refuses what a peer would ----------------------------------------------------

TEST(AgentMessagesTest, EncoderRefusesAMessageOneByteOverTheSizeLimit) {
  CanCommitMessage m = CanCommitOfExactlyTheLargestSize();
  for (Participant& p : m.participants) {
    if (p.rm_name.size() < kMaxAgentRmNameSize) {
      p.rm_name += 'y';
      break;
    }
  }
  EXPECT_THAT(EncodeAgentMessage(Message(9, m)),
              StatusIs(Code::kInval, HasSubstr("65537 bytes, over the limit of 65536")));
}

TEST(AgentMessagesTest, EncoderRefusesBrokenRulesWithTheFieldAndTheLimit) {
  const Xid xid = GlobalXid();
  EXPECT_THAT(EncodeAgentMessage(Message(1, CanCommitMessage{xid, 0, Participants(xid, 257), 0,
                                                            false})),
              StatusIs(Code::kInval, HasSubstr("participants: 257 over the limit of 256")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, VoteMessage{xid, 0, false,
                                                       std::string(kMaxAgentTextSize + 1, 'r')})),
              StatusIs(Code::kInval, HasSubstr("reason: 4097 bytes over the limit of 4096")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, PreCommitMessage{xid.WithBranch(1), 0})),
              StatusIs(Code::kInval, HasSubstr("has a branch qualifier")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, PreCommitMessage{Xid(), 0})),
              StatusIs(Code::kInval, HasSubstr("xid: empty")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, AckMessage{xid, 0, static_cast<ParticipantState>(9)})),
              StatusIs(Code::kInval, HasSubstr("state 9: not a participant state")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, ErrorMessage{Code::kOk, "fine"})),
              StatusIs(Code::kInval, HasSubstr("code 0: not an error code")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, StateQueryMessage{xid, 0, kCoordinatorAsker, false,
                                                             true})),
              StatusIs(Code::kInval, HasSubstr("never runs a backup round")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, StateQueryMessage{xid, 0, kCoordinatorAsker, false,
                                                             false, 0, 1})),
              StatusIs(Code::kInval, HasSubstr("the coordinator runs no termination round")));
}

// A MoveToPre names the round that asked: a participant takes it from the last round that asked
// it only, so a message without a real round (counter 0) or from the coordinator is refused.
TEST(AgentMessagesTest, MoveToPreWithoutARealRoundOrFromTheCoordinatorIsRefused) {
  const Xid xid = GlobalXid();
  EXPECT_THAT(EncodeAgentMessage(Message(1, MoveToPreMessage{xid, 1, 0, 4, 0})),
              StatusIs(Code::kInval, HasSubstr("round counter 0")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, MoveToPreMessage{xid, 1, kCoordinatorAsker, 4, 1})),
              StatusIs(Code::kInval, HasSubstr("asker")));
  std::string bytes = Encoded(Message(8, MoveToPreMessage{xid, 1, 0, 4, 1}));
  // The counter is the last 8 bytes.
  for (size_t i = bytes.size() - 8; i < bytes.size(); ++i) bytes[i] = 0;
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption, HasSubstr("MoveToPre: round counter 0")));
}

// ---- The decoder's refusals, one each -------------------------------------------------------

TEST(AgentMessagesTest, DecoderRefusesAPayloadOverTheSizeLimit) {
  std::string bytes = Encoded(OneOfEachType()[9]);
  bytes.resize(kMaxAgentMessageSize + 1, 'z');
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption, HasSubstr("65537 bytes, over the limit of 65536")));
}

TEST(AgentMessagesTest, DecoderRefusesATruncatedHeader) {
  EXPECT_THAT(DecodeAgentMessage(""),
              StatusIs(Code::kCorruption, HasSubstr("header truncated (10 bytes needed, 0")));
  EXPECT_THAT(DecodeAgentMessage(Encoded(OneOfEachType()[2]).substr(0, 9)),
              StatusIs(Code::kCorruption, HasSubstr("header truncated (10 bytes needed, 9")));
}

TEST(AgentMessagesTest, DecoderRefusesAnUnknownVersion) {
  for (uint8_t version : {0, 3, 255}) {
    EXPECT_THAT(DecodeAgentMessage(Patched(Encoded(OneOfEachType()[2]), 0, version)),
                StatusIs(Code::kCorruption,
                         HasSubstr("version " + std::to_string(version) + " unknown")));
  }
}

TEST(AgentMessagesTest, DecoderRefusesTheVersionWithoutADecisionsSenderSayingToUpgrade) {
  // A version-1 DoCommit as an older peer sends it: no sender after branch done.
  std::string old = Encoded(OneOfEachType()[3]);
  old.resize(old.size() - 4);
  old[0] = static_cast<char>(kAgentMessageVersionWithoutSender);
  EXPECT_THAT(DecodeAgentMessage(old),
              StatusIs(Code::kCorruption,
                       HasSubstr("version 1, the format before DoCommit and Abort named their "
                                 "sender, is no longer spoken (this build speaks version 2): "
                                 "upgrade every agent and coordinator together")));
}

TEST(AgentMessagesTest, DecisionsNameTheCoordinatorOrAPeerAsTheirSender) {
  const Xid xid = GlobalXid();
  // The encoder: a sender out of range, or the addressee itself.
  EXPECT_THAT(EncodeAgentMessage(Message(1, DoCommitMessage{xid, 1, false, 256})),
              StatusIs(Code::kInval, HasSubstr("DoCommit: sender 256: out of range")));
  EXPECT_THAT(EncodeAgentMessage(Message(1, AbortMessage{xid, 1, false, 1})),
              StatusIs(Code::kInval,
                       HasSubstr("Abort: sender 1: the addressed participant itself")));
  // The decoder, the same rules on the wire (the sender is the last four bytes).
  for (const AgentMessage& m : {OneOfEachType()[3], OneOfEachType()[4]}) {
    const std::string bytes = Encoded(m);
    const std::string type(AgentMessageTypeName(TypeOf(m)));
    EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, bytes.size() - 4, 300)),
                StatusIs(Code::kCorruption, HasSubstr(type + ": sender 300: out of range")));
    EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, bytes.size() - 4, 0)),
                StatusIs(Code::kCorruption,
                         HasSubstr(type + ": sender 0: the addressed participant itself")));
    Result<AgentMessage> from_peer = DecodeAgentMessage(PatchedFixed32(bytes, bytes.size() - 4, 7));
    ASSERT_THAT(from_peer, IsOk());
    if (const auto* commit = std::get_if<DoCommitMessage>(&from_peer->body)) {
      EXPECT_EQ(commit->sender, 7u);
    }
    if (const auto* abort = std::get_if<AbortMessage>(&from_peer->body)) {
      EXPECT_EQ(abort->sender, 7u);
    }
  }
  // Unset, a decision is the coordinator's (the coordinator's code paths need not name it).
  EXPECT_EQ(DoCommitMessage{}.sender, kCoordinatorSender);
  EXPECT_EQ(AbortMessage{}.sender, kCoordinatorSender);
}

TEST(AgentMessagesTest, DecoderRefusesAnUnknownType) {
  for (uint8_t type : {0, 11, 128, 255}) {
    EXPECT_THAT(DecodeAgentMessage(Patched(Encoded(OneOfEachType()[2]), 1, type)),
                StatusIs(Code::kCorruption,
                         HasSubstr("type " + std::to_string(type) + " unknown (types are 1..10)")));
  }
}

TEST(AgentMessagesTest, DecoderRefusesEveryTruncationOfEveryType) {
  for (const AgentMessage& m : OneOfEachType()) {
    std::string bytes = Encoded(m);
    for (size_t n = kAgentMessageHeaderSize; n < bytes.size(); ++n) {
      EXPECT_THAT(DecodeAgentMessage(std::string_view(bytes).substr(0, n)),
                  StatusIs(Code::kCorruption, HasSubstr("truncated")))
          << AgentMessageTypeName(TypeOf(m)) << " cut to " << n << " of " << bytes.size();
    }
  }
}

TEST(AgentMessagesTest, DecoderNamesTheTruncatedField) {
  std::string bytes = Encoded(OneOfEachType()[1]);  // Vote, reason "" ends it
  EXPECT_THAT(DecodeAgentMessage(std::string_view(bytes).substr(0, bytes.size() - 2)),
              StatusIs(Code::kCorruption,
                       HasSubstr("Vote: reason length truncated (4 bytes needed, 2 left)")));
}

TEST(AgentMessagesTest, DecoderRefusesTrailingBytes) {
  for (const AgentMessage& m : OneOfEachType()) {
    EXPECT_THAT(DecodeAgentMessage(Encoded(m) + '\0'),
                StatusIs(Code::kCorruption, HasSubstr("1 bytes after the last field")))
        << AgentMessageTypeName(TypeOf(m));
  }
}

TEST(AgentMessagesTest, DecoderRefusesMoreParticipantsThanTheLimit) {
  // CanCommit: header 10, xid 8 (gtrid "g1"), number 4, then the count.
  std::string bytes = PatchedFixed32(Encoded(OneOfEachType()[0]), 22, kMaxAgentParticipants + 1);
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption,
                       HasSubstr("CanCommit: participant count 257 over the limit of 256")));
  // A count near 2^32 is refused before anything is allocated for it.
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, 22, UINT32_MAX)),
              StatusIs(Code::kCorruption, HasSubstr("over the limit of 256")));
}

TEST(AgentMessagesTest, DecoderRefusesAnEmptyRmName) {
  const Xid xid = GlobalXid();
  std::vector<Participant> list = Participants(xid, 1);
  list[0].rm_name = "r";
  std::string bytes = Encoded(Message(1, CanCommitMessage{xid, 0, list, 0, false}));
  // The name's length byte follows the count (offset 26); cut the name out.
  ASSERT_EQ(bytes[26], 1);
  bytes[26] = 0;
  bytes.erase(27, 1);
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption,
                       HasSubstr("participant 0: rm name of 0 bytes (1..255 allowed)")));
}

TEST(AgentMessagesTest, DecoderRefusesTextOverTheLimit) {
  const Xid xid = GlobalXid();
  std::string bytes = Encoded(Message(1, VoteMessage{xid, 0, false, ""}));
  bytes = PatchedFixed32(bytes, bytes.size() - 4, kMaxAgentTextSize + 1);
  bytes.append(kMaxAgentTextSize + 1, 'r');
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption,
                       HasSubstr("Vote: reason: length 4097 over the limit of 4096")));
  std::string error = Encoded(Message(1, ErrorMessage{Code::kRmFail, ""}));
  error = PatchedFixed32(error, 14, UINT32_MAX);
  EXPECT_THAT(DecodeAgentMessage(error),
              StatusIs(Code::kCorruption, HasSubstr("Error: message: length 4294967295 over")));
}

TEST(AgentMessagesTest, DecoderRefusesABoolOtherThanZeroOrOne) {
  // DoCommit: branch done is the byte before the sender (four bytes).
  std::string bytes = Encoded(OneOfEachType()[3]);
  EXPECT_THAT(DecodeAgentMessage(Patched(bytes, bytes.size() - 5, 2)),
              StatusIs(Code::kCorruption,
                       HasSubstr("DoCommit: branch done: 2 is not a bool (0 or 1)")));
}

TEST(AgentMessagesTest, DecoderRefusesAStateOutsideTheEnum) {
  std::string bytes = Encoded(OneOfEachType()[8]);  // Ack: the state is the last byte
  for (uint8_t state : {0, 6, 255}) {
    EXPECT_THAT(DecodeAgentMessage(Patched(bytes, bytes.size() - 1, state)),
                StatusIs(Code::kCorruption,
                         HasSubstr("Ack: state: " + std::to_string(state) +
                                   " is not a participant state (1..5)")));
  }
}

TEST(AgentMessagesTest, DecoderRefusesAnErrorCodeXaDoesNotDefineOrOk) {
  std::string bytes = Encoded(OneOfEachType()[9]);  // Error: the code follows the header
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, 10, 12345)),
              StatusIs(Code::kCorruption,
                       HasSubstr("Error: code 12345: not an error code that xa defines")));
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, 10, 0)),
              StatusIs(Code::kCorruption, HasSubstr("Error: code 0: not an error code")));
}

TEST(AgentMessagesTest, DecoderRefusesAParticipantNumberOutOfRangeOfTheList) {
  std::string bytes = Encoded(OneOfEachType()[0]);  // CanCommit with 3 participants
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, kNumberOffset, 3)),
              StatusIs(Code::kCorruption,
                       HasSubstr("CanCommit: participant number 3: out of range of the "
                                 "participant list (3 participants)")));
}

TEST(AgentMessagesTest, DecoderRefusesAParticipantNumberOverTheLimit) {
  for (const AgentMessage& m : OneOfEachType()) {
    if (TypeOf(m) == AgentMessageType::kCanCommit || TypeOf(m) == AgentMessageType::kError) {
      continue;
    }
    EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(Encoded(m), kNumberOffset, 256)),
                StatusIs(Code::kCorruption,
                         HasSubstr("participant number 256: out of range (participant numbers "
                                   "are below 256)")))
        << AgentMessageTypeName(TypeOf(m));
  }
}

TEST(AgentMessagesTest, DecoderRefusesAnAskerOutOfRangeAndACoordinatorsBackupRound) {
  const Xid xid = GlobalXid();
  std::string bytes = Encoded(Message(6, StateQueryMessage{xid, 1, 0, false, true, 4, 1}));
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, kNumberOffset + 4, 300)),
              StatusIs(Code::kCorruption, HasSubstr("StateQuery: asker 300: out of range")));
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, kNumberOffset + 4, kCoordinatorAsker)),
              StatusIs(Code::kCorruption,
                       HasSubstr("StateQuery: asker: the coordinator never runs a backup round")));
}

TEST(AgentMessagesTest, DecoderRefusesAnXidThatXidMakeRefuses) {
  std::string bytes = Encoded(OneOfEachType()[2]);  // PreCommit
  EXPECT_THAT(DecodeAgentMessage(PatchedFixed32(bytes, 10, 0x80000000u)),
              StatusIs(Code::kCorruption, HasSubstr("PreCommit: xid: xid format ID 2147483648 is out of range")));
  // A gtrid length of 0: the bytes after it no longer line up, but the Xid is refused first.
  std::string empty_gtrid = Patched(bytes, 14, 0);
  empty_gtrid.erase(15, 2);
  EXPECT_THAT(DecodeAgentMessage(empty_gtrid),
              StatusIs(Code::kCorruption, HasSubstr("PreCommit: xid: xid gtrid is 0 bytes")));
  std::string long_bqual = Patched(bytes, 17, 65);
  long_bqual.insert(18, 65, 'b');
  EXPECT_THAT(DecodeAgentMessage(long_bqual),
              StatusIs(Code::kCorruption, HasSubstr("PreCommit: xid: xid bqual is 65 bytes")));
}

TEST(AgentMessagesTest, DecoderRefusesAMessageXidWithABranchQualifier) {
  std::string bytes = Encoded(OneOfEachType()[2]);
  bytes[17] = 1;  // bqual length
  bytes.insert(18, 1, 'b');
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption, HasSubstr("PreCommit: xid " + std::to_string(kFormat))));
  EXPECT_THAT(DecodeAgentMessage(bytes), StatusIs(Code::kCorruption,
                                                  HasSubstr("has a branch qualifier of 1 bytes")));
}

TEST(AgentMessagesTest, DecoderRefusesABranchOfAnotherTransaction) {
  const Xid xid = GlobalXid("g1");
  std::vector<Participant> list = Participants(xid, 2);
  list[1].branch = GlobalXid("g2").WithBranch(1);
  // Built through the decoder's door: encode a valid list, then change one gtrid byte.
  std::vector<Participant> valid = Participants(xid, 2);
  std::string bytes = Encoded(Message(1, CanCommitMessage{xid, 0, valid, 0, false}));
  std::string encoded_g1_branch1 = std::string("\x02g1", 3);
  size_t at = bytes.rfind(encoded_g1_branch1);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 2] = '2';
  EXPECT_THAT(DecodeAgentMessage(bytes),
              StatusIs(Code::kCorruption,
                       HasSubstr("CanCommit: participant 1: branch Xid " +
                                 list[1].branch.ToString() + " is not a branch of " +
                                 xid.ToString())));
}

}  // namespace
}  // namespace xa::three_phase
