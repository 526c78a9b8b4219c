#include "xa/odbc/odbc_resource_manager.h"

#include <sqlext.h>

#include <algorithm>
#include <cctype>

#include "drivers/odbc/src/odbc_dialect.h"
#include "drivers/odbc/src/connection_string.h"
#include "drivers/odbc/src/odbc_session.h"
#include "src/base/logging.h"
#include "src/sql_dialect/commit_marker.h"
#include "src/sql_dialect/mariadb_dialect.h"  // EscapeForMessage
#include "src/sql_dialect/session_wait.h"

namespace xa::odbc {

std::string_view DialectName(Dialect dialect) noexcept {
  switch (dialect) {
    case Dialect::kAuto:
      return "auto";
    case Dialect::kMariaDb:
      return "MariaDB";
    case Dialect::kPostgres:
      return "PostgreSQL";
  }
  return "unknown";
}

namespace {

using internal::Diagnostics;
using internal::OdbcSession;
using ::xa::internal::MarkerCall;

// The branch this session is associated with, as far as this object knows. Branches that reached
// the server's prepared state are not tracked: the server holds them.
enum class BranchState : uint8_t {
  kNone,       // no branch
  kActive,     // started, SQL may run
  kSuspended,  // End(kSuspend)
  kEnded,      // End(kSuccess): may be prepared or committed in one phase
  kFinished,   // rolled back, or committed as read-only, by this object; `outcome` says how
  kLost,       // the session died before the branch was prepared: the server rolled it back
};

std::string_view StateName(BranchState state) {
  switch (state) {
    case BranchState::kNone:
      return "none";
    case BranchState::kActive:
      return "active";
    case BranchState::kSuspended:
      return "suspended";
    case BranchState::kEnded:
      return "ended";
    case BranchState::kFinished:
      return "finished";
    case BranchState::kLost:
      return "lost with its session";
  }
  return "unknown";
}

bool ContainsIgnoringCase(std::string_view text, std::string_view needle) {
  auto it = std::search(text.begin(), text.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) ==
                                                    std::toupper(static_cast<unsigned char>(b)); });
  return it != text.end();
}

Status ValidateOptions(const OdbcOptions& options) {
  auto invalid = [](std::string message) { return Status(Code::kInval, std::move(message)); };
  if (options.rm_name.empty() || options.rm_name.size() > 128) {
    return invalid("OdbcOptions::rm_name must be 1 to 128 characters");
  }
  for (unsigned char c : options.rm_name) {
    if (c < 0x20 || c >= 0x7f) return invalid("OdbcOptions::rm_name must be printable ASCII");
  }
  if (options.dsn.empty() == options.connection_string.empty()) {
    return invalid("resource manager '" + options.rm_name +
                   "': set exactly one of OdbcOptions::dsn and OdbcOptions::connection_string");
  }
  for (char c : options.dsn) {
    if (c == ';' || c == '{' || c == '}' || c == '=' || c == '[' || c == ']') {
      return invalid("resource manager '" + options.rm_name +
                     "': OdbcOptions::dsn must be a data source name, without ;{}=[]");
    }
  }
  // Credentials belong in their own fields, which are never logged.
  for (std::string_view key : {"PWD=", "PASSWORD=", "UID=", "USER="}) {
    if (ContainsIgnoringCase(options.connection_string, key)) {
      return invalid("resource manager '" + options.rm_name +
                     "': OdbcOptions::connection_string must not carry credentials (" +
                     std::string(key) + "); put them in OdbcOptions::user and password");
    }
  }
  // A user name psqlODBC cannot take as UID goes through its pqopt attribute, which MariaDB
  // Connector/ODBC cannot parse: so the dialect must be known before connecting, and pqopt must
  // not be set by the connection string as well.
  if (!options.user.empty() && !internal::PsqlOdbcTakesAsUid(options.user)) {
    if (options.dialect == Dialect::kAuto) {
      return invalid("resource manager '" + options.rm_name +
                     "': OdbcOptions::user has a ';', a leading '{' or a blank at either end: set "
                     "OdbcOptions::dialect (psqlODBC reads such a name only through pqopt, "
                     "MariaDB Connector/ODBC only in braces)");
    }
    if (options.dialect == Dialect::kPostgres &&
        ContainsIgnoringCase(options.connection_string, "PQOPT=")) {
      return invalid("resource manager '" + options.rm_name +
                     "': OdbcOptions::user has a ';', a leading '{' or a blank at either end, so "
                     "it goes to psqlODBC through pqopt; remove pqopt from "
                     "OdbcOptions::connection_string");
    }
  }
  if (options.login_timeout.count() < 0 || options.statement_timeout.count() < 0) {
    return invalid("resource manager '" + options.rm_name + "': timeouts must not be negative");
  }
  return Status::Ok();
}

}  // namespace

