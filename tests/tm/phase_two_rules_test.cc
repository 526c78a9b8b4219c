// The phase-2 rules (src/completion/branch_outcome.h) as a table: each row is a call that
// finishes a branch, the RM's answer and what was known before the call, and the branch end the
// rules give. The table is checked against the rules function itself, and then every row is run
// through each caller that finishes branches: the coordinator's inline phase 2 and rollback, the
// background completer, and the recovery engine. Each caller must show the row's end in what it
// leaves behind: how often it calls again, which heuristic record it writes, whether it sends
// Forget(), and the outcome it reports.

#include "src/completion/branch_outcome.h"
#include "src/completion/branch_state.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"
#include "tests/tm/tm_test_fixture.h"
#include "xa/recovery.h"

namespace xa::test {
namespace {

using internal::BranchEnd;
using internal::BranchEndName;
using internal::Decision;
using internal::FinishCall;
using internal::FinishCallName;

struct Row {
  FinishCall call;
  Code code;
  bool maybe_applied;
  bool maybe_prepared;
  BranchEnd end;
  bool forget;
};

std::string RowName(const Row& row) {
  std::string name = std::string(FinishCallName(row.call)) + "_" +
                     std::string(CodeName(row.code)) + (row.maybe_applied ? "_MaybeApplied" : "") +
                     (row.maybe_prepared ? "_MaybePrepared" : "");
  std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
  return name;
}

void PrintTo(const Row& row, std::ostream* os) { *os << RowName(row); }

constexpr FinishCall kCommit = FinishCall::kCommit;
constexpr FinishCall kRollback = FinishCall::kRollback;
constexpr FinishCall kOnePhase = FinishCall::kCommitOnePhase;
constexpr BranchEnd kPending = BranchEnd::kPending;
constexpr BranchEnd kCommitted = BranchEnd::kCommitted;
constexpr BranchEnd kRolledBack = BranchEnd::kRolledBack;
constexpr BranchEnd kHeurCom = BranchEnd::kHeuristicCommit;
constexpr BranchEnd kHeurRb = BranchEnd::kHeuristicRollback;
constexpr BranchEnd kHeurMix = BranchEnd::kHeuristicMixed;
constexpr BranchEnd kHazard = BranchEnd::kHeuristicHazard;

// The table, written out independently of the rules function. Columns: call, result,
// maybe_applied, maybe_prepared, end, forget.
const std::vector<Row> kTable = {
    // Two-phase commit of a prepared branch (maybe_prepared is always true there).
    {kCommit, Code::kOk, false, true, kCommitted, false},
    {kCommit, Code::kOk, true, true, kCommitted, false},
    {kCommit, Code::kHeuristicCommit, false, true, kCommitted, true},
    {kCommit, Code::kHeuristicCommit, true, true, kCommitted, true},
    {kCommit, Code::kHeuristicRollback, false, true, kHeurRb, true},
    {kCommit, Code::kHeuristicRollback, true, true, kHeurRb, true},
    {kCommit, Code::kHeuristicMixed, false, true, kHeurMix, true},
    {kCommit, Code::kHeuristicMixed, true, true, kHeurMix, true},
    {kCommit, Code::kHeuristicHazard, false, true, kHazard, true},
    {kCommit, Code::kHeuristicHazard, true, true, kHazard, true},
    {kCommit, Code::kRetry, false, true, kPending, false},
    {kCommit, Code::kRetry, true, true, kPending, false},
    {kCommit, Code::kRmFail, false, true, kPending, false},
    {kCommit, Code::kRmFail, true, true, kPending, false},
    {kCommit, Code::kNoTa, false, true, kHazard, false},
    {kCommit, Code::kNoTa, true, true, kCommitted, false},
    {kCommit, Code::kRbRollback, false, true, kHeurRb, false},
    {kCommit, Code::kRbDeadlock, true, true, kHeurRb, false},
    {kCommit, Code::kRmError, false, true, kHazard, false},
    {kCommit, Code::kRmError, true, true, kHazard, false},
    {kCommit, Code::kProto, false, true, kHazard, false},
    {kCommit, Code::kInval, true, true, kHazard, false},
    // Rollback, of a branch that may be prepared or not (maybe_applied plays no part).
    {kRollback, Code::kOk, false, true, kRolledBack, false},
    {kRollback, Code::kOk, false, false, kRolledBack, false},
    {kRollback, Code::kHeuristicRollback, false, true, kRolledBack, true},
    {kRollback, Code::kHeuristicRollback, false, false, kRolledBack, true},
    {kRollback, Code::kHeuristicCommit, false, true, kHeurCom, true},
    {kRollback, Code::kHeuristicCommit, false, false, kHeurCom, true},
    {kRollback, Code::kHeuristicMixed, false, true, kHeurMix, true},
    {kRollback, Code::kHeuristicHazard, false, true, kHazard, true},
    {kRollback, Code::kHeuristicHazard, false, false, kHazard, true},
    {kRollback, Code::kRetry, false, true, kPending, false},
    {kRollback, Code::kRetry, false, false, kRolledBack, false},
    {kRollback, Code::kRmFail, false, true, kPending, false},
    {kRollback, Code::kRmFail, false, false, kRolledBack, false},
    {kRollback, Code::kNoTa, false, true, kRolledBack, false},
    {kRollback, Code::kNoTa, false, false, kRolledBack, false},
    {kRollback, Code::kRbRollback, false, true, kRolledBack, false},
    {kRollback, Code::kRbTimeout, false, false, kRolledBack, false},
    {kRollback, Code::kRmError, false, true, kRolledBack, false},
    {kRollback, Code::kRmError, false, false, kRolledBack, false},
    {kRollback, Code::kProto, false, true, kHazard, false},
    {kRollback, Code::kProto, false, false, kRolledBack, false},
    {kRollback, Code::kInval, false, true, kHazard, false},
    // One-phase commit of the only branch (never prepared, nothing applied before).
    {kOnePhase, Code::kOk, false, false, kCommitted, false},
    {kOnePhase, Code::kHeuristicCommit, false, false, kCommitted, true},
    {kOnePhase, Code::kHeuristicRollback, false, false, kHeurRb, true},
    {kOnePhase, Code::kHeuristicMixed, false, false, kHeurMix, true},
    {kOnePhase, Code::kHeuristicHazard, false, false, kHazard, true},
    {kOnePhase, Code::kRmFail, false, false, kHazard, false},
    {kOnePhase, Code::kNoTa, false, false, kRolledBack, false},
    {kOnePhase, Code::kRmError, false, false, kRolledBack, false},
    {kOnePhase, Code::kRbIntegrity, false, false, kRolledBack, false},
    {kOnePhase, Code::kRetry, false, false, kPending, false},
    {kOnePhase, Code::kProto, false, false, kPending, false},
};

Decision DecisionOf(FinishCall call) {
  return call == kRollback ? Decision::kRollback : Decision::kCommit;
}

// The transaction's outcome when `end` is the only branch that did not simply go the decided way
// (`others_went_decided_way`: the other branches did), written out independently of Aggregate().
Outcome ExpectedOutcome(Decision decision, BranchEnd end, bool others_went_decided_way) {
  const bool commit = decision == Decision::kCommit;
  switch (end) {
    case kCommitted:
      return commit ? Outcome::kCommitted
                    : (others_went_decided_way ? Outcome::kHeuristicMixed
                                               : Outcome::kHeuristicCommit);
    case kRolledBack:
      return !commit ? Outcome::kRolledBack
                     : (others_went_decided_way ? Outcome::kHeuristicMixed
                                                : Outcome::kHeuristicRollback);
    case kHeurCom:
      return commit ? Outcome::kCommitted
                    : (others_went_decided_way ? Outcome::kHeuristicMixed
                                               : Outcome::kHeuristicCommit);
    case kHeurRb:
      return !commit ? Outcome::kRolledBack
                     : (others_went_decided_way ? Outcome::kHeuristicMixed
                                                : Outcome::kHeuristicRollback);
    case kHeurMix:
      return Outcome::kHeuristicMixed;
    case kHazard:
      return Outcome::kHeuristicHazard;
    case kPending:
      break;
  }
  return Outcome::kUnknown;
}

bool IsHeuristicEnd(BranchEnd end) {
  return end == kHeurCom || end == kHeurRb || end == kHeurMix || end == kHazard;
}

// What Transaction::Rollback() returns for an outcome: OK for a rollback, else the XA_HEUR* code.
Code RollbackStatusCode(Outcome outcome) {
  switch (outcome) {
    case Outcome::kRolledBack: return Code::kOk;
    case Outcome::kHeuristicCommit: return Code::kHeuristicCommit;
    case Outcome::kHeuristicRollback: return Code::kHeuristicRollback;
    case Outcome::kHeuristicMixed: return Code::kHeuristicMixed;
    default: return Code::kHeuristicHazard;
  }
}

int CallsOf(const ScriptedResourceManager& rm, Verb verb) {
  int n = 0;
  for (const Call& call : rm.Calls()) n += call.verb == verb ? 1 : 0;
  return n;
}

std::vector<LogRecord> HeuristicRecords(const MemoryDecisionLog& log) {
  return log.RecordsOfType(RecordType::kHeuristic);
}

class PhaseTwoRulesTest : public TmTest, public ::testing::WithParamInterface<Row> {
 protected:
  const Row& row() const { return GetParam(); }
  Verb FinishVerb() const { return row().call == kRollback ? Verb::kRollback : Verb::kCommit; }

