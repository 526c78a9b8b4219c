#include "xa/mysql/mysql_resource_manager.h"

#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <cassert>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

#include "src/base/byte_text.h"
#include "src/base/logging.h"
#include "src/sql_dialect/commit_marker.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/session_wait.h"

namespace xa::mysql {
namespace {

namespace dialect = ::xa::internal::mariadb;

// get_driver_instance() and the client library's first connect are not thread-safe in
// Connector/C++ 1.1: connections are made under this lock (they are rare).
std::mutex& ConnectMutex() {
  static std::mutex mutex;
  return mutex;
}

// A failure of a statement, as the driver reported it.
struct SqlFailure {
  int error_number = 0;
  std::string sqlstate;
  std::string text;
};

SqlFailure FailureFrom(const sql::SQLException& e) {
  return SqlFailure{e.getErrorCode(), e.getSQLState(), e.what()};
}

// Runs `body`, turning every exception into a SqlFailure. Nothing escapes.
template <typename F>
std::optional<SqlFailure> Catch(F&& body) noexcept {
  try {
    body();
    return std::nullopt;
  } catch (const sql::SQLException& e) {
    try {
      return FailureFrom(e);
    } catch (...) {
      return SqlFailure{0, "", "driver exception (its text could not be copied)"};
    }
  } catch (const std::exception& e) {
    try {
      return SqlFailure{0, "", std::string("driver exception: ") + e.what()};
    } catch (...) {
      return SqlFailure{0, "", "driver exception"};
    }
  } catch (...) {
    return SqlFailure{0, "", "unknown driver exception"};
  }
}

dialect::Isolation ToDialect(IsolationLevel level) {
  return level == IsolationLevel::kSerializable ? dialect::Isolation::kSerializable
                                                 : dialect::Isolation::kRepeatableRead;
}

Status InvalidOption(std::string_view what) {
  return Status(Code::kInval, "MySqlOptions: " + std::string(what));
}

}  // namespace

class MySqlResourceManager::Impl {
 public:
  explicit Impl(MySqlOptions options)
      : options_(std::move(options)), log_component_("mysql:" + options_.rm_name) {}

  ~Impl() { Close().IgnoreError(); }

  const std::string& name() const noexcept { return options_.rm_name; }
  const ServerInfo& server_info() const noexcept { return info_; }
  bool connected() const noexcept { return connection_ != nullptr && !broken_; }
  uint64_t connection_id() const noexcept { return connected() ? connection_id_ : 0; }

  sql::Connection& connection() {
    assert(connection_ != nullptr && "MySqlResourceManager::connection() before Open()");
    return *connection_;
  }

  Status Open();
  Status Close();
  Status Start(const Xid& xid, StartFlag flag);
  Status End(const Xid& xid, EndFlag flag);
  Status Prepare(const Xid& xid);
  Status Commit(const Xid& xid, CommitMode mode);
  Status Rollback(const Xid& xid);
  Result<RecoverScan> Recover();
  Result<uint64_t> SessionId() const;
  Status FenceSession(uint64_t session_id);
  Status StatusFromException(const sql::SQLException& error);

  Status WriteCommitMarker(std::string_view table, const Xid& global);
  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global,
                                           std::chrono::milliseconds wait);
  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& globals);
  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit);
  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& globals);

 private:
  enum class BranchState { kActive, kIdle };
  // The branch associated with this session (MariaDB allows one at a time), from Start until
  // it is prepared or finished.
  struct Branch {
    Xid xid;
    BranchState state = BranchState::kActive;
    int64_t write_counter_at_start = -1;  // -1: unknown, no read-only optimisation
    // End(TMSUCCESS) was noted but XA END not sent (MySqlOptions::batch_xa_end): the branch is
    // IDLE here and still ACTIVE on the server.
    bool end_deferred = false;
    Code rollback_only = Code::kOk;        // XA_RB* the branch must end with, or kOk
    std::string rollback_reason;
  };

  bool IsOurBranch(const Xid& xid) const { return branch_.has_value() && branch_->xid == xid; }

  Status Connect();
  Status Probe();
  // Reconnects when the session is gone; a no-op on a live session.
  Status EnsureOpen() { return connected() ? Status::Ok() : Open(); }

  // Runs one statement that returns no rows.
  Status Execute(const Xid* xid, std::string_view operation, const std::string& sql);
  // Sends the deferred XA END and `next` in one round trip. `end_status` gets the XA END's
  // result; the return value is `next`'s (not run when the XA END failed).
  Status ExecuteAfterDeferredEnd(const Xid& xid, std::string_view operation,
                                 const std::string& next, Status* end_status);
  // Applies a failed XA END of an ACTIVE branch to the branch state, as End() does.
  Status AfterFailedEnd(const Xid& xid, Status status);
  // Sends a deferred XA END on its own (before a verb that cannot carry it).
  Status FlushDeferredEnd(const Xid& xid);
  // Sends XA END for End() and FlushDeferredEnd() and reads its result.
  Status SendEnd(const Xid& xid, EndFlag flag);
  // Prepare/one-phase Commit of a branch whose XA END is deferred: both in one round trip.
  Status FinishWithDeferredEnd(const Xid& xid, CommitMode mode);
  Result<int64_t> ReadWriteCounter(const Xid* xid);
  // Ends a rollback-only branch: XA ROLLBACK, then the branch's XA_RB* code.
  Status FinishRollbackOnly(const Xid& xid);
  // XAER_PROTO instead of the server's 1399 when the session is bound to a prepared branch.
  Status BoundToPrepared(std::string_view operation, Status refused) const;
  // XAER_PROTO instead of the server's 1399 when XA START is refused because branch_, another
  // branch, is not finished (a deadlock victim whose End failed and that was never rolled back).
  Status HoldsUnfinishedBranch(Status refused) const;
  // XAER_NOTA for End/Prepare of a branch this session is not driving.
  Status NotOurs(const Xid& xid, std::string_view operation) const;
  // MariaDB answers XA COMMIT/ROLLBACK from another session with 1397 (XAER_NOTA) while the
  // session that prepared the branch is still connected: dialect::ReadPhaseTwoNota decides,
  // from an XA RECOVER run now, what the 1397 means.
  Status CheckFalseNota(const Xid& xid, Status nota);
  // Remembers the session about to end when it holds a prepared branch (see ended_holder_).
  void NoteEndingHolder() noexcept;
  // Phase 2 of `xid` from this session must wait while the session that held it prepared and
  // that this object ended is still on the server (the detach window, mariadb_dialect.h):
  // polls the process list; XAER_RMFAIL when that session is still there after the wait.
  Status AwaitEndedHolder(const Xid& xid);
  // Whether the process list shows session `session_id` (one look, on this session).
  Result<bool> SessionListed(const Xid* xid, uint64_t session_id);

  // The commit marker needs MariaDB (the settle's SET STATEMENT): XA_NOTSUPPORTED elsewhere.
  Status MarkerSupported(internal::MarkerCall call) const;
  // For the marker calls outside any branch: XAER_PROTO while a branch is associated with the
  // session or it holds a prepared one (MariaDB refuses every table statement there); opens the
  // session when it is gone.
  Status MarkerOutsideBranch(internal::MarkerCall call);
  // The Status of a failed marker statement (Fail, then the dialect's reading of it).
  Status MarkerFailure(internal::MarkerCall call, std::string_view table, const Xid* global,
                       const std::string& operation, SqlFailure failure);
  // Runs a marker read (HEX(gtrid), format_id, outcome) and appends its rows to `rows`.
  Status QueryMarkerRows(internal::MarkerCall call, std::string_view table,
                         const std::string& sql, const std::string& operation,
                         std::vector<internal::MarkerTextRow>* rows);
  // Best effort after a failure inside START TRANSACTION .. COMMIT of our own.
  void RollbackLocalQuietly() noexcept;

  // The Status of a failure; marks the session broken when the connection is gone.
  // Whose statement failed: a failure of the application's own SQL (a CHECK constraint, a
  // duplicate key) is the application's business, returned to it and logged at debug level
  // only, unless it lost the connection. A marker statement's failure is logged by
  // MarkerFailure, after the dialect has read it (a 1205 of the settle is XA_RETRY there).
  enum class Statement : uint8_t { kOurs, kApplication, kMarker };
  Status Fail(const Xid* xid, std::string_view operation, SqlFailure failure,
              Statement statement = Statement::kOurs);
  std::string Redact(std::string text) const;
  void MarkBroken() noexcept;
  void CloseQuietly() noexcept;

  MySqlOptions options_;
  std::string log_component_;
  std::unique_ptr<sql::Connection> connection_;
  std::unique_ptr<sql::Statement> statement_;  // ours, for the XA statements
  bool broken_ = false;
  ServerInfo info_;
  uint64_t connection_id_ = 0;
  bool read_only_probe_works_ = false;
  int64_t last_write_counter_ = -1;  // the session's last counter reading, -1 when unknown
  int last_error_number_ = 0;  // of the last failure, for the callers that must tell 1399 apart
  std::optional<Branch> branch_;
  // A branch this session prepared and has not finished: MariaDB keeps the session bound to it
  // (every other statement fails with 1399) until it is committed or rolled back here, or the
  // session ends.
  std::optional<Xid> bound_prepared_;
  // A session of this object that ended while it held a prepared branch, until the server is
  // seen to have let it go: finishing that branch from another session before then may be
  // answered OK without effect.
  struct EndedHolder {
    uint64_t connection_id = 0;
    Xid xid;
  };
  std::optional<EndedHolder> ended_holder_;
};

