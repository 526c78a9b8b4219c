// Failure paths of the 2PC coordinator: End and Prepare failures, a failed decision append,
// every phase-2 result, background completion, heuristics and the timeout.

#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using FailureTest = TmTest;

// --- Phase 1 ---------------------------------------------------------------------------------

TEST_F(FailureTest, FailedEndRollsBackEveryBranchWithoutPreparingTheFailedOne) {
  OpenManager();
  a_.Script(Verb::kEnd, {Step::Return(Code::kRmError)});
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kRmError);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "rollback"));
  EXPECT_THAT(b_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_THAT(log_.Records(), IsEmpty());
}

// A failed End never finishes a branch: Rollback() follows, and its XA_RB* reads as rolled back.
TEST_F(FailureTest, EndAnsweringRollbackIsFollowedByARollbackCall) {
  OpenManager();
  a_.Script(Verb::kEnd, {Step::Return(Code::kRbIntegrity)});
  a_.Script(Verb::kRollback, {Step::Return(Code::kRbIntegrity)});
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kRbIntegrity);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "rollback"));
  EXPECT_THAT(b_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_EQ(manager_->Metrics().background_pending, 0);
}

// Prepare's XAER_NOTA is no vote: the branch is rolled back like any other, and the rollback's
// own XAER_NOTA reads as rolled back (nothing is handed to the background).
TEST_F(FailureTest, PrepareNotaIsFollowedByARollbackCallWhoseNotaIsDone) {
  OpenManager();
  a_.Script(Verb::kPrepare, {Step::Return(Code::kNoTa)});
  a_.Script(Verb::kRollback, {Step::Return(Code::kNoTa)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kRolledBack);
  EXPECT_THAT(a_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_THAT(b_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_EQ(manager_->Metrics().background_pending, 0);
}

TEST_F(FailureTest, PrepareReplyLostIsRolledBackFromAFreshSessionInTheBackground) {
  OpenManager();
  // Prepare may have landed (reply lost), and the session is dead: rollback fails here too.
  a_.Script(Verb::kPrepare, {Step::Return(Code::kRmFail)});
  a_.Script(Verb::kRollback, {Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                              Step::Return(Code::kRmFail), Step::Return(Code::kRmFail)});
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kRmFail);
  WaitForBackground();
  EXPECT_THAT(a_.Trace(0), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                       "rollback"));
  std::vector<std::string> all = a_.Trace(-1);
  ASSERT_GE(all.size(), 6u);
  EXPECT_EQ(all.back(), "rollback");
  EXPECT_GE(a_.sessions_opened(), 1);
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(log_.Records(), IsEmpty()) << "a rollback, even in the background, logs nothing";
}

TEST_F(FailureTest, RollbackOfUnpreparedBranchWithDeadSessionIsDone) {
  OpenManager();
  a_.Script(Verb::kEnd, {Step::Return(Code::kRmFail)});
  a_.Script(Verb::kRollback, {Step::Return(Code::kRmFail)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kRolledBack);
  EXPECT_THAT(a_.Trace(-1), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "rollback"));
  EXPECT_EQ(manager_->Metrics().handed_to_background, 0u);
}

TEST_F(FailureTest, FailedDecisionAppendRollsBackEveryBranch) {
  OpenManager();
  log_.FailAppends(RecordType::kCommitDecision, Status(Code::kIoError, "fdatasync: EIO"));
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kIoError);
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(),
                ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  }
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().decision_write_failures, 1u);
  // The log refuses appends from now on: the next 2PC transaction rolls back too.
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kLogFailed);
}

// --- Phase 2 ---------------------------------------------------------------------------------

TEST_F(FailureTest, CommitRetryIsRepeatedOnTheSameSession) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kRetry), Step::Ok()});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_THAT(b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                      "commit(TMNOFLAGS)", "commit(TMNOFLAGS)"));
  EXPECT_EQ(b_.sessions_opened(), 0);
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_EQ(manager_->Metrics().phase2_retries, 1u);
}

TEST_F(FailureTest, CommitRmFailContinuesOnAFreshSession) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Ok()});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_THAT(b_.Trace(0), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                       "commit(TMNOFLAGS)"));
  EXPECT_THAT(b_.Trace(1), ElementsAre("commit(TMNOFLAGS)"));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
}

TEST_F(FailureTest, NotaAfterRmFailMeansTheEarlierCommitLanded) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Return(Code::kNoTa)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
}

