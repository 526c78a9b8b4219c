#include "examples/bank/bank.h"

#include <sql.h>
#include <sqlext.h>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/postgres_dialect.h"

namespace xa::bank {
namespace {

Result<std::string> Env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    return Status(Code::kConfig, std::string("environment variable ") + name +
                                     " is not set: run `source build/servers/env.sh` after "
                                     "`bash scripts/servers.sh start`");
  }
  return std::string(value);
}

Result<std::string> Secret(const char* variable) {
  auto path = Env(variable);
  if (!path.ok()) return path.status();
  std::ifstream in(*path);
  if (!in) return Status(Code::kConfig, "cannot read the password file " + *path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// Runs a statement on a plain ODBC connection and returns its rows as text.
Result<std::vector<std::vector<std::string>>> OdbcQuery(odbc::OdbcResourceManager& rm,
                                                        const std::string& sql) {
  SQLHSTMT stmt = SQL_NULL_HSTMT;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm.connection(), &stmt))) {
    return rm.StatusFromDiagnostics(SQL_HANDLE_DBC, rm.connection());
  }
  std::vector<std::vector<std::string>> rows;
  SQLRETURN rc = SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.c_str())),
                               SQL_NTS);
  if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) {
    Status failed = rm.StatusFromDiagnostics(SQL_HANDLE_STMT, stmt);
    SQLFreeHandle(SQL_HANDLE_STMT, stmt);
    return failed;
  }
  SQLSMALLINT columns = 0;
  SQLNumResultCols(stmt, &columns);
  while (columns > 0 && SQL_SUCCEEDED(SQLFetch(stmt))) {
    std::vector<std::string> row;
    for (SQLSMALLINT c = 1; c <= columns; ++c) {
      char buffer[512];
      SQLLEN indicator = 0;
      SQLGetData(stmt, c, SQL_C_CHAR, buffer, sizeof(buffer), &indicator);
      row.emplace_back(indicator == SQL_NULL_DATA ? "" : buffer);
    }
    rows.push_back(std::move(row));
  }
  SQLFreeHandle(SQL_HANDLE_STMT, stmt);
  return rows;
}

Status OdbcRun(odbc::OdbcResourceManager& rm, const std::string& sql) {
  auto rows = OdbcQuery(rm, sql);
  return rows.ok() ? Status::Ok() : rows.status();
}

Status MySqlRun(mysql::MySqlResourceManager& rm, const std::string& sql) {
  try {
    std::unique_ptr<sql::Statement> st(rm.connection().createStatement());
    st->execute(sql);
    return Status::Ok();
  } catch (const sql::SQLException& e) {
    return rm.StatusFromException(e).WithContext(sql);
  }
}

Result<std::vector<std::vector<std::string>>> MySqlQuery(mysql::MySqlResourceManager& rm,
                                                         const std::string& sql) {
  try {
    std::unique_ptr<sql::Statement> st(rm.connection().createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery(sql));
    std::vector<std::vector<std::string>> rows;
    unsigned columns = rs->getMetaData()->getColumnCount();
    while (rs->next()) {
      std::vector<std::string> row;
      for (unsigned c = 1; c <= columns; ++c) row.push_back(rs->getString(c));
      rows.push_back(std::move(row));
    }
    return rows;
  } catch (const sql::SQLException& e) {
    return rm.StatusFromException(e).WithContext(sql);
  }
}

int64_t ToInt(const std::string& text) { return text.empty() ? 0 : std::atoll(text.c_str()); }

}  // namespace

std::string GtridHex(const Xid& xid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : xid.gtrid()) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

