// The notifier (daemons/msgd/notifier.h) against a real local HTTP server that misbehaves on
// purpose and the real store on MariaDB and PostgreSQL: each way an endpoint can fail follows
// the ladder to its end on the Env clock (a fake one: the 24-hour ladder runs in seconds), never
// attempting early; 410 disables the endpoint; Retry-After stretches a step; a claimed
// notification is never in flight twice, even across a restart; one endpoint timing out does
// not delay another; the URL policy refuses addresses the operator did not allow; the query
// API pages; and one test runs the daemon's threads on the real clock.

#include "daemons/msgd/notifier.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemons/msgd/sql_message_store.h"
#include "src/http/http_server.h"
#include "tests/msgd/store_test_env.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/fake_clock.h"
#include "testutil/test_secrets.h"
#include "xa/msg/webhook.h"

namespace xa::msg {
namespace {

using namespace std::chrono_literals;
using test::FakeClock;
using test::RandomHex;

// What the receiving server does with the next requests.
enum class Behaviour { kOk, kSuccessWord, kWrongBody, kError500, kGone, kTooMany, kHang, kSlow };

// A local HTTP server that verifies each request's signature and answers as told.
class Receiver {
 public:
  explicit Receiver(Clock* clock) : clock_(clock) {}
  ~Receiver() { Stop(); }

  void Start(const std::string& secret) {
    WebhookReceiverOptions options;
    options.secrets.push_back(WebhookSecret::Parse(secret).value());
    options.clock = clock_;
    verifier_ = WebhookReceiver::Make(std::move(options)).value();
    http::HttpServerOptions server;
    server.address = "127.0.0.1:0";
    server.threads = 8;
    server.post_routes["/hook"] = [this](const http::HttpRequest& request) {
      return Answer(request);
    };
    server_ = http::HttpServer::Start(std::move(server)).value();
  }
  void Stop() {
    release_.store(true);
    if (server_) server_->Stop();
  }
  std::string url() const { return "http://" + server_->address() + "/hook"; }
  void Set(Behaviour behaviour) { behaviour_.store(behaviour); }
  int requests() const { return requests_.load(); }
  int bad_signatures() const { return bad_signatures_.load(); }
  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  std::vector<Clock::WallTime> times() {
    std::lock_guard<std::mutex> lock(mu_);
    return times_;
  }
  int max_concurrent() const { return max_concurrent_.load(); }

 private:
  http::HttpResponse Answer(const http::HttpRequest& request) {
    const int now_in = ++in_flight_;
    int seen = max_concurrent_.load();
    while (now_in > seen && !max_concurrent_.compare_exchange_weak(seen, now_in)) {
    }
    ++requests_;
    WebhookCheck check = verifier_->Check(request.Header("webhook-id"),
                                          request.Header("webhook-timestamp"),
                                          request.Header("webhook-signature"), request.body);
    if (check.verdict != WebhookVerdict::kAccepted && check.verdict != WebhookVerdict::kDuplicate) {
      ++bad_signatures_;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ids_.push_back(check.id);
      times_.push_back(Clock::WallTime(std::chrono::system_clock::now()));
    }
    http::HttpResponse answer(200, "text/plain", "");
    switch (behaviour_.load()) {
      case Behaviour::kOk: break;
      case Behaviour::kSuccessWord: answer.body = "success\n"; break;
      case Behaviour::kWrongBody: answer.body = "ok"; break;
      case Behaviour::kError500: answer = http::HttpResponse(500, "text/plain", "boom"); break;
      case Behaviour::kGone: answer = http::HttpResponse(410, "text/plain", "gone"); break;
      case Behaviour::kTooMany:
        answer = http::HttpResponse(429, "text/plain", "slow down", {{"Retry-After", "600"}});
        break;
      case Behaviour::kHang:
        for (int i = 0; i < 600 && !release_.load(); ++i) std::this_thread::sleep_for(10ms);
        break;
      case Behaviour::kSlow: std::this_thread::sleep_for(150ms); break;
    }
    if (check.verdict == WebhookVerdict::kAccepted && answer.status == 200) {
      verifier_->MarkProcessed(check.id);
    }
    --in_flight_;
    return answer;
  }

