#include "src/recovery/two_phase_recovery.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "src/completion/conclude.h"
#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::internal {
namespace {

constexpr std::string_view kComponent = "recovery";
// Why 2PC's rules leave a three-phase transaction alone.
constexpr std::string_view kLeftToAgents =
    "three-phase commit: its participant agents decide the outcome (presumed abort does not "
    "apply: an agent may have decided commit)";

std::string LogStateOf(const LogRecord& record) {
  return std::string(record.type == RecordType::kPreCommit ? "3PC pre-commit (lsn "
                                                           : "commit decision (lsn ") +
         std::to_string(record.lsn) + ")";
}

}  // namespace

OrphanAge AgeOfOrphan(std::optional<int64_t> begin_micros, int64_t now_micros,
                      std::chrono::milliseconds min_age) {
  OrphanAge result;
  if (!begin_micros || *begin_micros < 0) return result;
  int64_t age = 0;
  if (__builtin_sub_overflow(now_micros, *begin_micros, &age) || age < 0) age = 0;
  result.age_micros = age;
  int64_t min_age_micros = 0;
  if (min_age.count() > 0 &&
      __builtin_mul_overflow(min_age.count(), int64_t{1000}, &min_age_micros)) {
    return result;  // longer than any age can be
  }
  result.old_enough = age >= min_age_micros;
  return result;
}

