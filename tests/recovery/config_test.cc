#include "tools/xa_recover/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"
#include "xa/decision_log.h"

namespace xa::recover_tool {
namespace {

using test::IsOk;
using test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

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

  // A configuration that is valid but for what a test puts in `extra` (appended).
  static std::string Valid(const std::string& extra = "") {
    return "log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n" + extra;
  }

  // Runs `load` on its own thread and fails the test if it has not returned within 10 s; then
  // opens `fifo` for writing once, which lets a reader blocked in open() go, so that the test
  // ends either way.
  Result<Config> WithinTenSeconds(const std::string& fifo, std::function<Result<Config>()> load) {
    std::packaged_task<Result<Config>()> task(std::move(load));
    std::future<Result<Config>> done = task.get_future();
    std::thread runner(std::move(task));
    bool in_time = done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    if (!in_time) {
      ADD_FAILURE() << "still blocked after 10 s on the FIFO " << fifo;
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
    runner.join();
    return done.get();
  }

  std::string dir_;
};

// A message that holds text from the file must not carry a terminal control sequence through.
MATCHER(HasNoControlBytes, "has no control character or byte >= 0x7f") {
  for (unsigned char c : arg) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

TEST_F(ConfigTest, ParsesAValidConfigurationWithPasswordsFromFileAndEnvironment) {
  std::string pw = WriteFile("pw", "s3cret\n", 0600);
  setenv("XA_CONFIG_TEST_PW", "from-env", 1);
  auto config = ParseConfig(
      "# comment\nlog_dir = /var/lib/x\nnode_id = 42\norphan_min_age_ms = 1500\n\n"
      "[rm accounts]\ndriver = mysql\nhost = 127.0.0.1\nport = 13306\nuser = tm\n"
      "password_file = " +
          pw +
          "\n"
          "[rm ledger]\ndriver = odbc\ndsn = xa_pg  # trailing comment\ndialect = postgres\n"
          "password_env = XA_CONFIG_TEST_PW\n",
      "test.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->log_dir, "/var/lib/x");
  EXPECT_EQ(config->node_id, 42u);
  EXPECT_EQ(config->orphan_min_age.count(), 1500);
  ASSERT_EQ(config->rms.size(), 2u);
  EXPECT_EQ(config->rms[0].name, "accounts");
  EXPECT_EQ(config->rms[0].port, 13306);
  EXPECT_EQ(config->rms[0].password, "s3cret");
  EXPECT_EQ(config->rms[1].Get("dsn"), "xa_pg");
  EXPECT_EQ(config->rms[1].password, "from-env");
}

TEST_F(ConfigTest, ParsesTheThreePhaseAgentsWithTheirKeyFileAndTimeout) {
  auto config = ParseConfig(
      "log_dir=/x\nnode_id=1\nagents_key_file = /etc/x/agents.key\nagent_timeout_ms = 750\n"
      "[rm accounts]\ndriver=mysql\nhost=h\n[rm ledger]\ndriver=odbc\ndsn=pg\n"
      "[agent agent-a]\naddress = 127.0.0.1:17001\nrms = accounts\n"
      "[agent agent-b]\naddress = [::1]:17002\nrms = ledger\n",
      "c.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->agents_key_file, "/etc/x/agents.key");
  EXPECT_EQ(config->agent_timeout.count(), 750);
  ASSERT_EQ(config->agents.size(), 2u);
  EXPECT_EQ(config->agents[0].name, "agent-a");
  EXPECT_EQ(config->agents[0].address, "127.0.0.1:17001");
  EXPECT_THAT(config->agents[0].rms, ::testing::ElementsAre("accounts"));
  EXPECT_EQ(config->agents[1].address, "[::1]:17002");
  EXPECT_THAT(config->agents[1].rms, ::testing::ElementsAre("ledger"));
  // Without agents nothing of 3PC is configured: open 3PC records await them.
  auto plain = ParseConfig(Valid(), "c.conf");
  ASSERT_THAT(plain, IsOk());
  EXPECT_TRUE(plain->agents.empty());
  EXPECT_TRUE(plain->agents_key_file.empty());
}

TEST_F(ConfigTest, RefusesAnIncompleteOrAmbiguousAgentDirectory) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const std::string top = "log_dir=/x\nnode_id=1\n";
  const std::string rms = "[rm a]\ndriver=mysql\nhost=h\n[rm b]\ndriver=mysql\nhost=h\n";
  for (const Case& c : std::initializer_list<Case>{
           {"[agent x]\naddress=127.0.0.1:1\nrms=a\n", "agents_key_file is required"},
           {"[agent x]\nrms=a\n", "needs 'address"},
           {"[agent x]\naddress=127.0.0.1:0\nrms=a\n", "port other than 0"},
           {"[agent x]\naddress=nowhere\nrms=a\n", "c.conf:"},
           {"[agent x]\naddress=127.0.0.1:1\n", "needs 'rms"},
           {"[agent x]\naddress=127.0.0.1:1\nrms=a, c\n", "'c', which has no [rm] section"},
           {"[agent x]\naddress=127.0.0.1:1\nrms=a\n[agent y]\naddress=127.0.0.1:2\nrms=b, a\n",
            "belongs to exactly one agent"},
           {"[agent x]\naddress=127.0.0.1:1\nrms=a\n[agent y]\naddress=127.0.0.1:1\nrms=b\n",
            "each agent listens on its own"},
           {"[agent x]\naddress=127.0.0.1:1\nrms=a\nfence=1\n", "unknown setting 'fence'"},
           {"[agent x y]\naddress=127.0.0.1:1\nrms=a\n", "one word"},
       }) {
    auto config = ParseConfig(top + "agents_key_file=/k\n" + rms + c.text, "c.conf");
    if (std::string(c.expected) == "agents_key_file is required") {
      config = ParseConfig(top + rms + c.text, "c.conf");
    }
    ASSERT_THAT(config, StatusIs(Code::kConfig, HasSubstr(c.expected))) << c.text;
  }
  EXPECT_THAT(ParseConfig(top + "agents_key_file=/k\n" + rms, "c.conf"),
              StatusIs(Code::kConfig, HasSubstr("no [agent] section")));
  EXPECT_THAT(ParseConfig(top + "agent_timeout_ms=0\n" + rms, "c.conf"),
              StatusIs(Code::kConfig, HasSubstr("agent_timeout_ms")));
}

TEST_F(ConfigTest, ParsesTheMarkerOfMarkerCommitWithItsDefaults) {
  auto config = ParseConfig(
      "log_dir=/x\nnode_id=1\nmarker_rm = accounts\nmarker_table = xa.markers_1\n"
      "marker_settle_wait_ms = 250\n[rm accounts]\ndriver=mysql\nhost=h\n",
      "c.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->marker_rm, "accounts");
  EXPECT_EQ(config->marker_table, "xa.markers_1");
  EXPECT_EQ(config->marker_settle_wait.count(), 250);
  auto defaults = ParseConfig(Valid("") + "", "c.conf");
  ASSERT_THAT(defaults, IsOk());
  EXPECT_EQ(defaults->marker_rm, "");  // no marker: marker-commit branches are left alone
  auto only_rm = ParseConfig("marker_rm=a\n" + Valid(), "c.conf");
  ASSERT_THAT(only_rm, IsOk());
  EXPECT_EQ(only_rm->marker_table, "xa_commit_marker");
  EXPECT_EQ(only_rm->marker_settle_wait.count(), 1000);
}

TEST_F(ConfigTest, RefusesAMarkerItCannotUse) {
  struct Case {
    std::string top;  // before Valid(): on lines 1, 2...
    std::string expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"marker_rm=\n", "c.conf:1: marker_rm needs the name of an [rm] section"},
           {"marker_rm=a\nmarker_table=bad name\n",
            "c.conf:2: marker_table: marker table 'bad name': the table name may hold only ASCII "
            "letters"},
           {"marker_rm=a\nmarker_table=x'; DROP TABLE t; --\n", "may hold only ASCII letters"},
           {"marker_rm=a\nmarker_table=it's\n", "may hold only ASCII letters"},
           {"marker_rm=a\nmarker_table=t`x`\n", "may hold only ASCII letters"},
           {"marker_rm=a\nmarker_table=a.b.c\n", "the table name after '.' may hold only"},
           {"marker_rm=a\nmarker_table=.t\n", "the schema name before '.' is empty"},
           {"marker_rm=a\nmarker_table=s.\n", "the table name after '.' is empty"},
           {"marker_rm=a\nmarker_table=\n", "c.conf:2: marker_table: marker table '': the table "
                                            "name is empty"},
           {"marker_rm=a\nmarker_table=1abc\n", "must start with a letter"},
           {"marker_rm=a\nmarker_table=" + std::string(65, 'm') + "\n",
            "the table name is longer than 64"},
           {"marker_rm=a\nmarker_table=s." + std::string(65, 'm') + "\n",
            "the table name after '.' is longer than 64"},
           {"marker_table=xa_commit_marker\n", "c.conf:1: marker_table needs marker_rm"},
           {"marker_settle_wait_ms=100\n", "c.conf:1: marker_settle_wait_ms needs marker_rm"},
           // The first of them in the file is the one named.
           {"marker_settle_wait_ms=100\nmarker_table=t\n",
            "c.conf:1: marker_settle_wait_ms needs marker_rm"},
           {"marker_rm=a\nmarker_settle_wait_ms=0\n", "c.conf:2: marker_settle_wait_ms must be"},
           {"marker_rm=a\nmarker_settle_wait_ms=600001\n", "marker_settle_wait_ms must be"},
           {"marker_rm=a\nmarker_settle_wait_ms=-1\n", "marker_settle_wait_ms must be"},
           {"marker_rm=a\nmarker_settle_wait_ms=1s\n", "must be a whole number"},
       }) {
    EXPECT_THAT(ParseConfig(c.top + Valid(), "c.conf"),
                StatusIs(Code::kConfig, HasSubstr(c.expected)))
        << c.top;
  }
  // The bounds themselves are accepted.
  for (const char* wait : {"1", "600000"}) {
    auto config =
        ParseConfig("marker_rm=a\nmarker_settle_wait_ms=" + std::string(wait) + "\n" + Valid(),
                    "c.conf");
    ASSERT_THAT(config, IsOk()) << wait;
    EXPECT_EQ(config->marker_settle_wait.count(), std::stoll(wait));
  }
  auto longest = ParseConfig("marker_rm=a\nmarker_table=" + std::string(64, 's') + "." +
                                 std::string(64, 't') + "\n" + Valid(),
                             "c.conf");
  ASSERT_THAT(longest, IsOk());
  EXPECT_EQ(longest->marker_table, std::string(64, 's') + "." + std::string(64, 't'));
}

TEST_F(ConfigTest, RefusesAMarkerRmThatIsNoRmSectionNamingTheKnownOnes) {
  // Line 3, after the sections that are there (the check runs once every section is read).
  auto config =
      ParseConfig("log_dir=/x\nnode_id=1\nmarker_rm = ledgr\n[rm accounts]\ndriver=mysql\nhost=h\n"
                  "[rm ledger]\ndriver=odbc\ndsn=ledger_pg\ndialect=postgres\n",
                  "c.conf");
  EXPECT_THAT(config, StatusIs(Code::kConfig,
                               AllOf(HasSubstr("c.conf:3: marker_rm names 'ledgr', which is no "
                                               "[rm] section of this file"),
                                     HasSubstr("they are 'accounts', 'ledger'"))));
  // An [agent] section is no [rm] section.
  EXPECT_THAT(ParseConfig("marker_rm=agent-a\nagents_key_file=/k\n" +
                              Valid("[agent agent-a]\naddress=127.0.0.1:17001\nrms=a\n"),
                          "c.conf"),
              StatusIs(Code::kConfig, HasSubstr("marker_rm names 'agent-a', which is no [rm]")));
  // Names are compared exactly.
  EXPECT_THAT(ParseConfig("marker_rm=A\n" + Valid(), "c.conf"),
              StatusIs(Code::kConfig, HasSubstr("marker_rm names 'A'")));
  // An odbc resource manager holds the marker as well as a mysql one.
  auto odbc =
      ParseConfig("log_dir=/x\nnode_id=1\nmarker_rm = ledger\n[rm accounts]\ndriver=mysql\nhost=h\n"
                  "[rm ledger]\ndriver=odbc\ndsn=ledger_pg\ndialect=postgres\n",
                  "c.conf");
  ASSERT_THAT(odbc, IsOk());
  EXPECT_EQ(odbc->marker_rm, "ledger");
}

TEST_F(ConfigTest, RefusesAMarkerKeySetTwiceNamingBothLines) {
  for (const std::string key : {"marker_rm", "marker_table", "marker_settle_wait_ms"}) {
    const std::string value = key == "marker_rm" ? "a" : key == "marker_table" ? "t" : "5";
    const std::string once = "log_dir=/x\nmarker_rm=a\n" + key + "=" + value + "\nnode_id=1\n";
    const std::string rms = "[rm a]\ndriver=mysql\nhost=h\n";
    const std::string text = once + key + "=" + value + "\n" + rms;
    // Without its second setting the file is valid (for marker_rm, `once` sets it twice).
    if (key != "marker_rm") {
      EXPECT_THAT(ParseConfig(once + rms, "c.conf"), IsOk()) << key;
    }
    // marker_rm's first setting is on line 2, the others' on line 3.
    const std::string lines = key == "marker_rm" ? "lines 2 and 3" : "lines 3 and 5";
    EXPECT_THAT(ParseConfig(text, "c.conf"),
                StatusIs(Code::kConfig,
                         AllOf(HasSubstr("'" + key + "' is set twice"), HasSubstr(lines))))
        << text;
  }
}

TEST_F(ConfigTest, RefusesAPasswordFileOthersCanRead) {
  std::string pw = WriteFile("pw", "s3cret", 0644);
  auto config = ParseConfig("log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n"
                            "password_file=" +
                                pw + "\n",
                            "c.conf");
  ASSERT_THAT(config,
              StatusIs(Code::kConfig, AllOf(HasSubstr("chmod 600"), Not(HasSubstr("s3cret")))));
}

TEST_F(ConfigTest, RefusesInlinePasswordsAndNamesTheLine) {
  auto config =
      ParseConfig("log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\npassword=hunter2\n", "c.conf");
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
  std::string path =
      WriteFile("c.conf", "log_dir=/x\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n", 0666);
  chmod(path.c_str(), 0666);
  auto config = LoadConfig(path);
  ASSERT_THAT(config, StatusIs(Code::kConfig, HasSubstr("chmod go-w")));
  chmod(path.c_str(), 0600);
  EXPECT_TRUE(LoadConfig(path).ok());
}

TEST_F(ConfigTest, RefusesAFifoAsTheConfigurationOrThePasswordFileWithoutBlocking) {
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto config = WithinTenSeconds(fifo, [&] { return LoadConfig(fifo); });
  EXPECT_THAT(config,
              StatusIs(Code::kConfig, AllOf(HasSubstr("FIFO"), HasSubstr("not a regular file"))));
  auto with_password = WithinTenSeconds(fifo, [&] {
    return ParseConfig(Valid("password_file = " + fifo + "\n"), "c.conf");
  });
  EXPECT_THAT(with_password,
              StatusIs(Code::kConfig, AllOf(HasSubstr("c.conf:6"), HasSubstr("password_file"),
                                            HasSubstr("FIFO"))));
}

TEST_F(ConfigTest, RefusesADirectoryOrADeviceAsTheConfigurationOrThePasswordFile) {
  EXPECT_THAT(LoadConfig(dir_), StatusIs(Code::kConfig, HasSubstr("a directory")));
  EXPECT_THAT(ParseConfig(Valid("password_file = /dev/zero\n"), "c.conf"),
              StatusIs(Code::kConfig, HasSubstr("a device")));
}

TEST_F(ConfigTest, RefusesAHugeConfigurationOrPasswordFileUnread) {
  // Sparse files: 100 GiB costs no disk, and reading it whole would exhaust the memory.
  for (off_t size : {off_t{kMaxConfigBytes} + 1, off_t{100} << 30}) {
    std::string config_path = WriteFile("big.conf", Valid(), 0600);
    ASSERT_EQ(::truncate(config_path.c_str(), size), 0);
    auto start = std::chrono::steady_clock::now();
    EXPECT_THAT(LoadConfig(config_path),
                StatusIs(Code::kConfig,
                         AllOf(HasSubstr("larger than 1048576 bytes"), HasSubstr("big.conf"))))
        << size;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << size;
  }
  for (off_t size : {off_t{kMaxPasswordFileBytes} + 1, off_t{100} << 30}) {
    std::string pw = WriteFile("big.pw", "s3cret\n", 0600);
    ASSERT_EQ(::truncate(pw.c_str(), size), 0);
    EXPECT_THAT(ParseConfig(Valid("password_file = " + pw + "\n"), "c.conf"),
                StatusIs(Code::kConfig,
                         AllOf(HasSubstr("c.conf:6"), HasSubstr("larger than 4096 bytes"))))
        << size;
  }
}

TEST_F(ConfigTest, RefusesDurationsAndNumbersOutsideTheirRangeNamingKeyAndRange) {
  struct Case {
    std::string text;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"orphan_min_age_ms = 9223372036854775807\n" + Valid(),
            "orphan_min_age_ms must be a whole number from 0 to 604800000, not "
            "'9223372036854775807'"},
           {"orphan_min_age_ms = 10000000000000000\n" + Valid(),
            "orphan_min_age_ms must be a whole number from 0 to 604800000"},
           {"orphan_min_age_ms = 99999999999999999999999\n" + Valid(),
            "orphan_min_age_ms must be a whole number from 0 to 604800000"},
           {"orphan_min_age_ms = -1\n" + Valid(), "orphan_min_age_ms must be"},
           {Valid("connect_timeout_s = 0\n"),
            "connect_timeout_s must be a whole number from 1 to 3600"},
           {Valid("connect_timeout_s = 100000\n"), "connect_timeout_s must be"},
           {Valid("port = 0\n"), "port must be a whole number from 1 to 65535"},
           {Valid("port = 65536\n"), "port must be"},
       }) {
    EXPECT_THAT(ParseConfig(c.text, "c.conf"), StatusIs(Code::kConfig, HasSubstr(c.expected)))
        << c.text;
  }
  auto longest = ParseConfig("orphan_min_age_ms = 604800000\n" + Valid(), "c.conf");
  ASSERT_THAT(longest, IsOk());
  EXPECT_EQ(longest->orphan_min_age, std::chrono::hours(24 * 7));
}

TEST_F(ConfigTest, ParseIntegerAcceptsOnlyAWholeDecimalInRange) {
  for (const char* bad :
       {"", "abc", "12abc", "13306abc", " 1", "1 ", "+1", "0x10", "1.5", "1e3", "--1", "65"}) {
    EXPECT_THAT(ParseInteger(kSessions, bad), StatusIs(Code::kConfig, HasSubstr("--sessions")))
        << bad;
  }
  EXPECT_EQ(*ParseInteger(kSessions, "64"), 64);
  EXPECT_EQ(*ParseInteger(kSecondPassMs, "0"), 0);
  EXPECT_EQ(*ParseInteger(kNodeId, "4294967295"), 4294967295);
}

TEST_F(ConfigTest, RefusesNumbersWithTrailingText) {
  for (const std::string& text :
       {Valid("port = 13306abc\n"), Valid("connect_timeout_s = abc\n"),
        Valid("connect_timeout_s = 5s\n"),
        std::string("log_dir=/x\nnode_id=7x\n[rm a]\ndriver=mysql\nhost=h\n"),
        "orphan_min_age_ms = 1000ms\n" + Valid()}) {
    EXPECT_THAT(ParseConfig(text, "c.conf"),
                StatusIs(Code::kConfig, HasSubstr("must be a whole number")))
        << text;
  }
  auto typed = ParseConfig(Valid("port = 13306\nconnect_timeout_s = 7\n"), "c.conf");
  ASSERT_THAT(typed, IsOk());
  EXPECT_EQ(typed->rms[0].port, 13306);
  EXPECT_EQ(typed->rms[0].connect_timeout, std::chrono::seconds(7));
}

TEST_F(ConfigTest, RefusesADuplicateKeyNamingItAndBothLines) {
  EXPECT_THAT(ParseConfig("log_dir = /real\nnode_id = 1\nlog_dir = /typo\n[rm a]\n"
                          "driver=mysql\nhost=h\n",
                          "c.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("c.conf:3"), HasSubstr("'log_dir'"),
                                            HasSubstr("lines 1 and 3"))));
  EXPECT_THAT(ParseConfig(Valid("host = other\n"), "c.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("'host' is set twice in [rm a]"),
                                            HasSubstr("lines 5 and 6"))));
  setenv("XA_CONFIG_TEST_PW", "from-env", 1);
  std::string pw = WriteFile("pw", "s3cret\n", 0600);
  EXPECT_THAT(ParseConfig(Valid("password_file = " + pw + "\npassword_env = XA_CONFIG_TEST_PW\n"),
                          "c.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("password_file and password_env"),
                                            HasSubstr("lines 6 and 7"))));
  // The same key in two sections is no duplicate.
  EXPECT_THAT(ParseConfig(Valid("[rm b]\ndriver=mysql\nhost=h\n"), "c.conf"), IsOk());
}

