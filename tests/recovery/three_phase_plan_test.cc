// The three-phase recovery module's plan as a pure function: 3PC records, recover scans and the
// agents' answers in, messages to the agents, direct commits and adopted decisions out, with no
// agent, resource manager or log anywhere (the agent client is never called by Plan).

#include "src/recovery/three_phase_recovery.h"

#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/recovery/two_phase_recovery.h"
#include "src/three_phase/agent_client.h"

namespace xa::internal {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using three_phase::ParticipantState;

constexpr uint32_t kNode = 5;

ScannedRm Scanned(std::string name, std::vector<Xid> prepared) {
  ScannedRm scan;
  scan.name = std::move(name);
  scan.prepared.insert(prepared.begin(), prepared.end());
  return scan;
}

ScannedRm Unreachable(std::string name) {
  ScannedRm scan;
  scan.name = std::move(name);
  scan.status = Status(Code::kRmFail, "connect refused");
  return scan;
}

AgentAnswer Answered(ParticipantState state) { return AgentAnswer{state, Status()}; }
AgentAnswer Silent() {
  return AgentAnswer{std::nullopt, Status(Code::kIoError, "connection refused")};
}

// How a branch of the test's transaction (participant i on RM "rm<i>") stands on its RM.
enum class OnRm { kPrepared, kNotPrepared, kUnreachable };

struct PlanCase {
  const char* name;
  RecordType record = RecordType::kPreCommit;
  std::vector<OnRm> branches;
  std::vector<AgentAnswer> answers;  // to the StateQuery of a pre-commit
  bool agents_configured = true;
  bool in_flight = false;
  // Expected:
  bool decision_logged = false;            // a kCommitDecision adopted from the agents
  std::vector<std::string> agent_calls;    // "rm<i>:<commit|rollback>[:direct]"
  size_t awaiting_agents = 0;
  size_t in_flight_count = 0;
  size_t open_decisions = 0;               // RecoveryPlan::OpenDecisions before Execute
  const char* reason = "";  // a substring of the first branch's log state and reason
  bool heuristic_already_open = false;     // the log holds an open kHeuristic of it
  bool heuristic_logged = false;           // a heuristic-mixed record naming every participant
};

void PrintTo(const PlanCase& c, std::ostream* os) { *os << c.name; }

const std::vector<PlanCase> kCases = {
    {"PreCommitWithAnAgentCommittedAdoptsCommitAndSendsDoCommitToAll", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kNotPrepared}, {Answered(ParticipantState::kCommit),
                                             Answered(ParticipantState::kPre)},
     true, false, true, {"rm0:commit:direct", "rm1:commit"}, 0, 0, 1, "decided COMMIT"},
    {"PreCommitWithAnAgentAbortedSendsAbortToAllAndCommitsNothing", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared}, {Answered(ParticipantState::kAbort), Silent()},
     true, false, false, {"rm0:rollback", "rm1:rollback"}, 0, 0, 1, "decided ABORT"},
    {"PreCommitWithUndecidedAgentsWaitsAndDecidesNothing", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared}, {Answered(ParticipantState::kPre),
                                          Answered(ParticipantState::kWait)},
     true, false, false, {}, 2, 0, 0, "undecided"},
    {"PreCommitWithUnreachableAgentsNeverGuesses", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kUnreachable}, {Silent(), Silent()},
     true, false, false, {}, 2, 0, 0, "did not answer"},
    {"PreCommitNotAskedInThisPassWaits", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared}, {},
     true, false, false, {}, 2, 0, 0, "not asked"},
    {"PreCommitSplitByAPartitionIsRecordedAsHeuristicMixedAndEachAgentToldItsOwnOutcome",
     RecordType::kPreCommit, {OnRm::kPrepared, OnRm::kNotPrepared},
     {Answered(ParticipantState::kCommit), Answered(ParticipantState::kAbort)},
     true, false, false, {"rm0:commit", "rm1:rollback"}, 0, 0, 1,
     "rm0: COMMIT, rm1: ABORT): heuristic-mixed", false, true},
    {"PreCommitSplitAlreadyRecordedIsNotRecordedAgain", RecordType::kPreCommit,
     {OnRm::kNotPrepared, OnRm::kNotPrepared},
     {Answered(ParticipantState::kCommit), Answered(ParticipantState::kAbort)},
     true, false, false, {"rm0:commit", "rm1:rollback"}, 0, 0, 1, "heuristic-mixed", true, false},
    {"PreCommitSplitWithAnUndecidedThirdSideTellsOnlyTheDecidedAgents", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared, OnRm::kPrepared},
     {Answered(ParticipantState::kAbort), Answered(ParticipantState::kPre),
      Answered(ParticipantState::kCommit)},
     true, false, false, {"rm0:rollback", "rm2:commit"}, 1, 0, 1, "partition split", false, true},
    {"PreCommitInFlightIsLeftToItsCoordinator", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared}, {Answered(ParticipantState::kCommit),
                                          Answered(ParticipantState::kCommit)},
     true, true, false, {}, 0, 2, 0, "in flight"},
    {"PreCommitWithoutAgentsWaitsForThemAndTouchesNoBranch", RecordType::kPreCommit,
     {OnRm::kPrepared, OnRm::kPrepared}, {Answered(ParticipantState::kCommit),
                                          Answered(ParticipantState::kCommit)},
     false, false, false, {}, 2, 0, 0, "no agent is configured"},
    {"CommitDecisionSendsDoCommitAndCommitsOnlyPreparedBranchesDirectlyWhenNeeded",
     RecordType::kCommitDecision, {OnRm::kPrepared, OnRm::kNotPrepared, OnRm::kUnreachable}, {},
     true, false, false, {"rm0:commit:direct", "rm1:commit", "rm2:commit"}, 0, 0, 1,
     "DoCommit to its agent"},
    {"CommitDecisionWithoutAgentsWaitsForThemAndTouchesNoBranch", RecordType::kCommitDecision,
     {OnRm::kPrepared, OnRm::kPrepared}, {},
     false, false, false, {}, 2, 0, 0, "no agent is configured"},
    {"CommitDecisionInFlightIsLeftToItsCoordinator", RecordType::kCommitDecision,
     {OnRm::kPrepared, OnRm::kPrepared}, {},
     true, true, false, {}, 0, 2, 0, "in flight"},
};

