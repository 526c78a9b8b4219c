// The one function that applies a record to a LogState (recovery-log/log_state.h): every record
// type on every prior state, as a table; and the three users of it (replay, the file log's live
// state, the in-memory test double) ending with the same state for the same records.

#include "recovery-log/log_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "log_test_util.h"
#include "recovery-log/log_reader.h"
#include "testutil/memory_decision_log.h"
#include "xa/decision_log.h"

namespace xa {
namespace {

using internal::ApplyRecord;
using internal::LogStateChange;
using Set = LogStateChange::Set;
using test::Decision;
using test::End;
using test::Heuristic;
using test::HeuristicCleared;
using test::MemoryDecisionLog;
using test::NoSyncEnv;
using test::ParticipantDecision;
using test::ParticipantDecisionCoordinatorKnows;
using test::ParticipantDone;
using test::ParticipantPreCommit;
using test::ParticipantWait;
using test::ScratchDir;
using test::TccConfirm;
using test::TccEnd;
using test::TccTry;
using test::TestBranch;
using test::TestTccXid;
using test::TestXid;

// Without the shared matchers: a Status or Result that is not OK fails with its message.
::testing::AssertionResult Ok(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.ToString();
}
template <typename T>
::testing::AssertionResult Ok(const Result<T>& r) {
  return Ok(r.ok() ? Status::Ok() : r.status());
}
template <typename T>
Code CodeOf(const Result<T>& r) {
  return r.ok() ? Code::kOk : r.status().code();
}

// Two transactions: X, which the records of the table are about, and Y, which they must leave
// alone.
constexpr uint64_t kX = 1;
constexpr uint64_t kY = 2;

LogRecord WithLsn(LogRecord r, uint64_t lsn) {
  r.lsn = lsn;
  r.timestamp_us = static_cast<int64_t>(lsn) * 1000;
  return r;
}

LogRecord PreCommit(uint64_t i) {
  LogRecord r = Decision(i, Protocol::kThreePhase);
  r.type = RecordType::kPreCommit;
  return r;
}

// The records a prior state may hold, each with its own LSN so that the table can say which
// record an open set holds afterwards.
enum Prior : uint64_t {
  kDecisionX = 1,
  kPreCommitX = 2,
  kHeuristicX = 3,
  kDecisionY = 4,
  kHeuristicY = 5,
};
constexpr uint64_t kApplied = 10;  // the LSN of the record under test

LogRecord PriorRecord(Prior p) {
  switch (p) {
    case kDecisionX:
      return WithLsn(Decision(kX), p);
    case kPreCommitX:
      return WithLsn(PreCommit(kX), p);
    case kHeuristicX:
      return WithLsn(Heuristic(kX), p);
    case kDecisionY:
      return WithLsn(Decision(kY), p);
    case kHeuristicY:
      return WithLsn(Heuristic(kY), p);
  }
  return LogRecord();
}

LogRecord Checkpoint() {
  LogRecord r;
  r.type = RecordType::kCheckpoint;
  return r;
}

struct ApplyCase {
  std::string name;
  std::vector<Prior> prior;  // the open records before
  LogRecord record;          // applied with LSN kApplied
  // Afterwards, by transaction: the LSN of the record each open set holds.
  std::map<uint64_t, uint64_t> decisions_after, heuristics_after;
  LogStateChange change;
};

void PrintTo(const ApplyCase& c, std::ostream* os) { *os << c.name; }

const LogStateChange kNoChange{};
const LogStateChange kOpensDecision{Set::kOpenDecisions, true, false};
const LogStateChange kReplacesDecision{Set::kOpenDecisions, false, false};
const LogStateChange kClosesDecision{Set::kOpenDecisions, false, true};
const LogStateChange kNoDecisionToClose{Set::kOpenDecisions, false, false};
const LogStateChange kOpensHeuristic{Set::kOpenHeuristics, true, false};
const LogStateChange kReplacesHeuristic{Set::kOpenHeuristics, false, false};
const LogStateChange kClosesHeuristic{Set::kOpenHeuristics, false, true};
const LogStateChange kNoHeuristicToClose{Set::kOpenHeuristics, false, false};

std::vector<ApplyCase> ApplyCases() {
  const std::vector<Prior> empty;
  const std::vector<Prior> decided = {kDecisionX, kDecisionY, kHeuristicY};
  const std::vector<Prior> pre_committed = {kPreCommitX, kDecisionY, kHeuristicY};
  const std::vector<Prior> heuristic = {kHeuristicX, kDecisionY, kHeuristicY};
  const std::vector<Prior> decided_and_heuristic = {kDecisionX, kHeuristicX, kDecisionY,
                                                    kHeuristicY};
  const std::map<uint64_t, uint64_t> only_y_decision = {{kY, kDecisionY}};
  const std::map<uint64_t, uint64_t> only_y_heuristic = {{kY, kHeuristicY}};
  const std::map<uint64_t, uint64_t> none;
  auto with_x = [](std::map<uint64_t, uint64_t> m, uint64_t lsn) {
    m[kX] = lsn;
    return m;
  };
  return {
      // kCommitDecision: opens, or replaces whatever decision record X had.
      {"DecisionOnEmpty", empty, Decision(kX), {{kX, kApplied}}, none, kOpensDecision},
      {"DecisionOnDecided", decided, Decision(kX), with_x(only_y_decision, kApplied),
       only_y_heuristic, kReplacesDecision},
      {"DecisionOnPreCommitted", pre_committed, Decision(kX), with_x(only_y_decision, kApplied),
       only_y_heuristic, kReplacesDecision},
      {"DecisionOnHeuristic", heuristic, Decision(kX), with_x(only_y_decision, kApplied),
       with_x(only_y_heuristic, kHeuristicX), kOpensDecision},
      // kPreCommit: a decision record like kCommitDecision.
      {"PreCommitOnEmpty", empty, PreCommit(kX), {{kX, kApplied}}, none, kOpensDecision},
      {"PreCommitOnDecided", decided, PreCommit(kX), with_x(only_y_decision, kApplied),
       only_y_heuristic, kReplacesDecision},
      {"PreCommitOnHeuristic", heuristic, PreCommit(kX), with_x(only_y_decision, kApplied),
       with_x(only_y_heuristic, kHeuristicX), kOpensDecision},
      // kEnd: closes X's decision only; X's heuristic stays until an operator clears it.
      {"EndOnEmpty", empty, End(kX), none, none, kNoDecisionToClose},
      {"EndOnDecided", decided, End(kX), only_y_decision, only_y_heuristic, kClosesDecision},
      {"EndOnPreCommitted", pre_committed, End(kX), only_y_decision, only_y_heuristic,
       kClosesDecision},
      {"EndOnHeuristic", heuristic, End(kX), only_y_decision,
       with_x(only_y_heuristic, kHeuristicX), kNoDecisionToClose},
      {"EndOnDecidedAndHeuristic", decided_and_heuristic, End(kX), only_y_decision,
       with_x(only_y_heuristic, kHeuristicX), kClosesDecision},
      // kHeuristic: opens, or replaces X's heuristic; X's decision stays.
      {"HeuristicOnEmpty", empty, Heuristic(kX), none, {{kX, kApplied}}, kOpensHeuristic},
      {"HeuristicOnDecided", decided, Heuristic(kX), with_x(only_y_decision, kDecisionX),
       with_x(only_y_heuristic, kApplied), kOpensHeuristic},
      {"HeuristicOnHeuristic", heuristic, Heuristic(kX), only_y_decision,
       with_x(only_y_heuristic, kApplied), kReplacesHeuristic},
      {"HeuristicOnDecidedAndHeuristic", decided_and_heuristic, Heuristic(kX),
       with_x(only_y_decision, kDecisionX), with_x(only_y_heuristic, kApplied),
       kReplacesHeuristic},
      // kHeuristicCleared: closes X's heuristic only.
      {"HeuristicClearedOnEmpty", empty, HeuristicCleared(kX), none, none, kNoHeuristicToClose},
      {"HeuristicClearedOnDecided", decided, HeuristicCleared(kX),
       with_x(only_y_decision, kDecisionX), only_y_heuristic, kNoHeuristicToClose},
      {"HeuristicClearedOnHeuristic", heuristic, HeuristicCleared(kX), only_y_decision,
       only_y_heuristic, kClosesHeuristic},
      {"HeuristicClearedOnDecidedAndHeuristic", decided_and_heuristic, HeuristicCleared(kX),
       with_x(only_y_decision, kDecisionX), only_y_heuristic, kClosesHeuristic},
      // kCheckpoint: nothing (replay applies its entries, each as the record it carries).
      {"CheckpointOnEmpty", empty, Checkpoint(), none, none, kNoChange},
      {"CheckpointOnDecidedAndHeuristic", decided_and_heuristic, Checkpoint(),
       with_x(only_y_decision, kDecisionX), with_x(only_y_heuristic, kHeuristicX), kNoChange},
  };
}

class ApplyRecordTable : public ::testing::TestWithParam<ApplyCase> {};

TEST_P(ApplyRecordTable, ChangesOnlyTheOpenSetItsTypeNames) {
  const ApplyCase& c = GetParam();
  LogState state;
  for (Prior p : c.prior) {
    LogRecord r = PriorRecord(p);
    auto& open = r.type == RecordType::kHeuristic ? state.open_heuristics : state.open_decisions;
    open[r.xid] = r;
  }
  state.last_lsn = 7;
  state.damage_report = "torn tail dropped";
  LogRecord applied = WithLsn(c.record, kApplied);

  Result<LogStateChange> change = ApplyRecord(applied, &state);
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, c.change);

