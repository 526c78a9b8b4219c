// xa::odbc::OdbcResourceManager: an XA resource manager over one unixODBC connection, with a
// dialect per database: MariaDB/MySQL XA SQL (MariaDB Connector/ODBC, libmaodbc) and PostgreSQL
// two-phase commit (psqlODBC).
//
//   xa::odbc::OdbcOptions options;
//   options.rm_name = "ledger-pg";
//   options.dsn = "ledger";                  // from odbc.ini; no password there
//   options.user = "xa_tm";
//   options.password = ReadSecret(...);      // used to connect only, never logged
//   auto rm = xa::odbc::OdbcResourceManager::Create(std::move(options));  // connects + probes
//   if (!rm.ok()) return rm.status();        // e.g. XA_CONFIG: max_prepared_transactions = 0
//   XA_RETURN_IF_ERROR((*rm)->Start(xid, xa::StartFlag::kNoFlags));
//   SQLHSTMT st;  SQLAllocHandle(SQL_HANDLE_STMT, (*rm)->connection(), &st);
//   if (!SQL_SUCCEEDED(SQLExecDirect(st, ...))) {
//     xa::Status failed = (*rm)->StatusFromDiagnostics(SQL_HANDLE_STMT, st);  // XA_RB* rolls back
//     ...
//   }
//   XA_RETURN_IF_ERROR((*rm)->End(xid, xa::EndFlag::kSuccess));
//   xa::Status vote = (*rm)->Prepare(xid);   // XA_OK, XA_RDONLY (already finished) or XA_RB*
//
// What each call sends (round trips on the critical path; End is always local):
//   PostgreSQL  Start: none (manual-commit mode; psqlODBC sends BEGIN with the first statement)
//               Prepare: read-only probe + PREPARE TRANSACTION 'gid' (or COMMIT when read-only)
//               Commit: COMMIT PREPARED 'gid' (two-phase) / probe + COMMIT (one-phase)
//               Rollback: ROLLBACK PREPARED 'gid' / ROLLBACK (a branch of this session)
//               Recover: SELECT gid, owner FROM pg_prepared_xacts WHERE database = current_database()
//   MariaDB     Start: XA START (after a rollback or one-phase commit also a write-counter
//               reading); Prepare: write-counter probe + XA END + XA PREPARE (or XA COMMIT ... ONE
//               PHASE when read-only); Commit: XA COMMIT / XA END + XA COMMIT ... ONE PHASE;
//               Rollback: XA ROLLBACK (XA END first for a branch of this session);
//               Recover: XA RECOVER FORMAT='SQL' on a second connection of its own (see below)
// Measured costs: drivers/odbc/README.md.
//
// Session rules:
//   - Between Start() and End() run the branch's SQL on connection() only. Do not call
//     SQLEndTran, change SQL_ATTR_AUTOCOMMIT, or run BEGIN/COMMIT/ROLLBACK/XA statements on it:
//     the resource manager owns the transaction state of the connection.
//   - One branch per session at a time. End() only ends the association locally (the server
//     statement, XA END on MariaDB, is sent with Prepare/Commit/Rollback), so TMJOIN of this
//     session's ended branch, TMSUSPEND and TMRESUME work on both databases.
//   - A failed statement of the branch: pass its handle to StatusFromDiagnostics(). A deadlock,
//     serialization failure or timeout (XA_RB*) rolls the branch back at once, releasing its
//     locks; Prepare then reports that XA_RB* code. Other errors leave the branch as the driver
//     left it: the failed statement undone alone (MariaDB; PostgreSQL with the default
//     PostgresErrorRollback::kStatement), or the whole transaction aborted (PostgreSQL with
//     kTransaction), which Prepare finds out (SQLSTATE 25P02) and reports as XA_RBROLLBACK
//     instead of preparing an empty branch. A MariaDB deadlock whose statement error was not
//     passed there is found by Prepare or a one-phase Commit (the server has rolled the branch
//     back and refuses XA END): they send XA ROLLBACK, which frees the session, and return
//     XA_RBROLLBACK.
//   - After a lost connection (class 08, 57P01 terminated backend, MariaDB 2006/2013, ...) the
//     call returns XAER_RMFAIL: the branch is IN DOUBT, never "gone". Phase-2 calls and Recover()
//     reconnect on their own (also Open()); prepared branches survive the lost session and are
//     committed from the new one. A branch that was not yet prepared died with its session: its
//     Prepare returns XA_RBCOMMFAIL.
//
// Read-only optimisation (OdbcOptions::read_only_optimization, on by default): a branch that
// wrote nothing is committed at Prepare instead of being prepared, and Prepare returns XA_RDONLY:
// no prepared-transaction slot, no fsync, nothing left for recovery. PostgreSQL: the branch has
// no transaction id (pg_current_xact_id_if_assigned() IS NULL). MariaDB: the session's row-write
// counters did not move (see src/sql_dialect/mariadb_dialect.h). Both err only towards a normal
// prepare. On PostgreSQL with PostgresErrorRollback::kTransaction the probe stays even when the
// optimisation is off (in one batch with PREPARE TRANSACTION): it is what tells an aborted
// transaction (which PREPARE TRANSACTION would silently roll back) from a healthy one. With
// kStatement the block cannot be aborted, and PREPARE TRANSACTION goes alone.
//
// Recover scans on MariaDB: MariaDB Connector/ODBC 3.1 decides from a statement's first word
// whether it returns rows and drops the rows of XA RECOVER (the connection then crashes the
// driver), unless XA RECOVER is the second statement of a batch. No single statement will do:
// a statement the driver knows to return rows goes through the prepared-statement protocol,
// where the server refuses XA RECOVER (and EXECUTE of a prepared XA RECOVER) with 1295; only a
// batch is read over the text protocol. Batches need the multi-statement option, which the
// resource manager does not impose on connection(): the scan runs on a second connection with
// OPTION=67108864 (multi statements), opened by each scan and closed by it, on every path, on
// the scanning thread. After such a batch libmaodbc 3.1.15 keeps the connection's lock on the
// thread that ran it (fixed in Connector/ODBC 3.1.17), so any other thread that touched that
// connection, even to close it, would wait forever.
//
// MariaDB attaches a prepared branch to the session that prepared it until that session commits
// or rolls it back or ends: the session can start no other branch, and other sessions get a
// false XAER_NOTA (1397) for it. So (1) a session that still holds a prepared branch is replaced
// by a new connection before it starts or finishes another branch (the held branch detaches and
// survives; prepare-then-commit on the same object never pays for this), and (2) XAER_NOTA from
// XA COMMIT/ROLLBACK is confirmed with a recover scan: a branch that is still listed gives
// XAER_RMFAIL (retry), never a false "already finished".
//
// PostgreSQL owners: only the role that prepared a transaction, or a superuser, may finish it.
// Recover() lists every prepared branch of the database; those of other roles are logged as a
// warning naming the owner, and finishing them fails with XA_CONFIG (42501) saying to use that
// role or a superuser. Branches of other databases are not listed (0A000 if finished here).
//
// Secrets: the password goes into the connection string at connect time only. Neither the
// password nor the connection string is ever logged or put in a message.
//
// Thread safety: one thread at a time per object (see xa/resource_manager.h). Different objects
// may be used from different threads.

