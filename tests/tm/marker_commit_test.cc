// Marker commit (Protocol::kMarkerCommit) over scripted RMs: the exact XA and marker calls, the
// decision log left empty, and each way the marker branch's commit can end, settled by the
// marker; then recovery of its branches by the marker.

#include <chrono>
#include <thread>

#include "tests/tm/tm_test_fixture.h"
#include "xa/recovery.h"

namespace xa::test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// "b" holds the marker table: the last branch enlisted on it is the marker branch.
class MarkerCommitTest : public TmTest {
 protected:
  TransactionManagerOptions MarkerOptions() {
    TransactionManagerOptions options = Options();
    options.marker_commit.rm = "b";
    options.marker_commit.cleanup_interval = std::chrono::milliseconds(1);
    return options;
  }

  Outcome MarkerCommitWith(std::vector<ScriptedResourceManager*> rms, Xid* xid = nullptr,
                           Status* last_status = nullptr) {
    Result<Transaction> txn = manager_->Begin(Protocol::kMarkerCommit);
    EXPECT_TRUE(txn.ok()) << txn.status().ToString();
    if (!txn.ok()) return Outcome::kUnknown;
    for (ScriptedResourceManager* rm : rms) EXPECT_TRUE(txn->Enlist(*rm).ok());
    if (xid != nullptr) *xid = txn->xid();
    Result<Outcome> outcome = txn->Commit();
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    if (last_status != nullptr) *last_status = txn->last_status();
    if (outcome.ok() && *outcome != Outcome::kCommittedCompletionPending) WaitForBackground();
    return outcome.ok() ? *outcome : Outcome::kUnknown;
  }

  // The marker branch's one-phase commit of transaction *xid lands (its row is committed) and
  // the connection breaks before the reply; with `settle_unreachable`, every settle fails too.
  void CommitLandsReplyLost(const Xid* xid, bool settle_unreachable = false) {
    b_.SetPolicy([this, xid, settle_unreachable](Verb verb, const Xid& x) -> std::optional<Status> {
      if (verb == Verb::kCommit && x == xid->WithBranch(1)) {
        b_.SetMarker(*xid, MarkerOutcome::kCommitted);
        return Status(Code::kRmFail, "connection lost");
      }
      if (settle_unreachable && verb == Verb::kSettleMarker) {
        return Status(Code::kRmFail, "server unreachable");
      }
      return std::nullopt;
    });
  }

  // The sessions the marker was settled on (0 is the application's).
  std::vector<int> SettleSessions() {
    std::vector<int> sessions;
    for (const Call& call : b_.Calls()) {
      if (call.verb == Verb::kSettleMarker) sessions.push_back(call.session);
    }
    return sessions;
  }

  // Waits (bounded) until the cleaner has deleted every marker row of "b".
  bool MarkerRowsDeleted() {
    for (int i = 0; i < 5000 && b_.marker_rows() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return b_.marker_rows() == 0;
  }

  // A recovery pass over fresh sessions of a, b and c, with the marker on "b" (or none).
  RecoveryReport Recover(bool with_marker = true) {
    std::vector<std::unique_ptr<ScriptedResourceManager>> sessions;
    std::vector<ResourceManager*> rms;
    for (ScriptedResourceManager* rm : {&a_, &b_, &c_}) {
      sessions.push_back(rm->NewSession());
      rms.push_back(sessions.back().get());
    }
    RecoveryOptions options;
    options.node_id = kNode;
    if (with_marker) options.marker.rm = "b";
    RecoveryEngine engine(log_, rms, options);
    Result<RecoveryReport> report = engine.Run();
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : RecoveryReport();
  }
};

TEST_F(MarkerCommitTest, MarkerBranchCommitsInOnePhaseWithItsRowAndNothingIsLogged) {
  OpenManager(MarkerOptions());
  Xid xid;
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid), Outcome::kCommitted);
  EXPECT_EQ(xid.format_id(), Xid::kMarkerFormatId);
  EXPECT_THAT(a_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  // The marker branch: never prepared; its row written before it is ended.
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "write-marker", "end(TMSUCCESS)",
                                      "commit(TMONEPHASE)"));
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().marker_commits, 1u);
  EXPECT_EQ(manager_->Metrics().decision_records, 0u);
  // The row of the finished transaction is deleted by the cleaner, on a session of its own.
  EXPECT_TRUE(MarkerRowsDeleted());
  EXPECT_THAT(b_.Trace(-1), Contains("delete-markers"));
}

