// The 3PC participant's records in a DecisionLog (an agent's own log): every state survives a
// reopen and a rotation, Append refuses what replay would refuse and writes nothing, replay
// refuses a history that breaks the participant's state machine, checkpoints carry open
// participants and segments are freed once their participants are done, and a crash keeps
// every acknowledged state.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "log_test_util.h"
#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "recovery-log/record_codec.h"
#include "testutil/fault_injection_env.h"
#include "testutil/status_matchers.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa {
namespace {

using test::Decision;
using test::FaultInjectionEnv;
using test::Heuristic;
using test::IsOk;
using test::NoSyncEnv;
using test::ParticipantDecision;
using test::ParticipantDecisionCoordinatorKnows;
using test::ParticipantDone;
using test::ParticipantPreCommit;
using test::ParticipantWait;
using test::ScratchDir;
using test::StatusIs;
using test::TestBranch;
using ::testing::AllOf;
using ::testing::HasSubstr;

LogOptions Options(const ScratchDir& dir, Env* env = nullptr) {
  return test::LogOptionsIn(dir, 21, env);
}
using test::OpenOrDie;

size_t SegmentCount(const LogOptions& o) {
  Result<internal::DirListing> listing =
      internal::ListLogDir(o.env != nullptr ? o.env : Env::Default(), o.dir);
  EXPECT_TRUE(listing.ok());
  return listing.ok() ? listing->segments.size() : 0;
}

TEST(ParticipantLog, EveryStateSurvivesReopenWithItsFields) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  LogRecord read_only_wait = ParticipantWait(1, 0, 1);  // the only participant, number 0
  read_only_wait.read_only = true;
  read_only_wait.fence_session_id = UINT64_MAX;
  LogRecord no_fence = ParticipantWait(2, 2, 3);  // the last of three, PostgreSQL: no fence
  no_fence.fence_session_id = 0;
  LogState live;
  uint64_t upgrade_lsn = 0;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    ASSERT_THAT(log->Append(read_only_wait), IsOk());
    ASSERT_THAT(log->Append(no_fence), IsOk());
    ASSERT_THAT(log->Append(ParticipantPreCommit(2, 2)), IsOk());
    ASSERT_THAT(log->Append(ParticipantWait(3)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDecision(3, Outcome::kCommitted)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDecision(4, Outcome::kRolledBack, 0)), IsOk());  // orphan
    ASSERT_THAT(log->Append(ParticipantWait(5)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDecisionCoordinatorKnows(5, Outcome::kCommitted)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDone(5)), IsOk());
    // Decided by termination, then upgraded by the coordinator's DoCommit.
    ASSERT_THAT(log->Append(ParticipantWait(6)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDecision(6, Outcome::kCommitted)), IsOk());
    Result<uint64_t> upgrade =
        log->Append(ParticipantDecisionCoordinatorKnows(6, Outcome::kCommitted));
    ASSERT_THAT(upgrade, IsOk());
    upgrade_lsn = *upgrade;
    live = log->State();
  }
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  const LogState after = log->State();
  EXPECT_EQ(after.open_participants, live.open_participants);
  ASSERT_EQ(after.open_participants.size(), 5u);

  const LogRecord& first = after.open_participants.at(TestBranch(1, 0));
  EXPECT_EQ(first.type, RecordType::kParticipantWait);
  EXPECT_TRUE(first.read_only);
  EXPECT_EQ(first.fence_session_id, UINT64_MAX);
  EXPECT_EQ(first.participant_number, 0u);
  EXPECT_EQ(first.participants, read_only_wait.participants);
  EXPECT_EQ(first.protocol, Protocol::kThreePhase);
  const LogRecord& second = after.open_participants.at(TestBranch(2, 2));
  EXPECT_EQ(second.type, RecordType::kParticipantPreCommit);
  EXPECT_EQ(second.participant_number, 2u);
  EXPECT_EQ(second.fence_session_id, 0u);
  EXPECT_FALSE(second.read_only);
  const LogRecord& third = after.open_participants.at(TestBranch(3, 1));
  EXPECT_EQ(third.type, RecordType::kParticipantDecision);
  EXPECT_EQ(third.outcome, Outcome::kCommitted);
  EXPECT_EQ(third.participants.size(), 3u);
  EXPECT_FALSE(third.coordinator_knows_outcome);
  const LogRecord& upgraded = after.open_participants.at(TestBranch(6, 1));
  EXPECT_EQ(upgraded.type, RecordType::kParticipantDecision);
  EXPECT_EQ(upgraded.outcome, Outcome::kCommitted);
  EXPECT_TRUE(upgraded.coordinator_knows_outcome);
  EXPECT_EQ(upgraded.lsn, upgrade_lsn) << "the upgrade brought it into its current state";
  EXPECT_EQ(upgraded.participants.size(), 3u);
  const LogRecord& orphan = after.open_participants.at(TestBranch(4, 0));
  EXPECT_EQ(orphan.type, RecordType::kParticipantDecision);
  EXPECT_EQ(orphan.outcome, Outcome::kRolledBack);
  EXPECT_TRUE(orphan.participants.empty());
  EXPECT_FALSE(after.open_participants.contains(TestBranch(5, 1)));

  // Scan reads every record back as written.
  std::vector<LogRecord> scanned;
  ASSERT_THAT(log->Scan([&](const LogRecord& r) { scanned.push_back(r); }), IsOk());
  ASSERT_EQ(scanned.size(), 12u);
  LogRecord expected = read_only_wait;
  expected.lsn = scanned[0].lsn;
  expected.timestamp_us = scanned[0].timestamp_us;
  EXPECT_EQ(scanned[0], expected);
  EXPECT_EQ(scanned[8].type, RecordType::kParticipantDone);
  EXPECT_FALSE(scanned[10].coordinator_knows_outcome);
  EXPECT_TRUE(scanned[11].coordinator_knows_outcome);
}

