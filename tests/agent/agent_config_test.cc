// xa-agent's configuration: the defaults, and each refusal naming the file, the line and what to
// change. The shared reader's own rules are tested in tests/unit/config_file_test.cc and, through
// xa-recover, in tests/recovery/config_test.cc.

#include "daemons/agent/agent_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::agent {
namespace {

using test::IsOk;
using test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

class AgentConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-agent-config-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    key_ = Write("agents.key", std::string(32, 'k'), 0600);
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }

  // The top-level settings (line 1 to 4) with `extra` settings after them (line 5 on).
  std::string Top(const std::string& extra = "") const {
    return "agent = agent-a\nlog_dir = /var/lib/xa-agent/a\nnode_id = 7\nkey_file = " + key_ +
           "\n" + extra;
  }
  // The directory of two agents and agent-a's one resource manager.
  static std::string Directory(const std::string& rm_extra = "") {
    return "[agent agent-a]\naddress = 127.0.0.1:17001\nrms = accounts\n"
           "[agent agent-b]\naddress = [::1]:17002\nrms = stock, ledger\n"
           "[rm accounts]\ndriver = mysql\nhost = 127.0.0.1\n" +
           rm_extra;
  }
  std::string Valid() const { return Top() + Directory(); }

  std::string dir_;
  std::string key_;
};

