// The management page of xa-msgd in a real browser: headless Chromium (Debian's chromium)
// driven through chromedriver's W3C WebDriver protocol over HTTP, against a real xa-msgd whose
// store is the local MariaDB. An operator is refused with a wrong token, connects with the
// right one, finds the dead message through the counts, reads its history and its body (a
// body that is markup shows as text and runs nothing), revives it, and sees the revival in the
// audit table; the service confirms each effect through the API. With the notifier configured,
// an operator follows a notification that its endpoint refuses (pending with its failed
// attempts, the endpoint's health), then gone (failed, endpoint disabled), and resends it once
// the endpoint is back. Each test saves a screenshot of the page and prints where.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "examples/local_agents/local_agents.h"
#include "src/base/byte_text.h"
#include "src/http/http_client.h"
#include "src/http/http_server.h"
#include "tests/msgd/msgd_process.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/test_secrets.h"
#include "xa/msg/message_client.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";  // W3C WebDriver's

// One headless Chromium through chromedriver (W3C WebDriver over HTTP).
class Browser {
 public:
  explicit Browser(const ScratchDir& dir) {
    const int port = local_agents::FreeLoopbackPort();
    EXPECT_GT(port, 0);
    driver_pid_ = Spawn({"/usr/bin/chromedriver", "--port=" + std::to_string(port),
                         "--allowed-ips=127.0.0.1"},
                        {}, dir.File("chromedriver.out"));
    auto http = http::HttpClient::Make(
        {"http://127.0.0.1:" + std::to_string(port), 2s, 60s, 32 << 20, 1, {}});
    EXPECT_TRUE(http.ok()) << http.status().ToString();
    http_ = std::move(http).value();
    for (int i = 0; i < 100; ++i) {
      auto status = http_->Get("/status");
      if (status.ok() && status->status == 200) break;
      std::this_thread::sleep_for(100ms);
    }
    Json capabilities = {
        {"capabilities",
         {{"alwaysMatch",
           {{"browserName", "chrome"},
            {"goog:chromeOptions",
             {{"binary", "/usr/bin/chromium"},
              {"args",
               {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1100", "--user-data-dir=" + dir.File("chromium-profile")}}}}}}}}};
    Json session = Call("POST", "/session", capabilities);
    session_ = session.value("value", Json::object()).value("sessionId", "");
    EXPECT_FALSE(session_.empty()) << "no browser session: " << session.dump();
  }
  ~Browser() {
    if (!session_.empty()) (void)http_->Delete("/session/" + session_);
    if (driver_pid_ > 0) {
      ::kill(driver_pid_, SIGTERM);
      int status = 0;
      ::waitpid(driver_pid_, &status, 0);
    }
  }
  bool ready() const { return !session_.empty(); }

  void Open(const std::string& url) { Call("POST", Session("/url"), {{"url", url}}); }
  // The element matching `css` now; "" when none.
  std::string Find(const std::string& css) {
    Json found = Call("POST", Session("/element"), {{"using", "css selector"}, {"value", css}},
                      /*may_fail=*/true);
    return found.value("value", Json::object()).value(kElementKey, "");
  }
  // Waits up to `timeout` for an element matching `css` whose text contains `text`.
  std::string WaitForText(const std::string& css, const std::string& text,
                          std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string element = Find(css);
      if (!element.empty()) {
        last = Text(element);
        if (last.find(text) != std::string::npos) return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "no '" << css << "' with text '" << text << "' (last: '" << last << "')";
    return last;
  }
  // The text of the element matching `css` once there is one with text (waits up to 10 s).
  std::string WaitForElementText(const std::string& css) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string element = Find(css);
      std::string text = element.empty() ? "" : Text(element);
      if (!text.empty()) return text;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "no '" << css << "' with text";
    return "";
  }
  // The element's text; "" when it is gone (a stale element's answer is an error object).
  std::string Text(const std::string& element) {
    Json text = Call("GET", Session("/element/" + element + "/text"), nullptr, true);
    return text.contains("value") && text["value"].is_string() ? text["value"].get<std::string>()
                                                               : "";
  }
  void Click(const std::string& css) {
    std::string element = Find(css);
    ASSERT_FALSE(element.empty()) << "nothing to click at '" << css << "'";
    Call("POST", Session("/element/" + element + "/click"), Json::object());
  }
  void Type(const std::string& css, const std::string& text) {
    std::string element = Find(css);
    ASSERT_FALSE(element.empty()) << "no field '" << css << "'";
    Call("POST", Session("/element/" + element + "/clear"), Json::object());
    Call("POST", Session("/element/" + element + "/value"), {{"text", text}});
  }
  // Scrolls the element matching `css` to the top of the window (for a screenshot).
  void ScrollTo(const std::string& css) {
    std::string element = Find(css);
    ASSERT_FALSE(element.empty()) << "nothing to scroll to at '" << css << "'";
    Call("POST", Session("/execute/sync"),
         {{"script", "arguments[0].scrollIntoView(true);"},
          {"args", Json::array({Json{{kElementKey, element}}})}});
  }
  // The page's DOM as markup.
  std::string Source() { return Call("GET", Session("/source"), nullptr).value("value", ""); }
  // Whether an alert (an injected script's, say) is open.
  bool AlertOpen() {
    Json alert = Call("GET", Session("/alert/text"), nullptr, /*may_fail=*/true);
    return !alert.value("value", Json::object()).is_object() ||
           !alert["value"].contains("error");
  }
  // A PNG of the window.
  std::string Screenshot() {
    std::string text = Call("GET", Session("/screenshot"), nullptr).value("value", "");
    for (char& c : text) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!text.empty() && text.back() == '=') text.pop_back();
    std::string png;
    EXPECT_TRUE(internal::ParseBase64Url(text, &png)) << "the screenshot is not base64";
    return png;
  }

 private:
  std::string Session(const std::string& path) const { return "/session/" + session_ + path; }
  Json Call(const std::string& method, const std::string& path, const Json& body,
            bool may_fail = false) {
    Result<http::HttpReply> reply =
        method == "GET" ? http_->Get(path)
                        : http_->Post(path, "application/json", body.is_null() ? "{}" : body.dump());
    EXPECT_TRUE(reply.ok()) << method << " " << path << ": " << reply.status().ToString();
    if (!reply.ok()) return Json::object();
    if (!may_fail) {
      EXPECT_EQ(reply->status, 200) << method << " " << path << ": " << reply->body;
    }
    Json json = Json::parse(reply->body, nullptr, false);
    return json.is_object() ? json : Json::object();
  }

  pid_t driver_pid_ = -1;
  std::unique_ptr<http::HttpClient> http_;
  std::string session_;
};

class MsgdPageBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "mp" + RandomHex(4) + "_";
    queue_ = "xa-msgd-page-" + RandomHex(4);
    producer_token_ = RandomHex(20);
    operator_token_ = RandomHex(20);
    WriteSecretFile(dir_.File("tokens"),
                "producer orders " + producer_token_ + "\noperator night-shift " + operator_token_);
    WriteSecretFile(dir_.File("store.pw"), MariaDbAccount().password);
    WriteSecretFile(dir_.File("amqp.pw"), RabbitMqAccount().password);
    std::ofstream config(dir_.File("msgd.conf"));
    // Nobody consumes: a confirmed message is published once and dies at its first ack timeout.
    config << "listen = 127.0.0.1:0\ntokens_file = " << dir_.File("tokens") << "\n"
           << "table_prefix = " << prefix_ << "\npoll_interval_ms = 50\n"
           << "ack_timeout_ms = 300\nredelivery_ladder_ms = 300\nmax_redeliveries = 0\n"
           << "[rm store]\ndriver = odbc\ndsn = " << OdbcMariaDbDsn() << "\ndialect = mariadb\n"
           << "user = " << MariaDbAccount().user << "\npassword_file = " << dir_.File("store.pw")
           << "\n[broker rabbitmq]\nhost = " << RabbitMqAccount().host << "\n"
           << "port = " << RabbitMqAccount().port << "\nuser = " << RabbitMqAccount().user
           << "\npassword_file = " << dir_.File("amqp.pw") << "\n";
  }
  void TearDown() override {
    MariaDbAdmin("USE " + MariaDbAccount().database + "; DROP TABLE IF EXISTS " + prefix_ +
                 "event, " + prefix_ + "message, " + prefix_ + "schema, " + prefix_ + "audit, " +
                 prefix_ + "attempt, " + prefix_ + "notification, " + prefix_ + "endpoint");
  }
  // Appends the notifier's section to the configuration SetUp wrote, allowed to call the test's
  // local receiver. Its breaker never opens (1000 failures in a row), so a refusing endpoint is
  // called at every step of its ladder.
  void AddNotifier() {
    std::ofstream config(dir_.File("msgd.conf"), std::ios::app);
    config << "[notifier webhooks]\nallowed_schemes = http\nallowed_networks = 127.0.0.0/8\n"
           << "call_timeout_ms = 1000\nbreaker_failures = 1000\n";
  }
  // POSTs `body` to `path` with `token`: the answer's status and JSON (0 and {} when none).
  std::pair<int, Json> Call(const std::string& url, const std::string& token,
                            const std::string& path, const Json& body) {
    auto http =
        http::HttpClient::Make({url, 2s, 5s, 1 << 20, 1, {{"Authorization", "Bearer " + token}}});
    EXPECT_TRUE(http.ok());
    if (!http.ok()) return {0, Json::object()};
    auto reply = (*http)->Post(path, "application/json", body.dump());
    EXPECT_TRUE(reply.ok()) << path << ": " << reply.status().ToString();
    if (!reply.ok()) return {0, Json::object()};
    Json json = Json::parse(reply->body, nullptr, false);
    return {reply->status, json.is_object() ? json : Json::object()};
  }
  Json Admin(const std::string& url, const std::string& path, const Json& body) {
    auto [status, json] = Call(url, operator_token_, path, body);
    EXPECT_EQ(status, 200) << path << ": " << json.dump();
    return json;
  }
  // Polls the notification `id` (with its attempts) until `done` holds, for up to 15 s; its
  // last state either way.
  template <typename Done>
  Json WaitForNotification(const std::string& url, const std::string& id, Done done) {
    Json state;
    for (int i = 0; i < 300; ++i) {
      state = Admin(url, "/v1/notifications/get", {{"id", id}, {"attempts", true}});
      if (done(state)) return state;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "notification " << id << " never reached the awaited state: " << state.dump();
    return state;
  }
  void SaveScreenshot(Browser& browser, const std::string& name) {
    const std::string png = browser.Screenshot();
    EXPECT_GT(png.size(), 1000u);
    EXPECT_EQ(png.substr(1, 3), "PNG");
    const std::string shot = std::filesystem::absolute(name).string();
    std::ofstream(shot, std::ios::binary) << png;
    std::cout << "screenshot of the management page: " << shot << " (" << png.size() << " bytes)"
              << std::endl;
    RecordProperty("screenshot", shot);
  }

  ScratchDir dir_;
  std::string prefix_, queue_, producer_token_, operator_token_;
};

TEST_F(MsgdPageBrowserTest, OperatorFindsReadsAndRevivesADeadMessageAndTheAuditShowsIt) {
  MsgdProcess msgd(XA_MSGD_PATH, dir_.File("msgd.conf"), dir_.File("msgd"));
  msgd.Start("127.0.0.1:0");
  ASSERT_TRUE(msgd.running());
  auto producer = msg::MessageClient::Make({msgd.url(), producer_token_});
  ASSERT_TRUE(producer.ok());
  const std::string body = R"body(<img src=x onerror="alert('injected')"> {"order": 42})body";
  auto dead_id = (*producer)->PreSend({"payment.booked", queue_, body, "http://127.0.0.1:9/q"});
  ASSERT_TRUE(dead_id.ok()) << dead_id.status().ToString();
  ASSERT_TRUE((*producer)->Confirm(*dead_id).ok());
  auto pending_id = (*producer)->PreSend({"payment.booked", queue_, "pending", "http://127.0.0.1:9/q"});
  ASSERT_TRUE(pending_id.ok());
  bool died = false;
  for (int i = 0; i < 100 && !died; ++i) {
    std::this_thread::sleep_for(100ms);
    died = Admin(msgd.url(), "/v1/admin/get", {{"id", *dead_id}}).value("dead", false);
  }
  ASSERT_TRUE(died) << "the unconsumed message did not die";

  Browser browser(dir_);
  ASSERT_TRUE(browser.ready());
  browser.Open(msgd.url() + "/ui");
  // A wrong token is refused, and the page says so.
  browser.Type("#token", RandomHex(20));
  browser.Click("#connect");
  browser.WaitForText("#status", "401");
  // The operator's token: the counts show one dead sent message and one pending.
  browser.Type("#token", operator_token_);
  browser.Click("#connect");
  browser.WaitForText("#status", "connected");
  EXPECT_EQ(browser.WaitForText("#count-sent-dead", "1"), "1");
  EXPECT_EQ(browser.WaitForText("#count-pending-live", "1"), "1");
  browser.Click("#count-sent-dead");
  browser.WaitForText("#list-title", "sent, dead");
  browser.Click("button[data-id='" + *dead_id + "']");
  browser.WaitForText("#message-id", *dead_id);
  EXPECT_EQ(browser.WaitForText("#field-dead", "yes"), "yes");
  browser.WaitForText("#history", "dead: redeliveries exhausted");
  // The body is shown as the text it is; its markup ran nothing.
  EXPECT_EQ(browser.WaitForText("#message-body", "onerror"), body);
  EXPECT_FALSE(browser.AlertOpen()) << "the message body ran as markup";

  browser.Click("#action-revive");
  browser.WaitForText("#status", "revive " + *dead_id + ": changed");
  browser.WaitForText("#audit", "night-shift");
  std::string audit_text = browser.WaitForText("#audit", "revive");
  EXPECT_NE(audit_text.find(*dead_id), std::string::npos) << audit_text;
  // This daemon runs no notifier: its part of the page says so, and nothing else failed.
  browser.WaitForText("#notifier-absent", "runs no notifier");
  EXPECT_EQ(browser.Text(browser.Find("#notification-counts")), "");

  SaveScreenshot(browser, "msgd-management-page.png");

  // What the page did, as the service and its audit table record it.
  // Revived: published again after the operator's revival (it may since have died again: its
  // ack timeout is short and nobody consumes).
  bool published_again = false;
  Json revived;
  for (int i = 0; i < 100 && !published_again; ++i) {
    revived = Admin(msgd.url(), "/v1/admin/get", {{"id", *dead_id}});
    bool after_revive = false;
    for (const Json& event : revived.value("history", Json::array())) {
      const std::string kind = event.value("kind", "");
      if (kind == "operator: revive") after_revive = true;
      if (after_revive && kind == "published") published_again = true;
    }
    if (!published_again) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(published_again) << revived.dump();
  Json audit = Admin(msgd.url(), "/v1/admin/audit", {{"limit", 10}});
  ASSERT_EQ(audit["entries"].size(), 1u) << audit.dump();
  EXPECT_EQ(audit["entries"][0].value("operator", ""), "night-shift");
  EXPECT_EQ(audit["entries"][0].value("action", ""), "revive");
  EXPECT_EQ(audit["entries"][0].value("id", ""), *dead_id);
  EXPECT_EQ(audit["entries"][0].value("result", ""), "changed");
  // The page itself is plain: its script and style come from the daemon.
  auto page = http::HttpClient::Make({msgd.url(), 2s, 5s, 1 << 20, 1, {}});
  ASSERT_TRUE(page.ok());
  auto html = (*page)->Get("/ui");
  ASSERT_TRUE(html.ok() && html->status == 200);
  EXPECT_NE(html->body.find("/ui/app.js"), std::string::npos);
  msgd.Stop(SIGTERM);
}

TEST_F(MsgdPageBrowserTest, OperatorFollowsAFailingNotificationAndResendsItOnceItsEndpointIsBack) {
  AddNotifier();
  // The merchant's server: refuses (500), then is gone (410), then accepts (200).
  std::atomic<int> answer{500};
  std::atomic<int> delivered{0};
  http::HttpServerOptions receiver;
  receiver.address = "127.0.0.1:0";
  receiver.post_routes["/hook"] = [&](const http::HttpRequest&) {
    const int status = answer.load();
    if (status == 200) ++delivered;
    return http::HttpResponse(status, "text/plain",
                              status == 500   ? "busy, try later"
                              : status == 410 ? "gone"
                                              : "ok");
  };
  auto server = http::HttpServer::Start(std::move(receiver));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string hook = "http://" + (*server)->address() + "/hook";

  MsgdProcess msgd(XA_MSGD_PATH, dir_.File("msgd.conf"), dir_.File("msgd"));
  msgd.Start("127.0.0.1:0");
  ASSERT_TRUE(msgd.running());
  // An endpoint retried every second (64 steps), so its 410 comes soon after the server's.
  std::string ladder = "1000";
  for (int i = 1; i < 64; ++i) ladder += ",1000";
  auto [put_status, endpoint] = Call(msgd.url(), operator_token_, "/v1/endpoints/put",
                                     {{"id", "shop-1"}, {"url", hook}, {"ladder", ladder}});
  ASSERT_EQ(put_status, 200) << endpoint.dump();
  const std::string secret = endpoint.value("secret", "");
  ASSERT_GT(secret.size(), 6u) << endpoint.dump();
  auto [submit_status, submitted] =
      Call(msgd.url(), producer_token_, "/v1/notifications/submit",
           {{"endpoint", "shop-1"}, {"event_type", "payment.succeeded"}, {"body", "{\"n\":7}"}});
  ASSERT_EQ(submit_status, 200) << submitted.dump();
  const std::string id = submitted.value("id", "");
  ASSERT_FALSE(id.empty());
  Json state = WaitForNotification(msgd.url(), id, [](const Json& n) {
    return !n.value("attempt_history", Json::array()).empty();
  });
  ASSERT_EQ(state.value("status", ""), "pending") << state.dump();
  ASSERT_EQ(state["attempt_history"][0].value("http_status", 0), 500) << state.dump();

  Browser browser(dir_);
  ASSERT_TRUE(browser.ready());
  browser.Open(msgd.url() + "/ui");
  browser.Type("#token", operator_token_);
  browser.Click("#connect");
  browser.WaitForText("#status", "connected");
  // Pending, with its refused attempt in the history.
  EXPECT_EQ(browser.WaitForText("#notification-count-pending", "1"), "1");
  EXPECT_EQ(browser.WaitForElementText("#notification-count-failed"), "0");
  browser.Click("#notification-count-pending");
  browser.WaitForText("#notification-list-title", "pending");
  const std::string listed = "#notification-list button[data-id='" + id + "']";
  browser.Click(listed);
  browser.WaitForText("#notification-id", id);
  EXPECT_EQ(browser.WaitForElementText("#notification-field-status"), "pending");
  EXPECT_EQ(browser.WaitForElementText("#notification-field-endpoint"), "shop-1");
  EXPECT_EQ(browser.WaitForElementText("#notification-body"), "{\"n\":7}");
  const std::string first = "#attempts tbody tr:first-child";
  EXPECT_EQ(browser.WaitForElementText(first + " td:nth-child(1)"), "1");
  EXPECT_EQ(browser.WaitForElementText(first + " td:nth-child(4)"), "500");
  EXPECT_EQ(browser.WaitForElementText(first + " td:nth-child(5)"), "retry");
  EXPECT_EQ(browser.WaitForElementText(first + " td:nth-child(6)"), "busy, try later");
  // The endpoint's health: enabled, its breaker closed, failing since its first call.
  const std::string row = "#endpoints tr[data-id='shop-1']";
  browser.WaitForText(row, hook);
  EXPECT_EQ(browser.WaitForElementText(row + " td.enabled"), "yes");
  EXPECT_EQ(browser.WaitForElementText(row + " td.breaker"), "closed");
  EXPECT_EQ(browser.WaitForElementText(row + " td:nth-child(4)"), "64 steps, 64 s");
  EXPECT_GE(std::atoi(browser.WaitForElementText(row + " td.failures").c_str()), 1);

  // Gone: the notification fails and its endpoint is disabled.
  answer = 410;
  state = WaitForNotification(msgd.url(), id,
                              [](const Json& n) { return n.value("status", "") == "failed"; });
  ASSERT_EQ(state.value("status", ""), "failed") << state.dump();
  ASSERT_EQ(state["attempt_history"].back().value("verdict", ""), "gone") << state.dump();
  browser.Click("#refresh");
  browser.WaitForText("#status", "refreshed");
  browser.WaitForText("#notification-field-status", "failed");
  browser.WaitForText("#attempts tbody tr:last-child", "gone");
  browser.WaitForText(row + " td.enabled", "no: the endpoint answered 410 Gone");
  // A resend while the endpoint is disabled is refused, and the page says why.
  browser.Click("#notification-resend");
  browser.WaitForText("#status", "enable it first");

  // Back: the operator enables the endpoint again and resends the notification from the page.
  answer = 200;
  auto [enable_status, enabled] =
      Call(msgd.url(), operator_token_, "/v1/endpoints/put", {{"id", "shop-1"}, {"enabled", true}});
  ASSERT_EQ(enable_status, 200) << enabled.dump();
  ASSERT_TRUE(enabled.value("enabled", false)) << enabled.dump();
  browser.Click("#refresh");
  browser.WaitForText("#status", "refreshed");
  browser.WaitForText(row + " td.enabled", "yes");
  browser.Click("#notification-resend");
  browser.WaitForText("#status", "resend notification " + id + ": changed");

  // Delivered, once, on the first attempt of its fresh ladder; the page shows it.
  state = WaitForNotification(msgd.url(), id,
                              [](const Json& n) { return n.value("status", "") == "succeeded"; });
  ASSERT_EQ(state.value("status", ""), "succeeded") << state.dump();
  EXPECT_EQ(state.value("attempts", 0), 1) << state.dump();
  const Json& last = state["attempt_history"].back();
  EXPECT_EQ(last.value("http_status", 0), 200) << state.dump();
  EXPECT_EQ(last.value("verdict", ""), "delivered") << state.dump();
  EXPECT_EQ(delivered.load(), 1);
  browser.Click("#refresh");
  browser.WaitForText("#status", "refreshed");
  browser.WaitForText("#notification-field-status", "succeeded");
  browser.WaitForText("#attempts tbody tr:last-child", "delivered");
  EXPECT_EQ(browser.WaitForElementText("#notification-count-succeeded"), "1");
  // The endpoint's secret, shown once to the operator's API call, never reached the page.
  EXPECT_EQ(browser.Source().find(secret.substr(6)), std::string::npos);

  browser.ScrollTo("#notifier");
  SaveScreenshot(browser, "msgd-notifier-page.png");
  msgd.Stop(SIGTERM);
  (*server)->Stop();
}

}  // namespace
}  // namespace xa::test
