#include "src/sql_dialect/mariadb_dialect.h"

#include <charconv>

#include "src/base/byte_text.h"

namespace xa::internal::mariadb {
namespace {

std::string XaVerb(std::string_view verb, const Xid& xid) {
  std::string sql;
  sql.reserve(verb.size() + 280);
  sql.append(verb);
  sql.push_back(' ');
  sql.append(XidLiteral(xid));
  return sql;
}

// Parses a non-negative decimal at the front of `text`, advancing past it.
bool TakeNumber(std::string_view* text, int* value) {
  const char* begin = text->data();
  const char* end = begin + text->size();
  auto [ptr, ec] = std::from_chars(begin, end, *value);
  if (ec != std::errc() || ptr == begin || *value < 0) return false;
  text->remove_prefix(static_cast<size_t>(ptr - begin));
  return true;
}

// The commit marker's calls outside any branch name their operations after themselves
// ("SettleCommitMarker (INSERT IGNORE ...)"): no branch is involved in their failures.
bool IsMarkerOperationOutsideBranch(std::string_view operation) {
  for (std::string_view call : {MarkerCallName(MarkerCall::kSettle),
                                MarkerCallName(MarkerCall::kRead),
                                MarkerCallName(MarkerCall::kList),
                                MarkerCallName(MarkerCall::kDelete)}) {
    if (operation.substr(0, call.size()) == call) return true;
  }
  return false;
}

std::string_view AdviceFor(Code code, int error_number, std::string_view operation) {
  if (IsMarkerOperationOutsideBranch(operation) &&
      (code == Code::kRmError || code == Code::kRbTimeout || code == Code::kRbDeadlock)) {
    return "the statement failed and its local transaction was rolled back; no branch is "
           "involved";
  }
  const std::string_view write_marker = MarkerCallName(MarkerCall::kWrite);
  if (code == Code::kRmError && operation.substr(0, write_marker.size()) == write_marker) {
    return "the marker was not written, and the branch must be rolled back (a marker branch "
           "never commits without its marker)";
  }
  switch (code) {
    case Code::kNoTa:
      return "the server has no branch with this xid (never started, already completed, or "
             "completed by someone else); during recovery this means the branch is finished";
    case Code::kInval:
      return "the server refused the arguments of the XA statement; this is a bug in the caller "
             "or in xa";
    case Code::kRmFail:
      if (error_number == 1399) {
        return "the statement is not allowed in the branch's current state (XA END must come "
               "before XA PREPARE, no other statement may run while a branch is IDLE or "
               "PREPARED); the branch is unchanged";
      }
      if (!LostConnectionLeavesBranchInDoubt(operation)) {
        return "the connection is gone or unusable; no branch of this call was prepared (the "
               "server rolls back an unprepared branch with its session): reopen the resource "
               "manager and start again";
      }
      return "the connection is gone or unusable: the branch is IN DOUBT, not gone; reopen the "
             "resource manager and retry the same call";
    case Code::kOutside:
      return "the session has a local transaction open: commit or roll it back before starting "
             "a branch";
    case Code::kRmError:
      if (error_number == 1401) {
        return "the server reported an error inside the resource manager; the branch may be gone";
      }
      return "the statement failed; the server rolled back that statement only, the branch "
             "goes on unless the caller decides to roll it back";
    case Code::kDupId:
      return "a branch with this xid already exists on the server (active, prepared, or left by "
             "another transaction manager): never reuse an xid";
    case Code::kRbRollback:
      return "the server has rolled the branch back (a read-only branch prepared in another "
             "session ends this way too)";
    case Code::kRbTimeout:
      if (error_number == 1205) {
        return "a lock wait timed out; the server rolled back the statement and the branch "
               "must now be rolled back";
      }
      return "the branch timed out and has been rolled back";
    case Code::kRbDeadlock:
      return "the server broke a deadlock by rolling the branch back; retry the whole "
             "transaction";
    case Code::kConfig:
      return "check the account, its password and its grants on the database";
    default:
      return "see the server's error";
  }
}

// MariaDB renders an Xid whose bytes are all in [A-Za-z0-9 _-] as quoted text instead of hex
// (sql/xa.cc get_sql_xid): 'gtrid'[,'bqual'[,<format id>]], the bqual part present when the bqual
// is non-empty or the format ID is not 1, the format ID when it is not 1. Only that exact shape is
// accepted.
bool IsPlainXidByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ' ||
         c == '_' || c == '-';
}

bool TakeQuoted(std::string_view* text, std::string* out) {
  if (text->empty() || (*text)[0] != '\'') return false;
  size_t close = text->find('\'', 1);
  if (close == std::string_view::npos) return false;
  std::string_view body = text->substr(1, close - 1);
  for (char c : body) {
    if (!IsPlainXidByte(c)) return false;
  }
  out->assign(body);
  text->remove_prefix(close + 1);
  return true;
}

Result<Xid> FromQuotedRecoverRow(const RecoverRow& row) {
  Status bad(Code::kInval, "not a quoted xid");
  std::string_view rest = row.data;
  std::string gtrid, bqual;
  int64_t format_id = 1;
  if (!TakeQuoted(&rest, &gtrid)) return bad;
  bool has_bqual_part = false;
  if (!rest.empty()) {
    if (rest[0] != ',') return bad;
    rest.remove_prefix(1);
    if (!TakeQuoted(&rest, &bqual)) return bad;
    has_bqual_part = true;
    if (!rest.empty()) {
      if (rest[0] != ',') return bad;
      rest.remove_prefix(1);
      int value = 0;
      if (rest.empty() || (rest.size() > 1 && rest[0] == '0') || !TakeNumber(&rest, &value) ||
          !rest.empty()) {
        return bad;
      }
      format_id = value;
      if (format_id == 1) return bad;  // the server never writes a format ID of 1
    }
  }
  // The server writes the bqual part exactly when it is needed.
  if (has_bqual_part != (!bqual.empty() || format_id != 1)) return bad;
  if (format_id != row.format_id || static_cast<int64_t>(gtrid.size()) != row.gtrid_length ||
      static_cast<int64_t>(bqual.size()) != row.bqual_length) {
    return bad;
  }
  return Xid::Make(format_id, gtrid, bqual);
}

// Parses one X'<hex>' literal at the front of `text` and advances past it.
bool TakeHexLiteral(std::string_view* text, std::string* bytes) {
  if (text->size() < 3 || ((*text)[0] != 'X' && (*text)[0] != 'x') || (*text)[1] != '\'') {
    return false;
  }
  size_t close = text->find('\'', 2);
  if (close == std::string_view::npos) return false;
  if (!ParseHex(text->substr(2, close - 2), bytes)) return false;
  text->remove_prefix(close + 1);
  return true;
}

}  // namespace