TEST_F(FailureTest, NotaOnFirstCommitIsAHeuristicHazard) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kNoTa)});
  Xid xid;
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid, &last), Outcome::kHeuristicHazard);
  EXPECT_EQ(last.code(), Code::kHeuristicHazard);
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kHeuristic,
                                          RecordType::kEnd));
  EXPECT_EQ(records[1].outcome, Outcome::kHeuristicHazard);
  EXPECT_EQ(records[1].participants, (std::vector<Participant>{{"b", xid.WithBranch(1)}}));
  EXPECT_EQ(log_.State().open_heuristics.count(xid), 1u);
}

TEST_F(FailureTest, UnreachableBranchIsCompletedInTheBackground) {
  OpenManager();
  // Inline: 3 attempts fail; the background's first fresh sessions cannot connect, then the
  // commit fails once more, then it lands.
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                            Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                            Step::Ok()});
  Xid xid;
  Status last;
  Transaction txn = BeginWith({&a_, &b_});
  xid = txn.xid();
  b_.FailNextSessions(0);
  Result<Outcome> outcome = txn.Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, Outcome::kCommittedCompletionPending);
  EXPECT_EQ(txn.last_status().code(), Code::kRmFail);
  EXPECT_EQ(txn.state(), TransactionState::kCommitted);
  WaitForBackground();
  EXPECT_FALSE(manager_->IsInFlight(xid));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  std::vector<std::string> all = b_.Trace(-1);
  EXPECT_EQ(std::count(all.begin(), all.end(), "commit(TMNOFLAGS)"), 5);
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
  TransactionMetrics m = manager_->Metrics();
  EXPECT_EQ(m.Count(Outcome::kCommittedCompletionPending), 1u);
  EXPECT_EQ(m.handed_to_background, 1u);
  EXPECT_EQ(m.background_completed, 1u);
  EXPECT_EQ(m.in_flight, 0);
}

TEST_F(FailureTest, BackgroundCompletionWaitsForTheRmToComeBack) {
  OpenManager();
  b_.SetDefault(Verb::kCommit, Code::kRmFail);
  b_.FailNextSessions(2);  // inline: the fresh sessions cannot connect either
  Transaction txn = BeginWith({&a_, &b_});
  Xid xid = txn.xid();
  ASSERT_EQ(*txn.Commit(), Outcome::kCommittedCompletionPending);
  EXPECT_TRUE(manager_->IsInFlight(xid));
  EXPECT_EQ(manager_->Metrics().background_pending, 1);
  EXPECT_EQ(log_.State().open_decisions.count(xid), 1u);
  // While the RM is down the decision stays open and nothing is presumed.
  EXPECT_EQ(manager_->WaitForBackgroundCompletion(std::chrono::milliseconds(50)).code(),
            Code::kTimeout);
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision));
  EXPECT_GT(manager_->Metrics().oldest_prepared_age_seconds, 0.0);
  b_.SetDefault(Verb::kCommit, Code::kOk);
  WaitForBackground();
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_FALSE(manager_->IsInFlight(xid));
  EXPECT_EQ(manager_->Metrics().oldest_prepared_age_seconds, 0.0);
}

TEST_F(FailureTest, SoleCommitterThatBecomesUnreachableGetsItsDecisionLogged) {
  OpenManager();
  a_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                            Step::Return(Code::kRmFail), Step::Ok()});
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid), Outcome::kCommittedCompletionPending);
  // "completion pending" must survive a crash: the decision is durable before we return.
  std::vector<LogRecord> decisions = log_.RecordsOfType(RecordType::kCommitDecision);
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].participants, (std::vector<Participant>{{"b", xid.WithBranch(1)}}));
  WaitForBackground();
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
}

struct HeuristicCase {
  const char* name;
  Code b_result;
  Outcome outcome;
  bool forget;
};

class PhaseTwoHeuristicTest : public TmTest,
                              public ::testing::WithParamInterface<HeuristicCase> {};

// The code a transaction's last_status() carries for a heuristic outcome.
Code HeuristicCodeOf(Outcome outcome) {
  switch (outcome) {
    case Outcome::kHeuristicCommit: return Code::kHeuristicCommit;
    case Outcome::kHeuristicRollback: return Code::kHeuristicRollback;
    case Outcome::kHeuristicMixed: return Code::kHeuristicMixed;
    case Outcome::kHeuristicHazard: return Code::kHeuristicHazard;
    default: ADD_FAILURE() << "not a heuristic outcome: " << OutcomeName(outcome);
  }
  return Code::kInternal;
}

