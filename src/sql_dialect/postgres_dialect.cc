#include "src/sql_dialect/postgres_dialect.h"

#include <algorithm>

#include "src/base/byte_text.h"
#include "src/base/escape.h"

namespace xa::internal::postgres {
namespace {

using internal::EscapeForMessage;

bool IsGidCharacter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Result<std::string> WithGid(std::string_view verb, const Xid& xid) {
  Result<std::string> literal = GidLiteral(xid);
  if (!literal.ok()) return literal.status();
  std::string sql;
  sql.reserve(verb.size() + 1 + literal->size());
  sql.append(verb);
  sql.push_back(' ');
  sql.append(*literal);
  return sql;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool Contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

bool IsPhaseTwo(Step step) { return step == Step::kCommitPrepared || step == Step::kRollbackPrepared; }

std::string_view AdviceFor(Code code, Step step, std::string_view sqlstate) {
  switch (code) {
    case Code::kRmFail:
      if (!LostConnectionLeavesBranchInDoubt(step)) {
        return "the connection is gone or the statement's outcome is unknown; no prepared "
               "transaction of this call exists (PostgreSQL rolls back an unprepared one with "
               "its session): reopen the resource manager and start again";
      }
      return "the connection is gone or the statement's outcome is unknown: the branch is IN "
             "DOUBT, not gone (a prepared transaction survives its session); reopen the resource "
             "manager and retry the same call";
    case Code::kNoTa:
      return "the server has no prepared transaction with this GID (never prepared, already "
             "committed or rolled back, or finished by someone else); during recovery this means "
             "the branch is finished";
    case Code::kDupId:
      if (step == Step::kPrepare) {
        return "another prepared transaction already uses this GID; this branch has been rolled "
               "back and the other one was not touched: never reuse an xid";
      }
      return "another prepared transaction already uses this GID: never reuse an xid";
    case Code::kInval:
      return "the server refused the GID; this is a bug in xa";
    case Code::kRetry:
      if (sqlstate == "55P03") {
        return "a lock wait ran out (lock_timeout); nothing was changed: retry the same call "
               "later";
      }
      return "another session is finishing this prepared transaction right now; retry the same "
             "call shortly";
    case Code::kRmError:
      if (sqlstate == "53200") {
        return "ALERT: no free prepared-transaction slot (or the server is out of memory); old "
               "prepared transactions may be piling up: look at pg_prepared_xacts, finish or roll "
               "back the stale ones, or raise max_prepared_transactions (needs a restart); the "
               "branch has been rolled back";
      }
      if (step == Step::kMarker) {
        return "the statement failed and its transaction was rolled back; no branch is involved";
      }
      return "the server reported an error; the branch may be gone";
    case Code::kRbDeadlock:
      return "PostgreSQL broke a deadlock by failing this branch; it has been rolled back: retry "
             "the whole transaction";
    case Code::kRbTransient:
      return "a serialization failure rolled the branch back: retrying the whole transaction may "
             "succeed";
    case Code::kRbIntegrity:
      return "a constraint was violated; the branch has been rolled back";
    case Code::kRbTimeout:
      return "a statement timed out and the branch has been rolled back";
    case Code::kRbRollback:
      if (sqlstate == "25P02") {
        return "an earlier statement of the branch failed, so PostgreSQL aborted its transaction; "
               "the branch has been rolled back";
      }
      return "PostgreSQL rolled the branch back when PREPARE TRANSACTION failed";
    case Code::kConfig:
      if (sqlstate == "42501" && IsPhaseTwo(step)) {
        return "only the role that prepared the transaction, or a superuser, may commit or roll it "
               "back: open this resource manager as that role (see pg_prepared_xacts.owner)";
      }
      if (sqlstate == "42501" && (step == Step::kMarker || step == Step::kWriteMarker)) {
        return "this role lacks a privilege on the marker table";
      }
      if (sqlstate == "42501") {
        return "this role may not read pg_prepared_xacts: GRANT SELECT ON pg_catalog.pg_prepared_xacts "
               "and EXECUTE ON FUNCTION pg_catalog.pg_prepared_xact() to it";
      }
      if (sqlstate == "0A000") {
        return "the prepared transaction belongs to another database: open a resource manager on "
               "the database where it was prepared (see pg_prepared_xacts.database)";
      }
      if (sqlstate == "55000") {
        return "prepared transactions are disabled on this server: set max_prepared_transactions "
               "in postgresql.conf to at least max_connections and restart the server";
      }
      return "check the data source, the role, its password and the database name";
    case Code::kInternal:
      return "this is a bug in xa: please report it";
    default:
      return "see the server's error";
  }
}

constexpr std::string_view kXaGidPrefix = "xa1.";

}  // namespace

std::string XidToGid(const Xid& xid) {
  const uint32_t f = static_cast<uint32_t>(xid.format_id());
  const char format_be[4] = {static_cast<char>(f >> 24), static_cast<char>(f >> 16),
                             static_cast<char>(f >> 8), static_cast<char>(f)};
  return std::string(kXaGidPrefix) + LowerHex(std::string_view(format_be, 4)) + "." +
         Base64Url(xid.gtrid()) + "." + Base64Url(xid.bqual());
}

Result<Xid> XidFromGid(std::string_view gid) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kInval, "prepared transaction gid '" + EscapeForMessage(gid) +
                                    "' is not an xa gid: " + std::string(why));
  };
  if (gid.size() > kMaxXaGidSize) return bad("too long");
  if (gid.substr(0, kXaGidPrefix.size()) != kXaGidPrefix) return bad("no 'xa1.' prefix");
  std::string_view rest = gid.substr(kXaGidPrefix.size());
  size_t dot1 = rest.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : rest.find('.', dot1 + 1);
  if (dot1 != 8 || dot2 == std::string_view::npos ||
      rest.find('.', dot2 + 1) != std::string_view::npos) {
    return bad("expected xa1.<8 hex>.<base64url>.<base64url>");
  }
  int64_t format_id = 0;
  for (char c : rest.substr(0, 8)) {
    int v = HexDigitValue(c);
    if (v < 0 || (c >= 'A' && c <= 'F')) return bad("format ID is not 8 lower-case hex digits");
    format_id = (format_id << 4) | v;
  }
  std::string gtrid, bqual;
  if (!ParseBase64Url(rest.substr(dot1 + 1, dot2 - dot1 - 1), &gtrid) ||
      !ParseBase64Url(rest.substr(dot2 + 1), &bqual)) {
    return bad("gtrid or bqual is not canonical base64url");
  }
  auto xid = Xid::Make(format_id, gtrid, bqual);
  if (!xid.ok()) return bad(xid.status().message());
  return xid;
}

