// The PostgreSQL two-phase-commit dialect: statement text, GID handling, the capability probe,
// pg_prepared_xacts rows and the mapping of SQLSTATEs to XA codes. Used by the PostgreSQL dialect
// of the ODBC driver (drivers/odbc); a libpq driver would use it unchanged.
//
// Pure text and value handling: no driver headers, no I/O. A driver runs the statements and hands
// (SQLSTATE, server text) to MapPostgresError().
//
// A branch on PostgreSQL is an ordinary transaction block that ends with PREPARE TRANSACTION:
//   branch work ............ (the driver opens the transaction block, e.g. psqlODBC in manual-commit
//                             mode sends BEGIN with the first statement)
//   read-only probe ........ ReadOnlyProbeSql(): one round trip that also fails (25P02) when an
//                             earlier statement aborted the transaction
//   PREPARE TRANSACTION 'g'  PrepareTransactionSql()
//   COMMIT PREPARED 'g' / ROLLBACK PREPARED 'g'   outside any transaction block (autocommit)
// The GID is XidToGid(): "xa1.<format hex, 8 lower-case digits>.<base64url gtrid>.<base64url bqual>"
// (base64url without padding), at most 186 bytes of [A-Za-z0-9._-]. These statements take no bind parameters, so the GID is pasted as a
// literal: GidLiteral() re-checks the alphabet and the length before it quotes it, so even a bug
// in the renderer cannot become SQL.
//
// Server facts this dialect relies on (PostgreSQL 15, checked against the local server):
//   - PREPARE TRANSACTION inside an ABORTED transaction block does not fail: it ends the block as
//     ROLLBACK and reports success. Hence the probe before every PREPARE (and before a one-phase
//     COMMIT, which does the same).
//   - A failed PREPARE TRANSACTION rolls the transaction back (42710 duplicate GID, 55000
//     disabled, 53200 no free slot, 0A000 temporary objects, deferred constraint violations...).
//   - A transaction that never wrote has no transaction id: txid_current_if_assigned() (and
//     pg_current_xact_id_if_assigned() from 13 on) is NULL. Such a branch is committed instead of
//     prepared: XA_RDONLY, no prepared-transaction slot, no fsync.
//   - COMMIT/ROLLBACK PREPARED may be run only by the role that prepared the transaction or by a
//     superuser (42501), and only from the database it belongs to (0A000).
//   - A prepared transaction that another session is committing is "busy" (55000): retry.
//   - A session terminated by pg_terminate_backend (57P01) or a lost connection (class 08) leaves
//     a prepared transaction intact: in doubt, retry from a new connection; never "gone".
//
// Thread safety: free functions over values; all are thread-safe.

#ifndef XA_SRC_SQL_DIALECT_POSTGRES_DIALECT_H_
#define XA_SRC_SQL_DIALECT_POSTGRES_DIALECT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/sql_dialect/commit_marker.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal::postgres {

// PostgreSQL's own limit: a GID is shorter than 200 bytes (GIDSIZE).
inline constexpr size_t kMaxGidSize = 199;

// ---- The Xid on PostgreSQL -----------------------------------------------------------------

// Longest GID that XidToGid() makes: "xa1." + 8 hex digits + "." + 86 + "." + 86.
inline constexpr size_t kMaxXaGidSize = 4 + 8 + 1 + 86 + 1 + 86;
static_assert(kMaxXaGidSize <= kMaxGidSize);

// The GID of `xid`: see the file comment.
std::string XidToGid(const Xid& xid);
// Strict: anything that XidToGid() would not have written is refused (XAER_INVAL), so a foreign
// prepared transaction is reported, never misread as ours.
Result<Xid> XidFromGid(std::string_view gid);

// ---- Statement text ------------------------------------------------------------------------

// The GID of `xid` as a quoted SQL literal: 'xa1.58414d31.AQID.AQAB'. XA_INTERNAL if the rendered
// GID is not what XidToGid() promises (longer than 199 bytes or outside
// [A-Za-z0-9._-]); it is never quoted then.
Result<std::string> GidLiteral(const Xid& xid);
Result<std::string> PrepareTransactionSql(const Xid& xid);
Result<std::string> CommitPreparedSql(const Xid& xid);
Result<std::string> RollbackPreparedSql(const Xid& xid);