Result<BankSettings> SettingsFromEnvironment() {
  BankSettings s;
  auto host = Env("XA_TEST_MARIADB_HOST");
  auto port = Env("XA_TEST_MARIADB_PORT");
  auto user = Env("XA_TEST_MARIADB_USER");
  auto db = Env("XA_TEST_MARIADB_DATABASE");
  auto password = Secret("XA_TEST_MARIADB_PASSWORD_FILE");
  auto dsn = Env("XA_TEST_ODBC_PG_DSN");
  auto pg_user = Env("XA_TEST_PG_USER");
  auto pg_password = Secret("XA_TEST_PG_PASSWORD_FILE");
  for (const Status* st : {&host.status(), &port.status(), &user.status(), &db.status(),
                           &password.status(), &dsn.status(), &pg_user.status(),
                           &pg_password.status()}) {
    if (!st->ok()) return *st;
  }
  s.mariadb.rm_name = "bank-mariadb";
  s.mariadb.host = *host;
  s.mariadb.port = std::atoi(port->c_str());
  s.mariadb.user = *user;
  s.mariadb.password = *password;
  s.mariadb.database = *db;
  s.postgres.rm_name = "bank-postgres";
  s.postgres.dsn = *dsn;
  s.postgres.user = *pg_user;
  s.postgres.password = *pg_password;
  s.postgres.dialect = odbc::Dialect::kPostgres;
  return s;
}

Result<std::unique_ptr<Bank>> Bank::Connect(BankSettings settings) {
  std::unique_ptr<Bank> bank(new Bank(std::move(settings)));
  auto teller = bank->NewTeller();
  if (!teller.ok()) return teller.status();
  bank->admin_ = std::move(teller).value();
  // DDL must fail rather than wait for a year behind a prepared branch's metadata lock.
  XA_RETURN_IF_ERROR(MySqlRun(*bank->admin_.mariadb, "SET SESSION lock_wait_timeout = 10"));
  XA_RETURN_IF_ERROR(OdbcRun(*bank->admin_.postgres, "SET lock_timeout = '10s'"));
  return bank;
}

Result<Teller> Bank::NewTeller() const {
  Teller teller;
  auto mariadb = mysql::MySqlResourceManager::Create(settings_.mariadb);
  if (!mariadb.ok()) return mariadb.status();
  auto postgres = odbc::OdbcResourceManager::Create(settings_.postgres);
  if (!postgres.ok()) return postgres.status();
  teller.mariadb = std::move(mariadb).value();
  teller.postgres = std::move(postgres).value();
  return teller;
}

void Bank::RegisterFactories(TransactionManagerOptions& options) const {
  mysql::MySqlOptions mariadb = settings_.mariadb;
  options.resource_managers[mariadb.rm_name] =
      [mariadb]() -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = mysql::MySqlResourceManager::Create(mariadb);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(rm).value());
  };
  odbc::OdbcOptions postgres = settings_.postgres;
  options.resource_managers[postgres.rm_name] =
      [postgres]() -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = odbc::OdbcResourceManager::Create(postgres);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(rm).value());
  };
}

Status Bank::UseMarkerOn(const std::string& database, TransactionManagerOptions& options) const {
  if (database == "mariadb") {
    options.marker_commit.rm = settings_.mariadb.rm_name;
  } else if (database == "postgres") {
    options.marker_commit.rm = settings_.postgres.rm_name;
  } else {
    return Status(Code::kInval, "the marker goes to 'mariadb' or 'postgres', not '" + database + "'");
  }
  options.marker_commit.table = settings_.MarkerTable();
  return Status::Ok();
}

