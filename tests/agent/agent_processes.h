// Real `xa-agent` processes for the crash tests of three-phase commit: two agents (one serving
// the MariaDB resource manager of tests/tm/tm_db_util.h, one the PostgreSQL one) started from
// configuration files this header writes, killed (by a crash point or from outside) and
// restarted on the same log and address; and the coordinator in the test process, a
// TransactionManager whose ThreePhaseOptions name them.
//
//   AgentPair agents(node_id, scratch);
//   ASSERT_NO_FATAL_FAILURE(agents.StartBoth({{kAgentMariaDb, "agent-after-pre-record"}}));
//   TransactionManagerOptions options; ... agents.ConfigureManager(options);
//   ... agents.WaitForCrash(kAgentMariaDb) ... agents.Restart(kAgentMariaDb) ...
//
// Processes are started and waited for by the crash harness (tests/recovery/crash_harness.h).

#ifndef XA_TESTS_AGENT_AGENT_PROCESSES_H_
#define XA_TESTS_AGENT_AGENT_PROCESSES_H_

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/recovery/crash_harness.h"
#include "tests/testutil/db_env.h"
#include "tests/testutil/tcp_relay.h"
#include "tests/tm/tm_db_util.h"
#include "xa/three_phase.h"
#include "xa/transaction_manager.h"

namespace xa::test {

inline constexpr const char* kAgentMariaDb = "agent-mariadb";
inline constexpr const char* kAgentPostgres = "agent-postgres";
// The coordinator, as a sender in AgentPair::RouteThrough.
inline constexpr const char* kCoordinator = "coordinator";
// xa-agent's exit code when it cannot start serving (its address is taken): daemons/agent/main.cc.
inline constexpr int kAgentExitServe = 5;

// The agents' termination timeout is longer than the coordinator's phase timeouts (the ordering
// docs/three-phase-commit.md assumes), and those are long enough for a loaded machine or a
// sanitizer build (a vote or an Ack that came late would change the outcome a case expects);
// short enough that a test waiting for a termination round does not wait long.
inline constexpr std::chrono::milliseconds kCoordinatorPhaseTimeout{2000};
inline constexpr std::chrono::milliseconds kAgentTerminationTimeout{4000};
inline constexpr std::chrono::milliseconds kAgentPeerTimeout{500};

inline std::string XaAgentPath() { return XA_AGENT_PATH; }

// A port below the kernel's ephemeral range that nothing listens on now. Below the range, so
// that no outgoing connection of any process (this test's database sessions, the agents' own)
// can be given it as its local port while the agent is down between a kill and its restart: a
// port the kernel picked for us (bind to port 0) lies inside the range and can be.
inline int FreeListenPort() {
  int low = 32768;
  if (FILE* range = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    if (std::fscanf(range, "%d", &low) != 1) low = 32768;
    std::fclose(range);
  }
  static std::mt19937 random(static_cast<unsigned>(::getpid()) ^
                             static_cast<unsigned>(
                                 std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> pick(std::max(1024, low - 12000), std::max(1025, low - 1000));
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int port = pick(random);
    // A plain socket, closed at once: close(2) frees a listening port before it returns.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) ==
                          0 &&
                      ::listen(fd, 1) == 0;
    ::close(fd);
    if (free) return port;
  }
  ADD_FAILURE() << "no free TCP port below the ephemeral range on 127.0.0.1";
  return 0;
}

// The two agents of the tests, each a real xa-agent process.
class AgentPair {
 public:
  // The agents stand for the resource managers of tests/tm/tm_db_util.h unless others are
  // named (the bank of examples/bank calls its own "bank-mariadb" and "bank-postgres").
  AgentPair(uint32_t node_id, const ScratchDir& scratch, std::string mariadb_rm = kMariaDbRm,
            std::string postgres_rm = kPostgresRm)
      : node_id_(node_id), scratch_(scratch), mariadb_rm_(std::move(mariadb_rm)) {
    key_file_ = scratch_.File("agents.key");
    {
      std::ofstream out(key_file_);
      out << "the agents' shared key of the agent crash tests, over 32 bytes";
    }
    EXPECT_EQ(::chmod(key_file_.c_str(), 0600), 0);
    agents_[kAgentMariaDb].rm = mariadb_rm_;
    agents_[kAgentPostgres].rm = std::move(postgres_rm);
    for (auto& [name, agent] : agents_) {
      agent.log_dir = scratch_.File(name + "-log");
      agent.config = scratch_.File(name + ".conf");
      agent.output = scratch_.File(name + ".out");
    }
  }
  ~AgentPair() {
    for (auto& [name, agent] : agents_) {
      if (agent.pid > 0) {
        ::kill(agent.pid, SIGKILL);
        ::waitpid(agent.pid, nullptr, 0);
      }
    }
  }
  AgentPair(const AgentPair&) = delete;
  AgentPair& operator=(const AgentPair&) = delete;

  const std::string& key_file() const { return key_file_; }

  // What `from` (an agent's name, or kCoordinator: the manager of ConfigureManager and the
  // worker of WorkerArguments) sends to agent `to` goes through `relay`, which the test can cut
  // (a partition), instead of straight to it. Call before StartBoth, which points the relay at
  // `to`'s port; the relay must outlive the agents.
  void RouteThrough(const std::string& from, const std::string& to, TcpRelay& relay) {
    routes_[{from, to}] = &relay;
  }
  static std::string OtherThan(const std::string& name) {
    return name == kAgentMariaDb ? kAgentPostgres : kAgentMariaDb;
  }

  // Starts both agents on fresh ports, `crash_points` armed (agent name -> point name) in the
  // environment of the agents named there. An agent that finds its port taken after all (some
  // other process bound it between the probe and the start) exits kAgentExitServe before it has
  // done anything: then both are stopped and started again on new ports, which is safe because
  // no transaction has run yet (their logs are empty and no coordinator knows the addresses).
  void StartBoth(const std::map<std::string, std::string>& crash_points = {}) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      for (auto& [name, agent] : agents_) {
        agent.port = FreeListenPort();
        agent.metrics_port = FreeListenPort();
      }
      for (auto& [route, relay] : routes_) relay->SetTarget(agents_.at(route.second).port);
      WriteConfigs();
      bool all_serving = true;
      for (auto& [name, agent] : agents_) {
        auto armed = crash_points.find(name);
        std::map<std::string, std::string> env;
        if (armed != crash_points.end()) env["XA_CRASH_POINT"] = armed->second;
        agent.env = env;
        const int started = Launch(name);
        if (started == kAgentExitServe) {
          all_serving = false;
          break;
        }
        ASSERT_EQ(started, -1) << "agent " << name << " did not start";
      }
      if (all_serving) return;
      for (auto& [name, agent] : agents_) StopIfRunning(name);
    }
    FAIL() << "the agents could not listen on free ports in 10 attempts";
  }

