// The management page of xa-msgd in a real browser: headless Chromium (Debian's chromium)
// driven through chromedriver's W3C WebDriver protocol over HTTP, against a real xa-msgd whose
// store is the local MariaDB. An operator is refused with a wrong token, connects with the
// right one, finds the dead message through the counts, reads its history and its body (a
// body that is markup shows as text and runs nothing), revives it, and sees the revival in the
// audit table; the service confirms each effect through the API. The test saves a screenshot
// of the page and prints where.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
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
  std::string Text(const std::string& element) {
    return Call("GET", Session("/element/" + element + "/text"), nullptr, true).value("value", "");
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
                 "event, " + prefix_ + "message, " + prefix_ + "schema, " + prefix_ + "audit");
  }
  Json Admin(const std::string& url, const std::string& path, const Json& body) {
    auto http = http::HttpClient::Make(
        {url, 2s, 5s, 1 << 20, 1, {{"Authorization", "Bearer " + operator_token_}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post(path, "application/json", body.dump());
    EXPECT_TRUE(reply.ok() && reply->status == 200) << path << ": " << (reply.ok() ? reply->body : "");
    return reply.ok() ? Json::parse(reply->body, nullptr, false) : Json::object();
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

  const std::string png = browser.Screenshot();
  EXPECT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  const std::string shot = std::filesystem::absolute("msgd-management-page.png").string();
  std::ofstream(shot, std::ios::binary) << png;
  std::cout << "screenshot of the management page: " << shot << " (" << png.size() << " bytes)"
            << std::endl;
  RecordProperty("screenshot", shot);

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

}  // namespace
}  // namespace xa::test
