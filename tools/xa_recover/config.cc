#include "tools/xa_recover/config.h"

#include <charconv>
#include <cstdlib>
#include <set>
#include <sstream>

#include "src/base/escape.h"
#include "src/base/trusted_file.h"

namespace xa::recover_tool {
namespace {

using internal::EscapeForMessage;

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

// Text from the configuration, quoted and escaped for a message.
std::string Quoted(const std::string& text) { return "'" + EscapeForMessage(text) + "'"; }

Status ConfigError(const std::string& path, int line, const std::string& what) {
  return Status(Code::kConfig, EscapeForMessage(path) +
                                   (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " +
                                   what);
}

// A trusted file's refusal, placed at the line of the configuration that named it.
Result<std::string> ReadTrustedFile(const std::string& file, const internal::TrustedFileRules& rules,
                                    const std::string& config_path, int line) {
  // The configuration's own path already starts the message.
  const std::string name = file == config_path
                               ? std::string(rules.what)
                               : std::string(rules.what) + " " + EscapeForMessage(file);
  auto contents = internal::ReadTrustedFile(file, rules, name);
  if (!contents.ok()) return ConfigError(config_path, line, contents.status().message());
  return contents;
}

Result<std::string> ReadPasswordFile(const std::string& file, const std::string& config_path,
                                     int line) {
  static constexpr internal::TrustedFileRules kRules{
      "password_file", false, false, 077, "600", kMaxPasswordFileBytes, "xa-recover"};
  auto secret = ReadTrustedFile(file, kRules, config_path, line);
  if (!secret.ok()) return secret;
  std::string text = std::move(secret).value();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// What makes a line other than plain text, or "": a control character (C0 but tab, DEL, or a
// C1 control, which terminals may act on) or bytes that are not well-formed UTF-8. Refusing them
// keeps every name and value printable wherever it is echoed later (driver messages included).
std::string NotPlainText(const std::string& line) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto hex = [](unsigned char c) { return std::string("0x") + kHex[c >> 4] + kHex[c & 0xf]; };
  for (size_t i = 0; i < line.size();) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    const size_t length = internal::Utf8SequenceLength(std::string_view(line).substr(i));
    if (length == 0) return "bytes that are not UTF-8 (" + hex(c) + ")";
    if ((c < 0x20 && c != '\t') || c == 0x7f) return "control character " + hex(c);
    if (c == 0xc2 && static_cast<unsigned char>(line[i + 1]) < 0xa0) {
      return "control character U+00" + hex(static_cast<unsigned char>(line[i + 1])).substr(2);
    }
    i += length;
  }
  return "";
}

// log_dir without trailing slashes, so that the log's own symlink check (lstat) sees the
// directory entry itself: lstat("link/") follows the link. "" when it ends in "." or "..", which
// would do the same.
std::string LogDirWithoutTrailingSlashes(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  size_t slash = dir.rfind('/');
  std::string last = slash == std::string::npos ? dir : dir.substr(slash + 1);
  if (last == "." || last == "..") return "";
  return dir;
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
                                     std::to_string(setting.max) + ", not " + Quoted(text));
  }
  return value;
}

std::string RmConfig::Get(const std::string& key) const {
  auto it = settings.find(key);
  return it == settings.end() ? "" : it->second;
}

