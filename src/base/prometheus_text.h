// The Prometheus text exposition format (version 0.0.4), as every metrics page of xa writes it:
// the transaction manager's (TransactionManager::PrometheusText) and the daemons' endpoints.
//
//   AppendPrometheusHeader(&out, "xa_agent_fences_total", "counter", "Sessions fenced.");
//   AppendPrometheusSample(&out, "xa_agent_fences_total", "", 3);
//   AppendPrometheusSample(&out, "xa_agent_participants", "state=\"wait\"", 2);
//
// Names and label values are ours (constants), so nothing is escaped here.

#ifndef XA_SRC_BASE_PROMETHEUS_TEXT_H_
#define XA_SRC_BASE_PROMETHEUS_TEXT_H_

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

}  // namespace xa::internal

#endif  // XA_SRC_BASE_PROMETHEUS_TEXT_H_