  // Restarts `name` on its log and address without any crash point armed. Its port was free
  // when it died; should another process hold it for a moment, the start is tried again (the
  // address is in every configuration and in the coordinator's directory: it cannot change).
  void Restart(const std::string& name) {
    Agent& agent = agents_.at(name);
    ASSERT_LE(agent.pid, 0) << "agent " << name << " is still running";
    agent.env.clear();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      const int started = Launch(name);
      if (started == -1) return;
      ASSERT_EQ(started, kAgentExitServe) << "agent " << name << " did not restart";
      ASSERT_LT(std::chrono::steady_clock::now(), until)
          << "agent " << name << " could not listen on its address again for 30 s";
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  // Waits (bounded) for `name` to kill itself at its armed crash point; fails unless it died of
  // SIGKILL after saying that a crash point was reached.
  void WaitForCrash(const std::string& name,
                    std::chrono::seconds limit = std::chrono::seconds(60)) {
    Agent& agent = agents_.at(name);
    ASSERT_GT(agent.pid, 0) << "agent " << name << " is not running";
    ProcessResult result = Wait(agent.pid, agent.output, limit);
    agent.pid = -1;
    ASSERT_TRUE(result.KilledBy(SIGKILL))
        << "agent " << name << " armed with " << agent.env["XA_CRASH_POINT"]
        << " should have killed itself; " << result.Describe();
    ASSERT_NE(result.output.find("crash point reached"), std::string::npos) << result.Describe();
  }

  // SIGKILL from outside, then reaps it.
  void Kill(const std::string& name) {
    Agent& agent = agents_.at(name);
    ASSERT_GT(agent.pid, 0) << "agent " << name << " is not running";
    ::kill(agent.pid, SIGKILL);
    ProcessResult result = Wait(agent.pid, agent.output, std::chrono::seconds(30));
    agent.pid = -1;
    EXPECT_TRUE(result.KilledBy(SIGKILL)) << result.Describe();
  }

  bool Running(const std::string& name) const { return agents_.at(name).pid > 0; }
  // Whether `name` is still alive (reaping it, and failing the test, if it exited).
  void ExpectAlive(const std::string& name) {
    Agent& agent = agents_.at(name);
    if (agent.pid <= 0) return;
    int status = 0;
    if (::waitpid(agent.pid, &status, WNOHANG) == agent.pid) {
      agent.pid = -1;
      ADD_FAILURE() << "agent " << name << " ended on its own: " << Describe(status) << "\n"
                    << Tail(agent.output);
    }
  }
  std::string Output(const std::string& name) const { return Tail(agents_.at(name).output); }

  // The agent's metrics page (its metrics_address, a port picked with the agent's), as served
  // now; empty when it cannot be read. A plain HTTP/1.0 GET: the body is what Prometheus reads.
  std::string Metrics(const std::string& name) const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "";
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(agents_.at(name).metrics_port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string page;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0) {
      const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
        char buffer[4096];
        for (ssize_t got; (got = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
          page.append(buffer, static_cast<size_t>(got));
        }
      }
    }
    ::close(fd);
    return page;
  }

