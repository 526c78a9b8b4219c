// xa_tm_bench: what the transaction manager costs, or saves, against hand-written XA, and what
// three-phase commit costs beside two-phase.
//
// The same transfer (one UPDATE in MariaDB, one in PostgreSQL, atomically) is done
//   (a) by hand: sequential XA statements on plain connections, no decision log:
//         MariaDB   XA START / UPDATE / XA END / XA PREPARE          (Connector/C++)
//         Postgres  BEGIN;UPDATE (one round trip) / PREPARE TRANSACTION   (psqlODBC)
//         then      XA COMMIT / COMMIT PREPARED
//   (c) by hand with both databases at once: the same statements, PostgreSQL's on a second
//       thread of the client (its prepare beside MariaDB's, then its commit beside MariaDB's);
//   (l1), (l2) a local one-phase commit on one database alone, the floor of any distributed
//       transfer: MariaDB START TRANSACTION / UPDATE / COMMIT; PostgreSQL BEGIN;UPDATE / COMMIT;
//   (b) through xa::TransactionManager, 2PC, with the file decision log (fdatasync'd decisions):
//         Begin, Enlist(xa::mysql), Enlist(xa::odbc), the two UPDATEs, Commit.
//       Both branches always write, so the sessions run without the drivers' read-only probe
//       (read_only_optimization = false: on MariaDB the probe materialises SESSION_STATUS, about
//       250 us of server CPU per branch). Without it MariaDB sends XA END with XA PREPARE
//       (MySqlOptions::batch_xa_end), and PREPARE TRANSACTION goes alone (psqlODBC's
//       statement-level rollback cannot leave the block aborted, so no probe guards it).
//       XA_TM_BENCH_READ_ONLY_PROBE=1 keeps the probes on (and their round trips);
//   (3) the same manager, 3PC, through two real xa-agent processes started here (one beside each
//       database; XA_TM_BENCH_AGENT names the program, by default the one built beside this
//       bench; without one the mode is not run and the table says so).
// at 1, 4, 16 and 64 clients (threads, each with its own sessions and its own accounts, so no
// transfer waits for another's row locks). Google Benchmark runs each case; every transfer's
// latency is recorded, and a table at the end gives each mode's throughput, p50 and p99 and its
// ratios to (a) (throughput: higher is better; p50: lower is better).
//
// Needs scripts/servers.sh start and its environment (. build/servers/env.sh). Options:
// XA_TM_BENCH_SECONDS (minimum seconds per case, default 2), XA_TM_BENCH_REPETITIONS (default
// 3, interleaved, median throughput reported), XA_TM_BENCH_MODES (a comma list of the modes to
// run: hand, parallel, local-mariadb, local-postgres, manager, manager-3pc, manager-marker;
// default all), XA_TM_BENCH_MARKER_ON (the database of (m)'s marker: mariadb or postgres),
// XA_TM_BENCH_CLIENTS (a comma list, default 1,4,16,64), XA_TM_BENCH_PHASE_THREADS (the
// manager's phase_threads; 0 runs every phase call on the client's thread),
// XA_TM_BENCH_SEQUENTIAL_CPU_PERCENT (the manager's sequential_phases_at_cpu_percent),
// XA_TM_BENCH_GROUP_COMMIT_DELAY_US (LogOptions::group_commit_max_delay_us, default 0),
// XA_TM_BENCH_GROUP_COMMIT_GATHER (0: LogOptions::group_commit_adaptive_gather off),
// XA_TM_BENCH_HAND_SYNC (1: (a) fdatasyncs a block of its own between the phases). Google
// Benchmark flags pass through (e.g. --benchmark_filter=manager).
//
// A second table gives the CPU time per transfer of the bench process ("app": the clients, and
// in (b) and (3) the manager and its log), of MariaDB and of PostgreSQL (found through the pid
// files under XA_TEST_SERVERS_DIR), of the two agents, and how busy the whole machine was. Where
// the machine is busy, throughput is cores / (CPU per transfer), whatever the phases overlap.
// (An agent tells its peers a decision at its next termination timeout, 10 s here, off the
// commit's path: that much of its work after a 3PC case is charged to the cases that follow.)
// A manager's transfer that ends rolled back or undecided (a phase timeout on an overloaded
// machine) is counted in the table's "not c." column and left out of the latencies; a
// heuristic outcome ends the bench with an error.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>
#include <sql.h>
#include <sqlext.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include "bench/bench_env.h"
#include "examples/local_agents/local_agents.h"
#include "tests/testutil/db_env.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/transaction_manager.h"

