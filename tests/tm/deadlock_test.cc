// Two transactions of the manager deadlock on the real servers: each has a branch on the
// database they deadlock on (MariaDB through xa::mysql, MariaDB through xa::odbc, or PostgreSQL
// through xa::odbc) and a branch on the other database. The victim is rolled back however the
// application ends it, nothing of ours is left prepared, the winner commits, and the victim's
// own sessions run the next transaction. Needs scripts/servers.sh (labels db, concurrent).

#include <gtest/gtest.h>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/db_env.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

// MariaDB Connector/ODBC 3.1.15 loses one 1 KiB block per process once a multi-statement batch
// has run (the MariaDB recover scan); the allocation is entirely inside the driver.
extern "C" const char* __lsan_default_suppressions() { return "leak:libmaodbc.so\n"; }

namespace xa::test {
namespace {

constexpr const char* kTable = "tm_deadlock_accounts";
constexpr int kAccounts = 4;
constexpr int64_t kBalance = 1000;
constexpr const char* kOdbcMariaDbRm = "tm-deadlock-odbc-mariadb";

// The database the two transactions deadlock on, and the driver that reaches it.
enum class Contended { kMariaDbThroughMysql, kMariaDbThroughOdbc, kPostgresThroughOdbc };

// How the application ends the victim's transaction.
enum class VictimEnding {
  kCommitAnyway,            // the statement's error is ignored: Commit()
  kSetRollbackOnlyThenCommit,
  kRollback,
};

struct DeadlockCase {
  Contended contended;
  VictimEnding ending;
};

std::string CaseName(const ::testing::TestParamInfo<DeadlockCase>& info) {
  std::string name;
  switch (info.param.contended) {
    case Contended::kMariaDbThroughMysql: name = "MariaDbThroughMysql"; break;
    case Contended::kMariaDbThroughOdbc: name = "MariaDbThroughOdbc"; break;
    case Contended::kPostgresThroughOdbc: name = "PostgresThroughOdbc"; break;
  }
  switch (info.param.ending) {
    case VictimEnding::kCommitAnyway: return name + "CommitAnyway";
    case VictimEnding::kSetRollbackOnlyThenCommit: return name + "SetRollbackOnlyThenCommit";
    case VictimEnding::kRollback: return name + "Rollback";
  }
  return name;
}

// One session and the way the application runs a statement of its branch on it, with the
// error classified by the driver.
class Session {
 public:
  virtual ~Session() = default;
  virtual ResourceManager& rm() = 0;
  virtual Status Run(const std::string& sql) = 0;
};

class MysqlClientSession final : public Session {
 public:
  explicit MysqlClientSession(std::unique_ptr<mysql::MySqlResourceManager> rm)
      : rm_(std::move(rm)) {}
  ResourceManager& rm() override { return *rm_; }
  Status Run(const std::string& sql) override {
    try {
      std::unique_ptr<sql::Statement> statement(rm_->connection().createStatement());
      statement->execute(sql::SQLString(sql));
      return Status::Ok();
    } catch (const sql::SQLException& e) {
      return rm_->StatusFromException(e);
    }
  }

 private:
  std::unique_ptr<mysql::MySqlResourceManager> rm_;
};

class OdbcClientSession final : public Session {
 public:
  explicit OdbcClientSession(std::unique_ptr<odbc::OdbcResourceManager> rm)
      : rm_(std::move(rm)) {}
  ResourceManager& rm() override { return *rm_; }
  Status Run(const std::string& sql) override { return rm_->Execute(sql).status(); }

 private:
  std::unique_ptr<odbc::OdbcResourceManager> rm_;
};

odbc::OdbcOptions OdbcMariaDbOptions() {
  ServerAccount account = MariaDbAccount();
  odbc::OdbcOptions options;
  options.rm_name = kOdbcMariaDbRm;
  options.dsn = OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = odbc::Dialect::kMariaDb;
  return options;
}

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x5d000000u | (rd() & 0xffffffu);
}

// A client of the manager: a session on the contended database and one on the other.
struct Client {
  std::unique_ptr<Session> contended;
  std::unique_ptr<Session> other;
  int other_account = 0;  // the account it moves money to on the other database
  int64_t delta = 0;      // what it adds to contended accounts 1 and 2 and to other_account
};

class TmDeadlockTest : public ::testing::TestWithParam<DeadlockCase> {
 protected:
  bool ContendedIsPostgres() const {
    return GetParam().contended == Contended::kPostgresThroughOdbc;
  }

