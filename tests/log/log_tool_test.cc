// The xa-log tool, run as a real second process: read-only on a live log, exit codes, --help.

#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "log_test_util.h"
#include "recovery-log/log_reader.h"
#include "recovery-log/log_tool.h"
#include "recovery-log/record_codec.h"
#include "src/base/coding.h"
#include "testutil/json_validator.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa {
namespace {

using test::Decision;
using test::End;
using test::Heuristic;
using test::ParticipantDecision;
using test::ParticipantDecisionCoordinatorKnows;
using test::ParticipantDone;
using test::ParticipantPreCommit;
using test::ParticipantWait;
using test::TestBranch;
using test::ScratchDir;
using test::TccConfirm;
using test::TccEnd;
using test::TccTry;
using test::TestTccXid;
using test::TestXid;

struct ToolRun {
  int exit_code;
  std::string out, err;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ToolRun RunTool(const ScratchDir& scratch, const std::string& args) {
  std::string out = scratch.path() + "/tool.out", err = scratch.path() + "/tool.err";
  std::string cmd = std::string(XA_LOG_TOOL) + " " + args + " >" + out + " 2>" + err;
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc)) << cmd;
  return ToolRun{WEXITSTATUS(rc), Slurp(out), Slurp(err)};
}

LogOptions Options(const ScratchDir& dir) {
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 5;
  return o;
}

TEST(XaLogTool, ReadsALiveLogWithoutTakingItsLock) {
  ScratchDir dir;
  auto log = DecisionLog::Open(Options(dir));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Append(Decision(1)).ok());
  ASSERT_TRUE((*log)->Append(Heuristic(2)).ok());
  ASSERT_TRUE((*log)->Append(Decision(3)).ok());
  ASSERT_TRUE((*log)->Append(End(3)).ok());

  ToolRun dump = RunTool(dir, "dump " + dir.log_dir());
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_NE(dump.out.find("type=commit-decision"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("xid=" + TestXid(1).ToString()), std::string::npos);
  EXPECT_NE(dump.out.find("participants=[mariadb-accounts:"), std::string::npos);
  EXPECT_NE(dump.out.find("reason=\"operator rolled back pg-ledger\""), std::string::npos);
  EXPECT_NE(dump.out.find("open_decisions=1 open_heuristics=1"), std::string::npos) << dump.out;
  EXPECT_NE(dump.err.find("in use by process " + std::to_string(::getpid())), std::string::npos)
      << dump.err;

  // The owner keeps its lock and its log.
  EXPECT_EQ(DecisionLog::Open(Options(dir)).status().code(), Code::kBusy);
  EXPECT_TRUE((*log)->Append(End(1)).ok());
  std::string lock_contents;
  ASSERT_TRUE(Env::Default()
                  ->ReadFile(dir.log_dir() + "/LOCK", &lock_contents,
                             internal::kMaxSegmentFileSize)
                  .ok());
  EXPECT_EQ(lock_contents, std::to_string(::getpid()) + "\n");
}

TEST(XaLogTool, DumpJsonKeepsUtf8TextAndIsValidWhateverTheBytes) {
  ScratchDir dir;
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Heuristic(1, "Zahlung f\xc3\xbcr M\xc3\xbcller \xe2\x82\xac 5")).ok());
    ASSERT_TRUE((*log)->Append(Heuristic(2, "broken \xff\xc3 and C1 \xc2\x9b[31m")).ok());
  }
  ToolRun dump = RunTool(dir, "dump --json " + dir.log_dir());
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(test::JsonValidator::Check(dump.out), "") << dump.out;
  // UTF-8 stays text, not one escape a byte.
  EXPECT_NE(dump.out.find("Zahlung f\xc3\xbcr M\xc3\xbcller \xe2\x82\xac 5"), std::string::npos)
      << dump.out;
  // Broken bytes become U+FFFD; the terminal's C1 control is escaped, never sent raw.
  EXPECT_NE(dump.out.find("broken \\ufffd\\ufffd and C1 \\u009b[31m"), std::string::npos)
      << dump.out;
}

TEST(XaLogTool, DumpJsonDescribesEveryRecord) {
  ScratchDir dir;
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Decision(1)).ok());
    ASSERT_TRUE((*log)->Append(Heuristic(2, "quote \" and backslash \\ and \x01")).ok());
  }
  ToolRun dump = RunTool(dir, "dump --json " + dir.log_dir());
  EXPECT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_EQ(dump.out.rfind("{\"log\":", 0), 0u) << dump.out;
  EXPECT_NE(dump.out.find("\"type\":\"commit-decision\""), std::string::npos);
  EXPECT_NE(dump.out.find("\"rm\":\"pg-ledger\""), std::string::npos);
  EXPECT_NE(dump.out.find("quote \\\" and backslash \\\\ and \\u0001"), std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("\"damaged\":false"), std::string::npos);
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < dump.out.size(); ++i) {
    char c = dump.out[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
      ASSERT_GE(depth, 0);
    }
  }
  EXPECT_EQ(depth, 0);
  EXPECT_FALSE(in_string);
}

