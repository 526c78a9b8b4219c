// Database faults under the transaction manager, on the real servers (rows of
// docs/crash-matrix.md):
//   R4  the session of a prepared branch is killed (MariaDB KILL, PostgreSQL
//       pg_terminate_backend) just before phase 2: the branch is in doubt (XAER_RMFAIL), the
//       manager retries from a fresh session, and the transfer commits on both databases;
//   R5  an operator rolls a prepared branch back behind the manager's back: the commit finds
//       XAER_NOTA and the manager reports, and persists, a heuristic outcome.
// The faults are real server actions injected at the right moment by a wrapper around the real
// driver session; every result the manager sees comes from the servers.

#include <cppconn/connection.h>
#include <cppconn/statement.h>
#include <sql.h>
#include <sqlext.h>

#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include "examples/bank/bank.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "src/testing/forwarding_resource_manager.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

constexpr char kPrefix[] = "dbfault";

// Forwards every call to a real session; runs `before_prepare` or `before_commit` (a server-side
// fault) first.
class FaultInjectingRm final : public internal::ForwardingResourceManager {
 public:
  using ForwardingResourceManager::ForwardingResourceManager;
  std::function<void()> before_prepare, before_commit;

  Status Prepare(const Xid& x) override {
    if (before_prepare) before_prepare();
    return inner().Prepare(x);
  }
  Status Commit(const Xid& x, CommitMode m) override {
    if (before_commit) before_commit();
    return inner().Commit(x, m);
  }
};

class DbFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    auto settings = bank::SettingsFromEnvironment();
    ASSERT_TRUE(settings.ok()) << settings.status().ToString();
    settings->table_prefix = kPrefix;
    auto bank = bank::Bank::Connect(*settings);
    ASSERT_TRUE(bank.ok()) << bank.status().ToString();
    bank_ = std::move(bank).value();
    ASSERT_TRUE(bank_->Reset().ok());
    LogOptions log_options;
    log_options.dir = scratch_.File("log");
    log_options.node_id = node_;
    auto log = DecisionLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    TransactionManagerOptions options;
    options.node_id = node_;
    options.recovery_interval = std::chrono::milliseconds(0);
    bank_->RegisterFactories(options);
    auto manager = TransactionManager::Open(options, *log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(manager).value();
    auto teller = bank_->NewTeller();
    ASSERT_TRUE(teller.ok()) << teller.status().ToString();
    teller_ = std::move(teller).value();
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
  }

  // Moves 10 from MariaDB #1 to PostgreSQL #1 through the wrappers.
  Result<Outcome> Transfer(FaultInjectingRm& mariadb, FaultInjectingRm& postgres, Xid* xid) {
    auto txn = manager_->Begin();
    if (!txn.ok()) return txn.status();
    *xid = txn->xid();
    XA_RETURN_IF_ERROR(txn->Enlist(mariadb));
    XA_RETURN_IF_ERROR(txn->Enlist(postgres));
    std::string marker = bank::GtridHex(*xid);
    try {
      std::unique_ptr<sql::Statement> st(teller_.mariadb->connection().createStatement());
      st->executeUpdate(std::string("UPDATE ") + kPrefix +
                        "_accounts SET balance = balance - 10 WHERE id = 1");
      st->executeUpdate(std::string("INSERT INTO ") + kPrefix + "_transfers VALUES ('" + marker +
                        "', 10)");
    } catch (const sql::SQLException& e) {
      return teller_.mariadb->StatusFromException(e);
    }
    auto changed = teller_.postgres->Execute(std::string("UPDATE ") + kPrefix +
                                             "_accounts SET balance = balance + 10 WHERE id = 1");
    if (changed.ok()) {
      changed = teller_.postgres->Execute(std::string("INSERT INTO ") + kPrefix +
                                          "_transfers VALUES ('" + marker + "', 10)");
    }
    if (!changed.ok()) return changed.status();
    last_txn_ = std::move(txn).value();
    return last_txn_.Commit();
  }

  ScratchDir scratch_;
  uint32_t node_ = 0;
  std::unique_ptr<bank::Bank> bank_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
  bank::Teller teller_;
  Transaction last_txn_;
};