class OdbcResourceManager::Impl {
 public:
  explicit Impl(OdbcOptions options) : options_(std::move(options)) {
    context_.rm_name = options_.rm_name;
    context_.user = options_.user;
    context_.log_component = "odbc:" + options_.rm_name;
    context_.read_only_optimization = options_.read_only_optimization;
    context_.error_aborts_transaction =
        options_.postgres_error_rollback == PostgresErrorRollback::kTransaction;
    context_.connect_extra = [this](std::string_view extra, OdbcSession* session,
                                    Diagnostics* diag) {
      session->set_statement_timeout(options_.statement_timeout);
      return session->Connect(ConnectionString(dialect_, extra), options_.login_timeout, diag);
    };
    context_.reopen = [this]() {
      Disconnect();
      return Open();
    };
    session_.set_statement_timeout(options_.statement_timeout);
  }

  ~Impl() { Close().IgnoreError(); }

  const std::string& name() const { return options_.rm_name; }
  const ServerInfo& server_info() const { return info_; }
  Dialect dialect() const { return dialect_; }
  SQLHDBC connection() const { return session_.dbc(); }
  bool connected() const { return session_.connected() && !session_.lost(); }

  Status Open() {
    if (connected() && dialect_impl_ != nullptr) return Status::Ok();
    Disconnect();
    // The dialect is known before connecting when the options name it or an earlier Open found
    // it; otherwise the first connection asks, and a PostgreSQL one is made again with the
    // attributes the dialect needs.
    Dialect expected = options_.dialect != Dialect::kAuto ? options_.dialect : dialect_;
    Diagnostics diag;
    if (!session_.Connect(ConnectionString(expected, DialectAttributes(expected)),
                          options_.login_timeout,
                          &diag)) {
      return ConnectFailure(diag);
    }
    Status probed = ResolveDialect();
    if (probed.ok() && ConnectionString(dialect_, DialectAttributes(dialect_)) !=
                           ConnectionString(expected, DialectAttributes(expected))) {
      session_.Disconnect();
      if (!session_.Connect(ConnectionString(dialect_, DialectAttributes(dialect_)),
                            options_.login_timeout,
                            &diag)) {
        return ConnectFailure(diag);
      }
    }
    if (probed.ok()) probed = dialect_impl_->Probe(&info_);
    if (!probed.ok()) {
      Disconnect();
      return probed;
    }
    XA_LOG(kInfo, context_.log_component)
        << "opened " << info_.product << " " << info_.version << " (dialect "
        << DialectName(dialect_) << ")";
    return Status::Ok();
  }

  Status Close() {
    Status status;
    if (IsOpenBranch(branch_state_) && connected()) {
      status = dialect_impl_->RollbackActive(branch_xid_);
    }
    branch_state_ = BranchState::kNone;
    Disconnect();
    return status;
  }