Result<std::string> GidLiteral(const Xid& xid) {
  std::string gid = XidToGid(xid);
  bool valid = !gid.empty() && gid.size() <= kMaxGidSize;
  for (char c : gid) valid = valid && IsGidCharacter(c);
  if (!valid) {
    return Status(Code::kInternal, "the PostgreSQL GID rendered for xid " + xid.ToString() +
                                       " ('" + EscapeForMessage(gid) +
                                       "') is not 1-199 bytes of [A-Za-z0-9._-]: this is a bug "
                                       "in xa, please report it; nothing was sent to the server");
  }
  // No character of the alphabet needs escaping inside '...'; the check above guarantees it.
  return "'" + gid + "'";
}

Result<std::string> PrepareTransactionSql(const Xid& xid) {
  return WithGid("PREPARE TRANSACTION", xid);
}
Result<std::string> CommitPreparedSql(const Xid& xid) { return WithGid("COMMIT PREPARED", xid); }
Result<std::string> RollbackPreparedSql(const Xid& xid) {
  return WithGid("ROLLBACK PREPARED", xid);
}

// ---- The commit marker ---------------------------------------------------------------------

namespace {

// A row's values, in this dialect's literals.
std::string MarkerValues(const Xid& global, char outcome) {
  return internal::MarkerValues(global, outcome, &GtridLiteral);
}

constexpr std::string_view kMarkerColumns = "SELECT encode(gtrid, 'hex'), format_id, outcome FROM ";

MarkerTableProblem ProblemOf(std::string_view sqlstate) {
  if (sqlstate == "42P01" || sqlstate == "3F000") return MarkerTableProblem::kMissing;
  if (sqlstate == "42501") return MarkerTableProblem::kNoPrivilege;
  if (sqlstate == "42703") return MarkerTableProblem::kWrongColumns;
  return MarkerTableProblem::kNone;
}

}  // namespace

std::string GtridLiteral(const Xid& global) {
  return "'\\x" + LowerHex(global.gtrid()) + "'::bytea";
}