TEST(ParticipantLog, AppendRefusesWhatReplayWouldRefuseAndWritesNothing) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  uint64_t written = 0;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    ASSERT_THAT(log->Append(ParticipantWait(1)), IsOk());
    ASSERT_THAT(log->Append(ParticipantDecision(1, Outcome::kCommitted)), IsOk());
    ASSERT_THAT(log->Append(ParticipantWait(2)), IsOk());
    written = 3;
    const uint64_t last_lsn = log->State().last_lsn;
    const LogState before = log->State();
    struct Refusal {
      std::string what;
      LogRecord record;
      std::string says;
    };
    const Refusal refusals[] = {
        {"a second vote", ParticipantWait(2), "votes only once"},
        {"a vote after the decision", ParticipantWait(1), "votes only once"},
        {"PRE without a Wait", ParticipantPreCommit(3), "not open"},
        {"PRE after the decision", ParticipantPreCommit(1), "decided commit"},
        {"the other decision", ParticipantDecision(1, Outcome::kRolledBack), "never changes"},
        {"the other decision, from the coordinator",
         ParticipantDecisionCoordinatorKnows(1, Outcome::kRolledBack), "never changes"},
        {"done of a commit the coordinator may not hold", ParticipantDone(1),
         "only once the coordinator is known to hold it"},
    };
    for (const Refusal& r : refusals) {
      EXPECT_THAT(log->Append(r.record),
                  StatusIs(Code::kProto, AllOf(HasSubstr(r.says), HasSubstr(o.dir))))
          << r.what;
    }
    // Refused by the codec before the state is asked: not a participant's record at all.
    LogRecord global = ParticipantPreCommit(2);
    global.xid = test::TestXid(2);
    EXPECT_THAT(log->Append(global), StatusIs(Code::kInval, HasSubstr("branch Xid")));
    EXPECT_THAT(log->Append(ParticipantDecision(2, Outcome::kHeuristicMixed)),
                StatusIs(Code::kInval));
    EXPECT_EQ(log->State().last_lsn, last_lsn);
    EXPECT_EQ(log->State().open_participants, before.open_participants);
    // The log is not failed by a refusal: the next valid record goes in.
    ASSERT_THAT(log->Append(ParticipantPreCommit(2)), IsOk());
    ++written;
  }
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  uint64_t scanned = 0;
  ASSERT_THAT(log->Scan([&](const LogRecord&) { ++scanned; }), IsOk());
  EXPECT_EQ(scanned, written);
  EXPECT_EQ(log->State().open_participants.at(TestBranch(2, 1)).type,
            RecordType::kParticipantPreCommit);
}