  Clock* const clock_;
  std::unique_ptr<WebhookReceiver> verifier_;
  std::unique_ptr<http::HttpServer> server_;
  std::atomic<Behaviour> behaviour_{Behaviour::kOk};
  std::atomic<bool> release_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> bad_signatures_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_concurrent_{0};
  std::mutex mu_;
  std::vector<std::string> ids_;
  std::vector<Clock::WallTime> times_;
};

// A port nothing listens on: bound, then closed.
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t size = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return ntohs(address.sin_port);
}

class NotifierTest : public ::testing::TestWithParam<odbc::Dialect> {
 protected:
  void SetUp() override {
    secret_ = WebhookSecret::Generate().value().ToString();
    receiver_ = std::make_unique<Receiver>(&clock_);
    receiver_->Start(secret_);
    options_.call_timeout = 400ms;
    options_.connect_timeout = 400ms;
    options_.url_policy.schemes = {"http"};
    options_.url_policy.networks = {ParseIpNetwork("127.0.0.0/8").value()};
    options_.workers = 4;
    options_.poll_interval = 50ms;
  }
  void TearDown() override {
    notifier_.reset();
    receiver_.reset();
    std::string drop = DropStoreTablesSql(prefix_);
    if (postgres()) {
      test::PostgresAdmin(drop);
    } else {
      test::MariaDbAdmin("USE " + test::MariaDbAccount().database + "; " + drop);
    }
  }
  bool postgres() const { return GetParam() == odbc::Dialect::kPostgres; }
  odbc::OdbcOptions StoreOptions() const { return test::StoreOdbcOptions(GetParam()); }
  NotificationStoreFactory Stores() {
    return [options = StoreOptions(),
            prefix = prefix_]() -> Result<std::unique_ptr<NotificationStore>> {
      auto store = SqlMessageStore::Open(options, prefix);
      if (!store.ok()) return store.status();
      return std::unique_ptr<NotificationStore>(std::move(store).value());
    };
  }
  // A notifier as the daemon makes one (a restart: a new one on the same store).
  std::unique_ptr<Notifier> MakeNotifier(Clock* clock) {
    auto store = SqlMessageStore::Open(StoreOptions(), prefix_);
    EXPECT_TRUE(store.ok() && (*store)->Migrate().ok());
    return std::make_unique<Notifier>(options_, Stores(), MakeHttpEndpointCaller(options_),
                                      clock);
  }
  Endpoint PutEndpoint(Notifier& notifier, const std::string& id, const std::string& url,
                       std::optional<std::string> success_body = std::nullopt) {
    EndpointChange change;
    change.id = id;
    change.url = url;
    change.secrets = std::vector<std::string>{secret_};
    change.success_body = success_body;
    auto put = notifier.PutEndpoint(change);
    EXPECT_TRUE(put.ok()) << put.status().ToString();
    return put.ok() ? put->endpoint : Endpoint{};
  }
  Notification Get(Notifier& notifier, const std::string& id) {
    auto found = notifier.Get(id);
    EXPECT_TRUE(found.ok() && *found) << (found.ok() ? "gone" : found.status().ToString());
    return found.ok() && *found ? **found : Notification{};
  }
  int Pass(Notifier& notifier) {
    auto ran = notifier.RunDeliveryPass();
    EXPECT_TRUE(ran.ok()) << ran.status().ToString();
    return ran.ok() ? *ran : -1;
  }
  // Runs the whole ladder of a notification that never succeeds: each attempt exactly when its
  // step is due, none a millisecond earlier; then it has failed.
  void RunWholeLadderToFailure(Notifier& notifier, const std::string& id,
                               const RetryLadder& ladder) {
    ASSERT_EQ(Pass(notifier), 1);
    for (size_t step = 0; step < ladder.size(); ++step) {
      Notification n = Get(notifier, id);
      ASSERT_EQ(n.status, NotificationStatus::kPending) << "after attempt " << step + 1;
      ASSERT_EQ(n.attempts, static_cast<int>(step) + 1);
      ASSERT_EQ(n.next_attempt_ms - notifier.NowMs(), ladder[step].count()) << "step " << step;
      clock_.Advance(ladder[step] - 1ms);
      ASSERT_EQ(Pass(notifier), 0) << "attempt " << step + 2 << " ran early";
      clock_.Advance(1ms);
      ASSERT_EQ(Pass(notifier), 1) << "attempt " << step + 2 << " did not run when due";
    }
    Notification n = Get(notifier, id);
    EXPECT_EQ(n.status, NotificationStatus::kFailed);
    EXPECT_EQ(n.attempts, static_cast<int>(ladder.size()) + 1);
    auto attempts = notifier.Attempts(id, 1000);
    ASSERT_TRUE(attempts.ok());
    EXPECT_EQ(attempts->size(), ladder.size() + 1);
    clock_.Advance(std::chrono::hours(48));
    EXPECT_EQ(Pass(notifier), 0) << "a failed notification was attempted again";
  }

