#include "xa/mysql/tcc_barrier.h"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <memory>
#include <string>
#include <vector>

#include "src/sql_dialect/tcc_barrier_sql.h"

namespace xa::mysql {
namespace {

using internal::BarrierRunner;
using internal::BarrierSqlFlavor;

// A failed barrier statement: the code says whether the local transaction was rolled back by
// the server (deadlock, lock wait timeout) or the connection is gone.
Status BarrierStatementError(std::string_view purpose, const sql::SQLException& e) {
  Code code = Code::kRmError;
  switch (e.getErrorCode()) {
    case 1213: code = Code::kRbDeadlock; break;  // ER_LOCK_DEADLOCK
    case 1205: code = Code::kRbTimeout; break;   // ER_LOCK_WAIT_TIMEOUT
    case 2006:                                    // CR_SERVER_GONE_ERROR
    case 2013: code = Code::kRmFail; break;      // CR_SERVER_LOST
    default: break;
  }
  return Status(code, "barrier: " + std::string(purpose) + " failed: MariaDB error " +
                          std::to_string(e.getErrorCode()) + " (" + e.getSQLStateCStr() + ") " +
                          e.what() +
                          "; roll the local transaction back and answer the request as failed");
}

BarrierRunner RunnerOn(sql::Connection& connection) {
  BarrierRunner runner;
  runner.execute = [&connection](std::string_view sql) -> Result<int64_t> {
    try {
      std::unique_ptr<sql::Statement> statement(connection.createStatement());
      return static_cast<int64_t>(statement->executeUpdate(std::string(sql)));
    } catch (const sql::SQLException& e) {
      return BarrierStatementError(sql.substr(0, sql.find(" (")), e);
    }
  };
  runner.query = [&connection](std::string_view sql)
      -> Result<std::vector<std::vector<std::optional<std::string>>>> {
    try {
      std::unique_ptr<sql::Statement> statement(connection.createStatement());
      std::unique_ptr<sql::ResultSet> result(statement->executeQuery(std::string(sql)));
      const unsigned columns = result->getMetaData()->getColumnCount();
      std::vector<std::vector<std::optional<std::string>>> rows;
      while (result->next()) {
        std::vector<std::optional<std::string>> row;
        for (unsigned c = 1; c <= columns; ++c) {
          if (result->isNull(c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(result->getString(c)));
          }
        }
        rows.push_back(std::move(row));
      }
      return rows;
    } catch (const sql::SQLException& e) {
      return BarrierStatementError(sql.substr(0, sql.find(" FROM")), e);
    }
  };
  return runner;
}

}  // namespace

Result<BarrierVerdict> EnterBarrier(sql::Connection& local_transaction, const BarrierKey& key,
                                    BarrierOp op, const BarrierOptions& options) {
  try {
    if (local_transaction.getAutoCommit()) {
      return Status(Code::kProto,
                    "barrier: the connection is in autocommit mode, so the barrier's rows would "
                    "commit apart from the business work; call setAutoCommit(false) first");
    }
  } catch (const sql::SQLException& e) {
    return BarrierStatementError("reading the autocommit mode", e);
  }
  return internal::EnterBarrier(BarrierSqlFlavor::kMariaDb, RunnerOn(local_transaction), options,
                                key, op);
}

Status CreateBarrierTable(sql::Connection& connection, const BarrierOptions& options) {
  if (std::string error = BarrierOptionsError(options); !error.empty()) {
    return Status(Code::kInval, error);
  }
  BarrierRunner runner = RunnerOn(connection);
  for (const std::string& sql : internal::BarrierTableSql(BarrierSqlFlavor::kMariaDb, options)) {
    if (Result<int64_t> done = runner.execute(sql); !done.ok()) return done.status();
  }
  return Status::Ok();
}

Result<int64_t> PurgeBarrier(sql::Connection& connection, const BarrierOptions& options) {
  Result<int64_t> deleted =
      internal::PurgeBarrierOnce(BarrierSqlFlavor::kMariaDb, RunnerOn(connection), options);
  try {
    if (!deleted.ok()) {
      if (!connection.getAutoCommit()) connection.rollback();
      return deleted;
    }
    if (!connection.getAutoCommit()) connection.commit();
  } catch (const sql::SQLException& e) {
    return BarrierStatementError("committing the purge", e);
  }
  return deleted;
}

}  // namespace xa::mysql
