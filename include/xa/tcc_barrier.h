// The participant barrier of TCC and compensable operations (docs/tcc-barrier.md).
//
// A participant service calls the barrier first thing inside the local database transaction of
// every Try, Confirm, Cancel, Action or Compensate it receives, and does what the verdict says:
//   - a repeated Confirm or Cancel (or a repeated Try) does nothing and succeeds (idempotency);
//   - a Cancel that arrives before its Try, or without one, records itself and succeeds
//     without running the business cancel (empty compensation);
//   - a Try that arrives after its Cancel is refused (anti-hanging), and so is an Action after
//     its Compensate.
// The barrier is a table in the participant's own database with one row per (global id, branch
// id, operation), and the verdict comes from which inserts of this transaction won on its
// primary key: the inserts conflict, the database orders them, and nothing is read before it is
// written (a read-then-insert barrier deadlocks under REPEATABLE READ). A conflicting insert
// waits for the transaction that holds the row, so two deliveries of one operation never both
// run: the second sees the first's outcome once it committed or rolled back.
//
// What it protects: the work done in the same local transaction as the barrier's rows. A side
// effect outside it (a message sent, a call to another service) is not undone when that
// transaction rolls back, and may repeat.
//
// The statements run through the drivers: xa/mysql/tcc_barrier.h (MySQL Connector/C++ on
// MariaDB) and xa/odbc/tcc_barrier.h (ODBC on MariaDB or PostgreSQL).
//
// Thread safety: values and pure functions; all are thread-safe.

#ifndef XA_TCC_BARRIER_H_
#define XA_TCC_BARRIER_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "xa/status.h"

namespace xa {

// The operation a participant received. Persisted in the barrier table by number.
enum class BarrierOp : uint8_t {
  kTry = 1,         // TCC: reserve
  kConfirm = 2,     // TCC: use the reservation
  kCancel = 3,      // TCC: release the reservation (compensates kTry)
  kAction = 4,      // compensable operation (saga step): do it
  kCompensate = 5,  // compensable operation: undo it (compensates kAction)
};

// "try", "confirm", "cancel", "action" or "compensate".
std::string_view BarrierOpName(BarrierOp op) noexcept;
// The operation `op` undoes: kTry for kCancel, kAction for kCompensate; nullopt for the others.
std::optional<BarrierOp> CompensatedOp(BarrierOp op) noexcept;

// What the participant does with the request, inside the same local transaction.
enum class BarrierVerdict : uint8_t {
  // First delivery: run the business operation, then commit (the barrier's rows commit with it;
  // a rollback takes them back, so the operation can be delivered again).
  kRun,
  // Delivered before, and that delivery committed: do nothing and answer as it did.
  kRepeated,
  // A Cancel (Compensate) whose Try (Action) never ran here: nothing to undo. Commit (the rows
  // just written refuse the Try if it comes later) and answer success.
  kEmptyCompensation,
  // A Try (Action) after its Cancel (Compensate): refuse it without doing anything (a TCC Try
  // answers "refused", HTTP 409). Committing or rolling back changes nothing.
  kRefusedAfterCompensation,
};

// "run", "repeated", "empty compensation" or "refused after compensation".
std::string_view BarrierVerdictName(BarrierVerdict verdict) noexcept;

// The one rule of the barrier. `origin_inserted`: for a compensation, whether this
// transaction's insert of the compensated operation's row (kTry for kCancel) won, i.e. that
// operation never reached the barrier; false for the other operations. `own_inserted`: whether
// the insert of `op`'s own row won. `existing_reason`: when it did not win, the operation whose
// request wrote the row that is there (a kTry row written by a kCancel marks an empty
// compensation).
BarrierVerdict DecideBarrier(BarrierOp op, bool origin_inserted, bool own_inserted,
                             std::optional<BarrierOp> existing_reason) noexcept;

// Which request the barrier judges: the global transaction and the participant's branch in it.
// Both are compared byte for byte (stored as binary: no collation folds 'A' and 'a').
struct BarrierKey {
  std::string global_id;  // 1..128 bytes
  std::string branch_id;  // 1..64 bytes
};

// Why `key` cannot be used, "" when it can.
std::string BarrierKeyError(const BarrierKey& key);

// The barrier table and its clean-up. Each participant database holds one table (schema in
// docs/tcc-barrier.md; created by the drivers' CreateBarrierTable).
struct BarrierOptions {
  // Optionally schema-qualified; the same rule as a marker table (MarkerTableNameError).
  std::string table = "xa_tcc_barrier";
  // How long the rows of a finished branch are kept before PurgeBarrier may delete them. A
  // branch is finished once its Confirm, Cancel or Compensate row exists; an Action row counts
  // as finished once it is this old. Longer than any request can be delayed and then delivered:
  // a Try delayed past the deletion of its empty Cancel's rows would run and then hang, and a
  // repeated Confirm past the deletion of its rows would run again. Rows of a Try with neither
  // Confirm nor Cancel are never deleted: its transaction is not finished. At least an hour.
  std::chrono::seconds retention = std::chrono::hours(24 * 7);
  // At most this many finished branches are deleted by one PurgeBarrier call (1..10000).
  size_t purge_batch = 1000;
};

// Why `options` cannot be used, "" when they can.
std::string BarrierOptionsError(const BarrierOptions& options);

class Clock;

// The clean-up job of a participant service's barrier table: every `interval` it calls
// `purge_once` (a driver's PurgeBarrier on a connection of the service's, for example
//   [&] { return xa::mysql::PurgeBarrier(*purge_connection, options); }
// ) until that returns 0 rows or `max_batches_per_run` calls were made, so one run deletes at
// most max_batches_per_run * BarrierOptions::purge_batch branches and a large backlog is worked
// off over several runs instead of holding the database busy. A failed call ends the run (logged,
// counted); the next run tries again. The first run starts at once.
struct BarrierPurgeJobOptions {
  // From the end of one run to the start of the next.
  std::chrono::milliseconds interval = std::chrono::minutes(10);
  // The most calls of purge_once in one run (0 counts as 1).
  size_t max_batches_per_run = 100;
  Clock* clock = nullptr;  // the waits between runs; nullptr: Env::Default()'s
};

// The job itself (see BarrierPurgeJobOptions): a thread of its own from construction to Stop().
// Thread safety: every public member is thread-safe.
class BarrierPurgeJob {
 public:
  // Rows deleted by one call, or why it failed.
  using PurgeOnce = std::function<Result<int64_t>()>;
  // What the job has done so far.
  struct Stats {
    uint64_t runs = 0;          // runs finished
    uint64_t calls = 0;         // calls of purge_once
    uint64_t rows_deleted = 0;  // their rows
    uint64_t failures = 0;      // calls that failed
  };

  // Starts the job's thread.
  BarrierPurgeJob(PurgeOnce purge_once, BarrierPurgeJobOptions options = {});
  BarrierPurgeJob(const BarrierPurgeJob&) = delete;
  BarrierPurgeJob& operator=(const BarrierPurgeJob&) = delete;
  // Stop().
  ~BarrierPurgeJob();

  // Returns once the call in progress (if any) has returned; no call is made after it.
  void Stop();
  // What the job has done so far.
  Stats stats() const;

 private:
  void Run();

  PurgeOnce purge_once_;
  BarrierPurgeJobOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace xa

#endif  // XA_TCC_BARRIER_H_