TEST_F(MarkerCommitTest, TheLastBranchOnTheMarkerResourceManagerIsTheMarkerBranch) {
  OpenManager(MarkerOptions());
  EXPECT_EQ(MarkerCommitWith({&b_, &a_, &c_}), Outcome::kCommitted);
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "write-marker", "end(TMSUCCESS)",
                                      "commit(TMONEPHASE)"));
  for (ScriptedResourceManager* rm : {&a_, &c_}) {
    EXPECT_THAT(rm->Trace(),
                ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  }
}

TEST_F(MarkerCommitTest, APreparedBranchIsCommittedOnlyAfterTheMarkerBranchCommitted) {
  OpenManager(MarkerOptions());
  std::optional<MarkerOutcome> marker_at_phase_two;
  Xid xid;
  a_.Script(Verb::kCommit, {Step::Then(Code::kOk, [&] { marker_at_phase_two = b_.Marker(xid); })});
  Result<Transaction> txn = manager_->Begin(Protocol::kMarkerCommit);
  ASSERT_TRUE(txn.ok());
  xid = txn->xid();
  ASSERT_TRUE(txn->Enlist(a_).ok());
  ASSERT_TRUE(txn->Enlist(b_).ok());
  EXPECT_EQ(*txn->Commit(), Outcome::kCommitted);
  EXPECT_EQ(marker_at_phase_two, MarkerOutcome::kCommitted);
}

TEST_F(MarkerCommitTest, RollbackVoteRollsBackTheMarkerBranchAndItsRowWithIt) {
  OpenManager(MarkerOptions());
  a_.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}), Outcome::kRolledBack);
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "write-marker", "end(TMSUCCESS)",
                                      "rollback"));
  EXPECT_EQ(b_.marker_rows(), 0u);
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(MarkerCommitTest, MarkerRowAlreadySettledAsAbortedRollsEverythingBack) {
  OpenManager(MarkerOptions());
  b_.Script(Verb::kWriteMarker, {Step::Return(Code::kDupId, "duplicate marker row")});
  Status last;
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_THAT(last.message(), HasSubstr("settled this transaction as aborted"));
  // Never ended with TMSUCCESS: ended with TMFAIL, then rolled back.
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "write-marker", "end(TMFAIL)",
                                      "rollback"));
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
}

TEST_F(MarkerCommitTest, OnePhaseRollbackAnswerRollsBackThePreparedBranches) {
  OpenManager(MarkerOptions());
  b_.Script(Verb::kCommit, {Step::Return(Code::kRbIntegrity)});
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}), Outcome::kRolledBack);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_THAT(b_.Trace(-1), ::testing::Not(Contains("settle-marker")));
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
}

TEST_F(MarkerCommitTest, LostReplyOfACommitThatLandedIsSettledAsCommitted) {
  OpenManager(MarkerOptions());
  Xid xid;
  CommitLandsReplyLost(&xid);
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid), Outcome::kCommitted);
  // Settled once, on a fresh session: the dead one is never used again.
  EXPECT_THAT(SettleSessions(), ElementsAre(::testing::Gt(0)));
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                      "commit(TMNOFLAGS)"));
  EXPECT_EQ(manager_->Metrics().marker_settles, 1u);
}

