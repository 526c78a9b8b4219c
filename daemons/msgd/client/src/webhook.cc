#include "xa/msg/webhook.h"

#include <sys/random.h>

#include <cerrno>
#include <charconv>
#include <memory>

#include "src/base/byte_text.h"
#include "src/base/escape.h"
#include "src/base/hmac_sha256.h"

namespace xa::msg {
namespace {

constexpr std::string_view kSecretPrefix = "whsec_";
constexpr size_t kMinSecretBytes = 24;
constexpr size_t kMaxSecretBytes = 64;
constexpr size_t kMaxIdSize = 256;

WebhookCheck Refuse(WebhookVerdict verdict, std::string id, std::string reason) {
  return WebhookCheck{verdict, std::move(id), std::move(reason)};
}

// An id a sender may choose: printable ASCII without blanks, at most kMaxIdSize.
bool IsWebhookId(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdSize) return false;
  for (char c : id) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

Result<WebhookSecret> WebhookSecret::Parse(std::string_view text) {
  if (!text.starts_with(kSecretPrefix)) {
    return Status(Code::kInval, "a webhook secret starts with 'whsec_'");
  }
  std::string bytes;
  if (!internal::ParseBase64(text.substr(kSecretPrefix.size()), &bytes)) {
    return Status(Code::kInval, "a webhook secret is 'whsec_' and standard base64 (with its "
                                "padding); this one's base64 cannot be read");
  }
  if (bytes.size() < kMinSecretBytes || bytes.size() > kMaxSecretBytes) {
    return Status(Code::kInval, "a webhook secret holds 24 to 64 bytes, not " +
                                    std::to_string(bytes.size()));
  }
  return WebhookSecret(std::move(bytes));
}

Result<WebhookSecret> WebhookSecret::Generate() {
  std::string bytes(32, '\0');
  size_t filled = 0;
  while (filled < bytes.size()) {
    ssize_t got = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kIoError, "getrandom failed while making a webhook secret (errno " +
                                        std::to_string(errno) + ")");
    }
    filled += static_cast<size_t>(got);
  }
  return WebhookSecret(std::move(bytes));
}

std::string WebhookSecret::ToString() const {
  return std::string(kSecretPrefix) + internal::Base64(bytes_);
}

std::string SignWebhook(const WebhookSecret& secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body) {
  std::string content;
  content.reserve(id.size() + body.size() + 24);
  content += id;
  content += '.';
  content += std::to_string(timestamp_s);
  content += '.';
  content += body;
  return "v1," + internal::Base64(internal::HmacSha256(secret.bytes(), content));
}

std::string_view WebhookVerdictName(WebhookVerdict verdict) noexcept {
  switch (verdict) {
    case WebhookVerdict::kAccepted: return "accepted";
    case WebhookVerdict::kDuplicate: return "duplicate";
    case WebhookVerdict::kMissingHeader: return "missing header";
    case WebhookVerdict::kMalformed: return "malformed";
    case WebhookVerdict::kStale: return "stale";
    case WebhookVerdict::kBadSignature: return "bad signature";
  }
  return "?";
}

int WebhookCheck::http_status() const noexcept {
  switch (verdict) {
    case WebhookVerdict::kAccepted:
    case WebhookVerdict::kDuplicate: return 200;
    case WebhookVerdict::kMissingHeader:
    case WebhookVerdict::kMalformed: return 400;
    case WebhookVerdict::kStale:
    case WebhookVerdict::kBadSignature: return 401;
  }
  return 400;
}

Result<std::unique_ptr<WebhookReceiver>> WebhookReceiver::Make(WebhookReceiverOptions options) {
  if (options.secrets.empty()) {
    return Status(Code::kInval, "a webhook receiver needs at least one secret");
  }
  if (options.tolerance < std::chrono::seconds(1)) {
    return Status(Code::kInval, "a webhook receiver's tolerance must be at least 1 s");
  }
  if (options.clock == nullptr) options.clock = Env::Default()->clock();
  return std::unique_ptr<WebhookReceiver>(new WebhookReceiver(std::move(options)));
}

WebhookCheck WebhookReceiver::Check(std::string_view id, std::string_view timestamp,
                                    std::string_view signature, std::string_view body) {
  for (auto [name, value] : {std::pair{kWebhookIdHeader, id},
                             std::pair{kWebhookTimestampHeader, timestamp},
                             std::pair{kWebhookSignatureHeader, signature}}) {
    if (value.empty()) {
      return Refuse(WebhookVerdict::kMissingHeader, "",
                    "the " + std::string(name) + " header is missing");
    }
  }
  if (!IsWebhookId(id)) {
    return Refuse(WebhookVerdict::kMalformed, "",
                  "webhook-id must be 1 to 256 printable characters without blanks");
  }
  const std::string id_text(id);
  int64_t seconds = 0;
  auto [end, error] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(),
                                      seconds);
  if (error != std::errc() || end != timestamp.data() + timestamp.size() || seconds < 0) {
    return Refuse(WebhookVerdict::kMalformed, id_text,
                  "webhook-timestamp must be whole seconds since the Unix epoch, not '" +
                      internal::EscapeForMessage(timestamp.substr(0, 32)) + "'");
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          options_.clock->WallNow().time_since_epoch())
                          .count();
  const int64_t skew = seconds > now ? seconds - now : now - seconds;
  if (skew > options_.tolerance.count()) {
    return Refuse(WebhookVerdict::kStale, id_text,
                  "webhook-timestamp is " + std::to_string(skew) + " s from this receiver's "
                  "clock, more than the " + std::to_string(options_.tolerance.count()) +
                  " s allowed (a replay, or a clock out of step)");
  }
  // Every entry against every secret: one match is enough (two keys during a rotation).
  bool signed_by_us = false;
  std::string_view entries = signature;
  while (!entries.empty()) {
    size_t space = entries.find(' ');
    std::string_view entry = entries.substr(0, space);
    entries = space == std::string_view::npos ? std::string_view() : entries.substr(space + 1);
    if (!entry.starts_with("v1,")) continue;  // another scheme (v1a): not ours to check
    for (const WebhookSecret& secret : options_.secrets) {
      if (internal::ConstantTimeEqual(entry, SignWebhook(secret, id, seconds, body))) {
        signed_by_us = true;
      }
    }
  }
  if (!signed_by_us) {
    return Refuse(WebhookVerdict::kBadSignature, id_text,
                  "no v1 entry of webhook-signature matches the body under this receiver's "
                  "secrets");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (processed_.contains(id_text)) {
    return Refuse(WebhookVerdict::kDuplicate, id_text, "already processed");
  }
  return WebhookCheck{WebhookVerdict::kAccepted, id_text, ""};
}

void WebhookReceiver::MarkProcessed(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!processed_.insert(std::string(id)).second) return;
  processed_order_.emplace_back(id);
  while (processed_order_.size() > options_.remembered_ids) {
    processed_.erase(processed_order_.front());
    processed_order_.pop_front();
  }
}

}  // namespace xa::msg
