// A log directory under careless and hostile hands, on the real file system: a deleted LOCK, a
// FIFO or a 100 GiB sparse file under a log file's name, a mistyped directory, a bit flipped in
// the last (acknowledged) record, a record with an absurd time. Nothing blocks, nothing aborts,
// nothing is created or dropped without being asked.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "log_test_util.h"
#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "recovery-log/log_tool.h"
#include "testutil/status_matchers.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa::internal {
namespace {

using test::Decision;
using test::End;
using test::IsOk;
using test::ScratchDir;
using test::StatusIs;
using test::TestXid;
using ::testing::AllOf;
using ::testing::HasSubstr;

LogOptions Options(const ScratchDir& dir) {
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 3;
  o.segment_size_bytes = 1024;  // small preallocated segments: a zero fill after the records
  return o;
}

// A closed log holding decisions 1..n in its newest segment; returns that segment's path.
std::string MakeLog(const ScratchDir& dir, uint64_t n) {
  auto log = DecisionLog::Open(Options(dir));
  EXPECT_THAT(log, IsOk());
  if (!log.ok()) return "";
  for (uint64_t i = 1; i <= n; ++i) EXPECT_TRUE((*log)->Append(Decision(i)).ok());
  log->reset();
  Result<DirListing> listing = ListLogDir(Env::Default(), dir.log_dir());
  EXPECT_TRUE(listing.ok() && !listing->segments.empty());
  return JoinPath(dir.log_dir(), SegmentFileName(listing->segments.back()));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

int RunTool(std::initializer_list<const char*> args, std::string* out, std::string* err) {
  std::vector<const char*> argv{"xa-log"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::ostringstream o, e;
  int code = RunXaLogTool(static_cast<int>(argv.size()), argv.data(), o, e);
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(LogDirSafety, DeletingLockDoesNotLetASecondWriterIn) {
  ScratchDir dir;
  auto owner = DecisionLog::Open(Options(dir));
  ASSERT_THAT(owner, IsOk());
  ASSERT_EQ(::unlink((dir.log_dir() + "/LOCK").c_str()), 0);
  auto second = DecisionLog::Open(Options(dir));
  ASSERT_THAT(second, StatusIs(Code::kBusy, HasSubstr("is held by process unknown")));
  // The owner keeps its log, and the refused open changed nothing of it.
  ASSERT_TRUE((*owner)->Append(Decision(1)).ok());
  owner->reset();
  auto reopened = DecisionLog::Open(Options(dir));
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ((*reopened)->State().open_decisions.size(), 1u);
}

TEST(LogDirSafety, FifoNamedLikeASegmentIsRefusedWithoutBlocking) {
  ScratchDir dir;
  MakeLog(dir, 1);
  std::string fifo = JoinPath(dir.log_dir(), SegmentFileName(0xff));
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(DecisionLog::Open(Options(dir)),
              StatusIs(Code::kConfig, AllOf(HasSubstr(fifo), HasSubstr("not a regular file"))));
  EXPECT_THAT(DecisionLog::ReadState(Options(dir)),
              StatusIs(Code::kIoError, AllOf(HasSubstr(fifo), HasSubstr("not a regular file"))));
  std::string out, err;
  EXPECT_EQ(RunTool({"dump", dir.log_dir().c_str()}, &out, &err), kExitUnreadable) << err;
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
}

TEST(LogDirSafety, FifoNamedLockIsRefusedWithoutBlocking) {
  ScratchDir dir;
  MakeLog(dir, 1);
  std::string lock = dir.log_dir() + "/LOCK";
  ASSERT_EQ(::unlink(lock.c_str()), 0);
  ASSERT_EQ(::mkfifo(lock.c_str(), 0600), 0);
  EXPECT_THAT(DecisionLog::Open(Options(dir)),
              StatusIs(Code::kConfig, AllOf(HasSubstr(lock), HasSubstr("not a regular file"))));
  std::string out, err;
  EXPECT_EQ(RunTool({"stats", dir.log_dir().c_str()}, &out, &err), kExitOk) << err;
}

TEST(LogDirSafety, HugeSparseSegmentIsRefusedNotAllocated) {
  ScratchDir dir;
  std::string segment = MakeLog(dir, 1);
  ASSERT_EQ(::truncate(segment.c_str(), 100ll << 30), 0)
      << "the file system must allow sparse files";
  EXPECT_THAT(DecisionLog::Open(Options(dir)),
              StatusIs(Code::kIoError, AllOf(HasSubstr(segment), HasSubstr("107374182400 bytes"))));
  EXPECT_THAT(DecisionLog::ReadState(Options(dir)), StatusIs(Code::kIoError));
  std::string out, err;
  EXPECT_EQ(RunTool({"verify", dir.log_dir().c_str()}, &out, &err), kExitUnreadable) << err;
  EXPECT_NE(err.find("more than the"), std::string::npos) << err;
}

TEST(LogDirSafety, HugeSparseLockIsNeitherReadNorAFailure) {
  ScratchDir dir;
  MakeLog(dir, 2);
  std::string lock = dir.log_dir() + "/LOCK";
  ASSERT_EQ(::truncate(lock.c_str(), 100ll << 30), 0);
  std::string out, err;
  EXPECT_EQ(RunTool({"stats", dir.log_dir().c_str()}, &out, &err), kExitOk) << err;
  EXPECT_NE(out.find("open decisions: 2"), std::string::npos) << out;
  // The owner rewrites it with its pid.
  auto log = DecisionLog::Open(Options(dir));
  ASSERT_THAT(log, IsOk());
  EXPECT_EQ(Slurp(lock), std::to_string(::getpid()) + "\n");
}

TEST(LogDirSafety, AMissingOrEmptyDirectoryIsNoLogAndIsNeverCreated) {
  ScratchDir dir;
  LogOptions o = Options(dir);
  o.create_if_missing = false;
  EXPECT_THAT(DecisionLog::Open(o),
              StatusIs(Code::kConfig, AllOf(HasSubstr("no decision log at " + o.dir),
                                            HasSubstr("no such directory"))));
  EXPECT_THAT(DecisionLog::ReadState(o), StatusIs(Code::kConfig, HasSubstr("no such directory")));
  EXPECT_THAT(DecisionLog::OpenReadOnly(o), StatusIs(Code::kConfig));
  std::string out, err;
  EXPECT_EQ(RunTool({"dump", o.dir.c_str()}, &out, &err), kExitNoLog) << err;
  EXPECT_FALSE(std::filesystem::exists(o.dir)) << "nothing may create the log unasked";

  ASSERT_EQ(::mkdir(o.dir.c_str(), 0700), 0);
  EXPECT_THAT(DecisionLog::Open(o), StatusIs(Code::kConfig, HasSubstr("holds no segment")));
  EXPECT_THAT(DecisionLog::ReadState(o), StatusIs(Code::kConfig, HasSubstr("holds no segment")));
  EXPECT_EQ(RunTool({"stats", o.dir.c_str()}, &out, &err), kExitNoLog) << err;
  EXPECT_TRUE(std::filesystem::is_empty(o.dir));

  // Asked for, the log is created (the default, for a manager starting a new node).
  o.create_if_missing = true;
  { ASSERT_THAT(DecisionLog::Open(o), IsOk()); }
  o.create_if_missing = false;
  EXPECT_THAT(DecisionLog::Open(o), IsOk());
}

// The damage the issue of a torn tail was confused with: a bit flipped in the last record after
// its fdatasync. The record is complete in length: it may be an acknowledged commit decision.
TEST(LogDirSafety, BitFlipInTheFinalCommitDecisionIsRefusedNotTruncated) {
  ScratchDir dir;
  std::string segment = MakeLog(dir, 3);
  std::string contents = Slurp(segment);
  std::vector<uint64_t> offsets;
  ReplayOptions ro;
  ro.visit = [&](const ReplayEvent& e) { offsets.push_back(e.offset); };
  ASSERT_TRUE(ReplaySegments({SegmentInput{segment, 1, contents}}, ro).status.ok());
  const uint64_t last = offsets.back();
  contents[last + kRecordHeaderSize + 20] ^= 0x04;
  Spit(segment, contents);

  for (LogRecoveryMode mode :
       {LogRecoveryMode::kTolerateCorruptedTail, LogRecoveryMode::kAbsoluteConsistency}) {
    LogOptions o = Options(dir);
    o.recovery_mode = mode;
    EXPECT_THAT(DecisionLog::Open(o),
                StatusIs(Code::kCorruption,
                         AllOf(HasSubstr(segment), HasSubstr("offset " + std::to_string(last)),
                               HasSubstr("complete in length"),
                               HasSubstr("truncate -s " + std::to_string(last)))));
    EXPECT_EQ(Slurp(segment), contents) << "a refused log was modified";
  }
  Result<LogState> state = DecisionLog::ReadState(Options(dir));
  ASSERT_THAT(state, IsOk());
  EXPECT_TRUE(state->damaged);
  EXPECT_EQ(state->open_decisions.size(), 2u);
  EXPECT_TRUE(state->open_decisions.count(TestXid(2)));
}

TEST(LogDirSafety, EveryFlippedBitOfAFinalDecisionIsRefusedNeverDropped) {
  ScratchDir dir;
  std::string segment = MakeLog(dir, 2);
  const std::string contents = Slurp(segment);
  std::vector<std::pair<uint64_t, uint64_t>> records;  // offset, size
  ReplayOptions ro;
  ro.visit = [&](const ReplayEvent& e) { records.emplace_back(e.offset, e.size); };
  ASSERT_TRUE(ReplaySegments({SegmentInput{segment, 1, contents}}, ro).status.ok());
  const auto [last, size] = records.back();
  for (uint64_t byte = last; byte < last + size; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = contents;
      damaged[byte] = static_cast<char>(damaged[byte] ^ (1 << bit));
      ReplayResult r = ReplaySegments({SegmentInput{segment, 1, damaged}}, {});
      ASSERT_EQ(r.status.code(), Code::kCorruption) << "byte " << byte << " bit " << bit;
      EXPECT_TRUE(r.state.damaged) << byte;
      EXPECT_FALSE(r.segments.back().torn_tail) << byte;
      EXPECT_EQ(r.state.open_decisions.size(), 1u) << byte;
    }
  }
}

TEST(LogDirSafety, AWriteThatStoppedInsideTheFinalRecordIsStillATornTail) {
  ScratchDir dir;
  std::string segment = MakeLog(dir, 2);
  const std::string contents = Slurp(segment);
  std::vector<std::pair<uint64_t, uint64_t>> records;
  ReplayOptions ro;
  ro.visit = [&](const ReplayEvent& e) { records.emplace_back(e.offset, e.size); };
  ASSERT_TRUE(ReplaySegments({SegmentInput{segment, 1, contents}}, ro).status.ok());
  const auto [last, size] = records.back();
  // The bytes after the stop read as zeros (the preallocated fill), at every stop.
  for (uint64_t written = 1; written < size; ++written) {
    std::string torn = contents;
    for (uint64_t i = last + written; i < last + size; ++i) torn[i] = '\0';
    ReplayResult r = ReplaySegments({SegmentInput{segment, 1, torn}}, {});
    if (torn.substr(last, size).find_first_not_of('\0') == std::string::npos) continue;
    ASSERT_TRUE(r.status.ok()) << written << ": " << r.status.ToString();
    EXPECT_TRUE(r.segments.back().torn_tail) << written;
    EXPECT_EQ(r.state.open_decisions.size(), 1u) << written;
  }
}

TEST(LogDirSafety, OutOfRangeTimesAreShownNotConverted) {
  EXPECT_EQ(RenderUtcTime(INT64_MIN), "out-of-range(" + std::to_string(INT64_MIN) + ")");
  EXPECT_EQ(RenderUtcTime(INT64_MAX), "out-of-range(" + std::to_string(INT64_MAX) + ")");
  EXPECT_EQ(RenderUtcTime(-1), "out-of-range(-1)");
  EXPECT_EQ(RenderUtcTime(0), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(RenderUtcTime(253402300799999999), "9999-12-31T23:59:59.999999Z");
  LogRecord r = Decision(1);
  r.timestamp_us = INT64_MIN;
  std::ostringstream text, json;
  RenderRecordText(r, text);
  RenderRecordJson(r, json);
  EXPECT_NE(text.str().find("time=out-of-range("), std::string::npos) << text.str();
  EXPECT_NE(json.str().find("\"timestamp_us\":" + std::to_string(INT64_MIN)), std::string::npos);
}

}  // namespace
}  // namespace xa::internal