std::string XidLiteral(const Xid& xid) {
  return "X'" + LowerHex(xid.gtrid()) + "',X'" + LowerHex(xid.bqual()) + "'," +
         std::to_string(xid.format_id());
}

Result<Xid> XidFromRecoverRow(int64_t format_id, int64_t gtrid_length, int64_t bqual_length,
                              std::string_view data) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kInval, "XA RECOVER row (formatID=" + std::to_string(format_id) +
                                    ", gtrid_length=" + std::to_string(gtrid_length) +
                                    ", bqual_length=" + std::to_string(bqual_length) + ", data='" +
                                    EscapeForMessage(data) +
                                    "') is not a valid xid: " + std::string(why));
  };
  if (gtrid_length < 1 || gtrid_length > 64 || bqual_length < 0 || bqual_length > 64) {
    return bad("lengths out of range");
  }
  std::string_view rest = data;
  std::string gtrid, bqual;
  if (!TakeHexLiteral(&rest, &gtrid)) return bad("data does not start with X'<hex>'");
  int64_t rendered_format = 1;  // the server omits a format ID of 1
  if (!rest.empty()) {
    if (rest[0] != ',') return bad("unexpected text after the gtrid");
    rest.remove_prefix(1);
    if (!TakeHexLiteral(&rest, &bqual)) return bad("second part is not X'<hex>'");
    if (!rest.empty()) {
      if (rest[0] != ',') return bad("unexpected text after the bqual");
      rest.remove_prefix(1);
      if (!ParseCanonicalDecimal(rest, &rendered_format)) {
        return bad("format ID is not a decimal number");
      }
    }
  }
  if (static_cast<int64_t>(gtrid.size()) != gtrid_length ||
      static_cast<int64_t>(bqual.size()) != bqual_length) {
    return bad("data does not match the length columns");
  }
  if (rendered_format != format_id) return bad("data does not match the formatID column");
  return Xid::Make(format_id, gtrid, bqual);
}

