// The participant barrier on MySQL Connector/C++ against the real local MariaDB: the shared
// cases of tests/drivers/common/barrier_cases.h.

#include "xa/mysql/tcc_barrier.h"

#include <atomic>
#include <thread>
#include <vector>

#include "mysql_test_util.h"
#include "tests/drivers/common/barrier_cases.h"

namespace xa::mysql {
namespace {

class MySqlBarrierConnection : public test::BarrierConnection {
 public:
  explicit MySqlBarrierConnection(std::unique_ptr<sql::Connection> connection)
      : connection_(std::move(connection)) {
    connection_->setAutoCommit(false);
    // The participant's usual isolation on MariaDB: the barrier must work under it.
    MustRun(*connection_, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  }
  Result<BarrierVerdict> Enter(const BarrierKey& key, BarrierOp op,
                               const BarrierOptions& options) override {
    return EnterBarrier(*connection_, key, op, options);
  }
  Result<int64_t> Purge(const BarrierOptions& options) override {
    return PurgeBarrier(*connection_, options);
  }
  Status CreateTable(const BarrierOptions& options) override {
    return CreateBarrierTable(*connection_, options);
  }
  void Run(const std::string& sql) override { MustRun(*connection_, sql); }
  int64_t QueryInt(const std::string& sql) override {
    return mysql::QueryInt(*connection_, sql).value_or(-1);
  }
  void Commit() override { connection_->commit(); }
  void Rollback() override { connection_->rollback(); }
  void SetAutocommitOn() override { connection_->setAutoCommit(true); }

 private:
  std::unique_ptr<sql::Connection> connection_;
};

// The suite by its own name: the registration matches TEST_P's by name.
using BarrierCases = test::BarrierCases;
INSTANTIATE_TEST_SUITE_P(
    MariaDb, BarrierCases,
    ::testing::Values(test::BarrierDriver{
        "ConnectorCpp", false, []() -> std::unique_ptr<test::BarrierConnection> {
          std::unique_ptr<sql::Connection> connection = Connect(/*admin=*/false);
          if (connection == nullptr) return nullptr;
          return std::make_unique<MySqlBarrierConnection>(std::move(connection));
        }}),
    test::BarrierDriverName);

// A participant service opens its connections from many threads at once (the coordinator calls
// its participants in parallel): Connector/C++'s first connect is not thread-safe, and under ASan
// unguarded parallel connects crashed in the driver. OpenLocalConnection takes the driver's lock.
TEST(OpenLocalConnection, ManyThreadsConnectAtOnceAndEachGetsALocalTransaction) {
  std::vector<std::thread> threads;
  std::atomic<int> connected{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      Result<std::unique_ptr<sql::Connection>> c = OpenLocalConnection(Options());
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      EXPECT_FALSE((*c)->getAutoCommit());
      ++connected;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(connected.load(), 8);
}

TEST(OpenLocalConnection, AnUnreachableServerIsAnErrorNamingIt) {
  MySqlOptions options = Options();
  options.port = 1;
  Status refused = OpenLocalConnection(options).status();
  EXPECT_EQ(refused.code(), Code::kRmFail);
  EXPECT_NE(refused.message().find(":1"), std::string::npos) << refused.ToString();
  if (!options.password.empty()) {
    EXPECT_EQ(refused.message().find(options.password), std::string::npos);
  }
}

}  // namespace
}  // namespace xa::mysql