namespace xa::bench {
namespace {

using xa::bench::ReadPid;

using local_agents::LocalAgents;
using local_agents::LocalAgentSpec;
using local_agents::LocalDatabase;

constexpr const char* kTable = "tm_bench_accounts";
// Mode (m)'s marker table, on the database XA_TM_BENCH_MARKER_ON names (mariadb by default).
constexpr const char* kMarkerTable = "tm_bench_marker";
constexpr int kAccounts = 64;  // client i uses account i + 1: at most 64 clients
constexpr int64_t kBalance = 1'000'000'000;
constexpr uint32_t kNodePrefix = 0x42000000u;  // this bench's node ids: the prefix, 24 random bits
// The agents' termination timeout in mode (3) (the coordinator's phase timeouts are half of it):
// longer than any wait for a CPU at 64 clients on two cores, so that a slow transfer is not taken
// for a dead coordinator (this bench is about throughput; xa_lock_hold_bench about failures).
constexpr int kAgentTimeoutMs = 10000;

// The modes, in the order of the tables; `key` names the mode in XA_TM_BENCH_MODES and is the
// name Google Benchmark prints.
struct Mode {
  const char* key;
  const char* label;
  const char* what;
};
constexpr Mode kModes[] = {
    {"hand", "(a)", "hand-written sequential XA, no log"},
    {"parallel", "(c)", "hand-written XA, both databases at once, no log"},
    {"local-mariadb", "(l1)", "a local commit on MariaDB alone"},
    {"local-postgres", "(l2)", "a local commit on PostgreSQL alone"},
    {"manager", "(b)", "xa::TransactionManager, 2PC, durable log"},
    {"manager-3pc", "(3)", "xa::TransactionManager, 3PC through two xa-agent processes"},
    {"manager-marker", "(m)", "xa::TransactionManager, marker commit (decision in a branch)"},
};

// Ends the process at once: other client threads may still be running, and exit()'s static
// destructors would pull their sessions and the manager from under them.
[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "xa_tm_bench: %s\n", what.c_str());
  std::fflush(nullptr);
  std::_Exit(1);
}

// ---- (a) hand-written XA on plain connections ---------------------------------------------

// A plain psqlODBC connection in autocommit mode: explicit BEGIN and PREPARE TRANSACTION.
class PlainPostgres {
 public:
  PlainPostgres() {
    test::ServerAccount account = test::PostgresAccount();
    std::string dsn = test::OdbcPostgresDsn();
    SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env_);
    SQLSetEnvAttr(env_, SQL_ATTR_ODBC_VERSION, reinterpret_cast<SQLPOINTER>(SQL_OV_ODBC3), 0);
    SQLAllocHandle(SQL_HANDLE_DBC, env_, &dbc_);
    std::string connect = "DSN=" + dsn + ";UID=" + account.user + ";PWD=" + account.password;
    SQLCHAR out[1024];
    SQLSMALLINT out_length = 0;
    SQLRETURN rc = SQLDriverConnect(dbc_, nullptr, reinterpret_cast<SQLCHAR*>(connect.data()),
                                    SQL_NTS, out, sizeof out, &out_length, SQL_DRIVER_NOPROMPT);
    if (!SQL_SUCCEEDED(rc)) Die("cannot connect to PostgreSQL through DSN " + dsn);
    SQLAllocHandle(SQL_HANDLE_STMT, dbc_, &stmt_);
  }
  ~PlainPostgres() {
    SQLFreeHandle(SQL_HANDLE_STMT, stmt_);
    SQLDisconnect(dbc_);
    SQLFreeHandle(SQL_HANDLE_DBC, dbc_);
    SQLFreeHandle(SQL_HANDLE_ENV, env_);
  }
  void Run(std::string sql) {
    SQLRETURN rc = SQLExecDirect(stmt_, reinterpret_cast<SQLCHAR*>(sql.data()), SQL_NTS);
    if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) Die("PostgreSQL statement failed: " + sql);
    SQLFreeStmt(stmt_, SQL_CLOSE);
  }

 private:
  SQLHENV env_ = SQL_NULL_HENV;
  SQLHDBC dbc_ = SQL_NULL_HDBC;
  SQLHSTMT stmt_ = SQL_NULL_HSTMT;
};

// A thread of a client that runs one job at a time for it: mode (c)'s PostgreSQL side.
class SideThread {
 public:
  SideThread() : thread_([this] { Loop(); }) {}
  ~SideThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  void Start(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = std::move(job);
    done_ = false;
    changed_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return done_; });
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      changed_.wait(lock, [&] { return stopping_ || job_ != nullptr; });
      if (job_ == nullptr) return;  // stopping
      std::function<void()> job = std::move(job_);
      job_ = nullptr;
      lock.unlock();
      job();
      lock.lock();
      done_ = true;
      changed_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable changed_;
  std::function<void()> job_;  // guarded by mu_
  bool done_ = true;           // guarded by mu_
  bool stopping_ = false;      // guarded by mu_
  std::thread thread_;         // last: starts once the rest is built
};

struct HandSession {
  // The MariaDB connection of an xa::mysql session, used as a plain connection: the bench
  // sends its own XA statements and never calls the resource manager's verbs.
  std::unique_ptr<mysql::MySqlResourceManager> mariadb;
  std::unique_ptr<sql::Statement> mariadb_statement;
  std::unique_ptr<PlainPostgres> postgres;
  std::unique_ptr<SideThread> postgres_side;  // mode (c) only
};

// ---- shared state ---------------------------------------------------------------------------

// CPU seconds of the bench process and of each database server, and the machine's busy and
// total time (from /proc/stat), at one instant. The servers are found through their pid files
// under XA_TEST_SERVERS_DIR; PostgreSQL's time is the postmaster's, its exited children's and
// its live children's (the backends).
struct CpuSample {
  double client = 0, mariadb = 0, postgres = 0, agents = 0;
  double machine_busy = 0, machine_total = 0;
};

struct CpuUse {  // the difference of two samples, summed over the runs of a case
  double client = 0, mariadb = 0, postgres = 0, agents = 0, machine_busy = 0, machine_total = 0;
  void Add(const CpuSample& from, const CpuSample& to) {
    client += to.client - from.client;
    mariadb += to.mariadb - from.mariadb;
    postgres += to.postgres - from.postgres;
    agents += to.agents - from.agents;
    machine_busy += to.machine_busy - from.machine_busy;
    machine_total += to.machine_total - from.machine_total;
  }
  void Add(const CpuUse& other) {
    client += other.client;
    mariadb += other.mariadb;
    postgres += other.postgres;
    agents += other.agents;
    machine_busy += other.machine_busy;
    machine_total += other.machine_total;
  }
};

