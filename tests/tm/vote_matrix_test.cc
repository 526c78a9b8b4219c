// Every combination of phase-1 results (commit, read-only, rollback vote, error) for two and
// three branches, and every one-phase commit result for one branch: the outcome, the XA calls
// made on each branch, and the decision log's contents.

#include <string>
#include <tuple>

#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

enum class PrepareResult { kCommit, kReadOnly, kRollbackVote, kError };

const char* Name(PrepareResult r) {
  switch (r) {
    case PrepareResult::kCommit: return "Commit";
    case PrepareResult::kReadOnly: return "ReadOnly";
    case PrepareResult::kRollbackVote: return "RbDeadlock";
    case PrepareResult::kError: return "RmErr";
  }
  return "?";
}

Step StepFor(PrepareResult r) {
  switch (r) {
    case PrepareResult::kCommit: return Step::Ok();
    case PrepareResult::kReadOnly: return Step::Return(Code::kReadOnly);
    case PrepareResult::kRollbackVote: return Step::Return(Code::kRbDeadlock);
    case PrepareResult::kError: return Step::Return(Code::kRmError);
  }
  return Step::Ok();
}

class VoteMatrixTest : public TmTest,
                       public ::testing::WithParamInterface<std::vector<PrepareResult>> {};

TEST_P(VoteMatrixTest, OutcomeCallsAndLogFollowTheVotes) {
  OpenManager();
  const std::vector<PrepareResult>& votes = GetParam();
  std::vector<ScriptedResourceManager*> rms = {&a_, &b_, &c_};
  rms.resize(votes.size());
  for (size_t i = 0; i < votes.size(); ++i) rms[i]->Script(Verb::kPrepare, {StepFor(votes[i])});

  size_t committers = 0;
  bool abort = false;
  Code first_failure = Code::kOk;  // the transaction reports the first branch that failed
  for (PrepareResult v : votes) {
    committers += v == PrepareResult::kCommit;
    bool failed = v == PrepareResult::kRollbackVote || v == PrepareResult::kError;
    if (failed && !abort) {
      first_failure = v == PrepareResult::kError ? Code::kRmError : Code::kRbDeadlock;
    }
    abort |= failed;
  }

  Xid xid;
  Status last;
  Outcome outcome = CommitWith(rms, &xid, &last);

  const std::vector<std::string> phase1 = {"start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"};
  if (abort) {
    EXPECT_EQ(outcome, Outcome::kRolledBack);
    EXPECT_THAT(last, StatusIs(first_failure));
    EXPECT_THAT(log_.Records(), IsEmpty()) << "an abort writes nothing";
    for (size_t i = 0; i < votes.size(); ++i) {
      std::vector<std::string> expected = phase1;
      // Rolled back: the commit voters and the failed ones; a rollback vote and a read-only
      // vote have finished their branch.
      if (votes[i] == PrepareResult::kCommit || votes[i] == PrepareResult::kError) {
        expected.push_back("rollback");
      }
      EXPECT_EQ(rms[i]->Trace(), expected) << "branch " << i;
    }
  } else {
    EXPECT_EQ(outcome, Outcome::kCommitted);
    EXPECT_THAT(last, IsOk());
    for (size_t i = 0; i < votes.size(); ++i) {
      std::vector<std::string> expected = phase1;
      if (votes[i] == PrepareResult::kCommit) expected.push_back("commit(TMNOFLAGS)");
      EXPECT_EQ(rms[i]->Trace(), expected) << "branch " << i;
    }
    std::vector<LogRecord> records = log_.Records();
    if (committers >= 2) {
      ASSERT_THAT(Types(records), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
      EXPECT_EQ(records[0].participants.size(), committers) << "read-only votes are not logged";
      EXPECT_EQ(records[0].xid, xid);
    } else {
      EXPECT_THAT(records, IsEmpty()) << "at most one commit vote needs no decision record";
    }
  }
  for (ScriptedResourceManager* rm : rms) EXPECT_THAT(rm->PreparedXids(), IsEmpty());
}

std::vector<std::vector<PrepareResult>> AllCombinations() {
  const PrepareResult all[] = {PrepareResult::kCommit, PrepareResult::kReadOnly,
                               PrepareResult::kRollbackVote, PrepareResult::kError};
  std::vector<std::vector<PrepareResult>> out;
  for (PrepareResult x : all)
    for (PrepareResult y : all) out.push_back({x, y});
  for (PrepareResult x : all)
    for (PrepareResult y : all)
      for (PrepareResult z : all) out.push_back({x, y, z});
  return out;
}

INSTANTIATE_TEST_SUITE_P(
    TwoAndThreeBranches, VoteMatrixTest, ::testing::ValuesIn(AllCombinations()),
    [](const ::testing::TestParamInfo<std::vector<PrepareResult>>& param_info) {
      std::string name;
      for (PrepareResult r : param_info.param) name += Name(r);
      return name;
    });

// One branch: one-phase commit, each result.
struct OnePhaseCase {
  const char* name;
  Code commit_result;
  Outcome outcome;
  std::vector<std::string> trace_after_end;  // calls after start, end(TMSUCCESS)
  bool heuristic_record;
};

class OnePhaseTest : public TmTest, public ::testing::WithParamInterface<OnePhaseCase> {};

TEST_P(OnePhaseTest, ResultMapsToOutcome) {
  OpenManager();
  const OnePhaseCase& c = GetParam();
  a_.Script(Verb::kCommit, {Step::Return(c.commit_result)});
  Status last;
  EXPECT_EQ(CommitWith({&a_}, nullptr, &last), c.outcome);
  std::vector<std::string> expected = {"start(TMNOFLAGS)", "end(TMSUCCESS)"};
  expected.insert(expected.end(), c.trace_after_end.begin(), c.trace_after_end.end());
  EXPECT_EQ(a_.Trace(), expected);
  std::vector<LogRecord> records = log_.Records();
  if (c.heuristic_record) {
    ASSERT_THAT(Types(records), ElementsAre(RecordType::kHeuristic));
    EXPECT_EQ(records[0].outcome, c.outcome);
    EXPECT_EQ(records[0].protocol, Protocol::kOnePhase);
    EXPECT_FALSE(records[0].reason.empty());
  } else {
    EXPECT_THAT(records, IsEmpty());
  }
  EXPECT_EQ(last.ok(), c.outcome == Outcome::kCommitted) << last.ToString();
}

INSTANTIATE_TEST_SUITE_P(
    SingleBranch, OnePhaseTest,
    ::testing::Values(
        OnePhaseCase{"Ok", Code::kOk, Outcome::kCommitted, {"commit(TMONEPHASE)"}, false},
        OnePhaseCase{"RbRollback", Code::kRbRollback, Outcome::kRolledBack,
                     {"commit(TMONEPHASE)"}, false},
        OnePhaseCase{"RbDeadlock", Code::kRbDeadlock, Outcome::kRolledBack,
                     {"commit(TMONEPHASE)"}, false},
        OnePhaseCase{"NoTa", Code::kNoTa, Outcome::kRolledBack, {"commit(TMONEPHASE)"}, false},
        OnePhaseCase{"RmErr", Code::kRmError, Outcome::kRolledBack, {"commit(TMONEPHASE)"},
                     false},
        OnePhaseCase{"ProtoRollsBack", Code::kProto, Outcome::kRolledBack,
                     {"commit(TMONEPHASE)", "rollback"}, false},
        OnePhaseCase{"RmFailIsHazard", Code::kRmFail, Outcome::kHeuristicHazard,
                     {"commit(TMONEPHASE)"}, true},
        OnePhaseCase{"HeurCom", Code::kHeuristicCommit, Outcome::kCommitted,
                     {"commit(TMONEPHASE)", "forget"}, false},
        OnePhaseCase{"HeurRb", Code::kHeuristicRollback, Outcome::kHeuristicRollback,
                     {"commit(TMONEPHASE)", "forget"}, true},
        OnePhaseCase{"HeurMix", Code::kHeuristicMixed, Outcome::kHeuristicMixed,
                     {"commit(TMONEPHASE)", "forget"}, true},
        OnePhaseCase{"HeurHaz", Code::kHeuristicHazard, Outcome::kHeuristicHazard,
                     {"commit(TMONEPHASE)", "forget"}, true}),
    [](const ::testing::TestParamInfo<OnePhaseCase>& param_info) { return param_info.param.name; });

TEST_F(TmTest, OnePhaseRetryIsRepeatedThenCommits) {
  OpenManager();
  a_.Script(Verb::kCommit, {Step::Return(Code::kRetry), Step::Ok()});
  EXPECT_EQ(CommitWith({&a_}), Outcome::kCommitted);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "commit(TMONEPHASE)",
                                      "commit(TMONEPHASE)"));
}

