// tcc-shop-service: one participant service of the TCC shop (docs/tcc.md, "The shop example"),
// a process of its own with its own database, reached over HTTP/JSON as xa's HTTP participants
// call it (drivers/http). Every request runs in one local transaction behind the participant
// barrier (xa/tcc_barrier.h), so repeats, a Cancel before its Try and a Try after its Cancel are
// handled by the barrier, not by the business code.
//
//   tcc-shop-service --role order|funds|points --listen 127.0.0.1:PORT [--prefix P]
//                    [--delay-try-ms MS] [--die-after try|confirm|cancel] [--reset]
//
//   order   MariaDB (MySQL Connector/C++): <P>_orders(id, status): Try inserts a 'pending'
//           order, Confirm confirms it, Cancel deletes it.
//   funds   PostgreSQL (unixODBC, psqlODBC): <P>_funds(account, balance, frozen): Try freezes
//           the amount (refused, 409, without the funds), Confirm spends it, Cancel releases it.
//   points  MariaDB: <P>_points(account, points, pending): Try adds pending points, Confirm
//           grants them, Cancel drops them.
//
// POST /tcc/try, /tcc/confirm, /tcc/cancel with {"global_id","branch_id","payload",...}; the
// payload is JSON: {"account":1,"amount":10,"points":1}. Answers: 200 done, 409 refused (a Try
// without funds, or a Try after its Cancel), 503 failed (the database; the coordinator calls
// again), 400 for a body that is not the coordinator's. --delay-try-ms holds every Try back that
// long before it enters the barrier (a Try late in the network, for the anomaly tests).
// --die-after kills the service (SIGKILL) right after the first request of that operation has
// committed its local transaction, before it answers: the crash tests restart it on the same
// address and check that the coordinator's repeat finds the work done.
// --reset (re)creates the role's tables (funds: account 1 with 1000000) and exits.
// Database settings come from the environment of scripts/servers.sh (as examples/bank).

#include <sql.h>
#include <sqlext.h>

#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.h"
#include "src/http/http_server.h"
#include "xa/mysql/tcc_barrier.h"
#include "xa/odbc/tcc_barrier.h"
#include "xa/tcc_barrier.h"

namespace {

xa::bank::BankSettings g_settings;
std::string g_prefix = "shop";
std::string g_role;

// One local transaction's connection, for either database.
class LocalTransaction {
 public:
  virtual ~LocalTransaction() = default;
  virtual xa::Result<xa::BarrierVerdict> Enter(const xa::BarrierKey& key, xa::BarrierOp op) = 0;
  // Runs an UPDATE/INSERT/DELETE; the rows it changed, or -1 on error (*error says why).
  virtual long Execute(const std::string& sql, std::string* error) = 0;
  virtual bool Commit() = 0;
  virtual void Rollback() = 0;
};

xa::BarrierOptions Barrier() {
  xa::BarrierOptions options;
  options.table = g_prefix + "_" + g_role + "_barrier";
  return options;
}

class MariaDbTransaction final : public LocalTransaction {
 public:
  // Requests arrive on the server's threads at once: connect through the driver's lock.
  MariaDbTransaction() {
    auto connection = xa::mysql::OpenLocalConnection(g_settings.mariadb);
    if (!connection.ok()) throw std::runtime_error(connection.status().ToString());
    connection_ = std::move(connection).value();
  }
  xa::Result<xa::BarrierVerdict> Enter(const xa::BarrierKey& key, xa::BarrierOp op) override {
    return xa::mysql::EnterBarrier(*connection_, key, op, Barrier());
  }
  long Execute(const std::string& statement, std::string* error) override {
    try {
      std::unique_ptr<sql::Statement> s(connection_->createStatement());
      return s->executeUpdate(sql::SQLString(statement));
    } catch (const sql::SQLException& e) {
      *error = e.what();
      return -1;
    }
  }
  bool Commit() override {
    try {
      connection_->commit();
      return true;
    } catch (const sql::SQLException&) {
      return false;
    }
  }
  void Rollback() override {
    try {
      connection_->rollback();
    } catch (const sql::SQLException&) {
    }
  }
  sql::Connection& connection() { return *connection_; }

