// Support for tests that kill real processes and then recover: running programs, the bank's
// recovery configuration, seeded foreign prepared branches, acknowledged transfers.

#ifndef XA_TESTS_RECOVERY_CRASH_HARNESS_H_
#define XA_TESTS_RECOVERY_CRASH_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace xa::test {

struct ProcessResult {
  int wait_status = 0;
  std::string output;  // stdout and stderr together
  bool Exited(int code) const;
  bool KilledBy(int signal) const;
  std::string Describe() const;  // "exit 0", "killed by signal 9", with the output's tail
};

// Starts `argv` with `extra_env` added to this process's environment; output goes to a file.
pid_t Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& extra_env,
            const std::string& output_file);
// Waits for it (killing it with SIGKILL after `timeout`) and collects its output.
ProcessResult Wait(pid_t pid, const std::string& output_file, std::chrono::seconds timeout);
ProcessResult RunProcess(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& extra_env,
                  std::chrono::seconds timeout = std::chrono::seconds(120));

// A scratch directory for one test, removed by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes an xa-recover configuration for the bank's two resource managers on the local
// servers (passwords by file, as an operator would), mode 0600. Returns its path. With
// `marker_rm` (an RM name of the bank), marker_rm and marker_table name the bank's marker table.
std::string WriteBankRecoverConfig(const ScratchDir& dir, const std::string& log_dir,
                                   uint32_t node_id, int orphan_min_age_ms,
                                   const std::string& marker_rm = "",
                                   const std::string& marker_table = "");

// Transfers the worker acknowledged (gtrid hex, one a line).
std::set<std::string> ReadAcknowledged(const std::string& ack_file);

// Prepared branches of "another transaction manager": MariaDB XA with format ID 77 and a GID
// that is not ours in PostgreSQL, each holding a row in <prefix>_foreign. Made with the admin
// command-line clients, as a foreign application would.
void SeedForeignBranches(const std::string& prefix);
// Counts the foreign seeds still prepared (2 when untouched).
int CountForeignSeeds();
void RemoveForeignBranches(const std::string& prefix);

// Runs SQL as the servers' administrators (root over MariaDB's socket, postgres over TCP), with
// the command-line clients.
ProcessResult MariaDbAdmin(const std::string& sql);
// The number `sql` answers through MariaDbAdmin (a test failure, and -1, when it answers none).
int64_t MariaDbNumber(const std::string& sql);
ProcessResult PostgresAdmin(const std::string& sql);

// A node id for this test process: random, never 0.
uint32_t RandomNodeId();

// The number in environment variable `name` (a soak's bound), or `fallback` when it is unset.
long EnvLong(const char* name, long fallback);

// Paths of the programs under test (set by CMake).
std::string BankWorkerPath();
std::string XaRecoverPath();

}  // namespace xa::test

#endif  // XA_TESTS_RECOVERY_CRASH_HARNESS_H_