TEST_F(AgentConfigTest, ParsesTheDirectoryAndThisAgentsResourceManagersWithDefaults) {
  auto config = ParseAgentConfig(Valid(), "a.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->path, "a.conf");
  EXPECT_EQ(config->agent, "agent-a");
  EXPECT_EQ(config->log_dir, "/var/lib/xa-agent/a");
  EXPECT_EQ(config->node_id, 7u);
  EXPECT_EQ(config->key_file, key_);
  EXPECT_EQ(config->termination_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(config->peer_timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(config->orphan_scan_interval, std::chrono::milliseconds(30000));
  // Without coordinator_node_ids the deployment's one coordinator shares the agent's node id.
  EXPECT_EQ(config->coordinator_node_ids, std::set<uint32_t>{7});
  EXPECT_FALSE(config->metrics_address.has_value());
  EXPECT_EQ(config->agent_of_rm, (std::map<std::string, std::string>{{"accounts", "agent-a"},
                                                                     {"ledger", "agent-b"},
                                                                     {"stock", "agent-b"}}));
  EXPECT_EQ(config->address_of_agent,
            (std::map<std::string, std::string>{{"agent-a", "127.0.0.1:17001"},
                                                {"agent-b", "[::1]:17002"}}));
  ASSERT_EQ(config->rms.size(), 1u);
  EXPECT_EQ(config->rms[0].name, "accounts");
  EXPECT_EQ(config->rms[0].driver, "mysql");
  EXPECT_EQ(config->rms[0].Get("host"), "127.0.0.1");
}

TEST_F(AgentConfigTest, ReadsEveryOptionalSettingGiven) {
  const std::string pw = Write("pw", "s3cret\n", 0600);
  auto config =
      ParseAgentConfig(Top("termination_timeout_ms = 60000\npeer_timeout_ms = 250\n"
                           "orphan_scan_interval_ms = 100\nmetrics_address = 127.0.0.1:0\n"
                           "coordinator_node_ids = 7, 12 ,4294967295\n") +
                           Directory("port = 13306\nuser = xa_agent\npassword_file = " + pw + "\n"),
                       "a.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->termination_timeout, std::chrono::milliseconds(60000));
  EXPECT_EQ(config->peer_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(config->orphan_scan_interval, std::chrono::milliseconds(100));
  EXPECT_EQ(config->coordinator_node_ids, (std::set<uint32_t>{7, 12, 4294967295u}));
  EXPECT_EQ(config->metrics_address, "127.0.0.1:0");
  EXPECT_EQ(config->rms[0].port, 13306);
  EXPECT_EQ(config->rms[0].password, "s3cret");
}

TEST_F(AgentConfigTest, RefusesAMissingRequiredSettingNamingIt) {
  const std::string directory = Directory();
  const std::string key = "key_file = " + key_ + "\n";
  EXPECT_THAT(ParseAgentConfig("log_dir = /l\nnode_id = 1\n" + key + directory, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf: agent is required")));
  EXPECT_THAT(ParseAgentConfig("agent = agent-a\nnode_id = 1\n" + key + directory, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf: log_dir is required")));
  EXPECT_THAT(ParseAgentConfig("agent = agent-a\nlog_dir = /l\n" + key + directory, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf: node_id is required")));
  EXPECT_THAT(ParseAgentConfig("agent = agent-a\nlog_dir = /l\nnode_id = 1\n" + directory,
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf: key_file is required")));
}

TEST_F(AgentConfigTest, RefusesAnUnknownSettingNamingTheLineAndTheKnownOnes) {
  EXPECT_THAT(ParseAgentConfig(Top("peer_timout_ms = 5\n") + Directory(), "a.conf"),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("a.conf:5: unknown setting 'peer_timout_ms'"),
                             HasSubstr("known: agent, log_dir, node_id, key_file, "
                                       "termination_timeout_ms, peer_timeout_ms, "
                                       "orphan_scan_interval_ms, coordinator_node_ids, "
                                       "metrics_address"))));
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\naddress = 127.0.0.1:1\nrms = x\nport = 1\n") +
                                   Directory(),
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:8: unknown setting 'port' in "
                                                "[agent agent-c] (known: address, rms)")));
  EXPECT_THAT(ParseAgentConfig(Valid() + "hots = h\n", "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("unknown setting 'hots' in [rm accounts]")));
  EXPECT_THAT(ParseAgentConfig(Top() + "[database x]\n" + Directory(), "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:5: expected a section header '[agent <name>]' or "
                                 "'[rm <name>]'")));
}

TEST_F(AgentConfigTest, RefusesTimeoutsOutsideTheirRangeNamingKeyAndRange) {
  for (const auto& [setting, expected] : std::initializer_list<std::pair<const char*, const char*>>{
           {"termination_timeout_ms = 49",
            "termination_timeout_ms must be a whole number from 50 to 3600000"},
           {"termination_timeout_ms = 3600001", "termination_timeout_ms must be"},
           {"peer_timeout_ms = 9", "peer_timeout_ms must be a whole number from 10 to 600000"},
           {"peer_timeout_ms = 600001", "peer_timeout_ms must be"},
           {"orphan_scan_interval_ms = 99",
            "orphan_scan_interval_ms must be a whole number from 100 to 86400000"},
           {"orphan_scan_interval_ms = 86400001", "orphan_scan_interval_ms must be"},
           {"node_id = 4294967296", "node_id must be"},
           {"orphan_scan_interval_ms = 30s", "orphan_scan_interval_ms must be"},
           {"coordinator_node_ids = 7, 4294967296", "node_id must be"},
           {"coordinator_node_ids = 7,,8", "coordinator_node_ids needs '<node id>, <node id>...'"},
           {"coordinator_node_ids =", "coordinator_node_ids needs"},
           {"coordinator_node_ids = seven", "node_id must be"},
       }) {
    // A second node_id would be refused as a duplicate: replace the valid one.
    std::string text = Top(std::string(setting) + "\n") + Directory();
    if (std::string(setting).starts_with("node_id"))
      text.replace(text.find("node_id = 7\n"), 12, "");
    EXPECT_THAT(ParseAgentConfig(text, "a.conf"), StatusIs(Code::kConfig, HasSubstr(expected)))
        << setting;
  }
}

TEST_F(AgentConfigTest, RefusesAPeerTimeoutNotBelowTheTerminationTimeoutNamingBoth) {
  EXPECT_THAT(
      ParseAgentConfig(Top("termination_timeout_ms = 800\npeer_timeout_ms = 800\n") + Directory(),
                       "a.conf"),
      StatusIs(Code::kConfig, HasSubstr("a.conf:6: peer_timeout_ms 800 (line 6) must be less than "
                                        "termination_timeout_ms 800 (line 5)")));
  // Against a default, the message says which one is the default.
  EXPECT_THAT(ParseAgentConfig(Top("termination_timeout_ms = 900\n") + Directory(), "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:5: peer_timeout_ms 1000 (the default) must be less than "
                                 "termination_timeout_ms 900 (line 5)")));
  EXPECT_THAT(ParseAgentConfig(Top("peer_timeout_ms = 5000\n") + Directory(), "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("termination_timeout_ms 5000 (the default)")));
  EXPECT_THAT(ParseAgentConfig(Top("peer_timeout_ms = 4999\n") + Directory(), "a.conf"), IsOk());
}

TEST_F(AgentConfigTest, RefusesAnAgentNameNotInTheDirectory) {
  std::string text = Valid();
  text.replace(text.find("agent = agent-a"), 15, "agent = agent-z");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:1: agent 'agent-z' is not in the directory: add a "
                                 "section '[agent agent-z]'")));
}

TEST_F(AgentConfigTest, RefusesAResourceManagerOfTwoAgentsNamingBothSections) {
  std::string text = Valid();
  text.replace(text.find("rms = stock, ledger"), 19, "rms = stock, accounts");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:10: resource manager 'accounts' is listed by "
                                 "[agent agent-a] (line 7) and by [agent agent-b] (line 10): a "
                                 "resource manager belongs to exactly one agent")));
  // Twice in one agent's list is the same mistake.
  text = Valid();
  text.replace(text.find("rms = stock, ledger"), 19, "rms = stock, stock");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("resource manager 'stock' is listed by")));
}

TEST_F(AgentConfigTest, RefusesAnRmSectionOfAnotherAgentOrOfNoAgent) {
  EXPECT_THAT(ParseAgentConfig(Valid() + "[rm stock]\ndriver = mysql\nhost = h\n", "a.conf"),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("a.conf:14: [rm stock] is not a resource manager of "
                                       "agent 'agent-a' (agent 'agent-b' stands for it)"),
                             HasSubstr("its own agent only"))));
  EXPECT_THAT(ParseAgentConfig(Valid() + "[rm orphan]\ndriver = mysql\nhost = h\n", "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("[rm orphan] is not a resource manager of "
                                                "agent 'agent-a' (no agent lists it)")));
}

