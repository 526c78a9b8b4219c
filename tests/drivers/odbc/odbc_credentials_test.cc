// Credentials with the connection string's own characters, on the real servers through the real
// drivers: a user whose name holds ';', '{', '}', '=', quotes or backslashes, with a password
// that holds those and '+' and '%' (which psqlODBC URL-decodes in an unbraced PWD), logs in as
// exactly that user; a hostile name that would add attributes or libpq options if it were not
// quoted reaches the server whole, as a user name that does not exist, and logs in nobody.

#include <sql.h>
#include <sqlext.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "drivers/odbc/src/odbc_session.h"
#include "testutil/db_env.h"
#include "xa/odbc/odbc_resource_manager.h"

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
        "x' user='" + account.user, account.user + "};UID=" + account.user}) {
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

INSTANTIATE_TEST_SUITE_P(Dialects, OdbcCredentialsTest,
                         ::testing::Values(Dialect::kMariaDb, Dialect::kPostgres),
                         [](const ::testing::TestParamInfo<Dialect>& dialect_info) {
                           return std::string(dialect_info.param == Dialect::kPostgres
                                                  ? "Postgres"
                                                  : "MariaDb");
                         });

}  // namespace
}  // namespace xa::odbc
