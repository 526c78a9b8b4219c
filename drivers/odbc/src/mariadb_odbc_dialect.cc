// The MariaDB dialect of the ODBC resource manager (MariaDB Connector/ODBC, libmaodbc). Statement
// text, XA RECOVER parsing, version checks, read-only detection and the error-number mapping are
// src/sql_dialect/mariadb_dialect.h, shared with the Connector/C++ driver; this file drives
// libmaodbc:
//
//   - The session stays in autocommit mode; XA START .. XA END groups the branch's statements.
//   - XA END is deferred to Prepare / one-phase Commit / Rollback (End is local), so TMJOIN,
//     TMSUSPEND and TMRESUME of this session's branch need no server support.
//   - Read-only detection: the session's row-write counter, read at Prepare, compared with the
//     previous reading of the same session (at Open or the previous Prepare).
//   - MariaDB keeps a prepared branch attached to the session that prepared it: that session
//     can start no other branch (1399) and finish no other prepared branch (1400) until it
//     commits or rolls back that one, or disconnects (the branch then detaches and survives, as
//     a prepared branch does). So a session that still holds a prepared branch is replaced by a
//     new one before it starts or finishes another branch; the usual prepare-then-commit on the
//     same object never pays for it.
//   - XA RECOVER runs as the second statement of "SELECT 1;XA RECOVER FORMAT='SQL'", on a
//     connection with the multi-statement option that each scan opens and closes itself (see
//     the header for why; RunRecoverBatch for the lock libmaodbc keeps).
//   - A session closed or lost while it holds a prepared branch is not done with it at once: the
//     server hands the branch over before it detaches it from InnoDB, and a phase-2 call from
//     another session in between answers OK without effect (the detach window,
//     src/sql_dialect/mariadb_dialect.h). So the dialect waits, on its second connection, until
//     the ended session has left the process list: at the close or reconnect that ended it, and
//     again before phase 2 of that branch here if it was still there (XAER_RMFAIL meanwhile).

#include <sqlext.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "drivers/odbc/src/odbc_dialect.h"
#include "src/base/byte_text.h"
#include "src/base/logging.h"
#include "src/sql_dialect/commit_marker.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/session_wait.h"

namespace xa::odbc::internal {
namespace {

namespace mdb = ::xa::internal::mariadb;
using ::xa::internal::MarkerCall;

// MariaDB Connector/ODBC's OPTION bit for multi-statement batches (MADB_OPT_FLAG_MULTI_STATEMENTS).
constexpr std::string_view kMultiStatementAttributes = ";OPTION=67108864";
// XA RECOVER as the second statement of a batch: libmaodbc then reads its rows.
constexpr std::string_view kRecoverBatchSql = "SELECT 1;XA RECOVER FORMAT='SQL'";

int64_t ToInt(const std::optional<std::string>& text, int64_t if_null) {
  return IntColumn(text, if_null);
}

class MariaDbDialect final : public OdbcDialect {
 public:
  MariaDbDialect(OdbcSession* session, const DialectContext* context)
      : session_(session), context_(context) {}

