// xa::http::MakeTccParticipant (drivers/http) against HTTP services on loopback: every answer a
// service can give (2xx, 409, other statuses, silence, a body too large, no server at all) and
// what the coordinator makes of it, through a TransactionManager whose participants are HTTP.

#include "xa/http/tcc_participant.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/http/http_server.h"
#include "tests/testutil/memory_decision_log.h"
#include "testutil/status_matchers.h"
#include "xa/transaction_manager.h"

namespace xa::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using test::StatusIs;

// A participant service: POST /try, /confirm, /cancel. Each operation answers the next scripted
// status (200 once the script is empty), after an optional delay. Records every request body.
class ScriptedService {
 public:
  ScriptedService() {
    HttpServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 4;
    for (const char* op : {"try", "confirm", "cancel"}) {
      const std::string name = op;
      options.post_routes["/" + name] = [this, name](const HttpRequest& request) {
        return Serve(name, request);
      };
    }
    Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  std::string Url(const std::string& op) const { return "http://" + server_->address() + "/" + op; }
  TccParticipantOptions Options() const {
    TccParticipantOptions options;
    options.try_url = Url("try");
    options.confirm_url = Url("confirm");
    options.cancel_url = Url("cancel");
    options.request_timeout = std::chrono::milliseconds(500);
    return options;
  }

  void Script(const std::string& op, std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int s : statuses) script_[op].push_back(s);
  }
  void Delay(std::chrono::milliseconds delay) { delay_ms_.store(delay.count()); }
  void AnswerBody(std::string body) {
    std::lock_guard<std::mutex> lock(mu_);
    body_ = std::move(body);
  }
  std::vector<std::pair<std::string, HttpRequest>> Requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t Count(const std::string& op) const {
    size_t n = 0;
    for (const auto& [name, request] : Requests()) n += name == op ? 1 : 0;
    return n;
  }
  void Stop() { server_->Stop(); }

 private:
  HttpResponse Serve(const std::string& op, const HttpRequest& request) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_.load()));
    std::lock_guard<std::mutex> lock(mu_);
    requests_.emplace_back(op, request);
    int status = 200;
    auto& queue = script_[op];
    if (!queue.empty()) {
      status = queue.front();
      queue.erase(queue.begin());
    }
    return HttpResponse{status, "text/plain", status == 200 ? "ok" : body_};
  }

  mutable std::mutex mu_;
  std::map<std::string, std::vector<int>> script_;
  std::vector<std::pair<std::string, HttpRequest>> requests_;
  std::string body_ = "insufficient funds";
  std::atomic<int64_t> delay_ms_{0};
  std::unique_ptr<HttpServer> server_;
};

TccCall CallFor(const Xid& global, std::string_view payload) {
  return TccCall{global, global.WithBranch(1), "funds", payload};
}

class HttpTccParticipantTest : public ::testing::Test {
 protected:
  std::shared_ptr<TccParticipant> Make(TccParticipantOptions options) {
    Result<std::shared_ptr<TccParticipant>> made = MakeTccParticipant(std::move(options));
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? *made : nullptr;
  }

  XidGenerator xids_{7};
  ScriptedService service_;
};

TEST_F(HttpTccParticipantTest, PostsTheIdsAndThePayloadAsJsonToEachOperationsUrl) {
  auto participant = Make(service_.Options());
  Xid global = xids_.Next(Protocol::kTcc);
  EXPECT_EQ(participant->Try(CallFor(global, "{\"amount\":250}")).reply, TccReply::kDone);
  EXPECT_EQ(participant->Confirm(CallFor(global, "x")).reply, TccReply::kDone);
  EXPECT_EQ(participant->Cancel(CallFor(global, "x")).reply, TccReply::kDone);
  auto requests = service_.Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].first, "try");
  EXPECT_EQ(requests[0].second.content_type, "application/json");
  EXPECT_EQ(requests[0].second.body,
            "{\"global_id\":\"" + global.ToString() + "\",\"branch_id\":\"" +
                std::string("010001") +
                "\",\"participant\":\"funds\",\"operation\":\"try\","
                "\"payload\":\"{\\\"amount\\\":250}\"}");
  EXPECT_THAT(requests[1].second.body, HasSubstr("\"operation\":\"confirm\""));
  EXPECT_THAT(requests[2].second.body, HasSubstr("\"operation\":\"cancel\""));
}

TEST_F(HttpTccParticipantTest, APayloadThatIsNotUtf8TravelsAsBase64SoNoByteIsLost) {
  EXPECT_THAT(TccRequestBody(CallFor(xids_.Next(Protocol::kTcc), std::string("\xff\x00\x01", 3)),
                             "try"),
              HasSubstr("\"payload_base64\":\"_wAB\"}"));
  EXPECT_THAT(TccRequestBody(CallFor(xids_.Next(Protocol::kTcc), "caf\xc3\xa9\n"), "try"),
              HasSubstr("\"payload\":\"caf\xc3\xa9\\n\"}"));
}

TEST_F(HttpTccParticipantTest, A409RefusesATryAndOnlyATry) {
  auto participant = Make(service_.Options());
  Xid global = xids_.Next(Protocol::kTcc);
  service_.Script("try", {409});
  service_.Script("confirm", {409});
  service_.Script("cancel", {409});
  TccResult refused = participant->Try(CallFor(global, "x"));
  EXPECT_EQ(refused.reply, TccReply::kRefused);
  EXPECT_THAT(refused.detail, HasSubstr("409"));
  EXPECT_THAT(refused.detail, HasSubstr("insufficient funds"));
  EXPECT_EQ(participant->Confirm(CallFor(global, "x")).reply, TccReply::kFailed);
  EXPECT_EQ(participant->Cancel(CallFor(global, "x")).reply, TccReply::kFailed);
}

