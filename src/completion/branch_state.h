// BranchState: one branch as every finisher tracks it through its finishing calls and the
// conclude step (internal).
//
// The coordinator (src/tm/txn_context.h: BranchContext adds the application's session and the
// phase-1 facts), the background completer (it retries copies of the coordinator's states, or
// states made from a logged decision) and the recovery engine (RecoveryPlan::states, beside the
// public BranchReport that operators read) all hold their branches as this type, read every
// finishing call's result through Apply() (the phase-2 rules of branch_outcome.h), and conclude
// over it (conclude.h).

#ifndef XA_SRC_COMPLETION_BRANCH_STATE_H_
#define XA_SRC_COMPLETION_BRANCH_STATE_H_

#include <string>

#include "src/completion/branch_outcome.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

struct BranchState {
  std::string rm_name;
  Xid xid;  // the branch's own Xid
  // What may already have happened to the branch (branch_outcome.h): maybe_applied is set by
  // Apply() after XAER_RMFAIL; maybe_prepared is the finisher's to set (the coordinator: once
  // Prepare() is sent; a decision from the log or a recover scan: true).
  BranchHistory history;
  BranchEnd end = BranchEnd::kPending;
  bool forget = false;              // the RM reported XA_HEUR*: Forget() once the outcome is durable
  bool heuristic_recorded = false;  // a heuristic record already names this branch's end
  Status last;                      // the last finishing call's result (or why none was made)

  // Reads the result `s` of the finishing call `call` by the phase-2 rules and records it: the
  // end, forget, last; an XAER_RMFAIL leaves the branch pending and may have landed, so later
  // calls read XAER_NOTA as done.
  BranchReading Apply(FinishCall call, const Status& s) {
    BranchReading reading = ReadFinishResult(call, s, history);
    last = s;
    end = reading.end;
    forget = reading.forget;
    if (!IsFinished(reading.end) && s.code() == Code::kRmFail) history.maybe_applied = true;
    return reading;
  }
  // No call could be made (no session to the RM): the branch stays pending, `why` is its last
  // result. Nothing was sent, so nothing may have landed.
  void NoCall(const Status& why) {
    last = why;
    end = BranchEnd::kPending;
  }
};

}  // namespace xa::internal

#endif  // XA_SRC_COMPLETION_BRANCH_STATE_H_
