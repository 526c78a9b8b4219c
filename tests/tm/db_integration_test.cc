// The transaction manager over the real servers: MariaDB through xa::mysql, PostgreSQL through
// xa::odbc, with the file-backed decision log. Needs scripts/servers.sh (label db): a missing
// server is a failure.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using ::testing::IsEmpty;

constexpr const char* kTable = "tm_it_accounts";
constexpr int kAccounts = 4;
constexpr int64_t kBalance = 1000;

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x54000000u | (rd() & 0xffffffu);
}

std::vector<RecordType> LoggedTypes(DecisionLog& log) {
  std::vector<RecordType> out;
  Status s = log.Scan([&](const LogRecord& r) { out.push_back(r.type); });
  EXPECT_THAT(s, IsOk());
  return out;
}

class TmDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = UniqueNode();
    auto admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    Status reset = ResetAccounts(admin_, kTable, kAccounts, kBalance);
    ASSERT_THAT(reset, IsOk());

    log_dir_ = TempLogDir("tm-it");
    ASSERT_FALSE(log_dir_.empty());
    LogOptions log_options;
    log_options.dir = log_dir_;
    log_options.node_id = node_;
    auto log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);

    TransactionManagerOptions options;
    options.node_id = node_;
    RegisterDbFactories(options);
    auto manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);

    auto teller = OpenTeller();
    ASSERT_THAT(teller, IsOk());
    teller_ = std::move(*teller);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    if (!log_dir_.empty()) std::filesystem::remove_all(log_dir_);
  }

  int64_t MariaDb(int id) {
    auto v = MariaDbBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  int64_t Postgres(int id) {
    auto v = PostgresBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  void ExpectTotalAndNoPreparedBranch() {
    auto my = MariaDbTotal(admin_, kTable);
    auto pg = PostgresTotal(admin_, kTable);
    ASSERT_THAT(my, IsOk());
    ASSERT_THAT(pg, IsOk());
    EXPECT_EQ(*my + *pg, 2 * kAccounts * kBalance);
    auto prepared = PreparedBranchesOf(admin_, node_);
    ASSERT_THAT(prepared, IsOk());
    EXPECT_THAT(*prepared, IsEmpty());
  }

  uint32_t node_ = 0;
  DbTeller admin_, teller_;
  std::string log_dir_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(TmDbTest, CommitMovesMoneyAcrossMariaDbAndPostgres) {
  Xid xid;
  auto outcome = Transfer(*manager_, teller_, kTable, 1, 2, 300, &xid);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  // The end record is written in the background.
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)).ok());
  EXPECT_EQ(MariaDb(1), kBalance - 300);
  EXPECT_EQ(Postgres(2), kBalance + 300);
  ExpectTotalAndNoPreparedBranch();
  EXPECT_THAT(LoggedTypes(*log_),
              ::testing::ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_THAT(log_->State().open_decisions, IsEmpty());
  EXPECT_FALSE(manager_->IsInFlight(xid));
}

TEST_F(TmDbTest, RollbackUndoesBothBranches) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(*teller_.mariadb).ok());
  ASSERT_TRUE(txn->Enlist(*teller_.postgres).ok());
  ASSERT_TRUE(TransferWork(teller_, kTable, 1, 1, 250).ok());
  Status s = txn->Rollback();
  EXPECT_THAT(s, IsOk());
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  ExpectTotalAndNoPreparedBranch();
  EXPECT_THAT(LoggedTypes(*log_), IsEmpty()) << "presumed abort: a rollback writes nothing";
}

TEST_F(TmDbTest, DestroyedHandleRollsBackBothBranches) {
  {
    auto txn = manager_->Begin();
    ASSERT_TRUE(txn.ok());
    ASSERT_TRUE(txn->Enlist(*teller_.mariadb).ok());
    ASSERT_TRUE(txn->Enlist(*teller_.postgres).ok());
    ASSERT_TRUE(TransferWork(teller_, kTable, 2, 3, 100).ok());
  }
  EXPECT_EQ(MariaDb(2), kBalance);
  EXPECT_EQ(Postgres(3), kBalance);
  ExpectTotalAndNoPreparedBranch();
}

