// DecisionLog: state semantics, reopen, permissions, the lock, failures that refuse appends,
// rotation that keeps the log bounded, and crashes at every step of rotation.

#include "xa/decision_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "log_test_util.h"
#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "testutil/fault_injection_env.h"
#include "testutil/status_matchers.h"
#include "xa/env.h"

namespace xa {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::CollectingReporter;
using test::Decision;
using test::End;
using test::FaultInjectionEnv;
using test::Heuristic;
using test::HeuristicCleared;
using test::IsOk;
using test::NoSyncEnv;
using test::ScratchDir;
using test::StatusIs;
using test::TccConfirm;
using test::TccEnd;
using test::TccTry;
using test::TestTccXid;
using test::TestXid;

LogOptions Options(const ScratchDir& dir, Env* env = nullptr) {
  return test::LogOptionsIn(dir, 11, env);
}
using test::OpenOrDie;

uint32_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

size_t SegmentCount(const std::string& dir) {
  Result<internal::DirListing> l = internal::ListLogDir(Env::Default(), dir);
  EXPECT_TRUE(l.ok());
  return l.ok() ? l->segments.size() : 0;
}

TEST(DecisionLog, EveryRecordKindSurvivesReopenWithItsContent) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  std::vector<LogRecord> appended;
  LogRecord pre = Decision(2, Protocol::kThreePhase);
  pre.type = RecordType::kPreCommit;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    uint64_t previous = 0;
    for (const LogRecord& r : {Decision(1), pre, Heuristic(3), Heuristic(4), HeuristicCleared(4),
                               Decision(5), End(5)}) {
      Result<uint64_t> lsn = log->Append(r);
      ASSERT_THAT(lsn, IsOk());
      EXPECT_GT(*lsn, previous);
      previous = *lsn;
      appended.push_back(r);
      appended.back().lsn = *lsn;
    }
    LogState s = log->State();
    EXPECT_EQ(s.last_lsn, previous);
    ASSERT_EQ(s.open_decisions.size(), 2u);
    EXPECT_EQ(s.open_decisions.at(TestXid(2)).type, RecordType::kPreCommit);
    EXPECT_EQ(s.open_decisions.at(TestXid(1)).participants, Decision(1).participants);
    ASSERT_EQ(s.open_heuristics.size(), 1u);
    EXPECT_EQ(s.open_heuristics.at(TestXid(3)).reason, Heuristic(3).reason);
    EXPECT_EQ(s.open_heuristics.at(TestXid(3)).outcome, Outcome::kHeuristicMixed);
  }
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  LogState s = log->State();
  ASSERT_EQ(s.open_decisions.size(), 2u);
  ASSERT_EQ(s.open_heuristics.size(), 1u);
  LogRecord d1 = s.open_decisions.at(TestXid(1));
  EXPECT_EQ(d1.lsn, appended[0].lsn);
  d1.timestamp_us = 0;
  EXPECT_EQ(d1, appended[0]);
  EXPECT_EQ(s.open_decisions.at(TestXid(2)).protocol, Protocol::kThreePhase);
  EXPECT_GT(s.last_lsn, appended.back().lsn);  // the new segment's checkpoint has an LSN

  // Scan visits the records still on disk in LSN order, with the content appended.
  std::vector<LogRecord> scanned;
  ASSERT_TRUE(log->Scan([&](const LogRecord& r) { scanned.push_back(r); }).ok());
  ASSERT_GE(scanned.size(), 1u);
  for (size_t i = 1; i < scanned.size(); ++i) EXPECT_GT(scanned[i].lsn, scanned[i - 1].lsn);
  std::set<uint64_t> lsns;
  for (const LogRecord& r : scanned) {
    lsns.insert(r.lsn);
    for (const LogRecord& a : appended) {
      if (a.lsn == r.lsn) {
        LogRecord copy = r;
        copy.timestamp_us = 0;
        EXPECT_EQ(copy, a);
        EXPECT_GT(r.timestamp_us, 0);
      }
    }
  }
  EXPECT_TRUE(lsns.count(appended[0].lsn));  // the open decision's own record is kept
}