RecoveryPlan TwoPhaseRecovery::Plan(const PassInputs& in, const std::set<Xid>& claimed) {
  RecoveryPlan plan;
  RecoveryReport& report = plan.report;
  const LogState& state = *in.state;
  auto add = [&](BranchReport branch) { return plan.AddBranch(std::move(branch)); };

  // Commit decisions without an end record.
  for (const auto& [global, record] : state.open_decisions) {
    if (claimed.count(global) != 0) continue;
    if (record.protocol == Protocol::kThreePhase) {
      // A 3PC pre-commit is no decision, and even a 3PC commit decision is finished with the
      // participant agents, which may be finishing it right now with fenced sessions.
      for (const Participant& p : record.participants) {
        add(BranchReport{p.rm_name, p.branch, "", LogStateOf(record), "",
                         RecoveryAction::kLeaveAlone, std::string(kLeftToAgents), Status()});
        ++report.awaiting_agents;
      }
      continue;
    }
    plan.claimed.insert(global);
    PlannedTransaction& transaction = plan.transactions[global];
    transaction.decision = Decision::kCommit;
    transaction.logged_decision = true;
    for (const Participant& p : record.participants) {
      BranchReport branch{p.rm_name, p.branch, "", LogStateOf(record), "",
                          RecoveryAction::kLeaveAlone, "", Status()};
      const ScannedRm* scan = in.Scan(p.rm_name);
      if (in.InFlight(global)) {
        branch.rm_state = "not scanned";
        branch.reason = "in flight: its transaction manager is still completing it";
        ++report.in_flight;
      } else if (scan == nullptr) {
        branch.rm_state = "unknown resource manager";
        branch.reason = "resource manager '" + p.rm_name +
                        "' is not configured: add it to the configuration so this committed "
                        "transaction can be finished";
      } else if (!scan->status.ok()) {
        branch.rm_state = "unreachable: " + scan->status.ToString();
        branch.reason = "retry when the resource manager is reachable again";
      } else if (scan->prepared.count(p.branch) != 0) {
        branch.rm_state = "prepared";
        branch.action = RecoveryAction::kCommit;
        branch.reason = "the log holds a commit decision";
        size_t index = add(std::move(branch));
        plan.calls.push_back({index, p.rm_name, global, Decision::kCommit});
        transaction.branches.push_back(index);
        continue;
      } else {
        branch.rm_state = "not prepared";
        branch.action = RecoveryAction::kAlreadyDone;
        branch.reason = "committed before the crash (the RM no longer holds it)";
        ++report.already_done;
        size_t index = add(std::move(branch));
        plan.states[index].end = BranchEnd::kCommitted;
        transaction.branches.push_back(index);
        continue;
      }
      transaction.branches.push_back(add(std::move(branch)));  // pending: not this pass
    }
  }

  // Prepared branches with no decision: ours are presumed aborted, others are not ours.
  const uint32_t node_id = in.options->node_id;
  std::set<Xid> still_young;
  for (const ScannedRm& scan : in.scans) {
    if (!scan.status.ok()) continue;
    for (const Xid& xid : scan.prepared) {
      Xid global = xid.Global();
      if (state.open_decisions.count(global) != 0 || claimed.count(global) != 0) continue;
      BranchReport branch{scan.name, xid, "", "no decision", "prepared",
                          RecoveryAction::kLeaveAlone, "", Status()};
      // A three-phase branch of ours with no record is presumed aborted like any other: no
      // agent can be PRE (PreCommit follows a durable pre-commit record, which the 3PC module
      // would have claimed), so every termination round aborts it too, and an agent that
      // recorded WAIT finds it finished ("unknown Xid") when it rolls back.
      if (xid.IsOwnedBy(node_id) && xid.GeneratedProtocol() == Protocol::kMarkerCommit) {
        // The marker module claims these; presumed abort must never reach one (its marker
        // branch may have committed).
        branch.reason = "marker commit: settled by its marker row, not by presumed abort";
        ++report.orphans_deferred;
      } else if (!xid.IsOwnedBy(node_id)) {
        branch.reason = xid.IsGeneratedByXa()
                            ? "foreign: made by xa node " + std::to_string(*xid.NodeId())
                            : "foreign: format ID " + std::to_string(xid.format_id()) +
                                  " is not an xa transaction of this node";
        ++report.foreign;
      } else if (in.InFlight(global)) {
        branch.reason = "in flight: its transaction is still running in this process";
        ++report.in_flight;
      } else if (LeftForTheOperator(state, global, branch)) {
        // Its fate was reported as a heuristic (e.g. a commit answered XAER_RMERR).
        ++report.orphans_deferred;
      } else if (state.damaged) {
        branch.reason = "log damaged: refusing to presume abort (" + state.damage_report + ")";
        ++report.orphans_deferred;
      } else {
        const OrphanAge age =
            AgeOfOrphan(xid.BeginTimeMicros(), in.now_micros, in.options->orphan_min_age);
        if (age.old_enough || seen_orphans_.count(xid) != 0) {
          branch.action = RecoveryAction::kRollback;
          branch.reason = age.old_enough
                              ? "presumed abort: no commit decision, older than the timeout"
                              : "presumed abort: no commit decision, seen by an earlier pass";
          size_t index = add(std::move(branch));
          plan.calls.push_back({index, scan.name, global, Decision::kRollback});
          PlannedTransaction& transaction = plan.transactions[global];
          transaction.decision = Decision::kRollback;
          transaction.branches.push_back(index);
          continue;
        }
        branch.reason = "no decision yet, " +
                        (age.age_micros ? std::to_string(*age.age_micros / 1000) + " ms old"
                                        : std::string("age unknown (no plausible begin time)")) +
                        ": rolled back by a later pass unless it commits";
        still_young.insert(xid);
        ++report.orphans_deferred;
      }
      add(std::move(branch));
    }
    for (const UnparsedBranch& entry : scan.unparsed) {
      add(BranchReport{scan.name, Xid(), entry.raw, "no decision", "prepared",
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
  return plan;
}

void TwoPhaseRecovery::Execute(RecoveryPlan& plan, const PassContext& context) {
  ExecuteCommitsAndRollbacks(plan, context);
}

void ExecuteCommitsAndRollbacks(RecoveryPlan& plan, const PassContext& context) {
  RecoveryReport& report = plan.report;
  const RecoveryOptions& options = *context.options;
  const size_t total_calls = plan.calls.size();

  // Spread each RM's calls over all its sessions, each session on its own thread.
  std::map<std::string, std::vector<ResourceManager*>> pools;
  for (ResourceManager* rm : context.sessions) pools[rm->name()].push_back(rm);
  std::map<std::string, std::vector<PlannedCall*>> calls_by_rm;
  for (PlannedCall& call : plan.calls) calls_by_rm[call.rm_name].push_back(&call);
  std::vector<std::pair<ResourceManager*, std::vector<PlannedCall*>>> work;
  for (const auto& [rm_name, list] : calls_by_rm) {
    const std::vector<ResourceManager*>& pool = pools[rm_name];
    if (pool.empty()) continue;  // planned from a scan, so configured: cannot happen
    size_t first = work.size();
    for (ResourceManager* rm : pool) work.emplace_back(rm, std::vector<PlannedCall*>());
    for (size_t i = 0; i < list.size(); ++i) {
      work[first + i % pool.size()].second.push_back(list[i]);
    }
  }

  std::atomic<size_t> done{0};
  std::atomic<bool> first_action{true};
  std::mutex report_mu;  // guards report and plan.states below
  auto run_calls = [&](ResourceManager* rm, const std::vector<PlannedCall*>& list) {
    if (!list.empty()) {
      // A pool session other than the scanned one may not be connected yet; a failure shows
      // in the calls below.
      rm->Open().IgnoreError();
    }
    for (PlannedCall* call : list) {
      const Xid& xid = report.branches[call->report_index].branch;  // stable: no more push_back
      const bool commit = call->decision == Decision::kCommit;
      Status s = commit ? rm->Commit(xid, CommitMode::kTwoPhase) : rm->Rollback(xid);
      if (first_action.exchange(false)) XA_CRASH_POINT(kRecoveryAfterFirstAction);
      XA_CRASH_POINT(kRecoveryAfterAction);
      std::lock_guard<std::mutex> guard(report_mu);
      BranchState& state = plan.states[call->report_index];
      // A commit comes from a decision in the log, which the crashed process may have begun to
      // carry out; every branch acted on was found prepared by the scan.
      state.history = {/*maybe_applied=*/commit, /*maybe_prepared=*/true};
      BranchReading reading = state.Apply(FinishCallFor(call->decision), s);
      BranchReport& branch = report.branches[call->report_index];
      branch.result = s;
      if (reading.end == BranchEnd::kPending) {
        ++report.failed;
        XA_LOG_XID(kWarning, kComponent, xid)
            << DecisionName(call->decision) << " on " << rm->name()
            << " failed, will retry on the next pass: " << s.ToString();
      } else if (IsHeuristic(reading.end)) {
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
      size_t n = done.fetch_add(1) + 1;
      if (options.progress) options.progress(n, total_calls);
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < work.size(); ++i) {
    threads.emplace_back(run_calls, work[i].first, std::cref(work[i].second));
  }
  if (!work.empty()) run_calls(work[0].first, work[0].second);
  for (auto& t : threads) t.join();

  // Conclude each transaction: heuristic record, then Forget(), then the end record.
  std::map<Xid, std::vector<const PlannedCall*>> calls_of;
  for (const PlannedCall& call : plan.calls) calls_of[call.global].push_back(&call);
  for (const auto& [global, transaction] : plan.transactions) {
    std::vector<const BranchState*> at_conclusion;
    for (size_t i : transaction.branches) at_conclusion.push_back(&plan.states[i]);
    Conclusion conclusion = Conclude(transaction.decision, at_conclusion);
    bool may_forget = true;
    if (conclusion.record_heuristic) {
      Status appended = AppendRecoveryRecord(
          context.log, HeuristicRecord(global, Protocol::kTwoPhase, conclusion));
      if (!appended.ok()) {
        // Without the record no operator would hear of it: the RMs keep their heuristic state
        // (no Forget) so that the next pass meets it again.
        may_forget = false;
        XA_LOG_XID(kError, kComponent, global)
            << "cannot record heuristic outcome " << OutcomeName(conclusion.outcome) << ": "
            << appended.ToString();
      }
    }
    for (const PlannedCall* call : calls_of[global]) {
      if (!plan.states[call->report_index].forget || !may_forget) continue;
      ResourceManager* rm = pools[call->rm_name].front();
      const Xid& xid = plan.states[call->report_index].xid;
      Status forgotten = rm->Forget(xid);
      if (!forgotten.ok() && forgotten.code() != Code::kNoTa) {
        XA_LOG_XID(kWarning, kComponent, xid)
            << "forget on " << rm->name() << ": " << forgotten.ToString();
      }
    }
    if (!transaction.logged_decision) continue;
    if (!conclusion.finished) {
      ++report.decisions_still_open;
      continue;
    }
    if (context.log == nullptr) continue;  // finished on every RM; the damaged log keeps it
    EndFinishedDecision(*context.log, global, report);
  }
}

}  // namespace xa::internal
