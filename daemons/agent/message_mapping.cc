#include "daemons/agent/message_mapping.h"

#include <string>

#include "src/base/overloaded.h"

namespace xa::agent {
namespace ts = three_phase;
namespace {

using internal::Overloaded;

std::optional<ts::Endpoint> AskerEndpoint(uint32_t asker) {
  if (asker == ts::kCoordinatorAsker) return ts::Endpoint::Coordinator();
  return ts::Endpoint::Participant(asker);
}
std::optional<ts::Endpoint> SenderEndpoint(uint32_t sender) {
  if (sender == ts::kCoordinatorSender) return ts::Endpoint::Coordinator();
  return ts::Endpoint::Participant(sender);
}

}  // namespace

Result<MachineInput> FromWire(const ts::AgentMessage& wire) {
  const uint64_t id = wire.request_id;
  return std::visit(
      Overloaded{
          [&](const ts::CanCommitMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, std::nullopt,
                                ts::CanCommit{id, static_cast<uint32_t>(m.participants.size())}};
          },
          [&](const ts::PreCommitMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, std::nullopt, ts::PreCommit{id}};
          },
          [&](const ts::DoCommitMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, SenderEndpoint(m.sender),
                                ts::DoCommit{id, m.branch_done}};
          },
          [&](const ts::AbortMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, SenderEndpoint(m.sender),
                                ts::Abort{id, m.branch_done}};
          },
          [&](const ts::StateQueryMessage& m) -> Result<MachineInput> {
            ts::StateQuery query;
            query.request_id = id;
            query.asker_restarted = m.asker_restarted;
            query.backup_round = m.backup_round;
            query.round = ts::RoundId{m.asker, m.round_incarnation, m.round_counter};
            return MachineInput{m.xid, m.participant, AskerEndpoint(m.asker), query};
          },
          [&](const ts::StateReplyMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, std::nullopt,
                                ts::StateReply{id, m.state, m.restarted,
                                               m.undecided_never_restarted}};
          },
          [&](const ts::MoveToPreMessage& m) -> Result<MachineInput> {
            return MachineInput{
                m.xid, m.participant, AskerEndpoint(m.asker),
                ts::MoveToPre{id, ts::RoundId{m.asker, m.round_incarnation, m.round_counter}}};
          },
          [&](const ts::AckMessage& m) -> Result<MachineInput> {
            return MachineInput{m.xid, m.participant, std::nullopt, ts::Ack{id, m.state}};
          },
          [&](const ts::VoteMessage&) -> Result<MachineInput> {
            return Status(Code::kProto, "a Vote is an answer to the coordinator, never an "
                                        "agent's input");
          },
          [&](const ts::ErrorMessage&) -> Result<MachineInput> {
            return Status(Code::kProto, "an Error is not a participant's input");
          },
      },
      wire.body);
}

ts::AgentMessage ToWire(const ts::Send& send, const Xid& global, uint32_t own_number) {
  // A request names its addressee; a reply (or anything to the coordinator) its sender.
  const uint32_t addressee = send.to.coordinator ? own_number : send.to.number;
  ts::AgentMessage wire;
  std::visit(Overloaded{
                 [&](const ts::Vote& m) {
                   wire.request_id = m.request_id;
                   wire.body = ts::VoteMessage{global, own_number, m.yes, ""};
                 },
                 [&](const ts::Ack& m) {
                   wire.request_id = m.request_id;
                   wire.body = ts::AckMessage{global, own_number, m.state};
                 },
                 [&](const ts::StateReply& m) {
                   wire.request_id = m.request_id;
                   wire.body = ts::StateReplyMessage{global, own_number, m.state, m.restarted,
                                                     m.undecided_never_restarted};
                 },
                 [&](const ts::StateQuery& m) {
                   wire.request_id = m.request_id;
                   ts::StateQueryMessage q;
                   q.xid = global;
                   q.participant = addressee;
                   q.asker = own_number;
                   q.asker_restarted = m.asker_restarted;
                   q.backup_round = m.backup_round;
                   q.round_incarnation = m.round.incarnation;
                   q.round_counter = m.round.counter;
                   wire.body = q;
                 },
                 [&](const ts::MoveToPre& m) {
                   wire.request_id = m.request_id;
                   wire.body = ts::MoveToPreMessage{global, addressee, own_number,
                                                    m.round.incarnation, m.round.counter};
                 },
                 [&](const ts::DoCommit& m) {
                   wire.request_id = m.request_id;
                   // A participant sends a decision only to its peers (termination).
                   wire.body = ts::DoCommitMessage{global, addressee, m.branch_done, own_number};
                 },
                 [&](const ts::Abort& m) {
                   wire.request_id = m.request_id;
                   wire.body = ts::AbortMessage{global, addressee, m.branch_done, own_number};
                 },
             },
             send.message);
  return wire;
}

std::optional<uint32_t> ParticipantNumberOf(const Xid& branch) {
  const Xid global = branch.Global();
  for (uint32_t n = 0; n < ts::kMaxAgentParticipants; ++n) {
    if (global.WithBranch(static_cast<uint16_t>(n)) == branch) return n;
  }
  return std::nullopt;
}

}  // namespace xa::agent