TEST_F(ConfigTest, EscapesTextFromTheFileInEveryMessage) {
  // ESC [ 2 J clears the screen; 0x9b is the one-byte CSI of 8-bit terminals, U+009B its UTF-8
  // form; names in other scripts are fine in the file and escaped in messages.
  for (const std::string& text :
       {Valid("ho\x9b"
              "2Jst = h\n"),
        std::string("log_dir=/x\nnode_id=1\n[rm a]\ndriver = my\xc2\x9bsql\n"),
        std::string("log_dir=/x\nnode_id=1\n[rm a\x9b"
                    "2J]\nhost=h\n"),
        Valid("dialect = \xc2\x9b"
              "2J\n"),
        Valid("host = a\x1b[2J\n"), Valid("h\xc5\x91st = h\n"),
        std::string("log_dir=/x\nnode_id=1\n[rm z\xc3\xbcrich]\ndriver = \xe6\x9d\xb1\n"),
        std::string("log_dir=/x\nnode_id=1\n[rm z\xc3\xbcrich]\ndriver=mysql\nhost=h\nhost=i\n"),
        Valid("password_env = NO_SUCH_\xc3\xbc_VAR\n"),
        "marker_rm = a\nmarker_table = z\xc3\xbcrich\n" + Valid(),
        "marker_rm = z\xc3\xbcrich\n" + Valid()}) {
    auto config = ParseConfig(text, "c\x1b[2J.conf");
    ASSERT_THAT(config, StatusIs(Code::kConfig)) << text;
    EXPECT_THAT(config.status().message(), HasNoControlBytes()) << config.status().message();
  }
}