  Status Probe(ServerInfo* info) override {
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(mdb::kProbeSql, &rows, &diag)) return Fail(diag, nullptr, "capability probe");
    if (rows.size() != 1 || rows[0].size() < 3) {
      return Status(Code::kRmError, "resource manager '" + context_->rm_name +
                                        "': the capability probe returned " +
                                        std::to_string(rows.size()) + " rows of " +
                                        std::to_string(rows.empty() ? 0 : rows[0].size()) +
                                        " columns, expected 1 of at least 3");
    }
    Result<mdb::ServerVersion> version = mdb::ParseServerVersion(rows[0][0].value_or(""));
    if (!version.ok()) return version.status().WithContext("resource manager '" + context_->rm_name + "'");
    info->product = version->product;
    product_ = version->product;
    info->version = version->text;
    info->major = version->major;
    info->minor = version->minor;
    info->patch = version->patch;
    info->prepared_survive_disconnect = mdb::PreparedBranchSurvivesDisconnect(*version);
    connection_id_ = rows[0].size() > 3 ? ToInt(rows[0][3], 0) : 0;
    info->max_prepared_transactions = -1;
    // MariaDB 10.x has no privilege for XA RECOVER; MySQL 8 needs XA_RECOVER_ADMIN (a scan then
    // fails with its own message).
    info->may_recover = true;
    XA_RETURN_IF_ERROR(mdb::CheckServerVersion(*version, context_->rm_name));
    std::string xa_column = rows[0][1].value_or("");
    info->xa_supported = xa_column == "YES";
    if (!info->xa_supported) {
      return Status(Code::kConfig, "resource manager '" + context_->rm_name + "': server " +
                                       mdb::EscapeForMessage(version->text) +
                                       " has no InnoDB engine with XA support; enable InnoDB "
                                       "(the default engine) and keep innodb_support_xa on");
    }
    if (ToInt(rows[0][2], 0) != 1) {
      return Status(Code::kConfig, "resource manager '" + context_->rm_name +
                                       "': the session runs with autocommit = 0, so every "
                                       "statement opens a local transaction and XA START fails "
                                       "with 1400: remove autocommit=0 from the server's "
                                       "init_connect and the data source");
    }
    return ReadWriteCounter(&write_counter_);
  }

  Status Begin(const Xid& xid) override {
    XA_RETURN_IF_ERROR(ReleaseHeldBranch(nullptr));
    // The baseline of the read-only detection: the reading taken at the previous Prepare, or a
    // new one when the session has written since (a rollback, a one-phase commit, a reconnect).
    if (context_->read_only_optimization && write_counter_ < 0) {
      XA_RETURN_IF_ERROR(ReadWriteCounter(&write_counter_));
    }
    return Run(mdb::XaStartSql(xid, StartFlag::kNoFlags), &xid, "XA START");
  }

  Status Prepare(const Xid& xid) override {
    bool read_only = false;
    if (context_->read_only_optimization) {
      int64_t now = -1;
      Status probed = ReadWriteCounter(&now);
      if (!probed.ok()) {
        RollbackBestEffort(xid, /*ended=*/false);
        return probed;
      }
      read_only = mdb::CounterProvesReadOnly(write_counter_, now);
      write_counter_ = now;  // the next branch's baseline
    }
    Status ended = Run(mdb::XaEndSql(xid, EndFlag::kSuccess), &xid, "XA END");
    if (!ended.ok()) return AfterFailedEnd(xid, std::move(ended));
    if (read_only) {
      Status committed = Run(mdb::XaCommitSql(xid, CommitMode::kOnePhase), &xid,
                             "XA COMMIT ONE PHASE (read-only branch)");
      if (!committed.ok()) {
        RollbackBestEffort(xid, true);
        return committed;
      }
      return Status(Code::kReadOnly, "resource manager '" + context_->rm_name + "': branch " +
                                         xid.ToString() +
                                         " wrote nothing and has been committed without XA PREPARE");
    }
    Status prepared = Run(mdb::XaPrepareSql(xid), &xid, "XA PREPARE");
    if (prepared.ok()) held_ = xid;
    if (!prepared.ok() && prepared.code() != Code::kRmFail) RollbackBestEffort(xid, true);
    return prepared;
  }

  Status CommitOnePhase(const Xid& xid) override {
    write_counter_ = -1;
    Status ended = Run(mdb::XaEndSql(xid, EndFlag::kSuccess), &xid, "XA END");
    if (!ended.ok()) return AfterFailedEnd(xid, std::move(ended));
    Status committed = Run(mdb::XaCommitSql(xid, CommitMode::kOnePhase), &xid, "XA COMMIT ONE PHASE");
    // A refused one-phase commit must not leave the branch IDLE on the session.
    if (!committed.ok()) RollbackBestEffort(xid, true);
    return committed;
  }

