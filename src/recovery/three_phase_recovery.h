// ThreePhaseRecovery: the coordinator's recovery module of three-phase commit (internal; the
// design is docs/three-phase-commit.md, "The coordinator's recovery").
//
// It owns the open records of protocol kThreePhase (kPreCommit, and 3PC's kCommitDecision) and
// the branches they name ("XAM3"); it comes before the two-phase module, which then leaves them
// alone. Without agents (RecoveryOptions::agents is nullptr, as in xa-recover) every such record
// is reported as awaiting its agents and no branch of it is touched.
//
// Gather (before planning, like the scans): for each open kPreCommit record not in flight, a
// StateQuery to every participant's agent, as the coordinator (not a backup round).
//
// Plan, for each open 3PC record not in flight:
//   - kPreCommit, no decision: any agent COMMIT → adopt it: append kCommitDecision (durable, the
//     record's participants) and finish it as below. Any ABORT → Abort to every agent. Both →
//     a partition split the outcome: nothing (the agents report it as heuristic-mixed). Otherwise
//     (undecided or unreachable agents) nothing this pass: the agents terminate on their own and
//     the next pass asks again. Never a decision on a guess.
//   - kCommitDecision without kEnd: DoCommit to every agent (branch_done = false). When the
//     agent holds no participant (INIT: it forgot it once told COMMIT, or the transaction's other
//     branches were read-only so no agent took part) or cannot be reached, and the scan found its
//     branch prepared, the branch is committed directly (phase-2 rules: "unknown Xid" means
//     finished).
//   - The end record is written only once every agent acknowledged the decision (Ack of COMMIT
//     or ABORT, or INIT with its branch finished): a committed outcome is then never forgotten by
//     both the coordinator and an agent.
//   - A prepared XAM3 branch that no record names is left to its agent's orphan scan: the
//     coordinator's rollback would not record ABORT at the agent, so a late CanCommit could
//     still be answered yes (the two-phase module reports it as awaiting agents).
// Execute: the appends, then the agents' messages in parallel, then the direct commits, then the
// end records.

#ifndef XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_
#define XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

#include "src/recovery/recovery_module.h"

namespace xa::internal {

// The participant number of a branch Xid made by Xid::WithBranch; nullopt for any other bqual.
std::optional<uint32_t> ParticipantNumberOfBranch(const Xid& branch);

class ThreePhaseRecovery final : public RecoveryModule {
 public:
  std::string_view name() const noexcept override { return "3PC"; }
  void Gather(PassInputs& inputs, const PassContext& context) override;
  RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) override;
  void Execute(RecoveryPlan& plan, const PassContext& context) override;
};

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_
