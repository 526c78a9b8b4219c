// xa::TransactionMetrics: what a TransactionManager has done, read as a plain struct.
//
// The manager keeps its counters and latency histograms with relaxed atomics on the commit path;
// TransactionManager::Metrics() takes a snapshot and TransactionManager::PrometheusText() renders
// the same figures in the Prometheus text exposition format (every name prefixed `xa_`).
//
// Percentiles come from a log-linear histogram (4 buckets per power of two, a percentile reported
// at its bucket's midpoint: within about 12% of the true value); they are estimates for
// dashboards, not exact. Benchmarks measure their own latencies.
//
// Thread safety: TransactionMetrics is a value.

#ifndef XA_METRICS_H_
#define XA_METRICS_H_

#include <array>
#include <cstdint>

#include "xa/protocol.h"

namespace xa {

// A latency distribution, in microseconds.
struct LatencySummary {
  // How many durations were recorded since the manager opened.
  uint64_t count = 0;
  // Their sum (exact, not estimated): sum_us / count is the mean.
  double sum_us = 0;
  // The estimated median (see the file comment); 0 when count is 0.
  double p50_us = 0;
  // The estimated 99th percentile; 0 when count is 0.
  double p99_us = 0;
  double max_us = 0;  // upper bound of the highest non-empty bucket
};

// A snapshot of a TransactionManager's counters, gauges and latencies since it opened
// (TransactionManager::Metrics()).
struct TransactionMetrics {
  // Finished transactions, indexed by static_cast<size_t>(Outcome) (index 0 is unused).
  std::array<uint64_t, 9> outcomes{};
  // The finished transactions that had outcome `o`.
  uint64_t Count(Outcome o) const { return outcomes[static_cast<size_t>(o)]; }

  uint64_t begun = 0;                  // Begin() calls that returned a transaction
  uint64_t one_phase_commits = 0;      // single-branch transactions committed with TMONEPHASE
  uint64_t read_only_commits = 0;      // transactions whose branches all voted read-only
  uint64_t decision_records = 0;       // commit decisions appended to the log
  // Commit decisions and 3PC pre-commit records whose durable append failed (after which the
  // log refuses every append: see DecisionLog::Append()).
  uint64_t decision_write_failures = 0;
  uint64_t phase2_retries = 0;         // phase-2 calls repeated after XA_RETRY / XAER_RMFAIL
  // Phases of several branches run on the caller's thread alone because the CPUs were saturated
  // (TransactionManagerOptions::sequential_phases_at_cpu_percent).
  uint64_t phases_sequential_cpu_busy = 0;
  uint64_t handed_to_background = 0;   // transactions whose phase 2 was finished in background
  uint64_t background_completed = 0;   // ... of which the background finished
  uint64_t heuristic_records = 0;      // heuristic outcomes persisted
  uint64_t timeouts = 0;               // transactions rolled back because they ran too long
  // Marker commit (Protocol::kMarkerCommit): transactions decided by committing their marker
  // branch.
  uint64_t marker_commits = 0;
  // Marker branches whose commit answer left the outcome open, so the coordinator settled it by
  // the marker row.
  uint64_t marker_settles = 0;
  // Marker rows of finished transactions deleted by the manager's cleaner.
  uint64_t marker_rows_deleted = 0;

  int64_t in_flight = 0;               // transactions begun and not finished (incl. background)
  int64_t background_pending = 0;      // transactions waiting for background completion
  // Age of the oldest branch that has been asked to prepare and is not finished yet, including
  // the branches in background completion; 0 when there is none. Alert when it grows.
  double oldest_prepared_age_seconds = 0;

  LatencySummary prepare;         // phase 1 (End + Prepare on every branch, in parallel)
  LatencySummary decision_write;  // the durable append of the commit decision
  LatencySummary commit_phase;    // phase 2 on the caller's thread (or the one-phase commit)
  LatencySummary total_commit;    // the whole Transaction::Commit()
};

}  // namespace xa

#endif  // XA_METRICS_H_
