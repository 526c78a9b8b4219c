#include "src/tm/manager_core.h"

#include <chrono>

#include "src/base/logging.h"
#include "src/recovery/recovery_module.h"
#include "src/testing/crash_points.h"
#include "src/tm/marker_commit_coordinator.h"
#include "src/tm/recovery_hook.h"
#include "src/tm/three_phase_coordinator.h"
#include "src/tm/two_phase_coordinator.h"

namespace xa::internal {
namespace {

using SteadyTime = Clock::SteadyTime;

Status NotActive(const TxnContext& txn, const char* what) {
  return Status(Code::kProto, std::string("cannot ") + what + " transaction " + txn.xid.ToString() +
                                  ": it is " +
                                  std::string(TransactionStateName(txn.state)));
}

Status TccNotActive(const TccContext& txn, const char* what) {
  return Status(Code::kProto, std::string("cannot ") + what +
                                  (txn.protocol == Protocol::kSaga ? " saga " : " TCC transaction ") +
                                  txn.xid.ToString() + ": it is " +
                                  std::string(TransactionStateName(txn.state)));
}

// 0 or more than 100 turn the CPU gauge off (see TransactionManagerOptions).
bool SequentialPhasesWhenBusy(const TransactionManagerOptions& options) {
  return options.sequential_phases_at_cpu_percent > 0 &&
         options.sequential_phases_at_cpu_percent <= 100;
}

// Where a transaction stands once its commit or rollback returned `outcome`.
TransactionState StateAfter(Outcome outcome) {
  switch (outcome) {
    case Outcome::kCommitted:
    case Outcome::kCommittedCompletionPending:
      return TransactionState::kCommitted;
    case Outcome::kRolledBack:
      return TransactionState::kRolledBack;
    default:
      return TransactionState::kHeuristic;
  }
}

}  // namespace

ManagerCore::ManagerCore(TransactionManagerOptions options, DecisionLog& log)
    : options_(std::move(options)),
      log_(log),
      xids_(options_.node_id, (options_.env != nullptr ? options_.env : Env::Default())->clock()) {
  std::unique_ptr<CpuLoadGauge> cpu_load;
  if (SequentialPhasesWhenBusy(options_)) {
    cpu_load = std::make_unique<CpuLoadGauge>(options_.sequential_phases_at_cpu_percent,
                                              std::chrono::milliseconds(100),
                                              &CpuLoadGauge::ReadProcStat);
  }
  executor_ = std::make_unique<PhaseExecutor>(options_.phase_threads, std::move(cpu_load),
                                              &metrics_.phases_sequential_cpu_busy);
  services_.options = &options_;
  services_.clock = (options_.env != nullptr ? options_.env : Env::Default())->clock();
  services_.log = &log_;
  services_.executor = executor_.get();
  services_.metrics = &metrics_;
  services_.in_flight = &in_flight_;
  for (const auto& [name, factory] : options_.resource_managers) latencies_[name];
  services_.latencies = &latencies_;
  completer_ = std::make_unique<BackgroundCompleter>(&services_);
  services_.completer = completer_.get();
  two_phase_ = std::make_unique<TwoPhaseCoordinator>(&services_);
}

Status ManagerCore::WaitForBackgroundWork(std::chrono::milliseconds timeout) {
  const Clock::SteadyTime deadline = services_.clock->DeadlineAfter(timeout);
  if (notifier_ != nullptr) XA_RETURN_IF_ERROR(notifier_->WaitIdle(timeout));
  // What is left of the timeout (a notice may have handed its transaction to the completer).
  auto left = [&] {
    return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - services_.clock->SteadyNow()),
                    std::chrono::milliseconds(0));
  };
  if (tcc_ != nullptr) XA_RETURN_IF_ERROR(tcc_->WaitIdle(left()));
  return completer_->WaitIdle(left());
}

Result<RecoveryReport> ManagerCore::RunRecovery() {
  if (recovery_ == nullptr) return Status(Code::kProto, "the transaction manager is not open");
  return recovery_->RunOnce();
}

ManagerCore::~ManagerCore() {
  if (recovery_ != nullptr) recovery_->Stop();
  if (notifier_ != nullptr) notifier_->Stop();
  if (tcc_ != nullptr) tcc_->Stop();
  completer_->Stop();
  if (marker_cleaner_ != nullptr) marker_cleaner_->Stop();
  int64_t open = in_flight_.size() - static_cast<int64_t>(completer_->pending());
  if (open > 0) {
    XA_LOG(kError, "tm") << "transaction manager destroyed with " << open
                         << " transaction(s) still open: every Transaction must be destroyed "
                            "before its manager";
  }
}

