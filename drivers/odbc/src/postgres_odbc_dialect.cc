// The PostgreSQL dialect of the ODBC resource manager (psqlODBC). Statement text, probe checks and
// the SQLSTATE mapping come from src/sql_dialect/postgres_dialect.h; this file drives psqlODBC:
//
//   - A branch runs in manual-commit mode (SQL_AUTOCOMMIT_OFF). psqlODBC then opens the
//     transaction block itself, with the first statement: an explicit BEGIN would only earn a
//     25001 warning. Switching the mode costs no round trip.
//   - PREPARE TRANSACTION runs in that transaction block; afterwards the session is idle and goes
//     back to autocommit, where COMMIT PREPARED / ROLLBACK PREPARED must run (they refuse a
//     transaction block with 25001).
//   - psqlODBC's "level of rollback on errors" is set by the resource manager (Protocol=7.4-2,
//     statement, or 7.4-0, transaction; see PostgresErrorRollback). With level 0 an error aborts
//     the transaction block, and PREPARE TRANSACTION in an aborted block reports success after
//     rolling back: the probe before PREPARE fails there (25P02) and the branch votes
//     XA_RBROLLBACK instead. With level 2 the block cannot be aborted, and without the read-only
//     optimisation PREPARE TRANSACTION is sent alone.

#include <sqlext.h>

#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "drivers/odbc/src/odbc_dialect.h"
#include "src/base/byte_text.h"
#include "src/base/logging.h"
#include "src/sql_dialect/commit_marker.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "src/sql_dialect/session_wait.h"

namespace xa::odbc::internal {
namespace {

namespace pg = ::xa::internal::postgres;
using ::xa::internal::MarkerCall;

int64_t ToInt(const std::optional<std::string>& text) { return IntColumn(text, 0); }

class PostgresDialect final : public OdbcDialect {
 public:
  PostgresDialect(OdbcSession* session, const DialectContext* context)
      : session_(session), context_(context) {}

  Status Probe(ServerInfo* info) override {
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(pg::kProbeSql, &rows, &diag)) return Fail(pg::Step::kProbe, diag, nullptr);
    if (rows.size() != 1 || rows[0].size() != pg::kProbeColumns) {
      return Status(Code::kRmError, "PostgreSQL resource manager '" + context_->rm_name +
                                        "': the capability probe returned an unexpected result");
    }
    const Row& row = rows[0];
    pg::ProbeRow probe;
    probe.version_text = row[0].value_or("");
    probe.version_num = ToInt(row[1]);
    probe.max_prepared_transactions = ToInt(row[2]);
    probe.max_connections = ToInt(row[3]);
    probe.superuser = ToInt(row[4]) == 1;
    probe.may_read_prepared = ToInt(row[5]) == 1;
    probe.user = row[6].value_or("");
    probe.database = row[7].value_or("");
    probe.backend_pid = ToInt(row[8]);
    XA_RETURN_IF_ERROR(pg::CheckProbe(probe, context_->rm_name, info));
    std::string warning = pg::ProbeWarning(probe);
    if (!warning.empty()) {
      XA_LOG(kWarning, context_->log_component) << warning;
    }
    version_num_ = probe.version_num;
    superuser_ = probe.superuser;
    backend_pid_ = probe.backend_pid > 0 ? static_cast<uint64_t>(probe.backend_pid) : 0;
    return Status::Ok();
  }

  Status Begin(const Xid& xid) override {
    Diagnostics diag;
    if (!session_->SetAutocommit(false, &diag)) return Fail(pg::Step::kBegin, diag, &xid);
    return Status::Ok();
  }