  auto lsns = [](const std::map<Xid, LogRecord>& open) {
    std::map<uint64_t, uint64_t> out;
    for (const auto& [xid, rec] : open) {
      EXPECT_EQ(xid, rec.xid);
      out[xid == TestXid(kX) ? kX : kY] = rec.lsn;
    }
    return out;
  };
  EXPECT_EQ(lsns(state.open_decisions), c.decisions_after);
  EXPECT_EQ(lsns(state.open_heuristics), c.heuristics_after);
  // The record an open set holds is the applied record, whole.
  for (const auto* open : {&state.open_decisions, &state.open_heuristics}) {
    auto it = open->find(TestXid(kX));
    if (it != open->end() && it->second.lsn == kApplied) {
      EXPECT_EQ(it->second, applied);
    }
  }
  // The reader's position and findings are the caller's.
  EXPECT_EQ(state.last_lsn, 7u);
  EXPECT_FALSE(state.damaged);
  EXPECT_EQ(state.damage_report, "torn tail dropped");
}

INSTANTIATE_TEST_SUITE_P(EveryTypeOnEveryPriorState, ApplyRecordTable,
                         ::testing::ValuesIn(ApplyCases()),
                         [](const auto& test_case) { return test_case.param.name; });

// --- The 3PC participant's records -----------------------------------------------------------

// What branch P (number 1 of transaction X) was before the record under test. Every prior state
// also holds Q (branch 1 of Y) in PRE and the global decision of X, which no participant record
// of P may touch.
enum class Before {
  kNone,
  kWait,
  kPreCommit,
  kDecidedCommit,
  kDecidedRollback,
  kOrphanRollback,  // decided (rolled back) without a Wait: an orphan branch
  kDecidedCommitCoordinatorKnows,  // decided commit, sent by the coordinator itself
};
constexpr uint64_t kWaitLsn = 1, kPreCommitLsn = 2, kDecidedLsn = 3;

LogRecord Placed(LogRecord r, RecordType type, uint64_t lsn, Outcome outcome = Outcome::kUnknown) {
  r.type = type;
  r.outcome = outcome;
  return WithLsn(r, lsn);
}

LogState StateBefore(Before before) {
  LogState state;
  const Xid p = TestBranch(kX, 1);
  const LogRecord wait = ParticipantWait(kX);
  switch (before) {
    case Before::kNone:
      break;
    case Before::kWait:
      state.open_participants[p] = Placed(wait, RecordType::kParticipantWait, kWaitLsn);
      break;
    case Before::kPreCommit:
      state.open_participants[p] = Placed(wait, RecordType::kParticipantPreCommit, kPreCommitLsn);
      break;
    case Before::kDecidedCommit:
      state.open_participants[p] =
          Placed(wait, RecordType::kParticipantDecision, kDecidedLsn, Outcome::kCommitted);
      break;
    case Before::kDecidedRollback:
      state.open_participants[p] =
          Placed(wait, RecordType::kParticipantDecision, kDecidedLsn, Outcome::kRolledBack);
      break;
    case Before::kOrphanRollback:
      state.open_participants[p] =
          WithLsn(ParticipantDecision(kX, Outcome::kRolledBack), kDecidedLsn);
      break;
    case Before::kDecidedCommitCoordinatorKnows:
      state.open_participants[p] =
          Placed(wait, RecordType::kParticipantDecision, kDecidedLsn, Outcome::kCommitted);
      state.open_participants[p].coordinator_knows_outcome = true;
      break;
  }
  state.open_participants[TestBranch(kY, 1)] =
      Placed(ParticipantWait(kY), RecordType::kParticipantPreCommit, 5);
  state.open_decisions[TestXid(kX)] = WithLsn(Decision(kX, Protocol::kThreePhase), 6);
  return state;
}

struct ParticipantCase {
  std::string name;
  Before before;
  LogRecord record;  // applied with LSN kApplied
  bool refused = false;
  // Unless refused: P's state afterwards (nullopt: not open), as type, outcome and LSN.
  std::optional<std::tuple<RecordType, Outcome, uint64_t>> after;
  LogStateChange change;
  bool coordinator_knows_after = false;  // unless refused, and when open afterwards
};

void PrintTo(const ParticipantCase& c, std::ostream* os) { *os << c.name; }

const LogStateChange kOpensParticipant{Set::kOpenParticipants, true, false};
const LogStateChange kKeepsParticipantOpen{Set::kOpenParticipants, false, false};
const LogStateChange kClosesParticipant{Set::kOpenParticipants, false, true};

std::vector<ParticipantCase> ParticipantCases() {
  const LogRecord wait = ParticipantWait(kX);
  const LogRecord pre = ParticipantPreCommit(kX);
  const LogRecord commit = ParticipantDecision(kX, Outcome::kCommitted);
  const LogRecord rollback = ParticipantDecision(kX, Outcome::kRolledBack);
  const LogRecord commit_known = ParticipantDecisionCoordinatorKnows(kX, Outcome::kCommitted);
  const LogRecord rollback_known = ParticipantDecisionCoordinatorKnows(kX, Outcome::kRolledBack);
  const LogRecord done = ParticipantDone(kX);
  using T = RecordType;
  using std::make_tuple;
  const Outcome kNo = Outcome::kUnknown, kC = Outcome::kCommitted, kR = Outcome::kRolledBack;
  auto refused = [](std::string name, Before b, LogRecord r) {
    return ParticipantCase{std::move(name), b, std::move(r), true, std::nullopt, {}};
  };
  auto coordinator_knows = [](ParticipantCase c) {
    c.coordinator_knows_after = true;
    return c;
  };
  return {
      // Wait: opens; a participant votes once, so a second Wait (in any state) is refused.
      {"WaitOpens", Before::kNone, wait, false, make_tuple(T::kParticipantWait, kNo, kApplied),
       kOpensParticipant},
      refused("SecondWaitIsRefused", Before::kWait, wait),
      refused("WaitAfterPreCommitIsRefused", Before::kPreCommit, wait),
      refused("WaitAfterDecisionIsRefused", Before::kDecidedCommit, wait),
      refused("WaitAfterOrphanDecisionIsRefused", Before::kOrphanRollback, wait),
      // PreCommit: from WAIT; a repeat in PRE changes nothing; never without a Wait or after a
      // decision.
      refused("PreCommitWithoutWaitIsRefused", Before::kNone, pre),
      {"PreCommitMovesWaitToPre", Before::kWait, pre, false,
       make_tuple(T::kParticipantPreCommit, kNo, kApplied), kKeepsParticipantOpen},
      {"RepeatedPreCommitChangesNothing", Before::kPreCommit, pre, false,
       make_tuple(T::kParticipantPreCommit, kNo, kPreCommitLsn), kKeepsParticipantOpen},
      refused("PreCommitAfterCommitIsRefused", Before::kDecidedCommit, pre),
      refused("PreCommitAfterRollbackIsRefused", Before::kDecidedRollback, pre),
      refused("PreCommitAfterOrphanDecisionIsRefused", Before::kOrphanRollback, pre),
      // Decision: from nothing (orphan, or adopted in INIT), WAIT or PRE; never changed.
      {"DecisionWithoutWaitOpens", Before::kNone, rollback, false,
       make_tuple(T::kParticipantDecision, kR, kApplied), kOpensParticipant},
      {"CommitFromWait", Before::kWait, commit, false,
       make_tuple(T::kParticipantDecision, kC, kApplied), kKeepsParticipantOpen},
      {"RollbackFromWait", Before::kWait, rollback, false,
       make_tuple(T::kParticipantDecision, kR, kApplied), kKeepsParticipantOpen},
      {"CommitFromPre", Before::kPreCommit, commit, false,
       make_tuple(T::kParticipantDecision, kC, kApplied), kKeepsParticipantOpen},
      {"SameDecisionAgainChangesNothing", Before::kDecidedCommit, commit, false,
       make_tuple(T::kParticipantDecision, kC, kDecidedLsn), kKeepsParticipantOpen},
      {"SameOrphanDecisionAgainChangesNothing", Before::kOrphanRollback, rollback, false,
       make_tuple(T::kParticipantDecision, kR, kDecidedLsn), kKeepsParticipantOpen},
      refused("RollbackAfterCommitIsRefused", Before::kDecidedCommit, rollback),
      refused("CommitAfterRollbackIsRefused", Before::kDecidedRollback, commit),
      refused("CommitAfterOrphanRollbackIsRefused", Before::kOrphanRollback, commit),
      // The coordinator known to hold the outcome: with the decision, or as an upgrade of the
      // same decision (which takes the upgrade's LSN); never cleared, never another outcome.
      coordinator_knows({"CommitFromPreKnownToTheCoordinator", Before::kPreCommit, commit_known,
                         false, make_tuple(T::kParticipantDecision, kC, kApplied),
                         kKeepsParticipantOpen}),
      coordinator_knows({"KnownRollbackWithoutWaitOpens", Before::kNone, rollback_known, false,
                         make_tuple(T::kParticipantDecision, kR, kApplied), kOpensParticipant}),
      coordinator_knows({"SameCommitKnownToTheCoordinatorUpgradesIt", Before::kDecidedCommit,
                         commit_known, false, make_tuple(T::kParticipantDecision, kC, kApplied),
                         kKeepsParticipantOpen}),
      coordinator_knows({"SameOrphanRollbackKnownToTheCoordinatorUpgradesIt",
                         Before::kOrphanRollback, rollback_known, false,
                         make_tuple(T::kParticipantDecision, kR, kApplied),
                         kKeepsParticipantOpen}),
      coordinator_knows({"CommitWithoutTheFlagNeverClearsIt", Before::kDecidedCommitCoordinatorKnows,
                         commit, false, make_tuple(T::kParticipantDecision, kC, kDecidedLsn),
                         kKeepsParticipantOpen}),
      coordinator_knows({"SameKnownCommitAgainChangesNothing",
                         Before::kDecidedCommitCoordinatorKnows, commit_known, false,
                         make_tuple(T::kParticipantDecision, kC, kDecidedLsn),
                         kKeepsParticipantOpen}),
      refused("KnownRollbackAfterCommitIsRefused", Before::kDecidedCommit, rollback_known),
      refused("RollbackAfterKnownCommitIsRefused", Before::kDecidedCommitCoordinatorKnows,
              rollback),
      // Done: forgets a decided participant; of nothing, nothing; an undecided one is never
      // forgotten (its prepared branch would be taken for an orphan after a restart).
      {"DoneOfNothingChangesNothing", Before::kNone, done, false, std::nullopt,
       kKeepsParticipantOpen},
      refused("DoneOfAWaitingParticipantIsRefused", Before::kWait, done),
      refused("DoneOfAPreCommittedParticipantIsRefused", Before::kPreCommit, done),
      // A commit only once the coordinator is known to hold it (after a restart the agent would
      // answer ABORT about it); a rollback always (presumed abort answers the same).
      refused("DoneOfACommitTheCoordinatorMayNotHoldIsRefused", Before::kDecidedCommit, done),
      {"DoneForgetsACommitTheCoordinatorKnows", Before::kDecidedCommitCoordinatorKnows, done,
       false, std::nullopt, kClosesParticipant},
      {"DoneForgetsDecidedRollback", Before::kDecidedRollback, done, false, std::nullopt,
       kClosesParticipant},
      {"DoneForgetsOrphan", Before::kOrphanRollback, done, false, std::nullopt, kClosesParticipant},
  };
}

class ParticipantApplyTable : public ::testing::TestWithParam<ParticipantCase> {};

TEST_P(ParticipantApplyTable, FollowsTheParticipantStateMachine) {
  const ParticipantCase& c = GetParam();
  LogState state = StateBefore(c.before);
  state.last_lsn = 7;
  const LogState before = state;
  const Xid p = TestBranch(kX, 1);
  LogRecord applied = WithLsn(c.record, kApplied);

  Result<LogStateChange> change = ApplyRecord(applied, &state);

  // Q and X's global decision are never touched, nor the reader's position.
  EXPECT_EQ(state.open_participants.at(TestBranch(kY, 1)),
            before.open_participants.at(TestBranch(kY, 1)));
  EXPECT_EQ(state.open_decisions, before.open_decisions);
  EXPECT_EQ(state.open_heuristics, before.open_heuristics);
  EXPECT_EQ(state.last_lsn, 7u);
  if (c.refused) {
    ASSERT_FALSE(change.ok());
    EXPECT_EQ(change.status().code(), Code::kCorruption);
    EXPECT_THAT(change.status().message(), ::testing::HasSubstr(p.ToString()));
    EXPECT_EQ(state.open_participants, before.open_participants) << "a refusal changes nothing";
    return;
  }
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, c.change);
  auto it = state.open_participants.find(p);
  if (!c.after) {
    EXPECT_EQ(it, state.open_participants.end());
    return;
  }
  ASSERT_NE(it, state.open_participants.end());
  const auto& [type, outcome, lsn] = *c.after;
  EXPECT_EQ(it->second.type, type);
  EXPECT_EQ(it->second.outcome, outcome);
  EXPECT_EQ(it->second.lsn, lsn);
  EXPECT_EQ(it->second.timestamp_us, static_cast<int64_t>(lsn) * 1000);
  EXPECT_EQ(it->second.coordinator_knows_outcome, c.coordinator_knows_after);
  // The Wait's fields stay with the participant through its states.
  const bool had_wait = c.before != Before::kNone && c.before != Before::kOrphanRollback;
  const bool is_wait = c.record.type == RecordType::kParticipantWait;
  if (had_wait || is_wait) {
    EXPECT_EQ(it->second.participants, ParticipantWait(kX).participants);
    EXPECT_EQ(it->second.participant_number, 1u);
    EXPECT_EQ(it->second.fence_session_id, ParticipantWait(kX).fence_session_id);
  } else {
    EXPECT_TRUE(it->second.participants.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(EveryParticipantRecordOnEveryState, ParticipantApplyTable,
                         ::testing::ValuesIn(ParticipantCases()),
                         [](const auto& test_case) { return test_case.param.name; });

TEST(ApplyRecord, RefusalNamesTheStateTheRecordMet) {
  LogState state = StateBefore(Before::kDecidedCommit);
  Result<LogStateChange> change =
      ApplyRecord(WithLsn(ParticipantDecision(kX, Outcome::kRolledBack), kApplied), &state);
  ASSERT_FALSE(change.ok());
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("decided commit"));
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("rolled-back"));
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("lsn 3"));
}

