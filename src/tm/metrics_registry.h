// The transaction manager's counters and histograms, and their Prometheus rendering.
//
// Thread safety: every method is thread-safe; the commit path only does relaxed atomic adds.

#ifndef XA_SRC_TM_METRICS_REGISTRY_H_
#define XA_SRC_TM_METRICS_REGISTRY_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "src/tm/histogram.h"
#include "xa/metrics.h"
#include "xa/protocol.h"

namespace xa::internal {

class MetricsRegistry {
 public:
  using Counter = std::atomic<uint64_t>;

  void CountOutcome(Outcome o) noexcept {
    outcomes_[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed);
  }
  static void Add(Counter& c, uint64_t n = 1) noexcept {
    c.fetch_add(n, std::memory_order_relaxed);
  }

  Counter begun, one_phase_commits, read_only_commits, decision_records, decision_write_failures,
      phase2_retries, phases_sequential_cpu_busy, handed_to_background, background_completed, heuristic_records, timeouts,
      marker_commits, marker_settles, marker_rows_deleted;
  std::atomic<int64_t> background_pending{0};

  Histogram prepare, decision_write, commit_phase, total_commit;

  // Fills everything except the gauges the registry does not own (in flight, oldest prepared).
  TransactionMetrics Snapshot() const;

 private:
  std::array<Counter, 9> outcomes_{};
};

// Prometheus text exposition (version 0.0.4) of a snapshot plus the histograms' buckets.
std::string RenderPrometheus(const TransactionMetrics& m, const MetricsRegistry& registry);

}  // namespace xa::internal

#endif  // XA_SRC_TM_METRICS_REGISTRY_H_
