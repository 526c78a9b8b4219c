// The participant barrier (xa/tcc_barrier.h, docs/tcc-barrier.md) on an ODBC connection to
// MariaDB (MariaDB Connector/ODBC) or PostgreSQL (psqlODBC): the participant service's own
// connection, in its own local transaction (SQL_ATTR_AUTOCOMMIT off).
//
//   auto verdict = xa::odbc::EnterBarrier(dbc, xa::odbc::Dialect::kPostgres, {gid, branch},
//                                         xa::BarrierOp::kTry);
//   if (!verdict.ok()) { SQLEndTran(SQL_HANDLE_DBC, dbc, SQL_ROLLBACK); return Retry; }
//   if (*verdict == xa::BarrierVerdict::kRefusedAfterCompensation) { ...; return Refused; }
//   if (*verdict == xa::BarrierVerdict::kRun) FreezeFunds(dbc);   // same transaction
//   SQLEndTran(SQL_HANDLE_DBC, dbc, SQL_COMMIT);
//
// Statement errors come back as a Status: XA_RBDEADLOCK for a deadlock or a serialization
// failure (PostgreSQL under REPEATABLE READ, when a concurrent request's row committed after
// the transaction's snapshot), XA_RBTIMEOUT for a lock timeout, XAER_RMFAIL for a lost
// connection, XAER_RMERR for the rest, each naming the statement and the server's error. After
// any of them, roll the local transaction back and answer the request as failed: the
// coordinator delivers it again.
//
// Thread safety: as the connection's; one call at a time on one connection.

#ifndef XA_ODBC_TCC_BARRIER_H_
#define XA_ODBC_TCC_BARRIER_H_

#include <sql.h>

#include <cstdint>

#include "xa/odbc/odbc_resource_manager.h"
#include "xa/status.h"
#include "xa/tcc_barrier.h"

namespace xa::odbc {

// Judges `op` for `key` inside the connection's open transaction. `dialect` is kMariaDb or
// kPostgres (kInval for kAuto). kProto when the connection is in autocommit mode.
Result<BarrierVerdict> EnterBarrier(SQLHDBC local_transaction, Dialect dialect,
                                    const BarrierKey& key, BarrierOp op,
                                    const BarrierOptions& options = {});

// Creates the barrier table if it does not exist, and commits.
Status CreateBarrierTable(SQLHDBC connection, Dialect dialect, const BarrierOptions& options = {});

// Deletes the rows of at most options.purge_batch finished branches older than
// options.retention and commits; the number of rows deleted. Call it until it returns 0, from a
// periodic job (docs/tcc-barrier.md, "Clean-up").
Result<int64_t> PurgeBarrier(SQLHDBC connection, Dialect dialect,
                             const BarrierOptions& options = {});

}  // namespace xa::odbc

#endif  // XA_ODBC_TCC_BARRIER_H_
