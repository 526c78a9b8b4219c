#include "src/tm/two_phase_coordinator.h"

#include <chrono>
#include <thread>

#include <atomic>

#include "src/base/logging.h"
#include "src/testing/crash_points.h"
#include "src/completion/conclude.h"
#include "src/tm/background_completer.h"
#include "src/tm/phase_timing.h"

namespace xa::internal {
namespace {


std::string On(const BranchContext& b) { return "branch on '" + b.rm_name + "'"; }

Code CodeOf(Outcome o) {
  switch (o) {
    case Outcome::kHeuristicCommit: return Code::kHeuristicCommit;
    case Outcome::kHeuristicRollback: return Code::kHeuristicRollback;
    case Outcome::kHeuristicMixed: return Code::kHeuristicMixed;
    case Outcome::kHeuristicHazard: return Code::kHeuristicHazard;
    default: return Code::kRmFail;
  }
}

uint32_t Attempts(const RetryPolicy& policy) {
  return policy.max_attempts == 0 ? 1 : policy.max_attempts;
}

}  // namespace

LogRecord TwoPhaseCoordinator::DecisionRecord(const TxnContext& txn,
                                              const std::vector<size_t>& committers) const {
  LogRecord record;
  record.type = RecordType::kCommitDecision;
  record.xid = txn.xid;
  record.protocol = protocol();
  for (size_t i : committers) {
    record.participants.push_back(Participant{txn.branches[i].rm_name, txn.branches[i].xid});
  }
  return record;
}

Outcome TwoPhaseCoordinator::Commit(TxnContext& txn) {
  std::vector<BranchContext>& branches = txn.branches;
  if (branches.empty()) {
    txn.last_status = Status::Ok();
    return Outcome::kCommitted;
  }
  if (branches.size() == 1) return CommitOnePhase(txn, branches[0]);

  // Phase 1.
  Clock::SteadyTime phase1_start = services_->clock->SteadyNow();
  services_->in_flight->MarkPrepareStarted(txn.xid, phase1_start);
  std::atomic<size_t> prepared{0};
  services_->executor->RunAll(
      branches.size(),
      [&](size_t i) {
        TimedCall(*services_->clock, branches[i], TimedPhase::kPrepare, [&] { PrepareBranch(txn, branches[i]); });
        if (branches[i].vote == Vote::kCommit && prepared.fetch_add(1) == 0) {
          XA_CRASH_POINT(kAfterFirstPrepare);  // C3: one branch prepared, the other perhaps not
        }
      },
      SlowestBranch(
          branches.size(), [&](size_t i) -> const BranchContext& { return branches[i]; },
          TimedPhase::kPrepare));
  services_->metrics->prepare.Record(services_->clock->SteadyNow() - phase1_start);

  std::vector<size_t> committers;
  const BranchContext* failed = nullptr;
  for (size_t i = 0; i < branches.size(); ++i) {
    const BranchContext& b = branches[i];
    if (b.vote == Vote::kCommit) {
      committers.push_back(i);
    } else if (b.vote != Vote::kReadOnly && failed == nullptr) {
      failed = &b;  // a rollback vote, or no vote at all
    }
  }
  if (failed != nullptr) {
    Status reason = failed->failure.WithContext("phase 1, " + On(*failed));
    XA_LOG_XID(kInfo, "tm", txn.xid) << "rolling back: " << reason.ToString();
    return Rollback(txn, reason);
  }
  if (committers.empty()) {
    MetricsRegistry::Add(services_->metrics->read_only_commits);
    XA_LOG_XID(kDebug, "tm", txn.xid) << "all branches read-only: committed, nothing logged";
    txn.last_status = Status::Ok();
    return Outcome::kCommitted;
  }

  // The decision. A single commit vote needs no record (see the protocol comment).
  bool decision_logged = false;
  if (committers.size() > 1) {
    XA_CRASH_POINT(kAfterAllPrepared);  // C4: all prepared, no decision
    Clock::SteadyTime write_start = services_->clock->SteadyNow();
    Result<uint64_t> lsn = services_->log->Append(DecisionRecord(txn, committers));
    services_->metrics->decision_write.Record(services_->clock->SteadyNow() - write_start);
    if (!lsn.ok()) {
      MetricsRegistry::Add(services_->metrics->decision_write_failures);
      XA_LOG_XID(kError, "tm", txn.xid)
          << "commit decision could not be made durable, rolling back: "
          << lsn.status().ToString();
      return Rollback(txn, lsn.status().WithContext(
                               "the commit decision could not be made durable, so the "
                               "transaction was rolled back"));
    }
    MetricsRegistry::Add(services_->metrics->decision_records);
    decision_logged = true;
    XA_CRASH_POINT(kAfterDecisionSync);  // C6: decision durable, no branch committed
    XA_LOG_XID(kDebug, "tm", txn.xid) << "commit decision durable at lsn " << *lsn;
  }
  return PhaseTwo(txn, committers, decision_logged);
}

void TwoPhaseCoordinator::PrepareBranch(TxnContext& txn, BranchContext& b) {
  (void)txn;
  b.end_sent = true;
  Status s = b.rm->End(b.xid, EndFlag::kSuccess);
  XA_LOG_XID(kDebug, "tm", b.xid) << "end(TMSUCCESS) on '" << b.rm_name << "': "
                                  << CodeName(s.code());
  if (!s.ok()) {
    // The branch is not finished, whatever End answered: the rollback that follows still calls
    // Rollback() on it (see branch_outcome.h, "Ending a branch").
    b.failure = s.WithContext("End(TMSUCCESS)");
    return;
  }
  b.ended = true;
  XA_CRASH_POINT(kAfterEnd);  // C1
  b.history.maybe_prepared = true;  // from now on the branch may be prepared
  s = b.rm->Prepare(b.xid);
  XA_CRASH_POINT(kAfterPrepare);  // C2: prepared, the reply never processed
  XA_LOG_XID(kDebug, "tm", b.xid) << "prepare on '" << b.rm_name << "': " << CodeName(s.code());
  std::optional<Vote> vote = VoteFromStatus(s);
  if (vote.has_value()) {
    b.vote = *vote;
    if (*vote == Vote::kReadOnly) {
      b.end = BranchEnd::kCommitted;
    } else if (*vote == Vote::kRollback) {
      b.end = BranchEnd::kRolledBack;
      b.failure = s.WithContext("Prepare voted rollback");
    }
    return;
  }
  // No vote (XAER_NOTA, XAER_RMFAIL, ...): the rollback that follows reads what Rollback() says.
  b.failure = s.WithContext("Prepare");
}

Outcome TwoPhaseCoordinator::CommitOnePhase(TxnContext& txn, BranchContext& b) {
  Clock::SteadyTime start = services_->clock->SteadyNow();
  b.end_sent = true;
  Status s = b.rm->End(b.xid, EndFlag::kSuccess);
  XA_LOG_XID(kDebug, "tm", b.xid) << "end(TMSUCCESS) on '" << b.rm_name << "': "
                                  << CodeName(s.code());
  if (!s.ok()) {
    b.failure = s.WithContext("End(TMSUCCESS)");
    return Rollback(txn, b.failure.WithContext(On(b)));
  }
  b.ended = true;

  const RetryPolicy& policy = services_->options->inline_retry;
  for (uint32_t attempt = 1;; ++attempt) {
    s = b.rm->Commit(b.xid, CommitMode::kOnePhase);
    XA_LOG_XID(kDebug, "tm", b.xid) << "commit(TMONEPHASE) on '" << b.rm_name << "': "
                                    << CodeName(s.code());
    if (s.code() != Code::kRetry || attempt >= Attempts(policy)) break;
    MetricsRegistry::Add(services_->metrics->phase2_retries);
    XA_LOG_XID(kWarning, "tm", b.xid) << "one-phase commit on '" << b.rm_name
                                      << "' asked for a retry (attempt " << attempt << ")";
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
  }
  services_->metrics->commit_phase.Record(services_->clock->SteadyNow() - start);

  BranchReading reading = b.Apply(FinishCall::kCommitOnePhase, s);
  if (reading.end == BranchEnd::kCommitted) {
    MetricsRegistry::Add(services_->metrics->one_phase_commits);
    if (!reading.forget) {
      txn.last_status = Status::Ok();
      return Outcome::kCommitted;
    }
  }
  if (reading.end == BranchEnd::kRolledBack) {
    txn.last_status = s.WithContext("one-phase commit, " + On(b));
    return Outcome::kRolledBack;
  }
  if (reading.end != BranchEnd::kPending) {
    return Conclude(txn, {0}, Decision::kCommit, /*decision_logged=*/false, Status::Ok());
  }
  // XA_RETRY exhausted, XAER_PROTO, ...: the branch is ended and not prepared; roll it back.
  return Rollback(txn, s.WithContext("one-phase commit, " + On(b)));
}

Outcome TwoPhaseCoordinator::PhaseTwo(TxnContext& txn, const std::vector<size_t>& committers,
                                      bool decision_logged) {
  Clock::SteadyTime start = services_->clock->SteadyNow();
  std::atomic<size_t> committed{0};
  services_->executor->RunAll(
      committers.size(),
      [&](size_t k) {
        BranchContext& b = txn.branches[committers[k]];
        TimedCall(*services_->clock, b, TimedPhase::kFinish, [&] { FinishBranchInline(b, Decision::kCommit); });
        if (committed.fetch_add(1) == 0) XA_CRASH_POINT(kAfterFirstCommit);  // C7
      },
      SlowestBranch(
          committers.size(),
          [&](size_t k) -> const BranchContext& { return txn.branches[committers[k]]; },
          TimedPhase::kFinish));
  XA_CRASH_POINT(kAfterAllCommitted);  // C8: all committed, no end record
  services_->metrics->commit_phase.Record(services_->clock->SteadyNow() - start);
  return Conclude(txn, committers, Decision::kCommit, decision_logged, Status::Ok());
}

void TwoPhaseCoordinator::FinishBranchInline(BranchContext& b, Decision decision) {
  const RetryPolicy& policy = services_->options->inline_retry;
  const FinishCall call = FinishCallFor(decision);
  ResourceManager* rm = b.rm;
  std::unique_ptr<ResourceManager> fresh;
  Status s;
  for (uint32_t attempt = 1;; ++attempt) {
    if (rm != nullptr) {
      s = decision == Decision::kCommit ? rm->Commit(b.xid, CommitMode::kTwoPhase)
                                        : rm->Rollback(b.xid);
      XA_LOG_XID(kDebug, "tm", b.xid) << FinishCallName(call) << " on '" << b.rm_name
                                      << "': " << CodeName(s.code());
      b.Apply(call, s);
    } else {
      b.NoCall(s);  // s: why no fresh session could be opened
    }
    if (IsFinished(b.end)) {
      if (b.end == BranchEnd::kRolledBack && !s.ok() && s.code() != Code::kNoTa &&
          decision == Decision::kRollback) {
        XA_LOG_XID(kDebug, "tm", b.xid) << "rollback on '" << b.rm_name
                                        << "' counted as done: " << s.ToString();
      }
      return;
    }
    if (attempt >= Attempts(policy)) break;
    MetricsRegistry::Add(services_->metrics->phase2_retries);
    XA_LOG_XID(kWarning, "tm", b.xid) << FinishCallName(call) << " on '"
                                      << b.rm_name << "' failed (attempt " << attempt
                                      << "), retrying: " << s.ToString();
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
    if (rm == nullptr || s.code() == Code::kRmFail) {
      // The application's session is probably dead: continue on a fresh one.
      rm = nullptr;
      fresh.reset();
      Result<std::unique_ptr<ResourceManager>> session = services_->OpenSession(b.rm_name);
      if (session.ok()) {
        fresh = std::move(*session);
        rm = fresh.get();
      } else {
        s = session.status();
      }
    }
  }
  b.end = BranchEnd::kPending;
}

void TwoPhaseCoordinator::RollbackBranch(BranchContext& b) {
  // A branch still active is ended with TMFAIL first (MariaDB refuses XA ROLLBACK in the ACTIVE
  // state). Whatever End answers, Rollback() follows (branch_outcome.h, "Ending a branch"): after
  // XA_RB* or XAER_NOTA it answers the same and the table reads "rolled back", and an RM that
  // keeps the session bound to a rolled-back branch releases it only then.
  if (!b.end_sent) {
    b.end_sent = true;
    Status s = b.rm->End(b.xid, EndFlag::kFail);
    XA_LOG_XID(kDebug, "tm", b.xid) << "end(TMFAIL) on '" << b.rm_name << "': "
                                    << CodeName(s.code());
    if (s.ok()) b.ended = true;
  }
  FinishBranchInline(b, Decision::kRollback);
}

Outcome TwoPhaseCoordinator::Rollback(TxnContext& txn, const Status& reason) {
  std::vector<size_t> todo;
  for (size_t i = 0; i < txn.branches.size(); ++i) {
    if (!IsFinished(txn.branches[i].end)) todo.push_back(i);
  }
  services_->executor->RunAll(todo.size(),
                              [&](size_t k) { RollbackBranch(txn.branches[todo[k]]); });
  return Conclude(txn, todo, Decision::kRollback, /*decision_logged=*/false, reason);
}

Outcome TwoPhaseCoordinator::Conclude(TxnContext& txn, const std::vector<size_t>& phase2,
                                      Decision decision, bool decision_logged,
                                      const Status& reason) {
  std::vector<const BranchState*> at_conclusion;
  at_conclusion.reserve(phase2.size());
  for (size_t i : phase2) at_conclusion.push_back(&txn.branches[i]);
  Conclusion conclusion = internal::Conclude(decision, at_conclusion);
  const BranchContext* first_heuristic =
      conclusion.first_heuristic < 0 ? nullptr : &txn.branches[phase2[conclusion.first_heuristic]];
  const BranchContext* first_pending =
      conclusion.first_pending < 0 ? nullptr : &txn.branches[phase2[conclusion.first_pending]];
  const bool commit = decision == Decision::kCommit;
  Outcome outcome = conclusion.outcome;
  bool decision_lost = false;

  if (commit && first_pending != nullptr && !decision_logged) {
    // The single-committer optimisation skipped the decision record, but the caller is about to
    // hear "committed, completion pending": from now on a crash must lead to commit, not to
    // presumed abort, so the decision becomes durable before we return.
    Result<uint64_t> lsn = services_->log->Append(DecisionRecord(txn, phase2));
    if (lsn.ok()) {
      MetricsRegistry::Add(services_->metrics->decision_records);
      decision_logged = true;
    } else {
      MetricsRegistry::Add(services_->metrics->decision_write_failures);
      decision_lost = true;
      XA_LOG_XID(kError, "tm", txn.xid)
          << "the commit of the only prepared branch is pending and its decision could not be "
             "logged: the background thread keeps committing it, but a crash now would roll it "
             "back: "
          << lsn.status().ToString();
    }
  }

  bool may_forget = true;
  if (conclusion.record_heuristic) {
    Protocol used = txn.branches.size() == 1 ? Protocol::kOnePhase : protocol();
    may_forget = services_->PersistHeuristic(txn.xid, used, conclusion);
  }
  for (size_t i : phase2) {
    if (!may_forget) break;
    BranchContext& b = txn.branches[i];
    if (!b.forget) continue;
    Status s = b.rm->Forget(b.xid);
    XA_LOG_XID(kDebug, "tm", b.xid) << "forget on '" << b.rm_name << "': " << CodeName(s.code());
  }

  if (first_pending != nullptr) {
    CompletionJob job;
    job.xid = txn.xid;
    job.protocol = protocol();
    job.decision = decision;
    job.decision_logged = decision_logged;
    job.origin = commit ? "commit" : "rollback";
    for (size_t i : phase2) {
      BranchState handed = txn.branches[i];  // the shared part of the branch, not the session
      // The heuristic ends so far were recorded above, and their Forget() sent (or withheld for
      // good): the completer concludes over them without doing either again.
      handed.heuristic_recorded = IsHeuristic(handed.end);
      handed.forget = false;
      job.branches.push_back(std::move(handed));
    }
    AddProtocolWork(txn, job);
    txn.handed_off = true;
    // The inline attempts just failed: the first background attempt waits one backoff.
    services_->completer->Submit(std::move(job), FirstAttempt::kAfterBackoff);
  } else if (decision_logged) {
    // The caller does not wait for the end record (see BackgroundCompleter::SubmitEnd).
    txn.handed_off = true;
    services_->completer->SubmitEnd(txn.xid, protocol());
  }

  if (decision_lost) outcome = Outcome::kUnknown;
  switch (outcome) {
    case Outcome::kCommitted:
      txn.last_status = Status::Ok();
      break;
    case Outcome::kRolledBack:
      txn.last_status = reason;
      break;
    case Outcome::kCommittedCompletionPending:
      txn.last_status = first_pending->last.WithContext(
          "committed (decision durable); " + On(*first_pending) +
          " unreachable, completing in the background");
      XA_LOG_XID(kInfo, "tm", txn.xid) << txn.last_status.ToString();
      break;
    case Outcome::kUnknown:
      txn.last_status = Status(Code::kLogFailed,
                               "commit of the only prepared branch pending and its decision "
                               "could not be logged: outcome unknown if the process crashes");
      break;
    default: {
      const BranchContext& b = first_heuristic != nullptr ? *first_heuristic : txn.branches[phase2[0]];
      std::string message = On(b) + ": " + b.last.ToString();
      if (!reason.ok()) message += " (while rolling back because: " + reason.ToString() + ")";
      txn.last_status = Status(CodeOf(outcome), message);
      break;
    }
  }
  return outcome;
}

}  // namespace xa::internal