int g_mariadb_pid = 0;
int g_postgres_pid = 0;
std::unique_ptr<LocalAgents> g_agents;  // mode (3) only

// utime+stime (and cutime+cstime when `children`) of /proc/<pid>/stat, in seconds; `ppid` out.
double ProcessCpu(int pid, bool children, int* ppid = nullptr) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);  // one line
  size_t close = text.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  std::vector<std::string> f;
  while (fields >> field) f.push_back(field);
  if (f.size() < 15) return 0;
  if (ppid != nullptr) *ppid = std::atoi(f[1].c_str());
  double ticks = std::atof(f[11].c_str()) + std::atof(f[12].c_str());  // utime, stime
  if (children) ticks += std::atof(f[13].c_str()) + std::atof(f[14].c_str());
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

CpuSample SampleCpu() {
  CpuSample s;
  s.client = xa::bench::SelfCpuMs() / 1000.0;
  if (g_mariadb_pid > 0) s.mariadb = ProcessCpu(g_mariadb_pid, false);
  if (g_postgres_pid > 0) {
    s.postgres = ProcessCpu(g_postgres_pid, true);
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      int ppid = 0;
      double cpu = ProcessCpu(std::atoi(name.c_str()), false, &ppid);
      if (ppid == g_postgres_pid) s.postgres += cpu;
    }
  }
  if (g_agents != nullptr) s.agents = g_agents->CpuMs() / 1000.0;
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.machine_busy = (user + nice + system + irq + softirq + steal) / tick;
  s.machine_total = s.machine_busy + (idle + iowait) / tick;
  return s;
}

struct CaseResult {
  double items_per_second = 0;
  std::vector<double> latencies_us;
  int64_t mariadb_statements = 0;  // sent on the clients' MariaDB sessions
  int64_t transfers = 0;      // committed
  int64_t not_committed = 0;  // rolled back or left undecided (3PC under overload): not timed
  CpuUse cpu;
};

// Statements the server counted on this session so far ("Questions"; the query counts itself).
int64_t SessionStatements(sql::Connection& connection) {
  try {
    std::unique_ptr<sql::Statement> st(connection.createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        st->executeQuery("SHOW SESSION STATUS LIKE 'Questions'"));
    if (rows->next()) return static_cast<int64_t>(rows->getInt64(2));
  } catch (const sql::SQLException& e) {
    Die(std::string("SHOW SESSION STATUS: ") + e.what());
  }
  return 0;
}

std::mutex g_mu;
std::map<std::string, CaseResult> g_results;  // by "hand/4", "manager/16"
std::vector<std::unique_ptr<HandSession>> g_hand_sessions;   // by thread index
std::vector<std::unique_ptr<test::DbTeller>> g_tellers;     // by thread index
std::unique_ptr<DecisionLog> g_log;
std::unique_ptr<TransactionManager> g_manager;
uint32_t g_node = 0;
bool g_read_only_probe = false;
int64_t g_repetitions = 3;

// Runs are keyed by mode, clients and repetition ("manager/16/2"); the table pools repetitions.
std::string Key(const char* mode, int clients, int64_t repetition) {
  return std::string(mode) + "/" + std::to_string(clients) + "/" + std::to_string(repetition);
}

HandSession& HandSessionFor(int index) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_hand_sessions.size() <= static_cast<size_t>(index)) g_hand_sessions.resize(index + 1);
  auto& slot = g_hand_sessions[index];
  if (slot == nullptr) {
    slot = std::make_unique<HandSession>();
    auto rm = test::OpenMariaDb();
    if (!rm.ok()) Die(rm.status().ToString());
    slot->mariadb = std::move(*rm);
    slot->mariadb_statement.reset(slot->mariadb->connection().createStatement());
    slot->postgres = std::make_unique<PlainPostgres>();
  }
  return *slot;
}

test::DbTeller& TellerFor(int index) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_tellers.size() <= static_cast<size_t>(index)) g_tellers.resize(index + 1);
  auto& slot = g_tellers[index];
  if (slot == nullptr) {
    auto teller = test::OpenTeller(g_read_only_probe);
    if (!teller.ok()) Die(teller.status().ToString());
    slot = std::make_unique<test::DbTeller>(std::move(*teller));
  }
  return *slot;
}

void Publish(benchmark::State& state, const char* mode, std::vector<double>& local,
             int64_t not_committed, int64_t mariadb_statements, const CpuSample* cpu_from) {
  CpuSample cpu_to;
  if (cpu_from != nullptr) cpu_to = SampleCpu();  // thread 0, after every thread's loop
  std::lock_guard<std::mutex> lock(g_mu);
  auto& result = g_results[Key(mode, state.threads(), state.range(0))];
  if (cpu_from != nullptr) result.cpu.Add(*cpu_from, cpu_to);
  result.latencies_us.insert(result.latencies_us.end(), local.begin(), local.end());
  result.mariadb_statements += mariadb_statements;
  result.transfers += static_cast<int64_t>(local.size());
  result.not_committed += not_committed;
}

