// The recovery engine against scripted resource managers and an in-memory decision log: every
// rule of a pass (commit logged decisions, presumed abort for aged orphans of this node only,
// in-flight and foreign branches untouched, damaged log, unreachable RMs, heuristics, forced
// decisions, dry runs) with the exact calls and log records asserted.

#include "xa/recovery.h"

#include <chrono>
#include <memory>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "testutil/memory_decision_log.h"
#include "testutil/scripted_rm.h"
#include "testutil/status_matchers.h"

namespace xa::test {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr uint32_t kNode = 11;

void PrepareOnServer(ScriptedResourceManager& rm, const Xid& branch) {
  std::unique_ptr<ScriptedResourceManager> session = rm.NewSession();
  ASSERT_TRUE(session->Start(branch, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(session->End(branch, EndFlag::kSuccess).ok());
  ASSERT_TRUE(session->Prepare(branch).ok());
}

LogRecord Decision(const Xid& global) {
  LogRecord record;
  record.type = RecordType::kCommitDecision;
  record.xid = global;
  record.participants = {{"a", global.WithBranch(0)}, {"b", global.WithBranch(1)}};
  return record;
}

std::vector<RecordType> Types(const std::vector<LogRecord>& records) {
  std::vector<RecordType> types;
  for (const LogRecord& r : records) types.push_back(r.type);
  return types;
}

// Only the calls that change a branch (the scan's Open/Recover left out).
std::vector<std::string> Actions(const ScriptedResourceManager& rm) {
  std::vector<std::string> out;
  for (const std::string& call : rm.Trace(-1)) {
    if (call.rfind("commit", 0) == 0 || call.rfind("rollback", 0) == 0) out.push_back(call);
  }
  return out;
}

class RecoveryEngineTest : public ::testing::Test {
 protected:
  RecoveryEngineTest() : log_(kNode), a_("a"), b_("b"), xids_(kNode, 7) {}

  RecoveryOptions Options() {
    RecoveryOptions options;
    options.node_id = kNode;
    options.orphan_min_age = std::chrono::milliseconds(0);
    return options;
  }

  // A transaction of ours prepared on both RMs, with or without a logged decision.
  Xid InDoubt(bool decided) {
    Xid global = xids_.Next();
    PrepareOnServer(a_, global.WithBranch(0));
    PrepareOnServer(b_, global.WithBranch(1));
    if (decided) log_.Preload({Decision(global)});
    return global;
  }

  RecoveryReport RunPass(RecoveryEngine& engine) {
    Result<RecoveryReport> report = engine.Run();
    EXPECT_THAT(report, IsOk());
    return report.ok() ? *report : RecoveryReport();
  }

  MemoryDecisionLog log_;
  ScriptedResourceManager a_, b_;
  XidGenerator xids_;
};

TEST_F(RecoveryEngineTest, CommitsLoggedDecisionsWritesEndAndIsIdempotent) {
  Xid global = InDoubt(/*decided=*/true);
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.committed, 2u);
  EXPECT_EQ(report.end_records_written, 1u);
  EXPECT_TRUE(report.Converged());
  EXPECT_THAT(Actions(a_), ElementsAre("commit(TMNOFLAGS)"));
  EXPECT_THAT(Actions(b_), ElementsAre("commit(TMNOFLAGS)"));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision, RecordType::kEnd));
  EXPECT_EQ(log_.Records().back().xid, global);

  RecoveryReport again = RunPass(engine);
  EXPECT_EQ(again.committed + again.rolled_back + again.end_records_written, 0u);
  EXPECT_THAT(Actions(a_), ElementsAre("commit(TMNOFLAGS)"));  // nothing new
}