 private:
  std::unique_ptr<sql::Connection> connection_;
};

class PostgresTransaction final : public LocalTransaction {
 public:
  PostgresTransaction() {
    SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env_);
    SQLSetEnvAttr(env_, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
    SQLAllocHandle(SQL_HANDLE_DBC, env_, &dbc_);
    const xa::odbc::OdbcOptions& o = g_settings.postgres;
    std::string connect = "DSN=" + o.dsn + ";UID=" + o.user + ";PWD=" + o.password;
    SQLRETURN rc = SQLDriverConnect(dbc_, nullptr,
                                    reinterpret_cast<SQLCHAR*>(connect.data()),
                                    static_cast<SQLSMALLINT>(connect.size()), nullptr, 0, nullptr,
                                    SQL_DRIVER_NOPROMPT);
    if (!SQL_SUCCEEDED(rc)) throw std::runtime_error("cannot connect to PostgreSQL (DSN " + o.dsn + ")");
    SQLSetConnectAttr(dbc_, SQL_ATTR_AUTOCOMMIT, reinterpret_cast<SQLPOINTER>(SQL_AUTOCOMMIT_OFF), 0);
  }
  ~PostgresTransaction() override {
    SQLDisconnect(dbc_);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    SQLFreeHandle(SQL_HANDLE_ENV, env_);
  }
  xa::Result<xa::BarrierVerdict> Enter(const xa::BarrierKey& key, xa::BarrierOp op) override {
    return xa::odbc::EnterBarrier(dbc_, xa::odbc::Dialect::kPostgres, key, op, Barrier());
  }
  long Execute(const std::string& statement, std::string* error) override {
    SQLHSTMT st = SQL_NULL_HSTMT;
    SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &st);
    std::string text = statement;
    SQLRETURN rc = SQLExecDirect(st, reinterpret_cast<SQLCHAR*>(text.data()), SQL_NTS);
    SQLLEN rows = -1;
    if (SQL_SUCCEEDED(rc) || rc == SQL_NO_DATA) {
      SQLRowCount(st, &rows);
      if (rows < 0) rows = 0;
    } else {
      SQLCHAR state[6] = {0}, message[512] = {0};
      SQLINTEGER native = 0;
      SQLSMALLINT length = 0;
      SQLGetDiagRec(SQL_HANDLE_STMT, st, 1, state, &native, message, sizeof(message), &length);
      *error = std::string(reinterpret_cast<char*>(state)) + ": " +
               reinterpret_cast<char*>(message);
    }
    SQLFreeHandle(SQL_HANDLE_STMT, st);
    return static_cast<long>(rows);
  }
  bool Commit() override { return SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, dbc_, SQL_COMMIT)); }
  void Rollback() override { SQLEndTran(SQL_HANDLE_DBC, dbc_, SQL_ROLLBACK); }
  SQLHDBC dbc() { return dbc_; }

 private:
  SQLHENV env_ = SQL_NULL_HENV;
  SQLHDBC dbc_ = SQL_NULL_HDBC;
};

std::unique_ptr<LocalTransaction> Open() {
  if (g_role == "funds") return std::make_unique<PostgresTransaction>();
  return std::make_unique<MariaDbTransaction>();
}

// A pool of open connections, one per request in progress.
std::mutex g_pool_mu;
std::vector<std::unique_ptr<LocalTransaction>> g_pool;

std::unique_ptr<LocalTransaction> Take() {
  {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    if (!g_pool.empty()) {
      auto t = std::move(g_pool.back());
      g_pool.pop_back();
      return t;
    }
  }
  return Open();
}

void Give(std::unique_ptr<LocalTransaction> t) {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  g_pool.push_back(std::move(t));
}

