#include "daemons/msgd/notification.h"

#include <algorithm>

namespace xa::msg {

bool IsEndpointId(std::string_view id) noexcept {
  return !id.empty() && id.size() <= kMaxEndpointIdSize &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

std::string FormatRetryLadder(const RetryLadder& ladder) {
  std::string text;
  for (std::chrono::milliseconds step : ladder) {
    text += (text.empty() ? "" : ", ") + std::to_string(step.count());
  }
  return text;
}

std::string EndpointFieldsError(const Endpoint& endpoint) {
  if (!IsEndpointId(endpoint.id)) return "an endpoint id is 1 to 64 of [A-Za-z0-9._-]";
  if (endpoint.url.empty() || endpoint.url.size() > kMaxEndpointUrlSize) {
    return "an endpoint's url is 1 to " + std::to_string(kMaxEndpointUrlSize) + " bytes";
  }
  if (endpoint.secrets.empty() || endpoint.secrets.size() > kMaxEndpointSecrets) {
    return "an endpoint has 1 or 2 signing secrets (2 during a rotation)";
  }
  // The ladder as the store keeps it must read back the same.
  Result<RetryLadder> ladder = ParseRetryLadder(FormatRetryLadder(endpoint.ladder));
  if (!ladder.ok()) return ladder.status().message();
  if (endpoint.success_body &&
      (endpoint.success_body->empty() || endpoint.success_body->size() > kMaxSuccessBodySize)) {
    return "an endpoint's success_body is 1 to " + std::to_string(kMaxSuccessBodySize) +
           " bytes, or absent";
  }
  if (endpoint.max_in_flight < 1 || endpoint.max_in_flight > kMaxEndpointInFlight) {
    return "an endpoint's max_in_flight is 1 to " + std::to_string(kMaxEndpointInFlight);
  }
  if (endpoint.disabled_reason.size() > kMaxErrorSize) return "disabled_reason is too long";
  return "";
}

}  // namespace xa::msg
