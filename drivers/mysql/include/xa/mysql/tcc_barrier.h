// The participant barrier (xa/tcc_barrier.h, docs/tcc-barrier.md) on a MySQL Connector/C++
// connection to MariaDB: the participant service's own connection, in its own local transaction.
//
//   conn->setAutoCommit(false);
//   auto verdict = xa::mysql::EnterBarrier(*conn, {gid, branch}, xa::BarrierOp::kCancel);
//   if (!verdict.ok()) { conn->rollback(); return Retry; }         // the coordinator asks again
//   if (*verdict == xa::BarrierVerdict::kRun) ReleaseFunds(*conn);  // same transaction
//   conn->commit();
//
// Statement errors come back as a Status (never an exception): XA_RBDEADLOCK for a deadlock,
// XA_RBTIMEOUT for a lock wait timeout, XAER_RMFAIL for a lost connection, XAER_RMERR for the
// rest, each naming the statement's purpose and the server's error. After any of them, roll the
// local transaction back and answer the request as failed: the coordinator delivers it again.
//
// Thread safety: as the connection's; one call at a time on one connection.

#ifndef XA_MYSQL_TCC_BARRIER_H_
#define XA_MYSQL_TCC_BARRIER_H_

#include <cstdint>
#include <memory>

#include "xa/mysql/mysql_resource_manager.h"
#include "xa/status.h"
#include "xa/tcc_barrier.h"

namespace sql {
class Connection;
}  // namespace sql

namespace xa::mysql {

// A plain connection (not a resource manager) for a participant service's local transactions,
// autocommit off, made with `options`' server, credentials and timeouts (rm_name and the XA
// settings are unused). Connects under the driver's own lock: Connector/C++ 1.1's first
// connect is not thread-safe, so a service must not call get_driver_instance()->connect() from
// several threads itself. XAER_RMFAIL naming the server when it cannot connect.
Result<std::unique_ptr<sql::Connection>> OpenLocalConnection(const MySqlOptions& options);

// Judges `op` for `key` inside the connection's open transaction (autocommit must be off: the
// barrier's rows must commit or roll back with the business work; kProto if it is on).
Result<BarrierVerdict> EnterBarrier(sql::Connection& local_transaction, const BarrierKey& key,
                                    BarrierOp op, const BarrierOptions& options = {});

// Creates the barrier table if it does not exist (DDL: commits whatever the connection had open).
Status CreateBarrierTable(sql::Connection& connection, const BarrierOptions& options = {});

// Deletes the rows of at most options.purge_batch finished branches older than
// options.retention and commits; the number of rows deleted. Call it until it returns 0, from
// a periodic job (docs/tcc-barrier.md, "Clean-up").
Result<int64_t> PurgeBarrier(sql::Connection& connection, const BarrierOptions& options = {});

}  // namespace xa::mysql

#endif  // XA_MYSQL_TCC_BARRIER_H_
