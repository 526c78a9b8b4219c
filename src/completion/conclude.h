// Concluding a transaction: the step after its branches' finishing calls, the same for every
// finisher (the coordinator, the background completer, the recovery engine) (internal).
//
// From the branch ends (branch_outcome.h) it derives, purely:
//   - the global outcome (Aggregate);
//   - whether a heuristic record is due: some branch ended heuristically and no record names it
//     yet. The record names every heuristic branch, carries the global outcome and the reason of
//     the first branch not yet recorded;
//   - whether the transaction is finished: no branch is pending, so a logged decision gets its
//     end record.
// Each finisher then acts in this order, which the promises rest on: (1) append the heuristic
// record, (2) only once it is durable, Forget() the branches whose RM reported XA_HEUR* (the RM
// would otherwise forget what no operator has heard of), (3) append the end record of a
// finished, logged decision. A branch still pending is retried (the coordinator hands it to the
// background completer, recovery leaves the decision open for its next pass).

#ifndef XA_SRC_COMPLETION_CONCLUDE_H_
#define XA_SRC_COMPLETION_CONCLUDE_H_

#include <span>
#include <string>
#include <vector>

#include "src/completion/branch_outcome.h"
#include "src/completion/branch_state.h"
#include "xa/decision_log.h"
#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

struct Conclusion {
  Outcome outcome = Outcome::kUnknown;
  bool finished = false;                     // no branch pending
  int first_pending = -1;                    // index into the branches, or -1
  int first_heuristic = -1;                  // index into the branches, or -1
  bool record_heuristic = false;             // append a kHeuristic record (see above)
  std::vector<Participant> heuristic_branches;  // every branch with a heuristic end
  std::string reason;                        // for the record: the first new heuristic
};

// Concludes over the branches that took part in the finishing calls, as their finisher last saw
// them (read-only branches take no part); the indices in the Conclusion are into `branches`.
Conclusion Conclude(Decision decision, std::span<const BranchState* const> branches);

// The kHeuristic record of `conclusion` for the transaction `global`.
LogRecord HeuristicRecord(const Xid& global, Protocol protocol, const Conclusion& conclusion);

}  // namespace xa::internal

#endif  // XA_SRC_COMPLETION_CONCLUDE_H_
