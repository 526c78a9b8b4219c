// Credentials with the connection string's own characters, on the real servers through the real
// drivers: a user whose name holds ';', '{', '}', '=', quotes or backslashes, with a password
// that holds those and '+' and '%' (which psqlODBC URL-decodes in an unbraced PWD), logs in as
// exactly that user; a hostile name that would add attributes or libpq options if it were not
// quoted reaches the server whole, as a user name that does not exist, and logs in nobody.

#include <sql.h>
#include <sqlext.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/odbc/src/odbc_session.h"
#include "testutil/db_env.h"
#include "xa/decision_log.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/transaction.h"
#include "xa/transaction_manager.h"
#include "xa/xid.h"

namespace xa::odbc {
namespace {

using internal::Diagnostics;
using internal::OdbcSession;
using internal::Row;

// Every character a connection string or libpq's conninfo gives a meaning to.
constexpr char kPassword[] = "p+a%41ss;{w}}=rd}' \\x\"";

std::string Suffix() {
  static std::mt19937 random{std::random_device{}()};
  return std::to_string(random() % 1000000);
}

// SQL text literal: ' doubled; the servers here run without backslash escapes for PostgreSQL
// (standard_conforming_strings) and MariaDB's are doubled too.
std::string SqlLiteral(const std::string& text, bool mariadb) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    if (mariadb && c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

std::string PgIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

class OdbcCredentialsTest : public ::testing::TestWithParam<Dialect> {
 protected:
  bool mariadb() const { return GetParam() == Dialect::kMariaDb; }

  void SetUp() override {
    Diagnostics diag;
    std::string admin = mariadb() ? "Driver=MariaDB;Socket=" + test::MariaDbSocket() +
                                        ";UID=" + test::MariaDbAdminUser() + ";Database=" +
                                        test::MariaDbAccount().database
                                  : "DSN=" + test::OdbcPostgresDsn() +
                                        ";UID=" + test::PostgresAdminUser();
    ASSERT_TRUE(admin_.Connect(admin, std::chrono::seconds(10), &diag)) << diag.Describe();
  }

  void TearDown() override {
    for (const std::string& user : created_) Drop(user);
  }

  void Drop(const std::string& user) {
    Diagnostics ignored;
    admin_.Execute(mariadb() ? "DROP USER IF EXISTS " + SqlLiteral(user, true) + "@'%'"
                             : "DROP ROLE IF EXISTS " + PgIdentifier(user),
                   &ignored);
  }

  void CreateUser(const std::string& user) {
    Drop(user);
    std::vector<std::string> sql;
    if (mariadb()) {
      std::string account = SqlLiteral(user, true) + "@'%'";
      sql = {"CREATE USER " + account + " IDENTIFIED BY " + SqlLiteral(kPassword, true),
             "GRANT ALL ON " + test::MariaDbAccount().database + ".* TO " + account};
    } else {
      sql = {"CREATE ROLE " + PgIdentifier(user) + " LOGIN PASSWORD " +
             SqlLiteral(kPassword, false)};
    }
    for (const std::string& statement : sql) {
      Diagnostics diag;
      ASSERT_TRUE(admin_.Execute(statement, &diag)) << diag.Describe();
    }
    created_.push_back(user);
  }

  OdbcOptions Options(const std::string& user, const std::string& password) {
    OdbcOptions options;
    options.rm_name = "credentials";
    options.dsn = mariadb() ? test::OdbcMariaDbDsn() : test::OdbcPostgresDsn();
    options.user = user;
    options.password = password;
    options.dialect = GetParam();
    return options;
  }

  // The user the server says the resource manager's session runs as.
  std::string SessionUser(OdbcResourceManager& rm) {
    SQLHSTMT stmt = SQL_NULL_HSTMT;
    EXPECT_TRUE(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm.connection(), &stmt)));
    std::string sql = mariadb() ? "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)"
                                : "SELECT current_user";
    std::string user;
    if (SQL_SUCCEEDED(SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(sql.data()), SQL_NTS)) &&
        SQL_SUCCEEDED(SQLFetch(stmt))) {
      char buffer[256] = {};
      SQLLEN length = 0;
      if (SQL_SUCCEEDED(SQLGetData(stmt, 1, SQL_C_CHAR, buffer, sizeof buffer, &length))) {
        user = buffer;
      }
    }
    SQLFreeHandle(SQL_HANDLE_STMT, stmt);
    return user;
  }