TEST_F(MarkerCommitTest, FailedCommitOnALiveSessionIsReleasedThenSettledAsAborted) {
  OpenManager(MarkerOptions());
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmError, "out of disk")});
  Xid xid;
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid), Outcome::kRolledBack);
  // The session may still hold the branch and its row's lock: released before the settle.
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "write-marker", "end(TMSUCCESS)",
                                      "commit(TMONEPHASE)", "rollback"));
  EXPECT_THAT(SettleSessions(), ElementsAre(::testing::Gt(0)));
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  // The 'A' row the settle wrote is deleted once every branch is rolled back.
  EXPECT_TRUE(MarkerRowsDeleted());
}

TEST_F(MarkerCommitTest, UnsettledMarkerLeavesThePreparedBranchToRecoveryWhichSettlesIt) {
  OpenManager(MarkerOptions());
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail, "connection lost")});
  b_.RefuseSessions();  // the marker's server is unreachable
  Xid xid;
  Status last;
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid, &last), Outcome::kUnknown);
  EXPECT_THAT(last.message(), HasSubstr("decided by the marker row"));
  EXPECT_THAT(a_.PreparedXids(), ElementsAre(xid.WithBranch(0)));
  EXPECT_THAT(log_.Records(), IsEmpty());

  // Back up: the commit had not landed; recovery writes 'A' and rolls the branch back.
  b_.AllowSessions();
  RecoveryReport report = Recover();
  EXPECT_EQ(report.rolled_back, 1u);
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_TRUE(report.Converged());
  // Its row served its purpose: deleted once the branch was rolled back.
  EXPECT_EQ(b_.Marker(xid), std::nullopt);
}

TEST_F(MarkerCommitTest, RecoveryCommitsAPreparedBranchWhoseMarkerCommitted) {
  OpenManager(MarkerOptions());
  Xid xid;
  CommitLandsReplyLost(&xid, /*settle_unreachable=*/true);
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid), Outcome::kUnknown);
  b_.SetPolicy(nullptr);

  RecoveryReport report = Recover();
  EXPECT_EQ(report.committed, 1u);
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(a_.Trace(-1), Contains("commit(TMNOFLAGS)"));
  EXPECT_EQ(b_.Marker(xid), std::nullopt);  // deleted once finished
}

TEST_F(MarkerCommitTest, RecoveryWithoutTheMarkerConfigurationNeverPresumesAbort) {
  OpenManager(MarkerOptions());
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail, "connection lost")});
  b_.RefuseSessions();
  Xid xid;
  EXPECT_EQ(MarkerCommitWith({&a_, &b_}, &xid), Outcome::kUnknown);
  b_.AllowSessions();
  RecoveryReport report = Recover(/*with_marker=*/false);
  EXPECT_EQ(report.rolled_back, 0u);
  EXPECT_EQ(report.orphans_deferred, 1u);
  EXPECT_FALSE(report.Converged());
  EXPECT_THAT(a_.PreparedXids(), ElementsAre(xid.WithBranch(0)));
  ASSERT_FALSE(report.branches.empty());
  EXPECT_THAT(report.branches[0].reason, HasSubstr("no marker configuration"));
}

TEST_F(MarkerCommitTest, RecoverySweepDeletesRowsOfFinishedTransactionsOnly) {
  OpenManager(MarkerOptions());
  XidGenerator xids(kNode);
  const Xid finished = xids.Next(Protocol::kMarkerCommit);
  b_.SetMarker(finished, MarkerOutcome::kCommitted);
  // A committed marker whose other branch is still prepared (the crash came before phase 2).
  const Xid open = xids.Next(Protocol::kMarkerCommit);
  b_.SetMarker(open, MarkerOutcome::kCommitted);
  ASSERT_TRUE(a_.Start(open.WithBranch(0), StartFlag::kNoFlags).ok());
  ASSERT_TRUE(a_.End(open.WithBranch(0), EndFlag::kSuccess).ok());
  ASSERT_TRUE(a_.Prepare(open.WithBranch(0)).ok());
  // Recovery commits the open one and deletes its row; the sweep deletes the finished one's.
  RecoveryReport report = Recover();
  EXPECT_EQ(report.committed, 1u);
  EXPECT_EQ(b_.marker_rows(), 0u);
}

