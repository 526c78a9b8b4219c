// Best-effort notification (docs/notifications.md): the rules the notifier applies to each
// attempt to call a merchant's endpoint, as pure functions, so that the notifier, its tests and
// the operator's views decide the same thing by calling the same function.
//
//   ClassifyAttempt   what an HTTP exchange means: delivered, retry, or the endpoint is gone
//   AfterAttempt      where the notification goes next: succeeded, failed (ladder exhausted), or
//                     pending until the ladder's next step (or the endpoint's Retry-After)
//   EndpointBreaker   per endpoint: after enough failures in a row, stop calling it for a
//                     cooldown, then let one probe through, so one broken merchant does not
//                     use up the notifier's workers
//
// Thread safety: values and pure functions; an EndpointBreaker is one endpoint's, used under its
// owner's lock.

#ifndef XA_DAEMONS_MSGD_NOTIFICATION_RULES_H_
#define XA_DAEMONS_MSGD_NOTIFICATION_RULES_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa::msg {

// Persisted by number: never renumber.
enum class NotificationStatus : uint8_t {
  kPending = 1,    // an attempt is due at next_attempt_ms
  kSucceeded = 2,  // the endpoint answered as agreed
  kFailed = 3,     // the ladder ran out, or the endpoint is gone: visible, resendable
};
std::string_view NotificationStatusName(NotificationStatus status) noexcept;

// The waits between attempts: the first attempt at once, the k-th retry after waits[k-1]. After
// the last wait's attempt fails, the notification has failed.
using RetryLadder = std::vector<std::chrono::milliseconds>;
// WeChat Pay's: 15 s, 15 s, 30 s, 3 m, 10 m, 20 m, 30 m, 30 m, 30 m, 60 m, 3 h, 3 h, 3 h, 6 h,
// 6 h (16 attempts over 24 h 4 m). The default.
RetryLadder WeChatPayLadder();
// Alipay's: 4 m, 10 m, 10 m, 1 h, 2 h, 6 h, 15 h (8 attempts over about 24 h 24 m).
RetryLadder AlipayLadder();
// A preset by name ("wechat", "alipay"), or a list "<ms>, <ms>, ..." (1 to 64 steps, each 1 s to
// 7 days); kInval naming what is wrong.
Result<RetryLadder> ParseRetryLadder(std::string_view text);

// What one exchange with an endpoint came to, as the notifier saw it.
struct AttemptOutcome {
  int http_status = 0;            // 0: no HTTP answer (refused, timed out, reset, TLS failed)
  std::string body;               // the answer's first bytes (the notifier reads a bounded excerpt)
  std::optional<std::chrono::seconds> retry_after;  // a 429 or 503's Retry-After, if given
  std::string error;              // when there was no answer: why
};

// The endpoint's contract: a 2xx, and when `success_body` is set, exactly that body (Alipay's
// merchants answer `success`; surrounding blanks and line ends are allowed).
struct SuccessRule {
  std::optional<std::string> success_body;
};

enum class AttemptVerdict {
  kDelivered,  // as agreed: the notification succeeded
  kRetry,      // anything else: no answer, a 3xx, 4xx, 5xx, or a 2xx with another body
  kGone,       // 410 Gone: the endpoint is disabled and its notifications fail
};
AttemptVerdict ClassifyAttempt(const AttemptOutcome& outcome, const SuccessRule& rule);
std::string_view AttemptVerdictName(AttemptVerdict verdict) noexcept;

struct NextStep {
  NotificationStatus status = NotificationStatus::kPending;
  int64_t next_attempt_ms = 0;  // when pending
  bool disable_endpoint = false;
};
// After attempt number `attempts` (1 = the first) of a notification ended as `verdict` at
// `now_ms`: pending until the ladder's next wait (or the endpoint's Retry-After when longer, at
// most the longest step of the ladder), succeeded, or failed when the ladder has no step left or
// the endpoint is gone.
NextStep AfterAttempt(int attempts, AttemptVerdict verdict,
                      std::optional<std::chrono::seconds> retry_after, int64_t now_ms,
                      const RetryLadder& ladder);

// One endpoint's circuit breaker, on the steady clock's milliseconds.
class EndpointBreaker {
 public:
  struct Options {
    int failures_to_open = 5;                       // failures in a row that open it
    std::chrono::milliseconds cooldown{30'000};     // the first open period
    std::chrono::milliseconds max_cooldown{600'000};  // each reopening doubles it, up to this
  };
  EndpointBreaker() : EndpointBreaker(Options{}) {}
  explicit EndpointBreaker(Options options) : options_(options) {}

  // Whether an attempt may start now. While open: no. Once the cooldown is over: one attempt (a
  // probe) at a time until it reports.
  bool MayAttempt(int64_t now_ms);
  // What the attempt MayAttempt allowed came to.
  void Report(bool delivered, int64_t now_ms);
  // An attempt MayAttempt allowed that will not run after all (its claim was not committed).
  void Abandon() { probing_ = false; }
  bool open(int64_t now_ms) const { return now_ms < open_until_ms_; }
  // Whether MayAttempt would refuse now: open, or its one probe is out.
  bool blocked(int64_t now_ms) const { return open(now_ms) || probing_; }
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  Options options_;
  int consecutive_failures_ = 0;
  int64_t open_until_ms_ = 0;
  std::chrono::milliseconds next_cooldown_{0};
  bool probing_ = false;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_NOTIFICATION_RULES_H_
