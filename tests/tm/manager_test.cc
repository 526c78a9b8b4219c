// The manager around the coordinator: opening, recovery on open, in-flight set, metrics.

#include <sstream>

#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

using ManagerTest = TmTest;

LogRecord OpenDecision(const Xid& global, std::vector<std::string> rms) {
  LogRecord record;
  record.type = RecordType::kCommitDecision;
  record.xid = global;
  record.protocol = Protocol::kTwoPhase;
  for (size_t i = 0; i < rms.size(); ++i) {
    record.participants.push_back(
        Participant{rms[i], global.WithBranch(static_cast<uint16_t>(i))});
  }
  return record;
}

TEST_F(ManagerTest, OpenRefusesALogOfAnotherNode) {
  MemoryDecisionLog other_log(kNode + 1);
  Result<std::unique_ptr<TransactionManager>> manager =
      TransactionManager::Open(Options(), other_log);
  EXPECT_EQ(manager.status().code(), Code::kConfig);
}

TEST_F(ManagerTest, OpenRefusesAnEmptyFactory) {
  TransactionManagerOptions options = Options();
  options.resource_managers["broken"] = nullptr;
  EXPECT_EQ(TransactionManager::Open(options, log_).status().code(), Code::kConfig);
}

// Prepares `branch` on another session of `rm`, as the crashed process did.
void PrepareOnServer(ScriptedResourceManager& rm, const Xid& branch) {
  std::unique_ptr<ScriptedResourceManager> session = rm.NewSession();
  ASSERT_TRUE(session->Start(branch, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(session->End(branch, EndFlag::kSuccess).ok());
  ASSERT_TRUE(session->Prepare(branch).ok());
}

TEST_F(ManagerTest, RecoveryOnOpenCompletesOpenDecisionsThroughFreshSessions) {
  XidGenerator xids(kNode, 42);
  Xid global = xids.Next();
  // The previous run prepared both branches, logged the decision and crashed.
  PrepareOnServer(a_, global.WithBranch(0));
  PrepareOnServer(b_, global.WithBranch(1));
  log_.Preload({OpenDecision(global, {"a", "b"})});
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  OpenManager(std::move(options));
  WaitForBackground();
  EXPECT_THAT(a_.Trace(-1), Contains("commit(TMNOFLAGS)"));
  EXPECT_THAT(b_.Trace(-1), Contains("commit(TMNOFLAGS)"));
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_THAT(log_.State().open_decisions, IsEmpty());
  EXPECT_THAT(log_.RecordsOfType(RecordType::kHeuristic), IsEmpty());
}

TEST_F(ManagerTest, RecoveryOnOpenTreatsABranchNoLongerPreparedAsCommitted) {
  XidGenerator xids(kNode, 42);
  Xid global = xids.Next();
  // a's branch was committed before the crash: the recover scan no longer lists it.
  PrepareOnServer(b_, global.WithBranch(1));
  log_.Preload({OpenDecision(global, {"a", "b"})});
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  OpenManager(std::move(options));
  WaitForBackground();
  EXPECT_THAT(a_.Trace(-1), Not(Contains("commit(TMNOFLAGS)")));
  EXPECT_THAT(b_.Trace(-1), Contains("commit(TMNOFLAGS)"));
  EXPECT_THAT(log_.State().open_decisions, IsEmpty());
}

TEST_F(ManagerTest, RecoveryOnOpenRollsBackOldOrphansAndLeavesYoungOnesForTheNextPass) {
  XidGenerator xids(kNode, 42);
  Xid young = xids.Next();
  PrepareOnServer(a_, young.WithBranch(0));
  // Another node's branch and a foreign one are never touched.
  Xid foreign = Xid::Make(77, "other-tm", "b").value();
  PrepareOnServer(a_, foreign);
  Xid other_node = XidGenerator(kNode + 1, 1).Next().WithBranch(0);
  PrepareOnServer(a_, other_node);
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  options.transaction_timeout = std::chrono::hours(1);
  options.recovery_interval = std::chrono::milliseconds(0);  // passes only on demand
  OpenManager(std::move(options));
  EXPECT_THAT(a_.PreparedXids(), Contains(young.WithBranch(0))) << "too young for one pass";
  Result<RecoveryReport> second = manager_->RunRecovery();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->rolled_back, 1u);
  EXPECT_EQ(second->foreign, 2u);
  EXPECT_THAT(a_.PreparedXids(), UnorderedElementsAre(foreign, other_node));
}

TEST_F(ManagerTest, RecoveryOnOpenKeepsRetryingAnUnreachableRm) {
  XidGenerator xids(kNode, 42);
  Xid global = xids.Next();
  PrepareOnServer(a_, global.WithBranch(0));
  PrepareOnServer(b_, global.WithBranch(1));
  log_.Preload({OpenDecision(global, {"a", "b"})});
  b_.RefuseSessions();  // b is down until the test brings it back
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  OpenManager(std::move(options));
  EXPECT_TRUE(manager_->IsInFlight(global)) << "recovery must not race its own completion";
  EXPECT_EQ(log_.State().open_decisions.count(global), 1u) << "nothing is presumed while b is down";
  b_.AllowSessions();
  WaitForBackground();
  EXPECT_THAT(b_.Trace(-1), Contains("commit(TMNOFLAGS)"));
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
  EXPECT_THAT(log_.State().open_decisions, IsEmpty());
  EXPECT_FALSE(manager_->IsInFlight(global));
}

TEST_F(ManagerTest, RecoveryOnOpenRefusesADecisionOnAnUnregisteredRm) {
  XidGenerator xids(kNode, 42);
  log_.Preload({OpenDecision(xids.Next(), {"a", "gone"})});
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, log_);
  EXPECT_EQ(manager.status().code(), Code::kConfig);
  EXPECT_THAT(manager.status().message(), HasSubstr("gone"));
}