Status Bank::Reset() {
  const std::string& p = settings_.table_prefix;
  std::string seed;
  for (int i = 1; i <= settings_.accounts; ++i) {
    seed += (i > 1 ? "," : "") + std::string("(") + std::to_string(i) + "," +
            std::to_string(settings_.initial_balance) + ")";
  }
  const std::string marker = settings_.MarkerTable();
  Result<std::string> mariadb_marker = internal::mariadb::CreateMarkerTableSql(marker);
  if (!mariadb_marker.ok()) return mariadb_marker.status();
  Result<std::vector<std::string>> postgres_marker = internal::postgres::CreateMarkerTableSql(marker);
  if (!postgres_marker.ok()) return postgres_marker.status();
  for (const std::string& sql :
       {"DROP TABLE IF EXISTS " + p + "_accounts, " + p + "_transfers, " + marker,
        *mariadb_marker,
        "CREATE TABLE " + p + "_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
            "CONSTRAINT " + p + "_no_overdraft CHECK (balance >= 0)) ENGINE=InnoDB",
        "CREATE TABLE " + p + "_transfers (gtrid VARCHAR(64) PRIMARY KEY, amount BIGINT NOT "
            "NULL) ENGINE=InnoDB",
        "INSERT INTO " + p + "_accounts VALUES " + seed}) {
    XA_RETURN_IF_ERROR(MySqlRun(*admin_.mariadb, sql));
  }
  std::vector<std::string> postgres_setup = {
      "DROP TABLE IF EXISTS " + p + "_accounts, " + p + "_transfers, " + marker};
  postgres_setup.insert(postgres_setup.end(), postgres_marker->begin(), postgres_marker->end());
  for (const std::string& sql :
       {"CREATE TABLE " + p + "_accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL, "
            "CONSTRAINT " + p + "_no_overdraft CHECK (balance >= 0))",
        "CREATE TABLE " + p + "_transfers (gtrid VARCHAR(64) PRIMARY KEY, amount BIGINT NOT "
            "NULL)",
        "INSERT INTO " + p + "_accounts VALUES " + seed}) {
    postgres_setup.push_back(sql);
  }
  for (const std::string& sql : postgres_setup) {
    XA_RETURN_IF_ERROR(OdbcRun(*admin_.postgres, sql));
  }
  return Status::Ok();
}

Result<Outcome> Bank::Transfer(TransactionManager& manager, Teller& teller, int mariadb_account,
                               int pg_account, int64_t amount, Xid* xid,
                               Protocol protocol) const {
  auto txn = manager.Begin(protocol);
  if (!txn.ok()) return txn.status();
  if (xid != nullptr) *xid = txn->xid();
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.mariadb));
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.postgres));
  const std::string& p = settings_.table_prefix;
  const std::string marker = GtridHex(txn->xid());
  std::string amount_text = std::to_string(amount);
  try {
    std::unique_ptr<sql::Statement> st(teller.mariadb->connection().createStatement());
    int changed = st->executeUpdate("UPDATE " + p + "_accounts SET balance = balance - (" +
                                    amount_text + ") WHERE id = " +
                                    std::to_string(mariadb_account));
    if (changed != 1) {
      Status(txn->Rollback()).IgnoreError();
      return Status(Code::kInval, "no MariaDB account " + std::to_string(mariadb_account));
    }
    st->executeUpdate("INSERT INTO " + p + "_transfers VALUES ('" + marker + "', " +
                      amount_text + ")");
  } catch (const sql::SQLException& e) {
    Status failed = teller.mariadb->StatusFromException(e);
    Status(txn->Rollback()).IgnoreError();
    if (failed.IsRollback() || failed.code() == Code::kRmError) return Outcome::kRolledBack;
    return failed;
  }
  auto changed = teller.postgres->Execute("UPDATE " + p + "_accounts SET balance = balance + (" +
                                          amount_text + ") WHERE id = " +
                                          std::to_string(pg_account));
  if (changed.ok() && *changed != 1) {
    Status(txn->Rollback()).IgnoreError();
    return Status(Code::kInval, "no PostgreSQL account " + std::to_string(pg_account));
  }
  if (changed.ok()) {
    changed = teller.postgres->Execute("INSERT INTO " + p + "_transfers VALUES ('" + marker +
                                       "', " + amount_text + ")");
  }
  if (!changed.ok()) {
    Status(txn->Rollback()).IgnoreError();
    if (changed.status().IsRollback() || changed.status().code() == Code::kRmError) {
      return Outcome::kRolledBack;  // e.g. the overdraft CHECK, a deadlock
    }
    return changed.status();
  }
  return txn->Commit();
}

