#include "bench/lockhold/lock_probe.h"

#include <sql.h>
#include <sqlext.h>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <cstdlib>

#include "xa/mysql/mysql_resource_manager.h"
#include "xa/odbc/odbc_resource_manager.h"

namespace xa::bench {
namespace {

class MariaDbSession : public SqlSession {
 public:
  explicit MariaDbSession(std::unique_ptr<mysql::MySqlResourceManager> rm)
      : SqlSession(Database::kMariaDb), rm_(std::move(rm)) {}

  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) override {
    try {
      std::unique_ptr<sql::Statement> statement(rm_->connection().createStatement());
      std::vector<std::vector<std::string>> rows;
      if (!statement->execute(sql)) return rows;
      std::unique_ptr<sql::ResultSet> result(statement->getResultSet());
      const unsigned columns = result->getMetaData()->getColumnCount();
      while (result->next()) {
        std::vector<std::string> row;
        for (unsigned c = 1; c <= columns; ++c) row.push_back(result->getString(c));
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (const sql::SQLException& e) {
      return rm_->StatusFromException(e).WithContext(sql);
    }
  }

 private:
  std::unique_ptr<mysql::MySqlResourceManager> rm_;
};

class PostgresSession : public SqlSession {
 public:
  explicit PostgresSession(std::unique_ptr<odbc::OdbcResourceManager> rm)
      : SqlSession(Database::kPostgres), rm_(std::move(rm)) {}

  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) override {
    SQLHSTMT statement = SQL_NULL_HSTMT;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm_->connection(), &statement))) {
      return rm_->StatusFromDiagnostics(SQL_HANDLE_DBC, rm_->connection());
    }
    std::vector<std::vector<std::string>> rows;
    const SQLRETURN rc = SQLExecDirect(
        statement, reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.c_str())), SQL_NTS);
    if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
      Status failed = rm_->StatusFromDiagnostics(SQL_HANDLE_STMT, statement).WithContext(sql);
      SQLFreeHandle(SQL_HANDLE_STMT, statement);
      return failed;
    }
    SQLSMALLINT columns = 0;
    SQLNumResultCols(statement, &columns);
    while (columns > 0 && SQL_SUCCEEDED(SQLFetch(statement))) {
      std::vector<std::string> row;
      for (SQLSMALLINT c = 1; c <= columns; ++c) {
        char buffer[256];
        SQLLEN indicator = 0;
        SQLGetData(statement, c, SQL_C_CHAR, buffer, sizeof(buffer), &indicator);
        row.emplace_back(indicator == SQL_NULL_DATA ? "" : buffer);
      }
      rows.push_back(std::move(row));
    }
    SQLFreeHandle(SQL_HANDLE_STMT, statement);
    return rows;
  }

 private:
  std::unique_ptr<odbc::OdbcResourceManager> rm_;
};

Result<std::unique_ptr<SqlSession>> ConnectMariaDb(mysql::MySqlOptions options) {
  auto rm = mysql::MySqlResourceManager::Create(std::move(options));
  if (!rm.ok()) return rm.status();
  return std::unique_ptr<SqlSession>(new MariaDbSession(std::move(rm).value()));
}

Result<std::unique_ptr<SqlSession>> ConnectPostgres(odbc::OdbcOptions options) {
  auto rm = odbc::OdbcResourceManager::Create(std::move(options));
  if (!rm.ok()) return rm.status();
  return std::unique_ptr<SqlSession>(new PostgresSession(std::move(rm).value()));
}

Result<uint64_t> OneNumber(SqlSession& session, const std::string& sql) {
  auto rows = session.Query(sql);
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->front().empty()) {
    return Status(Code::kInternal, "no row from: " + sql);
  }
  return static_cast<uint64_t>(std::strtoull(rows->front().front().c_str(), nullptr, 10));
}

}  // namespace

const char* DatabaseName(Database database) {
  return database == Database::kMariaDb ? "MariaDB" : "PostgreSQL";
}