  void SetUp() override {
    node_ = UniqueNode();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    admin_ = std::move(*admin);
    Status reset = ResetAccounts(admin_, kTable, kAccounts, kBalance);
    ASSERT_TRUE(reset.ok()) << reset.ToString();

    log_dir_ = TempLogDir("tm-deadlock");
    ASSERT_FALSE(log_dir_.empty());
    LogOptions log_options;
    log_options.dir = log_dir_;
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(*log);

    TransactionManagerOptions options;
    options.node_id = node_;
    RegisterDbFactories(options);
    odbc::OdbcOptions odbc_mariadb = OdbcMariaDbOptions();
    options.resource_managers[kOdbcMariaDbRm] =
        [odbc_mariadb]() -> Result<std::unique_ptr<ResourceManager>> {
      auto rm = odbc::OdbcResourceManager::Create(odbc_mariadb);
      if (!rm.ok()) return rm.status();
      return std::unique_ptr<ResourceManager>(std::move(*rm));
    };
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(*manager);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    if (!log_dir_.empty()) std::filesystem::remove_all(log_dir_);
  }

  std::unique_ptr<Session> OpenSession(bool on_postgres) {
    if (on_postgres) {
      auto rm = OpenPostgres();
      EXPECT_TRUE(rm.ok()) << rm.status().ToString();
      return rm.ok() ? std::make_unique<OdbcClientSession>(std::move(*rm)) : nullptr;
    }
    if (GetParam().contended == Contended::kMariaDbThroughOdbc) {
      auto rm = odbc::OdbcResourceManager::Create(OdbcMariaDbOptions());
      EXPECT_TRUE(rm.ok()) << rm.status().ToString();
      return rm.ok() ? std::make_unique<OdbcClientSession>(std::move(*rm)) : nullptr;
    }
    auto rm = OpenMariaDb();
    EXPECT_TRUE(rm.ok()) << rm.status().ToString();
    return rm.ok() ? std::make_unique<MysqlClientSession>(std::move(*rm)) : nullptr;
  }

  void OpenClient(int other_account, int64_t delta, Client* client) {
    client->contended = OpenSession(ContendedIsPostgres());
    // The other database is reached through the other driver's usual session.
    if (ContendedIsPostgres()) {
      auto rm = OpenMariaDb();
      ASSERT_TRUE(rm.ok()) << rm.status().ToString();
      client->other = std::make_unique<MysqlClientSession>(std::move(*rm));
    } else {
      auto rm = OpenPostgres();
      ASSERT_TRUE(rm.ok()) << rm.status().ToString();
      client->other = std::make_unique<OdbcClientSession>(std::move(*rm));
    }
    ASSERT_NE(client->contended, nullptr);
    client->other_account = other_account;
    client->delta = delta;
  }

  std::string AddTo(int account, int64_t delta) {
    return std::string("UPDATE ") + kTable + " SET balance = balance + " + std::to_string(delta) +
           " WHERE id = " + std::to_string(account);
  }

  // Begins a transaction of `client`, enlists both sessions, and runs its first two updates:
  // the other database's account and contended account `first`.
  void BeginWork(Client& client, int first, Transaction* txn) {
    Result<Transaction> begun = manager_->Begin();
    ASSERT_TRUE(begun.ok()) << begun.status().ToString();
    *txn = std::move(*begun);
    Status enlisted = txn->Enlist(client.contended->rm());
    ASSERT_TRUE(enlisted.ok()) << enlisted.ToString();
    enlisted = txn->Enlist(client.other->rm());
    ASSERT_TRUE(enlisted.ok()) << enlisted.ToString();
    Status ran = client.other->Run(AddTo(client.other_account, client.delta));
    ASSERT_TRUE(ran.ok()) << ran.ToString();
    ran = client.contended->Run(AddTo(first, client.delta));
    ASSERT_TRUE(ran.ok()) << ran.ToString();
  }

  int64_t Balance(bool on_postgres, int account) {
    Result<int64_t> balance = on_postgres ? PostgresBalance(admin_, kTable, account)
                                          : MariaDbBalance(admin_, kTable, account);
    EXPECT_TRUE(balance.ok()) << balance.status().ToString();
    return balance.ok() ? *balance : -1;
  }
  int64_t Contended(int account) { return Balance(ContendedIsPostgres(), account); }
  int64_t Other(int account) { return Balance(!ContendedIsPostgres(), account); }

  void ExpectNothingPrepared() {
    Result<std::vector<Xid>> prepared = PreparedBranchesOf(admin_, node_);
    ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
    EXPECT_TRUE(prepared->empty()) << prepared->size() << " branches of ours are still prepared";
  }

