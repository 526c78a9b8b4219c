// The transactional variant (xa/msg/transactional_send.h) end to end on the real servers: the
// producer's xa::Transaction has a business branch and a branch on xa-msgd's store (each test
// on both stores: store on MariaDB with the business on PostgreSQL, and the other way round),
// xa-msgd runs as its own process and publishes to a real RabbitMQ. A committed transaction's
// message is delivered with no pre-send, confirm or back-query; a rolled-back one's never; and
// while the branches are prepared and undecided, xa-msgd does not deliver it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/http/http_client.h"
#include "tests/msgd/msgd_process.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "testutil/rabbitmq_env.h"
#include "testutil/test_secrets.h"
#include "xa/decision_log.h"
#include "xa/msg/message_client.h"
#include "xa/msg/transactional_send.h"
#include "xa/odbc/local_connection.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

odbc::OdbcOptions Database(bool postgres, const std::string& rm_name) {
  ServerAccount account = postgres ? PostgresAccount() : MariaDbAccount();
  odbc::OdbcOptions options;
  options.rm_name = rm_name;
  options.dsn = postgres ? OdbcPostgresDsn() : OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = postgres ? odbc::Dialect::kPostgres : odbc::Dialect::kMariaDb;
  return options;
}

enum class StoreOn { kMariaDb, kPostgres };