TEST(ApplyRecord, BranchFinishedIsSetByADecisionOrItsRepeatAndNeverCleared) {
  LogState state = StateBefore(Before::kPreCommit);
  const Xid p = TestBranch(kX, 1);
  ASSERT_TRUE(Ok(ApplyRecord(WithLsn(ParticipantDecision(kX, Outcome::kCommitted), kApplied),
                             &state)));
  EXPECT_FALSE(state.open_participants.at(p).branch_finished);
  LogRecord finished = ParticipantDecisionCoordinatorKnows(kX, Outcome::kCommitted);
  finished.branch_finished = true;
  Result<LogStateChange> upgraded = ApplyRecord(WithLsn(finished, kApplied + 1), &state);
  ASSERT_TRUE(Ok(upgraded));
  EXPECT_EQ(*upgraded, kKeepsParticipantOpen);
  EXPECT_TRUE(state.open_participants.at(p).branch_finished);
  EXPECT_TRUE(state.open_participants.at(p).coordinator_knows_outcome);
  EXPECT_EQ(state.open_participants.at(p).lsn, kApplied + 1);
  // A repeat without the flags clears neither.
  ASSERT_TRUE(Ok(ApplyRecord(WithLsn(ParticipantDecision(kX, Outcome::kCommitted), kApplied + 2),
                             &state)));
  EXPECT_TRUE(state.open_participants.at(p).branch_finished);
  EXPECT_TRUE(state.open_participants.at(p).coordinator_knows_outcome);
  // A decision that brings the flag by itself keeps it, and the one flag never implies the
  // other.
  LogState fresh = StateBefore(Before::kPreCommit);
  LogRecord finished_only = ParticipantDecision(kX, Outcome::kRolledBack);
  finished_only.branch_finished = true;
  ASSERT_TRUE(Ok(ApplyRecord(WithLsn(finished_only, kApplied), &fresh)));
  EXPECT_TRUE(fresh.open_participants.at(p).branch_finished);
  EXPECT_FALSE(fresh.open_participants.at(p).coordinator_knows_outcome);
}

