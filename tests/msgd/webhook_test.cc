// Signed webhooks (xa/msg/webhook.h): the Standard Webhooks signature against a known answer
// (computed apart with `openssl dgst -sha256 -mac HMAC`), and the receiver's check refusing each
// kind of bad request (missing or malformed header, stale or future timestamp, bad signature),
// accepting either key during a rotation, and answering a processed id as a duplicate. Time is
// a fake clock's.

#include "xa/msg/webhook.h"

#include <gtest/gtest.h>

#include <string>

#include "src/base/byte_text.h"
#include "tests/testutil/fake_clock.h"

namespace xa::msg {
namespace {

using namespace std::chrono_literals;

constexpr char kSpecSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kSpecId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kSpecTimestamp = 1614265330;
constexpr char kSpecBody[] = R"({"test": 2432232314})";
constexpr char kSpecSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

WebhookSecret Secret(const std::string& text) {
  auto secret = WebhookSecret::Parse(text);
  EXPECT_TRUE(secret.ok()) << secret.status().ToString();
  return std::move(secret).value();
}

TEST(WebhookSignatureTest, MatchesTheKnownAnswerOfTheSpecificationsExample) {
  EXPECT_EQ(SignWebhook(Secret(kSpecSecret), kSpecId, kSpecTimestamp, kSpecBody), kSpecSignature);
  EXPECT_EQ(Secret(kSpecSecret).ToString(), kSpecSecret);
}

TEST(WebhookSignatureTest, BadSecretsAreRefusedWithoutQuotingThem) {
  for (const char* bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",    // no prefix
                          "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La!aSw",  // not base64
                          "whsec_c2hvcnQ=",                       // 5 bytes
                          "whsec_"}) {
    auto secret = WebhookSecret::Parse(bad);
    ASSERT_FALSE(secret.ok()) << bad;
    EXPECT_EQ(secret.status().code(), Code::kInval);
    const std::string secret_part = std::string(bad).substr(6);
    if (!secret_part.empty()) {
      EXPECT_EQ(secret.status().ToString().find(secret_part), std::string::npos)
          << secret.status().ToString();
    }
  }
  auto made = WebhookSecret::Generate();
  ASSERT_TRUE(made.ok());
  EXPECT_EQ(made->bytes().size(), 32u);
  auto again = WebhookSecret::Parse(made->ToString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes(), made->bytes());
}

class WebhookReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.StepWall(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::seconds(kSpecTimestamp) - FakeClockWallNowSeconds()));
  }
  std::chrono::seconds FakeClockWallNowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
        clock_.WallNow().time_since_epoch());
  }
  std::unique_ptr<WebhookReceiver> Receiver(std::vector<WebhookSecret> secrets,
                                            size_t remembered = 100) {
    WebhookReceiverOptions options;
    options.secrets = std::move(secrets);
    options.clock = &clock_;
    options.remembered_ids = remembered;
    auto receiver = WebhookReceiver::Make(std::move(options));
    EXPECT_TRUE(receiver.ok()) << receiver.status().ToString();
    return std::move(receiver).value();
  }
  test::FakeClock clock_;
};

TEST_F(WebhookReceiverTest, SignedFreshNotificationIsAcceptedThenADuplicateOnceProcessed) {
  auto receiver = Receiver({Secret(kSpecSecret)});
  const std::string ts = std::to_string(kSpecTimestamp);
  WebhookCheck first = receiver->Check(kSpecId, ts, kSpecSignature, kSpecBody);
  EXPECT_EQ(first.verdict, WebhookVerdict::kAccepted) << first.reason;
  EXPECT_EQ(first.id, kSpecId);
  // Not processed yet (its effect did not commit): a retry is accepted again.
  EXPECT_EQ(receiver->Check(kSpecId, ts, kSpecSignature, kSpecBody).verdict,
            WebhookVerdict::kAccepted);
  receiver->MarkProcessed(kSpecId);
  WebhookCheck replay = receiver->Check(kSpecId, ts, kSpecSignature, kSpecBody);
  EXPECT_EQ(replay.verdict, WebhookVerdict::kDuplicate);
  EXPECT_EQ(replay.http_status(), 200) << "a duplicate is answered 2xx, or the sender retries";
}

TEST_F(WebhookReceiverTest, EachBadRequestIsRefusedNamingWhatIsWrong) {
  auto receiver = Receiver({Secret(kSpecSecret)});
  const std::string ts = std::to_string(kSpecTimestamp);
  struct Case {
    std::string id, timestamp, signature, body;
    WebhookVerdict verdict;
    std::string names;
    int status;
  } cases[] = {
      {"", ts, kSpecSignature, kSpecBody, WebhookVerdict::kMissingHeader, "webhook-id", 400},
      {kSpecId, "", kSpecSignature, kSpecBody, WebhookVerdict::kMissingHeader,
       "webhook-timestamp", 400},
      {kSpecId, ts, "", kSpecBody, WebhookVerdict::kMissingHeader, "webhook-signature", 400},
      {kSpecId, "16142653x0", kSpecSignature, kSpecBody, WebhookVerdict::kMalformed,
       "webhook-timestamp", 400},
      {"has space", ts, kSpecSignature, kSpecBody, WebhookVerdict::kMalformed, "webhook-id", 400},
      {kSpecId, ts, kSpecSignature, R"({"test": 2432232315})", WebhookVerdict::kBadSignature,
       "webhook-signature", 401},
      {kSpecId, ts, "v1,AAAA", kSpecBody, WebhookVerdict::kBadSignature, "webhook-signature", 401},
      {"msg_other", ts, kSpecSignature, kSpecBody, WebhookVerdict::kBadSignature,
       "webhook-signature", 401},
      {kSpecId, std::to_string(kSpecTimestamp - 301), kSpecSignature, kSpecBody,
       WebhookVerdict::kStale, "301 s", 401},
      {kSpecId, std::to_string(kSpecTimestamp + 301), kSpecSignature, kSpecBody,
       WebhookVerdict::kStale, "301 s", 401},
  };
  for (const Case& c : cases) {
    WebhookCheck check = receiver->Check(c.id, c.timestamp, c.signature, c.body);
    EXPECT_EQ(check.verdict, c.verdict)
        << c.names << ": " << WebhookVerdictName(check.verdict) << ": " << check.reason;
    EXPECT_NE(check.reason.find(c.names), std::string::npos) << check.reason;
    EXPECT_EQ(check.http_status(), c.status) << c.names;
  }
}

