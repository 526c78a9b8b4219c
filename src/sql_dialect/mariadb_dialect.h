// The MariaDB/MySQL XA dialect: statement text, XA RECOVER rows, version checks and the mapping
// of server error numbers to XA codes. Shared by the Connector/C++ driver (drivers/mysql) and the
// MariaDB dialect of the ODBC driver (drivers/odbc).
//
// Pure text and value handling: no driver headers, no I/O. A driver runs the statements, catches
// its own exceptions or SQLRETURNs at its edge and hands (errno, SQLSTATE, text) to
// MapMariaDbError().
//
// Statements (every Xid is written as hex literals by XidLiteral(), never as raw bytes, so no Xid
// can inject SQL):
//   XA START <xid> [JOIN|RESUME]      XA END <xid> [SUSPEND]      XA PREPARE <xid>
//   XA COMMIT <xid> [ONE PHASE]       XA ROLLBACK <xid>           XA RECOVER FORMAT='SQL'
// and the commit marker's INSERT, SELECT and DELETE (see "The commit marker" below).
//
// Server facts this dialect relies on (MariaDB 10.11, checked against the local server):
//   - A prepared branch survives its session's disconnect only on MariaDB >= 10.5 and
//     MySQL >= 5.7.7; older servers roll it back, so CheckServerVersion() refuses them.
//   - XA START while a local transaction is open fails with 1400 (XAER_OUTSIDE).
//   - A statement the branch's state does not allow fails with 1399 (XAER_RMFAIL, "...when
//     global transaction is in the ACTIVE/IDLE/PREPARED state"), e.g. XA PREPARE before XA END,
//     XA ROLLBACK of an ACTIVE branch, or, in a session that prepared a branch, every statement
//     that touches a table and XA START, until that branch is committed or rolled back there or
//     the session ends (a statement without a table, as SELECT 1 or SELECT CONNECTION_ID(),
//     still runs there). The session is fine and the branch is unchanged. (The read-only probe
//     below does run in IDLE.)
//   - A deadlock (1213) rolls the whole branch back and leaves it ROLLBACK ONLY: the next XA END
//     fails with 1399 ("...in the ROLLBACK ONLY state", not 1614) and XA ROLLBACK ends it.
//   - While the session that prepared a branch is still connected (or has not yet reached its
//     cleanup after a disconnect or KILL), XA COMMIT / XA ROLLBACK of that branch from ANOTHER
//     session fail with 1397 (XAER_NOTA) although XA RECOVER lists it. That NOTA is false:
//     ReadPhaseTwoNota() below decides what a 1397 means.
//   - The detach window (MariaDB 10.11, measured: tests/drivers, "DetachWindow"): a session that
//     ends while it holds a prepared branch first hands the branch over in the server's XA list
//     (XA RECOVER lists it, any session may finish it) and only a moment later detaches it from
//     its InnoDB transaction. An XA COMMIT or XA ROLLBACK from another session in between
//     answers OK and does NOTHING: InnoDB does not find the branch, the server ignores that,
//     and drops the xid from its list. The branch stays prepared in InnoDB, holding its locks,
//     invisible to XA RECOVER until the server restarts, when it is listed again. A commit
//     reported but not applied: on a busy machine about 1 in 150 phase-2 calls made right after
//     the preparer disconnected. The server removes the ending session from the process list
//     after the hand-over and a few instructions before the detach, so a driver that ended a
//     session holding a prepared branch must not finish that branch from another session until
//     the ended session is gone from the process list (SessionPresentSql). A driver cannot see
//     the window of a session it did not end (another process's crash, a KILL by an operator):
//     finishing a branch in the same instant as its preparer's disconnect stays unsafe, which
//     is why recovery runs after the crash, not during it.
//     A 1397 with the xid NOT listed never came up in that window (the xid stays in the list
//     from XA START until a completion removes it), so the confirming scan below is sound; a
//     second scan adds nothing.
//   - A lock wait timeout (1205) rolls back only the statement (unless innodb_rollback_on_timeout
//     is ON); the branch stays ACTIVE. We still classify it as XA_RBTIMEOUT: the caller must roll
//     the branch back, and the Connector/C++ driver enforces that (see MySqlResourceManager).
//   - A read-only or empty branch can be prepared and is listed by XA RECOVER, but XA COMMIT from
//     another session fails with 1402 (XA_RBROLLBACK). Drivers must use the read-only
//     optimisation (ReadOnlyProbeSql) so such branches are never left prepared.
//
// Thread safety: free functions over values; all are thread-safe.

