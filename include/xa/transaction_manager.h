// xa::TransactionManager: coordinates global transactions over XA resource managers and records
// its commit decisions in a DecisionLog.
//
//   xa::TransactionManagerOptions options;
//   options.node_id = 7;
//   options.resource_managers["accounts-mariadb"] = [] { return OpenMariaDbSession(); };
//   options.resource_managers["accounts-postgres"] = [] { return OpenPostgresSession(); };
//   auto log = xa::DecisionLog::Open(log_options);
//   auto manager = xa::TransactionManager::Open(options, **log);
//   auto txn = (*manager)->Begin();   // see xa/transaction.h
//
// The manager owns a small pool of threads that run the phase calls of one transaction on its
// branches in parallel (the caller's thread runs one of them itself); one background thread
// that finishes phase 2 of branches that could not be reached (fresh sessions from the factories,
// capped exponential backoff, forever); a few threads that append end records, so that Commit()
// waits for one durable append (the decision) only; and, with recover_on_open, the periodic
// recovery pass.
//
// The protocol (presumed abort, read-only and one-phase optimisations, failure handling) is
// documented on the coordinator: src/tm/two_phase_coordinator.h.
//
// Thread safety: a TransactionManager is thread-safe; many transactions may be in flight at once
// on different threads. It must outlive every Transaction it began, and the DecisionLog must
// outlive it. Destroying it stops the background thread: decisions whose completion is still
// pending stay open in the log, and recovery finishes them at the next Open().

#ifndef XA_TRANSACTION_MANAGER_H_
#define XA_TRANSACTION_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "xa/decision_log.h"
#include "xa/marker.h"
#include "xa/metrics.h"
#include "xa/protocol.h"
#include "xa/recovery.h"
#include "xa/resource_manager.h"
#include "xa/saga.h"
#include "xa/status.h"
#include "xa/tcc.h"
#include "xa/three_phase.h"
#include "xa/transaction.h"
#include "xa/xid.h"

namespace xa {

namespace internal {
class ManagerCore;
}  // namespace internal

// Opens a new, open (ResourceManager::Open() done) session with one resource manager. Called by
// the background completion thread and by recovery, never on the commit path of a healthy
// transaction. Must be thread-safe. Its sessions must use credentials that may commit and roll
// back branches prepared by the application's sessions.
using ResourceManagerFactory = std::function<Result<std::unique_ptr<ResourceManager>>()>;

// Capped exponential backoff: attempt n (n >= 1) waits min(initial * multiplier^(n-1), max).
struct RetryPolicy {
  // How many times a phase-2 call is made in all before giving up on this path (0: no limit).
  uint32_t max_attempts = 0;
  // The wait after the first failed attempt.
  std::chrono::microseconds initial_backoff{1000};
  // No wait is longer than this.
  std::chrono::microseconds max_backoff{std::chrono::seconds(5)};
  // Each wait is this many times the one before (a value below 1 counts as 1).
  double multiplier = 2.0;

  // The wait after failed attempt number `attempt` (>= 1; 0 counts as 1), before the next one.
  std::chrono::microseconds BackoffBefore(uint32_t attempt) const noexcept;
};

// What TransactionManager::Open() needs: the node id, one factory per resource manager, and
// the timeouts, retries, threads and recovery schedule (each default is usable).
struct TransactionManagerOptions {
  // Identifies this manager in every Xid it generates; recovery only touches branches of its own
  // node. Must be unique among the managers that share resource managers, and equal to the
  // decision log's node id.
  uint32_t node_id = 0;

  // A transaction still active this long after Begin() is rolled back at its next Enlist() or
  // Commit(). 0 disables the timeout.
  std::chrono::milliseconds transaction_timeout{std::chrono::seconds(60)};

  // Phase-2 calls that fail with XA_RETRY or XAER_RMFAIL are repeated this way on the caller's
  // thread (with a fresh session after XAER_RMFAIL) before the branch is handed to the
  // background. max_attempts counts the first call; 0 here means "use 1".
  RetryPolicy inline_retry{3, std::chrono::microseconds(2000), std::chrono::microseconds(20000),
                           2.0};
  // The background completion thread retries forever with this backoff (max_attempts ignored).
  RetryPolicy background_retry{0, std::chrono::milliseconds(10), std::chrono::seconds(5), 2.0};

  // Threads that run phase calls in parallel across branches. The calling thread always takes
  // part, so 0 means fully sequential phase calls; 2PC over N RMs at C concurrent clients needs
  // up to C * (N - 1) threads to be fully parallel.
  size_t phase_threads = 16;

  // While at least this share (percent) of the machine's CPU time is busy, over the last 100 ms
  // of /proc/stat, phase calls run one after the other on the caller's thread instead of on the
  // phase threads: a hand-off costs a thread wake-up and two context switches, and when no core
  // is idle the other transactions' work already fills the waits, so the hand-offs only slow the
  // machine down. Counted in TransactionMetrics::phases_sequential_cpu_busy. 0 or > 100: always
  // parallel.
  uint32_t sequential_phases_at_cpu_percent = 90;

  // One factory per resource-manager name (ResourceManager::name()). Enlist() refuses a session
  // whose name has no factory: a branch that could not be completed after a crash is never
  // created.
  std::map<std::string, ResourceManagerFactory> resource_managers;