  Status Start(const Xid& xid, StartFlag flag) {
    if (flag == StartFlag::kJoin || flag == StartFlag::kResume) {
      BranchState wanted = flag == StartFlag::kJoin ? BranchState::kEnded : BranchState::kSuspended;
      if (!IsCurrent(xid) || branch_state_ != wanted) {
        return Status(Code::kNoTa, Describe(xid) + ": " +
                                       (flag == StartFlag::kJoin ? "TMJOIN" : "TMRESUME") +
                                       " needs this session's " + std::string(StateName(wanted)) +
                                       " branch with this xid; the session's branch is " +
                                       CurrentBranchText());
      }
      branch_state_ = BranchState::kActive;
      return Status::Ok();
    }
    if (flag != StartFlag::kNoFlags) {
      return Status(Code::kInval, Describe(xid) + ": unknown start flag");
    }
    if (IsOpenBranch(branch_state_)) {
      return Status(Code::kProto, Describe(xid) + ": the session already has branch " +
                                      CurrentBranchText() +
                                      "; one branch per session at a time: end and finish it first");
    }
    XA_RETURN_IF_ERROR(EnsureOpen());
    Status begun = dialect_impl_->Begin(xid);
    if (!begun.ok()) {
      AfterFailure();
      return begun;
    }
    branch_xid_ = xid;
    branch_state_ = BranchState::kActive;
    branch_outcome_ = Status::Ok();
    XA_LOG_XID(kDebug, context_.log_component, xid) << "started";
    return Status::Ok();
  }

  Status End(const Xid& xid, EndFlag flag) {
    if (!IsCurrent(xid)) {
      return Status(Code::kNoTa, Describe(xid) + ": not associated with this session (its branch is " +
                                     CurrentBranchText() + ")");
    }
    if (branch_state_ == BranchState::kFinished) return branch_outcome_;
    if (branch_state_ == BranchState::kLost) return LostOutcome(xid);
    bool active = branch_state_ == BranchState::kActive;
    bool suspended = branch_state_ == BranchState::kSuspended;
    if (!(active || (suspended && flag != EndFlag::kSuspend))) {
      return Status(Code::kProto, Describe(xid) + ": End(" + EndFlagText(flag) +
                                      ") is not allowed on a branch that is " +
                                      std::string(StateName(branch_state_)));
    }
    switch (flag) {
      case EndFlag::kSuspend:
        branch_state_ = BranchState::kSuspended;
        return Status::Ok();
      case EndFlag::kSuccess:
        branch_state_ = BranchState::kEnded;
        return Status::Ok();
      case EndFlag::kFail: {
        // Roll back now: the locks go at once, and Prepare/Commit can only report it.
        Status rolled_back = dialect_impl_->RollbackActive(xid);
        AfterFailure();
        Finish(Status(Code::kRbRollback, Describe(xid) +
                                             " was ended with TMFAIL and has been rolled back"));
        if (!rolled_back.ok()) {
          XA_LOG_XID(kWarning, context_.log_component, xid)
              << "rollback after TMFAIL failed (the server ends the branch with the session): "
              << rolled_back.ToString();
        }
        return Status::Ok();
      }
    }
    return Status(Code::kInval, Describe(xid) + ": unknown end flag");
  }

  Status Prepare(const Xid& xid) {
    if (!IsCurrent(xid)) {
      return Status(Code::kNoTa, Describe(xid) + ": no branch with this xid is associated with "
                                                 "this session (its branch is " +
                                     CurrentBranchText() + ")");
    }
    switch (branch_state_) {
      case BranchState::kFinished:
        return branch_outcome_;
      case BranchState::kLost:
        return LostOutcome(xid);
      case BranchState::kEnded:
        break;
      default:
        return Status(Code::kProto, Describe(xid) + ": Prepare needs an ended branch; it is " +
                                        std::string(StateName(branch_state_)));
    }
    Status vote = dialect_impl_->Prepare(xid);
    AfterPhaseOne(vote);
    XA_LOG_XID(kDebug, context_.log_component, xid) << "prepare: " << CodeName(vote.code());
    return vote;
  }

