// ThreePhaseRecovery: the coordinator's recovery module of three-phase commit (internal; the
// design is docs/three-phase-commit.md, "The coordinator's recovery").
//
// It owns the open records of protocol kThreePhase (kPreCommit, and 3PC's kCommitDecision) and
// the branches they name ("XAM3"); it comes before the two-phase module, which then leaves them
// alone. Without agents (RecoveryOptions::agents is nullptr: xa-recover without [agent]
// sections) every such record is reported as awaiting its agents and no branch of it is touched.
//
// Gather (before planning, like the scans): for each open kPreCommit record not in flight, a
// StateQuery to every participant's agent, as the coordinator (not a backup round).
//
// Plan, for each open 3PC record not in flight:
//   - kPreCommit, no decision: any agent COMMIT → adopt it: append kCommitDecision (durable, the
//     record's participants) and finish it as below. Any ABORT → Abort to every agent. Both →
//     a partition split the outcome: it is recorded once (kHeuristic, heuristic-mixed, for an
//     operator), each decided agent is told its own outcome, nothing is committed directly, and
//     the record ends as below. Otherwise
//     (undecided or unreachable agents) nothing this pass: the agents terminate on their own and
//     the next pass asks again. Never a decision on a guess.
//   - kCommitDecision without kEnd: DoCommit to every agent (branch_done = false). When the
//     agent holds no participant (INIT: it forgot it once told COMMIT, or the transaction's other
//     branches were read-only so no agent took part) or cannot be reached, and the scan found its
//     branch prepared, the branch is committed directly (phase-2 rules: "unknown Xid" means
//     finished).
//   - The end record is written only once every agent acknowledged the decision (Ack of COMMIT
//     or ABORT, or INIT with its branch finished): a committed outcome is then never forgotten by
//     both the coordinator and an agent. An agent that answers the other outcome (it decided in
//     a partition) is a heuristic-mixed outcome, recorded once; its answer then settles its
//     part. A branch whose agent holds COMMIT also waits until it is finished in its database
//     (this pass's scan no longer lists it, or the direct commit finished it): once ended, the
//     record no longer names the branch, and a prepared XAM3 branch that no record names is
//     presumed aborted (below), so an agent still committing its branch would lose it.
//   - A prepared XAM3 branch that no record names is not this module's: the two-phase module
//     presumes abort for it as for a 2PC orphan (no participant can be PRE without a durable
//     pre-commit record), and its agent's own orphan scan releases it too when the coordinator
//     stays away (docs/three-phase-commit.md, "Orphans").
// Execute: the appends, then the agents' messages in parallel, then the direct commits, then the
// end records.

#ifndef XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_
#define XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

#include "src/recovery/recovery_module.h"
#include "xa/env.h"

namespace xa::internal {

// The participant number of a branch Xid made by Xid::WithBranch; nullopt for any other bqual.
std::optional<uint32_t> ParticipantNumberOfBranch(const Xid& branch);

// Telling a participant agent a transaction's decision, and the rule that reads its answer: one
// place for the coordinator's DoCommit and Abort, the background completer and this module, so
// that none of them ends a 3PC record on an answer another would not take.
//
// Sends DoCommit (kCommit) or Abort (kRollback) for participant `participant` of `global` to the
// agent of `rm_name`; `branch_done` tells the agent that the sender already finished the branch
// in its database, so that it neither fences nor finishes it again. The answer is the state the
// agent's Ack carries, or why there is none.
AgentAnswer TellAgentTheDecision(three_phase::AgentClient& agents, const std::string& rm_name,
                                 const Xid& global, uint32_t participant, Decision decision,
                                 bool branch_done, Clock::SteadyTime deadline);
// Whether `answer` acknowledges `decision`: the agent holds the decided state (COMMIT, ABORT),
// or it holds no participant (INIT: it never voted, or forgot the participant once told) and
// the branch is finished (`branch_finished`), so nothing is left for it to remember. A 3PC
// record is ended only once every agent of the transaction acknowledged: an agent forgets a
// committed participant only after being told, so the outcome is never forgotten on both sides.
bool AcknowledgesDecision(const AgentAnswer& answer, Decision decision, bool branch_finished);

class ThreePhaseRecovery final : public RecoveryModule {
 public:
  std::string_view name() const noexcept override { return "3PC"; }
  void Gather(PassInputs& inputs, const PassContext& context) override;
  RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) override;
  void Execute(RecoveryPlan& plan, const PassContext& context) override;
};

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_THREE_PHASE_RECOVERY_H_
