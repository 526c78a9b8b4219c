// The one rule for reading a configuration, a password or a key: what it refuses, and that the
// refusal names the file and the fix but never the contents.

#include "src/base/trusted_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::internal {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test::StatusIs;

constexpr TrustedFileRules kSecret{"the key file", false, false, 077, "600", 64, "xa-agent"};

class TrustedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-trusted-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(TrustedFileTest, ReadsAPrivateRegularFileWhole) {
  std::string path = Write("key", "s3cret-bytes\n", 0600);
  EXPECT_EQ(ReadTrustedFile(path, kSecret).value(), "s3cret-bytes\n");
}

TEST_F(TrustedFileTest, SecretOthersMayReadIsRefusedWithTheChmodToRunAndNotItsContents) {
  std::string path = Write("key", "s3cret-bytes", 0640);
  EXPECT_THAT(ReadTrustedFile(path, kSecret),
              StatusIs(Code::kConfig, AllOf(HasSubstr("the key file " + path),
                                            HasSubstr("may be read by others"),
                                            HasSubstr("chmod 600"), Not(HasSubstr("s3cret")))));
}

TEST_F(TrustedFileTest, SecretOthersMayOnlyWriteIsCalledWritableNotReadable) {
  std::string path = Write("key", "s3cret-bytes", 0620);
  EXPECT_THAT(ReadTrustedFile(path, kSecret),
              StatusIs(Code::kConfig, AllOf(HasSubstr("may be written by others"),
                                            HasSubstr("mode 620"))));
}

TEST_F(TrustedFileTest, SecretThroughASymbolicLinkIsRefused) {
  std::string target = Write("key", "s3cret-bytes", 0600);
  std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(ReadTrustedFile(link, kSecret),
              StatusIs(Code::kConfig, HasSubstr("a symbolic link is refused")));
}

TEST_F(TrustedFileTest, FifoIsRefusedWithoutBlocking) {
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ReadTrustedFile(fifo, kSecret),
              StatusIs(Code::kConfig, AllOf(HasSubstr("a FIFO"), HasSubstr("not a regular file"))));
}

TEST_F(TrustedFileTest, FileLargerThanTheRulesAllowIsRefusedByItsSize) {
  std::string path = Write("key", std::string(65, 'k'), 0600);
  EXPECT_THAT(ReadTrustedFile(path, kSecret),
              StatusIs(Code::kConfig, HasSubstr("larger than 64 bytes")));
  EXPECT_TRUE(ReadTrustedFile(Write("exact", std::string(64, 'k'), 0600), kSecret).ok());
}

TEST_F(TrustedFileTest, MissingFileSaysSoAndNamesIt) {
  EXPECT_THAT(ReadTrustedFile(dir_ + "/absent", kSecret, "the key file 'absent'"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("cannot open the key file 'absent'"),
                                            HasSubstr("No such file"))));
}

}  // namespace
}  // namespace xa::internal
