// MarkerCommitCoordinator: two-phase commit whose decision is the one-phase commit of the last
// branch together with a marker row in its database (Protocol::kMarkerCommit; xa/marker.h,
// docs/marker-commit.md).
//
// THE PROTOCOL
//
// The marker branch is the last branch enlisted on TransactionManagerOptions::marker_commit.rm.
//
//   Phase 1, in parallel: every other branch is ended and prepared, exactly as in 2PC; the marker
//   branch gets the marker row (WriteCommitMarker: the global Xid, 'C') and is ended
//   (End(TMSUCCESS)); it is never prepared.
//
//   Decision: once every other branch voted commit (or read-only), the marker branch is
//   committed in one phase. That commit IS the decision: the row is durable exactly when the
//   marker branch's work is, and no decision record is written, so the coordinator's fdatasync
//   and the marker branch's prepare (a round trip and a log flush on its server) are gone.
//
//   Phase 2: the prepared branches are committed as in 2PC (the same code). The row is deleted
//   by the manager's MarkerCleaner once every branch is finished.
//
// Failure cases (beyond 2PC's, whose rules the shared steps keep):
//   - A vote other than commit or read-only, or a marker write or End that fails: rollback of
//     every branch, the marker branch too (its uncommitted row goes with it). A marker write that
//     answers XAER_DUPID means recovery has settled the transaction as aborted.
//   - The one-phase commit answers XA_RB*: the marker branch rolled back, so no row: rollback.
//   - Any other answer (XAER_RMFAIL: the connection broke; XAER_RMERR, XA_RETRY exhausted, ...):
//     the commit may or may not have happened. The coordinator asks the marker itself: it rolls
//     the marker branch back on its own session when that session may still hold it, then
//     settles (ResourceManager::SettleCommitMarker) on a fresh session, which waits until the
//     server has finished the marker branch and writes 'A' if no row committed. Committed: phase
//     2 as usual; aborted: rollback. Still unsettled after the inline retries (the marker's
//     server unreachable): Outcome::kUnknown, the prepared branches stay prepared, and recovery
//     settles them the same way.
//   - A transaction with one branch commits in one phase without a marker, and one with no
//     branch on the marker resource manager falls back to 2PC with a decision record (its Xid
//     still has the marker format ID; recovery reads the decision record first).
//   - Crash at any point: recovery (src/recovery/marker_recovery.h) settles each prepared branch
//     of a marker Xid by its marker: row 'C', commit; no row, write 'A' and roll back.
//
// Thread safety: see coordinator.h.

#ifndef XA_SRC_TM_MARKER_COMMIT_COORDINATOR_H_
#define XA_SRC_TM_MARKER_COMMIT_COORDINATOR_H_

#include <cstddef>
#include <optional>

#include "src/tm/marker_cleaner.h"
#include "src/tm/two_phase_coordinator.h"

namespace xa::internal {

class MarkerCommitCoordinator final : public TwoPhaseCoordinator {
 public:
  // `cleaner` deletes the rows of finished transactions; it must outlive the coordinator.
  MarkerCommitCoordinator(const Services* services, MarkerCleaner* cleaner)
      : TwoPhaseCoordinator(services), cleaner_(cleaner) {}

  // Records and completion jobs of these transactions are 2PC's (a decision record is written
  // only on the fallback paths), so the protocol as the log knows it stays kTwoPhase.
  Outcome Commit(TxnContext& txn) override;

 private:
  // The index of the marker branch: the last one on the marker resource manager.
  std::optional<size_t> MarkerBranch(const TxnContext& txn) const;
  // Writes the marker row in the marker branch and ends it (phase 1's step for that branch).
  void WriteMarkerAndEnd(TxnContext& txn, BranchContext& branch);
  // Commits the marker branch in one phase (XA_RETRY repeated inline); the raw answer.
  Status CommitMarkerBranch(BranchContext& branch);
  // After an answer that leaves the marker branch's fate open: releases the branch on its own
  // session when it may still hold it, then settles the marker on fresh sessions, with the inline
  // retry policy. nullopt when it stayed unsettled.
  std::optional<MarkerOutcome> Settle(TxnContext& txn, BranchContext& branch,
                                      const Status& answer);

  MarkerCleaner* cleaner_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_MARKER_COMMIT_COORDINATOR_H_
