#include "src/tm/recovery_hook.h"

#include <string>
#include <vector>

#include "src/base/logging.h"
#include "src/tm/background_completer.h"
#include "src/tm/tcc_coordinator.h"

namespace xa::internal {
namespace {

RecoveryOptions EngineOptions(const Services* services, three_phase::AgentClient* agents,
                              std::chrono::milliseconds agent_timeout) {
  RecoveryOptions options;
  options.agents = agents;
  options.agent_timeout = agent_timeout;
  options.node_id = services->options->node_id;
  auto timeout = services->options->transaction_timeout;
  options.orphan_min_age = timeout.count() > 0 ? timeout : std::chrono::milliseconds(60'000);
  options.env = services->options->env;
  options.marker = services->options->marker_commit;
  options.tcc = services->options->tcc;
  options.saga = services->options->saga;
  InFlightRegistry* in_flight = services->in_flight;
  options.in_flight = [in_flight](const Xid& global) { return in_flight->Contains(global); };
  return options;
}

}  // namespace

RecoveryRunner::RecoveryRunner(const Services* services, three_phase::AgentClient* agents,
                               std::chrono::milliseconds agent_timeout)
    : services_(services),
      engine_(*services->log, {}, EngineOptions(services, agents, agent_timeout)) {}

RecoveryRunner::~RecoveryRunner() { Stop(); }

Result<RecoveryReport> RecoveryRunner::RunOnce() {
  std::vector<std::unique_ptr<ResourceManager>> sessions;
  std::vector<ResourceManager*> rms;
  for (const auto& [name, factory] : services_->options->resource_managers) {
    Result<std::unique_ptr<ResourceManager>> session = services_->OpenSession(name);
    if (session.ok()) {
      sessions.push_back(std::move(session).value());
    } else {
      sessions.push_back(MakeUnreachableResourceManager(name, session.status()));
    }
    rms.push_back(sessions.back().get());
  }
  if (rms.empty() && services_->options->tcc.participants.empty() &&
      services_->options->saga.operations.empty()) {
    return Status(Code::kConfig, "no resource-manager factory and no TCC participant is "
                                 "registered: recovery has nothing to scan or call");
  }
  engine_.SetResourceManagers(rms);
  Result<RecoveryReport> report = engine_.Run();
  engine_.SetResourceManagers({});
  if (report.ok()) {
    bool acted = report->committed + report->rolled_back + report->end_records_written > 0;
    if (acted) {
      XA_LOG(kInfo, "recovery")
          << "pass: " << report->committed << " committed, " << report->rolled_back
          << " rolled back, " << report->end_records_written << " ended, "
          << report->decisions_still_open << " decisions still open, "
          << report->orphans_deferred << " orphans deferred, " << report->awaiting_agents
          << " awaiting 3PC agents, " << report->foreign
          << " foreign left alone";
    }
  }
  return report;
}

Status RecoveryRunner::RecoverOnOpen() {
  LogState state = services_->log->State();
  for (const auto& [xid, record] : state.open_decisions) {
    for (const Participant& p : record.participants) {
      if (services_->options->resource_managers.count(p.rm_name) == 0) {
        return Status(Code::kConfig,
                      "the decision log holds an open commit decision for " + xid.ToString() +
                          " with a branch on resource manager '" + p.rm_name +
                          "', which has no factory: register it in "
                          "TransactionManagerOptions::resource_managers so recovery can finish "
                          "the commit");
      }
    }
  }
  for (const auto& [xid, record] : state.open_tcc) {
    for (const Participant& p : record.participants) {
      const bool saga = record.protocol == Protocol::kSaga;
      const bool registered = saga ? services_->options->saga.operations.count(p.rm_name) != 0
                                   : services_->options->tcc.participants.count(p.rm_name) != 0;
      if (!registered) {
        return Status(Code::kConfig,
                      std::string("the decision log holds an open ") +
                          (saga ? "saga " : "TCC transaction ") + xid.ToString() + " with " +
                          (saga ? "operation '" : "participant '") + p.rm_name +
                          "', which is not registered: register it in "
                          "TransactionManagerOptions::" + (saga ? "saga" : "tcc") +
                          " so recovery can " +
                          (saga ? "finish"
                                : record.type == RecordType::kTccConfirm ? "confirm" : "cancel") +
                          " it");
      }
    }
  }
  for (const auto& [xid, record] : state.open_heuristics) {
    XA_LOG_XID(kWarning, "recovery", xid)
        << "heuristic outcome " << OutcomeName(record.outcome)
        << " not yet cleared by an operator: " << record.reason;
  }
  if (services_->options->resource_managers.empty() &&
      services_->options->tcc.participants.empty() &&
      services_->options->saga.operations.empty()) {
    return Status::Ok();
  }
  Result<RecoveryReport> report = RunOnce();
  if (!report.ok()) return report.status();

  // TCC transactions the pass could not finish (a participant unreachable): the TCC
  // coordinator's retrier repeats their calls until they are finished.
  if (services_->tcc != nullptr) {
    LogState after = services_->log->State();
    for (const auto& [xid, record] : after.open_tcc) {
      if (services_->in_flight->Contains(xid)) continue;
      // Presumed cancel needs an undamaged log (see src/recovery/tcc_recovery.h).
      if (after.damaged && record.type != RecordType::kTccConfirm) continue;
      services_->tcc->SubmitRecovered(record);
    }
  }

  // Decisions the pass could not finish (an RM unreachable, a call failed): the background
  // completer retries them forever.
  for (const auto& [xid, record] : services_->log->State().open_decisions) {
    if (record.protocol == Protocol::kThreePhase) {
      // The 3PC recovery module ends it once every agent acknowledged the outcome; the
      // background completer would end it when the branches are finished, without the agents.
      XA_LOG_XID(kWarning, "recovery", xid)
          << "open 3PC record (lsn " << record.lsn
          << ") left for the 3PC recovery module's next pass (the agents decide or acknowledge)";
      continue;
    }
    if (services_->in_flight->Contains(xid)) continue;
    CompletionJob job;
    job.xid = xid;
    job.protocol = record.protocol;
    job.decision = Decision::kCommit;
    job.decision_logged = true;
    job.origin = "recovery";
    for (const Participant& p : record.participants) {
      BranchState branch;
      branch.rm_name = p.rm_name;
      branch.xid = p.branch;
      // An earlier run may have committed it (NOTA means done); a decided branch was prepared.
      branch.history = {/*maybe_applied=*/true, /*maybe_prepared=*/true};
      job.branches.push_back(std::move(branch));
    }
    XA_LOG_XID(kInfo, "recovery", xid) << "open commit decision (lsn " << record.lsn
                                       << ") left for the background: "
                                       << job.branches.size() << " branch(es)";
    services_->completer->Submit(std::move(job), FirstAttempt::kNow);
  }
  return Status::Ok();
}

void RecoveryRunner::StartPeriodic(std::chrono::milliseconds first_delay,
                                   std::chrono::milliseconds interval) {
  if (interval.count() <= 0 || services_->options->resource_managers.empty()) return;
  thread_ = std::thread([this, first_delay, interval] { Loop(first_delay, interval); });
}

void RecoveryRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RecoveryRunner::Loop(std::chrono::milliseconds first_delay,
                          std::chrono::milliseconds interval) {
  std::chrono::milliseconds wait = first_delay;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (services_->clock->WaitFor(lock, wake_, wait, [this] { return stopping_; })) return;
    }
    Result<RecoveryReport> report = RunOnce();
    if (!report.ok()) {
      XA_LOG(kWarning, "recovery") << "background pass failed: " << report.status().ToString();
    }
    wait = interval;
  }
}

}  // namespace xa::internal