TEST_F(AgentConfigTest, RefusesAResourceManagerOfThisAgentWithoutASection) {
  std::string text = Valid();
  text.replace(text.find("rms = accounts"), 14, "rms = accounts, payroll");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:7: resource manager 'payroll' of agent 'agent-a' has no "
                                 "section: add '[rm payroll]'")));
}

TEST_F(AgentConfigTest, RefusesAnIncompleteOrInvalidRmSectionByTheSharedRules) {
  std::string text = Valid();
  text.replace(text.find("driver = mysql\n"), 15, "");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:11: [rm accounts] needs 'driver")));
  EXPECT_THAT(ParseAgentConfig(Valid() + "port = 0\n", "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:14: port must be a whole number")));
  EXPECT_THAT(ParseAgentConfig(Valid() + "password = hunter2\n", "a.conf"),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("passwords are not accepted"), Not(HasSubstr("hunter2")))));
}

TEST_F(AgentConfigTest, RefusesAddressesThatAreNotIpLiteralsWithAPort) {
  struct Case {
    const char* address;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"localhost:17001", "has no IP literal"},
           {"127.0.0.1", "has no port"},
           {"127.0.0.1:", "has no valid port"},
           {"127.0.0.1:65536", "has no valid port"},
           {"127.0.0.1:17001x", "has no valid port"},
           {"::1:17001", "IPv6 literal without brackets"},
           {"[127.0.0.1]:17001", "IPv4 literal in brackets"},
           {"127.0.0.1:0", "needs a port other than 0"},
       }) {
    std::string text = Valid();
    text.replace(text.find("127.0.0.1:17001"), 15, c.address);
    EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
                StatusIs(Code::kConfig, AllOf(HasSubstr("a.conf:6: "), HasSubstr(c.expected))))
        << c.address;
  }
  EXPECT_THAT(ParseAgentConfig(Top("metrics_address = metrics:9100\n") + Directory(), "a.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("a.conf:5: address 'metrics:9100'"),
                                            HasSubstr("IP literal"))));
}

TEST_F(AgentConfigTest, RefusesTwoAgentsAtOneAddress) {
  std::string text = Valid();
  text.replace(text.find("[::1]:17002"), 11, "127.0.0.1:17001");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig,
                       HasSubstr("a.conf:9: [agent agent-b] has the address of [agent agent-a] "
                                 "(line 5)")));
}