// ---- Errors --------------------------------------------------------------------------------

std::string MySqlResourceManager::Impl::Redact(std::string text) const {
  const std::string& secret = options_.password;
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos;
       at = text.find(secret, at + 10)) {
    text.replace(at, secret.size(), "<redacted>");
  }
  return text;
}

Status MySqlResourceManager::Impl::Fail(const Xid* xid, std::string_view operation,
                                        SqlFailure failure, Statement statement) {
  last_error_number_ = failure.error_number;
  Status status = dialect::MapMariaDbError(failure.error_number, failure.sqlstate,
                                           Redact(std::move(failure.text)), options_.rm_name, xid,
                                           operation);
  const bool lost = failure.error_number == 0 || dialect::IsConnectionLost(failure.error_number);
  if (lost) MarkBroken();
  const LogLevel level =
      statement != Statement::kOurs && !lost ? LogLevel::kDebug : LogLevel::kWarning;
  if (level >= GetLogLevel()) {
    ::xa::internal::LogStream(level, log_component_, xid) << status.ToString();
  }
  return status;
}

void MySqlResourceManager::Impl::NoteEndingHolder() noexcept {
  if (bound_prepared_.has_value() && connection_id_ != 0 && !broken_) {
    ended_holder_ = EndedHolder{connection_id_, *bound_prepared_};
  }
}

void MySqlResourceManager::Impl::MarkBroken() noexcept {
  // The server rolls back an ACTIVE or IDLE branch when its session ends; a prepared one is
  // detached and survives. Either way this session no longer drives a branch. The connection
  // object is kept until the next Open() so that a reference from connection() stays valid.
  NoteEndingHolder();
  broken_ = true;
  branch_.reset();
  bound_prepared_.reset();
  last_write_counter_ = -1;
}

void MySqlResourceManager::Impl::CloseQuietly() noexcept {
  NoteEndingHolder();
  branch_.reset();
  bound_prepared_.reset();
  last_write_counter_ = -1;
  std::optional<SqlFailure> ignored = Catch([&] {
    statement_.reset();
    if (connection_ != nullptr && !connection_->isClosed()) connection_->close();
  });
  (void)ignored;  // closing a session that is already gone cannot fail in a way that matters
  Catch([&] { connection_.reset(); }).reset();
  statement_.reset();
  connection_.reset();
}

Status MySqlResourceManager::StatusFromException(const sql::SQLException& error) {
  return impl_->StatusFromException(error);
}

Status MySqlResourceManager::Impl::StatusFromException(const sql::SQLException& error) {
  SqlFailure failure;
  std::optional<SqlFailure> copy_failed = Catch([&] { failure = FailureFrom(error); });
  if (copy_failed) failure = *copy_failed;
  std::optional<Xid> xid;
  if (branch_) xid = branch_->xid;
  Status status = Fail(xid ? &*xid : nullptr, "statement", std::move(failure),
                       Statement::kApplication);
  if (status.IsRollback() && branch_) {
    branch_->rollback_only = status.code();
    branch_->rollback_reason = "a statement failed with " + status.message();
  }
  return status;
}

// ---- Session -------------------------------------------------------------------------------

// The connection options every connection of this driver is made with (the resource manager's,
// and the plain ones of OpenLocalConnection).
static sql::ConnectOptionsMap ConnectOptions(const MySqlOptions& options) {
  sql::ConnectOptionsMap map;
  if (options.unix_socket.empty()) {
    map["hostName"] = sql::SQLString(options.host);
    map["port"] = options.port;
  } else {
    map["hostName"] = sql::SQLString("unix://" + options.unix_socket);
  }
  map["userName"] = sql::SQLString(options.user);
  map["password"] = sql::SQLString(options.password);
  if (!options.database.empty()) map["schema"] = sql::SQLString(options.database);
  map["OPT_CONNECT_TIMEOUT"] = static_cast<int>(options.connect_timeout.count());
  map["OPT_READ_TIMEOUT"] = static_cast<int>(options.read_timeout.count());
  map["OPT_WRITE_TIMEOUT"] = static_cast<int>(options.write_timeout.count());
  // A silent reconnect would lose the transaction (or the branch's association) and run the
  // next statement outside it: never.
  map["OPT_RECONNECT"] = false;
  map["CLIENT_MULTI_STATEMENTS"] = options.batch_xa_end;
  return map;
}

Result<std::unique_ptr<sql::Connection>> OpenLocalConnection(const MySqlOptions& options) {
  std::unique_ptr<sql::Connection> connection;
  std::optional<SqlFailure> failure = Catch([&] {
    sql::ConnectOptionsMap map = ConnectOptions(options);
    {
      std::lock_guard<std::mutex> lock(ConnectMutex());
      connection.reset(get_driver_instance()->connect(map));
    }
    connection->setAutoCommit(false);
  });
  if (failure) {
    const std::string where = options.unix_socket.empty()
                                  ? options.host + ":" + std::to_string(options.port)
                                  : "socket " + options.unix_socket;
    return Status(Code::kRmFail, "cannot connect to " + where + " as '" + options.user +
                                     "': " + failure->text + " (MySQL error " +
                                     std::to_string(failure->error_number) + ")");
  }
  return connection;
}

