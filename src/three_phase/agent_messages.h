// The messages of three-phase commit between the coordinator and the participant agents, and
// among agents (docs/three-phase-commit.md, "Wire protocol"), and their binary encoding: one
// message is the payload of one frame (src/net/frame.h). The format is also written as a grammar
// in agent_messages.md beside this file; tests/three_phase/agent_messages_doc_test.cc checks that
// the two agree, so edit both together.
//
// A message (all integers little-endian):
//
//   +---------+------+------------+------------------------+
//   | version | type | request id | the type's fields      |
//   | u8      | u8   | fixed64    | (below)                |
//   +---------+------+------------+------------------------+
//
//   CanCommit   xid, number, participants, fixed64 fence session id, bool read-only
//   Vote        xid, number, bool yes, text reason
//   PreCommit   xid, number
//   DoCommit    xid, number, bool branch done, fixed32 sender
//   Abort       xid, number, bool branch done, fixed32 sender
//   sender      who decided what the message says: kCoordinatorSender (the coordinator, which
//               then holds the outcome in its log), or the participant number of the peer
//               whose termination decided it (never the addressed number)
//   StateQuery  xid, number asked, fixed32 asker's number, bool asker restarted,
//               bool backup round, round
//   round       fixed64 the asker's incarnation, fixed64 the asker's round counter: which
//               termination round asks (both 0 from the coordinator, which runs none)
//   StateReply  xid, number, u8 state, bool restarted, bool undecided and never restarted
//   MoveToPre   xid, number, fixed32 asker's number, round
//   Ack         xid, number, u8 state after the message
//   Error       fixed32 code (an xa::Code, as i32), text message
//
//   xid           fixed32 format id (< 2^31), u8 g, g bytes gtrid (1..64), u8 b, b bytes bqual
//                 (0..64): the global transaction's Xid, with an empty bqual
//   number        fixed32 participant number: < kMaxAgentParticipants, and in CanCommit an index
//                 into its participant list
//   participants  fixed32 n (<= kMaxAgentParticipants), then n times: u8 length and the resource
//                 manager name (1..kMaxAgentRmNameSize bytes), xid of the branch (same format id
//                 and gtrid as the message's xid)
//   bool          u8 0 or 1
//   state         u8 ParticipantState (participant_state.h), 1..5
//   text          fixed32 n (<= kMaxAgentTextSize), n bytes
//
// A whole message is at most kMaxAgentMessageSize bytes. Every integer has one encoding, so a
// message that decodes re-encodes to the same bytes.
//
// Versions: 1 had no sender in DoCommit and Abort (the receiver guessed it from the connection);
// 2 (this one) has it. A version 1 message is refused with a message that says so: every agent
// and coordinator of a deployment must speak the same version.
//
// The decoder refuses, with Code::kCorruption and a message naming the field and the limit: an
// unknown version or type, a field cut short, a bound exceeded, a value outside its enum (a bool
// other than 0 or 1, a state outside 1..5, a code that xa does not define), a participant number
// out of range, an invalid Xid, and bytes after the last field. The encoder refuses the same
// messages (Code::kInval), so a sender learns at once what its peer would refuse.
//
// Thread safety: pure functions over values.

#ifndef XA_SRC_THREE_PHASE_AGENT_MESSAGES_H_
#define XA_SRC_THREE_PHASE_AGENT_MESSAGES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "src/three_phase/participant_state.h"
#include "xa/decision_log.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::three_phase {

inline constexpr uint8_t kAgentMessageVersion = 2;
// The version before DoCommit and Abort named their sender (refused with a message saying so).
inline constexpr uint8_t kAgentMessageVersionWithoutSender = 1;
// version, type, request id.
inline constexpr size_t kAgentMessageHeaderSize = 10;
inline constexpr size_t kMaxAgentParticipants = 256;
inline constexpr size_t kMaxAgentRmNameSize = 255;
// A Vote's reason, an Error's message.
inline constexpr size_t kMaxAgentTextSize = 4096;
inline constexpr size_t kMaxAgentMessageSize = 64 * 1024;
// The asker's number in a StateQuery from the coordinator (which is no participant).
inline constexpr uint32_t kCoordinatorAsker = 0xffffffff;
// The sender of a DoCommit or Abort from the coordinator (which is no participant).
inline constexpr uint32_t kCoordinatorSender = 0xffffffff;

// The type byte. Fixed numbers: never renumber or reuse.
enum class AgentMessageType : uint8_t {
  kCanCommit = 1,
  kVote = 2,
  kPreCommit = 3,
  kDoCommit = 4,
  kAbort = 5,
  kStateQuery = 6,
  kStateReply = 7,
  kMoveToPre = 8,
  kAck = 9,
  kError = 10,
};
inline constexpr uint8_t kFirstUnassignedAgentMessageType = 11;

// "CanCommit", "Vote", ... (the design's names); "unknown" for anything else.
std::string_view AgentMessageTypeName(AgentMessageType type) noexcept;