  FakeClock clock_;
  NotifierOptions options_;
  std::string secret_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<Notifier> notifier_;
  std::string prefix_ = "nt" + RandomHex(4) + "_";
};

TEST_P(NotifierTest, DeliveredCallIsSignedAndRecordedWithItsAttempt) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "shop-1", receiver_->url());
  auto submitted = notifier_->Submit("shop-1", "payment.succeeded", R"({"amount":100})");
  ASSERT_TRUE(submitted.ok()) << submitted.status().ToString();
  EXPECT_EQ(Pass(*notifier_), 1);
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.status, NotificationStatus::kSucceeded);
  EXPECT_EQ(n.attempts, 1);
  EXPECT_EQ(n.last_http_status, 200);
  EXPECT_EQ(receiver_->bad_signatures(), 0);
  EXPECT_EQ(receiver_->ids(), std::vector<std::string>{submitted->id});
  auto attempts = notifier_->Attempts(submitted->id, 10);
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].verdict, "delivered");
  EXPECT_EQ((*attempts)[0].http_status, 200);
  EXPECT_EQ(Pass(*notifier_), 0);
}

TEST_P(NotifierTest, DuringAKeyRotationEachSecretSignsAndAReceiverWithEitherAccepts) {
  notifier_ = MakeNotifier(&clock_);
  const std::string next_secret = WebhookSecret::Generate().value().ToString();
  EndpointChange change;
  change.id = "rotating";
  change.url = receiver_->url();
  change.secrets = std::vector<std::string>{next_secret, secret_};  // the new one first
  ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
  ASSERT_TRUE(notifier_->Submit("rotating", "e", "{}").ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(receiver_->requests(), 1);
  EXPECT_EQ(receiver_->bad_signatures(), 0) << "the receiver still on the old secret refused";
  // The merchant switches to the new secret; the rotation ends with the new one alone.
  Receiver switched(&clock_);
  switched.Start(next_secret);
  change.url = switched.url();
  change.secrets = std::vector<std::string>{next_secret};
  ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
  ASSERT_TRUE(notifier_->Submit("rotating", "e", "{}").ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(switched.requests(), 1);
  EXPECT_EQ(switched.bad_signatures(), 0);
  auto endpoint = notifier_->GetEndpoint("rotating");
  ASSERT_TRUE(endpoint.ok() && *endpoint);
  EXPECT_EQ((*endpoint)->secrets, std::vector<std::string>{next_secret});
  notifier_.reset();  // its kept-alive connections close before the server stops
}

TEST_P(NotifierTest, EndpointAnswering500FollowsTheWholeWeChatLadderThenFails) {
  notifier_ = MakeNotifier(&clock_);
  receiver_->Set(Behaviour::kError500);
  PutEndpoint(*notifier_, "shop-500", receiver_->url());
  auto submitted = notifier_->Submit("shop-500", "payment.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  RunWholeLadderToFailure(*notifier_, submitted->id, WeChatPayLadder());
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.last_http_status, 500);
  EXPECT_NE(n.last_error.find("HTTP 500: boom"), std::string::npos) << n.last_error;
  EXPECT_EQ(receiver_->requests(), 16);
}

TEST_P(NotifierTest, RefusedConnectionsFollowTheAlipayLadderThenFail) {
  notifier_ = MakeNotifier(&clock_);
  EndpointChange change;
  change.id = "shop-down";
  change.url = "http://127.0.0.1:" + std::to_string(ClosedPort()) + "/hook";
  change.ladder = AlipayLadder();
  ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
  auto submitted = notifier_->Submit("shop-down", "refund.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  RunWholeLadderToFailure(*notifier_, submitted->id, AlipayLadder());
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.last_http_status, 0);
  EXPECT_FALSE(n.last_error.empty());
}

TEST_P(NotifierTest, TimeoutsAndWrongSuccessBodiesAreRetriedToTheEnd) {
  notifier_ = MakeNotifier(&clock_);
  const RetryLadder ladder = {1s, 2s, 3s};
  for (Behaviour behaviour : {Behaviour::kHang, Behaviour::kWrongBody}) {
    receiver_->Set(behaviour);
    const std::string id = behaviour == Behaviour::kHang ? "shop-hang" : "shop-word";
    EndpointChange change;
    change.id = id;
    change.url = receiver_->url();
    change.secrets = std::vector<std::string>{secret_};
    change.ladder = ladder;
    change.success_body = std::optional<std::string>("success");
    ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
    auto submitted = notifier_->Submit(id, "payment.succeeded", "{}");
    ASSERT_TRUE(submitted.ok());
    const auto started = std::chrono::steady_clock::now();
    RunWholeLadderToFailure(*notifier_, submitted->id, ladder);
    if (behaviour == Behaviour::kHang) {
      // Each call was cut at the call timeout, not left to the server.
      EXPECT_LT(std::chrono::steady_clock::now() - started, 4 * 1500ms);
      EXPECT_NE(Get(*notifier_, submitted->id).last_error.find("deadline"), std::string::npos)
          << Get(*notifier_, submitted->id).last_error;
    } else {
      EXPECT_EQ(Get(*notifier_, submitted->id).last_http_status, 200);
    }
  }
}

TEST_P(NotifierTest, SuccessWordAndSlowAnswersWithinTheTimeoutAreDelivered) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "alipay-style", receiver_->url(), "success");
  receiver_->Set(Behaviour::kSuccessWord);
  auto word = notifier_->Submit("alipay-style", "trade.success", "{}");
  ASSERT_TRUE(word.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(Get(*notifier_, word->id).status, NotificationStatus::kSucceeded);

  PutEndpoint(*notifier_, "slow", receiver_->url());
  receiver_->Set(Behaviour::kSlow);
  auto slow = notifier_->Submit("slow", "trade.success", "{}");
  ASSERT_TRUE(slow.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(Get(*notifier_, slow->id).status, NotificationStatus::kSucceeded);
  auto attempts = notifier_->Attempts(slow->id, 10);
  ASSERT_TRUE(attempts.ok() && attempts->size() == 1);
  EXPECT_GE((*attempts)[0].latency_ms, 0);  // the fake clock stands still during the call
}

TEST_P(NotifierTest, GoneDisablesTheEndpointAndFailsItsNotifications) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "closed-shop", receiver_->url());
  receiver_->Set(Behaviour::kGone);
  auto first = notifier_->Submit("closed-shop", "payment.succeeded", "{}");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  Notification n = Get(*notifier_, first->id);
  EXPECT_EQ(n.status, NotificationStatus::kFailed);
  EXPECT_EQ(n.attempts, 1);
  auto endpoint = notifier_->GetEndpoint("closed-shop");
  ASSERT_TRUE(endpoint.ok() && *endpoint);
  EXPECT_FALSE((*endpoint)->enabled);
  EXPECT_NE((*endpoint)->disabled_reason.find("410"), std::string::npos);
  auto refused = notifier_->Submit("closed-shop", "payment.succeeded", "{}");
  EXPECT_EQ(refused.status().code(), Code::kProto) << refused.status().ToString();
  // Resending needs the endpoint enabled; then it is called again with a fresh ladder.
  auto resend = notifier_->Resend(first->id);
  ASSERT_TRUE(resend.ok());
  EXPECT_EQ(*resend, RequestResult::kConflict);
  EndpointChange enable;
  enable.id = "closed-shop";
  enable.enabled = true;
  ASSERT_TRUE(notifier_->PutEndpoint(enable).ok());
  receiver_->Set(Behaviour::kOk);
  resend = notifier_->Resend(first->id);
  ASSERT_TRUE(resend.ok());
  EXPECT_EQ(*resend, RequestResult::kChanged);
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(Get(*notifier_, first->id).status, NotificationStatus::kSucceeded);
  EXPECT_EQ(receiver_->requests(), 2);
}