std::string XaStartSql(const Xid& xid, StartFlag flag) {
  std::string sql = XaVerb("XA START", xid);
  if (flag == StartFlag::kJoin) sql += " JOIN";
  if (flag == StartFlag::kResume) sql += " RESUME";
  return sql;
}

std::string XaEndSql(const Xid& xid, EndFlag flag) {
  std::string sql = XaVerb("XA END", xid);
  if (flag == EndFlag::kSuspend) sql += " SUSPEND";
  return sql;
}

std::string XaPrepareSql(const Xid& xid) { return XaVerb("XA PREPARE", xid); }

std::string XaCommitSql(const Xid& xid, CommitMode mode) {
  std::string sql = XaVerb("XA COMMIT", xid);
  if (mode == CommitMode::kOnePhase) sql += " ONE PHASE";
  return sql;
}

std::string XaRollbackSql(const Xid& xid) { return XaVerb("XA ROLLBACK", xid); }

std::string_view IsolationName(Isolation isolation) noexcept {
  switch (isolation) {
    case Isolation::kRepeatableRead:
      return "REPEATABLE READ";
    case Isolation::kSerializable:
      return "SERIALIZABLE";
  }
  return "REPEATABLE READ";
}

std::string SetIsolationSql(Isolation isolation) {
  return "SET SESSION TRANSACTION ISOLATION LEVEL " + std::string(IsolationName(isolation));
}

RecoverScan ParseRecoverRows(const std::vector<RecoverRow>& rows) {
  RecoverScan scan;
  for (const RecoverRow& row : rows) {
    Result<Xid> xid =
        XidFromRecoverRow(row.format_id, row.gtrid_length, row.bqual_length, row.data);
    if (!xid.ok() && !row.data.empty() && row.data[0] == '\'') {
      Result<Xid> quoted = FromQuotedRecoverRow(row);
      if (quoted.ok()) xid = std::move(quoted);
    }
    if (xid.ok()) {
      scan.prepared.push_back(std::move(xid).value());
      continue;
    }
    UnparsedBranch entry;
    entry.raw = "formatID=" + std::to_string(row.format_id) +
                " gtrid_length=" + std::to_string(row.gtrid_length) +
                " bqual_length=" + std::to_string(row.bqual_length) + " data=" +
                EscapeForMessage(row.data);
    entry.reason = xid.status().message();
    scan.unparsed.push_back(std::move(entry));
  }
  return scan;
}

Status ReadPhaseTwoNota(const Status& nota, NotaScan scan, const Status& scan_error,
                        std::string_view rm_name, const Xid& xid) {
  switch (scan) {
    case NotaScan::kNotListed:
      return nota;
    case NotaScan::kListed:
      return Status(Code::kRmFail,
                    "resource manager '" + std::string(rm_name) + "': branch " + xid.ToString() +
                        " is prepared but still attached to the session that prepared it (that "
                        "session is connected, or the server has not yet cleaned it up); the "
                        "server's XAER_NOTA is not true: retry later, or end that session");
    case NotaScan::kFailed:
      break;
  }
  return Status(Code::kRmFail, nota.message() + "; the XA RECOVER that would confirm it failed (" +
                                   scan_error.ToString() + "): in doubt, retry later");
}