TEST(DecisionLog, EndForgetsTheDecisionAndClearedForgetsTheHeuristic) {
  ScratchDir dir;
  auto log = OpenOrDie(Options(dir));
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Decision(1)).ok());
  ASSERT_TRUE(log->Append(Heuristic(1)).ok());
  EXPECT_EQ(log->State().open_decisions.size(), 1u);
  ASSERT_TRUE(log->Append(End(1)).ok());
  EXPECT_TRUE(log->State().open_decisions.empty());
  EXPECT_EQ(log->State().open_heuristics.size(), 1u);  // a heuristic outlives the end
  ASSERT_TRUE(log->Append(HeuristicCleared(1)).ok());
  EXPECT_TRUE(log->State().open_heuristics.empty());
}

TEST(DecisionLog, AppendRefusesCheckpointsAndEmptyXids) {
  ScratchDir dir;
  auto log = OpenOrDie(Options(dir));
  ASSERT_NE(log, nullptr);
  LogRecord cp = Decision(1);
  cp.type = RecordType::kCheckpoint;
  EXPECT_EQ(log->Append(cp).status().code(), Code::kInval);
  LogRecord empty;
  EXPECT_EQ(log->Append(empty).status().code(), Code::kInval);
  EXPECT_TRUE(log->Append(Decision(1)).ok());  // a refused record does not fail the log
}

// --- TCC transactions -------------------------------------------------------------------------

TEST(DecisionLog, TccTransactionsSurviveReopenWithTheirPayloads) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  const std::vector<std::string> zeros_and_empty = {std::string(5, '\0'), ""};
  LogState live;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    ASSERT_THAT(log->Append(TccTry(1)), IsOk());                   // trying
    ASSERT_THAT(log->Append(TccTry(2, zeros_and_empty)), IsOk());  // confirmed
    ASSERT_THAT(log->Append(TccConfirm(2, zeros_and_empty)), IsOk());
    ASSERT_THAT(log->Append(TccTry(3)), IsOk());  // cancelled and ended
    ASSERT_THAT(log->AppendLazy(TccEnd(3)), IsOk());
    ASSERT_THAT(log->Append(TccTry(4)), IsOk());  // confirmed and ended
    ASSERT_THAT(log->Append(TccConfirm(4)), IsOk());
    ASSERT_THAT(log->Append(TccEnd(4)), IsOk());
    ASSERT_THAT(log->Append(Decision(1)), IsOk());  // a 2PC decision alongside, untouched
    live = log->State();
    ASSERT_EQ(live.open_tcc.size(), 2u);
    EXPECT_EQ(live.open_tcc.at(TestTccXid(1)).type, RecordType::kTccTry);
    EXPECT_EQ(live.open_tcc.at(TestTccXid(2)).type, RecordType::kTccConfirm);
    EXPECT_EQ(live.open_decisions.size(), 1u);
  }
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  LogState s = log->State();
  EXPECT_EQ(s.open_tcc, live.open_tcc) << "the same records, LSNs and timestamps";
  const LogRecord& confirmed = s.open_tcc.at(TestTccXid(2));
  EXPECT_EQ(confirmed.payloads, zeros_and_empty);
  EXPECT_EQ(confirmed.participants, TccConfirm(2, zeros_and_empty).participants);
  EXPECT_EQ(confirmed.protocol, Protocol::kTcc);
  EXPECT_EQ(s.open_tcc.at(TestTccXid(1)).payloads, test::DefaultTccPayloads());
  EXPECT_EQ(s.open_decisions.size(), 1u);
  Result<LogState> read = DecisionLog::ReadState(o);
  ASSERT_THAT(read, IsOk());
  EXPECT_EQ(read->open_tcc, live.open_tcc);
}

