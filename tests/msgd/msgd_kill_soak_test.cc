// The reliable message service's kill soak: two xa-msgd on one store (MariaDB), two producers
// and a consumer (msgd_soak_worker processes) and RabbitMQ, killed with SIGKILL at random
// moments and started again, while the producers place orders through the pre-send, business
// operation, confirm protocol and the consumer books each message behind the dedupe. The test
// serves the producers' back-query endpoint: it answers from the orders table, writing a 'void'
// row for an id it does not find so that a business operation still in flight can never commit
// after it was answered "rolled back" (the insert of either waits for the other's key lock).
//
// After the kills everything settles, and then: every placed order's message was processed
// exactly once (S1), no message of a failed order was ever processed (S2), no message is left
// pending, parked, ready or sent, and none died (S3), and more than a few orders of each kind
// were made (S4: the soak did something).
//
// Bounded: XA_MSGD_SOAK_KILLS kills (default 100, at least 100 in CI) or XA_MSGD_SOAK_SECONDS
// seconds (default 150), whichever comes first; XA_MSGD_SOAK_MIN_KILLS (default 100) must be
// reached. RabbitMQ is killed twice (each restart takes ~10 s); XA_MSGD_SOAK_SEED replays a run.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemons/msgd/sql_message_store.h"
#include "src/http/http_client.h"
#include "src/http/http_server.h"
#include "tests/msgd/msgd_process.h"
#include "tests/msgd/store_test_env.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/test_secrets.h"
#include "xa/odbc/local_connection.h"
#include "xa/odbc/tcc_barrier.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

odbc::OdbcOptions DatabaseOptions(bool postgres) {
  return StoreOdbcOptions(postgres ? odbc::Dialect::kPostgres : odbc::Dialect::kMariaDb);
}

std::unique_ptr<odbc::LocalConnection> Connect(bool postgres) {
  auto connection = odbc::LocalConnection::Open(DatabaseOptions(postgres));
  EXPECT_TRUE(connection.ok()) << connection.status().ToString();
  return connection.ok() ? std::move(connection).value() : nullptr;
}

// The producers' back-query endpoint, answering from the orders table (see the file comment).
class OrderQueryEndpoint {
 public:
  explicit OrderQueryEndpoint(std::string orders) : orders_(std::move(orders)) {
    http::HttpServerOptions options;
    options.address = "127.0.0.1:0";
    options.post_routes["/orders/query"] = [this](const http::HttpRequest& request) {
      Json question = Json::parse(request.body, nullptr, false);
      std::string id = question.is_object() ? question.value("id", "") : "";
      if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return http::HttpResponse{400, "text/plain", "bad id\n"};
      }
      std::string state = StateOf(id);
      if (state.empty()) return http::HttpResponse{503, "text/plain", "database\n"};
      return http::HttpResponse{
          200, "application/json",
          Json{{"state", state == "placed" ? "committed" : "rolled_back"}}.dump()};
    };
    options.threads = 4;
    auto server = http::HttpServer::Start(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status().ToString();
    if (server.ok()) server_ = std::move(server).value();
  }
  std::string url() const { return "http://" + server_->address() + "/orders/query"; }

 private:
  // 'placed' or 'void' ("" when the database could not answer).
  std::string StateOf(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!db_ || db_->lost()) {
      db_.reset();
      auto made = odbc::LocalConnection::Open(DatabaseOptions(false));
      if (!made.ok()) return "";
      db_ = std::move(made).value();
    }
    auto voided = db_->Execute("INSERT IGNORE INTO " + orders_ +
                               " (message_id, state) VALUES ('" + id + "', 'void')");
    auto rows = voided.ok() && db_->Commit().ok()
                    ? db_->Query("SELECT state FROM " + orders_ + " WHERE message_id = '" + id + "'")
                    : Result<std::vector<odbc::LocalConnection::Row>>(Status(Code::kRmFail, ""));
    db_->Rollback();
    if (!rows.ok() || rows->empty() || !(*rows)[0][0]) return "";
    return *(*rows)[0][0];
  }

  std::string orders_;
  std::mutex mu_;
  std::unique_ptr<odbc::LocalConnection> db_;
  std::unique_ptr<http::HttpServer> server_;
};

