// Lock hold time measured from the database's side: a probe session asks the server for the
// lock of a row that a branch has written (SELECT ... FOR UPDATE, one blocking wait with a long
// lock timeout) and timestamps around its wait. The row is unavailable to others until the
// server grants the probe its lock, so the instant the probe's statement returns is the instant
// the branch's lock was released (to within one round trip of the probe's session), whatever
// the client that wrote the row believes.
//
//   auto probe = LockProbe::Connect(Database::kMariaDb, settings, "lockhold_accounts");
//   ... a branch writes row 7 ...
//   Result<Clock::time_point> granted = (*probe)->WaitForRow(7);
//
// LockWaitObserver reads the servers' own views (information_schema.innodb_trx and
// innodb_lock_waits on MariaDB, pg_locks on PostgreSQL) to confirm that a probe session is
// really waiting for a lock: the cross-check that the figures are the server's.
//
// Thread safety: each object is used by one thread at a time.

#ifndef XA_BENCH_LOCKHOLD_LOCK_PROBE_H_
#define XA_BENCH_LOCKHOLD_LOCK_PROBE_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "examples/bank/bank.h"
#include "xa/status.h"

namespace xa::bench {

using Clock = std::chrono::steady_clock;

enum class Database { kMariaDb, kPostgres };
const char* DatabaseName(Database database);

// A plain (non-XA) session on one of the bank's databases, for the probes and the observers.
class SqlSession {
 public:
  // As the bank's own user. `statement_timeout` bounds the longest statement (a probe's wait).
  static Result<std::unique_ptr<SqlSession>> Connect(Database database,
                                                     const bank::BankSettings& settings,
                                                     std::chrono::seconds statement_timeout);
  // MariaDB's root over its unix socket (XA_TEST_MARIADB_SOCKET, XA_TEST_MARIADB_ADMIN_USER of
  // scripts/servers.sh): information_schema.innodb_trx needs the PROCESS privilege, which the
  // bank's user does not have. PostgreSQL's pg_locks is readable by every user.
  static Result<std::unique_ptr<SqlSession>> ConnectObserver(Database database,
                                                             const bank::BankSettings& settings);
  virtual ~SqlSession() = default;

  virtual Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) = 0;
  Database database() const { return database_; }

 protected:
  explicit SqlSession(Database database) : database_(database) {}

 private:
  Database database_;
};

class LockProbe {
 public:
  // A probe session on `table` (columns id, balance) that waits up to `max_wait` for a lock.
  static Result<std::unique_ptr<LockProbe>> Connect(Database database,
                                                    const bank::BankSettings& settings,
                                                    std::string table,
                                                    std::chrono::seconds max_wait);

  // Asks for the lock of row `id` and returns the instant the server granted it. A wait longer
  // than max_wait fails with the server's lock-timeout error.
  Result<Clock::time_point> WaitForRow(int id);

  // The server's id of the probe's session: CONNECTION_ID() on MariaDB, pg_backend_pid() on
  // PostgreSQL; what the servers' lock views name it by.
  uint64_t session_id() const { return session_id_; }
  Database database() const { return session_->database(); }

 private:
  LockProbe(std::unique_ptr<SqlSession> session, std::string table, uint64_t session_id)
      : session_(std::move(session)), table_(std::move(table)), session_id_(session_id) {}
  std::unique_ptr<SqlSession> session_;
  std::string table_;
  uint64_t session_id_;
};

class LockWaitObserver {
 public:
  static Result<std::unique_ptr<LockWaitObserver>> Connect(Database database,
                                                           const bank::BankSettings& settings);

  // Whether the server's own views show session `session_id` waiting for a lock that another
  // transaction holds (MariaDB: its transaction in LOCK WAIT with a row in innodb_lock_waits;
  // PostgreSQL: a lock of its backend in pg_locks that is not granted).
  Result<bool> SessionWaitsForLock(uint64_t session_id);

 private:
  explicit LockWaitObserver(std::unique_ptr<SqlSession> session) : session_(std::move(session)) {}
  std::unique_ptr<SqlSession> session_;
};

}  // namespace xa::bench

#endif  // XA_BENCH_LOCKHOLD_LOCK_PROBE_H_
