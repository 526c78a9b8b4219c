#include "drivers/odbc/src/odbc_session.h"

#include <sqlext.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "src/base/escape.h"

namespace xa::odbc::internal {
namespace {

// SQLPOINTER is how ODBC passes small integers to attribute setters.
SQLPOINTER IntegerAttribute(SQLULEN value) {
  return reinterpret_cast<SQLPOINTER>(value);
}

bool Succeeded(SQLRETURN rc) { return rc == SQL_SUCCESS || rc == SQL_SUCCESS_WITH_INFO; }

// psqlODBC sets the process-wide LC_CTYPE locale while it connects (it derives the client
// encoding from it), and keeps the name setlocale returned. Two of its connects at once can then
// use a locale name the other has just freed (ThreadSanitizer sees it in the concurrent tests), so
// every connect this library makes waits for the one in progress. Connects are rare (sessions
// stay open), and a server that does not answer holds the others back at most for its login
// timeout.
std::mutex& ConnectMutex() {
  static std::mutex mutex;
  return mutex;
}

bool ReadColumn(SQLHSTMT stmt, SQLUSMALLINT column, std::optional<std::string>* value) {
  std::string text;
  char buffer[512];
  for (;;) {
    SQLLEN indicator = 0;
    SQLRETURN rc = SQLGetData(stmt, column, SQL_C_CHAR, buffer, sizeof buffer, &indicator);
    if (rc == SQL_NO_DATA) break;
    if (!Succeeded(rc)) return false;
    if (indicator == SQL_NULL_DATA) {
      value->reset();
      return true;
    }
    // With SQL_SUCCESS_WITH_INFO (01004, truncated) the buffer is full minus the terminator.
    size_t chunk = (indicator == SQL_NO_TOTAL || indicator >= static_cast<SQLLEN>(sizeof buffer))
                       ? sizeof buffer - 1
                       : static_cast<size_t>(indicator);
    text.append(buffer, chunk);
    if (rc == SQL_SUCCESS) break;
  }
  *value = std::move(text);
  return true;
}

}  // namespace

// A statement handle that is always freed.
class OdbcSession::Statement {
 public:
  explicit Statement(SQLHDBC dbc) {
    if (!Succeeded(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &stmt_))) stmt_ = SQL_NULL_HSTMT;
  }
  ~Statement() {
    if (stmt_ != SQL_NULL_HSTMT) SQLFreeHandle(SQL_HANDLE_STMT, stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  SQLHSTMT get() const { return stmt_; }

 private:
  SQLHSTMT stmt_ = SQL_NULL_HSTMT;
};

int64_t IntColumn(const std::optional<std::string>& text, int64_t if_null) {
  if (!text.has_value() || text->empty()) return if_null;
  char* end = nullptr;
  long long value = std::strtoll(text->c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<int64_t>(value) : if_null;
}

const DiagRecord& Diagnostics::primary() const {
  static const DiagRecord kEmpty;
  if (records.empty()) return kEmpty;
  for (const DiagRecord& record : records) {
    if (record.sqlstate.rfind("08", 0) == 0 || record.sqlstate.rfind("57P", 0) == 0) return record;
  }
  return records.front();
}

std::string Diagnostics::Describe() const {
  if (records.empty()) return "the driver reported no diagnostic record";
  std::string out;
  for (size_t i = 0; i < records.size() && i < 4; ++i) {
    if (i > 0) out += "; ";
    out += records[i].text + " (SQLSTATE " + records[i].sqlstate + ", native error " +
           std::to_string(records[i].native_error) + ")";
  }
  return out;
}

OdbcSession::~OdbcSession() { Disconnect(); }

std::string ConnectionStringValue(std::string_view value) {
  bool plain = !value.empty() && value.front() != ' ' && value.back() != ' ';
  for (char c : value) plain = plain && c != ';' && c != '{' && c != '}' && c != '=';
  if (plain) return std::string(value);
  return BracedConnectionStringValue(value);
}

std::string BracedConnectionStringValue(std::string_view value) {
  std::string out = "{";
  for (char c : value) {
    out.push_back(c);
    if (c == '}') out.push_back('}');
  }
  out.push_back('}');
  return out;
}

bool PsqlOdbcTakesAsUid(std::string_view user) {
  return !user.empty() && user.find(';') == std::string_view::npos && user.front() != '{' &&
         user.front() != ' ' && user.back() != ' ';
}

std::string PsqlOdbcPqoptUser(std::string_view user) {
  std::string out = "user='";
  for (char c : user) {
    if (c == '\\' || c == '\'') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

bool OdbcSession::Connect(const std::string& connection_string,
                          std::chrono::seconds login_timeout, Diagnostics* diag) {
  Disconnect();
  lost_ = false;
  if (!Succeeded(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env_))) {
    env_ = SQL_NULL_HENV;
    diag->records.push_back({"HY001", 0, "cannot allocate an ODBC environment handle"});
    return false;
  }
  if (!Succeeded(SQLSetEnvAttr(env_, SQL_ATTR_ODBC_VERSION, IntegerAttribute(SQL_OV_ODBC3), 0))) {
    *diag = Collect(SQL_HANDLE_ENV, env_);
    Disconnect();
    return false;
  }
  if (!Succeeded(SQLAllocHandle(SQL_HANDLE_DBC, env_, &dbc_))) {
    *diag = Collect(SQL_HANDLE_ENV, env_);
    dbc_ = SQL_NULL_HDBC;
    Disconnect();
    return false;
  }
  SQLSetConnectAttr(dbc_, SQL_ATTR_LOGIN_TIMEOUT,
                    IntegerAttribute(static_cast<SQLULEN>(login_timeout.count())), 0);
  // The connection string is handed over as is and not kept: it holds the password.
  std::unique_lock connecting(ConnectMutex());
  SQLRETURN rc = SQLDriverConnect(
      dbc_, nullptr,
      reinterpret_cast<SQLCHAR*>(const_cast<char*>(connection_string.data())),
      static_cast<SQLSMALLINT>(connection_string.size()), nullptr, 0, nullptr,
      SQL_DRIVER_NOPROMPT);
  connecting.unlock();
  if (!Succeeded(rc)) {
    diag->records.clear();
    Diagnostics collected = Collect(SQL_HANDLE_DBC, dbc_);
    diag->records = std::move(collected.records);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    dbc_ = SQL_NULL_HDBC;
    Disconnect();
    return false;
  }
  return true;
}

OdbcSession OdbcSession::Borrowing(SQLHDBC connection) noexcept {
  OdbcSession session;
  session.dbc_ = connection;
  session.borrowed_ = true;
  return session;
}

OdbcSession::OdbcSession(OdbcSession&& other) noexcept
    : env_(other.env_),
      dbc_(other.dbc_),
      borrowed_(other.borrowed_),
      lost_(other.lost_),
      statement_timeout_(other.statement_timeout_) {
  other.env_ = SQL_NULL_HENV;
  other.dbc_ = SQL_NULL_HDBC;
}

void OdbcSession::Disconnect() noexcept {
  if (borrowed_) {
    dbc_ = SQL_NULL_HDBC;
    borrowed_ = false;
  }
  if (dbc_ != SQL_NULL_HDBC) {
    // A branch that is not prepared dies with the session; say so to the server rather than
    // leaving it to notice the closed socket.
    SQLEndTran(SQL_HANDLE_DBC, dbc_, SQL_ROLLBACK);
    SQLDisconnect(dbc_);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    dbc_ = SQL_NULL_HDBC;
  }
  if (env_ != SQL_NULL_HENV) {
    SQLFreeHandle(SQL_HANDLE_ENV, env_);
    env_ = SQL_NULL_HENV;
  }
}

Diagnostics OdbcSession::Collect(SQLSMALLINT handle_type, SQLHANDLE handle) {
  Diagnostics diag;
  for (SQLSMALLINT i = 1; i <= 8; ++i) {
    SQLCHAR state[6] = {0};
    SQLINTEGER native = 0;
    SQLCHAR text[1024] = {0};
    SQLSMALLINT length = 0;
    SQLRETURN rc = SQLGetDiagRec(handle_type, handle, i, state, &native, text, sizeof text, &length);
    if (!Succeeded(rc)) break;
    size_t text_size = strnlen(reinterpret_cast<const char*>(text), sizeof text);
    diag.records.push_back({std::string(reinterpret_cast<const char*>(state)),
                            static_cast<int32_t>(native),
                            std::string(reinterpret_cast<const char*>(text), text_size)});
  }
  if (dbc_ != SQL_NULL_HDBC) {
    SQLUINTEGER dead = SQL_CD_FALSE;
    if (Succeeded(SQLGetConnectAttr(dbc_, SQL_ATTR_CONNECTION_DEAD, &dead, 0, nullptr)) &&
        dead == SQL_CD_TRUE) {
      diag.connection_dead = true;
    }
  }
  return diag;
}

bool OdbcSession::FailStatement(SQLHSTMT stmt, Diagnostics* diag) {
  *diag = Collect(SQL_HANDLE_STMT, stmt);
  if (diag->records.empty()) diag->connection_dead = true;
  if (diag->connection_dead) lost_ = true;
  return false;
}

bool OdbcSession::ExecDirect(Statement& stmt, std::string_view sql, Diagnostics* diag,
                             SQLRETURN* rc) {
  if (dbc_ == SQL_NULL_HDBC) {
    diag->records.push_back({"08003", 0, "not connected"});
    diag->connection_dead = true;
    return false;
  }
  if (stmt.get() == SQL_NULL_HSTMT) {
    *diag = Collect(SQL_HANDLE_DBC, dbc_);
    if (diag->records.empty()) diag->connection_dead = true;
    if (diag->connection_dead) lost_ = true;
    return false;
  }
  if (statement_timeout_.count() > 0) {
    SQLSetStmtAttr(stmt.get(), SQL_ATTR_QUERY_TIMEOUT,
                   IntegerAttribute(static_cast<SQLULEN>(statement_timeout_.count())), 0);
  }
  *rc = SQLExecDirect(stmt.get(), reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.data())),
                      static_cast<SQLINTEGER>(sql.size()));
  // SQL_NO_DATA: a searched UPDATE or DELETE that changed no row.
  if (*rc == SQL_NO_DATA || Succeeded(*rc)) return true;
  return FailStatement(stmt.get(), diag);
}

bool OdbcSession::Execute(std::string_view sql, Diagnostics* diag, int64_t* rows_changed) {
  Statement stmt(dbc_);
  SQLRETURN rc = SQL_ERROR;
  if (!ExecDirect(stmt, sql, diag, &rc)) return false;
  if (rc == SQL_SUCCESS_WITH_INFO) {
    // Warnings: the caller may need them (PostgreSQL says "no transaction in progress" as one).
    diag->records = Collect(SQL_HANDLE_STMT, stmt.get()).records;
  }
  if (rows_changed != nullptr) {
    SQLLEN count = 0;
    *rows_changed = rc != SQL_NO_DATA && Succeeded(SQLRowCount(stmt.get(), &count)) ? count : 0;
  }
  return true;
}

bool OdbcSession::FetchRows(SQLHSTMT stmt, SQLSMALLINT columns, std::vector<Row>* rows,
                            Diagnostics* diag) {
  for (;;) {
    SQLRETURN rc = SQLFetch(stmt);
    if (rc == SQL_NO_DATA) return true;
    if (!Succeeded(rc)) return FailStatement(stmt, diag);
    Row row(static_cast<size_t>(columns));
    for (SQLSMALLINT c = 1; c <= columns; ++c) {
      if (!ReadColumn(stmt, static_cast<SQLUSMALLINT>(c), &row[static_cast<size_t>(c - 1)])) {
        return FailStatement(stmt, diag);
      }
    }
    rows->push_back(std::move(row));
  }
}

bool OdbcSession::Query(std::string_view sql, std::vector<Row>* rows, Diagnostics* diag,
                        int result_index) {
  rows->clear();
  Statement stmt(dbc_);
  SQLRETURN rc = SQL_ERROR;
  if (!ExecDirect(stmt, sql, diag, &rc)) return false;
  for (int skipped = 0; skipped < result_index; ++skipped) {
    rc = SQLMoreResults(stmt.get());
    if (rc == SQL_NO_DATA) {
      // Native error -1: an answer of ours, not the server's, and the connection is fine.
      diag->records.push_back({"HY000", -1,
                               "the batch returned fewer result sets than expected (" +
                                   std::to_string(skipped + 1) + ")"});
      return false;
    }
    if (!Succeeded(rc)) return FailStatement(stmt.get(), diag);
  }
  SQLSMALLINT columns = 0;
  if (!Succeeded(SQLNumResultCols(stmt.get(), &columns))) return FailStatement(stmt.get(), diag);
  if (columns <= 0) {
    diag->records.push_back({"HY000", -1, "the statement returned no result set"});
    return false;
  }
  if (!FetchRows(stmt.get(), columns, rows, diag)) return false;
  // Drain any further result sets so that nothing stays pending on the connection.
  while (Succeeded(SQLMoreResults(stmt.get()))) {
  }
  return true;
}

bool OdbcSession::QueryBatch(std::string_view sql, std::vector<Row>* first_rows,
                             Diagnostics* diag) {
  first_rows->clear();
  Statement stmt(dbc_);
  SQLRETURN rc = SQL_ERROR;
  if (!ExecDirect(stmt, sql, diag, &rc)) return false;
  std::vector<DiagRecord> warnings;
  auto keep_warnings = [&] {
    if (rc != SQL_SUCCESS_WITH_INFO) return;
    for (DiagRecord& r : Collect(SQL_HANDLE_STMT, stmt.get()).records) {
      warnings.push_back(std::move(r));
    }
  };
  keep_warnings();
  SQLSMALLINT columns = 0;
  if (!Succeeded(SQLNumResultCols(stmt.get(), &columns))) return FailStatement(stmt.get(), diag);
  if (columns > 0 && !FetchRows(stmt.get(), columns, first_rows, diag)) return false;
  for (;;) {
    rc = SQLMoreResults(stmt.get());
    if (rc == SQL_NO_DATA) break;
    if (!Succeeded(rc)) return FailStatement(stmt.get(), diag);
    keep_warnings();
  }
  diag->records = std::move(warnings);
  return true;
}

bool OdbcSession::SetAutocommit(bool on, Diagnostics* diag) {
  if (dbc_ == SQL_NULL_HDBC) {
    diag->records.push_back({"08003", 0, "not connected"});
    diag->connection_dead = true;
    return false;
  }
  SQLRETURN rc = SQLSetConnectAttr(
      dbc_, SQL_ATTR_AUTOCOMMIT, IntegerAttribute(on ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF), 0);
  if (Succeeded(rc)) return true;
  *diag = Collect(SQL_HANDLE_DBC, dbc_);
  if (diag->connection_dead) lost_ = true;
  return false;
}

bool OdbcSession::AutocommitIsOn() {
  if (dbc_ == SQL_NULL_HDBC) return false;
  SQLULEN value = SQL_AUTOCOMMIT_OFF;
  if (!Succeeded(SQLGetConnectAttr(dbc_, SQL_ATTR_AUTOCOMMIT, &value, 0, nullptr))) return false;
  return value == SQL_AUTOCOMMIT_ON;
}

bool OdbcSession::EndTransaction(bool commit, Diagnostics* diag) {
  if (dbc_ == SQL_NULL_HDBC) {
    diag->records.push_back({"08003", 0, "not connected"});
    diag->connection_dead = true;
    return false;
  }
  SQLRETURN rc = SQLEndTran(SQL_HANDLE_DBC, dbc_, commit ? SQL_COMMIT : SQL_ROLLBACK);
  if (Succeeded(rc)) return true;
  *diag = Collect(SQL_HANDLE_DBC, dbc_);
  if (diag->records.empty()) diag->connection_dead = true;
  if (diag->connection_dead) lost_ = true;
  return false;
}

bool OdbcSession::GetInfoText(SQLUSMALLINT info_type, std::string* value, Diagnostics* diag) {
  char buffer[256] = {0};
  SQLSMALLINT length = 0;
  SQLRETURN rc = SQLGetInfo(dbc_, info_type, buffer, sizeof buffer, &length);
  if (!Succeeded(rc)) {
    *diag = Collect(SQL_HANDLE_DBC, dbc_);
    return false;
  }
  value->assign(buffer, strnlen(buffer, sizeof buffer));
  return true;
}

Status StatementError(std::string_view what, const Diagnostics& diag, std::string_view advice) {
  const DiagRecord& primary = diag.primary();
  const std::string& state = primary.sqlstate;
  Code code = Code::kRmError;
  if (state == "40001" || state == "40P01" || primary.native_error == 1213) {
    code = Code::kRbDeadlock;
  } else if (state == "55P03" || state == "HYT00" || primary.native_error == 1205) {
    code = Code::kRbTimeout;
  } else if (state == "23505" || primary.native_error == 1062) {
    code = Code::kDupId;
  } else if (diag.connection_dead || state.rfind("08", 0) == 0) {
    code = Code::kRmFail;
  }
  return Status(code, std::string(what) + " failed: " + ::xa::internal::EscapeForMessage(diag.Describe()) +
                          std::string(advice));
}

}  // namespace xa::odbc::internal