TEST(XaLogTool, VerifyFailsOnDamageNamingFileAndOffset) {
  ScratchDir dir;
  uint64_t second_lsn;
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Decision(1)).ok());
    second_lsn = *(*log)->Append(Decision(2));
    ASSERT_TRUE((*log)->Append(Decision(3)).ok());
  }
  EXPECT_EQ(RunTool(dir, "verify " + dir.log_dir()).exit_code, 0);
  auto listing = internal::ListLogDir(Env::Default(), dir.log_dir());
  ASSERT_TRUE(listing.ok());
  std::string path = internal::JoinPath(
      dir.log_dir(), internal::SegmentFileName(listing->segments.back()));
  std::string contents;
  ASSERT_TRUE(Env::Default()->ReadFile(path, &contents, internal::kMaxSegmentFileSize).ok());
  // Find decision 2's record through a replay, then damage it.
  uint64_t offset = 0;
  internal::ReplayOptions ro;
  ro.visit = [&](const internal::ReplayEvent& e) {
    if (e.record.lsn == second_lsn) offset = e.offset;
  };
  std::vector<std::string> storage;
  ASSERT_TRUE(internal::ReplayDir(Env::Default(), dir.log_dir(), ro, &storage).status.ok());
  ASSERT_GT(offset, 0u);
  contents[offset + 20] ^= 0x40;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  ToolRun verify = RunTool(dir, "verify " + dir.log_dir());
  EXPECT_EQ(verify.exit_code, 1);
  EXPECT_NE(verify.out.find(path + " at offset " + std::to_string(offset)), std::string::npos)
      << verify.out;
  ToolRun dump = RunTool(dir, "dump " + dir.log_dir());
  EXPECT_EQ(dump.exit_code, 1);
  EXPECT_NE(dump.err.find("offset " + std::to_string(offset)), std::string::npos) << dump.err;
  ToolRun stats = RunTool(dir, "stats " + dir.log_dir());
  EXPECT_EQ(stats.exit_code, 1);
  EXPECT_NE(stats.out.find("DAMAGED"), std::string::npos);
}

TEST(XaLogTool, VerifyRefusesATornTailUnlessTold) {
  ScratchDir dir;
  {
    LogOptions o = Options(dir);
    o.preallocate_segments = false;  // the torn header follows the last record directly
    auto log = DecisionLog::Open(o);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Decision(1)).ok());
  }
  auto listing = internal::ListLogDir(Env::Default(), dir.log_dir());
  ASSERT_TRUE(listing.ok());
  std::string path = internal::JoinPath(
      dir.log_dir(), internal::SegmentFileName(listing->segments.back()));
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out << std::string("\x12\x34\x56", 3);  // the start of a record header
  }
  EXPECT_EQ(RunTool(dir, "verify " + dir.log_dir()).exit_code, 1);
  ToolRun tolerant = RunTool(dir, "verify --tolerate-tail " + dir.log_dir());
  EXPECT_EQ(tolerant.exit_code, 0) << tolerant.err;
  EXPECT_NE(tolerant.out.find("torn tail"), std::string::npos);
  Result<FileInfo> info = Env::Default()->Stat(path);
  ASSERT_TRUE(info.ok());
  std::string after;
  ASSERT_TRUE(Env::Default()->ReadFile(path, &after, internal::kMaxSegmentFileSize).ok());
  EXPECT_EQ(after.substr(after.size() - 3), std::string("\x12\x34\x56", 3))
      << "the tool wrote to the log";
}

TEST(XaLogTool, StatsCountsRecordsAndOpenTransactions) {
  ScratchDir dir;
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok());
    for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE((*log)->Append(Decision(i)).ok());
    for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE((*log)->Append(End(i)).ok());
  }
  ToolRun stats = RunTool(dir, "stats " + dir.log_dir());
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("commit-decision: 5"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("end: 3"), std::string::npos);
  EXPECT_NE(stats.out.find("open decisions: 2"), std::string::npos);
  ToolRun json = RunTool(dir, "stats --json " + dir.log_dir());
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_NE(json.out.find("\"open_decisions\":2"), std::string::npos) << json.out;
}

