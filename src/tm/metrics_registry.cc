#include "src/tm/metrics_registry.h"

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string_view>

#include "src/base/prometheus_text.h"

namespace xa::internal {

TransactionMetrics MetricsRegistry::Snapshot() const {
  TransactionMetrics m;
  for (size_t i = 0; i < outcomes_.size(); ++i) {
    m.outcomes[i] = outcomes_[i].load(std::memory_order_relaxed);
  }
  auto get = [](const Counter& c) { return c.load(std::memory_order_relaxed); };
  m.begun = get(begun);
  m.one_phase_commits = get(one_phase_commits);
  m.read_only_commits = get(read_only_commits);
  m.decision_records = get(decision_records);
  m.decision_write_failures = get(decision_write_failures);
  m.phase2_retries = get(phase2_retries);
  m.phases_sequential_cpu_busy = get(phases_sequential_cpu_busy);
  m.handed_to_background = get(handed_to_background);
  m.background_completed = get(background_completed);
  m.heuristic_records = get(heuristic_records);
  m.timeouts = get(timeouts);
  m.marker_commits = get(marker_commits);
  m.marker_settles = get(marker_settles);
  m.marker_rows_deleted = get(marker_rows_deleted);
  m.background_pending = background_pending.load(std::memory_order_relaxed);
  m.prepare = prepare.Summary();
  m.decision_write = decision_write.Summary();
  m.commit_phase = commit_phase.Summary();
  m.total_commit = total_commit.Summary();
  return m;
}

std::string RenderPrometheus(const TransactionMetrics& m, const MetricsRegistry& registry) {
  std::string out;
  out.reserve(8192);

  AppendPrometheusHeader(&out, "xa_transactions_total", "counter",
                         "Finished global transactions by outcome.");
  for (uint8_t o = 1; o <= static_cast<uint8_t>(Outcome::kUnknown); ++o) {
    Outcome outcome = static_cast<Outcome>(o);
    std::string labels = "outcome=\"";
    labels.append(OutcomeName(outcome)).append("\"");
    AppendPrometheusSample(&out, "xa_transactions_total", labels,
                           static_cast<double>(m.Count(outcome)));
  }

  struct CounterRow {
    const char* name;
    const char* help;
    uint64_t value;
  };
  const CounterRow counters[] = {
      {"xa_transactions_begun_total", "Transactions begun.", m.begun},
      {"xa_one_phase_commits_total", "Single-branch transactions committed in one phase.",
       m.one_phase_commits},
      {"xa_read_only_commits_total", "Transactions whose branches all voted read-only.",
       m.read_only_commits},
      {"xa_decision_records_total", "Commit decisions made durable in the decision log.",
       m.decision_records},
      {"xa_decision_write_failures_total",
       "Commit decisions that could not be logged (the transaction rolled back).",
       m.decision_write_failures},
      {"xa_phase2_retries_total", "Phase-2 calls repeated after XA_RETRY or XAER_RMFAIL.",
       m.phase2_retries},
      {"xa_phases_sequential_cpu_busy_total",
       "Phases of several branches run on the caller's thread alone because the CPUs were "
       "saturated.",
       m.phases_sequential_cpu_busy},
      {"xa_background_handoffs_total",
       "Transactions whose phase 2 was handed to the background completion thread.",
       m.handed_to_background},
      {"xa_background_completions_total",
       "Transactions whose phase 2 the background completion thread finished.",
       m.background_completed},
      {"xa_heuristic_records_total", "Heuristic outcomes persisted in the decision log.",
       m.heuristic_records},
      {"xa_marker_commits_total",
       "Marker-commit transactions decided by the one-phase commit of their marker branch.",
       m.marker_commits},
      {"xa_marker_settles_total",
       "Marker branches whose commit answer left the outcome open, settled by their marker row.",
       m.marker_settles},
      {"xa_marker_rows_deleted_total",
       "Marker rows of finished transactions deleted by the manager's cleaner.",
       m.marker_rows_deleted},
      {"xa_timeouts_total", "Transactions rolled back because they exceeded their timeout.",
       m.timeouts},
  };
  for (const CounterRow& row : counters) {
    AppendPrometheusHeader(&out, row.name, "counter", row.help);
    AppendPrometheusSample(&out, row.name, "", static_cast<double>(row.value));
  }

  AppendPrometheusHeader(&out, "xa_transactions_in_flight", "gauge",
                         "Transactions begun and not finished, including background completion.");
  AppendPrometheusSample(&out, "xa_transactions_in_flight", "", static_cast<double>(m.in_flight));
  AppendPrometheusHeader(&out, "xa_background_pending", "gauge",
                         "Transactions waiting for the background completion thread.");
  AppendPrometheusSample(&out, "xa_background_pending", "",
                         static_cast<double>(m.background_pending));
  AppendPrometheusHeader(
      &out, "xa_oldest_prepared_branch_age_seconds", "gauge",
      "Age of the oldest branch asked to prepare and not finished yet (0 if none).");
  AppendPrometheusSample(&out, "xa_oldest_prepared_branch_age_seconds", "",
                         m.oldest_prepared_age_seconds);

  struct Phase {
    const char* label;
    const Histogram* histogram;
    const LatencySummary* summary;
  };
  const Phase phases[] = {
      {"prepare", &registry.prepare, &m.prepare},
      {"decision_write", &registry.decision_write, &m.decision_write},
      {"commit_phase", &registry.commit_phase, &m.commit_phase},
      {"total_commit", &registry.total_commit, &m.total_commit},
  };
  static constexpr double kBoundsSeconds[] = {25e-6,  50e-6,  100e-6, 250e-6, 500e-6, 1e-3,
                                              2.5e-3, 5e-3,   10e-3,  25e-3,  50e-3,  100e-3,
                                              250e-3, 500e-3, 1.0,    2.5,    5.0,    10.0};
  AppendPrometheusHeader(
      &out, "xa_phase_duration_seconds", "histogram",
      "Duration of the commit phases: prepare (End+Prepare on all branches), decision_write "
      "(durable log append), commit_phase (phase 2 on the caller's thread), total_commit.");
  for (const Phase& phase : phases) {
    std::string base = "phase=\"";
    base.append(phase.label).append("\"");
    uint64_t at_most[std::size(kBoundsSeconds)];
    for (size_t i = 0; i < std::size(kBoundsSeconds); ++i) {
      at_most[i] = phase.histogram->CountAtMost(static_cast<uint64_t>(kBoundsSeconds[i] * 1e9));
    }
    AppendPrometheusHistogram(&out, "xa_phase_duration_seconds", base, kBoundsSeconds, at_most,
                              phase.histogram->count(),
                              static_cast<double>(phase.histogram->sum_ns()) / 1e9);
  }
  AppendPrometheusHeader(&out, "xa_phase_duration_quantile_seconds", "gauge",
                         "Estimated p50 and p99 of the commit phases since the manager opened.");
  for (const Phase& phase : phases) {
    std::string base = "phase=\"";
    base.append(phase.label).append("\"");
    AppendPrometheusSample(&out, "xa_phase_duration_quantile_seconds", base + ",quantile=\"0.5\"",
                           phase.summary->p50_us / 1e6);
    AppendPrometheusSample(&out, "xa_phase_duration_quantile_seconds", base + ",quantile=\"0.99\"",
                           phase.summary->p99_us / 1e6);
  }
  return out;
}

}  // namespace xa::internal