#ifndef XA_SRC_SQL_DIALECT_MARIADB_DIALECT_H_
#define XA_SRC_SQL_DIALECT_MARIADB_DIALECT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/escape.h"
#include "src/sql_dialect/commit_marker.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal::mariadb {

// ---- The Xid on MariaDB/MySQL --------------------------------------------------------------

// X'<gtrid hex>',X'<bqual hex>',<format id>: hex only, so it contains no quote but the literal
// delimiters.
std::string XidLiteral(const Xid& xid);
// Parses one row of `XA RECOVER FORMAT='SQL'` in its hex form: the three numeric columns and the
// `data` column (the server's rendering, which omits an empty bqual and a format ID of 1).
// Refuses, with XAER_INVAL, anything inconsistent or malformed. (ParseRecoverRows below also
// reads the quoted form the server uses for printable Xids.)
Result<Xid> XidFromRecoverRow(int64_t format_id, int64_t gtrid_length, int64_t bqual_length,
                              std::string_view data);

// ---- Statement text ------------------------------------------------------------------------

std::string XaStartSql(const Xid& xid, StartFlag flag);
// TMFAIL is sent as a plain XA END: MariaDB has no "fail" clause. The driver itself must remember
// that the branch is rollback-only (and roll it back at Prepare/one-phase Commit).
std::string XaEndSql(const Xid& xid, EndFlag flag);
std::string XaPrepareSql(const Xid& xid);
std::string XaCommitSql(const Xid& xid, CommitMode mode);
std::string XaRollbackSql(const Xid& xid);
// Columns: formatID, gtrid_length, bqual_length, data (data = the Xid as SQL text).
inline constexpr std::string_view kXaRecoverSql = "XA RECOVER FORMAT='SQL'";

// Isolation level of the session that runs branches. MariaDB XA needs at least REPEATABLE READ.
// With REPEATABLE READ, shared and gap locks are released at XA PREPARE (MDEV-26682), so a
// prepared branch no longer protects what it only read; SERIALIZABLE keeps them until commit at
// the price of more lock waits and deadlocks.
enum class Isolation : uint8_t { kRepeatableRead = 1, kSerializable = 2 };
std::string SetIsolationSql(Isolation isolation);  // SET SESSION TRANSACTION ISOLATION LEVEL ...
std::string_view IsolationName(Isolation isolation) noexcept;  // "REPEATABLE READ", ...

// The capability probe, one row: VERSION(), the XA column of information_schema.ENGINES for
// InnoDB ('YES'; NULL when InnoDB is missing or disabled), @@autocommit, CONNECTION_ID().
inline constexpr std::string_view kProbeSql =
    "SELECT VERSION(), (SELECT XA FROM information_schema.ENGINES WHERE ENGINE='InnoDB' AND "
    "SUPPORT IN ('YES','DEFAULT')), @@autocommit, CONNECTION_ID()";

// ---- Read-only detection -------------------------------------------------------------------
//
// One row, one BIGINT column: the session's count of row writes (Handler_write + Handler_update +
// Handler_delete). The counters only grow during a session, and MariaDB counts writes to its own
// internal temporary tables separately (Handler_tmp_*), so the probe does not move them itself.
// A branch whose counter did not move between a reading taken before XA START (any earlier
// reading of the same session will do: it can only make the difference larger) and one taken
// before XA END wrote nothing: it is read-only. A write that failed (duplicate key) still counts:
// the error is always on the safe side, "wrote something", never the other way round.
// XA COMMIT, XA ROLLBACK and XA RECOVER do not move the counters, so in a session that only runs
// branches the reading taken at one Prepare is the baseline of the next branch: no read at Start.
// Cost: one round trip whose server side is expensive (MariaDB computes every status variable,
// InnoDB's included, to answer it): measured 5 to 10 times a SELECT 1 (see the driver's report).
// Rejected alternative: information_schema.INNODB_TRX.trx_rows_modified is cheaper but needs the
// PROCESS privilege and is served from a cache refreshed at most every 100 ms, so it can show
// "0 rows modified" for a branch that just wrote: unsafe.
inline constexpr std::string_view kReadOnlyProbeSql =
    "SELECT CAST(SUM(VARIABLE_VALUE) AS SIGNED) FROM information_schema.SESSION_STATUS WHERE "
    "VARIABLE_NAME IN ('HANDLER_WRITE','HANDLER_UPDATE','HANDLER_DELETE')";
