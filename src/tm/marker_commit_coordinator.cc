#include "src/tm/marker_commit_coordinator.h"

#include <atomic>
#include <string>
#include <vector>

#include "src/base/logging.h"
#include "src/tm/phase_timing.h"
#include "src/testing/crash_points.h"

namespace xa::internal {
namespace {

std::string On(const BranchContext& b) { return "branch on '" + b.rm_name + "'"; }

uint32_t Attempts(const RetryPolicy& policy) {
  return policy.max_attempts == 0 ? 1 : policy.max_attempts;
}

}  // namespace

std::optional<size_t> MarkerCommitCoordinator::MarkerBranch(const TxnContext& txn) const {
  const std::string& marker_rm = services_->options->marker_commit.rm;
  for (size_t i = txn.branches.size(); i-- > 0;) {
    if (txn.branches[i].rm_name == marker_rm) return i;
  }
  return std::nullopt;
}

void MarkerCommitCoordinator::WriteMarkerAndEnd(TxnContext& txn, BranchContext& b) {
  Status s = b.rm->WriteCommitMarker(services_->options->marker_commit.table, txn.xid);
  XA_LOG_XID(kDebug, "tm", b.xid) << "marker written on '" << b.rm_name << "': "
                                  << CodeName(s.code());
  if (!s.ok()) {
    // Not ended: the rollback that follows ends it with TMFAIL first.
    b.failure = s.WithContext(s.code() == Code::kDupId
                                  ? "writing the marker row (recovery had settled this "
                                    "transaction as aborted)"
                                  : "writing the marker row");
    return;
  }
  XA_CRASH_POINT(kMarkerWritten);
  b.end_sent = true;
  s = b.rm->End(b.xid, EndFlag::kSuccess);
  XA_LOG_XID(kDebug, "tm", b.xid) << "end(TMSUCCESS) on '" << b.rm_name << "': "
                                  << CodeName(s.code());
  if (!s.ok()) {
    b.failure = s.WithContext("End(TMSUCCESS)");
    return;
  }
  b.ended = true;
}

Status MarkerCommitCoordinator::CommitMarkerBranch(BranchContext& b) {
  const RetryPolicy& policy = services_->options->inline_retry;
  Status s;
  for (uint32_t attempt = 1;; ++attempt) {
    s = b.rm->Commit(b.xid, CommitMode::kOnePhase);
    XA_LOG_XID(kDebug, "tm", b.xid) << "commit(TMONEPHASE) of the marker branch on '"
                                    << b.rm_name << "': " << CodeName(s.code());
    if (s.code() != Code::kRetry || attempt >= Attempts(policy)) return s;
    MetricsRegistry::Add(services_->metrics->phase2_retries);
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
  }
}

std::optional<MarkerOutcome> MarkerCommitCoordinator::Settle(TxnContext& txn, BranchContext& b,
                                                             const Status& answer) {
  MetricsRegistry::Add(services_->metrics->marker_settles);
  const MarkerCommitOptions& marker = services_->options->marker_commit;
  XA_LOG_XID(kWarning, "tm", txn.xid)
      << "the marker branch's commit on '" << b.rm_name << "' answered " << answer.ToString()
      << ": settling the outcome by the marker row";
  if (answer.code() != Code::kRmFail) {
    // The session is alive and may still hold the branch, and with it the row's lock, which the
    // settle below would wait for in vain. Released here: after a commit that did happen it
    // answers XAER_NOTA and changes nothing.
    Status released = b.rm->Rollback(b.xid);
    XA_LOG_XID(kDebug, "tm", b.xid) << "rollback of the marker branch on its session: "
                                    << CodeName(released.code());
  }
  const RetryPolicy& policy = services_->options->inline_retry;
  Status last;
  for (uint32_t attempt = 1;; ++attempt) {
    Result<std::unique_ptr<ResourceManager>> session = services_->OpenSession(b.rm_name);
    if (session.ok()) {
      Result<MarkerOutcome> outcome =
          (*session)->SettleCommitMarker(marker.table, txn.xid, marker.settle_wait);
      if (outcome.ok()) {
        XA_LOG_XID(kInfo, "tm", txn.xid) << "marker settled: " << MarkerOutcomeName(*outcome);
        return *outcome;
      }
      last = outcome.status();
    } else {
      last = session.status();
    }
    if (attempt >= Attempts(policy)) break;
    XA_LOG_XID(kWarning, "tm", txn.xid) << "settling the marker failed (attempt " << attempt
                                        << "), retrying: " << last.ToString();
    services_->clock->SleepFor(policy.BackoffBefore(attempt));
  }
  b.last = last;
  return std::nullopt;
}

Outcome MarkerCommitCoordinator::Commit(TxnContext& txn) {
  std::vector<BranchContext>& branches = txn.branches;
  const std::optional<size_t> marker_index =
      branches.size() > 1 ? MarkerBranch(txn) : std::nullopt;
  if (!marker_index) {
    // One branch commits in one phase; without a branch on the marker's resource manager the
    // decision goes to the log.
    if (branches.size() > 1) {
      XA_LOG_XID(kDebug, "tm", txn.xid) << "no branch on marker resource manager '"
                                        << services_->options->marker_commit.rm
                                        << "': two-phase commit with a decision record";
    }
    return TwoPhaseCoordinator::Commit(txn);
  }
  const size_t m = *marker_index;
  BranchContext& marker = branches[m];

  // Phase 1: the other branches prepare while the marker branch gets its row and is ended.
  Clock::SteadyTime phase1_start = services_->clock->SteadyNow();
  services_->in_flight->MarkPrepareStarted(txn.xid, phase1_start);
  std::atomic<size_t> prepared{0};
  services_->executor->RunAll(
      branches.size(),
      [&](size_t i) {
        if (i == m) {
          WriteMarkerAndEnd(txn, marker);
          return;
        }
        TimedCall(*services_->clock, branches[i], TimedPhase::kPrepare,
                  [&] { PrepareBranch(txn, branches[i]); });
        if (branches[i].vote == Vote::kCommit && prepared.fetch_add(1) == 0) {
          XA_CRASH_POINT(kAfterFirstPrepare);
        }
      },
      SlowestBranch(
          branches.size(), [&](size_t i) -> const BranchContext& { return branches[i]; },
          TimedPhase::kPrepare));
  services_->metrics->prepare.Record(services_->clock->SteadyNow() - phase1_start);

  std::vector<size_t> committers;
  const BranchContext* failed = marker.ended ? nullptr : &marker;
  for (size_t i = 0; i < branches.size(); ++i) {
    if (i == m) continue;
    const BranchContext& b = branches[i];
    if (b.vote == Vote::kCommit) {
      committers.push_back(i);
    } else if (b.vote != Vote::kReadOnly && failed == nullptr) {
      failed = &b;
    }
  }
  if (failed != nullptr) {
    Status reason = failed->failure.WithContext("phase 1, " + On(*failed));
    XA_LOG_XID(kInfo, "tm", txn.xid) << "rolling back: " << reason.ToString();
    return Rollback(txn, reason);
  }

  // The decision: the marker branch's one-phase commit.
  XA_CRASH_POINT(kMarkerBeforeCommit);
  Clock::SteadyTime decision_start = services_->clock->SteadyNow();
  Status answer = CommitMarkerBranch(marker);
  std::optional<MarkerOutcome> decided;
  if (answer.ok()) {
    decided = MarkerOutcome::kCommitted;
  } else if (answer.IsRollback()) {
    decided = MarkerOutcome::kAborted;  // rolled back, and the row with it
  } else {
    decided = Settle(txn, marker, answer);
  }
  services_->metrics->decision_write.Record(services_->clock->SteadyNow() - decision_start);

  if (!decided) {
    // Nobody can tell yet whether the marker committed. The prepared branches stay prepared
    // for recovery, which settles them by the marker (and waits for its server).
    txn.last_status = Status(
        Code::kRmFail, "the commit of the marker branch on '" + marker.rm_name + "' answered " +
                           answer.ToString() + " and its marker could not be read (" +
                           marker.last.ToString() +
                           "): the outcome is decided by the marker row; recovery completes "
                           "every branch by it once '" + marker.rm_name + "' is reachable");
    XA_LOG_XID(kError, "tm", txn.xid) << txn.last_status.ToString();
    return Outcome::kUnknown;
  }
  marker.ended = true;
  if (*decided == MarkerOutcome::kAborted) {
    marker.end = BranchEnd::kRolledBack;
    Status reason = answer.WithContext(
        std::string("the marker branch's one-phase commit, ") + On(marker) +
        (answer.IsRollback() ? "" : " (its marker settled as aborted)"));
    XA_LOG_XID(kInfo, "tm", txn.xid) << "rolling back: " << reason.ToString();
    Outcome outcome = Rollback(txn, reason);
    if (outcome == Outcome::kRolledBack && !answer.IsRollback()) cleaner_->Finished(txn.xid);
    return outcome;
  }
  marker.end = BranchEnd::kCommitted;
  MetricsRegistry::Add(services_->metrics->marker_commits);
  XA_CRASH_POINT(kMarkerAfterCommit);
  if (committers.empty()) {
    // Every other branch read-only: the marker branch was the whole transaction.
    txn.last_status = Status::Ok();
    cleaner_->Finished(txn.xid);
    return Outcome::kCommitted;
  }
  Outcome outcome = PhaseTwo(txn, committers, /*decision_logged=*/false);
  // A branch still pending (in the background) may be prepared: its row stays for recovery and
  // is deleted by recovery's sweep once nothing of it is prepared.
  if (outcome == Outcome::kCommitted) cleaner_->Finished(txn.xid);
  return outcome;
}

}  // namespace xa::internal