TEST(ApplyRecord, HeuristicOfABranchIsKeptApartFromItsParticipant) {
  LogState state = StateBefore(Before::kPreCommit);
  const Xid p = TestBranch(kX, 1);
  LogRecord heuristic = Heuristic(kX);
  heuristic.xid = p;  // an agent's heuristic about its participant
  Result<LogStateChange> opened = ApplyRecord(WithLsn(heuristic, kApplied), &state);
  ASSERT_TRUE(Ok(opened));
  EXPECT_EQ(*opened, kOpensHeuristic);
  EXPECT_EQ(state.open_heuristics.at(p).lsn, kApplied);
  EXPECT_EQ(state.open_participants.at(p).type, RecordType::kParticipantPreCommit);
  ASSERT_TRUE(Ok(ApplyRecord(
      WithLsn(ParticipantDecisionCoordinatorKnows(kX, Outcome::kCommitted), kApplied + 1),
      &state)));
  Result<LogStateChange> done = ApplyRecord(WithLsn(ParticipantDone(kX), kApplied + 2), &state);
  ASSERT_TRUE(Ok(done));
  EXPECT_EQ(*done, kClosesParticipant);
  EXPECT_FALSE(state.open_participants.contains(p));
  EXPECT_TRUE(state.open_heuristics.contains(p)) << "only an operator clears a heuristic";
  Result<LogStateChange> cleared =
      ApplyRecord(WithLsn(HeuristicCleared(kX), kApplied + 3), &state);  // the global Xid's
  ASSERT_TRUE(Ok(cleared));
  EXPECT_TRUE(state.open_heuristics.contains(p)) << "a global Xid's clear is not the branch's";
}

