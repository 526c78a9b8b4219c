// The participant barrier's statements on MariaDB/MySQL and PostgreSQL, and the one flow that
// runs them (xa/tcc_barrier.h; docs/tcc-barrier.md): each driver passes the two calls that run
// a statement on the participant's connection, so the inserts, the verdict and the purge are
// written once for every driver.
//
// Keys and ids go into SQL only as hex literals of their bytes, the table name only after
// BarrierOptionsError accepted it: nothing a request carries is ever SQL text.
//
// Thread safety: free functions; each call uses only the runner it is given.

#ifndef XA_SRC_SQL_DIALECT_TCC_BARRIER_SQL_H_
#define XA_SRC_SQL_DIALECT_TCC_BARRIER_SQL_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"
#include "xa/tcc_barrier.h"

namespace xa::internal {

enum class BarrierSqlFlavor : uint8_t { kMariaDb, kPostgres };

// How a driver runs the barrier's statements on the participant's connection, inside its open
// local transaction (never committing it).
struct BarrierRunner {
  // Runs a statement; the number of rows it changed.
  std::function<Result<int64_t>(std::string_view sql)> execute;
  // Runs a query; its rows, every column as text (nullopt for NULL).
  std::function<Result<std::vector<std::vector<std::optional<std::string>>>>(std::string_view sql)>
      query;
};

// The statements that create the table (and its index) if it does not exist.
std::vector<std::string> BarrierTableSql(BarrierSqlFlavor flavor, const BarrierOptions& options);

// Inserts the rows of `op` for `key` (first the compensated operation's, for a compensation),
// reads the reason of a Try's or an Action's row when its insert lost, and returns
// DecideBarrier's verdict. kInval for a bad key or options; a statement's failure as the runner
// reports it (the participant then rolls its local transaction back).
Result<BarrierVerdict> EnterBarrier(BarrierSqlFlavor flavor, const BarrierRunner& runner,
                                    const BarrierOptions& options, const BarrierKey& key,
                                    BarrierOp op);

// Deletes every row of at most options.purge_batch finished branches whose finishing row is
// older than options.retention (by the database's clock); the number of rows deleted.
Result<int64_t> PurgeBarrierOnce(BarrierSqlFlavor flavor, const BarrierRunner& runner,
                                 const BarrierOptions& options);

}  // namespace xa::internal

#endif  // XA_SRC_SQL_DIALECT_TCC_BARRIER_SQL_H_