Result<std::unique_ptr<SqlSession>> SqlSession::Connect(Database database,
                                                        const bank::BankSettings& settings,
                                                        std::chrono::seconds statement_timeout) {
  if (database == Database::kMariaDb) {
    mysql::MySqlOptions options = settings.mariadb;
    options.rm_name = "lock-hold-probe";
    // libmariadb gives up on a silent server after its read timeout: a probe's wait is silent.
    options.read_timeout = statement_timeout + std::chrono::seconds(10);
    return ConnectMariaDb(std::move(options));
  }
  odbc::OdbcOptions options = settings.postgres;
  options.rm_name = "lock-hold-probe";
  return ConnectPostgres(std::move(options));
}

Result<std::unique_ptr<SqlSession>> SqlSession::ConnectObserver(
    Database database, const bank::BankSettings& settings) {
  if (database == Database::kPostgres) {
    return Connect(database, settings, std::chrono::seconds(10));
  }
  const char* socket = std::getenv("XA_TEST_MARIADB_SOCKET");
  const char* admin = std::getenv("XA_TEST_MARIADB_ADMIN_USER");
  if (socket == nullptr || admin == nullptr) {
    return Status(Code::kConfig,
                  "XA_TEST_MARIADB_SOCKET and XA_TEST_MARIADB_ADMIN_USER are not set: source the "
                  "env.sh that scripts/servers.sh start wrote");
  }
  mysql::MySqlOptions options = settings.mariadb;
  options.rm_name = "lock-hold-observer";
  options.unix_socket = socket;
  options.user = admin;
  options.password.clear();
  return ConnectMariaDb(std::move(options));
}

Result<std::unique_ptr<LockProbe>> LockProbe::Connect(Database database,
                                                      const bank::BankSettings& settings,
                                                      std::string table,
                                                      std::chrono::seconds max_wait) {
  auto session = SqlSession::Connect(database, settings, max_wait);
  if (!session.ok()) return session.status();
  const std::string seconds = std::to_string(max_wait.count());
  auto set = (*session)->Query(database == Database::kMariaDb
                                   ? "SET SESSION innodb_lock_wait_timeout = " + seconds
                                   : "SET lock_timeout = '" + seconds + "s'");
  if (!set.ok()) return set.status();
  auto id = OneNumber(**session, database == Database::kMariaDb ? "SELECT CONNECTION_ID()"
                                                                : "SELECT pg_backend_pid()");
  if (!id.ok()) return id.status();
  return std::unique_ptr<LockProbe>(
      new LockProbe(std::move(session).value(), std::move(table), *id));
}

Result<Clock::time_point> LockProbe::WaitForRow(int id) {
  // Autocommit: the probe's own lock ends with its statement, so it delays the next writer of
  // the row by one statement at most.
  auto rows = session_->Query("SELECT id FROM " + table_ + " WHERE id = " + std::to_string(id) +
                              " FOR UPDATE");
  const Clock::time_point granted = Clock::now();
  if (!rows.ok()) return rows.status();
  if (rows->size() != 1) {
    return Status(Code::kInval, "no row " + std::to_string(id) + " in " + table_ + " of " +
                                    DatabaseName(database()));
  }
  return granted;
}

Result<std::unique_ptr<LockWaitObserver>> LockWaitObserver::Connect(
    Database database, const bank::BankSettings& settings) {
  auto session = SqlSession::ConnectObserver(database, settings);
  if (!session.ok()) return session.status();
  return std::unique_ptr<LockWaitObserver>(new LockWaitObserver(std::move(session).value()));
}

Result<bool> LockWaitObserver::SessionWaitsForLock(uint64_t session_id) {
  const std::string id = std::to_string(session_id);
  auto waits = OneNumber(
      *session_,
      session_->database() == Database::kMariaDb
          ? "SELECT COUNT(*) FROM information_schema.innodb_trx t JOIN "
            "information_schema.innodb_lock_waits w ON w.requesting_trx_id = t.trx_id "
            "WHERE t.trx_mysql_thread_id = " + id + " AND t.trx_state = 'LOCK WAIT'"
          : "SELECT COUNT(*) FROM pg_locks WHERE pid = " + id + " AND NOT granted");
  if (!waits.ok()) return waits.status();
  return *waits > 0;
}

}  // namespace xa::bench