TEST_P(NotifierTest, ConfiguredBreakerOpensAfterItsFailuresAndHoldsTheEndpointForItsCooldown) {
  options_.breaker.failures_to_open = 2;
  options_.breaker.cooldown = 60s;
  notifier_ = MakeNotifier(&clock_);
  EndpointChange change;
  change.id = "breaking";
  change.url = receiver_->url();
  change.secrets = std::vector<std::string>{secret_};
  change.ladder = RetryLadder{1s, 1s, 1s, 1s};
  ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
  receiver_->Set(Behaviour::kError500);
  auto submitted = notifier_->Submit("breaking", "e", "{}");
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  clock_.Advance(1s);
  EXPECT_EQ(Pass(*notifier_), 1);  // the second failure in a row opens the breaker
  EXPECT_TRUE(notifier_->Health("breaking").breaker_open);
  clock_.Advance(1s);
  EXPECT_EQ(Pass(*notifier_), 0) << "an open breaker let a call through";
  clock_.Advance(58s);
  EXPECT_EQ(Pass(*notifier_), 0);
  clock_.Advance(1s);
  receiver_->Set(Behaviour::kOk);
  EXPECT_EQ(Pass(*notifier_), 1) << "the probe did not run when the cooldown ended";
  EXPECT_EQ(Get(*notifier_, submitted->id).status, NotificationStatus::kSucceeded);
  EXPECT_FALSE(notifier_->Health("breaking").breaker_open);
  EXPECT_EQ(notifier_->Health("breaking").consecutive_failures, 0);
}