  // One sample of the agent's metrics page (`sample`: the name with its labels, as printed);
  // -1 when the page or the sample cannot be read.
  double Metric(const std::string& name, const std::string& sample) const {
    const std::string page = Metrics(name);
    const std::string prefix = "\n" + sample + " ";
    const size_t at = page.find(prefix);
    if (at == std::string::npos) return -1;
    return std::strtod(page.c_str() + at + prefix.size(), nullptr);
  }

  // Waits (bounded) until neither agent holds a committed participant; each agent's count when
  // it returns. A committed participant is done once its branch is finished, the coordinator
  // told it (DoCommit) and every peer heard the outcome: after the coordinator's recovery has
  // ended its records, one still held is waiting for something that will never come.
  std::map<std::string, double> AwaitNoCommittedParticipantHeld(
      std::chrono::seconds limit, const std::function<void()>& between_looks = {}) const {
    const std::string held = "xa_agent_participants{state=\"commit\"}";
    std::map<std::string, double> counts;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (true) {
      if (between_looks) between_looks();
      bool none = true;
      for (const auto& [name, agent] : agents_) {
        counts[name] = Metric(name, held);
        none = none && counts[name] == 0;
      }
      if (none || std::chrono::steady_clock::now() >= until) return counts;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }

  // Points a manager's 3PC options at the agents.
  void ConfigureManager(TransactionManagerOptions& options) const {
    options.three_phase.agents.clear();
    for (const auto& [name, agent] : agents_) {
      options.three_phase.agents.push_back(
          ThreePhaseAgent{name, AddressAsSeenBy(kCoordinator, name), {agent.rm}});
    }
    options.three_phase.key_file = key_file_;
    options.three_phase.vote_timeout = kCoordinatorPhaseTimeout;
    options.three_phase.ack_timeout = kCoordinatorPhaseTimeout;
  }

  // Adds these agents to an xa-recover configuration file (WriteBankRecoverConfig's): the key
  // (agents_key_file, a top-level setting, so before the first section) and an [agent NAME]
  // section each with its address and resource manager, as xa-recover reads them.
  void AddToRecoverConfig(const std::string& path) const {
    std::stringstream sections;
    sections << std::ifstream(path).rdbuf();
    std::ofstream out(path, std::ios::trunc);
    out << "agents_key_file = " << key_file_ << "\n" << sections.str();
    for (const auto& [name, agent] : agents_) {
      out << "\n[agent " << name << "]\naddress = " << Address(agent) << "\nrms = " << agent.rm
          << "\n";
    }
  }

  // The arguments that make tests/recovery/bank_worker run its transfers through these agents.
  std::vector<std::string> WorkerArguments() const {
    std::vector<std::string> arguments;
    for (const auto& [name, agent] : agents_) {
      arguments.push_back("--three-phase-agent");
      arguments.push_back(name + "=" + AddressAsSeenBy(kCoordinator, name) + "=" + agent.rm);
    }
    arguments.push_back("--agents-key");
    arguments.push_back(key_file_);
    arguments.push_back("--phase-timeout-ms");
    arguments.push_back(std::to_string(kCoordinatorPhaseTimeout.count()));
    return arguments;
  }

 private:
  struct Agent {
    std::string rm;
    std::string log_dir;
    std::string config;
    std::string output;
    int port = 0;
    int metrics_port = 0;
    std::map<std::string, std::string> env;
    pid_t pid = -1;
  };

  static std::string Address(const Agent& agent) {
    return "127.0.0.1:" + std::to_string(agent.port);
  }

  // Where `from` reaches agent `to`: its relay when routed through one, else the agent itself.
  std::string AddressAsSeenBy(const std::string& from, const std::string& to) const {
    auto route = routes_.find({from, to});
    return route != routes_.end() ? route->second->address() : Address(agents_.at(to));
  }

  static std::string Describe(int status) {
    return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                             : "killed by signal " + std::to_string(WTERMSIG(status));
  }

  static std::string Tail(const std::string& file) {
    std::ifstream in(file);
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string text = buffer.str();
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  void WriteConfigs() {
    for (auto& [name, agent] : agents_) {
      std::ofstream out(agent.config);
      out << "agent = " << name << "\n"
          << "log_dir = " << agent.log_dir << "\n"
          << "node_id = " << node_id_ << "\n"
          << "key_file = " << key_file_ << "\n"
          << "termination_timeout_ms = " << kAgentTerminationTimeout.count() << "\n"
          << "peer_timeout_ms = " << kAgentPeerTimeout.count() << "\n"
          << "metrics_address = 127.0.0.1:" << agent.metrics_port << "\n\n";
      for (const auto& [peer_name, peer] : agents_) {
        out << "[agent " << peer_name << "]\naddress = " << AddressAsSeenBy(name, peer_name)
            << "\nrms = " << peer.rm << "\n\n";
      }
      if (agent.rm == mariadb_rm_) {
        out << "[rm " << agent.rm << "]\ndriver = mysql\n"
            << "host = " << RequireEnv("XA_TEST_MARIADB_HOST") << "\n"
            << "port = " << RequireEnv("XA_TEST_MARIADB_PORT") << "\n"
            << "user = " << RequireEnv("XA_TEST_MARIADB_USER") << "\n"
            << "database = " << RequireEnv("XA_TEST_MARIADB_DATABASE") << "\n"
            << "password_file = " << RequireEnv("XA_TEST_MARIADB_PASSWORD_FILE") << "\n";
      } else {
        out << "[rm " << agent.rm << "]\ndriver = odbc\ndialect = postgres\n"
            << "dsn = " << RequireEnv("XA_TEST_ODBC_PG_DSN") << "\n"
            << "user = " << RequireEnv("XA_TEST_PG_USER") << "\n"
            << "password_file = " << RequireEnv("XA_TEST_PG_PASSWORD_FILE") << "\n";
      }
      out.close();
      EXPECT_EQ(::chmod(agent.config.c_str(), 0600), 0);
    }
  }

  // Starts `name` and waits until it serves: -1 once it says so, its exit code (or 128 + the
  // signal) when it ends first.
  int Launch(const std::string& name) {
    Agent& agent = agents_.at(name);
    agent.pid = Spawn({XaAgentPath(), "--config", agent.config}, agent.env, agent.output);
    if (agent.pid <= 0) return 255;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(agent.pid, &status, WNOHANG) == agent.pid) {
        agent.pid = -1;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code != kAgentExitServe) {
          ADD_FAILURE() << "agent " << name << " ended at start: " << Describe(status) << "\n"
                        << Tail(agent.output);
        }
        return code;
      }
      if (Tail(agent.output).find(" serving on ") != std::string::npos) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "agent " << name << " did not start serving within 30 s\n"
                  << Tail(agent.output);
    return 254;
  }

  void StopIfRunning(const std::string& name) {
    Agent& agent = agents_.at(name);
    if (agent.pid <= 0) return;
    ::kill(agent.pid, SIGKILL);
    ::waitpid(agent.pid, nullptr, 0);
    agent.pid = -1;
  }

  const uint32_t node_id_;
  const ScratchDir& scratch_;
  const std::string mariadb_rm_;
  std::string key_file_;
  std::map<std::string, Agent> agents_;
  std::map<std::pair<std::string, std::string>, TcpRelay*> routes_;  // (from, to) -> relay
};

}  // namespace xa::test

#endif  // XA_TESTS_AGENT_AGENT_PROCESSES_H_