// The capability probe, one row:
//   0 server_version (text)          1 server_version_num      2 max_prepared_transactions
//   3 max_connections                4 superuser (0/1)         5 may read pg_prepared_xacts (0/1)
//   6 current_user                   7 current_database()       8 pg_backend_pid()
inline constexpr std::string_view kProbeSql =
    "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
    "current_setting('max_prepared_transactions')::int, current_setting('max_connections')::int, "
    "(current_setting('is_superuser') = 'on')::int, "
    "(has_table_privilege('pg_catalog.pg_prepared_xacts', 'SELECT') AND "
    "has_function_privilege('pg_catalog.pg_prepared_xact()', 'EXECUTE'))::int, "
    "current_user::text, current_database()::text, pg_catalog.pg_backend_pid()";
inline constexpr size_t kProbeColumns = 9;

// One row, one int column: 1 when the open transaction has no transaction id (it wrote nothing:
// read-only), 0 otherwise. Fails with 25P02 when the transaction is aborted.
std::string_view ReadOnlyProbeSql(int64_t server_version_num) noexcept;

// Columns: gid, owner, 1 when owner = current_user. Only this database's prepared transactions:
// COMMIT/ROLLBACK PREPARED cannot reach the others from this connection anyway.
inline constexpr std::string_view kRecoverSql =
    "SELECT gid, owner::text, (owner = current_user)::int FROM pg_catalog.pg_prepared_xacts "
    "WHERE database = current_database()";

// ---- The commit marker (xa/marker.h; docs/marker-commit.md) ------------------------------
//
// The statements of the five marker calls of ResourceManager. The gtrid goes in as a bytea hex
// literal '\x..'::bytea (GtridLiteral; with standard_conforming_strings on, the default since
// PostgreSQL 9.1, the backslash is an ordinary character there), the table name as it is, after
// CheckMarkerTable (commit_marker.h), which every function here applies again: XAER_INVAL, and
// no text, for a name that is no plain identifier. Rows are read with the gtrid as
// encode(gtrid, 'hex'), so no driver has to fetch bytea.
//
// Server facts the marker relies on (PostgreSQL 15, checked against the local server by the
// ODBC suite, tests/drivers/odbc/odbc_marker_test.cc):
//   - INSERT ... ON CONFLICT (gtrid) DO NOTHING of a key that another transaction inserted and
//     has not committed waits for that transaction, under lock_timeout: it then does nothing if
//     the other committed, inserts if it rolled back, and fails with 55P03 if lock_timeout ran
//     out. The SELECT that follows it in the same READ COMMITTED transaction sees the committed
//     row. (Under REPEATABLE READ the insert would fail with 40001 instead, hence the settle's
//     SET TRANSACTION ISOLATION LEVEL READ COMMITTED.)
//   - SET LOCAL lock_timeout lasts until the transaction ends. lock_timeout = 0 means "wait
//     forever", so the settle never sends less than 1ms.
//   - The coordinator's INSERT in a branch fails with 23505 when the row is there; the
//     transaction block is then aborted, unless psqlODBC's statement-level rollback undid the
//     statement alone (PostgresErrorRollback): the driver rolls the branch back either way.
//   - A missing table (or schema) is 42P01 (3F000), a refused privilege 42501, a missing column
//     42703.

// '\x<gtrid hex>'::bytea: the gtrid alone, as the marker table keys it.
std::string GtridLiteral(const Xid& global);
// The documented schema: CREATE TABLE IF NOT EXISTS <table> (...), then CREATE INDEX IF NOT
// EXISTS <table name>_by_node ON <table> (node_id, created), the index named after the table
// part of a schema-qualified name (an index lives in its table's schema). For tests, the bench
// and the docs; xa itself never creates the table.
Result<std::vector<std::string>> CreateMarkerTableSql(std::string_view table);
// INSERT INTO <table> (gtrid, format_id, node_id, outcome) VALUES ('\x..'::bytea, <format id>,
// <node id>, 'C'): run in the marker branch's transaction block. The node id is Xid::NodeId(), 0
// for an Xid that xa did not make. The bqual is not stored: the row keys on the gtrid.
Result<std::string> WriteCommitMarkerSql(std::string_view table, const Xid& global);
// The settle, in one transaction (the driver opens and commits it): these three statements, then
// ReadOutcomeSql. lock_timeout is `wait` in milliseconds, at least 1 (0 would mean no limit) and
// at most 2147483647.
inline constexpr std::string_view kReadCommittedSql =
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
std::string SettleLockTimeoutSql(std::chrono::milliseconds wait);  // SET LOCAL lock_timeout = ...
// INSERT INTO <table> ... 'A' ON CONFLICT (gtrid) DO NOTHING.
Result<std::string> SettleCommitMarkerSql(std::string_view table, const Xid& global);
// SELECT outcome FROM <table> WHERE gtrid = '\x..'::bytea.
Result<std::string> ReadOutcomeSql(std::string_view table, const Xid& global);
// SELECT encode(gtrid, 'hex'), format_id, outcome FROM <table> WHERE gtrid IN (...), one
// statement per kMarkerChunkSize Xids; none for an empty list. Plain reads: they never wait.
Result<std::vector<std::string>> ReadCommitMarkersSql(std::string_view table,
                                                      const std::vector<Xid>& globals);