Status MySqlResourceManager::Impl::Connect() {
  CloseQuietly();
  broken_ = false;
  std::string where = options_.unix_socket.empty()
                          ? options_.host + ":" + std::to_string(options_.port)
                          : "socket " + options_.unix_socket;
  std::string operation = "connect to " + where + " as '" + options_.user + "'";
  std::optional<SqlFailure> failure = Catch([&] {
    sql::ConnectOptionsMap map = ConnectOptions(options_);
    std::lock_guard<std::mutex> lock(ConnectMutex());
    sql::Driver* driver = get_driver_instance();
    connection_.reset(driver->connect(map));
  });
  if (failure) {
    connection_.reset();
    Status status = Fail(nullptr, operation, std::move(*failure));
    broken_ = true;
    return status;
  }
  failure = Catch([&] { statement_.reset(connection_->createStatement()); });
  if (failure) return Fail(nullptr, "create a statement", std::move(*failure));
  return Status::Ok();
}

Status MySqlResourceManager::Impl::Probe() {
  XA_RETURN_IF_ERROR(Execute(nullptr, "set the isolation level",
                             dialect::SetIsolationSql(ToDialect(options_.isolation))));
  std::string version_text, xa_column;
  bool xa_column_null = true;
  int autocommit = 1;
  std::optional<SqlFailure> failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> rows(
        statement_->executeQuery(sql::SQLString(std::string(dialect::kProbeSql))));
    if (!rows->next()) throw sql::SQLException("the capability probe returned no row");
    version_text = rows->getString(1);
    xa_column_null = rows->isNull(2);
    if (!xa_column_null) xa_column = rows->getString(2);
    autocommit = rows->getInt(3);
    connection_id_ = rows->getUInt64(4);
  });
  if (failure) return Fail(nullptr, "capability probe", std::move(*failure));

  Result<dialect::ServerVersion> version = dialect::ParseServerVersion(version_text);
  if (!version.ok()) {
    return Status(Code::kConfig, "resource manager '" + options_.rm_name +
                                     "': " + version.status().message() +
                                     "; xa needs MariaDB >= 10.5 or MySQL >= 5.7.7");
  }
  info_ = ServerInfo();
  info_.product = version->product;
  info_.version = version->text;
  info_.major = version->major;
  info_.minor = version->minor;
  info_.patch = version->patch;
  info_.prepared_survive_disconnect = dialect::PreparedBranchSurvivesDisconnect(*version);
  info_.xa_supported = !xa_column_null && xa_column == "YES";
  XA_RETURN_IF_ERROR(dialect::CheckServerVersion(*version, options_.rm_name));
  if (!info_.xa_supported) {
    return Status(Code::kConfig,
                  "resource manager '" + options_.rm_name + "': server " + info_.version +
                      " has no InnoDB engine with XA support (information_schema.ENGINES); "
                      "start the server with InnoDB enabled and make the tables InnoDB");
  }
  if (autocommit == 0) {
    // Branches need a session without a local transaction; with autocommit off every
    // statement outside a branch would open one and make the next XA START fail (1400).
    failure = Catch([&] { connection_->setAutoCommit(true); });
    if (failure) return Fail(nullptr, "set autocommit", std::move(*failure));
  }

  failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> rows(
        statement_->executeQuery(sql::SQLString(std::string(dialect::kXaRecoverSql))));
    while (rows->next()) {
    }
  });
  info_.may_recover = !failure.has_value();
  if (failure) {
    if (failure->error_number == 0 || dialect::IsConnectionLost(failure->error_number)) {
      return Fail(nullptr, "XA RECOVER (capability probe)", std::move(*failure));
    }
    return Status(Code::kConfig,
                  "resource manager '" + options_.rm_name + "': user '" + options_.user +
                      "' may not run XA RECOVER (server error " +
                      std::to_string(failure->error_number) + ": " +
                      dialect::EscapeForMessage(Redact(failure->text)) +
                      "), so prepared branches could not be recovered after a crash; on MySQL 8 "
                      "GRANT XA_RECOVER_ADMIN ON *.* TO the user");
  }

  read_only_probe_works_ = false;
  if (options_.read_only_optimization) {
    Result<int64_t> counter = ReadWriteCounter(nullptr);
    if (counter.ok()) {
      read_only_probe_works_ = true;
      last_write_counter_ = *counter;
    } else if (!connected()) {
      return counter.status();
    } else {
      XA_LOG(kWarning, log_component_)
          << "read-only optimisation disabled, the write counters cannot be read: "
          << counter.status().ToString()
          << "; read-only branches will be prepared and, on MariaDB, cannot be committed from "
             "another session (1402)";
    }
  }
  XA_LOG(kInfo, log_component_) << "connected to " << info_.product << " " << info_.version
                                << " as '" << options_.user << "', connection id "
                                << connection_id_ << ", isolation "
                                << dialect::IsolationName(ToDialect(options_.isolation));
  return Status::Ok();
}

Status MySqlResourceManager::Impl::Open() {
  if (connected()) return Status::Ok();
  XA_RETURN_IF_ERROR(Connect());
  Status probed = Probe();
  if (!probed.ok()) {
    CloseQuietly();
    broken_ = true;
  }
  return probed;
}

Status MySqlResourceManager::Impl::Close() {
  CloseQuietly();
  broken_ = false;
  if (!ended_holder_.has_value()) return Status::Ok();
  // The session held a prepared branch: return only once the server has let it go, so that any
  // session may finish the branch as soon as Close() returns. A helper session looks.
  Xid held = ended_holder_->xid;
  Status waited = Connect();
  if (waited.ok()) waited = AwaitEndedHolder(held);
  CloseQuietly();
  broken_ = false;
  if (!waited.ok()) {
    XA_LOG_XID(kWarning, log_component_, held)
        << "closed, but could not see the server let the session go: " << waited.ToString();
  }
  return Status::Ok();
}

Status MySqlResourceManager::Impl::Execute(const Xid* xid, std::string_view operation,
                                           const std::string& sql) {
  if (!connected()) {
    return Fail(xid, operation, SqlFailure{2006, "HY000", "not connected"});
  }
  std::optional<SqlFailure> failure =
      Catch([&] { statement_->execute(sql::SQLString(sql)); });
  if (failure) return Fail(xid, operation, std::move(*failure));
  return Status::Ok();
}

Result<int64_t> MySqlResourceManager::Impl::ReadWriteCounter(const Xid* xid) {
  int64_t value = -1;
  std::optional<SqlFailure> failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> rows(
        statement_->executeQuery(sql::SQLString(std::string(dialect::kReadOnlyProbeSql))));
    if (rows->next() && !rows->isNull(1)) value = rows->getInt64(1);
  });
  if (failure) return Fail(xid, "read the session's write counters", std::move(*failure));
  if (value < 0) {
    return Status(Code::kRmError, "resource manager '" + options_.rm_name +
                                      "': the session's write counters are missing");
  }
  return value;
}

