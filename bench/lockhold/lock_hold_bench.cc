// xa_lock_hold_bench: how long the rows a global transaction wrote stay locked, under 2PC and
// under 3PC, measured from the database's side (bench/lockhold/lock_probe.h).
//
//   xa_lock_hold_bench --out DIR [--quick] [--seconds S] [--recovery-delay-s R]
//                      [--agent-timeout-ms T] [--crash-repetitions N] [--slow-prepare-ms D]
//                      [--agent-restart-delay-ms A] [--agent PATH]
//                      [--cases NAME,...] [--clients N,...] [--agents-after-votes]
//                      [--link-delay-ms L] [--link-loss-percent P]
//                      [--crashed-database mariadb|postgresql] [--database-down-ms W]
//
// Cases, each for 2PC and for 3PC (two real xa-agent processes, started here):
//   no-failure          transfers (one row in MariaDB, one in PostgreSQL, one row per client)
//                       at 1, 4 and 16 clients for S seconds; a probe per database samples the
//                       hold time of the transfers it can (it waits for one at a time). Each
//                       committed transfer's Commit() call is timed (p50, p99), and the CPU of
//                       this process and of the agents is divided by the commits; each 3PC case
//                       is printed with its ratio to the 2PC case of the same clients.
//   slow-participant    as no-failure at 1 client, with the PostgreSQL branch's prepare delayed
//                       by D ms (a participant slow to vote: --slow-prepare-ms, default 50). Both
//                       rows stay locked through the slow vote; 3PC's extra rounds come on top.
//   coordinator-crash   a copy of this program writes both rows and is killed by a crash point:
//                       2PC once the commit decision is durable and nothing is committed
//                       (after-decision-sync), 3PC once every agent pre-committed
//                       (after-all-pre-committed). Nobody touches the rows until, for 2PC, a
//                       recovery pass runs R seconds after the kill; 3PC's agents finish on their
//                       own after their termination timeout T. The probes report when each
//                       database released its row; the servers' lock views confirm the probes
//                       were waiting.
//   agent-crash         3PC only: the MariaDB agent is killed by its crash point once its PRE
//                       is durable (agent-after-pre-record) and restarted A ms later (A < T,
//                       default 1000); the coordinator, alive, misses its acknowledgement and
//                       decides nothing; the other agent's termination round commits both rows.
//   agent-link          as no-failure at 1 client, with every message between the coordinator
//                       and the agents delayed by L ms each way (drawn from [0.8 L, 1.2 L],
//                       default 5) and P% of them held a further 200 ms (default 1), as a lost
//                       packet holds a TCP connection until its retransmission: a relay in this
//                       process stands between them (bench/lockhold/link_relay.h: user space, so
//                       that it runs on machines without the netem qdisc; the run says whether
//                       this one has it). 2PC talks to no agent: its row is the baseline.
//   database-crash      a transfer whose MariaDB (or --crashed-database) branch's server is
//                       killed (SIGKILL, through scripts/servers.sh) right after that branch
//                       prepared, and restarted W ms later (default 1000); the coordinator stays
//                       alive. The other database's row is released once the transfer commits
//                       there; the crashed database's row stays locked through the restart
//                       (a prepared branch keeps its locks across it) until the coordinator's
//                       completion retries reach the server again, under either protocol. The
//                       invariant: each row released within the manager's longest completion
//                       backoff + 1 s of its database being available again, and the transfer
//                       on both databases or on neither.
// --cases runs only the named cases (default: every case), --clients sets the no-failure case's
// client counts (default 1,4,16): for a closer look at one figure; the check and the published
// tables run every case. --agents-after-votes runs 3PC with the agents asked once the databases
// voted instead of during their prepares (ThreePhaseOptions::ask_agents_during_prepare).
// The crash invariants: 3PC released within T + 1 s of the kill (of the coordinator or of an
// agent), 2PC held >= R; after a database crash, see above.
//
// Writes DIR/samples.csv (every probe sample), DIR/summary.csv (a row per case and protocol),
// DIR/summary.md, and prints the table. Exit code 0 when every case ran and the invariant holds,
// 1 when a case failed or the invariant does not hold, 2 on usage errors.
//
// Needs the crash points (a build with -DXA_ENABLE_TEST_HOOKS=ON) and the environment of
// scripts/servers.sh (env.sh; the database-crash case runs its kill-mariadb/kill-pg and start).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include "bench/bench_env.h"
#include "examples/local_agents/local_agents.h"
#include "bench/lockhold/link_relay.h"
#include "bench/lockhold/lock_probe.h"
#include "examples/bank/bank.h"
#include "src/testing/forwarding_resource_manager.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/three_phase.h"
#include "xa/transaction_manager.h"

namespace xa::bench {
namespace {

using local_agents::LocalAgents;
using local_agents::LocalDatabase;
using local_agents::Spawn;
using local_agents::ChildCpuMs;
using local_agents::EnvOrEmpty;

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kTablePrefix[] = "lockhold";
constexpr char kTable[] = "lockhold_accounts";
constexpr int kAccounts = 40;  // rows 1..16 for the clients, and one row per crash case
constexpr int kMaxClients = 16;  // each client its own row
constexpr int kCrashRow = 40;
constexpr int kAgentCrashRow = 39;
constexpr int kDatabaseCrashRow = 38;
constexpr uint32_t kMainNode = 5301;       // the no-failure cases' coordinator
constexpr uint32_t kCrashNode2pc = 5302;   // the killed coordinators
constexpr uint32_t kCrashNode3pc = 5303;
constexpr uint32_t kLinkNode = 5304;       // the agent-link case's coordinator (through relays)
constexpr uint32_t kAgentNodeBase = 5311;  // the agents' own logs
constexpr char kMariaDbAgent[] = "lockhold-agent-mariadb";
constexpr char kPostgresAgent[] = "lockhold-agent-postgres";
// The crash points of the coordinator-crash case (src/testing/crash_points.h).
constexpr char kCrashPoint2pc[] = "after-decision-sync";
constexpr char kCrashPoint3pc[] = "after-all-pre-committed";
// The agent-crash case's point (in the MariaDB agent): its PRE is durable, its Ack not sent.
constexpr char kAgentCrashPoint[] = "agent-after-pre-record";
// The child announces its write with this line on its stdout: "<prefix><steady clock ns>".
constexpr char kWrittenLine[] = "written ";

struct Config {
  bool quick = false;
  std::string out_dir;
  std::string agent_path;
  double seconds = 10;
  std::vector<int> clients = {1, 4, 16};
  int recovery_delay_ms = 10000;
  int agent_timeout_ms = 2000;
  int crash_repetitions = 3;
  int slow_prepare_ms = 50;
  int agent_restart_delay_ms = 1000;
  std::vector<std::string> cases = {"no-failure",  "slow-participant", "coordinator-crash",
                                    "agent-crash", "agent-link",       "database-crash"};
  bool agents_after_votes = false;  // ThreePhaseOptions::ask_agents_during_prepare off
  int link_delay_ms = 5;
  double link_loss_percent = 1;
  std::string crashed_database = "mariadb";
  int database_down_ms = 1000;
  bool Runs(const std::string& name) const {
    return std::find(cases.begin(), cases.end(), name) != cases.end();
  }
};

// "a,b,c" -> {"a", "b", "c"}; empty items are kept, for the caller to refuse.
std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos
                                                                   : comma - start));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

