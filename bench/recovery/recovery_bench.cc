// recovery_bench: how long recovery takes to resolve many in-doubt branches on the real servers,
// for 2PC (the coordinator's recovery) and for 3PC (the agents, without the coordinator).
//
//   recovery_bench [--branches 1000,10000] [--sessions 4] [--setup-threads 8]
//                  [--agent PATH | --no-agents] [--agent-timeout-ms T] [--no-2pc]
//
// (--no-2pc runs the 3PC part alone.)
// For each count N it leaves N/2 global transactions in doubt, each with a prepared branch on
// MariaDB and one on PostgreSQL (so N branches): half of them with a commit decision in the
// decision log (recovery commits them), half without (presumed abort: recovery rolls them back).
// Then it times what an operator's `xa-recover resolve` does after a crash: open and replay the
// log, scan both RMs, resolve every branch, write the end records. It prints one line per N.
// Target: 10,000 in-doubt branches in <= 10 s on this 2-core machine.
//
// 3PC: for each N it starts two real xa-agent processes (one beside each database; --agent,
// by default the one built beside this bench) and leaves N/2 3PC transactions to them as a
// coordinator that died mid-commit would: each transaction's two branches are prepared, both
// agents voted (WAIT), and for half of them both also acknowledged PreCommit (PRE); then
// nothing more comes from the coordinator. (Meanwhile the agents' termination timeout is an
// hour, so that none of them acts before the whole backlog is in place.) Then both agents are
// restarted with the termination timeout T (--agent-timeout-ms): each replays its log, and the
// restarted participants finish by rule c once both agents are up: the PRE ones commit, the WAIT
// ones abort. The bench times how long after the restart (stop, log replay and all) nothing of
// the coordinator's node is left prepared in either database, and checks the outcome: the
// committed transactions' rows on both databases, the aborted ones' on neither.
//
// Needs the local servers (source build/servers/env.sh) and PostgreSQL's
// max_prepared_transactions >= N/2 (scripts/servers.sh sets 6000; XA_SERVERS_PG_MAX_PREPARED at
// its start sets more, 50100 for 100,000 branches).

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <cppconn/connection.h>
#include <cppconn/statement.h>

#include "examples/local_agents/local_agents.h"
#include "examples/bank/bank.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "src/three_phase/agent_messages.h"
#include "xa/env.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/recovery.h"

namespace {

using Clock = std::chrono::steady_clock;

void Die(const std::string& what, const xa::Status& s) {
  std::cerr << "recovery_bench: " << what << ": " << s.ToString() << "\n";
  std::exit(1);
}

std::vector<long> ParseList(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::atol(item.c_str()));
  return out;
}

// Prepares branch 0 of `global` on MariaDB and branch 1 on PostgreSQL, each inserting row `id`,
// and leaves them as a crashed application would: MariaDB's is detached from its session (a
// MariaDB session stays attached to its prepared branch, 1399 on the next XA START, until it
// disconnects), so `mariadb` is reconnected.
void PrepareBothBranches(xa::mysql::MySqlResourceManager& mariadb,
                         xa::odbc::OdbcResourceManager& postgres, const xa::Xid& global,
                         long id) {
  const std::string insert = "INSERT INTO rbench_rows VALUES (" + std::to_string(id) + ")";
  const xa::Xid mb = global.WithBranch(0), pb = global.WithBranch(1);
  xa::Status s = mariadb.Start(mb, xa::StartFlag::kNoFlags);
  if (s.ok()) {
    try {
      std::unique_ptr<sql::Statement> st(mariadb.connection().createStatement());
      st->executeUpdate(insert);
    } catch (const sql::SQLException& e) {
      s = mariadb.StatusFromException(e);
    }
  }
  if (s.ok()) s = mariadb.End(mb, xa::EndFlag::kSuccess);
  if (s.ok()) s = mariadb.Prepare(mb);
  if (!s.ok()) Die("preparing a MariaDB branch", s);
  s = mariadb.Close();
  if (s.ok()) s = mariadb.Open();
  if (!s.ok()) Die("reconnecting to MariaDB", s);
  s = postgres.Start(pb, xa::StartFlag::kNoFlags);
  if (s.ok()) {
    auto rows = postgres.Execute(insert);
    if (!rows.ok()) s = rows.status();
  }
  if (s.ok()) s = postgres.End(pb, xa::EndFlag::kSuccess);
  if (s.ok()) s = postgres.Prepare(pb);
  if (!s.ok()) Die("preparing a PostgreSQL branch", s);
}

