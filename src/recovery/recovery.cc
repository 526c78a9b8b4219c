#include "xa/recovery.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "src/completion/branch_outcome.h"
#include "src/base/escape.h"
#include "src/base/logging.h"
#include "src/recovery/marker_recovery.h"
#include "src/recovery/recovery_module.h"
#include "src/recovery/tcc_recovery.h"
#include "src/recovery/three_phase_recovery.h"
#include "src/recovery/two_phase_recovery.h"
#include "src/testing/crash_points.h"

namespace xa {
namespace {

constexpr std::string_view kComponent = "recovery";

// Scans every RM, each from its own thread.
std::vector<internal::ScannedRm> ScanAll(const std::vector<ResourceManager*>& rms) {
  std::vector<internal::ScannedRm> scans(rms.size());
  auto scan_one = [&](size_t i) {
    scans[i].name = rms[i]->name();
    Status opened = rms[i]->Open();
    if (!opened.ok()) {
      scans[i].status = opened;
      return;
    }
    Result<RecoverScan> result = rms[i]->Recover();
    if (!result.ok()) {
      scans[i].status = result.status();
      return;
    }
    scans[i].prepared.insert(result->prepared.begin(), result->prepared.end());
    scans[i].unparsed = std::move(result->unparsed);
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < rms.size(); ++i) threads.emplace_back(scan_one, i);
  if (!rms.empty()) scan_one(0);
  for (auto& t : threads) t.join();
  return scans;
}

class UnreachableResourceManager final : public ResourceManager {
 public:
  UnreachableResourceManager(std::string name, Status why)
      : name_(std::move(name)), why_(std::move(why)) {}
  const std::string& name() const noexcept override { return name_; }
  Status Open() override { return why_; }
  Status Close() override { return Status::Ok(); }
  const ServerInfo& server_info() const noexcept override { return info_; }
  Status Start(const Xid&, StartFlag) override { return why_; }
  Status End(const Xid&, EndFlag) override { return why_; }
  Status Prepare(const Xid&) override { return why_; }
  Status Commit(const Xid&, CommitMode) override { return why_; }
  Status Rollback(const Xid&) override { return why_; }
  Result<RecoverScan> Recover() override { return why_; }
  Status Forget(const Xid&) override { return why_; }

