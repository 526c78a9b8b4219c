// The agent's incarnation file (daemons/agent/incarnation.h): strictly increasing across starts,
// durable through the temp-file-and-rename dance, and a damaged file refused by name.

#include "daemons/agent/incarnation.h"

#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "log/log_test_util.h"
#include "testutil/fault_injection_env.h"
#include "testutil/status_matchers.h"

namespace xa::agent {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::IsOk;
using test::StatusIs;

std::string ReadBytes(const std::string& path) {
  std::string bytes;
  EXPECT_THAT(Env::Default()->ReadFile(path, &bytes, 4096), IsOk());
  return bytes;
}
void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

TEST(IncarnationTest, FirstStartIsOneAndEveryStartIsLargerThanTheLast) {
  test::ScratchDir dir;
  uint64_t previous = 0;
  for (int start = 0; start < 20; ++start) {
    Result<uint64_t> next = NextIncarnation(dir.path());
    ASSERT_THAT(next, IsOk());
    EXPECT_GT(*next, previous);
    if (start == 0) {
      EXPECT_EQ(*next, 1u);
    }
    previous = *next;
  }
  EXPECT_EQ(ReadBytes(dir.path() + "/INCARNATION"), EncodeIncarnation(previous));
}

TEST(IncarnationTest, EncodingRoundTripsAndHasTheDocumentedLayout) {
  const std::string bytes = EncodeIncarnation(0x0102030405060708ull);
  ASSERT_EQ(bytes.size(), kIncarnationFileSize);
  EXPECT_EQ(bytes.substr(0, 4), "XAI1");
  EXPECT_EQ(bytes.substr(4, 8), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  Result<uint64_t> decoded = DecodeIncarnation(bytes);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(*decoded, 0x0102030405060708ull);
}

TEST(IncarnationTest, DamagedFileIsRefusedNamingTheFileAndNothingIsRewritten) {
  test::ScratchDir dir;
  ASSERT_THAT(NextIncarnation(dir.path()), IsOk());
  const std::string path = dir.path() + "/INCARNATION";
  std::string bytes = ReadBytes(path);
  // Every single flipped byte is caught (the number, the magic, the checksum), and so are a
  // short file and a long one.
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x10);
    WriteBytes(path, damaged);
    EXPECT_THAT(NextIncarnation(dir.path()),
                StatusIs(Code::kCorruption, AllOf(HasSubstr(path), HasSubstr("Restore"))))
        << "byte " << i;
    EXPECT_EQ(ReadBytes(path), damaged) << "a refused file must stay as it was";
  }
  WriteBytes(path, bytes.substr(0, 8));
  EXPECT_THAT(NextIncarnation(dir.path()), StatusIs(Code::kCorruption, HasSubstr("8 bytes")));
  WriteBytes(path, bytes + "x");
  EXPECT_THAT(NextIncarnation(dir.path()), StatusIs(Code::kCorruption, HasSubstr("17 bytes")));
  WriteBytes(path, "");
  EXPECT_THAT(NextIncarnation(dir.path()), StatusIs(Code::kCorruption, HasSubstr(path)));
}

TEST(IncarnationTest, TempFileLeftByACrashedStartIsReplaced) {
  test::ScratchDir dir;
  ASSERT_THAT(NextIncarnation(dir.path()), IsOk());
  WriteBytes(dir.path() + "/INCARNATION.tmp", "half");
  Result<uint64_t> next = NextIncarnation(dir.path());
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(*next, 2u);
}

TEST(IncarnationTest, NumberHandedOutSurvivesPowerLoss) {
  test::ScratchDir dir;
  test::FaultInjectionEnv env;
  ASSERT_THAT(NextIncarnation(dir.path(), &env), IsOk());
  Result<uint64_t> second = NextIncarnation(dir.path(), &env);
  ASSERT_THAT(second, IsOk());
  // Power loss right after the call returned: the number it returned is on disk.
  env.DropUnsyncedData();
  Result<uint64_t> third = NextIncarnation(dir.path(), &env);
  ASSERT_THAT(third, IsOk());
  EXPECT_EQ(*third, *second + 1);
}

// A crash (the process dies, the file system stays) at every step of a start: the next start
// hands out a number larger than every number handed out before. (A power loss between the
// rename and the directory sync is not injected: FaultInjectionEnv undoes a rename that replaced
// a file by moving the new file back, which loses the old one; a POSIX rename leaves the old or
// the new file, never neither.)
TEST(IncarnationTest, CrashAtAnyStepNeverHandsOutANumberTwice) {
  test::ScratchDir dir;
  test::FaultInjectionEnv env;
  ASSERT_THAT(NextIncarnation(dir.path(), &env), IsOk());
  const uint64_t ops_before = env.mutating_ops();
  ASSERT_THAT(NextIncarnation(dir.path(), &env), IsOk());
  const uint64_t ops_per_call = env.mutating_ops() - ops_before;
  ASSERT_GE(ops_per_call, 3u) << "create, rename and directory sync at least";
  for (uint64_t ops = 1; ops <= ops_per_call; ++ops) {
    Result<uint64_t> last = DecodeIncarnation(ReadBytes(dir.path() + "/INCARNATION"));
    ASSERT_THAT(last, IsOk());
    uint64_t handed_out = *last;
    env.CrashAfterOps(ops);
    Result<uint64_t> crashed = NextIncarnation(dir.path(), &env);
    if (crashed.ok()) handed_out = *crashed;
    env.SetFilesystemActive(true);
    Result<uint64_t> after = NextIncarnation(dir.path(), &env);
    ASSERT_THAT(after, IsOk()) << "crash after " << ops << " operations";
    EXPECT_GT(*after, handed_out) << "crash after " << ops << " operations";
  }
}

}  // namespace
}  // namespace xa::agent