  Status Commit(const Xid& xid, CommitMode mode) {
    if (IsCurrent(xid)) {
      switch (branch_state_) {
        case BranchState::kFinished:
          return branch_outcome_.code() == Code::kReadOnly
                     ? Status(Code::kNoTa, Describe(xid) +
                                               " was read-only and already committed at Prepare")
                     : branch_outcome_;
        case BranchState::kLost:
          return LostOutcome(xid);
        case BranchState::kEnded:
          if (mode == CommitMode::kOnePhase) {
            Status committed = dialect_impl_->CommitOnePhase(xid);
            AfterPhaseOne(committed.code() == Code::kReadOnly ? Status::Ok() : committed);
            return committed;
          }
          [[fallthrough]];
        case BranchState::kActive:
        case BranchState::kSuspended:
          return Status(Code::kProto,
                        Describe(xid) + ": " +
                            (mode == CommitMode::kOnePhase ? "a one-phase commit needs an ended branch"
                                                           : "prepare the branch before a two-phase commit") +
                            "; it is " + std::string(StateName(branch_state_)));
        case BranchState::kNone:
          break;
      }
    }
    if (mode == CommitMode::kOnePhase) {
      return Status(Code::kNoTa, Describe(xid) + ": a one-phase commit needs this session's "
                                                 "ended branch; the session's branch is " +
                                     CurrentBranchText());
    }
    XA_RETURN_IF_ERROR(RequireIdleSession(xid, "commit a prepared branch"));
    XA_RETURN_IF_ERROR(EnsureOpen());
    Status committed = dialect_impl_->CommitPrepared(xid);
    AfterFailure();
    XA_LOG_XID(kDebug, context_.log_component, xid) << "commit prepared: " << CodeName(committed.code());
    return committed;
  }

  Status Rollback(const Xid& xid) {
    if (IsCurrent(xid)) {
      switch (branch_state_) {
        case BranchState::kFinished:
          return branch_outcome_.code() == Code::kReadOnly
                     ? Status(Code::kNoTa, Describe(xid) +
                                               " was read-only and already committed at Prepare")
                     : Status::Ok();
        case BranchState::kLost:
          branch_state_ = BranchState::kNone;
          return Status::Ok();  // the server rolled it back when the session died
        case BranchState::kActive:
        case BranchState::kSuspended:
        case BranchState::kEnded: {
          Status rolled_back = dialect_impl_->RollbackActive(xid);
          AfterFailure();
          if (rolled_back.ok() || session_.lost()) {
            // A lost session takes its unprepared branch with it: rolled back either way.
            branch_state_ = BranchState::kNone;
            return Status::Ok();
          }
          return rolled_back;
        }
        case BranchState::kNone:
          break;
      }
    }
    XA_RETURN_IF_ERROR(RequireIdleSession(xid, "roll back a prepared branch"));
    XA_RETURN_IF_ERROR(EnsureOpen());
    Status rolled_back = dialect_impl_->RollbackPrepared(xid);
    AfterFailure();
    XA_LOG_XID(kDebug, context_.log_component, xid)
        << "rollback prepared: " << CodeName(rolled_back.code());
    return rolled_back;
  }

  Result<RecoverScan> Recover() {
    if (IsOpenBranch(branch_state_)) {
      return Status(Code::kProto, "resource manager '" + options_.rm_name +
                                      "': recover scan while branch " + CurrentBranchText() +
                                      " is open on the session; finish it first");
    }
    XA_RETURN_IF_ERROR(EnsureOpen());
    Result<RecoverScan> scan = dialect_impl_->Recover();
    AfterFailure();
    return scan;
  }

  Result<uint64_t> SessionId() const {
    uint64_t id = connected() && dialect_impl_ != nullptr ? dialect_impl_->session_id() : 0;
    if (id == 0) {
      return Status(Code::kRmFail, "resource manager '" + options_.rm_name +
                                       "': no session, so no session id (the session that did "
                                       "the work is gone; a new one would have another id)");
    }
    return id;
  }

  Status FenceSession(uint64_t session_id) {
    XA_RETURN_IF_ERROR(::xa::internal::CheckFenceTarget(session_id, 0, options_.rm_name));
    if (IsOpenBranch(branch_state_)) {
      return Status(Code::kProto, "resource manager '" + options_.rm_name + "': fence of session " +
                                      std::to_string(session_id) + " while branch " +
                                      CurrentBranchText() +
                                      " is open on this session; finish it first or use another "
                                      "resource manager object");
    }
    XA_RETURN_IF_ERROR(EnsureOpen());
    Status fenced = dialect_impl_->FenceSession(session_id);
    AfterFailure();
    return fenced;
  }

