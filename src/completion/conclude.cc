#include "src/completion/conclude.h"

namespace xa::internal {

Conclusion Conclude(Decision decision, std::span<const BranchState* const> branches) {
  Conclusion conclusion;
  std::vector<BranchEnd> ends;
  ends.reserve(branches.size());
  conclusion.finished = true;
  for (size_t i = 0; i < branches.size(); ++i) {
    const BranchState& b = *branches[i];
    ends.push_back(b.end);
    if (b.end == BranchEnd::kPending) {
      if (conclusion.finished) conclusion.first_pending = static_cast<int>(i);
      conclusion.finished = false;
    }
    if (!IsHeuristic(b.end)) continue;
    if (conclusion.first_heuristic < 0) conclusion.first_heuristic = static_cast<int>(i);
    conclusion.heuristic_branches.push_back(Participant{b.rm_name, b.xid});
    if (!b.heuristic_recorded && !conclusion.record_heuristic) {
      conclusion.record_heuristic = true;
      conclusion.reason = "branch on '" + b.rm_name + "': " + b.last.ToString();
    }
  }
  conclusion.outcome = Aggregate(decision, ends);
  return conclusion;
}

LogRecord HeuristicRecord(const Xid& global, Protocol protocol, const Conclusion& conclusion) {
  LogRecord record;
  record.type = RecordType::kHeuristic;
  record.xid = global;
  record.protocol = protocol;
  record.participants = conclusion.heuristic_branches;
  record.outcome = conclusion.outcome;
  record.reason = conclusion.reason;
  return record;
}

}  // namespace xa::internal