struct Setup {
  std::vector<xa::Xid> globals;  // every in-doubt transaction
};

// Leaves `transactions` global transactions prepared on both databases.
Setup PrepareInDoubt(const xa::bank::BankSettings& settings, uint32_t node, long transactions,
                     int threads) {
  Setup setup;
  xa::XidGenerator xids(node);
  for (long i = 0; i < transactions; ++i) setup.globals.push_back(xids.Next());
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
    auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
    if (!m.ok()) Die("MariaDB session", m.status());
    if (!p.ok()) Die("PostgreSQL session", p.status());
    long i;
    while (!failed && (i = next.fetch_add(1)) < transactions) {
      // Unique across the counts of one run, whose committed rows stay in the table.
      PrepareBothBranches(**m, **p, setup.globals[i], transactions * 1000000L + i);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  return setup;
}

// Rolls back what an earlier, interrupted run of this bench left prepared for `node`.
void CleanLeftovers(const xa::bank::BankSettings& settings, uint32_t node) {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("xa-recovery-bench-clean-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  xa::LogOptions options;
  options.dir = dir;
  options.node_id = node;
  auto log = xa::DecisionLog::Open(options);
  if (!log.ok()) Die("log", log.status());
  auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
  auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
  if (!m.ok()) Die("MariaDB", m.status());
  if (!p.ok()) Die("PostgreSQL", p.status());
  xa::RecoveryOptions recovery;
  recovery.node_id = node;
  recovery.orphan_min_age = std::chrono::milliseconds(0);
  xa::RecoveryEngine engine(**log, {m->get(), p->get()}, recovery);
  auto report = engine.Run();
  if (!report.ok()) Die("cleaning up", report.status());
  std::filesystem::remove_all(dir);
}

uint32_t NodeFor(long branches) { return 0x5EC00000u + static_cast<uint32_t>(branches); }
uint32_t ThreePhaseNodeFor(long branches) {
  return 0x5ED00000u + static_cast<uint32_t>(branches);
}

// The branches of `node` still prepared in both databases.
size_t PreparedOf(xa::ResourceManager& mariadb, xa::ResourceManager& postgres, uint32_t node) {
  size_t count = 0;
  for (xa::ResourceManager* rm : {&mariadb, &postgres}) {
    auto scan = rm->Recover();
    if (!scan.ok()) Die("scanning for prepared branches", scan.status());
    count += scan->OwnedBy(node).size();
  }
  return count;
}

// The rows with ids in [first, last) whose offset from `first` has `parity`, in each database:
// counted by deleting them (the rows serve no one after the count, and a DELETE's row count is
// what both drivers return).
std::pair<long, long> TakeRows(xa::mysql::MySqlResourceManager& mariadb,
                               xa::odbc::OdbcResourceManager& postgres, long first, long last,
                               int parity) {
  const std::string sql = "DELETE FROM rbench_rows WHERE id >= " + std::to_string(first) +
                          " AND id < " + std::to_string(last) + " AND MOD(id - " +
                          std::to_string(first) + ", 2) = " + std::to_string(parity);
  long in_mariadb = 0;
  try {
    std::unique_ptr<sql::Statement> st(mariadb.connection().createStatement());
    in_mariadb = st->executeUpdate(sql);
  } catch (const sql::SQLException& e) {
    Die("counting rows on MariaDB", mariadb.StatusFromException(e));
  }
  auto in_postgres = postgres.Execute(sql);
  if (!in_postgres.ok()) Die("counting rows on PostgreSQL", in_postgres.status());
  return {in_mariadb, static_cast<long>(*in_postgres)};
}

struct AgentsResult {
  double setup_s = 0;
  double finished_s = -1;  // after the agents' restart; -1: not within the limit
  long committed_rows_mariadb = 0, committed_rows_postgres = 0;
  long aborted_rows_mariadb = 0, aborted_rows_postgres = 0;
};

// One count of the 3PC part (see the header comment).
AgentsResult RunAgentsCase(const xa::bank::BankSettings& settings, const std::string& agent,
                           long transactions, int threads, int timeout_ms) {
  using xa::three_phase::AgentMessage;
  const uint32_t node = ThreePhaseNodeFor(transactions * 2);
  const std::string work = std::filesystem::temp_directory_path() /
                           ("xa-recovery-bench-agents-" + std::to_string(::getpid()) + "-" +
                            std::to_string(transactions * 2));
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);
  std::filesystem::permissions(work, std::filesystem::perms::owner_all);
  xa::local_agents::LocalAgents agents(
      work, agent,
      {{"rbench-agent-mariadb", settings.mariadb.rm_name, xa::local_agents::LocalDatabase::kMariaDb},
       {"rbench-agent-postgres", settings.postgres.rm_name, xa::local_agents::LocalDatabase::kPostgres}},
      /*timeout_ms=*/3'600'000, node + 0x1000, {node});
  if (xa::Status started = agents.Start(); !started.ok()) Die("starting the agents", started);
  const xa::ThreePhaseOptions coordinator = agents.CoordinatorOptions();
  xa::three_phase::AgentDirectory directory;
  for (const xa::ThreePhaseAgent& a : coordinator.agents) {
    directory.address_of_agent[a.name] = a.address;
    for (const std::string& rm : a.rms) directory.agent_of_rm[rm] = a.name;
  }
  auto key = xa::net::LoadSharedKey(coordinator.key_file);
  if (!key.ok()) Die("the agents' key", key.status());
  xa::Clock* clock = xa::Env::Default()->clock();
  auto transport = xa::net::NewTcpTransport(clock);
  xa::three_phase::AgentClient client(transport.get(), &*key, "recovery-bench-coordinator",
                                      directory);

  // Ids of the rows: transaction i inserts base + i in both databases.
  const long base = 2'000'000'000L + transactions * 10;
  xa::XidGenerator xids(node);
  std::vector<xa::Xid> globals;
  for (long i = 0; i < transactions; ++i) globals.push_back(xids.Next(xa::Protocol::kThreePhase));
  std::atomic<long> next{0};
  auto setup_start = Clock::now();
  auto work_fn = [&] {
    auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
    auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
    if (!m.ok()) Die("MariaDB session", m.status());
    if (!p.ok()) Die("PostgreSQL session", p.status());
    long i;
    while ((i = next.fetch_add(1)) < transactions) {
      const xa::Xid& global = globals[i];
      const xa::Xid mb = global.WithBranch(0), pb = global.WithBranch(1);
      // Detached from the session, as the dead coordinator's would be: no fence needed.
      PrepareBothBranches(**m, **p, global, base + i);

      const std::vector<xa::Participant> participants = {{settings.mariadb.rm_name, mb},
                                                         {settings.postgres.rm_name, pb}};
      const auto deadline = clock->DeadlineAfter(std::chrono::seconds(30));
      for (uint32_t number = 0; number < 2; ++number) {
        xa::three_phase::CanCommitMessage can_commit;
        can_commit.xid = global;
        can_commit.participant = number;
        can_commit.participants = participants;
        AgentMessage request;
        request.body = can_commit;
        auto vote = client.Call(participants[number].rm_name, std::move(request), deadline);
        const auto* yes = vote.ok() ? std::get_if<xa::three_phase::VoteMessage>(&vote->body)
                                    : nullptr;
        if (yes == nullptr || !yes->yes) {
          Die("CanCommit", vote.ok() ? xa::Status(xa::Code::kProto, "no yes vote")
                                     : vote.status());
        }
      }
      if (i % 2 == 0) {  // these commit: every agent PRE
        for (uint32_t number = 0; number < 2; ++number) {
          AgentMessage request;
          request.body = xa::three_phase::PreCommitMessage{global, number};
          auto ack = client.Call(participants[number].rm_name, std::move(request), deadline);
          if (!ack.ok()) Die("PreCommit", ack.status());
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work_fn);
  for (auto& t : pool) t.join();
  AgentsResult result;
  result.setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();
  const auto silent_from = Clock::now();  // the restart: the stop, the replay, the rest
  if (xa::Status restarted = agents.RestartAll(timeout_ms); !restarted.ok()) {
    Die("restarting the agents", restarted);
  }

  auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
  auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
  if (!m.ok()) Die("MariaDB", m.status());
  if (!p.ok()) Die("PostgreSQL", p.status());
  // Bounded by 120 s plus 10 ms a transaction (a MariaDB with tens of thousands of prepared
  // transactions takes that long a branch: docs/bench.md), and T.
  const auto limit = silent_from + std::chrono::seconds(120) +
                     std::chrono::milliseconds(10 * transactions) +
                     std::chrono::milliseconds(timeout_ms);
  long left = -1;
  while (Clock::now() < limit) {
    left = PreparedOf(**m, **p, node);
    if (left == 0) {
      result.finished_s = std::chrono::duration<double>(Clock::now() - silent_from).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (left != 0) {
    // The rows of the branches still prepared are locked: counting them would wait for the
    // agents. Say so, stop them, and leave the branches to the next run's cleanup.
    std::cerr << "recovery_bench: the agents had not finished " << transactions
              << " transactions by the limit; " << left << " branch(es) still prepared\n";
    agents.Stop();
    return result;
  }
  // Committed: the even transactions; aborted: the odd ones.
  std::tie(result.committed_rows_mariadb, result.committed_rows_postgres) =
      TakeRows(**m, **p, base, base + transactions, 0);
  std::tie(result.aborted_rows_mariadb, result.aborted_rows_postgres) =
      TakeRows(**m, **p, base, base + transactions, 1);
  if (!agents.Stop()) {
    std::cerr << "recovery_bench: the agents did not stop cleanly; their output is in " << work
              << "\n";
    result.finished_s = -1;
    return result;
  }
  std::filesystem::remove_all(work);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  xa::SetLogLevel(xa::LogLevel::kWarning);
  std::vector<long> counts = {1000, 10000};
  int sessions = 4, setup_threads = 8, agent_timeout_ms = 2000;
  bool two_phase = true;  // --no-2pc: the 3PC part alone
  std::string agent;
#ifdef XA_AGENT_PATH
  agent = XA_AGENT_PATH;
#endif
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--branches" && has_value) counts = ParseList(argv[++i]);
    else if (a == "--sessions" && has_value) sessions = std::atoi(argv[++i]);
    else if (a == "--setup-threads" && has_value) setup_threads = std::atoi(argv[++i]);
    else if (a == "--agent" && has_value) agent = argv[++i];
    else if (a == "--agent-timeout-ms" && has_value) agent_timeout_ms = std::atoi(argv[++i]);
    else if (a == "--no-agents") agent.clear();
    else if (a == "--no-2pc") two_phase = false;
    else {
      std::cerr << "usage: recovery_bench [--branches 1000,10000] [--sessions 4] "
                   "[--setup-threads 8] [--agent PATH | --no-agents] [--agent-timeout-ms T] "
                   "[--no-2pc]\n";
      return 2;
    }
  }
  if (agent_timeout_ms < 200) {
    std::cerr << "recovery_bench: --agent-timeout-ms must be at least 200\n";
    return 2;
  }
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) Die("settings", settings.status());
  settings->mariadb.rm_name = "rbench-mariadb";
  settings->postgres.rm_name = "rbench-postgres";
  for (long n : counts) CleanLeftovers(*settings, NodeFor(n));
  {
    auto m = xa::mysql::MySqlResourceManager::Create(settings->mariadb);
    auto p = xa::odbc::OdbcResourceManager::Create(settings->postgres);
    if (!m.ok()) Die("MariaDB", m.status());
    if (!p.ok()) Die("PostgreSQL", p.status());
    try {
      std::unique_ptr<sql::Statement> st((*m)->connection().createStatement());
      st->execute("CREATE TABLE IF NOT EXISTS rbench_rows (id BIGINT PRIMARY KEY) ENGINE=InnoDB");
      st->execute("TRUNCATE TABLE rbench_rows");
    } catch (const sql::SQLException& e) {
      Die("MariaDB table", (*m)->StatusFromException(e));
    }
    for (const char* sql : {"CREATE TABLE IF NOT EXISTS rbench_rows (id BIGINT PRIMARY KEY)",
                            "TRUNCATE TABLE rbench_rows"}) {
      auto r = (*p)->Execute(sql);
      if (!r.ok()) Die("PostgreSQL table", r.status());
    }
    int max_prepared = (*p)->server_info().max_prepared_transactions;
    for (long n : counts) {
      if (max_prepared >= 0 && n / 2 > max_prepared) {
        std::cerr << "recovery_bench: " << n << " branches need " << n / 2
                  << " prepared transactions on PostgreSQL, but max_prepared_transactions is "
                  << max_prepared << ": raise it (scripts/servers.sh sets 6000) or lower "
                                     "--branches\n";
        return 1;
      }
    }
  }

  std::printf("%-10s %-8s %-9s %-9s %-10s %-12s %s\n", "branches", "txns", "commit", "rollback",
              "setup s", "recovery s", "branches/s");
  bool all_converged = true;
  double ten_thousand_seconds = -1;
  for (long n : counts) {
    if (!two_phase) break;
    const long transactions = n / 2;
    const uint32_t node = NodeFor(n);
    std::string dir = std::filesystem::temp_directory_path() /
                      ("xa-recovery-bench-" + std::to_string(::getpid()) + "-" +
                       std::to_string(n));
    std::filesystem::remove_all(dir);
    auto setup_start = Clock::now();
    Setup setup = PrepareInDoubt(*settings, node, transactions, setup_threads);
    {
      // The crashed manager's log: a commit decision for every other transaction.
      xa::LogOptions options;
      options.dir = dir;
      options.node_id = node;
      auto log = xa::DecisionLog::Open(options);
      if (!log.ok()) Die("log", log.status());
      std::atomic<long> next{0};
      auto append = [&] {
        long i;
        while ((i = next.fetch_add(2)) < transactions) {
          xa::LogRecord record;
          record.type = xa::RecordType::kCommitDecision;
          record.xid = setup.globals[i];
          record.participants = {{settings->mariadb.rm_name, setup.globals[i].WithBranch(0)},
                                 {settings->postgres.rm_name, setup.globals[i].WithBranch(1)}};
          auto lsn = (*log)->Append(record);
          if (!lsn.ok()) Die("append", lsn.status());
        }
      };
      std::vector<std::thread> pool;
      for (int t = 0; t < 8; ++t) pool.emplace_back(append);
      for (auto& t : pool) t.join();
    }
    double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // What `xa-recover resolve` does: open (replay) the log, scan, resolve, end.
    auto start = Clock::now();
    xa::LogOptions options;
    options.dir = dir;
    options.node_id = node;
    auto log = xa::DecisionLog::Open(options);
    if (!log.ok()) Die("reopening the log", log.status());
    std::vector<std::unique_ptr<xa::ResourceManager>> owned;
    std::vector<xa::ResourceManager*> rms;
    for (int s = 0; s < sessions; ++s) {
      auto m = xa::mysql::MySqlResourceManager::Create(settings->mariadb);
      auto p = xa::odbc::OdbcResourceManager::Create(settings->postgres);
      if (!m.ok()) Die("MariaDB session", m.status());
      if (!p.ok()) Die("PostgreSQL session", p.status());
      owned.push_back(std::move(m).value());
      rms.push_back(owned.back().get());
      owned.push_back(std::move(p).value());
      rms.push_back(owned.back().get());
    }
    xa::RecoveryOptions recovery;
    recovery.node_id = node;
    recovery.orphan_min_age = std::chrono::milliseconds(0);
    xa::RecoveryEngine engine(**log, rms, recovery);
    auto report = engine.Run();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!report.ok()) Die("recovery", report.status());
    bool converged = report->Converged() &&
                     report->committed == static_cast<size_t>(2 * ((transactions + 1) / 2)) &&
                     report->rolled_back == static_cast<size_t>(2 * (transactions / 2));
    all_converged = all_converged && converged;
    if (n == 10000) ten_thousand_seconds = seconds;
    std::printf("%-10ld %-8ld %-9zu %-9zu %-10.2f %-12.3f %.0f%s\n", n, transactions,
                report->committed, report->rolled_back, setup_s, seconds, n / seconds,
                converged ? "" : "   NOT CONVERGED");
    std::filesystem::remove_all(dir);
  }
  std::printf("sessions per RM during recovery: %d\n", sessions);
  if (ten_thousand_seconds >= 0) {
    std::printf("10,000 in-doubt branches recovered in %.2f s (target <= 10 s): %s\n",
                ten_thousand_seconds, ten_thousand_seconds <= 10.0 ? "met" : "MISSED");
  }

  if (agent.empty()) {
    std::printf("\n3PC: not run (--no-agents, or no xa-agent was built beside this bench)\n");
    return all_converged ? 0 : 1;
  }
  std::printf("\n3PC: the coordinator gone after every agent voted and half of the transactions "
              "pre-committed; both agents restarted, then they finish alone (termination timeout "
              "%.1f s); times from the restart\n", agent_timeout_ms / 1000.0);
  std::printf("(a restarted participant waits its timeout T, then runs rule c once both agents "
              "are up: each row includes T)\n");
  std::printf("%-10s %-8s %-10s %-12s %-12s %-22s %s\n", "branches", "txns", "setup s",
              "finished s", "branches/s", "committed rows M/P", "aborted rows M/P");
  for (long n : counts) {
    const long transactions = n / 2;
    CleanLeftovers(*settings, ThreePhaseNodeFor(n));
    AgentsResult r = RunAgentsCase(*settings, agent, transactions, setup_threads, agent_timeout_ms);
    const long committed = (transactions + 1) / 2;
    const bool right = r.finished_s >= 0 && r.committed_rows_mariadb == committed &&
                       r.committed_rows_postgres == committed && r.aborted_rows_mariadb == 0 &&
                       r.aborted_rows_postgres == 0;
    all_converged = all_converged && right;
    std::printf("%-10ld %-8ld %-10.2f %-12.3f %-12.3f %-22s %ld/%ld%s\n", n, transactions,
                r.setup_s, r.finished_s, r.finished_s > 0 ? n / r.finished_s : 0.0,
                (std::to_string(r.committed_rows_mariadb) + "/" +
                 std::to_string(r.committed_rows_postgres) + " of " + std::to_string(committed))
                    .c_str(),
                r.aborted_rows_mariadb, r.aborted_rows_postgres,
                right ? "" : (r.finished_s < 0 ? "   NOT FINISHED" : "   WRONG OUTCOME"));
  }
  return all_converged ? 0 : 1;
}