TEST_F(ConfigTest, RefusesControlCharactersAndBytesThatAreNotUtf8NamingTheLine) {
  struct Case {
    std::string text;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {Valid("host = a\x1b[2J\n"), "c.conf:6: control character 0x1b"},
           {Valid("host = a\x7f\n"), "c.conf:6: control character 0x7f"},
           {Valid("host = a\xc2\x9b"
                  "2J\n"),
            "c.conf:6: control character U+009b"},
           {Valid("host = a\x9b"
                  "2J\n"),
            "c.conf:6: bytes that are not UTF-8 (0x9b)"},
           {Valid("host = \xff\n"), "c.conf:6: bytes that are not UTF-8 (0xff)"},
           {Valid("# comment \xc3\n"), "c.conf:6: bytes that are not UTF-8 (0xc3)"},
           {Valid("host = a\rb\n"), "c.conf:6: control character 0x0d"},
       }) {
    EXPECT_THAT(ParseConfig(c.text, "c.conf"),
                StatusIs(Code::kConfig, AllOf(HasSubstr(c.expected),
                                              HasSubstr("a configuration is plain UTF-8 text"))))
        << c.text;
  }
  // Well-formed UTF-8 is text; so is a tab, and a CRLF line end.
  auto config = ParseConfig("log_dir=/x\r\nnode_id=1\n[rm z\xc3\xbcrich]\ndriver=\tmysql\n"
                            "host=\xe6\x9d\xb1\xe4\xba\xac\n",
                            "c.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->rms[0].name, "z\xc3\xbcrich");
  EXPECT_EQ(config->rms[0].Get("host"), "\xe6\x9d\xb1\xe4\xba\xac");
}

