// xa-demo: atomic transfers between a MariaDB bank and a PostgreSQL bank, a crash in the middle
// of a commit, and recovery.
//
//   1. Resets the demo tables: 5 accounts of 1000 in each database.
//   2. Runs transfers through xa::TransactionManager (2PC with a durable decision log), two
//      threads at once, including one that would overdraw an account and is rolled back on both
//      databases; prints each outcome and the balances.
//   3. Starts a copy of itself that commits one more transfer and is killed (SIGKILL) in the
//      middle of the commit: both branches are prepared and the commit decision is durable in
//      the log, but neither database has committed yet. The transfer is in doubt: its two
//      prepared branches hold their row locks and nobody sees the money move.
//   4. Runs `xa-recover plan` and `xa-recover resolve` on the decision log that copy left, and
//      shows the balances consistent again and the total unchanged.
//   5. Three-phase commit (three_phase_act.h): starts an xa-agent process beside each database,
//      commits a transfer through 3PC, then kills a copy of itself once both agents
//      pre-committed: without the coordinator and without any recovery run, the agents agree
//      and commit both branches within their termination timeout; the coordinator's next start
//      learns the outcome from them.
//   6. TCC (tcc_act.h): the shop's three participant services (order on MariaDB, funds on
//      PostgreSQL, points on MariaDB, each its own process behind the participant barrier),
//      orders placed over HTTP (confirmed everywhere; one refused by the funds, cancelled
//      everywhere), then a copy killed with the confirm decision durable and no Confirm sent,
//      and the manager's recovery confirming that order on all three services.
//   7. Reliable messages (msg_act.h): xa-msgd between an order service and an accounting
//      service (examples/msg_shop); the order service killed between its commit and its
//      confirm (the back-query settles the message), the accounting service between its booking
//      and its ack (the redelivery meets the dedupe); every order booked exactly once.
//
// Settings come from the environment that `scripts/servers.sh start` writes (build/servers/
// env.sh); `bash scripts/demo.sh` does all of it.

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.h"
#include "examples/bank_transfer/child_process.h"
#include "examples/bank_transfer/msg_act.h"
#include "examples/bank_transfer/tcc_act.h"
#include "examples/bank_transfer/three_phase_act.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/transaction_manager.h"

namespace {

constexpr uint32_t kNodeId = 4242;
constexpr uint32_t kThreePhaseNodeId = 4343;  // the 3PC act's coordinator (three_phase_act.cc)
constexpr char kPrefix[] = "demo";

void Fail(const std::string& what, const xa::Status& status) {
  std::cerr << "xa-demo: " << what << ": " << status.ToString() << "\n";
  std::exit(1);
}

xa::bank::BankSettings Settings() {
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) Fail("settings", settings.status());
  settings->table_prefix = kPrefix;
  settings->accounts = 5;
  settings->initial_balance = 1000;
  return *settings;
}

void PrintBalances(const xa::bank::Bank& bank, const char* title) {
  auto s = bank.Snapshot(kNodeId);
  if (!s.ok()) Fail("reading balances", s.status());
  std::cout << "  " << std::left << std::setw(34) << title << " MariaDB " << std::setw(6)
            << s->mariadb_total << " + PostgreSQL " << std::setw(6) << s->postgres_total
            << " = " << s->total() << (s->total() == bank.settings().Total() ? "" : "   <-- OFF")
            << "   (transfers recorded: MariaDB " << s->mariadb_transfers.size()
            << ", PostgreSQL " << s->postgres_transfers.size() << "; our prepared branches: "
            << s->prepared_ours.size() << ")\n";
}

std::unique_ptr<xa::DecisionLog> OpenLog(const std::string& dir) {
  xa::LogOptions options;
  options.dir = dir;
  options.node_id = kNodeId;
  auto log = xa::DecisionLog::Open(options);
  if (!log.ok()) Fail("opening the decision log", log.status());
  return std::move(log).value();
}

std::unique_ptr<xa::TransactionManager> OpenManager(const xa::bank::Bank& bank,
                                                    xa::DecisionLog& log, bool recover) {
  xa::TransactionManagerOptions options;
  options.node_id = kNodeId;
  options.recover_on_open = recover;
  bank.RegisterFactories(options);
  auto manager = xa::TransactionManager::Open(options, log);
  if (!manager.ok()) Fail("opening the transaction manager", manager.status());
  return std::move(manager).value();
}

// The crashing copy: one transfer, killed by the crash point once its decision is durable.
int RunCrashingChild(const std::string& log_dir) {
  xa::SetLogLevel(xa::LogLevel::kWarning);
  auto bank = xa::bank::Bank::Connect(Settings());
  if (!bank.ok()) Fail("connecting", bank.status());
  auto log = OpenLog(log_dir);
  auto manager = OpenManager(**bank, *log, /*recover=*/false);
  auto teller = (*bank)->NewTeller();
  if (!teller.ok()) Fail("connecting", teller.status());
  xa::Xid xid;
  auto outcome = (*bank)->Transfer(*manager, *teller, 1, 1, 250, &xid);
  // Only reached when the crash points are not compiled in: the parent then kills us.
  std::cout << "    (child: transfer finished: "
            << (outcome.ok() ? std::string(xa::OutcomeName(*outcome)) : outcome.status().ToString())
            << ")\n";
  std::cout.flush();
  ::pause();
  return 0;
}