TEST_F(DbFaultTest, R4KilledMariaDbSessionAfterPrepareIsRetriedAndCommits) {
  FaultInjectingRm mariadb(*teller_.mariadb), postgres(*teller_.postgres);
  uint64_t connection = teller_.mariadb->connection_id();
  mariadb.before_commit = [connection] {
    ProcessResult killed = MariaDbAdmin("KILL " + std::to_string(connection));
    ASSERT_TRUE(killed.Exited(0)) << killed.Describe();
  };
  Xid xid;
  auto outcome = Transfer(mariadb, postgres, &xid);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(*outcome == Outcome::kCommitted || *outcome == Outcome::kCommittedCompletionPending)
      << OutcomeName(*outcome) << ": " << last_txn_.last_status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(60)).ok());
  EXPECT_GE(manager_->Metrics().phase2_retries + manager_->Metrics().handed_to_background, 1u)
      << "the killed session must have been noticed and the commit retried";
  auto snapshot = bank_->Snapshot(node_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_TRUE(bank_->CheckInvariants(*snapshot, {bank::GtridHex(xid)}).ok())
      << bank_->CheckInvariants(*snapshot, {bank::GtridHex(xid)}).ToString();
}

TEST_F(DbFaultTest, R4TerminatedPostgresBackendAfterPrepareIsRetriedAndCommits) {
  FaultInjectingRm mariadb(*teller_.mariadb), postgres(*teller_.postgres);
  std::string backend_pid;
  postgres.before_prepare = [&] {
    // Still inside the branch's transaction: ask the session who it is.
    SQLHSTMT stmt = SQL_NULL_HSTMT;
    ASSERT_TRUE(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, teller_.postgres->connection(),
                                             &stmt)));
    char query[] = "SELECT pg_backend_pid()";
    ASSERT_TRUE(SQL_SUCCEEDED(SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(query), SQL_NTS)));
    ASSERT_TRUE(SQL_SUCCEEDED(SQLFetch(stmt)));
    char buffer[32] = {0};
    SQLLEN indicator = 0;
    SQLGetData(stmt, 1, SQL_C_CHAR, buffer, sizeof(buffer), &indicator);
    SQLFreeHandle(SQL_HANDLE_STMT, stmt);
    backend_pid = buffer;
  };
  postgres.before_commit = [&] {
    ProcessResult killed = PostgresAdmin("SELECT pg_terminate_backend(" + backend_pid + ")");
    ASSERT_TRUE(killed.Exited(0)) << killed.Describe();
  };
  Xid xid;
  auto outcome = Transfer(mariadb, postgres, &xid);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_FALSE(backend_pid.empty());
  EXPECT_TRUE(*outcome == Outcome::kCommitted || *outcome == Outcome::kCommittedCompletionPending)
      << OutcomeName(*outcome) << ": " << last_txn_.last_status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(60)).ok());
  auto snapshot = bank_->Snapshot(node_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  Status invariants = bank_->CheckInvariants(*snapshot, {bank::GtridHex(xid)});
  EXPECT_TRUE(invariants.ok()) << invariants.ToString();
}

TEST_F(DbFaultTest, R5BranchRolledBackBehindOurBackIsAHeuristicOutcome) {
  FaultInjectingRm mariadb(*teller_.mariadb), postgres(*teller_.postgres);
  Xid xid;
  postgres.before_commit = [&] {
    // The operator's ROLLBACK PREPARED, from another session, between prepare and commit.
    ProcessResult rolled = PostgresAdmin("ROLLBACK PREPARED '" +
                                         internal::postgres::XidToGid(xid.WithBranch(1)) + "'");
    ASSERT_TRUE(rolled.Exited(0)) << rolled.Describe();
  };
  auto outcome = Transfer(mariadb, postgres, &xid);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_TRUE(*outcome == Outcome::kHeuristicHazard || *outcome == Outcome::kHeuristicMixed ||
              *outcome == Outcome::kHeuristicRollback)
      << OutcomeName(*outcome) << ": " << last_txn_.last_status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(60)).ok());
  LogState state = log_->State();
  ASSERT_EQ(state.open_heuristics.count(xid), 1u) << "the heuristic must be persisted";
  EXPECT_NE(state.open_heuristics[xid].outcome, Outcome::kCommitted);
  // The operator acknowledges it; it is then cleared from the log.
  EXPECT_TRUE(manager_->ClearHeuristic(xid, "checked by hand: refunded the customer").ok());
  EXPECT_EQ(log_->State().open_heuristics.count(xid), 0u);
}

}  // namespace
}  // namespace xa::test