class MsgdTransactionalTest : public ::testing::TestWithParam<StoreOn> {
 protected:
  bool store_on_postgres() const { return GetParam() == StoreOn::kPostgres; }
  void SetUp() override {
    prefix_ = "mt" + RandomHex(4) + "_";
    queue_ = "xa-msgd-txn-" + RandomHex(4);
    operator_token_ = RandomHex(20);
    consumer_token_ = RandomHex(20);
    WriteSecretFile(dir_.File("tokens"), "consumer accounting " + consumer_token_ +
                                         "\noperator ops " + operator_token_);
    ServerAccount db = store_on_postgres() ? PostgresAccount() : MariaDbAccount();
    WriteSecretFile(dir_.File("store.pw"), db.password);
    WriteSecretFile(dir_.File("amqp.pw"), RabbitMqAccount().password);
    std::ofstream(dir_.File("msgd.conf"))
        << "listen = 127.0.0.1:0\ntokens_file = " << dir_.File("tokens") << "\n"
        << "table_prefix = " << prefix_ << "\npoll_interval_ms = 100\n"
        << "[rm store]\ndriver = odbc\n"
        << "dsn = " << (store_on_postgres() ? OdbcPostgresDsn() : OdbcMariaDbDsn()) << "\n"
        << "dialect = " << (store_on_postgres() ? "postgres" : "mariadb") << "\n"
        << "user = " << db.user << "\npassword_file = " << dir_.File("store.pw") << "\n"
        << "[broker rabbitmq]\nhost = " << RabbitMqAccount().host << "\n"
        << "port = " << RabbitMqAccount().port << "\nuser = " << RabbitMqAccount().user
        << "\npassword_file = " << dir_.File("amqp.pw") << "\n";
    msgd_.Start("127.0.0.1:0");  // creates the store's tables
    ASSERT_TRUE(msgd_.running());

    // The business table, on the other database.
    auto business = odbc::LocalConnection::Open(Database(!store_on_postgres(), ""));
    ASSERT_TRUE(business.ok()) << business.status().ToString();
    business_ = std::move(business).value();
    ASSERT_TRUE(business_->Execute("CREATE TABLE " + prefix_ +
                                   "orders (id INT PRIMARY KEY, message_id CHAR(32))")
                    .ok());
    ASSERT_TRUE(business_->Commit().ok());

    LogOptions log_options;
    log_options.dir = dir_.File("log");
    log_options.node_id = 41;
    auto log = DecisionLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    TransactionManagerOptions options;
    options.node_id = 41;
    for (const auto& [name, postgres] :
         std::vector<std::pair<std::string, bool>>{{"orders", !store_on_postgres()},
                                                   {"msg-store", store_on_postgres()}}) {
      options.resource_managers[name] = [name = name, postgres = postgres]()
          -> Result<std::unique_ptr<ResourceManager>> {
        auto rm = odbc::OdbcResourceManager::Create(Database(postgres, name));
        if (!rm.ok()) return rm.status();
        return std::unique_ptr<ResourceManager>(std::move(rm).value());
      };
    }
    auto manager = TransactionManager::Open(options, *log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(manager).value();
    auto orders = odbc::OdbcResourceManager::Create(Database(!store_on_postgres(), "orders"));
    auto store = odbc::OdbcResourceManager::Create(Database(store_on_postgres(), "msg-store"));
    ASSERT_TRUE(orders.ok() && store.ok());
    orders_ = std::move(orders).value();
    store_ = std::move(store).value();
  }
  void TearDown() override {
    msgd_.Stop(SIGTERM);
    manager_.reset();
    orders_.reset();
    store_.reset();
    business_->Rollback();
    (void)business_->Execute("DROP TABLE IF EXISTS " + prefix_ + "orders");
    (void)business_->Commit();
    std::string drop = "DROP TABLE IF EXISTS " + prefix_ + "event, " + prefix_ + "message, " +
                       prefix_ + "schema, " + prefix_ + "audit";
    if (store_on_postgres()) {
      PostgresAdmin(drop);
    } else {
      MariaDbAdmin("USE " + MariaDbAccount().database + "; " + drop);
    }
  }

  // One order and its message in one transaction, on the enlisted branches: the message id.
  std::string PlaceOrder(Transaction& txn, int order) {
    EXPECT_TRUE(txn.Enlist(*orders_).ok());
    EXPECT_TRUE(txn.Enlist(*store_).ok());
    auto id = msg::SendInTransaction(*store_, prefix_,
                                     {"orders", "order.placed", queue_,
                                      "{\"order\": " + std::to_string(order) + "}"});
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    if (!id.ok()) return "";
    auto inserted = orders_->Execute("INSERT INTO " + prefix_ + "orders VALUES (" +
                                     std::to_string(order) + ", '" + *id + "')");
    EXPECT_TRUE(inserted.ok()) << inserted.status().ToString();
    return *id;
  }
  // What arrives on the queue within `duration`, each acknowledged to xa-msgd.
  std::vector<std::string> Consume(std::chrono::milliseconds duration) {
    auto acks = msg::MessageClient::Make({msgd_.url(), consumer_token_});
    EXPECT_TRUE(acks.ok());
    std::vector<std::string> received;
    if (!acks.ok()) return received;
    auto consumer = msg::MessageConsumer::Connect(RabbitMqOptions(), queue_, **acks);
    EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
    if (!consumer.ok()) return received;
    const auto deadline = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < deadline) {
      auto next = (*consumer)->Next(100ms);
      EXPECT_TRUE(next.ok());
      if (!next.ok()) break;
      if (!*next) continue;
      received.push_back((*next)->id);
      EXPECT_EQ((*next)->producer_id, "orders");
      EXPECT_TRUE((*consumer)->Done(**next).ok());
    }
    return received;
  }
  Json Get(const std::string& id) {
    auto http = http::HttpClient::Make(
        {msgd_.url(), 2s, 5s, 1 << 20, 1, {{"Authorization", "Bearer " + operator_token_}}});
    EXPECT_TRUE(http.ok());
    auto reply = (*http)->Post("/v1/admin/get", "application/json", Json{{"id", id}}.dump());
    if (!reply.ok() || reply->status != 200) return Json::object();
    return Json::parse(reply->body, nullptr, false);
  }

  ScratchDir dir_;
  std::string prefix_, queue_, operator_token_, consumer_token_;
  MsgdProcess msgd_{XA_MSGD_PATH, dir_.File("msgd.conf"), dir_.File("msgd")};
  std::unique_ptr<odbc::LocalConnection> business_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
  std::unique_ptr<odbc::OdbcResourceManager> orders_, store_;
};