Status ManagerCore::Start() {
  if (log_.options().node_id != options_.node_id) {
    return Status(Code::kConfig, "the decision log belongs to node " +
                                     std::to_string(log_.options().node_id) +
                                     " but the manager is node " +
                                     std::to_string(options_.node_id) +
                                     ": use the same node_id in LogOptions and "
                                     "TransactionManagerOptions");
  }
  for (const auto& [name, factory] : options_.resource_managers) {
    if (name.empty() || !factory) {
      return Status(Code::kConfig, "resource-manager factory '" + name +
                                       "' is empty: every registered name needs a factory");
    }
  }
  XA_RETURN_IF_ERROR(StartThreePhase());
  XA_RETURN_IF_ERROR(StartMarkerCommit());
  Result<TccParticipants> finishers = FinishersOf(options_.tcc, options_.saga);
  if (!finishers.ok()) return finishers.status();
  if (!finishers->empty()) {
    tcc_ = std::make_unique<TccCoordinator>(&services_, std::move(*finishers));
    services_.tcc = tcc_.get();
  }
  // Made once the agents are known: the 3PC recovery module asks them for outcomes (the PreCommit
  // acknowledgement timeout bounds each question, as on the normal path).
  recovery_ = std::make_unique<RecoveryRunner>(&services_, agents_.get(),
                                               options_.three_phase.ack_timeout);
  completer_->Start();
  if (tcc_ != nullptr) tcc_->Start();
  XA_LOG(kInfo, "tm") << "transaction manager node " << options_.node_id << " opened with "
                      << options_.resource_managers.size() << " resource manager(s), "
                      << options_.tcc.participants.size() << " TCC participant(s), "
                      << options_.saga.operations.size() << " compensable operation(s), "
                      << options_.phase_threads << " phase thread(s)"
                      << (SequentialPhasesWhenBusy(options_)
                              ? ", sequential phases while the CPUs are >= " +
                                    std::to_string(options_.sequential_phases_at_cpu_percent) +
                                    "% busy"
                              : std::string());
  if (options_.recover_on_open) {
    XA_RETURN_IF_ERROR(recovery_->RecoverOnOpen());
    recovery_->StartPeriodic(options_.recovery_first_pass_delay, options_.recovery_interval);
  }
  return Status::Ok();
}

Status ManagerCore::StartThreePhase() {
  const ThreePhaseOptions& options = options_.three_phase;
  if (options.agents.empty()) return Status::Ok();
  three_phase::AgentDirectory directory;
  for (const ThreePhaseAgent& agent : options.agents) {
    if (!directory.address_of_agent.emplace(agent.name, agent.address).second) {
      return Status(Code::kConfig, "three_phase.agents names agent '" + agent.name +
                                       "' twice: give each agent one entry");
    }
    for (const std::string& rm : agent.rms) {
      auto [it, added] = directory.agent_of_rm.emplace(rm, agent.name);
      if (!added) {
        return Status(Code::kConfig, "resource manager '" + rm + "' belongs to agents '" +
                                         it->second + "' and '" + agent.name +
                                         "': each belongs to exactly one agent");
      }
      if (options_.resource_managers.find(rm) == options_.resource_managers.end()) {
        return Status(Code::kConfig, "agent '" + agent.name + "' stands for resource manager '" +
                                         rm + "', which has no factory in resource_managers: "
                                         "register one, or remove it from the agent");
      }
    }
  }
  XA_RETURN_IF_ERROR(directory.Validate());
  if (options.vote_timeout.count() <= 0 || options.ack_timeout.count() <= 0) {
    return Status(Code::kConfig, "three_phase.vote_timeout and ack_timeout must be positive");
  }
  Result<net::SharedKey> key = net::LoadSharedKey(options.key_file);
  if (!key.ok()) return key.status().WithContext("three_phase.key_file");
  agent_key_.emplace(std::move(*key));
  transport_ = net::NewTcpTransport(services_.clock);
  std::string name = options.name.empty() ? "tm-node-" + std::to_string(options_.node_id)
                                          : options.name;
  agents_ = std::make_unique<three_phase::AgentClient>(transport_.get(), &*agent_key_,
                                                       std::move(name), std::move(directory));
  notifier_ = std::make_unique<DecisionNotifier>(&services_, agents_.get(), options.ack_timeout);
  three_phase_ = std::make_unique<ThreePhaseCoordinator>(&services_, agents_.get(),
                                                         notifier_.get(), &options);
  return Status::Ok();
}