// A worker process (producer or consumer) that the soak kills and starts again.
class Worker {
 public:
  Worker(std::string name, std::vector<std::string> argv, const ScratchDir& dir)
      : name_(std::move(name)), argv_(std::move(argv)), dir_(dir) {}
  ~Worker() { Kill(); }
  void Start() { pid_ = Spawn(argv_, {}, dir_.File(name_ + "." + std::to_string(++starts_) + ".out")); }
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // Whether it died by itself (a worker never exits while the soak runs).
  bool Exited() {
    int status = 0;
    return pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  const ScratchDir& dir_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

class MsgdKillSoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* seed_text = std::getenv("XA_MSGD_SOAK_SEED");
    seed_ = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
    random_.seed(seed_);
    std::cout << "msgd kill soak: seed " << seed_ << " (XA_MSGD_SOAK_SEED replays it)" << std::endl;
    prefix_ = "ms" + RandomHex(4) + "_";
    queue_ = "xa-msgd-soak-" + RandomHex(4);
    producer_token_ = RandomHex(20);
    consumer_token_ = RandomHex(20);
    operator_token_ = RandomHex(20);
    WriteSecretFile(dir_.File("tokens"), "producer orders " + producer_token_ +
                                         "\nconsumer accounting " + consumer_token_ +
                                         "\noperator ops " + operator_token_);
    WriteSecretFile(dir_.File("store.pw"), MariaDbAccount().password);
    WriteSecretFile(dir_.File("amqp.pw"), RabbitMqAccount().password);
    for (const char* name : {"a", "b"}) {
      std::ofstream config(dir_.File(std::string("msgd-") + name + ".conf"));
      config << "listen = 127.0.0.1:0\n"
             << "tokens_file = " << dir_.File("tokens") << "\n"
             << "table_prefix = " << prefix_ << "\n"
             << "poll_interval_ms = 100\n"
             << "batch_size = 4\n"
             << "confirm_timeout_ms = 1500\n"
             << "check_ladder_ms = 300, 600, 1000\n"
             << "back_query_timeout_ms = 2000\n"
             // Long enough that only a lost consumer makes a redelivery; none may die.
             << "ack_timeout_ms = 3000\n"
             << "redelivery_ladder_ms = 1000, 2000\n"
             << "max_redeliveries = 1000\n"
             << "publish_retry_ms = 300\n"
             << "[rm store]\ndriver = odbc\n"
             << "dsn = " << OdbcMariaDbDsn() << "\ndialect = mariadb\n"
             << "user = " << MariaDbAccount().user << "\n"
             << "password_file = " << dir_.File("store.pw") << "\n"
             << "[broker rabbitmq]\nhost = " << RabbitMqAccount().host << "\n"
             << "port = " << RabbitMqAccount().port << "\n"
             << "user = " << RabbitMqAccount().user << "\n"
             << "password_file = " << dir_.File("amqp.pw") << "\n";
    }
    orders_db_ = Connect(false);
    effects_db_ = Connect(true);
    ASSERT_TRUE(orders_db_ && effects_db_);
    ASSERT_TRUE(orders_db_->Execute("CREATE TABLE " + prefix_ +
                                    "order (message_id CHAR(32) PRIMARY KEY, "
                                    "state VARCHAR(8) NOT NULL)")
                    .ok());
    ASSERT_TRUE(orders_db_->Commit().ok());
    ASSERT_TRUE(odbc::CreateBarrierTable(effects_db_->handle(), odbc::Dialect::kPostgres).ok());
    // No unique key: a second effect of one message would be counted, not refused.
    ASSERT_TRUE(effects_db_->Execute("CREATE TABLE " + prefix_ + "effect (message_id CHAR(32))").ok());
    ASSERT_TRUE(effects_db_->Commit().ok());
  }

  void TearDown() override {
    std::string drop_store = msg::DropStoreTablesSql(prefix_) + ", " + prefix_ + "order";
    MariaDbAdmin("USE " + MariaDbAccount().database + "; " + drop_store);
    PostgresAdmin("DROP TABLE IF EXISTS " + prefix_ + "effect");
  }