  Status Prepare(const Xid& xid) override {
    Result<std::string> prepare_sql = pg::PrepareTransactionSql(xid);
    if (!prepare_sql.ok()) {
      Abort();
      return prepare_sql.status();
    }
    Diagnostics diag;
    if (context_->read_only_optimization) {
      // The probe's answer decides between COMMIT and PREPARE TRANSACTION: two round trips.
      Result<bool> read_only = ProbeReadOnly(xid);
      if (!read_only.ok()) return read_only.status();
      if (*read_only) {
        XA_RETURN_IF_ERROR(CommitOpenTransaction(xid));
        return Status(Code::kReadOnly, "PostgreSQL resource manager '" + context_->rm_name +
                                           "': branch " + xid.ToString() +
                                           " wrote nothing and has been committed without "
                                           "PREPARE TRANSACTION");
      }
      if (!session_->Execute(*prepare_sql, &diag)) {
        Status failed = Fail(pg::Step::kPrepare, diag, &xid);
        Abort();
        return failed;
      }
    } else {
      XA_RETURN_IF_ERROR(CheckManualCommit(xid));
      bool prepared = false;
      if (context_->error_aborts_transaction) {
        // One round trip: the probe still runs first in the same batch, so that an aborted
        // transaction block fails it (25P02) and PREPARE TRANSACTION is never reached; the
        // server skips the rest of a batch after an error. Any failure is mapped as PREPARE's:
        // a lost connection leaves the branch in doubt either way.
        std::vector<Row> probe_rows;
        std::string batch = std::string(pg::ReadOnlyProbeSql(version_num_)) + ";" + *prepare_sql;
        prepared = session_->QueryBatch(batch, &probe_rows, &diag);
      } else {
        // Statement-level rollback: the block cannot be aborted (see DialectContext), so
        // PREPARE TRANSACTION goes alone, without the probe's statement and result set.
        prepared = session_->Execute(*prepare_sql, &diag);
      }
      if (!prepared) {
        Status failed = Fail(pg::Step::kPrepare, diag, &xid);
        Abort();
        return failed;
      }
    }
    for (const DiagRecord& warning : diag.records) {
      // 25P01 "there is no transaction in progress": PREPARE TRANSACTION ran outside a block
      // (someone switched the connection to autocommit) and prepared nothing.
      if (warning.sqlstate == "25P01") {
        Abort();
        return Status(Code::kRbRollback,
                      "PostgreSQL resource manager '" + context_->rm_name + "': PREPARE TRANSACTION of xid " +
                          xid.ToString() +
                          " found no transaction (SQLSTATE 25P01): the branch's work was already "
                          "committed or rolled back outside the resource manager (autocommit "
                          "switched on, SQLEndTran or COMMIT on connection()?); nothing was prepared");
      }
    }
    // The session is idle now: back to autocommit for phase 2 (no round trip). The branch is
    // prepared whatever happens here; a session that cannot switch is replaced by the next call.
    if (!session_->SetAutocommit(true, &diag)) session_->MarkLost();
    return Status::Ok();
  }

  Status CommitOnePhase(const Xid& xid) override {
    Result<bool> read_only = ProbeReadOnly(xid);
    if (!read_only.ok()) return read_only.status();
    return CommitOpenTransaction(xid);
  }

  Status RollbackActive(const Xid& xid) override {
    Diagnostics diag;
    bool rolled_back = session_->EndTransaction(false, &diag);
    Diagnostics mode_diag;
    bool autocommit = session_->SetAutocommit(true, &mode_diag);
    if (!rolled_back) return Fail(pg::Step::kRollback, diag, &xid);
    if (!autocommit) return Fail(pg::Step::kRollback, mode_diag, &xid);
    return Status::Ok();
  }

  Status CommitPrepared(const Xid& xid) override {
    return RunPhaseTwo(pg::CommitPreparedSql(xid), pg::Step::kCommitPrepared, xid);
  }

  Status RollbackPrepared(const Xid& xid) override {
    return RunPhaseTwo(pg::RollbackPreparedSql(xid), pg::Step::kRollbackPrepared, xid);
  }

  Result<RecoverScan> Recover() override {
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(pg::kRecoverSql, &rows, &diag)) return Fail(pg::Step::kRecover, diag, nullptr);
    std::vector<pg::RecoverRow> parsed;
    parsed.reserve(rows.size());
    for (const Row& row : rows) {
      if (row.size() != 3) continue;
      parsed.push_back({row[0].value_or(""), row[1].value_or(""), ToInt(row[2]) == 1});
    }
    std::vector<std::string> untouchable;
    RecoverScan scan = pg::ParseRecoverRows(parsed, superuser_, &untouchable);
    for (const std::string& line : untouchable) {
      XA_LOG(kWarning, context_->log_component) << line;
    }
    return scan;
  }

  Status WorkError(const Diagnostics& diag, const Xid* xid) override {
    return Fail(pg::Step::kWork, diag, xid);
  }

  uint64_t session_id() const override { return backend_pid_; }