  Status RollbackActive(const Xid& xid) override {
    write_counter_ = -1;
    // XA END of a rollback-only branch fails with its XA_RB* code; XA ROLLBACK still ends it.
    Status ended = Run(mdb::XaEndSql(xid, EndFlag::kSuccess), &xid, "XA END");
    if (ended.code() == Code::kRmFail && session_->lost()) return ended;
    return Run(mdb::XaRollbackSql(xid), &xid, "XA ROLLBACK");
  }

  Status CommitPrepared(const Xid& xid) override {
    XA_RETURN_IF_ERROR(ReleaseHeldBranch(&xid));
    XA_RETURN_IF_ERROR(AwaitEndedHolder(xid));
    Status committed = Run(mdb::XaCommitSql(xid, CommitMode::kTwoPhase), &xid, "XA COMMIT");
    if (held_.has_value() && *held_ == xid) held_.reset();
    return CheckFalseNota(xid, std::move(committed));
  }

  Status RollbackPrepared(const Xid& xid) override {
    XA_RETURN_IF_ERROR(ReleaseHeldBranch(&xid));
    XA_RETURN_IF_ERROR(AwaitEndedHolder(xid));
    Status rolled_back = Run(mdb::XaRollbackSql(xid), &xid, "XA ROLLBACK");
    if (held_.has_value() && *held_ == xid) held_.reset();
    return CheckFalseNota(xid, std::move(rolled_back));
  }

  Result<RecoverScan> Recover() override {
    std::vector<Row> rows;
    XA_RETURN_IF_ERROR(RunRecoverBatch(&rows));
    std::vector<mdb::RecoverRow> parsed;
    parsed.reserve(rows.size());
    for (const Row& row : rows) {
      if (row.size() != 4) continue;
      parsed.push_back({ToInt(row[0], -1), ToInt(row[1], -1), ToInt(row[2], -1),
                        row[3].value_or("")});
    }
    return mdb::ParseRecoverRows(parsed);
  }

  Status WorkError(const Diagnostics& diag, const Xid* xid) override {
    return Fail(diag, xid, "branch statement");
  }

  uint64_t session_id() const override { return static_cast<uint64_t>(connection_id_); }

  Status FenceSession(uint64_t session_id) override {
    XA_RETURN_IF_ERROR(::xa::internal::CheckFenceTarget(
        session_id, static_cast<uint64_t>(connection_id_), context_->rm_name));
    // Looked up first: a session that the KILL ends but the process list never showed belongs
    // to another user and cannot be watched leaving (no PROCESS privilege).
    Result<bool> listed_before = ListedHere(session_id);
    if (!listed_before.ok()) return listed_before.status();
    Diagnostics diag;
    if (!session_->Execute(mdb::KillConnectionSql(session_id), &diag)) {
      switch (mdb::ReadKillRefusal(diag.primary().native_error)) {
        case mdb::KillRefusal::kNoSuchSession:
          break;  // already gone, perhaps only just: the wait below still pauses after it
        case mdb::KillRefusal::kNotPermitted:
          return mdb::KillNotPermitted(context_->rm_name, session_id, context_->user,
                                       diag.primary().text);
        case mdb::KillRefusal::kOther:
          return Fail(diag, nullptr, "KILL CONNECTION " + std::to_string(session_id));
      }
    } else if (!*listed_before) {
      return mdb::KilledSessionNotVisible(context_->rm_name, session_id, context_->user);
    }
    Result<::xa::internal::SessionWaitEnd> waited = ::xa::internal::AwaitSessionGone(
        ::xa::internal::kSessionWaitRule, [&] { return ListedHere(session_id); });
    if (!waited.ok()) return waited.status();
    if (*waited == ::xa::internal::SessionWaitEnd::kStillPresent) {
      return ::xa::internal::FencedSessionStillPresent(context_->rm_name, session_id);
    }
    XA_LOG(kInfo, context_->log_component) << "fenced session " << session_id;
    return Status::Ok();
  }