TEST_F(WebhookReceiverTest, TimestampWithinTheToleranceIsFreshEitherWay) {
  auto receiver = Receiver({Secret(kSpecSecret)});
  auto secret = Secret(kSpecSecret);
  for (int64_t offset : {-300, -1, 0, 1, 300}) {
    const int64_t ts = kSpecTimestamp + offset;
    WebhookCheck check =
        receiver->Check("msg_1", std::to_string(ts), SignWebhook(secret, "msg_1", ts, "b"), "b");
    EXPECT_EQ(check.verdict, WebhookVerdict::kAccepted) << offset << ": " << check.reason;
  }
  clock_.Advance(301s);  // the same request, 301 s later: stale
  WebhookCheck late = receiver->Check("msg_1", std::to_string(kSpecTimestamp),
                                      SignWebhook(secret, "msg_1", kSpecTimestamp, "b"), "b");
  EXPECT_EQ(late.verdict, WebhookVerdict::kStale) << late.reason;
}

TEST_F(WebhookReceiverTest, DuringAKeyRotationEitherSecretAndEitherEntryIsAccepted) {
  auto old_key = Secret(kSpecSecret);
  auto made = WebhookSecret::Generate();
  ASSERT_TRUE(made.ok());
  auto new_key = *made;
  const std::string ts = std::to_string(kSpecTimestamp);
  // The sender signs with both; a receiver that knows only one of them accepts.
  const std::string both = SignWebhook(new_key, "id1", kSpecTimestamp, "x") + " " +
                           SignWebhook(old_key, "id1", kSpecTimestamp, "x");
  EXPECT_EQ(Receiver({old_key})->Check("id1", ts, both, "x").verdict, WebhookVerdict::kAccepted);
  EXPECT_EQ(Receiver({new_key})->Check("id1", ts, both, "x").verdict, WebhookVerdict::kAccepted);
  // A receiver that knows both accepts a sender still on the old one; an unknown scheme's entry
  // (v1a, asymmetric) is skipped, not an error.
  auto both_keys = Receiver({new_key, old_key});
  EXPECT_EQ(both_keys
                ->Check("id1", ts, "v1a,xyz " + SignWebhook(old_key, "id1", kSpecTimestamp, "x"),
                        "x")
                .verdict,
            WebhookVerdict::kAccepted);
  auto other = WebhookSecret::Generate();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Receiver({*other})->Check("id1", ts, both, "x").verdict,
            WebhookVerdict::kBadSignature);
}

TEST_F(WebhookReceiverTest, RememberedIdsAreBoundedOldestForgottenFirst) {
  auto secret = Secret(kSpecSecret);
  auto receiver = Receiver({secret}, /*remembered=*/2);
  auto check = [&](const std::string& id) {
    return receiver
        ->Check(id, std::to_string(kSpecTimestamp), SignWebhook(secret, id, kSpecTimestamp, "b"),
                "b")
        .verdict;
  };
  for (const char* id : {"a", "b", "c"}) receiver->MarkProcessed(id);
  EXPECT_EQ(check("a"), WebhookVerdict::kAccepted) << "forgotten: the oldest of three, kept two";
  EXPECT_EQ(check("b"), WebhookVerdict::kDuplicate);
  EXPECT_EQ(check("c"), WebhookVerdict::kDuplicate);
}

TEST(WebhookReceiverOptionsTest, NoSecretOrNoToleranceIsRefused) {
  EXPECT_EQ(WebhookReceiver::Make({}).status().code(), Code::kInval);
  WebhookReceiverOptions options;
  options.secrets.push_back(Secret(kSpecSecret));
  options.tolerance = 0s;
  EXPECT_EQ(WebhookReceiver::Make(std::move(options)).status().code(), Code::kInval);
}

TEST(Base64Test, StandardAlphabetWithPaddingRoundTripsAndIsStrict) {
  for (std::string bytes : {std::string(""), std::string("f"), std::string("fo"),
                            std::string("foo"), std::string("\xfb\xff\xfe", 3)}) {
    std::string back;
    ASSERT_TRUE(internal::ParseBase64(internal::Base64(bytes), &back)) << internal::Base64(bytes);
    EXPECT_EQ(back, bytes);
  }
  EXPECT_EQ(internal::Base64("\xfb\xff\xfe"), "+//+");
  EXPECT_EQ(internal::Base64("fo"), "Zm8=");
  std::string out;
  for (const char* bad : {"Zm8", "Zm9=", "Z===", "Zm=8", "-_8=", "Zm8= "}) {
    EXPECT_FALSE(internal::ParseBase64(bad, &out)) << bad;
  }
}

}  // namespace
}  // namespace xa::msg