TEST(ParticipantLog, DoneIsAppendedLazilyAndRidesOnTheNextDurableAppend) {
  ScratchDir dir;
  FaultInjectionEnv env;
  LogOptions o = Options(dir, &env);
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    for (uint64_t i = 1; i <= 2; ++i) {
      ASSERT_THAT(log->Append(ParticipantWait(i)), IsOk());
      ASSERT_THAT(log->Append(ParticipantDecisionCoordinatorKnows(i, Outcome::kCommitted)),
                  IsOk());
    }
    ASSERT_THAT(log->AppendLazy(ParticipantDone(1)), IsOk());
    EXPECT_FALSE(log->State().open_participants.contains(TestBranch(1, 1)))
        << "a lazy done applies to the state at once";
    ASSERT_THAT(log->Append(ParticipantWait(3)), IsOk());      // makes the done durable
    ASSERT_THAT(log->AppendLazy(ParticipantDone(2)), IsOk());  // nothing durable after it
    // Other states must be durable before they are acted on: never lazy.
    EXPECT_THAT(log->AppendLazy(ParticipantPreCommit(3)), StatusIs(Code::kInval));
    EXPECT_THAT(log->AppendLazy(ParticipantDecision(3, Outcome::kRolledBack)),
                StatusIs(Code::kInval));
    // The power goes: the log's destructor can write nothing more.
    env.SetFilesystemActive(false);
  }
  env.DropUnsyncedData();
  env.SetFilesystemActive(true);
  auto log = OpenOrDie(Options(dir));
  ASSERT_NE(log, nullptr);
  const LogState s = log->State();
  EXPECT_FALSE(s.open_participants.contains(TestBranch(1, 1)));
  EXPECT_TRUE(s.open_participants.contains(TestBranch(3, 1)));
  // The second done was never made durable: losing it only repeats an idempotent step.
  ASSERT_TRUE(s.open_participants.contains(TestBranch(2, 1)));
  EXPECT_EQ(s.open_participants.at(TestBranch(2, 1)).outcome, Outcome::kCommitted);
}

// Checkpoints carry every open participant into each new segment, and a segment is deleted once
// every participant whose first record it holds is done.
TEST(ParticipantLog, RotationCarriesOpenParticipantsAndFreesSegmentsOnceTheyAreDone) {
  ScratchDir dir;
  NoSyncEnv env;
  LogOptions o = Options(dir, &env);
  o.segment_size_bytes = 1024;
  o.preallocate_segments = false;
  constexpr uint64_t kParticipants = 60;
  LogState live;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    // Each participant in one of the four open states, several segments apart.
    for (uint64_t i = 1; i <= kParticipants; ++i) {
      const uint16_t number = static_cast<uint16_t>(i % 4);
      if (i % 4 != 3) {
        ASSERT_THAT(log->Append(ParticipantWait(i, number, 4)), IsOk());
      }
      if (i % 4 == 1) {
        ASSERT_THAT(log->Append(ParticipantPreCommit(i, number)), IsOk());
      }
      if (i % 4 == 2) {  // every other one from the coordinator, the rest by termination
        const LogRecord commit =
            i % 8 == 2 ? ParticipantDecisionCoordinatorKnows(i, Outcome::kCommitted, number)
                       : ParticipantDecision(i, Outcome::kCommitted, number);
        ASSERT_THAT(log->Append(commit), IsOk());
      }
      if (i % 4 == 3) {  // an orphan: decided without a Wait
        ASSERT_THAT(log->Append(ParticipantDecision(i, Outcome::kRolledBack, number)), IsOk());
      }
      ASSERT_THAT(log->Append(Decision(1000 + i)), IsOk());  // other traffic between them
      ASSERT_THAT(log->Append(test::End(1000 + i)), IsOk());
    }
    live = log->State();
    ASSERT_EQ(live.open_participants.size(), kParticipants);
    EXPECT_GT(SegmentCount(o), 4u) << "the first records of open participants keep segments";
  }
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    Result<LogState> read = DecisionLog::ReadState(o);
    ASSERT_THAT(read, IsOk());
    EXPECT_EQ(log->State().open_participants, live.open_participants);
    EXPECT_EQ(read->open_participants, live.open_participants);
    size_t commits_the_coordinator_knows = 0;
    for (const auto& [branch, open] : read->open_participants) {
      commits_the_coordinator_knows += open.coordinator_knows_outcome;
    }
    EXPECT_EQ(commits_the_coordinator_knows, kParticipants / 8 + 1)
        << "checkpoints carry whether the coordinator holds a commit";
    // Every participant finishes; the traffic afterwards rotates past every old segment.
    for (uint64_t i = 1; i <= kParticipants; ++i) {
      // Only a decided participant may be forgotten: decide the waiting and pre-committed ones.
      if (i % 4 == 0) {
        ASSERT_THAT(log->Append(ParticipantDecision(i, Outcome::kRolledBack, 0)), IsOk());
      }
      // A commit is forgotten only once the coordinator is known to hold it: its DoCommit
      // decides the pre-committed ones and upgrades those decided by termination.
      if (i % 4 == 1 || i % 8 == 6) {
        ASSERT_THAT(log->Append(ParticipantDecisionCoordinatorKnows(
                        i, Outcome::kCommitted, static_cast<uint16_t>(i % 4))),
                    IsOk());
      }
      ASSERT_THAT(log->AppendLazy(ParticipantDone(i, static_cast<uint16_t>(i % 4))), IsOk());
    }
    for (uint64_t i = 1; i <= 60; ++i) {
      ASSERT_THAT(log->Append(Decision(2000 + i)), IsOk());
      ASSERT_THAT(log->Append(test::End(2000 + i)), IsOk());
    }
    EXPECT_TRUE(log->State().open_participants.empty());
    EXPECT_LE(SegmentCount(o), 2u) << "segments of done participants are deleted";
  }
  Result<LogState> read = DecisionLog::ReadState(o);
  ASSERT_THAT(read, IsOk());
  EXPECT_TRUE(read->open_participants.empty());
  EXPECT_FALSE(read->damaged);
}

