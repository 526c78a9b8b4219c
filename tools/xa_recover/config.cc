#include "tools/xa_recover/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace xa::recover_tool {
namespace {

std::string Trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  size_t end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

Status ConfigError(const std::string& path, int line, const std::string& what) {
  return Status(Code::kConfig,
                path + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + what);
}

// Reads a secret file, refusing one that anybody but its owner may read or that is not ours.
Result<std::string> ReadPasswordFile(const std::string& file, const std::string& config_path,
                                     int line) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return ConfigError(config_path, line,
                       "cannot open password_file " + file + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return ConfigError(config_path, line, "password_file " + file + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return ConfigError(config_path, line,
                       "password_file " + file + " may be read by others (mode " +
                           std::to_string((st.st_mode >> 6) & 7) +
                           std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                           "): run `chmod 600 " + file + "`");
  }
  if (st.st_uid != ::geteuid()) {
    ::close(fd);
    return ConfigError(config_path, line,
                       "password_file " + file + " is owned by another user (uid " +
                           std::to_string(st.st_uid) + "): it must belong to the user running "
                           "xa-recover");
  }
  std::string secret;
  char buffer[512];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) secret.append(buffer, n);
  ::close(fd);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  return secret;
}

}  // namespace

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
  bool have_log_dir = false, have_node = false;
  while (std::getline(in, raw)) {
    ++line_no;
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
        return ConfigError(path, line_no, "resource manager '" + name + "' is defined twice");
      }
      config.rms.push_back(RmConfig{name, "", {}, "", line_no});
      current = &config.rms.back();
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
    if (current == nullptr) {
      if (key == "log_dir") {
        config.log_dir = value;
        have_log_dir = !value.empty();
      } else if (key == "node_id") {
        char* end = nullptr;
        errno = 0;
        unsigned long long node = std::strtoull(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || errno != 0 || node > 0xffffffffull) {
          return ConfigError(path, line_no, "node_id must be a number from 0 to 4294967295");
        }
        config.node_id = static_cast<uint32_t>(node);
        have_node = true;
      } else if (key == "orphan_min_age_ms") {
        char* end = nullptr;
        long long ms = std::strtoll(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || ms < 0) {
          return ConfigError(path, line_no, "orphan_min_age_ms must be a number >= 0");
        }
        config.orphan_min_age = std::chrono::milliseconds(ms);
      } else {
        return ConfigError(path, line_no, "unknown setting '" + key +
                                              "' (known: log_dir, node_id, orphan_min_age_ms)");
      }
      continue;
    }
    if (key == "driver") {
      if (value != "mysql" && value != "odbc") {
        return ConfigError(path, line_no, "driver must be 'mysql' or 'odbc', not '" + value + "'");
      }
      current->driver = value;
    } else if (key == "password_file") {
      auto secret = ReadPasswordFile(value, path, line_no);
      if (!secret.ok()) return secret.status();
      current->password = std::move(secret).value();
    } else if (key == "password_env") {
      const char* secret = std::getenv(value.c_str());
      if (secret == nullptr) {
        return ConfigError(path, line_no, "environment variable " + value + " is not set");
      }
      current->password = secret;
    } else {
      static const std::set<std::string> kKnown = {"host", "port", "user", "database", "socket",
                                                   "dsn", "dialect", "connect_timeout_s"};
      if (kKnown.count(key) == 0) {
        return ConfigError(path, line_no,
                           "unknown setting '" + key + "' in [rm " + current->name +
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
    if (rm.driver.empty()) {
      return ConfigError(path, rm.line, "[rm " + rm.name + "] needs 'driver = mysql|odbc'");
    }
    if (rm.driver == "odbc" && rm.Get("dsn").empty()) {
      return ConfigError(path, rm.line, "[rm " + rm.name + "] needs 'dsn = <ODBC DSN>'");
    }
    if (rm.driver == "mysql" && rm.Get("host").empty() && rm.Get("socket").empty()) {
      return ConfigError(path, rm.line, "[rm " + rm.name + "] needs 'host' or 'socket'");
    }
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ConfigError(path, 0, std::string("cannot read the configuration: ") +
                                    std::strerror(errno));
  }
  if ((st.st_mode & 022) != 0) {
    return ConfigError(path, 0, "the configuration may be written by others: run `chmod go-w " +
                                    path + "`");
  }
  std::ifstream in(path);
  if (!in) return ConfigError(path, 0, "cannot read the configuration");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseConfig(buffer.str(), path);
}

}  // namespace xa::recover_tool