  // What every caller must leave behind for this row, once `scripted` calls of the row's verb
  // on `b` were made before the row's own call: one more call when the branch was pending
  // (the RM then answers XA_OK), the heuristic record of a heuristic end, and Forget() exactly
  // when the rules say so.
  void ExpectLeftBehind(int scripted, Outcome expected_heuristic) {
    const bool pending = row().end == kPending;
    EXPECT_EQ(CallsOf(b_, FinishVerb()), scripted + 1 + (pending ? 1 : 0))
        << "a pending branch is called again; a finished one never";
    std::vector<LogRecord> heuristics = HeuristicRecords(log_);
    if (IsHeuristicEnd(row().end)) {
      ASSERT_EQ(heuristics.size(), 1u);
      EXPECT_EQ(heuristics[0].outcome, expected_heuristic);
    } else {
      EXPECT_THAT(heuristics, ::testing::IsEmpty());
    }
    EXPECT_EQ(CallsOf(b_, Verb::kForget), row().forget ? 1 : 0);
  }
};

// Each caller gets the rows it can meet: the background completer only branches that may be
// prepared and no one-phase commit; recovery only commits of logged decisions (which the crashed
// process may have applied) and rollbacks of branches its scan found prepared.
class CoordinatorRulesTest : public PhaseTwoRulesTest {};
class BackgroundCompleterRulesTest : public PhaseTwoRulesTest {};
class RecoveryEngineRulesTest : public PhaseTwoRulesTest {};

std::vector<Row> RowsWhere(bool (*keep)(const Row&)) {
  std::vector<Row> rows;
  std::copy_if(kTable.begin(), kTable.end(), std::back_inserter(rows), keep);
  return rows;
}

TEST_P(PhaseTwoRulesTest, RulesFunctionMatchesTheTable) {
  internal::BranchReading reading = internal::ReadFinishResult(
      row().call, row().code == Code::kOk ? Status::Ok() : Status(row().code, "scripted"),
      {row().maybe_applied, row().maybe_prepared});
  EXPECT_EQ(BranchEndName(reading.end), BranchEndName(row().end));
  EXPECT_EQ(reading.forget, row().forget);
}

// BranchState::Apply, which every caller reads its results through, records the row as the
// table says.
TEST_P(PhaseTwoRulesTest, BranchStateRecordsTheRowsEnd) {
  const Status result = row().code == Code::kOk ? Status::Ok() : Status(row().code, "scripted");
  internal::BranchState state;
  state.history = {row().maybe_applied, row().maybe_prepared};
  internal::BranchReading reading = state.Apply(row().call, result);
  EXPECT_EQ(BranchEndName(reading.end), BranchEndName(row().end));
  EXPECT_EQ(BranchEndName(state.end), BranchEndName(row().end));
  EXPECT_EQ(state.forget, row().forget);
  EXPECT_EQ(state.last.code(), row().code);
  // Only a commit or rollback still pending after XAER_RMFAIL may have landed unseen.
  const bool may_have_landed = row().maybe_applied || (row().code == Code::kRmFail &&
                                                       state.end == BranchEnd::kPending);
  EXPECT_EQ(state.history.maybe_applied, may_have_landed);
}

TEST(BranchStateTest, ACommitLostWithTheConnectionMakesALaterNotaDone) {
  internal::BranchState state;
  state.history = {/*maybe_applied=*/false, /*maybe_prepared=*/true};
  state.Apply(FinishCall::kCommit, Status(Code::kRmFail, "connection lost"));
  EXPECT_EQ(state.end, BranchEnd::kPending);
  state.Apply(FinishCall::kCommit, Status(Code::kNoTa, "unknown xid"));
  EXPECT_EQ(BranchEndName(state.end), BranchEndName(BranchEnd::kCommitted));
}

TEST(BranchStateTest, NoCallLeavesTheBranchPendingAndNothingMayHaveLanded) {
  // No session could be opened: nothing was sent, so a later NOTA is still somebody else's doing.
  internal::BranchState state;
  state.history = {/*maybe_applied=*/false, /*maybe_prepared=*/true};
  state.NoCall(Status(Code::kRmFail, "connect refused"));
  EXPECT_EQ(state.end, BranchEnd::kPending);
  EXPECT_FALSE(state.history.maybe_applied);
  EXPECT_THAT(state.last, StatusIs(Code::kRmFail, "connect refused"));
  state.Apply(FinishCall::kCommit, Status(Code::kNoTa, "unknown xid"));
  EXPECT_EQ(BranchEndName(state.end), BranchEndName(BranchEnd::kHeuristicHazard));
}

// The coordinator, on the caller's thread: phase 2 of a two-branch commit, the rollback of a
// branch that voted or was never prepared, or the one-phase commit of a single branch.
TEST_P(CoordinatorRulesTest, ReadsTheRowAsTheTableSays) {
  OpenManager();
  const Row& r = row();
  // maybe_applied: an earlier commit of this branch failed with XAER_RMFAIL.
  int scripted = r.maybe_applied ? 1 : 0;
  std::vector<Step> steps;
  if (r.maybe_applied) steps.push_back(Step::Return(Code::kRmFail));
  steps.push_back(Step::Return(r.code));
  b_.Script(FinishVerb(), steps);

  if (r.call == kOnePhase) {
    Outcome outcome = CommitWith({&b_});
    if (r.end == kPending) {
      // Not finished by this call: XA_RETRY is made again (the RM then answers XA_OK), anything
      // else pending is rolled back, since the branch was never prepared.
      if (r.code == Code::kRetry) {
        EXPECT_EQ(outcome, Outcome::kCommitted);
        EXPECT_EQ(CallsOf(b_, Verb::kCommit), 2);
      } else {
        EXPECT_EQ(outcome, Outcome::kRolledBack);
        EXPECT_EQ(CallsOf(b_, Verb::kCommit), 1);
        EXPECT_EQ(CallsOf(b_, Verb::kRollback), 1);
      }
      return;
    }
    // The RM alone decides a one-phase commit: its rollback is a plain rollback.
    EXPECT_EQ(outcome, r.end == kRolledBack ? Outcome::kRolledBack
                                            : ExpectedOutcome(Decision::kCommit, r.end, false));
    EXPECT_EQ(CallsOf(b_, Verb::kCommit), 1);
    EXPECT_EQ(HeuristicRecords(log_).size(), IsHeuristicEnd(r.end) ? 1u : 0u);
    EXPECT_EQ(CallsOf(b_, Verb::kForget), r.forget ? 1 : 0);
    return;
  }

  // A pending branch is called again at once (the RM then answers XA_OK): it ends the decided way.
  const bool others_decided = r.call == kCommit || !r.maybe_prepared;
  const BranchEnd end = r.end != kPending ? r.end : (r.call == kCommit ? kCommitted : kRolledBack);
  const Outcome expected = ExpectedOutcome(DecisionOf(r.call), end, others_decided);
  if (r.call == kCommit) {
    EXPECT_EQ(CommitWith({&a_, &b_}), expected);
  } else if (r.maybe_prepared) {
    // b prepared, then a's rollback vote: b alone is rolled back.
    a_.Script(Verb::kPrepare, {Step::Return(Code::kRbIntegrity)});
    EXPECT_EQ(CommitWith({&a_, &b_}), expected);
  } else {
    // Rolled back before phase 1: End(TMFAIL), then Rollback() on both.
    Transaction txn = BeginWith({&a_, &b_});
    Status rolled_back = txn.Rollback();
    Code want = RollbackStatusCode(expected);
    if (want == Code::kOk) {
      EXPECT_THAT(rolled_back, IsOk());
    } else {
      EXPECT_THAT(rolled_back, StatusIs(want));
    }
  }
  WaitForBackground();
  ExpectLeftBehind(scripted, expected);
}

// The background completer: the inline attempts all fail, so the row's call is the completer's
// first attempt.
TEST_P(BackgroundCompleterRulesTest, ReadsTheRowAsTheTableSays) {
  const Row& r = row();
  OpenManager();
  // XA_RETRY leaves maybe_applied as it was; XAER_RMFAIL sets it.
  const Code inline_failure = r.maybe_applied || r.call == kRollback ? Code::kRmFail : Code::kRetry;
  constexpr int kInlineAttempts = 3;  // TmTest's inline retry policy
  std::vector<Step> steps(kInlineAttempts, Step::Return(inline_failure));
  steps.push_back(Step::Return(r.code));
  b_.Script(FinishVerb(), steps);

  bool others_decided = true;
  if (r.call == kCommit) {
    EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommittedCompletionPending);
  } else {
    a_.Script(Verb::kPrepare, {Step::Return(Code::kRbIntegrity)});
    EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kRolledBack);
    others_decided = false;
  }
  WaitForBackground();
  Outcome expected = ExpectedOutcome(DecisionOf(r.call), r.end, others_decided);
  ExpectLeftBehind(kInlineAttempts, expected);
  // A logged decision is ended once its branches are finished, whatever their ends.
  EXPECT_EQ(log_.RecordsOfType(RecordType::kEnd).size(), r.call == kCommit ? 1u : 0u);
}

