// xa::odbc::LocalConnection against the real local MariaDB and PostgreSQL: a local transaction
// that Commit() keeps and Rollback() discards, rows as text with NULL apart, and each class of
// error as the header promises it (duplicate key, lock wait timeout, a lost connection, a bad
// statement, a refused login), with the password never in a message.

#include "xa/odbc/local_connection.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "testutil/db_env.h"
#include "testutil/test_secrets.h"

namespace xa::odbc {
namespace {

using test::RandomHex;

class LocalConnectionTest : public ::testing::TestWithParam<Dialect> {
 protected:
  bool postgres() const { return GetParam() == Dialect::kPostgres; }
  OdbcOptions Options() const {
    test::ServerAccount account = postgres() ? test::PostgresAccount() : test::MariaDbAccount();
    OdbcOptions options;
    options.dsn = postgres() ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
    options.user = account.user;
    options.password = account.password;
    options.dialect = GetParam();
    return options;
  }
  std::unique_ptr<LocalConnection> Open() {
    auto connection = LocalConnection::Open(Options());
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    return connection.ok() ? std::move(connection).value() : nullptr;
  }
  void SetUp() override {
    admin_ = Open();
    ASSERT_NE(admin_, nullptr);
    ASSERT_TRUE(admin_->Execute("CREATE TABLE " + table_ +
                                " (id INT PRIMARY KEY, note VARCHAR(40))")
                    .ok());
    ASSERT_TRUE(admin_->Commit().ok());
  }
  void TearDown() override {
    if (!admin_ || admin_->lost()) admin_ = Open();
    if (!admin_) return;
    admin_->Rollback();
    EXPECT_TRUE(admin_->Execute("DROP TABLE " + table_).ok());
    EXPECT_TRUE(admin_->Commit().ok());
  }
  int64_t CountRows(LocalConnection& connection) {
    auto rows = connection.Query("SELECT COUNT(*) FROM " + table_);
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    connection.Rollback();
    return rows.ok() && !rows->empty() && (*rows)[0][0] ? std::stoll(*(*rows)[0][0]) : -1;
  }

  std::string table_ = "lc_" + RandomHex(6);
  std::unique_ptr<LocalConnection> admin_;
};

TEST_P(LocalConnectionTest, CommitKeepsAndRollbackDiscardsTheLocalTransaction) {
  auto connection = Open();
  ASSERT_NE(connection, nullptr);
  EXPECT_EQ(connection->dialect(), GetParam());
  auto inserted = connection->Execute("INSERT INTO " + table_ + " VALUES (1, 'kept'), (2, NULL)");
  ASSERT_TRUE(inserted.ok()) << inserted.status().ToString();
  EXPECT_EQ(*inserted, 2);
  EXPECT_EQ(CountRows(*admin_), 0) << "not visible before the commit: autocommit is off";
  ASSERT_TRUE(connection->Commit().ok());
  ASSERT_TRUE(connection->Execute("INSERT INTO " + table_ + " VALUES (3, 'discarded')").ok());
  connection->Rollback();
  EXPECT_EQ(CountRows(*admin_), 2);

  auto rows = connection->Query("SELECT id, note FROM " + table_ + " ORDER BY id");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0], (LocalConnection::Row{"1", "kept"}));
  EXPECT_EQ((*rows)[1], (LocalConnection::Row{"2", std::nullopt}));
  auto changed = connection->Execute("UPDATE " + table_ + " SET note = 'x' WHERE id > 100");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, 0);
  connection->Rollback();
}

TEST_P(LocalConnectionTest, DuplicateKeyIsDupIdAndTheConnectionGoesOnAfterARollback) {
  auto connection = Open();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(connection->Execute("INSERT INTO " + table_ + " VALUES (1, 'a')").ok());
  ASSERT_TRUE(connection->Commit().ok());
  auto duplicate = connection->Execute("INSERT INTO " + table_ + " VALUES (1, 'b')");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.status().code(), Code::kDupId) << duplicate.status().ToString();
  EXPECT_NE(duplicate.status().message().find("INSERT INTO"), std::string::npos)
      << "names the statement: " << duplicate.status().ToString();
  EXPECT_FALSE(connection->lost());
  connection->Rollback();
  ASSERT_TRUE(connection->Execute("INSERT INTO " + table_ + " VALUES (2, 'b')").ok());
  ASSERT_TRUE(connection->Commit().ok());
  EXPECT_EQ(CountRows(*admin_), 2);
}

