// The one strict reader of the tools' and daemons' configuration files (xa-recover, xa-agent).
// Each program writes its own grammar on top of it; the rules below are the same everywhere.
//
//   static const ConfigGrammar kGrammar{"xa-agent", {kRmSection, {"agent", "an agent", "agent"}}};
//   Result<std::string> text = ReadConfigFile(path, kGrammar.program);
//   Result<ConfigFile> file = ParseConfigText(*text, path, kGrammar);
//   for (const ConfigEntry& entry : file->top.entries) { ... file->UnknownKey(...) ... }
//
// The line grammar (one setting a line):
//   - '#' starts a comment, to the end of the line; blank lines are ignored; a line may end in
//     CRLF;
//   - `key = value`: the value runs to the end of the line (or the comment), surrounding blanks
//     trimmed, no quoting;
//   - `[kind name]` opens a section of one of the grammar's kinds; the name is one word; the
//     settings before the first section are the top level's;
//   - a key set twice in one section is refused naming both lines, and so are password_file and
//     password_env together (two sources of one password); the same key in two sections is fine;
//     a section of one kind and name defined twice is refused;
//   - a key named `password` is refused anywhere: secrets come from a password_file (mode 0600 or
//     0400, owned by the running user, never a link) or from the environment (password_env);
//   - a control character (C0 but tab, DEL, C1) or bytes that are not well-formed UTF-8 anywhere
//     in the file are refused (a configuration is plain UTF-8 text).
// The grammar's errors are found first, in line order; a program's checks of keys and values
// then run over the parsed form.
//
// The file itself (ReadConfigFile) must be a regular file of at most kMaxConfigBytes, owned by
// the user running the program or by root, and not writable by group or others: whoever may
// write it chooses the hosts our passwords are sent to. Reading never blocks on a FIFO.
//
// Every error is Code::kConfig, starts with "<file>:<line>: " (the line when there is one) and
// says what to change. Text from the file (names, keys, values, the path) is escaped in every
// message; a password never appears in one.

#ifndef XA_SRC_BASE_CONFIG_FILE_H_
#define XA_SRC_BASE_CONFIG_FILE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa::internal {

