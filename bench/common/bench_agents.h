// What the benches that run three-phase commit share: starting real xa-agent processes beside the
// local test servers (scripts/servers.sh), and the process helpers that takes.
//
//   BenchAgents agents(work_dir, agent_program,
//                      {{"bench-agent-mariadb", "my-mariadb-rm", Database::kMariaDb},
//                       {"bench-agent-postgres", "my-postgres-rm", Database::kPostgres}},
//                      /*timeout_ms=*/2000, /*node_base=*/5311, /*coordinator_nodes=*/{5301});
//   Status started = agents.Start();          // a key, a configuration and a process each
//   options.three_phase = agents.CoordinatorOptions();
//   ... agents.CpuMs() before and after a case ...
//   agents.Stop();                            // SIGTERM; true when each exited 0
//
// Each agent stands for one resource manager, on a free loopback port, with its own log under
// the work directory and its output in <work>/<name>.out; the agents share a fresh random key
// (mode 0600). Their [rm] sections come from the environment of scripts/servers.sh (env.sh): the
// same servers and accounts the bench's own sessions use.

#ifndef XA_BENCH_COMMON_BENCH_AGENTS_H_
#define XA_BENCH_COMMON_BENCH_AGENTS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "xa/status.h"
#include "xa/three_phase.h"

namespace xa::bench {

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
// CPU time (user + system) a running child process has used, in ms; 0 when it cannot be read.
double ChildCpuMs(pid_t pid);

enum class BenchDatabase { kMariaDb, kPostgres };

// The [rm <rm_name>] section of an agent's configuration for the local test server of `database`
// (read from scripts/servers.sh's environment: host, port, user, database or DSN, password file).
std::string TestServerRmSection(const std::string& rm_name, BenchDatabase database);

struct BenchAgentSpec {
  std::string name;     // the agent's name in the directory and its handshake
  std::string rm_name;  // the one resource manager it stands for
  BenchDatabase database = BenchDatabase::kMariaDb;
};

class BenchAgents {
 public:
  // `timeout_ms`: the agents' termination timeout (the coordinator's vote and acknowledgement
  // timeouts are half of it); `node_base`: the first agent's log node id, the next one +1, ...;
  // `coordinator_nodes`: the node ids of the bench's 3PC coordinators (the orphan scan takes only
  // their branches).
  BenchAgents(std::string work, std::string program, std::vector<BenchAgentSpec> specs,
              int timeout_ms, uint32_t node_base, std::set<uint32_t> coordinator_nodes);
  ~BenchAgents();
  BenchAgents(const BenchAgents&) = delete;
  BenchAgents& operator=(const BenchAgents&) = delete;

  // Writes the key and the configurations and starts every agent; once each listens, OK.
  Status Start();
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

 private:
  struct Agent {
    BenchAgentSpec spec;
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
  std::string key_file_;
  std::vector<Agent> agents_;
};

}  // namespace xa::bench

#endif  // XA_BENCH_COMMON_BENCH_AGENTS_H_
