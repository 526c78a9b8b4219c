#include "src/base/prometheus_text.h"

#include <cstdio>
#include <string>

namespace xa::internal {

void AppendPrometheusHeader(std::string* out, std::string_view name, std::string_view type,
                            std::string_view help) {
  out->append("# HELP ").append(name).append(" ").append(help).append("\n");
  out->append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void AppendPrometheusSample(std::string* out, std::string_view name, std::string_view labels,
                            double value) {
  out->append(name);
  if (!labels.empty()) out->append("{").append(labels).append("}");
  char buf[64];
  std::snprintf(buf, sizeof(buf), " %.17g\n", value);
  out->append(buf);
}

void AppendPrometheusHistogram(std::string* out, std::string_view name, std::string_view labels,
                               std::span<const double> bounds_seconds,
                               std::span<const uint64_t> at_most, uint64_t count,
                               double sum_seconds) {
  const std::string bucket = std::string(name) + "_bucket";
  const std::string separator = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds_seconds.size() && i < at_most.size(); ++i) {
    char le[48];
    std::snprintf(le, sizeof(le), "le=\"%g\"", bounds_seconds[i]);
    AppendPrometheusSample(out, bucket, std::string(labels) + separator + le,
                           static_cast<double>(at_most[i]));
  }
  AppendPrometheusSample(out, bucket, std::string(labels) + separator + "le=\"+Inf\"",
                         static_cast<double>(count));
  AppendPrometheusSample(out, std::string(name) + "_sum", labels, sum_seconds);
  AppendPrometheusSample(out, std::string(name) + "_count", labels, static_cast<double>(count));
}

}  // namespace xa::internal
