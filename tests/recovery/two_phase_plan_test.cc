// The two-phase recovery module's plan as a pure function: log states and recover scans in,
// actions with reasons out, and no resource manager anywhere (the plan must not need one).

#include "src/recovery/two_phase_recovery.h"

#include <chrono>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xa::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint32_t kNode = 5;
constexpr int64_t kMinute = 60'000'000;

LogRecord DecisionFor(const Xid& global, std::vector<std::string> rms) {
  LogRecord record;
  record.type = RecordType::kCommitDecision;
  record.xid = global;
  record.lsn = 9;
  for (size_t i = 0; i < rms.size(); ++i) {
    record.participants.push_back({rms[i], global.WithBranch(static_cast<uint32_t>(i))});
  }
  return record;
}

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

std::vector<std::string> Actions(const RecoveryPlan& plan) {
  std::vector<std::string> out;
  for (const BranchReport& b : plan.report.branches) {
    out.push_back(b.rm_name + ":" + std::string(RecoveryActionName(b.action)));
  }
  return out;
}

// Where each branch of the plan stands, in report order.
std::vector<BranchEnd> Ends(const RecoveryPlan& plan) {
  std::vector<BranchEnd> out;
  for (const BranchState& state : plan.states) out.push_back(state.end);
  return out;
}

std::vector<std::string> Calls(const RecoveryPlan& plan) {
  std::vector<std::string> out;
  for (const PlannedCall& call : plan.calls) {
    out.push_back(call.rm_name + ":" + std::string(DecisionName(call.decision)));
  }
  return out;
}

class TwoPhasePlanTest : public ::testing::Test {
 protected:
  TwoPhasePlanTest() : xids_(kNode, 1) {
    options_.node_id = kNode;
    options_.orphan_min_age = std::chrono::milliseconds(1000);
  }

  // A global Xid of ours (its gtrid holds its begin time).
  Xid Ours() { return xids_.Next(); }

  RecoveryPlan PlanNow(std::vector<ScannedRm> scans, int64_t now_micros,
                       const std::set<Xid>& claimed = {}) {
    PassInputs inputs;
    inputs.state = &state_;
    inputs.scans = std::move(scans);
    inputs.options = &options_;
    inputs.now_micros = now_micros;
    return module_.Plan(inputs, claimed);
  }

  int64_t BornAt(const Xid& xid) { return xid.BeginTimeMicros().value_or(0); }

  XidGenerator xids_;
  RecoveryOptions options_;
  LogState state_;
  TwoPhaseRecovery module_;
};

TEST_F(TwoPhasePlanTest, DecisionCommitsPreparedBranchesAndCountsTheOthersDone) {
  Xid global = Ours();
  state_.open_decisions[global] = DecisionFor(global, {"a", "b"});
  RecoveryPlan plan =
      PlanNow({Scanned("a", {global.WithBranch(0)}), Scanned("b", {})}, BornAt(global));
  EXPECT_THAT(Actions(plan), ElementsAre("a:commit", "b:already-done"));
  EXPECT_THAT(Calls(plan), ElementsAre("a:commit"));
  // b is done; a waits for its commit.
  EXPECT_THAT(Ends(plan), ElementsAre(BranchEnd::kPending, BranchEnd::kCommitted));
  EXPECT_EQ(plan.transactions.at(global).branches.size(), 2u);
  EXPECT_EQ(plan.OpenDecisions(), 1u);
  EXPECT_EQ(plan.report.already_done, 1u);
  EXPECT_THAT(plan.claimed, ElementsAre(global));
}

TEST_F(TwoPhasePlanTest, DecisionOnAnUnreachableOrUnknownRmStaysOpenWithoutACall) {
  Xid global = Ours();
  state_.open_decisions[global] = DecisionFor(global, {"a", "gone"});
  RecoveryPlan plan = PlanNow({Unreachable("a")}, BornAt(global));
  EXPECT_THAT(Actions(plan), ElementsAre("a:leave-alone", "gone:leave-alone"));
  EXPECT_THAT(plan.calls, IsEmpty());
  EXPECT_THAT(Ends(plan), ElementsAre(BranchEnd::kPending, BranchEnd::kPending));
  EXPECT_EQ(plan.OpenDecisions(), 1u);
  EXPECT_THAT(plan.report.branches[1].reason, HasSubstr("not configured"));
}