TEST_P(LocalConnectionTest, LockWaitPastItsTimeoutIsRbTimeout) {
  ASSERT_TRUE(admin_->Execute("INSERT INTO " + table_ + " VALUES (1, 'a')").ok());
  ASSERT_TRUE(admin_->Commit().ok());
  auto holder = Open();
  auto waiter = Open();
  ASSERT_TRUE(holder && waiter);
  ASSERT_TRUE(holder->Execute("UPDATE " + table_ + " SET note = 'held' WHERE id = 1").ok());
  ASSERT_TRUE(waiter
                  ->Execute(postgres() ? "SET lock_timeout = '1s'"
                                       : "SET SESSION innodb_lock_wait_timeout = 1")
                  .ok());
  auto waited = waiter->Execute("UPDATE " + table_ + " SET note = 'waited' WHERE id = 1");
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.status().code(), Code::kRbTimeout) << waited.status().ToString();
  waiter->Rollback();
  holder->Rollback();
}

TEST_P(LocalConnectionTest, KilledSessionIsRmFailAndLost) {
  auto victim = Open();
  ASSERT_NE(victim, nullptr);
  auto id = victim->Query(postgres() ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()");
  ASSERT_TRUE(id.ok() && !id->empty() && (*id)[0][0]) << id.status().ToString();
  victim->Rollback();
  std::string kill = postgres() ? "SELECT pg_terminate_backend(" + *(*id)[0][0] + ")"
                                : "KILL CONNECTION " + *(*id)[0][0];
  ASSERT_TRUE(postgres() ? admin_->Query(kill).ok() : admin_->Execute(kill).ok());
  admin_->Rollback();
  Status failure = Status::Ok();
  // PostgreSQL ends the backend asynchronously: the next statements meet the closed socket.
  for (int i = 0; i < 50 && failure.ok(); ++i) {
    Result<std::vector<LocalConnection::Row>> after = victim->Query("SELECT 1");
    if (!after.ok()) {
      failure = after.status();
      break;
    }
    victim->Rollback();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(failure.ok()) << "the killed session still answers";
  EXPECT_EQ(failure.code(), Code::kRmFail) << failure.ToString();
  EXPECT_TRUE(victim->lost());
}

TEST_P(LocalConnectionTest, BadStatementIsRmErrorNamingItAndTheServersWords) {
  auto connection = Open();
  ASSERT_NE(connection, nullptr);
  auto bad = connection->Query("SELECT no_such_column FROM " + table_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kRmError) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("SELECT"), std::string::npos) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("no_such_column"), std::string::npos)
      << "the server's diagnostics: " << bad.status().ToString();
  EXPECT_FALSE(connection->lost());
  connection->Rollback();
  EXPECT_TRUE(connection->Query("SELECT 1").ok());
  connection->Rollback();
}

TEST_P(LocalConnectionTest, RefusedLoginNeverShowsThePassword) {
  OdbcOptions wrong = Options();
  wrong.password = "Wr0ng-" + RandomHex(8);
  auto refused = LocalConnection::Open(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().find(wrong.password), std::string::npos)
      << refused.status().ToString();
  OdbcOptions no_dialect = Options();
  no_dialect.dialect = Dialect::kAuto;
  auto unsupported = LocalConnection::Open(no_dialect);
  ASSERT_FALSE(unsupported.ok());
  EXPECT_EQ(unsupported.status().code(), Code::kInval) << unsupported.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Servers, LocalConnectionTest,
                         ::testing::Values(Dialect::kMariaDb, Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<Dialect>& dialect) {
                           return dialect.param == Dialect::kMariaDb ? "MariaDb" : "Postgres";
                         });

}  // namespace
}  // namespace xa::odbc
