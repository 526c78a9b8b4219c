// TccCoordinator: the commit path of TCC transactions (xa/tcc.h), with their background retrier
// (internal).
//
// THE PROTOCOL (N participants enlisted by name with a payload; participant i's branch is
// global.WithBranch(i)):
//
//   1. kTccTry record, durable (Append), naming every participant and its payload. No call
//      before it: the log is the only list of whom to cancel after a crash. A transaction past
//      its timeout at Commit() is cancelled before this step: nothing was called, nothing logged.
//   2. Try on every participant in parallel (the manager's phase threads; the caller runs one).
//   3. Every Try answered done and the timeout has not passed: the kTccConfirm decision, durable.
//      Otherwise (a Try refused or failed, the timeout passed while they ran): cancel.
//   4. Confirm (or Cancel) on every participant in parallel; a call that fails is repeated on the
//      caller's thread (TransactionManagerOptions::inline_retry), then handed to this class's
//      retrier, which repeats it with background_retry's backoff, forever: neither a durable
//      decision nor a cancel is ever abandoned. Every participant is cancelled, not only those
//      whose Try answered: a Try whose answer was lost may have reserved, and one that never ran
//      is an empty cancel (the participant's barrier records it, so the late Try is refused).
//   5. Every participant finished: a refusal for good is first recorded as a heuristic outcome
//      (durably), then the end record (lazily: a lost one only makes recovery call the
//      participants again, which answer idempotently). The transaction stays in the in-flight
//      registry until then, so recovery leaves it alone.
//
// Failures of the log. The kTccTry append fails: no participant was called; cancelled. The
// kTccConfirm append fails: the record may be on disk without its fdatasync having succeeded,
// and the log refuses every later append, so the process must restart. Cancelling now could
// contradict a confirm that recovery finds after the restart; confirming could contradict a
// log without it. So neither is done: the outcome is kUnknown, the transaction stays in flight
// (this process's recovery leaves it alone), and recovery after the restart confirms it if the
// record reached the log and cancels it otherwise, which is one outcome everywhere.
//
// SAGAS (xa/saga.h) run through the same class, records and retrier: the steps logged (kTccTry,
// protocol kSaga), then each action in order (one at a time, repeated per inline_retry while it
// fails); all done: kTccConfirm (the saga completed) and the end record. An action that fails for
// good (refused, still failing, or the timeout passed before it) stops the saga: the steps from
// that one down to the first are compensated in reverse order, each only once the later ones
// are; what cannot be compensated now goes to the retrier, which keeps that order.
//
// Crash points (src/testing/crash_points.h): kTccAfterTryRecord, kTccAfterFirstTry,
// kTccAfterAllTried, kTccAfterConfirmRecord, kTccAfterFirstConfirm, kTccAfterFirstCancel; for
// sagas kTccAfterTryRecord, kSagaAfterFirstAction, kSagaAfterFirstCompensation.
//
// Thread safety: Commit() and Enlist() may run on many threads at once for different
// transactions (a TccContext is used by one thread at a time).

#ifndef XA_SRC_TM_TCC_COORDINATOR_H_
#define XA_SRC_TM_TCC_COORDINATOR_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/retrier.h"
#include "src/completion/tcc_completion.h"
#include "src/tm/services.h"
#include "xa/tcc.h"

namespace xa::internal {

// One TCC transaction as the coordinator sees it.
struct TccContext {
  Protocol protocol = Protocol::kTcc;  // or kSaga
  Xid xid;  // global, format Xid::kTccFormatId (Xid::kSagaFormatId for a saga)
  TransactionState state = TransactionState::kActive;
  Clock::SteadyTime begun_at{};
  Clock::SteadyTime deadline = Clock::kNoDeadline;
  std::vector<TccBranch> branches;
  Status last_status;
  bool handed_off = false;  // the retrier (or an unknown outcome) owns its in-flight entry now
};

class TccCoordinator {
 public:
  // `finishers`: FinishersOf() the manager's TCC participants and saga operations.
  TccCoordinator(const Services* services, TccParticipants finishers);
  ~TccCoordinator();  // Stop()
  TccCoordinator(const TccCoordinator&) = delete;
  TccCoordinator& operator=(const TccCoordinator&) = delete;

  void Start();
  // Stops the retrier after the call in progress; transactions still pending stay open in the
  // log (recovery finishes them) and leave the in-flight registry.
  void Stop();

  Status Enlist(TccContext& txn, std::string_view participant, std::string payload) const;
  Outcome Commit(TccContext& txn);
  // Takes over a transaction that recovery found open and could not finish in its pass: its
  // calls are repeated on the retrier's schedule until every participant is finished.
  void SubmitRecovered(const LogRecord& record);

  // XA_TIMEOUT if transactions are still being retried after `timeout` (Env clock).
  Status WaitIdle(std::chrono::milliseconds timeout);
  size_t pending() const { return retrier_.pending(); }

 private:
  // Step 1 of both: the timeout check and the kTccTry record. An outcome when that ended the
  // transaction (nothing was called), nullopt to go on.
  std::optional<Outcome> LogParticipants(TccContext& txn);
  // The kTccConfirm record (a TCC decision, a saga's completion). False when it failed: the
  // outcome is then unknown until the restart's recovery (see the file comment).
  bool LogDecision(TccContext& txn);
  // The last step of a finished transaction: its heuristic and end record, its last_status.
  Outcome Concluded(TccContext& txn, const TccConclusion& conclusion, Status reason);
  Outcome CommitSaga(TccContext& txn);
  Outcome Cancel(TccContext& txn, Status reason);
  // Compensates saga steps `last` down to 0, each only once the later ones are done; what
  // cannot be finished now goes to the retrier, in the same order.
  Outcome Compensate(TccContext& txn, size_t last, Status reason);
  // One step's action, repeated per inline_retry while it fails.
  TccResult RunAction(const TccContext& txn, const TccBranch& step) const;
  // Step 4 and 5 for `decision`, once it is taken.
  Outcome Finish(TccContext& txn, TccDecision decision, Status reason);
  void FinishInline(const Xid& global, TccDecision decision, TccBranch& branch) const;
  // Records the heuristic of a finished transaction (if any) and its end record. False when the
  // heuristic could not be recorded: the transaction then stays open for recovery.
  bool Close(const Xid& global, const TccConclusion& conclusion) const;
  // `in_reverse_order`: a saga's compensations, each only once the later steps' are done.
  void Submit(Xid global, TccDecision decision, std::vector<TccBranch> branches,
              bool in_reverse_order, std::chrono::microseconds first_delay, const char* origin);

  const Services* services_;
  const TccParticipants participants_;  // the finishers
  Retrier retrier_;  // last: its thread stops before the members it uses go
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_TCC_COORDINATOR_H_