#ifndef XA_ODBC_ODBC_RESOURCE_MANAGER_H_
#define XA_ODBC_ODBC_RESOURCE_MANAGER_H_

#include <sql.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::odbc {

// The SQL a resource manager speaks for XA, by database (OdbcOptions::dialect).
enum class Dialect : uint8_t {
  kAuto = 0,      // from SQLGetInfo(SQL_DBMS_NAME) after connecting
  kMariaDb = 1,   // MariaDB >= 10.5 (or MySQL >= 5.7.7) through MariaDB Connector/ODBC
  kPostgres = 2,  // PostgreSQL >= 10 through psqlODBC
};
std::string_view DialectName(Dialect dialect) noexcept;  // "auto", "MariaDB", "PostgreSQL"

// What a failed statement of a PostgreSQL branch does (psqlODBC's "level of rollback on errors",
// set by the resource manager in the connection string: Protocol=7.4-2 or 7.4-0; whatever the
// data source says is overridden, because psqlODBC's third level, "roll back the whole
// transaction and carry on in a new one", would let a branch be prepared without its work).
enum class PostgresErrorRollback : uint8_t {
  // psqlODBC's default: each statement runs under a savepoint, and a failed statement is undone
  // alone; the branch stays usable (as on MariaDB for most errors).
  kStatement = 0,
  // PostgreSQL's own behaviour, no savepoints: any error aborts the branch, whose Prepare then
  // returns XA_RBROLLBACK. Saves the savepoint traffic of every statement.
  kTransaction = 1,
};