TEST_F(RecoveryEngineTest, PresumedAbortTouchesOnlyThisNodesOrphans) {
  Xid orphan = InDoubt(/*decided=*/false);
  Xid other_node = XidGenerator(kNode + 1, 3).Next().WithBranch(0);
  Xid foreign = Xid::Make(77, "another-tm", "x").value();
  PrepareOnServer(a_, other_node);
  PrepareOnServer(a_, foreign);
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.rolled_back, 2u);
  EXPECT_EQ(report.foreign, 2u);
  EXPECT_THAT(a_.PreparedXids(), UnorderedElementsAre(other_node, foreign));
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
  EXPECT_THAT(log_.Records(), IsEmpty()) << "presumed abort writes nothing";
  EXPECT_TRUE(report.Converged());
  (void)orphan;
}

TEST_F(RecoveryEngineTest, YoungOrphanIsRolledBackOnlyByTheSecondPass) {
  InDoubt(/*decided=*/false);
  RecoveryOptions options = Options();
  options.orphan_min_age = std::chrono::hours(1);
  RecoveryEngine engine(log_, {&a_, &b_}, options);
  RecoveryReport first = RunPass(engine);
  EXPECT_EQ(first.rolled_back, 0u);
  EXPECT_EQ(first.orphans_deferred, 2u);
  EXPECT_FALSE(first.Converged());
  EXPECT_THAT(Actions(a_), IsEmpty());
  RecoveryReport second = RunPass(engine);
  EXPECT_EQ(second.rolled_back, 2u);
  EXPECT_TRUE(second.Converged());
}

// The age of an orphan is read on RecoveryOptions::env's wall clock: a jump of that clock past
// orphan_min_age makes the first pass roll it back.
TEST_F(RecoveryEngineTest, OrphanAgeIsReadOnTheEnvWallClock) {
  Xid global = InDoubt(/*decided=*/false);
  FakeClock clock(FakeClock::kSteadyStart,
                  FakeClock::WallTime(std::chrono::microseconds(*global.BeginTimeMicros())));
  EnvWithClock env(Env::Default(), &clock);
  RecoveryOptions options = Options();
  options.orphan_min_age = std::chrono::hours(1);
  options.env = &env;
  clock.StepWall(std::chrono::hours(1));
  RecoveryEngine engine(log_, {&a_, &b_}, options);
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.rolled_back, 2u);
  EXPECT_EQ(report.orphans_deferred, 0u);
  EXPECT_THAT(report.branches[0].reason, HasSubstr("older than the timeout"));
}

TEST_F(RecoveryEngineTest, InFlightTransactionsAreNeverTouched) {
  Xid decided = InDoubt(/*decided=*/true);
  Xid orphan = InDoubt(/*decided=*/false);
  RecoveryOptions options = Options();
  options.in_flight = [&](const Xid& global) { return global == decided || global == orphan; };
  RecoveryEngine engine(log_, {&a_, &b_}, options);
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.in_flight, 4u);
  EXPECT_THAT(Actions(a_), IsEmpty());
  EXPECT_THAT(Actions(b_), IsEmpty());
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision));
}

