#include "src/recovery/recovery_module.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::internal {

const ScannedRm* PassInputs::Scan(const std::string& rm_name) const {
  for (const ScannedRm& scan : scans) {
    if (scan.name == rm_name) return &scan;
  }
  return nullptr;
}

bool PassInputs::InFlight(const Xid& global) const {
  return options->in_flight && options->in_flight(global);
}

bool LeftForTheOperator(const LogState& state, const Xid& global, BranchReport& branch) {
  auto heuristic = state.open_heuristics.find(global);
  if (heuristic == state.open_heuristics.end()) return false;
  branch.log_state = "heuristic " + std::string(OutcomeName(heuristic->second.outcome)) +
                     " (lsn " + std::to_string(heuristic->second.lsn) + ")";
  branch.action = RecoveryAction::kLeaveAlone;
  branch.reason = "awaiting an operator: the transaction has an open heuristic record; finish "
                  "it with `force` and clear the heuristic";
  return true;
}

size_t RecoveryPlan::AddBranch(BranchReport branch) {
  BranchState state;
  state.rm_name = branch.rm_name;
  state.xid = branch.branch;
  states.push_back(std::move(state));
  report.branches.push_back(std::move(branch));
  return report.branches.size() - 1;
}

size_t RecoveryPlan::OpenDecisions() const {
  size_t open = 0;
  for (const auto& [global, transaction] : transactions) {
    if (!transaction.logged_decision) continue;
    bool finished = std::all_of(transaction.branches.begin(), transaction.branches.end(),
                                [&](size_t i) { return IsFinished(states[i].end); });
    if (!finished) ++open;
  }
  return open;
}

void MergeReport(RecoveryReport& into, RecoveryReport&& from) {
  into.branches.insert(into.branches.end(), std::make_move_iterator(from.branches.begin()),
                       std::make_move_iterator(from.branches.end()));
  into.committed += from.committed;
  into.rolled_back += from.rolled_back;
  into.already_done += from.already_done;
  into.failed += from.failed;
  into.foreign += from.foreign;
  into.in_flight += from.in_flight;
  into.orphans_deferred += from.orphans_deferred;
  into.awaiting_agents += from.awaiting_agents;
  into.heuristics_open += from.heuristics_open;
  into.end_records_written += from.end_records_written;
  into.decisions_still_open += from.decisions_still_open;
}

Status AppendRecoveryRecord(DecisionLog* log, const LogRecord& record) {
  if (log == nullptr) return Status::Ok();
  // An end record may be lost harmlessly (the next pass repeats phase 2 and finds the branches
  // done), so it rides on the next durable append, or on closing the log.
  if (record.type == RecordType::kEnd) return log->AppendLazy(record);
  Result<uint64_t> appended = log->Append(record);
  return appended.ok() ? Status::Ok() : appended.status();
}

Status ClearOpenHeuristic(DecisionLog& log, const Xid& xid, std::string reason) {
  if (reason.empty()) {
    return Status(Code::kInval, "clearing a heuristic outcome needs a reason: it is the audit "
                                "trail of what the operator checked or repaired");
  }
  const LogState state = log.State();
  const Xid key = state.open_heuristics.count(xid) != 0 ? xid : xid.Global();
  if (state.open_heuristics.count(key) == 0) {
    return Status(Code::kNoTa, "the decision log holds no uncleared heuristic outcome for " +
                                   xid.ToString() + " (plan lists the open ones)");
  }
  LogRecord record;
  record.type = RecordType::kHeuristicCleared;
  record.xid = key;
  record.reason = std::move(reason);
  Result<uint64_t> lsn = log.Append(record);
  if (!lsn.ok()) return lsn.status().WithContext("clearing the heuristic of " + key.ToString());
  XA_LOG_XID(kWarning, "recovery", key) << "heuristic outcome cleared by an operator: "
                                        << record.reason;
  return Status::Ok();
}

bool EndFinishedDecision(DecisionLog& log, const Xid& global, RecoveryReport& report) {
  XA_CRASH_POINT(kRecoveryBeforeEndRecord);
  LogRecord end;
  end.type = RecordType::kEnd;
  end.xid = global;
  Status appended = AppendRecoveryRecord(&log, end);
  if (!appended.ok()) {
    ++report.decisions_still_open;
    ++report.failed;
    XA_LOG_XID(kError, "recovery", global) << "cannot write end record: " << appended.ToString();
    return false;
  }
  ++report.end_records_written;
  return true;
}

}  // namespace xa::internal
