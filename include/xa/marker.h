// The commit marker: the row that decides a marker-commit transaction (Protocol::kMarkerCommit).
//
// A marker-commit transaction prepares every branch but one, then commits that last branch, on
// the marker resource manager, in one phase together with a row for its global Xid in a small
// table of that database: the marker table. That commit is the transaction's decision, so the
// coordinator writes no decision record and the last branch is never prepared. Recovery settles
// a prepared branch of such a transaction by the row (see ResourceManager::SettleCommitMarker).
// The table's schema, the privileges it needs and the protocol's failure cases are in
// docs/marker-commit.md.
//
// Thread safety: value types and free functions.

#ifndef XA_MARKER_H_
#define XA_MARKER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "xa/xid.h"

namespace xa {

// What a marker row says. Stored as one character: 'C' or 'A'.
enum class MarkerOutcome : uint8_t {
  kCommitted = 1,  // 'C': written by the coordinator in the marker branch, which committed
  kAborted = 2,    // 'A': written by recovery, which found no row; the transaction rolls back
};

// One row of the marker table.
struct MarkerRow {
  Xid global;  // the transaction's global Xid (format ID and gtrid; empty bqual)
  MarkerOutcome outcome = MarkerOutcome::kCommitted;
};

// "committed" or "aborted".
std::string_view MarkerOutcomeName(MarkerOutcome outcome) noexcept;

// Why `table` cannot name a marker table, "" when it can: 1 to 64 ASCII letters, digits and
// underscores, not starting with a digit, optionally qualified by a schema (MariaDB: database)
// name of the same form and a '.'. Nothing else, so the name goes into SQL as it is.
std::string MarkerTableNameError(std::string_view table);

}  // namespace xa

#endif  // XA_MARKER_H_
