#include "src/tm/tcc_coordinator.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::internal {
namespace {

uint32_t InlineAttempts(const RetryPolicy& policy) {
  return policy.max_attempts == 0 ? 1 : policy.max_attempts;
}

bool TimedOut(const TccContext& txn, Clock& clock) {
  return txn.deadline != Clock::kNoDeadline && clock.SteadyNow() > txn.deadline;
}

// The first pending branch's reason, for a caller told that completion continues.
Status FirstPending(const std::vector<TccBranch>& branches) {
  for (const TccBranch& b : branches) {
    if (b.end == TccBranchEnd::kPending) return b.last;
  }
  return Status::Ok();
}

}  // namespace

TccCoordinator::TccCoordinator(const Services* services)
    : services_(services),
      participants_(services->options->tcc.participants),
      retrier_(RetrierOptions{services->clock, "tcc", 0}) {}

TccCoordinator::~TccCoordinator() { Stop(); }

void TccCoordinator::Start() { retrier_.Start(); }

void TccCoordinator::Stop() { retrier_.Stop(); }

Status TccCoordinator::Enlist(TccContext& txn, std::string_view participant,
                              std::string payload) const {
  auto it = participants_.find(std::string(participant));
  if (it == participants_.end() || it->second == nullptr) {
    return Status(Code::kConfig, "TCC participant '" + std::string(participant) +
                                     "' is not registered in TransactionManagerOptions::tcc: "
                                     "register it (recovery needs it to finish the transaction "
                                     "after a crash)");
  }
  if (payload.size() > kMaxTccPayloadBytes) {
    return Status(Code::kInval, "the payload for TCC participant '" + std::string(participant) +
                                    "' is " + std::to_string(payload.size()) +
                                    " bytes, above the limit of " +
                                    std::to_string(kMaxTccPayloadBytes) +
                                    ": pass a reference to the data instead");
  }
  size_t total = payload.size();
  for (const TccBranch& b : txn.branches) total += b.payload.size();
  if (total > kMaxTccTransactionPayloadBytes) {
    return Status(Code::kInval, "the payloads of TCC transaction " + txn.xid.ToString() +
                                    " would add up to " + std::to_string(total) +
                                    " bytes with this one for '" + std::string(participant) +
                                    "', above the limit of " +
                                    std::to_string(kMaxTccTransactionPayloadBytes) +
                                    ": pass references to the data instead");
  }
  if (txn.branches.size() >= kMaxTccParticipants) {
    return Status(Code::kInval, "TCC transaction " + txn.xid.ToString() + " already has " +
                                    std::to_string(kMaxTccParticipants) +
                                    " participants, the most one may enlist");
  }
  TccBranch branch;
  branch.participant = std::string(participant);
  branch.branch = txn.xid.WithBranch(static_cast<uint16_t>(txn.branches.size()));
  branch.payload = std::move(payload);
  txn.branches.push_back(std::move(branch));
  return Status::Ok();
}