// The business work of `op` for this role; false when a Try cannot reserve.
bool Work(LocalTransaction& t, xa::BarrierOp op, const std::string& gid, long account,
          long amount, long points, std::string* error) {
  const std::string p = g_prefix;
  const std::string a = std::to_string(account);
  std::string statement;
  if (g_role == "order") {
    statement = op == xa::BarrierOp::kTry
                    ? "INSERT INTO " + p + "_orders (id, status) VALUES ('" + gid + "', 'pending')"
                : op == xa::BarrierOp::kConfirm
                    ? "UPDATE " + p + "_orders SET status = 'confirmed' WHERE id = '" + gid + "'"
                    : "DELETE FROM " + p + "_orders WHERE id = '" + gid + "'";
  } else if (g_role == "funds") {
    const std::string n = std::to_string(amount);
    statement = op == xa::BarrierOp::kTry
                    ? "UPDATE " + p + "_funds SET balance = balance - " + n + ", frozen = frozen + " +
                          n + " WHERE account = " + a + " AND balance >= " + n
                : op == xa::BarrierOp::kConfirm
                    ? "UPDATE " + p + "_funds SET frozen = frozen - " + n + " WHERE account = " + a
                    : "UPDATE " + p + "_funds SET balance = balance + " + n +
                          ", frozen = frozen - " + n + " WHERE account = " + a;
  } else {
    const std::string n = std::to_string(points);
    statement = op == xa::BarrierOp::kTry
                    ? "UPDATE " + p + "_points SET pending = pending + " + n + " WHERE account = " + a
                : op == xa::BarrierOp::kConfirm
                    ? "UPDATE " + p + "_points SET pending = pending - " + n + ", points = points + " +
                          n + " WHERE account = " + a
                    : "UPDATE " + p + "_points SET pending = pending - " + n + " WHERE account = " + a;
  }
  long rows = t.Execute(statement, error);
  if (rows < 0) throw std::runtime_error(*error);
  return !(op == xa::BarrierOp::kTry && g_role == "funds" && rows == 0);
}

xa::http::HttpResponse Answer(int status, std::string text) {
  return xa::http::HttpResponse{status, "text/plain; charset=utf-8", std::move(text) + "\n"};
}

long g_delay_try_ms = 0;
std::string g_die_after;  // "try", "confirm", "cancel" or empty

xa::http::HttpResponse Serve(xa::BarrierOp op, const xa::http::HttpRequest& request) {
  std::string gid, branch;
  long account = 0, amount = 0, points = 0;
  try {
    nlohmann::json body = nlohmann::json::parse(request.body);
    gid = body.at("global_id").get<std::string>();
    branch = body.at("branch_id").get<std::string>();
    nlohmann::json payload = nlohmann::json::parse(body.at("payload").get<std::string>());
    account = payload.at("account").get<long>();
    amount = payload.value("amount", 0L);
    points = payload.value("points", 0L);
  } catch (const std::exception& e) {
    return Answer(400, std::string("not a TCC call of xa's: ") + e.what());
  }
  if (gid.find('\'') != std::string::npos) return Answer(400, "global_id has a quote");
  if (op == xa::BarrierOp::kTry && g_delay_try_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(g_delay_try_ms));
  }
  std::unique_ptr<LocalTransaction> t;
  try {
    t = Take();
    xa::Result<xa::BarrierVerdict> verdict = t->Enter({gid, branch}, op);
    if (!verdict.ok()) {
      t->Rollback();
      Give(std::move(t));
      return Answer(503, verdict.status().ToString());
    }
    {
      // One line a call, for the operator (and the anomaly tests): which operation, which
      // branch, what the barrier said.
      static std::mutex out_mu;
      std::lock_guard<std::mutex> lock(out_mu);
      std::cout << xa::BarrierOpName(op) << " " << gid << " " << branch << ": "
                << xa::BarrierVerdictName(*verdict) << std::endl;
    }
    std::string error;
    switch (*verdict) {
      case xa::BarrierVerdict::kRun:
        if (!Work(*t, op, gid, account, amount, points, &error)) {
          t->Rollback();
          Give(std::move(t));
          return Answer(409, "insufficient funds");
        }
        break;
      case xa::BarrierVerdict::kRefusedAfterCompensation:
        t->Rollback();
        Give(std::move(t));
        return Answer(409, "cancelled before this Try arrived");
      case xa::BarrierVerdict::kRepeated:
      case xa::BarrierVerdict::kEmptyCompensation:
        break;
    }
    if (!t->Commit()) {
      return Answer(503, "commit failed");  // the connection is dropped
    }
    if (!g_die_after.empty() && g_die_after == xa::BarrierOpName(op) &&
        *verdict == xa::BarrierVerdict::kRun) {
      std::cout << "dying after " << g_die_after << " committed, before answering" << std::endl;
      std::raise(SIGKILL);
    }
    Give(std::move(t));
    return Answer(200, std::string(xa::BarrierVerdictName(*verdict)));
  } catch (const std::exception& e) {
    return Answer(503, e.what());  // the connection is dropped
  }
}