  std::map<std::string, Json> Counts(const std::string& url) {
    std::map<std::string, Json> counts;
    auto http = http::HttpClient::Make(
        {url, 2s, 5s, 1 << 20, 1, {{"Authorization", "Bearer " + operator_token_}}});
    if (!http.ok()) return counts;
    auto reply = (*http)->Post("/v1/admin/counts", "application/json", "{}");
    if (!reply.ok() || reply->status != 200) return counts;
    for (const Json& one : Json::parse(reply->body, nullptr, false).value("counts", Json::array())) {
      counts[one.value("status", "")] = one;
    }
    return counts;
  }
  std::map<std::string, int64_t> Column(odbc::LocalConnection& db, const std::string& sql) {
    std::map<std::string, int64_t> out;
    auto rows = db.Query(sql);
    EXPECT_TRUE(rows.ok()) << sql << ": " << rows.status().ToString();
    db.Rollback();
    if (!rows.ok()) return out;
    for (const auto& row : *rows) out[row[0].value_or("")] += row.size() > 1 ? std::stoll(row[1].value_or("0")) : 1;
    return out;
  }

  uint64_t seed_ = 0;
  std::mt19937_64 random_;
  ScratchDir dir_;
  std::string prefix_, queue_, producer_token_, consumer_token_, operator_token_;
  std::unique_ptr<odbc::LocalConnection> orders_db_, effects_db_;
};