TEST_P(NotifierTest, RetryAfterStretchesTheStepButNotBeyondTheLongestStep) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "busy", receiver_->url());
  receiver_->Set(Behaviour::kTooMany);
  auto submitted = notifier_->Submit("busy", "payment.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.next_attempt_ms - notifier_->NowMs(), 600'000);  // not the ladder's 15 s
  clock_.Advance(15s);
  EXPECT_EQ(Pass(*notifier_), 0);
}

TEST_P(NotifierTest, SchedulesSurviveARestartWithoutEarlyOrDuplicateAttempts) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "shop-r", receiver_->url());
  receiver_->Set(Behaviour::kError500);
  auto submitted = notifier_->Submit("shop-r", "payment.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  // A restart: a new notifier on the same store knows the schedule.
  notifier_ = MakeNotifier(&clock_);
  clock_.Advance(14s);
  EXPECT_EQ(Pass(*notifier_), 0);
  clock_.Advance(1s);
  receiver_->Set(Behaviour::kHang);
  // The second attempt hangs; meanwhile another daemon on the store finds nothing to claim.
  auto hanging = std::async(std::launch::async, [&] { return notifier_->RunDeliveryPass(); });
  while (receiver_->requests() < 2) std::this_thread::sleep_for(5ms);
  auto other = MakeNotifier(&clock_);
  auto ran = other->RunDeliveryPass();
  ASSERT_TRUE(ran.ok());
  EXPECT_EQ(*ran, 0) << "a claimed notification was claimed twice";
  // The hanging call is cut at its deadline and recorded as the second failed attempt.
  ASSERT_TRUE(hanging.get().ok());
  Notification n = Get(*notifier_, submitted->id);
  ASSERT_EQ(n.status, NotificationStatus::kPending);
  EXPECT_EQ(n.attempts, 2);
  EXPECT_EQ(receiver_->requests(), 2);
}

TEST_P(NotifierTest, ClaimOfADaemonThatDiedRunsOutBeforeTheNextCall) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "shop-c", receiver_->url());
  auto submitted = notifier_->Submit("shop-c", "payment.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  // A daemon claims the notification and dies before calling: write the claim as it would.
  {
    auto store = SqlMessageStore::Open(StoreOptions(), prefix_).value();
    auto due = store->LockDueNotifications(notifier_->NowMs(), {}, 10);
    ASSERT_TRUE(due.ok() && due->size() == 1);
    Notification claimed = (*due)[0];
    ++claimed.claims;
    claimed.next_attempt_ms = notifier_->NowMs() + options_.claim_duration().count();
    ASSERT_TRUE(store->UpdateNotification(claimed).ok());
    ASSERT_TRUE(store->Commit().ok());
  }
  notifier_ = MakeNotifier(&clock_);
  clock_.Advance(options_.claim_duration() - 1ms);
  EXPECT_EQ(Pass(*notifier_), 0);
  clock_.Advance(1ms);
  EXPECT_EQ(Pass(*notifier_), 1);
  EXPECT_EQ(Get(*notifier_, submitted->id).status, NotificationStatus::kSucceeded);
  EXPECT_EQ(receiver_->requests(), 1);
}