  uint32_t node_ = 0;
  DbTeller admin_;
  std::string log_dir_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_P(TmDeadlockTest, VictimIsRolledBackNothingStaysPreparedAndItsSessionsRunTheNextOne) {
  Client a, b;
  ASSERT_NO_FATAL_FAILURE(OpenClient(3, 1, &a));
  ASSERT_NO_FATAL_FAILURE(OpenClient(4, 10, &b));
  Transaction txn_a, txn_b;
  ASSERT_NO_FATAL_FAILURE(BeginWork(a, 1, &txn_a));
  ASSERT_NO_FATAL_FAILURE(BeginWork(b, 2, &txn_b));

  // A asks for B's account in another thread and B for A's: whichever comes second closes the
  // cycle, and the server rolls one of the two branches back.
  Status second_a;
  std::thread a_thread([&] { second_a = a.contended->Run(AddTo(2, a.delta)); });
  Status second_b = b.contended->Run(AddTo(1, b.delta));
  a_thread.join();
  ASSERT_NE(second_a.ok(), second_b.ok())
      << "exactly one deadlock victim: A " << second_a.ToString() << " / B "
      << second_b.ToString();
  const bool a_is_victim = !second_a.ok();
  Client& victim = a_is_victim ? a : b;
  Client& winner = a_is_victim ? b : a;
  Transaction& victim_txn = a_is_victim ? txn_a : txn_b;
  Transaction& winner_txn = a_is_victim ? txn_b : txn_a;
  const Status& failure = a_is_victim ? second_a : second_b;
  EXPECT_EQ(failure.code(), Code::kRbDeadlock) << failure.ToString();

  switch (GetParam().ending) {
    case VictimEnding::kCommitAnyway:
    case VictimEnding::kSetRollbackOnlyThenCommit: {
      if (GetParam().ending == VictimEnding::kSetRollbackOnlyThenCommit) {
        ASSERT_TRUE(victim_txn.SetRollbackOnly(failure).ok());
      }
      Result<Outcome> outcome = victim_txn.Commit();
      ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
      EXPECT_EQ(*outcome, Outcome::kRolledBack) << victim_txn.last_status().ToString();
      break;
    }
    case VictimEnding::kRollback: {
      Status rolled_back = victim_txn.Rollback();
      EXPECT_TRUE(rolled_back.ok()) << rolled_back.ToString();
      break;
    }
  }
  EXPECT_EQ(victim_txn.state(), TransactionState::kRolledBack);

  Result<Outcome> committed = winner_txn.Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  EXPECT_EQ(*committed, Outcome::kCommitted) << winner_txn.last_status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)).ok());
  ExpectNothingPrepared();
  // Only the winner's work is there, on both databases.
  EXPECT_EQ(Contended(1), kBalance + winner.delta);
  EXPECT_EQ(Contended(2), kBalance + winner.delta);
  EXPECT_EQ(Other(winner.other_account), kBalance + winner.delta);
  EXPECT_EQ(Other(victim.other_account), kBalance);

  // The victim's own sessions run the next transaction.
  Result<Transaction> next = manager_->Begin();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  Status enlisted = next->Enlist(victim.contended->rm());
  ASSERT_TRUE(enlisted.ok()) << enlisted.ToString();
  enlisted = next->Enlist(victim.other->rm());
  ASSERT_TRUE(enlisted.ok()) << enlisted.ToString();
  Status ran = victim.contended->Run(AddTo(1, 100));
  ASSERT_TRUE(ran.ok()) << ran.ToString();
  ran = victim.other->Run(AddTo(victim.other_account, 100));
  ASSERT_TRUE(ran.ok()) << ran.ToString();
  Result<Outcome> next_outcome = next->Commit();
  ASSERT_TRUE(next_outcome.ok()) << next_outcome.status().ToString();
  EXPECT_EQ(*next_outcome, Outcome::kCommitted) << next->last_status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)).ok());
  EXPECT_EQ(Contended(1), kBalance + winner.delta + 100);
  EXPECT_EQ(Other(victim.other_account), kBalance + 100);
  ExpectNothingPrepared();
}

std::vector<DeadlockCase> AllCases() {
  std::vector<DeadlockCase> cases;
  for (Contended contended : {Contended::kMariaDbThroughMysql, Contended::kMariaDbThroughOdbc,
                              Contended::kPostgresThroughOdbc}) {
    for (VictimEnding ending :
         {VictimEnding::kCommitAnyway, VictimEnding::kSetRollbackOnlyThenCommit,
          VictimEnding::kRollback}) {
      cases.push_back(DeadlockCase{contended, ending});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Drivers, TmDeadlockTest, ::testing::ValuesIn(AllCases()), CaseName);

}  // namespace
}  // namespace xa::test
