#include "src/recovery/marker_recovery.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "src/base/logging.h"
#include "src/recovery/two_phase_recovery.h"

namespace xa::internal {
namespace {

constexpr std::string_view kComponent = "recovery";

// The first of the sessions recovery was given on resource manager `rm_name`; nullptr if none.
ResourceManager* SessionOf(const PassContext& context, const std::string& rm_name) {
  for (ResourceManager* rm : context.sessions) {
    if (rm->name() == rm_name) return rm;
  }
  return nullptr;
}

Status NoMarkerSession(const std::string& rm_name) {
  return Status(Code::kConfig, "the marker resource manager '" + rm_name +
                                   "' is not among the resource managers recovery was given: "
                                   "configure it so marker-commit branches can be settled");
}

// Settles the marker of `global`: its row's outcome, or why there is none yet.
Result<MarkerOutcome> SettleOne(ResourceManager* rm, const MarkerCommitOptions& marker,
                                const Xid& global) {
  if (rm == nullptr) return NoMarkerSession(marker.rm);
  XA_RETURN_IF_ERROR(rm->Open());
  return rm->SettleCommitMarker(marker.table, global, marker.settle_wait);
}

// Deletes the rows of our node whose transactions are over: not in flight here, and no branch
// prepared on any resource manager in a scan made after the rows were listed. A transaction not
// in flight when its row was listed had made every prepare it will make (they precede the
// marker's commit, and its row is visible only once committed), so that scan sees every branch
// of it that is still prepared.
void Sweep(const PassContext& context, ResourceManager* rm) {
  const RecoveryOptions& options = *context.options;
  const MarkerCommitOptions& marker = options.marker;
  Result<std::vector<MarkerRow>> rows =
      rm->ListCommitMarkers(marker.table, options.node_id, MarkerRecovery::kSweepLimit);
  if (!rows.ok()) {
    XA_LOG(kWarning, kComponent) << "cannot list the marker rows of '" << marker.table
                                 << "' for the sweep: " << rows.status().ToString();
    return;
  }
  std::vector<Xid> candidates;
  for (const MarkerRow& row : *rows) {
    if (!(options.in_flight && options.in_flight(row.global))) candidates.push_back(row.global);
  }
  if (candidates.empty()) return;
  std::set<Xid> prepared;
  std::set<std::string> scanned;
  for (ResourceManager* session : context.sessions) {
    if (!scanned.insert(session->name()).second) continue;
    Status opened = session->Open();
    Result<RecoverScan> scan = opened.ok() ? session->Recover() : Result<RecoverScan>(opened);
    if (!scan.ok()) {
      XA_LOG(kInfo, kComponent) << "marker sweep skipped: '" << session->name()
                                << "' cannot be scanned: " << scan.status().ToString();
      return;
    }
    for (const Xid& xid : scan->prepared) prepared.insert(xid.Global());
  }
  std::vector<Xid> over;
  for (const Xid& global : candidates) {
    if (prepared.count(global) == 0) over.push_back(global);
  }
  if (over.empty()) return;
  Status deleted = rm->DeleteCommitMarkers(marker.table, over);
  if (!deleted.ok()) {
    XA_LOG(kWarning, kComponent) << "marker sweep: deleting " << over.size()
                                 << " row(s) failed: " << deleted.ToString();
    return;
  }
  XA_LOG(kInfo, kComponent) << "marker sweep: deleted " << over.size()
                            << " row(s) of finished transactions";
}

}  // namespace

std::set<Xid> MarkerOrphans(const PassInputs& in) {
  std::set<Xid> orphans;
  for (const ScannedRm& scan : in.scans) {
    if (!scan.status.ok()) continue;
    for (const Xid& xid : scan.prepared) {
      if (xid.GeneratedProtocol() != Protocol::kMarkerCommit ||
          !xid.IsOwnedBy(in.options->node_id)) {
        continue;
      }
      Xid global = xid.Global();
      if (in.state->open_decisions.count(global) == 0) orphans.insert(std::move(global));
    }
  }
  return orphans;
}

void MarkerRecovery::Gather(PassInputs& in, const PassContext& context) {
  const MarkerCommitOptions& marker = in.options->marker;
  if (marker.rm.empty()) return;
  std::vector<Xid> wanted;
  for (const Xid& global : MarkerOrphans(in)) {
    if (!in.InFlight(global)) wanted.push_back(global);
  }
  if (wanted.empty()) return;
  ResourceManager* rm = SessionOf(context, marker.rm);
  if (rm == nullptr) {
    in.marker_read = NoMarkerSession(marker.rm);
    return;
  }
  Status opened = rm->Open();
  Result<std::vector<MarkerRow>> rows =
      opened.ok() ? rm->ReadCommitMarkers(marker.table, wanted)
                  : Result<std::vector<MarkerRow>>(opened);
  if (!rows.ok()) {
    in.marker_read = rows.status().WithContext("reading the marker table '" + marker.table +
                                               "' on '" + marker.rm + "'");
    return;
  }
  for (const MarkerRow& row : *rows) in.marker_rows[row.global] = row.outcome;
}

RecoveryPlan MarkerRecovery::Plan(const PassInputs& in, const std::set<Xid>& claimed) {
  RecoveryPlan plan;
  RecoveryReport& report = plan.report;
  const LogState& state = *in.state;
  const MarkerCommitOptions& marker = in.options->marker;
  const std::set<Xid> orphans = MarkerOrphans(in);
  for (const ScannedRm& scan : in.scans) {
    if (!scan.status.ok()) continue;
    for (const Xid& xid : scan.prepared) {
      Xid global = xid.Global();
      if (orphans.count(global) == 0 || claimed.count(global) != 0) continue;
      plan.claimed.insert(global);
      BranchReport branch{scan.name, xid, "", "no decision record (marker commit)", "prepared",
                          RecoveryAction::kLeaveAlone, "", Status()};
      auto row = in.marker_rows.find(global);
      if (in.InFlight(global)) {
        branch.reason = "in flight: its transaction is still running in this process";
        ++report.in_flight;
      } else if (LeftForTheOperator(state, global, branch)) {
        ++report.orphans_deferred;
      } else if (marker.rm.empty()) {
        branch.reason = "marker commit: its outcome is its marker row, and this recovery has no "
                        "marker configuration (the marker resource manager and table): add it";
        ++report.orphans_deferred;
      } else if (!in.marker_read.ok()) {
        branch.reason = "marker commit: the marker row cannot be read, retry when it can: " +
                        in.marker_read.ToString();
        ++report.orphans_deferred;
      } else if (row == in.marker_rows.end() && state.damaged) {
        branch.reason = "no marker row and the log is damaged: refusing to settle (a decision "
                        "record may have been lost: " + state.damage_report + ")";
        ++report.orphans_deferred;
      } else {
        const bool commit = row != in.marker_rows.end() && row->second == MarkerOutcome::kCommitted;
        branch.log_state = row == in.marker_rows.end()
                               ? "no marker row"
                               : "marker row: " + std::string(MarkerOutcomeName(row->second));
        branch.action = commit ? RecoveryAction::kCommit : RecoveryAction::kRollback;
        branch.reason = commit ? "its marker branch committed (marker row 'C')"
                        : row != in.marker_rows.end()
                            ? "settled as aborted (marker row 'A')"
                            : "no marker row: settled as aborted by writing 'A' first (should "
                              "its marker branch commit before that, it is committed instead)";
        const Decision decision = commit ? Decision::kCommit : Decision::kRollback;
        size_t index = plan.AddBranch(std::move(branch));
        plan.calls.push_back({index, scan.name, global, decision});
        PlannedTransaction& transaction = plan.transactions[global];
        transaction.decision = decision;
        transaction.settle_marker_first = row == in.marker_rows.end();
        transaction.branches.push_back(index);
        continue;
      }
      plan.AddBranch(std::move(branch));
    }
  }
  return plan;
}

void MarkerRecovery::Execute(RecoveryPlan& plan, const PassContext& context) {
  const MarkerCommitOptions& marker = context.options->marker;
  if (marker.rm.empty()) return;  // nothing planned but reports
  ResourceManager* rm = SessionOf(context, marker.rm);
  RecoveryReport& report = plan.report;

  // The settles: each turns "no row" into 'A', or finds the marker branch committed.
  std::set<Xid> unsettled;
  for (auto& [global, transaction] : plan.transactions) {
    if (!transaction.settle_marker_first) continue;
    Result<MarkerOutcome> settled = SettleOne(rm, marker, global);
    if (!settled.ok()) {
      unsettled.insert(global);
      for (size_t i : transaction.branches) {
        BranchReport& branch = report.branches[i];
        branch.action = RecoveryAction::kLeaveAlone;
        branch.reason = "the marker could not be settled yet, a later pass will: " +
                        settled.status().ToString();
        ++report.orphans_deferred;
      }
      XA_LOG_XID(kWarning, kComponent, global)
          << "marker not settled, left for a later pass: " << settled.status().ToString();
      continue;
    }
    XA_LOG_XID(kInfo, kComponent, global) << "marker settled: " << MarkerOutcomeName(*settled);
    if (*settled == MarkerOutcome::kCommitted) {
      transaction.decision = Decision::kCommit;
      for (size_t i : transaction.branches) {
        report.branches[i].action = RecoveryAction::kCommit;
        report.branches[i].log_state = "marker row: committed";
        report.branches[i].reason = "its marker branch committed while recovery settled it";
      }
      for (PlannedCall& call : plan.calls) {
        if (call.global == global) call.decision = Decision::kCommit;
      }
    }
  }
  std::erase_if(plan.calls, [&](const PlannedCall& call) { return unsettled.count(call.global); });
  for (const Xid& global : unsettled) plan.transactions.erase(global);

  ExecuteCommitsAndRollbacks(plan, context);

  // The rows of the transactions finished here are no longer needed.
  std::vector<Xid> finished;
  for (const auto& [global, transaction] : plan.transactions) {
    const bool done = std::all_of(
        transaction.branches.begin(), transaction.branches.end(), [&](size_t i) {
          return IsFinished(plan.states[i].end) && !IsHeuristic(plan.states[i].end);
        });
    if (done) finished.push_back(global);
  }
  if (rm == nullptr) return;
  if (!finished.empty()) {
    Status deleted = rm->DeleteCommitMarkers(marker.table, finished);
    if (!deleted.ok()) {
      XA_LOG(kWarning, kComponent) << "deleting the marker rows of " << finished.size()
                                   << " finished transaction(s) failed (the sweep retries): "
                                   << deleted.ToString();
    }
  }
  Sweep(context, rm);
}

}  // namespace xa::internal
