#include "src/recovery/tcc_recovery.h"

#include <atomic>
#include <string>
#include <utility>

#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::internal {
namespace {

std::string LogStateOf(const LogRecord& record) {
  const bool saga = record.protocol == Protocol::kSaga;
  const bool decided = record.type == RecordType::kTccConfirm;
  return std::string(saga ? (decided ? "saga completed (lsn " : "saga steps, not completed (lsn ")
                          : (decided ? "TCC confirm decision (lsn "
                                     : "TCC participants, no decision (lsn ")) +
         std::to_string(record.lsn) + ")";
}

}  // namespace

RecoveryPlan TccRecovery::Plan(const PassInputs& in, const std::set<Xid>& claimed) {
  RecoveryPlan plan;
  planned_.clear();
  const LogState& state = *in.state;
  const TccParticipants& registered = in.options->tcc.participants;
  TccParticipants saga_finishers;  // names only matter here: registered or not
  for (const auto& [name, operation] : in.options->saga.operations) {
    saga_finishers.emplace(name, nullptr);
  }
  for (const auto& [global, record] : state.open_tcc) {
    if (claimed.count(global) != 0) continue;
    plan.claimed.insert(global);
    const bool confirm = record.type == RecordType::kTccConfirm;
    const bool saga = record.protocol == Protocol::kSaga;
    Planned planned{global, confirm ? TccDecision::kConfirm : TccDecision::kCancel, saga,
                    TccBranchesOf(record), {}};
    const TccParticipants& finishers = saga ? saga_finishers : registered;
    std::string leave_alone;  // why this pass makes no call, for every participant
    if (in.InFlight(global)) {
      leave_alone = "in flight: its transaction manager is still finishing it";
    } else if (!confirm && state.damaged) {
      leave_alone = "the log is damaged: a confirm decision may follow the damage, so it is "
                    "not cancelled; repair the log, or confirm or cancel it by hand";
    }
    PlannedTransaction& transaction = plan.transactions[global];
    transaction.decision = confirm ? Decision::kCommit : Decision::kRollback;
    transaction.logged_decision = true;
    bool callable = leave_alone.empty();
    for (const TccBranch& b : planned.branches) {
      BranchReport branch{b.participant, b.branch, "", LogStateOf(record), "TCC participant",
                          RecoveryAction::kLeaveAlone, "", Status()};
      if (!leave_alone.empty()) {
        branch.reason = leave_alone;
      } else if (saga && confirm) {
        branch.action = RecoveryAction::kAlreadyDone;
        branch.reason = "the saga completed: nothing to undo";
      } else if (finishers.count(b.participant) == 0) {
        branch.rm_state = "participant not registered here";
        branch.reason = std::string(saga ? "no compensable operation '" : "no TCC participant '") +
                        b.participant +
                        "' is registered with this recovery: the application's transaction "
                        "manager, which registers it, finishes this transaction";
        callable = false;
      } else if (saga) {
        branch.action = RecoveryAction::kCancel;
        branch.reason = "the saga did not complete: compensate, in reverse order";
      } else {
        branch.action = confirm ? RecoveryAction::kConfirm : RecoveryAction::kCancel;
        branch.reason = confirm ? "the log holds the confirm decision"
                                : "no confirm decision: presumed cancel";
      }
      size_t index = plan.AddBranch(std::move(branch));
      transaction.branches.push_back(index);
      planned.report_index.push_back(index);
    }
    if (!callable && leave_alone.empty()) {
      // All or nothing: no participant is confirmed or cancelled while another cannot be.
      for (size_t index : planned.report_index) {
        BranchReport& branch = plan.report.branches[index];
        if (branch.action == RecoveryAction::kLeaveAlone) continue;
        branch.action = RecoveryAction::kLeaveAlone;
        branch.reason = "waits until every participant of the transaction is registered here";
      }
    }
    if (in.InFlight(global)) {
      plan.report.in_flight += planned.branches.size();
      plan.transactions.erase(global);  // its owner finishes it; not open for this pass
      continue;
    }
    if (callable) planned_.push_back(std::move(planned));
  }
  return plan;
}