TEST_P(MsgdTransactionalTest, CommittedTransactionsMessageIsDeliveredWithoutAnyBackQuery) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  std::string id = PlaceOrder(*txn, 1);
  auto outcome = txn->Commit();
  ASSERT_TRUE(outcome.ok() && *outcome == Outcome::kCommitted) << txn->last_status().ToString();
  EXPECT_EQ(Consume(3s), std::vector<std::string>{id});
  Json message = Get(id);
  EXPECT_EQ(message.value("status", ""), "done") << message.dump();
  EXPECT_EQ(message.value("check_count", -1), 0) << "no back-query";
  EXPECT_EQ(message.value("body", ""), "{\"order\": 1}");
  EXPECT_NE(message.dump().find("confirmed in a transaction"), std::string::npos) << message.dump();
}

TEST_P(MsgdTransactionalTest, RolledBackTransactionsMessageNeverExists) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  std::string id = PlaceOrder(*txn, 2);
  ASSERT_TRUE(txn->Rollback().ok());
  EXPECT_TRUE(Consume(1500ms).empty());
  EXPECT_TRUE(Get(id).empty()) << "the message row went with the rollback";
}

// The window of the two-phase commit: both branches prepared, the decision not yet made. The
// prepared message row is invisible (PostgreSQL) or locked (MariaDB) and the delivery job
// skips it; committing the branches releases it.
TEST_P(MsgdTransactionalTest, PreparedUndecidedMessageIsNotDeliveredUntilItsBranchCommits) {
  auto parsed = Xid::Parse("1234:" + RandomHex(8) + ":");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const Xid global = *parsed;
  const Xid order_branch = global.WithBranch(1), store_branch = global.WithBranch(2);
  ASSERT_TRUE(orders_->Start(order_branch, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(store_->Start(store_branch, StartFlag::kNoFlags).ok());
  auto id = msg::SendInTransaction(*store_, prefix_, {"orders", "order.placed", queue_, "3"});
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(orders_->Execute("INSERT INTO " + prefix_ + "orders VALUES (3, '" + *id + "')").ok());
  ASSERT_TRUE(orders_->End(order_branch, EndFlag::kSuccess).ok());
  ASSERT_TRUE(store_->End(store_branch, EndFlag::kSuccess).ok());
  ASSERT_TRUE(orders_->Prepare(order_branch).ok());
  ASSERT_TRUE(store_->Prepare(store_branch).ok());
  EXPECT_TRUE(Consume(1500ms).empty()) << "delivered before the decision";
  ASSERT_TRUE(store_->Commit(store_branch, CommitMode::kTwoPhase).ok());
  ASSERT_TRUE(orders_->Commit(order_branch, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(Consume(3s), std::vector<std::string>{*id});
}

TEST_P(MsgdTransactionalTest, BadFieldsAreRefusedNamingThemAndWriteNothing) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(*store_).ok());
  auto no_queue = msg::SendInTransaction(*store_, prefix_, {"orders", "order.placed", "", "x"});
  EXPECT_EQ(no_queue.status().code(), Code::kInval);
  EXPECT_NE(no_queue.status().message().find("queue"), std::string::npos)
      << no_queue.status().ToString();
  auto too_big = msg::SendInTransaction(*store_, prefix_,
                                        {"orders", "order.placed", queue_, std::string(100, 'x')},
                                        /*max_body_bytes=*/10);
  EXPECT_EQ(too_big.status().code(), Code::kInval) << too_big.status().ToString();
  auto bad_prefix = msg::SendInTransaction(*store_, "x; DROP TABLE t; --",
                                           {"orders", "order.placed", queue_, "x"});
  EXPECT_EQ(bad_prefix.status().code(), Code::kInval) << bad_prefix.status().ToString();
  auto outcome = txn->Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_TRUE(Consume(1s).empty());
}

INSTANTIATE_TEST_SUITE_P(Stores, MsgdTransactionalTest,
                         ::testing::Values(StoreOn::kMariaDb, StoreOn::kPostgres),
                         [](const ::testing::TestParamInfo<StoreOn>& store) {
                           return store.param == StoreOn::kMariaDb ? "StoreOnMariaDb"
                                                                   : "StoreOnPostgres";
                         });

}  // namespace
}  // namespace xa::test
