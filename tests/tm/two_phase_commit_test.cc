// The normal paths of the 2PC coordinator: the exact XA calls per RM, their flags and order, and
// the decision log's contents.

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using TwoPhaseCommitTest = TmTest;

TEST_F(TwoPhaseCommitTest, TransactionWithoutBranchesCommitsWithoutAnyCallOrRecord) {
  OpenManager();
  EXPECT_EQ(CommitWith({}), Outcome::kCommitted);
  EXPECT_THAT(a_.Calls(), IsEmpty());
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(TwoPhaseCommitTest, SingleBranchCommitsInOnePhaseWithoutDecisionRecord) {
  OpenManager();
  Xid xid;
  EXPECT_EQ(CommitWith({&a_}, &xid), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "commit(TMONEPHASE)"));
  for (const Call& call : a_.Calls()) EXPECT_EQ(call.xid, xid.WithBranch(0));
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().one_phase_commits, 1u);
}

TEST_F(TwoPhaseCommitTest, TwoBranchesPrepareLogDecisionCommitAndEnd) {
  OpenManager();
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid), Outcome::kCommitted);
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(),
                ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  }
  for (const Call& call : a_.Calls()) EXPECT_EQ(call.xid, xid.WithBranch(0));
  for (const Call& call : b_.Calls()) EXPECT_EQ(call.xid, xid.WithBranch(1));

  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_EQ(records[0].xid, xid);
  EXPECT_EQ(records[0].protocol, Protocol::kTwoPhase);
  EXPECT_EQ(records[0].participants,
            (std::vector<Participant>{{"a", xid.WithBranch(0)}, {"b", xid.WithBranch(1)}}));
  EXPECT_EQ(records[1].xid, xid);
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
}

TEST_F(TwoPhaseCommitTest, ThreeBranchesAllCommit) {
  OpenManager();
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_, &c_}, &xid), Outcome::kCommitted);
  for (ScriptedResourceManager* rm : {&a_, &b_, &c_}) {
    EXPECT_THAT(rm->Trace(),
                ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  }
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_THAT(Names(records[0].participants), ElementsAre("a", "b", "c"));
}

TEST_F(TwoPhaseCommitTest, DecisionIsDurableBeforeAnyPhaseTwoCall) {
  OpenManager();
  std::atomic<int> decisions_seen_at_commit{-1};
  auto check = [&] {
    decisions_seen_at_commit =
        static_cast<int>(log_.RecordsOfType(RecordType::kCommitDecision).size());
  };
  a_.Script(Verb::kCommit, {Step::Then(Code::kOk, check)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_EQ(decisions_seen_at_commit.load(), 1);
}

TEST_F(TwoPhaseCommitTest, AllReadOnlyVotesCommitWithoutPhaseTwoOrRecord) {
  OpenManager();
  a_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  b_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().read_only_commits, 1u);
}

TEST_F(TwoPhaseCommitTest, OneCommitVoteWithReadOnlyOthersCommitsWithoutDecisionRecord) {
  OpenManager();
  a_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  c_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  EXPECT_EQ(CommitWith({&a_, &b_, &c_}), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  EXPECT_THAT(b_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  EXPECT_THAT(c_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(TwoPhaseCommitTest, ReadOnlyVotesAreNotLogged) {
  OpenManager();
  b_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_, &c_}, &xid), Outcome::kCommitted);
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_EQ(records[0].participants,
            (std::vector<Participant>{{"a", xid.WithBranch(0)}, {"c", xid.WithBranch(2)}}));
}

TEST_F(TwoPhaseCommitTest, ExplicitRollbackEndsWithFailAndRollsBackWithoutRecord) {
  OpenManager();
  Transaction txn = BeginWith({&a_, &b_});
  EXPECT_TRUE(txn.Rollback().ok());
  EXPECT_EQ(txn.state(), TransactionState::kRolledBack);
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  }
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().Count(Outcome::kRolledBack), 1u);
}

TEST_F(TwoPhaseCommitTest, DestroyedHandleRollsBack) {
  OpenManager();
  Xid xid;
  {
    Transaction txn = BeginWith({&a_, &b_});
    xid = txn.xid();
    EXPECT_TRUE(manager_->IsInFlight(xid));
  }
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  }
  EXPECT_FALSE(manager_->IsInFlight(xid));
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(TwoPhaseCommitTest, MoveAssignmentRollsBackTheOverwrittenTransaction) {
  OpenManager();
  Transaction first = BeginWith({&a_});
  Transaction second = BeginWith({&b_});
  first = std::move(second);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)"));
  EXPECT_FALSE(second.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  ASSERT_TRUE(first.Commit().ok());
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "commit(TMONEPHASE)"));
}

TEST_F(TwoPhaseCommitTest, PhaseOneCallsRunInParallelAcrossBranches) {
  OpenManager();
  // a's prepare waits until b's prepare has begun: sequential calls would never get there.
  std::mutex mu;
  std::condition_variable cv;
  bool b_preparing = false, a_saw_b = false;
  a_.Script(Verb::kPrepare, {Step::Then(Code::kOk, [&] {
              std::unique_lock<std::mutex> lock(mu);
              a_saw_b = cv.wait_for(lock, std::chrono::seconds(20), [&] { return b_preparing; });
              cv.notify_all();
            })});
  b_.Script(Verb::kPrepare, {Step::Then(Code::kOk, [&] {
              std::unique_lock<std::mutex> lock(mu);
              b_preparing = true;
              cv.notify_all();
              cv.wait_for(lock, std::chrono::seconds(20), [&] { return a_saw_b; });
            })});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_TRUE(a_saw_b);
}

TEST_F(TwoPhaseCommitTest, BranchXidsShareTheGlobalXidOfThisNode) {
  OpenManager();
  Transaction txn = BeginWith({&a_, &b_, &c_});
  const Xid global = txn.xid();
  EXPECT_TRUE(global.bqual().empty());
  EXPECT_TRUE(global.IsOwnedBy(kNode));
  EXPECT_EQ(txn.branch_count(), 3u);
  ASSERT_TRUE(txn.Commit().ok());
  EXPECT_EQ(a_.Calls()[0].xid, global.WithBranch(0));
  EXPECT_EQ(b_.Calls()[0].xid, global.WithBranch(1));
  EXPECT_EQ(c_.Calls()[0].xid, global.WithBranch(2));
}

}  // namespace
}  // namespace xa::test