  // Three-phase commit: the participant agents of the resource managers that 3PC transactions
  // use (xa/three_phase.h). Without agents, Begin(Protocol::kThreePhase) fails with
  // XA_NOTSUPPORTED. Open() refuses an agent's resource manager that has no factory above.
  ThreePhaseOptions three_phase;

  // Marker commit (Protocol::kMarkerCommit): the resource manager and table that hold the
  // markers. Off when marker_commit.rm is empty (xa/marker.h, docs/marker-commit.md).
  MarkerCommitOptions marker_commit;

  // TCC (xa/tcc.h): the participants that BeginTcc() transactions enlist, by name. Open() refuses
  // an empty name or a null participant; recovery calls the same objects to finish the TCC
  // transactions the log holds open.
  TccOptions tcc;
  // Sagas (xa/saga.h): the compensable operations that BeginSaga() transactions enlist, by name
  // (names distinct from the TCC participants'). Recovery compensates open sagas through them.
  SagaOptions saga;

  // When true (default), Open() runs recovery before returning: open commit decisions found in
  // the log are completed (in the background thread), and the recovery engine resolves in-doubt
  // branches of this node. Turn off only for tools that inspect a log without acting on it.
  bool recover_on_open = true;

  // How often the manager runs a recovery pass in the background (xa::RecoveryEngine over
  // fresh sessions from the factories, skipping its own in-flight transactions): it rolls back
  // orphans of this node that an earlier pass saw or that are older than transaction_timeout,
  // and finishes decisions left open. The first pass after Open() runs after
  // `recovery_first_pass_delay`, so that orphans found at Open() are rolled back after two
  // scans. 0 disables the periodic passes.
  std::chrono::milliseconds recovery_interval{std::chrono::seconds(30)};
  // How long after Open() the first periodic pass runs (see recovery_interval).
  std::chrono::milliseconds recovery_first_pass_delay{std::chrono::seconds(2)};

  // Where the manager reads time and waits: transaction timeouts, retry backoffs, latencies,
  // the recovery passes' schedule and the age of orphans (Env::clock()). nullptr: Env::Default(),
  // the real clocks. Tests hand in an Env whose clock they move by hand. Must outlive the
  // manager.
  Env* env = nullptr;
};

// Coordinates global transactions (see the file comment). Thread-safe; made by Open().
class TransactionManager {
 public:
  // Validates `options` (XA_CONFIG on node-id mismatch with the log, empty factory...), starts
  // the threads and, with recover_on_open, runs recovery. `log` must outlive the manager.
  static Result<std::unique_ptr<TransactionManager>> Open(TransactionManagerOptions options,
                                                          DecisionLog& log);

  ~TransactionManager();
  TransactionManager(const TransactionManager&) = delete;
  TransactionManager& operator=(const TransactionManager&) = delete;

  // Starts a global transaction with a new Xid. Errors: XA_NOTSUPPORTED for a protocol this
  // manager has no coordinator for (3PC when the options name no participant agents).
  Result<Transaction> Begin(const TransactionOptions& options = {});
  // Begin() with `protocol` and the other options at their defaults.
  Result<Transaction> Begin(Protocol protocol);

  // Starts a TCC transaction (xa/tcc.h) with a new Xid (format Xid::kTccFormatId). `timeout` 0:
  // transaction_timeout. Errors: XA_NOTSUPPORTED when options().tcc registers no participant.
  Result<TccTransaction> BeginTcc(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // Starts a saga (xa/saga.h) with a new Xid (format Xid::kSagaFormatId). `timeout` 0:
  // transaction_timeout. Errors: XA_NOTSUPPORTED when options().saga registers no operation.
  Result<SagaTransaction> BeginSaga(std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  // Records that an operator has dealt with the heuristic outcome of `global_xid`
  // (RecordType::kHeuristicCleared, with `reason`). XAER_NOTA when the log holds no open
  // heuristic for it; XA_INVAL for an empty reason. xa-recover's clear-heuristic does the same.
  [[nodiscard]] Status ClearHeuristic(const Xid& global_xid, std::string reason);

  // Global Xids of the transactions this manager owns right now: begun and not finished, and
  // those whose phase 2 the background thread is finishing. Recovery must never resolve one of
  // them (it would race its owner).
  std::vector<Xid> InFlightTransactions() const;
  // True when the global transaction of `global_xid` (any of its branch Xids will do) is one
  // of InFlightTransactions().
  bool IsInFlight(const Xid& global_xid) const;

  // Waits until the background thread has nothing left to complete, or `timeout` passes
  // (XA_TIMEOUT). For graceful shutdown and tests.
  [[nodiscard]] Status WaitForBackgroundCompletion(std::chrono::milliseconds timeout);

  // Runs one recovery pass now (see TransactionManagerOptions::recovery_interval) and returns
  // its report. Thread-safe; serialised with the background passes.
  Result<RecoveryReport> RunRecovery();

  // A snapshot of the counters and latencies since Open() (xa/metrics.h). Thread-safe.
  TransactionMetrics Metrics() const;
  // Prometheus text exposition format, version 0.0.4.
  std::string PrometheusText() const;

  // The options given to Open().
  const TransactionManagerOptions& options() const noexcept;
  // The log given to Open().
  DecisionLog& decision_log() const noexcept;

 private:
  explicit TransactionManager(std::unique_ptr<internal::ManagerCore> core);
  std::unique_ptr<internal::ManagerCore> core_;
};

}  // namespace xa

#endif  // XA_TRANSACTION_MANAGER_H_