TEST(DecisionLog, AppendRefusesATccRecordReplayWouldRefuseAndWritesNothing) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  uint64_t written = 0;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    ASSERT_THAT(log->Append(TccTry(1)), IsOk());
    ASSERT_THAT(log->Append(TccTry(2)), IsOk());
    ASSERT_THAT(log->Append(TccConfirm(2)), IsOk());
    written = 3;
    const LogState before = log->State();
    // The state's refusals (XAER_PROTO): a decision never goes back, a Try is logged once.
    EXPECT_THAT(log->Append(TccTry(1)),
                StatusIs(Code::kProto, AllOf(HasSubstr("logs its Try once"), HasSubstr(o.dir),
                                             HasSubstr(TestTccXid(1).ToString()))));
    EXPECT_THAT(log->Append(TccTry(2)),
                StatusIs(Code::kProto, HasSubstr("a decision never goes back")));
    // The codec's (XAER_INVAL): beyond the format's limits.
    EXPECT_THAT(log->Append(TccTry(3, {std::string(internal::kMaxTccPayloadSize + 1, 'p')})),
                StatusIs(Code::kInval, HasSubstr("payload of 65537 bytes")));
    const std::vector<std::string> too_much(internal::kMaxLogicalPayloadSize /
                                                    internal::kMaxTccPayloadSize +
                                                1,
                                            std::string(internal::kMaxTccPayloadSize, 'p'));
    EXPECT_THAT(log->Append(TccTry(3, too_much)),
                StatusIs(Code::kInval, HasSubstr("above the log's limit")));
    LogRecord no_participant = TccTry(3);
    no_participant.participants.clear();
    no_participant.payloads.clear();
    EXPECT_THAT(log->Append(no_participant), StatusIs(Code::kInval));
    // Not a record whose loss is harmless: never lazy.
    EXPECT_THAT(log->AppendLazy(TccTry(3)), StatusIs(Code::kInval));
    EXPECT_THAT(log->AppendLazy(TccConfirm(1)), StatusIs(Code::kInval));
    EXPECT_EQ(log->State().last_lsn, before.last_lsn);
    EXPECT_EQ(log->State().open_tcc, before.open_tcc);
    // A refusal does not fail the log.
    ASSERT_THAT(log->Append(TccConfirm(1)), IsOk());
    ++written;
  }
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  uint64_t scanned = 0;
  ASSERT_THAT(log->Scan([&](const LogRecord&) { ++scanned; }), IsOk());
  EXPECT_EQ(scanned, written);
  EXPECT_EQ(log->State().open_tcc.at(TestTccXid(1)).type, RecordType::kTccConfirm);
}