// --- Replay of histories that Append would never write --------------------------------------

// One segment: a complete checkpoint of `open` (each entry with the LSN before the segment) and
// `records` after it.
std::string Segment(const std::vector<LogRecord>& open, const std::vector<LogRecord>& records) {
  using namespace internal;  // NOLINT(build/namespaces): the format's own helpers
  std::string file;
  SegmentHeader h;
  h.node_id = 21;
  h.epoch = 1;
  h.segment_number = 1;
  h.first_lsn = 10;
  EncodeSegmentHeader(h, &file);
  std::vector<std::string> bodies(open.size());
  std::vector<CheckpointEntry> entries;
  for (size_t i = 0; i < open.size(); ++i) {
    EXPECT_TRUE(EncodePayload(open[i], &bodies[i]).ok());
    entries.push_back(CheckpointEntry{open[i].type, 5, bodies[i]});
  }
  std::string checkpoint;
  EncodeCheckpointPayload(1, true, entries, &checkpoint);
  AppendPhysicalRecord(&file, static_cast<uint8_t>(RecordType::kCheckpoint), 10, checkpoint);
  uint64_t lsn = 11;
  for (const LogRecord& r : records) {
    std::string payload;
    EXPECT_TRUE(EncodePayload(r, &payload).ok());
    AppendPhysicalRecord(&file, static_cast<uint8_t>(r.type), lsn++, payload);
  }
  return file;
}

internal::ReplayResult Replay(const std::string& segment, test::CollectingReporter* reporter) {
  internal::ReplayOptions ro;
  ro.reporter = reporter;
  return internal::ReplaySegments({internal::SegmentInput{"segment-1", 1, segment}}, ro);
}

TEST(ParticipantLog, ReplayRefusesAHistoryThatBreaksTheStateMachineAsDamage) {
  struct History {
    std::string what;
    std::vector<LogRecord> open, records;
  };
  const History histories[] = {
      {"a second Wait", {}, {ParticipantWait(1), ParticipantWait(1)}},
      {"PRE without a Wait", {}, {ParticipantPreCommit(1)}},
      {"commit, then rollback",
       {},
       {ParticipantWait(1), ParticipantDecision(1, Outcome::kCommitted),
        ParticipantDecision(1, Outcome::kRolledBack)}},
      {"PRE after a decision",
       {},
       {ParticipantDecision(1, Outcome::kRolledBack), ParticipantPreCommit(1)}},
      {"done of a commit the coordinator may not hold",
       {},
       {ParticipantWait(1), ParticipantDecision(1, Outcome::kCommitted), ParticipantDone(1)}},
      {"a checkpoint whose commit the coordinator may not hold, then done",
       {ParticipantWait(1), ParticipantDecision(1, Outcome::kCommitted)},
       {ParticipantDone(1)}},
      {"a checkpoint whose PRE has no Wait", {ParticipantPreCommit(1)}, {}},
      {"a checkpoint whose Wait is repeated", {ParticipantWait(1), ParticipantWait(1)}, {}},
  };
  for (const History& h : histories) {
    SCOPED_TRACE(h.what);
    const std::string segment = Segment(h.open, h.records);
    test::CollectingReporter reporter;
    internal::ReplayResult r = Replay(segment, &reporter);
    EXPECT_THAT(r.status, StatusIs(Code::kCorruption, AllOf(HasSubstr("segment-1 at offset"),
                                                            HasSubstr(TestBranch(1, 1).ToString()),
                                                            HasSubstr("must not presume abort"))));
    EXPECT_TRUE(r.state.damaged);
    EXPECT_EQ(reporter.reports.size(), 1u);
  }
  // The same records in an order the state machine allows replay cleanly.
  test::CollectingReporter reporter;
  internal::ReplayResult r =
      Replay(Segment({ParticipantWait(1), ParticipantPreCommit(1)},
                     {ParticipantDecision(1, Outcome::kCommitted),
                      ParticipantDecision(1, Outcome::kCommitted),
                      ParticipantDecisionCoordinatorKnows(1, Outcome::kCommitted),
                      ParticipantDecision(1, Outcome::kCommitted), ParticipantDone(1),
                      ParticipantWait(1)}),
             &reporter);
  EXPECT_THAT(r.status, IsOk());
  EXPECT_EQ(r.state.open_participants.at(TestBranch(1, 1)).type, RecordType::kParticipantWait);
}

