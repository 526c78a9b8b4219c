// `xa-recover plan`, the real binary, changes nothing: on a healthy log and on a log whose last
// record (an acknowledged commit decision) has a flipped bit, every file of the log directory
// keeps every byte, no file appears or disappears, and a manager that owns the log meanwhile is
// neither blocked nor disturbed. A log_dir with no log in it is refused and not created. The
// configured resource manager is unreachable (a closed port on 127.0.0.1): plan still reads the
// log, and no database is needed.

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "log/log_test_util.h"
#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "src/base/crc32c.h"
#include "testutil/status_matchers.h"
#include "xa/decision_log.h"

namespace xa {
namespace {

using test::Decision;
using test::IsOk;
using test::ScratchDir;

constexpr uint32_t kNode = 9;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every entry of the directory: name -> size, mode and CRC32C of the bytes.
std::map<std::string, std::string> Checksums(const std::string& dir) {
  std::map<std::string, std::string> sums;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    struct stat st;
    EXPECT_EQ(::lstat(entry.path().c_str(), &st), 0);
    std::string bytes = S_ISREG(st.st_mode) ? Slurp(entry.path()) : std::string();
    sums[entry.path().filename()] = std::to_string(st.st_size) + " " + std::to_string(st.st_mode) +
                                    " " + std::to_string(internal::crc32c::Value(bytes));
  }
  return sums;
}

class PlanReadOnly : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = scratch_.path() + "/recover.conf";
    std::ofstream out(config_);
    out << "log_dir = " << scratch_.log_dir() << "\n"
        << "node_id = " << kNode << "\n"
        << "[rm accounts]\n"
        << "driver = mysql\nhost = 127.0.0.1\nport = 1\nuser = nobody\n"
        << "connect_timeout_s = 1\npassword_env = XA_PLAN_TEST_PASSWORD\n";
    out.close();
    ASSERT_EQ(::chmod(config_.c_str(), 0600), 0);
    ::setenv("XA_PLAN_TEST_PASSWORD", "unused", 1);
  }

  LogOptions Options() const {
    LogOptions o;
    o.dir = scratch_.log_dir();
    o.node_id = kNode;
    return o;
  }

  int Plan(std::string* err) {
    std::string out_path = scratch_.path() + "/plan.out", err_path = scratch_.path() + "/plan.err";
    std::string cmd = std::string(XA_RECOVER_PATH) + " --config " + config_ + " plan >" + out_path +
                      " 2>" + err_path;
    int rc = std::system(cmd.c_str());
    *err = Slurp(err_path);
    EXPECT_TRUE(WIFEXITED(rc)) << cmd;
    return WEXITSTATUS(rc);
  }

  // A closed log with three decisions; returns the newest segment's path.
  std::string MakeLog() {
    auto log = DecisionLog::Open(Options());
    EXPECT_THAT(log, IsOk());
    for (uint64_t i = 1; i <= 3; ++i) EXPECT_TRUE((*log)->Append(Decision(i)).ok());
    log->reset();
    auto listing = internal::ListLogDir(Env::Default(), scratch_.log_dir());
    EXPECT_TRUE(listing.ok() && !listing->segments.empty());
    return internal::JoinPath(scratch_.log_dir(),
                              internal::SegmentFileName(listing->segments.back()));
  }

  ScratchDir scratch_;
  std::string config_;
};

TEST_F(PlanReadOnly, PlanOnAHealthyLogChangesNoByteOfTheDirectory) {
  MakeLog();
  auto before = Checksums(scratch_.log_dir());
  std::string err;
  EXPECT_EQ(Plan(&err), 1) << err;  // work to do: three decisions, an unreachable RM
  EXPECT_EQ(Checksums(scratch_.log_dir()), before);
  EXPECT_EQ(Plan(&err), 1) << err;
  EXPECT_EQ(Checksums(scratch_.log_dir()), before) << "a second plan changed the directory";
}

TEST_F(PlanReadOnly, PlanOnALogWithAFlippedBitInItsLastDecisionChangesNoByte) {
  std::string segment = MakeLog();
  std::string contents = Slurp(segment);
  uint64_t last = 0;
  internal::ReplayOptions ro;
  ro.visit = [&](const internal::ReplayEvent& e) { last = e.offset; };
  ASSERT_TRUE(
      internal::ReplaySegments({internal::SegmentInput{segment, 1, contents}}, ro).status.ok());
  contents[last + internal::kRecordHeaderSize + 12] ^= 0x01;
  {
    std::ofstream out(segment, std::ios::binary | std::ios::trunc);
    out << contents;
  }
  auto before = Checksums(scratch_.log_dir());
  std::string err;
  EXPECT_EQ(Plan(&err), 6) << err;  // damaged: presumed abort refused
  EXPECT_NE(err.find("offset " + std::to_string(last)), std::string::npos) << err;
  EXPECT_EQ(Checksums(scratch_.log_dir()), before) << "plan truncated or rewrote a damaged log";
  EXPECT_EQ(Slurp(segment), contents);
}

TEST_F(PlanReadOnly, PlanRunsBesideTheOwnerWithoutTakingItsLock) {
  MakeLog();
  auto owner = DecisionLog::Open(Options());
  ASSERT_THAT(owner, IsOk());
  ASSERT_TRUE((*owner)->Append(Decision(4)).ok());
  auto before = Checksums(scratch_.log_dir());
  std::string err;
  // Were plan to take the writer's lock, it would fail here with exit 4 (XA_BUSY).
  EXPECT_EQ(Plan(&err), 1) << err;
  EXPECT_EQ(Checksums(scratch_.log_dir()), before);
  // The owner was not disturbed, and a new owner opens at once once this one is gone.
  EXPECT_TRUE((*owner)->Append(Decision(5)).ok());
  owner->reset();
  auto next = DecisionLog::Open(Options());
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ((*next)->State().open_decisions.size(), 5u);
}

TEST_F(PlanReadOnly, AMissingOrEmptyLogDirIsRefusedAndNeverCreated) {
  std::string err;
  EXPECT_EQ(Plan(&err), 7) << err;
  EXPECT_NE(err.find("no decision log at " + scratch_.log_dir()), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(scratch_.log_dir()));
  ASSERT_EQ(::mkdir(scratch_.log_dir().c_str(), 0700), 0);
  EXPECT_EQ(Plan(&err), 7) << err;
  EXPECT_TRUE(std::filesystem::is_empty(scratch_.log_dir()));
}

}  // namespace
}  // namespace xa
