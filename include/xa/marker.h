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

#include <chrono>
#include <cstddef>
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
  // What the row says.
  MarkerOutcome outcome = MarkerOutcome::kCommitted;
};

// Where marker-commit transactions keep their marker, and how the rows are settled and cleaned
// up: TransactionManagerOptions::marker_commit, and RecoveryOptions::marker for the recovery of
// their branches.
struct MarkerCommitOptions {
  // The resource manager (its ResourceManager::name()) whose database holds the marker table.
  // "" turns marker commit off: Begin(Protocol::kMarkerCommit) fails with XA_NOTSUPPORTED, and
  // recovery leaves a marker-commit branch alone (it must not presume abort: its marker branch
  // may have committed). It needs a factory in TransactionManagerOptions::resource_managers.
  std::string rm;
  // The marker table, optionally schema-qualified ("xa.xa_commit_marker"); see
  // MarkerTableNameError and docs/marker-commit.md for its schema. Open() refuses to start when
  // it cannot read it.
  std::string table = "xa_commit_marker";
  // How long one settle waits for a marker row that another transaction still holds (a marker
  // branch in flight, or a dead session the server has not cleaned up yet) before trying again.
  std::chrono::milliseconds settle_wait{1000};
  // Rows of finished transactions are deleted in statements of at most this many rows, by the
  // manager's cleaner thread, once this many wait or `cleanup_interval` has passed.
  size_t cleanup_batch = 500;
  // The longest a finished transaction's row waits for the cleaner (see cleanup_batch).
  std::chrono::milliseconds cleanup_interval{200};
};

// "committed" or "aborted".
std::string_view MarkerOutcomeName(MarkerOutcome outcome) noexcept;

// Why `table` cannot name a marker table, "" when it can: 1 to 64 ASCII letters, digits and
// underscores, not starting with a digit, optionally qualified by a schema (MariaDB: database)
// name of the same form and a '.'. Nothing else, so the name goes into SQL as it is.
std::string MarkerTableNameError(std::string_view table);

}  // namespace xa

#endif  // XA_MARKER_H_