 private:
  std::string name_;
  Status why_;
  ServerInfo info_;
};

}  // namespace

std::unique_ptr<ResourceManager> MakeUnreachableResourceManager(std::string name, Status why) {
  if (why.ok()) why = Status(Code::kRmFail, "resource manager '" + name + "' is unreachable");
  return std::make_unique<UnreachableResourceManager>(std::move(name), std::move(why));
}

std::string_view RecoveryActionName(RecoveryAction action) noexcept {
  switch (action) {
    case RecoveryAction::kCommit: return "commit";
    case RecoveryAction::kRollback: return "rollback";
    case RecoveryAction::kAlreadyDone: return "already-done";
    case RecoveryAction::kLeaveAlone: return "leave-alone";
    case RecoveryAction::kReportHeuristic: return "report-heuristic";
    case RecoveryAction::kConfirm: return "confirm";
    case RecoveryAction::kCancel: return "cancel";
  }
  return "unknown-action";
}

// The recovery modules, in the order their plans claim transactions (see recovery_module.h).
std::vector<std::unique_ptr<internal::RecoveryModule>> ProtocolModules() {
  std::vector<std::unique_ptr<internal::RecoveryModule>> modules;
  modules.push_back(std::make_unique<internal::TccRecovery>());
  modules.push_back(std::make_unique<internal::ThreePhaseRecovery>());
  modules.push_back(std::make_unique<internal::MarkerRecovery>());
  modules.push_back(std::make_unique<internal::TwoPhaseRecovery>());
  return modules;
}

RecoveryEngine::RecoveryEngine(DecisionLog& log, std::vector<ResourceManager*> rms,
                               RecoveryOptions options)
    : log_(&log), rms_(std::move(rms)), options_(std::move(options)), modules_(ProtocolModules()) {}

RecoveryEngine::RecoveryEngine(LogState damaged_state, std::vector<ResourceManager*> rms,
                               RecoveryOptions options)
    : log_(nullptr),
      fixed_state_(std::move(damaged_state)),
      rms_(std::move(rms)),
      options_(std::move(options)),
      modules_(ProtocolModules()) {
  // Whatever the state says, a log we cannot append to is treated as damaged.
  fixed_state_.damaged = true;
  if (fixed_state_.damage_report.empty()) fixed_state_.damage_report = "log opened read-only";
}

RecoveryEngine::~RecoveryEngine() = default;

void RecoveryEngine::SetResourceManagers(std::vector<ResourceManager*> rms) {
  std::lock_guard<std::mutex> lock(mu_);
  rms_ = std::move(rms);
}

Status RecoveryEngine::AppendRecord(const LogRecord& record) {
  return internal::AppendRecoveryRecord(log_, record);
}

Status RecoveryEngine::ClearHeuristic(const Xid& global, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (log_ == nullptr) {
    return Status(Code::kLogFailed, "the decision log is damaged and opened read-only: no "
                                    "heuristic can be cleared until it is repaired");
  }
  return internal::ClearOpenHeuristic(*log_, global, reason);
}

Result<RecoveryReport> RecoveryEngine::Run() {
  std::lock_guard<std::mutex> lock(mu_);
  if (rms_.empty() && options_.tcc.participants.empty() && options_.saga.operations.empty()) {
    return Status(Code::kConfig, "recovery has no resource manager to scan and no TCC "
                                 "participant to call: configure every RM that transactions of "
                                 "this node enlist");
  }
  // Scan first, then read the log: a decision appended while we scan is then seen, so a branch
  // that is being committed right now is never mistaken for an orphan. Sessions with the same
  // name are one RM: scan it once, through its first session.
  std::vector<ResourceManager*> distinct;
  for (ResourceManager* rm : rms_) {
    bool seen = std::any_of(distinct.begin(), distinct.end(),
                            [&](ResourceManager* d) { return d->name() == rm->name(); });
    if (!seen) distinct.push_back(rm);
  }
  internal::PassInputs inputs;
  inputs.scans = ScanAll(distinct);
  XA_CRASH_POINT(kRecoveryAfterScan);
  LogState state = log_ != nullptr ? log_->State() : fixed_state_;
  inputs.state = &state;
  inputs.options = &options_;
  inputs.now_micros = (options_.env != nullptr ? options_.env : Env::Default())->NowMicros();

  RecoveryReport report;
  report.dry_run = options_.dry_run;
  report.log_read_only = log_ == nullptr;
  report.log_damaged = state.damaged;
  for (const internal::ScannedRm& scan : inputs.scans) {
    if (scan.status.ok()) continue;
    report.unreachable_rms.push_back(scan.name);
    XA_LOG(kWarning, kComponent) << "resource manager '" << scan.name
                                 << "' cannot be scanned: " << scan.status.ToString();
  }

  internal::PassContext context{rms_, log_, &options_};
  for (const auto& module : modules_) module->Gather(inputs, context);
  // Every module plans before any acts: the plans see one state.
  std::vector<internal::RecoveryPlan> plans;
  std::set<Xid> claimed;
  for (const auto& module : modules_) {
    plans.push_back(module->Plan(inputs, claimed));
    claimed.insert(plans.back().claimed.begin(), plans.back().claimed.end());
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    internal::RecoveryPlan& plan = plans[i];
    if (options_.dry_run) {
      plan.report.decisions_still_open += plan.OpenDecisions();
    } else {
      modules_[i]->Execute(plan, context);
    }
    internal::MergeReport(report, std::move(plan.report));
  }
  return report;
}

Result<RecoveryReport> RecoveryEngine::Force(const Xid& global_or_branch, Forced forced_decision,
                                             const std::string& reason) {
  const bool commit = forced_decision == Forced::kCommit;
  std::lock_guard<std::mutex> lock(mu_);
  if (reason.empty()) {
    return Status(Code::kInval, "a forced decision needs a reason (--reason): it is written to "
                                "the decision log as the audit trail");
  }
  const Xid global = global_or_branch.Global();
  if (log_ == nullptr) {
    return Status(Code::kLogFailed,
                  "the decision log is open read-only because it is damaged: a forced decision "
                  "must be recorded, so repair or move the log first (see xa-log verify)");
  }
  if (options_.in_flight && options_.in_flight(global)) {
    return Status(Code::kProto, "transaction " + global.ToString() +
                                    " is still running in this process; it cannot be forced");
  }
  LogState state = log_->State();
  auto decision = state.open_decisions.find(global);
  if (!commit && decision != state.open_decisions.end()) {
    return Status(Code::kProto,
                  "the decision log holds a commit decision for " + global.ToString() +
                      " (lsn " + std::to_string(decision->second.lsn) +
                      "): some branches may be committed already, so a forced rollback would "
                      "split the transaction; run `resolve` to commit it instead");
  }
  std::vector<internal::ScannedRm> scans = ScanAll(rms_);
  RecoveryReport report;
  std::vector<Participant> targets;
  for (const internal::ScannedRm& scan : scans) {
    if (!scan.status.ok()) {
      report.unreachable_rms.push_back(scan.name);
      continue;
    }
    for (const Xid& xid : scan.prepared) {
      bool match = global_or_branch.bqual().empty() ? xid.Global() == global
                                                    : xid == global_or_branch;
      if (match) targets.push_back(Participant{scan.name, xid});
    }
  }
  if (targets.empty()) {
    return Status(Code::kNoTa, "no prepared branch of " + global_or_branch.ToString() +
                                   " on any reachable resource manager" +
                                   (report.unreachable_rms.empty()
                                        ? std::string()
                                        : " (unreachable: " + report.unreachable_rms.front() +
                                              ", ...)"));
  }
  LogRecord audit;
  audit.type = RecordType::kHeuristic;
  audit.xid = global;
  audit.participants = targets;
  audit.outcome = commit ? Outcome::kHeuristicCommit : Outcome::kHeuristicRollback;
  audit.reason = "operator forced " + std::string(commit ? "commit" : "rollback") + ": " + reason;
  Status written = AppendRecord(audit);
  if (!written.ok()) return written.WithContext("cannot record the forced decision");

  bool all_done = true;
  for (const Participant& target : targets) {
    ResourceManager* rm = nullptr;
    for (ResourceManager* candidate : rms_) {
      if (candidate->name() == target.rm_name) rm = candidate;
    }
    Status s = commit ? rm->Commit(target.branch, CommitMode::kTwoPhase)
                      : rm->Rollback(target.branch);
    BranchReport branch{target.rm_name, target.branch, "",
                        decision != state.open_decisions.end() ? "commit decision"
                                                               : "no decision",
                        "prepared", commit ? RecoveryAction::kCommit : RecoveryAction::kRollback,
                        audit.reason, s};
    // The scan found the branch prepared, and the audit record already names the outcome as
    // the operator's: a NOTA means it was finished between the scan and this call, by a call
    // of this decision only if the log holds one (the manager or recovery committing it).
    const internal::Decision forced =
        commit ? internal::Decision::kCommit : internal::Decision::kRollback;
    internal::BranchReading reading = internal::ReadFinishResult(
        internal::FinishCallFor(forced), s,
        {/*maybe_applied=*/decision != state.open_decisions.end(), /*maybe_prepared=*/true});
    bool went_forced_way =
        reading.end == (commit ? internal::BranchEnd::kCommitted : internal::BranchEnd::kRolledBack);
    if (went_forced_way) {
      ++(commit ? report.committed : report.rolled_back);
    } else {
      ++report.failed;
      all_done = false;
    }
    if (reading.forget) rm->Forget(target.branch).IgnoreError();
    XA_LOG_XID(kWarning, kComponent, target.branch)
        << "operator forced " << (commit ? "commit" : "rollback") << " on " << target.rm_name
        << ": " << s.ToString();
    report.branches.push_back(std::move(branch));
  }
  if (all_done && decision != state.open_decisions.end()) {
    LogRecord end;
    end.type = RecordType::kEnd;
    end.xid = global;
    if (AppendRecord(end).ok()) ++report.end_records_written;
  }
  return report;
}

std::string FormatRecoveryReport(const RecoveryReport& report) {
  std::ostringstream out;
  for (const BranchReport& b : report.branches) {
    // Names come from the configuration and raw entries from a server: escaped for terminals.
    out << (b.branch.empty() ? "raw:" + internal::EscapeForMessage(b.raw) : b.branch.ToString())
        << "  rm=" << internal::EscapeForMessage(b.rm_name)
        << "  log=" << b.log_state << "  rm-state=" << b.rm_state
        << "  action=" << RecoveryActionName(b.action) << "  reason=" << b.reason;
    if (!b.result.ok()) out << "  result=" << b.result.ToString();
    out << '\n';
  }
  // The first word is the outcome, as the tool's exit status is: "done" only when converged.
  out << (report.dry_run ? "plan: " : report.Converged() ? "done: " : "not finished: ")
      << report.committed << " committed, "
      << report.rolled_back << " rolled back, " << report.already_done << " already done, "
      << report.failed << " failed, " << report.foreign << " foreign left alone, "
      << report.in_flight << " in flight, " << report.orphans_deferred << " deferred, "
      << report.awaiting_agents << " awaiting 3PC agents, "
      << report.heuristics_open << " heuristic awaiting an operator, "
      << report.end_records_written << " end records, " << report.decisions_still_open
      << " decisions still open";
  if (report.log_damaged) out << "; LOG DAMAGED: presumed abort refused";
  if (report.log_read_only) out << "; log read-only: no end records written";
  for (const std::string& rm : report.unreachable_rms) {
    out << "; unreachable: " << internal::EscapeForMessage(rm);
  }
  out << '\n';
  return out.str();
}

std::string RecoveryReportToJson(const RecoveryReport& report) {
  const auto Json = [](std::string_view text) { return internal::EscapeJsonString(text); };
  std::ostringstream out;
  out << "{\"dry_run\":" << (report.dry_run ? "true" : "false")
      << ",\"log_damaged\":" << (report.log_damaged ? "true" : "false")
      << ",\"converged\":" << (report.Converged() ? "true" : "false")
      << ",\"committed\":" << report.committed << ",\"rolled_back\":" << report.rolled_back
      << ",\"already_done\":" << report.already_done << ",\"failed\":" << report.failed
      << ",\"foreign\":" << report.foreign << ",\"in_flight\":" << report.in_flight
      << ",\"orphans_deferred\":" << report.orphans_deferred
      << ",\"awaiting_agents\":" << report.awaiting_agents
      << ",\"heuristics_open\":" << report.heuristics_open
      << ",\"end_records_written\":" << report.end_records_written
      << ",\"decisions_still_open\":" << report.decisions_still_open << ",\"unreachable_rms\":[";
  for (size_t i = 0; i < report.unreachable_rms.size(); ++i) {
    out << (i ? "," : "") << '"' << Json(report.unreachable_rms[i]) << '"';
  }
  out << "],\"branches\":[";
  for (size_t i = 0; i < report.branches.size(); ++i) {
    const BranchReport& b = report.branches[i];
    out << (i ? "," : "") << "{\"rm\":\"" << Json(b.rm_name) << "\",\"xid\":\""
        << (b.branch.empty() ? "" : b.branch.ToString()) << "\",\"raw\":\"" << Json(b.raw)
        << "\",\"log_state\":\"" << Json(b.log_state) << "\",\"rm_state\":\""
        << Json(b.rm_state) << "\",\"action\":\"" << RecoveryActionName(b.action)
        << "\",\"reason\":\"" << Json(b.reason) << "\",\"result\":\""
        << Json(b.result.ToString()) << "\"}";
  }
  out << "]}";
  return out.str();
}

}  // namespace xa
