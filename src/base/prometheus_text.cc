#include "src/base/prometheus_text.h"

#include <cstdio>

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

}  // namespace xa::internal