// Checkpoints carry every open TCC transaction into each new segment (its newest record), and
// the segment of its first record is kept until its end record: deleted only then.
TEST(DecisionLog, OpenTccTransactionKeepsItsSegmentAcrossRotationsUntilItsEnd) {
  ScratchDir dir;
  NoSyncEnv env;
  LogOptions o = Options(dir, &env);
  o.segment_size_bytes = 1024;
  o.preallocate_segments = false;
  uint64_t first_segment = 0;
  auto segment_exists = [&](uint64_t number) {
    Result<internal::DirListing> l = internal::ListLogDir(&env, o.dir);
    EXPECT_THAT(l, IsOk());
    return l.ok() && std::find(l->segments.begin(), l->segments.end(), number) != l->segments.end();
  };
  auto traffic = [&](DecisionLog* log, uint64_t from) {
    for (uint64_t i = from; i < from + 40; ++i) {
      ASSERT_THAT(log->Append(Decision(i)), IsOk());
      ASSERT_THAT(log->Append(End(i)), IsOk());
    }
  };
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    Result<internal::DirListing> l = internal::ListLogDir(&env, o.dir);
    ASSERT_THAT(l, IsOk());
    first_segment = l->segments.back();
    ASSERT_THAT(log->Append(TccTry(1, {std::string(4, '\0'), ""})), IsOk());  // stays trying
    ASSERT_THAT(log->Append(TccTry(2)), IsOk());  // confirmed in a later segment
    traffic(log.get(), 1000);
    ASSERT_THAT(log->Append(TccConfirm(2)), IsOk());
    traffic(log.get(), 2000);
    EXPECT_TRUE(segment_exists(first_segment)) << "it holds the first records of open TCC "
                                                  "transactions";
    EXPECT_LE(SegmentCount(o.dir), 3u) << "the segments between are deleted";
  }
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    LogState s = log->State();
    ASSERT_EQ(s.open_tcc.size(), 2u);
    EXPECT_EQ(s.open_tcc.at(TestTccXid(1)).type, RecordType::kTccTry);
    EXPECT_EQ(s.open_tcc.at(TestTccXid(1)).payloads,
              (std::vector<std::string>{std::string(4, '\0'), ""}));
    EXPECT_EQ(s.open_tcc.at(TestTccXid(2)).type, RecordType::kTccConfirm);
    // Replay from the newest segments alone: their checkpoints carry both transactions.
    traffic(log.get(), 3000);
    EXPECT_TRUE(segment_exists(first_segment)) << "still open after a reopen";
    EXPECT_EQ(log->State().open_tcc, s.open_tcc);
    // Both end (one lazily): the first segment is deleted at the next rotation.
    ASSERT_THAT(log->AppendLazy(TccEnd(1)), IsOk());
    ASSERT_THAT(log->Append(TccEnd(2)), IsOk());
    EXPECT_TRUE(log->State().open_tcc.empty());
    traffic(log.get(), 4000);
    EXPECT_FALSE(segment_exists(first_segment));
    EXPECT_LE(SegmentCount(o.dir), 2u);
  }
  Result<LogState> read = DecisionLog::ReadState(o);
  ASSERT_THAT(read, IsOk());
  EXPECT_TRUE(read->open_tcc.empty());
  EXPECT_FALSE(read->damaged);
}

TEST(DecisionLog, CreatesAPrivateDirectoryAndPrivateFiles) {
  ScratchDir dir;
  ::umask(0);  // even with a permissive umask
  auto log = OpenOrDie(Options(dir));
  ::umask(022);
  ASSERT_NE(log, nullptr);
  EXPECT_EQ(ModeOf(dir.log_dir()), 0700u);
  for (const auto& entry : std::filesystem::directory_iterator(dir.log_dir())) {
    EXPECT_EQ(ModeOf(entry.path()), 0600u) << entry.path();
  }
}

TEST(DecisionLog, RefusesADirectoryOthersCanWrite) {
  for (mode_t mode : {0770, 0702, 0777}) {
    ScratchDir dir;
    ASSERT_EQ(::mkdir(dir.log_dir().c_str(), 0700), 0);
    ASSERT_EQ(::chmod(dir.log_dir().c_str(), mode), 0);
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_THAT(log, StatusIs(Code::kConfig, HasSubstr("chmod 700"))) << std::oct << mode;
  }
}

TEST(DecisionLog, RefusesASegmentOthersCanWrite) {
  ScratchDir dir;
  { ASSERT_NE(OpenOrDie(Options(dir)), nullptr); }
  for (const auto& entry : std::filesystem::directory_iterator(dir.log_dir())) {
    if (entry.path().extension() == ".xalog") ::chmod(entry.path().c_str(), 0660);
  }
  auto log = DecisionLog::Open(Options(dir));
  ASSERT_THAT(log, StatusIs(Code::kConfig, HasSubstr("chmod 600")));
}