// An agent's log: every participant state, readable by an operator (state names, number,
// fence, read-only), in text and JSON, and summarised by state.
void WriteAgentLog(const ScratchDir& dir) {
  auto log = DecisionLog::Open(Options(dir));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  LogRecord read_only = ParticipantWait(1, 0, 2);
  read_only.read_only = true;
  read_only.fence_session_id = 0;
  ASSERT_TRUE((*log)->Append(read_only).ok());
  ASSERT_TRUE((*log)->Append(ParticipantWait(2)).ok());  // fence 4002, participant 1
  ASSERT_TRUE((*log)->Append(ParticipantPreCommit(2)).ok());
  ASSERT_TRUE((*log)->Append(ParticipantWait(3)).ok());
  ASSERT_TRUE((*log)->Append(ParticipantDecision(3, Outcome::kCommitted)).ok());
  ASSERT_TRUE((*log)->Append(ParticipantDecision(4, Outcome::kRolledBack, 0)).ok());
  ASSERT_TRUE((*log)->Append(ParticipantWait(5)).ok());
  ASSERT_TRUE(
      (*log)->Append(ParticipantDecisionCoordinatorKnows(5, Outcome::kCommitted)).ok());
  ASSERT_TRUE((*log)->Append(ParticipantDone(5)).ok());
}

TEST(XaLogTool, DumpShowsEveryParticipantStateReadably) {
  ScratchDir dir;
  WriteAgentLog(dir);
  ToolRun dump = RunTool(dir, "dump " + dir.log_dir());
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_NE(dump.out.find("type=participant-wait time="), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("xid=" + TestBranch(1, 0).ToString() +
                          " state=\"wait\" participant=0 fence_session=0 read_only=yes"),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("state=\"wait\" participant=1 fence_session=4002 read_only=no"),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("type=participant-pre-commit"), std::string::npos);
  EXPECT_NE(dump.out.find("state=\"pre-commit\""), std::string::npos);
  EXPECT_NE(dump.out.find("xid=" + TestBranch(3, 1).ToString() +
                          " state=\"decided commit\" coordinator_knows_outcome=no"),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("xid=" + TestBranch(5, 1).ToString() +
                          " state=\"decided commit\" coordinator_knows_outcome=yes"),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("xid=" + TestBranch(4, 0).ToString() +
                          " state=\"decided rollback\""),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("type=participant-done"), std::string::npos);
  EXPECT_NE(dump.out.find("state=\"done\""), std::string::npos);
  // The summary: four open participants, each in its current state.
  EXPECT_NE(dump.out.find("open_participants=4"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("# open participant: lsn="), std::string::npos);

  ToolRun json = RunTool(dir, "dump --json " + dir.log_dir());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(test::JsonValidator::Check(json.out), "") << json.out;
  EXPECT_NE(json.out.find("\"type\":\"participant-wait\""), std::string::npos);
  EXPECT_NE(json.out.find("\"state\":\"wait\",\"participant\":0,\"fence_session_id\":0,"
                          "\"read_only\":true"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"state\":\"decided rollback\",\"coordinator_knows_outcome\":false"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"state\":\"decided commit\",\"coordinator_knows_outcome\":true"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"open_participants\":4"), std::string::npos);
}

TEST(XaLogTool, StatsSummarisesParticipantsByState) {
  ScratchDir dir;
  WriteAgentLog(dir);
  ToolRun stats = RunTool(dir, "stats " + dir.log_dir());
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("participant-wait: 4"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("participant-pre-commit: 1"), std::string::npos);
  EXPECT_NE(stats.out.find("participant-decision: 3"), std::string::npos);
  EXPECT_NE(stats.out.find("participant-done: 1"), std::string::npos);
  EXPECT_NE(stats.out.find("open participants: 4 (wait 1, pre-commit 1, decided commit 1, "
                           "decided rollback 1)"),
            std::string::npos)
      << stats.out;
  ToolRun json = RunTool(dir, "stats --json " + dir.log_dir());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(test::JsonValidator::Check(json.out), "") << json.out;
  EXPECT_NE(json.out.find("\"open_participants\":4,\"open_participants_by_state\":{\"wait\":1,"
                          "\"pre-commit\":1,\"decided commit\":1,\"decided rollback\":1}"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"participant-done\":1"), std::string::npos);
}

// A log whose participant history breaks the state machine (written by another writer, or
// damaged in a way its checksum missed) is damage: verify names it and fails.
TEST(XaLogTool, VerifyFailsOnAParticipantHistoryReplayRefuses) {
  ScratchDir dir;
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(ParticipantWait(1)).ok());
    ASSERT_TRUE((*log)->Append(ParticipantDecision(1, Outcome::kCommitted)).ok());
  }
  // A second decision, rollback, after the commit: a valid record (checksum and all) that only
  // the state rule refuses.
  Result<internal::DirListing> listing = internal::ListLogDir(Env::Default(), dir.log_dir());
  ASSERT_TRUE(listing.ok());
  const std::string path =
      internal::JoinPath(dir.log_dir(), internal::SegmentFileName(listing->segments.front()));
  std::string contents;
  ASSERT_TRUE(Env::Default()->ReadFile(path, &contents, internal::kMaxSegmentFileSize).ok());
  std::string commit;
  LogRecord c = ParticipantDecision(1, Outcome::kCommitted);
  ASSERT_TRUE(internal::EncodePayload(c, &commit).ok());
  size_t at = contents.find(commit.substr(8));  // the payload after its timestamp
  ASSERT_NE(at, std::string::npos);
  at -= 8 + internal::kRecordHeaderSize;  // the record's header
  const uint64_t lsn = internal::DecodeFixed64(contents.data() + at + 9);
  std::string record;
  std::string payload = contents.substr(at + internal::kRecordHeaderSize, commit.size());
  payload.back() = static_cast<char>(Outcome::kRolledBack);
  internal::AppendPhysicalRecord(&record, static_cast<uint8_t>(RecordType::kParticipantDecision),
                                 lsn + 1, payload);
  contents.insert(at + internal::kRecordHeaderSize + commit.size(), record);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  ToolRun verify = RunTool(dir, "verify " + dir.log_dir());
  EXPECT_EQ(verify.exit_code, 1) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("DAMAGED"), std::string::npos) << verify.out;
  EXPECT_NE(verify.out.find("never changes"), std::string::npos) << verify.out;
}