TEST_F(TmTest, OnePhaseRetryExhaustedRollsBack) {
  OpenManager();
  a_.SetDefault(Verb::kCommit, Code::kRetry);
  EXPECT_EQ(CommitWith({&a_}), Outcome::kRolledBack);
  EXPECT_THAT(a_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "commit(TMONEPHASE)",
                          "commit(TMONEPHASE)", "commit(TMONEPHASE)", "rollback"));
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(TmTest, OnePhaseEndFailureRollsBackWithoutCommit) {
  OpenManager();
  a_.Script(Verb::kEnd, {Step::Return(Code::kRmError)});
  Status last;
  EXPECT_EQ(CommitWith({&a_}, nullptr, &last), Outcome::kRolledBack);
  EXPECT_EQ(last.code(), Code::kRmError);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "rollback"));
}

// A failed End never finishes a branch: Rollback() follows, so that an RM which keeps the
// session bound to a rolled-back branch (MariaDB after a deadlock) releases it.
TEST_F(TmTest, OnePhaseEndRollbackResultIsFollowedByARollbackCall) {
  OpenManager();
  a_.Script(Verb::kEnd, {Step::Return(Code::kRbTimeout)});
  a_.Script(Verb::kRollback, {Step::Return(Code::kRbTimeout)});
  EXPECT_EQ(CommitWith({&a_}), Outcome::kRolledBack);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "rollback"));
  EXPECT_EQ(manager_->Metrics().background_pending, 0);
}

}  // namespace
}  // namespace xa::test
