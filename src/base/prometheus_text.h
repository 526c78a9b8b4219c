// The Prometheus text exposition format (version 0.0.4), as every metrics page of xa writes it:
// the transaction manager's (TransactionManager::PrometheusText) and the daemons' endpoints.
//
//   AppendPrometheusHeader(&out, "xa_agent_fences_total", "counter", "Sessions fenced.");
//   AppendPrometheusSample(&out, "xa_agent_fences_total", "", 3);
//   AppendPrometheusSample(&out, "xa_agent_participants", "state=\"wait\"", 2);
//   AppendPrometheusHistogram(&out, "xa_agent_state_seconds", "state=\"pre\"", bounds,
//                             at_most, count, sum_seconds);
//
// Names and label values are ours (constants), so nothing is escaped here.

#ifndef XA_SRC_BASE_PROMETHEUS_TEXT_H_
#define XA_SRC_BASE_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace xa::internal {

// "# HELP <name> <help>" and "# TYPE <name> <type>" (type: counter, gauge, summary, histogram).
void AppendPrometheusHeader(std::string* out, std::string_view name, std::string_view type,
                            std::string_view help);

// "<name>{<labels>} <value>", or "<name> <value>" without labels; the value printed exactly
// (%.17g), so that counters read back as the integers they are.
void AppendPrometheusSample(std::string* out, std::string_view name, std::string_view labels,
                            double value);

// One series of a histogram: "<name>_bucket{<labels>,le="<bound>"} <at_most[i]>" for each
// upper bound (seconds, cumulative counts, as Prometheus buckets are), then le="+Inf" with
// `count`, "<name>_sum{<labels>} <sum_seconds>" and "<name>_count{<labels>} <count>". `labels`
// tells the series apart (may be empty); `at_most` has one count per bound.
void AppendPrometheusHistogram(std::string* out, std::string_view name, std::string_view labels,
                               std::span<const double> bounds_seconds,
                               std::span<const uint64_t> at_most, uint64_t count,
                               double sum_seconds);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_PROMETHEUS_TEXT_H_