  Status WriteCommitMarker(std::string_view table, const Xid& global) {
    constexpr MarkerCall kCall = MarkerCall::kWrite;
    XA_RETURN_IF_ERROR(::xa::internal::CheckMarkerTable(table, options_.rm_name));
    switch (branch_state_) {
      case BranchState::kActive:
        break;
      case BranchState::kFinished:
        // Rolled back already (TMFAIL, or an XA_RB* statement error): report that.
        if (branch_outcome_.IsRollback()) return branch_outcome_;
        [[fallthrough]];
      default:
        if (branch_state_ == BranchState::kLost) return LostOutcome(branch_xid_);
        return ::xa::internal::MarkerCallRefused(
            options_.rm_name, kCall,
            "the session's branch is " + CurrentBranchText() +
                "; the marker is written in the marker branch's work, between Start() and "
                "End()");
    }
    Status written = dialect_impl_->WriteCommitMarker(table, global, branch_xid_);
    if (written.ok()) return written;
    // A lost session takes the branch with it. Otherwise the branch is rolled back now, whatever
    // failed (XAER_DUPID, XA_RB*, a missing table): a marker branch must never commit without
    // its marker, or its transaction would commit here while recovery settles it as aborted.
    // Prepare and Commit then report the rollback, Rollback() and End() accept it.
    if (NoteLostSession()) return written;
    Status rolled_back = dialect_impl_->RollbackActive(branch_xid_);
    if (!rolled_back.ok()) {
      XA_LOG_XID(kWarning, context_.log_component, branch_xid_)
          << "rollback after a failed commit marker failed (the server ends the branch with the "
             "session): "
          << rolled_back.ToString();
    }
    NoteLostSession();
    Finish(written.IsRollback()
               ? written
               : Status(Code::kRbRollback, Describe(branch_xid_) +
                                               " has been rolled back: its commit marker could "
                                               "not be written (" +
                                               written.message() + ")"));
    return written;
  }

  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global,
                                           std::chrono::milliseconds wait) {
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(MarkerCall::kSettle, table));
    Result<MarkerOutcome> settled = dialect_impl_->SettleCommitMarker(table, global, wait);
    AfterFailure();
    return settled;
  }

  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& globals) {
    XA_RETURN_IF_ERROR(::xa::internal::CheckMarkerTable(table, options_.rm_name));
    if (globals.empty()) return std::vector<MarkerRow>();
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(MarkerCall::kRead, table));
    Result<std::vector<MarkerRow>> rows = dialect_impl_->ReadCommitMarkers(table, globals);
    AfterFailure();
    return rows;
  }

  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) {
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(MarkerCall::kList, table));
    Result<std::vector<MarkerRow>> rows = dialect_impl_->ListCommitMarkers(table, node_id, limit);
    AfterFailure();
    return rows;
  }

  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& globals) {
    XA_RETURN_IF_ERROR(::xa::internal::CheckMarkerTable(table, options_.rm_name));
    if (globals.empty()) return Status::Ok();
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(MarkerCall::kDelete, table));
    Status deleted = dialect_impl_->DeleteCommitMarkers(table, globals);
    AfterFailure();
    return deleted;
  }

  Status Forget(const Xid& xid) {
    return Status(Code::kNoTa, Describe(xid) + ": " + std::string(DialectName(dialect_)) +
                                   " keeps no heuristically completed branches to forget");
  }

  Status StatusFromDiagnostics(SQLSMALLINT handle_type, SQLHANDLE handle) {
    Diagnostics diag = session_.Collect(handle_type, handle);
    if (diag.connection_dead) session_.MarkLost();
    if (dialect_impl_ == nullptr) {
      return Status(Code::kRmFail, "resource manager '" + options_.rm_name +
                                       "' is not open: " + diag.Describe());
    }
    const Xid* xid = IsOpenBranch(branch_state_) ? &branch_xid_ : nullptr;
    Status status = dialect_impl_->WorkError(diag, xid);
    if (xid == nullptr) {
      NoteLostSession();
      return status;
    }
    if (session_.lost()) {
      NoteLostSession();
      return status;
    }
    if (status.IsRollback()) {
      // The server may have rolled back only the statement (psqlODBC's statement-level rollback,
      // MariaDB's lock wait timeout): roll the whole branch back so that XA_RB* holds.
      Status rolled_back = dialect_impl_->RollbackActive(branch_xid_);
      if (!rolled_back.ok()) {
        XA_LOG_XID(kWarning, context_.log_component, branch_xid_)
            << "rollback after " << CodeName(status.code()) << " failed: " << rolled_back.ToString();
      }
      NoteLostSession();
      Finish(status);
    }
    return status;
  }

  Result<int64_t> Execute(std::string_view sql) {
    if (!session_.connected()) {
      return Status(Code::kRmFail, "resource manager '" + options_.rm_name + "' is not open");
    }
    SQLHSTMT stmt = SQL_NULL_HSTMT;
    if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, session_.dbc(), &stmt))) {
      return StatusFromDiagnostics(SQL_HANDLE_DBC, session_.dbc());
    }
    SQLRETURN rc = SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(const_cast<char*>(sql.data())),
                                 static_cast<SQLINTEGER>(sql.size()));
    Result<int64_t> result = int64_t{0};
    if (rc == SQL_NO_DATA) {
      result = int64_t{0};
    } else if (!SQL_SUCCEEDED(rc)) {
      result = StatusFromDiagnostics(SQL_HANDLE_STMT, stmt);
    } else {
      SQLLEN count = 0;
      result = SQL_SUCCEEDED(SQLRowCount(stmt, &count)) ? int64_t{count} : int64_t{0};
    }
    SQLFreeHandle(SQL_HANDLE_STMT, stmt);
    return result;
  }

 private:
  static bool IsOpenBranch(BranchState state) {
    return state == BranchState::kActive || state == BranchState::kSuspended ||
           state == BranchState::kEnded;
  }

  static std::string EndFlagText(EndFlag flag) {
    switch (flag) {
      case EndFlag::kSuccess:
        return "TMSUCCESS";
      case EndFlag::kFail:
        return "TMFAIL";
      case EndFlag::kSuspend:
        return "TMSUSPEND";
    }
    return "?";
  }

  bool IsCurrent(const Xid& xid) const {
    return branch_state_ != BranchState::kNone && branch_xid_ == xid;
  }

  std::string Describe(const Xid& xid) const {
    return "resource manager '" + options_.rm_name + "': branch " + xid.ToString();
  }

  std::string CurrentBranchText() const {
    if (branch_state_ == BranchState::kNone) return "none";
    return branch_xid_.ToString() + " (" + std::string(StateName(branch_state_)) + ")";
  }

  Status LostOutcome(const Xid& xid) const {
    return Status(Code::kRbCommFail,
                  Describe(xid) + " was not prepared when its connection was lost, so the server "
                                  "rolled it back");
  }

  void Finish(Status outcome) {
    branch_state_ = BranchState::kFinished;
    branch_outcome_ = std::move(outcome);
  }

  // After Prepare or a one-phase Commit: OK means the server has the branch (prepared or
  // committed), RMFAIL means in doubt; either way this object stops tracking it. Anything else
  // means rolled back (or committed read-only) by the dialect.
  void AfterPhaseOne(const Status& result) {
    bool lost = session_.lost();
    AfterFailure();
    if (result.ok() || result.code() == Code::kRmFail || lost) {
      branch_state_ = BranchState::kNone;
      return;
    }
    Finish(result);
  }

  // A lost session: forget it so the next call reconnects; an unprepared branch died with it.
  void AfterFailure() {
    if (!NoteLostSession()) return;
    Disconnect();
  }

  // AfterFailure without the disconnect, for a failure of the application's own statement:
  // the application still holds statement handles of the connection (it frees the one it
  // passed to StatusFromDiagnostics afterwards, as Execute does), which a disconnect would free
  // under it. The next call of ours finds the session lost and replaces it (EnsureOpen, Close).
  // True when the session is lost.
  bool NoteLostSession() {
    if (!session_.lost()) return false;
    if (IsOpenBranch(branch_state_)) branch_state_ = BranchState::kLost;
    XA_LOG(kWarning, context_.log_component) << "connection lost; the next call reconnects";
    return true;
  }

  Status RequireIdleSession(const Xid& xid, std::string_view what) const {
    if (!IsOpenBranch(branch_state_)) return Status::Ok();
    return Status(Code::kProto, Describe(xid) + ": cannot " + std::string(what) +
                                    " while branch " + CurrentBranchText() +
                                    " is open on this session; finish it first or use another "
                                    "resource manager object");
  }

  Status EnsureOpen() {
    if (connected() && dialect_impl_ != nullptr) return Status::Ok();
    return Open();
  }

  // Before a marker call that runs outside any branch: a valid table name, no branch open on
  // the session (XAER_PROTO), and a session.
  Status MarkerOutsideBranch(MarkerCall call, std::string_view table) {
    XA_RETURN_IF_ERROR(::xa::internal::CheckMarkerTable(table, options_.rm_name));
    if (IsOpenBranch(branch_state_)) {
      return ::xa::internal::MarkerCallRefused(
          options_.rm_name, call,
          "branch " + CurrentBranchText() +
              " is open on this session; this call runs outside any branch: finish the branch "
              "first, or use another resource manager object");
    }
    return EnsureOpen();
  }

  void Disconnect() {
    if (dialect_impl_ != nullptr) dialect_impl_->OnDisconnect();
    session_.Disconnect();
    if (dialect_impl_ != nullptr) dialect_impl_->AfterDisconnect();
  }

  std::string DialectAttributes(Dialect dialect) const {
    return internal::DialectConnectionAttributes(options_, dialect);
  }
  std::string ConnectionString(Dialect dialect, std::string_view extra) const {
    return internal::OdbcConnectionString(options_, dialect, extra);
  }

  Status ConnectFailure(const Diagnostics& diag) {
    const internal::DiagRecord& primary = diag.primary();
    // 28xxx: authentication; 3D000 / 1049: no such database; 1045: access denied; IM002: no such
    // data source; IM003: driver cannot be loaded. Anything else may pass: retry later.
    bool config = primary.sqlstate.rfind("28", 0) == 0 || primary.sqlstate == "3D000" ||
                  primary.sqlstate.rfind("IM", 0) == 0 || primary.native_error == 1045 ||
                  primary.native_error == 1044 || primary.native_error == 1049 ||
                  primary.native_error == 1698 ||
                  ContainsIgnoringCase(primary.text, "authentication failed") ||
                  ContainsIgnoringCase(primary.text, "does not exist");
    std::string source = options_.dsn.empty() ? "the connection string" : "data source '" + ::xa::internal::mariadb::EscapeForMessage(options_.dsn) + "'";
    return Status(config ? Code::kConfig : Code::kRmFail,
                  "resource manager '" + options_.rm_name + "': cannot connect to " + source +
                      " as '" + ::xa::internal::mariadb::EscapeForMessage(options_.user) + "': " + EscapeDiag(diag) +
                      (config ? ". Check the data source (ODBCINI/ODBCSYSINI), the user, its password "
                                "and the database"
                              : ". The server may be down or unreachable: retry later"));
  }

  static std::string EscapeDiag(const Diagnostics& diag) {
    return ::xa::internal::mariadb::EscapeForMessage(diag.Describe());
  }

  Status ResolveDialect() {
    std::string dbms;
    Diagnostics diag;
    if (!session_.GetInfoText(SQL_DBMS_NAME, &dbms, &diag)) {
      return Status(Code::kRmFail, "resource manager '" + options_.rm_name +
                                       "': SQLGetInfo(SQL_DBMS_NAME) failed: " + EscapeDiag(diag));
    }
    Dialect detected = Dialect::kAuto;
    if (ContainsIgnoringCase(dbms, "PostgreSQL")) detected = Dialect::kPostgres;
    if (ContainsIgnoringCase(dbms, "MariaDB") || ContainsIgnoringCase(dbms, "MySQL")) {
      detected = Dialect::kMariaDb;
    }
    if (detected == Dialect::kAuto) {
      return Status(Code::kConfig, "resource manager '" + options_.rm_name + "': the server is '" +
                                       ::xa::internal::mariadb::EscapeForMessage(dbms.substr(0, 64)) +
                                       "'; the ODBC driver supports MariaDB/MySQL and PostgreSQL");
    }
    if (options_.dialect != Dialect::kAuto && options_.dialect != detected) {
      return Status(Code::kConfig, "resource manager '" + options_.rm_name + "': OdbcOptions::dialect is " +
                                       std::string(DialectName(options_.dialect)) +
                                       " but the server is " + std::string(DialectName(detected)) +
                                       "; fix the option or the data source");
    }
    if (dialect_impl_ == nullptr || detected != dialect_) {
      dialect_ = detected;
      dialect_impl_ = detected == Dialect::kPostgres ? internal::NewPostgresDialect(&session_, &context_)
                                                     : internal::NewMariaDbDialect(&session_, &context_);
    }
    return Status::Ok();
  }

  OdbcOptions options_;
  internal::DialectContext context_;
  OdbcSession session_;
  std::unique_ptr<internal::OdbcDialect> dialect_impl_;
  Dialect dialect_ = Dialect::kAuto;
  ServerInfo info_;

  Xid branch_xid_;
  BranchState branch_state_ = BranchState::kNone;
  Status branch_outcome_;
};

