#include "daemons/msgd/notification_rules.h"

#include <algorithm>
#include <charconv>

#include "src/base/escape.h"

namespace xa::msg {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr size_t kMaxLadderSteps = 64;
constexpr milliseconds kMinStep = seconds(1);
constexpr milliseconds kMaxStep = hours(24 * 7);

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r' ||
                           text.front() == '\n')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' ||
                           text.back() == '\n')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace

std::string_view NotificationStatusName(NotificationStatus status) noexcept {
  switch (status) {
    case NotificationStatus::kPending: return "pending";
    case NotificationStatus::kSucceeded: return "succeeded";
    case NotificationStatus::kFailed: return "failed";
  }
  return "?";
}

RetryLadder WeChatPayLadder() {
  return {seconds(15), seconds(15), seconds(30), minutes(3), minutes(10),
          minutes(20), minutes(30), minutes(30), minutes(30), minutes(60),
          hours(3),    hours(3),    hours(3),    hours(6),    hours(6)};
}

RetryLadder AlipayLadder() {
  return {minutes(4), minutes(10), minutes(10), hours(1), hours(2), hours(6), hours(15)};
}

Result<RetryLadder> ParseRetryLadder(std::string_view text) {
  text = Trim(text);
  if (text == "wechat") return WeChatPayLadder();
  if (text == "alipay") return AlipayLadder();
  RetryLadder ladder;
  while (true) {
    size_t comma = text.find(',');
    std::string_view item = Trim(text.substr(0, comma));
    int64_t ms = 0;
    auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), ms);
    if (item.empty() || error != std::errc() || end != item.data() + item.size() ||
        milliseconds(ms) < kMinStep || milliseconds(ms) > kMaxStep) {
      return Status(Code::kInval, "a retry ladder is 'wechat', 'alipay' or '<ms>, <ms>, ...' "
                                  "with each step 1000 to 604800000 ms, not '" +
                                      internal::EscapeForMessage(item.substr(0, 40)) + "'");
    }
    ladder.emplace_back(ms);
    if (ladder.size() > kMaxLadderSteps) {
      return Status(Code::kInval, "a retry ladder has at most 64 steps");
    }
    if (comma == std::string_view::npos) return ladder;
    text.remove_prefix(comma + 1);
  }
}

AttemptVerdict ClassifyAttempt(const AttemptOutcome& outcome, const SuccessRule& rule) {
  if (outcome.http_status == 410) return AttemptVerdict::kGone;
  if (outcome.http_status < 200 || outcome.http_status > 299) return AttemptVerdict::kRetry;
  if (rule.success_body && Trim(outcome.body) != *rule.success_body) {
    return AttemptVerdict::kRetry;
  }
  return AttemptVerdict::kDelivered;
}

std::string_view AttemptVerdictName(AttemptVerdict verdict) noexcept {
  switch (verdict) {
    case AttemptVerdict::kDelivered: return "delivered";
    case AttemptVerdict::kRetry: return "retry";
    case AttemptVerdict::kGone: return "gone";
  }
  return "?";
}

NextStep AfterAttempt(int attempts, AttemptVerdict verdict,
                      std::optional<std::chrono::seconds> retry_after, int64_t now_ms,
                      const RetryLadder& ladder) {
  NextStep next;
  if (verdict == AttemptVerdict::kDelivered) {
    next.status = NotificationStatus::kSucceeded;
    return next;
  }
  if (verdict == AttemptVerdict::kGone) {
    next.status = NotificationStatus::kFailed;
    next.disable_endpoint = true;
    return next;
  }
  // Attempt k (1-based) failed: the k-th wait, if the ladder has one.
  if (attempts < 1 || static_cast<size_t>(attempts) > ladder.size()) {
    next.status = NotificationStatus::kFailed;
    return next;
  }
  milliseconds wait = ladder[static_cast<size_t>(attempts) - 1];
  if (retry_after) {
    // The endpoint asked for longer: honoured, but never beyond the ladder's longest step, so a
    // hostile Retry-After cannot park a notification for ever.
    const milliseconds longest = *std::max_element(ladder.begin(), ladder.end());
    wait = std::max(wait, std::min<milliseconds>(*retry_after, longest));
  }
  next.status = NotificationStatus::kPending;
  next.next_attempt_ms = now_ms + wait.count();
  return next;
}

bool EndpointBreaker::MayAttempt(int64_t now_ms) {
  if (now_ms < open_until_ms_) return false;
  if (consecutive_failures_ < options_.failures_to_open) return true;
  // Past the cooldown of an opened breaker: one probe at a time.
  if (probing_) return false;
  probing_ = true;
  return true;
}

void EndpointBreaker::Report(bool delivered, int64_t now_ms) {
  probing_ = false;
  if (delivered) {
    consecutive_failures_ = 0;
    next_cooldown_ = milliseconds(0);
    return;
  }
  ++consecutive_failures_;
  if (consecutive_failures_ < options_.failures_to_open) return;
  next_cooldown_ = next_cooldown_.count() == 0
                       ? options_.cooldown
                       : std::min(next_cooldown_ * 2, options_.max_cooldown);
  open_until_ms_ = now_ms + next_cooldown_.count();
}

}  // namespace xa::msg