// The recovery engine: a logged decision (commit rows) or an orphan of ours (rollback rows),
// prepared on both RMs. A commit from the log may have been applied by the crashed process, and
// every branch the engine acts on was found prepared.
TEST_P(RecoveryEngineRulesTest, ReadsTheRowAsTheTableSays) {
  const Row& r = row();
  XidGenerator xids(kNode, 3);
  Xid global = xids.Next();
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    std::unique_ptr<ScriptedResourceManager> session = rm->NewSession();
    Xid branch = global.WithBranch(rm == &a_ ? 0 : 1);
    ASSERT_THAT(session->Start(branch, StartFlag::kNoFlags), IsOk());
    ASSERT_THAT(session->End(branch, EndFlag::kSuccess), IsOk());
    ASSERT_THAT(session->Prepare(branch), IsOk());
  }
  if (r.call == kCommit) {
    LogRecord decision;
    decision.type = RecordType::kCommitDecision;
    decision.xid = global;
    decision.participants = {{"a", global.WithBranch(0)}, {"b", global.WithBranch(1)}};
    log_.Preload({decision});
  }
  b_.Script(FinishVerb(), {Step::Return(r.code)});
  RecoveryOptions options;
  options.node_id = kNode;
  options.orphan_min_age = std::chrono::milliseconds(0);
  RecoveryEngine engine(log_, {&a_, &b_}, options);

  Result<RecoveryReport> first = engine.Run();
  ASSERT_THAT(first, IsOk());
  const bool pending = r.end == kPending;
  EXPECT_EQ(first->failed, pending || IsHeuristicEnd(r.end) ? 1u : 0u);
  if (r.call == kCommit) {
    EXPECT_EQ(first->decisions_still_open, pending ? 1u : 0u);
    EXPECT_EQ(first->end_records_written, pending ? 0u : 1u);
  }
  // A pending branch is called again by the next pass (the RM then answers XA_OK).
  if (pending) {
    Result<RecoveryReport> second = engine.Run();
    ASSERT_THAT(second, IsOk());
    EXPECT_EQ(second->failed, 0u);
    if (r.call == kCommit) {
      EXPECT_EQ(second->end_records_written, 1u);
    }
  }
  EXPECT_EQ(CallsOf(b_, FinishVerb()), pending ? 2 : 1);
  std::vector<LogRecord> heuristics = HeuristicRecords(log_);
  if (IsHeuristicEnd(r.end)) {
    ASSERT_EQ(heuristics.size(), 1u);
    // One record for the transaction, with its global outcome: a went the decided way.
    EXPECT_EQ(heuristics[0].outcome, ExpectedOutcome(DecisionOf(r.call), r.end, true));
  } else {
    EXPECT_THAT(heuristics, ::testing::IsEmpty());
  }
  EXPECT_EQ(CallsOf(b_, Verb::kForget), r.forget ? 1 : 0);
}