std::string SessionPresentSql(uint64_t connection_id) {
  return "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
         std::to_string(connection_id);
}

Status EndedSessionStillPresent(std::string_view rm_name, const Xid& xid,
                                uint64_t connection_id) {
  return Status(Code::kRmFail,
                "resource manager '" + std::string(rm_name) + "': branch " + xid.ToString() +
                    " may still be held by session " + std::to_string(connection_id) +
                    ", which held it prepared and was ended, and is still on the server; "
                    "finishing it now could be answered OK without effect (see "
                    "src/sql_dialect/mariadb_dialect.h): retry later");
}

std::string KillConnectionSql(uint64_t connection_id) {
  return "KILL CONNECTION " + std::to_string(connection_id);
}

KillRefusal ReadKillRefusal(int error_number) noexcept {
  switch (error_number) {
    case 1094:
      return KillRefusal::kNoSuchSession;
    case 1095:
      return KillRefusal::kNotPermitted;
    default:
      return KillRefusal::kOther;
  }
}

Status KillNotPermitted(std::string_view rm_name, uint64_t connection_id, std::string_view user,
                        std::string_view server_text) {
  return Status(Code::kRmError,
                "resource manager '" + std::string(rm_name) + "': KILL CONNECTION " +
                    std::to_string(connection_id) + " refused (server error 1095: " +
                    EscapeForMessage(server_text) + "): the session belongs to another user; "
                    "open this resource manager as the user of the application's sessions, or "
                    "GRANT CONNECTION ADMIN, PROCESS ON *.* TO '" + EscapeForMessage(user) +
                    "' (PROCESS to watch the session leave the process list); the branch must "
                    "not be finished until the fence succeeds");
}

Status KilledSessionNotVisible(std::string_view rm_name, uint64_t connection_id,
                               std::string_view user) {
  return Status(Code::kRmError,
                "resource manager '" + std::string(rm_name) + "': KILL CONNECTION " +
                    std::to_string(connection_id) +
                    " ended a session that the process list does not show to this user, so "
                    "it cannot be seen to leave, and a branch it prepared may not be detached "
                    "yet: GRANT PROCESS ON *.* TO '" + EscapeForMessage(user) +
                    "' (or open this resource manager as the user of the application's "
                    "sessions); do not finish the branch until the fence succeeds");
}

// ---- The commit marker ---------------------------------------------------------------------

namespace {

// A row's values, in this dialect's literals.
std::string MarkerValues(const Xid& global, char outcome) {
  return internal::MarkerValues(global, outcome, &GtridLiteral);
}

// The columns every read returns, in the order ParseMarkerRow takes them.
constexpr std::string_view kMarkerColumns = "SELECT HEX(gtrid), format_id, outcome FROM ";

MarkerTableProblem ProblemOf(int error_number) {
  switch (error_number) {
    case 1146:  // ER_NO_SUCH_TABLE
      return MarkerTableProblem::kMissing;
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1142:  // ER_TABLEACCESS_DENIED_ERROR
    case 1143:  // ER_COLUMNACCESS_DENIED_ERROR
      return MarkerTableProblem::kNoPrivilege;
    case 1054:  // ER_BAD_FIELD_ERROR
      return MarkerTableProblem::kWrongColumns;
    default:
      return MarkerTableProblem::kNone;
  }
}

}  // namespace

std::string GtridLiteral(const Xid& global) { return "X'" + LowerHex(global.gtrid()) + "'"; }

