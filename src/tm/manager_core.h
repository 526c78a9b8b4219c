// ManagerCore: the implementation behind TransactionManager and Transaction (internal).
//
// Owns, in construction order: the options, the metrics, the in-flight registry, the phase
// thread pool, the background completer and one coordinator per protocol. Transactions call
// back into it through their handle.
//
// Thread safety: thread-safe; each TxnContext is used by one thread at a time.

#ifndef XA_SRC_TM_MANAGER_CORE_H_
#define XA_SRC_TM_MANAGER_CORE_H_

#include <memory>
#include <optional>

#include "src/tm/background_completer.h"
#include "src/tm/decision_notifier.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "src/tm/coordinator.h"
#include "src/tm/in_flight.h"
#include "src/tm/marker_cleaner.h"
#include "src/tm/metrics_registry.h"
#include "src/tm/phase_executor.h"
#include "src/tm/recovery_hook.h"
#include "src/tm/services.h"
#include "src/tm/tcc_coordinator.h"
#include "src/tm/txn_context.h"
#include "xa/saga.h"
#include "xa/tcc.h"
#include "xa/transaction.h"
#include "xa/transaction_manager.h"

namespace xa::internal {

class ManagerCore {
 public:
  ManagerCore(TransactionManagerOptions options, DecisionLog& log);
  ~ManagerCore();
  ManagerCore(const ManagerCore&) = delete;
  ManagerCore& operator=(const ManagerCore&) = delete;

  // Validates the options against the log, starts the threads and runs recovery on open.
  Status Start();

  Result<Transaction> Begin(const TransactionOptions& options);
  Status Enlist(TxnContext& txn, ResourceManager& rm);
  Result<Outcome> Commit(TxnContext& txn);
  Status Rollback(TxnContext& txn);
  void RollbackOnDestroy(TxnContext& txn) noexcept;

  // TCC transactions (xa/tcc.h, src/tm/tcc_coordinator.h).
  Result<TccTransaction> BeginTcc(std::chrono::milliseconds timeout);
  Result<SagaTransaction> BeginSaga(std::chrono::milliseconds timeout);
  Status TccEnlist(TccContext& txn, std::string_view participant, std::string payload);
  Result<Outcome> TccCommit(TccContext& txn);
  Status TccAbandon(TccContext& txn);

  Status ClearHeuristic(const Xid& global_xid, std::string reason);
  Result<RecoveryReport> RunRecovery();
  TransactionMetrics Metrics() const;
  std::string PrometheusText() const;

  const TransactionManagerOptions& options() const noexcept { return options_; }
  DecisionLog& log() const noexcept { return log_; }
  const Services& services() const noexcept { return services_; }
  InFlightRegistry& in_flight() noexcept { return in_flight_; }
  BackgroundCompleter& completer() noexcept { return *completer_; }
  TccCoordinator* tcc() noexcept { return tcc_.get(); }
  // The background work of committed transactions: the completer's jobs, the DoCommit
  // notices still being sent to 3PC agents, and the TCC Confirms and Cancels being retried. XA_TIMEOUT if some remain after `timeout`.
  Status WaitForBackgroundWork(std::chrono::milliseconds timeout);

 private:
  Status StartThreePhase();
  Status StartMarkerCommit();
  Coordinator* CoordinatorFor(Protocol protocol) noexcept;
  bool TimedOut(const TxnContext& txn) const noexcept;
  Outcome RollBackTimedOut(TxnContext& txn);
  void Finish(TxnContext& txn, Outcome outcome);
  void FinishTcc(TccContext& txn, Outcome outcome);
  std::unique_ptr<TccContext> NewTccContext(Protocol protocol, std::chrono::milliseconds timeout);
  // What every finished transaction does: its outcome counted, its in-flight entry dropped
  // (unless the background owns it now), its outcome logged.
  void Finished(const Xid& xid, bool handed_off, const Status& last_status, Outcome outcome,
                const char* component);

  const TransactionManagerOptions options_;
  DecisionLog& log_;
  XidGenerator xids_;
  MetricsRegistry metrics_;
  InFlightRegistry in_flight_;
  std::unique_ptr<PhaseExecutor> executor_;
  std::unique_ptr<BackgroundCompleter> completer_;
  std::map<std::string, RmLatency> latencies_;  // keys fixed at construction
  Services services_;
  std::unique_ptr<Coordinator> two_phase_;
  // Three-phase commit, when options_.three_phase names agents (made by Start()).
  std::unique_ptr<net::Transport> transport_;
  std::optional<net::SharedKey> agent_key_;
  std::unique_ptr<three_phase::AgentClient> agents_;
  std::unique_ptr<DecisionNotifier> notifier_;  // stopped before the completer
  std::unique_ptr<Coordinator> three_phase_;
  // Marker commit, when options_.marker_commit names a resource manager (made by Start()).
  std::unique_ptr<MarkerCleaner> marker_cleaner_;
  std::unique_ptr<Coordinator> marker_commit_;
  // TCC, when options_.tcc registers participants (made by Start()).
  std::unique_ptr<TccCoordinator> tcc_;
  std::unique_ptr<RecoveryRunner> recovery_;  // last: stopped first
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_MANAGER_CORE_H_