Status ManagerCore::StartMarkerCommit() {
  const MarkerCommitOptions& marker = options_.marker_commit;
  if (marker.rm.empty()) return Status::Ok();
  if (options_.resource_managers.find(marker.rm) == options_.resource_managers.end()) {
    return Status(Code::kConfig, "marker_commit.rm names resource manager '" + marker.rm +
                                     "', which has no factory in resource_managers: register "
                                     "one, or name another");
  }
  if (std::string error = MarkerTableNameError(marker.table); !error.empty()) {
    return Status(Code::kConfig, "marker_commit.table: " + error);
  }
  if (marker.settle_wait.count() <= 0 || marker.cleanup_interval.count() <= 0) {
    return Status(Code::kConfig,
                  "marker_commit.settle_wait and cleanup_interval must be positive");
  }
  // The table must be there before the first transaction relies on it.
  Result<std::unique_ptr<ResourceManager>> session = services_.OpenSession(marker.rm);
  Status readable = session.ok() ? (*session)
                                       ->ListCommitMarkers(marker.table, options_.node_id, 0)
                                       .status()
                                 : session.status();
  if (!readable.ok()) {
    return Status(Code::kConfig, "marker_commit: the marker table '" + marker.table +
                                     "' cannot be read on '" + marker.rm + "' (" +
                                     readable.ToString() +
                                     "): create it and grant SELECT, INSERT, DELETE on it "
                                     "(docs/marker-commit.md)");
  }
  marker_cleaner_ = std::make_unique<MarkerCleaner>(&services_, &options_.marker_commit);
  marker_cleaner_->Start();
  marker_commit_ = std::make_unique<MarkerCommitCoordinator>(&services_, marker_cleaner_.get());
  return Status::Ok();
}

Coordinator* ManagerCore::CoordinatorFor(Protocol protocol) noexcept {
  switch (protocol) {
    case Protocol::kOnePhase:  // a 2PC transaction restricted to one branch
    case Protocol::kTwoPhase:
      return two_phase_.get();
    case Protocol::kThreePhase:
      return three_phase_.get();
    case Protocol::kMarkerCommit:
      return marker_commit_.get();
    case Protocol::kTcc:  // TCC transactions and sagas have their own handles
    case Protocol::kSaga:
      return nullptr;
  }
  return nullptr;
}

Result<Transaction> ManagerCore::Begin(const TransactionOptions& options) {
  if (CoordinatorFor(options.protocol) == nullptr) {
    return Status(Code::kNotSupported,
                  std::string(ProtocolName(options.protocol)) +
                      " is not available in this manager: three-phase commit needs participant "
                      "agents (TransactionManagerOptions::three_phase), marker commit a marker "
                      "table (TransactionManagerOptions::marker_commit); or use "
                      "Protocol::kTwoPhase");
  }
  auto txn = std::make_unique<TxnContext>();
  txn->xid = xids_.Next(options.protocol);
  txn->protocol = options.protocol;
  txn->begun_at = services_.clock->SteadyNow();
  std::chrono::milliseconds timeout =
      options.timeout.count() > 0 ? options.timeout : options_.transaction_timeout;
  txn->deadline = timeout.count() > 0 ? txn->begun_at + timeout : SteadyTime::max();
  in_flight_.Add(txn->xid);
  MetricsRegistry::Add(metrics_.begun);
  XA_LOG_XID(kDebug, "tm", txn->xid) << "begin " << ProtocolName(options.protocol);
  return Transaction(this, std::move(txn));
}

bool ManagerCore::TimedOut(const TxnContext& txn) const noexcept {
  return txn.deadline != SteadyTime::max() && services_.clock->SteadyNow() > txn.deadline;
}

