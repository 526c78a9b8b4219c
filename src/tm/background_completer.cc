#include "src/tm/background_completer.h"

#include <algorithm>

#include "src/completion/conclude.h"
#include "src/base/logging.h"
#include "src/tm/services.h"

namespace xa::internal {

BackgroundCompleter::BackgroundCompleter(const Services* services) : services_(services) {}

BackgroundCompleter::~BackgroundCompleter() { Stop(); }

void BackgroundCompleter::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void BackgroundCompleter::SubmitEnd(const Xid& global_xid, Protocol protocol) {
  // AppendLazy never waits for the log: written here, or by the log batch in progress.
  services_->WriteEnd(global_xid, protocol);
  services_->in_flight->Remove(global_xid);
}

void BackgroundCompleter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (const CompletionJob& job : jobs_) {
    XA_LOG_XID(kWarning, "tm", job.xid)
        << "manager stopping with " << DecisionName(job.decision)
        << " still pending; " << (job.decision_logged ? "the decision is open in the log and "
                                                         "recovery will finish it"
                                                       : "recovery will roll it back");
  }
  idle_.notify_all();
}

void BackgroundCompleter::Submit(CompletionJob job) {
  services_->in_flight->Add(job.xid);  // no-op when the coordinator registered it
  services_->in_flight->MarkBackground(job.xid);
  services_->in_flight->MarkPrepareStarted(job.xid, services_->clock->SteadyNow());
  MetricsRegistry::Add(services_->metrics->handed_to_background);
  services_->metrics->background_pending.fetch_add(1, std::memory_order_relaxed);
  XA_LOG_XID(kInfo, "tm", job.xid)
      << "background completion of " << DecisionName(job.decision) << " ("
      << job.origin << ") for "
      << std::count_if(job.branches.begin(), job.branches.end(),
                       [](const CompletionBranch& b) { return b.end == BranchEnd::kPending; })
      << " branch(es)";
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

Status BackgroundCompleter::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto nothing_left = [&] {
    return jobs_.empty() && working_ == 0;
  };
  bool idle = services_->clock->WaitFor(lock, idle_, timeout,
                                        [&] { return nothing_left() || stopping_; });
  if (idle && nothing_left()) return Status::Ok();
  return Status(Code::kTimeout, std::to_string(jobs_.size() + working_) +
                                    " transaction(s) still waiting for background completion "
                                    "(an RM is unreachable?)");
}

size_t BackgroundCompleter::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size() + working_;
}

ResourceManager* BackgroundCompleter::Session(const std::string& rm_name, Status* error) {
  auto it = sessions_.find(rm_name);
  if (it != sessions_.end()) return it->second.get();
  Result<std::unique_ptr<ResourceManager>> session = services_->OpenSession(rm_name);
  if (!session.ok()) {
    *error = session.status();
    return nullptr;
  }
  ResourceManager* raw = session->get();
  sessions_.emplace(rm_name, std::move(*session));
  return raw;
}

void BackgroundCompleter::Attempt(const CompletionJob& job, CompletionBranch& branch) {
  Status error;
  ResourceManager* session = Session(branch.rm_name, &error);
  const FinishCall call = FinishCallFor(job.decision);
  Status s;
  BranchReading reading{BranchEnd::kPending, false};  // no session: try again later
  if (session == nullptr) {
    s = error;
  } else {
    s = job.decision == Decision::kCommit ? session->Commit(branch.xid, CommitMode::kTwoPhase)
                                          : session->Rollback(branch.xid);
    XA_LOG_XID(kDebug, "tm", branch.xid) << "background " << FinishCallName(call) << " on '"
                                         << branch.rm_name << "': " << CodeName(s.code());
    reading = ReadFinishResult(call, s, {branch.maybe_applied, branch.maybe_prepared});
  }
  branch.last = s;
  if (IsFinished(reading.end)) {
    branch.end = reading.end;
    branch.forget = reading.forget;
    return;
  }
  if (s.code() == Code::kRmFail) {
    branch.maybe_applied = true;
    sessions_.erase(branch.rm_name);  // the connection is gone; the next attempt reconnects
  }
  ++branch.attempts;
  MetricsRegistry::Add(services_->metrics->phase2_retries);
  std::chrono::microseconds backoff =
      services_->options->background_retry.BackoffBefore(branch.attempts);
  branch.next_attempt = services_->clock->SteadyNow() + backoff;
  XA_LOG_XID(kWarning, "tm", branch.xid)
      << "background " << FinishCallName(call) << " on '" << branch.rm_name
      << "' failed (attempt " << branch.attempts << ", next in " << backoff.count() / 1000
      << " ms): " << s.ToString();
}

