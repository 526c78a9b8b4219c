// Signed webhooks as the Standard Webhooks specification defines them: the sender's signature
// and the receiver's check (docs/notifications.md).
//
// A notification is an HTTP POST with three headers:
//
//   webhook-id         the notification's id: the same on every retry (the receiver's dedupe key)
//   webhook-timestamp  the attempt's time, whole seconds since the Unix epoch
//   webhook-signature  space-separated "v1,<base64>" entries, one per signing secret in use (two
//                      during a key rotation), each base64(HMAC-SHA256(secret, id "." timestamp
//                      "." body)) over the body's exact bytes
//
// and the secret an endpoint shares with the sender is 24 to 64 random bytes written "whsec_" +
// base64.
//
// The receiver: WebhookReceiver::Check() refuses a missing or malformed header, a timestamp
// further than the tolerance (5 minutes by default) from its clock, either way, and a body none
// of its secrets signed, comparing in constant time. A notification it was told was processed
// (MarkProcessed, after the receiver's own commit) comes back kDuplicate while its id is
// remembered: answer 2xx and do nothing, or the sender retries it to the end of its ladder. The
// memory is a bounded window; for an effect exactly once across restarts, record the id in the
// same database transaction as the effect (FirstDelivery, message_client.h, keyed by the
// webhook-id).
//
// Thread safety: WebhookSecret and the functions are values; a WebhookReceiver may be called
// from several threads at once.

#ifndef XA_MSG_WEBHOOK_H_
#define XA_MSG_WEBHOOK_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "xa/env.h"
#include "xa/status.h"

namespace xa::msg {

inline constexpr std::string_view kWebhookIdHeader = "webhook-id";
inline constexpr std::string_view kWebhookTimestampHeader = "webhook-timestamp";
inline constexpr std::string_view kWebhookSignatureHeader = "webhook-signature";

// An endpoint's signing secret. A secret: never logged, never in a message.
class WebhookSecret {
 public:
  // "whsec_" + base64 of 24 to 64 bytes; kInval naming what is wrong (never quoting it).
  static Result<WebhookSecret> Parse(std::string_view text);
  // 32 random bytes from the kernel; kIoError when it has none to give.
  static Result<WebhookSecret> Generate();
  // "whsec_" + base64: what the endpoint's owner is given.
  std::string ToString() const;
  std::string_view bytes() const { return bytes_; }

 private:
  explicit WebhookSecret(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

// The webhook-signature entry of `secret` for a notification: "v1," + base64(HMAC-SHA256).
std::string SignWebhook(const WebhookSecret& secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body);

// What a receiver makes of a request.
enum class WebhookVerdict {
  kAccepted,       // signed, fresh, not yet processed: process it, then MarkProcessed
  kDuplicate,      // signed and fresh, and already processed: answer 2xx, do nothing
  kMissingHeader,  // a webhook-* header is absent or empty
  kMalformed,      // a header cannot be read (the timestamp, the id, the signature list)
  kStale,          // the timestamp is further than the tolerance from now
  kBadSignature,   // no entry matches any of the receiver's secrets
};
std::string_view WebhookVerdictName(WebhookVerdict verdict) noexcept;

struct WebhookCheck {
  WebhookVerdict verdict = WebhookVerdict::kMalformed;
  std::string id;      // the webhook-id, once read
  std::string reason;  // what was wrong, naming the header; "" when accepted; never a secret
  // What to answer: 200 for kAccepted (after processing) and kDuplicate, 400 for a missing or
  // malformed header, 401 for a stale timestamp or a bad signature.
  int http_status() const noexcept;
};

struct WebhookReceiverOptions {
  std::vector<WebhookSecret> secrets;  // every secret the sender may sign with (1 or more)
  std::chrono::seconds tolerance{300};
  size_t remembered_ids = 100'000;     // processed ids kept for kDuplicate, oldest dropped first
  Clock* clock = nullptr;              // the wall clock of timestamps; nullptr: Env::Default()'s
};

class WebhookReceiver {
 public:
  // kInval without a secret or with a tolerance below 1 s.
  static Result<std::unique_ptr<WebhookReceiver>> Make(WebhookReceiverOptions options);

  // The headers by name (lower case, as HTTP/2 and most servers give them) and the raw body.
  WebhookCheck Check(std::string_view id, std::string_view timestamp,
                     std::string_view signature, std::string_view body);
  // After the notification's effect committed: its id is answered kDuplicate from now on.
  void MarkProcessed(std::string_view id);

 private:
  explicit WebhookReceiver(WebhookReceiverOptions options) : options_(std::move(options)) {}

  const WebhookReceiverOptions options_;
  std::mutex mu_;
  std::unordered_set<std::string> processed_;
  std::deque<std::string> processed_order_;
};

}  // namespace xa::msg

#endif  // XA_MSG_WEBHOOK_H_