  OdbcSession admin_;
  std::vector<std::string> created_;
};

TEST_P(OdbcCredentialsTest, UserAndPasswordWithConnectionStringCharactersLogIn) {
  const std::string suffix = Suffix();
  // Braces, ';' and '=' anywhere, a leading '{' (a braced value to any parser), quotes and a
  // backslash (libpq's conninfo quoting), and a name without any of them.
  for (const std::string& user :
       {"we;ird{u}=ser" + suffix, "{lead}}" + suffix, "a{b}=c" + suffix, "o'k\\" + suffix,
        "plain" + suffix}) {
    SCOPED_TRACE(user);
    CreateUser(user);
    auto rm = OdbcResourceManager::Create(Options(user, kPassword));
    ASSERT_TRUE(rm.ok()) << rm.status().ToString();
    EXPECT_EQ(SessionUser(**rm), user);
    // The recover scan's own connection (MariaDB) logs in the same way.
    auto scan = (*rm)->Recover();
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
  }
}

TEST_P(OdbcCredentialsTest, HostileUserNameReachesTheServerWholeAndLogsInNobody) {
  // Each would log in as the test account (whose password is given) if a part of it became an
  // attribute of the connection string or an option of libpq.
  const test::ServerAccount account = mariadb() ? test::MariaDbAccount() : test::PostgresAccount();
  for (const std::string& user :
       {account.user + ";Database=" + account.database, "{" + account.user + "};Port=1",
        "x' user='" + account.user, account.user + "};UID=" + account.user,
        // ';' sends it through psqlODBC's pqopt, where the quote would end libpq's value.
        "a;b' user='" + account.user + "' x='", "a;b\\' user=" + account.user}) {
    SCOPED_TRACE(user);
    auto rm = OdbcResourceManager::Create(Options(user, account.password));
    ASSERT_FALSE(rm.ok()) << "logged in with the hostile user name";
    EXPECT_EQ(rm.status().code(), Code::kConfig) << rm.status().ToString();
    // The server refused that whole name (its text names the user; quotes as the server writes
    // them, which the message escapes).
    const std::string refused = mariadb() ? "Access denied for user" : "authentication failed";
    EXPECT_NE(rm.status().message().find(refused), std::string::npos) << rm.status().ToString();
  }
}

TEST_P(OdbcCredentialsTest, DialectMustBeNamedForAUserNameOnlyPqoptCarries) {
  OdbcOptions options = Options("semi;colon", kPassword);
  options.dialect = Dialect::kAuto;
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_FALSE(rm.ok());
  EXPECT_EQ(rm.status().code(), Code::kInval) << rm.status().ToString();
  EXPECT_NE(rm.status().message().find("OdbcOptions::dialect"), std::string::npos);
}