// --- The TCC coordinator's records ----------------------------------------------------------

// What TCC transaction T (kX) was before the record under test. Every prior state also holds
// TCC transaction U (kY), confirmed, and a 2PC decision of X's gtrid number, which no TCC
// record of T may touch.
enum class TccBefore { kNone, kTry, kConfirm };
constexpr uint64_t kTryLsn = 1, kConfirmLsn = 2;

LogState TccStateBefore(TccBefore before) {
  LogState state;
  if (before == TccBefore::kTry) state.open_tcc[TestTccXid(kX)] = WithLsn(TccTry(kX), kTryLsn);
  if (before == TccBefore::kConfirm) {
    state.open_tcc[TestTccXid(kX)] = WithLsn(TccConfirm(kX), kConfirmLsn);
  }
  state.open_tcc[TestTccXid(kY)] = WithLsn(TccConfirm(kY), 5);
  state.open_decisions[TestXid(kX)] = WithLsn(Decision(kX), 6);
  return state;
}

struct TccCase {
  std::string name;
  TccBefore before;
  LogRecord record;  // applied with LSN kApplied
  bool refused = false;
  // Unless refused: T's record afterwards (nullopt: not open), as type and LSN.
  std::optional<std::pair<RecordType, uint64_t>> after;
  LogStateChange change;
};

void PrintTo(const TccCase& c, std::ostream* os) { *os << c.name; }

const LogStateChange kOpensTcc{Set::kOpenTcc, true, false};
const LogStateChange kReplacesTcc{Set::kOpenTcc, false, false};
const LogStateChange kClosesTcc{Set::kOpenTcc, false, true};

std::vector<TccCase> TccCases() {
  using T = RecordType;
  auto refused = [](std::string name, TccBefore b, LogRecord r) {
    return TccCase{std::move(name), b, std::move(r), true, std::nullopt, {}};
  };
  return {
      // Try: opens; the coordinator logs it once, and never after its decision.
      {"TryOpens", TccBefore::kNone, TccTry(kX), false, std::pair{T::kTccTry, kApplied}, kOpensTcc},
      refused("SecondTryIsRefused", TccBefore::kTry, TccTry(kX)),
      refused("TryAfterConfirmIsRefused", TccBefore::kConfirm, TccTry(kX)),
      // Confirm: the decision replaces the Try; without a Try it opens (a checkpoint carries
      // only the Confirm of a decided transaction); a repeat replaces the first.
      {"ConfirmReplacesTry", TccBefore::kTry, TccConfirm(kX), false,
       std::pair{T::kTccConfirm, kApplied}, kReplacesTcc},
      {"ConfirmWithoutTryOpens", TccBefore::kNone, TccConfirm(kX), false,
       std::pair{T::kTccConfirm, kApplied}, kOpensTcc},
      {"RepeatedConfirmReplacesTheFirst", TccBefore::kConfirm, TccConfirm(kX), false,
       std::pair{T::kTccConfirm, kApplied}, kReplacesTcc},
      // End: closes the TCC transaction, tried (cancelled) or confirmed; of nothing, nothing (and
      // then it is an end of a decision: the 2PC decision of the same number has another Xid).
      {"EndClosesATriedTransaction", TccBefore::kTry, TccEnd(kX), false, std::nullopt, kClosesTcc},
      {"EndClosesAConfirmedTransaction", TccBefore::kConfirm, TccEnd(kX), false, std::nullopt,
       kClosesTcc},
      {"EndOfNothingChangesNothing", TccBefore::kNone, TccEnd(kX), false, std::nullopt,
       LogStateChange{Set::kOpenDecisions, false, false}},
  };
}