TEST_F(RecoveryEngineTest, DamagedLogCommitsKnownDecisionsButNeverPresumesAbort) {
  Xid decided = xids_.Next();
  PrepareOnServer(a_, decided.WithBranch(0));
  PrepareOnServer(b_, decided.WithBranch(1));
  Xid orphan = InDoubt(/*decided=*/false);
  LogState state;
  state.open_decisions[decided] = Decision(decided);
  state.damaged = true;
  state.damage_report = "bad checksum in segment-1.xalog at offset 4096";
  RecoveryEngine engine(std::move(state), {&a_, &b_}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_TRUE(report.log_damaged);
  EXPECT_TRUE(report.log_read_only);
  EXPECT_EQ(report.committed, 2u);
  EXPECT_EQ(report.rolled_back, 0u);
  EXPECT_EQ(report.orphans_deferred, 2u);
  EXPECT_FALSE(report.Converged());
  EXPECT_THAT(a_.PreparedXids(), ElementsAre(orphan.WithBranch(0)));
  std::string text = FormatRecoveryReport(report);
  EXPECT_THAT(text, HasSubstr("refusing to presume abort"));
  EXPECT_THAT(text, HasSubstr("offset 4096"));
}

TEST_F(RecoveryEngineTest, UnreachableRmKeepsTheDecisionOpenWhileTheOtherCommits) {
  Xid global = InDoubt(/*decided=*/true);
  std::unique_ptr<ResourceManager> down =
      MakeUnreachableResourceManager("b", Status(Code::kRmFail, "connection refused"));
  RecoveryEngine engine(log_, {&a_, down.get()}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.committed, 1u);
  EXPECT_THAT(report.unreachable_rms, ElementsAre("b"));
  EXPECT_EQ(report.decisions_still_open, 1u);
  EXPECT_EQ(report.end_records_written, 0u);
  EXPECT_FALSE(report.Converged());
  EXPECT_THAT(FormatRecoveryReport(report), HasSubstr("connection refused"));

  engine.SetResourceManagers({&a_, &b_});
  RecoveryReport later = RunPass(engine);
  EXPECT_EQ(later.committed, 1u);
  EXPECT_EQ(later.already_done, 1u);
  EXPECT_EQ(later.end_records_written, 1u);
  EXPECT_TRUE(later.Converged());
  EXPECT_THAT(b_.PreparedXids(), IsEmpty());
  (void)global;
}

TEST_F(RecoveryEngineTest, FailedCommitIsRetriedByTheNextPass) {
  InDoubt(/*decided=*/true);
  a_.Script(Verb::kCommit, {Step::Return(Code::kRmFail)});
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  RecoveryReport first = RunPass(engine);
  EXPECT_EQ(first.failed, 1u);
  EXPECT_EQ(first.decisions_still_open, 1u);
  EXPECT_EQ(first.end_records_written, 0u);
  RecoveryReport second = RunPass(engine);
  EXPECT_EQ(second.committed, 1u);
  EXPECT_EQ(second.end_records_written, 1u);
  EXPECT_TRUE(second.Converged());
}

TEST_F(RecoveryEngineTest, NotaDuringRecoveryMeansAlreadyDone) {
  InDoubt(/*decided=*/true);
  a_.Script(Verb::kCommit, {Step::Return(Code::kNoTa)});
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.already_done, 1u);
  EXPECT_EQ(report.committed, 1u);
  EXPECT_EQ(report.end_records_written, 1u);
  EXPECT_THAT(log_.RecordsOfType(RecordType::kHeuristic), IsEmpty());
}

TEST_F(RecoveryEngineTest, HeuristicResultsArePersistedForTheOperator) {
  Xid global = InDoubt(/*decided=*/true);
  a_.Script(Verb::kCommit, {Step::Return(Code::kHeuristicMixed)});
  b_.Script(Verb::kCommit, {Step::Return(Code::kRbRollback)});
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  RecoveryReport report = RunPass(engine);
  // One record for the transaction, as the transaction manager writes it: the global outcome
  // and every branch that ended heuristically.
  std::vector<LogRecord> heuristics = log_.RecordsOfType(RecordType::kHeuristic);
  ASSERT_EQ(heuristics.size(), 1u);
  EXPECT_EQ(heuristics[0].outcome, Outcome::kHeuristicMixed);
  EXPECT_EQ(heuristics[0].xid, global);
  EXPECT_EQ(heuristics[0].participants.size(), 2u);
  // Only the RM that reported XA_HEUR* is told to forget, after the record.
  EXPECT_THAT(a_.Trace(-1), Contains("forget"));
  EXPECT_THAT(b_.Trace(-1), Not(Contains("forget")));
  EXPECT_EQ(log_.State().open_heuristics.size(), 1u);
  RecoveryReport next = RunPass(engine);
  EXPECT_EQ(next.heuristics_open, 1u);
}