// ---- XA verbs ------------------------------------------------------------------------------

Status MySqlResourceManager::Impl::NotOurs(const Xid& xid, std::string_view operation) const {
  return Status(Code::kNoTa,
                "resource manager '" + options_.rm_name + "': " + std::string(operation) +
                    " of xid " + xid.ToString() +
                    ": this session drives no such branch (MariaDB ends and prepares a branch only "
                    "in the session that started it; a branch whose connection was lost before "
                    "XA PREPARE has been rolled back by the server)");
}

Status MySqlResourceManager::Impl::CheckFalseNota(const Xid& xid, Status nota) {
  Result<RecoverScan> scan = Recover();
  dialect::NotaScan seen = dialect::NotaScan::kFailed;
  if (scan.ok()) {
    bool listed = std::find(scan->prepared.begin(), scan->prepared.end(), xid) !=
                  scan->prepared.end();
    seen = listed ? dialect::NotaScan::kListed : dialect::NotaScan::kNotListed;
  }
  Status read = dialect::ReadPhaseTwoNota(nota, seen, scan.status(), options_.rm_name, xid);
  if (read.code() != Code::kNoTa) {
    XA_LOG_XID(kWarning, log_component_, xid) << read.ToString();
  }
  return read;
}

Result<bool> MySqlResourceManager::Impl::SessionListed(const Xid* xid, uint64_t session_id) {
  const std::string sql = dialect::SessionPresentSql(session_id);
  int64_t present = -1;
  std::optional<SqlFailure> failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> rows(statement_->executeQuery(sql::SQLString(sql)));
    if (rows->next()) present = rows->getInt64(1);
  });
  if (failure) return Fail(xid, "look for session " + std::to_string(session_id) +
                                    " in the process list", std::move(*failure));
  return present != 0;
}

Status MySqlResourceManager::Impl::AwaitEndedHolder(const Xid& xid) {
  if (!ended_holder_.has_value() || ended_holder_->xid != xid) return Status::Ok();
  const uint64_t holder = ended_holder_->connection_id;
  Result<internal::SessionWaitEnd> waited = internal::AwaitSessionGone(
      internal::kSessionWaitRule, [&] { return SessionListed(&xid, holder); });
  if (!waited.ok()) return waited.status();
  // Watched once, in full: either the server let the session go, or the window after its end
  // is long over and the id is now the holder still alive (phase 2 then gets the false 1397,
  // read as busy) or a new session that reuses the id after a server restart. The next call
  // goes ahead.
  ended_holder_.reset();
  if (*waited == internal::SessionWaitEnd::kGone) return Status::Ok();
  return dialect::EndedSessionStillPresent(options_.rm_name, xid, holder);
}

Result<uint64_t> MySqlResourceManager::Impl::SessionId() const {
  if (!connected() || connection_id_ == 0) {
    return Status(Code::kRmFail, "resource manager '" + options_.rm_name +
                                     "': no session, so no session id (the session that did "
                                     "the work is gone; a new one would have another id)");
  }
  return connection_id_;
}

Status MySqlResourceManager::Impl::FenceSession(uint64_t session_id) {
  XA_RETURN_IF_ERROR(internal::CheckFenceTarget(session_id, 0, options_.rm_name));
  XA_RETURN_IF_ERROR(EnsureOpen());
  XA_RETURN_IF_ERROR(internal::CheckFenceTarget(session_id, connection_id_, options_.rm_name));
  // Looked up first: a session that the KILL ends but the process list never showed belongs to
  // another user and cannot be watched leaving (no PROCESS privilege).
  Result<bool> listed_before = SessionListed(nullptr, session_id);
  if (!listed_before.ok()) return listed_before.status();
  const std::string kill = dialect::KillConnectionSql(session_id);
  std::optional<SqlFailure> failure = Catch([&] { statement_->execute(sql::SQLString(kill)); });
  if (failure) {
    switch (dialect::ReadKillRefusal(failure->error_number)) {
      case dialect::KillRefusal::kNoSuchSession:
        break;  // already gone, perhaps only just: the wait below still pauses after it
      case dialect::KillRefusal::kNotPermitted:
        return dialect::KillNotPermitted(options_.rm_name, session_id, options_.user,
                                         Redact(failure->text));
      case dialect::KillRefusal::kOther:
        return Fail(nullptr, kill, std::move(*failure));
    }
  } else if (!*listed_before) {
    return dialect::KilledSessionNotVisible(options_.rm_name, session_id, options_.user);
  }
  Result<internal::SessionWaitEnd> waited = internal::AwaitSessionGone(
      internal::kSessionWaitRule, [&] { return SessionListed(nullptr, session_id); });
  if (!waited.ok()) return waited.status();
  if (*waited == internal::SessionWaitEnd::kStillPresent) {
    return internal::FencedSessionStillPresent(options_.rm_name, session_id);
  }
  XA_LOG(kInfo, log_component_) << "fenced session " << session_id;
  return Status::Ok();
}

Status MySqlResourceManager::Impl::BoundToPrepared(std::string_view operation,
                                                   Status refused) const {
  if (!bound_prepared_ || !connected() || last_error_number_ != 1399) return refused;
  return Status(Code::kProto,
                "resource manager '" + options_.rm_name + "': " + std::string(operation) +
                    " refused: this session still holds branch " + bound_prepared_->ToString() +
                    ", which it prepared; commit or roll it back first, or Close() the session "
                    "to leave it prepared for another session (" + refused.message() + ")");
}

Status MySqlResourceManager::Impl::HoldsUnfinishedBranch(Status refused) const {
  std::string held = "resource manager '" + options_.rm_name +
                     "': XA START refused: this session still holds branch " +
                     branch_->xid.ToString();
  if (branch_->rollback_only != Code::kOk) {
    held += ", which has been rolled back (" + branch_->rollback_reason +
            ") but not released: call Rollback() with that xid first (only XA ROLLBACK or the "
            "end of the session releases it; Open() of a live session does not)";
  } else {
    held += std::string(", which is ") +
            (branch_->state == BranchState::kIdle ? "ended" : "active") +
            " but not finished: prepare and commit it, or roll it back, first (MariaDB drives "
            "one branch per session)";
  }
  return Status(Code::kProto, held + " (" + refused.message() + ")");
}

Status MySqlResourceManager::Impl::Start(const Xid& xid, StartFlag flag) {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (branch_.has_value() && branch_->end_deferred) {
    if (flag == StartFlag::kResume && IsOurBranch(xid)) {
      // The XA END was never sent: the branch is still ACTIVE on the server.
      branch_->end_deferred = false;
      branch_->state = BranchState::kActive;
      return Status::Ok();
    }
    Xid ended = branch_->xid;
    XA_RETURN_IF_ERROR(FlushDeferredEnd(ended));
  }
  Status started = Execute(&xid, "XA START", dialect::XaStartSql(xid, flag));
  if (!started.ok() && branch_.has_value() && !IsOurBranch(xid) && last_error_number_ == 1399) {
    return HoldsUnfinishedBranch(std::move(started));
  }
  if (!started.ok()) return BoundToPrepared("XA START", std::move(started));
  if (flag != StartFlag::kNoFlags && IsOurBranch(xid)) {
    branch_->state = BranchState::kActive;
    return Status::Ok();
  }
  Branch branch;
  branch.xid = xid;
  // Any earlier reading will do: the counters only grow, so an older baseline can only make a
  // branch look as if it wrote (safe), never as if it did not.
  branch.write_counter_at_start = read_only_probe_works_ ? last_write_counter_ : -1;
  branch_ = std::move(branch);
  return Status::Ok();
}