Outcome TccCoordinator::Commit(TccContext& txn) {
  const Xid& xid = txn.xid;
  if (TimedOut(txn, *services_->clock)) {
    MetricsRegistry::Add(services_->metrics->timeouts);
    txn.last_status = Status(Code::kRbTimeout, "TCC transaction " + xid.ToString() +
                                                   " reached Commit() past its timeout: "
                                                   "cancelled before any Try");
    return Outcome::kRolledBack;
  }

  // 1. Whom to cancel after a crash, before anyone can have reserved anything.
  Result<uint64_t> lsn = services_->log->Append(TccRecord(RecordType::kTccTry, xid, txn.branches));
  if (!lsn.ok()) {
    txn.last_status = lsn.status().WithContext(
        "the TCC participants could not be logged before the first Try, so none was called");
    XA_LOG_XID(kError, "tcc", xid) << txn.last_status.ToString();
    return Outcome::kRolledBack;
  }
  XA_CRASH_POINT(kTccAfterTryRecord);
  XA_LOG_XID(kDebug, "tcc", xid) << "participants logged at lsn " << *lsn << "; trying "
                                 << txn.branches.size();

  // 2. Every Try, in parallel.
  services_->in_flight->MarkPrepareStarted(xid, services_->clock->SteadyNow());
  std::vector<TccResult> tries(txn.branches.size());
  std::atomic<size_t> done{0};
  services_->executor->RunAll(txn.branches.size(), [&](size_t i) {
    TccBranch& b = txn.branches[i];
    TccParticipant& participant = *participants_.at(b.participant);
    tries[i] = CallParticipant(participant, &TccParticipant::Try, xid, b);
    XA_LOG_XID(kDebug, "tcc", b.branch) << "try on '" << b.participant
                                        << "': " << TccReplyName(tries[i].reply);
    if (tries[i].reply == TccReply::kDone && done.fetch_add(1) == 0) {
      XA_CRASH_POINT(kTccAfterFirstTry);
    }
  });
  for (size_t i = 0; i < tries.size(); ++i) {
    if (tries[i].reply == TccReply::kDone) continue;
    const bool refused = tries[i].reply == TccReply::kRefused;
    return Cancel(txn, Status(refused ? Code::kRbRollback : Code::kRbCommFail,
                              "the Try of participant '" + txn.branches[i].participant + "' (" +
                                  txn.branches[i].branch.ToString() + ") " +
                                  (refused ? "was refused: " : "failed: ") + tries[i].detail));
  }
  if (TimedOut(txn, *services_->clock)) {
    MetricsRegistry::Add(services_->metrics->timeouts);
    return Cancel(txn, Status(Code::kRbTimeout, "the Trys of TCC transaction " + xid.ToString() +
                                                    " ended past its timeout"));
  }
  XA_CRASH_POINT(kTccAfterAllTried);

  // 3. The decision.
  Clock::SteadyTime write_start = services_->clock->SteadyNow();
  lsn = services_->log->Append(TccRecord(RecordType::kTccConfirm, xid, txn.branches));
  services_->metrics->decision_write.Record(services_->clock->SteadyNow() - write_start);
  if (!lsn.ok()) {
    MetricsRegistry::Add(services_->metrics->decision_write_failures);
    txn.last_status = lsn.status().WithContext(
        "the confirm decision may or may not have reached the log, and the log takes no more "
        "records: restart the process; its recovery confirms every participant if the decision "
        "is in the log and cancels every one otherwise");
    txn.handed_off = true;  // stays in flight: this process must not finish it either way
    XA_LOG_XID(kError, "tcc", xid) << txn.last_status.ToString();
    return Outcome::kUnknown;
  }
  MetricsRegistry::Add(services_->metrics->decision_records);
  XA_CRASH_POINT(kTccAfterConfirmRecord);
  XA_LOG_XID(kDebug, "tcc", xid) << "confirm decision durable at lsn " << *lsn;
  return Finish(txn, TccDecision::kConfirm, Status::Ok());
}

Outcome TccCoordinator::Cancel(TccContext& txn, Status reason) {
  XA_LOG_XID(kInfo, "tcc", txn.xid) << "cancelling: " << reason.ToString();
  return Finish(txn, TccDecision::kCancel, std::move(reason));
}

void TccCoordinator::FinishInline(const Xid& global, TccDecision decision,
                                  TccBranch& branch) const {
  const RetryPolicy& policy = services_->options->inline_retry;
  for (uint32_t attempt = 1;; ++attempt) {
    AttemptFinish(participants_, global, decision, branch);
    XA_LOG_XID(kDebug, "tcc", branch.branch)
        << TccDecisionName(decision) << " on '" << branch.participant
        << "': " << (branch.end == TccBranchEnd::kPending ? branch.last.ToString() : "finished");
    if (branch.end != TccBranchEnd::kPending || attempt >= InlineAttempts(policy)) return;
    MetricsRegistry::Add(services_->metrics->phase2_retries);
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
  }
}

Outcome TccCoordinator::Finish(TccContext& txn, TccDecision decision, Status reason) {
  const bool confirm = decision == TccDecision::kConfirm;
  Clock::SteadyTime start = services_->clock->SteadyNow();
  std::atomic<size_t> finished{0};
  services_->executor->RunAll(txn.branches.size(), [&](size_t i) {
    FinishInline(txn.xid, decision, txn.branches[i]);
    if (txn.branches[i].end != TccBranchEnd::kPending && finished.fetch_add(1) == 0) {
      if (confirm) {
        XA_CRASH_POINT(kTccAfterFirstConfirm);
      } else {
        XA_CRASH_POINT(kTccAfterFirstCancel);
      }
    }
  });
  if (confirm) services_->metrics->commit_phase.Record(services_->clock->SteadyNow() - start);

  TccConclusion conclusion = ConcludeTcc(txn.xid, decision, txn.branches);
  if (!conclusion.finished) {
    txn.handed_off = true;
    txn.last_status = reason.ok() ? FirstPending(txn.branches) : reason;
    Submit(txn.xid, decision, txn.branches, services_->options->background_retry.BackoffBefore(1),
           confirm ? "confirm" : "cancel");
    return confirm ? Outcome::kCommittedCompletionPending : Outcome::kRolledBack;
  }
  if (!Close(txn.xid, conclusion)) {
    // Nobody will call the participants again from here; recovery, at its next pass, will, and
    // records the heuristic then.
    txn.handed_off = true;
    services_->in_flight->Remove(txn.xid);
  }
  if (conclusion.record_heuristic) {
    txn.last_status = Status(Code::kHeuristicMixed, conclusion.heuristic.reason);
  } else {
    txn.last_status = reason;
  }
  return conclusion.outcome;
}

