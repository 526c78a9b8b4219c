// ThreePhaseCoordinator: three-phase commit through participant agents (xa-agent), the
// coordinator's side. The whole protocol, the agents' termination rules and the reasons behind
// them are in docs/three-phase-commit.md; this is what the coordinator does.
//
// THE PROTOCOL, N >= 2 branches (one branch commits in one phase, as in 2PC: there is nobody to
// agree with). Branch i has Xid global.WithBranch(i), format "XAM3", and is participant i.
//
//   CanCommit, in parallel across the branches, two votes per branch: the database's (End(TMSUCCESS)
//   and Prepare() on the application's session, exactly as 2PC's phase 1) and the agent's
//   (CanCommit with the participant list (every branch), the fence (the MariaDB connection id of
//   the application's session; 0 for PostgreSQL, which detaches a branch at PREPARE) and the
//   read-only flag: the agent records WAIT durably and votes yes). By default
//   (ThreePhaseOptions::ask_agents_during_prepare) both go out at once, so the agents' round costs
//   no time beside the databases'; otherwise CanCommit follows a commit or read-only vote of
//   every database, and a transaction with at most one writing branch then commits as in 2PC with
//   no agent. Any rollback vote, error, agent's no or missing vote within
//   ThreePhaseOptions::vote_timeout: abort. Beside the votes, on the caller's thread, the
//   coordinator appends kPreCommit (protocol 3PC, the participants) durably: it must be durable
//   before the first PreCommit, not before the votes, and one log sync leaves the commit's path.
//   An agent's yes, so its WAIT, may thus come before its branch is prepared: the commit needs
//   both votes, and a termination round that aborts a branch not prepared yet finds it unknown
//   (or, on MariaDB, ends it with the fence), while the coordinator, if alive, finds the ABORT
//   at PreCommit.
//
//   PreCommit: once every agent voted yes and kPreCommit is durable (a failed append aborts), the
//   coordinator sends PreCommit to every agent, in parallel, and waits up to ack_timeout for each
//   Ack.
//     - every Ack says PRE: DoCommit below.
//     - an Ack says COMMIT (an agent's termination round already committed: every agent then
//       ends committed) → the coordinator adopts it: DoCommit below.
//     - an Ack says ABORT (a termination round aborted) → it adopts that: abort.
//     - otherwise (a timeout, an error, an Ack with WAIT: the agent was asked by a termination
//       round and refuses to pre-commit): the coordinator decides NOTHING. Commit() returns
//       Outcome::kUnknown with XA_TIMEOUT in last_status saying the agents' termination protocol
//       decides; the transaction leaves the in-flight set and its kPreCommit record stays open
//       for the 3PC recovery module (src/recovery/three_phase_recovery.h), which asks the agents
//       at the manager's next recovery pass and adopts their decision. The agents fence the
//       application's sessions before they finish the branches, so those sessions may be ended
//       under the application's feet: it opens new ones.
//
//   DoCommit: kCommitDecision (protocol 3PC) durably and, beside it, in parallel, each branch
//   committed through the application's session by 2PC's phase-2 rules (inline retries on fresh
//   sessions, heuristics persisted, a branch still pending handed to the background completer):
//   after a full set of PRE acknowledgements the outcome is fixed, so the decision must be
//   durable before any agent hears DoCommit, not before the databases commit. Then each agent is
//   told DoCommit with branch_done = whether that commit finished the branch, so that it does not
//   fence and commit again: when every branch is committed, off the caller's path (Commit()
//   returns first; DecisionNotifier, src/tm/decision_notifier.h, owns the transaction's
//   in-flight entry until the agents answered), otherwise on it. DoCommit acknowledgements are not
//   needed for the outcome (after a full set of PRE acknowledgements every termination round
//   commits), but for forgetting it: the end record follows only once every branch is finished
//   AND every agent acknowledged COMMIT, since an agent forgets a committed participant only
//   after the coordinator told it. An agent that did not acknowledge leaves the decision open
//   (logged with the Xid): the 3PC recovery module sends DoCommit again until it does. (A branch
//   still pending goes to the background completer, as in 2PC, which ends the decision once it
//   committed the branch AND every agent acknowledged DoCommit, by the recovery module's rule:
//   it tells them again, with branch_done, until they have.)
//
//   Abort (any failure before the decision, or an adopted ABORT): every branch not finished is
//   rolled back through the application's sessions (2PC's rollback), and every agent that was
//   sent CanCommit is told Abort, with branch_done when that rollback finished the branch. A
//   logged kPreCommit (appended beside the votes, so also on a vote of no) gets its end record:
//   nothing is left to decide.
//
// Thread safety: see coordinator.h.