Status MySqlResourceManager::Impl::End(const Xid& xid, EndFlag flag) {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (!IsOurBranch(xid)) return NotOurs(xid, "XA END");
  if (branch_->end_deferred) {
    return Status(Code::kProto, "resource manager '" + options_.rm_name + "': branch " +
                                    xid.ToString() + " is already ended");
  }
  if (options_.batch_xa_end && flag == EndFlag::kSuccess &&
      branch_->state == BranchState::kActive && branch_->rollback_only == Code::kOk) {
    branch_->state = BranchState::kIdle;
    branch_->end_deferred = true;  // sent with the next verb
    return Status::Ok();
  }
  return SendEnd(xid, flag);
}

Status MySqlResourceManager::Impl::SendEnd(const Xid& xid, EndFlag flag) {
  bool was_active = branch_->state == BranchState::kActive;
  EndFlag sent = flag == EndFlag::kFail ? EndFlag::kSuccess : flag;
  Status status = Execute(&xid, "XA END", dialect::XaEndSql(xid, sent));
  if (!IsOurBranch(xid)) return status;  // the connection is gone, and the branch with it
  if (!status.ok() && was_active) return AfterFailedEnd(xid, std::move(status));
  if (status.ok()) {
    branch_->state = BranchState::kIdle;
    if (flag == EndFlag::kFail && branch_->rollback_only == Code::kOk) {
      branch_->rollback_only = Code::kRbRollback;
      branch_->rollback_reason = "the branch was ended with TMFAIL";
    }
  } else if (status.IsRollback()) {
    // The server rolled the branch back (deadlock): it waits in ROLLBACK ONLY for XA ROLLBACK.
    branch_->state = BranchState::kIdle;
    branch_->rollback_only = status.code();
    branch_->rollback_reason = status.message();
  }
  return status;
}

Status MySqlResourceManager::Impl::AfterFailedEnd(const Xid& xid, Status status) {
  if (!IsOurBranch(xid)) return status;  // the connection is gone, and the branch with it
  if (dialect::EndRefusedBecauseRolledBack(last_error_number_)) {
    // The server has already rolled the branch back (a deadlock: 1213 on a statement) and holds
    // it ROLLBACK ONLY: the session stays bound to it until Rollback() sends XA ROLLBACK.
    if (branch_->rollback_only == Code::kOk) {
      branch_->rollback_only = Code::kRbRollback;
      branch_->rollback_reason = "the server rolled it back: " + status.message();
    }
    branch_->state = BranchState::kIdle;
    return Status(branch_->rollback_only,
                  "resource manager '" + options_.rm_name + "': branch " + xid.ToString() +
                      " has been rolled back by the server (" + branch_->rollback_reason +
                      "); roll it back to release it");
  }
  if (status.IsRollback()) {
    // The server rolled the branch back (deadlock): it waits in ROLLBACK ONLY for XA ROLLBACK.
    branch_->state = BranchState::kIdle;
    branch_->rollback_only = status.code();
    branch_->rollback_reason = status.message();
  }
  return status;
}

Status MySqlResourceManager::Impl::ExecuteAfterDeferredEnd(const Xid& xid,
                                                           std::string_view operation,
                                                           const std::string& next,
                                                           Status* end_status) {
  branch_->end_deferred = false;
  *end_status = Status::Ok();
  if (!connected()) {
    *end_status = Fail(&xid, "XA END", SqlFailure{2006, "HY000", "not connected"});
    return *end_status;
  }
  const std::string batch =
      dialect::XaEndSql(xid, EndFlag::kSuccess) + ";" + next;
  bool end_done = false;
  std::optional<SqlFailure> failure = Catch([&] {
    statement_->execute(sql::SQLString(batch));
    end_done = true;
    // The second statement's error surfaces here; the loop also consumes every result.
    // Connector/C++ reports "no further result" as an update count of all ones.
    constexpr uint64_t kNoMoreResults = ~uint64_t{0};
    while (statement_->getMoreResults() || statement_->getUpdateCount() != kNoMoreResults) {
    }
  });
  if (!failure) return Status::Ok();
  if (!end_done) {
    *end_status = Fail(&xid, "XA END", std::move(*failure));
    return *end_status;
  }
  return Fail(&xid, operation, std::move(*failure));
}

Status MySqlResourceManager::Impl::FlushDeferredEnd(const Xid& xid) {
  if (!IsOurBranch(xid) || !branch_->end_deferred) return Status::Ok();
  branch_->end_deferred = false;
  branch_->state = BranchState::kActive;  // on the server it still is
  // Not through End(), which would defer it again.
  return SendEnd(xid, EndFlag::kSuccess);
}

Status MySqlResourceManager::Impl::FinishWithDeferredEnd(const Xid& xid, CommitMode mode) {
  const bool one_phase = mode == CommitMode::kOnePhase;
  const char* operation = one_phase ? "XA COMMIT ONE PHASE" : "XA PREPARE";
  Status ended;
  Status finished = ExecuteAfterDeferredEnd(
      xid, operation,
      one_phase ? dialect::XaCommitSql(xid, CommitMode::kOnePhase) : dialect::XaPrepareSql(xid),
      &ended);
  if (!ended.ok()) {
    // As if End() had failed: the branch is gone with the session, or rolled back by the
    // server (then roll it back here and report why, as Prepare does for a rollback-only one).
    ended = AfterFailedEnd(xid, std::move(ended));
    if (IsOurBranch(xid) && branch_->rollback_only != Code::kOk) return FinishRollbackOnly(xid);
    return ended;
  }
  if (finished.ok()) {
    if (!one_phase) {
      // The session is now bound to the prepared branch (see Prepare).
      if (IsOurBranch(xid)) branch_.reset();
      bound_prepared_ = xid;
    } else if (IsOurBranch(xid)) {
      branch_.reset();
    }
    return finished;
  }
  if (finished.IsRollback() && IsOurBranch(xid)) {
    // The server did not prepare or commit; make sure nothing of the branch is left here.
    Execute(&xid, "XA ROLLBACK (after a failed batch)", dialect::XaRollbackSql(xid))
        .IgnoreError();
    branch_.reset();
  } else if (one_phase && finished.code() == Code::kNoTa && IsOurBranch(xid)) {
    branch_.reset();
  }
  return finished;
}

Status MySqlResourceManager::Impl::FinishRollbackOnly(const Xid& xid) {
  Code code = branch_->rollback_only;
  std::string reason = branch_->rollback_reason;
  Status rolled_back = Execute(&xid, "XA ROLLBACK", dialect::XaRollbackSql(xid));
  if (!rolled_back.ok() && rolled_back.code() != Code::kNoTa && !rolled_back.IsRollback()) {
    return rolled_back;
  }
  branch_.reset();
  return Status(code, "resource manager '" + options_.rm_name + "': branch " + xid.ToString() +
                          " has been rolled back instead of prepared or committed: " + reason);
}

