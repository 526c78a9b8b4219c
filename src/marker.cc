#include "xa/marker.h"

namespace xa {
namespace {

constexpr size_t kMaxIdentifier = 64;  // MariaDB's limit, and PostgreSQL's 63 bytes plus one

bool IsIdentifierStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsIdentifierChar(char c) { return IsIdentifierStart(c) || (c >= '0' && c <= '9'); }

// Why `part` is no plain identifier, "" when it is one.
std::string IdentifierError(std::string_view part, std::string_view what) {
  if (part.empty()) return std::string(what) + " is empty";
  if (part.size() > kMaxIdentifier) {
    return std::string(what) + " is longer than " + std::to_string(kMaxIdentifier) + " characters";
  }
  if (!IsIdentifierStart(part[0])) {
    return std::string(what) + " must start with a letter or '_'";
  }
  for (char c : part) {
    if (!IsIdentifierChar(c)) {
      return std::string(what) + " may hold only ASCII letters, digits and '_'";
    }
  }
  return "";
}

}  // namespace

std::string_view MarkerOutcomeName(MarkerOutcome outcome) noexcept {
  switch (outcome) {
    case MarkerOutcome::kCommitted: return "committed";
    case MarkerOutcome::kAborted: return "aborted";
  }
  return "unknown";
}

std::string MarkerTableNameError(std::string_view table) {
  const size_t dot = table.find('.');
  std::string error;
  if (dot == std::string_view::npos) {
    error = IdentifierError(table, "the table name");
  } else {
    error = IdentifierError(table.substr(0, dot), "the schema name before '.'");
    if (error.empty()) error = IdentifierError(table.substr(dot + 1), "the table name after '.'");
  }
  if (error.empty()) return "";
  return "marker table '" + std::string(table) + "': " + error;
}

}  // namespace xa