TEST_F(ConfigTest, RefusesAConfigurationOwnedByAnotherUser) {
  // CI runs as root (scripts/test.sh installs packages), which may give a file away.
  ASSERT_EQ(::geteuid(), 0u) << "this test gives a file to another user: run it as root";
  std::string path = WriteFile("c.conf", Valid(), 0644);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  EXPECT_THAT(LoadConfig(path),
              StatusIs(Code::kConfig, AllOf(HasSubstr("owned by another user (uid 65534)"),
                                            HasSubstr("or to root"))));
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);
  EXPECT_THAT(LoadConfig(path), IsOk());
  // Writable by its group alone is refused too.
  ASSERT_EQ(::chmod(path.c_str(), 0620), 0);
  EXPECT_THAT(LoadConfig(path), StatusIs(Code::kConfig, HasSubstr("chmod go-w")));
}

TEST_F(ConfigTest, LogDirThroughASymlinkWithATrailingSlashIsStillRefusedByTheLog) {
  std::string real = dir_ + "/real-log";
  std::string link = dir_ + "/link";
  {
    LogOptions create;
    create.dir = real;
    create.node_id = 1;
    ASSERT_THAT(DecisionLog::Open(create), IsOk());
  }
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  for (const std::string& written : {link + "/", link + "//"}) {
    std::string path =
        WriteFile("c.conf", "log_dir = " + written + "\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n",
                  0600);
    auto config = LoadConfig(path);
    ASSERT_THAT(config, IsOk());
    EXPECT_EQ(config->log_dir, link);
    LogOptions options;
    options.dir = config->log_dir;
    options.node_id = 1;
    EXPECT_THAT(DecisionLog::ReadState(options),
                StatusIs(Code::kConfig, HasSubstr("symbolic link")))
        << written;
  }
  for (const std::string& written : {link + "/.", link + "/./", real + "/.."}) {
    EXPECT_THAT(ParseConfig("log_dir = " + written + "\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n",
                            "c.conf"),
                StatusIs(Code::kConfig, HasSubstr("not end in '.' or '..'")))
        << written;
  }
  EXPECT_EQ(ParseConfig(Valid(), "c.conf")->log_dir, "/x");
  EXPECT_EQ(ParseConfig("log_dir=/\nnode_id=1\n[rm a]\ndriver=mysql\nhost=h\n", "c.conf")->log_dir,
            "/");
}

}  // namespace
}  // namespace xa::recover_tool
