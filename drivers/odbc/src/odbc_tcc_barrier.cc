#include "xa/odbc/tcc_barrier.h"

#include <sqlext.h>

#include <memory>
#include <string>
#include <vector>

#include "drivers/odbc/src/odbc_session.h"
#include "src/sql_dialect/tcc_barrier_sql.h"

namespace xa::odbc {
namespace {

using ::xa::internal::BarrierRunner;
using ::xa::internal::BarrierSqlFlavor;
using internal::Diagnostics;
using internal::OdbcSession;

Status BarrierStatementError(std::string_view purpose, const Diagnostics& diag) {
  return internal::StatementError(
      "barrier: " + std::string(purpose), diag,
      "; roll the local transaction back and answer the request as failed");
}

Result<BarrierSqlFlavor> FlavorOf(Dialect dialect) {
  switch (dialect) {
    case Dialect::kMariaDb: return BarrierSqlFlavor::kMariaDb;
    case Dialect::kPostgres: return BarrierSqlFlavor::kPostgres;
    default: break;
  }
  return Status(Code::kInval,
                "barrier: name the connection's database (Dialect::kMariaDb or kPostgres)");
}

// The runner borrows `session`, which borrows the caller's connection.
BarrierRunner RunnerOn(OdbcSession& session) {
  BarrierRunner runner;
  runner.execute = [&session](std::string_view sql) -> Result<int64_t> {
    Diagnostics diag;
    int64_t rows = 0;
    if (!session.Execute(sql, &diag, &rows)) {
      return BarrierStatementError(sql.substr(0, sql.find(" (")), diag);
    }
    return rows;
  };
  runner.query = [&session](std::string_view sql)
      -> Result<std::vector<std::vector<std::optional<std::string>>>> {
    Diagnostics diag;
    std::vector<internal::Row> rows;
    if (!session.Query(sql, &rows, &diag)) {
      return BarrierStatementError(sql.substr(0, sql.find(" FROM")), diag);
    }
    return rows;
  };
  return runner;
}

Status Commit(SQLHDBC connection, std::string_view what) {
  SQLRETURN rc = SQLEndTran(SQL_HANDLE_DBC, connection, SQL_COMMIT);
  if (rc == SQL_SUCCESS || rc == SQL_SUCCESS_WITH_INFO) return Status::Ok();
  OdbcSession session = OdbcSession::Borrowing(connection);
  return BarrierStatementError(what, session.Collect(SQL_HANDLE_DBC, connection));
}

}  // namespace

Result<BarrierVerdict> EnterBarrier(SQLHDBC local_transaction, Dialect dialect,
                                    const BarrierKey& key, BarrierOp op,
                                    const BarrierOptions& options) {
  Result<BarrierSqlFlavor> flavor = FlavorOf(dialect);
  if (!flavor.ok()) return flavor.status();
  OdbcSession session = OdbcSession::Borrowing(local_transaction);
  if (session.AutocommitIsOn()) {
    return Status(Code::kProto,
                  "barrier: the connection is in autocommit mode, so the barrier's rows would "
                  "commit apart from the business work; set SQL_ATTR_AUTOCOMMIT off first");
  }
  return ::xa::internal::EnterBarrier(*flavor, RunnerOn(session), options, key, op);
}

Status CreateBarrierTable(SQLHDBC connection, Dialect dialect, const BarrierOptions& options) {
  Result<BarrierSqlFlavor> flavor = FlavorOf(dialect);
  if (!flavor.ok()) return flavor.status();
  if (std::string error = BarrierOptionsError(options); !error.empty()) {
    return Status(Code::kInval, error);
  }
  OdbcSession session = OdbcSession::Borrowing(connection);
  BarrierRunner runner = RunnerOn(session);
  for (const std::string& sql : ::xa::internal::BarrierTableSql(*flavor, options)) {
    if (Result<int64_t> done = runner.execute(sql); !done.ok()) return done.status();
  }
  if (session.AutocommitIsOn()) return Status::Ok();
  return Commit(connection, "committing the barrier table");
}

Result<int64_t> PurgeBarrier(SQLHDBC connection, Dialect dialect, const BarrierOptions& options) {
  Result<BarrierSqlFlavor> flavor = FlavorOf(dialect);
  if (!flavor.ok()) return flavor.status();
  OdbcSession session = OdbcSession::Borrowing(connection);
  Result<int64_t> deleted = ::xa::internal::PurgeBarrierOnce(*flavor, RunnerOn(session), options);
  if (session.AutocommitIsOn()) return deleted;
  if (!deleted.ok()) {
    SQLEndTran(SQL_HANDLE_DBC, connection, SQL_ROLLBACK);
    return deleted;
  }
  if (Status committed = Commit(connection, "committing the purge"); !committed.ok()) {
    return committed;
  }
  return deleted;
}

}  // namespace xa::odbc
