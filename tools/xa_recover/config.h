// The configuration file of `xa-recover`.
//
// Grammar (one setting a line; '#' starts a comment; blank lines ignored; values run to the end
// of the line with surrounding blanks trimmed; no quoting):
//
//   log_dir = /var/lib/myservice/xa-log        # required: the decision log's directory
//   node_id = 7                                # required: the node whose branches are ours
//   orphan_min_age_ms = 60000                  # optional: the transaction timeout (default 60 s)
//
//   [rm accounts]                              # one section a resource manager; the name must
//   driver = mysql                             # be the RM name the application uses
//   host = 127.0.0.1
//   port = 13306
//   user = xa_tm
//   database = bank
//   password_file = /etc/myservice/mariadb.pw  # a file of mode 0600 or stricter, or
//   # password_env = ACCOUNTS_DB_PASSWORD      # the name of an environment variable
//
//   [rm ledger]
//   driver = odbc                              # through unixODBC
//   dsn = ledger_pg                            # DSN from ODBCINI / odbc.ini
//   dialect = postgres                         # postgres | mariadb
//   user = xa_tm
//   password_file = /etc/myservice/pg.pw
//
// Credentials never come from the command line (argv is visible to every user through ps) and
// are never logged or printed. A password file that others may read is refused, as libpq does
// with a .pgpass that is not 0600.

#ifndef XA_TOOLS_XA_RECOVER_CONFIG_H_
#define XA_TOOLS_XA_RECOVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "xa/status.h"

namespace xa::recover_tool {

struct RmConfig {
  std::string name;
  std::string driver;  // "mysql" or "odbc"
  std::map<std::string, std::string> settings;  // everything but the password
  std::string password;                          // resolved from password_file / password_env
  int line = 0;                                  // of the section header, for messages
  // A setting, or "" when absent.
  std::string Get(const std::string& key) const;
};

struct Config {
  std::string path;
  std::string log_dir;
  uint32_t node_id = 0;
  std::chrono::milliseconds orphan_min_age{60'000};
  std::vector<RmConfig> rms;
};

// Parses `text` (from `path`, used in messages). Resolves passwords: password_file must be a
// regular file of mode 0600 or 0400 owned by the running user; password_env must be set.
// Errors are XA_CONFIG and name the file, the line and what to change.
Result<Config> ParseConfig(const std::string& text, const std::string& path);
// Reads and parses a file. Refuses a config file that group or others may write.
Result<Config> LoadConfig(const std::string& path);

}  // namespace xa::recover_tool

#endif  // XA_TOOLS_XA_RECOVER_CONFIG_H_
