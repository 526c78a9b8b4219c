// The per-database half of the ODBC resource manager: what to send for each XA verb and what the
// answers mean. The branch state machine (which verb is legal when) lives in the resource
// manager; a dialect only talks to the server.
//
// Contract of every method: on return the session has no open transaction of the branch, except
// after Begin() succeeded (the branch is open) and after a lost connection (the server ends it).
// A lost connection is reported as XAER_RMFAIL and recorded with session->MarkLost().
//
// Thread safety: none; owned by one resource manager.

#ifndef XA_DRIVERS_ODBC_SRC_ODBC_DIALECT_H_
#define XA_DRIVERS_ODBC_SRC_ODBC_DIALECT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "drivers/odbc/src/odbc_session.h"
#include "xa/marker.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::odbc::internal {

// What a dialect needs from the resource manager.
struct DialectContext {
  std::string rm_name;
  std::string user;           // for the messages that say what to grant to whom
  std::string log_component;  // "odbc:<rm name>"
  bool read_only_optimization = true;
  // PostgreSQL: an error can leave the transaction block aborted (PostgresErrorRollback::
  // kTransaction). With psqlODBC's statement-level rollback it cannot: every statement after the
  // first runs under a savepoint and a failed first statement ends the block, so the guard
  // before PREPARE TRANSACTION is not needed there.
  bool error_aborts_transaction = false;
  // Connects a second session on the same data source, with `extra_attributes` appended to the
  // connection string (MariaDB's recover scans). Returns the Diagnostics of a failure.
  std::function<bool(std::string_view extra_attributes, OdbcSession* session, Diagnostics* diag)>
      connect_extra;
  // Replaces the main session by a new one (connect + probe). MariaDB keeps a prepared branch
  // attached to the session that prepared it, which can then start no other branch.
  std::function<Status()> reopen;
};

class OdbcDialect {
 public:
  virtual ~OdbcDialect() = default;

  // Runs the capability probe right after connecting; fills `info`. XA_CONFIG refuses the server.
  virtual Status Probe(ServerInfo* info) = 0;
  // Opens the branch.
  virtual Status Begin(const Xid& xid) = 0;
  // Phase 1 of an ended branch: XA_OK (prepared), XA_RDONLY (committed, nothing to do), XA_RB* or
  // another error (rolled back), XAER_RMFAIL (in doubt).
  virtual Status Prepare(const Xid& xid) = 0;
  virtual Status CommitOnePhase(const Xid& xid) = 0;
  // Rolls back this session's unprepared branch.
  virtual Status RollbackActive(const Xid& xid) = 0;
  virtual Status CommitPrepared(const Xid& xid) = 0;
  virtual Status RollbackPrepared(const Xid& xid) = 0;
  virtual Result<RecoverScan> Recover() = 0;
  // The meaning of a failed statement of the application (`xid` may be null).
  virtual Status WorkError(const Diagnostics& diag, const Xid* xid) = 0;
  // The server's id of the session (ResourceManager::SessionId), read by Probe(); 0 when there
  // is no session.
  virtual uint64_t session_id() const = 0;
  // Ends another session of the server and waits until the server no longer lists it
  // (ResourceManager::FenceSession). Called with no branch open on the session.
  virtual Status FenceSession(uint64_t session_id) = 0;
  // ---- The commit marker (ResourceManager's marker calls; docs/marker-commit.md) ----------
  // The resource manager has checked the table name and the session's branch state.
  // Inserts the row of `global` ('C') in the open branch `branch`. A failure leaves the branch
  // as any failed statement of the branch does; the resource manager applies the code.
  virtual Status WriteCommitMarker(std::string_view table, const Xid& global,
                                   const Xid& branch) = 0;
  // The other four run with no branch open, and leave the session as they found it: autocommit
  // on, no transaction open.
  virtual Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global,
                                                   std::chrono::milliseconds wait) = 0;
  virtual Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                           const std::vector<Xid>& globals) = 0;
  virtual Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table,
                                                           uint32_t node_id, size_t limit) = 0;
  virtual Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& globals) = 0;

  // The session is about to be closed, or was lost: drop whatever the dialect keeps per session.
  virtual void OnDisconnect() {}
  // The session has been closed: a dialect may wait here until the server has let it go.
  virtual void AfterDisconnect() {}
};

std::unique_ptr<OdbcDialect> NewPostgresDialect(OdbcSession* session, const DialectContext* context);
std::unique_ptr<OdbcDialect> NewMariaDbDialect(OdbcSession* session, const DialectContext* context);

}  // namespace xa::odbc::internal

#endif  // XA_DRIVERS_ODBC_SRC_ODBC_DIALECT_H_