Result<std::vector<std::string>> CreateMarkerTableSql(std::string_view table) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  const size_t dot = table.find('.');
  const std::string_view table_part = dot == std::string_view::npos ? table : table.substr(dot + 1);
  return std::vector<std::string>{
      "CREATE TABLE IF NOT EXISTS " + std::string(table) +
          " (gtrid bytea NOT NULL PRIMARY KEY, format_id integer NOT NULL, node_id bigint NOT "
          "NULL, outcome char(1) NOT NULL CHECK (outcome IN ('C', 'A')), created timestamptz NOT "
          "NULL DEFAULT clock_timestamp())",
      "CREATE INDEX IF NOT EXISTS " + std::string(table_part) + "_by_node ON " +
          std::string(table) + " (node_id, created)"};
}

Result<std::string> WriteCommitMarkerSql(std::string_view table, const Xid& global) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "INSERT INTO " + std::string(table) + " (gtrid, format_id, node_id, outcome) VALUES " +
         MarkerValues(global, 'C');
}

std::string SettleLockTimeoutSql(std::chrono::milliseconds wait) {
  constexpr int64_t kMaxMs = 2147483647;  // lock_timeout's maximum
  int64_t ms = wait.count();
  if (ms < 1) ms = 1;
  if (ms > kMaxMs) ms = kMaxMs;
  return "SET LOCAL lock_timeout = '" + std::to_string(ms) + "ms'";
}

Result<std::string> SettleCommitMarkerSql(std::string_view table, const Xid& global) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "INSERT INTO " + std::string(table) + " (gtrid, format_id, node_id, outcome) VALUES " +
         MarkerValues(global, 'A') + " ON CONFLICT (gtrid) DO NOTHING";
}

Result<std::string> ReadOutcomeSql(std::string_view table, const Xid& global) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "SELECT outcome FROM " + std::string(table) + " WHERE gtrid = " + GtridLiteral(global);
}

Result<std::vector<std::string>> ReadCommitMarkersSql(std::string_view table,
                                                      const std::vector<Xid>& globals) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return ChunkedMarkerStatements(std::string(kMarkerColumns) + std::string(table) + " WHERE ",
                                 globals, &GtridLiteral);
}

Result<std::string> ListCommitMarkersSql(std::string_view table, uint32_t node_id, size_t limit) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  constexpr uint64_t kMaxLimit = 0x7fffffffffffffffu;  // LIMIT takes a bigint
  const uint64_t capped = std::min<uint64_t>(limit, kMaxLimit);
  return std::string(kMarkerColumns) + std::string(table) +
         " WHERE node_id = " + std::to_string(node_id) + " ORDER BY created, gtrid LIMIT " +
         std::to_string(capped);
}

Result<std::vector<std::string>> DeleteCommitMarkersSql(std::string_view table,
                                                        const std::vector<Xid>& globals) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return ChunkedMarkerStatements("DELETE FROM " + std::string(table) + " WHERE ", globals,
                                 &GtridLiteral);
}

Status ReadMarkerError(Status mapped, std::string_view sqlstate, MarkerCall call,
                       std::string_view rm_name, std::string_view table, std::string_view user,
                       const Xid* global) {
  if (global != nullptr && call == MarkerCall::kWrite && sqlstate == "23505") {
    return MarkerAlreadySettled(rm_name, table, *global, mapped.message());
  }
  if (global != nullptr && call == MarkerCall::kSettle && sqlstate == "55P03") {
    return MarkerStillHeld(rm_name, table, *global, mapped.message());
  }
  return WithMarkerTableAdvice(std::move(mapped), ProblemOf(sqlstate), call, table, user);
}

std::string_view ReadOnlyProbeSql(int64_t server_version_num) noexcept {
  // txid_current_if_assigned() is deprecated from 13 on, in favour of the xid8 variant.
  if (server_version_num >= 130000) return "SELECT (pg_current_xact_id_if_assigned() IS NULL)::int";
  return "SELECT (txid_current_if_assigned() IS NULL)::int";
}