Outcome ManagerCore::RollBackTimedOut(TxnContext& txn) {
  MetricsRegistry::Add(metrics_.timeouts);
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(services_.clock->SteadyNow() - txn.begun_at);
  Status reason(Code::kRbTimeout, "transaction " + txn.xid.ToString() + " ran for " +
                                      std::to_string(age.count()) +
                                      " ms, past its timeout: rolled back");
  XA_LOG_XID(kInfo, "tm", txn.xid) << reason.message();
  return CoordinatorFor(txn.protocol)->Rollback(txn, reason);
}

Status ManagerCore::Enlist(TxnContext& txn, ResourceManager& rm) {
  if (txn.state != TransactionState::kActive) return NotActive(txn, "enlist in");
  if (TimedOut(txn)) {
    Outcome outcome = RollBackTimedOut(txn);
    Status reason = txn.last_status;
    Finish(txn, outcome);
    return reason;
  }
  const std::string& name = rm.name();
  if (options_.resource_managers.count(name) == 0) {
    return Status(Code::kConfig,
                  "resource manager '" + name +
                      "' has no factory in TransactionManagerOptions::resource_managers: a "
                      "branch on it could not be completed after a crash, so it is not enlisted");
  }
  for (const BranchContext& b : txn.branches) {
    if (b.rm == &rm) {
      return Status(Code::kProto, "session of '" + name + "' is already enlisted in " +
                                      txn.xid.ToString() + " (one branch per session)");
    }
  }
  if (txn.protocol == Protocol::kOnePhase && !txn.branches.empty()) {
    return Status(Code::kProto, "a one-phase transaction has a single branch; begin it with "
                                "Protocol::kTwoPhase to enlist '" + name + "' too");
  }
  if (txn.branches.size() >= 0xffff) {
    return Status(Code::kProto, "too many branches in " + txn.xid.ToString());
  }
  BranchContext branch;
  branch.rm = &rm;
  branch.rm_name = name;
  branch.xid = txn.xid.WithBranch(static_cast<uint16_t>(txn.branches.size()));
  branch.latency = services_.LatencyOf(name);
  Status s = rm.Start(branch.xid, StartFlag::kNoFlags);
  XA_LOG_XID(kDebug, "tm", branch.xid) << "start(TMNOFLAGS) on '" << name << "': "
                                       << CodeName(s.code());
  // Named by what it is for every resource manager: PostgreSQL has no XA START (its branch
  // begins with the first statement), and the resource manager's message says what failed.
  if (!s.ok()) return s.WithContext("enlisting a branch on '" + name + "'");
  XA_CRASH_POINT(kAfterStart);
  txn.branches.push_back(std::move(branch));
  return Status::Ok();
}

Result<Outcome> ManagerCore::Commit(TxnContext& txn) {
  if (txn.state != TransactionState::kActive) return NotActive(txn, "commit");
  SteadyTime start = services_.clock->SteadyNow();
  Outcome outcome;
  if (TimedOut(txn)) {
    outcome = RollBackTimedOut(txn);
  } else if (!txn.rollback_only.ok()) {
    XA_LOG_XID(kInfo, "tm", txn.xid) << "rollback-only at commit: "
                                     << txn.rollback_only.ToString();
    outcome = CoordinatorFor(txn.protocol)->Rollback(txn, txn.rollback_only);
  } else {
    outcome = CoordinatorFor(txn.protocol)->Commit(txn);
  }
  metrics_.total_commit.Record(services_.clock->SteadyNow() - start);
  Finish(txn, outcome);
  return outcome;
}

Status ManagerCore::Rollback(TxnContext& txn) {
  if (txn.state != TransactionState::kActive) return NotActive(txn, "roll back");
  Outcome outcome = CoordinatorFor(txn.protocol)->Rollback(txn, Status::Ok());
  Finish(txn, outcome);
  if (outcome == Outcome::kRolledBack) return Status::Ok();
  return txn.last_status;
}

void ManagerCore::RollbackOnDestroy(TxnContext& txn) noexcept {
  if (txn.state != TransactionState::kActive) return;
  XA_LOG_XID(kInfo, "tm", txn.xid) << "transaction handle destroyed while active: rolling back";
  Outcome outcome = CoordinatorFor(txn.protocol)->Rollback(
      txn, Status(Code::kRbRollback, "the Transaction handle was destroyed before Commit()"));
  Finish(txn, outcome);
}