std::string WriteRecoverConfig(const std::string& dir, const std::string& log_dir) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  std::string path = dir + "/xa-recover.conf";
  std::ofstream out(path);
  out << "# written by xa-demo\nlog_dir = " << log_dir << "\nnode_id = " << kNodeId
      << "\norphan_min_age_ms = 0\n\n[rm bank-mariadb]\ndriver = mysql\nhost = "
      << env("XA_TEST_MARIADB_HOST") << "\nport = " << env("XA_TEST_MARIADB_PORT")
      << "\nuser = " << env("XA_TEST_MARIADB_USER") << "\ndatabase = "
      << env("XA_TEST_MARIADB_DATABASE") << "\npassword_file = "
      << env("XA_TEST_MARIADB_PASSWORD_FILE") << "\n\n[rm bank-postgres]\ndriver = odbc\n"
      << "dialect = postgres\ndsn = " << env("XA_TEST_ODBC_PG_DSN") << "\nuser = "
      << env("XA_TEST_PG_USER") << "\npassword_file = " << env("XA_TEST_PG_PASSWORD_FILE")
      << "\n";
  out.close();
  ::chmod(path.c_str(), 0600);
  return path;
}

int RunTool(const std::string& tool, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  copy.insert(copy.begin(), tool);
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(tool.c_str(), argv.data());
    std::perror("execv");
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--crashing-child") == 0) {
    return RunCrashingChild(argv[2]);
  }
  if (argc == 6 && std::strcmp(argv[1], "--tcc-crashing-child") == 0) {
    return xa::demo::RunTccCrashingChild(argv[2], {argv[3], argv[4], argv[5]});
  }
  if (argc == 6 && std::strcmp(argv[1], "--three-phase-crashing-child") == 0) {
    xa::demo::ThreePhaseSetup setup;
    setup.node_id = kThreePhaseNodeId;
    setup.log_dir = argv[2];
    setup.key_file = argv[3];
    setup.mariadb_agent_address = argv[4];
    setup.postgres_agent_address = argv[5];
    return xa::demo::RunThreePhaseCrashingChild(Settings(), setup);
  }
  xa::SetLogLevel(xa::LogLevel::kWarning);
  char work_pattern[] = "/tmp/xa-demo-XXXXXX";
  if (::mkdtemp(work_pattern) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string work = work_pattern;
  const std::string log_dir = work + "/decision-log";

  std::cout << "xa demo: atomic transfers between MariaDB (MySQL Connector/C++) and PostgreSQL "
               "(unixODBC), 2PC with a durable decision log in "
            << log_dir << "\n\n";
  auto bank = xa::bank::Bank::Connect(Settings());
  if (!bank.ok()) Fail("connecting to the databases", bank.status());
  if (xa::Status s = (*bank)->Reset(); !s.ok()) Fail("creating the demo tables", s);
  std::cout << "1. Fresh accounts: " << (*bank)->settings().accounts << " in each database, "
            << (*bank)->settings().initial_balance << " each\n";
  PrintBalances(**bank, "before:");

  std::cout << "\n2. Transfers through the transaction manager (two threads):\n";
  {
    auto log = OpenLog(log_dir);
    auto manager = OpenManager(**bank, *log, /*recover=*/true);
    struct Planned {
      int mariadb_account, pg_account;
      int64_t amount;  // > 0: MariaDB -> PostgreSQL
    };
    const std::vector<Planned> plan = {{1, 2, 100}, {2, 3, -40},  {3, 1, 75},  {4, 5, 10},
                                       {5, 4, -300}, {1, 1, 5000}, {2, 2, 120}, {3, 3, -60}};
    std::mutex print_mu;
    auto worker = [&](size_t first) {
      auto teller = (*bank)->NewTeller();
      if (!teller.ok()) Fail("connecting", teller.status());
      for (size_t i = first; i < plan.size(); i += 2) {
        const Planned& p = plan[i];
        xa::Xid xid;
        auto outcome = (*bank)->Transfer(*manager, *teller, p.mariadb_account, p.pg_account,
                                         p.amount, &xid);
        std::lock_guard<std::mutex> lock(print_mu);
        std::cout << "  transfer " << i + 1 << ": " << std::setw(5) << std::abs(p.amount)
                  << (p.amount > 0 ? " from MariaDB #" : " from PostgreSQL #")
                  << (p.amount > 0 ? p.mariadb_account : p.pg_account)
                  << (p.amount > 0 ? " to PostgreSQL #" : " to MariaDB #")
                  << (p.amount > 0 ? p.pg_account : p.mariadb_account) << ": "
                  << (outcome.ok() ? std::string(xa::OutcomeName(*outcome))
                                   : outcome.status().ToString())
                  << (p.amount == 5000 ? "  (would overdraw the account: refused by a CHECK "
                                         "constraint, rolled back on both databases)"
                                       : "")
                  << "\n";
      }
    };
    std::thread second(worker, 1);
    worker(0);
    second.join();
    xa::TransactionMetrics m = manager->Metrics();
    std::cout << "  manager: " << m.Count(xa::Outcome::kCommitted) << " committed, "
              << m.Count(xa::Outcome::kRolledBack) << " rolled back, " << m.decision_records
              << " decision records; commit p50 " << std::fixed << std::setprecision(2)
              << m.total_commit.p50_us / 1000.0 << " ms\n";
  }
  PrintBalances(**bank, "after the transfers:");

  std::cout << "\n3. A copy of this program commits one more transfer (250 from MariaDB #1 to "
               "PostgreSQL #1) and is killed in the middle of the commit: both branches "
               "prepared, the commit decision durable in the log, no branch committed yet:\n";
  pid_t child = ::fork();
  if (child == 0) {
    ::setenv("XA_CRASH_POINT", "after-decision-sync", 1);
    ::setenv("XA_CRASH_COUNT", "1", 1);
    ::execl("/proc/self/exe", argv[0], "--crashing-child", log_dir.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // A build without crash points never dies by itself: it is killed after 10 s (it may have
  // finished its commit).
  const int status = xa::demo::WaitOrKill(child, std::chrono::seconds(10));
  std::cout << "  the copy died: " << xa::demo::DescribeExit(status) << "\n";
  PrintBalances(**bank, "right after the crash:");

#ifdef XA_RECOVER_PATH
  const std::string tool = XA_RECOVER_PATH;
  const std::string config = WriteRecoverConfig(work, log_dir);
  std::cout << "\n4. Recovery with the operator's tool, from the decision log the copy left:\n"
            << "  $ xa-recover --config " << config << " plan\n";
  RunTool(tool, {"--config", config, "plan"});
  std::cout << "  $ xa-recover --config " << config << " resolve\n";
  int resolved = RunTool(tool, {"--config", config, "resolve"});
  PrintBalances(**bank, "after recovery:");
  std::cout << "  $ xa-recover ... resolve   (again: nothing left to do)\n";
  RunTool(tool, {"--config", config, "resolve"});
#else
  std::cout << "\n4. xa-recover was not built; recovering through the transaction manager\n";
  int resolved = 0;
  {
    auto log = OpenLog(log_dir);
    auto manager = OpenManager(**bank, *log, /*recover=*/true);
    xa::Status(manager->WaitForBackgroundCompletion(std::chrono::seconds(30))).IgnoreError();
  }
  PrintBalances(**bank, "after recovery:");
#endif

#ifdef XA_AGENT_PATH
  const bool three_phase_ok =
      xa::demo::RunThreePhaseAct(**bank, work, XA_AGENT_PATH, "/proc/self/exe");
#else
  std::cout << "\n5. xa-agent was not built: no three-phase-commit act\n";
  const bool three_phase_ok = true;
#endif

#ifdef XA_TCC_SHOP_SERVICE_PATH
  const bool tcc_ok = xa::demo::RunTccAct(work, XA_TCC_SHOP_SERVICE_PATH, "/proc/self/exe");
#else
  std::cout << "\n6. the TCC shop's services were not built: no TCC act\n";
  const bool tcc_ok = true;
#endif

#if defined(XA_MSGD_PATH) && defined(XA_MSG_SHOP_SERVICE_PATH)
  const bool messages_ok = xa::demo::RunMessagesAct(work, XA_MSGD_PATH, XA_MSG_SHOP_SERVICE_PATH);
#else
  std::cout << "\n7. xa-msgd or the message shop was not built: no message act\n";
  const bool messages_ok = true;
#endif

  auto final_state = (*bank)->Snapshot(kNodeId);
  if (!final_state.ok()) Fail("reading balances", final_state.status());
  xa::Status invariants = (*bank)->CheckInvariants(*final_state, {});
  const bool ok = invariants.ok() && resolved == 0 && three_phase_ok && tcc_ok && messages_ok;
  std::cout << "\n" << (ok ? "OK" : "FAILED")
            << ": every transfer is on both databases or on neither, the total is "
            << final_state->total() << " (expected " << (*bank)->settings().Total()
            << "), no branch of ours is left prepared"
            << (tcc_ok ? "; every TCC order is on all three services or on none" : "")
            << (messages_ok ? "; every order announced through xa-msgd was booked exactly once"
                            : "")
            << ".\n";
  if (!invariants.ok()) std::cout << invariants.ToString() << "\n";
  std::string cleanup = "rm -rf '" + work + "'";
  if (std::system(cleanup.c_str()) != 0) {
    std::cerr << "xa-demo: could not remove " << work << "\n";
  }
  return ok ? 0 : 1;
}
