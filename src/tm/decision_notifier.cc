#include "src/tm/decision_notifier.h"

#include <atomic>
#include <utility>

#include "src/base/logging.h"
#include "src/recovery/three_phase_recovery.h"
#include "src/testing/sync_points.h"
#include "src/three_phase/termination.h"
#include "src/tm/background_completer.h"
#include "src/tm/in_flight.h"
#include "src/tm/services.h"

namespace xa::internal {

bool TellAgent(three_phase::AgentClient& agents, const Xid& global, const AgentNotice& notice,
               Decision decision, Clock::SteadyTime deadline) {
  const bool commit = decision == Decision::kCommit;
  AgentAnswer answer = TellAgentTheDecision(agents, notice.rm_name, global, notice.participant,
                                            decision, notice.branch_done, deadline);
  const bool acknowledged = AcknowledgesDecision(answer, decision, notice.branch_finished);
  if (!answer.state) {
    XA_LOG_XID(kWarning, "tm", notice.branch)
        << "the agent of '" << notice.rm_name << "' did not acknowledge "
        << (commit ? "DoCommit" : "Abort") << " (it learns the outcome by termination): "
        << answer.error.ToString();
  } else if (!acknowledged && three_phase::IsDecided(*answer.state)) {
    XA_LOG_XID(kError, "tm", notice.branch)
        << "the agent of '" << notice.rm_name << "' holds "
        << three_phase::ParticipantStateName(*answer.state) << " where the coordinator decided "
        << (commit ? "COMMIT" : "ABORT") << ": heuristic mixed outcome";
  }
  return acknowledged;
}

struct DecisionNotifier::Job {
  DecisionNotice notice;
  std::vector<char> acknowledged;  // per agent, each written by its own call only
  std::atomic<size_t> remaining{0};
};

DecisionNotifier::DecisionNotifier(const Services* services, three_phase::AgentClient* agents,
                                   std::chrono::milliseconds ack_timeout)
    : services_(services), agents_(agents), ack_timeout_(ack_timeout) {}

DecisionNotifier::~DecisionNotifier() { Stop(); }

bool DecisionNotifier::Submit(DecisionNotice notice) {
  auto job = std::make_shared<Job>();
  job->acknowledged.assign(notice.agents.size(), 0);
  job->remaining = notice.agents.size();
  job->notice = std::move(notice);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    jobs_[job->notice.xid] = job;
  }
  if (job->notice.agents.empty()) {
    Conclude(*job);
    return true;
  }
  for (size_t k = 0; k < job->notice.agents.size(); ++k) {
    // A post refused because Stop() began leaves the job to Stop(), which releases it.
    if (!pool_.Post([this, job, k] { TellOne(job, k); })) break;
  }
  return true;
}

void DecisionNotifier::TellOne(const std::shared_ptr<Job>& job, size_t k) {
  const AgentNotice& agent = job->notice.agents[k];
  XA_TEST_SYNC_POINT(kThreePhaseBeforeDoCommit);
  job->acknowledged[k] = TellAgent(*agents_, job->notice.xid, agent, Decision::kCommit,
                                   services_->clock->DeadlineAfter(ack_timeout_));
  // The last call to return concludes; the fetch_sub orders every call's flag before it.
  if (job->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) Conclude(*job);
}

void DecisionNotifier::Conclude(const Job& job) {
  bool every_agent_acknowledged = true;
  for (char acknowledged : job.acknowledged) {
    every_agent_acknowledged = every_agent_acknowledged && acknowledged != 0;
  }
  if (every_agent_acknowledged) {
    services_->completer->SubmitEnd(job.notice.xid, Protocol::kThreePhase);
  } else {
    XA_LOG_XID(kWarning, "tm", job.notice.xid)
        << "committed, but not every agent acknowledged DoCommit: the commit decision stays "
           "open for the 3PC recovery module";
    services_->in_flight->Remove(job.notice.xid);
  }
  Forget(job.notice.xid);
}

void DecisionNotifier::Forget(const Xid& xid) {
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.erase(xid);
  if (jobs_.empty()) idle_.notify_all();
}

Status DecisionNotifier::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (idle_.wait_for(lock, timeout, [this] { return jobs_.empty(); })) return Status::Ok();
  return Status(Code::kTimeout, std::to_string(jobs_.size()) +
                                    " committed transaction(s) still telling their agents "
                                    "DoCommit after " +
                                    std::to_string(timeout.count()) + " ms");
}

size_t DecisionNotifier::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

void DecisionNotifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  // The notices already submitted go out first (a timeout here only means some are dropped).
  Status drained = WaitIdle(2 * ack_timeout_);
  if (!drained.ok()) {
    XA_LOG(kWarning, "tm") << "stopping before every agent was told DoCommit: "
                           << drained.ToString();
  }
  pool_.Stop();  // the calls in progress conclude their jobs; the queued ones are dropped
  std::map<Xid, std::shared_ptr<Job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(jobs_);
    idle_.notify_all();
  }
  for (const auto& [xid, job] : dropped) {
    XA_LOG_XID(kWarning, "tm", xid)
        << "the manager stopped before every agent was told DoCommit: the commit decision "
           "stays open for recovery";
    services_->in_flight->Remove(xid);
  }
}

}  // namespace xa::internal