// SELECT encode(gtrid, 'hex'), format_id, outcome FROM <table> WHERE node_id = <node> ORDER BY
// created, gtrid LIMIT <limit> (at most 2^63 - 1). LIMIT 0 reads nothing but still fails when
// the table is missing or not readable.
Result<std::string> ListCommitMarkersSql(std::string_view table, uint32_t node_id, size_t limit);
// DELETE FROM <table> WHERE gtrid IN (...), one statement per kMarkerChunkSize Xids; none for an
// empty list. More than one runs in one transaction.
Result<std::vector<std::string>> DeleteCommitMarkersSql(std::string_view table,
                                                        const std::vector<Xid>& globals);

// ---- Capability probe ----------------------------------------------------------------------

struct ProbeRow {
  std::string version_text;  // "15.18 (Debian 15.18-0+deb12u1)"
  int64_t version_num = 0;   // 150018
  int64_t max_prepared_transactions = 0;
  int64_t max_connections = 0;
  bool superuser = false;
  bool may_read_prepared = false;
  std::string user;
  std::string database;
  int64_t backend_pid = 0;  // the session's id, as pg_stat_activity.pid shows it
};

// The oldest server we accept: txid_current_if_assigned() appeared in PostgreSQL 10.
inline constexpr int64_t kMinVersionNum = 100000;

// Fills `info` from the probe and refuses, with XA_CONFIG and how to fix it, a server that cannot
// run two-phase commit: max_prepared_transactions = 0, a version before 10. Read access to
// pg_prepared_xacts only sets info->may_recover (the scan then fails with its own message).
Status CheckProbe(const ProbeRow& probe, std::string_view rm_name, ServerInfo* info);
// Advice worth a warning on an accepted server (empty when none): max_prepared_transactions below
// max_connections lets sessions fail PREPARE with 53200 under load.
std::string ProbeWarning(const ProbeRow& probe);

// ---- Recover scan --------------------------------------------------------------------------

struct RecoverRow {
  std::string gid;
  std::string owner;
  bool owned_by_current_user = false;
};

// Every row becomes a well-formed Xid in `prepared` (ours and foreign alike) or an entry in
// `unparsed` (escaped GID and the reason, with its owner). Never fails: a hostile GID can never
// stop recovery. Rows that parse but that this role may not finish (another owner, and we are no
// superuser) stay in `prepared` (hiding them would let recovery take a pending branch for
// finished) and are described in `untouchable`, one line each, for the driver to log: finishing
// them fails with XA_CONFIG and says which role to use.
RecoverScan ParseRecoverRows(const std::vector<RecoverRow>& rows, bool superuser,
                             std::vector<std::string>* untouchable);

// ---- The 3PC fence ------------------------------------------------------------------------
//
// ResourceManager::FenceSession on PostgreSQL: pg_terminate_backend(pid), then the wait of
// session_wait.h over BackendPresentSql(pid). PostgreSQL detaches a branch at PREPARE
// TRANSACTION, so no branch needs the fence there; it still ends a coordinator's session for
// good. A role may end its own sessions; another role's need membership in that role or in
// pg_signal_backend (a superuser's only a superuser). Every role sees every pid in
// pg_stat_activity.

// One row, one boolean column: true once the backend was signalled, false (with a warning)
// when `pid` is no backend this server knows. nullopt when `pid` cannot be a backend at all
// (outside 1..2^31-1): there is nothing to end.
std::optional<std::string> TerminateBackendSql(uint64_t pid);
// One row, one column: 1 while pg_stat_activity lists the backend, 0 once it is gone. Run each
// in its own transaction (autocommit): pg_stat_activity is a snapshot per transaction.
std::string BackendPresentSql(uint64_t pid);
// The Status of a failed pg_terminate_backend: XAER_RMERR naming the grant for 42501 (another
// role's session), MapPostgresError(Step::kFence) otherwise.
Status TerminateFailure(std::string_view sqlstate, std::string_view text,
                        std::string_view rm_name, uint64_t pid, std::string_view user);

// ---- Errors --------------------------------------------------------------------------------