// True when the counter proves that nothing was written. A counter that went backwards (FLUSH
// STATUS, reconnect) proves nothing: false.
constexpr bool CounterProvesReadOnly(int64_t before, int64_t after) noexcept {
  return before >= 0 && after == before;
}

// ---- XA RECOVER ----------------------------------------------------------------------------

// One row of XA RECOVER FORMAT='SQL', as the driver read it.
struct RecoverRow {
  int64_t format_id = 0;
  int64_t gtrid_length = 0;
  int64_t bqual_length = 0;
  std::string data;  // raw bytes of the data column
};

// Accepts the two renderings MariaDB writes: hex, X'<gtrid>'[,X'<bqual>'[,<format id>]] (any Xid
// with a byte outside [A-Za-z0-9 _-]), and quoted text, '<gtrid>'[,'<bqual>'[,<format id>]] (all
// bytes in that set). Every row becomes either a well-formed Xid in `prepared` (ours and foreign
// alike: use RecoverScan::OwnedBy) or an entry in `unparsed` with the escaped row and the reason.
// Never fails: a hostile row can never stop recovery.
RecoverScan ParseRecoverRows(const std::vector<RecoverRow>& rows);

// ---- Phase 2: a 1397 from XA COMMIT / XA ROLLBACK, and ended sessions -----------------------

// What the driver knows, after XA COMMIT or XA ROLLBACK of a branch answered 1397 (XAER_NOTA),
// from the XA RECOVER it ran after that answer.
enum class NotaScan : uint8_t {
  kNotListed,  // the scan succeeded and does not list the xid
  kListed,     // the scan lists the xid: the branch is prepared and held by another session
  kFailed,     // the scan itself failed: nothing is known
};

// The one rule both MariaDB drivers apply to a 1397 from phase 2. XAER_NOTA tells the
// transaction manager and recovery "already finished", so it is returned only when proven: the
// scan, run after the 1397, does not list the xid. A listed xid means another session still
// holds the branch (XAER_RMFAIL: busy, retry later); a failed scan proves nothing (XAER_RMFAIL:
// in doubt, retry). `nota` is the driver's Status for the 1397; `scan_error` the scan's failure
// when `scan` is kFailed.
Status ReadPhaseTwoNota(const Status& nota, NotaScan scan, const Status& scan_error,
                        std::string_view rm_name, const Xid& xid);

// One row, one column: 1 while a session with this CONNECTION_ID() is in the process list, 0
// once the server has let it go. A user sees its own sessions without the PROCESS privilege.
std::string SessionPresentSql(uint64_t connection_id);
// A driver that ended a session while it held a prepared branch waits for it to leave the
// process list before it finishes that branch from another session, under
// internal::kSessionWaitRule (src/sql_dialect/session_wait.h, with the grace pause that the
// detach window needs). One full wait, then the driver stops watching: by then the id belongs
// to the holder still alive (the false 1397 then says busy) or to a new session after a server
// restart.
// XAER_RMFAIL for phase 2 of a branch whose ended session is still on the server.
Status EndedSessionStillPresent(std::string_view rm_name, const Xid& xid, uint64_t connection_id);

// ---- The 3PC fence ------------------------------------------------------------------------
//
// ResourceManager::FenceSession on MariaDB: KILL CONNECTION <id> on the fencer's own session,
// then the wait of session_wait.h over SessionPresentSql(id), which the fencer also reads once
// before the KILL (see KilledSessionNotVisible). MariaDB lets a user end its own
// sessions; another user's needs CONNECTION ADMIN (or SUPER), and watching it leave needs
// PROCESS, without which the process list never shows another user's session. KILL is allowed
// in a session that holds a prepared branch.

std::string KillConnectionSql(uint64_t connection_id);
// What a KILL CONNECTION refused with `error_number` means.
enum class KillRefusal : uint8_t {
  kNoSuchSession,  // 1094 ER_NO_SUCH_THREAD: unknown id, the session is already gone
  kNotPermitted,   // 1095 ER_KILL_DENIED_ERROR: another user's session, no CONNECTION ADMIN
  kOther,          // anything else: MapMariaDbError
};
KillRefusal ReadKillRefusal(int error_number) noexcept;
// XAER_RMERR for kNotPermitted, saying what to grant.
Status KillNotPermitted(std::string_view rm_name, uint64_t connection_id, std::string_view user,
                        std::string_view server_text);
// XAER_RMERR when KILL CONNECTION ended a session that the process list did not show before
// it (another user's session, and no PROCESS privilege): its departure cannot be watched, so
// a branch it held is not known to be detached.
Status KilledSessionNotVisible(std::string_view rm_name, uint64_t connection_id,
                               std::string_view user);