class TccApplyTable : public ::testing::TestWithParam<TccCase> {};

TEST_P(TccApplyTable, FollowsTheTccTransactionsRules) {
  const TccCase& c = GetParam();
  LogState state = TccStateBefore(c.before);
  state.last_lsn = 7;
  const LogState before = state;
  const Xid t = TestTccXid(kX);
  LogRecord applied = WithLsn(c.record, kApplied);

  Result<LogStateChange> change = ApplyRecord(applied, &state);

  // U, X's 2PC decision and the reader's position are never touched.
  EXPECT_EQ(state.open_tcc.at(TestTccXid(kY)), before.open_tcc.at(TestTccXid(kY)));
  EXPECT_EQ(state.open_decisions, before.open_decisions);
  EXPECT_EQ(state.open_heuristics, before.open_heuristics);
  EXPECT_EQ(state.open_participants, before.open_participants);
  EXPECT_EQ(state.last_lsn, 7u);
  if (c.refused) {
    ASSERT_FALSE(change.ok());
    EXPECT_EQ(change.status().code(), Code::kCorruption);
    EXPECT_THAT(change.status().message(), ::testing::HasSubstr(t.ToString()));
    EXPECT_EQ(state.open_tcc, before.open_tcc) << "a refusal changes nothing";
    return;
  }
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, c.change);
  auto it = state.open_tcc.find(t);
  if (!c.after) {
    EXPECT_EQ(it, state.open_tcc.end());
    return;
  }
  ASSERT_NE(it, state.open_tcc.end());
  EXPECT_EQ(it->second.type, c.after->first);
  EXPECT_EQ(it->second.lsn, c.after->second);
  // The transaction holds the applied record whole: participants and payloads.
  EXPECT_EQ(it->second, applied);
}

INSTANTIATE_TEST_SUITE_P(EveryTccRecordOnEveryState, TccApplyTable, ::testing::ValuesIn(TccCases()),
                         [](const auto& test_case) { return test_case.param.name; });

TEST(ApplyRecord, TccRefusalNamesWhatTheTransactionHad) {
  LogState state = TccStateBefore(TccBefore::kConfirm);
  Result<LogStateChange> change = ApplyRecord(WithLsn(TccTry(kX), kApplied), &state);
  ASSERT_FALSE(change.ok());
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("confirm decision (lsn 2)"));
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("never goes back"));
  state = TccStateBefore(TccBefore::kTry);
  change = ApplyRecord(WithLsn(TccTry(kX), kApplied), &state);
  ASSERT_FALSE(change.ok());
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("try (lsn 1)"));
  EXPECT_THAT(change.status().message(), ::testing::HasSubstr("logs its Try once"));
}

// An end record names one Xid; the TCC transaction of that Xid goes first. (A TCC Xid has a
// format ID of its own, so a 2PC decision never shares it: this is what the rule does if one
// did.)
TEST(ApplyRecord, EndClosesTheTccTransactionOfItsXidBeforeADecision) {
  LogState state;
  LogRecord decision = WithLsn(Decision(kX), 1);
  decision.xid = TestTccXid(kX);
  state.open_decisions[decision.xid] = decision;
  state.open_tcc[TestTccXid(kX)] = WithLsn(TccTry(kX), 2);
  Result<LogStateChange> change = ApplyRecord(WithLsn(TccEnd(kX), 3), &state);
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, kClosesTcc);
  EXPECT_TRUE(state.open_tcc.empty());
  EXPECT_EQ(state.open_decisions.size(), 1u);
  change = ApplyRecord(WithLsn(TccEnd(kX), 4), &state);
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, kClosesDecision);
  EXPECT_TRUE(state.open_decisions.empty());
}

TEST(ApplyRecord, EveryRecordTypeIsInTheTable) {
  std::set<RecordType> covered;
  for (const ApplyCase& c : ApplyCases()) covered.insert(c.record.type);
  for (const ParticipantCase& c : ParticipantCases()) covered.insert(c.record.type);
  for (const TccCase& c : TccCases()) covered.insert(c.record.type);
  size_t known = 0;
  for (unsigned t = 1; t < 256; ++t) {
    if (!internal::IsKnownRecordType(static_cast<uint8_t>(t))) continue;
    ++known;
    EXPECT_TRUE(covered.contains(static_cast<RecordType>(t))) << "record type " << t;
  }
  EXPECT_EQ(known, 12u);
}

TEST(ApplyRecord, TypeThisVersionDoesNotKnowChangesNothing) {
  LogState state;
  state.open_decisions[TestXid(kX)] = WithLsn(Decision(kX), 1);
  LogRecord unknown = WithLsn(End(kX), 2);
  unknown.type = static_cast<RecordType>(kRecordTypeIgnorableBit | 0x05);
  Result<LogStateChange> change = ApplyRecord(unknown, &state);
  ASSERT_TRUE(Ok(change));
  EXPECT_EQ(*change, kNoChange);
  EXPECT_EQ(state.open_decisions.size(), 1u);
}

// --- The three users agree -----------------------------------------------------------------

// What a state says about transactions, without where its records lie (LSNs and timestamps are
// the log's own: the file log numbers its checkpoints too, and each log stamps its own clock).
std::map<Xid, LogRecord> Unplaced(const std::map<Xid, LogRecord>& open) {
  std::map<Xid, LogRecord> out = open;
  for (auto& [xid, rec] : out) {
    rec.lsn = 0;
    rec.timestamp_us = 0;
  }
  return out;
}

