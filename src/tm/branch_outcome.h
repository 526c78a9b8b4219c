// How a phase-2 result of one branch is read, shared by the coordinator (inline phase 2) and the
// background completion thread, so that both apply exactly the same rules.

#ifndef XA_SRC_TM_BRANCH_OUTCOME_H_
#define XA_SRC_TM_BRANCH_OUTCOME_H_

#include <cstdint>
#include <vector>

#include "xa/protocol.h"
#include "xa/status.h"

namespace xa::internal {

// Where a branch ended up after phase 2 (or a rollback).
enum class BranchEnd : uint8_t {
  kPending,            // not finished: retry (XA_RETRY, XAER_RMFAIL)
  kCommitted,
  kRolledBack,
  kHeuristicCommit,    // committed although the decision was rollback
  kHeuristicRollback,  // rolled back although the decision was commit
  kHeuristicMixed,     // the RM itself reports part committed, part rolled back
  kHeuristicHazard,    // the branch's fate is unknown
};

struct Classified {
  BranchEnd end;
  bool forget;  // the RM reported XA_HEUR*: call Forget() once the outcome is persisted
};

// Reads the result of Commit(xid, kTwoPhase) on a prepared branch.
//   `maybe_applied`: an earlier commit of this branch failed with XAER_RMFAIL (or the branch
//   comes from a log replay), so that commit may have landed.
Classified ClassifyCommit(const Status& s, bool maybe_applied) noexcept;

// Reads the result of Rollback(xid).
//   `maybe_prepared`: Prepare() was sent (its reply may have been lost), so the branch may
//   survive its session and must be rolled back from another one if this one fails.
Classified ClassifyRollback(const Status& s, bool maybe_prepared) noexcept;

// The global outcome from the ends of the branches that took part in phase 2 (read-only
// branches take no part). `commit`: the decision was commit.
Outcome Aggregate(bool commit, const std::vector<BranchEnd>& ends) noexcept;

bool IsHeuristic(BranchEnd end) noexcept;

}  // namespace xa::internal

#endif  // XA_SRC_TM_BRANCH_OUTCOME_H_