std::string TestName(const ::testing::TestParamInfo<Row>& info) {
  return std::to_string(info.index) + "_" + RowName(info.param);
}

INSTANTIATE_TEST_SUITE_P(Table, PhaseTwoRulesTest, ::testing::ValuesIn(kTable), TestName);
INSTANTIATE_TEST_SUITE_P(Table, CoordinatorRulesTest, ::testing::ValuesIn(kTable), TestName);
INSTANTIATE_TEST_SUITE_P(Table, BackgroundCompleterRulesTest,
                         ::testing::ValuesIn(RowsWhere([](const Row& r) {
                           return r.call != kOnePhase && r.maybe_prepared;
                         })),
                         TestName);
INSTANTIATE_TEST_SUITE_P(Table, RecoveryEngineRulesTest,
                         ::testing::ValuesIn(RowsWhere([](const Row& r) {
                           return (r.call == kCommit && r.maybe_applied) ||
                                  (r.call == kRollback && r.maybe_prepared);
                         })),
                         TestName);

// Forget() follows a durable heuristic record, never a failed one: the RM would otherwise forget
// what no operator has heard of. The same in the coordinator and in recovery.
TEST_F(TmTest, ForgetIsWithheldWhenTheHeuristicRecordCannotBeWritten) {
  OpenManager();
  log_.FailAppends(RecordType::kHeuristic, Status(Code::kIoError, "fsync: EIO"));
  b_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicRollback)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kHeuristicMixed);
  EXPECT_EQ(CallsOf(b_, Verb::kForget), 0);

  XidGenerator xids(kNode, 5);
  Xid global = xids.Next();
  std::unique_ptr<ScriptedResourceManager> session = c_.NewSession();
  Xid branch = global.WithBranch(0);
  ASSERT_THAT(session->Start(branch, StartFlag::kNoFlags), IsOk());
  ASSERT_THAT(session->End(branch, EndFlag::kSuccess), IsOk());
  ASSERT_THAT(session->Prepare(branch), IsOk());
  c_.Script(Verb::kRollback, {Step::Return(Code::kHeuristicCommit)});
  RecoveryOptions options;
  options.node_id = kNode;
  options.orphan_min_age = std::chrono::milliseconds(0);
  RecoveryEngine engine(log_, {&c_}, options);
  Result<RecoveryReport> report = engine.Run();
  ASSERT_THAT(report, IsOk());
  EXPECT_EQ(report->failed, 1u);
  EXPECT_EQ(CallsOf(c_, Verb::kForget), 0);
}