Result<TccTransaction> ManagerCore::BeginTcc(std::chrono::milliseconds timeout) {
  if (options_.tcc.participants.empty()) {
    return Status(Code::kNotSupported, "TCC is not available in this manager: register its "
                                       "participants in TransactionManagerOptions::tcc");
  }
  return TccTransaction(this, NewTccContext(Protocol::kTcc, timeout));
}

Result<SagaTransaction> ManagerCore::BeginSaga(std::chrono::milliseconds timeout) {
  if (options_.saga.operations.empty()) {
    return Status(Code::kNotSupported, "sagas are not available in this manager: register "
                                       "their operations in TransactionManagerOptions::saga");
  }
  return SagaTransaction(this, NewTccContext(Protocol::kSaga, timeout));
}

std::unique_ptr<TccContext> ManagerCore::NewTccContext(Protocol protocol,
                                                       std::chrono::milliseconds timeout) {
  auto txn = std::make_unique<TccContext>();
  txn->protocol = protocol;
  txn->xid = xids_.Next(protocol);
  txn->begun_at = services_.clock->SteadyNow();
  if (timeout.count() <= 0) timeout = options_.transaction_timeout;
  txn->deadline = timeout.count() > 0 ? Clock::AddSaturating(txn->begun_at, timeout)
                                      : Clock::kNoDeadline;
  in_flight_.Add(txn->xid);
  MetricsRegistry::Add(metrics_.begun);
  XA_LOG_XID(kDebug, "tcc", txn->xid) << "begin " << ProtocolName(protocol);
  return txn;
}

Status ManagerCore::TccEnlist(TccContext& txn, std::string_view participant,
                              std::string payload) {
  if (txn.state != TransactionState::kActive) {
    return TccNotActive(txn, "enlist in");
  }
  return tcc_->Enlist(txn, participant, std::move(payload));
}

Result<Outcome> ManagerCore::TccCommit(TccContext& txn) {
  if (txn.state != TransactionState::kActive) {
    return TccNotActive(txn, "commit");
  }
  if (txn.branches.empty()) {
    return Status(Code::kProto, std::string(ProtocolName(txn.protocol)) + " transaction " +
                                    txn.xid.ToString() +
                                    " has nothing enlisted: Enlist() one before Commit()");
  }
  SteadyTime start = services_.clock->SteadyNow();
  Outcome outcome = tcc_->Commit(txn);
  metrics_.total_commit.Record(services_.clock->SteadyNow() - start);
  FinishTcc(txn, outcome);
  return outcome;
}

Status ManagerCore::TccAbandon(TccContext& txn) {
  if (txn.state != TransactionState::kActive) {
    return TccNotActive(txn, "abandon");
  }
  txn.last_status = Status(Code::kRbRollback, "abandoned before Commit(): no participant called");
  FinishTcc(txn, Outcome::kRolledBack);
  return Status::Ok();
}

void ManagerCore::FinishTcc(TccContext& txn, Outcome outcome) {
  txn.state = StateAfter(outcome);
  Finished(txn.xid, txn.handed_off, txn.last_status, outcome, "tcc");
}

void ManagerCore::Finish(TxnContext& txn, Outcome outcome) {
  txn.state = StateAfter(outcome);
  Finished(txn.xid, txn.handed_off, txn.last_status, outcome, "tm");
}

void ManagerCore::Finished(const Xid& xid, bool handed_off, const Status& last_status,
                           Outcome outcome, const char* component) {
  metrics_.CountOutcome(outcome);
  if (!handed_off) in_flight_.Remove(xid);
  if (outcome != Outcome::kCommitted) {
    XA_LOG_XID(kInfo, component, xid) << OutcomeName(outcome) << (last_status.ok() ? "" : ": ")
                                      << (last_status.ok() ? "" : last_status.ToString());
  } else {
    XA_LOG_XID(kDebug, component, xid) << "committed";
  }
}

Status ManagerCore::ClearHeuristic(const Xid& global_xid, std::string reason) {
  return ClearOpenHeuristic(log_, global_xid.Global(), std::move(reason));
}

TransactionMetrics ManagerCore::Metrics() const {
  TransactionMetrics m = metrics_.Snapshot();
  m.in_flight = in_flight_.size();
  m.oldest_prepared_age_seconds = in_flight_.OldestPreparedAgeSeconds(services_.clock->SteadyNow());
  return m;
}

std::string ManagerCore::PrometheusText() const {
  return RenderPrometheus(Metrics(), metrics_);
}

}  // namespace xa::internal