TEST_F(MsgdKillSoakTest, RandomKillsLoseNoPlacedOrdersMessageAndDeliverNoFailedOnesTwice) {
  const int max_kills = EnvInt("XA_MSGD_SOAK_KILLS", 100);
  const int min_kills = EnvInt("XA_MSGD_SOAK_MIN_KILLS", 100);
  const auto budget = std::chrono::seconds(EnvInt("XA_MSGD_SOAK_SECONDS", 150));
  const std::string script = RequireEnv("XA_TEST_SERVERS_SCRIPT");

  OrderQueryEndpoint queries(prefix_ + "order");
  MsgdProcess a(XA_MSGD_PATH, dir_.File("msgd-a.conf"), dir_.File("msgd-a"));
  MsgdProcess b(XA_MSGD_PATH, dir_.File("msgd-b.conf"), dir_.File("msgd-b"));
  a.Start("127.0.0.1:0");
  b.Start("127.0.0.1:0");
  ASSERT_TRUE(a.running() && b.running() && !a.address().empty() && !b.address().empty());
  const std::string worker = XA_MSGD_SOAK_WORKER_PATH;
  std::vector<std::unique_ptr<Worker>> workers;
  for (const char* name : {"producer-1", "producer-2"}) {
    workers.push_back(std::make_unique<Worker>(
        name,
        std::vector<std::string>{worker, "producer", prefix_, queue_, queries.url(),
                                 producer_token_, a.url(), b.url()},
        dir_));
  }
  workers.push_back(std::make_unique<Worker>(
      "consumer", std::vector<std::string>{worker, "consumer", prefix_, queue_, consumer_token_, a.url()},
      dir_));
  for (auto& one : workers) one->Start();

  // The victims: 0, 1 producers; 2 consumer; 3, 4 the two xa-msgd; RabbitMQ at two fixed kills.
  std::map<std::string, int> kills_of;
  int kills = 0;
  const int broker_kill_1 = std::max(1, max_kills / 3), broker_kill_2 = std::max(2, 2 * max_kills / 3);
  const auto start = std::chrono::steady_clock::now();
  while (kills < max_kills && std::chrono::steady_clock::now() - start < budget) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random_() % 300));
    for (auto& one : workers) {
      ASSERT_FALSE(one->Exited()) << one->name() << " ended by itself: see " << dir_.File(one->name());
    }
    ++kills;
    if (kills == broker_kill_1 || kills == broker_kill_2) {
      ProcessResult killed = RunProcess({"/bin/bash", script, "kill-rabbitmq"}, {});
      ASSERT_TRUE(killed.Exited(0)) << killed.Describe();
      std::this_thread::sleep_for(std::chrono::milliseconds(random_() % 1000));
      ProcessResult started = RunProcess({"/bin/bash", script, "start"}, {});
      ASSERT_TRUE(started.Exited(0)) << started.Describe();
      ++kills_of["rabbitmq"];
      continue;
    }
    const int victim = static_cast<int>(random_() % 5);
    const auto pause = std::chrono::milliseconds(random_() % 200);
    if (victim < 3) {
      workers[victim]->Kill();
      std::this_thread::sleep_for(pause);
      workers[victim]->Start();
      ++kills_of[workers[victim]->name()];
    } else {
      MsgdProcess& msgd = victim == 3 ? a : b;
      const std::string address = msgd.address();
      msgd.Stop(SIGKILL);
      std::this_thread::sleep_for(pause);
      msgd.Start(address);
      ASSERT_EQ(msgd.address(), address) << msgd.Output();
      ++kills_of[victim == 3 ? "msgd-a" : "msgd-b"];
    }
  }
  const double soak_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // The producers stop as they were killed: whatever they left half done is settled below.
  workers[0]->Kill();
  workers[1]->Kill();

  // Settle: every message done or deleted (back-queries, deliveries, redeliveries, acks).
  std::map<std::string, Json> counts;
  auto unsettled = [&] {
    int64_t left = 0;
    for (const char* status : {"pending", "parked", "ready", "sent"}) {
      left += counts.count(status) ? counts[status].value("live", int64_t{0}) +
                                         counts[status].value("dead", int64_t{0})
                                   : 0;
    }
    return left;
  };
  const auto settle_deadline = std::chrono::steady_clock::now() + 120s;
  do {
    std::this_thread::sleep_for(500ms);
    counts = Counts(a.url());
  } while ((counts.empty() || unsettled() > 0) && std::chrono::steady_clock::now() < settle_deadline);
  workers[2]->Kill();

  std::map<std::string, int64_t> orders =
      Column(*orders_db_, "SELECT state, COUNT(*) FROM " + prefix_ + "order GROUP BY state");
  std::map<std::string, int64_t> placed_ids =
      Column(*orders_db_, "SELECT message_id FROM " + prefix_ + "order WHERE state = 'placed'");
  std::map<std::string, int64_t> void_ids =
      Column(*orders_db_, "SELECT message_id FROM " + prefix_ + "order WHERE state = 'void'");
  std::map<std::string, int64_t> effects = Column(
      *effects_db_, "SELECT message_id, COUNT(*) FROM " + prefix_ + "effect GROUP BY message_id");
  std::cout << "msgd kill soak: " << kills << " kills in " << soak_seconds << " s (";
  for (const auto& [who, n] : kills_of) std::cout << who << " " << n << ", ";
  std::cout << "); orders placed " << orders["placed"] << ", voided by a back-query "
            << orders["void"] << "; messages done "
            << (counts.count("done") ? counts["done"].value("live", int64_t{0}) : 0)
            << "; effects " << effects.size() << std::endl;

  EXPECT_GE(kills, min_kills) << "the soak's time ran out first";
  EXPECT_EQ(unsettled(), 0) << "S3: messages left unsettled or dead: "
                            << Json(counts).dump();
  for (const auto& [status, count] : counts) {
    EXPECT_EQ(count.value("dead", int64_t{0}), 0) << "S3: dead " << status << " messages";
  }
  // Each broken invariant names its first ten messages and counts the rest.
  int s1 = 0, s2 = 0;
  for (const auto& [id, n] : placed_ids) {
    auto it = effects.find(id);
    if (it != effects.end() && it->second == 1) continue;
    if (++s1 <= 10) {
      ADD_FAILURE() << "S1: placed order " << id << " processed "
                    << (it == effects.end() ? 0 : it->second) << " times";
    }
  }
  for (const auto& [id, n] : effects) {
    if (placed_ids.count(id) == 1) continue;
    if (++s2 <= 10) {
      ADD_FAILURE() << "S2: message " << id << " processed but its order "
                    << (void_ids.count(id) ? "was voided" : "does not exist");
    }
  }
  EXPECT_EQ(s1, 0) << "S1: placed orders not processed exactly once";
  EXPECT_EQ(s2, 0) << "S2: messages processed whose order was not placed";
  EXPECT_GE(orders["placed"], 20) << "S4: too few orders placed for the soak to mean anything";
  a.Stop(SIGTERM);
  b.Stop(SIGTERM);
}

}  // namespace
}  // namespace xa::test