TEST_P(PhaseTwoHeuristicTest, IsReportedPersistedAndForgotten) {
  OpenManager();
  const HeuristicCase& c = GetParam();
  b_.Script(Verb::kCommit, {Step::Return(c.b_result, "scripted heuristic")});
  Xid xid;
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid, &last), c.outcome);
  EXPECT_THAT(last, StatusIs(HeuristicCodeOf(c.outcome), HasSubstr("'b'")));
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kHeuristic,
                                          RecordType::kEnd));
  EXPECT_EQ(records[1].outcome, c.outcome);
  EXPECT_EQ(records[1].participants, (std::vector<Participant>{{"b", xid.WithBranch(1)}}));
  EXPECT_NE(records[1].reason.find(std::string(CodeName(c.b_result))), std::string::npos);
  std::vector<std::string> trace = b_.Trace();
  EXPECT_EQ(trace.back(), c.forget ? "forget" : "commit(TMNOFLAGS)");
  EXPECT_THAT(a_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMNOFLAGS)"));
  EXPECT_EQ(manager_->Metrics().Count(c.outcome), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Codes, PhaseTwoHeuristicTest,
    ::testing::Values(
        HeuristicCase{"HeurRbWhileOtherCommittedIsMixed", Code::kHeuristicRollback,
                      Outcome::kHeuristicMixed, true},
        HeuristicCase{"HeurMix", Code::kHeuristicMixed, Outcome::kHeuristicMixed, true},
        HeuristicCase{"HeurHaz", Code::kHeuristicHazard, Outcome::kHeuristicHazard, true},
        HeuristicCase{"RbOnPreparedBranchIsMixed", Code::kRbRollback, Outcome::kHeuristicMixed,
                      false},
        HeuristicCase{"RmErrIsHazard", Code::kRmError, Outcome::kHeuristicHazard, false},
        HeuristicCase{"ProtoIsHazard", Code::kProto, Outcome::kHeuristicHazard, false}),
    [](const ::testing::TestParamInfo<HeuristicCase>& param_info) {
      return param_info.param.name;
    });

TEST_F(FailureTest, HeuristicRollbackOnEveryBranchIsHeuristicRollback) {
  OpenManager();
  a_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicRollback)});
  b_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicRollback)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kHeuristicRollback);
  std::vector<LogRecord> heuristics = log_.RecordsOfType(RecordType::kHeuristic);
  ASSERT_EQ(heuristics.size(), 1u);
  EXPECT_THAT(Names(heuristics[0].participants), ElementsAre("a", "b"));
}

TEST_F(FailureTest, HeuristicCommitDuringCommitIsACommit) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicCommit)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommitted);
  EXPECT_EQ(b_.Trace().back(), "forget");
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
}

TEST_F(FailureTest, HeuristicCommitDuringRollbackIsPersisted) {
  OpenManager();
  a_.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
  b_.Script(Verb::kRollback, {Step::Return(Code::kHeuristicCommit)});
  Status last;
  EXPECT_EQ(CommitWith({&a_, &b_}, nullptr, &last), Outcome::kHeuristicCommit);
  EXPECT_EQ(last.code(), Code::kHeuristicCommit);
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kHeuristic));
  EXPECT_EQ(records[0].outcome, Outcome::kHeuristicCommit);
  EXPECT_EQ(b_.Trace().back(), "forget");
}

TEST_F(FailureTest, ExplicitRollbackReportsAHeuristicAsAnError) {
  OpenManager();
  Transaction txn = BeginWith({&a_, &b_});
  a_.Script(Verb::kRollback, {Step::Return(Code::kHeuristicHazard)});
  Status s = txn.Rollback();
  EXPECT_EQ(s.code(), Code::kHeuristicHazard);
  EXPECT_EQ(txn.state(), TransactionState::kHeuristic);
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kHeuristic));
}

TEST_F(FailureTest, HeuristicStaysOpenUntilAnOperatorClearsIt) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicMixed)});
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid), Outcome::kHeuristicMixed);
  EXPECT_EQ(log_.State().open_heuristics.count(xid), 1u);

  EXPECT_TRUE(manager_->ClearHeuristic(xid, "checked both databases by hand").ok());
  EXPECT_EQ(log_.State().open_heuristics.count(xid), 0u);
  std::vector<LogRecord> cleared = log_.RecordsOfType(RecordType::kHeuristicCleared);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].xid, xid);
  EXPECT_EQ(cleared[0].reason, "checked both databases by hand");

  EXPECT_EQ(manager_->ClearHeuristic(xid, "again").code(), Code::kNoTa);
}