Status MySqlResourceManager::Impl::Prepare(const Xid& xid) {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (!IsOurBranch(xid)) return NotOurs(xid, "XA PREPARE");
  if (branch_->rollback_only != Code::kOk) return FinishRollbackOnly(xid);
  if (branch_->end_deferred) {
    if (branch_->write_counter_at_start < 0) return FinishWithDeferredEnd(xid, CommitMode::kTwoPhase);
    // The read-only probe runs between the two statements: send the XA END now.
    Status ended = FlushDeferredEnd(xid);
    if (!ended.ok()) {
      if (IsOurBranch(xid) && branch_->rollback_only != Code::kOk) return FinishRollbackOnly(xid);
      return ended;
    }
  }

  if (IsOurBranch(xid) && branch_->state == BranchState::kIdle &&
      branch_->write_counter_at_start >= 0) {
    Result<int64_t> counter = ReadWriteCounter(&xid);
    if (!counter.ok() && !connected()) return counter.status();  // the branch went with it
    // Any other failure of the probe only costs the optimisation: prepare normally.
    if (counter.ok()) last_write_counter_ = *counter;
    if (counter.ok() &&
        dialect::CounterProvesReadOnly(branch_->write_counter_at_start, *counter)) {
      Status committed = Execute(&xid, "XA COMMIT ONE PHASE (read-only branch)",
                                 dialect::XaCommitSql(xid, CommitMode::kOnePhase));
      if (committed.ok()) {
        branch_.reset();
        return Status(Code::kReadOnly, "resource manager '" + options_.rm_name + "': branch " +
                                           xid.ToString() +
                                           " wrote nothing and has been finished");
      }
      if (committed.IsRollback() || committed.code() == Code::kNoTa) branch_.reset();
      return committed;
    }
  }

  Status prepared = Execute(&xid, "XA PREPARE", dialect::XaPrepareSql(xid));
  if (prepared.ok()) {
    // The session is now bound to the prepared branch until it is committed or rolled back
    // here or the session ends; phase 2 may also come from another session after that.
    if (IsOurBranch(xid)) branch_.reset();
    bound_prepared_ = xid;
    return prepared;
  }
  if (prepared.IsRollback() && IsOurBranch(xid)) {
    // The server did not prepare; make sure nothing of the branch is left in this session.
    Execute(&xid, "XA ROLLBACK (after a failed prepare)", dialect::XaRollbackSql(xid))
        .IgnoreError();
    branch_.reset();
  }
  return prepared;
}

Status MySqlResourceManager::Impl::Commit(const Xid& xid, CommitMode mode) {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (mode == CommitMode::kOnePhase && IsOurBranch(xid) && branch_->rollback_only != Code::kOk) {
    return FinishRollbackOnly(xid);
  }
  if (mode == CommitMode::kOnePhase && IsOurBranch(xid) && branch_->end_deferred) {
    return FinishWithDeferredEnd(xid, CommitMode::kOnePhase);
  }
  if (mode == CommitMode::kTwoPhase && !IsOurBranch(xid) && bound_prepared_ != xid) {
    XA_RETURN_IF_ERROR(AwaitEndedHolder(xid));
  }
  Status committed = Execute(&xid, mode == CommitMode::kOnePhase ? "XA COMMIT ONE PHASE"
                                                                 : "XA COMMIT",
                             dialect::XaCommitSql(xid, mode));
  if (committed.code() == Code::kNoTa && !IsOurBranch(xid)) {
    committed = CheckFalseNota(xid, std::move(committed));
  }
  bool final_answer = committed.ok() || committed.IsRollback() || committed.code() == Code::kNoTa;
  if (final_answer && bound_prepared_ == xid) bound_prepared_.reset();
  if (!committed.ok() && !final_answer) {
    committed = BoundToPrepared("XA COMMIT", std::move(committed));
  }
  if (IsOurBranch(xid) && (committed.ok() || committed.IsRollback() ||
                           committed.code() == Code::kNoTa)) {
    if (committed.IsRollback()) {
      Execute(&xid, "XA ROLLBACK (after a failed commit)", dialect::XaRollbackSql(xid))
          .IgnoreError();
    }
    branch_.reset();
  }
  return committed;
}

Status MySqlResourceManager::Impl::Rollback(const Xid& xid) {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (IsOurBranch(xid) && branch_->end_deferred) {
    branch_->end_deferred = false;  // still ACTIVE on the server: the XA END is sent below
    branch_->state = BranchState::kActive;
  }
  if (IsOurBranch(xid) && branch_->state == BranchState::kActive) {
    // XA ROLLBACK refuses an ACTIVE branch (1399): end it first. A branch the server has already
    // rolled back (a deadlock victim) fails that XA END with XA_RB*, and XA ROLLBACK is then what
    // releases the session, as after a failed End().
    Status ended = End(xid, EndFlag::kFail);
    if (!ended.ok() && !ended.IsRollback()) return ended;
  }
  if (!IsOurBranch(xid) && bound_prepared_ != xid) XA_RETURN_IF_ERROR(AwaitEndedHolder(xid));
  Status rolled_back = Execute(&xid, "XA ROLLBACK", dialect::XaRollbackSql(xid));
  if (rolled_back.code() == Code::kNoTa && !IsOurBranch(xid)) {
    rolled_back = CheckFalseNota(xid, std::move(rolled_back));
  }
  if (rolled_back.IsRollback()) {
    // Asked to roll back and the server says it is rolled back: that is success.
    rolled_back = Status::Ok();
  }
  if ((rolled_back.ok() || rolled_back.code() == Code::kNoTa) && bound_prepared_ == xid) {
    bound_prepared_.reset();
  }
  if (!rolled_back.ok() && rolled_back.code() != Code::kNoTa) {
    rolled_back = BoundToPrepared("XA ROLLBACK", std::move(rolled_back));
  }
  if (IsOurBranch(xid) && (rolled_back.ok() || rolled_back.code() == Code::kNoTa)) {
    branch_.reset();
  }
  return rolled_back;
}

Result<RecoverScan> MySqlResourceManager::Impl::Recover() {
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (branch_.has_value() && branch_->end_deferred) {
    Xid ended = branch_->xid;
    XA_RETURN_IF_ERROR(FlushDeferredEnd(ended));
  }
  std::vector<dialect::RecoverRow> rows;
  std::optional<SqlFailure> failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> result(
        statement_->executeQuery(sql::SQLString(std::string(dialect::kXaRecoverSql))));
    while (result->next()) {
      dialect::RecoverRow row;
      row.format_id = result->getInt64(1);
      row.gtrid_length = result->getInt64(2);
      row.bqual_length = result->getInt64(3);
      row.data = result->getString(4);
      rows.push_back(std::move(row));
    }
  });
  if (failure) return BoundToPrepared("XA RECOVER", Fail(nullptr, "XA RECOVER", std::move(*failure)));
  RecoverScan scan = dialect::ParseRecoverRows(rows);
  for (const UnparsedBranch& entry : scan.unparsed) {
    XA_LOG(kWarning, log_component_) << "XA RECOVER lists a branch that is no xid we could "
                                     << "have written, left alone: " << entry.raw << " ("
                                     << entry.reason << ")";
  }
  return scan;
}

