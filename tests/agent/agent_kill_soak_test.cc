// The agents' kill soak: a stream of 3PC transfers between MariaDB and PostgreSQL accounts (the
// test process is the coordinator) while a killer thread SIGKILLs a random xa-agent at random
// moments and restarts it. At the end, once nothing of this test is prepared any more: the total
// balance is what it was, and every transfer is all or nothing (each one inserts its marker row
// in both databases; a marker in one database only is a split transfer). Committed transfers
// must have their markers, rolled-back ones none.
//
// Bounded by XA_AGENT_SOAK_SECONDS (default 60) of transfers, plus the final settling. Label
// db;crash;soak (scripts/servers.sh); prints what it counted.

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/agent/agent_processes.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTable = "agent_soak_accounts";
constexpr const char* kMarkers = "agent_soak_markers";
constexpr int kAccounts = 5;
constexpr int64_t kBalance = 1000;

std::chrono::seconds SoakDuration() {
  if (const char* text = std::getenv("XA_AGENT_SOAK_SECONDS")) {
    const long seconds = std::strtol(text, nullptr, 10);
    if (seconds > 0) return std::chrono::seconds(seconds);
  }
  return 60s;
}

// The marker ids in one database, read with the administrators' command-line clients.
std::set<long> MarkersIn(const ProcessResult& listing) {
  std::set<long> ids;
  std::istringstream in(listing.output);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ids.insert(std::stol(line));
  }
  return ids;
}

class AgentKillSoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());
    const std::string user = RequireEnv("XA_TEST_PG_USER");
    ProcessResult m = MariaDbAdmin(std::string("DROP TABLE IF EXISTS ") + kMarkers +
                                   "; CREATE TABLE " + kMarkers +
                                   " (id BIGINT PRIMARY KEY) ENGINE=InnoDB;");
    ASSERT_TRUE(m.Exited(0)) << m.Describe();
    ProcessResult p = PostgresAdmin(std::string("DROP TABLE IF EXISTS ") + kMarkers +
                                    "; CREATE TABLE " + kMarkers + " (id BIGINT PRIMARY KEY);" +
                                    " GRANT ALL ON " + kMarkers + " TO " + user + ";");
    ASSERT_TRUE(p.Exited(0)) << p.Describe();

    agents_.emplace(node_, scratch_);
    ASSERT_NO_FATAL_FAILURE(agents_->StartBoth());
    LogOptions log_options;
    log_options.dir = scratch_.File("tm-log");
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);
    TransactionManagerOptions options;
    options.node_id = node_;
    RegisterDbFactories(options, /*read_only_optimization=*/false);
    agents_->ConfigureManager(options);
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    agents_.reset();
  }

  // Transfer `id`: MariaDB account `from` gives `amount` to PostgreSQL account `to`, and each
  // database gets the marker row `id`, in one 3PC transaction.
  Result<Outcome> Transfer(DbTeller& teller, long id, int from, int to, int64_t amount) {
    Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
    if (!txn.ok()) return txn.status();
    XA_RETURN_IF_ERROR(txn->Enlist(*teller.mariadb));
    XA_RETURN_IF_ERROR(txn->Enlist(*teller.postgres));
    Status work = TransferWork(teller, kTable, from, to, amount);
    if (work.ok()) {
      try {
        std::unique_ptr<sql::Statement> st(teller.mariadb->connection().createStatement());
        st->executeUpdate(sql::SQLString(std::string("INSERT INTO ") + kMarkers + " VALUES (" +
                                         std::to_string(id) + ")"));
      } catch (const sql::SQLException& e) {
        work = teller.mariadb->StatusFromException(e);
      }
    }
    if (work.ok()) {
      Result<int64_t> inserted = teller.postgres->Execute(
          std::string("INSERT INTO ") + kMarkers + " VALUES (" + std::to_string(id) + ")");
      if (!inserted.ok()) work = inserted.status();
    }
    if (!work.ok()) XA_RETURN_IF_ERROR(txn->SetRollbackOnly(work));
    return txn->Commit();
  }

  uint32_t node_ = 0;
  ScratchDir scratch_;
  DbTeller admin_;
  std::optional<AgentPair> agents_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(AgentKillSoakTest, RandomAgentKillsLeaveEveryTransferAllOrNothingAndTheTotalUnchanged) {
  const auto duration = SoakDuration();
  const auto started = std::chrono::steady_clock::now();
  const auto until = started + duration;
  std::atomic<bool> stop{false};
  std::atomic<int> kills{0};

  // The killer: every 0.2 to 2 s, SIGKILL a random agent, leave it down up to 0.5 s, restart it.
  std::thread killer([&] {
    std::mt19937 random(node_);
    std::uniform_int_distribution<int> pause_ms(200, 2000);
    std::uniform_int_distribution<int> down_ms(0, 500);
    std::uniform_int_distribution<int> which(0, 1);
    while (!stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(random)));
      if (stop.load()) break;
      const std::string victim = which(random) == 0 ? kAgentMariaDb : kAgentPostgres;
      agents_->Kill(victim);
      ++kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(down_ms(random)));
      agents_->Restart(victim);
    }
  });

  std::map<Outcome, int> outcomes;
  int errors = 0;
  std::set<long> committed;
  std::set<long> rolled_back;
  std::mt19937 random(node_ ^ 0x5a5a5a5au);
  std::uniform_int_distribution<int> account(1, kAccounts);
  // Never 0: MariaDB counts a row an UPDATE leaves as it was as not changed, and the transfer
  // would fail for "no such account".
  std::uniform_int_distribution<int> amount(1, 40);
  std::uniform_int_distribution<int> sign(0, 1);
  std::optional<DbTeller> teller;
  long id = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (!teller) {
      Result<DbTeller> opened = OpenTeller(/*read_only_optimization=*/false);
      ASSERT_THAT(opened, IsOk());
      teller.emplace(std::move(*opened));
    }
    ++id;
    const int64_t moved = sign(random) == 0 ? amount(random) : -amount(random);
    Result<Outcome> outcome = Transfer(*teller, id, account(random), account(random), moved);
    if (!outcome.ok()) {
      ++errors;
    } else {
      ++outcomes[*outcome];
      if (*outcome == Outcome::kCommitted) committed.insert(id);
      if (*outcome == Outcome::kRolledBack) rolled_back.insert(id);
    }
    // An agent's fence may have ended the teller's MariaDB session, and a failed transfer may
    // leave a session in any state: start the next one on fresh sessions.
    if (!outcome.ok() || *outcome != Outcome::kCommitted) teller.reset();
  }
  stop = true;
  killer.join();
  for (const char* name : {kAgentMariaDb, kAgentPostgres}) {
    if (!agents_->Running(name)) {
      ASSERT_NO_FATAL_FAILURE(agents_->Restart(name));
    }
  }

  // The agents finish what the kills left undecided or unfinished.
  std::vector<Xid> prepared;
  const auto settle_started = std::chrono::steady_clock::now();
  const auto settle_until = settle_started + 120s;
  while (std::chrono::steady_clock::now() < settle_until) {
    Result<std::vector<Xid>> scan = PreparedBranchesOf(admin_, node_);
    ASSERT_THAT(scan, IsOk());
    prepared = *scan;
    if (prepared.empty()) break;
    std::this_thread::sleep_for(200ms);
  }
  const auto settled_after = std::chrono::steady_clock::now() - settle_started;
  std::string left;
  for (const Xid& x : prepared) left += " " + x.ToString();
  ASSERT_TRUE(prepared.empty()) << "still prepared 120 s after the last kill:" << left
                                << "\nagent-mariadb:\n" << agents_->Output(kAgentMariaDb)
                                << "\nagent-postgres:\n" << agents_->Output(kAgentPostgres);


  // Nothing committed stays held: each committed participant ends done once its branch is
  // finished, the coordinator told it (its recovery tells those the agents committed without
  // it) and every peer heard the outcome. One waiting for a peer that forgot the transaction
  // (done, then its agent restarted) stayed in its agent's log for ever, and its branch was
  // fenced and finished again at every restart of its agent: the backlog grew with every kill
  // until the settling above took longer than its bound.
  std::map<std::string, double> held = agents_->AwaitNoCommittedParticipantHeld(
      60s, [&] { EXPECT_THAT(manager_->RunRecovery(), IsOk()); });
  for (const char* name : {kAgentMariaDb, kAgentPostgres}) {
    EXPECT_EQ(held[name], 0) << name << " still holds committed participants 60 s after the "
                             << "branches settled:\n" << agents_->Output(name);
  }
  const std::string kRecovered = "xa_agent_participants_recovered";
  const double recovered_mariadb = agents_->Metric(kAgentMariaDb, kRecovered);
  const double recovered_postgres = agents_->Metric(kAgentPostgres, kRecovered);

  Result<int64_t> mariadb_total = MariaDbTotal(admin_, kTable);
  Result<int64_t> postgres_total = PostgresTotal(admin_, kTable);
  ASSERT_THAT(mariadb_total, IsOk());
  ASSERT_THAT(postgres_total, IsOk());
  EXPECT_EQ(*mariadb_total + *postgres_total, 2 * kAccounts * kBalance);

  ProcessResult m = MariaDbAdmin(std::string("SELECT id FROM ") + kMarkers + " ORDER BY id");
  ASSERT_TRUE(m.Exited(0)) << m.Describe();
  ProcessResult p = PostgresAdmin(std::string("SELECT id FROM ") + kMarkers + " ORDER BY id");
  ASSERT_TRUE(p.Exited(0)) << p.Describe();
  const std::set<long> in_mariadb = MarkersIn(m);
  const std::set<long> in_postgres = MarkersIn(p);
  for (long marker : in_mariadb) {
    EXPECT_TRUE(in_postgres.count(marker)) << "transfer " << marker << " is in MariaDB only";
  }
  for (long marker : in_postgres) {
    EXPECT_TRUE(in_mariadb.count(marker)) << "transfer " << marker << " is in PostgreSQL only";
  }
  for (long marker : committed) {
    EXPECT_TRUE(in_mariadb.count(marker)) << "transfer " << marker << " was committed, yet absent";
  }
  for (long marker : rolled_back) {
    EXPECT_FALSE(in_mariadb.count(marker))
        << "transfer " << marker << " was rolled back, yet present";
  }
  EXPECT_GT(kills.load(), 0);
  EXPECT_GT(outcomes[Outcome::kCommitted], 0) << "no transfer committed during the soak";

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "agent kill soak: " << id << " transfers in " << seconds << " s: "
            << outcomes[Outcome::kCommitted] << " committed, " << outcomes[Outcome::kRolledBack]
            << " rolled back, " << outcomes[Outcome::kUnknown] << " unknown, " << errors
            << " failed before Commit; " << kills.load() << " agent kills; "
            << in_mariadb.size() << " transfers present in both databases; settled in "
            << std::chrono::duration<double>(settled_after).count()
            << " s; the agents' last restarts recovered " << recovered_mariadb << " (MariaDB) and "
            << recovered_postgres << " (PostgreSQL) participants\n";
}

}  // namespace
}  // namespace xa::test