int Reset() {
  std::unique_ptr<LocalTransaction> t = Open();
  const std::string p = g_prefix;
  std::vector<std::string> statements;
  if (g_role == "order") {
    statements = {"DROP TABLE IF EXISTS " + p + "_orders",
                  "CREATE TABLE " + p + "_orders (id VARCHAR(128) PRIMARY KEY, status VARCHAR(16) NOT NULL)"};
  } else if (g_role == "funds") {
    statements = {"DROP TABLE IF EXISTS " + p + "_funds",
                  "CREATE TABLE " + p + "_funds (account INT PRIMARY KEY, balance BIGINT NOT NULL, frozen BIGINT NOT NULL)",
                  "INSERT INTO " + p + "_funds VALUES (1, 1000000, 0)"};
  } else {
    statements = {"DROP TABLE IF EXISTS " + p + "_points",
                  "CREATE TABLE " + p + "_points (account INT PRIMARY KEY, points BIGINT NOT NULL, pending BIGINT NOT NULL)",
                  "INSERT INTO " + p + "_points VALUES (1, 0, 0)"};
  }
  statements.push_back("DROP TABLE IF EXISTS " + Barrier().table);
  for (const std::string& s : statements) {
    std::string error;
    if (t->Execute(s, &error) < 0) {
      std::cerr << "tcc-shop-service: " << s << ": " << error << "\n";
      return 1;
    }
  }
  if (!t->Commit()) return 1;
  xa::Status created =
      g_role == "funds"
          ? xa::odbc::CreateBarrierTable(static_cast<PostgresTransaction&>(*t).dbc(),
                                         xa::odbc::Dialect::kPostgres, Barrier())
          : xa::mysql::CreateBarrierTable(static_cast<MariaDbTransaction&>(*t).connection(),
                                          Barrier());
  if (!created.ok()) {
    std::cerr << "tcc-shop-service: " << created.ToString() << "\n";
    return 1;
  }
  t->Commit();
  return 0;
}

std::atomic<bool> g_stop{false};

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  bool reset = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "tcc-shop-service: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--role") g_role = next();
    else if (a == "--listen") listen = next();
    else if (a == "--prefix") g_prefix = next();
    else if (a == "--delay-try-ms") g_delay_try_ms = std::stol(next());
    else if (a == "--die-after") g_die_after = next();
    else if (a == "--reset") reset = true;
    else {
      std::cerr << "tcc-shop-service: unknown argument '" << a << "'\n";
      return 2;
    }
  }
  if (g_role != "order" && g_role != "funds" && g_role != "points") {
    std::cerr << "tcc-shop-service: --role must be order, funds or points\n";
    return 2;
  }
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) {
    std::cerr << "tcc-shop-service: " << settings.status().ToString() << "\n";
    return 1;
  }
  g_settings = *settings;
  try {
    if (reset) return Reset();
  } catch (const std::exception& e) {
    std::cerr << "tcc-shop-service: reset: " << e.what() << "\n";
    return 1;
  }
  xa::http::HttpServerOptions options;
  options.address = listen;
  options.threads = 8;
  options.max_body_bytes = 256 * 1024;
  options.post_routes["/tcc/try"] = [](const xa::http::HttpRequest& r) {
    return Serve(xa::BarrierOp::kTry, r);
  };
  options.post_routes["/tcc/confirm"] = [](const xa::http::HttpRequest& r) {
    return Serve(xa::BarrierOp::kConfirm, r);
  };
  options.post_routes["/tcc/cancel"] = [](const xa::http::HttpRequest& r) {
    return Serve(xa::BarrierOp::kCancel, r);
  };
  auto server = xa::http::HttpServer::Start(std::move(options));
  if (!server.ok()) {
    std::cerr << "tcc-shop-service: " << server.status().ToString() << "\n";
    return 1;
  }
  std::cout << "tcc-shop-service " << g_role << " listening on " << (*server)->address()
            << std::endl;
  std::signal(SIGTERM, [](int) { g_stop.store(true); });
  std::signal(SIGINT, [](int) { g_stop.store(true); });
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*server)->Stop();
  return 0;
}