class ThreePhasePlanTest : public ::testing::TestWithParam<PlanCase> {};

TEST_P(ThreePhasePlanTest, PlansByTheRulesOfTheCoordinatorsRecovery) {
  const PlanCase& c = GetParam();
  XidGenerator xids(kNode, 1);
  const Xid global = xids.Next(Protocol::kThreePhase);
  LogState state;
  LogRecord record;
  record.type = c.record;
  record.xid = global;
  record.protocol = Protocol::kThreePhase;
  record.lsn = 7;
  std::vector<ScannedRm> scans;
  for (size_t i = 0; i < c.branches.size(); ++i) {
    const std::string rm = "rm" + std::to_string(i);
    const Xid branch = global.WithBranch(static_cast<uint16_t>(i));
    record.participants.push_back({rm, branch});
    switch (c.branches[i]) {
      case OnRm::kPrepared: scans.push_back(Scanned(rm, {branch})); break;
      case OnRm::kNotPrepared: scans.push_back(Scanned(rm, {})); break;
      case OnRm::kUnreachable: scans.push_back(Unreachable(rm)); break;
    }
  }
  state.open_decisions[global] = record;
  if (c.heuristic_already_open) {
    LogRecord heuristic;
    heuristic.type = RecordType::kHeuristic;
    heuristic.xid = global;
    heuristic.outcome = Outcome::kHeuristicMixed;
    state.open_heuristics[global] = heuristic;
  }

  // Plan never calls the agents: a client with no transport stands for "agents configured".
  three_phase::AgentClient agents(nullptr, nullptr, "plan-test", {});
  RecoveryOptions options;
  options.node_id = kNode;
  options.agents = c.agents_configured ? &agents : nullptr;
  options.in_flight = [&](const Xid& xid) { return c.in_flight && xid == global; };
  PassInputs inputs;
  inputs.state = &state;
  inputs.scans = scans;
  inputs.options = &options;
  if (!c.answers.empty()) inputs.agent_states[global] = c.answers;

  ThreePhaseRecovery module;
  RecoveryPlan plan = module.Plan(inputs, {});

  EXPECT_EQ(plan.claimed, std::set<Xid>{global}) << "3PC records are the 3PC module's";
  EXPECT_TRUE(plan.calls.empty()) << "the plan makes no 2PC-style call of its own";
  ASSERT_EQ(plan.decisions_to_log.size(), c.decision_logged ? 1u : 0u);
  if (c.decision_logged) {
    EXPECT_EQ(plan.decisions_to_log[0].type, RecordType::kCommitDecision);
    EXPECT_EQ(plan.decisions_to_log[0].protocol, Protocol::kThreePhase);
    EXPECT_EQ(plan.decisions_to_log[0].participants, record.participants);
  }
  ASSERT_EQ(plan.heuristics_to_log.size(), c.heuristic_logged ? 1u : 0u);
  if (c.heuristic_logged) {
    const LogRecord& heuristic = plan.heuristics_to_log[0];
    EXPECT_EQ(heuristic.type, RecordType::kHeuristic);
    EXPECT_EQ(heuristic.xid, global);
    EXPECT_EQ(heuristic.outcome, Outcome::kHeuristicMixed);
    EXPECT_EQ(heuristic.participants, record.participants);
    EXPECT_THAT(heuristic.reason, HasSubstr("partition split"));
    EXPECT_EQ(plan.report.heuristics_open, 1u);
  }
  std::vector<std::string> calls;
  for (const PlannedAgentCall& call : plan.agent_calls) {
    EXPECT_EQ(call.global, global);
    EXPECT_EQ(global.WithBranch(static_cast<uint16_t>(call.participant)),
              plan.report.branches[call.report_index].branch);
    EXPECT_FALSE(call.branch_prepared && call.branch_finished);
    calls.push_back(plan.report.branches[call.report_index].rm_name + ":" +
                    std::string(DecisionName(call.decision)) + (call.commit_directly ? ":direct" : ""));
  }
  EXPECT_THAT(calls, ElementsAreArray(c.agent_calls));
  EXPECT_EQ(plan.report.awaiting_agents, c.awaiting_agents);
  EXPECT_EQ(plan.report.in_flight, c.in_flight_count);
  EXPECT_EQ(plan.OpenDecisions(), c.open_decisions);
  ASSERT_EQ(plan.report.branches.size(), c.branches.size());
  EXPECT_THAT(plan.report.branches[0].log_state + "; " + plan.report.branches[0].reason,
              HasSubstr(c.reason));
  for (const BranchState& branch : plan.states) {
    EXPECT_EQ(branch.end, BranchEnd::kPending) << "nothing is finished before the agents answer";
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, ThreePhasePlanTest, ::testing::ValuesIn(kCases),
                         [](const auto& test_param) { return std::string(test_param.param.name); });

TEST(ThreePhaseRecoveryTest, ParticipantNumberIsReadBackFromTheBranchXid) {
  XidGenerator xids(kNode, 1);
  const Xid global = xids.Next(Protocol::kThreePhase);
  for (uint16_t n : {0, 1, 7, 300, 65535}) {
    EXPECT_EQ(ParticipantNumberOfBranch(global.WithBranch(n)), n);
  }
  EXPECT_EQ(ParticipantNumberOfBranch(global), std::nullopt);
}

// A coordinator that crashed between XA PREPARE and CanCommit leaves prepared XAM3 branches that
// no agent knows: with no record, presumed abort rolls them back once old enough (or seen by an
// earlier pass), as for 2PC; nothing else would release their locks.
TEST(ThreePhaseRecoveryTest, AThreePhaseOrphanWithoutRecordIsPresumedAborted) {
  XidGenerator xids(kNode, 1);
  const Xid orphan = xids.Next(Protocol::kThreePhase);
  LogState state;
  three_phase::AgentClient agents(nullptr, nullptr, "plan-test", {});
  RecoveryOptions options;
  options.node_id = kNode;
  options.orphan_min_age = std::chrono::milliseconds(0);  // old enough for presumed abort
  options.agents = &agents;
  PassInputs inputs;
  inputs.state = &state;
  inputs.scans = {Scanned("rm0", {orphan.WithBranch(0)})};
  inputs.options = &options;
  inputs.now_micros = orphan.BeginTimeMicros().value_or(0) + 3'600'000'000;

  ThreePhaseRecovery three_phase;
  TwoPhaseRecovery two_phase;
  RecoveryPlan first = three_phase.Plan(inputs, {});
  RecoveryPlan second = two_phase.Plan(inputs, first.claimed);
  EXPECT_TRUE(first.agent_calls.empty());
  EXPECT_TRUE(first.report.branches.empty());
  ASSERT_EQ(second.calls.size(), 1u);
  EXPECT_EQ(second.calls[0].decision, Decision::kRollback);
  EXPECT_EQ(second.calls[0].global, orphan);
  ASSERT_EQ(second.report.branches.size(), 1u);
  EXPECT_EQ(second.report.branches[0].action, RecoveryAction::kRollback);
  EXPECT_EQ(second.report.awaiting_agents, 0u);
}

TEST(ThreePhaseRecoveryTest, AYoungThreePhaseOrphanWaitsForALaterPass) {
  XidGenerator xids(kNode, 1);
  const Xid orphan = xids.Next(Protocol::kThreePhase);
  LogState state;
  three_phase::AgentClient agents(nullptr, nullptr, "plan-test", {});
  RecoveryOptions options;
  options.node_id = kNode;
  options.orphan_min_age = std::chrono::milliseconds(60'000);
  options.agents = &agents;
  PassInputs inputs;
  inputs.state = &state;
  inputs.scans = {Scanned("rm0", {orphan.WithBranch(0)})};
  inputs.options = &options;
  inputs.now_micros = orphan.BeginTimeMicros().value_or(0) + 1'000'000;  // 1 s old

  ThreePhaseRecovery three_phase;
  TwoPhaseRecovery two_phase;
  RecoveryPlan first = three_phase.Plan(inputs, {});
  RecoveryPlan second = two_phase.Plan(inputs, first.claimed);
  EXPECT_TRUE(second.calls.empty()) << "a young branch may still be asked to vote";
  EXPECT_EQ(second.report.orphans_deferred, 1u);
}

}  // namespace
}  // namespace xa::internal