// The protocol as the CSV and the check name it.
const char* ProtocolKey(Protocol protocol) {
  return protocol == Protocol::kThreePhase ? "3pc" : "2pc";
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// ---------------------------------------------------------------------------------------------
// Results

struct Sample {
  Database database = Database::kMariaDb;
  double hold_ms = 0;          // from the branch's write to the server granting the probe
  double after_crash_ms = -1;  // from the kill (coordinator, agent or database) to the grant
  int server_saw_wait = -1;    // the server's lock view showed the probe waiting (crash cases)
  // From the kill until this database took connections again: 0 for one that stayed up.
  double available_after_crash_ms = 0;
};

struct CaseResult {
  std::string name;
  Protocol protocol = Protocol::kTwoPhase;
  int clients = 1;
  std::vector<Sample> samples;
  double commits_per_s = 0;  // no-failure only
  // No-failure only: each committed transfer's Commit() call, from the call to its return (the
  // branches' writes are done before it), and the CPU the bench process (the coordinator, its
  // clients and the probes) and the agents' processes used per committed transfer.
  std::vector<double> commit_ms;
  double bench_cpu_ms_per_commit = 0;
  double agents_cpu_ms_per_commit = 0;
  // No-failure transfers that did not commit within the coordinator's phase timeouts on a loaded
  // machine: rolled back (a late vote) or left to the agents (a late acknowledgement). Counted
  // and shown, not hidden; any other outcome (a heuristic one) fails the case.
  long not_committed = 0;
  // Crash cases: the bound on each row's release after its database was available (from the
  // kill, for a database that stayed up), and which side of it is required.
  double bound_ms = 0;
  bool bound_is_upper = false;
  // The agent-link case: chunks the relays carried, and how many were held for a retransmission.
  uint64_t link_chunks = 0;
  uint64_t link_retransmitted = 0;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

std::vector<double> Holds(const CaseResult& result) {
  std::vector<double> holds;
  for (const Sample& s : result.samples) holds.push_back(s.hold_ms);
  return holds;
}

// How long after its database was available again (after the kill, for one that stayed up) a
// crash case's row was released.
double ReleaseDelayMs(const Sample& s) { return s.after_crash_ms - s.available_after_crash_ms; }

// The latest of them over every database and repetition: the figure the crash invariants are
// about.
double LatestReleaseMs(const CaseResult& result) {
  double latest = -1;
  for (const Sample& s : result.samples) latest = std::max(latest, ReleaseDelayMs(s));
  return latest;
}

// Every probe whose database stayed up was seen waiting by the server's lock view. A probe of a
// restarted database may find its row already released when it is back: it is not asked.
bool ServerSawEveryWait(const CaseResult& result) {
  return std::all_of(result.samples.begin(), result.samples.end(), [](const Sample& s) {
    return s.server_saw_wait == 1 || s.available_after_crash_ms > 0;
  });
}

// The crash invariant of one case's result (true for the cases without a crash).
bool InvariantHolds(const CaseResult& result) {
  if (result.bound_ms <= 0) return !result.samples.empty();
  if (result.samples.empty() || !ServerSawEveryWait(result)) return false;
  return std::all_of(result.samples.begin(), result.samples.end(), [&](const Sample& s) {
    // Held until its database was back: a restarted server releases no lock while it is down.
    if (s.after_crash_ms < s.available_after_crash_ms) return false;
    // 2PC after a coordinator crash: every sample held at least R (not just the latest one).
    return result.bound_is_upper ? ReleaseDelayMs(s) <= result.bound_ms
                                 : ReleaseDelayMs(s) >= result.bound_ms;
  });
}

// ---------------------------------------------------------------------------------------------
// The coordinators

Result<std::unique_ptr<DecisionLog>> OpenLog(const std::string& dir, uint32_t node) {
  LogOptions options;
  options.dir = dir;
  options.node_id = node;
  return DecisionLog::Open(options);
}

Result<std::unique_ptr<TransactionManager>> OpenManager(const bank::Bank& bank,
                                                        const ThreePhaseOptions& three_phase,
                                                        uint32_t node, DecisionLog& log,
                                                        bool recover) {
  TransactionManagerOptions options;
  options.node_id = node;
  options.recover_on_open = recover;
  options.three_phase = three_phase;
  bank.RegisterFactories(options);
  return TransactionManager::Open(options, log);
}

// A session whose Prepare() takes `delay` longer: a participant slow to vote (a busy or distant
// database). Everything else goes straight to the session it wraps.
class SlowPrepareRm final : public internal::ForwardingResourceManager {
 public:
  SlowPrepareRm(ResourceManager& inner, std::chrono::milliseconds delay)
      : ForwardingResourceManager(inner), delay_(delay) {}
  Status Prepare(const Xid& x) override {
    std::this_thread::sleep_for(delay_);
    return inner().Prepare(x);
  }

 private:
  const std::chrono::milliseconds delay_;
};

// Begins a transaction of `protocol` on the teller's sessions and writes row `row` in both
// databases; the caller commits it. `postgres_branch` and `mariadb_branch`, when given, are
// enlisted instead of the teller's sessions (wrappers of them).
Result<Transaction> BeginAndWrite(TransactionManager& manager, bank::Teller& teller,
                                  Protocol protocol, int row,
                                  ResourceManager* postgres_branch = nullptr,
                                  ResourceManager* mariadb_branch = nullptr) {
  auto txn = manager.Begin(protocol);
  if (!txn.ok()) return txn.status();
  XA_RETURN_IF_ERROR(
      txn->Enlist(mariadb_branch != nullptr ? *mariadb_branch : *teller.mariadb));
  XA_RETURN_IF_ERROR(
      txn->Enlist(postgres_branch != nullptr ? *postgres_branch : *teller.postgres));
  const std::string update = std::string("UPDATE ") + kTable +
                             " SET balance = balance + 1 WHERE id = " + std::to_string(row);
  try {
    std::unique_ptr<sql::Statement> statement(teller.mariadb->connection().createStatement());
    if (statement->executeUpdate(update) != 1) {
      return Status(Code::kInval, "no MariaDB row " + std::to_string(row));
    }
  } catch (const sql::SQLException& e) {
    return teller.mariadb->StatusFromException(e).WithContext(update);
  }
  auto changed = teller.postgres->Execute(update);
  if (!changed.ok()) return changed.status();
  if (*changed != 1) return Status(Code::kInval, "no PostgreSQL row " + std::to_string(row));
  return txn;
}

// Rolls back any branch a killed earlier run of this bench left prepared: its rows would stay
// locked (the tables could not even be re-created), and that run's logs are gone with its work
// directory. Only the bench's own node ids are touched.
Status RollBackLeftovers(const bank::Bank& bank) {
  auto teller = bank.NewTeller();
  if (!teller.ok()) return teller.status();
  for (ResourceManager* rm : {static_cast<ResourceManager*>(teller->mariadb.get()),
                              static_cast<ResourceManager*>(teller->postgres.get())}) {
    auto scan = rm->Recover();
    if (!scan.ok()) return scan.status();
    for (uint32_t node : {kMainNode, kCrashNode2pc, kCrashNode3pc, kLinkNode}) {
      for (const Xid& xid : scan->OwnedBy(node)) XA_RETURN_IF_ERROR(rm->Rollback(xid));
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The no-failure case

// The clients' announcements of a fresh write: a probe waits for one posted after it became
// idle, so that it asks for the lock while the branch still holds it.
struct Announcements {
  std::mutex mutex;
  std::condition_variable posted;
  uint64_t generation = 0;
  int row = 0;
  Clock::time_point written;
  bool stop = false;

  void Post(int posted_row, Clock::time_point at) {
    {
      std::lock_guard lock(mutex);
      ++generation;
      row = posted_row;
      written = at;
    }
    posted.notify_all();
  }
};

struct Shared {
  const Config& config;
  const bank::BankSettings& settings;
  const bank::Bank& bank;
  TransactionManager& manager;
  const LocalAgents& agents;
};

// What a run of transfers goes through, besides a healthy system.
struct LoadVariant {
  std::string name = "no-failure";
  // slow-participant: every PostgreSQL prepare takes this much longer.
  std::chrono::milliseconds slow_prepare{0};
  // agent-link: a coordinator whose messages to and from the agents cross delaying relays.
  TransactionManager* manager = nullptr;
};

// Transfers from `clients` clients for the configured seconds, a probe per database sampling the
// hold times: the no-failure case and its variants.
Result<CaseResult> RunNoFailure(Shared& shared, Protocol protocol, int clients,
                                const LoadVariant& variant = {}) {
  const std::chrono::milliseconds slow_prepare = variant.slow_prepare;
  TransactionManager& manager = variant.manager != nullptr ? *variant.manager : shared.manager;
  CaseResult result;
  result.name = variant.name;
  result.protocol = protocol;
  result.clients = clients;

  std::vector<std::unique_ptr<LockProbe>> probes;
  for (Database database : {Database::kMariaDb, Database::kPostgres}) {
    auto probe = LockProbe::Connect(database, shared.settings, kTable, std::chrono::seconds(30));
    if (!probe.ok()) return probe.status();
    probes.push_back(std::move(probe).value());
  }
  std::vector<bank::Teller> tellers;
  for (int c = 0; c < clients; ++c) {
    auto teller = shared.bank.NewTeller();
    if (!teller.ok()) return teller.status();
    tellers.push_back(std::move(teller).value());
  }
  std::vector<std::unique_ptr<SlowPrepareRm>> slow_postgres;
  for (bank::Teller& teller : tellers) {
    slow_postgres.push_back(slow_prepare.count() > 0
                                ? std::make_unique<SlowPrepareRm>(*teller.postgres, slow_prepare)
                                : nullptr);
  }

  Announcements announcements;
  std::mutex results_mutex;
  Status failure;
  std::atomic<long> commits{0};
  std::atomic<long> not_committed{0};
  auto fail = [&](Status status) {
    std::lock_guard lock(results_mutex);
    if (failure.ok()) failure = std::move(status);
  };

  std::vector<std::thread> probe_threads;
  for (auto& probe : probes) {
    probe_threads.emplace_back([&, p = probe.get()] {
      uint64_t seen;
      {
        std::lock_guard lock(announcements.mutex);
        seen = announcements.generation;
      }
      while (true) {
        int row;
        Clock::time_point written;
        {
          std::unique_lock lock(announcements.mutex);
          announcements.posted.wait(
              lock, [&] { return announcements.stop || announcements.generation > seen; });
          if (announcements.stop) return;
          row = announcements.row;
          written = announcements.written;
        }
        auto granted = p->WaitForRow(row);
        if (!granted.ok()) {
          fail(granted.status());
          return;
        }
        {
          std::lock_guard lock(results_mutex);
          result.samples.push_back({p->database(), Ms(*granted - written)});
        }
        std::lock_guard lock(announcements.mutex);
        seen = announcements.generation;  // skip what was posted during this wait: stale
      }
    });
  }

  const auto start = Clock::now();
  const double bench_cpu_before = xa::bench::SelfCpuMs();
  const double agents_cpu_before = shared.agents.CpuMs();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(shared.config.seconds));
  std::vector<std::vector<double>> commit_ms(static_cast<size_t>(clients));
  std::vector<std::thread> client_threads;
  for (int c = 0; c < clients; ++c) {
    client_threads.emplace_back([&, c] {
      const int row = c + 1;
      std::vector<double>& my_commit_ms = commit_ms[static_cast<size_t>(c)];
      while (Clock::now() < deadline) {
        auto txn = BeginAndWrite(manager, tellers[c], protocol, row,
                                 slow_postgres[static_cast<size_t>(c)].get());
        if (!txn.ok()) {
          fail(txn.status());
          return;
        }
        announcements.Post(row, Clock::now());
        const auto commit_called = Clock::now();
        auto outcome = txn->Commit();
        const double commit_took_ms = Ms(Clock::now() - commit_called);
        // 3PC reports a missing acknowledgement as unknown: the agents decide it.
        if (outcome.ok() && (*outcome == Outcome::kRolledBack ||
                             *outcome == Outcome::kCommittedCompletionPending ||
                             (protocol == Protocol::kThreePhase &&
                              *outcome == Outcome::kUnknown))) {
          not_committed.fetch_add(1);
          continue;
        }
        if (!outcome.ok() || *outcome != Outcome::kCommitted) {
          fail(outcome.ok() ? Status(Code::kInternal, std::string("a transfer ended ") +
                                                          std::string(OutcomeName(*outcome)))
                            : outcome.status());
          return;
        }
        commits.fetch_add(1);
        my_commit_ms.push_back(commit_took_ms);
      }
    });
  }
  for (auto& t : client_threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double bench_cpu_ms = xa::bench::SelfCpuMs() - bench_cpu_before;
  const double agents_cpu_ms = shared.agents.CpuMs() - agents_cpu_before;
  {
    std::lock_guard lock(announcements.mutex);
    announcements.stop = true;
  }
  announcements.posted.notify_all();
  for (auto& t : probe_threads) t.join();
  if (!failure.ok()) return failure;
  result.commits_per_s = static_cast<double>(commits.load()) / elapsed;
  result.not_committed = not_committed.load();
  for (const std::vector<double>& one : commit_ms) {
    result.commit_ms.insert(result.commit_ms.end(), one.begin(), one.end());
  }
  if (commits.load() > 0) {
    result.bench_cpu_ms_per_commit = bench_cpu_ms / static_cast<double>(commits.load());
    result.agents_cpu_ms_per_commit = agents_cpu_ms / static_cast<double>(commits.load());
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The coordinator-crash case

// The killed coordinator: writes kCrashRow in both databases, says so on stdout, and commits;
// the armed crash point kills it in the middle of the commit.
int RunCrashChild(int argc, char** argv) {
  // --crash-child <2pc|3pc> <log dir> <key file> <mariadb agent> <postgres agent> <timeout ms>
  if (argc != 8) return 2;
  const Protocol protocol =
      std::string(argv[2]) == "3pc" ? Protocol::kThreePhase : Protocol::kTwoPhase;
  SetLogLevel(LogLevel::kError);
  auto settings = bank::SettingsFromEnvironment();
  if (!settings.ok()) return 1;
  settings->table_prefix = kTablePrefix;
  auto bank = bank::Bank::Connect(*settings);
  if (!bank.ok()) return 1;
  const uint32_t node = protocol == Protocol::kThreePhase ? kCrashNode3pc : kCrashNode2pc;
  auto log = OpenLog(argv[3], node);
  if (!log.ok()) return 1;
  ThreePhaseOptions three_phase;
  if (protocol == Protocol::kThreePhase) {
    three_phase.agents = {{kMariaDbAgent, argv[5], {settings->mariadb.rm_name}},
                          {kPostgresAgent, argv[6], {settings->postgres.rm_name}}};
    three_phase.key_file = argv[4];
    three_phase.vote_timeout = milliseconds(std::atoi(argv[7]) / 2);
    three_phase.ack_timeout = milliseconds(std::atoi(argv[7]) / 2);
  }
  auto manager = OpenManager(**bank, three_phase, node, **log, /*recover=*/false);
  if (!manager.ok()) {
    std::cerr << "crash child: " << manager.status().ToString() << "\n";
    return 1;
  }
  auto teller = (*bank)->NewTeller();
  if (!teller.ok()) return 1;
  auto txn = BeginAndWrite(**manager, *teller, protocol, kCrashRow);
  if (!txn.ok()) {
    std::cerr << "crash child: " << txn.status().ToString() << "\n";
    return 1;
  }
  std::cout << kWrittenLine << Clock::now().time_since_epoch().count() << std::endl;
  auto outcome = txn->Commit();
  std::cerr << "crash child: the commit returned ("
            << (outcome.ok() ? std::string(OutcomeName(*outcome)) : outcome.status().ToString())
            << "): the crash points are not compiled in (configure with "
               "-DXA_ENABLE_TEST_HOOKS=ON)\n";
  return 3;
}

// Reads a child's output from `fd` into `text` until a whole line holding `marker` is in it, the
// child closes its end, or `limit` passes. The offset of the marker in `text`, or npos.
size_t ReadUntilLine(int fd, std::string_view marker, std::chrono::seconds limit,
                     std::string& text) {
  const auto until = Clock::now() + limit;
  while (true) {
    const size_t at = text.find(marker);
    if (at != std::string::npos && text.find('\n', at) != std::string::npos) return at;
    if (Clock::now() >= until) return std::string::npos;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buffer[512];
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return std::string::npos;
    text.append(buffer, static_cast<size_t>(n));
  }
}

// Reads the child's "written <ns>" line (bounded). The clock is CLOCK_MONOTONIC, one for every
// process of the machine.
Result<Clock::time_point> ReadWrittenLine(int fd, std::chrono::seconds limit) {
  std::string text;
  const size_t at = ReadUntilLine(fd, kWrittenLine, limit, text);
  if (at == std::string::npos) {
    return Status(Code::kTimeout, "the crashing coordinator did not write its rows (output: '" +
                                      text + "')");
  }
  const long long ns = std::atoll(text.c_str() + at + std::strlen(kWrittenLine));
  return Clock::time_point(Clock::duration(ns));
}

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with code " + std::to_string(WEXITSTATUS(status));
}

// Polls the server's lock view (bounded: 1 s) for `probe` waiting; 1 when seen, else 0.
Result<int> ObserveWait(LockWaitObserver& observer, const LockProbe& probe) {
  for (int attempt = 0; attempt < 40; ++attempt) {
    auto waits = observer.SessionWaitsForLock(probe.session_id());
    if (!waits.ok()) return waits.status();
    if (*waits) return 1;
    std::this_thread::sleep_for(milliseconds(25));
  }
  return 0;
}

// The watchers of one crash case's row: a probe per database that waits for the row (its grant
// is the release, measured from the database's side) and an observer that reads the server's
// lock view, to confirm the probe was waiting for another transaction's lock.
class CrashWatch {
 public:
  static Result<std::unique_ptr<CrashWatch>> Connect(const bank::BankSettings& settings,
                                                     std::chrono::seconds limit) {
    auto watch = std::make_unique<CrashWatch>();
    for (Database database : {Database::kMariaDb, Database::kPostgres}) {
      auto probe = LockProbe::Connect(database, settings, kTable, limit);
      if (!probe.ok()) return probe.status();
      watch->probes_.push_back(std::move(probe).value());
      auto observer = LockWaitObserver::Connect(database, settings);
      if (!observer.ok()) return observer.status();
      watch->observers_.push_back(std::move(observer).value());
    }
    return watch;
  }
  ~CrashWatch() { Join(); }

  // The probes ask for `row` now, each on a thread of its own.
  void Start(int row) {
    granted_.assign(probes_.size(), Status(Code::kInternal, "probe not run"));
    for (size_t i = 0; i < probes_.size(); ++i) {
      threads_.emplace_back([this, i, row] { granted_[i] = probes_[i]->WaitForRow(row); });
    }
  }

  // The servers' own views: each probe is waiting for a lock it does not hold (bounded: 1 s).
  Status ObserveWaits() {
    saw_wait_.assign(probes_.size(), 0);
    for (size_t i = 0; i < probes_.size(); ++i) {
      auto saw = ObserveWait(*observers_[i], *probes_[i]);
      if (!saw.ok()) return saw.status();
      saw_wait_[i] = *saw;
    }
    return Status::Ok();
  }

  void Join() {
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  // Joins the probes; one sample per database: the hold from `written`, the release after
  // `crashed`.
  Status AddSamples(CaseResult& result, Clock::time_point written, Clock::time_point crashed) {
    Join();
    for (size_t i = 0; i < probes_.size(); ++i) {
      if (!granted_[i].ok()) return granted_[i].status();
      Sample sample;
      sample.database = probes_[i]->database();
      sample.hold_ms = Ms(*granted_[i] - written);
      sample.after_crash_ms = Ms(*granted_[i] - crashed);
      sample.server_saw_wait = i < saw_wait_.size() ? saw_wait_[i] : 0;
      result.samples.push_back(sample);
    }
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<LockProbe>> probes_;
  std::vector<std::unique_ptr<LockWaitObserver>> observers_;
  std::vector<Result<Clock::time_point>> granted_;
  std::vector<std::thread> threads_;
  std::vector<int> saw_wait_;
};

Result<CaseResult> RunCoordinatorCrash(Shared& shared, const LocalAgents& agents, Protocol protocol,
                                       const std::string& work, const std::string& self) {
  const Config& config = shared.config;
  CaseResult result;
  result.name = "coordinator-crash";
  result.protocol = protocol;
  result.clients = 1;
  const bool three_phase = protocol == Protocol::kThreePhase;
  result.bound_is_upper = three_phase;
  result.bound_ms = three_phase ? config.agent_timeout_ms + 1000.0 : config.recovery_delay_ms;
  const uint32_t node = three_phase ? kCrashNode3pc : kCrashNode2pc;
  const auto probe_limit = std::chrono::seconds(
      (config.recovery_delay_ms + config.agent_timeout_ms) / 1000 + 30);

  for (int repetition = 1; repetition <= config.crash_repetitions; ++repetition) {
    const std::string log_dir =
        work + "/crash-" + ProtocolKey(protocol) + "-" + std::to_string(repetition) + "-log";
    fs::remove_all(log_dir);
    auto watch = CrashWatch::Connect(shared.settings, probe_limit);
    if (!watch.ok()) return watch.status();

    // Its stderr (the crash point's last words, or why it could not start) goes to a file.
    const std::string errors = log_dir + ".err";
    const int errors_fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int out[2];
    if (errors_fd < 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      if (errors_fd >= 0) ::close(errors_fd);
      return Status(Code::kIoError, "cannot create " + errors + " or a pipe");
    }
    const pid_t child = Spawn(
        {self, "--crash-child", ProtocolKey(protocol), log_dir, agents.key_file(),
         agents.address(0), agents.address(1), std::to_string(config.agent_timeout_ms)},
        {std::string("XA_CRASH_POINT=") + (three_phase ? kCrashPoint3pc : kCrashPoint2pc),
         "XA_CRASH_COUNT=1"},
        out[1], errors_fd);
    ::close(errors_fd);
    ::close(out[1]);
    auto written = ReadWrittenLine(out[0], std::chrono::seconds(30));
    ::close(out[0]);
    if (!written.ok()) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
      return written.status().WithContext("its stderr is in " + errors);
    }
    // The probes ask for the rows now: they wait while the child commits and dies.
    (*watch)->Start(kCrashRow);
    int status = 0;
    const auto child_limit = Clock::now() + std::chrono::seconds(30);
    while (::waitpid(child, &status, WNOHANG) == 0) {
      if (Clock::now() > child_limit) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &status, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    const Clock::time_point killed = Clock::now();
    const bool died_at_crash_point = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;

    // The probes wait for the locks of the dead coordinator's prepared branches.
    XA_RETURN_IF_ERROR((*watch)->ObserveWaits());

    Status recovered;
    if (!three_phase && died_at_crash_point) {
      // 2PC: nobody can finish the prepared branches but the coordinator: they stay locked
      // until its recovery runs, here R seconds after the crash.
      std::this_thread::sleep_until(killed + milliseconds(config.recovery_delay_ms));
      auto log = OpenLog(log_dir, node);
      if (!log.ok()) {
        recovered = log.status();
      } else {
        auto manager = OpenManager(shared.bank, {}, node, **log, /*recover=*/true);
        recovered = manager.ok() ? (*manager)->WaitForBackgroundCompletion(std::chrono::seconds(30))
                                 : manager.status();
      }
    }
    (*watch)->Join();
    if (!died_at_crash_point) {
      return Status(Code::kInternal,
                    std::string("the coordinator was to be killed by the crash point ") +
                        (three_phase ? kCrashPoint3pc : kCrashPoint2pc) + " but " +
                        DescribeExit(status) +
                        " (a build without -DXA_ENABLE_TEST_HOOKS=ON has no crash points)");
    }
    XA_RETURN_IF_ERROR(recovered);
    XA_RETURN_IF_ERROR((*watch)->AddSamples(result, *written, killed));
    if (three_phase) {
      // The restarted coordinator learns the agents' outcome and closes its pre-commit record.
      auto log = OpenLog(log_dir, node);
      if (!log.ok()) return log.status();
      auto manager = OpenManager(shared.bank, agents.CoordinatorOptions(), node, **log, true);
      if (!manager.ok()) return manager.status();
      XA_RETURN_IF_ERROR((*manager)->WaitForBackgroundCompletion(std::chrono::seconds(30)));
    }
    auto snapshot = shared.bank.Snapshot(node);
    if (!snapshot.ok()) return snapshot.status();
    if (!snapshot->prepared_ours.empty()) {
      return Status(Code::kInternal, std::to_string(snapshot->prepared_ours.size()) +
                                         " branch(es) of the killed coordinator still prepared");
    }
  }
  return result;
}

// Runs the manager's recovery passes until one converges (bounded: 60 passes 0.5 s apart);
// XA_TIMEOUT naming the transaction (`whose`) when none does.
Status RecoverUntilConverged(TransactionManager& manager, const std::string& whose) {
  Result<RecoveryReport> report = Status(Code::kInternal, "no recovery pass");
  for (int pass = 0; pass < 60; ++pass) {
    report = manager.RunRecovery();
    if (!report.ok() || report->Converged()) break;
    std::this_thread::sleep_for(milliseconds(500));
  }
  if (!report.ok()) return report.status();
  if (!report->Converged()) {
    return Status(Code::kTimeout, "the coordinator's recovery did not settle the transaction " +
                                      whose + " within 30 s");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The agent-crash case (3PC)

// The MariaDB agent is killed by its crash point once its PRE is durable, before it acknowledges
// PreCommit, and restarted D ms after its death (--agent-restart-delay-ms). The coordinator (this
// process, alive) misses that acknowledgement: it decides nothing, and Commit() returns kUnknown
// after its acknowledgement timeout (T/2). The PostgreSQL agent, PRE and never restarted, hears
// nothing for its termination timeout T and runs a termination round with the restarted agent
// (which recovered PRE): both commit their branches, fencing the coordinator's sessions. The
// probes measure each row's release after the agent's death; the bound is T + 1 s (D < T: the
// restarted agent answers the round). Then the coordinator's recovery adopts the agents' COMMIT.
Result<CaseResult> RunAgentCrash(Shared& shared, LocalAgents& agents) {
  const Config& config = shared.config;
  CaseResult result;
  result.name = "agent-crash";
  result.protocol = Protocol::kThreePhase;
  result.clients = 1;
  result.bound_is_upper = true;
  result.bound_ms = config.agent_timeout_ms + 1000.0;
  const auto probe_limit = std::chrono::seconds(
      (config.agent_timeout_ms + config.agent_restart_delay_ms) / 1000 + 30);
  for (int repetition = 1; repetition <= config.crash_repetitions; ++repetition) {
    XA_RETURN_IF_ERROR(agents.Relaunch(
        0, {std::string("XA_CRASH_POINT=") + kAgentCrashPoint, "XA_CRASH_COUNT=1"}));
    auto watch = CrashWatch::Connect(shared.settings, probe_limit);
    if (!watch.ok()) return watch.status();
    auto teller = shared.bank.NewTeller();  // its sessions are fenced by the agents: one a run
    if (!teller.ok()) return teller.status();
    auto txn = BeginAndWrite(shared.manager, *teller, Protocol::kThreePhase, kAgentCrashRow);
    if (!txn.ok()) return txn.status();
    const Clock::time_point written = Clock::now();
    (*watch)->Start(kAgentCrashRow);
    Result<Outcome> outcome = Status(Code::kInternal, "Commit() not called");
    std::thread committer([&] { outcome = txn->Commit(); });
    Result<Clock::time_point> died = agents.WaitDied(0, std::chrono::seconds(30));
    Status observed = died.ok() ? (*watch)->ObserveWaits() : died.status();
    if (died.ok()) {
      std::this_thread::sleep_until(*died + milliseconds(config.agent_restart_delay_ms));
    }
    const Status restarted = agents.Relaunch(0, {});
    committer.join();
    XA_RETURN_IF_ERROR(observed);
    XA_RETURN_IF_ERROR(restarted);
    XA_RETURN_IF_ERROR((*watch)->AddSamples(result, written, *died));
    if (!outcome.ok()) return outcome.status();
    if (*outcome != Outcome::kUnknown && *outcome != Outcome::kCommitted) {
      return Status(Code::kInternal,
                    std::string("the transaction whose agent died after PRE ended ") +
                        std::string(OutcomeName(*outcome)) + " (" + txn->last_status().ToString() +
                        "): every agent was PRE, so only a commit is right");
    }
    // The coordinator learns the agents' COMMIT at a recovery pass and ends its record.
    XA_RETURN_IF_ERROR(RecoverUntilConverged(shared.manager, "whose agent was killed"));
    auto snapshot = shared.bank.Snapshot(kMainNode);
    if (!snapshot.ok()) return snapshot.status();
    if (!snapshot->prepared_ours.empty()) {
      return Status(Code::kInternal, std::to_string(snapshot->prepared_ours.size()) +
                                         " branch(es) still prepared after the agent crash");
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The agent-link case (delay and loss between the coordinator and the agents)

// Whether this machine's kernel can shape a link with netem, tried in a network namespace of its
// own (no real interface is touched): "available", or "unavailable (<why>)". The bench shapes the
// link with its relay either way, so that its figures mean the same on every machine.
std::string NetemAvailability() {
  FILE* pipe = ::popen("PATH=\"$PATH:/usr/sbin:/sbin\" unshare -n tc qdisc add dev lo root "
                       "netem delay 1ms 2>&1",
                       "r");
  if (pipe == nullptr) return "unavailable (cannot run unshare and tc)";
  std::string output;
  char buffer[256];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  if (status == 0) return "available";
  const size_t end = output.find('\n');
  return "unavailable (" + (output.empty() ? "exit " + std::to_string(status)
                                           : output.substr(0, end)) + ")";
}

// Transfers at 1 client through a coordinator of its own whose agents are reached through
// relays that delay every chunk and hold some for a retransmission.
Result<CaseResult> RunAgentLink(Shared& shared, Protocol protocol, const std::string& work) {
  const Config& config = shared.config;
  LinkShape shape;
  shape.min_delay = std::chrono::microseconds(config.link_delay_ms * 800);
  shape.max_delay = std::chrono::microseconds(config.link_delay_ms * 1200);
  shape.loss = config.link_loss_percent / 100.0;
  ThreePhaseOptions three_phase = shared.agents.CoordinatorOptions();
  three_phase.ask_agents_during_prepare = !config.agents_after_votes;
  std::vector<std::unique_ptr<LinkRelay>> relays;
  for (size_t i = 0; i < three_phase.agents.size(); ++i) {
    auto relay = LinkRelay::Start(three_phase.agents[i].address, shape, /*seed=*/i + 1);
    if (!relay.ok()) return relay.status();
    three_phase.agents[i].address = (*relay)->address();
    relays.push_back(std::move(relay).value());
  }
  const std::string log_dir = work + "/link-" + ProtocolKey(protocol) + "-log";
  fs::remove_all(log_dir);
  auto log = OpenLog(log_dir, kLinkNode);
  if (!log.ok()) return log.status();
  auto manager = OpenManager(shared.bank, three_phase, kLinkNode, **log, /*recover=*/false);
  if (!manager.ok()) return manager.status();
  // A long-running service has its connections to the agents open and authenticated: a few
  // transfers first fill the coordinator's pools (each new connection's handshake crosses the
  // slow link too), so that the measured ones show the link's cost per transfer.
  auto teller = shared.bank.NewTeller();
  if (!teller.ok()) return teller.status();
  for (int warm = 0; warm < 5; ++warm) {
    auto txn = BeginAndWrite(**manager, *teller, protocol, kAgentCrashRow);
    if (!txn.ok()) return txn.status();
    auto outcome = txn->Commit();
    if (!outcome.ok()) return outcome.status();
  }
  Result<CaseResult> result =
      RunNoFailure(shared, protocol, 1, {"agent-link", milliseconds(0), manager->get()});
  manager->reset();  // its connections cross the relays: closed before them
  if (result.ok()) {
    for (const auto& relay : relays) {
      result->link_chunks += relay->chunks();
      result->link_retransmitted += relay->retransmitted();
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The database-crash case

// `scripts/servers.sh <command>` (kill-mariadb, kill-pg, start) on the servers of this run's
// environment, running: Finish waits for it and keeps its output in WORK/servers-<command>.log.
class ServersScript {
 public:
  static Result<std::unique_ptr<ServersScript>> Run(const std::string& work,
                                                    const std::string& command) {
    const std::string script = EnvOrEmpty("XA_TEST_SERVERS_SCRIPT");
    if (script.empty()) {
      return Status(Code::kConfig,
                    "the database-crash case kills and restarts a server with scripts/servers.sh, "
                    "but XA_TEST_SERVERS_SCRIPT is not set: source the env.sh that "
                    "`scripts/servers.sh start` writes");
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return Status(Code::kIoError, "cannot create a pipe");
    const pid_t child = Spawn({"/bin/bash", script, command}, {}, out[1], out[1]);
    ::close(out[1]);
    if (child < 0) {
      ::close(out[0]);
      return Status(Code::kIoError, "cannot run " + script + " " + command);
    }
    return std::unique_ptr<ServersScript>(
        new ServersScript(script + " " + command, work + "/servers-" + command + ".log", child,
                          out[0]));
  }
  ~ServersScript() { (void)Finish(); }

  // Reads its output until a line holding `marker` (bounded); returns when that line was read.
  Result<Clock::time_point> WaitForLine(const std::string& marker, std::chrono::seconds limit) {
    if (ReadUntilLine(fd_, marker, limit, output_) != std::string::npos) return Clock::now();
    return Status(Code::kTimeout, name_ + " did not print '" + marker + "' (output: '" +
                                      output_ + "')");
  }

  // Waits for it to exit; OK when it exited 0. Its output is then in its log file.
  Status Finish() {
    if (pid_ < 0) return finished_;
    char buffer[512];
    ssize_t n;
    while ((n = ::read(fd_, buffer, sizeof(buffer))) > 0) {
      output_.append(buffer, static_cast<size_t>(n));
    }
    ::close(fd_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    std::ofstream(log_, std::ios::app) << output_;
    finished_ = WIFEXITED(status) && WEXITSTATUS(status) == 0
                    ? Status::Ok()
                    : Status(Code::kIoError, name_ + " " + DescribeExit(status) +
                                                 "; its output is in " + log_);
    return finished_;
  }

 private:
  ServersScript(std::string name, std::string log, pid_t pid, int fd)
      : name_(std::move(name)), log_(std::move(log)), pid_(pid), fd_(fd) {}
  std::string name_, log_;
  pid_t pid_;
  int fd_;
  std::string output_;
  Status finished_;
};

// The branch on the server to be killed: once it has prepared, it waits (bounded) until the
// bench has killed its server, so the coordinator, alive, finds that server dead for the rest of
// the transaction. (The kill runs on the bench's main thread: a child process started from a
// coordinator's thread would get the SIGTERM Spawn arms for when that thread ends.)
class PauseAfterPrepareRm final : public internal::ForwardingResourceManager {
 public:
  explicit PauseAfterPrepareRm(ResourceManager& inner) : ForwardingResourceManager(inner) {}
  Status Prepare(const Xid& x) override {
    Status prepared = inner().Prepare(x);
    std::unique_lock lock(mutex_);
    prepared_ = true;
    changed_.notify_all();
    if (prepared.ok()) changed_.wait_for(lock, std::chrono::seconds(60), [&] { return resumed_; });
    return prepared;
  }
  // Whether the branch prepared within `limit`.
  bool WaitPrepared(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return prepared_; });
  }
  void Resume() {
    std::lock_guard lock(mutex_);
    resumed_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool prepared_ = false;
  bool resumed_ = false;
};

// Row `row`'s balance in `database`, read on a fresh session.
Result<int64_t> RowBalance(const bank::BankSettings& settings, Database database, int row) {
  auto session = SqlSession::Connect(database, settings, std::chrono::seconds(30));
  if (!session.ok()) return session.status();
  auto rows = (*session)->Query(std::string("SELECT balance FROM ") + kTable + " WHERE id = " +
                                std::to_string(row));
  if (!rows.ok()) return rows.status();
  if (rows->size() != 1 || rows->front().empty()) {
    return Status(Code::kInval, std::string("no row ") + std::to_string(row) + " in " + kTable +
                                    " of " + DatabaseName(database));
  }
  return std::stoll(rows->front().front());
}

// How many branches of coordinator `node` are prepared on either database, on fresh sessions.
Result<size_t> PreparedBranchesOf(const bank::Bank& bank, uint32_t node) {
  auto teller = bank.NewTeller();
  if (!teller.ok()) return teller.status();
  size_t prepared = 0;
  for (ResourceManager* rm : {static_cast<ResourceManager*>(teller->mariadb.get()),
                              static_cast<ResourceManager*>(teller->postgres.get())}) {
    auto scan = rm->Recover();
    if (!scan.ok()) return scan.status();
    prepared += scan->OwnedBy(node).size();
  }
  return prepared;
}

Result<CaseResult> RunDatabaseCrash(Shared& shared, Protocol protocol, const std::string& work) {
  const Config& config = shared.config;
  const bank::BankSettings& settings = shared.settings;
  const Database crashed =
      config.crashed_database == "postgresql" ? Database::kPostgres : Database::kMariaDb;
  const Database survivor =
      crashed == Database::kMariaDb ? Database::kPostgres : Database::kMariaDb;
  const std::string kill_command = crashed == Database::kMariaDb ? "kill-mariadb" : "kill-pg";
  CaseResult result;
  result.name = "database-crash";
  result.protocol = protocol;
  result.clients = 1;
  result.bound_is_upper = true;
  // The coordinator's background completion retries the unreachable branch with a backoff that
  // grows to this; once the server is back, the next attempt finishes it.
  result.bound_ms = Ms(TransactionManagerOptions{}.background_retry.max_backoff) + 1000.0;
  const auto probe_limit = std::chrono::seconds(config.database_down_ms / 1000 + 90);

  for (int repetition = 1; repetition <= config.crash_repetitions; ++repetition) {
    auto before_crashed = RowBalance(settings, crashed, kDatabaseCrashRow);
    auto before_survivor = RowBalance(settings, survivor, kDatabaseCrashRow);
    if (!before_crashed.ok()) return before_crashed.status();
    if (!before_survivor.ok()) return before_survivor.status();
    auto teller = shared.bank.NewTeller();  // its session on the crashed server dies with it
    if (!teller.ok()) return teller.status();
    ResourceManager& doomed = crashed == Database::kMariaDb
                                  ? static_cast<ResourceManager&>(*teller->mariadb)
                                  : static_cast<ResourceManager&>(*teller->postgres);
    PauseAfterPrepareRm killer(doomed);
    auto survivor_probe = LockProbe::Connect(survivor, settings, kTable, probe_limit);
    if (!survivor_probe.ok()) return survivor_probe.status();
    auto survivor_observer = LockWaitObserver::Connect(survivor, settings);
    if (!survivor_observer.ok()) return survivor_observer.status();

    auto txn = BeginAndWrite(shared.manager, *teller, protocol, kDatabaseCrashRow,
                             crashed == Database::kPostgres ? &killer : nullptr,
                             crashed == Database::kMariaDb ? &killer : nullptr);
    if (!txn.ok()) return txn.status();
    const Clock::time_point written = Clock::now();
    // The surviving database's probe waits for its row from now on, as the server's view shows.
    Result<Clock::time_point> survivor_granted = Status(Code::kInternal, "probe not run");
    std::thread survivor_waiter(
        [&] { survivor_granted = (*survivor_probe)->WaitForRow(kDatabaseCrashRow); });
    Result<Outcome> outcome = Status(Code::kInternal, "Commit() not called");
    std::thread committer([&] { outcome = txn->Commit(); });
    Result<Clock::time_point> killed =
        Status(Code::kTimeout, std::string("the ") + DatabaseName(crashed) +
                                   " branch to be killed after its prepare never prepared");
    const bool branch_prepared = killer.WaitPrepared(std::chrono::seconds(60));
    // While the branch pauses, the surviving database's row is locked and its probe waiting.
    Result<int> survivor_saw = ObserveWait(**survivor_observer, **survivor_probe);
    auto kill_script = branch_prepared
                           ? ServersScript::Run(work, kill_command)
                           : Result<std::unique_ptr<ServersScript>>(killed.status());
    if (kill_script.ok()) {
      // The script says SIGKILL as it sends it. The process may take a while longer to vanish
      // (the script waits for that), but it serves nothing from then on.
      killed = (*kill_script)->WaitForLine("SIGKILL", std::chrono::seconds(30));
    }
    killer.Resume();
    const Status kill_finished = kill_script.ok() ? (*kill_script)->Finish() : kill_script.status();
    if (killed.ok()) {
      std::this_thread::sleep_until(*killed + milliseconds(config.database_down_ms));
    }
    // Started again whatever happened: the later cases and tests need the server. The crashed
    // database's probe connects the moment the server takes connections again (while the script
    // still checks the accounts), and asks for its row at once.
    auto start_script = ServersScript::Run(work, "start");
    Result<std::unique_ptr<LockProbe>> crashed_probe =
        Status(Code::kTimeout, std::string("the restarted ") + DatabaseName(crashed) +
                                   " server took no connection within 120 s");
    const auto connect_until = Clock::now() + std::chrono::seconds(120);
    while (start_script.ok() && Clock::now() < connect_until) {
      auto probe = LockProbe::Connect(crashed, settings, kTable, probe_limit);
      if (probe.ok()) {
        crashed_probe = std::move(probe);
        break;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    const Clock::time_point back = Clock::now();
    Result<Clock::time_point> crashed_granted = Status(Code::kInternal, "probe not run");
    Result<int> crashed_saw = 0;
    if (!start_script.ok()) {
      crashed_granted = start_script.status();
    } else if (crashed_probe.ok()) {
      std::thread crashed_waiter(
          [&] { crashed_granted = (*crashed_probe)->WaitForRow(kDatabaseCrashRow); });
      auto crashed_observer = LockWaitObserver::Connect(crashed, settings);
      crashed_saw = crashed_observer.ok() ? ObserveWait(**crashed_observer, **crashed_probe)
                                          : Result<int>(crashed_observer.status());
      crashed_waiter.join();
    } else {
      crashed_granted = crashed_probe.status();
    }
    const Status restarted = start_script.ok() ? (*start_script)->Finish() : start_script.status();
    committer.join();
    survivor_waiter.join();
    if (!killed.ok()) return killed.status();
    XA_RETURN_IF_ERROR(kill_finished);
    XA_RETURN_IF_ERROR(restarted);
    if (!survivor_saw.ok()) return survivor_saw.status();
    if (!crashed_saw.ok()) return crashed_saw.status();
    if (!survivor_granted.ok()) return survivor_granted.status();
    if (!crashed_granted.ok()) return crashed_granted.status();
    if (!outcome.ok()) return outcome.status();
    if (*outcome != Outcome::kCommitted && *outcome != Outcome::kCommittedCompletionPending &&
        *outcome != Outcome::kRolledBack && *outcome != Outcome::kUnknown) {
      return Status(Code::kInternal, std::string("the transfer whose ") +
                                         DatabaseName(crashed) + " server was killed ended " +
                                         std::string(OutcomeName(*outcome)) + " (" +
                                         txn->last_status().ToString() + ")");
    }

    // Whoever finishes the branch (the background completion, a recovery pass, the agents),
    // nothing of the transfer may stay prepared.
    XA_RETURN_IF_ERROR(shared.manager.WaitForBackgroundCompletion(std::chrono::seconds(60)));
    XA_RETURN_IF_ERROR(RecoverUntilConverged(shared.manager, "whose database was killed"));
    auto prepared = PreparedBranchesOf(shared.bank, kMainNode);
    if (!prepared.ok()) return prepared.status();
    if (*prepared != 0) {
      return Status(Code::kInternal, std::to_string(*prepared) +
                                         " branch(es) still prepared after the database crash");
    }
    // Complete everywhere or nowhere: both rows moved by the same amount, one transfer at most.
    auto after_crashed = RowBalance(settings, crashed, kDatabaseCrashRow);
    auto after_survivor = RowBalance(settings, survivor, kDatabaseCrashRow);
    if (!after_crashed.ok()) return after_crashed.status();
    if (!after_survivor.ok()) return after_survivor.status();
    const int64_t moved_crashed = *after_crashed - *before_crashed;
    const int64_t moved_survivor = *after_survivor - *before_survivor;
    // A commit moved both rows by one, a rollback neither; an unknown outcome (3PC, left to the
    // agents) either, on both.
    const int64_t expected = *outcome == Outcome::kRolledBack ? 0
                             : *outcome == Outcome::kUnknown  ? moved_crashed
                                                              : 1;
    if (moved_crashed != moved_survivor || moved_crashed != expected || moved_crashed < 0 ||
        moved_crashed > 1) {
      return Status(Code::kInternal,
                    "after the database crash the transfer moved " +
                        std::to_string(moved_crashed) + " on " + DatabaseName(crashed) + " and " +
                        std::to_string(moved_survivor) + " on " + DatabaseName(survivor) +
                        " (outcome " + std::string(OutcomeName(*outcome)) +
                        "): it must be on both databases or on neither");
    }

    Sample stayed_up;
    stayed_up.database = survivor;
    stayed_up.hold_ms = Ms(*survivor_granted - written);
    stayed_up.after_crash_ms = Ms(*survivor_granted - *killed);
    stayed_up.server_saw_wait = *survivor_saw;
    Sample restarted_one;
    restarted_one.database = crashed;
    restarted_one.hold_ms = Ms(*crashed_granted - written);
    restarted_one.after_crash_ms = Ms(*crashed_granted - *killed);
    restarted_one.server_saw_wait = *crashed_saw;
    restarted_one.available_after_crash_ms = Ms(back - *killed);
    result.samples.push_back(stayed_up);
    result.samples.push_back(restarted_one);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output

std::string Fixed(double value, int digits = 1) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(digits) << value;
  return out.str();
}

std::string CrashText(const CaseResult& r) {
  if (r.bound_ms <= 0) return "";
  return "released " + Fixed(LatestReleaseMs(r) / 1000.0, 2) + " s after " +
         (r.name == "database-crash" ? "its database was back" : "the kill") + " (" +
         (r.bound_is_upper ? "must be <= " : "must be >= ") + Fixed(r.bound_ms / 1000.0, 2) +
         " s): " + (InvariantHolds(r) ? "ok" : "VIOLATED");
}

void PrintTable(std::ostream& out, const std::vector<CaseResult>& results, bool markdown) {
  if (markdown) {
    out << "| case | protocol | clients | samples | p50 ms | p99 ms | max ms | commits/s | "
           "not committed | crash: release after the kill |\n|---|---|---|---|---|---|---|---|---|---|\n";
  } else {
    out << std::left << std::setw(19) << "case" << std::setw(9) << "protocol" << std::right
        << std::setw(8) << "clients" << std::setw(9) << "samples" << std::setw(10) << "p50 ms"
        << std::setw(10) << "p99 ms" << std::setw(10) << "max ms" << std::setw(11) << "commits/s"
        << std::setw(9) << "not c." << "  crash: release after the kill\n";
  }
  for (const CaseResult& r : results) {
    const std::vector<double> holds = Holds(r);
    const std::string commits = r.bound_ms > 0 ? "-" : Fixed(r.commits_per_s);
    const std::string not_committed = r.bound_ms > 0 ? "-" : std::to_string(r.not_committed);
    if (markdown) {
      out << "| " << r.name << " | " << ProtocolKey(r.protocol) << " | " << r.clients << " | "
          << holds.size() << " | " << Fixed(Percentile(holds, 0.5)) << " | "
          << Fixed(Percentile(holds, 0.99)) << " | " << Fixed(Percentile(holds, 1.0)) << " | "
          << commits << " | " << not_committed << " | " << CrashText(r) << " |\n";
    } else {
      out << std::left << std::setw(19) << r.name << std::setw(9) << ProtocolKey(r.protocol)
          << std::right << std::setw(8) << r.clients << std::setw(9) << holds.size()
          << std::setw(10) << Fixed(Percentile(holds, 0.5)) << std::setw(10)
          << Fixed(Percentile(holds, 0.99)) << std::setw(10) << Fixed(Percentile(holds, 1.0))
          << std::setw(11) << commits << std::setw(9) << not_committed << "  " << CrashText(r)
          << "\n";
    }
  }
}

// The no-failure and slow-participant cases' commit latency and CPU per committed transfer, and
// beside each 3PC case its ratio to the 2PC case of the same name and clients (measured in the
// same run).
void PrintCommitTable(std::ostream& out, const std::vector<CaseResult>& results, bool markdown) {
  auto two_phase_twin = [&](const CaseResult& r) -> const CaseResult* {
    for (const CaseResult& other : results) {
      if (other.bound_ms <= 0 && other.protocol == Protocol::kTwoPhase &&
          other.clients == r.clients && other.name == r.name) {
        return &other;
      }
    }
    return nullptr;
  };
  auto ratio = [](double value, double base) {
    return base > 0 ? Fixed(value / base, 2) + "x" : std::string("-");
  };
  if (markdown) {
    out << "| case | protocol | clients | commits | commit p50 ms | commit p99 ms | commits/s | "
           "CPU ms/commit, bench | CPU ms/commit, agents | p50 vs 2PC | p99 vs 2PC | "
           "commits/s vs 2PC |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  } else {
    out << std::left << std::setw(19) << "case" << std::setw(9) << "protocol" << std::right
        << std::setw(8) << "clients"
        << std::setw(9) << "commits" << std::setw(10) << "p50 ms" << std::setw(10) << "p99 ms"
        << std::setw(11) << "commits/s" << std::setw(12) << "cpu bench" << std::setw(12)
        << "cpu agents" << std::setw(11) << "p50 /2PC" << std::setw(11) << "p99 /2PC"
        << std::setw(11) << "c/s /2PC" << "\n";
  }
  for (const CaseResult& r : results) {
    if (r.bound_ms > 0) continue;
    const double p50 = Percentile(r.commit_ms, 0.5), p99 = Percentile(r.commit_ms, 0.99);
    const CaseResult* base = r.protocol == Protocol::kThreePhase ? two_phase_twin(r) : nullptr;
    const std::string p50_ratio = base ? ratio(p50, Percentile(base->commit_ms, 0.5)) : "-";
    const std::string p99_ratio = base ? ratio(p99, Percentile(base->commit_ms, 0.99)) : "-";
    const std::string rate_ratio = base ? ratio(r.commits_per_s, base->commits_per_s) : "-";
    if (markdown) {
      out << "| " << r.name << " | " << ProtocolKey(r.protocol) << " | " << r.clients << " | "
          << r.commit_ms.size()
          << " | " << Fixed(p50, 2) << " | " << Fixed(p99, 2) << " | " << Fixed(r.commits_per_s)
          << " | " << Fixed(r.bench_cpu_ms_per_commit, 2) << " | "
          << Fixed(r.agents_cpu_ms_per_commit, 2) << " | " << p50_ratio << " | " << p99_ratio
          << " | " << rate_ratio << " |\n";
    } else {
      out << std::left << std::setw(19) << r.name << std::setw(9) << ProtocolKey(r.protocol)
          << std::right << std::setw(8) << r.clients << std::setw(9) << r.commit_ms.size()
          << std::setw(10) << Fixed(p50, 2)
          << std::setw(10) << Fixed(p99, 2) << std::setw(11) << Fixed(r.commits_per_s)
          << std::setw(12) << Fixed(r.bench_cpu_ms_per_commit, 2) << std::setw(12)
          << Fixed(r.agents_cpu_ms_per_commit, 2) << std::setw(11) << p50_ratio << std::setw(11)
          << p99_ratio << std::setw(11) << rate_ratio << "\n";
    }
  }
}

void WriteSamples(const std::string& path, const std::vector<CaseResult>& results) {
  std::ofstream out(path);
  out << "case,protocol,clients,database,hold_ms,after_crash_ms,server_saw_wait,"
         "available_after_crash_ms\n";
  for (const CaseResult& r : results) {
    for (const Sample& s : r.samples) {
      out << r.name << "," << ProtocolKey(r.protocol) << "," << r.clients << ","
          << DatabaseName(s.database) << "," << Fixed(s.hold_ms, 3) << ","
          << Fixed(s.after_crash_ms, 3) << "," << s.server_saw_wait << ","
          << Fixed(s.available_after_crash_ms, 3) << "\n";
    }
  }
}

void WriteSummary(const std::string& path, const std::vector<CaseResult>& results) {
  std::ofstream out(path);
  out << "case,protocol,clients,samples,p50_ms,p99_ms,max_ms,commits_per_s,"
         "released_after_crash_ms,bound,bound_ms,server_saw_wait,verdict,not_committed,"
         "commit_p50_ms,commit_p99_ms,bench_cpu_ms_per_commit,agents_cpu_ms_per_commit\n";
  for (const CaseResult& r : results) {
    const std::vector<double> holds = Holds(r);
    const bool crash = r.bound_ms > 0;
    out << r.name << "," << ProtocolKey(r.protocol) << "," << r.clients << "," << holds.size()
        << "," << Fixed(Percentile(holds, 0.5), 3) << "," << Fixed(Percentile(holds, 0.99), 3)
        << "," << Fixed(Percentile(holds, 1.0), 3) << ","
        << (crash ? "" : Fixed(r.commits_per_s, 2)) << ","
        << (crash ? Fixed(LatestReleaseMs(r), 3) : "") << ","
        << (crash ? (r.bound_is_upper ? "max" : "min") : "") << ","
        << (crash ? Fixed(r.bound_ms, 0) : "") << ","
        << (crash ? (ServerSawEveryWait(r) ? "1" : "0") : "") << ","
        << (InvariantHolds(r) ? "ok" : "violated") << ","
        << (crash ? "" : std::to_string(r.not_committed)) << ","
        << (crash ? "" : Fixed(Percentile(r.commit_ms, 0.5), 3)) << ","
        << (crash ? "" : Fixed(Percentile(r.commit_ms, 0.99), 3)) << ","
        << (crash ? "" : Fixed(r.bench_cpu_ms_per_commit, 3)) << ","
        << (crash ? "" : Fixed(r.agents_cpu_ms_per_commit, 3)) << "\n";
  }
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

void WriteMarkdown(const std::string& path, const Config& config,
                   const std::vector<CaseResult>& results, const std::string& netem,
                   const std::string& load_before, const std::string& load_after) {
  std::ofstream out(path);
  out << "# Lock hold times, 2PC and 3PC\n\n"
      << "Measured from the database's side: a probe session waits for the lock of each row a "
         "branch wrote (SELECT ... FOR UPDATE) and the hold time runs from the branch's write to "
         "the server granting the probe that lock.\n\n"
      << "- mode: " << (config.quick ? "quick" : "full") << "; " << config.seconds
      << " s per no-failure case; " << config.crash_repetitions
      << " coordinator crash(es) per protocol and agent crash(es) (3PC); an agent restarted "
      << config.agent_restart_delay_ms / 1000.0 << " s after its death\n"
      << "- recovery of the killed 2PC coordinator after R = " << config.recovery_delay_ms / 1000.0
      << " s; agents' termination timeout T = " << config.agent_timeout_ms / 1000.0 << " s\n"
      << "- 3PC asks the agents "
      << (config.agents_after_votes ? "once the databases voted" : "during the databases' prepares")
      << " (ThreePhaseOptions::ask_agents_during_prepare "
      << (config.agents_after_votes ? "off" : "on, the default") << ")\n"
      << "- agent-link: every coordinator-agent message delayed " << config.link_delay_ms
      << " ms each way (+-20%), " << Fixed(config.link_loss_percent)
      << "% of them held 200 ms more (a TCP retransmission), by a relay in the bench (user "
         "space); this machine's netem: "
      << netem << "\n"
      << "- database-crash: the " << config.crashed_database
      << " server killed (SIGKILL) right after its branch prepared and restarted "
      << config.database_down_ms / 1000.0 << " s later; the coordinator stays alive\n"
      << "- machine: " << std::thread::hardware_concurrency() << " cores; load average "
      << load_before << " before, " << load_after << " after\n\n";
  PrintTable(out, results, /*markdown=*/true);
  out << "\nCommit latency (the transaction manager's Commit(), the branches' writes done before it) "
         "and CPU per committed transfer (user + system; the bench process holds the coordinator, "
         "its clients and the probes; the agents are the two xa-agent processes; the database "
         "servers' CPU is not counted), with each 3PC case's ratio to the 2PC case of the same "
         "clients:\n\n";
  PrintCommitTable(out, results, /*markdown=*/true);
  out << "\n";
  for (const CaseResult& r : results) {
    if (r.name == "agent-link" && r.protocol == Protocol::kThreePhase) {
      out << "- agent-link, 3pc: the relays carried " << r.link_chunks << " chunks and held "
          << r.link_retransmitted << " of them for a retransmission\n";
    }
    if (r.bound_ms <= 0) continue;
    const char* what = r.name == "agent-crash"      ? "an agent killed"
                       : r.name == "database-crash" ? "a database killed"
                                                    : "coordinator killed";
    out << "- " << what << ", " << ProtocolKey(r.protocol) << ": " << CrashText(r)
        << (ServerSawEveryWait(r) ? "; the servers' lock views showed every probe waiting"
                                  : "; a server's lock view did NOT show a probe waiting");
    if (r.name == "database-crash") {
      const auto restarted = std::count_if(r.samples.begin(), r.samples.end(), [](const Sample& s) {
        return s.available_after_crash_ms > 0;
      });
      const auto still_locked = std::count_if(r.samples.begin(), r.samples.end(), [](const Sample& s) {
        return s.available_after_crash_ms > 0 && s.server_saw_wait == 1;
      });
      out << " (of the database that stayed up; the restarted one's probe found its row still "
             "locked, by the server's view, in "
          << still_locked << " of " << restarted << " restarts)";
    }
    out << "\n";
  }
}

// ---------------------------------------------------------------------------------------------

int Usage() {
  std::cerr << "usage: xa_lock_hold_bench --out DIR [--quick] [--seconds S] "
               "[--recovery-delay-s R] [--agent-timeout-ms T] [--crash-repetitions N] "
               "[--slow-prepare-ms D] [--agent-restart-delay-ms A] [--agent PATH] "
               "[--cases no-failure,slow-participant,coordinator-crash,agent-crash,agent-link,"
               "database-crash] [--clients N,...] [--agents-after-votes] [--link-delay-ms L] "
               "[--link-loss-percent P] [--crashed-database mariadb|postgresql] "
               "[--database-down-ms W]\n";
  return 2;
}

int Main(int argc, char** argv) {
  Config config;
#ifdef XA_AGENT_PATH
  config.agent_path = XA_AGENT_PATH;
#endif
  bool seconds_given = false, delay_given = false, repetitions_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "xa_lock_hold_bench: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") config.quick = true;
    else if (a == "--agents-after-votes") config.agents_after_votes = true;
    else if (a == "--out") config.out_dir = next();
    else if (a == "--agent") config.agent_path = next();
    else if (a == "--seconds") config.seconds = std::stod(next()), seconds_given = true;
    else if (a == "--recovery-delay-s") {
      config.recovery_delay_ms = static_cast<int>(std::stod(next()) * 1000);
      delay_given = true;
    } else if (a == "--agent-timeout-ms") config.agent_timeout_ms = std::stoi(next());
    else if (a == "--crash-repetitions") {
      config.crash_repetitions = std::stoi(next());
      repetitions_given = true;
    } else if (a == "--agent-restart-delay-ms") {
      config.agent_restart_delay_ms = std::stoi(next());
    } else if (a == "--slow-prepare-ms") {
      config.slow_prepare_ms = std::stoi(next());
      if (config.slow_prepare_ms <= 0) return Usage();
    } else if (a == "--link-delay-ms") {
      config.link_delay_ms = std::stoi(next());
    } else if (a == "--link-loss-percent") {
      config.link_loss_percent = std::stod(next());
    } else if (a == "--crashed-database") {
      config.crashed_database = next();
      if (config.crashed_database != "mariadb" && config.crashed_database != "postgresql") {
        std::cerr << "xa_lock_hold_bench: --crashed-database: '" << config.crashed_database
                  << "' is neither mariadb nor postgresql\n";
        return Usage();
      }
    } else if (a == "--database-down-ms") {
      config.database_down_ms = std::stoi(next());
    } else if (a == "--cases") {
      const Config defaults;
      config.cases = SplitList(next());
      for (const std::string& name : config.cases) {
        if (!defaults.Runs(name)) {
          std::cerr << "xa_lock_hold_bench: --cases: no case is named '" << name << "'\n";
          return Usage();
        }
      }
    } else if (a == "--clients") {
      config.clients.clear();
      for (const std::string& item : SplitList(next())) {
        const int clients = std::atoi(item.c_str());
        if (clients < 1 || clients > kMaxClients || std::to_string(clients) != item) {
          std::cerr << "xa_lock_hold_bench: --clients: '" << item << "' is not a count of "
                    << "clients from 1 to " << kMaxClients << "\n";
          return Usage();
        }
        config.clients.push_back(clients);
      }
    } else return Usage();
  }
  if (config.out_dir.empty() || config.agent_path.empty()) return Usage();
  if (config.quick) {
    if (!seconds_given) config.seconds = 1;
    if (!delay_given) config.recovery_delay_ms = 3000;
    if (!repetitions_given) config.crash_repetitions = 1;
  }
  if (config.agent_timeout_ms < 200 || config.recovery_delay_ms < 0 ||
      config.agent_restart_delay_ms < 0 || config.agent_restart_delay_ms >= config.agent_timeout_ms ||
      config.crash_repetitions < 1 || config.seconds <= 0 || config.link_delay_ms < 0 ||
      config.link_loss_percent < 0 || config.link_loss_percent > 100 ||
      config.database_down_ms < 0) {
    return Usage();
  }
  SetLogLevel(LogLevel::kError);
  const std::string load_before = LoadAverage();

  std::error_code error;
  fs::create_directories(config.out_dir, error);
  const std::string work = fs::absolute(config.out_dir).string() + "/work";
  fs::remove_all(work, error);
  fs::create_directories(work, error);
  if (error) {
    std::cerr << "xa_lock_hold_bench: cannot create " << work << ": " << error.message() << "\n";
    return 1;
  }
  ::chmod(work.c_str(), 0700);
  const std::string self = fs::read_symlink("/proc/self/exe").string();

  auto settings = bank::SettingsFromEnvironment();
  if (!settings.ok()) {
    std::cerr << "xa_lock_hold_bench: " << settings.status().ToString() << "\n";
    return 1;
  }
  settings->table_prefix = kTablePrefix;
  settings->accounts = kAccounts;
  auto bank = bank::Bank::Connect(*settings);
  Status ready = bank.ok() ? RollBackLeftovers(**bank) : bank.status();
  if (ready.ok()) ready = (*bank)->Reset();
  // Bounded: the observers' session on MariaDB (root over the socket) must work before any case.
  if (ready.ok()) ready = LockWaitObserver::Connect(Database::kMariaDb, *settings).status();
  if (!ready.ok()) {
    std::cerr << "xa_lock_hold_bench: " << ready.ToString() << "\n";
    return 1;
  }
  LocalAgents agents(work, config.agent_path,
                     {{kMariaDbAgent, settings->mariadb.rm_name, LocalDatabase::kMariaDb},
                      {kPostgresAgent, settings->postgres.rm_name, LocalDatabase::kPostgres}},
                     config.agent_timeout_ms, kAgentNodeBase,
                     {kMainNode, kCrashNode3pc, kLinkNode});
  if (Status started = agents.Start(); !started.ok()) {
    std::cerr << "xa_lock_hold_bench: " << started.ToString() << "\n";
    return 1;
  }
  auto log = OpenLog(work + "/main-log", kMainNode);
  ThreePhaseOptions three_phase = agents.CoordinatorOptions();
  three_phase.ask_agents_during_prepare = !config.agents_after_votes;
  auto manager = log.ok() ? OpenManager(**bank, three_phase, kMainNode, **log,
                                        /*recover=*/false)
                          : Result<std::unique_ptr<TransactionManager>>(log.status());
  if (!manager.ok()) {
    std::cerr << "xa_lock_hold_bench: " << manager.status().ToString() << "\n";
    return 1;
  }
  Shared shared{config, *settings, **bank, **manager, agents};

  const size_t total = (config.Runs("no-failure") ? config.clients.size() * 2 : 0) +
                       (config.Runs("slow-participant") ? 2 : 0) +
                       (config.Runs("coordinator-crash") ? 2 : 0) +
                       (config.Runs("agent-crash") ? 1 : 0) +
                       (config.Runs("agent-link") ? 2 : 0) +
                       (config.Runs("database-crash") ? 2 : 0);
  size_t index = 0;
  std::vector<CaseResult> results;
  bool ok = true;
  auto run = [&](const std::string& label, const std::function<Result<CaseResult>()>& body) {
    ++index;
    std::cout << "[" << index << "/" << total << "] " << label << " ..." << std::flush;
    const auto started = Clock::now();
    Result<CaseResult> result = body();
    const double took = std::chrono::duration<double>(Clock::now() - started).count();
    if (!result.ok()) {
      std::cout << " FAILED after " << Fixed(took) << " s: " << result.status().ToString()
                << std::endl;
      ok = false;
      return;
    }
    std::cout << " " << result->samples.size() << " samples, p50 "
              << Fixed(Percentile(Holds(*result), 0.5)) << " ms, " << Fixed(took) << " s"
              << (result->bound_ms > 0 ? "; " + CrashText(*result) : "") << std::endl;
    ok = ok && InvariantHolds(*result);
    results.push_back(std::move(result).value());
  };
  for (Protocol protocol : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    if (!config.Runs("no-failure")) break;
    for (int clients : config.clients) {
      run(std::string("no-failure ") + ProtocolKey(protocol) + ", " + std::to_string(clients) +
              " client(s), " + Fixed(config.seconds) + " s",
          [&] { return RunNoFailure(shared, protocol, clients); });
    }
  }
  for (Protocol protocol : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    if (!config.Runs("slow-participant")) break;
    run(std::string("slow-participant ") + ProtocolKey(protocol) + ", 1 client, PostgreSQL's " +
            "prepare " + std::to_string(config.slow_prepare_ms) + " ms slower, " +
            Fixed(config.seconds) + " s",
        [&] {
          return RunNoFailure(shared, protocol, 1,
                              {"slow-participant", milliseconds(config.slow_prepare_ms)});
        });
  }
  for (Protocol protocol : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    if (!config.Runs("coordinator-crash")) break;
    run(std::string("coordinator-crash ") + ProtocolKey(protocol) + " (" +
            (protocol == Protocol::kTwoPhase
                 ? "recovery after " + Fixed(config.recovery_delay_ms / 1000.0) + " s"
                 : "agents' timeout " + Fixed(config.agent_timeout_ms / 1000.0) + " s") +
            ", " + std::to_string(config.crash_repetitions) + "x)",
        [&] { return RunCoordinatorCrash(shared, agents, protocol, work, self); });
  }
  if (config.Runs("agent-crash")) run("agent-crash 3pc (the MariaDB agent killed after PRE, restarted after " +
          Fixed(config.agent_restart_delay_ms / 1000.0) + " s; agents' timeout " +
          Fixed(config.agent_timeout_ms / 1000.0) + " s, " +
          std::to_string(config.crash_repetitions) + "x)",
      [&] { return RunAgentCrash(shared, agents); });
  const std::string netem = config.Runs("agent-link") ? NetemAvailability() : "not asked";
  for (Protocol protocol : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    if (!config.Runs("agent-link")) break;
    run(std::string("agent-link ") + ProtocolKey(protocol) + ", 1 client, coordinator-agent " +
            "messages " + std::to_string(config.link_delay_ms) + " ms each way, " +
            Fixed(config.link_loss_percent) + "% retransmitted (relay; netem " + netem + "), " +
            Fixed(config.seconds) + " s",
        [&] { return RunAgentLink(shared, protocol, work); });
  }
  // Last: it restarts a server under everything else (the agents' and the bank's sessions).
  for (Protocol protocol : {Protocol::kTwoPhase, Protocol::kThreePhase}) {
    if (!config.Runs("database-crash")) break;
    run(std::string("database-crash ") + ProtocolKey(protocol) + " (" + config.crashed_database +
            " killed after its branch prepared, restarted " +
            Fixed(config.database_down_ms / 1000.0) + " s later, " +
            std::to_string(config.crash_repetitions) + "x)",
        [&] { return RunDatabaseCrash(shared, protocol, work); });
  }
  manager->reset();
  const bool agents_clean = agents.Stop();
  if (!agents_clean) {
    std::cout << "the agents did not stop cleanly; their output is in " << work << "\n";
    ok = false;
  }

  std::cout << "\nLock hold time (ms), from the branch's write to the server granting the probe "
               "the row:\n";
  PrintTable(std::cout, results, /*markdown=*/false);
  std::cout << "\nCommit latency (ms) and CPU per committed transfer (ms), 3PC against 2PC:\n";
  PrintCommitTable(std::cout, results, /*markdown=*/false);
  WriteSamples(config.out_dir + "/samples.csv", results);
  WriteSummary(config.out_dir + "/summary.csv", results);
  WriteMarkdown(config.out_dir + "/summary.md", config, results, netem, load_before,
                LoadAverage());
  std::cout << "\nwrote " << config.out_dir << "/samples.csv, summary.csv, summary.md\n";
  return ok && results.size() == total ? 0 : 1;
}

}  // namespace
}  // namespace xa::bench

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--crash-child") {
    return xa::bench::RunCrashChild(argc, argv);
  }
  return xa::bench::Main(argc, argv);
}
