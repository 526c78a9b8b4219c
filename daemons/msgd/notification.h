// Best-effort notification (docs/notifications.md): the endpoints a notifier calls, the
// notifications it delivers and the attempts it made, as the store keeps them. The rules applied
// to them are notification_rules.h; the engine that applies them is notifier.h.
//
// Thread safety: values and pure functions.

#ifndef XA_DAEMONS_MSGD_NOTIFICATION_H_
#define XA_DAEMONS_MSGD_NOTIFICATION_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/message.h"
#include "daemons/msgd/notification_rules.h"
#include "xa/status.h"

namespace xa::msg {

// Sizes the store's columns hold (docs/notifications.md, "The store").
inline constexpr size_t kMaxEndpointIdSize = 64;
inline constexpr size_t kMaxEndpointUrlSize = 2048;
inline constexpr size_t kMaxEventTypeSize = 128;
inline constexpr size_t kMaxSuccessBodySize = 64;
inline constexpr size_t kMaxExcerptSize = 1024;
inline constexpr size_t kMaxEndpointSecrets = 2;  // the current one, and the one it replaces
inline constexpr int kMaxEndpointInFlight = 256;

// Whether `id` may name an endpoint: 1 to 64 of [A-Za-z0-9._-]. A merchant's token of that
// name (msgd_tokens.h) reads that endpoint's notifications.
bool IsEndpointId(std::string_view id) noexcept;

// A merchant's endpoint: where its notifications go and how they are signed and judged.
struct Endpoint {
  std::string id;
  std::string url;                   // http(s)://host[:port]/path, checked by the URL policy
  std::vector<std::string> secrets;  // "whsec_..." (1 or 2): secrets, never logged or shown
  RetryLadder ladder = WeChatPayLadder();
  std::optional<std::string> success_body;  // the answer a 2xx must carry ("success"), if any
  int max_in_flight = 4;                    // this endpoint's calls at once, per daemon
  bool enabled = true;
  std::string disabled_reason;  // why it is disabled ("410 Gone", an operator), "" when enabled
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// "15000, 15000, 30000": a ladder as its milliseconds, the form ParseRetryLadder reads.
std::string FormatRetryLadder(const RetryLadder& ladder);
// Why `endpoint` cannot be stored ("" when it can): its id, URL size, secrets (each must parse
// as a WebhookSecret; the caller checks), ladder, success body and concurrency limit.
std::string EndpointFieldsError(const Endpoint& endpoint);

struct Notification {
  std::string id;  // kMessageIdSize lower-case hex: the webhook-id, the same on every attempt
  std::string endpoint_id;
  std::string event_type;  // the business system's name for it ("payment.succeeded")
  std::string body;        // the exact bytes posted and signed
  NotificationStatus status = NotificationStatus::kPending;
  int32_t attempts = 0;  // attempts whose outcome was recorded
  // Claims taken (a claim is one attempt started: the row's next_attempt_ms moved past the
  // call's end); an attempt's outcome is applied only if the claim it ran under is the last.
  int32_t claims = 0;
  // Milliseconds since the Unix epoch, by the daemon's clock (the Env clock).
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t next_attempt_ms = 0;  // pending: when the next attempt is due (or the claim ends)
  int32_t last_http_status = 0;  // of the last attempt; 0 for none or no answer
  std::string last_error;        // the last attempt's failure, at most kMaxErrorSize bytes
};

// One attempt to call an endpoint (the store's attempt table).
struct NotificationAttempt {
  std::string notification_id;
  int32_t number = 0;  // 1 = the first
  int64_t started_ms = 0;
  int64_t latency_ms = 0;
  int32_t http_status = 0;  // 0: no answer
  std::string verdict;      // AttemptVerdictName: "delivered", "retry", "gone"
  std::string excerpt;      // the answer's first bytes, at most kMaxExcerptSize
  std::string error;        // why there was no answer, at most kMaxErrorSize; never a secret
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_NOTIFICATION_H_