void TccRecovery::Execute(RecoveryPlan& plan, const PassContext& context) {
  RecoveryReport& report = plan.report;
  Result<TccParticipants> finishers = FinishersOf(context.options->tcc, context.options->saga);
  if (!finishers.ok()) {
    XA_LOG(kError, "recovery") << "TCC transactions and sagas left open: "
                               << finishers.status().ToString();
    planned_.clear();
  }
  std::atomic<bool> first_action{true};
  for (Planned& planned : planned_) {
    const bool confirm = planned.decision == TccDecision::kConfirm;
    const size_t n = planned.branches.size();
    for (size_t k = 0; k < n; ++k) {
      // A saga's compensations in reverse order; TCC's calls in any order.
      const size_t i = planned.saga ? n - 1 - k : k;
      TccBranch& b = planned.branches[i];
      BranchReport& branch = report.branches[planned.report_index[i]];
      if (planned.saga && confirm) {  // completed: nothing to call
        b.end = TccBranchEnd::kFinished;
        plan.states[planned.report_index[i]].end = BranchEnd::kCommitted;
        ++report.already_done;
        continue;
      }
      AttemptFinish(*finishers, planned.global, planned.decision, b);
      if (first_action.exchange(false)) XA_CRASH_POINT(kRecoveryAfterFirstAction);
      XA_CRASH_POINT(kRecoveryAfterAction);
      branch.result = b.last;
      switch (b.end) {
        case TccBranchEnd::kFinished:
          plan.states[planned.report_index[i]].end =
              confirm ? BranchEnd::kCommitted : BranchEnd::kRolledBack;
          ++(confirm ? report.committed : report.rolled_back);
          break;
        case TccBranchEnd::kRefused:
          plan.states[planned.report_index[i]].end = BranchEnd::kHeuristicHazard;
          branch.action = RecoveryAction::kReportHeuristic;
          break;
        case TccBranchEnd::kPending:
          ++report.failed;
          break;
      }
      if (b.end == TccBranchEnd::kPending) {
        XA_LOG_XID(kWarning, "recovery", b.branch)
            << TccDecisionName(planned.decision) << " on TCC participant '" << b.participant
            << "' not finished: " << b.last.ToString();
      } else {
        XA_LOG_XID(kInfo, "recovery", b.branch)
            << TccDecisionName(planned.decision) << " on TCC participant '" << b.participant
            << "': " << (b.last.ok() ? std::string("done") : b.last.ToString());
      }
      // The earlier steps of a saga wait until this compensation is done.
      if (planned.saga && b.end == TccBranchEnd::kPending) break;
    }
    TccConclusion conclusion = ConcludeTcc(planned.global, planned.decision, planned.branches);
    if (!conclusion.finished) {
      ++report.decisions_still_open;
      continue;
    }
    if (context.log == nullptr) {  // read-only (damaged): nothing can be recorded
      ++report.decisions_still_open;
      continue;
    }
    if (conclusion.record_heuristic) {
      Status recorded = AppendRecoveryRecord(context.log, conclusion.heuristic);
      if (!recorded.ok()) {
        ++report.decisions_still_open;
        ++report.failed;
        XA_LOG_XID(kError, "recovery", planned.global)
            << "cannot record the heuristic outcome " << OutcomeName(conclusion.outcome) << ": "
            << recorded.ToString();
        continue;
      }
      ++report.heuristics_open;
      XA_LOG_XID(kError, "recovery", planned.global)
          << "heuristic outcome " << OutcomeName(conclusion.outcome)
          << " recorded until an operator clears it: " << conclusion.heuristic.reason;
    }
    EndFinishedDecision(*context.log, planned.global, report);
  }
  // Transactions the plan left alone (a participant not registered, damage) stay open.
  for (const auto& [global, transaction] : plan.transactions) {
    bool planned_here = false;
    for (const Planned& p : planned_) planned_here = planned_here || p.global == global;
    if (!planned_here) ++report.decisions_still_open;
  }
  planned_.clear();
}

}  // namespace xa::internal
