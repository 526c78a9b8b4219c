#include "xa/recovery.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "src/completion/branch_outcome.h"
#include "src/logging.h"
#include "src/testing/crash_points.h"

namespace xa {
namespace {

constexpr std::string_view kComponent = "recovery";

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct RmScan {
  ResourceManager* rm = nullptr;
  Status status;                   // of Open + Recover
  RecoverScan scan;
  std::set<Xid> prepared;          // scan.prepared as a set
};

// One RM call that a pass will make.
struct PlannedCall {
  size_t report_index;  // into RecoveryReport::branches
  Xid global;
  internal::Decision decision;
};

// Scans every RM, each from its own thread.
std::vector<RmScan> ScanAll(const std::vector<ResourceManager*>& rms) {
  std::vector<RmScan> scans(rms.size());
  auto scan_one = [&](size_t i) {
    scans[i].rm = rms[i];
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
    scans[i].scan = std::move(result).value();
    scans[i].prepared.insert(scans[i].scan.prepared.begin(), scans[i].scan.prepared.end());
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < rms.size(); ++i) threads.emplace_back(scan_one, i);
  if (!rms.empty()) scan_one(0);
  for (auto& t : threads) t.join();
  return scans;
}

std::string EscapeJson(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
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
  }
  return "unknown-action";
}

RecoveryEngine::RecoveryEngine(DecisionLog& log, std::vector<ResourceManager*> rms,
                               RecoveryOptions options)
    : log_(&log), rms_(std::move(rms)), options_(std::move(options)) {}

RecoveryEngine::RecoveryEngine(LogState damaged_state, std::vector<ResourceManager*> rms,
                               RecoveryOptions options)
    : log_(nullptr),
      fixed_state_(std::move(damaged_state)),
      rms_(std::move(rms)),
      options_(std::move(options)) {
  // Whatever the state says, a log we cannot append to is treated as damaged.
  fixed_state_.damaged = true;
  if (fixed_state_.damage_report.empty()) fixed_state_.damage_report = "log opened read-only";
}

void RecoveryEngine::SetResourceManagers(std::vector<ResourceManager*> rms) {
  std::lock_guard<std::mutex> lock(mu_);
  rms_ = std::move(rms);
}

Status RecoveryEngine::AppendRecord(const LogRecord& record) {
  if (log_ == nullptr) return Status::Ok();
  // An end record may be lost harmlessly (the next pass repeats phase 2 and finds the branches
  // done), so it rides on the next durable append, or on closing the log.
  if (record.type == RecordType::kEnd) return log_->AppendLazy(record);
  Result<uint64_t> appended = log_->Append(record);
  return appended.ok() ? Status::Ok() : appended.status();
}

Result<RecoveryReport> RecoveryEngine::Run() {
  std::lock_guard<std::mutex> lock(mu_);
  if (rms_.empty()) {
    return Status(Code::kConfig, "recovery has no resource manager to scan: configure every RM "
                                 "that transactions of this node enlist");
  }
  RecoveryReport report;
  report.dry_run = options_.dry_run;
  report.log_read_only = log_ == nullptr;

  // 1. Scan first, then read the log: a decision appended while we scan is then seen, so a
  //    branch that is being committed right now is never mistaken for an orphan.
  // Sessions with the same name are one RM: scan it once, through its first session.
  std::vector<ResourceManager*> distinct;
  for (ResourceManager* rm : rms_) {
    bool seen = std::any_of(distinct.begin(), distinct.end(),
                            [&](ResourceManager* d) { return d->name() == rm->name(); });
    if (!seen) distinct.push_back(rm);
  }
  std::vector<RmScan> scans = ScanAll(distinct);
  XA_CRASH_POINT(kRecoveryAfterScan);
  LogState state = log_ != nullptr ? log_->State() : fixed_state_;
  report.log_damaged = state.damaged;

  std::unordered_map<std::string, RmScan*> by_name;
  for (RmScan& scan : scans) {
    by_name[scan.rm->name()] = &scan;
    if (!scan.status.ok()) {
      report.unreachable_rms.push_back(scan.rm->name());
      XA_LOG(kWarning, kComponent) << "resource manager '" << scan.rm->name()
                                   << "' cannot be scanned: " << scan.status.ToString();
    }
  }
  auto in_flight = [&](const Xid& global) {
    return options_.in_flight && options_.in_flight(global);
  };

  // Per RM, the calls to make; per decision, how many of its branches are not done yet.
  std::unordered_map<ResourceManager*, std::vector<PlannedCall>> calls;
  std::map<Xid, int> pending_branches;
  auto add = [&](BranchReport branch) {
    report.branches.push_back(std::move(branch));
    return report.branches.size() - 1;
  };

  // 2. Commit decisions without an end record (a 3PC pre-commit counts as a decision to commit:
  //    every participant voted yes before it was written).
  std::set<Xid> decided;
  for (const auto& [global, record] : state.open_decisions) {
    decided.insert(global);
    int& pending = pending_branches[global];
    std::string log_state = std::string(record.type == RecordType::kPreCommit
                                            ? "3PC pre-commit (lsn "
                                            : "commit decision (lsn ") +
                            std::to_string(record.lsn) + ")";
    for (const Participant& p : record.participants) {
      BranchReport branch{p.rm_name, p.branch, "", log_state, "", RecoveryAction::kLeaveAlone,
                          "", Status()};
      auto found = by_name.find(p.rm_name);
      if (in_flight(global)) {
        branch.rm_state = "not scanned";
        branch.reason = "in flight: its transaction manager is still completing it";
        ++report.in_flight;
        ++pending;
      } else if (found == by_name.end()) {
        branch.rm_state = "unknown resource manager";
        branch.reason = "resource manager '" + p.rm_name +
                        "' is not configured: add it to the configuration so this committed "
                        "transaction can be finished";
        ++pending;
      } else if (!found->second->status.ok()) {
        branch.rm_state = "unreachable: " + found->second->status.ToString();
        branch.reason = "retry when the resource manager is reachable again";
        ++pending;
      } else if (found->second->prepared.count(p.branch) != 0) {
        branch.rm_state = "prepared";
        branch.action = RecoveryAction::kCommit;
        branch.reason = "the log holds a commit decision";
        ++pending;
        size_t index = add(std::move(branch));
        calls[found->second->rm].push_back({index, global, internal::Decision::kCommit});
        continue;
      } else {
        branch.rm_state = "not prepared";
        branch.action = RecoveryAction::kAlreadyDone;
        branch.reason = "committed before the crash (the RM no longer holds it)";
        ++report.already_done;
      }
      add(std::move(branch));
    }
  }

  // 3. Prepared branches with no decision: ours are presumed aborted, others are not ours.
  const int64_t now = NowMicros();
  std::set<Xid> still_young;
  for (RmScan& scan : scans) {
    if (!scan.status.ok()) continue;
    for (const Xid& xid : scan.scan.prepared) {
      Xid global = xid.Global();
      if (decided.count(global) != 0) continue;
      BranchReport branch{scan.rm->name(), xid, "", "no decision", "prepared",
                          RecoveryAction::kLeaveAlone, "", Status()};
      if (!xid.IsOwnedBy(options_.node_id)) {
        branch.reason = xid.IsGeneratedByXa()
                            ? "foreign: made by xa node " + std::to_string(*xid.NodeId())
                            : "foreign: format ID " + std::to_string(xid.format_id()) +
                                  " is not an xa transaction of this node";
        ++report.foreign;
      } else if (in_flight(global)) {
        branch.reason = "in flight: its transaction is still running in this process";
        ++report.in_flight;
      } else if (auto heuristic = state.open_heuristics.find(global);
                 heuristic != state.open_heuristics.end()) {
        // Its fate was reported as a heuristic (e.g. a commit answered XAER_RMERR): presuming
        // abort now could undo a commit decision behind the operator's back.
        branch.log_state = "heuristic " + std::string(OutcomeName(heuristic->second.outcome)) +
                           " (lsn " + std::to_string(heuristic->second.lsn) + ")";
        branch.reason = "awaiting an operator: the transaction has an open heuristic record; "
                        "finish it with `force` and clear the heuristic";
        ++report.orphans_deferred;
      } else if (state.damaged) {
        branch.reason = "log damaged: refusing to presume abort (" + state.damage_report + ")";
        ++report.orphans_deferred;
      } else {
        int64_t age_us = now - xid.BeginTimeMicros().value_or(now);
        auto min_age_us =
            std::chrono::duration_cast<std::chrono::microseconds>(options_.orphan_min_age).count();
        if (age_us >= min_age_us || seen_orphans_.count(xid) != 0) {
          branch.action = RecoveryAction::kRollback;
          branch.reason = age_us >= min_age_us
                              ? "presumed abort: no commit decision, older than the timeout"
                              : "presumed abort: no commit decision, seen by an earlier pass";
          size_t index = add(std::move(branch));
          calls[scan.rm].push_back({index, global, internal::Decision::kRollback});
          continue;
        }
        branch.reason = "no decision yet, " + std::to_string(age_us / 1000) +
                        " ms old: rolled back by a later pass unless it commits";
        still_young.insert(xid);
        ++report.orphans_deferred;
      }
      add(std::move(branch));
    }
    for (const UnparsedBranch& entry : scan.scan.unparsed) {
      add(BranchReport{scan.rm->name(), Xid(), entry.raw, "no decision", "prepared",
                       RecoveryAction::kLeaveAlone, "foreign: " + entry.reason, Status()});
      ++report.foreign;
    }
  }
  for (const auto& [global, record] : state.open_heuristics) {
    std::string rm = record.participants.empty() ? "" : record.participants.front().rm_name;
    Xid branch = record.participants.empty() ? global : record.participants.front().branch;
    add(BranchReport{rm, branch, "", std::string("heuristic ") +
                     std::string(OutcomeName(record.outcome)) + " (lsn " +
                     std::to_string(record.lsn) + ")", "",
                     RecoveryAction::kReportHeuristic,
                     "awaiting an operator: " + record.reason, Status()});
    ++report.heuristics_open;
  }
  // Only branches seen in this pass stay remembered, so the set stays bounded.
  seen_orphans_ = std::move(still_young);

  size_t total_calls = 0;
  for (auto& [rm, list] : calls) total_calls += list.size();
  if (options_.dry_run) {
    for (const auto& [global, pending] : pending_branches) {
      if (pending > 0) ++report.decisions_still_open;
    }
    return report;
  }

  // 4. Act, each RM from its own thread.
  std::atomic<size_t> done{0};
  std::atomic<bool> first_action{true};
  std::mutex report_mu;  // guards report and pending_branches below
  auto run_calls = [&](ResourceManager* rm, std::vector<PlannedCall>& list) {
    if (!list.empty()) {
      // A pool session other than the scanned one may not be connected yet; a failure shows
      // in the calls below.
      rm->Open().IgnoreError();
    }
    for (PlannedCall& call : list) {
      const Xid& xid = report.branches[call.report_index].branch;  // stable: no more push_back
      const bool commit = call.decision == internal::Decision::kCommit;
      Status s = commit ? rm->Commit(xid, CommitMode::kTwoPhase) : rm->Rollback(xid);
      if (first_action.exchange(false)) XA_CRASH_POINT(kRecoveryAfterFirstAction);
      XA_CRASH_POINT(kRecoveryAfterAction);
      // A commit comes from a decision in the log, which the crashed process may have begun to
      // carry out; every branch acted on was found prepared by the scan.
      internal::BranchReading reading = internal::ReadFinishResult(
          internal::FinishCallFor(call.decision), s,
          {/*maybe_applied=*/commit, /*maybe_prepared=*/true});
      std::optional<LogRecord> heuristic;
      {
        std::lock_guard<std::mutex> guard(report_mu);
        BranchReport& branch = report.branches[call.report_index];
        branch.result = s;
        if (reading.end == internal::BranchEnd::kPending) {
          ++report.failed;
          XA_LOG_XID(kWarning, kComponent, xid)
              << internal::DecisionName(call.decision) << " on " << rm->name()
              << " failed, will retry on the next pass: " << s.ToString();
        } else if (internal::IsHeuristic(reading.end)) {
          Outcome outcome = internal::Aggregate(call.decision, {reading.end});
          heuristic = LogRecord{RecordType::kHeuristic, call.global, Protocol::kTwoPhase,
                                {Participant{rm->name(), xid}}, outcome,
                                "recovery: " + s.ToString(), 0, 0};
          ++report.failed;
          XA_LOG_XID(kError, kComponent, xid)
              << "heuristic outcome on " << rm->name() << ": " << s.ToString();
        } else if (s.code() == Code::kNoTa) {
          // The RM no longer knows it: a commit or rollback of an earlier pass, or of the
          // crashed process, landed after the scan. Done.
          branch.action = RecoveryAction::kAlreadyDone;
          ++report.already_done;
        } else {
          ++(commit ? report.committed : report.rolled_back);
          XA_LOG_XID(kInfo, kComponent, xid)
              << (commit ? "committed" : "rolled back") << " on " << rm->name() << ": "
              << branch.reason;
        }
        if (commit && internal::IsFinished(reading.end)) --pending_branches[call.global];
      }
      if (heuristic) {
        Status appended = AppendRecord(*heuristic);
        if (!appended.ok()) {
          XA_LOG_XID(kError, kComponent, xid)
              << "cannot record heuristic outcome: " << appended.ToString();
          // Without the record no operator would hear of it: the RM keeps its heuristic state
          // (no Forget) so that the next pass meets it again.
          reading.forget = false;
        }
      }
      if (reading.forget) {
        Status forgotten = rm->Forget(xid);
        if (!forgotten.ok() && forgotten.code() != Code::kNoTa) {
          XA_LOG_XID(kWarning, kComponent, xid)
              << "forget on " << rm->name() << ": " << forgotten.ToString();
        }
      }
      size_t n = done.fetch_add(1) + 1;
      if (options_.progress) options_.progress(n, total_calls);
    }
  };
  // Spread each RM's calls over all its sessions, each session on its own thread.
  std::vector<std::pair<ResourceManager*, std::vector<PlannedCall>>> work;
  for (auto& [scanned, list] : calls) {
    std::vector<ResourceManager*> pool;
    for (ResourceManager* rm : rms_) {
      if (rm->name() == scanned->name()) pool.push_back(rm);
    }
    size_t first = work.size();
    for (ResourceManager* rm : pool) work.emplace_back(rm, std::vector<PlannedCall>());
    for (size_t i = 0; i < list.size(); ++i) {
      work[first + i % pool.size()].second.push_back(list[i]);
    }
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < work.size(); ++i) {
    threads.emplace_back(run_calls, work[i].first, std::ref(work[i].second));
  }
  if (!work.empty()) run_calls(work[0].first, work[0].second);
  for (auto& t : threads) t.join();

  // 5. End records for every decision whose branches are all finished.
  for (const auto& [global, pending] : pending_branches) {
    if (pending > 0) {
      ++report.decisions_still_open;
      continue;
    }
    if (log_ == nullptr) continue;  // finished on every RM; the damaged log keeps its record
    XA_CRASH_POINT(kRecoveryBeforeEndRecord);
    LogRecord end;
    end.type = RecordType::kEnd;
    end.xid = global;
    Status appended = AppendRecord(end);
    if (!appended.ok()) {
      ++report.decisions_still_open;
      ++report.failed;
      XA_LOG_XID(kError, kComponent, global)
          << "cannot write end record: " << appended.ToString();
      continue;
    }
    ++report.end_records_written;
  }
  return report;
}

Result<RecoveryReport> RecoveryEngine::Force(const Xid& global_or_branch, bool commit,
                                             const std::string& reason) {
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
  std::vector<RmScan> scans = ScanAll(rms_);
  RecoveryReport report;
  std::vector<Participant> targets;
  for (RmScan& scan : scans) {
    if (!scan.status.ok()) {
      report.unreachable_rms.push_back(scan.rm->name());
      continue;
    }
    for (const Xid& xid : scan.scan.prepared) {
      bool match = global_or_branch.bqual().empty() ? xid.Global() == global
                                                    : xid == global_or_branch;
      if (match) targets.push_back(Participant{scan.rm->name(), xid});
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
    out << (b.branch.empty() ? "raw:" + b.raw : b.branch.ToString()) << "  rm=" << b.rm_name
        << "  log=" << b.log_state << "  rm-state=" << b.rm_state
        << "  action=" << RecoveryActionName(b.action) << "  reason=" << b.reason;
    if (!b.result.ok()) out << "  result=" << b.result.ToString();
    out << '\n';
  }
  out << (report.dry_run ? "plan: " : "done: ") << report.committed << " committed, "
      << report.rolled_back << " rolled back, " << report.already_done << " already done, "
      << report.failed << " failed, " << report.foreign << " foreign left alone, "
      << report.in_flight << " in flight, " << report.orphans_deferred << " deferred, "
      << report.heuristics_open << " heuristic awaiting an operator, "
      << report.end_records_written << " end records, " << report.decisions_still_open
      << " decisions still open";
  if (report.log_damaged) out << "; LOG DAMAGED: presumed abort refused";
  if (report.log_read_only) out << "; log read-only: no end records written";
  for (const std::string& rm : report.unreachable_rms) out << "; unreachable: " << rm;
  out << '\n';
  return out.str();
}

std::string RecoveryReportToJson(const RecoveryReport& report) {
  std::ostringstream out;
  out << "{\"dry_run\":" << (report.dry_run ? "true" : "false")
      << ",\"log_damaged\":" << (report.log_damaged ? "true" : "false")
      << ",\"converged\":" << (report.Converged() ? "true" : "false")
      << ",\"committed\":" << report.committed << ",\"rolled_back\":" << report.rolled_back
      << ",\"already_done\":" << report.already_done << ",\"failed\":" << report.failed
      << ",\"foreign\":" << report.foreign << ",\"in_flight\":" << report.in_flight
      << ",\"orphans_deferred\":" << report.orphans_deferred
      << ",\"heuristics_open\":" << report.heuristics_open
      << ",\"end_records_written\":" << report.end_records_written
      << ",\"decisions_still_open\":" << report.decisions_still_open << ",\"unreachable_rms\":[";
  for (size_t i = 0; i < report.unreachable_rms.size(); ++i) {
    out << (i ? "," : "") << '"' << EscapeJson(report.unreachable_rms[i]) << '"';
  }
  out << "],\"branches\":[";
  for (size_t i = 0; i < report.branches.size(); ++i) {
    const BranchReport& b = report.branches[i];
    out << (i ? "," : "") << "{\"rm\":\"" << EscapeJson(b.rm_name) << "\",\"xid\":\""
        << (b.branch.empty() ? "" : b.branch.ToString()) << "\",\"raw\":\"" << EscapeJson(b.raw)
        << "\",\"log_state\":\"" << EscapeJson(b.log_state) << "\",\"rm_state\":\""
        << EscapeJson(b.rm_state) << "\",\"action\":\"" << RecoveryActionName(b.action)
        << "\",\"reason\":\"" << EscapeJson(b.reason) << "\",\"result\":\""
        << EscapeJson(b.result.ToString()) << "\"}";
  }
  out << "]}";
  return out.str();
}

}  // namespace xa