// ---- The commit marker ---------------------------------------------------------------------

Status MySqlResourceManager::Impl::MarkerSupported(internal::MarkerCall call) const {
  if (info_.product == "MariaDB") return Status::Ok();
  return Status(Code::kNotSupported,
                "resource manager '" + options_.rm_name + "': " +
                    std::string(internal::MarkerCallName(call)) + " needs MariaDB (the settle "
                    "bounds its lock wait with SET STATEMENT, which " + info_.product + " " +
                    info_.version + " lacks): use a MariaDB or PostgreSQL database for the "
                    "marker table");
}

Status MySqlResourceManager::Impl::MarkerOutsideBranch(internal::MarkerCall call) {
  if (branch_.has_value()) {
    return internal::MarkerCallRefused(
        options_.rm_name, call,
        "branch " + branch_->xid.ToString() + " is associated with this session; this call "
        "runs outside any branch: finish the branch first, or use another resource manager "
        "object");
  }
  XA_RETURN_IF_ERROR(EnsureOpen());
  if (bound_prepared_.has_value()) {
    return internal::MarkerCallRefused(
        options_.rm_name, call,
        "this session still holds branch " + bound_prepared_->ToString() +
            ", which it prepared (MariaDB refuses every statement on a table there): commit or "
            "roll it back first, or Close() the session to leave it prepared for another one");
  }
  return MarkerSupported(call);
}

Status MySqlResourceManager::Impl::MarkerFailure(internal::MarkerCall call,
                                                 std::string_view table, const Xid* global,
                                                 const std::string& operation,
                                                 SqlFailure failure) {
  const int error_number = failure.error_number;
  Status mapped = Fail(global, operation, std::move(failure), Statement::kMarker);
  Status status = dialect::ReadMarkerError(std::move(mapped), error_number, call,
                                           options_.rm_name, table, options_.user, global);
  // A settle that must wait longer is routine; every other failure is worth a warning.
  const LogLevel level = status.code() == Code::kRetry ? LogLevel::kInfo : LogLevel::kWarning;
  if (level >= GetLogLevel()) {
    ::xa::internal::LogStream(level, log_component_, global) << status.ToString();
  }
  return status;
}

Status MySqlResourceManager::Impl::QueryMarkerRows(internal::MarkerCall call,
                                                   std::string_view table,
                                                   const std::string& sql,
                                                   const std::string& operation,
                                                   std::vector<internal::MarkerTextRow>* rows) {
  if (!connected()) {
    return MarkerFailure(call, table, nullptr, operation,
                         SqlFailure{2006, "HY000", "not connected"});
  }
  std::optional<SqlFailure> failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> result(statement_->executeQuery(sql::SQLString(sql)));
    while (result->next()) {
      internal::MarkerTextRow row;
      for (uint32_t column = 1; column <= 3; ++column) {
        if (result->isNull(column)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(std::string(result->getString(column)));
        }
      }
      rows->push_back(std::move(row));
    }
  });
  if (failure) return MarkerFailure(call, table, nullptr, operation, std::move(*failure));
  return Status::Ok();
}

void MySqlResourceManager::Impl::RollbackLocalQuietly() noexcept {
  if (!connected()) return;  // the server ends the transaction with the session
  Catch([&] { statement_->execute(sql::SQLString(std::string(dialect::kRollbackSql))); }).reset();
}

Status MySqlResourceManager::Impl::WriteCommitMarker(std::string_view table, const Xid& global) {
  constexpr internal::MarkerCall kCall = internal::MarkerCall::kWrite;
  XA_RETURN_IF_ERROR(internal::CheckMarkerTable(table, options_.rm_name));
  if (!branch_.has_value() || branch_->state != BranchState::kActive || branch_->end_deferred) {
    return internal::MarkerCallRefused(
        options_.rm_name, kCall,
        branch_.has_value()
            ? "branch " + branch_->xid.ToString() + " is ended; the marker is written in the "
              "branch's work, between Start() and End()"
            : std::string("no branch is associated with this session; the marker is written in "
                          "the marker branch, between Start() and End()"));
  }
  const Xid branch = branch_->xid;
  if (branch_->rollback_only != Code::kOk) {
    return Status(branch_->rollback_only,
                  "resource manager '" + options_.rm_name + "': branch " + branch.ToString() +
                      " is rollback-only (" + branch_->rollback_reason +
                      "), so the commit marker of " + global.Global().ToString() +
                      " was not written: roll the branch back");
  }
  XA_RETURN_IF_ERROR(MarkerSupported(kCall));
  Result<std::string> insert = dialect::WriteCommitMarkerSql(table, global);
  if (!insert.ok()) return insert.status();
  std::optional<SqlFailure> failure =
      Catch([&] { statement_->execute(sql::SQLString(*insert)); });
  if (!failure) return Status::Ok();
  Status status = MarkerFailure(kCall, table, &global,
                                "WriteCommitMarker (INSERT into " + std::string(table) + ")",
                                std::move(*failure));
  if (IsOurBranch(branch)) {
    // Whatever failed (XAER_DUPID, XA_RB*, a missing table), the branch is rollback-only now: a
    // marker branch must never commit without its marker, or its transaction would commit here
    // while recovery settles it as aborted. MariaDB undid only the INSERT (also after a lock wait
    // timeout), so Prepare and a one-phase Commit roll the branch back and report it.
    branch_->rollback_only = status.IsRollback() ? status.code() : Code::kRbRollback;
    branch_->rollback_reason = "its commit marker could not be written: " + status.message();
  }
  return status;
}

Result<MarkerOutcome> MySqlResourceManager::Impl::SettleCommitMarker(
    std::string_view table, const Xid& global, std::chrono::milliseconds wait) {
  constexpr internal::MarkerCall kCall = internal::MarkerCall::kSettle;
  XA_RETURN_IF_ERROR(internal::CheckMarkerTable(table, options_.rm_name));
  XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
  Result<std::string> insert = dialect::SettleCommitMarkerSql(table, global, wait);
  if (!insert.ok()) return insert.status();
  Result<std::string> select = dialect::ReadOutcomeSql(table, global);
  if (!select.ok()) return select.status();
  // Autocommit: the 'A' row, when it is inserted, is committed by its own statement.
  std::optional<SqlFailure> failure =
      Catch([&] { statement_->execute(sql::SQLString(*insert)); });
  if (failure) {
    return MarkerFailure(kCall, table, &global,
                         "SettleCommitMarker (INSERT IGNORE into " + std::string(table) + ")",
                         std::move(*failure));
  }
  bool found = false;
  std::optional<std::string> outcome;
  failure = Catch([&] {
    std::unique_ptr<sql::ResultSet> rows(statement_->executeQuery(sql::SQLString(*select)));
    if (rows->next()) {
      found = true;
      if (!rows->isNull(1)) outcome = std::string(rows->getString(1));
    }
  });
  if (failure) {
    return MarkerFailure(kCall, table, &global,
                         "SettleCommitMarker (SELECT outcome from " + std::string(table) + ")",
                         std::move(*failure));
  }
  if (!found) return internal::MarkerRowVanished(options_.rm_name, table, global);
  return internal::ParseMarkerOutcome(outcome, options_.rm_name, table,
                                      internal::LowerHex(global.gtrid()));
}

