#include "tests/tm/tm_db_util.h"

#include <sql.h>
#include <sqlext.h>
#include <stdlib.h>

#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <cppconn/connection.h>

#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "tests/testutil/db_env.h"

namespace xa::test {
namespace {

XidGenerator& AdminXids() {
  static XidGenerator* generator = new XidGenerator(0x7fff0001);
  return *generator;
}

Status MariaDbRun(mysql::MySqlResourceManager& rm, const std::string& statement) {
  XA_RETURN_IF_ERROR(rm.Open());
  try {
    std::unique_ptr<sql::Statement> st(rm.connection().createStatement());
    st->execute(sql::SQLString(statement));
    return Status::Ok();
  } catch (const sql::SQLException& e) {
    return rm.StatusFromException(e).WithContext(statement);
  }
}

Result<int64_t> MariaDbQuery(mysql::MySqlResourceManager& rm, const std::string& query) {
  XA_RETURN_IF_ERROR(rm.Open());
  try {
    std::unique_ptr<sql::Statement> st(rm.connection().createStatement());
    std::unique_ptr<sql::ResultSet> rows(st->executeQuery(sql::SQLString(query)));
    if (!rows->next() || rows->isNull(1)) {
      return Status(Code::kInternal, "no value from: " + query);
    }
    return static_cast<int64_t>(rows->getInt64(1));
  } catch (const sql::SQLException& e) {
    return rm.StatusFromException(e).WithContext(query);
  }
}

Result<int64_t> OdbcQueryInt(odbc::OdbcResourceManager& rm, const std::string& query) {
  SQLHSTMT stmt = SQL_NULL_HSTMT;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm.connection(), &stmt))) {
    return rm.StatusFromDiagnostics(SQL_HANDLE_DBC, rm.connection());
  }
  std::string text = query;
  Result<int64_t> out = Status(Code::kInternal, "no value from: " + query);
  if (!SQL_SUCCEEDED(SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(text.data()), SQL_NTS))) {
    out = rm.StatusFromDiagnostics(SQL_HANDLE_STMT, stmt).WithContext(query);
  } else if (SQL_SUCCEEDED(SQLFetch(stmt))) {
    SQLBIGINT value = 0;
    SQLLEN indicator = 0;
    if (SQL_SUCCEEDED(SQLGetData(stmt, 1, SQL_C_SBIGINT, &value, sizeof value, &indicator)) &&
        indicator != SQL_NULL_DATA) {
      out = static_cast<int64_t>(value);
    }
  }
  SQLFreeHandle(SQL_HANDLE_STMT, stmt);
  return out;
}

// Runs `work` inside a one-phase branch of its own on the PostgreSQL session.
template <typename Work>
Status InPostgresBranch(odbc::OdbcResourceManager& rm, Work&& work) {
  XA_RETURN_IF_ERROR(rm.Open());
  Xid xid = AdminXids().Next().WithBranch(0);
  XA_RETURN_IF_ERROR(rm.Start(xid, StartFlag::kNoFlags));
  Status s = work();
  if (!s.ok()) {
    rm.End(xid, EndFlag::kFail).IgnoreError();
    rm.Rollback(xid).IgnoreError();
    return s;
  }
  XA_RETURN_IF_ERROR(rm.End(xid, EndFlag::kSuccess));
  return rm.Commit(xid, CommitMode::kOnePhase);
}

}  // namespace

mysql::MySqlOptions MariaDbOptions(bool read_only_optimization) {
  ServerAccount account = MariaDbAccount();
  mysql::MySqlOptions options;
  options.rm_name = kMariaDbRm;
  options.host = account.host;
  options.port = account.port;
  options.user = account.user;
  options.password = account.password;
  options.database = account.database;
  options.read_only_optimization = read_only_optimization;
  // Without the probe, XA END can travel with XA PREPARE (the configuration for workloads whose
  // branches always write, as the bench and the stress test run).
  options.batch_xa_end = !read_only_optimization;
  return options;
}