TEST_F(FailureTest, HeuristicInBackgroundCompletionIsPersisted) {
  OpenManager();
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                            Step::Return(Code::kRmFail), Step::Return(Code::kHeuristicRollback)});
  Xid xid;
  EXPECT_EQ(CommitWith({&a_, &b_}, &xid), Outcome::kCommittedCompletionPending);
  WaitForBackground();
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kHeuristic,
                                          RecordType::kEnd));
  EXPECT_EQ(records[1].outcome, Outcome::kHeuristicMixed);
  EXPECT_EQ(b_.Trace(-1).back(), "forget");
}

// --- Timeout and misuse ----------------------------------------------------------------------

// Transaction timeouts: tests/tm/clock_test.cc, on a clock the test moves.

TEST_F(FailureTest, EnlistOfAnUnregisteredRmIsRefusedBeforeAnyCall) {
  OpenManager();
  ScriptedResourceManager stranger("stranger");
  Transaction txn = BeginWith({});
  Status s = txn.Enlist(stranger);
  EXPECT_EQ(s.code(), Code::kConfig);
  EXPECT_NE(s.message().find("stranger"), std::string::npos);
  EXPECT_THAT(stranger.Calls(), IsEmpty());
}

TEST_F(FailureTest, EnlistingTheSameSessionTwiceIsRefused) {
  OpenManager();
  Transaction txn = BeginWith({&a_});
  EXPECT_EQ(txn.Enlist(a_).code(), Code::kProto);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)"));
}

TEST_F(FailureTest, FailedStartLeavesTheTransactionActiveWithoutTheBranch) {
  OpenManager();
  a_.Script(Verb::kStart, {Step::Return(Code::kRmFail)});
  Transaction txn = BeginWith({});
  EXPECT_EQ(txn.Enlist(a_).code(), Code::kRmFail);
  EXPECT_EQ(txn.state(), TransactionState::kActive);
  EXPECT_EQ(txn.branch_count(), 0u);
  ASSERT_TRUE(txn.Enlist(b_).ok());
  EXPECT_EQ(*txn.Commit(), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)"));
}

TEST_F(FailureTest, FinishedOrEmptyTransactionRefusesFurtherCalls) {
  OpenManager();
  Transaction txn = BeginWith({&a_});
  ASSERT_TRUE(txn.Commit().ok());
  EXPECT_EQ(txn.Commit().status().code(), Code::kProto);
  EXPECT_EQ(txn.Rollback().code(), Code::kProto);
  EXPECT_EQ(txn.Enlist(b_).code(), Code::kProto);
  Transaction empty;
  EXPECT_EQ(empty.Commit().status().code(), Code::kProto);
  EXPECT_EQ(empty.state(), TransactionState::kNone);
}

TEST_F(FailureTest, RollbackOnlyTransactionIsRolledBackAtCommit) {
  OpenManager();
  Transaction txn = BeginWith({&a_, &b_});
  ASSERT_TRUE(txn.SetRollbackOnly(Status(Code::kRbIntegrity, "CHECK failed on b")).ok());
  ASSERT_TRUE(txn.SetRollbackOnly(Status::Ok()).ok()) << "a second mark keeps the first reason";
  EXPECT_TRUE(txn.rollback_only());
  Result<Outcome> outcome = txn.Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(txn.last_status().code(), Code::kRbIntegrity);
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  }
  EXPECT_THAT(log_.Records(), IsEmpty());
  EXPECT_EQ(txn.SetRollbackOnly(Status::Ok()).code(), Code::kProto);
}

TEST_F(FailureTest, ThreePhaseIsRefusedUntilParticipantAgentsExist) {
  OpenManager();
  EXPECT_EQ(manager_->Begin(Protocol::kThreePhase).status().code(), Code::kNotSupported);
}

TEST_F(FailureTest, OnePhaseTransactionRefusesASecondBranch) {
  OpenManager();
  Result<Transaction> txn = manager_->Begin(Protocol::kOnePhase);
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist(a_).ok());
  EXPECT_EQ(txn->Enlist(b_).code(), Code::kProto);
  EXPECT_EQ(*txn->Commit(), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "commit(TMONEPHASE)"));
}

}  // namespace
}  // namespace xa::test