// What the driver was doing: the same SQLSTATE means different things in different steps (42704
// is "no such branch" on COMMIT PREPARED and a bug elsewhere; an error during PREPARE means the
// branch has been rolled back, unless the connection was lost).
enum class Step : uint8_t {
  kConnect,
  kProbe,
  kBegin,           // manual-commit mode, where psqlODBC sends BEGIN (PostgreSQL has no XA START)
  kWork,            // the application's statements on the branch's connection
  kReadOnlyProbe,   // ReadOnlyProbeSql() before PREPARE or one-phase COMMIT
  kPrepare,         // PREPARE TRANSACTION
  kCommitOnePhase,  // COMMIT of an unprepared branch
  kCommitPrepared,  // COMMIT PREPARED
  kRollback,        // ROLLBACK of an unprepared branch
  kRollbackPrepared,
  kRecover,
  kFence,           // pg_terminate_backend and the wait for the backend to go
  kWriteMarker,     // WriteCommitMarker's INSERT in the branch: mapped as kWork
  kMarker,          // the other marker calls' statements, outside any branch
};
std::string_view StepName(Step step) noexcept;  // "PREPARE TRANSACTION", ...
// Whether a connection lost during `step` can leave the branch in doubt: only PREPARE
// TRANSACTION, a one-phase COMMIT and COMMIT/ROLLBACK PREPARED may have changed it on the
// server. Before them no prepared transaction of this call exists, and PostgreSQL rolls back an
// unprepared one with its session.
bool LostConnectionLeavesBranchInDoubt(Step step) noexcept;

// SQLSTATEs after which the session is gone and whatever it was doing is in doubt: class 08
// (including ODBC's 08S01), 57P01-57P05 (terminated, crash, shutting down, database dropped, idle
// session timeout), 25P03 (idle-in-transaction timeout).
bool IsConnectionLost(std::string_view sqlstate) noexcept;

// SQLSTATE (and, for 55000 and 22023, the server's text) → XA code in `step`:
//   lost connection (IsConnectionLost), 57014 query canceled (except in kWork) and 40003
//     statement completion unknown → XAER_RMFAIL: in doubt, reopen and retry, never "gone";
//   42704 on COMMIT/ROLLBACK PREPARED → XAER_NOTA;
//   42710 → XAER_DUPID (on PREPARE: the branch has been rolled back);
//   22023 "too long" → XAER_INVAL;
//   55000 "disabled" → XA_CONFIG; 55000 "busy" → XA_RETRY;
//   53200 (no free prepared-transaction slot; also out of memory) → XAER_RMERR, with an alert;
//   40P01 deadlock → XA_RBDEADLOCK; 40001 serialization failure → XA_RBTRANSIENT (retrying the
//     whole transaction may succeed); 40002 and class 23 (deferred constraints fire at PREPARE
//     and COMMIT) → XA_RBINTEGRITY, except in kWork (XAER_RMERR: the statement failed, the
//     application decides); 57014 (statement_timeout) and 55P03 (lock_timeout) in kWork →
//     XA_RBTIMEOUT, as MariaDB's lock wait timeout (1205);
//   55P03 (lock_timeout) in kMarker → XA_RETRY: the settle's wait for a marker row ran out;
//   kWriteMarker is mapped as kWork, and class 23 in kMarker is XAER_RMERR too;
//   25P02 (transaction aborted by an earlier error) → XA_RBROLLBACK;
//   42501 (not the owner; no access to pg_prepared_xacts), 0A000 "another database",
//     28xxx (authentication), 3D000 (no such database) → XA_CONFIG, saying what to change;
//   25001 (inside a transaction block) → XA_INTERNAL (a bug in xa);
//   any other error during PREPARE → XA_RBROLLBACK (PostgreSQL rolls a failed PREPARE back);
//   anything else → XAER_RMERR.
Code CodeForPostgresError(Step step, std::string_view sqlstate, std::string_view text) noexcept;

// The Status for a failed statement: names the RM, the step, the Xid (when there is one), the
// server's error (SQLSTATE, escaped text) and what to do. Never contains a password: the caller
// must not pass one.
Status MapPostgresError(Step step, std::string_view sqlstate, std::string_view text,
                        std::string_view rm_name, const Xid* xid);

// The Status of a failed marker statement of `call`, from `mapped` (MapPostgresError with
// kWriteMarker or kMarker) and its SQLSTATE: 23505 in kWrite is XAER_DUPID
// (MarkerAlreadySettled), 55P03 in kSettle XA_RETRY (MarkerStillHeld), and a missing table, a
// refused privilege or a missing column keep their code with what to do about the table
// (WithMarkerTableAdvice).
Status ReadMarkerError(Status mapped, std::string_view sqlstate, MarkerCall call,
                       std::string_view rm_name, std::string_view table, std::string_view user,
                       const Xid* global);

}  // namespace xa::internal::postgres

#endif  // XA_SRC_SQL_DIALECT_POSTGRES_DIALECT_H_