TEST(DecisionLog, RefusesSymbolicLinks) {
  ScratchDir dir;
  std::string real = dir.path() + "/real";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), dir.log_dir().c_str()), 0);
  auto log = DecisionLog::Open(Options(dir));
  ASSERT_THAT(log, StatusIs(Code::kConfig, HasSubstr("symbolic link")));
  // Written with trailing slashes, the link is still a link (lstat of "link/" would follow it),
  // for the writer, the reader and the existence check alike.
  LogOptions slashed = Options(dir);
  slashed.dir += "//";
  EXPECT_THAT(DecisionLog::Open(slashed), StatusIs(Code::kConfig, HasSubstr("symbolic link")));
  EXPECT_THAT(DecisionLog::OpenReadOnly(slashed),
              StatusIs(Code::kConfig, HasSubstr("symbolic link")));
  EXPECT_THAT(DecisionLog::CheckExists(slashed),
              StatusIs(Code::kConfig, HasSubstr("symbolic link")));
  EXPECT_EQ(::access((real + "/LOCK").c_str(), F_OK), -1) << "nothing was created behind the link";

  // A segment replaced by a link to a file elsewhere.
  ScratchDir dir2;
  { ASSERT_NE(OpenOrDie(Options(dir2)), nullptr); }
  for (const auto& entry : std::filesystem::directory_iterator(dir2.log_dir())) {
    if (entry.path().extension() == ".xalog") {
      std::string moved = dir2.path() + "/elsewhere";
      std::filesystem::rename(entry.path(), moved);
      std::filesystem::create_symlink(moved, entry.path());
    }
  }
  log = DecisionLog::Open(Options(dir2));
  ASSERT_THAT(log, StatusIs(Code::kConfig));
}

TEST(DecisionLog, RefusesTheLogOfAnotherNode) {
  ScratchDir dir;
  { ASSERT_NE(OpenOrDie(Options(dir)), nullptr); }
  LogOptions o = Options(dir);
  o.node_id = 12;
  auto log = DecisionLog::Open(o);
  ASSERT_THAT(log, StatusIs(Code::kConfig, HasSubstr("belongs to node 11")));
}

TEST(DecisionLog, SecondProcessIsRefusedTheLockWithTheHoldersPid) {
  ScratchDir dir;
  auto log = OpenOrDie(Options(dir));
  ASSERT_NE(log, nullptr);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto other = DecisionLog::Open(Options(dir));
    std::string msg = other.ok() ? std::string("OPENED")
                                 : std::to_string(static_cast<int>(other.status().code())) + " " +
                                       other.status().message();
    ssize_t n = ::write(fds[1], msg.data(), msg.size());
    (void)n;
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_EQ(got.rfind(std::to_string(static_cast<int>(Code::kBusy)) + " ", 0), 0u) << got;
  EXPECT_NE(got.find("held by process " + std::to_string(::getpid())), std::string::npos) << got;
  // The holder is undisturbed.
  EXPECT_TRUE(log->Append(Decision(1)).ok());
}

TEST(DecisionLog, SecondOpenInTheSameProcessIsRefused) {
  ScratchDir dir;
  auto log = OpenOrDie(Options(dir));
  ASSERT_NE(log, nullptr);
  auto again = DecisionLog::Open(Options(dir));
  ASSERT_THAT(again, StatusIs(Code::kBusy));
}

TEST(DecisionLog, FailedFsyncRefusesEveryLaterAppendAndIsNeverRetried) {
  ScratchDir dir;
  FaultInjectionEnv env;
  auto log = OpenOrDie(Options(dir, &env));
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Decision(1)).ok());
  env.FailSync(true);
  Result<uint64_t> r = log->Append(Decision(2));
  ASSERT_THAT(r, StatusIs(Code::kLogFailed,
                          AllOf(HasSubstr("fdatasync"), HasSubstr("never retried"))));
  env.FailSync(false);  // the disk "recovers": the log must not
  uint64_t ops = env.mutating_ops();
  Result<uint64_t> later = log->Append(Decision(3));
  EXPECT_EQ(later.status().code(), Code::kLogFailed);
  EXPECT_EQ(env.mutating_ops(), ops) << "a failed log touched the disk again";
  EXPECT_EQ(log->State().open_decisions.size(), 1u);
}

