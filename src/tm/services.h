// What the coordinators and the background completion thread share: the manager's options, its
// log, thread pool, metrics and in-flight registry (internal).

#ifndef XA_SRC_TM_SERVICES_H_
#define XA_SRC_TM_SERVICES_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/retrier.h"
#include "src/completion/conclude.h"
#include "src/tm/in_flight.h"
#include "src/tm/metrics_registry.h"
#include "src/tm/phase_executor.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/resource_manager.h"
#include "xa/transaction_manager.h"

namespace xa::internal {

class BackgroundCompleter;
class TccCoordinator;

// How long an RM's phase calls took lately (an exponentially weighted mean), so that a phase
// gives the caller's thread its slowest branch (see PhaseExecutor::RunAll). Approximate by
// design: concurrent updates may lose one another.
struct RmLatency {
  std::atomic<uint64_t> prepare_ns{0};
  std::atomic<uint64_t> commit_ns{0};

  static void Record(std::atomic<uint64_t>& mean_ns, std::chrono::nanoseconds sample) {
    uint64_t value = static_cast<uint64_t>(std::max<int64_t>(sample.count(), 0));
    uint64_t old = mean_ns.load(std::memory_order_relaxed);
    mean_ns.store(old == 0 ? value : old - old / 8 + value / 8, std::memory_order_relaxed);
  }
};

// The schedule of a background job that must never be abandoned (a durable decision, a
// cancel): `policy`'s backoff, no jitter, no give-up limit.
RetrySchedule RetryForever(const RetryPolicy& policy);

struct Services {
  const TransactionManagerOptions* options = nullptr;
  Clock* clock = nullptr;  // options->env's clock (never null once the manager is open)
  DecisionLog* log = nullptr;
  PhaseExecutor* executor = nullptr;
  BackgroundCompleter* completer = nullptr;
  TccCoordinator* tcc = nullptr;  // nullptr without TCC participants
  MetricsRegistry* metrics = nullptr;
  InFlightRegistry* in_flight = nullptr;
  // One entry per registered resource-manager name, fixed at Open (read without a lock).
  std::map<std::string, RmLatency>* latencies = nullptr;

  RmLatency* LatencyOf(const std::string& rm_name) const {
    if (latencies == nullptr) return nullptr;
    auto it = latencies->find(rm_name);
    return it == latencies->end() ? nullptr : &it->second;
  }

  // A fresh, open session from the factory registered for `rm_name`.
  Result<std::unique_ptr<ResourceManager>> OpenSession(const std::string& rm_name) const;

  // Appends the kHeuristic record of `conclusion` (src/completion/conclude.h) and says so at
  // error level. False when the append failed (logged): the outcome is still reported to the
  // caller, the log's own failure stops later decisions, and the caller sends no Forget().
  bool PersistHeuristic(const Xid& global_xid, Protocol protocol,
                        const Conclusion& conclusion) const;

  // Appends the kEnd record of a logged decision whose branches are all finished, lazily: it
  // rides on the next decision's fdatasync instead of paying for one of its own. Losing it in a
  // crash, like failing to write it (only logged), makes recovery repeat phase 2 of the
  // decision, where NOTA means "done".
  void WriteEnd(const Xid& global_xid, Protocol protocol) const;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_SERVICES_H_