// ---- The commit marker (xa/marker.h; docs/marker-commit.md) ------------------------------
//
// The statements of the five marker calls of ResourceManager. The gtrid goes in as a hex literal
// X'..' (GtridLiteral), the table name as it is, after CheckMarkerTable (commit_marker.h), which
// every function here applies again: XAER_INVAL, and no text, for a name that is no plain
// identifier. Rows are read with the gtrid as HEX(gtrid), so no driver has to fetch binary.
//
// Server facts the marker relies on (MariaDB 10.11, checked against the local server by
// tests/drivers/mysql/mysql_marker_test.cc and the ODBC suite):
//   - INSERT IGNORE of a key that another transaction inserted and has not committed waits for
//     that transaction (InnoDB locks the duplicate record), up to innodb_lock_wait_timeout: it
//     then ignores the duplicate if the other committed, inserts if it rolled back, and fails with
//     1205 if the wait ran out (IGNORE does not swallow a lock wait timeout). SET STATEMENT
//     innodb_lock_wait_timeout=N FOR ... bounds that one statement only (MariaDB 10.1.2 and
//     later; MySQL has no SET STATEMENT, so the settle is MariaDB's alone).
//   - The INSERT of the coordinator's row in a branch fails with 1062 when the row is there: the
//     statement alone is undone and the branch stays ACTIVE (the drivers then hold it
//     rollback-only: a marker branch never commits without its marker).
//   - A plain SELECT in autocommit mode is a consistent read, also under SERIALIZABLE: it never
//     waits for a row lock.
//   - A missing table is 1146, a refused table privilege 1142, a missing column 1054. A table
//     in a database on which the user has no privilege at all is 1142 whether or not it
//     exists: the server does not tell (ReadMarkerError says both).

// X'<gtrid hex>': the gtrid alone, as the marker table keys it.
std::string GtridLiteral(const Xid& global);
// CREATE TABLE IF NOT EXISTS <table> (...) ENGINE=InnoDB: the documented schema (for tests, the
// bench and the docs; xa itself never creates the table).
Result<std::string> CreateMarkerTableSql(std::string_view table);
// INSERT INTO <table> (gtrid, format_id, node_id, outcome) VALUES (X'..', <format id>,
// <node id>, 'C'): run in the marker branch. The node id is Xid::NodeId(), 0 for an Xid that xa
// did not make. The bqual is not stored: the row keys on the gtrid.
Result<std::string> WriteCommitMarkerSql(std::string_view table, const Xid& global);
// The lock wait timeout of the settle's insert: `wait` in whole seconds, rounded up, at least 1
// (and at most the server's maximum, 1073741824).
int64_t SettleWaitSeconds(std::chrono::milliseconds wait) noexcept;
// SET STATEMENT innodb_lock_wait_timeout=<SettleWaitSeconds> FOR INSERT IGNORE INTO <table> ...
// 'A': autocommit, outside any branch. Leaves the session's own setting alone.
Result<std::string> SettleCommitMarkerSql(std::string_view table, const Xid& global,
                                          std::chrono::milliseconds wait);
// SELECT outcome FROM <table> WHERE gtrid = X'..': the settled row, read after the insert.
Result<std::string> ReadOutcomeSql(std::string_view table, const Xid& global);
// SELECT HEX(gtrid), format_id, outcome FROM <table> WHERE gtrid IN (...), one statement per
// kMarkerChunkSize Xids; none for an empty list.
Result<std::vector<std::string>> ReadCommitMarkersSql(std::string_view table,
                                                      const std::vector<Xid>& globals);
// SELECT HEX(gtrid), format_id, outcome FROM <table> WHERE node_id = <node> ORDER BY created,
// gtrid LIMIT <limit>. LIMIT 0 reads nothing but still fails when the table is missing or not
// readable.
Result<std::string> ListCommitMarkersSql(std::string_view table, uint32_t node_id, size_t limit);
// DELETE FROM <table> WHERE gtrid IN (...), one statement per kMarkerChunkSize Xids; none for an
// empty list. More than one runs in one local transaction (kStartTransactionSql .. kCommitSql).
Result<std::vector<std::string>> DeleteCommitMarkersSql(std::string_view table,
                                                        const std::vector<Xid>& globals);
inline constexpr std::string_view kStartTransactionSql = "START TRANSACTION";
inline constexpr std::string_view kCommitSql = "COMMIT";
inline constexpr std::string_view kRollbackSql = "ROLLBACK";