TEST(DecisionLog, NoSpaceRefusesEveryLaterAppend) {
  ScratchDir dir;
  FaultInjectionEnv env;
  auto log = OpenOrDie(Options(dir, &env));
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Decision(1)).ok());
  env.FailWritesWithNoSpace(true);
  Result<uint64_t> r = log->Append(Decision(2));
  ASSERT_THAT(r, StatusIs(Code::kLogFailed, HasSubstr("No space left on device")));
  env.FailWritesWithNoSpace(false);
  EXPECT_EQ(log->Append(End(1)).status().code(), Code::kLogFailed);
  log.reset();
  // After a restart the acknowledged decision is there.
  auto reopened = OpenOrDie(Options(dir));
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->State().open_decisions.size(), 1u);
}

TEST(DecisionLog, TornWriteIsTruncatedAtReopenAndAcknowledgedRecordsStay) {
  ScratchDir dir;
  FaultInjectionEnv env;
  auto log = OpenOrDie(Options(dir, &env));
  ASSERT_NE(log, nullptr);
  ASSERT_TRUE(log->Append(Decision(1)).ok());
  env.TearWriteAfter(9);
  EXPECT_EQ(log->Append(Decision(2)).status().code(), Code::kLogFailed);
  log.reset();
  CollectingReporter reporter;
  LogOptions o = Options(dir);
  o.reporter = &reporter;
  auto reopened = OpenOrDie(o);
  ASSERT_NE(reopened, nullptr);
  LogState s = reopened->State();
  EXPECT_EQ(s.open_decisions.size(), 1u);
  EXPECT_TRUE(s.open_decisions.count(TestXid(1)));
  ASSERT_EQ(reporter.reports.size(), 1u);
  EXPECT_EQ(reporter.reports[0].bytes, 9u);
}

TEST(DecisionLog, PreallocatedSpaceIsUnusedSpaceNotDamage) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  o.segment_size_bytes = 64 << 10;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(log->Append(Decision(i)).ok());
  }
  uint64_t biggest = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.log_dir())) {
    if (entry.path().extension() == ".xalog") {
      biggest = std::max<uint64_t>(biggest, entry.file_size());
    }
  }
  EXPECT_GE(biggest, 64u << 10) << "segments are preallocated";
  CollectingReporter reporter;
  o.reporter = &reporter;
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(reporter.reports.empty()) << reporter.reports[0].reason.ToString();
  EXPECT_EQ(log->State().open_decisions.size(), 3u);
}

TEST(DecisionLog, RotationAndDeletionKeepTheLogBoundedUnderSteadyLoad) {
  ScratchDir dir;
  NoSyncEnv env;
  LogOptions o = Options(dir, &env);
  o.segment_size_bytes = 16 << 10;
  std::set<Xid> stuck;  // decisions whose branches never finish
  size_t max_segments = 0;
  {
    auto log = OpenOrDie(o);
    ASSERT_NE(log, nullptr);
    for (uint64_t i = 1; i <= 100000; ++i) {
      ASSERT_TRUE(log->Append(Decision(i)).ok());
      if (i % 20000 == 7) {
        stuck.insert(TestXid(i));
      } else {
        ASSERT_TRUE(log->Append(End(i)).ok());
      }
      if (i % 500 == 0) max_segments = std::max(max_segments, SegmentCount(o.dir));
    }
    LogState s = log->State();
    ASSERT_EQ(s.open_decisions.size(), stuck.size());
    for (const Xid& x : stuck) EXPECT_TRUE(s.open_decisions.count(x));
  }
  // 200,000 records of ~150 bytes are ~2,000 segments of 16 KiB; what remains is the current
  // segment plus the few that hold the first record of a stuck decision.
  EXPECT_LE(max_segments, stuck.size() + 3);
  auto log = OpenOrDie(o);
  ASSERT_NE(log, nullptr);
  LogState s = log->State();
  ASSERT_EQ(s.open_decisions.size(), stuck.size());
  for (const Xid& x : stuck) EXPECT_TRUE(s.open_decisions.count(x));
  EXPECT_LE(SegmentCount(o.dir), stuck.size() + 2);
}

