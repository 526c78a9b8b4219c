// xa::odbc::LocalConnection: a connection for an application's (or a daemon's) own SQL, not an
// XA branch: autocommit off, so every statement runs in a local transaction that Commit() or
// Rollback() ends. Made by the same connection-string rule as the resource manager's sessions
// (OdbcOptions: dsn or connection_string, user, password, dialect).
//
//   auto connection = xa::odbc::LocalConnection::Open(options).value();
//   connection->Execute("INSERT INTO ledger VALUES (1, 10)");
//   auto rows = connection->Query("SELECT COUNT(*) FROM ledger");   // every column as text
//   connection->Commit();
//
// Errors: XA_RBDEADLOCK for a deadlock or a serialization failure, XA_RBTIMEOUT for a lock wait
// timeout, XAER_DUPID for a unique key violation, XAER_RMFAIL for a lost connection (lost() is
// then true: make a new one), XAER_RMERR for the rest, each naming the statement's first words
// and the server's diagnostics; XA_CONFIG or XAER_RMFAIL from Open() as the resource manager's.
// After an error, roll back. The password never appears in a message.
//
// Thread safety: one thread at a time.

#ifndef XA_ODBC_LOCAL_CONNECTION_H_
#define XA_ODBC_LOCAL_CONNECTION_H_

#include <sql.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/odbc/odbc_resource_manager.h"
#include "xa/status.h"

namespace xa::odbc {

// One ODBC connection with autocommit off, for SQL that is not an XA branch.
class LocalConnection {
 public:
  // One row of a query's result: every column as text, nullopt for NULL.
  using Row = std::vector<std::optional<std::string>>;

  // Connects with `options` (rm_name is not needed; dialect must be kMariaDb or kPostgres).
  static Result<std::unique_ptr<LocalConnection>> Open(const OdbcOptions& options);
  ~LocalConnection();
  LocalConnection(const LocalConnection&) = delete;
  LocalConnection& operator=(const LocalConnection&) = delete;

  // The SQL dialect the connection was opened with.
  Dialect dialect() const noexcept;
  // Runs a statement; the number of rows it changed.
  Result<int64_t> Execute(std::string_view sql);
  // Runs a query; its rows, every column as text (nullopt for NULL).
  Result<std::vector<Row>> Query(std::string_view sql);
  // Commits the local transaction; a new one begins with the next statement.
  Status Commit();
  // Rolls the local transaction back; errors are ignored (a lost connection has nothing left).
  void Rollback() noexcept;
  // True once a statement failed because the connection is gone: open a new one.
  bool lost() const noexcept;
  // The ODBC connection, for the barrier (xa/odbc/tcc_barrier.h) and the caller's own calls.
  SQLHDBC handle() const noexcept;

  class Impl;

 private:
  explicit LocalConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::odbc

#endif  // XA_ODBC_LOCAL_CONNECTION_H_