TEST_P(NotifierTest, UrlPolicyRefusesSchemesAndAddressesTheOperatorDidNotAllow) {
  options_.url_policy.networks.clear();  // loopback is no longer allowed
  notifier_ = MakeNotifier(&clock_);
  EndpointChange https_only;
  https_only.id = "ftp";
  https_only.url = "ftp://127.0.0.1/hook";
  EXPECT_EQ(notifier_->PutEndpoint(https_only).status().code(), Code::kInval);
  PutEndpoint(*notifier_, "internal", "http://localhost:" +
                                          std::string(receiver_->url()).substr(
                                              receiver_->url().rfind(':') + 1));
  auto submitted = notifier_->Submit("internal", "payment.succeeded", "{}");
  ASSERT_TRUE(submitted.ok());
  EXPECT_EQ(Pass(*notifier_), 1);
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.status, NotificationStatus::kPending);
  EXPECT_NE(n.last_error.find("not called"), std::string::npos) << n.last_error;
  EXPECT_EQ(receiver_->requests(), 0) << "the notifier called an address it was not allowed to";
}

TEST_P(NotifierTest, MerchantReconciliationPagesVisitEachNotificationOnceInItsTimeRange) {
  notifier_ = MakeNotifier(&clock_);
  PutEndpoint(*notifier_, "shop-p", receiver_->url());
  PutEndpoint(*notifier_, "shop-q", receiver_->url());
  std::set<std::string> in_range;
  const int64_t from = notifier_->NowMs() + 1000;
  for (int i = 0; i < 25; ++i) {
    clock_.Advance(100ms);
    auto mine = notifier_->Submit("shop-p", "payment.succeeded", "{}");
    auto other = notifier_->Submit("shop-q", "payment.succeeded", "{}");
    ASSERT_TRUE(mine.ok() && other.ok());
    if (mine->created_ms >= from) in_range.insert(mine->id);
  }
  NotificationQuery query;
  query.endpoint_id = "shop-p";
  query.from_ms = from;
  query.limit = 4;
  std::set<std::string> seen;
  while (true) {
    auto page = notifier_->List(query);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const Notification& n : *page) {
      EXPECT_EQ(n.endpoint_id, "shop-p");
      EXPECT_TRUE(seen.insert(n.id).second) << "seen twice: " << n.id;
    }
    if (static_cast<int>(page->size()) < query.limit) break;
    query.after_created_ms = page->back().created_ms;
    query.after_id = page->back().id;
  }
  EXPECT_EQ(seen, in_range);
}

// The daemon's threads (dispatcher, workers) on the real clock: on PostgreSQL only, as the store's
// statements are the same as above and these wait out real call timeouts.
class NotifierOnTheRealClockTest : public NotifierTest {
 protected:
  // A notifier of `workers` on the real clock with a 3 s call timeout, a receiver that answers
  // (healthy_) and, in receiver_, one that hangs.
  void StartWithAHangingReceiver(int workers) {
    options_.workers = workers;
    options_.call_timeout = 3000ms;
    notifier_ = MakeNotifier(Env::Default()->clock());
    healthy_ = std::make_unique<Receiver>(Env::Default()->clock());
    healthy_->Start(secret_);
    receiver_ = std::make_unique<Receiver>(Env::Default()->clock());
    receiver_->Start(secret_);
    receiver_->Set(Behaviour::kHang);
  }
  std::unique_ptr<Receiver> healthy_;
};