// A TCC coordinator's log: transaction 1 trying, 2 confirmed with payloads an application may
// send (a terminal escape, quotes, a backslash, a zero and a byte that is not UTF-8), 3 tried and
// ended; reopened once, so that a checkpoint carries the open ones.
const std::string kHostilePayload("esc \x1b[31m \"q\" \\ \xc2\x9b", 18);
const std::string kBinaryPayload("\0\xff", 2);

void WriteTccLog(const ScratchDir& dir) {
  {
    auto log = DecisionLog::Open(Options(dir));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_TRUE((*log)->Append(TccTry(1)).ok());
    ASSERT_TRUE((*log)->Append(TccTry(2, {kHostilePayload, kBinaryPayload})).ok());
    ASSERT_TRUE((*log)->Append(TccConfirm(2, {kHostilePayload, kBinaryPayload})).ok());
    ASSERT_TRUE((*log)->Append(TccTry(3)).ok());
    ASSERT_TRUE((*log)->Append(TccEnd(3)).ok());
  }
  auto reopened = DecisionLog::Open(Options(dir));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
}

TEST(XaLogTool, DumpShowsTccRecordsWithTheirPayloadsEscaped) {
  ScratchDir dir;
  WriteTccLog(dir);
  ToolRun dump = RunTool(dir, "dump " + dir.log_dir());
  ASSERT_EQ(dump.exit_code, 0) << dump.err;
  EXPECT_NE(dump.out.find("type=tcc-try time="), std::string::npos) << dump.out;
  // Each participant with its name, its branch and its payload, quotes escaped.
  EXPECT_NE(dump.out.find(
                "xid=" + TestTccXid(1).ToString() +
                " protocol=TCC participants=[funds:" + TestTccXid(1).WithBranch(0).ToString() +
                " payload=\"{\\x22account\\x22:\\x22a-17\\x22,\\x22amount\\x22:250}\", points:" +
                TestTccXid(1).WithBranch(1).ToString() + " payload=\""),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("type=tcc-confirm"), std::string::npos);
  // Application bytes never reach the terminal raw: escapes, quotes, backslashes, zeros, C1.
  EXPECT_NE(dump.out.find("payload=\"esc \\x1b[31m \\x22q\\x22 \\x5c \\xc2\\x9b\""),
            std::string::npos)
      << dump.out;
  EXPECT_NE(dump.out.find("payload=\"\\x00\\xff\"]"), std::string::npos) << dump.out;
  EXPECT_EQ(dump.out.find('\x1b'), std::string::npos) << "a raw escape reached the terminal";
  EXPECT_EQ(dump.out.find('\xff'), std::string::npos);
  EXPECT_EQ(dump.out.find("\xc2\x9b"), std::string::npos);
  // The checkpoint of the reopened log carries the two open ones; the summary lists them.
  EXPECT_NE(dump.out.find("    open: lsn="), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("open_tcc=2"), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("# open TCC transaction (trying): lsn="), std::string::npos) << dump.out;
  EXPECT_NE(dump.out.find("# open TCC transaction (confirmed): lsn="), std::string::npos)
      << dump.out;

  ToolRun json = RunTool(dir, "dump --json " + dir.log_dir());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(test::JsonValidator::Check(json.out), "") << json.out;
  EXPECT_NE(json.out.find("\"type\":\"tcc-try\""), std::string::npos);
  EXPECT_NE(json.out.find("\"type\":\"tcc-confirm\""), std::string::npos);
  EXPECT_NE(json.out.find("\"protocol\":\"TCC\""), std::string::npos);
  const std::string json_text = "{\\\"account\\\":\\\"a-17\\\",\\\"amount\\\":250}";
  EXPECT_NE(json.out.find("{\"rm\":\"funds\",\"branch\":\"" +
                          TestTccXid(1).WithBranch(0).ToString() + "\",\"payload\":\"" + json_text +
                          "\",\"payload_bytes\":" +
                          std::to_string(test::DefaultTccPayloads()[0].size()) + "}"),
            std::string::npos)
      << json.out;
  // The one JSON rule: controls escaped, bytes that are not UTF-8 as U+FFFD, the size exact.
  EXPECT_NE(json.out.find(
                "\"payload\":\"esc \\u001b[31m \\\"q\\\" \\\\ \\u009b\",\"payload_bytes\":18"),
            std::string::npos)
      << json.out;
  EXPECT_NE(json.out.find("\"payload\":\"\\u0000\\ufffd\",\"payload_bytes\":2"), std::string::npos)
      << json.out;
  EXPECT_EQ(json.out.find('\x1b'), std::string::npos);
  EXPECT_NE(json.out.find("\"open_tcc\":2"), std::string::npos) << json.out;
}

