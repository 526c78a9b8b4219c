#include "recovery-log/log_state.h"

#include <map>
#include <utility>

namespace xa::internal {
namespace {

using Set = LogStateChange::Set;

LogStateChange Open(std::map<Xid, LogRecord>* open, Set set, LogRecord record) {
  Xid xid = record.xid;
  bool inserted = open->insert_or_assign(std::move(xid), std::move(record)).second;
  return LogStateChange{set, /*opened=*/inserted, /*closed=*/false};
}

LogStateChange Close(std::map<Xid, LogRecord>* open, Set set, const Xid& xid) {
  bool erased = open->erase(xid) != 0;
  return LogStateChange{set, /*opened=*/false, /*closed=*/erased};
}

}  // namespace

LogStateChange ApplyRecord(LogRecord record, LogState* state) {
  switch (record.type) {
    case RecordType::kCommitDecision:
    case RecordType::kPreCommit:
      return Open(&state->open_decisions, Set::kOpenDecisions, std::move(record));
    case RecordType::kEnd:
      return Close(&state->open_decisions, Set::kOpenDecisions, record.xid);
    case RecordType::kHeuristic:
      return Open(&state->open_heuristics, Set::kOpenHeuristics, std::move(record));
    case RecordType::kHeuristicCleared:
      return Close(&state->open_heuristics, Set::kOpenHeuristics, record.xid);
    case RecordType::kCheckpoint:
      break;
  }
  return LogStateChange{};
}

}  // namespace xa::internal
