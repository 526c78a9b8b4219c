// TwoPhaseCoordinator: two-phase commit with presumed abort over XA resource managers.
//
// THE PROTOCOL
//
// Normal operation, N branches (one per enlisted session; branch i has Xid global.WithBranch(i)):
//
//   Phase 1, in parallel across the branches (the manager's pool; the caller runs one itself):
//     End(xid_i, TMSUCCESS), then Prepare(xid_i). Each answer is a vote: XA_OK = commit,
//     XA_RDONLY = read-only (the branch is finished and holds nothing), XA_RB* = rollback.
//
//   Decision:
//     - every vote read-only: the transaction is committed. Nothing is logged, there is no
//       phase 2.
//     - exactly one commit vote, the rest read-only: that branch is committed WITHOUT a decision
//       record. Safe because the read-only branches are already finished and hold no effects, so
//       the fate of the whole transaction is the fate of that one branch. If we crash before
//       its commit, recovery finds it prepared with no decision record and rolls it back: the
//       transaction as a whole rolled back, which is a legal outcome, since the caller was never
//       told "committed". (Should that commit fail with XAER_RMFAIL/XA_RETRY, the decision IS
//       logged at that point, before the caller is told "completion pending", so that recovery
//       commits it rather than presume abort.)
//     - two or more commit votes: a kCommitDecision record (the Xid and the commit-voting
//       branches; read-only votes are not logged) is appended to the decision log, and Append()
//       returns only once it is durable (fdatasync; the log shares fsyncs among concurrent
//       appenders: group commit). NO phase-2 call is made before that.
//
//   Phase 2, in parallel across the commit-voting branches: Commit(xid_i, TMNOFLAGS). When every
//   branch is finished a kEnd record is appended by a background thread; the caller does not
//   wait for it: a lost end record only makes recovery repeat phase 2, where XAER_NOTA means
//   done, and until it is written the transaction stays "in flight" so recovery leaves it
//   alone.
//
//   One-phase: a transaction with a single branch is committed with End(TMSUCCESS) and
//   Commit(xid, TMONEPHASE). No decision record, no end record: the RM alone decides.
//   A transaction with no branch commits trivially.
//
//   Rollback (Rollback(), timeout, destroyed handle, failed phase 1): End(TMFAIL) on a branch
//   still active, then Rollback(xid_i), in parallel. Nothing is logged: no decision record
//   means abort (presumed abort).
//
// Failure cases:
//
//   - End() fails, whatever the code: the transaction rolls back, and the branch is rolled back
//     like any other (Rollback() is still sent: an RM may keep the session bound to the failed
//     branch until then).
//   - A rollback vote (XA_RB*), XAER_NOTA, or an error (XAER_RMFAIL, XAER_RMERR, ...) from
//     Prepare(): the transaction rolls back. Every branch not finished is rolled back, the
//     failed one too (its Prepare may have landed and its reply been lost) unless it voted
//     XA_RB*. A rollback that fails with XAER_RMFAIL on a branch that may be
//     prepared goes to the background thread (fresh sessions, retried forever); on a branch never
//     prepared it is done, since an unprepared branch does not survive its session.
//   - The decision append fails (I/O error, fsync error, log refusing appends): the transaction
//     rolls back (Narayana: PREPARE_NOTOK). The record may have reached the disk without its
//     fsync succeeding; if recovery ever reads it, it re-commits branches that we rolled back and
//     gets XAER_NOTA, which it reads as done: nothing changes in the databases. The log itself
//     refuses every later append (XA_LOGFAILED), so no further decision is taken on it.
//   - Phase 2, per branch: every result is read by the phase-2 rules
//     (src/completion/branch_outcome.h), the same table the background completer and recovery
//     use. In short: XA_OK, XA_HEURCOM: committed (Forget() after XA_HEURCOM). XA_RETRY,
//     XAER_RMFAIL: the decision stands; the call is repeated inline with backoff
//     (options.inline_retry; after XAER_RMFAIL on a fresh session from the factory), then the
//     branch is handed to the background thread, which retries forever and writes the end
//     record; the caller gets kCommittedCompletionPending. XAER_NOTA: after an earlier
//     XAER_RMFAIL, our earlier commit landed and its reply was lost: done; on a first attempt,
//     somebody completed our prepared branch behind our back: heuristic hazard. XA_HEURRB,
//     XA_HEURMIX, XA_HEURHAZ, XA_RB*, XAER_RMERR/PROTO/...: a heuristic outcome.
//   - Heuristics (either decision): the global outcome is derived from all branches (mixed when
//     some went each way, else hazard, else heuristic commit/rollback), persisted as a
//     kHeuristic record (branches, outcome, reason) that stays open until an operator calls
//     TransactionManager::ClearHeuristic(). Only once that record is durable is Forget() sent
//     to the RMs that reported XA_HEUR* (src/completion/conclude.h). The end record follows.
//   - One-phase commit (the same table): XA_RB*, XAER_NOTA or XAER_RMERR: rolled back. XA_RETRY: repeated inline, then rolled
//     back. XAER_RMFAIL: the commit may or may not have happened and no one can tell later
//     (nothing was prepared): heuristic hazard, persisted.
//   - Crash at any point: no decision record = abort (recovery rolls back our node's prepared
//     branches); a durable decision without an end record = recovery commits every branch in it,
//     XAER_NOTA meaning done.
//
// Thread safety: see coordinator.h.

#ifndef XA_SRC_TM_TWO_PHASE_COORDINATOR_H_
#define XA_SRC_TM_TWO_PHASE_COORDINATOR_H_

#include <vector>

#include "src/tm/coordinator.h"
#include "src/tm/services.h"

namespace xa::internal {

struct CompletionJob;

class TwoPhaseCoordinator : public Coordinator {
 public:
  explicit TwoPhaseCoordinator(const Services* services) : services_(services) {}

  Protocol protocol() const noexcept override { return Protocol::kTwoPhase; }
  Outcome Commit(TxnContext& txn) override;
  Outcome Rollback(TxnContext& txn, const Status& reason) override;

 protected:
  // The steps the three-phase coordinator shares (its branches are prepared, committed and
  // rolled back through the application's sessions exactly as here).
  Outcome CommitOnePhase(TxnContext& txn, BranchContext& branch);
  void PrepareBranch(TxnContext& txn, BranchContext& branch);
  Outcome PhaseTwo(TxnContext& txn, const std::vector<size_t>& committers, bool decision_logged);
  // Commits (or rolls back) one branch on the caller's side, with the inline retry policy.
  void FinishBranchInline(BranchContext& branch, Decision decision);
  void RollbackBranch(BranchContext& branch);
  // Derives the outcome from the branches that took part in phase 2 (or the rollback),
  // persists heuristics, sends Forget(), hands pending branches to the background, writes the
  // end record of a finished logged decision, and sets txn.last_status (`reason` for a plain
  // rollback).
  Outcome Conclude(TxnContext& txn, const std::vector<size_t>& phase2_branches,
                   Decision decision, bool decision_logged, const Status& reason);
  LogRecord DecisionRecord(const TxnContext& txn, const std::vector<size_t>& committers) const;
  // What a protocol adds to a completion job that Conclude hands to the background, before it is
  // submitted (3PC: the agents that must acknowledge the decision before its end record).
  virtual void AddProtocolWork(const TxnContext& /*txn*/, CompletionJob& /*job*/) const {}

  const Services* services_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_TWO_PHASE_COORDINATOR_H_
