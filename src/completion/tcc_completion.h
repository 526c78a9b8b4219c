// Finishing a TCC transaction: one Confirm or Cancel attempt on a participant, what its answer
// means, the records, and the conclusion; the same for every finisher of TCC (the coordinator,
// its background retrier, the TCC recovery module) (internal).
//
// A participant (xa/tcc.h) answers done, refused or failed. For Confirm and Cancel:
//   done     the branch is finished;
//   failed   it may heal: the branch stays pending and is tried again (the coordinator inline,
//            then its retrier; recovery at its next pass);
//   refused  it never will: the branch is finished *heuristically*. The transaction is recorded
//            as a heuristic outcome (TccHeuristicOutcome) for an operator, and then ended like
//            any other: nobody calls the participant again, the open heuristic keeps it in front
//            of the operator (xa-recover, metrics) until it is cleared.
// A call that throws counts as failed (a participant's bug must not lose a decision).
//
// Order of the finishing steps, which the promises rest on: every branch finished (none
// pending); (1) when some branch refused, its kHeuristic record, durably; (2) the end record.
// A crash between them repeats the calls, which the participants answer idempotently.

#ifndef XA_SRC_COMPLETION_TCC_COMPLETION_H_
#define XA_SRC_COMPLETION_TCC_COMPLETION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xa/decision_log.h"
#include "xa/saga.h"
#include "xa/status.h"
#include "xa/tcc.h"
#include "xa/xid.h"

namespace xa::internal {

// What the transaction does to its participants: confirm (the decision is logged) or cancel.
enum class TccDecision : uint8_t { kConfirm, kCancel };
std::string_view TccDecisionName(TccDecision decision) noexcept;  // "confirm", "cancel"

enum class TccBranchEnd : uint8_t {
  kPending,   // not finished yet (not tried, or its last call failed)
  kFinished,  // the participant answered done
  kRefused,   // the participant refused the call for good: a heuristic outcome
};

// One participant of a TCC transaction, as every finisher tracks it.
struct TccBranch {
  std::string participant;  // the registered name
  Xid branch;               // global.WithBranch(i)
  std::string payload;
  TccBranchEnd end = TccBranchEnd::kPending;
  Status last;  // why the last call did not finish it (failed or refused); OK otherwise
};

using TccParticipants = std::map<std::string, std::shared_ptr<TccParticipant>>;

// Every finisher's view of the registered services, by name: the TCC participants as they are,
// and each compensable operation of a saga as a participant whose Cancel is its Compensate
// (a saga is cancelled by compensating; its Try and Confirm are never called through this
// view). XA_CONFIG when a name is registered in both, or empty, or null.
Result<TccParticipants> FinishersOf(const TccOptions& tcc, const SagaOptions& saga);

// Calls `operation` (Try, Confirm or Cancel: a member of TccParticipant) on `participant` for
// `branch`, turning a thrown exception into kFailed.
TccResult CallParticipant(TccParticipant& participant, TccResult (TccParticipant::*operation)(const TccCall&),
                          const Xid& global, const TccBranch& branch);

// One Confirm or Cancel attempt on `branch` (which must be pending) through the registered
// participant (a name with no participant: failed, saying so), read by the rules above.
void AttemptFinish(const TccParticipants& participants, const Xid& global, TccDecision decision,
                   TccBranch& branch);

// The kTccTry or kTccConfirm record of a transaction (`protocol` kTcc or kSaga), and the
// branches a record names.
LogRecord TccRecord(RecordType type, Protocol protocol, const Xid& global,
                    const std::vector<TccBranch>& branches);
std::vector<TccBranch> TccBranchesOf(const LogRecord& record);

struct TccConclusion {
  bool finished = false;        // no branch pending
  size_t pending = 0;
  Outcome outcome = Outcome::kUnknown;  // when finished: kCommitted, kRolledBack or heuristic
  bool record_heuristic = false;        // some branch refused: append HeuristicRecord first
  LogRecord heuristic;                  // the kHeuristic record, when record_heuristic
};
// Concludes `branches` after the calls of `decision`.
TccConclusion ConcludeTcc(const Xid& global, TccDecision decision,
                          const std::vector<TccBranch>& branches);

}  // namespace xa::internal

#endif  // XA_SRC_COMPLETION_TCC_COMPLETION_H_