// A history that uses every record type, replaces decisions (3PC pre-commit, then commit),
// ends and clears Xids that are not open, appends ends lazily, and sets fields that a record's
// type does not persist (a heuristic's protocol, a decision's reason), which every user must
// drop alike.
std::vector<std::pair<LogRecord, bool /*lazy*/>> History(uint64_t transactions) {
  std::vector<std::pair<LogRecord, bool>> out;
  for (uint64_t i = 1; i <= transactions; ++i) {
    if (i % 3 == 0) out.emplace_back(PreCommit(i), false);
    LogRecord decision = Decision(i, i % 3 == 0 ? Protocol::kThreePhase : Protocol::kTwoPhase);
    decision.reason = "not persisted for a decision";
    out.emplace_back(decision, false);
    if (i % 4 == 0) {
      LogRecord heuristic = Heuristic(i);
      heuristic.protocol = Protocol::kOnePhase;  // not persisted for a heuristic
      out.emplace_back(heuristic, false);
    }
    if (i % 8 == 0) out.emplace_back(HeuristicCleared(i), false);
    if (i % 5 != 0) out.emplace_back(End(i), i % 2 == 0);
    if (i % 7 == 0) out.emplace_back(End(transactions + i), false);  // never decided
    if (i % 11 == 0) out.emplace_back(HeuristicCleared(transactions + i), false);
    // An agent's participant of transaction i, left in a state chosen by i % 6; repeats that
    // change nothing, orphan decisions, heuristics by branch, lazy and durable done records.
    const uint16_t number = static_cast<uint16_t>(i % 3);
    out.emplace_back(ParticipantWait(i, number, 3), false);
    const uint64_t path = i % 6;
    if (path == 1 || path == 2 || path == 4) {
      out.emplace_back(ParticipantPreCommit(i, number), false);
    }
    if (path == 1) out.emplace_back(ParticipantPreCommit(i, number), false);  // MoveToPre again
    // Path 2 decides by termination, then the coordinator's DoCommit upgrades the decision
    // (for every other one); path 4 hears the decision from the coordinator and is done.
    if (path == 2) out.emplace_back(ParticipantDecision(i, Outcome::kCommitted, number), false);
    if (path == 2 && i % 4 == 2) {
      out.emplace_back(ParticipantDecisionCoordinatorKnows(i, Outcome::kCommitted, number), false);
    }
    if (path == 2) out.emplace_back(ParticipantDecision(i, Outcome::kCommitted, number), false);
    if (path == 4) {
      out.emplace_back(ParticipantDecisionCoordinatorKnows(i, Outcome::kCommitted, number), false);
    }
    if (path == 3 || path == 5) {
      out.emplace_back(ParticipantDecision(i, Outcome::kRolledBack, number), false);
    }
    if (path == 4 || path == 5) out.emplace_back(ParticipantDone(i, number), i % 2 == 0);
    if (i % 7 == 0) {
      out.emplace_back(ParticipantDecision(transactions + i, Outcome::kRolledBack, 0), false);
      if (i % 14 == 0) out.emplace_back(ParticipantDone(transactions + i, 0), true);
    }
    if (i % 9 == 0) {
      LogRecord heuristic = Heuristic(i);
      heuristic.xid = TestBranch(i, number);
      out.emplace_back(heuristic, false);
    }
    // A TCC transaction of transaction i's number, left trying, confirmed, or ended after its
    // Confirm (lazily or not) or after its Try alone (cancelled); payloads of zeros and none.
    const uint64_t tcc_path = i % 4;
    std::vector<std::string> payloads = test::DefaultTccPayloads();
    if (i % 3 == 0) payloads = {std::string(3, '\0'), ""};
    LogRecord tcc_try = TccTry(i, payloads);
    tcc_try.reason = "not persisted for a TCC record";
    out.emplace_back(tcc_try, false);
    if (tcc_path == 1 || tcc_path == 2) out.emplace_back(TccConfirm(i, payloads), false);
    if (tcc_path == 2 || tcc_path == 3) out.emplace_back(TccEnd(i), i % 2 == 0);
  }
  return out;
}

