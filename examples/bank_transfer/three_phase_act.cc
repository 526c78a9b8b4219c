#include "examples/bank_transfer/three_phase_act.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank_transfer/child_process.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/three_phase.h"
#include "xa/transaction_manager.h"

namespace xa::demo {
namespace {

// The node id of the act's coordinator (main.cc passes the same to the crashing copy).
constexpr uint32_t kThreePhaseNodeId = 4343;
constexpr char kMariaDbAgent[] = "demo-agent-mariadb";
constexpr char kPostgresAgent[] = "demo-agent-postgres";
constexpr char kMariaDbRm[] = "bank-mariadb";
constexpr char kPostgresRm[] = "bank-postgres";
// The agents' termination timeout: how long an agent waits for a silent coordinator. The
// coordinator's own waits (votes, acknowledgements) must be shorter.
constexpr int kTerminationTimeoutMs = 2000;
constexpr auto kCoordinatorTimeout = std::chrono::milliseconds(1000);

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool WritePrivateFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  return out && ::chmod(path.c_str(), 0600) == 0;
}

// A port of 127.0.0.1 that nobody listens on right now. Another process could take it before
// the agent binds it; the agent then exits with code 5 and the demo says so.
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

bool Listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

std::string RmSection(const std::string& rm) {
  std::ostringstream out;
  out << "[rm " << rm << "]\n";
  if (rm == kMariaDbRm) {
    out << "driver = mysql\nhost = " << Env("XA_TEST_MARIADB_HOST")
        << "\nport = " << Env("XA_TEST_MARIADB_PORT") << "\nuser = " << Env("XA_TEST_MARIADB_USER")
        << "\ndatabase = " << Env("XA_TEST_MARIADB_DATABASE")
        << "\npassword_file = " << Env("XA_TEST_MARIADB_PASSWORD_FILE") << "\n";
  } else {
    out << "driver = odbc\ndialect = postgres\ndsn = " << Env("XA_TEST_ODBC_PG_DSN")
        << "\nuser = " << Env("XA_TEST_PG_USER")
        << "\npassword_file = " << Env("XA_TEST_PG_PASSWORD_FILE") << "\n";
  }
  return out.str();
}

struct AgentProcess {
  std::string name;
  std::string rm;
  int port = 0;
  std::string config;
  std::string output;  // its stderr and stdout
  pid_t pid = -1;

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

std::string AgentConfig(const AgentProcess& self, const std::vector<AgentProcess>& all,
                        const std::string& work, const std::string& key_file, uint32_t node_id) {
  std::ostringstream out;
  out << "# written by xa-demo\nagent = " << self.name << "\nlog_dir = " << work << "/" << self.name
      << "-log\nnode_id = " << node_id << "\nkey_file = " << key_file
      << "\ntermination_timeout_ms = " << kTerminationTimeoutMs << "\npeer_timeout_ms = 500\n\n";
  for (const AgentProcess& agent : all) {
    out << "[agent " << agent.name << "]\naddress = " << agent.address() << "\nrms = " << agent.rm
        << "\n";
  }
  out << "\n" << RmSection(self.rm);
  return out.str();
}

bool StartAgent(const std::string& agent_path, AgentProcess& agent) {
  std::cout.flush();
  agent.pid = ::fork();
  if (agent.pid == 0) {
    const int fd = ::open(agent.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      ::close(fd);
    }
    ::setenv("XA_LOG_LEVEL", "info", 1);
    ::unsetenv("XA_CRASH_POINT");
    ::execl(agent_path.c_str(), agent_path.c_str(), "--config", agent.config.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int waited = 0; waited < 200; ++waited) {
    int status = 0;
    if (::waitpid(agent.pid, &status, WNOHANG) == agent.pid) {
      std::cout << "  " << agent.name << " exited at start (code "
                << (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status))
                << "); its output is in " << agent.output << "\n";
      agent.pid = -1;
      return false;
    }
    if (Listening(agent.port)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cout << "  " << agent.name << " did not listen on " << agent.address()
            << " within 10 s; its output is in " << agent.output << "\n";
  return false;
}

// SIGTERM, then the exit status (SIGKILL after 10 s). True for a clean stop (exit 0).
bool StopAgent(AgentProcess& agent) {
  if (agent.pid <= 0) return false;
  ::kill(agent.pid, SIGTERM);
  const int status = WaitOrKill(agent.pid, std::chrono::seconds(10));
  agent.pid = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

ThreePhaseOptions CoordinatorOptions(const ThreePhaseSetup& setup) {
  ThreePhaseOptions options;
  options.agents = {{kMariaDbAgent, setup.mariadb_agent_address, {kMariaDbRm}},
                    {kPostgresAgent, setup.postgres_agent_address, {kPostgresRm}}};
  options.key_file = setup.key_file;
  options.vote_timeout = kCoordinatorTimeout;
  options.ack_timeout = kCoordinatorTimeout;
  return options;
}

Result<std::unique_ptr<DecisionLog>> OpenLog(const ThreePhaseSetup& setup) {
  LogOptions options;
  options.dir = setup.log_dir;
  options.node_id = setup.node_id;
  return DecisionLog::Open(options);
}

Result<std::unique_ptr<TransactionManager>> OpenManager(const bank::Bank& bank,
                                                        const ThreePhaseSetup& setup,
                                                        DecisionLog& log, bool recover) {
  TransactionManagerOptions options;
  options.node_id = setup.node_id;
  options.recover_on_open = recover;
  options.three_phase = CoordinatorOptions(setup);
  bank.RegisterFactories(options);
  return TransactionManager::Open(options, log);
}

void PrintBalances(const bank::Bank& bank, uint32_t node_id, const char* title) {
  auto s = bank.Snapshot(node_id);
  if (!s.ok()) {
    std::cout << "  " << title << " cannot read the balances: " << s.status().ToString() << "\n";
    return;
  }
  std::cout << "  " << std::left << std::setw(34) << title << " MariaDB " << std::setw(6)
            << s->mariadb_total << " + PostgreSQL " << std::setw(6) << s->postgres_total << " = "
            << s->total() << "   (our prepared branches: " << s->prepared_ours.size() << ")\n";
}

// The coordinator's open 3PC records (pre-commits and commit decisions without an end record).
std::string OpenRecords(const ThreePhaseSetup& setup) {
  LogOptions options;
  options.dir = setup.log_dir;
  options.node_id = setup.node_id;
  Result<LogState> state = DecisionLog::ReadState(options);
  if (!state.ok()) return "cannot read it: " + state.status().ToString();
  if (state->open_decisions.empty()) return "no open record";
  std::string text;
  for (const auto& [xid, record] : state->open_decisions) {
    if (!text.empty()) text += ", ";
    text += std::string(record.type == RecordType::kPreCommit ? "pre-commit" : "commit decision") +
            " of " + xid.ToString() + " open";
  }
  return text;
}

// The lines of an agent's output that say what it did to a branch on its own.
void PrintAgentFinishes(const AgentProcess& agent) {
  std::ifstream in(agent.output);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("by the agent") != std::string::npos) {
      std::cout << "    " << agent.name << ": "
                << line.substr(line.find("[info]") == std::string::npos ? 0 : line.find("[info]"))
                << "\n";
    }
  }
}

}  // namespace

int RunThreePhaseCrashingChild(const bank::BankSettings& settings, const ThreePhaseSetup& setup) {
  SetLogLevel(LogLevel::kWarning);
  auto bank = bank::Bank::Connect(settings);
  if (!bank.ok()) return 1;
  auto log = OpenLog(setup);
  if (!log.ok()) return 1;
  auto manager = OpenManager(**bank, setup, **log, /*recover=*/false);
  if (!manager.ok()) {
    std::cerr << "xa-demo (copy): " << manager.status().ToString() << "\n";
    return 1;
  }
  auto teller = (*bank)->NewTeller();
  if (!teller.ok()) return 1;
  Xid xid;
  auto outcome = (*bank)->Transfer(**manager, *teller, 2, 2, 200, &xid, Protocol::kThreePhase);
  // Only reached when the crash points are not compiled in: the parent then kills us.
  std::cout << "    (copy: transfer finished: "
            << (outcome.ok() ? std::string(OutcomeName(*outcome)) : outcome.status().ToString())
            << ")\n";
  std::cout.flush();
  ::pause();
  return 0;
}

bool RunThreePhaseAct(const bank::Bank& bank, const std::string& work,
                      const std::string& agent_path, const std::string& self) {
  const uint32_t node_id = kThreePhaseNodeId;
  ThreePhaseSetup setup;
  setup.node_id = node_id;
  setup.log_dir = work + "/decision-log-3pc";
  setup.key_file = work + "/agents.key";
  std::string key(32, '\0');
  {
    std::ifstream random("/dev/urandom", std::ios::binary);
    random.read(key.data(), static_cast<std::streamsize>(key.size()));
  }
  if (!WritePrivateFile(setup.key_file, key)) {
    std::cout << "  cannot write the key file " << setup.key_file << "\n";
    return false;
  }
  std::vector<AgentProcess> agents(2);
  agents[0].name = kMariaDbAgent;
  agents[0].rm = kMariaDbRm;
  agents[1].name = kPostgresAgent;
  agents[1].rm = kPostgresRm;
  for (AgentProcess& agent : agents) agent.port = FreeLoopbackPort();
  uint32_t agent_node = node_id + 1;
  for (AgentProcess& agent : agents) {
    agent.config = work + "/" + agent.name + ".conf";
    agent.output = work + "/" + agent.name + ".out";
    if (!WritePrivateFile(agent.config,
                          AgentConfig(agent, agents, work, setup.key_file, agent_node++))) {
      std::cout << "  cannot write " << agent.config << "\n";
      return false;
    }
  }
  setup.mariadb_agent_address = agents[0].address();
  setup.postgres_agent_address = agents[1].address();

  std::cout << "\n5. Three-phase commit: an xa-agent process beside each database holds the "
               "3PC state of its branches, so the branches can finish without the "
               "coordinator.\n";
  bool started = true;
  for (AgentProcess& agent : agents) {
    started = StartAgent(agent_path, agent) && started;
    if (agent.pid > 0) {
      std::cout << "  started " << agent.name << " on " << agent.address() << " (for " << agent.rm
                << "; its log: " << agent.output << ")\n";
    }
  }
  bool ok = started;
  if (started) {
    auto log = OpenLog(setup);
    auto manager = log.ok() ? OpenManager(bank, setup, **log, /*recover=*/true)
                            : Result<std::unique_ptr<TransactionManager>>(log.status());
    if (!manager.ok()) {
      std::cout << "  cannot open the 3PC manager: " << manager.status().ToString() << "\n";
      ok = false;
    } else {
      auto teller = bank.NewTeller();
      Xid xid;
      auto outcome = teller.ok()
                         ? bank.Transfer(**manager, *teller, 4, 4, 50, &xid, Protocol::kThreePhase)
                         : Result<Outcome>(teller.status());
      std::cout << "  3PC transfer: 50 from MariaDB #4 to PostgreSQL #4: "
                << (outcome.ok() ? std::string(OutcomeName(*outcome)) : outcome.status().ToString())
                << "  (CanCommit, PreCommit, DoCommit)\n";
      ok = ok && outcome.ok() && *outcome == Outcome::kCommitted;
    }
  }

  if (ok) {
    std::cout << "  A copy of this program starts one more 3PC transfer (200 from MariaDB #2 to "
                 "PostgreSQL #2) and is killed once both agents pre-committed, before it "
                 "could tell them to commit:\n";
    std::cout.flush();
    pid_t child = ::fork();
    if (child == 0) {
      ::setenv("XA_CRASH_POINT", "after-all-pre-committed", 1);
      ::setenv("XA_CRASH_COUNT", "1", 1);
      ::execl(self.c_str(), self.c_str(), "--three-phase-crashing-child", setup.log_dir.c_str(),
              setup.key_file.c_str(), setup.mariadb_agent_address.c_str(),
              setup.postgres_agent_address.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const int status = WaitOrKill(child, std::chrono::seconds(10));
    const auto crashed_at = std::chrono::steady_clock::now();
    std::cout << "  the copy died: " << DescribeExit(status) << "\n";
    PrintBalances(bank, node_id, "right after the crash:");
    std::cout << "  coordinator's log: " << OpenRecords(setup) << "\n";
    std::cout << "  nobody runs recovery; the agents wait " << kTerminationTimeoutMs
              << " ms for the coordinator, then agree among themselves...\n";
    bool finished = false;
    for (int waited = 0; waited < 300 && !finished; ++waited) {
      auto s = bank.Snapshot(node_id);
      finished = s.ok() && s->prepared_ours.empty();
      if (!finished) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - crashed_at).count();
    if (finished) {
      std::cout << "  both branches finished by the agents " << std::fixed << std::setprecision(1)
                << seconds << " s after the crash:\n";
    } else {
      std::cout << "  the branches are still prepared after 30 s: the agents did not finish "
                   "them\n";
      ok = false;
    }
    for (const AgentProcess& agent : agents) PrintAgentFinishes(agent);
    PrintBalances(bank, node_id, "after the agents' termination:");

    // The coordinator's next start asks the agents what became of its open record.
    {
      auto log = OpenLog(setup);
      auto manager = log.ok() ? OpenManager(bank, setup, **log, /*recover=*/true)
                              : Result<std::unique_ptr<TransactionManager>>(log.status());
      if (manager.ok()) {
        Status(manager.value()->WaitForBackgroundCompletion(std::chrono::seconds(10)))
            .IgnoreError();
      } else {
        std::cout << "  cannot reopen the 3PC manager: " << manager.status().ToString() << "\n";
        ok = false;
      }
    }
    std::cout << "  the coordinator restarts and asks the agents; its log: " << OpenRecords(setup)
              << "\n";
  }

  for (AgentProcess& agent : agents) {
    if (agent.pid <= 0) continue;
    const bool clean = StopAgent(agent);
    std::cout << "  stopped " << agent.name << (clean ? " (exit 0)" : " (NOT cleanly)") << "\n";
    ok = ok && clean;
  }
  return ok;
}

}  // namespace xa::demo
