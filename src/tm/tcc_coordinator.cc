#include "src/tm/tcc_coordinator.h"

#include <algorithm>
#include <atomic>
#include <optional>
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

// Why `branches` are not all finished: the first pending branch's failure, or, when no pending
// branch has failed yet (a saga's earlier steps wait for a later one), that one waits; OK when
// none is pending.
Status FirstPending(const std::vector<TccBranch>& branches) {
  const TccBranch* waiting = nullptr;
  for (const TccBranch& b : branches) {
    if (b.end != TccBranchEnd::kPending) continue;
    if (!b.last.ok()) return b.last;
    if (waiting == nullptr) waiting = &b;
  }
  if (waiting == nullptr) return Status::Ok();
  return Status(Code::kRetry, "'" + waiting->participant + "' (" + waiting->branch.ToString() +
                                  ") is not finished yet");
}

}  // namespace

TccCoordinator::TccCoordinator(const Services* services, TccParticipants finishers)
    : services_(services),
      participants_(std::move(finishers)),
      retrier_(RetrierOptions{services->clock, "tcc", 0}) {}

TccCoordinator::~TccCoordinator() { Stop(); }

void TccCoordinator::Start() { retrier_.Start(); }

void TccCoordinator::Stop() { retrier_.Stop(); }

Status TccCoordinator::Enlist(TccContext& txn, std::string_view participant,
                              std::string payload) const {
  const bool saga = txn.protocol == Protocol::kSaga;
  const bool registered =
      saga ? services_->options->saga.operations.count(std::string(participant)) != 0
           : services_->options->tcc.participants.count(std::string(participant)) != 0;
  if (!registered) {
    return Status(Code::kConfig,
                  std::string(saga ? "compensable operation '" : "TCC participant '") +
                      std::string(participant) + "' is not registered in "
                      "TransactionManagerOptions::" + (saga ? "saga" : "tcc") +
                      ": register it (recovery needs it to finish the transaction after a "
                      "crash)");
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

std::optional<Outcome> TccCoordinator::LogParticipants(TccContext& txn) {
  const Xid& xid = txn.xid;
  const bool saga = txn.protocol == Protocol::kSaga;
  if (TimedOut(txn, *services_->clock)) {
    MetricsRegistry::Add(services_->metrics->timeouts);
    txn.last_status =
        Status(Code::kRbTimeout, std::string(ProtocolName(txn.protocol)) + " transaction " +
                                     xid.ToString() + " reached Commit() past its timeout: " +
                                     (saga ? "nothing was run" : "cancelled before any Try"));
    return Outcome::kRolledBack;
  }
  // Whom to cancel (compensate) after a crash, before anyone can have done anything.
  Result<uint64_t> lsn =
      services_->log->Append(TccRecord(RecordType::kTccTry, txn.protocol, xid, txn.branches));
  if (!lsn.ok()) {
    txn.last_status = lsn.status().WithContext(
        saga ? "the saga's steps could not be logged before its first action, so none was run"
             : "the TCC participants could not be logged before the first Try, so none was "
               "called");
    XA_LOG_XID(kError, "tcc", xid) << txn.last_status.ToString();
    return Outcome::kRolledBack;
  }
  XA_CRASH_POINT(kTccAfterTryRecord);
  XA_LOG_XID(kDebug, "tcc", xid) << "participants logged at lsn " << *lsn;
  services_->in_flight->MarkPrepareStarted(xid, services_->clock->SteadyNow());
  return std::nullopt;
}

bool TccCoordinator::LogDecision(TccContext& txn) {
  Clock::SteadyTime write_start = services_->clock->SteadyNow();
  Result<uint64_t> lsn = services_->log->Append(
      TccRecord(RecordType::kTccConfirm, txn.protocol, txn.xid, txn.branches));
  services_->metrics->decision_write.Record(services_->clock->SteadyNow() - write_start);
  if (lsn.ok()) {
    MetricsRegistry::Add(services_->metrics->decision_records);
    XA_LOG_XID(kDebug, "tcc", txn.xid) << "decision durable at lsn " << *lsn;
    return true;
  }
  MetricsRegistry::Add(services_->metrics->decision_write_failures);
  txn.last_status = lsn.status().WithContext(
      "the decision may or may not have reached the log, and the log takes no more records: "
      "restart the process; its recovery finishes the transaction forward if the decision is "
      "in the log (confirms every participant; ends a completed saga) and cancels or "
      "compensates every one otherwise");
  txn.handed_off = true;  // stays in flight: this process must not finish it either way
  XA_LOG_XID(kError, "tcc", txn.xid) << txn.last_status.ToString();
  return false;
}

Outcome TccCoordinator::Concluded(TccContext& txn, const TccConclusion& conclusion,
                                  Status reason) {
  if (!Close(txn.xid, conclusion)) {
    // Nobody will call the participants again from here; recovery, at its next pass, will, and
    // records the heuristic then.
    txn.handed_off = true;
    services_->in_flight->Remove(txn.xid);
  }
  txn.last_status = conclusion.record_heuristic
                        ? Status(Code::kHeuristicMixed, conclusion.heuristic.reason)
                        : std::move(reason);
  return conclusion.outcome;
}

Outcome TccCoordinator::Commit(TccContext& txn) {
  if (txn.protocol == Protocol::kSaga) return CommitSaga(txn);
  const Xid& xid = txn.xid;
  // 1. Whom to cancel after a crash.
  if (std::optional<Outcome> ended = LogParticipants(txn)) return *ended;

  // 2. Every Try, in parallel.
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
  if (!LogDecision(txn)) return Outcome::kUnknown;
  XA_CRASH_POINT(kTccAfterConfirmRecord);
  return Finish(txn, TccDecision::kConfirm, Status::Ok());
}

TccResult TccCoordinator::RunAction(const TccContext& txn, const TccBranch& step) const {
  const RetryPolicy& policy = services_->options->inline_retry;
  TccParticipant& operation = *participants_.at(step.participant);
  for (uint32_t attempt = 1;; ++attempt) {
    TccResult result = CallParticipant(operation, &TccParticipant::Try, txn.xid, step);
    XA_LOG_XID(kDebug, "tcc", step.branch) << "action of '" << step.participant
                                           << "': " << TccReplyName(result.reply);
    if (result.reply != TccReply::kFailed || attempt >= InlineAttempts(policy)) return result;
    MetricsRegistry::Add(services_->metrics->phase2_retries);
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
  }
}

Outcome TccCoordinator::CommitSaga(TccContext& txn) {
  const Xid& xid = txn.xid;
  if (std::optional<Outcome> ended = LogParticipants(txn)) return *ended;

  for (size_t i = 0; i < txn.branches.size(); ++i) {
    const TccBranch& step = txn.branches[i];
    if (TimedOut(txn, *services_->clock)) {
      MetricsRegistry::Add(services_->metrics->timeouts);
      Status reason(Code::kRbTimeout, "saga " + xid.ToString() + " passed its timeout before "
                                          "the action of step " + std::to_string(i) + " ('" +
                                          step.participant + "')");
      if (i == 0) return Compensate(txn, 0, reason);  // nothing ran; step 0's is empty
      return Compensate(txn, i - 1, reason);
    }
    TccResult result = RunAction(txn, step);
    if (result.reply == TccReply::kDone) {
      if (i == 0) XA_CRASH_POINT(kSagaAfterFirstAction);
      continue;
    }
    const bool refused = result.reply == TccReply::kRefused;
    return Compensate(txn, i,
                      Status(refused ? Code::kRbRollback : Code::kRbCommFail,
                             "the action of step " + std::to_string(i) + " ('" + step.participant +
                                 "', " + step.branch.ToString() + ") " +
                                 (refused ? "was refused: " : "kept failing: ") + result.detail));
  }

  if (!LogDecision(txn)) return Outcome::kUnknown;
  services_->WriteEnd(xid, Protocol::kSaga);
  txn.last_status = Status::Ok();
  return Outcome::kCommitted;
}

Outcome TccCoordinator::Compensate(TccContext& txn, size_t last, Status reason) {
  XA_LOG_XID(kInfo, "tcc", txn.xid) << "compensating steps " << last << " to 0: "
                                    << reason.ToString();
  // Steps after `last` never ran: nothing to undo.
  for (size_t i = last + 1; i < txn.branches.size(); ++i) {
    txn.branches[i].end = TccBranchEnd::kFinished;
  }
  bool first = true;
  for (size_t k = 0; k <= last; ++k) {
    TccBranch& step = txn.branches[last - k];
    FinishInline(txn.xid, TccDecision::kCancel, step);
    if (step.end == TccBranchEnd::kPending) break;  // the earlier steps wait for this one
    if (first) XA_CRASH_POINT(kSagaAfterFirstCompensation);
    first = false;
  }
  TccConclusion conclusion = ConcludeTcc(txn.xid, TccDecision::kCancel, txn.branches);
  if (!conclusion.finished) {
    txn.handed_off = true;
    txn.last_status = reason;
    Submit(txn.xid, TccDecision::kCancel, txn.branches, /*in_reverse_order=*/true,
           services_->options->background_retry.BackoffBefore(1), "compensation");
    return Outcome::kRolledBack;
  }
  return Concluded(txn, conclusion, std::move(reason));
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
    Submit(txn.xid, decision, txn.branches, /*in_reverse_order=*/false,
           services_->options->background_retry.BackoffBefore(1), confirm ? "confirm" : "cancel");
    return confirm ? Outcome::kCommittedCompletionPending : Outcome::kRolledBack;
  }
  return Concluded(txn, conclusion, std::move(reason));
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
                            bool in_reverse_order, std::chrono::microseconds first_delay,
                            const char* origin) {
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
  retry.attempt = [this, job, in_reverse_order] {
    const size_t n = job->branches.size();
    for (size_t k = 0; k < n; ++k) {
      TccBranch& b = job->branches[in_reverse_order ? n - 1 - k : k];
      if (b.end != TccBranchEnd::kPending) continue;
      AttemptFinish(participants_, job->global, job->decision, b);
      if (b.end == TccBranchEnd::kPending) {
        MetricsRegistry::Add(services_->metrics->phase2_retries);
        if (in_reverse_order) break;  // the earlier steps wait for this one
      }
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
  std::vector<TccBranch> branches = TccBranchesOf(record);
  const bool saga = record.protocol == Protocol::kSaga;
  if (saga && decision == TccDecision::kConfirm) {
    // A completed saga has nothing left to call: only its end record is missing.
    for (TccBranch& b : branches) b.end = TccBranchEnd::kFinished;
  }
  Submit(record.xid, decision, std::move(branches), /*in_reverse_order=*/saga,
         services_->options->background_retry.BackoffBefore(1), "recovery");
}

Status TccCoordinator::WaitIdle(std::chrono::milliseconds timeout) {
  if (retrier_.WaitIdle(timeout)) return Status::Ok();
  return Status(Code::kTimeout, std::to_string(retrier_.pending()) +
                                    " TCC transaction(s) still being confirmed or cancelled in "
                                    "the background (a participant unreachable?)");
}

}  // namespace xa::internal