Status CheckProbe(const ProbeRow& probe, std::string_view rm_name, ServerInfo* info) {
  info->product = "PostgreSQL";
  info->version = probe.version_text;
  if (probe.version_num >= 100000) {
    info->major = static_cast<int>(probe.version_num / 10000);
    info->minor = static_cast<int>(probe.version_num % 10000);
    info->patch = 0;
  } else {
    info->major = static_cast<int>(probe.version_num / 10000);
    info->minor = static_cast<int>(probe.version_num / 100 % 100);
    info->patch = static_cast<int>(probe.version_num % 100);
  }
  info->max_prepared_transactions = static_cast<int>(probe.max_prepared_transactions);
  info->prepared_survive_disconnect = true;
  info->may_recover = probe.may_read_prepared;
  info->xa_supported = probe.max_prepared_transactions > 0 && probe.version_num >= kMinVersionNum;

  std::string where = "PostgreSQL resource manager '" + std::string(rm_name) + "' (server " +
                      EscapeForMessage(probe.version_text) + ", database '" +
                      EscapeForMessage(probe.database) + "', role '" +
                      EscapeForMessage(probe.user) + "')";
  if (probe.version_num < kMinVersionNum) {
    return Status(Code::kConfig, where + ": PostgreSQL before 10 is not supported (xa needs "
                                         "txid_current_if_assigned()); upgrade the server");
  }
  if (probe.max_prepared_transactions <= 0) {
    std::string suggestion = std::to_string(probe.max_connections > 0 ? probe.max_connections : 100);
    return Status(Code::kConfig,
                  where + ": max_prepared_transactions = " +
                      std::to_string(probe.max_prepared_transactions) +
                      ", which disables PREPARE TRANSACTION, so this server cannot take part in "
                      "two-phase commit. Fix: set max_prepared_transactions in postgresql.conf to "
                      "at least max_connections (currently " +
                      std::to_string(probe.max_connections) + "), e.g. 'max_prepared_transactions = " +
                      suggestion +
                      "', and restart the server (the setting only changes at a restart; a "
                      "standby needs a value at least as large as its primary's)");
  }
  return Status::Ok();
}

std::string ProbeWarning(const ProbeRow& probe) {
  std::string warning;
  if (probe.max_prepared_transactions < probe.max_connections) {
    warning = "max_prepared_transactions = " + std::to_string(probe.max_prepared_transactions) +
              " is below max_connections = " + std::to_string(probe.max_connections) +
              ": under load PREPARE TRANSACTION can fail with 53200; raise it to at least "
              "max_connections (needs a restart)";
  }
  if (!probe.may_read_prepared) {
    if (!warning.empty()) warning += "; ";
    warning += "role '" + EscapeForMessage(probe.user) +
               "' may not read pg_prepared_xacts, so recovery scans will fail: grant SELECT on "
               "pg_catalog.pg_prepared_xacts and EXECUTE on pg_catalog.pg_prepared_xact()";
  }
  return warning;
}

RecoverScan ParseRecoverRows(const std::vector<RecoverRow>& rows, bool superuser,
                             std::vector<std::string>* untouchable) {
  RecoverScan scan;
  for (const RecoverRow& row : rows) {
    Result<Xid> xid = XidFromGid(row.gid);
    if (!xid.ok()) {
      UnparsedBranch entry;
      entry.raw = "gid=" + EscapeForMessage(row.gid) + " owner=" + EscapeForMessage(row.owner);
      entry.reason = xid.status().message();
      scan.unparsed.push_back(std::move(entry));
      continue;
    }
    if (!row.owned_by_current_user && !superuser && untouchable != nullptr) {
      untouchable->push_back("prepared branch " + xid->ToString() + " (gid " +
                             EscapeForMessage(row.gid) + ") belongs to role '" +
                             EscapeForMessage(row.owner) +
                             "': this role may not commit or roll it back; recover it as that "
                             "role or as a superuser");
    }
    scan.prepared.push_back(std::move(xid).value());
  }
  return scan;
}

std::optional<std::string> TerminateBackendSql(uint64_t pid) {
  if (pid == 0 || pid > 0x7fffffffu) return std::nullopt;
  return "SELECT pg_catalog.pg_terminate_backend(" + std::to_string(pid) + ")";
}

std::string BackendPresentSql(uint64_t pid) {
  return "SELECT COUNT(*) FROM pg_catalog.pg_stat_activity WHERE pid = " + std::to_string(pid);
}

Status TerminateFailure(std::string_view sqlstate, std::string_view text,
                        std::string_view rm_name, uint64_t pid, std::string_view user) {
  if (sqlstate != "42501") return MapPostgresError(Step::kFence, sqlstate, text, rm_name, nullptr);
  return Status(Code::kRmError,
                "PostgreSQL resource manager '" + std::string(rm_name) +
                    "': pg_terminate_backend(" + std::to_string(pid) +
                    ") refused: [SQLSTATE 42501] " + EscapeForMessage(text) +
                    ". The session belongs to another role: open this resource manager as that "
                    "role, or GRANT pg_signal_backend TO " + EscapeForMessage(user) +
                    " (a superuser's session only a superuser may end); the branch must not be "
                    "finished until the fence succeeds");
}

