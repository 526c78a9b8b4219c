// xa::mysql::MySqlResourceManager: an XA resource manager over one MySQL Connector/C++ 1.1
// (JDBC-like API) session with MariaDB >= 10.5 or MySQL >= 5.7.7.
//
//   xa::mysql::MySqlOptions options;
//   options.rm_name = "accounts";
//   options.host = "127.0.0.1"; options.port = 3306;
//   options.user = "xa_tm"; options.password = ReadSecret(...); options.database = "bank";
//   auto rm = xa::mysql::MySqlResourceManager::Create(std::move(options));  // connects + probes
//   if (!rm.ok()) return rm.status();
//   XA_RETURN_IF_ERROR((*rm)->Start(xid, xa::StartFlag::kNoFlags));
//   try {
//     std::unique_ptr<sql::Statement> st((*rm)->connection().createStatement());
//     st->executeUpdate("UPDATE account SET balance = balance - 10 WHERE id = 1");
//   } catch (const sql::SQLException& e) {
//     xa::Status failed = (*rm)->StatusFromException(e);   // marks the branch rollback-only
//     ...
//   }
//   XA_RETURN_IF_ERROR((*rm)->End(xid, xa::EndFlag::kSuccess));
//   xa::Status vote = (*rm)->Prepare(xid);   // XA_OK, XA_RDONLY (already finished) or XA_RB*
//
// Session rules:
//   - The session runs with autocommit on; a branch is what groups statements. Do not call
//     setAutoCommit(false), BEGIN, COMMIT or ROLLBACK on connection() while a branch is
//     associated: MariaDB refuses them (1399) or, before Start, makes Start fail with
//     XAER_OUTSIDE (1400) until the local transaction is ended. Start never ends it for you.
//   - Isolation is set once per session (MySqlOptions::isolation).
//   - MariaDB supports one branch per session at a time, no TMJOIN and no TMSUSPEND (both give
//     XAER_INVAL); TMRESUME of this session's ended branch works.
//   - After Prepare voted XA_OK, MariaDB keeps the session bound to that branch: other work on
//     this object (Start, one-phase work) returns XAER_PROTO naming it, until it is committed or
//     rolled back here, or the session is closed (Close(): the branch stays prepared). Phase 2
//     from ANOTHER session is refused by the server while the preparing session lives; the
//     server then claims XAER_NOTA, which the driver checks against XA RECOVER and reports as
//     XAER_RMFAIL (busy: retry), never as NOTA (one rule, ReadPhaseTwoNota in
//     src/sql_dialect/mariadb_dialect.h; a failed check is XAER_RMFAIL too).
//   - Just after a session that holds a prepared branch ends, MariaDB 10.11 answers a phase-2
//     call for that branch from another session with OK and does nothing (the detach window,
//     src/sql_dialect/mariadb_dialect.h): the branch stays prepared, unlisted, until the server
//     restarts. So Close() (and the destructor) of a session holding a prepared branch returns
//     only once the server has let that session go (a helper session watches the process list,
//     up to 5 s), and after a lost connection phase 2 of that branch from the new session waits
//     the same way (XAER_RMFAIL while the old session is still there). A session this object
//     did not end (another process, an operator's KILL) cannot be watched: do not finish a
//     branch in the same instant as its preparer's end.
//   - After a lost connection (errors 2006, 2013, 2055, a killed session, a driver error with no
//     server answer) the call returns XAER_RMFAIL: the branch is IN DOUBT, never "gone". The next
//     call (or Open()) reconnects; a prepared branch survives and phase 2 is retried from the new
//     session. An ACTIVE or IDLE branch does not survive: the server rolled it back.
//
// Read-only optimisation (MySqlOptions::read_only_optimization, on by default): Prepare reads the
// session's row-write counters (Handler_write + Handler_update + Handler_delete, one extra round
// trip) and, when nothing was written since the last reading, finishes the branch with
// XA COMMIT ... ONE PHASE and returns XA_RDONLY. MariaDB would otherwise list an empty prepared
// branch in XA RECOVER that no other session can commit (it answers 1402). A failed write still
// counts as a write: the detection errs only towards a normal prepare. The baseline is the
// reading taken at Open() or at the previous Prepare, so a branch that follows writes made on
// connection() outside any branch is prepared normally.
//
// TMFAIL: End(kFail) ends the association and marks the branch rollback-only in this object;
// Prepare and a one-phase Commit then roll it back and return XA_RBROLLBACK. The same happens
// after StatusFromException() classified a statement error as XA_RB* (deadlock, lock wait
// timeout): MariaDB rolls back only the statement after a lock wait timeout, so the driver makes
// sure the whole branch is rolled back.
//
// Deadlock victim: MariaDB rolls the whole branch back and holds it ROLLBACK ONLY. XA END is then
// refused, so End() (with either flag) returns XA_RB* (XA_RBDEADLOCK when StatusFromException saw
// the deadlock, else XA_RBROLLBACK), and the session stays bound to that branch until
// Rollback(xid) sends XA ROLLBACK; Prepare and a one-phase Commit do that themselves. Until
// then Start refuses with XAER_PROTO naming the branch; Open() of a live session does not
// release it (Close() does: the server drops an unprepared branch with its session).
//
// Secrets: the password is used only to connect. It is never logged and is removed from any
// message before it reaches a Status.
//
// Thread safety: one thread at a time per object (see xa/resource_manager.h). Different objects
// may be used from different threads.

