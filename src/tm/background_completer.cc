#include "src/tm/background_completer.h"

#include <algorithm>

#include "src/base/logging.h"
#include "src/completion/conclude.h"
#include "src/recovery/three_phase_recovery.h"
#include "src/three_phase/participant_state.h"
#include "src/tm/services.h"

namespace xa::internal {
BackgroundCompleter::BackgroundCompleter(const Services* services)
    : services_(services), retrier_(RetrierOptions{services->clock, "tm", 0}) {}

BackgroundCompleter::~BackgroundCompleter() { Stop(); }

void BackgroundCompleter::Start() { retrier_.Start(); }

void BackgroundCompleter::Stop() {
  retrier_.Stop();  // dropped jobs are logged by Dropped(), on this thread
  sessions_.clear();
}

void BackgroundCompleter::SubmitEnd(const Xid& global_xid, Protocol protocol) {
  // AppendLazy never waits for the log: written here, or by the log batch in progress.
  services_->WriteEnd(global_xid, protocol);
  services_->in_flight->Remove(global_xid);
}

void BackgroundCompleter::Submit(CompletionJob job, FirstAttempt first) {
  services_->in_flight->Add(job.xid);  // no-op when the coordinator registered it
  services_->in_flight->MarkBackground(job.xid);
  services_->in_flight->MarkPrepareStarted(job.xid, services_->clock->SteadyNow());
  MetricsRegistry::Add(services_->metrics->handed_to_background);
  services_->metrics->background_pending.fetch_add(1, std::memory_order_relaxed);
  XA_LOG_XID(kInfo, "tm", job.xid)
      << "background completion of " << DecisionName(job.decision) << " ("
      << job.origin << ") for "
      << std::count_if(job.branches.begin(), job.branches.end(),
                       [](const BranchState& b) { return !IsFinished(b.end); })
      << " branch(es)";

  const RetryPolicy& policy = services_->options->background_retry;
  RetryJob retry;
  retry.name = "background " + std::string(DecisionName(job.decision)) + " of " +
               job.xid.ToString() + " (" + job.origin + ")";
  // Never a give-up (see the header: P3).
  retry.schedule = RetryForever(policy);
  // std::function needs a copyable callable: the job is shared by its attempt and its end.
  auto shared = std::make_shared<CompletionJob>(std::move(job));
  retry.attempt = [this, shared] { return Attempt(*shared); };
  retry.on_end = [this, shared](JobEnd end, const Status& last) {
    if (end == JobEnd::kDone) {
      Finish(*shared);
      return;
    }
    if (end == JobEnd::kGaveUp) {  // not by this schedule and these attempts: a defect
      XA_LOG_XID(kError, "tm", shared->xid)
          << "background completion gave up, which it never should: " << last.ToString();
    }
    Dropped(*shared);
  };
  retrier_.Submit(std::move(retry), first == FirstAttempt::kNow
                                        ? std::chrono::microseconds::zero()
                                        : policy.BackoffBefore(1));
}

Status BackgroundCompleter::WaitIdle(std::chrono::milliseconds timeout) {
  if (retrier_.WaitIdle(timeout)) return Status::Ok();
  return Status(Code::kTimeout, std::to_string(retrier_.pending()) +
                                    " transaction(s) still waiting for background completion "
                                    "(an RM is unreachable?)");
}

size_t BackgroundCompleter::pending() const { return retrier_.pending(); }

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

JobOutcome BackgroundCompleter::Attempt(CompletionJob& job) {
  size_t failed = 0;
  Status first_failure;
  for (BranchState& b : job.branches) {
    if (IsFinished(b.end)) continue;
    AttemptBranch(job, b);
    if (IsFinished(b.end)) continue;
    if (failed++ == 0) first_failure = b.last.WithContext("branch on '" + b.rm_name + "'");
  }
  if (failed == 0) return TellAgents(job);
  if (failed > 1) {
    first_failure = first_failure.WithContext(std::to_string(failed) + " branches pending");
  }
  return JobOutcome::RetryLater(first_failure);
}

JobOutcome BackgroundCompleter::TellAgents(CompletionJob& job) {
  if (job.agents_to_tell.empty()) return JobOutcome::Done();
  const Clock::SteadyTime deadline = services_->clock->DeadlineAfter(job.agent_timeout);
  std::vector<AgentToTell> still;
  Status first_failure;
  for (const AgentToTell& agent : job.agents_to_tell) {
    // Every branch of the job is finished now; a branch not in the job was read-only, finished
    // at its vote.
    const BranchEnd finished =
        job.decision == Decision::kCommit ? BranchEnd::kCommitted : BranchEnd::kRolledBack;
    bool branch_done = true;
    for (const BranchState& b : job.branches) {
      if (b.xid == agent.branch) branch_done = b.end == finished;
    }
    AgentAnswer answer = TellAgentTheDecision(*job.agents, agent.rm_name, job.xid,
                                              agent.participant, job.decision, branch_done,
                                              deadline);
    if (AcknowledgesDecision(answer, job.decision, /*branch_finished=*/true)) continue;
    if (first_failure.ok()) {
      first_failure =
          answer.state
              ? Status(Code::kRetry, "the agent of '" + agent.rm_name + "' answered " +
                                         std::string(three_phase::ParticipantStateName(
                                             *answer.state)))
              : answer.error.WithContext("the agent of '" + agent.rm_name + "'");
    }
    still.push_back(agent);
  }
  job.agents_to_tell = std::move(still);
  if (job.agents_to_tell.empty()) return JobOutcome::Done();
  return JobOutcome::RetryLater(first_failure.WithContext(
      std::to_string(job.agents_to_tell.size()) +
      " agent(s) have not acknowledged the decision, so it is not ended yet"));
}

void BackgroundCompleter::AttemptBranch(const CompletionJob& job, BranchState& branch) {
  Status error;
  ResourceManager* session = Session(branch.rm_name, &error);
  const FinishCall call = FinishCallFor(job.decision);
  if (session == nullptr) {
    branch.NoCall(error);  // try again later
  } else {
    Status s = job.decision == Decision::kCommit
                   ? session->Commit(branch.xid, CommitMode::kTwoPhase)
                   : session->Rollback(branch.xid);
    XA_LOG_XID(kDebug, "tm", branch.xid) << "background " << FinishCallName(call) << " on '"
                                         << branch.rm_name << "': " << CodeName(s.code());
    branch.Apply(call, s);
    // The connection is gone: the next attempt reconnects.
    if (!IsFinished(branch.end) && s.code() == Code::kRmFail) sessions_.erase(branch.rm_name);
  }
  if (!IsFinished(branch.end)) MetricsRegistry::Add(services_->metrics->phase2_retries);
}

void BackgroundCompleter::Finish(CompletionJob& job) {
  std::vector<const BranchState*> at_conclusion;
  at_conclusion.reserve(job.branches.size());
  for (const BranchState& b : job.branches) at_conclusion.push_back(&b);
  Conclusion conclusion = Conclude(job.decision, at_conclusion);
  const Outcome outcome = conclusion.outcome;
  bool may_forget = true;
  if (conclusion.record_heuristic) {
    may_forget = services_->PersistHeuristic(job.xid, job.protocol, conclusion);
  }
  for (const BranchState& b : job.branches) {
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

void BackgroundCompleter::Dropped(const CompletionJob& job) {
  XA_LOG_XID(kWarning, "tm", job.xid)
      << "manager stopping with " << DecisionName(job.decision) << " still pending; "
      << (job.decision_logged ? "the decision is open in the log and recovery will finish it"
                              : "recovery will roll it back");
  services_->metrics->background_pending.fetch_sub(1, std::memory_order_relaxed);
  services_->in_flight->Remove(job.xid);
}

}  // namespace xa::internal