odbc::OdbcOptions PostgresOptions(bool read_only_optimization) {
  ServerAccount account = PostgresAccount();
  odbc::OdbcOptions options;
  options.rm_name = kPostgresRm;
  options.dsn = OdbcPostgresDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = odbc::Dialect::kPostgres;
  options.read_only_optimization = read_only_optimization;
  return options;
}

Result<std::unique_ptr<mysql::MySqlResourceManager>> OpenMariaDb(bool read_only_optimization) {
  return mysql::MySqlResourceManager::Create(MariaDbOptions(read_only_optimization));
}

Result<std::unique_ptr<odbc::OdbcResourceManager>> OpenPostgres(bool read_only_optimization) {
  return odbc::OdbcResourceManager::Create(PostgresOptions(read_only_optimization));
}

void RegisterDbFactories(TransactionManagerOptions& options, bool read_only_optimization) {
  mysql::MySqlOptions my = MariaDbOptions(read_only_optimization);
  odbc::OdbcOptions pg = PostgresOptions(read_only_optimization);
  options.resource_managers[kMariaDbRm] = [my]() -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = mysql::MySqlResourceManager::Create(my);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(*rm));
  };
  options.resource_managers[kPostgresRm] = [pg]() -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = odbc::OdbcResourceManager::Create(pg);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(*rm));
  };
}

Result<DbTeller> OpenTeller(bool read_only_optimization) {
  DbTeller teller;
  auto my = OpenMariaDb(read_only_optimization);
  if (!my.ok()) return my.status();
  auto pg = OpenPostgres(read_only_optimization);
  if (!pg.ok()) return pg.status();
  teller.mariadb = std::move(*my);
  teller.postgres = std::move(*pg);
  return teller;
}