// A failed enlist names what failed: the connect (the session's password was changed), never
// XA START (PostgreSQL has none), and calls nothing in doubt: no branch exists yet.
TEST_P(OdbcCredentialsTest, FailedEnlistNamesWhatFailedAndNoDoubt) {
  const std::string user = "enlist" + Suffix();
  CreateUser(user);
  char pattern[] = "/tmp/xa-enlist-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  std::mt19937 random{std::random_device{}()};
  LogOptions log_options;
  log_options.dir = dir + "/log";
  log_options.node_id = (random() & 0x0fffffffu) | 0x50000000u;
  auto log = DecisionLog::Open(log_options);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  TransactionManagerOptions options;
  options.node_id = log_options.node_id;
  options.recover_on_open = false;
  OdbcOptions rm_options = Options(user, kPassword);
  options.resource_managers[rm_options.rm_name] = [rm_options]()
      -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = OdbcResourceManager::Create(rm_options);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(rm).value());
  };
  auto manager = TransactionManager::Open(options, **log);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();
  auto rm = OdbcResourceManager::Create(rm_options);
  ASSERT_TRUE(rm.ok()) << rm.status().ToString();
  ASSERT_TRUE((*rm)->Close().ok());
  Diagnostics diag;
  ASSERT_TRUE(admin_.Execute(mariadb() ? "ALTER USER " + SqlLiteral(user, true) +
                                             "@'%' IDENTIFIED BY 'changed-" + Suffix() + "'"
                                       : "ALTER ROLE " + PgIdentifier(user) +
                                             " PASSWORD 'changed-" + Suffix() + "'",
                             &diag))
      << diag.Describe();
  auto txn = (*manager)->Begin();
  ASSERT_TRUE(txn.ok()) << txn.status().ToString();
  Status enlisted = txn->Enlist(**rm);
  EXPECT_EQ(enlisted.code(), Code::kConfig) << enlisted.ToString();
  EXPECT_NE(enlisted.message().find("enlisting a branch on"), std::string::npos)
      << enlisted.ToString();
  EXPECT_NE(enlisted.message().find("cannot connect"), std::string::npos) << enlisted.ToString();
  EXPECT_EQ(enlisted.message().find("XA START"), std::string::npos) << enlisted.ToString();
  EXPECT_EQ(enlisted.message().find("IN DOUBT"), std::string::npos) << enlisted.ToString();
  EXPECT_EQ(enlisted.message().find("in doubt"), std::string::npos) << enlisted.ToString();
  txn->Rollback().IgnoreError();
  manager->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

// XA START on a session the server has killed: XAER_RMFAIL naming XA START, and no doubt, since
// no branch was started; PostgreSQL's Start sends nothing, so its branch dies with the first
// statement instead (covered by the driver tests).
class OdbcMariaDbMessagesTest : public OdbcCredentialsTest {};

TEST_P(OdbcMariaDbMessagesTest, XaStartOnAKilledSessionCallsNothingInDoubt) {
  const test::ServerAccount account = test::MariaDbAccount();
  auto rm = OdbcResourceManager::Create(Options(account.user, account.password));
  ASSERT_TRUE(rm.ok()) << rm.status().ToString();
  Diagnostics diag;
  std::vector<Row> rows;
  OdbcSession killer;
  ASSERT_TRUE(killer.Connect("DSN=" + test::OdbcMariaDbDsn() + ";UID=" + account.user +
                                 ";PWD=" + internal::BracedConnectionStringValue(account.password),
                             std::chrono::seconds(10), &diag))
      << diag.Describe();
  // The resource manager's session is the newest of the user's other than the killer's.
  ASSERT_TRUE(killer.Query("SELECT MAX(ID) FROM information_schema.PROCESSLIST WHERE USER = " +
                               SqlLiteral(account.user, true) + " AND ID <> CONNECTION_ID()",
                           &rows, &diag))
      << diag.Describe();
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(killer.Execute("KILL " + rows[0][0].value_or("0"), &diag)) << diag.Describe();
  XidGenerator generator((std::random_device{}() & 0x0fffffffu) | 0x60000000u);
  Status started = (*rm)->Start(generator.Next().WithBranch(1), StartFlag::kNoFlags);
  EXPECT_EQ(started.code(), Code::kRmFail) << started.ToString();
  EXPECT_NE(started.message().find("XA START"), std::string::npos) << started.ToString();
  EXPECT_EQ(started.message().find("IN DOUBT"), std::string::npos) << started.ToString();
  EXPECT_EQ(started.message().find("in doubt"), std::string::npos) << started.ToString();
}

INSTANTIATE_TEST_SUITE_P(Dialects, OdbcCredentialsTest,
                         ::testing::Values(Dialect::kMariaDb, Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<Dialect>& dialect_info) {
                           return std::string(dialect_info.param == Dialect::kPostgres
                                                  ? "Postgres"
                                                  : "MariaDb");
                         });

INSTANTIATE_TEST_SUITE_P(MariaDb, OdbcMariaDbMessagesTest, ::testing::Values(Dialect::kMariaDb));

}  // namespace
}  // namespace xa::odbc