void StartCase(benchmark::State& state, const char* mode) {
  if (state.thread_index() != 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  // Google Benchmark calls a case more than once while it sizes the run: keep the last call.
  CaseResult& result = g_results[Key(mode, state.threads(), state.range(0))];
  result.latencies_us.clear();
  result.mariadb_statements = 0;
  result.transfers = 0;
  result.not_committed = 0;
  result.cpu = CpuUse{};
}

std::string Update(int account, int64_t delta) {
  return "UPDATE " + std::string(kTable) + " SET balance = balance + (" + std::to_string(delta) +
         ") WHERE id = " + std::to_string(account);
}

// The timed loop every mode shares: `transfer(delta)` moves `delta` once (a manager's transfer
// returns whether it committed); every committed transfer's latency is recorded, the others are
// counted, and thread 0 samples the CPU after the start barrier and after the loop.
template <typename Transfer>
void RunCase(benchmark::State& state, const char* mode, sql::Connection& mariadb,
             Transfer&& transfer) {
  std::vector<double> latencies;
  int64_t delta = 1;
  int64_t not_committed = 0;
  const int64_t statements_before = SessionStatements(mariadb);
  CpuSample cpu_from;
  bool sampled = false;
  for (auto _ : state) {
    if (!sampled && state.thread_index() == 0) cpu_from = SampleCpu();
    sampled = true;
    auto start = std::chrono::steady_clock::now();
    bool committed = true;
    if constexpr (std::is_same_v<decltype(transfer(delta)), bool>) {
      committed = transfer(delta);
    } else {
      transfer(delta);
    }
    if (!committed) {
      ++not_committed;
      continue;
    }
    latencies.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
    delta = -delta;
  }
  state.SetItemsProcessed(static_cast<int64_t>(latencies.size()));
  Publish(state, mode, latencies, not_committed,
          SessionStatements(mariadb) - statements_before - 1,
          state.thread_index() == 0 && sampled ? &cpu_from : nullptr);
}

// XA_TM_BENCH_HAND_SYNC=1: (a) writes one record-sized block and fdatasyncs it between the
// phases, as a decision log would (its own file, no group commit): what the wait between PREPARE
// and COMMIT costs the servers, apart from the manager's own work.
int g_hand_sync_fd = -1;
void HandSync() {
  static const std::string block(150, 'd');
  if (::pwrite(g_hand_sync_fd, block.data(), block.size(), 0) !=
          static_cast<ssize_t>(block.size()) ||
      ::fdatasync(g_hand_sync_fd) != 0) {
    Die("XA_TM_BENCH_HAND_SYNC: write or fdatasync failed");
  }
}

void BM_HandWrittenXa(benchmark::State& state) {
  StartCase(state, "hand");
  HandSession& s = HandSessionFor(state.thread_index());
  const int account = state.thread_index() + 1;
  XidGenerator xids(g_node, 0xa0000000u + static_cast<uint64_t>(state.thread_index()));
  RunCase(state, "hand", s.mariadb->connection(), [&](int64_t delta) {
    Xid global = xids.Next();
    std::string my_xid = internal::mariadb::XidLiteral(global.WithBranch(0));
    std::string pg_gid = internal::postgres::XidToGid(global.WithBranch(1));
    try {
      s.mariadb_statement->execute("XA START " + my_xid);
      s.mariadb_statement->executeUpdate(Update(account, -delta));
      s.mariadb_statement->execute("XA END " + my_xid);
      s.mariadb_statement->execute("XA PREPARE " + my_xid);
      s.postgres->Run("BEGIN;" + Update(account, delta));
      s.postgres->Run("PREPARE TRANSACTION '" + pg_gid + "'");
      if (g_hand_sync_fd >= 0) HandSync();
      s.mariadb_statement->execute("XA COMMIT " + my_xid);
      s.postgres->Run("COMMIT PREPARED '" + pg_gid + "'");
    } catch (const sql::SQLException& e) {
      Die(std::string("MariaDB statement failed: ") + e.what());
    }
  });
}

// (c): (a)'s statements, PostgreSQL's on the client's side thread, beside MariaDB's.
void BM_ParallelXa(benchmark::State& state) {
  StartCase(state, "parallel");
  HandSession& s = HandSessionFor(state.thread_index());
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (s.postgres_side == nullptr) s.postgres_side = std::make_unique<SideThread>();
  }
  SideThread& side = *s.postgres_side;
  const int account = state.thread_index() + 1;
  XidGenerator xids(g_node, 0xc0000000u + static_cast<uint64_t>(state.thread_index()));
  RunCase(state, "parallel", s.mariadb->connection(), [&](int64_t delta) {
    Xid global = xids.Next();
    std::string my_xid = internal::mariadb::XidLiteral(global.WithBranch(0));
    std::string pg_gid = internal::postgres::XidToGid(global.WithBranch(1));
    side.Start([&] {
      s.postgres->Run("BEGIN;" + Update(account, delta));
      s.postgres->Run("PREPARE TRANSACTION '" + pg_gid + "'");
    });
    try {
      s.mariadb_statement->execute("XA START " + my_xid);
      s.mariadb_statement->executeUpdate(Update(account, -delta));
      s.mariadb_statement->execute("XA END " + my_xid);
      s.mariadb_statement->execute("XA PREPARE " + my_xid);
    } catch (const sql::SQLException& e) {
      Die(std::string("MariaDB statement failed: ") + e.what());
    }
    side.Wait();
    side.Start([&] { s.postgres->Run("COMMIT PREPARED '" + pg_gid + "'"); });
    try {
      s.mariadb_statement->execute("XA COMMIT " + my_xid);
    } catch (const sql::SQLException& e) {
      Die(std::string("MariaDB statement failed: ") + e.what());
    }
    side.Wait();
  });
}

