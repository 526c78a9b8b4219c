#include "xa/protocol.h"

namespace xa {

std::string_view ProtocolName(Protocol p) noexcept {
  switch (p) {
    case Protocol::kOnePhase: return "1PC";
    case Protocol::kTwoPhase: return "2PC";
    case Protocol::kThreePhase: return "3PC";
    case Protocol::kMarkerCommit: return "2PC-marker";
    case Protocol::kTcc: return "TCC";
    case Protocol::kSaga: return "saga";
  }
  return "unknown-protocol";
}

std::string_view VoteName(Vote v) noexcept {
  switch (v) {
    case Vote::kCommit: return "commit";
    case Vote::kReadOnly: return "read-only";
    case Vote::kRollback: return "rollback";
  }
  return "unknown-vote";
}

std::string_view OutcomeName(Outcome o) noexcept {
  switch (o) {
    case Outcome::kCommitted: return "committed";
    case Outcome::kRolledBack: return "rolled-back";
    case Outcome::kCommittedCompletionPending: return "committed-completion-pending";
    case Outcome::kHeuristicCommit: return "heuristic-commit";
    case Outcome::kHeuristicRollback: return "heuristic-rollback";
    case Outcome::kHeuristicMixed: return "heuristic-mixed";
    case Outcome::kHeuristicHazard: return "heuristic-hazard";
    case Outcome::kUnknown: return "unknown";
  }
  return "unknown-outcome";
}

}  // namespace xa