Result<std::string> CreateMarkerTableSql(std::string_view table) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "CREATE TABLE IF NOT EXISTS " + std::string(table) +
         " (gtrid VARBINARY(64) NOT NULL PRIMARY KEY, format_id INT NOT NULL, node_id INT "
         "UNSIGNED NOT NULL, outcome CHAR(1) NOT NULL CHECK (outcome IN ('C', 'A')), created "
         "TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), KEY xa_commit_marker_by_node "
         "(node_id, created)) ENGINE=InnoDB";
}

Result<std::string> WriteCommitMarkerSql(std::string_view table, const Xid& global) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "INSERT INTO " + std::string(table) + " (gtrid, format_id, node_id, outcome) VALUES " +
         MarkerValues(global, 'C');
}

int64_t SettleWaitSeconds(std::chrono::milliseconds wait) noexcept {
  constexpr int64_t kMaxSeconds = 1073741824;  // innodb_lock_wait_timeout's maximum
  const int64_t ms = wait.count();
  if (ms <= 1000) return 1;
  const int64_t seconds = ms / 1000 + (ms % 1000 != 0 ? 1 : 0);
  return seconds > kMaxSeconds ? kMaxSeconds : seconds;
}

Result<std::string> SettleCommitMarkerSql(std::string_view table, const Xid& global,
                                          std::chrono::milliseconds wait) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return "SET STATEMENT innodb_lock_wait_timeout=" + std::to_string(SettleWaitSeconds(wait)) +
         " FOR INSERT IGNORE INTO " + std::string(table) +
         " (gtrid, format_id, node_id, outcome) VALUES " + MarkerValues(global, 'A');
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
  return std::string(kMarkerColumns) + std::string(table) +
         " WHERE node_id = " + std::to_string(node_id) + " ORDER BY created, gtrid LIMIT " +
         std::to_string(limit);
}

Result<std::vector<std::string>> DeleteCommitMarkersSql(std::string_view table,
                                                        const std::vector<Xid>& globals) {
  XA_RETURN_IF_ERROR(CheckMarkerTable(table, ""));
  return ChunkedMarkerStatements("DELETE FROM " + std::string(table) + " WHERE ", globals,
                                 &GtridLiteral);
}

Status ReadMarkerError(Status mapped, int error_number, MarkerCall call, std::string_view rm_name,
                       std::string_view table, std::string_view user, const Xid* global) {
  if (global != nullptr && call == MarkerCall::kWrite && error_number == 1062) {
    return MarkerAlreadySettled(rm_name, table, *global, mapped.message());
  }
  if (global != nullptr && call == MarkerCall::kSettle && error_number == 1205) {
    return MarkerStillHeld(rm_name, table, *global, mapped.message());
  }
  Status advised =
      WithMarkerTableAdvice(std::move(mapped), ProblemOf(error_number), call, table, user);
  if (error_number != 1142) return advised;
  return Status(advised.code(), advised.message() +
                                    " (MariaDB answers the same for a table in a database that "
                                    "does not exist and on which the user has no privilege)");
}

Result<ServerVersion> ParseServerVersion(std::string_view version_text) {
  ServerVersion version;
  version.text.assign(version_text);
  std::string_view rest = version_text;
  // MariaDB 10.x may announce itself with the replication-compatibility prefix "5.5.5-".
  constexpr std::string_view kCompatPrefix = "5.5.5-";
  bool mariadb = version_text.find("MariaDB") != std::string_view::npos;
  if (mariadb && rest.substr(0, kCompatPrefix.size()) == kCompatPrefix) {
    rest.remove_prefix(kCompatPrefix.size());
  }
  auto dot = [&rest]() {
    if (rest.empty() || rest[0] != '.') return false;
    rest.remove_prefix(1);
    return true;
  };
  if (!TakeNumber(&rest, &version.major) || !dot() || !TakeNumber(&rest, &version.minor) ||
      !dot() || !TakeNumber(&rest, &version.patch)) {
    return Status(Code::kInval, "server version '" + EscapeForMessage(version_text) +
                                    "' is not <major>.<minor>.<patch>");
  }
  version.product = mariadb ? "MariaDB" : "MySQL";
  return version;
}