TEST(LogStateUsers, FileLogReplayAndMemoryDoubleEndWithTheSameState) {
  ScratchDir dir;
  NoSyncEnv env;
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 5;
  o.env = &env;
  o.segment_size_bytes = 1024;  // many rotations: the state crosses checkpoints
  o.preallocate_segments = false;
  MemoryDecisionLog memory(o.node_id);

  LogState live;
  {
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(o);
    ASSERT_TRUE(Ok(log));
    for (const auto& [record, lazy] : History(120)) {
      if (lazy) {
        ASSERT_TRUE(Ok((*log)->AppendLazy(record)));
        ASSERT_TRUE(Ok(memory.AppendLazy(record)));
      } else {
        ASSERT_TRUE(Ok((*log)->Append(record)));
        ASSERT_TRUE(Ok(memory.Append(record)));
      }
    }
    live = (*log)->State();
    Result<internal::DirListing> listing = internal::ListLogDir(&env, o.dir);
    ASSERT_TRUE(Ok(listing));
    ASSERT_GT(listing->segments.back(), 3u) << "the history must cross several rotations";
  }
  Result<std::unique_ptr<DecisionLog>> reopened = DecisionLog::Open(o);
  ASSERT_TRUE(Ok(reopened));
  LogState after_reopen = (*reopened)->State();
  Result<LogState> read = DecisionLog::ReadState(o);
  ASSERT_TRUE(Ok(read));
  LogState in_memory = memory.State();

  // Not a vacuous comparison: both sets hold transactions, and each user dropped the fields
  // that are not persisted.
  ASSERT_FALSE(after_reopen.open_decisions.empty());
  ASSERT_FALSE(after_reopen.open_heuristics.empty());
  std::map<std::string_view, size_t> by_state;
  size_t commits_the_coordinator_knows = 0;
  for (const auto& [xid, rec] : after_reopen.open_participants) {
    ++by_state[internal::ParticipantStateName(rec.type, rec.outcome)];
    commits_the_coordinator_knows +=
        rec.outcome == Outcome::kCommitted && rec.coordinator_knows_outcome;
  }
  EXPECT_EQ(commits_the_coordinator_knows, 10u) << "the upgrades of path 2 outlive rotations";
  EXPECT_EQ(by_state, (std::map<std::string_view, size_t>{{"wait", 20},
                                                          {"pre-commit", 20},
                                                          {"decided commit", 20},
                                                          {"decided rollback", 20 + 9}}))
      << "every state, and the orphans that were not done, are open after the rotations";
  std::map<RecordType, size_t> tcc_by_type;
  for (const auto& [xid, rec] : after_reopen.open_tcc) {
    ++tcc_by_type[rec.type];
    EXPECT_EQ(rec.reason, "") << xid.ToString();
  }
  EXPECT_EQ(tcc_by_type, (std::map<RecordType, size_t>{{RecordType::kTccTry, 30},
                                                       {RecordType::kTccConfirm, 30}}))
      << "tried and confirmed TCC transactions are open after the rotations";
  for (const LogState* s : {&live, &after_reopen, &*read, &in_memory}) {
    for (const auto& [xid, rec] : s->open_decisions) EXPECT_EQ(rec.reason, "") << xid.ToString();
    for (const auto& [xid, rec] : s->open_heuristics) {
      EXPECT_EQ(rec.protocol, Protocol::kTwoPhase) << xid.ToString();
    }
  }

  // The file log: the same records, LSNs and timestamps before and after a restart, and the
  // same as a read-only replay of its directory.
  EXPECT_EQ(live.open_decisions, after_reopen.open_decisions);
  EXPECT_EQ(live.open_heuristics, after_reopen.open_heuristics);
  EXPECT_EQ(read->open_decisions, after_reopen.open_decisions);
  EXPECT_EQ(read->open_heuristics, after_reopen.open_heuristics);
  EXPECT_EQ(live.open_participants, after_reopen.open_participants);
  EXPECT_EQ(read->open_participants, after_reopen.open_participants);
  EXPECT_EQ(live.open_tcc, after_reopen.open_tcc);
  EXPECT_EQ(read->open_tcc, after_reopen.open_tcc);
  EXPECT_EQ(read->last_lsn, after_reopen.last_lsn);
  EXPECT_FALSE(read->damaged);
  // The memory double: the same transactions with the same records.
  EXPECT_EQ(Unplaced(in_memory.open_decisions), Unplaced(after_reopen.open_decisions));
  EXPECT_EQ(Unplaced(in_memory.open_heuristics), Unplaced(after_reopen.open_heuristics));
  EXPECT_EQ(Unplaced(in_memory.open_participants), Unplaced(after_reopen.open_participants));
  EXPECT_EQ(Unplaced(in_memory.open_tcc), Unplaced(after_reopen.open_tcc));
}

// The file log's live state used to keep fields that its records do not persist, and the
// memory double kept them too, so a heuristic's protocol read differently before and after a
// restart. The state is what recovery sees after a crash: each user now holds the record as
// replay reads it back.
TEST(LogStateUsers, StateBeforeARestartIsTheStateAfterIt) {
  ScratchDir dir;
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 5;
  LogRecord heuristic = Heuristic(kX);
  heuristic.protocol = Protocol::kOnePhase;
  LogRecord decision = Decision(kY);
  decision.reason = "a decision has no reason on disk";
  decision.outcome = Outcome::kCommitted;
  MemoryDecisionLog memory(o.node_id);
  LogState live;
  {
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(o);
    ASSERT_TRUE(Ok(log));
    ASSERT_TRUE(Ok((*log)->Append(heuristic)));
    ASSERT_TRUE(Ok((*log)->Append(decision)));
    live = (*log)->State();
  }
  ASSERT_TRUE(Ok(memory.Append(heuristic)));
  ASSERT_TRUE(Ok(memory.Append(decision)));
  Result<std::unique_ptr<DecisionLog>> reopened = DecisionLog::Open(o);
  ASSERT_TRUE(Ok(reopened));
  LogState after = (*reopened)->State();

  ASSERT_EQ(after.open_heuristics.count(TestXid(kX)), 1u);
  ASSERT_EQ(after.open_decisions.count(TestXid(kY)), 1u);
  EXPECT_EQ(after.open_heuristics.at(TestXid(kX)).protocol, Protocol::kTwoPhase);
  EXPECT_EQ(after.open_decisions.at(TestXid(kY)).reason, "");
  EXPECT_EQ(after.open_decisions.at(TestXid(kY)).outcome, Outcome::kUnknown);
  EXPECT_EQ(live.open_heuristics, after.open_heuristics);
  EXPECT_EQ(live.open_decisions, after.open_decisions);
  LogState in_memory = memory.State();
  EXPECT_EQ(Unplaced(in_memory.open_heuristics), Unplaced(after.open_heuristics));
  EXPECT_EQ(Unplaced(in_memory.open_decisions), Unplaced(after.open_decisions));
  // The double still tells a test what the caller wrote.
  EXPECT_EQ(memory.Records().front().protocol, Protocol::kOnePhase);
}

// The memory double used to accept a checkpoint (and any record the real log's codec refuses)
// and to move its last LSN for it; the real log refuses them.
TEST(LogStateUsers, MemoryDoubleRefusesWhatTheFileLogRefuses) {
  ScratchDir dir;
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 5;
  Result<std::unique_ptr<DecisionLog>> file = DecisionLog::Open(o);
  ASSERT_TRUE(Ok(file));
  MemoryDecisionLog memory(o.node_id);
  LogRecord checkpoint = Decision(kX);
  checkpoint.type = RecordType::kCheckpoint;
  LogRecord no_xid = Decision(kX);
  no_xid.xid = Xid();
  LogRecord long_reason = Heuristic(kX, std::string(internal::kMaxReasonSize + 1, 'r'));
  for (const LogRecord& refused : {checkpoint, no_xid, long_reason}) {
    EXPECT_EQ(CodeOf((*file)->Append(refused)), Code::kInval);
    EXPECT_EQ(CodeOf(memory.Append(refused)), Code::kInval);
  }
  EXPECT_TRUE(memory.Records().empty());
  EXPECT_EQ(memory.State().last_lsn, 0u);
  EXPECT_FALSE(memory.failed());
}

}  // namespace
}  // namespace xa