TEST_F(TwoPhasePlanTest, OrphanIsRolledBackOnceOldEnoughOrSeenByTheLastPass) {
  Xid orphan = Ours();
  std::vector<ScannedRm> scans = {Scanned("a", {orphan.WithBranch(0)})};
  // Younger than orphan_min_age (1 s): perhaps a transaction between prepare and decision.
  RecoveryPlan first = PlanNow(scans, BornAt(orphan) + 999'999);
  EXPECT_THAT(first.calls, IsEmpty());
  EXPECT_EQ(first.report.orphans_deferred, 1u);
  // The next pass rolls it back: it was seen without a decision by the one before.
  RecoveryPlan second = PlanNow(scans, BornAt(orphan) + 999'999);
  EXPECT_THAT(Calls(second), ElementsAre("a:rollback"));
  EXPECT_THAT(second.report.branches[0].reason, HasSubstr("seen by an earlier pass"));

  Xid old_orphan = Ours();
  RecoveryPlan old = PlanNow({Scanned("a", {old_orphan.WithBranch(0)})},
                             BornAt(old_orphan) + 1'000'000);
  EXPECT_THAT(Calls(old), ElementsAre("a:rollback"));
  EXPECT_THAT(old.report.branches[0].reason, HasSubstr("older than the timeout"));
}

// The branches of an open 3PC record belong to their participant agents: an agent may have
// decided commit while the coordinator was down, so 2PC's rules must never finish one, however
// old, and a 3PC pre-commit record (or even a 3PC decision) is finished with the agents. (A 3PC
// branch that no record names is presumed aborted: three_phase_plan_test.cc.)
TEST_F(TwoPhasePlanTest, ThreePhaseRecordsAndTheirBranchesAreLeftToTheAgents) {
  Xid pre_committed = xids_.Next(Protocol::kThreePhase);
  Xid decided = xids_.Next(Protocol::kThreePhase);
  state_.open_decisions[pre_committed] = DecisionFor(pre_committed, {"a", "b"});
  state_.open_decisions[pre_committed].type = RecordType::kPreCommit;
  state_.open_decisions[pre_committed].protocol = Protocol::kThreePhase;
  state_.open_decisions[decided] = DecisionFor(decided, {"a"});
  state_.open_decisions[decided].protocol = Protocol::kThreePhase;
  std::vector<ScannedRm> scans = {
      Scanned("a", {pre_committed.WithBranch(0), decided.WithBranch(0)}),
      Scanned("b", {pre_committed.WithBranch(1)})};
  for (int pass = 0; pass < 2; ++pass) {  // a second pass changes nothing
    RecoveryPlan plan = PlanNow(scans, BornAt(pre_committed) + kMinute);
    EXPECT_THAT(plan.calls, IsEmpty());
    EXPECT_THAT(plan.claimed, IsEmpty());
    EXPECT_EQ(plan.report.awaiting_agents, 3u);
    EXPECT_EQ(plan.report.orphans_deferred, 0u);
    EXPECT_FALSE(plan.report.Converged());
    for (const BranchReport& branch : plan.report.branches) {
      EXPECT_EQ(branch.action, RecoveryAction::kLeaveAlone) << branch.branch.ToString();
      EXPECT_THAT(branch.reason, HasSubstr("participant agents decide"));
    }
  }
}

TEST_F(TwoPhasePlanTest, ForeignBranchesAreNeverTouched) {
  XidGenerator other_node(kNode + 1, 2);
  Xid theirs = other_node.Next();
  Result<Xid> other_tm = Xid::Make(0x1234, "gtrid-of-someone-else", "b");
  ASSERT_TRUE(other_tm.ok());
  ScannedRm scan = Scanned("a", {theirs.WithBranch(0), *other_tm});
  scan.unparsed.push_back(UnparsedBranch{"raw-entry", "no Xid of ours"});
  RecoveryPlan plan = PlanNow({scan}, BornAt(theirs) + kMinute);
  EXPECT_THAT(plan.calls, IsEmpty());
  EXPECT_EQ(plan.report.foreign, 3u);
}

TEST_F(TwoPhasePlanTest, DamagedLogOrOpenHeuristicOrInFlightRefusesPresumedAbort) {
  Xid damaged_orphan = Ours();
  Xid heuristic_orphan = Ours();
  Xid running = Ours();
  LogRecord heuristic;
  heuristic.type = RecordType::kHeuristic;
  heuristic.xid = heuristic_orphan;
  heuristic.outcome = Outcome::kHeuristicHazard;
  state_.open_heuristics[heuristic_orphan] = heuristic;
  options_.in_flight = [&](const Xid& global) { return global == running; };
  std::vector<ScannedRm> scans = {Scanned(
      "a", {damaged_orphan.WithBranch(0), heuristic_orphan.WithBranch(0), running.WithBranch(0)})};

  RecoveryPlan undamaged = PlanNow(scans, BornAt(running) + kMinute);
  EXPECT_THAT(Calls(undamaged), ElementsAre("a:rollback"));  // only the plain orphan
  EXPECT_EQ(undamaged.report.in_flight, 1u);
  EXPECT_EQ(undamaged.report.heuristics_open, 1u);

  state_.damaged = true;
  state_.damage_report = "bad checksum at offset 4096";
  RecoveryPlan damaged = PlanNow(scans, BornAt(running) + kMinute);
  EXPECT_THAT(damaged.calls, IsEmpty());
}

TEST_F(TwoPhasePlanTest, TransactionsClaimedByAnEarlierModuleAreLeftToIt) {
  Xid decided = Ours();
  Xid orphan = Ours();
  state_.open_decisions[decided] = DecisionFor(decided, {"a"});
  std::vector<ScannedRm> scans = {Scanned("a", {decided.WithBranch(0), orphan.WithBranch(0)})};
  RecoveryPlan plan = PlanNow(scans, BornAt(orphan) + kMinute, {decided, orphan});
  EXPECT_THAT(plan.report.branches, IsEmpty());
  EXPECT_THAT(plan.calls, IsEmpty());
  EXPECT_THAT(plan.claimed, IsEmpty());
}

// The age arithmetic takes a begin time from a server's recover scan (any 8 bytes a forged Xid
// of our node carries) and a minimum age from a configuration: none of it may overflow.
TEST(AgeOfOrphanTest, SaturatesInsteadOfOverflowingAndDistrustsImpossibleBeginTimes) {
  using std::chrono::milliseconds;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t now = 1'764'560'000'000'000;  // December 2025, in microseconds
  struct Case {
    std::optional<int64_t> begin;
    int64_t now;
    milliseconds min_age;
    std::optional<int64_t> age;
    bool old_enough;
  };
  for (const Case& c : std::initializer_list<Case>{
           {now - 2'000'000, now, milliseconds(2000), 2'000'000, true},
           {now - 1'999'999, now, milliseconds(2000), 1'999'999, false},
           // No begin time, or one before 1970: unknown, never old enough by age.
           {std::nullopt, now, milliseconds(0), std::nullopt, false},
           {kMin, now, milliseconds(0), std::nullopt, false},
           {-1, now, milliseconds(0), std::nullopt, false},
           // In the future (the wall clock stepped back): age 0.
           {now + 5'000'000, now, milliseconds(1), 0, false},
           {kMax, kMin, milliseconds(1), 0, false},
           // A minimum age beyond the range of microseconds is never reached.
           {0, kMax, milliseconds(kMax), kMax, false},
           {now - 8'000, now, milliseconds(kMax), 8'000, false},
           {now - 8'000, now, milliseconds(10'000'000'000'000'000), 8'000, false},
           {0, kMax, milliseconds(kMax / 1000), kMax, true},
           // A negative minimum age is no minimum.
           {now, now, milliseconds(-5), 0, true},
           {now, now, milliseconds(kMin), 0, true},
       }) {
    OrphanAge age = AgeOfOrphan(c.begin, c.now, c.min_age);
    EXPECT_EQ(age.age_micros, c.age) << c.begin.value_or(-42) << " " << c.now << " "
                                     << c.min_age.count();
    EXPECT_EQ(age.old_enough, c.old_enough) << c.begin.value_or(-42) << " " << c.now << " "
                                            << c.min_age.count();
  }
}

TEST_F(TwoPhasePlanTest, HugeOrphanMinAgeNeverMakesAYoungOrphanOld) {
  options_.orphan_min_age = std::chrono::milliseconds(std::numeric_limits<int64_t>::max());
  Xid orphan = Ours();
  RecoveryPlan plan = PlanNow({Scanned("a", {orphan.WithBranch(0)})}, BornAt(orphan) + 8'000);
  EXPECT_THAT(plan.calls, IsEmpty());
  EXPECT_EQ(plan.report.orphans_deferred, 1u);
  EXPECT_THAT(plan.report.branches[0].reason, HasSubstr("no decision yet, 8 ms old"));
}

TEST_F(TwoPhasePlanTest, ForgedBeginTimeOfOurNodeIsAnUnknownAgeNotAnOverflow) {
  // Our format ID, layout and node id, and INT64_MIN as the begin time (bytes 5..12 of the
  // gtrid, big-endian).
  std::string gtrid = Ours().gtrid();
  gtrid.replace(5, 8, std::string("\x80\0\0\0\0\0\0\0", 8));
  Xid forged = Xid::Make(Xid::kFormatId, gtrid, "").value();
  ASSERT_EQ(forged.BeginTimeMicros(), std::numeric_limits<int64_t>::min());
  ASSERT_TRUE(forged.IsOwnedBy(kNode));
  std::vector<ScannedRm> scans = {Scanned("a", {forged.WithBranch(0)})};
  RecoveryPlan first = PlanNow(scans, 1'764'560'000'000'000);
  EXPECT_THAT(first.calls, IsEmpty());
  EXPECT_EQ(first.report.orphans_deferred, 1u);
  EXPECT_THAT(first.report.branches[0].reason, HasSubstr("age unknown"));
  // Like any orphan without a usable age, the next pass rolls it back.
  RecoveryPlan second = PlanNow(scans, 1'764'560'000'000'000);
  EXPECT_THAT(Calls(second), ElementsAre("a:rollback"));
}

}  // namespace
}  // namespace xa::internal
