// One unixODBC connection and the few calls the resource manager makes on it: connect, run a
// statement, read rows as text, switch autocommit, end a transaction, and collect the diagnostic
// records of a failure. No XA knowledge here; the dialects give the records their meaning.
//
// Every statement gets a fresh statement handle, freed before the call returns: no cursor or
// result set of ours is ever left pending on the connection the application uses.
//
// Thread safety: none; owned by one resource manager.

#ifndef XA_DRIVERS_ODBC_SRC_ODBC_SESSION_H_
#define XA_DRIVERS_ODBC_SRC_ODBC_SESSION_H_

#include <sql.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa::odbc::internal {

// One record of SQLGetDiagRec.
struct DiagRecord {
  std::string sqlstate;
  int32_t native_error = 0;
  std::string text;
};

struct Diagnostics {
  std::vector<DiagRecord> records;
  // SQL_ATTR_CONNECTION_DEAD said so after the failure, or the driver reported no record at all
  // for a failed call (we cannot know what the server did).
  bool connection_dead = false;

  // The record to classify: the first one whose SQLSTATE says the connection is gone, else the
  // first one. An empty record when there is none.
  const DiagRecord& primary() const;
  // "text (SQLSTATE 42704, native error 1); ..." for messages; raw server text: escape it.
  std::string Describe() const;
};

using Row = std::vector<std::optional<std::string>>;

// A column read as text, as an integer; `if_null` for NULL or text that is no number.
int64_t IntColumn(const std::optional<std::string>& text, int64_t if_null);

class OdbcSession {
 public:
  OdbcSession() = default;
  // A session over the caller's connection, which it never ends, rolls back or frees (the
  // participant barrier runs on the application's own connection).
  static OdbcSession Borrowing(SQLHDBC connection) noexcept;
  OdbcSession(OdbcSession&& other) noexcept;
  ~OdbcSession();
  OdbcSession(const OdbcSession&) = delete;
  OdbcSession& operator=(const OdbcSession&) = delete;

  // SQLDriverConnect without prompting. `connection_string` carries the password: it is used for
  // this call only and never kept.
  bool Connect(const std::string& connection_string, std::chrono::seconds login_timeout,
               Diagnostics* diag);
  void Disconnect() noexcept;
  bool connected() const noexcept { return dbc_ != SQL_NULL_HDBC; }
  SQLHDBC dbc() const noexcept { return dbc_; }

  // A lost connection, once noticed, stays lost until Disconnect()/Connect().
  void MarkLost() noexcept { lost_ = true; }
  bool lost() const noexcept { return lost_; }

  void set_statement_timeout(std::chrono::seconds timeout) { statement_timeout_ = timeout; }

  // Runs one statement; `rows_changed` (optional) gets SQLRowCount. On SQL_SUCCESS_WITH_INFO the
  // warnings are left in `diag` (and true is returned).
  bool Execute(std::string_view sql, Diagnostics* diag, int64_t* rows_changed = nullptr);
  // Runs a statement (or a batch) and returns the rows of its result set number `result_index`
  // (0 = the first), every column as text (nullopt for NULL).
  bool Query(std::string_view sql, std::vector<Row>* rows, Diagnostics* diag,
             int result_index = 0);
  // Runs a batch in one round trip and returns the rows of its first result set; true only when
  // every statement of the batch succeeded. Warnings of any statement are left in `diag`. On a
  // failure the server ran none of the statements after the failed one.
  bool QueryBatch(std::string_view sql, std::vector<Row>* first_rows, Diagnostics* diag);

  bool SetAutocommit(bool on, Diagnostics* diag);
  // SQL_ATTR_AUTOCOMMIT as the driver has it (no round trip); false when it cannot tell.
  bool AutocommitIsOn();
  bool EndTransaction(bool commit, Diagnostics* diag);
  bool GetInfoText(SQLUSMALLINT info_type, std::string* value, Diagnostics* diag);

  // Diagnostics of a failed call on `handle`, plus SQL_ATTR_CONNECTION_DEAD of this session.
  Diagnostics Collect(SQLSMALLINT handle_type, SQLHANDLE handle);

 private:
  class Statement;
  // Runs `sql` on `stmt` (allocated by the caller); false, with `diag`, when that fails.
  bool ExecDirect(Statement& stmt, std::string_view sql, Diagnostics* diag, SQLRETURN* rc);
  bool FailStatement(SQLHSTMT stmt, Diagnostics* diag);
  // Appends every row of the current result set of `stmt` (`columns` > 0 columns), as text.
  bool FetchRows(SQLHSTMT stmt, SQLSMALLINT columns, std::vector<Row>* rows, Diagnostics* diag);

  SQLHENV env_ = SQL_NULL_HENV;
  SQLHDBC dbc_ = SQL_NULL_HDBC;
  bool borrowed_ = false;  // dbc_ is the caller's: Disconnect() only lets go of it
  bool lost_ = false;
  std::chrono::seconds statement_timeout_{0};
};

// The Status of a failed statement: XA_RBDEADLOCK for a deadlock or a serialization failure,
// XA_RBTIMEOUT for a lock wait timeout, XAER_DUPID for a unique key violation, XAER_RMFAIL for a
// lost connection, XAER_RMERR for the rest; the message is "<what> failed: <the server's
// diagnostics, escaped>" followed by `advice` ("; ..." or "").
Status StatementError(std::string_view what, const Diagnostics& diag, std::string_view advice);

// Quotes a connection-string attribute value when it needs it: {value} with '}' doubled.
std::string ConnectionStringValue(std::string_view value);
// {value} with '}' doubled, always. psqlODBC reads a value in braces back verbatim only for PWD
// (and pqopt): an unbraced PWD is URL-decoded there ('+' becomes a blank, "%41" an 'A').
std::string BracedConnectionStringValue(std::string_view value);
// Whether psqlODBC reads `user` back verbatim as an unbraced UID: it keeps the braces of a
// braced UID, so a name with ';', a leading '{' or a blank at either end cannot go as UID.
bool PsqlOdbcTakesAsUid(std::string_view user);
// The user name in libpq's conninfo syntax for psqlODBC's pqopt attribute, which psqlODBC reads
// out of its braces and hands to libpq: user='...' with ' and \ escaped by a backslash.
std::string PsqlOdbcPqoptUser(std::string_view user);

}  // namespace xa::odbc::internal

#endif  // XA_DRIVERS_ODBC_SRC_ODBC_SESSION_H_