// Crashes the filesystem at every mutating step of a scenario with several rotations (and of
// the open that precedes it), drops what was not synced, and checks that no acknowledged
// decision is lost and that no acknowledged end is forgotten.
TEST(DecisionLog, CrashAtEveryStepOfRotationNeverLosesADecision) {
  auto scenario = [](FaultInjectionEnv* env, const LogOptions& o, std::set<uint64_t>* acked,
                     std::set<uint64_t>* ended, std::set<uint64_t>* end_attempted) {
    auto log = DecisionLog::Open(o);
    if (!log.ok()) return;
    for (uint64_t i = 1; i <= 60; ++i) {
      if (!(*log)->Append(Decision(i)).ok()) return;
      acked->insert(i);
      if (i % 3 != 0) {  // every third decision stays open across rotations
        end_attempted->insert(i);
        if (!(*log)->Append(End(i)).ok()) return;
        ended->insert(i);
      }
    }
    (void)env;
  };
  // A dry run counts the steps.
  uint64_t total_ops;
  {
    ScratchDir dir;
    NoSyncEnv fast;
    FaultInjectionEnv env(&fast);
    LogOptions o = Options(dir, &env);
    o.segment_size_bytes = 1024;
    std::set<uint64_t> a, e, t;
    scenario(&env, o, &a, &e, &t);
    ASSERT_EQ(a.size(), 60u);
    total_ops = env.mutating_ops();
    EXPECT_GT(SegmentCount(o.dir), 1u);
  }
  ASSERT_GT(total_ops, 100u);
  for (uint64_t crash_at = 1; crash_at <= total_ops; ++crash_at) {
    ScratchDir dir;
    // The fault env models durability itself (what was synced survives DropUnsyncedData), so
    // the real fsyncs underneath are skipped to keep the test quick.
    NoSyncEnv fast;
    FaultInjectionEnv env(&fast);
    LogOptions o = Options(dir, &env);
    o.segment_size_bytes = 1024;
    env.CrashAfterOps(crash_at);
    std::set<uint64_t> acked, ended, end_attempted;
    scenario(&env, o, &acked, &ended, &end_attempted);
    env.DropUnsyncedData();
    env.SetFilesystemActive(true);

    LogOptions reopen = Options(dir);
    reopen.segment_size_bytes = 1024;
    auto log = DecisionLog::Open(reopen);
    ASSERT_TRUE(log.ok()) << "crash at step " << crash_at << ": " << log.status().ToString();
    LogState s = (*log)->State();
    for (uint64_t i : acked) {
      bool open = s.open_decisions.count(TestXid(i)) > 0;
      if (ended.count(i)) {
        EXPECT_FALSE(open) << "crash at step " << crash_at << ": acknowledged end of " << i
                           << " forgotten";
      } else if (!end_attempted.count(i)) {
        EXPECT_TRUE(open) << "crash at step " << crash_at << ": acknowledged decision " << i
                          << " lost";
      }
    }
    // Nothing appears that was not appended, and nothing ended comes back.
    for (const auto& [xid, rec] : s.open_decisions) {
      bool known = false;
      for (uint64_t i = 1; i <= 60 && !known; ++i) {
        known = xid == TestXid(i) && !ended.count(i) && rec == [&] {
          LogRecord d = Decision(i);
          d.lsn = rec.lsn;
          d.timestamp_us = rec.timestamp_us;
          return d;
        }();
      }
      EXPECT_TRUE(known) << "crash at step " << crash_at << ": unexpected " << xid.ToString();
    }
    ASSERT_TRUE((*log)->Append(Decision(1000)).ok()) << "crash at step " << crash_at;
  }
}

}  // namespace
}  // namespace xa
