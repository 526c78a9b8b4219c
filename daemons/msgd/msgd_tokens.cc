#include "daemons/msgd/msgd_tokens.h"

#include <algorithm>

#include "src/base/config_file.h"
#include "src/base/escape.h"
#include "src/base/trusted_file.h"

namespace xa::msg {
namespace {

constexpr internal::TrustedFileRules kTokenFileRules{
    "the tokens file", /*follow_symlink=*/false, /*root_may_own=*/false, 077, "600",
    internal::kMaxConfigBytes, "xa-msgd"};

bool Printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// Equal in time that depends on the lengths only, never on where the bytes differ.
bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return difference == 0;
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t at = 0;
  while (at < line.size()) {
    while (at < line.size() && (line[at] == ' ' || line[at] == '\t')) ++at;
    size_t end = at;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t') ++end;
    if (end > at) words.push_back(line.substr(at, end - at));
    at = end;
  }
  return words;
}

}  // namespace

std::string_view RoleName(Role role) noexcept {
  switch (role) {
    case Role::kProducer: return "producer";
    case Role::kConsumer: return "consumer";
    case Role::kOperator: return "operator";
    case Role::kMerchant: return "merchant";
  }
  return "?";
}

Result<TokenTable> TokenTable::Parse(std::string_view text, const std::string& path) {
  TokenTable table;
  int line_number = 0;
  auto error = [&](const std::string& what) {
    return Status(Code::kConfig, internal::EscapeForMessage(path) + ":" +
                                     std::to_string(line_number) + ": " + what);
  };
  while (!text.empty()) {
    ++line_number;
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> words = Words(line);
    if (words.empty() || words[0].starts_with("#")) continue;
    if (words.size() != 3) {
      return error("a line is '<role> <name> <token>' (role producer, consumer, operator or "
                   "merchant); this one has " + std::to_string(words.size()) + " words");
    }
    Entry entry;
    if (words[0] == "producer") {
      entry.caller.role = Role::kProducer;
    } else if (words[0] == "consumer") {
      entry.caller.role = Role::kConsumer;
    } else if (words[0] == "operator") {
      entry.caller.role = Role::kOperator;
    } else if (words[0] == "merchant") {
      entry.caller.role = Role::kMerchant;
    } else {
      return error("role must be producer, consumer, operator or merchant, not " +
                   internal::QuotedForMessage(words[0]));
    }
    if (words[1].size() > 64 || !Printable(words[1])) {
      return error("a name is 1 to 64 printable ASCII characters");
    }
    entry.caller.name = std::string(words[1]);
    // The token itself is never quoted back.
    if (words[2].size() < kMinTokenSize || words[2].size() > kMaxTokenSize ||
        !Printable(words[2])) {
      return error("the token of " + internal::QuotedForMessage(words[1]) + " must be " +
                   std::to_string(kMinTokenSize) + " to " + std::to_string(kMaxTokenSize) +
                   " printable ASCII characters (e.g. openssl rand -hex 32)");
    }
    entry.token = std::string(words[2]);
    for (const Entry& other : table.entries_) {
      if (other.caller.name == entry.caller.name) {
        return error("name " + internal::QuotedForMessage(words[1]) + " is listed twice");
      }
      if (ConstantTimeEqual(other.token, entry.token)) {
        return error("the token of " + internal::QuotedForMessage(words[1]) +
                     " is also the token of " + internal::QuotedForMessage(other.caller.name) +
                     ": each caller needs its own");
      }
    }
    table.entries_.push_back(std::move(entry));
  }
  if (table.entries_.empty()) {
    return Status(Code::kConfig, internal::EscapeForMessage(path) +
                                     ": no caller: add lines '<role> <name> <token>'");
  }
  return table;
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  Result<std::string> text = internal::ReadTrustedFile(path, kTokenFileRules);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

std::optional<Caller> TokenTable::Authenticate(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (!authorization.starts_with(kBearer)) return std::nullopt;
  std::string_view token = authorization.substr(kBearer.size());
  std::optional<Caller> found;
  for (const Entry& entry : entries_) {  // every entry is compared: no early exit
    if (ConstantTimeEqual(entry.token, token)) found = entry.caller;
  }
  return found;
}

}  // namespace xa::msg