TEST_F(MarkerCommitTest, SweepKeepsTheRowOfATransactionWithABranchStillPrepared) {
  OpenManager(MarkerOptions());
  XidGenerator xids(kNode);
  const Xid open = xids.Next(Protocol::kMarkerCommit);
  b_.SetMarker(open, MarkerOutcome::kCommitted);
  ASSERT_TRUE(a_.Start(open.WithBranch(0), StartFlag::kNoFlags).ok());
  ASSERT_TRUE(a_.End(open.WithBranch(0), EndFlag::kSuccess).ok());
  ASSERT_TRUE(a_.Prepare(open.WithBranch(0)).ok());
  a_.SetDefault(Verb::kCommit, Code::kRmFail);  // the commit cannot be made this pass
  RecoveryReport report = Recover();
  EXPECT_EQ(report.failed, 1u);
  EXPECT_EQ(b_.Marker(open), MarkerOutcome::kCommitted);
}

TEST_F(MarkerCommitTest, TransactionWithoutABranchOnTheMarkerResourceManagerLogsItsDecision) {
  OpenManager(MarkerOptions());
  EXPECT_EQ(MarkerCommitWith({&a_, &c_}), Outcome::kCommitted);
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_EQ(b_.marker_rows(), 0u);
}

TEST_F(MarkerCommitTest, OpenRefusesAMarkerTableItCannotRead) {
  b_.Script(Verb::kListMarkers,
            {Step::Return(Code::kRmError, "Table 'xa_commit_marker' doesn't exist")});
  Result<std::unique_ptr<TransactionManager>> manager =
      TransactionManager::Open(MarkerOptions(), log_);
  ASSERT_FALSE(manager.ok());
  EXPECT_EQ(manager.status().code(), Code::kConfig);
  EXPECT_THAT(manager.status().message(), HasSubstr("docs/marker-commit.md"));
}

TEST_F(MarkerCommitTest, OpenRefusesABadTableNameAndAnUnknownResourceManager) {
  TransactionManagerOptions bad_name = MarkerOptions();
  bad_name.marker_commit.table = "markers; DROP TABLE accounts";
  Result<std::unique_ptr<TransactionManager>> manager =
      TransactionManager::Open(std::move(bad_name), log_);
  ASSERT_FALSE(manager.ok());
  EXPECT_EQ(manager.status().code(), Code::kConfig);
  EXPECT_THAT(manager.status().message(), HasSubstr("may hold only ASCII letters"));

  TransactionManagerOptions unknown = MarkerOptions();
  unknown.marker_commit.rm = "nowhere";
  manager = TransactionManager::Open(std::move(unknown), log_);
  ASSERT_FALSE(manager.ok());
  EXPECT_THAT(manager.status().message(), HasSubstr("'nowhere'"));
}

TEST_F(MarkerCommitTest, BeginRefusesMarkerCommitWithoutAMarkerTable) {
  OpenManager();
  Result<Transaction> txn = manager_->Begin(Protocol::kMarkerCommit);
  ASSERT_FALSE(txn.ok());
  EXPECT_EQ(txn.status().code(), Code::kNotSupported);
  EXPECT_THAT(txn.status().message(), HasSubstr("marker_commit"));
}

TEST(MarkerTableName, AcceptsPlainAndSchemaQualifiedIdentifiersOnly) {
  EXPECT_EQ(MarkerTableNameError("xa_commit_marker"), "");
  EXPECT_EQ(MarkerTableNameError("xa.xa_commit_marker"), "");
  EXPECT_EQ(MarkerTableNameError("_m1"), "");
  for (const char* bad : {"", "1abc", "a b", "a;b", "a'b", "a.b.c", ".a", "a.", "a-b", "`a`"}) {
    EXPECT_NE(MarkerTableNameError(bad), "") << bad;
  }
  EXPECT_NE(MarkerTableNameError(std::string(65, 'a')), "");
}

}  // namespace
}  // namespace xa::test