Result<BankSnapshot> Bank::Snapshot(uint32_t node_id) const {
  BankSnapshot snapshot;
  const std::string& p = settings_.table_prefix;
  const std::string totals =
      "SELECT COALESCE(SUM(balance), 0), COALESCE(SUM(CASE WHEN balance < 0 THEN 1 ELSE 0 END), "
      "0) FROM " + p + "_accounts";
  auto m = MySqlQuery(*admin_.mariadb, totals);
  if (!m.ok()) return m.status();
  auto g = OdbcQuery(*admin_.postgres, totals);
  if (!g.ok()) return g.status();
  snapshot.mariadb_total = ToInt((*m)[0][0]);
  snapshot.postgres_total = ToInt((*g)[0][0]);
  snapshot.any_negative = ToInt((*m)[0][1]) > 0 || ToInt((*g)[0][1]) > 0;
  auto mt = MySqlQuery(*admin_.mariadb, "SELECT gtrid FROM " + p + "_transfers");
  if (!mt.ok()) return mt.status();
  for (auto& row : *mt) snapshot.mariadb_transfers.insert(row[0]);
  auto gt = OdbcQuery(*admin_.postgres, "SELECT gtrid FROM " + p + "_transfers");
  if (!gt.ok()) return gt.status();
  for (auto& row : *gt) snapshot.postgres_transfers.insert(row[0]);
  const std::string count_markers = "SELECT COUNT(*) FROM " + settings_.MarkerTable();
  auto mm = MySqlQuery(*admin_.mariadb, count_markers);
  if (!mm.ok()) return mm.status();
  auto gm = OdbcQuery(*admin_.postgres, count_markers);
  if (!gm.ok()) return gm.status();
  snapshot.marker_rows = static_cast<size_t>(ToInt((*mm)[0][0]) + ToInt((*gm)[0][0]));
  for (ResourceManager* rm : {static_cast<ResourceManager*>(admin_.mariadb.get()),
                              static_cast<ResourceManager*>(admin_.postgres.get())}) {
    auto scan = rm->Recover();
    if (!scan.ok()) return scan.status();
    for (const Xid& xid : scan->OwnedBy(node_id)) snapshot.prepared_ours.push_back(xid);
    snapshot.prepared_foreign += scan->NotOwnedBy(node_id).size() + scan->unparsed.size();
  }
  return snapshot;
}

Status Bank::CheckInvariants(const BankSnapshot& s,
                             const std::set<std::string>& acknowledged) const {
  std::vector<std::string> violations;
  if (s.total() != settings_.Total()) {
    violations.push_back("I2 total is " + std::to_string(s.total()) + " (MariaDB " +
                         std::to_string(s.mariadb_total) + " + PostgreSQL " +
                         std::to_string(s.postgres_total) + "), expected " +
                         std::to_string(settings_.Total()));
  }
  if (s.any_negative) violations.push_back("I3 a balance is negative");
  for (const std::string& g : s.mariadb_transfers) {
    if (s.postgres_transfers.count(g) == 0) {
      violations.push_back("I1 transfer " + g + " is in MariaDB only");
    }
  }
  for (const std::string& g : s.postgres_transfers) {
    if (s.mariadb_transfers.count(g) == 0) {
      violations.push_back("I1 transfer " + g + " is in PostgreSQL only");
    }
  }
  for (const std::string& g : acknowledged) {
    if (s.mariadb_transfers.count(g) == 0 || s.postgres_transfers.count(g) == 0) {
      violations.push_back("I4 acknowledged transfer " + g + " is missing");
    }
  }
  for (const Xid& xid : s.prepared_ours) {
    violations.push_back("I5 branch " + xid.ToString() + " is still prepared");
  }
  if (violations.empty()) return Status::Ok();
  std::string message = std::to_string(violations.size()) + " invariant violation(s):";
  for (size_t i = 0; i < violations.size() && i < 20; ++i) message += "\n  " + violations[i];
  return Status(Code::kInternal, message);
}

}  // namespace xa::bank