TEST(XaLogTool, StatsCountsTccRecordsAndOpenTccTransactionsByState) {
  ScratchDir dir;
  WriteTccLog(dir);
  ToolRun stats = RunTool(dir, "stats " + dir.log_dir());
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_NE(stats.out.find("tcc-try: 3"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("tcc-confirm: 1"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("open TCC transactions: 2 (trying 1, confirmed 1)"), std::string::npos)
      << stats.out;
  ToolRun json = RunTool(dir, "stats --json " + dir.log_dir());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(test::JsonValidator::Check(json.out), "") << json.out;
  EXPECT_NE(json.out.find("\"tcc-try\":3,\"tcc-confirm\":1"), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"open_tcc\":2,\"open_tcc_by_state\":{\"trying\":1,\"confirmed\":1}"),
            std::string::npos)
      << json.out;
  // A log without TCC transactions says so, and lists no state.
  ScratchDir empty;
  { ASSERT_TRUE(DecisionLog::Open(Options(empty)).ok()); }
  ToolRun none = RunTool(empty, "stats " + empty.log_dir());
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.out.find("open TCC transactions: 0\n"), std::string::npos) << none.out;
}

TEST(XaLogTool, EveryCommandHasHelpAndUsageErrorsExitTwo) {
  ScratchDir dir;
  for (std::string cmd : {"dump", "verify", "stats"}) {
    ToolRun help = RunTool(dir, cmd + " --help");
    EXPECT_EQ(help.exit_code, 0) << cmd;
    EXPECT_NE(help.out.find("usage: xa-log " + cmd), std::string::npos) << help.out;
    EXPECT_NE(help.out.find("exit codes"), std::string::npos);
    EXPECT_EQ(RunTool(dir, cmd).exit_code, 2) << cmd;
    EXPECT_EQ(RunTool(dir, cmd + " --bogus " + dir.path()).exit_code, 2) << cmd;
  }
  EXPECT_EQ(RunTool(dir, "--help").exit_code, 0);
  EXPECT_EQ(RunTool(dir, "frobnicate x").exit_code, 2);
  EXPECT_EQ(RunTool(dir, "").exit_code, 2);
  ToolRun missing = RunTool(dir, "verify " + dir.path() + "/no-such-log");
  EXPECT_EQ(missing.exit_code, internal::kExitNoLog);
  EXPECT_NE(missing.err.find("no-such-log"), std::string::npos) << missing.err;
  // A directory, but no log in it.
  EXPECT_EQ(RunTool(dir, "verify " + dir.path()).exit_code, internal::kExitNoLog);
}

}  // namespace
}  // namespace xa
