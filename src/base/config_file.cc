#include "src/base/config_file.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <set>
#include <sstream>
#include <utility>

#include "src/base/escape.h"
#include "src/base/trusted_file.h"

namespace xa::internal {
namespace {

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

Status ConfigError(const std::string& path, int line, const std::string& what) {
  return Status(Code::kConfig, EscapeForMessage(path) +
                                   (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                                   what);
}

// A trusted file's refusal, placed at the line of the configuration that named it.
Result<std::string> ReadTrustedFileFor(const std::string& file, const TrustedFileRules& rules,
                                       const std::string& config_path, int line) {
  // The configuration's own path already starts the message.
  const std::string name = file == config_path
                               ? std::string(rules.what)
                               : std::string(rules.what) + " " + EscapeForMessage(file);
  auto contents = ReadTrustedFile(file, rules, name);
  if (!contents.ok()) return ConfigError(config_path, line, contents.status().message());
  return contents;
}

// What makes a line other than plain text, or "": a control character (C0 but tab, DEL, or a
// C1 control, which terminals may act on) or bytes that are not well-formed UTF-8. Refusing them
// keeps every name and value printable wherever it is echoed later (driver messages included).
std::string NotPlainText(const std::string& line) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto hex = [](unsigned char c) { return std::string("0x") + kHex[c >> 4] + kHex[c & 0xf]; };
  for (size_t i = 0; i < line.size();) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    const size_t length = Utf8SequenceLength(std::string_view(line).substr(i));
    if (length == 0) return "bytes that are not UTF-8 (" + hex(c) + ")";
    if ((c < 0x20 && c != '\t') || c == 0x7f) return "control character " + hex(c);
    if (c == 0xc2 && static_cast<unsigned char>(line[i + 1]) < 0xa0) {
      return "control character U+00" + hex(static_cast<unsigned char>(line[i + 1])).substr(2);
    }
    i += length;
  }
  return "";
}

// "'[rm <name>]'" or "'[agent <name>]' or '[rm <name>]'".
std::string ExpectedHeaders(const ConfigGrammar& grammar) {
  std::string text;
  for (size_t i = 0; i < grammar.section_kinds.size(); ++i) {
    if (i > 0) text += " or ";
    text += "'[" + std::string(grammar.section_kinds[i].kind) + " <name>]'";
  }
  return text;
}

std::string Joined(std::span<const std::string_view> words) {
  std::string text;
  for (std::string_view word : words) {
    if (!text.empty()) text += ", ";
    text += word;
  }
  return text;
}

}  // namespace

Result<int64_t> ParseInteger(const IntegerSetting& setting, const std::string& text) {
  int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  // from_chars takes no '+', no blanks and no base prefix; the whole text must be the number.
  auto [stop, error] = std::from_chars(begin, end, value, 10);
  if (text.empty() || error != std::errc() || stop != end || value < setting.min ||
      value > setting.max) {
    return Status(Code::kConfig, std::string(setting.key) + " must be a whole number from " +
                                     std::to_string(setting.min) + " to " +
                                     std::to_string(setting.max) + ", not " +
                                     QuotedForMessage(text));
  }
  return value;
}

std::string QuotedForMessage(std::string_view text) { return "'" + EscapeForMessage(text) + "'"; }