#ifndef XA_SRC_TM_THREE_PHASE_COORDINATOR_H_
#define XA_SRC_TM_THREE_PHASE_COORDINATOR_H_

#include <functional>
#include <vector>

#include "src/three_phase/agent_client.h"
#include "src/three_phase/participant_state.h"
#include "src/tm/decision_notifier.h"
#include "src/tm/two_phase_coordinator.h"
#include "xa/three_phase.h"

namespace xa::internal {

class ThreePhaseCoordinator : public TwoPhaseCoordinator {
 public:
  // `agents` and `options` must outlive the coordinator.
  ThreePhaseCoordinator(const Services* services, three_phase::AgentClient* agents,
                        DecisionNotifier* notifier, const ThreePhaseOptions* options)
      : TwoPhaseCoordinator(services),
        agents_(agents),
        notifier_(notifier),
        three_phase_options_(options) {}

  Protocol protocol() const noexcept override { return Protocol::kThreePhase; }
  Outcome Commit(TxnContext& txn) override;
  Outcome Rollback(TxnContext& txn, const Status& reason) override;

 private:
  // What the agents answered to PreCommit, read together.
  enum class PreCommitVerdict { kAllPre, kCommitted, kAborted, kUndecided };

  // CanCommit's two halves, the databases' votes (XA END, XA PREPARE) and the agents' (WAIT), and
  // beside them the kPreCommit append: either at once (ask_agents_during_prepare) or the agents
  // once the databases voted. Returns the reason to roll back, or OK with every vote a yes and
  // kPreCommit durable. `ask_agents` is cleared when no agent needs asking (at most one branch
  // voted commit, the rest read-only: 2PC's rules finish it).
  Status CanCommit(TxnContext& txn, bool& ask_agents);
  // CanCommit to every branch's agent, all sent before any vote is read, with the fences read
  // before; `meanwhile` runs while the agents record WAIT. One status per branch: OK for a
  // durable yes. Writes nothing of the branches' contexts: it runs beside their prepares.
  std::vector<Status> AgentVotes(const TxnContext& txn, const std::vector<uint64_t>& fences,
                                 const std::vector<bool>& read_only,
                                 const std::function<void()>& meanwhile);
  PreCommitVerdict PreCommitAll(TxnContext& txn, Status& why_undecided);
  Outcome DoCommit(TxnContext& txn);
  // Sends `decision` (DoCommit or Abort) to the agent of every branch in `to`, in parallel, and
  // logs failures: an agent that misses it learns the outcome by its termination protocol.
  // Returns the branches whose agent did not acknowledge (AcknowledgesDecision,
  // src/recovery/three_phase_recovery.h).
  std::vector<size_t> TellAgents(TxnContext& txn, Decision decision,
                                 const std::vector<size_t>& to);
  // A pending commit's completion job also waits for every agent's DoCommit acknowledgement.
  void AddProtocolWork(const TxnContext& txn, CompletionJob& job) const override;
  std::vector<Participant> Participants(const TxnContext& txn) const;
  // The fence of branch b: the MariaDB session id that holds its prepared branch, 0 when the
  // database detaches a branch at prepare.
  Result<uint64_t> FenceOf(BranchContext& b) const;

  three_phase::AgentClient* agents_;
  DecisionNotifier* notifier_;  // DoCommit off the commit's path
  const ThreePhaseOptions* three_phase_options_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_THREE_PHASE_COORDINATOR_H_
