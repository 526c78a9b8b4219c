// The agent's translation between the wire messages (src/three_phase/agent_messages.h) and the
// participant machine's inputs and outputs (src/three_phase/participant.h): one pair of pure
// functions, so that the field rules below live in one place.
//
// Which participant a message names (the `participant` field):
//   a request (CanCommit, PreCommit, DoCommit, Abort, StateQuery, MoveToPre) names the
//     participant it is addressed to;
//   a reply (Vote, Ack, StateReply) names the participant that answers, the one the request
//     was addressed to.
// So the receiving agent routes a request by (global Xid, participant) and a reply by its
// request id (the agent remembers which of its participants sent each request to a peer).
// The sender of a StateQuery or MoveToPre is its `asker` (kCoordinatorAsker: the coordinator),
// of a DoCommit or Abort its `sender` (kCoordinatorSender: the coordinator; otherwise the peer
// whose termination decided). The sender says whether the coordinator holds the outcome.
//
// Thread safety: pure functions over values.

#ifndef XA_DAEMONS_AGENT_MESSAGE_MAPPING_H_
#define XA_DAEMONS_AGENT_MESSAGE_MAPPING_H_

#include <cstdint>
#include <optional>
#include <variant>

#include "src/three_phase/agent_messages.h"
#include "src/three_phase/participant.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::agent {

// A wire message as the participant machine takes it.
struct MachineInput {
  Xid global;                // the transaction (empty bqual)
  uint32_t participant = 0;  // the wire's `participant` field (see the header comment)
  // StateQuery and MoveToPre: who asks; DoCommit and Abort: who decided (the coordinator for
  // kCoordinatorAsker and kCoordinatorSender).
  std::optional<three_phase::Endpoint> asker;
  std::variant<three_phase::CanCommit, three_phase::PreCommit, three_phase::DoCommit,
               three_phase::Abort, three_phase::StateQuery, three_phase::StateReply,
               three_phase::MoveToPre, three_phase::Ack>
      message;
};

// The machine input in `wire`. XA_PROTO for Vote and Error, which are never a participant's
// input (an agent receives neither from a well-behaved peer). Needs a message that passed
// DecodeAgentMessage (its fields are in range).
Result<MachineInput> FromWire(const three_phase::AgentMessage& wire);

// The wire message for `send`, made by participant `own_number` of `global`, with the machine's
// request id (an agent that sends a request to a peer replaces it with an id of its own).
three_phase::AgentMessage ToWire(const three_phase::Send& send, const Xid& global,
                                 uint32_t own_number);

// The participant number n with global.WithBranch(n) == branch (below
// three_phase::kMaxAgentParticipants), or nullopt: a decision recorded without a Wait names its
// participant by the branch Xid only.
std::optional<uint32_t> ParticipantNumberOf(const Xid& branch);

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_MESSAGE_MAPPING_H_