TEST_F(RecoveryEngineTest, ForcedCommitIsAuditedInTheLog) {
  Xid global = InDoubt(/*decided=*/false);
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  Result<RecoveryReport> forced = engine.Force(global, RecoveryEngine::Forced::kCommit, "ticket OPS-17");
  ASSERT_THAT(forced, IsOk());
  EXPECT_EQ(forced->committed, 2u);
  std::vector<LogRecord> audit = log_.RecordsOfType(RecordType::kHeuristic);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].outcome, Outcome::kHeuristicCommit);
  EXPECT_THAT(audit[0].reason, HasSubstr("operator forced commit: ticket OPS-17"));
  EXPECT_EQ(audit[0].participants.size(), 2u);
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
}

TEST_F(RecoveryEngineTest, ForcedRollbackOfALoggedCommitIsRefused) {
  Xid global = InDoubt(/*decided=*/true);
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  Result<RecoveryReport> forced = engine.Force(global, RecoveryEngine::Forced::kRollback, "impatient");
  ASSERT_THAT(forced, StatusIs(Code::kProto, HasSubstr("commit decision")));
  EXPECT_THAT(Actions(a_), IsEmpty());
}

TEST_F(RecoveryEngineTest, ForceNeedsAReasonAndAPreparedBranch) {
  Xid global = InDoubt(/*decided=*/false);
  RecoveryEngine engine(log_, {&a_, &b_}, Options());
  EXPECT_EQ(engine.Force(global, RecoveryEngine::Forced::kCommit, "").status().code(), Code::kInval);
  EXPECT_EQ(engine.Force(xids_.Next(), RecoveryEngine::Forced::kCommit, "why").status().code(), Code::kNoTa);
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(RecoveryEngineTest, DryRunPlansWithoutChangingAnything) {
  InDoubt(/*decided=*/true);
  InDoubt(/*decided=*/false);
  RecoveryOptions options = Options();
  options.dry_run = true;
  RecoveryEngine engine(log_, {&a_, &b_}, options);
  RecoveryReport plan = RunPass(engine);
  EXPECT_TRUE(plan.dry_run);
  size_t commits = 0, rollbacks = 0;
  for (const BranchReport& b : plan.branches) {
    commits += b.action == RecoveryAction::kCommit;
    rollbacks += b.action == RecoveryAction::kRollback;
  }
  EXPECT_EQ(commits, 2u);
  EXPECT_EQ(rollbacks, 2u);
  EXPECT_THAT(Actions(a_), IsEmpty());
  EXPECT_THAT(Actions(b_), IsEmpty());
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kCommitDecision));
  EXPECT_THAT(RecoveryReportToJson(plan), HasSubstr("\"dry_run\":true"));
}

TEST_F(RecoveryEngineTest, SessionsOfOneRmShareItsWork) {
  for (int i = 0; i < 6; ++i) InDoubt(/*decided=*/true);
  std::unique_ptr<ScriptedResourceManager> a2 = a_.NewSession();
  std::unique_ptr<ScriptedResourceManager> a3 = a_.NewSession();
  RecoveryEngine engine(log_, {&a_, a2.get(), a3.get(), &b_}, Options());
  RecoveryReport report = RunPass(engine);
  EXPECT_EQ(report.committed, 12u);
  EXPECT_EQ(report.end_records_written, 6u);
  size_t recover_calls = 0;
  for (const std::string& call : a_.Trace(-1)) recover_calls += call == "recover";
  EXPECT_EQ(recover_calls, 1u) << "one scan per RM, whatever its number of sessions";
  EXPECT_THAT(a_.PreparedXids(), IsEmpty());
}

TEST_F(RecoveryEngineTest, NoResourceManagerIsAConfigurationError) {
  RecoveryEngine engine(log_, {}, Options());
  EXPECT_EQ(engine.Run().status().code(), Code::kConfig);
}

}  // namespace
}  // namespace xa::test