bool TccCoordinator::Close(const Xid& global, const TccConclusion& conclusion) const {
  if (conclusion.record_heuristic) {
    Result<uint64_t> lsn = services_->log->Append(conclusion.heuristic);
    MetricsRegistry::Add(services_->metrics->heuristic_records);
    if (!lsn.ok()) {
      XA_LOG_XID(kError, "tcc", global)
          << "heuristic outcome " << OutcomeName(conclusion.outcome)
          << " could NOT be recorded in the decision log (" << lsn.status().ToString()
          << "); the transaction stays open for recovery: " << conclusion.heuristic.reason;
      return false;
    }
    XA_LOG_XID(kError, "tcc", global)
        << "heuristic outcome " << OutcomeName(conclusion.outcome) << " recorded at lsn " << *lsn
        << " until an operator clears it: " << conclusion.heuristic.reason;
  }
  services_->WriteEnd(global, Protocol::kTcc);
  return true;
}

void TccCoordinator::Submit(Xid global, TccDecision decision, std::vector<TccBranch> branches,
                            std::chrono::microseconds first_delay, const char* origin) {
  services_->in_flight->Add(global);  // no-op when the coordinator registered it
  services_->in_flight->MarkBackground(global);
  MetricsRegistry::Add(services_->metrics->handed_to_background);
  services_->metrics->background_pending.fetch_add(1, std::memory_order_relaxed);
  XA_LOG_XID(kInfo, "tcc", global)
      << "background " << TccDecisionName(decision) << " (" << origin << ") of "
      << std::count_if(branches.begin(), branches.end(),
                       [](const TccBranch& b) { return b.end == TccBranchEnd::kPending; })
      << " participant(s): " << FirstPending(branches).ToString();

  struct Job {
    Xid global;
    TccDecision decision;
    std::vector<TccBranch> branches;
  };
  auto job = std::make_shared<Job>(Job{std::move(global), decision, std::move(branches)});
  RetryJob retry;
  retry.name = "background " + std::string(TccDecisionName(decision)) + " of " +
               job->global.ToString() + " (" + origin + ")";
  retry.schedule = RetryForever(services_->options->background_retry);
  retry.attempt = [this, job] {
    for (TccBranch& b : job->branches) {
      if (b.end != TccBranchEnd::kPending) continue;
      AttemptFinish(participants_, job->global, job->decision, b);
      if (b.end == TccBranchEnd::kPending) MetricsRegistry::Add(services_->metrics->phase2_retries);
    }
    Status pending = FirstPending(job->branches);
    return pending.ok() ? JobOutcome::Done() : JobOutcome::RetryLater(pending);
  };
  retry.on_end = [this, job](JobEnd end, const Status& last) {
    services_->metrics->background_pending.fetch_sub(1, std::memory_order_relaxed);
    if (end == JobEnd::kDone) {
      TccConclusion conclusion = ConcludeTcc(job->global, job->decision, job->branches);
      Close(job->global, conclusion);
      MetricsRegistry::Add(services_->metrics->background_completed);
      XA_LOG_XID(kInfo, "tcc", job->global)
          << "background " << TccDecisionName(job->decision) << " finished: "
          << OutcomeName(conclusion.outcome);
    } else {
      XA_LOG_XID(kWarning, "tcc", job->global)
          << "background " << TccDecisionName(job->decision) << " " << JobEndName(end)
          << " with participants pending (" << last.ToString()
          << "); the transaction stays open in the log for recovery";
    }
    services_->in_flight->Remove(job->global);
  };
  retrier_.Submit(std::move(retry), first_delay);
}

void TccCoordinator::SubmitRecovered(const LogRecord& record) {
  const TccDecision decision =
      record.type == RecordType::kTccConfirm ? TccDecision::kConfirm : TccDecision::kCancel;
  Submit(record.xid, decision, TccBranchesOf(record),
         services_->options->background_retry.BackoffBefore(1), "recovery");
}

Status TccCoordinator::WaitIdle(std::chrono::milliseconds timeout) {
  if (retrier_.WaitIdle(timeout)) return Status::Ok();
  return Status(Code::kTimeout, std::to_string(retrier_.pending()) +
                                    " TCC transaction(s) still being confirmed or cancelled in "
                                    "the background (a participant unreachable?)");
}

}  // namespace xa::internal