Result<Config> ParseConfig(const std::string& text, const std::string& path) {
  Config config;
  config.path = path;
  std::istringstream in(text);
  std::string raw;
  int line_no = 0;
  RmConfig* current = nullptr;
  std::set<std::string> names;
  // Where each key of the current section was set, to refuse a second setting.
  std::map<std::string, int> seen;
  bool have_log_dir = false, have_node = false;
  auto number = [&](const IntegerSetting& setting, const std::string& value) -> Result<int64_t> {
    auto parsed = ParseInteger(setting, value);
    if (!parsed.ok()) return ConfigError(path, line_no, parsed.status().message());
    return parsed;
  };
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
      if (line.back() != ']' || line.rfind("[rm ", 0) != 0) {
        return ConfigError(path, line_no, "expected a section header '[rm <name>]'");
      }
      std::string name = Trim(line.substr(4, line.size() - 5));
      if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
        return ConfigError(path, line_no, "a resource manager name must be one word");
      }
      if (!names.insert(name).second) {
        return ConfigError(path, line_no, "resource manager " + Quoted(name) + " is defined twice");
      }
      config.rms.push_back(RmConfig{name, "", {}, std::nullopt, std::nullopt, "", line_no});
      current = &config.rms.back();
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
      const std::string section =
          current == nullptr ? "" : " in [rm " + EscapeForMessage(current->name) + "]";
      return ConfigError(path, line_no,
                         (slot == key ? Quoted(key) + " is set twice" + section
                                      : "password_file and password_env are both set" + section) +
                             " (lines " + std::to_string(it->second) + " and " +
                             std::to_string(line_no) + "): keep one");
    }
    if (current == nullptr) {
      if (key == "log_dir") {
        config.log_dir = LogDirWithoutTrailingSlashes(value);
        if (!value.empty() && config.log_dir.empty()) {
          return ConfigError(path, line_no,
                             "log_dir must name the log's directory itself, not end in '.' or "
                             "'..'");
        }
        have_log_dir = !config.log_dir.empty();
      } else if (key == "node_id") {
        auto node = number(kNodeId, value);
        if (!node.ok()) return node.status();
        config.node_id = static_cast<uint32_t>(*node);
        have_node = true;
      } else if (key == "orphan_min_age_ms") {
        auto ms = number(kOrphanMinAgeMs, value);
        if (!ms.ok()) return ms.status();
        config.orphan_min_age = std::chrono::milliseconds(*ms);
      } else {
        return ConfigError(path, line_no,
                           "unknown setting " + Quoted(key) +
                               " (known: log_dir, node_id, orphan_min_age_ms)");
      }
      continue;
    }
    if (key == "driver") {
      if (value != "mysql" && value != "odbc") {
        return ConfigError(path, line_no, "driver must be 'mysql' or 'odbc', not " + Quoted(value));
      }
      current->driver = value;
    } else if (key == "password_file") {
      auto secret = ReadPasswordFile(value, path, line_no);
      if (!secret.ok()) return secret.status();
      current->password = std::move(secret).value();
    } else if (key == "password_env") {
      const char* secret = std::getenv(value.c_str());
      if (secret == nullptr) {
        return ConfigError(path, line_no,
                           "environment variable " + EscapeForMessage(value) + " is not set");
      }
      current->password = secret;
    } else if (key == "port") {
      auto port = number(kPort, value);
      if (!port.ok()) return port.status();
      current->port = static_cast<int>(*port);
    } else if (key == "connect_timeout_s") {
      auto seconds = number(kConnectTimeoutS, value);
      if (!seconds.ok()) return seconds.status();
      current->connect_timeout = std::chrono::seconds(*seconds);
    } else if (key == "dialect") {
      if (value != "postgres" && value != "postgresql" && value != "mariadb" && value != "mysql") {
        return ConfigError(path, line_no,
                           "dialect must be 'postgres' or 'mariadb', not " + Quoted(value));
      }
      current->settings[key] = value;
    } else {
      static const std::set<std::string> kKnown = {"host", "user", "database", "socket", "dsn"};
      if (kKnown.count(key) == 0) {
        return ConfigError(path, line_no,
                           "unknown setting " + Quoted(key) + " in [rm " +
                               EscapeForMessage(current->name) +
                               "] (known: driver, host, port, user, database, socket, dsn, "
                               "dialect, connect_timeout_s, password_file, password_env)");
      }
      current->settings[key] = value;
    }
  }
  if (!have_log_dir) return ConfigError(path, 0, "log_dir is required");
  if (!have_node) return ConfigError(path, 0, "node_id is required");
  if (config.rms.empty()) {
    return ConfigError(path, 0, "no resource manager: add a section '[rm <name>]' for each");
  }
  for (const RmConfig& rm : config.rms) {
    const std::string section = "[rm " + EscapeForMessage(rm.name) + "]";
    if (rm.driver.empty()) {
      return ConfigError(path, rm.line, section + " needs 'driver = mysql|odbc'");
    }
    if (rm.driver == "odbc" && rm.Get("dsn").empty()) {
      return ConfigError(path, rm.line, section + " needs 'dsn = <ODBC DSN>'");
    }
    if (rm.driver == "mysql" && rm.Get("host").empty() && rm.Get("socket").empty()) {
      return ConfigError(path, rm.line, section + " needs 'host' or 'socket'");
    }
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  static constexpr internal::TrustedFileRules kRules{
      "the configuration file", true, true, 022, "go-w", kMaxConfigBytes, "xa-recover"};
  auto text = ReadTrustedFile(path, kRules, path, 0);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

}  // namespace xa::recover_tool