Result<std::vector<MarkerRow>> MySqlResourceManager::Impl::ReadCommitMarkers(
    std::string_view table, const std::vector<Xid>& globals) {
  constexpr internal::MarkerCall kCall = internal::MarkerCall::kRead;
  XA_RETURN_IF_ERROR(internal::CheckMarkerTable(table, options_.rm_name));
  if (globals.empty()) return std::vector<MarkerRow>();
  XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
  Result<std::vector<std::string>> selects = dialect::ReadCommitMarkersSql(table, globals);
  if (!selects.ok()) return selects.status();
  std::vector<internal::MarkerTextRow> rows;
  for (const std::string& select : *selects) {
    XA_RETURN_IF_ERROR(QueryMarkerRows(
        kCall, table, select, "ReadCommitMarkers (SELECT from " + std::string(table) + ")",
        &rows));
  }
  return internal::ParseMarkerRows(rows, options_.rm_name, table);
}

Result<std::vector<MarkerRow>> MySqlResourceManager::Impl::ListCommitMarkers(
    std::string_view table, uint32_t node_id, size_t limit) {
  constexpr internal::MarkerCall kCall = internal::MarkerCall::kList;
  XA_RETURN_IF_ERROR(internal::CheckMarkerTable(table, options_.rm_name));
  XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
  Result<std::string> select = dialect::ListCommitMarkersSql(table, node_id, limit);
  if (!select.ok()) return select.status();
  std::vector<internal::MarkerTextRow> rows;
  XA_RETURN_IF_ERROR(QueryMarkerRows(
      kCall, table, *select, "ListCommitMarkers (SELECT from " + std::string(table) + ")", &rows));
  return internal::ParseMarkerRows(rows, options_.rm_name, table);
}

Status MySqlResourceManager::Impl::DeleteCommitMarkers(std::string_view table,
                                                       const std::vector<Xid>& globals) {
  constexpr internal::MarkerCall kCall = internal::MarkerCall::kDelete;
  XA_RETURN_IF_ERROR(internal::CheckMarkerTable(table, options_.rm_name));
  if (globals.empty()) return Status::Ok();
  XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
  Result<std::vector<std::string>> deletes = dialect::DeleteCommitMarkersSql(table, globals);
  if (!deletes.ok()) return deletes.status();
  const std::string operation = "DeleteCommitMarkers (DELETE from " + std::string(table) + ")";
  // One statement commits itself (autocommit); several share one local transaction.
  const bool wrapped = deletes->size() > 1;
  std::vector<std::string> statements;
  if (wrapped) statements.emplace_back(dialect::kStartTransactionSql);
  statements.insert(statements.end(), deletes->begin(), deletes->end());
  if (wrapped) statements.emplace_back(dialect::kCommitSql);
  for (const std::string& statement : statements) {
    std::optional<SqlFailure> failure =
        Catch([&] { statement_->execute(sql::SQLString(statement)); });
    if (failure) {
      Status failed = MarkerFailure(kCall, table, nullptr, operation, std::move(*failure));
      if (wrapped) RollbackLocalQuietly();
      return failed;
    }
  }
  return Status::Ok();
}

// ---- Public wrappers -----------------------------------------------------------------------

Result<std::unique_ptr<MySqlResourceManager>> MySqlResourceManager::Create(MySqlOptions options) {
  if (options.rm_name.empty()) return InvalidOption("rm_name is empty: name the resource");
  if (options.user.empty()) return InvalidOption("user is empty");
  if (options.unix_socket.empty() && options.host.empty()) {
    return InvalidOption("neither host nor unix_socket is set");
  }
  if (options.unix_socket.empty() && (options.port <= 0 || options.port > 65535)) {
    return InvalidOption("port " + std::to_string(options.port) + " is not in 1..65535");
  }
  if (options.connect_timeout.count() <= 0 || options.read_timeout.count() <= 0 ||
      options.write_timeout.count() <= 0) {
    return InvalidOption("timeouts must be at least one second");
  }
  std::unique_ptr<MySqlResourceManager> rm(
      new MySqlResourceManager(std::make_unique<Impl>(std::move(options))));
  XA_RETURN_IF_ERROR(rm->Open());
  return rm;
}

MySqlResourceManager::MySqlResourceManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MySqlResourceManager::~MySqlResourceManager() = default;

const std::string& MySqlResourceManager::name() const noexcept { return impl_->name(); }
Status MySqlResourceManager::Open() { return impl_->Open(); }
Status MySqlResourceManager::Close() { return impl_->Close(); }
const ServerInfo& MySqlResourceManager::server_info() const noexcept {
  return impl_->server_info();
}
Status MySqlResourceManager::Start(const Xid& xid, StartFlag flag) {
  return impl_->Start(xid, flag);
}
Status MySqlResourceManager::End(const Xid& xid, EndFlag flag) { return impl_->End(xid, flag); }
Status MySqlResourceManager::Prepare(const Xid& xid) { return impl_->Prepare(xid); }
Status MySqlResourceManager::Commit(const Xid& xid, CommitMode mode) {
  return impl_->Commit(xid, mode);
}
Status MySqlResourceManager::Rollback(const Xid& xid) { return impl_->Rollback(xid); }
Result<RecoverScan> MySqlResourceManager::Recover() { return impl_->Recover(); }
Result<uint64_t> MySqlResourceManager::SessionId() { return impl_->SessionId(); }
Status MySqlResourceManager::FenceSession(uint64_t session_id) {
  return impl_->FenceSession(session_id);
}
Status MySqlResourceManager::WriteCommitMarker(std::string_view table, const Xid& global_xid) {
  return impl_->WriteCommitMarker(table, global_xid);
}
Result<MarkerOutcome> MySqlResourceManager::SettleCommitMarker(std::string_view table,
                                                               const Xid& global_xid,
                                                               std::chrono::milliseconds wait) {
  return impl_->SettleCommitMarker(table, global_xid, wait);
}
Result<std::vector<MarkerRow>> MySqlResourceManager::ReadCommitMarkers(
    std::string_view table, const std::vector<Xid>& global_xids) {
  return impl_->ReadCommitMarkers(table, global_xids);
}
Result<std::vector<MarkerRow>> MySqlResourceManager::ListCommitMarkers(std::string_view table,
                                                                       uint32_t node_id,
                                                                       size_t limit) {
  return impl_->ListCommitMarkers(table, node_id, limit);
}
Status MySqlResourceManager::DeleteCommitMarkers(std::string_view table,
                                                 const std::vector<Xid>& global_xids) {
  return impl_->DeleteCommitMarkers(table, global_xids);
}
Status MySqlResourceManager::Forget(const Xid& xid) {
  return Status(Code::kNoTa, "resource manager '" + impl_->name() + "': xid " + xid.ToString() +
                                 ": MariaDB and MySQL keep no heuristically completed branches, "
                                 "there is nothing to forget");
}
sql::Connection& MySqlResourceManager::connection() { return impl_->connection(); }
bool MySqlResourceManager::connected() const noexcept { return impl_->connected(); }
uint64_t MySqlResourceManager::connection_id() const noexcept { return impl_->connection_id(); }

}  // namespace xa::mysql