bool LostConnectionLeavesBranchInDoubt(Step step) noexcept {
  return step == Step::kPrepare || step == Step::kCommitOnePhase || IsPhaseTwo(step);
}

std::string_view StepName(Step step) noexcept {
  switch (step) {
    case Step::kConnect:
      return "connect";
    case Step::kProbe:
      return "capability probe";
    case Step::kBegin:
      return "BEGIN (manual-commit mode)";
    case Step::kWork:
      return "branch statement";
    case Step::kReadOnlyProbe:
      return "read-only probe";
    case Step::kPrepare:
      return "PREPARE TRANSACTION";
    case Step::kCommitOnePhase:
      return "COMMIT (one phase)";
    case Step::kCommitPrepared:
      return "COMMIT PREPARED";
    case Step::kRollback:
      return "ROLLBACK";
    case Step::kRollbackPrepared:
      return "ROLLBACK PREPARED";
    case Step::kRecover:
      return "recover scan (pg_prepared_xacts)";
    case Step::kFence:
      return "fence (pg_terminate_backend)";
    case Step::kWriteMarker:
      return "commit marker INSERT in the branch";
    case Step::kMarker:
      return "commit marker statement";
  }
  return "statement";
}

bool IsConnectionLost(std::string_view sqlstate) noexcept {
  if (StartsWith(sqlstate, "08")) return true;
  return sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03" ||
         sqlstate == "57P04" || sqlstate == "57P05" || sqlstate == "25P03";
}

Code CodeForPostgresError(Step step, std::string_view sqlstate, std::string_view text) noexcept {
  // The marker's INSERT in the branch is a statement of the branch like the application's.
  if (step == Step::kWriteMarker) step = Step::kWork;
  if (IsConnectionLost(sqlstate) || sqlstate == "40003") return Code::kRmFail;
  if (sqlstate == "57014") return step == Step::kWork ? Code::kRbTimeout : Code::kRmFail;
  // lock_timeout: like MariaDB's lock wait timeout (1205), the branch must be rolled back.
  if (sqlstate == "55P03" && step == Step::kWork) return Code::kRbTimeout;
  // Outside a branch only the settle waits for a lock: it ran out of time, settle again later.
  if (sqlstate == "55P03" && step == Step::kMarker) return Code::kRetry;
  if (step == Step::kConnect) {
    if (StartsWith(sqlstate, "28") || sqlstate == "3D000") return Code::kConfig;
    if (sqlstate == "53300") return Code::kRmFail;  // too many connections: try again later
    return Code::kRmFail;
  }
  if (sqlstate == "42704" && IsPhaseTwo(step)) return Code::kNoTa;
  if (sqlstate == "42710") return Code::kDupId;
  if (sqlstate == "22023" && Contains(text, "too long")) return Code::kInval;
  if (sqlstate == "55000") {
    if (Contains(text, "disabled")) return Code::kConfig;
    if (Contains(text, "busy")) return Code::kRetry;
  }
  if (sqlstate == "53200") return Code::kRmError;
  if (sqlstate == "40P01") return Code::kRbDeadlock;
  if (sqlstate == "40001") return Code::kRbTransient;
  if (sqlstate == "40002" || StartsWith(sqlstate, "23")) {
    // In the branch's own statements a violation fails the statement; the application decides.
    return step == Step::kWork || step == Step::kMarker ? Code::kRmError : Code::kRbIntegrity;
  }
  if (sqlstate == "25P02") return Code::kRbRollback;
  if (sqlstate == "42501") return Code::kConfig;
  if (sqlstate == "0A000" && Contains(text, "another database")) return Code::kConfig;
  if (sqlstate == "25001") return Code::kInternal;
  if (step == Step::kPrepare) return Code::kRbRollback;
  return Code::kRmError;
}

Status MapPostgresError(Step step, std::string_view sqlstate, std::string_view text,
                        std::string_view rm_name, const Xid* xid) {
  Code code = CodeForPostgresError(step, sqlstate, text);
  std::string message = "PostgreSQL resource manager '" + std::string(rm_name) + "': " +
                        std::string(StepName(step));
  if (xid != nullptr) message += " of xid " + xid->ToString();
  message += " failed: [SQLSTATE " + EscapeForMessage(sqlstate) + "] " + EscapeForMessage(text) +
             ". " + std::string(AdviceFor(code, step, sqlstate));
  return Status(code, std::move(message));
}

}  // namespace xa::internal::postgres