TEST_F(TmDbTest, PostgresBranchFailingAtPrepareRollsBackTheMariaDbBranch) {
  // A deferred unique constraint is checked by PREPARE TRANSACTION, not by the INSERT: the
  // PostgreSQL branch fails in phase 1, after the MariaDB branch's work succeeded.
  {
    auto setup = manager_->Begin();
    ASSERT_TRUE(setup.ok());
    ASSERT_TRUE(setup->Enlist(*teller_.postgres).ok());
    for (const char* statement :
         {"DROP TABLE IF EXISTS tm_it_deferred",
          "CREATE TABLE tm_it_deferred (k INT, CONSTRAINT tm_it_deferred_k UNIQUE (k) "
          "DEFERRABLE INITIALLY DEFERRED)"}) {
      auto done = teller_.postgres->Execute(statement);
      ASSERT_THAT(done, IsOk());
    }
    ASSERT_EQ(*setup->Commit(), Outcome::kCommitted);
  }
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(*teller_.mariadb).ok());
  ASSERT_TRUE(txn->Enlist(*teller_.postgres).ok());
  ASSERT_TRUE(TransferWork(teller_, kTable, 1, 1, 300).ok());
  ASSERT_TRUE(teller_.postgres->Execute("INSERT INTO tm_it_deferred VALUES (1), (1)").ok());
  auto outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  // The PostgreSQL branch's vote: PREPARE TRANSACTION found the deferred unique violation.
  EXPECT_THAT(txn->last_status(), StatusIs(Code::kRbIntegrity, ::testing::HasSubstr("23505")));
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  ExpectTotalAndNoPreparedBranch();
  EXPECT_THAT(LoggedTypes(*log_), IsEmpty()) << "an abort writes no record";
}

TEST_F(TmDbTest, FailedStatementIsRolledBackOnBothDatabases) {
  // Both databases roll back only the failed statement (MariaDB; psqlODBC's statement-level
  // rollback), so the application rolls back the transaction when its work fails, as Transfer()
  // does. MariaDB's CHECK refuses the debit after PostgreSQL was credited.
  auto outcome = Transfer(*manager_, teller_, kTable, 4, 4, kBalance + 1);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  auto reverse = Transfer(*manager_, teller_, kTable, 3, 3, -(kBalance + 1));
  ASSERT_THAT(reverse, IsOk());
  EXPECT_EQ(*reverse, Outcome::kRolledBack);
  for (int id : {3, 4}) {
    EXPECT_EQ(MariaDb(id), kBalance);
    EXPECT_EQ(Postgres(id), kBalance);
  }
  ExpectTotalAndNoPreparedBranch();
}

TEST_F(TmDbTest, SingleDatabaseTransactionCommitsInOnePhase) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(*teller_.postgres).ok());
  auto changed = teller_.postgres->Execute("UPDATE " + std::string(kTable) +
                                           " SET balance = balance + 1 WHERE id = 2");
  ASSERT_TRUE(changed.ok());
  auto outcome = txn->Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_EQ(Postgres(2), kBalance + 1);
  EXPECT_THAT(LoggedTypes(*log_), IsEmpty());
  EXPECT_EQ(manager_->Metrics().one_phase_commits, 1u);
}

TEST_F(TmDbTest, ReadOnlyBranchesCommitWithoutDecisionRecord) {
  auto txn = manager_->Begin();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(*teller_.mariadb).ok());
  ASSERT_TRUE(txn->Enlist(*teller_.postgres).ok());
  auto changed = teller_.postgres->Execute("UPDATE " + std::string(kTable) +
                                           " SET balance = balance + 7 WHERE id = 3");
  ASSERT_TRUE(changed.ok());
  // MariaDB branch does nothing: read-only vote, PostgreSQL is the only committer.
  auto outcome = txn->Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_EQ(Postgres(3), kBalance + 7);
  EXPECT_THAT(LoggedTypes(*log_), IsEmpty());
  auto prepared = PreparedBranchesOf(admin_, node_);
  ASSERT_TRUE(prepared.ok());
  EXPECT_THAT(*prepared, IsEmpty());
}

}  // namespace
}  // namespace xa::test
