// How a record changes the log's state (LogState, include/xa/decision_log.h). This is the one
// place that says so: replay (log_reader.cc), the file log's in-memory state
// (file_decision_log.cc) and the in-memory test double all apply records through ApplyRecord,
// so a new record type is taught to all of them at once (the switch has no default case, and
// -Wswitch makes every reader of the type list fail to compile until it is handled here).

#ifndef XA_RECOVERY_LOG_LOG_STATE_H_
#define XA_RECOVERY_LOG_LOG_STATE_H_

#include <cstdint>
#include <string_view>

#include "xa/decision_log.h"
#include "xa/status.h"

namespace xa::internal {

// What ApplyRecord changed, for callers that keep more per open transaction than LogState
// holds (the file log and replay keep the segment of each open transaction's first record,
// which must not be deleted before the transaction ends).
struct LogStateChange {
  enum class Set : uint8_t {
    kNone,              // the record changes no open set
    kOpenDecisions,     // LogState::open_decisions
    kOpenHeuristics,    // LogState::open_heuristics
    kOpenParticipants,  // LogState::open_participants
    kOpenTcc,           // LogState::open_tcc
  };
  Set set = Set::kNone;
  bool opened = false;  // the record's Xid was not in `set` and now is
  bool closed = false;  // the record's Xid was in `set` and now is not
  friend bool operator==(const LogStateChange&, const LogStateChange&) = default;
};

// Applies `record` to the open sets of *state:
//   kCommitDecision, kPreCommit: open the decision of record.xid, or replace it (a 3PC
//                                decision after its pre-commit; the newest record is kept)
//   kEnd:                        close the TCC transaction of record.xid when open_tcc holds
//                                it, else its decision (a TCC Xid has a format ID of its own,
//                                so it never names a decision); its heuristic stays open
//   kHeuristic:                  open the heuristic of record.xid, or replace it (record.xid may
//                                be a participant's branch Xid: an agent's heuristic)
//   kHeuristicCleared:           close the heuristic of record.xid; its decision stays open
//   kCheckpoint:                 nothing: replay applies a checkpoint's entries one by one, each
//                                as the record it carries
//   kParticipantWait:            open the participant of record.xid (a branch Xid) in WAIT.
//                                Refused when it is already open, in any state: a participant
//                                votes once, so a second Wait is damage (or an agent's bug), and
//                                keeping either Wait silently could carry the wrong participant
//                                list or fence into termination
//   kParticipantPreCommit:       move an open participant from WAIT to PRE; a repeat in PRE
//                                changes nothing (MoveToPre after PreCommit). Refused when the
//                                participant is not open (no Wait) or already decided
//   kParticipantDecision:        decide the participant: its state becomes the decision, with
//                                record.outcome; opens it when it was not open (an orphan branch
//                                the agent aborted, a decision adopted in INIT). The same
//                                outcome again changes nothing, except that one with
//                                coordinator_knows_outcome or branch_finished set upgrades a
//                                decision without it (taking its lsn and timestamp; neither flag
//                                is ever cleared); the
//                                other outcome is refused (a decision never changes)
//   kParticipantDone:            close the participant; its heuristic stays open. Refused
//                                for a participant in WAIT or PRE, and for a commit without
//                                coordinator_knows_outcome (either would lose what the
//                                participant holds)
//   kTccTry:                     open the TCC transaction of record.xid (its global Xid), the
//                                participants to cancel unless it confirms. Refused when it is
//                                already open: the coordinator logs its Try once, and after its
//                                Confirm a Try would take the decision back
//   kTccConfirm:                 the decision: replace the transaction's Try (the newest record
//                                is kept, as for a decision after its pre-commit), or open it
//                                when no Try is open (a checkpoint carries only the Confirm of a
//                                decided transaction); a repeated Confirm replaces the first
// Closing an Xid that is not open changes nothing. A refused record (kCorruption, saying what
// the state was) changes nothing; replay stops there as at any damage, and the file log refuses
// such a record before writing it. last_lsn, damaged and damage_report are left alone: they
// are the reader's position and findings, which move on records that change no open set
// (checkpoints, skipped records), and a lazy end record is applied before it has an LSN.
Result<LogStateChange> ApplyRecord(LogRecord record, LogState* state);

// The name of the participant state a participant record (or an open participant's `type` and
// `outcome`) stands for: "wait", "pre-commit", "decided commit", "decided rollback", "done".
// Used by the refusals above and by xa-log.
std::string_view ParticipantStateName(RecordType type, Outcome outcome) noexcept;

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_LOG_STATE_H_