void BM_LocalMariaDb(benchmark::State& state) {
  StartCase(state, "local-mariadb");
  HandSession& s = HandSessionFor(state.thread_index());
  const int account = state.thread_index() + 1;
  RunCase(state, "local-mariadb", s.mariadb->connection(), [&](int64_t delta) {
    try {
      s.mariadb_statement->execute("START TRANSACTION");
      s.mariadb_statement->executeUpdate(Update(account, delta));
      s.mariadb_statement->execute("COMMIT");
    } catch (const sql::SQLException& e) {
      Die(std::string("MariaDB statement failed: ") + e.what());
    }
  });
}

void BM_LocalPostgres(benchmark::State& state) {
  StartCase(state, "local-postgres");
  HandSession& s = HandSessionFor(state.thread_index());
  const int account = state.thread_index() + 1;
  RunCase(state, "local-postgres", s.mariadb->connection(), [&](int64_t delta) {
    s.postgres->Run("BEGIN;" + Update(account, delta));
    s.postgres->Run("COMMIT");
  });
}

void ManagerCase(benchmark::State& state, const char* mode, Protocol protocol) {
  StartCase(state, mode);
  test::DbTeller& teller = TellerFor(state.thread_index());
  const int account = state.thread_index() + 1;
  RunCase(state, mode, teller.mariadb->connection(), [&](int64_t delta) -> bool {
    Result<Outcome> outcome = test::Transfer(*g_manager, teller, kTable, account, account, delta,
                                             /*xid=*/nullptr, protocol);
    if (!outcome.ok()) {
      Die(std::string("transfer through the manager (") + mode + "): " +
          outcome.status().ToString());
    }
    // A heuristic outcome is a defect; a rollback or an outcome left to the agents is what an
    // overloaded machine may give (a vote or an acknowledgement later than the phase timeout):
    // counted, and the client goes on.
    if (*outcome == Outcome::kCommitted) return true;
    if (*outcome == Outcome::kRolledBack || *outcome == Outcome::kUnknown) return false;
    Die(std::string("transfer through the manager (") + mode + "): " +
        std::string(OutcomeName(*outcome)));
  });
}
void BM_Manager(benchmark::State& state) { ManagerCase(state, "manager", Protocol::kTwoPhase); }
void BM_Manager3pc(benchmark::State& state) {
  ManagerCase(state, "manager-3pc", Protocol::kThreePhase);
}
void BM_ManagerMarker(benchmark::State& state) {
  ManagerCase(state, "manager-marker", Protocol::kMarkerCommit);
}

// The targets of the manager's speed (throughput ratios in one run, CPU per transfer against
// hand-written XA's), one line each: met, NOT met, or not measured (a mode not run).
void PrintTargets(const std::vector<int>& clients_list);

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t index = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(index, v.size() - 1)];
}

// Captures items_per_second of each run while printing as usual (a run's name is its mode).
class CapturingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      auto it = run.counters.find("items_per_second");
      if (it == run.counters.end()) continue;
      const std::string mode = run.run_name.function_name;
      int64_t repetition = std::atoll(run.run_name.args.c_str());
      std::lock_guard<std::mutex> lock(g_mu);
      g_results[Key(mode.c_str(), static_cast<int>(run.threads), repetition)].items_per_second =
          it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

// "a,b" -> {"a", "b"}.
std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) items.push_back(item);
  return items;
}

// Pools the repetitions of one mode and client count: median throughput, all latencies.
CaseResult Pooled(const char* mode, int clients) {
  CaseResult out;
  std::vector<double> throughputs;
  std::lock_guard<std::mutex> lock(g_mu);
  for (int64_t r = 1; r <= g_repetitions; ++r) {
    const CaseResult& one = g_results[Key(mode, clients, r)];
    if (one.latencies_us.empty()) continue;
    throughputs.push_back(one.items_per_second);
    out.latencies_us.insert(out.latencies_us.end(), one.latencies_us.begin(),
                            one.latencies_us.end());
    out.mariadb_statements += one.mariadb_statements;
    out.transfers += one.transfers;
    out.not_committed += one.not_committed;
    out.cpu.Add(one.cpu);
  }
  out.items_per_second = Percentile(throughputs, 0.5);
  return out;
}

