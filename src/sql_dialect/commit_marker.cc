#include "src/sql_dialect/commit_marker.h"

#include <algorithm>
#include <cstddef>

#include "src/base/byte_text.h"
#include "src/base/escape.h"

namespace xa::internal {
namespace {

std::string Where(std::string_view rm_name, std::string_view table) {
  return "resource manager '" + std::string(rm_name) + "': marker table '" + std::string(table) +
         "'";
}

std::string Shown(const std::optional<std::string>& text) {
  return text.has_value() ? "'" + EscapeForMessage(*text) + "'" : "NULL";
}

}  // namespace

std::string GtridList(const std::vector<Xid>& globals, GtridLiteralFn literal) {
  std::string list;
  for (const Xid& global : globals) {
    if (!list.empty()) list.push_back(',');
    list += literal(global);
  }
  return list;
}

std::string MarkerValues(const Xid& global, char outcome, GtridLiteralFn literal) {
  return "(" + literal(global) + "," + std::to_string(global.format_id()) + "," +
         std::to_string(global.NodeId().value_or(0)) + ",'" + std::string(1, outcome) + "')";
}

std::vector<std::vector<Xid>> MarkerChunks(const std::vector<Xid>& globals) {
  std::vector<std::vector<Xid>> chunks;
  for (size_t at = 0; at < globals.size(); at += kMarkerChunkSize) {
    const size_t end = std::min(globals.size(), at + kMarkerChunkSize);
    chunks.emplace_back(globals.begin() + static_cast<std::ptrdiff_t>(at),
                        globals.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return chunks;
}

std::vector<std::string> ChunkedMarkerStatements(std::string_view prefix,
                                                 const std::vector<Xid>& globals,
                                                 GtridLiteralFn literal) {
  std::vector<std::string> statements;
  for (const std::vector<Xid>& chunk : MarkerChunks(globals)) {
    statements.push_back(std::string(prefix) + "gtrid IN (" + GtridList(chunk, literal) + ")");
  }
  return statements;
}

std::string_view MarkerCallName(MarkerCall call) noexcept {
  switch (call) {
    case MarkerCall::kWrite:
      return "WriteCommitMarker";
    case MarkerCall::kSettle:
      return "SettleCommitMarker";
    case MarkerCall::kRead:
      return "ReadCommitMarkers";
    case MarkerCall::kList:
      return "ListCommitMarkers";
    case MarkerCall::kDelete:
      return "DeleteCommitMarkers";
  }
  return "commit marker call";
}

std::string_view MarkerCallPrivilege(MarkerCall call) noexcept {
  switch (call) {
    case MarkerCall::kWrite:
      return "INSERT";
    case MarkerCall::kSettle:
      return "INSERT and SELECT";
    case MarkerCall::kRead:
    case MarkerCall::kList:
      return "SELECT";
    case MarkerCall::kDelete:
      return "DELETE (and SELECT, for its WHERE clause)";
  }
  return "SELECT, INSERT and DELETE";
}

Status CheckMarkerTable(std::string_view table, std::string_view rm_name) {
  std::string error = MarkerTableNameError(table);
  if (error.empty()) return Status::Ok();
  std::string where =
      rm_name.empty() ? "" : "resource manager '" + std::string(rm_name) + "': ";
  return Status(Code::kInval, where + EscapeForMessage(error) +
                                  "; nothing was sent to the server (the name goes into SQL as "
                                  "it is, so only plain identifiers are accepted)");
}

Status WithMarkerTableAdvice(Status mapped, MarkerTableProblem problem, MarkerCall call,
                             std::string_view table, std::string_view user) {
  const std::string name(table);
  const std::string who = user.empty() ? "the resource manager's user"
                                       : "'" + EscapeForMessage(user) + "'";
  std::string advice;
  switch (problem) {
    case MarkerTableProblem::kNone:
      return mapped;
    case MarkerTableProblem::kMissing:
      advice = "the marker table '" + name +
               "' does not exist (or its schema does not): create it with the schema in "
               "docs/marker-commit.md (\"The marker table\"); xa never creates it itself";
      break;
    case MarkerTableProblem::kNoPrivilege:
      advice = std::string(MarkerCallName(call)) + " needs the " +
               std::string(MarkerCallPrivilege(call)) + " privilege on the marker table '" +
               name + "', which " + who + " lacks: GRANT SELECT, INSERT, DELETE ON " + name +
               " TO " + who + " (the privileges docs/marker-commit.md lists)";
      break;
    case MarkerTableProblem::kWrongColumns:
      advice = "the marker table '" + name +
               "' lacks a column of the documented schema (gtrid, format_id, node_id, outcome, "
               "created): recreate it as docs/marker-commit.md shows";
      break;
  }
  return Status(mapped.code(), mapped.message() + " -- " + advice);
}

Status MarkerAlreadySettled(std::string_view rm_name, std::string_view table, const Xid& global,
                            std::string_view server_error) {
  return Status(Code::kDupId,
                Where(rm_name, table) + " already holds a row for transaction " +
                    global.Global().ToString() +
                    ": recovery has settled it as aborted (it found no marker and wrote 'A'), so "
                    "its marker can never be written: roll the transaction back (" +
                    EscapeForMessage(server_error) + ")");
}

Status MarkerStillHeld(std::string_view rm_name, std::string_view table, const Xid& global,
                       std::string_view server_error) {
  return Status(Code::kRetry,
                Where(rm_name, table) + ": the row of transaction " + global.Global().ToString() +
                    " was still held by another transaction (its marker branch in flight, or a "
                    "session the server has not cleaned up yet) when the wait ended; nothing was "
                    "settled: settle again later (" + EscapeForMessage(server_error) + ")");
}

Status MarkerCallRefused(std::string_view rm_name, MarkerCall call, std::string_view why) {
  return Status(Code::kProto, "resource manager '" + std::string(rm_name) + "': " +
                                  std::string(MarkerCallName(call)) + " refused: " +
                                  std::string(why));
}

Result<MarkerOutcome> ParseMarkerOutcome(const std::optional<std::string>& text,
                                         std::string_view rm_name, std::string_view table,
                                         std::string_view gtrid_hex) {
  if (text.has_value()) {
    std::string_view value = *text;
    while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
    if (value == "C") return MarkerOutcome::kCommitted;
    if (value == "A") return MarkerOutcome::kAborted;
  }
  return Status(Code::kRmError, Where(rm_name, table) + ": the row of gtrid " +
                                    EscapeForMessage(gtrid_hex) + " has outcome " + Shown(text) +
                                    ", which is neither 'C' (committed) nor 'A' (aborted): the "
                                    "table is damaged or written by something other than xa; "
                                    "check it before settling this transaction by hand");
}

Result<MarkerRow> ParseMarkerRow(const std::optional<std::string>& gtrid_hex,
                                 const std::optional<std::string>& format_id,
                                 const std::optional<std::string>& outcome,
                                 std::string_view rm_name, std::string_view table) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kRmError, Where(rm_name, table) + " holds a row that is no valid marker "
                                      "(gtrid " + Shown(gtrid_hex) + ", format_id " +
                                      Shown(format_id) + ", outcome " + Shown(outcome) + "): " +
                                      std::string(why) +
                                      "; the table is damaged or written by something other "
                                      "than xa: check it");
  };
  std::string gtrid;
  if (!gtrid_hex.has_value() || !ParseHex(*gtrid_hex, &gtrid)) return bad("the gtrid is no hex");
  int64_t format = -1;
  if (!format_id.has_value() || !ParseCanonicalDecimal(*format_id, &format)) {
    return bad("the format ID is no non-negative decimal");
  }
  Result<Xid> global = Xid::Make(format, gtrid, "");
  if (!global.ok()) return bad(global.status().message());
  Result<MarkerOutcome> read = ParseMarkerOutcome(outcome, rm_name, table, *gtrid_hex);
  if (!read.ok()) return read.status();
  return MarkerRow{std::move(global).value(), *read};
}

Result<std::vector<MarkerRow>> ParseMarkerRows(const std::vector<MarkerTextRow>& rows,
                                               std::string_view rm_name, std::string_view table) {
  std::vector<MarkerRow> parsed;
  parsed.reserve(rows.size());
  for (const MarkerTextRow& row : rows) {
    if (row.size() != 3) {
      return Status(Code::kRmError, Where(rm_name, table) + ": a read returned a row of " +
                                        std::to_string(row.size()) +
                                        " columns, expected 3 (gtrid, format_id, outcome)");
    }
    Result<MarkerRow> one = ParseMarkerRow(row[0], row[1], row[2], rm_name, table);
    if (!one.ok()) return one.status();
    parsed.push_back(std::move(one).value());
  }
  return parsed;
}

Status MarkerRowVanished(std::string_view rm_name, std::string_view table, const Xid& global) {
  return Status(Code::kRmError,
                Where(rm_name, table) + ": the row of transaction " + global.Global().ToString() +
                    " was settled but is gone when read back: something deleted it in between "
                    "(DeleteCommitMarkers of a transaction that is still being settled?); settle "
                    "again, and make sure rows are deleted only once every branch is finished");
}

}  // namespace xa::internal