  Status WriteCommitMarker(std::string_view table, const Xid& global, const Xid& branch) override {
    constexpr MarkerCall kCall = MarkerCall::kWrite;
    XA_RETURN_IF_ERROR(MarkerSupported(kCall));
    Result<std::string> insert = mdb::WriteCommitMarkerSql(table, global);
    if (!insert.ok()) return insert.status();
    Status written =
        Run(*insert, &branch, "WriteCommitMarker (INSERT into " + std::string(table) + ")");
    if (written.ok()) return written;
    return mdb::ReadMarkerError(std::move(written), last_error_number_, kCall, context_->rm_name,
                                table, context_->user, &global);
  }

  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global,
                                           std::chrono::milliseconds wait) override {
    constexpr MarkerCall kCall = MarkerCall::kSettle;
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
    Result<std::string> insert = mdb::SettleCommitMarkerSql(table, global, wait);
    if (!insert.ok()) return insert.status();
    Result<std::string> select = mdb::ReadOutcomeSql(table, global);
    if (!select.ok()) return select.status();
    // Autocommit: the 'A' row, when it is inserted, is committed by its own statement.
    Status inserted = Run(*insert, &global,
                          "SettleCommitMarker (INSERT IGNORE into " + std::string(table) + ")");
    if (!inserted.ok()) return MarkerError(std::move(inserted), kCall, table, &global);
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(*select, &rows, &diag)) {
      return MarkerError(
          Fail(diag, &global,
               "SettleCommitMarker (SELECT outcome from " + std::string(table) + ")"),
          kCall, table, &global);
    }
    if (rows.empty()) return ::xa::internal::MarkerRowVanished(context_->rm_name, table, global);
    return ::xa::internal::ParseMarkerOutcome(rows[0].empty() ? std::nullopt : rows[0][0],
                                              context_->rm_name, table,
                                              ::xa::internal::LowerHex(global.gtrid()));
  }

  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& globals) override {
    constexpr MarkerCall kCall = MarkerCall::kRead;
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
    Result<std::vector<std::string>> selects = mdb::ReadCommitMarkersSql(table, globals);
    if (!selects.ok()) return selects.status();
    std::vector<Row> rows;
    for (const std::string& select : *selects) {
      XA_RETURN_IF_ERROR(QueryMarkerRows(kCall, table, select, "ReadCommitMarkers", &rows));
    }
    return ::xa::internal::ParseMarkerRows(rows, context_->rm_name, table);
  }

  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) override {
    constexpr MarkerCall kCall = MarkerCall::kList;
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
    Result<std::string> select = mdb::ListCommitMarkersSql(table, node_id, limit);
    if (!select.ok()) return select.status();
    std::vector<Row> rows;
    XA_RETURN_IF_ERROR(QueryMarkerRows(kCall, table, *select, "ListCommitMarkers", &rows));
    return ::xa::internal::ParseMarkerRows(rows, context_->rm_name, table);
  }

  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& globals) override {
    constexpr MarkerCall kCall = MarkerCall::kDelete;
    XA_RETURN_IF_ERROR(MarkerOutsideBranch(kCall));
    Result<std::vector<std::string>> deletes = mdb::DeleteCommitMarkersSql(table, globals);
    if (!deletes.ok()) return deletes.status();
    const std::string operation = "DeleteCommitMarkers (DELETE from " + std::string(table) + ")";
    // One statement commits itself (autocommit); several share one local transaction.
    const bool wrapped = deletes->size() > 1;
    std::vector<std::string> statements;
    if (wrapped) statements.emplace_back(mdb::kStartTransactionSql);
    statements.insert(statements.end(), deletes->begin(), deletes->end());
    if (wrapped) statements.emplace_back(mdb::kCommitSql);
    for (const std::string& statement : statements) {
      Status done = Run(statement, nullptr, operation);
      if (done.ok()) continue;
      Status failed = MarkerError(std::move(done), kCall, table, nullptr);
      if (wrapped && !session_->lost()) {
        Diagnostics ignored;
        session_->Execute(mdb::kRollbackSql, &ignored);
      }
      return failed;
    }
    return Status::Ok();
  }

  void OnDisconnect() override {
    if (held_.has_value() && connection_id_ > 0) ended_holder_ = EndedHolder{connection_id_, *held_};
    connection_id_ = 0;
    write_counter_ = -1;
    held_.reset();
  }

  void AfterDisconnect() override {
    if (!ended_holder_.has_value()) return;
    Xid held = ended_holder_->xid;
    Status waited = AwaitEndedHolder(held);
    if (!waited.ok()) {
      XA_LOG_XID(kWarning, context_->log_component, held)
          << "the session that held this prepared branch is closed, but the server was not seen "
             "to let it go; phase 2 of the branch here waits for it: "
          << waited.ToString();
    }
  }

 private:
  // Replaces the session when it still holds a prepared branch other than `next` (see the file
  // comment). The held branch survives: a disconnect detaches it.
  Status ReleaseHeldBranch(const Xid* next) {
    if (!held_.has_value() || (next != nullptr && *held_ == *next)) return Status::Ok();
    XA_LOG_XID(kDebug, context_->log_component, *held_)
        << "the session holds this prepared branch; reconnecting to detach it";
    // held_ stays set through the disconnect: OnDisconnect turns it into ended_holder_, so that
    // phase 2 of that branch from the new session first waits until the server has let the old
    // session go (the detach window). Clearing it here skipped that wait, and an XA COMMIT sent
    // in the window was answered OK and did nothing.
    return context_->reopen();
  }

  // Runs the scan's batch on a connection of its own, opened and closed here on every path, on
  // the calling thread. libmaodbc 3.1.15 leaves its connection lock (a recursive mutex) taken
  // once by every multi-statement batch run through SQLExecDirect, successful or not; fixed from
  // 3.1.17 on. Whichever thread ran the batch keeps getting in; any other thread that touches
  // that connection afterwards, even to close it, waits forever. A connection that lives only
  // for the length of this call is never touched by another thread. A scan costs one connect
  // more.
  Status RunRecoverBatch(std::vector<Row>* rows) {
    OdbcSession scan;
    Diagnostics diag;
    if (!context_->connect_extra(kMultiStatementAttributes, &scan, &diag)) {
      return Fail(diag, nullptr, "connect for XA RECOVER");
    }
    if (scan.Query(kRecoverBatchSql, rows, &diag, /*result_index=*/1)) return Status::Ok();
    bool lost = diag.connection_dead || mdb::IsConnectionLost(diag.primary().native_error);
    Status failed = mdb::MapMariaDbError(diag.primary().native_error, diag.primary().sqlstate,
                                         diag.Describe(), context_->rm_name, nullptr, "XA RECOVER");
    return lost ? Status(Code::kRmFail, failed.message()) : failed;
  }

  // MariaDB answers XA COMMIT/ROLLBACK of a branch that another session prepared and still holds
  // with 1397, XAER_NOTA; mdb::ReadPhaseTwoNota decides, from a recover scan run now, what it
  // means.
  Status CheckFalseNota(const Xid& xid, Status status) {
    if (status.code() != Code::kNoTa) return status;
    Result<RecoverScan> scan = Recover();
    mdb::NotaScan seen = mdb::NotaScan::kFailed;
    if (scan.ok()) {
      bool listed = std::find(scan->prepared.begin(), scan->prepared.end(), xid) !=
                    scan->prepared.end();
      seen = listed ? mdb::NotaScan::kListed : mdb::NotaScan::kNotListed;
    }
    return mdb::ReadPhaseTwoNota(status, seen, scan.status(), context_->rm_name, xid);
  }

  // Waits, on a connection of its own, until the session that held `xid` prepared and was ended
  // here has left the server's process list (see the file comment). XAER_RMFAIL when it is still
  // there after the wait's bound or the process list cannot be read.
  Status AwaitEndedHolder(const Xid& xid) {
    if (!ended_holder_.has_value() || ended_holder_->xid != xid) return Status::Ok();
    const uint64_t holder = static_cast<uint64_t>(ended_holder_->connection_id);
    OdbcSession looker;
    Diagnostics diag;
    if (!context_->connect_extra("", &looker, &diag)) {
      return ProcessListFailure(diag, xid, "connect to read the process list");
    }
    Result<::xa::internal::SessionWaitEnd> waited = ::xa::internal::AwaitSessionGone(
        ::xa::internal::kSessionWaitRule, [&]() -> Result<bool> {
          Diagnostics look;
          std::optional<int64_t> listed = CountListed(looker, holder, &look);
          if (!listed) return ProcessListFailure(look, xid, "read the process list");
          return *listed != 0;
        });
    if (!waited.ok()) return waited.status();
    // Watched once, in full: either the server let the session go, or the window after its end
    // is long over and the id is now the holder still alive (phase 2 then gets the false 1397,
    // read as busy) or a new session that reuses the id after a server restart. The next call
    // goes ahead.
    ended_holder_.reset();
    if (*waited == ::xa::internal::SessionWaitEnd::kGone) return Status::Ok();
    return mdb::EndedSessionStillPresent(context_->rm_name, xid, holder);
  }

  // How many sessions with this id the process list shows to `on` (0 or 1); nullopt, with the
  // failure in `diag`, when the look fails. An answer that cannot be read counts as listed.
  static std::optional<int64_t> CountListed(OdbcSession& on, uint64_t session_id,
                                            Diagnostics* diag) {
    std::vector<Row> rows;
    if (!on.Query(mdb::SessionPresentSql(session_id), &rows, diag)) return std::nullopt;
    if (rows.size() != 1 || rows[0].empty()) return int64_t{1};
    return ToInt(rows[0][0], 1);
  }

  // Whether this session's process list shows `session_id`; a failure is mapped as the
  // session's own (a lost session is marked).
  Result<bool> ListedHere(uint64_t session_id) {
    Diagnostics diag;
    std::optional<int64_t> listed = CountListed(*session_, session_id, &diag);
    if (!listed) return Fail(diag, nullptr, "look for the session in the process list");
    return *listed != 0;
  }

  // XAER_RMFAIL: without the process list, phase 2 of the branch is not known to be safe yet.
  Status ProcessListFailure(const Diagnostics& diag, const Xid& xid, std::string_view operation) {
    Status failed = mdb::MapMariaDbError(diag.primary().native_error, diag.primary().sqlstate,
                                         diag.Describe(), context_->rm_name, &xid, operation);
    return Status(Code::kRmFail, failed.message() + " (retry later)");
  }

  Status ReadWriteCounter(int64_t* counter) {
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(mdb::kReadOnlyProbeSql, &rows, &diag)) {
      return Fail(diag, nullptr, "read-only probe");
    }
    *counter = rows.size() == 1 && rows[0].size() == 1 ? ToInt(rows[0][0], -1) : -1;
    return Status::Ok();
  }

  // The commit marker needs MariaDB (the settle's SET STATEMENT): XA_NOTSUPPORTED elsewhere.
  Status MarkerSupported(MarkerCall call) const {
    if (product_ == "MariaDB") return Status::Ok();
    return Status(Code::kNotSupported,
                  "resource manager '" + context_->rm_name + "': " +
                      std::string(::xa::internal::MarkerCallName(call)) +
                      " needs MariaDB (the settle bounds its lock wait with SET STATEMENT, which " +
                      product_ + " lacks): use a MariaDB or PostgreSQL database for the marker "
                      "table");
  }

  // Before a marker call outside any branch: a session that still holds a prepared branch can
  // touch no table (1399), so it is replaced first, as before a new branch.
  Status MarkerOutsideBranch(MarkerCall call) {
    XA_RETURN_IF_ERROR(MarkerSupported(call));
    return ReleaseHeldBranch(nullptr);
  }

  // The marker reading of a failed marker statement (`mapped` is Fail's).
  Status MarkerError(Status mapped, MarkerCall call, std::string_view table, const Xid* global) {
    return mdb::ReadMarkerError(std::move(mapped), last_error_number_, call, context_->rm_name,
                                table, context_->user, global);
  }

  Status QueryMarkerRows(MarkerCall call, std::string_view table, const std::string& sql,
                         std::string_view what, std::vector<Row>* rows) {
    std::vector<Row> chunk;
    Diagnostics diag;
    if (!session_->Query(sql, &chunk, &diag)) {
      return MarkerError(
          Fail(diag, nullptr, std::string(what) + " (SELECT from " + std::string(table) + ")"),
          call, table, nullptr);
    }
    rows->insert(rows->end(), std::make_move_iterator(chunk.begin()),
                 std::make_move_iterator(chunk.end()));
    return Status::Ok();
  }

  Status Run(const std::string& sql, const Xid* xid, std::string_view operation) {
    Diagnostics diag;
    if (!session_->Execute(sql, &diag)) return Fail(diag, xid, operation);
    return Status::Ok();
  }

  // XA END of the branch failed before Prepare or a one-phase commit, so the branch is neither
  // prepared nor committed. A server that had already rolled it back (a deadlock victim held
  // ROLLBACK ONLY) keeps the session bound to it until XA ROLLBACK: send it, and report the
  // branch rolled back (XA_RBROLLBACK), never in doubt. Any other failure is reported as it came
  // (XA_RB* from the server, in doubt after a lost connection), after a best-effort rollback.
  Status AfterFailedEnd(const Xid& xid, Status end_failure) {
    if (session_->lost() || !mdb::EndRefusedBecauseRolledBack(last_error_number_)) {
      RollbackBestEffort(xid, /*ended=*/true);
      return end_failure;
    }
    Status rolled_back = Run(mdb::XaRollbackSql(xid), &xid, "XA ROLLBACK");
    if (!rolled_back.ok() && rolled_back.code() != Code::kNoTa) return rolled_back;
    return Status(Code::kRbRollback,
                  "resource manager '" + context_->rm_name + "': branch " + xid.ToString() +
                      " had already been rolled back by the server (the victim of a deadlock), "
                      "and XA ROLLBACK has released the session (" + end_failure.message() + ")");
  }

  void RollbackBestEffort(const Xid& xid, bool ended) {
    if (session_->lost()) return;
    Diagnostics ignored;
    if (!ended) session_->Execute(mdb::XaEndSql(xid, EndFlag::kSuccess), &ignored);
    session_->Execute(mdb::XaRollbackSql(xid), &ignored);
  }

  Status Fail(const Diagnostics& diag, const Xid* xid, std::string_view operation) {
    const DiagRecord& primary = diag.primary();
    last_error_number_ = primary.native_error;
    // Native error 0 is a driver error without a server answer: nothing tells what the server
    // did, so the session is not trusted any more either.
    bool lost = diag.connection_dead || mdb::IsConnectionLost(primary.native_error) ||
                primary.native_error == 0 || primary.sqlstate.rfind("08", 0) == 0;
    if (lost) session_->MarkLost();
    Status status = mdb::MapMariaDbError(primary.native_error, primary.sqlstate, diag.Describe(),
                                         context_->rm_name, xid, operation);
    if (lost && status.code() != Code::kRmFail) {
      return Status(Code::kRmFail, status.message() +
                                       (mdb::LostConnectionLeavesBranchInDoubt(operation)
                                            ? " (the connection is gone: in doubt)"
                                            : " (the connection is gone)"));
    }
    return status;
  }

  OdbcSession* session_;
  const DialectContext* context_;
  int64_t write_counter_ = -1;
  std::string product_;  // "MariaDB" or "MySQL", from the probe
  int last_error_number_ = 0;  // the server's error number of the last failure (Fail)
  std::optional<Xid> held_;  // prepared by this session and not finished by it
  int64_t connection_id_ = 0;  // CONNECTION_ID() of the session, 0 when unknown
  // A session of this object that ended while it held a prepared branch, until the server is
  // seen to have let it go.
  struct EndedHolder {
    int64_t connection_id = 0;
    Xid xid;
  };
  std::optional<EndedHolder> ended_holder_;
};

}  // namespace

std::unique_ptr<OdbcDialect> NewMariaDbDialect(OdbcSession* session,
                                               const DialectContext* context) {
  return std::make_unique<MariaDbDialect>(session, context);
}

}  // namespace xa::odbc::internal
