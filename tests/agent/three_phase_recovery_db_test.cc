// The coordinator's 3PC recovery over the real servers: MariaDB through xa::mysql, PostgreSQL
// through xa::odbc, two participant agents in this process (tests/agent/in_process_agents.h) and
// real transaction managers on one decision log. An agent is stopped at the moment the
// coordinator logs kPreCommit or kCommitDecision (a sync point on the log's append), so that its
// PreCommit or DoCommit is lost; the recovery module must then learn or finish the outcome from
// the agents, and end the record only once every agent acknowledged it. Needs
// scripts/servers.sh (label db): a missing server fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "daemons/agent/rm_branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/testing/sync_points.h"
#include "tests/agent/in_process_agents.h"
#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTable = "three_phase_recovery_accounts";
constexpr int kAccounts = 2;
constexpr int64_t kBalance = 1000;
constexpr const char* kAgentA = "agent-mariadb";
constexpr const char* kAgentB = "agent-postgres";
constexpr auto kTerminationTimeout = 1500ms;

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x34000000u | (rd() & 0xffffffu);
}

// A finisher the test holds: while held, every Finish fails as a database that is down would,
// so the agent keeps its decided participant and tries again later; released, it finishes
// through the real finisher.
class HeldFinisher final : public agent::BranchFinisher {
 public:
  explicit HeldFinisher(agent::BranchFinisher* inner) : inner_(inner) {}
  void Release() { held_ = false; }
  Status Finish(const std::string& rm_name, const Xid& branch, uint64_t fence_session_id,
                bool read_only, bool commit) override {
    if (held_.load()) return Status(Code::kRmFail, "the test holds this agent's database");
    return inner_->Finish(rm_name, branch, fence_session_id, read_only, commit);
  }

 private:
  agent::BranchFinisher* inner_;
  std::atomic<bool> held_{true};
};

class ThreePhaseRecoveryDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = UniqueNode();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());
    dir_ = MakeTempDir("3pc-recovery-db");
    ASSERT_FALSE(dir_.empty());
    key_file_ = WriteTestKeyFile(dir_);
    Result<net::SharedKey> key = net::LoadSharedKey(key_file_);
    ASSERT_THAT(key, IsOk());
    key_.emplace(std::move(*key));

    TransactionManagerOptions factories;
    RegisterDbFactories(factories);
    factories_ = factories.resource_managers;
    finishers_[kAgentA] = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{{kMariaDbRm, factories_.at(kMariaDbRm)}});
    finishers_[kAgentB] = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{{kPostgresRm, factories_.at(kPostgresRm)}});
    agents_.emplace(node_, &*key_);
    agents_->Add(kAgentA, {kMariaDbRm});
    agents_->Add(kAgentB, {kPostgresRm});
    StartAgent(kAgentA, 1);
    StartAgent(kAgentB, 1);
    Result<DbTeller> teller = OpenTeller();
    ASSERT_THAT(teller, IsOk());
    teller_ = std::move(*teller);
  }

  void TearDown() override {
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.DisableProcessing();
    sync_points.ClearAll();
    manager_.reset();
    log_.reset();
    agents_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartAgent(const std::string& name, uint64_t incarnation) {
    agents_->Start(name, finishers_.at(name).get(), incarnation,
                   AgentTimeouts{kTerminationTimeout, 500ms});
  }

  LogOptions Log() const {
    LogOptions options;
    options.dir = dir_ + "/tm-log";
    options.node_id = node_;
    return options;
  }

  // A manager on a freshly opened log (a restart of the coordinator), without periodic passes:
  // the test runs the passes it wants.
  void OpenManager() {
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(Log());
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);
    TransactionManagerOptions options;
    options.node_id = node_;
    options.resource_managers = factories_;
    options.recovery_interval = 0ms;
    agents_->ConfigureManager(options, key_file_);
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);
  }

  void CloseManager() {
    manager_.reset();
    log_.reset();  // writes the lazy end records
  }

  // The types of the records of `global` in the log's files, in order (the manager closed).
  std::vector<RecordType> RecordsOnDisk(const Xid& global) {
    std::vector<RecordType> types;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::OpenReadOnly(Log());
    EXPECT_THAT(log, IsOk());
    if (!log.ok()) return types;
    EXPECT_THAT((*log)->Scan([&](const LogRecord& record) {
      if (record.xid == global) types.push_back(record.type);
    }), IsOk());
    return types;
  }

  // What the log holds open, read from its files (the manager closed).
  std::map<Xid, LogRecord> OpenDecisionsOnDisk() {
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::OpenReadOnly(Log());
    EXPECT_THAT(log, IsOk());
    return log.ok() ? (*log)->State().open_decisions : std::map<Xid, LogRecord>{};
  }

  // Stops agent `name` when the test's thread appends its `nth` record to any decision log
  // (the coordinator's appends run on the thread that calls Commit()).
  void StopAgentAtAppend(const std::string& name, int nth) {
    const std::thread::id committer = std::this_thread::get_id();
    auto appends = std::make_shared<std::atomic<int>>(0);
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.SetCallback(sync::kLogAppendQueued, [this, name, nth, committer, appends](void*) {
      if (std::this_thread::get_id() != committer) return;
      if (appends->fetch_add(1) + 1 == nth) agents_->Stop(name);
    });
    sync_points.EnableProcessing();
  }
  // Stops agent `name` once every agent voted yes and the pre-commit record is durable, before
  // the coordinator sends any PreCommit (the record is appended beside the votes, so its append
  // is too early: the agent's vote could be lost instead).
  void StopAgentBeforePreCommit(const std::string& name) {
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.SetCallback(sync::kThreePhaseBeforePreCommit,
                            [this, name](void*) { agents_->Stop(name); });
    sync_points.EnableProcessing();
  }
  void NoMoreStops() {
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.DisableProcessing();
    sync_points.ClearAll();
  }

  // A transfer of 100 whose coordinator decides nothing: the PostgreSQL agent stops once
  // kPreCommit is durable, so its PreCommit acknowledgement never comes; the MariaDB agent is
  // PRE. Commit() answers kUnknown and the record stays open.
  void TransferLeftUndecided(Xid* global) {
    StopAgentBeforePreCommit(kAgentB);
    Result<Outcome> outcome = Transfer(100, global);
    NoMoreStops();
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(*outcome, Outcome::kUnknown) << last_status_.ToString();
  }

  Result<Outcome> Transfer(int64_t amount, Xid* xid) {
    Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
    if (!txn.ok()) return txn.status();
    *xid = txn->xid();
    XA_RETURN_IF_ERROR(txn->Enlist(*teller_.mariadb));
    XA_RETURN_IF_ERROR(txn->Enlist(*teller_.postgres));
    XA_RETURN_IF_ERROR(TransferWork(teller_, kTable, 1, 1, amount));
    Result<Outcome> outcome = txn->Commit();
    last_status_ = txn->last_status();
    return outcome;
  }

  int64_t MariaDb(int id) {
    Result<int64_t> v = MariaDbBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  int64_t Postgres(int id) {
    Result<int64_t> v = PostgresBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  std::vector<Xid> Prepared() {
    Result<std::vector<Xid>> prepared = PreparedBranchesOf(admin_, node_);
    EXPECT_THAT(prepared, IsOk());
    return prepared.ok() ? *prepared : std::vector<Xid>{};
  }

  uint32_t node_ = 0;
  DbTeller admin_;
  DbTeller teller_;
  std::string dir_;
  std::string key_file_;
  std::optional<net::SharedKey> key_;
  std::map<std::string, ResourceManagerFactory> factories_;
  std::map<std::string, std::unique_ptr<agent::RmBranchFinisher>> finishers_;
  std::optional<InProcessAgents> agents_;  // after the finishers and the key: destroyed first
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
  Status last_status_;
};

TEST_F(ThreePhaseRecoveryDbTest, ARestartedCoordinatorLearnsTheAgentsCommitOfAnUndecidedPreCommit) {
  OpenManager();
  Xid global;
  ASSERT_NO_FATAL_FAILURE(TransferLeftUndecided(&global));
  EXPECT_EQ(last_status_.code(), Code::kTimeout);
  CloseManager();
  std::map<Xid, LogRecord> open = OpenDecisionsOnDisk();
  ASSERT_EQ(open.count(global), 1u);
  EXPECT_EQ(open.at(global).type, RecordType::kPreCommit);

  // The agents terminate: the MariaDB participant is PRE, so its round commits; the restarted
  // PostgreSQL agent adopts that.
  StartAgent(kAgentB, 2);
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";

  // The coordinator restarts: its recovery asks the agents, adopts COMMIT, tells every agent
  // and ends the record.
  OpenManager();
  CloseManager();
  EXPECT_EQ(OpenDecisionsOnDisk().count(global), 0u) << "the pre-commit is still open";
  // The agents' COMMIT was adopted (a durable decision before any DoCommit), then ended.
  EXPECT_THAT(RecordsOnDisk(global),
              ::testing::ElementsAre(RecordType::kPreCommit, RecordType::kCommitDecision,
                                     RecordType::kEnd));
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
}

TEST_F(ThreePhaseRecoveryDbTest, TheLiveManagerLearnsTheOutcomeOfItsOwnUndecidedTransaction) {
  OpenManager();
  Xid global;
  ASSERT_NO_FATAL_FAILURE(TransferLeftUndecided(&global));
  // Nothing of it runs in this process any more: a pass may ask the agents about it at once.
  Result<RecoveryReport> report = manager_->RunRecovery();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->in_flight, 0u);
  EXPECT_EQ(log_->State().open_decisions.count(global), 1u);

  StartAgent(kAgentB, 2);
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";
  // The next pass of the same manager adopts the agents' COMMIT and ends the record.
  report = manager_->RunRecovery();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->end_records_written, 1u) << FormatRecoveryReport(*report);
  EXPECT_EQ(report->awaiting_agents, 0u);
  CloseManager();
  EXPECT_EQ(OpenDecisionsOnDisk().count(global), 0u);
  EXPECT_THAT(RecordsOnDisk(global),
              ::testing::ElementsAre(RecordType::kPreCommit, RecordType::kCommitDecision,
                                     RecordType::kEnd));
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
}