// The Status of a failed marker statement of `call`, from `mapped` (the driver's MapMariaDbError
// of it) and the server's error number: 1062 in kWrite is XAER_DUPID (MarkerAlreadySettled),
// 1205 in kSettle XA_RETRY (MarkerStillHeld), and a missing table, a refused privilege or a
// missing column keep their code with what to do about the table (WithMarkerTableAdvice).
Status ReadMarkerError(Status mapped, int error_number, MarkerCall call, std::string_view rm_name,
                       std::string_view table, std::string_view user, const Xid* global);

// ---- Server version ------------------------------------------------------------------------

struct ServerVersion {
  std::string product;  // "MariaDB" or "MySQL"
  std::string text;     // as reported by VERSION()
  int major = 0, minor = 0, patch = 0;
};

// Parses VERSION(): "10.11.19-MariaDB", "5.5.5-10.11.6-MariaDB-log", "8.0.36", "8.0.36-log".
// XAER_INVAL when it is not <int>.<int>.<int>[suffix].
Result<ServerVersion> ParseServerVersion(std::string_view version_text);
// True for MariaDB >= 10.5 and MySQL >= 5.7.7: a prepared branch survives its session.
bool PreparedBranchSurvivesDisconnect(const ServerVersion& version) noexcept;
// XA_CONFIG, with how to fix it, when the server cannot keep a prepared branch past a disconnect.
Status CheckServerVersion(const ServerVersion& version, std::string_view rm_name);

// ---- Errors --------------------------------------------------------------------------------

// Client-side (libmariadb/libmysqlclient) errors that mean the connection is gone or unusable:
// 2002 2003 2005 2006 2013 2014 2026 2055, and the server's 1927 (connection killed), 1053
// (shutdown in progress), 1152/1153/1158-1161 (network read/write). After any of them the session
// must be reopened, and a branch it was driving is in doubt.
bool IsConnectionLost(int error_number) noexcept;

// Whether a connection lost during `operation` (the XA verb the drivers name their calls by)
// can leave its branch in doubt: only XA PREPARE, XA COMMIT and XA ROLLBACK may have reached the
// server and changed a prepared branch. Before them (connecting, XA START, the branch's
// statements, XA END, the read-only probe) no branch of this call is prepared, and the server
// rolls back an unprepared one with its session: nothing is in doubt.
bool LostConnectionLeavesBranchInDoubt(std::string_view operation) noexcept;

// Whether XA END of the session's own ACTIVE branch, refused with `error_number`, means that the
// branch is no longer active on the server. MariaDB refuses it with 1399 (XAER_RMFAIL) when it
// has already rolled the branch back and holds it ROLLBACK ONLY (the victim of a deadlock) or
// has no branch on the session any more. Then XA ROLLBACK, and nothing else (not XA START, not
// a new Open() of a live session), finishes the branch and frees the session; it answers
// XAER_NOTA when the branch was already gone. The branch must then be reported rolled back.
// (An XA_RB* answer, 1613 or 1614, says the same by its code.)
constexpr bool EndRefusedBecauseRolledBack(int error_number) noexcept {
  return error_number == 1399;
}

// Server error → XA code:
//   1397 XAER_NOTA  1398 XAER_INVAL  1399 XAER_RMFAIL  1400 XAER_OUTSIDE  1401 XAER_RMERR
//   1402 XA_RBROLLBACK  1440 XAER_DUPID  1613 XA_RBTIMEOUT  1614 XA_RBDEADLOCK
//   1213 (deadlock) XA_RBDEADLOCK  1205 (lock wait timeout) XA_RBTIMEOUT
//   connection lost (IsConnectionLost) and error number 0 (a driver error with no server
//   answer: we cannot know what the server did) XAER_RMFAIL, "in doubt, retry";
//   1045/1044/1049/1698 (access denied, unknown database) XA_CONFIG;
//   any other error XAER_RMERR.
Code CodeForMariaDbError(int error_number) noexcept;

// The Status for a failed statement. The message names the RM, the operation, the Xid (when
// there is one) and the server's error (number, SQLSTATE, text, escaped), then what to do.
// `operation` is e.g. "XA PREPARE". Never contains a password: the caller must not pass one.
Status MapMariaDbError(int error_number, std::string_view sqlstate, std::string_view text,
                       std::string_view rm_name, const Xid* xid, std::string_view operation);

// Escapes untrusted text for a message (src/base/escape.h).
using ::xa::internal::EscapeForMessage;

}  // namespace xa::internal::mariadb

#endif  // XA_SRC_SQL_DIALECT_MARIADB_DIALECT_H_