#ifndef XA_MYSQL_MYSQL_RESOURCE_MANAGER_H_
#define XA_MYSQL_MYSQL_RESOURCE_MANAGER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace sql {
class Connection;
class SQLException;
}  // namespace sql

namespace xa::mysql {

// The isolation level of the session's branches (MySqlOptions::isolation).
enum class IsolationLevel : uint8_t {
  // The default. The minimum MariaDB XA needs. Shared and gap locks are released at XA PREPARE
  // (MDEV-26682): what a prepared branch only read is no longer protected until commit.
  kRepeatableRead = 1,
  // Keeps shared locks past XA PREPARE. Use it when a branch's reads must stay valid until the
  // global commit (e.g. check-then-write across databases); costs more lock waits and deadlocks.
  kSerializable = 2,
};

// How MySqlResourceManager::Create() connects, and how the session behaves.
struct MySqlOptions {
  // Stable name of this resource, persisted in the decision log ("accounts-mariadb"). Required.
  std::string rm_name;

  // The server's host name or address; unused with unix_socket.
  std::string host = "127.0.0.1";
  // The server's TCP port; unused with unix_socket.
  int port = 3306;
  // When non-empty, connect through this unix socket instead of host:port.
  std::string unix_socket;
  // The account to connect as.
  std::string user;
  // Used only to connect; never logged, never part of a message.
  std::string password;
  // Default schema of the session (may be empty).
  std::string database;

  // How long a connect may take.
  std::chrono::seconds connect_timeout{5};
  // libmariadb applies each read/write timeout per network operation and retries a read once
  // more, so a silent server is noticed after up to about twice read_timeout.
  std::chrono::seconds read_timeout{30};
  // The timeout of each network write (see read_timeout).
  std::chrono::seconds write_timeout{30};

  // Set once per session, when it connects.
  IsolationLevel isolation = IsolationLevel::kRepeatableRead;

  // See the file comment. Turn off only to measure its cost.
  bool read_only_optimization = true;

  // Sends XA END together with the statement that follows it (XA PREPARE, or XA COMMIT ... ONE
  // PHASE) in one round trip: End(TMSUCCESS) only notes the end, and the next verb sends both;
  // a failure of the XA END is then reported by that verb, as an End failure would have been
  // (an XA_RB* code after the branch is rolled back). Saves one round trip per branch when the
  // read-only optimisation is off (with it on, the probe runs between the two).
  // It needs CLIENT_MULTI_STATEMENTS on the session, which lets the application's own
  // statements on connection() carry several statements too: keep it off (the default) when the
  // application builds SQL text from untrusted input. Between End() and the next verb the
  // branch is still ACTIVE on the server, so statements on connection() there would join it:
  // run none (the manager runs none).
  bool batch_xa_end = false;
};

// An XA resource manager over one MySQL Connector/C++ session (see the file comment). Made by
// Create(); one thread at a time.
class MySqlResourceManager final : public ResourceManager {
 public:
  // Validates the options (XAER_INVAL naming the field), connects and runs the capability probe
  // (see Open()).
  static Result<std::unique_ptr<MySqlResourceManager>> Create(MySqlOptions options);