TEST_F(HttpTccParticipantTest, OtherStatusesSilenceAndHugeAnswersAreFailuresNeverDone) {
  auto participant = Make(service_.Options());
  Xid global = xids_.Next(Protocol::kTcc);
  service_.Script("confirm", {500, 503, 404, 302});
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(participant->Confirm(CallFor(global, "x")).reply, TccReply::kFailed) << i;
  }
  service_.Script("confirm", {500});
  service_.AnswerBody(std::string(64 * 1024, 'z'));
  TccResult huge = participant->Confirm(CallFor(global, "x"));
  EXPECT_EQ(huge.reply, TccReply::kFailed);
  EXPECT_THAT(huge.detail, HasSubstr("larger than"));

  service_.Delay(std::chrono::milliseconds(1500));
  auto start = std::chrono::steady_clock::now();
  TccResult silent = participant->Confirm(CallFor(global, "x"));
  EXPECT_EQ(silent.reply, TccReply::kFailed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1400));
  service_.Delay(std::chrono::milliseconds(0));
}

TEST_F(HttpTccParticipantTest, NoServerIsAFailureAndHeadersNeverShowInTheReason) {
  TccParticipantOptions options = service_.Options();
  options.headers = {{"Authorization", "Bearer s3cret-token"}};
  service_.Stop();
  auto participant = Make(options);
  TccResult result = participant->Try(CallFor(xids_.Next(Protocol::kTcc), "x"));
  EXPECT_EQ(result.reply, TccReply::kFailed);
  EXPECT_THAT(result.detail, HasSubstr("/try"));
  EXPECT_THAT(result.detail, Not(HasSubstr("s3cret")));
}

TEST_F(HttpTccParticipantTest, MalformedUrlsAreRefusedNamingTheOption) {
  TccParticipantOptions options = service_.Options();
  options.confirm_url = "ftp://127.0.0.1/confirm";
  EXPECT_THAT(MakeTccParticipant(options).status(), StatusIs(Code::kInval));
  options.confirm_url = "http://127.0.0.1:1";  // no path
  Status no_path = MakeTccParticipant(options).status();
  EXPECT_THAT(no_path, StatusIs(Code::kInval));
  EXPECT_THAT(no_path.message(), HasSubstr("confirm_url"));
  options = service_.Options();
  options.request_timeout = std::chrono::milliseconds(0);
  EXPECT_THAT(MakeTccParticipant(options).status(), StatusIs(Code::kInval));
}

// The manager's whole TCC path over two HTTP services.
class HttpTccManagerTest : public HttpTccParticipantTest {
 protected:
  void OpenManager() {
    TransactionManagerOptions options;
    options.node_id = 7;
    options.recover_on_open = false;
    options.recovery_interval = std::chrono::milliseconds(0);
    options.inline_retry = RetryPolicy{2, std::chrono::microseconds(0),
                                       std::chrono::microseconds(0), 2.0};
    options.background_retry = RetryPolicy{0, std::chrono::milliseconds(1),
                                           std::chrono::milliseconds(20), 2.0};
    options.tcc.participants["funds"] = Make(service_.Options());
    options.tcc.participants["points"] = Make(points_.Options());
    Result<std::unique_ptr<TransactionManager>> manager =
        TransactionManager::Open(std::move(options), log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(*manager);
  }

  Result<Outcome> Run() {
    Result<TccTransaction> txn = manager_->BeginTcc();
    if (!txn.ok()) return txn.status();
    XA_RETURN_IF_ERROR(txn->Enlist("funds", "{\"amount\":250}"));
    XA_RETURN_IF_ERROR(txn->Enlist("points", "{\"points\":25}"));
    return txn->Commit();
  }

  ScriptedService points_;
  test::MemoryDecisionLog log_{7};
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(HttpTccManagerTest, TwoServicesConfirmAfterBothTrys) {
  OpenManager();
  EXPECT_EQ(Run().value(), Outcome::kCommitted);
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  EXPECT_EQ(service_.Count("try"), 1u);
  EXPECT_EQ(service_.Count("confirm"), 1u);
  EXPECT_EQ(points_.Count("confirm"), 1u);
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

TEST_F(HttpTccManagerTest, A409OnOneServiceCancelsBoth) {
  points_.Script("try", {409});
  OpenManager();
  EXPECT_EQ(Run().value(), Outcome::kRolledBack);
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  EXPECT_EQ(service_.Count("cancel"), 1u);
  EXPECT_EQ(points_.Count("cancel"), 1u);
  EXPECT_EQ(service_.Count("confirm") + points_.Count("confirm"), 0u);
}

TEST_F(HttpTccManagerTest, AConfirmAnsweredWith503IsRepeatedUntilTheServiceAnswers200) {
  service_.Script("confirm", {503, 503, 503, 503, 503});
  OpenManager();
  EXPECT_EQ(Run().value(), Outcome::kCommittedCompletionPending);
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  EXPECT_EQ(service_.Count("confirm"), 6u);
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

}  // namespace
}  // namespace xa::http
