#include "src/tm/branch_outcome.h"

namespace xa::internal {

Classified ClassifyCommit(const Status& s, bool maybe_applied) noexcept {
  switch (s.code()) {
    case Code::kOk:
      return {BranchEnd::kCommitted, false};
    // XA_HEURCOM while committing: the RM committed on its own, which is what we decided. Like
    // Narayana (XAResourceRecord.topLevelCommit), this is a commit; the RM still wants Forget().
    case Code::kHeuristicCommit:
      return {BranchEnd::kCommitted, true};
    case Code::kHeuristicRollback:
      return {BranchEnd::kHeuristicRollback, true};
    case Code::kHeuristicMixed:
      return {BranchEnd::kHeuristicMixed, true};
    case Code::kHeuristicHazard:
      return {BranchEnd::kHeuristicHazard, true};
    case Code::kRetry:
    case Code::kRmFail:
      return {BranchEnd::kPending, false};
    case Code::kNoTa:
      // A prepared branch that the RM no longer knows. If an earlier commit of ours may have
      // landed (its reply was lost with the connection: XAER_RMFAIL), the branch is gone because
      // of that commit: done. Otherwise nobody but us should have completed it: someone did
      // behind our back (an operator, another manager), and we cannot tell whether it was
      // committed or rolled back: hazard. (Marker rows, issue 5, can tell the two apart.)
      return {maybe_applied ? BranchEnd::kCommitted : BranchEnd::kHeuristicHazard, false};
    default:
      break;
  }
  // XA_RB* on a prepared branch: the RM rolled back what it had promised to commit.
  if (s.IsRollback()) return {BranchEnd::kHeuristicRollback, false};
  // XAER_RMERR ("the branch's work has been rolled back" for xa_commit, but drivers also use it
  // for errors that leave the branch in place), XAER_PROTO, XAER_INVAL, ...: the branch's fate
  // is unknown. Retrying an error that will not heal would spin forever; report it.
  return {BranchEnd::kHeuristicHazard, false};
}

Classified ClassifyRollback(const Status& s, bool maybe_prepared) noexcept {
  switch (s.code()) {
    case Code::kOk:
      return {BranchEnd::kRolledBack, false};
    case Code::kHeuristicRollback:  // rolled back on its own: what we decided
      return {BranchEnd::kRolledBack, true};
    case Code::kHeuristicCommit:
      return {BranchEnd::kHeuristicCommit, true};
    case Code::kHeuristicMixed:
      return {BranchEnd::kHeuristicMixed, true};
    case Code::kHeuristicHazard:
      return {BranchEnd::kHeuristicHazard, true};
    case Code::kNoTa:
      // Unknown Xid: never prepared (the RM dropped it) or already rolled back. Presumed abort
      // makes both a rollback.
      return {BranchEnd::kRolledBack, false};
    case Code::kRetry:
    case Code::kRmFail:
      // An unprepared branch does not survive its session: the RM rolls it back when the
      // connection goes. A branch that may be prepared does survive and must be rolled back
      // from another session.
      return {maybe_prepared ? BranchEnd::kPending : BranchEnd::kRolledBack, false};
    case Code::kRmError:
      // xa_rollback XAER_RMERR: "the RM is free to forget about the branch".
      return {BranchEnd::kRolledBack, false};
    default:
      break;
  }
  if (s.IsRollback()) return {BranchEnd::kRolledBack, false};
  return {maybe_prepared ? BranchEnd::kHeuristicHazard : BranchEnd::kRolledBack, false};
}

bool IsHeuristic(BranchEnd end) noexcept {
  return end == BranchEnd::kHeuristicCommit || end == BranchEnd::kHeuristicRollback ||
         end == BranchEnd::kHeuristicMixed || end == BranchEnd::kHeuristicHazard;
}

Outcome Aggregate(bool commit, const std::vector<BranchEnd>& ends) noexcept {
  // "Went the decided way" (pending branches will, eventually) versus "went the other way".
  bool decided_way = false, other_way = false, mixed = false, hazard = false, pending = false;
  for (BranchEnd end : ends) {
    switch (end) {
      case BranchEnd::kPending:
        pending = true;
        decided_way = true;
        break;
      case BranchEnd::kCommitted:
        (commit ? decided_way : other_way) = true;
        break;
      case BranchEnd::kRolledBack:
        (commit ? other_way : decided_way) = true;
        break;
      case BranchEnd::kHeuristicCommit:
        (commit ? decided_way : other_way) = true;
        break;
      case BranchEnd::kHeuristicRollback:
        (commit ? other_way : decided_way) = true;
        break;
      case BranchEnd::kHeuristicMixed:
        mixed = true;
        break;
      case BranchEnd::kHeuristicHazard:
        hazard = true;
        break;
    }
  }
  if (mixed || (other_way && decided_way)) return Outcome::kHeuristicMixed;
  if (hazard) return Outcome::kHeuristicHazard;
  if (other_way) return commit ? Outcome::kHeuristicRollback : Outcome::kHeuristicCommit;
  if (!commit) return Outcome::kRolledBack;
  return pending ? Outcome::kCommittedCompletionPending : Outcome::kCommitted;
}

}  // namespace xa::internal