const ConfigEntry* ConfigSection::Find(std::string_view key) const {
  for (const ConfigEntry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

std::string ConfigSection::Label() const {
  return kind.empty() ? "" : "[" + kind + " " + EscapeForMessage(name) + "]";
}

Status ConfigFile::Error(int line, const std::string& what) const {
  return ConfigError(path, line, what);
}

Status ConfigFile::UnknownKey(const ConfigSection& section, const ConfigEntry& entry,
                              std::span<const std::string_view> known) const {
  return Error(entry.line, "unknown setting " + QuotedForMessage(entry.key) +
                               (section.kind.empty() ? "" : " in " + section.Label()) +
                               " (known: " + Joined(known) + ")");
}

Status ConfigFile::RefuseUnknownKeys(const ConfigSection& section,
                                     std::span<const std::string_view> known) const {
  for (const ConfigEntry& entry : section.entries) {
    if (std::find(known.begin(), known.end(), entry.key) == known.end()) {
      return UnknownKey(section, entry, known);
    }
  }
  return Status::Ok();
}

Result<int64_t> ConfigFile::Integer(const IntegerSetting& setting, const ConfigEntry& entry) const {
  auto parsed = ParseInteger(setting, entry.value);
  if (!parsed.ok()) return Error(entry.line, parsed.status().message());
  return parsed;
}

Result<std::string> ConfigFile::Password(const ConfigEntry& entry) const {
  if (entry.key == "password_env") {
    const char* secret = std::getenv(entry.value.c_str());
    if (secret == nullptr) {
      return Error(entry.line,
                   "environment variable " + EscapeForMessage(entry.value) + " is not set");
    }
    return std::string(secret);
  }
  const TrustedFileRules rules{"password_file",       false,  false, 077, "600",
                               kMaxPasswordFileBytes, program};
  auto secret = ReadTrustedFileFor(entry.value, rules, path, entry.line);
  if (!secret.ok()) return secret;
  std::string text = std::move(secret).value();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

Result<std::string> ConfigFile::Directory(const ConfigEntry& entry) const {
  std::string dir = entry.value;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  size_t slash = dir.rfind('/');
  std::string last = slash == std::string::npos ? dir : dir.substr(slash + 1);
  if (last == "." || last == "..") {
    return Error(entry.line, entry.key + " must name the log's directory itself, not end in '.' "
                                         "or '..'");
  }
  return dir;
}

Result<std::string> ReadConfigFile(const std::string& path, std::string_view program) {
  const TrustedFileRules rules{"the configuration file", true,   true, 022, "go-w",
                               kMaxConfigBytes,          program};
  return ReadTrustedFileFor(path, rules, path, 0);
}

Result<ConfigFile> ParseConfigText(const std::string& text, const std::string& path,
                                   const ConfigGrammar& grammar) {
  ConfigFile file;
  file.path = path;
  file.program = std::string(grammar.program);
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  ConfigSection* current = &file.top;
  std::set<std::pair<std::string, std::string>> sections_seen;
  // Where each key of the current section was set, to refuse a second setting.
  std::map<std::string, int> seen;
  while (std::getline(in, raw)) {
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    if (std::string what = NotPlainText(raw); !what.empty()) {
      return ConfigError(path, line_no, what + " in the line: a configuration is plain UTF-8 text");
    }
    size_t hash = raw.find('#');
    std::string line = Trim(hash == std::string::npos ? raw : raw.substr(0, hash));
    if (line.empty()) continue;
    if (line.front() == '[') {
      const SectionKind* kind = nullptr;
      for (const SectionKind& candidate : grammar.section_kinds) {
        if (line.back() == ']' && line.rfind("[" + std::string(candidate.kind) + " ", 0) == 0) {
          kind = &candidate;
        }
      }
      if (kind == nullptr) {
        return ConfigError(path, line_no, "expected a section header " + ExpectedHeaders(grammar));
      }
      const size_t prefix = kind->kind.size() + 2;
      std::string name = Trim(line.substr(prefix, line.size() - prefix - 1));
      if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
        return ConfigError(path, line_no,
                           std::string(kind->noun_with_article) + " name must be one word");
      }
      if (!sections_seen.emplace(std::string(kind->kind), name).second) {
        return ConfigError(path, line_no,
                           std::string(kind->noun) + " " + QuotedForMessage(name) +
                               " is defined twice");
      }
      file.sections.push_back(ConfigSection{std::string(kind->kind), name, line_no, {}});
      current = &file.sections.back();
      seen.clear();
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return ConfigError(path, line_no, "expected 'key = value'");
    }
    std::string key = Trim(line.substr(0, eq));
    std::string value = Trim(line.substr(eq + 1));
    if (key == "password") {
      return ConfigError(path, line_no,
                         "passwords are not accepted in the configuration file: use "
                         "password_file (mode 0600) or password_env");
    }
    // Two password sources are a duplicate too: which one wins would be a guess.
    const std::string slot = key == "password_env" ? "password_file" : key;
    if (auto [it, first] = seen.emplace(slot, line_no); !first) {
      const std::string section = current->kind.empty() ? "" : " in " + current->Label();
      return ConfigError(path, line_no,
                         (slot == key ? QuotedForMessage(key) + " is set twice" + section
                                      : "password_file and password_env are both set" + section) +
                             " (lines " + std::to_string(it->second) + " and " +
                             std::to_string(line_no) + "): keep one");
    }
    current->entries.push_back(ConfigEntry{std::move(key), std::move(value), line_no});
  }
  return file;
}

std::string RmConfig::Get(const std::string& key) const {
  auto it = settings.find(key);
  return it == settings.end() ? "" : it->second;
}

Result<RmConfig> ReadRmSection(const ConfigFile& file, const ConfigSection& section) {
  RmConfig rm{section.name, "", {}, std::nullopt, std::nullopt, "", section.line};
  for (const ConfigEntry& entry : section.entries) {
    const std::string& key = entry.key;
    const std::string& value = entry.value;
    if (key == "driver") {
      if (value != "mysql" && value != "odbc") {
        return file.Error(entry.line,
                          "driver must be 'mysql' or 'odbc', not " + QuotedForMessage(value));
      }
      rm.driver = value;
    } else if (key == "password_file" || key == "password_env") {
      auto secret = file.Password(entry);
      if (!secret.ok()) return secret.status();
      rm.password = std::move(secret).value();
    } else if (key == "port") {
      auto port = file.Integer(kPort, entry);
      if (!port.ok()) return port.status();
      rm.port = static_cast<int>(*port);
    } else if (key == "connect_timeout_s") {
      auto seconds = file.Integer(kConnectTimeoutS, entry);
      if (!seconds.ok()) return seconds.status();
      rm.connect_timeout = std::chrono::seconds(*seconds);
    } else if (key == "dialect") {
      if (value != "postgres" && value != "postgresql" && value != "mariadb" && value != "mysql") {
        return file.Error(entry.line, "dialect must be 'postgres' or 'mariadb', not " +
                                          QuotedForMessage(value));
      }
      rm.settings[key] = value;
    } else if (std::find(std::begin(kRmKeys), std::end(kRmKeys), key) != std::end(kRmKeys)) {
      rm.settings[key] = value;  // host, user, database, socket, dsn: text
    } else {
      return file.UnknownKey(section, entry, kRmKeys);
    }
  }
  return rm;
}

Status CheckRmComplete(const ConfigFile& file, const RmConfig& rm) {
  const std::string section = "[rm " + EscapeForMessage(rm.name) + "]";
  if (rm.driver.empty()) {
    return file.Error(rm.line, section + " needs 'driver = mysql|odbc'");
  }
  if (rm.driver == "odbc" && rm.Get("dsn").empty()) {
    return file.Error(rm.line, section + " needs 'dsn = <ODBC DSN>'");
  }
  if (rm.driver == "mysql" && rm.Get("host").empty() && rm.Get("socket").empty()) {
    return file.Error(rm.line, section + " needs 'host' or 'socket'");
  }
  return Status::Ok();
}

}  // namespace xa::internal