bool PreparedBranchSurvivesDisconnect(const ServerVersion& v) noexcept {
  auto at_least = [&v](int major, int minor, int patch) {
    if (v.major != major) return v.major > major;
    if (v.minor != minor) return v.minor > minor;
    return v.patch >= patch;
  };
  return v.product == "MariaDB" ? at_least(10, 5, 0) : at_least(5, 7, 7);
}

Status CheckServerVersion(const ServerVersion& version, std::string_view rm_name) {
  if (PreparedBranchSurvivesDisconnect(version)) return Status::Ok();
  std::string minimum = version.product == "MariaDB" ? "10.5" : "5.7.7";
  return Status(Code::kConfig,
                "resource manager '" + std::string(rm_name) + "': server " + version.product +
                    " " + EscapeForMessage(version.text) +
                    " rolls back a prepared XA branch when its session disconnects or the "
                    "server shuts down, which breaks two-phase commit; upgrade the server to " +
                    version.product + " " + minimum + " or later");
}

bool IsConnectionLost(int error_number) noexcept {
  switch (error_number) {
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1153:  // ER_NET_PACKET_TOO_LARGE
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1927:  // ER_CONNECTION_KILLED
    case 2002:  // CR_CONNECTION_ERROR (socket)
    case 2003:  // CR_CONN_HOST_ERROR
    case 2005:  // CR_UNKNOWN_HOST
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2014:  // CR_COMMANDS_OUT_OF_SYNC
    case 2026:  // CR_SSL_CONNECTION_ERROR
    case 2055:  // CR_SERVER_LOST_EXTENDED
      return true;
    default:
      return false;
  }
}

Code CodeForMariaDbError(int error_number) noexcept {
  switch (error_number) {
    case 1397:
      return Code::kNoTa;
    case 1398:
      return Code::kInval;
    case 1399:
      return Code::kRmFail;
    case 1400:
      return Code::kOutside;
    case 1401:
      return Code::kRmError;
    case 1402:
      return Code::kRbRollback;
    case 1440:
      return Code::kDupId;
    case 1613:
    case 1205:
      return Code::kRbTimeout;
    case 1614:
    case 1213:
      return Code::kRbDeadlock;
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1049:  // ER_BAD_DB_ERROR
    case 1698:  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
      return Code::kConfig;
    case 0:
      return Code::kRmFail;
    default:
      return IsConnectionLost(error_number) ? Code::kRmFail : Code::kRmError;
  }
}

bool LostConnectionLeavesBranchInDoubt(std::string_view operation) noexcept {
  for (std::string_view verb : {"XA PREPARE", "XA COMMIT", "XA ROLLBACK"}) {
    if (operation.substr(0, verb.size()) == verb) return true;
  }
  return false;
}

Status MapMariaDbError(int error_number, std::string_view sqlstate, std::string_view text,
                       std::string_view rm_name, const Xid* xid, std::string_view operation) {
  Code code = CodeForMariaDbError(error_number);
  std::string message = "resource manager '" + std::string(rm_name) + "': " +
                        std::string(operation);
  if (xid != nullptr) message += " of xid " + xid->ToString();
  message += " failed: ";
  if (error_number == 0) {
    message += "driver error without a server answer";
  } else {
    message += "server error " + std::to_string(error_number);
  }
  if (!sqlstate.empty()) message += " (SQLSTATE " + EscapeForMessage(sqlstate) + ")";
  message += ": " + EscapeForMessage(text) + " -- " +
             std::string(AdviceFor(code, error_number, operation));
  return Status(code, std::move(message));
}

}  // namespace xa::internal::mariadb
