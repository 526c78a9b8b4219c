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
#include "examples/local_agents/local_agents.h"
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

// The lines of agent i's output that say what it did to a branch on its own.
void PrintAgentFinishes(const local_agents::LocalAgents& agents, size_t i) {
  std::ifstream in(agents.output(i));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("by the agent") != std::string::npos) {
      std::cout << "    " << agents.name(i) << ": "
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
  // The agents log at info level, so that the act can show what they did on their own; the
  // orphan scan of each takes this coordinator's branches only.
  local_agents::LocalAgents agents(
      work, agent_path,
      {{kMariaDbAgent, kMariaDbRm, local_agents::LocalDatabase::kMariaDb},
       {kPostgresAgent, kPostgresRm, local_agents::LocalDatabase::kPostgres}},
      kTerminationTimeoutMs, node_id + 1, {node_id});

  std::cout << "\n5. Three-phase commit: an xa-agent process beside each database holds the "
               "3PC state of its branches, so the branches can finish without the "
               "coordinator.\n";
  const Status started_agents = agents.Start({"XA_LOG_LEVEL=info"});
  const bool started = started_agents.ok();
  if (!started) {
    std::cout << "  the agents did not start: " << started_agents.ToString() << "\n";
  } else {
    for (size_t i = 0; i < agents.size(); ++i) {
      std::cout << "  started " << agents.name(i) << " on " << agents.address(i) << " (for "
                << agents.rm_name(i) << "; its log: " << agents.output(i) << ")\n";
    }
  }
  setup.key_file = agents.key_file();
  setup.mariadb_agent_address = agents.address(0);
  setup.postgres_agent_address = agents.address(1);
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
    for (size_t i = 0; i < agents.size(); ++i) PrintAgentFinishes(agents, i);
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

  if (started) {
    const bool clean = agents.Stop();
    std::cout << "  stopped " << agents.name(0) << " and " << agents.name(1)
              << (clean ? " (exit 0)" : " (NOT cleanly; their output is in " + work + ")") << "\n";
    ok = ok && clean;
  }
  return ok;
}

}  // namespace xa::demo