void PrintTargets(const std::vector<int>& clients_list) {
  std::printf("\ntargets (one run; a ratio's modes measured side by side):\n");
  auto line = [](const std::string& what, std::optional<bool> met, const std::string& value) {
    std::printf("  %-62s %-12s %s\n", what.c_str(),
                !met ? "not measured" : *met ? "met" : "NOT met", value.c_str());
  };
  auto throughput = [](const char* mode, int clients) -> std::optional<double> {
    const CaseResult r = Pooled(mode, clients);
    if (r.latencies_us.empty()) return std::nullopt;
    return r.items_per_second;
  };
  auto ratio_line = [&](const char* top, const char* top_label, const char* bottom,
                        const char* bottom_label, int clients, double minimum) {
    std::optional<double> t = throughput(top, clients), b = throughput(bottom, clients);
    char what[128], value[64] = "";
    std::snprintf(what, sizeof what, "%s/%s throughput >= %.2f at %d client(s)", top_label,
                  bottom_label, minimum, clients);
    std::optional<bool> met;
    if (t && b && *b > 0) {
      std::snprintf(value, sizeof value, "%.2f", *t / *b);
      met = *t / *b >= minimum;
    }
    line(what, met, value);
  };
  auto per = [](double cpu_seconds, const CaseResult& r) {
    return cpu_seconds * 1e6 / static_cast<double>(r.transfers);
  };
  for (int clients : clients_list) {
    if (clients != 1 && clients != 4 && clients != 16) continue;  // the client counts
    ratio_line("manager", "(b)", "hand", "(a)", clients, clients == 1 ? 1.0 : 0.95);
    ratio_line("manager-marker", "(m)", "hand", "(a)", clients, 1.1);
    if (clients != 1) ratio_line("manager-marker", "(m)", "parallel", "(c)", clients, 1.0);
    const CaseResult a = Pooled("hand", clients), b = Pooled("manager", clients);
    char what[128], value[96] = "";
    std::optional<bool> met;
    std::snprintf(what, sizeof what, "(b) app CPU per transfer within 50 us of (a)'s at %d",
                  clients);
    if (a.transfers > 0 && b.transfers > 0) {
      const double difference = per(b.cpu.client, b) - per(a.cpu.client, a);
      std::snprintf(value, sizeof value, "%+.0f us", difference);
      met = difference <= 50;
    }
    line(what, met, value);
    for (const char* server : {"MariaDB", "PostgreSQL"}) {
      const bool maria = std::string(server) == "MariaDB";
      std::snprintf(what, sizeof what, "(b) %s CPU per transfer within 5%% of (a)'s at %d",
                    server, clients);
      met.reset();
      value[0] = '\0';
      if (a.transfers > 0 && b.transfers > 0) {
        const double a_cpu = per(maria ? a.cpu.mariadb : a.cpu.postgres, a);
        const double b_cpu = per(maria ? b.cpu.mariadb : b.cpu.postgres, b);
        if (a_cpu > 0) {
          std::snprintf(value, sizeof value, "%+.1f%%", 100.0 * (b_cpu / a_cpu - 1.0));
          met = b_cpu <= a_cpu * 1.05;
        }
      }
      line(what, met, value);
    }
  }
}

}  // namespace
}  // namespace xa::bench