Status ResetAccounts(DbTeller& admin, const std::string& table, int accounts, int64_t balance) {
  XA_RETURN_IF_ERROR(MariaDbRun(*admin.mariadb, "DROP TABLE IF EXISTS " + table));
  XA_RETURN_IF_ERROR(MariaDbRun(*admin.mariadb,
                                "CREATE TABLE " + table +
                                    " (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
                                    "CHECK (balance >= 0)) ENGINE=InnoDB"));
  std::string values;
  for (int i = 1; i <= accounts; ++i) {
    if (!values.empty()) values += ",";
    values += "(" + std::to_string(i) + "," + std::to_string(balance) + ")";
  }
  XA_RETURN_IF_ERROR(MariaDbRun(*admin.mariadb, "INSERT INTO " + table + " VALUES " + values));
  odbc::OdbcResourceManager& pg = *admin.postgres;
  return InPostgresBranch(pg, [&]() -> Status {
    for (const std::string& statement :
         {"DROP TABLE IF EXISTS " + table,
          "CREATE TABLE " + table +
              " (id INT PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))",
          "INSERT INTO " + table + " VALUES " + values}) {
      Result<int64_t> r = pg.Execute(statement);
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  });
}

Status ResetMarkerTables(DbTeller& admin, const std::string& table) {
  Result<std::string> mariadb_create = internal::mariadb::CreateMarkerTableSql(table);
  if (!mariadb_create.ok()) return mariadb_create.status();
  Result<std::vector<std::string>> postgres_create = internal::postgres::CreateMarkerTableSql(table);
  if (!postgres_create.ok()) return postgres_create.status();
  XA_RETURN_IF_ERROR(MariaDbRun(*admin.mariadb, "DROP TABLE IF EXISTS " + table));
  XA_RETURN_IF_ERROR(MariaDbRun(*admin.mariadb, *mariadb_create));
  std::vector<std::string> postgres_setup = {"DROP TABLE IF EXISTS " + table};
  postgres_setup.insert(postgres_setup.end(), postgres_create->begin(), postgres_create->end());
  odbc::OdbcResourceManager& pg = *admin.postgres;
  return InPostgresBranch(pg, [&]() -> Status {
    for (const std::string& statement : postgres_setup) {
      Result<int64_t> r = pg.Execute(statement);
      if (!r.ok()) return r.status();
    }
    return Status::Ok();
  });
}

Result<int64_t> MariaDbTotal(DbTeller& admin, const std::string& table) {
  return MariaDbQuery(*admin.mariadb, "SELECT COALESCE(SUM(balance), 0) FROM " + table);
}

Result<int64_t> MariaDbBalance(DbTeller& admin, const std::string& table, int id) {
  return MariaDbQuery(*admin.mariadb,
                      "SELECT balance FROM " + table + " WHERE id = " + std::to_string(id));
}

Result<int64_t> PostgresTotal(DbTeller& admin, const std::string& table) {
  Result<int64_t> out = Status(Code::kInternal, "not read");
  Status s = InPostgresBranch(*admin.postgres, [&]() -> Status {
    out = OdbcQueryInt(*admin.postgres, "SELECT COALESCE(SUM(balance), 0) FROM " + table);
    return out.status();
  });
  if (!s.ok()) return s;
  return out;
}

Result<int64_t> PostgresBalance(DbTeller& admin, const std::string& table, int id) {
  Result<int64_t> out = Status(Code::kInternal, "not read");
  Status s = InPostgresBranch(*admin.postgres, [&]() -> Status {
    out = OdbcQueryInt(*admin.postgres,
                       "SELECT balance FROM " + table + " WHERE id = " + std::to_string(id));
    return out.status();
  });
  if (!s.ok()) return s;
  return out;
}

Status TransferWork(DbTeller& teller, const std::string& table, int mariadb_account,
                    int pg_account, int64_t amount) {
  try {
    std::unique_ptr<sql::Statement> st(teller.mariadb->connection().createStatement());
    int changed = st->executeUpdate(sql::SQLString(
        "UPDATE " + table + " SET balance = balance - (" + std::to_string(amount) +
        ") WHERE id = " + std::to_string(mariadb_account)));
    if (changed != 1) {
      return Status(Code::kInternal, "no MariaDB account " + std::to_string(mariadb_account));
    }
  } catch (const sql::SQLException& e) {
    return teller.mariadb->StatusFromException(e);
  }
  Result<int64_t> changed = teller.postgres->Execute(
      "UPDATE " + table + " SET balance = balance + (" + std::to_string(amount) +
      ") WHERE id = " + std::to_string(pg_account));
  if (!changed.ok()) return changed.status();
  if (*changed != 1) {
    return Status(Code::kInternal, "no PostgreSQL account " + std::to_string(pg_account));
  }
  return Status::Ok();
}

Result<Outcome> Transfer(TransactionManager& manager, DbTeller& teller, const std::string& table,
                         int mariadb_account, int pg_account, int64_t amount, Xid* xid,
                         Protocol protocol) {
  Result<Transaction> txn = manager.Begin(protocol);
  if (!txn.ok()) return txn.status();
  if (xid != nullptr) *xid = txn->xid();
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.mariadb));
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.postgres));
  Status work = TransferWork(teller, table, mariadb_account, pg_account, amount);
  // A failed statement (a CHECK violation) rolls back only itself: the transaction must not
  // commit the rest.
  if (!work.ok()) XA_RETURN_IF_ERROR(txn->SetRollbackOnly(work));
  return txn->Commit();
}

Result<std::vector<Xid>> PreparedBranchesOf(DbTeller& admin, uint32_t node_id) {
  std::vector<Xid> out;
  Result<RecoverScan> my = admin.mariadb->Recover();
  if (!my.ok()) return my.status();
  Result<RecoverScan> pg = admin.postgres->Recover();
  if (!pg.ok()) return pg.status();
  for (const Xid& x : my->OwnedBy(node_id)) out.push_back(x);
  for (const Xid& x : pg->OwnedBy(node_id)) out.push_back(x);
  return out;
}

std::string TempLogDir(const std::string& tag) {
  std::string pattern = "/tmp/xa-" + tag + "-XXXXXX";
  char* dir = mkdtemp(pattern.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

}  // namespace xa::test
