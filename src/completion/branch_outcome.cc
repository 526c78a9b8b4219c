#include "src/completion/branch_outcome.h"

namespace xa::internal {
namespace {

// The XA_HEUR* rows, the same for every call: the RM completed the branch on its own and wants
// Forget(). Only the heuristic that went the decided way is no heuristic for us.
BranchReading ReadHeuristic(Code code, Decision decided) {
  switch (code) {
    case Code::kHeuristicCommit:
      return {decided == Decision::kCommit ? BranchEnd::kCommitted : BranchEnd::kHeuristicCommit,
              true};
    case Code::kHeuristicRollback:
      return {decided == Decision::kRollback ? BranchEnd::kRolledBack
                                             : BranchEnd::kHeuristicRollback,
              true};
    case Code::kHeuristicMixed:
      return {BranchEnd::kHeuristicMixed, true};
    default:
      return {BranchEnd::kHeuristicHazard, true};
  }
}

BranchReading ReadCommit(const Status& s, BranchHistory history) {
  switch (s.code()) {
    case Code::kOk:
      return {BranchEnd::kCommitted, false};
    case Code::kRetry:
    case Code::kRmFail:
      return {BranchEnd::kPending, false};
    case Code::kNoTa:  // (4)
      return {history.maybe_applied ? BranchEnd::kCommitted : BranchEnd::kHeuristicHazard, false};
    default:
      break;
  }
  if (s.IsRollback()) return {BranchEnd::kHeuristicRollback, false};  // (5)
  return {BranchEnd::kHeuristicHazard, false};                         // (6), (9)
}

BranchReading ReadRollback(const Status& s, BranchHistory history) {
  switch (s.code()) {
    case Code::kOk:
    case Code::kNoTa:     // (3)
    case Code::kRmError:  // (7)
      return {BranchEnd::kRolledBack, false};
    case Code::kRetry:
    case Code::kRmFail:  // (1)
      return {history.maybe_prepared ? BranchEnd::kPending : BranchEnd::kRolledBack, false};
    default:
      break;
  }
  if (s.IsRollback()) return {BranchEnd::kRolledBack, false};
  return {history.maybe_prepared ? BranchEnd::kHeuristicHazard : BranchEnd::kRolledBack, false};
}

BranchReading ReadCommitOnePhase(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return {BranchEnd::kCommitted, false};
    case Code::kRmFail:  // (2)
      return {BranchEnd::kHeuristicHazard, false};
    case Code::kNoTa:
    case Code::kRmError:  // (8)
      return {BranchEnd::kRolledBack, false};
    default:
      break;
  }
  if (s.IsRollback()) return {BranchEnd::kRolledBack, false};
  return {BranchEnd::kPending, false};  // (10)
}

}  // namespace

std::string_view DecisionName(Decision decision) noexcept {
  return decision == Decision::kCommit ? "commit" : "rollback";
}

std::string_view FinishCallName(FinishCall call) noexcept {
  switch (call) {
    case FinishCall::kCommit: return "commit";
    case FinishCall::kRollback: return "rollback";
    case FinishCall::kCommitOnePhase: return "commit(1PC)";
  }
  return "unknown-call";
}

std::string_view BranchEndName(BranchEnd end) noexcept {
  switch (end) {
    case BranchEnd::kPending: return "pending";
    case BranchEnd::kCommitted: return "committed";
    case BranchEnd::kRolledBack: return "rolled-back";
    case BranchEnd::kHeuristicCommit: return "heuristic-commit";
    case BranchEnd::kHeuristicRollback: return "heuristic-rollback";
    case BranchEnd::kHeuristicMixed: return "heuristic-mixed";
    case BranchEnd::kHeuristicHazard: return "heuristic-hazard";
  }
  return "unknown-end";
}

BranchReading ReadFinishResult(FinishCall call, const Status& s, BranchHistory history) noexcept {
  if (s.IsHeuristic()) {
    return ReadHeuristic(s.code(),
                         call == FinishCall::kRollback ? Decision::kRollback : Decision::kCommit);
  }
  switch (call) {
    case FinishCall::kCommit: return ReadCommit(s, history);
    case FinishCall::kRollback: return ReadRollback(s, history);
    case FinishCall::kCommitOnePhase: return ReadCommitOnePhase(s);
  }
  return {BranchEnd::kHeuristicHazard, false};
}

bool IsHeuristic(BranchEnd end) noexcept {
  return end == BranchEnd::kHeuristicCommit || end == BranchEnd::kHeuristicRollback ||
         end == BranchEnd::kHeuristicMixed || end == BranchEnd::kHeuristicHazard;
}

Outcome Aggregate(Decision decision, const std::vector<BranchEnd>& ends) noexcept {
  const bool commit = decision == Decision::kCommit;
  // "Went the decided way" (pending branches will, eventually) versus "went the other way".
  bool decided_way = false, other_way = false, mixed = false, hazard = false, pending = false;
  for (BranchEnd end : ends) {
    switch (end) {
      case BranchEnd::kPending:
        pending = true;
        decided_way = true;
        break;
      case BranchEnd::kCommitted:
      case BranchEnd::kHeuristicCommit:
        (commit ? decided_way : other_way) = true;
        break;
      case BranchEnd::kRolledBack:
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