// How OdbcResourceManager::Create() connects, and how the session behaves.
struct OdbcOptions {
  // Stable name of this resource, persisted in the decision log ("ledger-pg"). Required.
  std::string rm_name;

  // Exactly one of the two. `dsn` names a data source of odbc.ini (ODBCINI/ODBCSYSINI); keep
  // passwords out of that file. `connection_string` is a full connection string without UID and
  // PWD ("Driver=PostgreSQL Unicode;Servername=db1;Port=5432;Database=ledger").
  std::string dsn;
  // The other way to reach the server (see dsn).
  std::string connection_string;
  // Any characters: both are written into the connection string so that the driver reads back
  // exactly these bytes (braced; for psqlODBC a user name with ';', a leading '{' or a blank at
  // either end goes to libpq through pqopt, replacing a pqopt of the data source, and needs
  // `dialect` named).
  std::string user;
  // Used only to connect; never logged, never part of a message.
  std::string password;

  // kAuto asks the connection; an explicit value overrides it (and must match the server).
  Dialect dialect = Dialect::kAuto;

  // SQL_ATTR_LOGIN_TIMEOUT of every connect. Connects made through this driver run one at a time
  // in the process (psqlODBC changes the process locale while it connects), so a server that does
  // not answer delays other resource managers' connects by up to this much. Code of your own that
  // connects through psqlODBC on other threads at the same time has the same race.
  std::chrono::seconds login_timeout{10};
  // SQL_ATTR_QUERY_TIMEOUT of the resource manager's own statements; zero means none. A
  // statement cancelled by it during PREPARE or phase 2 leaves the branch in doubt (XAER_RMFAIL).
  std::chrono::seconds statement_timeout{0};

  // See the file comment. Turn off only to measure its cost.
  bool read_only_optimization = true;

  // PostgreSQL only; see PostgresErrorRollback. With kAuto, Open() connects twice to a
  // PostgreSQL server (once to learn the dialect); name the dialect to avoid it.
  PostgresErrorRollback postgres_error_rollback = PostgresErrorRollback::kStatement;
};

// An XA resource manager over one unixODBC connection (see the file comment). Made by
// Create(); one thread at a time.
class OdbcResourceManager final : public ResourceManager {
 public:
  // Validates the options (XAER_INVAL naming the field), connects and runs the capability probe
  // (see Open()).
  static Result<std::unique_ptr<OdbcResourceManager>> Create(OdbcOptions options);

  ~OdbcResourceManager() override;
  OdbcResourceManager(const OdbcResourceManager&) = delete;
  OdbcResourceManager& operator=(const OdbcResourceManager&) = delete;

  const std::string& name() const noexcept override;

  // Connects (again, when the previous session is gone) and probes: the server's product and
  // version; PostgreSQL: max_prepared_transactions > 0 (else XA_CONFIG saying how to fix it), may
  // the role read pg_prepared_xacts; MariaDB: >= 10.5, InnoDB with XA, autocommit on. A no-op on
  // a live session.
  Status Open() override;
  // Rolls back a branch of this session that is not prepared; prepared branches survive.
  Status Close() override;
  const ServerInfo& server_info() const noexcept override;

