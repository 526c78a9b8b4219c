// What the two SQL dialects share about the commit marker (xa/marker.h; docs/marker-commit.md):
// the table-name check, the batching of Xid lists, the reading of a row back and the messages of
// the cases every driver reports alike. The statement text itself is in mariadb_dialect.h and
// postgres_dialect.h, next to each database's XA statements.
//
// Pure text and value handling: no driver headers, no I/O.
//
// Thread safety: free functions over values; all are thread-safe.

#ifndef XA_SRC_SQL_DIALECT_COMMIT_MARKER_H_
#define XA_SRC_SQL_DIALECT_COMMIT_MARKER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/marker.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

// The most Xids one statement names in its IN (...) list: reads and deletes of more run in
// several statements.
inline constexpr size_t kMarkerChunkSize = 500;

// How a dialect writes a gtrid as an SQL literal (hex only: MariaDB X'..', PostgreSQL
// '\\x..'::bytea).
using GtridLiteralFn = std::string (*)(const Xid& global);
// The IN (...) list of a chunk: each gtrid as `literal` writes it, comma-separated.
std::string GtridList(const std::vector<Xid>& globals, GtridLiteralFn literal);
// A row's values: (<gtrid literal>, <format id>, <node id>, '<outcome>'); the node id is
// Xid::NodeId(), 0 for an Xid that xa did not make.
std::string MarkerValues(const Xid& global, char outcome, GtridLiteralFn literal);

// Splits `globals` into lists of at most kMarkerChunkSize, in order; none for an empty input.
std::vector<std::vector<Xid>> MarkerChunks(const std::vector<Xid>& globals);
// One statement per chunk of `globals` (MarkerChunks): `prefix` followed by
// "gtrid IN (<the chunk's GtridList>)". The reads and deletes of marker rows of both dialects.
std::vector<std::string> ChunkedMarkerStatements(std::string_view prefix,
                                                 const std::vector<Xid>& globals,
                                                 GtridLiteralFn literal);

// The resource manager call a marker statement belongs to: it decides the privilege a refusal
// names and how some errors read (a duplicate key in kWrite, a lock wait in kSettle).
enum class MarkerCall : uint8_t { kWrite, kSettle, kRead, kList, kDelete };
// "WriteCommitMarker", "SettleCommitMarker", ...
std::string_view MarkerCallName(MarkerCall call) noexcept;
// The privilege(s) on the table the call's statements need: "INSERT", "INSERT and SELECT", ...
std::string_view MarkerCallPrivilege(MarkerCall call) noexcept;

// XAER_INVAL when `table` is no valid marker table name (MarkerTableNameError): nothing may run
// then, since the name goes into SQL as it is. The message names `rm_name` unless it is empty.
// Every statement builder calls it, on every commit, although the manager checked the name at
// Open: a builder must never put an unchecked name into SQL, whoever calls it, and the check is
// a few dozen character comparisons against a commit's round trips.
Status CheckMarkerTable(std::string_view table, std::string_view rm_name);

// What a failed marker statement says about the table itself.
enum class MarkerTableProblem : uint8_t {
  kNone,          // nothing about the table: the error is the statement's own
  kMissing,       // no such table (or schema)
  kNoPrivilege,   // the user may not run this statement on it
  kWrongColumns,  // it exists but lacks the documented columns
};

// `mapped` (the driver's Status for the failure, code kept) with what is wrong with the table
// and what to do: create it (docs/marker-commit.md), grant the privilege to `user`, or fix its
// columns. `mapped` itself for kNone.
Status WithMarkerTableAdvice(Status mapped, MarkerTableProblem problem, MarkerCall call,
                             std::string_view table, std::string_view user);

// XAER_DUPID for a WriteCommitMarker whose row is there already: recovery settled the
// transaction as aborted (or the coordinator wrote it twice); the caller rolls back.
Status MarkerAlreadySettled(std::string_view rm_name, std::string_view table, const Xid& global,
                            std::string_view server_error);
// XA_RETRY for a SettleCommitMarker whose wait for the row ran out.
Status MarkerStillHeld(std::string_view rm_name, std::string_view table, const Xid& global,
                       std::string_view server_error);
// XAER_PROTO for a marker call made in the wrong state of the session: `why` says which.
Status MarkerCallRefused(std::string_view rm_name, MarkerCall call, std::string_view why);

// The outcome column read back: 'C' or 'A' (trailing blanks of a CHAR column allowed).
// XAER_RMERR naming the value and the row otherwise, and for NULL.
Result<MarkerOutcome> ParseMarkerOutcome(const std::optional<std::string>& text,
                                         std::string_view rm_name, std::string_view table,
                                         std::string_view gtrid_hex);
// One row (gtrid as hex of either case, format_id as a decimal, outcome) as the drivers read
// them as text. XAER_RMERR naming the row when any of them is no valid marker value: a damaged
// marker table must be seen, never skipped.
Result<MarkerRow> ParseMarkerRow(const std::optional<std::string>& gtrid_hex,
                                 const std::optional<std::string>& format_id,
                                 const std::optional<std::string>& outcome,
                                 std::string_view rm_name, std::string_view table);
// Rows as the drivers read them, every column as text (nullopt for NULL): (hex gtrid, format_id,
// outcome), as the dialects' reads select them. The first row that is no valid marker (or has
// not three columns) fails the whole answer with ParseMarkerRow's XAER_RMERR.
using MarkerTextRow = std::vector<std::optional<std::string>>;
Result<std::vector<MarkerRow>> ParseMarkerRows(const std::vector<MarkerTextRow>& rows,
                                               std::string_view rm_name, std::string_view table);
// XAER_RMERR for a settle that inserted or found the row and then could not read it back (it was
// deleted in between: DeleteCommitMarkers of a transaction still being settled).
Status MarkerRowVanished(std::string_view rm_name, std::string_view table, const Xid& global);

}  // namespace xa::internal

#endif  // XA_SRC_SQL_DIALECT_COMMIT_MARKER_H_