// Coordinator → agent: vote on this branch (ended and prepared by the coordinator).
struct CanCommitMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kCanCommit;
  Xid xid;                   // the global transaction (empty bqual)
  uint32_t participant = 0;  // this branch's number: its index in `participants`
  std::vector<Participant> participants;  // every branch of the transaction, by number
  uint64_t fence_session_id = 0;  // the application's MariaDB connection id; 0 for PostgreSQL
  bool read_only = false;
  friend bool operator==(const CanCommitMessage&, const CanCommitMessage&) = default;
};

// Agent → coordinator.
struct VoteMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kVote;
  Xid xid;
  uint32_t participant = 0;
  bool yes = false;
  std::string reason;  // why no (for people); may be empty
  friend bool operator==(const VoteMessage&, const VoteMessage&) = default;
};

// Coordinator → agent.
struct PreCommitMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kPreCommit;
  Xid xid;
  uint32_t participant = 0;
  friend bool operator==(const PreCommitMessage&, const PreCommitMessage&) = default;
};

// Coordinator or backup → agent.
struct DoCommitMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kDoCommit;
  Xid xid;
  uint32_t participant = 0;
  bool branch_done = false;  // the sender already committed the branch in its database
  // kCoordinatorSender, or the number of the peer participant whose termination decided: the
  // agent forgets a COMMIT only once the coordinator itself sent it.
  uint32_t sender = kCoordinatorSender;
  friend bool operator==(const DoCommitMessage&, const DoCommitMessage&) = default;
};

// Coordinator or backup → agent.
struct AbortMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kAbort;
  Xid xid;
  uint32_t participant = 0;
  bool branch_done = false;  // the sender already rolled the branch back in its database
  uint32_t sender = kCoordinatorSender;  // as in DoCommitMessage
  friend bool operator==(const AbortMessage&, const AbortMessage&) = default;
};

// Agent or coordinator → agent: what is your state? (The asked participant sets *asked*.)
struct StateQueryMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kStateQuery;
  Xid xid;
  uint32_t participant = 0;  // the participant asked
  uint32_t asker = 0;        // the asker's participant number, or kCoordinatorAsker
  bool asker_restarted = false;
  bool backup_round = false;  // asked by the backup's termination round (never the coordinator)
  // The asking round: the asker's incarnation and its round counter. A participant remembers
  // the last round that asked it and takes a MoveToPre from that round only, so a late
  // MoveToPre of a crashed earlier backup never promotes it (docs/three-phase-commit.md, rule b).
  uint64_t round_incarnation = 0;
  uint64_t round_counter = 0;
  friend bool operator==(const StateQueryMessage&, const StateQueryMessage&) = default;
};

// Agent → asker.
struct StateReplyMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kStateReply;
  Xid xid;
  uint32_t participant = 0;
  ParticipantState state = ParticipantState::kInit;
  bool restarted = false;
  bool undecided_never_restarted = false;
  friend bool operator==(const StateReplyMessage&, const StateReplyMessage&) = default;
};

// Backup → agent: record PRE before the backup commits, if this round is the last that asked.
struct MoveToPreMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kMoveToPre;
  Xid xid;
  uint32_t participant = 0;
  uint32_t asker = 0;  // the backup's participant number (never the coordinator)
  uint64_t round_incarnation = 0;
  uint64_t round_counter = 0;  // from 1
  friend bool operator==(const MoveToPreMessage&, const MoveToPreMessage&) = default;
};

// Agent → sender of PreCommit, MoveToPre, DoCommit or Abort.
struct AckMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kAck;
  Xid xid;
  uint32_t participant = 0;
  ParticipantState state = ParticipantState::kInit;  // the state after handling the message
  friend bool operator==(const AckMessage&, const AckMessage&) = default;
};

// Either way: the request could not be handled.
struct ErrorMessage {
  static constexpr AgentMessageType kType = AgentMessageType::kError;
  Code code = Code::kInternal;  // any code xa defines except XA_OK
  std::string message;
  friend bool operator==(const ErrorMessage&, const ErrorMessage&) = default;
};

struct AgentMessage {
  // Chosen by the sender of a request and copied into its reply, so that replies can be matched
  // to requests on a connection that carries several at once.
  uint64_t request_id = 0;
  std::variant<CanCommitMessage, VoteMessage, PreCommitMessage, DoCommitMessage, AbortMessage,
               StateQueryMessage, StateReplyMessage, MoveToPreMessage, AckMessage, ErrorMessage>
      body;
  friend bool operator==(const AgentMessage&, const AgentMessage&) = default;
};

AgentMessageType TypeOf(const AgentMessage& message) noexcept;

// OK when `message` can be sent: every bound, enum and Xid rule of the format above except the
// total size (which needs the encoding). XA_INVAL naming the field and the limit otherwise.
Status ValidateAgentMessage(const AgentMessage& message);

// The payload of one frame. XA_INVAL when ValidateAgentMessage refuses the message or the
// encoding would exceed kMaxAgentMessageSize.
Result<std::string> EncodeAgentMessage(const AgentMessage& message);

// The message in one frame's payload; XA_CORRUPTION (naming the field and the limit) for
// anything the format above does not allow.
Result<AgentMessage> DecodeAgentMessage(std::string_view payload);

}  // namespace xa::three_phase

#endif  // XA_SRC_THREE_PHASE_AGENT_MESSAGES_H_