// A setting that is a whole number, and the values it may take.
struct IntegerSetting {
  const char* key;
  int64_t min;
  int64_t max;
};
inline constexpr IntegerSetting kNodeId{"node_id", 0, 4'294'967'295};
inline constexpr IntegerSetting kPort{"port", 1, 65'535};
inline constexpr IntegerSetting kConnectTimeoutS{"connect_timeout_s", 1, 3'600};

// The one rule for every number read from a configuration or a command line: decimal digits only
// (a leading '-' for a negative value), nothing before or after them, within
// [setting.min, setting.max]. The error (XA_CONFIG) names the setting and its range.
Result<int64_t> ParseInteger(const IntegerSetting& setting, const std::string& text);

// The largest configuration and password file read; a larger one is refused unread.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
inline constexpr size_t kMaxPasswordFileBytes = 4096;

// Text from a configuration, quoted and escaped for a message: 'text'.
std::string QuotedForMessage(std::string_view text);

// The kinds of section a grammar accepts: "[rm accounts]" is kind "rm".
struct SectionKind {
  std::string_view kind;               // "rm"
  std::string_view noun_with_article;  // "a resource manager": "... name must be one word"
  std::string_view noun;  // "resource manager": "resource manager 'a' is defined twice"
};
struct ConfigGrammar {
  std::string_view program;  // "xa-recover": in "must belong to the user running xa-recover"
  std::vector<SectionKind> section_kinds;
};

struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0;
};

struct ConfigSection {
  std::string kind;  // "" for the top level
  std::string name;
  int line = 0;                      // of the header; 0 for the top level
  std::vector<ConfigEntry> entries;  // in file order; no key twice

  // The entry of `key`, or nullptr.
  const ConfigEntry* Find(std::string_view key) const;
  // "[rm <escaped name>]"; "" for the top level.
  std::string Label() const;
};

// A configuration file in its neutral parsed form.
struct ConfigFile {
  std::string path;
  std::string program;
  ConfigSection top;
  std::vector<ConfigSection> sections;  // in file order

  // Code::kConfig: "<escaped path>:<line>: <what>" (no ":<line>" when line is 0).
  Status Error(int line, const std::string& what) const;
  // The refusal of `entry`, a key `section` does not know: names the file, the line, the section
  // and the keys it knows, in the order given.
  Status UnknownKey(const ConfigSection& section, const ConfigEntry& entry,
                    std::span<const std::string_view> known) const;
  // Refuses the first entry of `section` (in file order) whose key is not in `known`.
  Status RefuseUnknownKeys(const ConfigSection& section,
                           std::span<const std::string_view> known) const;
  // `entry`'s value by ParseInteger, its error placed at the entry's line.
  Result<int64_t> Integer(const IntegerSetting& setting, const ConfigEntry& entry) const;
  // The password an entry `password_file = <path>` or `password_env = <variable>` names: the file
  // must be a regular file (never a link, a FIFO or a device) of mode 0600 or 0400, owned by the
  // running user, of at most kMaxPasswordFileBytes (its trailing line ends are dropped); the
  // variable must be set.
  Result<std::string> Password(const ConfigEntry& entry) const;
  // A directory setting (log_dir) without trailing slashes, so that a log's own symlink check
  // (lstat) sees the directory entry itself: lstat("link/") follows the link. Refused when it
  // ends in "." or "..", which would do the same; "" stays "" (the caller says it is required).
  Result<std::string> Directory(const ConfigEntry& entry) const;
};

// Reads the configuration file at `path` by the rules above (src/base/trusted_file.h) for
// `program`. Never blocks on a FIFO.
Result<std::string> ReadConfigFile(const std::string& path, std::string_view program);

// Parses `text` (read from `path`, used in messages) by the line grammar above.
Result<ConfigFile> ParseConfigText(const std::string& text, const std::string& path,
                                   const ConfigGrammar& grammar);

// ---- Resource manager sections, the same in every program that opens resource managers ----
//
//   [rm accounts]                              # the name is the RM name the application uses
//   driver = mysql                             # mysql | odbc
//   host = 127.0.0.1                           # mysql: host or socket
//   port = 13306                               # optional, 1 to 65535
//   socket = /run/mysqld/mysqld.sock
//   connect_timeout_s = 5                      # optional, 1 to 3600
//   user = xa_tm
//   database = bank
//   password_file = /etc/myservice/mariadb.pw  # or password_env = <VARIABLE>
//
//   [rm ledger]
//   driver = odbc                              # through unixODBC
//   dsn = ledger_pg                            # required: the DSN from ODBCINI / odbc.ini
//   dialect = postgres                         # optional: postgres | mariadb
//   user = xa_tm
//   password_file = /etc/myservice/pg.pw
//
// The settings are text; which library opens the RM is tools/common/rm_from_config.h's business.

inline constexpr SectionKind kRmSection{"rm", "a resource manager", "resource manager"};
// In the order messages list them.
inline constexpr std::string_view kRmKeys[] = {"driver",        "host",        "port",
                                               "user",          "database",    "socket",
                                               "dsn",           "dialect",     "connect_timeout_s",
                                               "password_file", "password_env"};

struct RmConfig {
  std::string name;
  std::string driver;                           // "mysql" or "odbc"
  std::map<std::string, std::string> settings;  // the text settings but the password
  std::optional<int> port;                      // absent: the driver's default
  std::optional<std::chrono::seconds> connect_timeout;
  std::string password;  // resolved from password_file / password_env
  int line = 0;          // of the section header, for messages
  // A text setting, or "" when absent.
  std::string Get(const std::string& key) const;
};

// Reads an `[rm name]` section's keys in file order: refuses an unknown key, a driver or dialect
// it does not know, a number out of range, a password that cannot be resolved.
Result<RmConfig> ReadRmSection(const ConfigFile& file, const ConfigSection& section);
// What a complete section needs: a driver; for odbc a dsn; for mysql a host or a socket. Apart
// from ReadRmSection so that a program may check its top-level settings first.
Status CheckRmComplete(const ConfigFile& file, const RmConfig& rm);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_CONFIG_FILE_H_
