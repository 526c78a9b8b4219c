// The participant barrier on ODBC against the real local MariaDB (MariaDB Connector/ODBC) and
// PostgreSQL (psqlODBC): the shared cases of tests/drivers/common/barrier_cases.h.

#include "xa/odbc/tcc_barrier.h"

#include <cstdlib>
#include <future>
#include <random>

#include "drivers/odbc/src/odbc_session.h"
#include "testutil/db_env.h"
#include "tests/drivers/common/barrier_cases.h"

namespace xa::odbc {
namespace {

using internal::Diagnostics;
using internal::OdbcSession;
using internal::Row;

class OdbcBarrierConnection : public test::BarrierConnection {
 public:
  explicit OdbcBarrierConnection(Dialect dialect) : dialect_(dialect) {}

  bool Connect() {
    const bool postgres = dialect_ == Dialect::kPostgres;
    test::ServerAccount account = postgres ? test::PostgresAccount() : test::MariaDbAccount();
    std::string dsn = postgres ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
    Diagnostics diag;
    if (!session_.Connect("DSN=" + dsn + ";UID=" + account.user + ";PWD=" + account.password,
                          std::chrono::seconds(10), &diag)) {
      ADD_FAILURE() << "cannot connect: " << diag.Describe();
      return false;
    }
    if (!session_.SetAutocommit(false, &diag)) {
      ADD_FAILURE() << "autocommit off: " << diag.Describe();
      return false;
    }
    return true;
  }

  Result<BarrierVerdict> Enter(const BarrierKey& key, BarrierOp op,
                               const BarrierOptions& options) override {
    return EnterBarrier(session_.dbc(), dialect_, key, op, options);
  }
  Result<int64_t> Purge(const BarrierOptions& options) override {
    return PurgeBarrier(session_.dbc(), dialect_, options);
  }
  Status CreateTable(const BarrierOptions& options) override {
    return CreateBarrierTable(session_.dbc(), dialect_, options);
  }
  void Run(const std::string& sql) override {
    Diagnostics diag;
    EXPECT_TRUE(session_.Execute(sql, &diag)) << sql << ": " << diag.Describe();
  }
  int64_t QueryInt(const std::string& sql) override {
    std::vector<Row> rows;
    Diagnostics diag;
    EXPECT_TRUE(session_.Query(sql, &rows, &diag)) << sql << ": " << diag.Describe();
    if (rows.empty() || rows[0].empty() || !rows[0][0].has_value()) return -1;
    return std::strtoll(rows[0][0]->c_str(), nullptr, 10);
  }
  void Commit() override {
    Diagnostics diag;
    EXPECT_TRUE(session_.EndTransaction(true, &diag)) << diag.Describe();
  }
  void Rollback() override {
    Diagnostics diag;
    EXPECT_TRUE(session_.EndTransaction(false, &diag)) << diag.Describe();
  }
  void SetAutocommitOn() override {
    Diagnostics diag;
    EXPECT_TRUE(session_.SetAutocommit(true, &diag)) << diag.Describe();
  }

 private:
  Dialect dialect_;
  OdbcSession session_;
};

test::BarrierDriver Driver(std::string name, Dialect dialect) {
  return test::BarrierDriver{
      std::move(name), dialect == Dialect::kPostgres,
      [dialect]() -> std::unique_ptr<test::BarrierConnection> {
        auto connection = std::make_unique<OdbcBarrierConnection>(dialect);
        if (!connection->Connect()) return nullptr;
        return connection;
      }};
}

// The suite by its own name: the registration matches TEST_P's by name.
using BarrierCases = test::BarrierCases;
INSTANTIATE_TEST_SUITE_P(Odbc, BarrierCases,
                         ::testing::Values(Driver("MariaDb", Dialect::kMariaDb),
                                           Driver("Postgres", Dialect::kPostgres)),
                         test::BarrierDriverName);

// PostgreSQL under REPEATABLE READ: a request that waited on a concurrent delivery's row which
// committed after its snapshot cannot judge it (ON CONFLICT reports a serialization failure).
// The barrier says so with a retryable code, and the redelivery, in a new transaction, is
// judged as usual. READ COMMITTED (PostgreSQL's default) never needs the retry.
TEST(OdbcBarrierPostgres, UnderRepeatableReadARacingRequestFailsRetryablyAndItsRedeliveryIsJudged) {
  BarrierOptions options;
  options.table = "barrier_rr_" + std::to_string(std::random_device{}() % 100000000u);
  OdbcBarrierConnection a(Dialect::kPostgres), b(Dialect::kPostgres);
  ASSERT_TRUE(a.Connect());
  ASSERT_TRUE(b.Connect());
  ASSERT_TRUE(a.CreateTable(options).ok());
  a.Commit();
  b.Run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  EXPECT_EQ(b.QueryInt("SELECT COUNT(*) FROM " + options.table), 0);  // b's snapshot
  BarrierKey key{"gid-rr", "b1"};
  Result<BarrierVerdict> tried = a.Enter(key, BarrierOp::kTry, options);
  ASSERT_TRUE(tried.ok()) << tried.status().ToString();
  EXPECT_EQ(*tried, BarrierVerdict::kRun);
  std::future<Result<BarrierVerdict>> cancel =
      std::async(std::launch::async, [&] { return b.Enter(key, BarrierOp::kCancel, options); });
  EXPECT_EQ(cancel.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  a.Commit();
  Result<BarrierVerdict> raced = cancel.get();
  ASSERT_FALSE(raced.ok()) << "judged " << BarrierVerdictName(*raced);
  EXPECT_EQ(raced.status().code(), Code::kRbDeadlock) << raced.status().ToString();
  EXPECT_NE(raced.status().message().find("roll the local transaction back"), std::string::npos);
  b.Rollback();
  b.Run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  Result<BarrierVerdict> again = b.Enter(key, BarrierOp::kCancel, options);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, BarrierVerdict::kRun);
  b.Commit();
  a.Run("DROP TABLE " + options.table);
  a.Commit();
}

}  // namespace
}  // namespace xa::odbc