  Status Start(const Xid& xid, StartFlag flag) override;
  Status End(const Xid& xid, EndFlag flag) override;
  Status Prepare(const Xid& xid) override;
  Status Commit(const Xid& xid, CommitMode mode) override;
  Status Rollback(const Xid& xid) override;
  Result<RecoverScan> Recover() override;
  // XAER_NOTA: neither MariaDB nor PostgreSQL keeps heuristic state.
  Status Forget(const Xid& xid) override;
  // CONNECTION_ID() / pg_backend_pid() of the current session, read when it connected (on
  // MariaDB a session that holds a prepared branch is not asked again). It changes when the
  // session is replaced: after a lost connection, and on MariaDB when a session still holding
  // a prepared branch starts or finishes another one (see below). XAER_RMFAIL when there is
  // no session.
  Result<uint64_t> SessionId() override;
  // KILL CONNECTION / pg_terminate_backend on this session, then polls the process list /
  // pg_stat_activity (see xa/resource_manager.h). XAER_PROTO while a branch is open on this
  // session. Another user's session: MariaDB needs CONNECTION ADMIN and PROCESS, PostgreSQL
  // membership in that role or pg_signal_backend (XAER_RMERR naming them otherwise).
  Status FenceSession(uint64_t session_id) override;

  // The commit marker (xa/resource_manager.h, docs/marker-commit.md), on MariaDB (not MySQL: the
  // settle needs SET STATEMENT; XA_NOTSUPPORTED there) and PostgreSQL. An invalid table name is
  // XAER_INVAL before anything is sent.
  // WriteCommitMarker: the INSERT on connection(), in the session's ACTIVE branch (XAER_PROTO
  // otherwise; the branch's XA_RB* code when it was rolled back already). Any failure of the
  // INSERT (XAER_DUPID: recovery settled the transaction as aborted; XA_RB*; a missing table)
  // rolls the branch back at once, whatever PostgresErrorRollback did to the transaction block:
  // a marker branch never commits without its marker. End(), Prepare and Commit then report
  // XA_RB*; Rollback() answers OK.
  Status WriteCommitMarker(std::string_view table, const Xid& global_xid) override;
  // The other four run outside any branch (XAER_PROTO while one is open on the session), each
  // in autocommit or in one local transaction it commits, and leave the session in autocommit
  // with nothing open: Start() may follow at once. On MariaDB a session that still holds a
  // prepared branch is replaced first, as before Start(). The settle sends, on MariaDB,
  // SET STATEMENT innodb_lock_wait_timeout = N FOR INSERT IGNORE (N whole seconds), then the
  // SELECT; on PostgreSQL, in one transaction, SET TRANSACTION ISOLATION LEVEL READ COMMITTED,
  // SET LOCAL lock_timeout, INSERT ... ON CONFLICT DO NOTHING, the SELECT and COMMIT.
  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global_xid,
                                           std::chrono::milliseconds wait) override;
  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& global_xids) override;
  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) override;
  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& global_xids) override;

  // The dialect in use (resolved by the first successful Open()).
  Dialect dialect() const noexcept;

  // The connection to run the branch's SQL on, between Start() and End(); SQL_NULL_HDBC when not
  // connected. Valid until the next Open(), Close() or a call that reported a lost connection.
  SQLHDBC connection() const noexcept;
  // True while the object holds a connection that is not known to be lost.
  bool connected() const noexcept;

  // The Status for a failed call of the application on connection() or one of its statements
  // (handle_type SQL_HANDLE_STMT or SQL_HANDLE_DBC), with the RM, the associated Xid and the
  // server's error (SQLSTATE, native error, text) in the message. XA_RB* (deadlock,
  // serialization failure, timeout) rolls the associated branch back; a lost connection marks
  // the session for reconnection and the branch as lost (XA_RBCOMMFAIL at Prepare). The
  // connection's handles stay valid (free your statement handle as usual) until the next call
  // of this object, which replaces the lost session.
  Status StatusFromDiagnostics(SQLSMALLINT handle_type, SQLHANDLE handle);

  // Runs one statement of the branch's work on connection() (no parameters, no result rows
  // kept) and returns the number of rows it changed, or StatusFromDiagnostics() of its failure.
  Result<int64_t> Execute(std::string_view sql);

 private:
  class Impl;
  explicit OdbcResourceManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::odbc

#endif  // XA_ODBC_ODBC_RESOURCE_MANAGER_H_
