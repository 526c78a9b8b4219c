// The notifier's rules (notification_rules.h), without a server: the ladder presets and their
// spans, what each kind of answer means, where a notification goes after each attempt through
// the whole 24-hour ladder, Retry-After honoured within bounds, and the circuit breaker's
// opening, probing and closing.

#include "daemons/msgd/notification_rules.h"

#include <gtest/gtest.h>

#include <numeric>

namespace xa::msg {
namespace {

using namespace std::chrono_literals;

std::chrono::milliseconds Span(const RetryLadder& ladder) {
  return std::accumulate(ladder.begin(), ladder.end(), std::chrono::milliseconds(0));
}

TEST(RetryLadderTest, PresetsAreWeChatPaysAndAlipaysSchedules) {
  EXPECT_EQ(WeChatPayLadder().size(), 15u) << "16 attempts";
  EXPECT_EQ(Span(WeChatPayLadder()), 24h + 4min);
  EXPECT_EQ(AlipayLadder().size(), 7u) << "8 attempts";
  EXPECT_EQ(Span(AlipayLadder()), 24h + 24min);
  auto named = ParseRetryLadder(" alipay ");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(*named, AlipayLadder());
  auto listed = ParseRetryLadder("1000, 60000,3600000");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(*listed, (RetryLadder{1s, 1min, 1h}));
  for (const char* bad : {"", "wechat2", "10", "1000,,2000", "1000, x", "999999999999"}) {
    auto refused = ParseRetryLadder(bad);
    EXPECT_EQ(refused.status().code(), Code::kInval) << bad;
  }
}

TEST(ClassifyAttemptTest, OnlyTheAgreedAnswerDeliversAnd410MeansGone) {
  const SuccessRule any_2xx;
  const SuccessRule alipay{std::string("success")};
  struct Case {
    AttemptOutcome outcome;
    AttemptVerdict for_any_2xx, for_alipay;
  } cases[] = {
      {{200, "ok", {}, ""}, AttemptVerdict::kDelivered, AttemptVerdict::kRetry},
      {{204, "", {}, ""}, AttemptVerdict::kDelivered, AttemptVerdict::kRetry},
      {{200, "success\r\n", {}, ""}, AttemptVerdict::kDelivered, AttemptVerdict::kDelivered},
      {{200, "Success", {}, ""}, AttemptVerdict::kDelivered, AttemptVerdict::kRetry},
      {{302, "success", {}, ""}, AttemptVerdict::kRetry, AttemptVerdict::kRetry},
      {{500, "success", {}, ""}, AttemptVerdict::kRetry, AttemptVerdict::kRetry},
      {{429, "", 30s, ""}, AttemptVerdict::kRetry, AttemptVerdict::kRetry},
      {{0, "", {}, "connection refused"}, AttemptVerdict::kRetry, AttemptVerdict::kRetry},
      {{410, "", {}, ""}, AttemptVerdict::kGone, AttemptVerdict::kGone},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ClassifyAttempt(c.outcome, any_2xx), c.for_any_2xx)
        << c.outcome.http_status << " " << c.outcome.body;
    EXPECT_EQ(ClassifyAttempt(c.outcome, alipay), c.for_alipay)
        << c.outcome.http_status << " " << c.outcome.body;
  }
}

TEST(AfterAttemptTest, FailuresFollowTheLadderToTheEndThenFail) {
  const RetryLadder ladder = WeChatPayLadder();
  int64_t now = 1'000'000;
  const int64_t start = now;
  int attempts = 0;
  NextStep next;
  do {
    ++attempts;
    next = AfterAttempt(attempts, AttemptVerdict::kRetry, std::nullopt, now, ladder);
    if (next.status == NotificationStatus::kPending) {
      EXPECT_EQ(next.next_attempt_ms - now, ladder[attempts - 1].count()) << attempts;
      now = next.next_attempt_ms;
    }
  } while (next.status == NotificationStatus::kPending);
  EXPECT_EQ(next.status, NotificationStatus::kFailed);
  EXPECT_EQ(attempts, 16);
  EXPECT_EQ(now - start, std::chrono::milliseconds(24h + 4min).count());
  EXPECT_FALSE(next.disable_endpoint);
}

TEST(AfterAttemptTest, DeliveredSucceedsAndGoneFailsAndDisablesTheEndpoint) {
  const RetryLadder ladder = AlipayLadder();
  NextStep done = AfterAttempt(3, AttemptVerdict::kDelivered, std::nullopt, 5, ladder);
  EXPECT_EQ(done.status, NotificationStatus::kSucceeded);
  NextStep gone = AfterAttempt(1, AttemptVerdict::kGone, std::nullopt, 5, ladder);
  EXPECT_EQ(gone.status, NotificationStatus::kFailed);
  EXPECT_TRUE(gone.disable_endpoint);
}

TEST(AfterAttemptTest, RetryAfterIsHonouredWhenLongerButNeverBeyondTheLongestStep) {
  const RetryLadder ladder{1s, 10s};
  EXPECT_EQ(AfterAttempt(1, AttemptVerdict::kRetry, 5s, 0, ladder).next_attempt_ms, 5'000);
  EXPECT_EQ(AfterAttempt(1, AttemptVerdict::kRetry, 0s, 0, ladder).next_attempt_ms, 1'000)
      << "shorter than the ladder's step: the step";
  EXPECT_EQ(AfterAttempt(1, AttemptVerdict::kRetry, std::chrono::seconds(86400 * 365), 0, ladder)
                .next_attempt_ms,
            10'000)
      << "capped at the longest step";
}

TEST(EndpointBreakerTest, OpensAfterFailuresInARowThenLetsOneProbeThroughAndCloses) {
  EndpointBreaker breaker({3, 1000ms, 4000ms});
  int64_t now = 0;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(breaker.MayAttempt(now));
    breaker.Report(false, now);
  }
  EXPECT_FALSE(breaker.open(now)) << "two failures: still closed";
  ASSERT_TRUE(breaker.MayAttempt(now));
  breaker.Report(false, now);
  EXPECT_TRUE(breaker.open(now));
  EXPECT_FALSE(breaker.MayAttempt(now + 999));
  // The cooldown is over: one probe, not two at once.
  EXPECT_TRUE(breaker.MayAttempt(now + 1000));
  EXPECT_FALSE(breaker.MayAttempt(now + 1000));
  // The probe fails: open again for twice as long, then capped.
  breaker.Report(false, now + 1000);
  EXPECT_FALSE(breaker.MayAttempt(now + 2999));
  EXPECT_TRUE(breaker.MayAttempt(now + 3000));
  breaker.Report(false, now + 3000);
  EXPECT_FALSE(breaker.MayAttempt(now + 6999));
  EXPECT_TRUE(breaker.MayAttempt(now + 7000));
  breaker.Report(false, now + 7000);
  EXPECT_TRUE(breaker.open(now + 10999)) << "cooldown capped at 4 s";
  EXPECT_FALSE(breaker.open(now + 11000));
  // A probe that delivers closes it: attempts flow again, failures count from zero.
  EXPECT_TRUE(breaker.MayAttempt(now + 11000));
  breaker.Report(true, now + 11000);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  EXPECT_TRUE(breaker.MayAttempt(now + 11000));
  EXPECT_TRUE(breaker.MayAttempt(now + 11000));
}

}  // namespace
}  // namespace xa::msg