void BackgroundCompleter::Finish(CompletionJob& job) {
  std::vector<BranchAtConclusion> at_conclusion;
  at_conclusion.reserve(job.branches.size());
  for (const CompletionBranch& b : job.branches) {
    at_conclusion.push_back({&b.rm_name, &b.xid, b.end, b.persisted, &b.last});
  }
  Conclusion conclusion = Conclude(job.decision, at_conclusion);
  const Outcome outcome = conclusion.outcome;
  bool may_forget = true;
  if (conclusion.record_heuristic) {
    may_forget = services_->PersistHeuristic(job.xid, job.protocol, conclusion);
  }
  for (const CompletionBranch& b : job.branches) {
    if (!b.forget || !may_forget) continue;
    Status error;
    if (ResourceManager* session = Session(b.rm_name, &error)) {
      Status s = session->Forget(b.xid);
      if (!s.ok() && s.code() != Code::kNoTa) {
        XA_LOG_XID(kWarning, "tm", b.xid) << "forget on '" << b.rm_name << "': " << s.ToString();
      }
    }
  }
  if (job.decision_logged) services_->WriteEnd(job.xid, job.protocol);
  MetricsRegistry::Add(services_->metrics->background_completed);
  services_->metrics->background_pending.fetch_sub(1, std::memory_order_relaxed);
  services_->in_flight->Remove(job.xid);
  if (outcome == Outcome::kCommitted || outcome == Outcome::kRolledBack) {
    XA_LOG_XID(kInfo, "tm", job.xid)
        << "background completion finished (" << job.origin << "): " << OutcomeName(outcome);
  } else {
    XA_LOG_XID(kError, "tm", job.xid)
        << "background completion finished (" << job.origin << "): " << OutcomeName(outcome);
  }
}

void BackgroundCompleter::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (jobs_.empty()) {
      idle_.notify_all();
      services_->clock->WaitUntil(lock, wake_, Clock::kNoDeadline,
                                  [&] { return stopping_ || !jobs_.empty(); });
      continue;
    }
    Clock::SteadyTime now = services_->clock->SteadyNow();
    Clock::SteadyTime earliest = Clock::SteadyTime::max();
    auto due = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      for (const CompletionBranch& b : it->branches) {
        if (b.end != BranchEnd::kPending) continue;
        if (b.next_attempt < earliest) {
          earliest = b.next_attempt;
          due = it;
        }
      }
    }
    if (due == jobs_.end()) {  // a job with nothing pending: finish it
      due = jobs_.begin();
    } else if (earliest > now) {
      services_->clock->WaitOnce(lock, wake_, earliest);
      continue;
    }
    CompletionJob job = std::move(*due);
    jobs_.erase(due);
    ++working_;
    lock.unlock();

    now = services_->clock->SteadyNow();
    bool done = true;
    for (CompletionBranch& b : job.branches) {
      if (b.end != BranchEnd::kPending) continue;
      if (b.next_attempt <= now) Attempt(job, b);
      if (b.end == BranchEnd::kPending) done = false;
    }
    if (done) Finish(job);

    lock.lock();
    --working_;
    if (!done) jobs_.push_back(std::move(job));
  }
  lock.unlock();
  sessions_.clear();
}

}  // namespace xa::internal