// Recovery never presumes abort for a branch whose transaction has an open heuristic record:
// a commit answered XAER_RMERR may have left it prepared, and rolling it back would undo the
// commit decision behind the operator's back.
TEST_F(TmTest, RecoveryLeavesBranchesOfAnOpenHeuristicToTheOperator) {
  XidGenerator xids(kNode, 4);
  Xid global = xids.Next();
  std::unique_ptr<ScriptedResourceManager> session = b_.NewSession();
  Xid branch = global.WithBranch(1);
  ASSERT_THAT(session->Start(branch, StartFlag::kNoFlags), IsOk());
  ASSERT_THAT(session->End(branch, EndFlag::kSuccess), IsOk());
  ASSERT_THAT(session->Prepare(branch), IsOk());
  LogRecord decision;
  decision.type = RecordType::kCommitDecision;
  decision.xid = global;
  decision.participants = {{"b", branch}};
  LogRecord heuristic;
  heuristic.type = RecordType::kHeuristic;
  heuristic.xid = global;
  heuristic.participants = {{"b", branch}};
  heuristic.outcome = Outcome::kHeuristicHazard;
  heuristic.reason = "commit: XAER_RMERR";
  LogRecord end;
  end.type = RecordType::kEnd;
  end.xid = global;
  log_.Preload({decision, heuristic, end});
  RecoveryOptions options;
  options.node_id = kNode;
  options.orphan_min_age = std::chrono::milliseconds(0);
  RecoveryEngine engine(log_, {&b_}, options);
  for (int pass = 0; pass < 2; ++pass) {
    Result<RecoveryReport> report = engine.Run();
    ASSERT_THAT(report, IsOk());
    EXPECT_EQ(report->rolled_back, 0u);
    EXPECT_EQ(report->heuristics_open, 1u);
  }
  EXPECT_EQ(CallsOf(b_, Verb::kRollback), 0);
  EXPECT_THAT(b_.PreparedXids(), ::testing::ElementsAre(branch));
}

}  // namespace
}  // namespace xa::test