TEST_F(ManagerTest, RecoverOnOpenFalseLeavesTheLogAlone) {
  XidGenerator xids(kNode, 42);
  log_.Preload({OpenDecision(xids.Next(), {"a", "b"})});
  TransactionManagerOptions options = Options();
  options.recover_on_open = false;
  OpenManager(std::move(options));
  WaitForBackground();
  EXPECT_THAT(a_.Calls(), IsEmpty());
  EXPECT_EQ(log_.State().open_decisions.size(), 1u);
}

TEST_F(ManagerTest, InFlightListsRunningTransactionsOnly) {
  OpenManager();
  Transaction t1 = BeginWith({&a_});
  Transaction t2 = BeginWith({&b_});
  EXPECT_THAT(manager_->InFlightTransactions(), UnorderedElementsAre(t1.xid(), t2.xid()));
  EXPECT_TRUE(manager_->IsInFlight(t1.xid().WithBranch(0))) << "a branch Xid finds its global";
  ASSERT_TRUE(t1.Commit().ok());
  EXPECT_THAT(manager_->InFlightTransactions(), ElementsAre(t2.xid()));
  EXPECT_EQ(manager_->Metrics().in_flight, 1);
  ASSERT_TRUE(t2.Rollback().ok());
  EXPECT_THAT(manager_->InFlightTransactions(), IsEmpty());
}

TEST_F(ManagerTest, MetricsCountOutcomesAndPhases) {
  OpenManager();
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_EQ(CommitWith({&a_}), Outcome::kCommitted);
  a_.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kRolledBack);

  TransactionMetrics m = manager_->Metrics();
  EXPECT_EQ(m.begun, 4u);
  EXPECT_EQ(m.Count(Outcome::kCommitted), 3u);
  EXPECT_EQ(m.Count(Outcome::kRolledBack), 1u);
  EXPECT_EQ(m.one_phase_commits, 1u);
  EXPECT_EQ(m.decision_records, 2u);
  EXPECT_EQ(m.prepare.count, 3u);
  EXPECT_EQ(m.decision_write.count, 2u);
  EXPECT_EQ(m.commit_phase.count, 3u);
  EXPECT_EQ(m.total_commit.count, 4u);
  EXPECT_GT(m.total_commit.p99_us, 0.0);
  EXPECT_GE(m.total_commit.p99_us, m.total_commit.p50_us);
  EXPECT_EQ(m.in_flight, 0);

  std::string text = manager_->PrometheusText();
  EXPECT_THAT(text, HasSubstr("# TYPE xa_transactions_total counter\n"));
  EXPECT_THAT(text, HasSubstr("xa_transactions_total{outcome=\"committed\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("xa_transactions_total{outcome=\"rolled-back\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("xa_decision_records_total 2\n"));
  EXPECT_THAT(text, HasSubstr("xa_transactions_in_flight 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE xa_phase_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("xa_phase_duration_seconds_count{phase=\"total_commit\"} 4\n"));
  EXPECT_THAT(text,
              HasSubstr("xa_phase_duration_seconds_bucket{phase=\"prepare\",le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("xa_oldest_prepared_branch_age_seconds 0\n"));
  EXPECT_THAT(text, HasSubstr("xa_phase_duration_quantile_seconds{phase=\"prepare\","
                              "quantile=\"0.99\"}"));
  // Every sample line is "name{labels} value" with an xa_ name.
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    EXPECT_EQ(line.rfind("xa_", 0), 0u) << line;
  }
}

}  // namespace
}  // namespace xa::test
