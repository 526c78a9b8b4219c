// TwoPhaseRecovery: the recovery module of two-phase commit with presumed abort (internal).
//
// Plan, for the transactions no earlier module claimed:
//   - Each 2PC commit decision of the log without an end record (the 3PC records are claimed by
//     the 3PC module, which plans first; unclaimed ones are left to the agents): commit each of
//     its branches that is still prepared; a branch no longer prepared on a reachable RM is
//     already committed. A branch whose RM is unreachable or not configured, or whose
//     transaction is in flight in this process, keeps the decision open; nothing is presumed.
//   - Each prepared branch of OUR node (our format ID and node id in the gtrid) with no commit
//     decision: presumed abort, roll it back, but only when the log is undamaged, the
//     transaction is not in flight, has no open heuristic record (an operator decides those),
//     and is older than `orphan_min_age` or was seen by an earlier pass. Otherwise leave it,
//     with the reason.
//   - Never touch a branch that is not ours (other format ID, other node, unparsable entry).
//   - Report each heuristic outcome that awaits an operator.
// Execute: the commits and rollbacks, each RM's calls spread over its sessions, each session on
// its own thread; every result read by the phase-2 rules. A heuristic result is recorded
// (kHeuristic) before Forget(). An end record follows for each decision whose branches are all
// finished.

#ifndef XA_SRC_RECOVERY_TWO_PHASE_RECOVERY_H_
#define XA_SRC_RECOVERY_TWO_PHASE_RECOVERY_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>

#include "src/recovery/recovery_module.h"

namespace xa::internal {

// How old an orphan is by the begin time in its Xid, and whether presumed abort may roll it back
// for its age alone. The one place that does this arithmetic: the begin time comes from a
// server's recover scan (any 8 bytes a forged Xid of our node may carry) and min_age from a
// configuration, so nothing here may overflow.
struct OrphanAge {
  std::optional<int64_t> age_micros;  // nullopt: no begin time, or one before 1970 (not real)
  bool old_enough = false;            // age >= min_age; never for an unknown age
};
// A begin time after `now_micros` (the wall clock stepped back) is age 0. A negative min_age
// counts as 0, one beyond the range of microseconds as "never old enough".
OrphanAge AgeOfOrphan(std::optional<int64_t> begin_micros, int64_t now_micros,
                      std::chrono::milliseconds min_age);

// Execute's work for a plan of XA commits and rollbacks (2PC's, and marker commit's once its
// markers are settled): makes plan.calls, each RM's calls spread over its sessions, each session
// on its own thread, reads every result by the phase-2 rules, then concludes each transaction:
// heuristic record, Forget(), and the end record of a logged decision it finished.
void ExecuteCommitsAndRollbacks(RecoveryPlan& plan, const PassContext& context);

class TwoPhaseRecovery final : public RecoveryModule {
 public:
  std::string_view name() const noexcept override { return "2PC"; }
  RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) override;
  void Execute(RecoveryPlan& plan, const PassContext& context) override;

 private:
  std::set<Xid> seen_orphans_;  // branches seen without a decision by the previous pass
};

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_TWO_PHASE_RECOVERY_H_
