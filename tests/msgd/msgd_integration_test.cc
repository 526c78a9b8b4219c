// xa-msgd end to end on the real servers: the daemon as a process of its own, its store in
// MariaDB, PostgreSQL or Redis (each test runs on each), a real RabbitMQ, a producer's query endpoint
// served over real HTTP by the test, and a consumer that processes each message in its own
// PostgreSQL transaction with the dedupe helper. Each failure path of docs/messages.md, each
// asserting its invariant: a confirmed message's effect happens exactly once, a message whose
// business operation failed is never delivered, nothing is lost.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemons/msgd/sql_message_store.h"
#include "src/http/http_client.h"
#include "src/http/http_server.h"
#include "tests/msgd/msgd_process.h"
#include "tests/msgd/redis_test_env.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/rabbitmq_env.h"
#include "testutil/test_secrets.h"
#include "xa/msg/message_client.h"
#include "xa/msg/webhook.h"
#include "xa/odbc/local_connection.h"
#include "xa/odbc/tcc_barrier.h"

namespace xa::msg {
namespace {

using test::RandomHex;
using test::WriteSecretFile;

using namespace std::chrono_literals;
using Json = nlohmann::json;
using test::ProcessResult;
using test::ScratchDir;
using test::MsgdProcess;

std::string MsgdPath() { return XA_MSGD_PATH; }

odbc::OdbcOptions Consumer() {
  odbc::OdbcOptions options;
  options.dsn = test::OdbcPostgresDsn();
  options.user = test::PostgresAccount().user;
  options.password = test::PostgresAccount().password;
  options.dialect = odbc::Dialect::kPostgres;
  return options;
}

// The producer's side of the back-query: a real HTTP endpoint that answers from `states`.
class QueryEndpoint {
 public:
  QueryEndpoint() {
    http::HttpServerOptions options;
    options.address = "127.0.0.1:0";
    options.post_routes["/orders/query"] = [this](const http::HttpRequest& request) {
      Json question = Json::parse(request.body, nullptr, false);
      std::lock_guard<std::mutex> lock(mu_);
      ++asked_;
      std::string id = question.is_object() ? question.value("id", "") : "";
      auto it = states_.find(id);
      if (it == states_.end() && !unknown_state_.empty()) {
        return http::HttpResponse{200, "application/json",
                                  Json{{"state", unknown_state_}}.dump()};
      }
      if (it == states_.end()) return http::HttpResponse{503, "text/plain", "not yet\n"};
      return http::HttpResponse{200, "application/json", Json{{"state", it->second}}.dump()};
    };
    auto server = http::HttpServer::Start(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    if (server.ok()) server_ = std::move(server).value();
  }
  std::string url() const { return "http://" + server_->address() + "/orders/query"; }
  void Answer(const std::string& id, const std::string& state) {
    std::lock_guard<std::mutex> lock(mu_);
    states_[id] = state;
  }
  int asked() {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_;
  }
  // What ids the producer has no record of get (a producer whose pre-send answer was lost
  // never ran the business operation: "rolled_back"); "" answers 503.
  void AnswerUnknown(const std::string& state) {
    std::lock_guard<std::mutex> lock(mu_);
    unknown_state_ = state;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> states_;
  std::string unknown_state_;
  int asked_ = 0;
  std::unique_ptr<http::HttpServer> server_;
};

enum class StoreDb { kMariaDb, kPostgres, kRedis };

class MsgdIntegrationTest : public ::testing::TestWithParam<StoreDb> {
 protected:
  void SetUp() override {
    prefix_ = "m" + RandomHex(4) + "_";
    queue_ = "xa-msgd-test-" + RandomHex(4);
    producer_token_ = RandomHex(20);
    consumer_token_ = RandomHex(20);
    operator_token_ = RandomHex(20);
    other_producer_token_ = RandomHex(20);
    merchant_token_ = RandomHex(20);
    other_merchant_token_ = RandomHex(20);
    WriteSecretFile(dir_.File("tokens"),
                    "producer orders " + producer_token_ + "\nproducer rogue " +
                        other_producer_token_ + "\nconsumer accounting " + consumer_token_ +
                        "\noperator ops " + operator_token_ + "\nmerchant shop-1 " +
                        merchant_token_ + "\nmerchant shop-2 " + other_merchant_token_);
    bool maria = GetParam() == StoreDb::kMariaDb;
    bool redis = GetParam() == StoreDb::kRedis;
    test::ServerAccount db =
        redis ? test::ServerAccount{} : maria ? test::MariaDbAccount() : test::PostgresAccount();
    RedisStoreOptions redis_options =
        redis ? test::RedisStoreOptionsFromEnv(prefix_) : RedisStoreOptions{};
    WriteSecretFile(dir_.File("store.pw"), redis ? redis_options.password : db.password);
    WriteSecretFile(dir_.File("amqp.pw"), test::RabbitMqAccount().password);
    std::ofstream config(dir_.File("msgd.conf"));
    config << "listen = 127.0.0.1:0\n"
           << "tokens_file = " << dir_.File("tokens") << "\n"
           << "table_prefix = " << prefix_ << "\n"
           << "poll_interval_ms = 50\n"
           // One message a back-query claim, so a claim left by a crash lapses in ~3 s.
           << "batch_size = 1\n"
           << "confirm_timeout_ms = 600\n"
           << "check_ladder_ms = 200, 200\n"
           << "back_query_timeout_ms = 1000\n"
           << "ack_timeout_ms = 800\n"
           << "redelivery_ladder_ms = 400\n"
           << "max_redeliveries = 2\n"
           << "publish_retry_ms = 200\n"
           << StoreSection(redis_options)
           << "[broker rabbitmq]\nhost = " << test::RabbitMqAccount().host << "\n"
           // A crashed daemon's Redis leases lapse after lease_ms (2000): at least twice the
           // longer of this and back_query_timeout_ms.
           << "confirm_timeout_ms = 1000\n"
           << "port = " << test::RabbitMqAccount().port << "\n"
           << "user = " << test::RabbitMqAccount().user << "\n"
           << "password_file = " << dir_.File("amqp.pw") << "\n";
    if (!redis) {
      // The notifier (on the SQL stores only), allowed to call the test's local receivers.
      config << "[notifier webhooks]\nallowed_schemes = http\nallowed_networks = 127.0.0.0/8\n"
             << "call_timeout_ms = 2000\n";
    }
    config.close();
    ::chmod(dir_.File("msgd.conf").c_str(), 0600);

    StartMsgd("127.0.0.1:0");
    ASSERT_FALSE(address_.empty());
    producer_ = Client(producer_token_);
    acks_ = Client(consumer_token_);

    auto connection = odbc::LocalConnection::Open(Consumer());
    ASSERT_TRUE(connection.ok()) << connection.status().ToString();
    consumer_db_ = std::move(connection).value();
    ASSERT_TRUE(odbc::CreateBarrierTable(consumer_db_->handle(), odbc::Dialect::kPostgres).ok());
    ASSERT_TRUE(consumer_db_->Execute("CREATE TABLE " + prefix_ +
                                      "effect (message_id CHAR(32) NOT NULL, body TEXT)")
                    .ok());
    ASSERT_TRUE(consumer_db_->Commit().ok());
  }

  // The configuration's store section: the test's store, its password in store.pw.
  std::string StoreSection(const RedisStoreOptions& redis) {
    std::ostringstream section;
    if (GetParam() == StoreDb::kRedis) {
      section << "[redis store]\nhost = " << redis.host << "\nport = " << redis.port
              << "\npassword_file = " << dir_.File("store.pw") << "\nlease_ms = 2000\n";
      return section.str();
    }
    bool maria = GetParam() == StoreDb::kMariaDb;
    section << "[rm store]\ndriver = odbc\n"
            << "dsn = " << (maria ? test::OdbcMariaDbDsn() : test::OdbcPostgresDsn()) << "\n"
            << "dialect = " << (maria ? "mariadb" : "postgres") << "\n"
            << "user = " << (maria ? test::MariaDbAccount() : test::PostgresAccount()).user
            << "\npassword_file = " << dir_.File("store.pw") << "\n";
    return section.str();
  }

  void TearDown() override {
    // Closed first: the daemon's HTTP server lets an idle keep-alive connection linger up to
    // its keep-alive timeout (5 s) before a clean stop returns.
    producer_.reset();
    acks_.reset();
    StopMsgd(SIGTERM);
    if (consumer_db_) {
      consumer_db_->Rollback();
      (void)consumer_db_->Execute("DROP TABLE IF EXISTS " + prefix_ + "effect");
      (void)consumer_db_->Commit();
    }
    std::string drop = DropStoreTablesSql(prefix_);
    if (GetParam() == StoreDb::kRedis) {
      test::DeleteRedisKeys(prefix_);
    } else if (GetParam() == StoreDb::kMariaDb) {
      test::MariaDbAdmin("USE " + test::MariaDbAccount().database + "; " + drop);
    } else {
      test::PostgresAdmin(drop);
    }
  }

  // Starts xa-msgd on `listen` and waits until it serves.
  void StartMsgd(const std::string& listen,
                 const std::map<std::string, std::string>& env = {}) {
    msgd_.Start(listen, env);
    address_ = msgd_.address();
  }
  void StopMsgd(int signal) { msgd_.Stop(signal); }
  // Waits for xa-msgd to kill itself at its armed crash point, then starts it again, unarmed,
  // on the same address.
  void RestartAfterCrash() {
    ASSERT_TRUE(msgd_.WaitKilled(15s)) << "xa-msgd did not reach its crash point: " << Output();
    StartMsgd(address_);
  }
  std::string Output() { return msgd_.Output(); }

  std::unique_ptr<MessageClient> Client(const std::string& token) {
    auto client = MessageClient::Make({"http://" + address_, token});
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::string PreSend(const std::string& body) {
    auto id = producer_->PreSend({"payment.booked", queue_, body, queries_.url()});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : "";
  }

  // The operator's view of a message: {} when it does not exist.
  Json Get(const std::string& id) {
    auto http = http::HttpClient::Make({"http://" + address_, 2s, 5s, 1 << 20, 2,
                                        {{"Authorization", "Bearer " + operator_token_}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post("/v1/admin/get", "application/json", Json{{"id", id}}.dump());
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok() || reply->status == 404) return Json::object();
    EXPECT_EQ(reply->status, 200) << reply->body;
    return Json::parse(reply->body, nullptr, false);
  }
  // The status and JSON answer of a call.
  std::pair<int, Json> Call(const std::string& token, const std::string& path, const Json& body) {
    auto http = http::HttpClient::Make(
        {"http://" + address_, 2s, 5s, 1 << 20, 2, {{"Authorization", "Bearer " + token}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post(path, "application/json", body.dump());
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return {-1, Json()};
    return {reply->status, Json::parse(reply->body, nullptr, false)};
  }
  int Post(const std::string& token, const std::string& path, const Json& body) {
    auto http = http::HttpClient::Make(
        {"http://" + address_, 2s, 5s, 1 << 20, 2, {{"Authorization", "Bearer " + token}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post(path, "application/json", body.dump());
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? reply->status : -1;
  }

  // The operator's counts: status -> live messages.
  std::map<std::string, int64_t> LiveCounts() {
    auto http = http::HttpClient::Make({"http://" + address_, 2s, 5s, 1 << 20, 2,
                                        {{"Authorization", "Bearer " + operator_token_}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post("/v1/admin/counts", "application/json", "{}");
    EXPECT_TRUE(reply.ok() && reply->status == 200);
    std::map<std::string, int64_t> live;
    if (!reply.ok()) return live;
    Json body = Json::parse(reply->body, nullptr, false);
    for (const Json& one : body.value("counts", Json::array())) {
      live[one.value("status", "")] = one.value("live", int64_t{0});
    }
    return live;
  }

  // Waits until the message's status (and dead flag) is as given, or `timeout` passed.
  bool WaitFor(const std::string& id, const std::string& status, bool dead = false,
               std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      Json message = Get(id);
      if (status.empty() ? message.empty()
                         : (message.value("status", "") == status &&
                            message.value("dead", false) == dead)) {
        return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Consumes for `duration`: each delivery is processed in the consumer's transaction behind the
  // dedupe, and acknowledged when `ack`. The ids received, in order.
  enum class Acks { kMustSucceed, kMayFail, kNone };
  std::vector<std::string> Consume(std::chrono::milliseconds duration,
                                   Acks acks = Acks::kMustSucceed) {
    auto consumer = MessageConsumer::Connect(test::RabbitMqOptions(), queue_, *acks_);
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    std::vector<std::string> received;
    if (!consumer.ok()) return received;
    auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) {
      auto next = (*consumer)->Next(100ms);
      EXPECT_TRUE(next.ok()) << next.status().ToString();
      if (!next.ok()) break;
      if (!*next) continue;
      const Delivery& delivery = **next;
      received.push_back(delivery.id);
      EXPECT_EQ(delivery.data_type, "payment.booked");
      EXPECT_EQ(delivery.producer_id, "orders");
      if (acks == Acks::kNone) continue;  // dies before acknowledging: the connection closes unacked
      auto first = FirstDelivery(consumer_db_->handle(), odbc::Dialect::kPostgres, "accounting",
                                 delivery.id);
      EXPECT_TRUE(first.ok()) << first.status().ToString();
      if (first.ok() && *first) {
        EXPECT_TRUE(consumer_db_
                        ->Execute("INSERT INTO " + prefix_ + "effect VALUES ('" + delivery.id +
                                  "', 'processed')")
                        .ok());
      }
      EXPECT_TRUE(consumer_db_->Commit().ok());
      Status done = (*consumer)->Done(delivery);
      // With xa-msgd down the ack fails and the message goes back to the queue.
      if (acks == Acks::kMustSucceed) {
        EXPECT_TRUE(done.ok()) << done.ToString();
      }
    }
    return received;
  }

  // How many times the consumer's effect of `id` committed.
  int64_t Effects(const std::string& id) {
    auto rows = consumer_db_->Query("SELECT COUNT(*) FROM " + prefix_ +
                                    "effect WHERE message_id = '" + id + "'");
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    consumer_db_->Rollback();
    return rows.ok() && !rows->empty() && (*rows)[0][0] ? std::stoll(*(*rows)[0][0]) : -1;
  }

  ScratchDir dir_;
  std::string prefix_, queue_;
  std::string producer_token_, consumer_token_, operator_token_, other_producer_token_;
  std::string merchant_token_, other_merchant_token_;
  MsgdProcess msgd_{MsgdPath(), dir_.File("msgd.conf"), dir_.File("msgd")};
  std::string address_;
  QueryEndpoint queries_;
  std::unique_ptr<MessageClient> producer_, acks_;
  std::unique_ptr<odbc::LocalConnection> consumer_db_;
};

TEST_P(MsgdIntegrationTest, ConfirmedMessageIsProcessedOnceAndDone) {
  std::string id = PreSend(R"({"order": 1, "amount": "10.00"})");
  Status confirmed = producer_->Confirm(id);
  ASSERT_TRUE(confirmed.ok()) << confirmed.ToString() << "\n" << Output();
  ASSERT_TRUE(producer_->Confirm(id).ok());  // a repeated confirm is a success
  std::vector<std::string> received = Consume(2s);
  EXPECT_EQ(received, std::vector<std::string>{id});
  EXPECT_TRUE(WaitFor(id, "done"));
  EXPECT_EQ(Effects(id), 1);
  EXPECT_EQ(Get(id).value("body", ""), R"({"order": 1, "amount": "10.00"})");
}

TEST_P(MsgdIntegrationTest, FailedBusinessOperationIsNeverDelivered) {
  std::string id = PreSend("order 2");
  ASSERT_TRUE(producer_->Cancel(id).ok());
  ASSERT_TRUE(producer_->Cancel(id).ok());
  Status late = producer_->Confirm(id);
  EXPECT_EQ(late.code(), Code::kNoTa) << late.ToString();
  EXPECT_TRUE(Consume(2500ms).empty());
  EXPECT_TRUE(Get(id).empty());
  EXPECT_EQ(queries_.asked(), 0);
}

TEST_P(MsgdIntegrationTest, ProducerDeadAfterPreSendIsAskedAndCommittedMessageDelivered) {
  std::string id = PreSend("order 3");
  queries_.Answer(id, "committed");  // its business operation committed, then it died
  // Consumed at once: the test's redelivery timings let an unacknowledged message die in ~2 s.
  EXPECT_EQ(Consume(3s), std::vector<std::string>{id}) << Get(id).dump() << Output();
  EXPECT_TRUE(WaitFor(id, "done"));
  EXPECT_EQ(Effects(id), 1);
  EXPECT_GE(queries_.asked(), 1);
}

TEST_P(MsgdIntegrationTest, ProducerDeadAfterPreSendIsAskedAndRolledBackMessageDropped) {
  std::string id = PreSend("order 4");
  queries_.Answer(id, "rolled_back");
  EXPECT_TRUE(WaitFor(id, ""));
  EXPECT_TRUE(Consume(1500ms).empty());
  EXPECT_EQ(Effects(id), 0);
}

TEST_P(MsgdIntegrationTest, SilentQueryEndpointParksTheMessageForTheOperator) {
  std::string id = PreSend("order 5");  // the endpoint answers 503 for it
  EXPECT_TRUE(WaitFor(id, "parked"));
  Json parked = Get(id);
  EXPECT_EQ(parked.value("check_count", 0), 3);
  EXPECT_NE(parked.value("last_error", "").find("503"), std::string::npos) << parked.dump();
  EXPECT_TRUE(Consume(500ms).empty());
  // The operator learns the operation committed and confirms.
  EXPECT_EQ(Post(operator_token_, "/v1/admin/confirm", {{"id", id}}), 200);
  EXPECT_EQ(Consume(2s), std::vector<std::string>{id});
  EXPECT_EQ(Effects(id), 1);
}

TEST_P(MsgdIntegrationTest, ConsumerDeadBeforeAckIsRedeliveredAndDedupeKeepsOneEffect) {
  std::string id = PreSend("order 6");
  ASSERT_TRUE(producer_->Confirm(id).ok());
  // The first consumer processes the message and commits, then dies before acknowledging.
  {
    auto consumer = MessageConsumer::Connect(test::RabbitMqOptions(), queue_, *acks_);
    ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
    std::optional<Delivery> delivery;
    for (int i = 0; i < 50 && !delivery; ++i) {
      auto next = (*consumer)->Next(100ms);
      ASSERT_TRUE(next.ok());
      delivery = *next;
    }
    ASSERT_TRUE(delivery.has_value());
    auto first = FirstDelivery(consumer_db_->handle(), odbc::Dialect::kPostgres, "accounting",
                               delivery->id);
    ASSERT_TRUE(first.ok() && *first);
    ASSERT_TRUE(consumer_db_->Execute("INSERT INTO " + prefix_ + "effect VALUES ('" + id +
                                      "', 'processed')")
                    .ok());
    ASSERT_TRUE(consumer_db_->Commit().ok());
  }  // connection closed without an ack
  // Published before `sent` commits (crash point Q3), so the status may lag the delivery.
  EXPECT_TRUE(WaitFor(id, "sent")) << Get(id).dump();
  // The next consumer gets it again (RabbitMQ's requeue, then the service's redelivery).
  std::vector<std::string> again = Consume(3s);
  ASSERT_FALSE(again.empty());
  for (const std::string& received : again) EXPECT_EQ(received, id);
  EXPECT_TRUE(WaitFor(id, "done"));
  EXPECT_EQ(Effects(id), 1);
}

TEST_P(MsgdIntegrationTest, UnacknowledgedMessageDiesAfterItsRedeliveriesAndIsRevivable) {
  std::string id = PreSend("order 7");
  ASSERT_TRUE(producer_->Confirm(id).ok());
  // Nobody consumes: first publication, then 2 redeliveries, then dead.
  EXPECT_TRUE(WaitFor(id, "sent", /*dead=*/true, 20s));
  Json dead = Get(id);
  EXPECT_EQ(dead.value("resend_count", -1), 2);
  // Three copies wait in the queue; the consumer's dedupe keeps one effect.
  EXPECT_EQ(Post(operator_token_, "/v1/admin/revive", {{"id", id}}), 200);
  std::vector<std::string> received = Consume(3s);
  EXPECT_GE(received.size(), 3u);
  EXPECT_TRUE(WaitFor(id, "done"));
  EXPECT_EQ(Effects(id), 1);
}

// RabbitMQ killed (SIGKILL) with a confirmed message in its queue, a second message confirmed
// while it is down: the first is still delivered (its copy in the durable queue survives, as the
// driver's own test shows, and the redelivery job publishes it again), the second waits as ready
// with the publication's error and goes out once the broker is back; each is processed once.
// On one store only: the broker's restart (about 10 s) is what it tests, not the store.
class MsgdBrokerKillTest : public MsgdIntegrationTest {};

TEST_P(MsgdBrokerKillTest, RabbitMqKilledLosesNoConfirmedMessage) {
  std::string before = PreSend("sent before the kill");
  ASSERT_TRUE(producer_->Confirm(before).ok());
  ASSERT_TRUE(WaitFor(before, "sent")) << Get(before).dump();
  const std::string script = test::RequireEnv("XA_TEST_SERVERS_SCRIPT");
  test::ProcessResult killed = test::RunProcess({"/bin/bash", script, "kill-rabbitmq"}, {});
  ASSERT_TRUE(killed.Exited(0)) << killed.Describe();
  const int resends_at_the_kill = Get(before).value("resend_count", -1);

  std::string during = PreSend("confirmed while the broker is down");
  ASSERT_TRUE(producer_->Confirm(during).ok()) << "confirming needs only the store";
  bool failed_publication = false;
  for (int i = 0; i < 100 && !failed_publication; ++i) {
    std::this_thread::sleep_for(50ms);
    failed_publication = !Get(during).value("last_error", "").empty();
  }
  Json waiting = Get(during);
  EXPECT_TRUE(failed_publication) << waiting.dump();
  EXPECT_EQ(waiting.value("status", ""), "ready") << waiting.dump();
  EXPECT_EQ(Get(before).value("resend_count", -1), resends_at_the_kill)
      << "a publication that failed is not a redelivery: " << Get(before).dump();

  test::ProcessResult started = test::RunProcess({"/bin/bash", script, "start"}, {});
  ASSERT_TRUE(started.Exited(0)) << started.Describe();
  std::vector<std::string> received = Consume(4s);
  EXPECT_NE(std::find(received.begin(), received.end(), before), received.end());
  EXPECT_NE(std::find(received.begin(), received.end(), during), received.end());
  for (const std::string& id : {before, during}) {
    EXPECT_TRUE(WaitFor(id, "done")) << id << ": " << Get(id).dump();
    EXPECT_EQ(Effects(id), 1) << id;
  }
}

// The Redis store's durability (appendfsync always): Redis killed the moment its answers went
// out loses no pre-send and no confirm xa-msgd had answered; while it is down, a pre-send is
// refused (the producer runs nothing); after its restart xa-msgd reconnects and every confirmed
// message, and the pending one its producer says committed, is processed exactly once.
class MsgdStoreKillTest : public MsgdIntegrationTest {};

TEST_P(MsgdStoreKillTest, RedisKilledLosesNoAnsweredPreSendOrConfirm) {
  std::vector<std::string> confirmed;
  for (int i = 0; i < 20; ++i) {
    confirmed.push_back(PreSend("order " + std::to_string(i)));
    ASSERT_TRUE(producer_->Confirm(confirmed.back()).ok());
  }
  std::string pending = PreSend("pre-sent, its producer then silent");
  ASSERT_FALSE(pending.empty());
  queries_.Answer(pending, "committed");
  const std::string script = test::RequireEnv("XA_TEST_SERVERS_SCRIPT");
  test::ProcessResult killed = test::RunProcess({"/bin/bash", script, "kill-redis"}, {});
  ASSERT_TRUE(killed.Exited(0)) << killed.Describe();

  auto refused = producer_->PreSend({"payment.booked", queue_, "while down", queries_.url()});
  EXPECT_FALSE(refused.ok()) << "a pre-send cannot be stored while the store is down";

  test::ProcessResult started = test::RunProcess({"/bin/bash", script, "start"}, {});
  ASSERT_TRUE(started.Exited(0)) << started.Describe();
  std::vector<std::string> expected = confirmed;
  expected.push_back(pending);
  for (int i = 0; i < 20; ++i) {
    bool all_done = true;
    for (const std::string& id : expected) {
      all_done = all_done && Get(id).value("status", "") == "done";
    }
    if (all_done) break;
    Consume(1s);
  }
  for (const std::string& id : expected) {
    EXPECT_EQ(Get(id).value("status", ""), "done") << id << ": " << Get(id).dump();
    EXPECT_EQ(Effects(id), 1) << id;
  }
}

TEST_P(MsgdIntegrationTest, AsyncConfirmedMessageIsDeliveredWithoutTheProducerWaiting) {
  std::string id = PreSend("order 10");
  producer_->ConfirmAsync(id);
  EXPECT_EQ(Consume(3s), std::vector<std::string>{id});
  EXPECT_TRUE(producer_->FlushConfirms(5s));
  EXPECT_EQ(producer_->confirms_given_up(), 0u);
  EXPECT_EQ(Effects(id), 1);
  EXPECT_EQ(queries_.asked(), 0) << "confirmed in time: no back-query";
}

// The trade-off of the asynchronous confirm: one that never got through (xa-msgd down) is given
// up, and the back-query settles the message later, from the producer's answer.
TEST_P(MsgdIntegrationTest, AsyncConfirmThatNeverGotThroughIsSettledByTheBackQuery) {
  std::string id = PreSend("order 11");
  const std::string address = address_;
  StopMsgd(SIGKILL);
  producer_->ConfirmAsync(id);
  EXPECT_TRUE(producer_->FlushConfirms(15s));
  EXPECT_EQ(producer_->confirms_given_up(), 1u);
  queries_.Answer(id, "committed");
  StartMsgd(address);
  ASSERT_EQ(address_, address);
  EXPECT_EQ(Consume(4s), std::vector<std::string>{id}) << Get(id).dump();
  EXPECT_GE(queries_.asked(), 1);
  EXPECT_EQ(Effects(id), 1);
}

TEST_P(MsgdIntegrationTest, MsgdKilledAfterPreSendLosesNothing) {
  std::string id = PreSend("order 8");
  std::string address = address_;
  StopMsgd(SIGKILL);
  StartMsgd(address);
  ASSERT_EQ(address_, address);
  ASSERT_TRUE(producer_->Confirm(id).ok());
  EXPECT_EQ(Consume(2s), std::vector<std::string>{id});
  EXPECT_EQ(Effects(id), 1);
}

// xa-msgd killed at each of its crash points (docs/crash-matrix.md, rows Q1..Q6), then started
// again: every message whose producer's operation committed is processed exactly once, and the
// one whose pre-send answer was lost (the producer ran nothing) is never delivered.
TEST_P(MsgdIntegrationTest, KilledAtEachCrashPointLosesNothingAndDeliversNothingUnconfirmed) {
  queries_.AnswerUnknown("rolled_back");
  const std::string address = address_;
  auto arm = [&](const std::string& point) {
    producer_.reset();  // no idle keep-alive connection to hold up the clean stop
    acks_.reset();
    StopMsgd(SIGTERM);
    StartMsgd(address, {{"XA_CRASH_POINT", point}});
    ASSERT_EQ(address_, address);
    producer_ = Client(producer_token_);
    acks_ = Client(consumer_token_);
  };
  auto retry = [&](const std::function<Status()>& call) {
    Status status;
    for (int i = 0; i < 100; ++i) {
      status = call();
      if (status.ok()) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << status.ToString();
  };
  std::vector<std::string> committed;  // messages whose business operation committed

  // Q1: the pre-send's answer lost: the producer runs nothing; the stored message is dropped.
  arm("msgd-after-pre-send-commit");
  auto lost = producer_->PreSend({"payment.booked", queue_, "q1", queries_.url()});
  EXPECT_FALSE(lost.ok());
  RestartAfterCrash();

  // Q2: the confirm's answer lost: the producer confirms again.
  arm("msgd-after-confirm-commit");
  std::string q2 = PreSend("q2");
  queries_.Answer(q2, "committed");
  committed.push_back(q2);
  EXPECT_FALSE(producer_->Confirm(q2).ok());
  RestartAfterCrash();
  retry([&] { return producer_->Confirm(q2); });

  // Q3: published, `sent` not committed: published again after the restart.
  arm("msgd-after-publish");
  std::string q3 = PreSend("q3");
  queries_.Answer(q3, "committed");
  committed.push_back(q3);
  retry([&] { return producer_->Confirm(q3); });
  RestartAfterCrash();

  // Nothing but done messages live: Q1's lost one asked about and dropped, Q3's delivered and
  // processed. A back-query point armed earlier would kill the daemon at one of them, maybe
  // before the next pre-send even connects.
  auto settle_earlier_messages = [&] {
    for (int i = 0; i < 40; ++i) {
      std::map<std::string, int64_t> live = LiveCounts();
      if (live["pending"] + live["parked"] + live["ready"] + live["sent"] == 0) return;
      Consume(500ms);
    }
    ADD_FAILURE() << "earlier messages still live after 20 s: " << Output();
  };

  // Q4, Q5: the producer died after pre-send; the back-query pass dies after its claim, then
  // after the answer.
  for (const char* point : {"msgd-after-back-query-claim", "msgd-after-back-query-answer"}) {
    settle_earlier_messages();
    arm(point);
    auto presend = producer_->PreSend({"payment.booked", queue_, point, queries_.url()});
    if (!presend.ok()) {
      // On a loaded machine the answer can wait longer than confirm_timeout_ms: the back-query
      // pass claimed the new message first and the daemon died at the point before answering.
      // The producer never learned the id (Q1's case): the back-query drops the message (the
      // next iteration waits for that), and the end checks that nothing but the committed ones
      // was processed. Nothing else was live, so the daemon cannot have died before the
      // pre-send reached it: a connection refused would be a failure.
      EXPECT_THAT(presend.status().message(), ::testing::HasSubstr("no answer"))
          << presend.status().ToString();
      RestartAfterCrash();
      continue;
    }
    const std::string id = *presend;
    queries_.Answer(id, "committed");
    committed.push_back(id);
    RestartAfterCrash();
    // Settled before the next point is armed: its lapsed claim must not be asked about, and
    // the daemon killed, while the next step waits for a pre-send's answer.
    for (int i = 0; i < 15 && Get(id).value("status", "") != "done"; ++i) Consume(1s);
    EXPECT_EQ(Get(id).value("status", ""), "done") << id << ": " << Get(id).dump();
  }

  // Q6: the ack's answer lost: the consumer's Done fails, the message comes again, the dedupe
  // says it was processed, and the second ack finds it done.
  arm("msgd-after-ack-commit");
  std::string q6 = PreSend("q6");
  queries_.Answer(q6, "committed");
  committed.push_back(q6);
  retry([&] { return producer_->Confirm(q6); });
  Consume(1500ms, Acks::kMayFail);  // processes what is delivered; the first ack kills xa-msgd
  RestartAfterCrash();

  // Everything settles: each committed message processed exactly once and done; nothing else.
  Consume(6s);
  for (const std::string& id : committed) {
    EXPECT_TRUE(WaitFor(id, "done")) << id << ": " << Get(id).dump();
    EXPECT_EQ(Effects(id), 1) << id;
  }
  auto rows = consumer_db_->Query("SELECT COUNT(DISTINCT message_id) FROM " + prefix_ + "effect");
  ASSERT_TRUE(rows.ok());
  consumer_db_->Rollback();
  EXPECT_EQ(std::stoll(*(*rows)[0][0]), static_cast<long long>(committed.size()));
  // Q1's message was asked about and dropped: nothing is left but done messages.
  std::map<std::string, int64_t> live = LiveCounts();
  for (const char* status : {"pending", "parked", "ready", "sent"}) {
    EXPECT_EQ(live[status], 0) << status;
  }
  EXPECT_EQ(live["done"], static_cast<int64_t>(committed.size()));
}

TEST_P(MsgdIntegrationTest, CallersAreAuthenticatedAndConfinedToTheirRole) {
  std::string id = PreSend("order 9");
  EXPECT_EQ(Post("", "/v1/messages/confirm", {{"id", id}}), 401);
  EXPECT_EQ(Post(RandomHex(20), "/v1/messages/confirm", {{"id", id}}), 401);
  EXPECT_EQ(Post(consumer_token_, "/v1/messages/confirm", {{"id", id}}), 403);
  EXPECT_EQ(Post(other_producer_token_, "/v1/messages/confirm", {{"id", id}}), 403);
  EXPECT_EQ(Post(producer_token_, "/v1/admin/get", {{"id", id}}), 403);
  EXPECT_EQ(Post(producer_token_, "/v1/messages/prepare", {{"data_type", "x"}}), 400);
  EXPECT_EQ(Get(id).value("status", ""), "pending");
  std::string log = Output();
  for (const std::string& token : {producer_token_, consumer_token_, operator_token_}) {
    EXPECT_EQ(log.find(token), std::string::npos) << "a token is in xa-msgd's output";
  }
}

// The notifier through the daemon's API: an operator registers a merchant's endpoint (its secret
// shown once), a producer submits, the merchant's server receives the call signed with that
// secret, and each merchant reads its own notifications only.
class MsgdNotifierTest : public MsgdIntegrationTest {};

TEST_P(MsgdNotifierTest, SubmittedNotificationArrivesSignedAndOnlyItsMerchantReadsIt) {
  std::mutex mu;
  std::vector<http::HttpRequest> received;
  http::HttpServerOptions receiver;
  receiver.address = "127.0.0.1:0";
  receiver.post_routes["/hook"] = [&](const http::HttpRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    received.push_back(request);
    return http::HttpResponse(200, "text/plain", "");
  };
  auto server = http::HttpServer::Start(std::move(receiver));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string url = "http://" + (*server)->address() + "/hook";

  auto [put_status, endpoint] =
      Call(operator_token_, "/v1/endpoints/put", {{"id", "shop-1"}, {"url", url}});
  ASSERT_EQ(put_status, 200) << endpoint.dump();
  EXPECT_TRUE(endpoint.value("created", false));
  const std::string secret = endpoint.value("secret", "");
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(endpoint.value("secrets", 0), 1);
  EXPECT_EQ(Call(producer_token_, "/v1/endpoints/put", {{"id", "x"}, {"url", url}}).first, 403);
  auto [again_status, again] = Call(operator_token_, "/v1/endpoints/get", {{"id", "shop-1"}});
  EXPECT_EQ(again_status, 200);
  EXPECT_FALSE(again.contains("secret")) << "a secret was shown twice";

  auto [submit_status, submitted] =
      Call(producer_token_, "/v1/notifications/submit",
           {{"endpoint", "shop-1"}, {"event_type", "payment.succeeded"}, {"body", "{\"n\":7}"}});
  ASSERT_EQ(submit_status, 200) << submitted.dump();
  const std::string id = submitted.value("id", "");
  EXPECT_EQ(Call(producer_token_, "/v1/notifications/submit",
                 {{"endpoint", "nobody"}, {"event_type", "e"}, {"body", ""}}).first, 404);

  Json state;
  for (int i = 0; i < 200; ++i) {
    state = Call(merchant_token_, "/v1/notifications/get", {{"id", id}, {"attempts", true}}).second;
    if (state.value("status", "") == "succeeded") break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(state.value("status", ""), "succeeded") << state.dump();
  ASSERT_EQ(state["attempt_history"].size(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(received.size(), 1u);
    WebhookReceiverOptions options;
    options.secrets.push_back(WebhookSecret::Parse(secret).value());
    auto verifier = WebhookReceiver::Make(std::move(options)).value();
    const http::HttpRequest& request = received[0];
    WebhookCheck check = verifier->Check(request.Header("webhook-id"),
                                         request.Header("webhook-timestamp"),
                                         request.Header("webhook-signature"), request.body);
    EXPECT_EQ(check.verdict, WebhookVerdict::kAccepted) << check.reason;
    EXPECT_EQ(check.id, id);
    EXPECT_EQ(request.body, "{\"n\":7}");
  }

  EXPECT_EQ(Call(other_merchant_token_, "/v1/notifications/get", {{"id", id}}).first, 404);
  EXPECT_EQ(Call(other_merchant_token_, "/v1/notifications/list", {{"endpoint", "shop-1"}}).first,
            403);
  auto [list_status, page] = Call(merchant_token_, "/v1/notifications/list", Json::object());
  ASSERT_EQ(list_status, 200) << page.dump();
  ASSERT_EQ(page["notifications"].size(), 1u);
  EXPECT_EQ(page["notifications"][0].value("id", ""), id);
  EXPECT_TRUE(page["next"].is_null());
  EXPECT_EQ(Call(merchant_token_, "/v1/notifications/resend", {{"id", id}}).first, 403);
  EXPECT_EQ(Call(operator_token_, "/v1/notifications/resend", {{"id", id}}).first, 200);
  std::string log = Output();
  EXPECT_EQ(log.find(secret.substr(6)), std::string::npos) << "the secret is in xa-msgd's output";
  (*server)->Stop();
}

INSTANTIATE_TEST_SUITE_P(Stores, MsgdNotifierTest,
                         ::testing::Values(StoreDb::kMariaDb, StoreDb::kPostgres),
                         [](const ::testing::TestParamInfo<StoreDb>& store) {
                           return store.param == StoreDb::kMariaDb ? "MariaDb" : "Postgres";
                         });

INSTANTIATE_TEST_SUITE_P(Store, MsgdStoreKillTest, ::testing::Values(StoreDb::kRedis),
                         [](const ::testing::TestParamInfo<StoreDb>&) { return "Redis"; });
INSTANTIATE_TEST_SUITE_P(Store, MsgdBrokerKillTest, ::testing::Values(StoreDb::kMariaDb),
                         [](const ::testing::TestParamInfo<StoreDb>&) { return "MariaDb"; });

INSTANTIATE_TEST_SUITE_P(Stores, MsgdIntegrationTest,
                         ::testing::Values(StoreDb::kMariaDb, StoreDb::kPostgres,
                                           StoreDb::kRedis),
                         [](const ::testing::TestParamInfo<StoreDb>& store) {
                           return store.param == StoreDb::kMariaDb    ? "MariaDb"
                                  : store.param == StoreDb::kPostgres ? "Postgres"
                                                                      : "Redis";
                         });

}  // namespace
}  // namespace xa::msg