TEST_F(AgentConfigTest, RefusesAnAgentWithoutAddressOrResourceManagers) {
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\nrms = x\n") + Directory(), "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:5: [agent agent-c] needs 'address = ")));
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\naddress = 127.0.0.1:1\n") + Directory(),
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:5: [agent agent-c] needs 'rms = ")));
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\naddress = 127.0.0.1:1\nrms = \n") +
                                   Directory(),
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:7: [agent agent-c] needs 'rms = ")));
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\naddress = 127.0.0.1:1\nrms = x,,y\n") +
                                   Directory(),
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:7: a resource manager name in rms must "
                                                "be one word, not ''")));
  EXPECT_THAT(ParseAgentConfig(Top("[agent agent-c]\naddress = 127.0.0.1:1\nrms = x y\n") +
                                   Directory(),
                               "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("must be one word, not 'x y'")));
}

TEST_F(AgentConfigTest, RefusesNamesLongerThanTheWireCarries) {
  const std::string long_name(kMaxAgentNameSize + 1, 'n');
  const std::string longest(kMaxAgentNameSize, 'n');
  auto with_agent = [&](const std::string& name) {
    return Top("[agent " + name + "]\naddress = 127.0.0.1:1\nrms = x\n") + Directory();
  };
  EXPECT_THAT(ParseAgentConfig(with_agent(long_name), "a.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("a.conf:5: an agent name"),
                                            HasSubstr("is longer than 255 bytes"))));
  EXPECT_THAT(ParseAgentConfig(with_agent(longest), "a.conf"), IsOk());
  std::string text = Valid();
  text.replace(text.find("rms = stock"), 11, "rms = " + std::string(kMaxRmNameSize + 1, 'r'));
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("is longer than 255 bytes")));
  text = Valid();
  text.replace(0, 15, "agent = " + long_name);
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("a.conf:1: agent"), HasSubstr("is longer than 255 bytes"))));
}

TEST_F(AgentConfigTest, RefusesAKeyFileLoadSharedKeyRefusesAtItsLine) {
  const std::string open_key = Write("open.key", std::string(32, 'k'), 0644);
  std::string text = Valid();
  text.replace(text.find(key_), key_.size(), open_key);
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("a.conf:4: "), HasSubstr("chmod 600"),
                                            Not(HasSubstr("kkkk")))));
  const std::string short_key = Write("short.key", "kk", 0600);
  text = Valid();
  text.replace(text.find(key_), key_.size(), short_key);
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"), StatusIs(Code::kConfig, HasSubstr("a.conf:4: ")));
  text = Valid();
  text.replace(text.find(key_), key_.size(), dir_ + "/missing.key");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, AllOf(HasSubstr("a.conf:4: "), HasSubstr("missing.key"))));
}

TEST_F(AgentConfigTest, LoadsTheFileByTheSharedRulesNamingXaAgent) {
  const std::string path = Write("agent.conf", Valid(), 0600);
  EXPECT_THAT(LoadAgentConfig(path), IsOk());
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  EXPECT_THAT(LoadAgentConfig(path), StatusIs(Code::kConfig, HasSubstr("chmod go-w")));
  // CI runs as root (scripts/test.sh installs packages), which may give a file away.
  ASSERT_EQ(::geteuid(), 0u) << "this test gives a file to another user: run it as root";
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
  EXPECT_THAT(LoadAgentConfig(path),
              StatusIs(Code::kConfig, HasSubstr("it must belong to the user running xa-agent")));
}

TEST_F(AgentConfigTest, RefusesLogDirEndingInDotOrDotDotAndDropsTrailingSlashes) {
  std::string text = Valid();
  text.replace(text.find("/var/lib/xa-agent/a"), 19, "/var/lib/xa-agent/..");
  EXPECT_THAT(ParseAgentConfig(text, "a.conf"),
              StatusIs(Code::kConfig, HasSubstr("a.conf:2: log_dir must name the log's "
                                                "directory itself")));
  text = Valid();
  text.replace(text.find("/var/lib/xa-agent/a"), 19, "/var/lib/xa-agent/a//");
  auto config = ParseAgentConfig(text, "a.conf");
  ASSERT_THAT(config, IsOk());
  EXPECT_EQ(config->log_dir, "/var/lib/xa-agent/a");
}

}  // namespace
}  // namespace xa::agent