  Status FenceSession(uint64_t session_id) override {
    XA_RETURN_IF_ERROR(
        ::xa::internal::CheckFenceTarget(session_id, backend_pid_, context_->rm_name));
    std::optional<std::string> terminate = pg::TerminateBackendSql(session_id);
    if (!terminate) return Status::Ok();  // no backend can have this id
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(*terminate + "::int", &rows, &diag)) {
      Status failed = Fail(pg::Step::kFence, diag, nullptr);  // marks a lost session
      if (session_->lost()) return failed;
      return pg::TerminateFailure(diag.primary().sqlstate, diag.Describe(), context_->rm_name,
                                  session_id, context_->user);
    }
    // false: no such backend (already gone).
    if (rows.size() != 1 || rows[0].size() != 1 || ToInt(rows[0][0]) != 1) return Status::Ok();
    Result<::xa::internal::SessionWaitEnd> waited = ::xa::internal::AwaitSessionGone(
        ::xa::internal::kSessionWaitRule, [&]() -> Result<bool> {
          std::vector<Row> listed;
          Diagnostics look;
          if (!session_->Query(pg::BackendPresentSql(session_id), &listed, &look)) {
            return Fail(pg::Step::kFence, look, nullptr);
          }
          return listed.size() != 1 || listed[0].size() != 1 || ToInt(listed[0][0]) != 0;
        });
    if (!waited.ok()) return waited.status();
    if (*waited == ::xa::internal::SessionWaitEnd::kStillPresent) {
      return ::xa::internal::FencedSessionStillPresent(context_->rm_name, session_id);
    }
    XA_LOG(kInfo, context_->log_component) << "fenced session " << session_id;
    return Status::Ok();
  }

  Status WriteCommitMarker(std::string_view table, const Xid& global, const Xid& branch) override {
    Result<std::string> insert = pg::WriteCommitMarkerSql(table, global);
    if (!insert.ok()) return insert.status();
    // In the branch's transaction block (manual-commit mode since Begin). A failure leaves the
    // block as a failed statement of the application does: aborted, or with psqlODBC's
    // statement-level rollback only the INSERT undone; Rollback() or End(TMFAIL) ends it.
    Diagnostics diag;
    if (session_->Execute(*insert, &diag)) return Status::Ok();
    return pg::ReadMarkerError(Fail(pg::Step::kWriteMarker, diag, &branch), diag.primary().sqlstate,
                               MarkerCall::kWrite, context_->rm_name, table, context_->user,
                               &global);
  }

  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global,
                                           std::chrono::milliseconds wait) override {
    constexpr MarkerCall kCall = MarkerCall::kSettle;
    Result<std::string> insert = pg::SettleCommitMarkerSql(table, global);
    if (!insert.ok()) return insert.status();
    Result<std::string> select = pg::ReadOutcomeSql(table, global);
    if (!select.ok()) return select.status();
    // One transaction: READ COMMITTED (the SELECT must see the row the insert waited for), the
    // lock timeout for this transaction only, the insert, the read, COMMIT.
    Diagnostics diag;
    if (!session_->SetAutocommit(false, &diag)) return MarkerFailure(kCall, table, &global, diag);
    auto run = [&](std::string_view sql) {
      diag = Diagnostics();
      return session_->Execute(sql, &diag);
    };
    std::vector<Row> rows;
    bool done = run(pg::kReadCommittedSql) && run(pg::SettleLockTimeoutSql(wait)) && run(*insert);
    if (done) {
      diag = Diagnostics();
      done = session_->Query(*select, &rows, &diag);
    }
    if (done) {
      diag = Diagnostics();
      done = session_->EndTransaction(true, &diag);
    }
    if (!done) {
      Status failed = MarkerFailure(kCall, table, &global, diag);
      Abort();
      return failed;
    }
    if (!session_->SetAutocommit(true, &diag)) session_->MarkLost();  // the next call reconnects
    if (rows.empty()) return ::xa::internal::MarkerRowVanished(context_->rm_name, table, global);
    return ::xa::internal::ParseMarkerOutcome(rows[0].empty() ? std::nullopt : rows[0][0],
                                              context_->rm_name, table,
                                              ::xa::internal::LowerHex(global.gtrid()));
  }

  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& globals) override {
    constexpr MarkerCall kCall = MarkerCall::kRead;
    Result<std::vector<std::string>> selects = pg::ReadCommitMarkersSql(table, globals);
    if (!selects.ok()) return selects.status();
    std::vector<Row> rows;
    for (const std::string& select : *selects) {
      std::vector<Row> chunk;
      Diagnostics diag;
      // Autocommit: each read is a plain snapshot read of its own, which never waits.
      if (!session_->Query(select, &chunk, &diag)) {
        return MarkerFailure(kCall, table, nullptr, diag);
      }
      rows.insert(rows.end(), std::make_move_iterator(chunk.begin()),
                  std::make_move_iterator(chunk.end()));
    }
    return ::xa::internal::ParseMarkerRows(rows, context_->rm_name, table);
  }

  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) override {
    constexpr MarkerCall kCall = MarkerCall::kList;
    Result<std::string> select = pg::ListCommitMarkersSql(table, node_id, limit);
    if (!select.ok()) return select.status();
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(*select, &rows, &diag)) return MarkerFailure(kCall, table, nullptr, diag);
    return ::xa::internal::ParseMarkerRows(rows, context_->rm_name, table);
  }

  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& globals) override {
    constexpr MarkerCall kCall = MarkerCall::kDelete;
    Result<std::vector<std::string>> deletes = pg::DeleteCommitMarkersSql(table, globals);
    if (!deletes.ok()) return deletes.status();
    Diagnostics diag;
    if (deletes->size() == 1) {
      // Autocommit: the one statement commits itself.
      if (session_->Execute(deletes->front(), &diag)) return Status::Ok();
      return MarkerFailure(kCall, table, nullptr, diag);
    }
    if (!session_->SetAutocommit(false, &diag)) return MarkerFailure(kCall, table, nullptr, diag);
    bool done = true;
    for (const std::string& statement : *deletes) {
      diag = Diagnostics();
      done = done && session_->Execute(statement, &diag);
    }
    if (done) {
      diag = Diagnostics();
      done = session_->EndTransaction(true, &diag);
    }
    if (!done) {
      Status failed = MarkerFailure(kCall, table, nullptr, diag);
      Abort();
      return failed;
    }
    if (!session_->SetAutocommit(true, &diag)) session_->MarkLost();  // the next call reconnects
    return Status::Ok();
  }

  void OnDisconnect() override { backend_pid_ = 0; }

 private:
  // True when the open transaction has no transaction id. Rolls back and fails when the
  // transaction is aborted or the probe fails, or when the connection left manual-commit mode
  // during the branch (its statements were committed one by one: nothing left to prepare).
  // Fails (and rolls back what is open) when the connection left manual-commit mode during the
  // branch: its statements were committed one by one and nothing is left to prepare.
  Status CheckManualCommit(const Xid& xid) {
    if (!session_->AutocommitIsOn()) return Status::Ok();
    Abort();
    return Status(Code::kRmError,
                  "PostgreSQL resource manager '" + context_->rm_name + "': branch " +
                      xid.ToString() +
                      " ran with autocommit switched on (SQL_ATTR_AUTOCOMMIT changed on "
                      "connection() during the branch), so its statements are committed "
                      "already and cannot take part in two-phase commit; vote rollback and "
                      "check the data: never change autocommit on connection()");
  }

  Result<bool> ProbeReadOnly(const Xid& xid) {
    XA_RETURN_IF_ERROR(CheckManualCommit(xid));
    std::vector<Row> rows;
    Diagnostics diag;
    if (!session_->Query(pg::ReadOnlyProbeSql(version_num_), &rows, &diag)) {
      Status failed = Fail(pg::Step::kReadOnlyProbe, diag, &xid);
      Abort();
      return failed;
    }
    return rows.size() == 1 && rows[0].size() == 1 && ToInt(rows[0][0]) == 1;
  }

  Status CommitOpenTransaction(const Xid& xid) {
    Diagnostics diag;
    if (!session_->EndTransaction(true, &diag)) {
      Status failed = Fail(pg::Step::kCommitOnePhase, diag, &xid);
      Abort();
      return failed;
    }
    // Committed whatever happens here; a session that cannot switch is replaced by the next call.
    if (!session_->SetAutocommit(true, &diag)) session_->MarkLost();
    return Status::Ok();
  }

  Status RunPhaseTwo(const Result<std::string>& sql, pg::Step step, const Xid& xid) {
    if (!sql.ok()) return sql.status();
    Diagnostics diag;
    if (!session_->Execute(*sql, &diag)) return Fail(step, diag, &xid);
    return Status::Ok();
  }

  // Ends whatever is open, best effort: after a failed PREPARE the server already rolled back.
  void Abort() {
    Diagnostics ignored;
    session_->EndTransaction(false, &ignored);
    session_->SetAutocommit(true, &ignored);
  }

  // A failed marker statement outside any branch (Step::kMarker), read by the dialect.
  Status MarkerFailure(MarkerCall call, std::string_view table, const Xid* global,
                       const Diagnostics& diag) {
    return pg::ReadMarkerError(Fail(pg::Step::kMarker, diag, global), diag.primary().sqlstate, call,
                               context_->rm_name, table, context_->user, global);
  }

  Status Fail(pg::Step step, const Diagnostics& diag, const Xid* xid) {
    const DiagRecord& primary = diag.primary();
    bool lost = diag.connection_dead || pg::IsConnectionLost(primary.sqlstate);
    if (lost) session_->MarkLost();
    Status status = pg::MapPostgresError(step, primary.sqlstate, diag.Describe(),
                                         context_->rm_name, xid);
    if (lost && status.code() != Code::kRmFail) {
      return Status(Code::kRmFail, status.message() + (pg::LostConnectionLeavesBranchInDoubt(step)
                                                           ? " (the connection is gone: in doubt)"
                                                           : " (the connection is gone)"));
    }
    return status;
  }

  OdbcSession* session_;
  const DialectContext* context_;
  int64_t version_num_ = 0;
  bool superuser_ = false;
  uint64_t backend_pid_ = 0;  // pg_backend_pid() of the session, 0 when there is none
};

}  // namespace

std::unique_ptr<OdbcDialect> NewPostgresDialect(OdbcSession* session,
                                                const DialectContext* context) {
  return std::make_unique<PostgresDialect>(session, context);
}

}  // namespace xa::odbc::internal
