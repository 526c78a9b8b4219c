#include "src/sql_dialect/tcc_barrier_sql.h"

#include <cstdlib>

#include "src/base/byte_text.h"

namespace xa::internal {
namespace {

// A binary literal of `bytes`: X'..' on MariaDB, '\x..'::bytea on PostgreSQL (with
// standard_conforming_strings on, the default since 9.1).
std::string BinaryLiteral(BarrierSqlFlavor flavor, std::string_view bytes) {
  if (flavor == BarrierSqlFlavor::kMariaDb) return "X'" + LowerHex(bytes) + "'";
  return "'\\x" + LowerHex(bytes) + "'::bytea";
}

std::string KeyCondition(BarrierSqlFlavor flavor, const BarrierKey& key) {
  return "global_id = " + BinaryLiteral(flavor, key.global_id) +
         " AND branch_id = " + BinaryLiteral(flavor, key.branch_id);
}

std::string InsertRow(BarrierSqlFlavor flavor, const std::string& table, const BarrierKey& key,
                      BarrierOp op, BarrierOp reason) {
  std::string values = "(" + BinaryLiteral(flavor, key.global_id) + ", " +
                       BinaryLiteral(flavor, key.branch_id) + ", " +
                       std::to_string(static_cast<int>(op)) + ", " +
                       std::to_string(static_cast<int>(reason)) + ")";
  if (flavor == BarrierSqlFlavor::kMariaDb) {
    // The values are checked hex and numbers, so IGNORE can only skip the duplicate key.
    return "INSERT IGNORE INTO " + table + " (global_id, branch_id, op, reason) VALUES " + values;
  }
  return "INSERT INTO " + table + " (global_id, branch_id, op, reason) VALUES " + values +
         " ON CONFLICT DO NOTHING";
}

// Whether an insert's row count says it won: 1 row, or 0 when the key was there. Anything else
// is a table that is not the barrier's.
Result<bool> Inserted(const Result<int64_t>& rows, std::string_view what) {
  if (!rows.ok()) return rows.status();
  if (*rows == 0 || *rows == 1) return *rows == 1;
  return Status(Code::kInternal, "barrier: inserting the " + std::string(what) + " row changed " +
                                     std::to_string(*rows) +
                                     " rows; the barrier table is not as docs/tcc-barrier.md "
                                     "defines it (its primary key must be global_id, branch_id, op)");
}

std::optional<BarrierOp> OpOfNumber(int64_t number) {
  if (number < static_cast<int64_t>(BarrierOp::kTry) ||
      number > static_cast<int64_t>(BarrierOp::kCompensate)) {
    return std::nullopt;
  }
  return static_cast<BarrierOp>(number);
}

}  // namespace

std::vector<std::string> BarrierTableSql(BarrierSqlFlavor flavor, const BarrierOptions& options) {
  const std::string& table = options.table;
  if (flavor == BarrierSqlFlavor::kMariaDb) {
    return {"CREATE TABLE IF NOT EXISTS " + table +
            " (global_id VARBINARY(128) NOT NULL, branch_id VARBINARY(64) NOT NULL,"
            " op TINYINT UNSIGNED NOT NULL, reason TINYINT UNSIGNED NOT NULL,"
            " created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
            " PRIMARY KEY (global_id, branch_id, op), KEY barrier_created (created_at))"
            " ENGINE=InnoDB"};
  }
  std::string bare = table.substr(table.find('.') == std::string::npos ? 0 : table.find('.') + 1);
  return {"CREATE TABLE IF NOT EXISTS " + table +
              " (global_id bytea NOT NULL, branch_id bytea NOT NULL, op smallint NOT NULL,"
              " reason smallint NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
              " PRIMARY KEY (global_id, branch_id, op))",
          "CREATE INDEX IF NOT EXISTS " + bare + "_created ON " + table + " (created_at)"};
}

Result<BarrierVerdict> EnterBarrier(BarrierSqlFlavor flavor, const BarrierRunner& runner,
                                    const BarrierOptions& options, const BarrierKey& key,
                                    BarrierOp op) {
  if (std::string error = BarrierOptionsError(options); !error.empty()) {
    return Status(Code::kInval, error);
  }
  if (std::string error = BarrierKeyError(key); !error.empty()) return Status(Code::kInval, error);
  bool origin_inserted = false;
  if (std::optional<BarrierOp> origin = CompensatedOp(op)) {
    // The compensated operation's row first, in every request: conflicting requests then take
    // their row locks in the same order and cannot deadlock on each other.
    Result<bool> won = Inserted(runner.execute(InsertRow(flavor, options.table, key, *origin, op)),
                                BarrierOpName(*origin));
    if (!won.ok()) return won.status();
    origin_inserted = *won;
  }
  Result<bool> own = Inserted(runner.execute(InsertRow(flavor, options.table, key, op, op)),
                              BarrierOpName(op));
  if (!own.ok()) return own.status();
  std::optional<BarrierOp> existing_reason;
  if (!*own && (op == BarrierOp::kTry || op == BarrierOp::kAction)) {
    // After the insert lost, never before it: a locking read, which sees the committed row the
    // insert waited for even under REPEATABLE READ's older snapshot.
    std::string sql = "SELECT reason FROM " + options.table + " WHERE " +
                      KeyCondition(flavor, key) + " AND op = " +
                      std::to_string(static_cast<int>(op)) +
                      (flavor == BarrierSqlFlavor::kMariaDb ? " LOCK IN SHARE MODE" : " FOR SHARE");
    auto rows = runner.query(sql);
    if (!rows.ok()) return rows.status();
    if (!rows->empty() && !rows->front().empty() && rows->front().front().has_value()) {
      existing_reason = OpOfNumber(std::strtoll(rows->front().front()->c_str(), nullptr, 10));
    }
  }
  return DecideBarrier(op, origin_inserted, *own, existing_reason);
}

Result<int64_t> PurgeBarrierOnce(BarrierSqlFlavor flavor, const BarrierRunner& runner,
                                 const BarrierOptions& options) {
  if (std::string error = BarrierOptionsError(options); !error.empty()) {
    return Status(Code::kInval, error);
  }
  const std::string seconds = std::to_string(options.retention.count());
  const std::string finished =
      " WHERE op IN (" + std::to_string(static_cast<int>(BarrierOp::kConfirm)) + ", " +
      std::to_string(static_cast<int>(BarrierOp::kCancel)) + ", " +
      std::to_string(static_cast<int>(BarrierOp::kAction)) + ", " +
      std::to_string(static_cast<int>(BarrierOp::kCompensate)) + ") AND created_at < " +
      (flavor == BarrierSqlFlavor::kMariaDb
           ? "NOW(6) - INTERVAL " + seconds + " SECOND"
           : "clock_timestamp() - interval '" + seconds + " seconds'") +
      " LIMIT " + std::to_string(options.purge_batch);
  std::string list_sql =
      flavor == BarrierSqlFlavor::kMariaDb
          ? "SELECT DISTINCT HEX(global_id), HEX(branch_id) FROM " + options.table + finished
          : "SELECT DISTINCT encode(global_id, 'hex'), encode(branch_id, 'hex') FROM " +
                options.table + finished;
  auto rows = runner.query(list_sql);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return int64_t{0};
  std::string keys;
  for (const auto& row : *rows) {
    // Read back as hex, put into SQL again only once it parsed as hex.
    std::string global_id, branch_id;
    if (row.size() != 2 || !row[0].has_value() || !row[1].has_value() ||
        !ParseHex(*row[0], &global_id) || !ParseHex(*row[1], &branch_id) || global_id.empty() ||
        branch_id.empty()) {
      return Status(Code::kInternal,
                    "barrier purge: a listed key did not come back as two hex strings");
    }
    if (!keys.empty()) keys += ", ";
    keys += "(" + BinaryLiteral(flavor, global_id) + ", " +
            BinaryLiteral(flavor, branch_id) + ")";
  }
  return runner.execute("DELETE FROM " + options.table + " WHERE (global_id, branch_id) IN (" +
                        keys + ")");
}

}  // namespace xa::internal