TEST_P(NotifierOnTheRealClockTest, OneEndpointTimingOutDoesNotDelayAnotherOnTheRealClock) {
  StartWithAHangingReceiver(6);
  EndpointChange hanging;
  hanging.id = "hanging";
  hanging.url = receiver_->url();
  hanging.secrets = std::vector<std::string>{secret_};
  hanging.max_in_flight = 2;
  ASSERT_TRUE(notifier_->PutEndpoint(hanging).ok());
  PutEndpoint(*notifier_, "healthy", healthy_->url());
  notifier_->Start();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(notifier_->Submit("hanging", "e", "{}").ok());
  std::this_thread::sleep_for(100ms);  // the hanging endpoint's calls are under way
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(notifier_->Submit("healthy", "e", "{}")->id);
  auto all_delivered = [&] {
    for (const std::string& id : ids) {
      if (Get(*notifier_, id).status != NotificationStatus::kSucceeded) return false;
    }
    return true;
  };
  while (!all_delivered() && std::chrono::steady_clock::now() - started < 10s) {
    std::this_thread::sleep_for(20ms);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(all_delivered());
  EXPECT_LT(took, options_.call_timeout) << "the healthy endpoint waited for the hanging one";
  EXPECT_LE(receiver_->max_concurrent(), 2) << "max_in_flight was exceeded";
  notifier_->Stop();
  receiver_->Stop();
}

TEST_P(NotifierOnTheRealClockTest, EndpointsTimingOutByTheDozenHoldAtMostHalfTheWorkers) {
  StartWithAHangingReceiver(4);
  PutEndpoint(*notifier_, "healthy", healthy_->url());
  notifier_->Start();
  // The healthy endpoint has answered before: the notifier knows it as proven.
  auto first = notifier_->Submit("healthy", "e", "{}");
  ASSERT_TRUE(first.ok());
  while (healthy_->requests() < 1) std::this_thread::sleep_for(5ms);
  for (int i = 0; i < 12; ++i) {
    PutEndpoint(*notifier_, "hanging-" + std::to_string(i), receiver_->url());
    ASSERT_TRUE(notifier_->Submit("hanging-" + std::to_string(i), "e", "{}").ok());
  }
  std::this_thread::sleep_for(200ms);  // the hanging endpoints' calls are under way
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(notifier_->Submit("healthy", "e", "{}")->id);
  while (healthy_->requests() < 7 && std::chrono::steady_clock::now() - started < 10s) {
    std::this_thread::sleep_for(5ms);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(healthy_->requests(), 7);
  EXPECT_LT(took, options_.call_timeout) << "the healthy endpoint waited for the hanging ones";
  EXPECT_LE(receiver_->max_concurrent(), options_.unproven_share())
      << "unproven endpoints held more than their share of the workers";
  notifier_->Stop();
  receiver_->Stop();
}

TEST_P(NotifierOnTheRealClockTest, RealClockRetriesWaitTheirStepsThenDeliver) {
  notifier_ = MakeNotifier(Env::Default()->clock());
  receiver_ = std::make_unique<Receiver>(Env::Default()->clock());
  receiver_->Start(secret_);
  receiver_->Set(Behaviour::kError500);
  EndpointChange change;
  change.id = "flaky";
  change.url = receiver_->url();
  change.secrets = std::vector<std::string>{secret_};
  change.ladder = RetryLadder{1s, 1s, 1s};
  ASSERT_TRUE(notifier_->PutEndpoint(change).ok());
  notifier_->Start();
  auto submitted = notifier_->Submit("flaky", "e", "{}");
  ASSERT_TRUE(submitted.ok());
  const auto started = std::chrono::steady_clock::now();
  while (receiver_->requests() < 3 && std::chrono::steady_clock::now() - started < 10s) {
    std::this_thread::sleep_for(10ms);
  }
  receiver_->Set(Behaviour::kOk);
  while (Get(*notifier_, submitted->id).status == NotificationStatus::kPending &&
         std::chrono::steady_clock::now() - started < 15s) {
    std::this_thread::sleep_for(20ms);
  }
  notifier_->Stop();
  Notification n = Get(*notifier_, submitted->id);
  EXPECT_EQ(n.status, NotificationStatus::kSucceeded);
  EXPECT_EQ(n.attempts, 4);
  std::vector<Clock::WallTime> times = receiver_->times();
  ASSERT_EQ(times.size(), 4u);
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GE(times[i] - times[i - 1], 990ms) << "attempt " << i + 1 << " came early";
  }
}

INSTANTIATE_TEST_SUITE_P(Postgres, NotifierOnTheRealClockTest,
                         ::testing::Values(odbc::Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<odbc::Dialect>&) { return "Postgres"; });
INSTANTIATE_TEST_SUITE_P(Servers, NotifierTest,
                         ::testing::Values(odbc::Dialect::kMariaDb, odbc::Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<odbc::Dialect>& dialect) {
                           return dialect.param == odbc::Dialect::kMariaDb ? "MariaDb"
                                                                           : "Postgres";
                         });

}  // namespace
}  // namespace xa::msg
