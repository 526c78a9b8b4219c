// The participant barrier on MySQL Connector/C++ against the real local MariaDB: the shared
// cases of tests/drivers/common/barrier_cases.h.

#include "xa/mysql/tcc_barrier.h"

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

}  // namespace
}  // namespace xa::mysql