int main(int argc, char** argv) {
  using namespace xa::bench;  // NOLINT: a main() of its own
  xa::SetLogLevel(xa::LogLevel::kWarning);
  double seconds = 2.0;
  if (const char* v = std::getenv("XA_TM_BENCH_SECONDS")) seconds = std::atof(v);
  if (const char* v = std::getenv("XA_TM_BENCH_REPETITIONS")) g_repetitions = std::atoll(v);
  if (g_repetitions < 1) g_repetitions = 1;
  for (const char* name : {"XA_TEST_MARIADB_HOST", "XA_TEST_PG_HOST", "XA_TEST_ODBC_PG_DSN"}) {
    if (std::getenv(name) == nullptr) {
      Die(std::string(name) + " is not set: run scripts/servers.sh start and source "
                              "build/servers/env.sh");
    }
  }
  std::vector<int> clients_list = {1, 4, 16, 64};
  if (const char* v = std::getenv("XA_TM_BENCH_CLIENTS")) {
    clients_list.clear();
    for (const std::string& item : SplitList(v)) {
      const int clients = std::atoi(item.c_str());
      if (clients < 1 || clients > kAccounts || std::to_string(clients) != item) {
        Die("XA_TM_BENCH_CLIENTS: '" + item + "' is not a count of clients from 1 to " +
            std::to_string(kAccounts));
      }
      clients_list.push_back(clients);
    }
  }
  std::vector<const Mode*> modes;
  {
    std::vector<std::string> wanted;
    if (const char* v = std::getenv("XA_TM_BENCH_MODES")) wanted = SplitList(v);
    for (const std::string& key : wanted) {
      bool known = false;
      for (const Mode& mode : kModes) known = known || key == mode.key;
      if (!known) Die("XA_TM_BENCH_MODES: no mode is named '" + key + "'");
    }
    for (const Mode& mode : kModes) {
      if (wanted.empty() || std::find(wanted.begin(), wanted.end(), mode.key) != wanted.end()) {
        modes.push_back(&mode);
      }
    }
  }
  auto runs = [&](const char* key) {
    return std::any_of(modes.begin(), modes.end(),
                       [&](const Mode* m) { return std::string(m->key) == key; });
  };

  if (const char* dir = std::getenv("XA_TEST_SERVERS_DIR")) {
    g_mariadb_pid = ReadPid(std::string(dir) + "/mariadb/mariadbd.pid");
    g_postgres_pid = ReadPid(std::string(dir) + "/pg/data/postmaster.pid");
  }
  // Accounts: client i uses account i+1 in both databases.
  {
    auto admin = xa::test::OpenTeller();
    if (!admin.ok()) Die(admin.status().ToString());
    // What an interrupted run left prepared (its node ids are this bench's, kNodePrefix): its
    // process and agents are gone, and its branches would hold the accounts' rows locked.
    for (xa::ResourceManager* rm : {static_cast<xa::ResourceManager*>(admin->mariadb.get()),
                                    static_cast<xa::ResourceManager*>(admin->postgres.get())}) {
      auto scan = rm->Recover();
      if (!scan.ok()) Die(scan.status().ToString());
      for (const xa::Xid& xid : scan->prepared) {
        const std::optional<uint32_t> node = xid.NodeId();
        if (!node || (*node & 0xff000000u) != kNodePrefix) continue;
        if (xa::Status s = rm->Rollback(xid); !s.ok()) Die(s.ToString());
      }
    }
    xa::Status reset = xa::test::ResetAccounts(*admin, kTable, kAccounts, kBalance);
    if (!reset.ok()) Die(reset.ToString());
    reset = xa::test::ResetMarkerTables(*admin, kMarkerTable);
    if (!reset.ok()) Die(reset.ToString());
  }
  g_node = kNodePrefix | (std::random_device()() & 0xffffffu);
  std::string dir = xa::test::TempLogDir("tm-bench");
  xa::LogOptions log_options;
  log_options.dir = dir;
  log_options.node_id = g_node;
  if (const char* v = std::getenv("XA_TM_BENCH_GROUP_COMMIT_DELAY_US")) {
    log_options.group_commit_max_delay_us = static_cast<uint32_t>(std::atoi(v));
  }
  if (const char* v = std::getenv("XA_TM_BENCH_HAND_SYNC"); v != nullptr && *v == '1') {
    g_hand_sync_fd = ::open((dir + "/hand-sync").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (g_hand_sync_fd < 0) Die("XA_TM_BENCH_HAND_SYNC: cannot create " + dir + "/hand-sync");
  }
  if (const char* v = std::getenv("XA_TM_BENCH_GROUP_COMMIT_GATHER")) {
    log_options.group_commit_adaptive_gather = *v != '0';
  }
  auto log = xa::DecisionLog::Open(log_options);
  if (!log.ok()) Die(log.status().ToString());
  g_log = std::move(*log);
  xa::TransactionManagerOptions options;
  options.node_id = g_node;
  if (const char* v = std::getenv("XA_TM_BENCH_PHASE_THREADS")) {
    options.phase_threads = static_cast<size_t>(std::atoi(v));
  }
  if (const char* v = std::getenv("XA_TM_BENCH_SEQUENTIAL_CPU_PERCENT")) {
    options.sequential_phases_at_cpu_percent = static_cast<uint32_t>(std::atoi(v));
  }
  if (const char* v = std::getenv("XA_TM_BENCH_READ_ONLY_PROBE")) g_read_only_probe = *v == '1';
  xa::test::RegisterDbFactories(options, g_read_only_probe);

  // Mode (3): two agents beside the databases, on their own logs under the bench's directory.
  std::string agent_program;
#ifdef XA_AGENT_PATH
  agent_program = XA_AGENT_PATH;
#endif
  if (const char* v = std::getenv("XA_TM_BENCH_AGENT")) agent_program = v;
  std::string three_phase_skipped;
  if (runs("manager-3pc")) {
    if (agent_program.empty() || ::access(agent_program.c_str(), X_OK) != 0) {
      three_phase_skipped = "no xa-agent program ('" + agent_program +
                            "'): build the xa-agent target or set XA_TM_BENCH_AGENT";
    } else {
      const std::string agents_dir = dir + "-agents";
      std::filesystem::create_directories(agents_dir);
      std::filesystem::permissions(agents_dir, std::filesystem::perms::owner_all);
      g_agents = std::make_unique<LocalAgents>(
          agents_dir, agent_program,
          std::vector<LocalAgentSpec>{
              {"tm-bench-agent-mariadb", xa::test::kMariaDbRm, LocalDatabase::kMariaDb},
              {"tm-bench-agent-postgres", xa::test::kPostgresRm, LocalDatabase::kPostgres}},
          kAgentTimeoutMs, g_node + 1, std::set<uint32_t>{g_node});
      if (xa::Status started = g_agents->Start(); !started.ok()) Die(started.ToString());
      options.three_phase = g_agents->CoordinatorOptions();
    }
  }
  // Mode (m): the marker in one database's branch; that branch commits in one phase.
  std::string marker_on = "mariadb";
  if (const char* v = std::getenv("XA_TM_BENCH_MARKER_ON")) marker_on = v;
  if (marker_on != "mariadb" && marker_on != "postgres") {
    Die("XA_TM_BENCH_MARKER_ON is 'mariadb' or 'postgres', not '" + marker_on + "'");
  }
  options.marker_commit.rm = marker_on == "mariadb" ? xa::test::kMariaDbRm : xa::test::kPostgresRm;
  options.marker_commit.table = kMarkerTable;
  auto manager = xa::TransactionManager::Open(options, *g_log);
  if (!manager.ok()) Die(manager.status().ToString());
  g_manager = std::move(*manager);

  // Repetitions interleave the modes, so that the load of a shared machine drifting over the run
  // hits them alike; the table takes the median throughput of the repetitions.
  using Fn = void (*)(benchmark::State&);
  const std::map<std::string, Fn> functions = {
      {"hand", BM_HandWrittenXa},     {"parallel", BM_ParallelXa},
      {"local-mariadb", BM_LocalMariaDb}, {"local-postgres", BM_LocalPostgres},
      {"manager", BM_Manager},        {"manager-3pc", BM_Manager3pc},
      {"manager-marker", BM_ManagerMarker}};
  for (int64_t repetition = 1; repetition <= g_repetitions; ++repetition) {
    for (int clients : clients_list) {
      for (const Mode* mode : modes) {
        if (std::string(mode->key) == "manager-3pc" && g_agents == nullptr) continue;
        benchmark::RegisterBenchmark(mode->key, functions.at(mode->key))
            ->Arg(repetition)->Threads(clients)->UseRealTime()->MinTime(seconds)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  CapturingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  std::printf("\nThe same transfer (an UPDATE in MariaDB and one in PostgreSQL) by each mode:\n");
  for (const Mode* mode : modes) std::printf("  %-5s %-15s %s\n", mode->label, mode->key, mode->what);
  std::printf("  (m)'s marker is in %s's branch (XA_TM_BENCH_MARKER_ON)\n", marker_on.c_str());
  if (!three_phase_skipped.empty()) std::printf("  (3) not run: %s\n", three_phase_skipped.c_str());
  std::printf("median throughput of %lld interleaved repetitions; latencies pooled over them; "
              "ratios against (a) of the same clients\n",
              static_cast<long long>(g_repetitions));
  std::printf("%7s | %-5s | %10s %9s %9s | %9s %9s | %7s | %s\n", "clients", "mode", "tx/s",
              "p50 us", "p99 us", "tx/s /(a)", "p50 /(a)", "not c.",
              "MariaDB statements per transfer");
  for (int clients : clients_list) {
    const CaseResult a = Pooled("hand", clients);
    const double a50 = Percentile(a.latencies_us, 0.50);
    for (const Mode* mode : modes) {
      const CaseResult r = Pooled(mode->key, clients);
      if (r.latencies_us.empty()) {
        std::printf("%7d | %-5s | not measured\n", clients, mode->label);
        continue;
      }
      const double p50 = Percentile(r.latencies_us, 0.50), p99 = Percentile(r.latencies_us, 0.99);
      const double throughput_ratio =
          a.items_per_second > 0 ? r.items_per_second / a.items_per_second : 0;
      const double p50_ratio = a50 > 0 ? p50 / a50 : 0;
      std::printf("%7d | %-5s | %10.0f %9.0f %9.0f | %9.2f %9.2f | %7lld | %.1f\n", clients,
                  mode->label, r.items_per_second, p50, p99, throughput_ratio, p50_ratio,
                  static_cast<long long>(r.not_committed),
                  static_cast<double>(r.mariadb_statements) /
                      static_cast<double>(r.transfers + r.not_committed));
    }
  }
  // Where the CPU goes. Once the machine is busy (every core running the bench, a server or an
  // agent), throughput is cores / (CPU per transfer): parallel phases can only shorten the
  // waits, and the ratio of the totals bounds the throughput ratio.
  std::printf("\nCPU per transfer (us) of the bench process, MariaDB, PostgreSQL and the agents, "
              "and the machine's busy share (%ld cores)\n", sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%7s | %-5s | %8s %8s %8s %8s %8s | %6s | %10s\n", "clients", "mode", "app",
              "MariaDB", "Postgres", "agents", "total", "busy", "total /(a)");
  for (int clients : clients_list) {
    const CaseResult a = Pooled("hand", clients);
    auto per = [](double cpu_seconds, const CaseResult& r) {
      return cpu_seconds * 1e6 / static_cast<double>(r.transfers);
    };
    const double a_total =
        a.transfers > 0 ? per(a.cpu.client + a.cpu.mariadb + a.cpu.postgres + a.cpu.agents, a) : 0;
    for (const Mode* mode : modes) {
      const CaseResult r = Pooled(mode->key, clients);
      if (r.transfers == 0) continue;
      const double total = per(r.cpu.client + r.cpu.mariadb + r.cpu.postgres + r.cpu.agents, r);
      const double busy =
          r.cpu.machine_total > 0 ? 100.0 * r.cpu.machine_busy / r.cpu.machine_total : 0.0;
      std::printf("%7d | %-5s | %8.0f %8.0f %8.0f %8.0f %8.0f | %5.0f%% | %10.2f\n", clients,
                  mode->label, per(r.cpu.client, r), per(r.cpu.mariadb, r),
                  per(r.cpu.postgres, r), per(r.cpu.agents, r), total, busy,
                  a_total > 0 ? total / a_total : 0);
    }
  }
  xa::TransactionMetrics m = g_manager->Metrics();
  std::printf("\nmanager phases (all its cases, histogram estimates): Commit() p50 %.0f us "
              "[prepare p50 %.0f us, decision write p50 %.0f us p99 %.0f us, commit phase p50 "
              "%.0f us]; %llu decisions logged; %llu phases sequential (CPUs busy); marker "
              "commits %llu, settles %llu, rows deleted %llu\n",
              m.total_commit.p50_us, m.prepare.p50_us, m.decision_write.p50_us,
              m.decision_write.p99_us, m.commit_phase.p50_us,
              static_cast<unsigned long long>(m.decision_records),
              static_cast<unsigned long long>(m.phases_sequential_cpu_busy),
              static_cast<unsigned long long>(m.marker_commits),
              static_cast<unsigned long long>(m.marker_settles),
              static_cast<unsigned long long>(m.marker_rows_deleted));
  PrintTargets(clients_list);
  g_tellers.clear();
  g_hand_sessions.clear();
  g_manager.reset();
  g_log.reset();
  bool agents_clean = true;
  if (g_agents != nullptr) {
    agents_clean = g_agents->Stop();
    if (!agents_clean) {
      std::printf("the agents did not stop cleanly; their output is in %s-agents\n", dir.c_str());
    }
    g_agents.reset();
  }
  if (agents_clean) {
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(dir + "-agents");
  }
  return agents_clean ? 0 : 1;
}