// A checkpoint written before participant records existed (only decisions and heuristics)
// reads as before: the entry grammar did not change.
TEST(ParticipantLog, CheckpointWithoutParticipantsReadsAsBefore) {
  test::CollectingReporter reporter;
  internal::ReplayResult r =
      Replay(Segment({Decision(1), Heuristic(2)}, {ParticipantWait(3)}), &reporter);
  ASSERT_THAT(r.status, IsOk());
  EXPECT_EQ(r.state.open_decisions.size(), 1u);
  EXPECT_EQ(r.state.open_heuristics.size(), 1u);
  EXPECT_EQ(r.state.open_participants.size(), 1u);
}

// A type of the three-phase band that this version does not know stops replay, as any unknown
// type without the ignorable bit: the rule that makes an older reader stop at type 32.
TEST(ParticipantLog, ReplayStopsAtAThreePhaseTypeItDoesNotKnow) {
  std::string segment = Segment({}, {ParticipantWait(1)});
  std::string payload;
  ASSERT_TRUE(internal::EncodePayload(ParticipantPreCommit(1), &payload).ok());
  const uint8_t unknown = internal::kThreePhaseRecordTypes.last;
  ASSERT_FALSE(internal::IsKnownRecordType(unknown));
  internal::AppendPhysicalRecord(&segment, unknown, 12, payload);
  test::CollectingReporter reporter;
  internal::ReplayResult r = Replay(segment, &reporter);
  EXPECT_THAT(r.status, StatusIs(Code::kNotSupported, HasSubstr("unknown type 47")));
  EXPECT_TRUE(r.state.damaged);
  EXPECT_EQ(r.state.open_participants.size(), 1u) << "the state read before it is kept";
}

// Forgetting an undecided participant would lose its prepared branch's state (after a restart
// the agent would roll the branch back as an orphan while its peers may commit). The done record
// is refused before anything is written, lazily or not, and the log goes on working.
TEST(ParticipantLog, DoneOfAnUndecidedParticipantIsRefusedAndTheLogGoesOn) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  ASSERT_THAT(log->Append(ParticipantWait(1)), IsOk());
  ASSERT_THAT(log->Append(ParticipantWait(2)), IsOk());
  ASSERT_THAT(log->Append(ParticipantPreCommit(2)), IsOk());
  EXPECT_THAT(log->AppendLazy(ParticipantDone(1)),
              StatusIs(Code::kProto, HasSubstr("only a decided participant may be forgotten")));
  EXPECT_THAT(log->Append(ParticipantDone(2)),
              StatusIs(Code::kProto, HasSubstr("only a decided participant may be forgotten")));
  EXPECT_EQ(log->State().open_participants.size(), 2u);
  ASSERT_THAT(log->Append(ParticipantDecision(1, Outcome::kRolledBack)), IsOk());
  ASSERT_THAT(log->AppendLazy(ParticipantDone(1)), IsOk());
  ASSERT_THAT(log->Append(ParticipantDecisionCoordinatorKnows(2, Outcome::kCommitted)), IsOk());
  ASSERT_THAT(log->Append(ParticipantDone(2)), IsOk());
  EXPECT_TRUE(log->State().open_participants.empty());
  log.reset();
  Result<LogState> replayed = DecisionLog::ReadState(o);
  ASSERT_THAT(replayed, IsOk());
  EXPECT_TRUE(replayed->open_participants.empty());
  EXPECT_FALSE(replayed->damaged);
}

}  // namespace
}  // namespace xa
