#include "tools/xa_recover/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::recover_tool {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test::IsOk;
using test::StatusIs;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  std::string WriteFile(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  }

  std::string dir_;
};

TEST_F(ConfigTest, ParsesAValidConfigurationWithPasswordsFromFileAndEnvironment) {
  std::string pw = WriteFile("pw", "s3cret\n", 0600);
  setenv("XA_CONFIG_TEST_PW", "from-env", 1);
  auto config = ParseConfig(
      "# comment\nlog_dir = /var/lib/x\nnode_id = 42\norphan_min_age_ms = 1500\n\n"
      "[rm accounts]\ndriver = mysql\nhost = 127.0.0.1\nport = 13306\nuser = tm\n"
      "password_file = " + pw + "\n"
      "[rm ledger]\ndriver = odbc\ndsn = xa_pg  # trailing comment\ndialect = postgres\n"
      "password_env = XA_CONFIG_TEST_PW\n",
      "test.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->log_dir, "/var/lib/x");
  EXPECT_EQ(config->node_id, 42u);
  EXPECT_EQ(config->orphan_min_age.count(), 1500);
  ASSERT_EQ(config->rms.size(), 2u);
  EXPECT_EQ(config->rms[0].name, "accounts");
  EXPECT_EQ(config->rms[0].Get("port"), "13306");
  EXPECT_EQ(config->rms[0].password, "s3cret");
  EXPECT_EQ(config->rms[1].Get("dsn"), "xa_pg");
  EXPECT_EQ(config->rms[1].password, "from-env");
}

TEST_F(ConfigTest, RefusesAPasswordFileOthersCanRead) {
  std::string pw = WriteFile("pw", "s3cret", 0644);
  auto config = ParseConfig("log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n"
                            "password_file=" + pw + "\n", "c.conf");
  ASSERT_THAT(config,
              StatusIs(Code::kConfig, AllOf(HasSubstr("chmod 600"), Not(HasSubstr("s3cret")))));
}

TEST_F(ConfigTest, RefusesInlinePasswordsAndNamesTheLine) {
  auto config = ParseConfig("log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\npassword=hunter2\n",
                            "c.conf");
  ASSERT_THAT(config,
              StatusIs(Code::kConfig, AllOf(HasSubstr("c.conf:5"), Not(HasSubstr("hunter2")))));
}

TEST_F(ConfigTest, ReportsEveryKindOfMistakeClearly) {
  struct Case {
    const char* text;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"node_id=1\n[rm a]\ndriver=mysql\nhost=h\n", "log_dir is required"},
           {"log_dir=/x\n[rm a]\ndriver=mysql\nhost=h\n", "node_id is required"},
           {"log_dir=/x\nnode_id=-1\n", "node_id must be"},
           {"log_dir=/x\nnode_id=99999999999\n", "node_id must be"},
           {"log_dir=/x\nnode_id=1\n", "no resource manager"},
           {"log_dir=/x\nnode_id=1\n[rm a]\nhost=h\n", "needs 'driver"},
           {"log_dir=/x\nnode_id=1\n[rm a]\ndriver=oracle\n", "driver must be"},
           {"log_dir=/x\nnode_id=1\n[rm a]\ndriver=odbc\n", "needs 'dsn"},
           {"log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n[rm a]\ndriver=mysql\n",
            "defined twice"},
           {"log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhots=h\n", "unknown setting 'hots'"},
           {"log_dir=/x\nnode_id=1\n[database a]\n", "section header"},
           {"log_dir=/x\nnode_id=1\njunk\n", "key = value"},
           {"log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\npassword_env=XA_NOPE_UNSET\n",
            "XA_NOPE_UNSET is not set"},
       }) {
    auto config = ParseConfig(c.text, "c.conf");
    ASSERT_THAT(config, StatusIs(Code::kConfig, HasSubstr(c.expected))) << c.text;
  }
}

TEST_F(ConfigTest, RefusesAConfigurationFileOthersCanWrite) {
  std::string path = WriteFile("c.conf", "log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n",
                               0666);
  chmod(path.c_str(), 0666);
  auto config = LoadConfig(path);
  ASSERT_THAT(config, StatusIs(Code::kConfig, HasSubstr("chmod go-w")));
  chmod(path.c_str(), 0600);
  EXPECT_TRUE(LoadConfig(path).ok());
}

}  // namespace
}  // namespace xa::recover_tool