  ~MySqlResourceManager() override;
  MySqlResourceManager(const MySqlResourceManager&) = delete;
  MySqlResourceManager& operator=(const MySqlResourceManager&) = delete;

  const std::string& name() const noexcept override;

  // Connects (again, when the previous session is gone) and probes: server version (MariaDB
  // >= 10.5 or MySQL >= 5.7.7, else XA_CONFIG), InnoDB with XA, whether XA RECOVER is allowed
  // for our user, and the session settings. A no-op on a live session.
  Status Open() override;
  Status Close() override;
  const ServerInfo& server_info() const noexcept override;

  Status Start(const Xid& xid, StartFlag flag) override;
  Status End(const Xid& xid, EndFlag flag) override;
  Status Prepare(const Xid& xid) override;
  Status Commit(const Xid& xid, CommitMode mode) override;
  Status Rollback(const Xid& xid) override;
  Result<RecoverScan> Recover() override;
  // XAER_NOTA: MariaDB and MySQL keep no heuristic state.
  Status Forget(const Xid& xid) override;
  // CONNECTION_ID() of the current session, read when it connected (a session that holds a
  // prepared branch may run no other statement, so it is never asked again). XAER_RMFAIL when
  // not connected.
  Result<uint64_t> SessionId() override;
  // KILL CONNECTION on this session, then polls the process list (see xa/resource_manager.h).
  // Ending another user's session needs CONNECTION ADMIN, and seeing it leave needs PROCESS:
  // XAER_RMERR naming them otherwise. Reconnects first when this session is gone.
  Status FenceSession(uint64_t session_id) override;

  // The commit marker (xa/resource_manager.h, docs/marker-commit.md), MariaDB only (the settle
  // needs SET STATEMENT; on MySQL every marker call returns XA_NOTSUPPORTED). An invalid table
  // name is XAER_INVAL before anything is sent.
  // WriteCommitMarker: the INSERT on this session, in its ACTIVE branch (XAER_PROTO otherwise;
  // the branch's XA_RB* code when it is rollback-only). Any failure of the INSERT (XAER_DUPID:
  // recovery settled the transaction as aborted; XA_RB*; a missing table) leaves the branch
  // rollback-only: a marker branch never commits without its marker. Prepare and a one-phase
  // Commit then roll it back and return XA_RB*; Rollback() ends it.
  Status WriteCommitMarker(std::string_view table, const Xid& global_xid) override;
  // The other four run outside any branch, in autocommit (XAER_PROTO while a branch is open or
  // the session holds a prepared branch), and leave no local transaction open: Start() may
  // follow at once.
  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global_xid,
                                           std::chrono::milliseconds wait) override;
  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& global_xids) override;
  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) override;
  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& global_xids) override;

  // The session to run the branch's SQL on, between Start() and End(). Valid until the next
  // call of Open(), Close() or any call that reported a lost connection; check connected() first.
  // Only for one thread at a time, like this object.
  sql::Connection& connection();
  // True while the object holds a session that is not known to be lost.
  bool connected() const noexcept;
  // The server's id of the current session (CONNECTION_ID()), 0 when not connected.
  uint64_t connection_id() const noexcept;

  // The Status for an error of a statement the application ran on connection(), with the RM,
  // the associated Xid and the server's error in the message. A deadlock or lock wait timeout
  // (XA_RB*) marks the associated branch rollback-only; a lost connection marks the session for
  // reconnection.
  Status StatusFromException(const sql::SQLException& error);

 private:
  class Impl;
  explicit MySqlResourceManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::mysql

#endif  // XA_MYSQL_MYSQL_RESOURCE_MANAGER_H_
