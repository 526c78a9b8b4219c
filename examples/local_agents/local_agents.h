// Real xa-agent processes beside the local servers of scripts/servers.sh, for the programs that
// run three-phase commit there: the demo's 3PC act and the benches. Also the process helpers that
// takes (spawn, a child's CPU, a free port).
//
//   LocalAgents agents(work_dir, agent_program,
//                      {{"agent-mariadb", "my-mariadb-rm", LocalDatabase::kMariaDb},
//                       {"agent-postgres", "my-postgres-rm", LocalDatabase::kPostgres}},
//                      /*timeout_ms=*/2000, /*node_base=*/5311, /*coordinator_nodes=*/{5301});
//   Status started = agents.Start();          // a key, a configuration and a process each
//   options.three_phase = agents.CoordinatorOptions();
//   ... agents.CpuMs() before and after a case ...
//   agents.Stop();                            // SIGTERM; true when each exited 0
//
// Each agent stands for one resource manager, on a free loopback port, with its own log under
// the work directory and its output in <work>/<name>.out; the agents share a fresh random key
// (mode 0600). Their [rm] sections come from the environment of scripts/servers.sh (env.sh): the
// same servers and accounts the program's own sessions use. A production deployment writes
// these configurations itself (docs/three-phase-commit.md, xa-agent --help).

#ifndef XA_EXAMPLES_LOCAL_AGENTS_LOCAL_AGENTS_H_
#define XA_EXAMPLES_LOCAL_AGENTS_LOCAL_AGENTS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "xa/status.h"
#include "xa/three_phase.h"

namespace xa::local_agents {

// The value of environment variable `name`, "" when unset.
std::string EnvOrEmpty(const char* name);
// Writes `contents` to `path` with mode 0600; false on any failure.
bool WritePrivateFile(const std::string& path, const std::string& contents);
// A loopback port free right now (another process may take it before it is bound); -1 on error.
int FreeLoopbackPort();
// Whether something accepts TCP connections on 127.0.0.1:`port`.
bool Listening(int port);
// Starts `argv` with this process's environment minus any armed crash point, plus `env`
// ("NAME=value" entries), its stdout on `stdout_fd` and its stderr on `stderr_fd`. The child gets
// SIGTERM should this process die first. -1 when fork failed.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            int stdout_fd, int stderr_fd);
// The word after `mark` on the last line of file `out` that has it (a process's report of its
// address, "serving on http://127.0.0.1:18700 ..."), waiting up to `limit` for one; "" when none
// came.
std::string WaitForWordAfter(const std::string& out, const std::string& mark,
                             std::chrono::milliseconds limit = std::chrono::seconds(10));
// CPU time (user + system) a running child process has used, in ms; 0 when it cannot be read.
double ChildCpuMs(pid_t pid);
// CPU time in ms of any running process `pid` (a local server's, from its pid file), with the
// children it has waited for and its live children (PostgreSQL's backends are the postmaster's
// children); 0 when it cannot be read. In clock ticks (10 ms): for cases of seconds.
double ProcessTreeCpuMs(pid_t pid);

enum class LocalDatabase { kMariaDb, kPostgres };

// The [rm <rm_name>] section of an agent's configuration for the local test server of `database`
// (read from scripts/servers.sh's environment: host, port, user, database or DSN, password file).
std::string ServerRmSection(const std::string& rm_name, LocalDatabase database);

struct LocalAgentSpec {
  std::string name;     // the agent's name in the directory and its handshake
  std::string rm_name;  // the one resource manager it stands for
  LocalDatabase database = LocalDatabase::kMariaDb;
};

class LocalAgents {
 public:
  // `timeout_ms`: the agents' termination timeout (the coordinator's vote and acknowledgement
  // timeouts are half of it); `node_base`: the first agent's log node id, the next one +1, ...;
  // `coordinator_nodes`: the node ids of the bench's 3PC coordinators (the orphan scan takes only
  // their branches).
  LocalAgents(std::string work, std::string program, std::vector<LocalAgentSpec> specs,
              int timeout_ms, uint32_t node_base, std::set<uint32_t> coordinator_nodes);
  ~LocalAgents();
  LocalAgents(const LocalAgents&) = delete;
  LocalAgents& operator=(const LocalAgents&) = delete;

  // Writes the key and the configurations and starts every agent with `env` added to its
  // environment ("NAME=value"; also for later restarts); once each listens, OK.
  Status Start(std::vector<std::string> env = {});
  // SIGTERM, then SIGKILL after 10 s. True when every agent exited 0.
  bool Stop();
  // Stops agent `i` and starts it again on its log and address with `env` ("NAME=value", e.g.
  // an armed crash point); its output is appended to the same file.
  Status Relaunch(size_t i, const std::vector<std::string>& env);
  // Stops every agent and starts them all again on their logs and addresses with the
  // termination timeout `timeout_ms` (a restart: each recovers its participants from its log).
  Status RestartAll(int timeout_ms);
  // Waits (bounded) for agent `i` to die on its own, as an armed crash point makes it; returns
  // when that was seen. XA_TIMEOUT (the agent is killed then) when it lives on.
  Result<std::chrono::steady_clock::time_point> WaitDied(size_t i, std::chrono::seconds limit);

  // The CPU time the running agents have used, in ms (a restarted agent starts from zero: read
  // it before and after a case in which none is restarted).
  double CpuMs() const;
  // The coordinator's side: every agent, the key, and the phase timeouts (half the agents').
  ThreePhaseOptions CoordinatorOptions() const;
  const std::string& key_file() const { return key_file_; }
  std::string address(size_t i) const;
  size_t size() const { return agents_.size(); }
  const std::string& name(size_t i) const { return agents_[i].spec.name; }
  const std::string& rm_name(size_t i) const { return agents_[i].spec.rm_name; }
  const std::string& output(size_t i) const { return agents_[i].output; }

 private:
  struct Agent {
    LocalAgentSpec spec;
    int port = 0;
    std::string config;
    std::string output;
    pid_t pid = -1;
    std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  };
  std::string Config(const Agent& self, uint32_t node) const;
  static bool StopOne(Agent& agent);
  bool Launch(Agent& agent, const std::vector<std::string>& env = {}, bool append = false);

  std::string work_;
  std::string program_;
  int timeout_ms_;
  uint32_t node_base_;
  std::set<uint32_t> coordinator_nodes_;
  std::vector<std::string> env_;  // added to every launch's environment
  std::string key_file_;
  std::vector<Agent> agents_;
};

}  // namespace xa::local_agents

#endif  // XA_EXAMPLES_LOCAL_AGENTS_LOCAL_AGENTS_H_