Result<std::unique_ptr<OdbcResourceManager>> OdbcResourceManager::Create(OdbcOptions options) {
  XA_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<OdbcResourceManager> rm(
      new OdbcResourceManager(std::make_unique<Impl>(std::move(options))));
  XA_RETURN_IF_ERROR(rm->Open());
  return rm;
}

OdbcResourceManager::OdbcResourceManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OdbcResourceManager::~OdbcResourceManager() = default;

const std::string& OdbcResourceManager::name() const noexcept { return impl_->name(); }
Status OdbcResourceManager::Open() { return impl_->Open(); }
Status OdbcResourceManager::Close() { return impl_->Close(); }
const ServerInfo& OdbcResourceManager::server_info() const noexcept { return impl_->server_info(); }
Status OdbcResourceManager::Start(const Xid& xid, StartFlag flag) { return impl_->Start(xid, flag); }
Status OdbcResourceManager::End(const Xid& xid, EndFlag flag) { return impl_->End(xid, flag); }
Status OdbcResourceManager::Prepare(const Xid& xid) { return impl_->Prepare(xid); }
Status OdbcResourceManager::Commit(const Xid& xid, CommitMode mode) {
  return impl_->Commit(xid, mode);
}
Status OdbcResourceManager::Rollback(const Xid& xid) { return impl_->Rollback(xid); }
Result<RecoverScan> OdbcResourceManager::Recover() { return impl_->Recover(); }
Status OdbcResourceManager::Forget(const Xid& xid) { return impl_->Forget(xid); }
Result<uint64_t> OdbcResourceManager::SessionId() { return impl_->SessionId(); }
Status OdbcResourceManager::FenceSession(uint64_t session_id) {
  return impl_->FenceSession(session_id);
}
Status OdbcResourceManager::WriteCommitMarker(std::string_view table, const Xid& global_xid) {
  return impl_->WriteCommitMarker(table, global_xid);
}
Result<MarkerOutcome> OdbcResourceManager::SettleCommitMarker(std::string_view table,
                                                              const Xid& global_xid,
                                                              std::chrono::milliseconds wait) {
  return impl_->SettleCommitMarker(table, global_xid, wait);
}
Result<std::vector<MarkerRow>> OdbcResourceManager::ReadCommitMarkers(
    std::string_view table, const std::vector<Xid>& global_xids) {
  return impl_->ReadCommitMarkers(table, global_xids);
}
Result<std::vector<MarkerRow>> OdbcResourceManager::ListCommitMarkers(std::string_view table,
                                                                      uint32_t node_id,
                                                                      size_t limit) {
  return impl_->ListCommitMarkers(table, node_id, limit);
}
Status OdbcResourceManager::DeleteCommitMarkers(std::string_view table,
                                                const std::vector<Xid>& global_xids) {
  return impl_->DeleteCommitMarkers(table, global_xids);
}
Dialect OdbcResourceManager::dialect() const noexcept { return impl_->dialect(); }
SQLHDBC OdbcResourceManager::connection() const noexcept { return impl_->connection(); }
bool OdbcResourceManager::connected() const noexcept { return impl_->connected(); }
Status OdbcResourceManager::StatusFromDiagnostics(SQLSMALLINT handle_type, SQLHANDLE handle) {
  return impl_->StatusFromDiagnostics(handle_type, handle);
}
Result<int64_t> OdbcResourceManager::Execute(std::string_view sql) { return impl_->Execute(sql); }

}  // namespace xa::odbc
