// The shared configuration reader's own rules, those xa-recover's tests (which cover the line
// grammar, numbers, duplicates, plain text, the file's and the password file's rules through its
// one grammar) do not reach: several section kinds, the neutral parsed form, the key helpers,
// and the program named in messages.

#include "src/base/config_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::internal {
namespace {

using test::IsOk;
using test::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

const ConfigGrammar kTwoKinds{"xa-test", {{"agent", "an agent", "agent"}, kRmSection}};

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-config-file-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(ConfigFileTest, ParsesSectionsOfSeveralKindsInFileOrderWithTheirLines) {
  auto file = ParseConfigText(
      "top = 1 # comment\n\n[agent a]\naddress = x # y\n[rm a]\ndriver = mysql\n[agent b]\n",
      "c.conf", kTwoKinds);
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(file->path, "c.conf");
  EXPECT_EQ(file->program, "xa-test");
  ASSERT_EQ(file->top.entries.size(), 1u);
  EXPECT_EQ(file->top.entries[0].key, "top");
  EXPECT_EQ(file->top.entries[0].value, "1");
  EXPECT_EQ(file->top.entries[0].line, 1);
  ASSERT_EQ(file->sections.size(), 3u);
  EXPECT_EQ(file->sections[0].kind, "agent");
  EXPECT_EQ(file->sections[0].name, "a");
  EXPECT_EQ(file->sections[0].line, 3);
  ASSERT_NE(file->sections[0].Find("address"), nullptr);
  EXPECT_EQ(file->sections[0].Find("address")->value, "x");
  EXPECT_EQ(file->sections[0].Find("address")->line, 4);
  EXPECT_EQ(file->sections[0].Find("driver"), nullptr);
  // One name in two kinds is two sections.
  EXPECT_EQ(file->sections[1].kind, "rm");
  EXPECT_EQ(file->sections[1].name, "a");
  EXPECT_EQ(file->sections[1].Label(), "[rm a]");
  EXPECT_TRUE(file->sections[2].entries.empty());
}

TEST_F(ConfigFileTest, RefusesAHeaderOfAnotherKindListingTheKindsItKnows) {
  EXPECT_THAT(ParseConfigText("[database a]\n", "c.conf", kTwoKinds),
              StatusIs(Code::kConfig, HasSubstr("c.conf:1: expected a section header "
                                                "'[agent <name>]' or '[rm <name>]'")));
  EXPECT_THAT(ParseConfigText("[agent a]\n[agent  a ]\n", "c.conf", kTwoKinds),
              StatusIs(Code::kConfig, HasSubstr("c.conf:2: agent 'a' is defined twice")));
  EXPECT_THAT(ParseConfigText("[agent a b]\n", "c.conf", kTwoKinds),
              StatusIs(Code::kConfig, HasSubstr("c.conf:1: an agent name must be one word")));
}

TEST_F(ConfigFileTest, RefusesAnInlinePasswordAtTheTopLevelToo) {
  EXPECT_THAT(ParseConfigText("password = hunter2\n", "c.conf", kTwoKinds),
              StatusIs(Code::kConfig, AllOf(HasSubstr("c.conf:1: passwords are not accepted"),
                                            Not(HasSubstr("hunter2")))));
}

TEST_F(ConfigFileTest, UnknownKeysAreRefusedInFileOrderNamingTheSectionAndTheKnownKeys) {
  auto file =
      ParseConfigText("a = 1\nzz = 2\nyy = 3\n[agent x]\nb = 1\nc = 2\n", "c.conf", kTwoKinds);
  ASSERT_THAT(file, IsOk());
  constexpr std::array<std::string_view, 2> kKnown = {"a", "b"};
  EXPECT_THAT(file->RefuseUnknownKeys(file->top, kKnown),
              StatusIs(Code::kConfig, HasSubstr("c.conf:2: unknown setting 'zz' (known: a, b)")));
  EXPECT_THAT(file->RefuseUnknownKeys(file->sections[0], kKnown),
              StatusIs(Code::kConfig,
                       HasSubstr("c.conf:6: unknown setting 'c' in [agent x] (known: a, b)")));
  constexpr std::array<std::string_view, 3> kAll = {"a", "zz", "yy"};
  EXPECT_THAT(file->RefuseUnknownKeys(file->top, kAll), IsOk());
}

TEST_F(ConfigFileTest, IntegerPlacesTheNumberRuleAtTheEntrysLine) {
  auto file = ParseConfigText("\nnode_id = 7x\n", "c.conf", kTwoKinds);
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT(file->Integer(kNodeId, file->top.entries[0]),
              StatusIs(Code::kConfig,
                       HasSubstr("c.conf:2: node_id must be a whole number from 0 to 4294967295, "
                                 "not '7x'")));
}

TEST_F(ConfigFileTest, PasswordFileIsNeverFollowedThroughALinkAndMayBeReadOnly) {
  const std::string pw = Write("pw", "s3cret\r\n", 0400);
  const std::string link = dir_ + "/link.pw";
  ASSERT_EQ(::symlink(pw.c_str(), link.c_str()), 0);
  auto file = ParseConfigText("password_file = " + pw + "\n[rm a]\npassword_file = " + link + "\n",
                              "c.conf", kTwoKinds);
  ASSERT_THAT(file, IsOk());
  // Mode 0400 is accepted, and the line end is not part of the password.
  EXPECT_EQ(file->Password(file->top.entries[0]).value(), "s3cret");
  EXPECT_THAT(file->Password(file->sections[0].entries[0]),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("c.conf:3: "), HasSubstr("a symbolic link is refused"))));
}

TEST_F(ConfigFileTest, TheRunningProgramIsNamedWhenAFileBelongsToAnotherUser) {
  // CI runs as root (scripts/test.sh installs packages), which may give a file away.
  ASSERT_EQ(::geteuid(), 0u) << "this test gives a file to another user: run it as root";
  const std::string conf = Write("c.conf", "", 0600);
  const std::string pw = Write("pw", "s3cret", 0600);
  ASSERT_EQ(::chown(conf.c_str(), 65534, 65534), 0);
  ASSERT_EQ(::chown(pw.c_str(), 65534, 65534), 0);
  EXPECT_THAT(ReadConfigFile(conf, "xa-test"),
              StatusIs(Code::kConfig, HasSubstr("the user running xa-test (uid 0) or to root")));
  auto file = ParseConfigText("password_file = " + pw + "\n", "c.conf", kTwoKinds);
  ASSERT_THAT(file, IsOk());
  // Root may own a configuration, but a secret must be the running user's own: the message
  // offers no "or to root".
  EXPECT_THAT(file->Password(file->top.entries[0]),
              StatusIs(Code::kConfig, AllOf(HasSubstr("c.conf:1: password_file"),
                                            HasSubstr("the user running xa-test (uid 0)"),
                                            Not(HasSubstr("or to root")))));
}

TEST_F(ConfigFileTest, RmSectionRefusesTheFirstMistakeInFileOrder) {
  auto file = ParseConfigText("[rm a]\nport = 99999\nhots = h\n[rm b]\ndriver = odbc\n", "c.conf",
                              kTwoKinds);
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT(ReadRmSection(*file, file->sections[0]),
              StatusIs(Code::kConfig, HasSubstr("c.conf:2: port must be")));
  auto b = ReadRmSection(*file, file->sections[1]);
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->line, 4);
  EXPECT_THAT(CheckRmComplete(*file, *b),
              StatusIs(Code::kConfig, HasSubstr("c.conf:4: [rm b] needs 'dsn = <ODBC DSN>'")));
}

}  // namespace
}  // namespace xa::internal