TEST_F(ThreePhaseRecoveryDbTest, ACommitDecisionStaysOpenUntilTheAgentThatMissedDoCommitAcknowledges) {
  OpenManager();
  // Both agents pre-commit; the PostgreSQL agent stops as the coordinator logs kCommitDecision
  // (its second append), so it never hears DoCommit.
  StopAgentAtAppend(kAgentB, 2);
  Xid global;
  Result<Outcome> outcome = Transfer(100, &global);
  NoMoreStops();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << last_status_.ToString();
  // The coordinator committed both branches itself.
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
  // No end record: one agent did not acknowledge the decision.
  LogState state = log_->State();
  ASSERT_EQ(state.open_decisions.count(global), 1u);
  EXPECT_EQ(state.open_decisions.at(global).type, RecordType::kCommitDecision);

  // A recovery pass in the same process while that agent is down: the decision stays open.
  Result<RecoveryReport> report = manager_->RunRecovery();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->end_records_written, 0u);
  EXPECT_GE(report->decisions_still_open, 1u);
  EXPECT_EQ(log_->State().open_decisions.count(global), 1u);

  // The agent comes back; the next pass hears its acknowledgement and ends the decision.
  StartAgent(kAgentB, 2);
  report = manager_->RunRecovery();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->end_records_written, 1u) << FormatRecoveryReport(*report);
  EXPECT_EQ(report->decisions_still_open, 0u);
  CloseManager();
  EXPECT_EQ(OpenDecisionsOnDisk().count(global), 0u) << "the commit decision is still open";
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
}

// The agents decide COMMIT by termination, and the MariaDB agent cannot commit its branch yet
// (its database calls fail). The coordinator's recovery adopts COMMIT and that agent
// acknowledges it, but the record must stay open while the branch is prepared: ended, it would
// no longer name the branch, and the two-phase module of a later pass would presume abort for
// it, leaving the transfer in PostgreSQL only. Once the agent commits, a pass ends the record.
TEST_F(ThreePhaseRecoveryDbTest, ACommitIsNotEndedWhileAnAgentStillHasItsBranchToCommit) {
  HeldFinisher held(finishers_.at(kAgentA).get());
  agents_->Stop(kAgentA);
  agents_->Start(kAgentA, &held, 2, AgentTimeouts{kTerminationTimeout, 500ms});
  OpenManager();
  Xid global;
  ASSERT_NO_FATAL_FAILURE(TransferLeftUndecided(&global));

  // The agents terminate to COMMIT: PostgreSQL's branch commits, MariaDB's stays prepared.
  StartAgent(kAgentB, 2);
  ASSERT_TRUE(Eventually([&] { return Postgres(1) == kBalance + 100; }))
      << "the agents did not commit the PostgreSQL branch";
  ASSERT_EQ(Prepared().size(), 1u);

  // Passes of the live manager: the first adopts COMMIT (the MariaDB agent answers COMMIT);
  // none may end the record or let the next presume abort for the MariaDB branch.
  for (int pass = 0; pass < 3; ++pass) {
    Result<RecoveryReport> report = manager_->RunRecovery();
    ASSERT_THAT(report, IsOk());
    EXPECT_EQ(report->end_records_written, 0u) << "pass " << pass << "\n"
                                               << FormatRecoveryReport(*report);
    EXPECT_EQ(report->rolled_back, 0u) << "pass " << pass << "\n"
                                       << FormatRecoveryReport(*report);
    EXPECT_EQ(log_->State().open_decisions.count(global), 1u) << "pass " << pass;
  }
  EXPECT_EQ(Prepared().size(), 1u) << "the MariaDB branch was finished by someone else";
  EXPECT_EQ(MariaDb(1), kBalance);

  // The agent's database comes back: the agent commits its branch; the next pass ends the record.
  held.Release();
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";
  Result<RecoveryReport> report = manager_->RunRecovery();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->end_records_written, 1u) << FormatRecoveryReport(*report);
  CloseManager();
  EXPECT_EQ(OpenDecisionsOnDisk().count(global), 0u);
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace xa::test
