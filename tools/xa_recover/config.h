// The configuration file of `xa-recover`.
//
// Grammar (one setting a line; '#' starts a comment; blank lines ignored; values run to the end
// of the line with surrounding blanks trimmed; no quoting):
//
//   log_dir = /var/lib/myservice/xa-log        # required: the decision log's directory
//   node_id = 7                                # required: the node whose branches are ours
//   orphan_min_age_ms = 60000                  # optional: the transaction timeout (default 60 s;
//                                              # 0 to 604800000, a week)
//
//   [rm accounts]                              # one section a resource manager; the name must
//   driver = mysql                             # be the RM name the application uses
//   host = 127.0.0.1
//   port = 13306                               # 1 to 65535
//   connect_timeout_s = 5                      # optional, 1 to 3600
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
// Three-phase commit (optional): the participant agents (xa-agent) that stand for the resource
// managers, as in the manager's ThreePhaseOptions and every agent's own [agent] sections. With
// them, resolve finishes open 3PC records through the agents as the manager's own recovery
// does (it asks their states, adopts their decision, sends DoCommit or Abort, and ends a record
// once every agent acknowledged); plan only asks. Without them, open 3PC records are reported as
// awaiting their agents and none of their branches is touched.
//
//   agents_key_file = /etc/myservice/agents.key  # required with an [agent]: the agents' shared
//                                                # key (its rules are xa-agent's key_file's)
//   agent_timeout_ms = 2000                      # optional: each agent's answer (1 to 600000)
//
//   [agent agent-a]                            # one section an agent, named as in its own
//   address = 127.0.0.1:17001                  # configuration; <IPv4>:<port> or [<IPv6>]:<port>
//   rms = accounts                             # the [rm] sections it stands for, comma-separated
//
// Marker commit (optional): where marker-commit transactions keep their markers, as in the
// manager's MarkerCommitOptions (docs/marker-commit.md). With it, a prepared branch of such a
// transaction is settled by its marker row (commit on 'C'; with no row, 'A' is written and the
// branch rolled back); without it, such branches are left alone and reported, never presumed
// aborted.
//
//   marker_rm = accounts                       # the [rm] section whose database holds the table
//                                              # (must be one of this file's [rm] sections)
//   marker_table = xa_commit_marker            # optional (this default); [schema.]table, as
//                                              # MarkerTableNameError (xa/marker.h) accepts
//   marker_settle_wait_ms = 1000               # optional: one settle's wait for a held row
//                                              # (1 to 600000)
//
// marker_table and marker_settle_wait_ms without marker_rm are refused: they would change nothing.
//
// Credentials never come from the command line (argv is visible to every user through ps) and
// are never logged or printed. A password file that others may read is refused, as libpq does
// with a .pgpass that is not 0600.
//
// Strictness, because an operator's typo must not turn into a different recovery:
//   - a key set twice in one section is refused (naming both lines), as are password_file and
//     password_env together;
//   - numbers are whole decimal numbers within the range of their setting (kIntegerSettings),
//     nothing after the digits;
//   - a control character (C0, DEL, C1) or bytes that are not UTF-8 anywhere in the file are
//     refused (a configuration is plain UTF-8 text);
//   - the file itself must be a regular file of at most kMaxConfigBytes, owned by the user
//     running xa-recover or by root, and not writable by group or others: whoever may write it
//     chooses the host our password is sent to;
//   - log_dir is used without trailing slashes ("link/" would make the log's symlink check look
//     through the link), and may not end in "." or "..".
// Text from the file (names, keys, values) is escaped in every message.
// The line grammar, the file's rules, passwords and the [rm] sections are the shared reader's
// (src/base/config_file.h); this file adds the top-level settings above.

#ifndef XA_TOOLS_XA_RECOVER_CONFIG_H_
#define XA_TOOLS_XA_RECOVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "src/base/config_file.h"
#include "xa/status.h"

namespace xa::recover_tool {

// The number rule, the file bounds and the resource manager sections are the shared reader's
// (src/base/config_file.h), the same for every program.
using internal::IntegerSetting;
using internal::kConnectTimeoutS;
using internal::kMaxConfigBytes;
using internal::kMaxPasswordFileBytes;
using internal::kNodeId;
using internal::kPort;
using internal::ParseInteger;
using internal::RmConfig;

// A week: longer than any transaction timeout; beyond it a value is a typo, and near INT64_MAX
// the age arithmetic would overflow.
inline constexpr IntegerSetting kOrphanMinAgeMs{"orphan_min_age_ms", 0, 604'800'000};
// Command-line options, read by the same rule.
inline constexpr IntegerSetting kSecondPassMs{"--second-pass-ms", 0, 3'600'000};
inline constexpr IntegerSetting kSessions{"--sessions", 1, 64};
inline constexpr IntegerSetting kAgentTimeoutMs{"agent_timeout_ms", 1, 600'000};
inline constexpr IntegerSetting kMarkerSettleWaitMs{"marker_settle_wait_ms", 1, 600'000};

// One participant agent of three-phase commit.
struct AgentEntry {
  std::string name;
  std::string address;            // as written: "host:port" or "[v6]:port"
  std::vector<std::string> rms;   // each an [rm] section of the file, in exactly one agent
};

struct Config {
  std::string path;
  std::string log_dir;
  uint32_t node_id = 0;
  std::chrono::milliseconds orphan_min_age{60'000};
  std::vector<RmConfig> rms;
  std::vector<AgentEntry> agents;   // empty: no 3PC agent (open 3PC records await them)
  std::string agents_key_file;      // set exactly when `agents` is not empty
  std::chrono::milliseconds agent_timeout{2'000};
  // Marker commit: the [rm] section whose database holds the marker table ("" for none), the
  // table, and how long one settle waits for a row still held (RecoveryOptions::marker).
  std::string marker_rm;
  std::string marker_table = "xa_commit_marker";
  std::chrono::milliseconds marker_settle_wait{1'000};
};

// Parses `text` (from `path`, used in messages). Resolves passwords: password_file must be a
// regular file (never a symlink, a FIFO or a device) of mode 0600 or 0400, owned by the running
// user, of at most kMaxPasswordFileBytes; password_env must be set. Errors are XA_CONFIG and
// name the file, the line and what to change.
Result<Config> ParseConfig(const std::string& text, const std::string& path);
// Reads and parses a file: see the rules on the file above. Never blocks on a FIFO.
Result<Config> LoadConfig(const std::string& path);

}  // namespace xa::recover_tool

#endif  // XA_TOOLS_XA_RECOVER_CONFIG_H_
