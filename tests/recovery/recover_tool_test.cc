// xa-recover as an operator runs it, without servers: a resource manager that refuses the
// connection stands for one that is down. stdout and stderr are separate pipes, as in
// `xa-recover plan --json | jq`, so that what each carries is checked on its own.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/json_validator.h"
#include "testutil/status_matchers.h"
#include "xa/decision_log.h"
#include "xa/xid.h"

extern char** environ;

namespace xa {
namespace {

using test::IsOk;
using test::JsonValidator;
using ::testing::AllOf;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

struct ToolRun {
  int exit_code = -1;  // -1: killed (by the deadline or a signal)
  bool timed_out = false;
  std::string out, err;
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") +
           "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  }
};

// Runs xa-recover with `args`, `extra_env` added to the environment, stdout and stderr each on
// a pipe; kills it after `timeout`.
ToolRun RunTool(const std::vector<std::string>& args,
                const std::map<std::string, std::string>& extra_env = {},
                std::chrono::seconds timeout = std::chrono::seconds(60)) {
  std::vector<std::string> argv_strings = {XA_RECOVER_PATH};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    if (extra_env.count(entry.substr(0, entry.find('='))) == 0) env_strings.push_back(entry);
  }
  for (const auto& [key, value] : extra_env) env_strings.push_back(key + "=" + value);
  std::vector<char*> argv, envp;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  for (std::string& s : env_strings) envp.push_back(s.data());
  argv.push_back(nullptr);
  envp.push_back(nullptr);

  ToolRun run;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return run;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&run.out, &run.err};
  int open_pipes = 2;
  while (open_pipes > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buffer[4096];
      ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_pipes;
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  return run;
}

class RecoverToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-recover-tool-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    log_dir_ = dir_ + "/log";
    LogOptions options;
    options.dir = log_dir_;
    options.node_id = kNode;
    ASSERT_THAT(DecisionLog::Open(options), IsOk());  // a new, empty log; closed at once
  }
  void TearDown() override {
    if (std::system(("rm -rf '" + dir_ + "'").c_str()) != 0) {
      // Leftovers in /tmp only cost disk space.
    }
  }

  // A configuration whose resource manager refuses every connection (nothing listens on port
  // 1), so recovery cannot finish: the output then holds the library's warnings too.
  std::string ConfigWithUnreachableRm(const std::string& rm_name) {
    std::string path = dir_ + "/c.conf";
    std::ofstream(path) << "log_dir = " << log_dir_ << "\nnode_id = " << kNode << "\n\n[rm "
                        << rm_name
                        << "]\ndriver = mysql\nhost = 127.0.0.1\nport = 1\nuser = nobody\n"
                           "connect_timeout_s = 2\n";
    ::chmod(path.c_str(), 0600);
    return path;
  }

  // Appends `records` to the test's log (opened for it, closed again).
  void AppendToLog(const std::vector<LogRecord>& records) {
    LogOptions options;
    options.dir = log_dir_;
    options.node_id = kNode;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(options);
    ASSERT_THAT(log, IsOk());
    for (const LogRecord& record : records) ASSERT_THAT((*log)->Append(record), IsOk());
  }

  static constexpr uint32_t kNode = 7;
  std::string dir_, log_dir_;
};

TEST_F(RecoverToolTest, PlanJsonOnStdoutIsOneValidDocumentAndWarningsGoToStderr) {
  // Well-formed UTF-8 in a name stays readable in the JSON.
  std::string config = ConfigWithUnreachableRm("z\xc3\xbcrich");
  ToolRun run = RunTool({"--config", config, "plan", "--json"}, {{"XA_LOG_LEVEL", "warning"}});
  ASSERT_EQ(run.exit_code, 1) << run.Describe();  // plan: work is left (an RM is unreachable)
  ASSERT_THAT(run.out, EndsWith("}\n")) << run.Describe();
  EXPECT_EQ(JsonValidator::Check(run.out), "") << run.Describe();
  EXPECT_THAT(run.out, HasSubstr("\"unreachable_rms\":[\"z\xc3\xbcrich\"]")) << run.Describe();
  // The library's warning about the scan is there, on stderr.
  EXPECT_THAT(run.err, HasSubstr("xa: warning: [recovery]")) << run.Describe();
}

TEST_F(RecoverToolTest, ResolveThatCannotFinishDoesNotSayDone) {
  ToolRun run = RunTool({"--config", ConfigWithUnreachableRm("accounts"), "resolve"});
  ASSERT_EQ(run.exit_code, 1) << run.Describe();
  EXPECT_THAT(run.out, StartsWith("not finished: ")) << run.Describe();
  EXPECT_THAT(run.out, Not(HasSubstr("done:"))) << run.Describe();
}

TEST_F(RecoverToolTest, PlanShowsOpenThreePhaseRecordsAsWaitingForTheirAgents) {
  // A 3PC pre-commit and a 3PC commit decision, both open: without an agent configuration the
  // tool may neither decide nor commit them (only the agents, or the manager's recovery that
  // talks to them, can).
  XidGenerator xids(kNode, 1);
  const Xid pre_committed = xids.Next(Protocol::kThreePhase);
  const Xid decided = xids.Next(Protocol::kThreePhase);
  std::vector<LogRecord> records;
  for (auto [xid, type] : {std::pair{pre_committed, RecordType::kPreCommit},
                           std::pair{decided, RecordType::kCommitDecision}}) {
    LogRecord record;
    record.type = type;
    record.xid = xid;
    record.protocol = Protocol::kThreePhase;
    record.participants = {{"accounts", xid.WithBranch(0)}, {"ledger", xid.WithBranch(1)}};
    records.push_back(record);
  }
  ASSERT_NO_FATAL_FAILURE(AppendToLog(records));
  ToolRun run = RunTool({"--config", ConfigWithUnreachableRm("accounts"), "plan"});
  ASSERT_EQ(run.exit_code, 1) << run.Describe();  // work is left: the agents' to finish
  EXPECT_THAT(run.out, HasSubstr(pre_committed.WithBranch(0).ToString())) << run.Describe();
  EXPECT_THAT(run.out, HasSubstr(decided.WithBranch(1).ToString())) << run.Describe();
  EXPECT_THAT(run.out, HasSubstr("waits for its participant agents")) << run.Describe();
  EXPECT_THAT(run.out, HasSubstr("4 awaiting 3PC agents")) << run.Describe();
  EXPECT_THAT(run.out, Not(HasSubstr("action=commit"))) << run.Describe();
  EXPECT_THAT(run.out, Not(HasSubstr("action=rollback"))) << run.Describe();
}

// A heuristic outcome (here a partition's split of a 3PC transaction, as the coordinator's
// recovery records it) is reported until an operator clears it; clear-heuristic writes the
// acknowledgement, with its reason, and only for a heuristic that is open.
TEST_F(RecoverToolTest, ClearHeuristicAcknowledgesAnOpenHeuristicOutcomeWithItsReason) {
  XidGenerator xids(kNode, 1);
  const Xid split = xids.Next(Protocol::kThreePhase);
  LogRecord record;
  record.type = RecordType::kHeuristic;
  record.xid = split;
  record.protocol = Protocol::kThreePhase;
  record.outcome = Outcome::kHeuristicMixed;
  record.participants = {{"accounts", split.WithBranch(0)}, {"ledger", split.WithBranch(1)}};
  record.reason = "a partition split the outcome";
  ASSERT_NO_FATAL_FAILURE(AppendToLog({record}));
  LogOptions options;
  options.dir = log_dir_;
  options.node_id = kNode;
  const std::string config = ConfigWithUnreachableRm("accounts");

  ToolRun no_reason = RunTool({"--config", config, "clear-heuristic", split.ToString()});
  EXPECT_EQ(no_reason.exit_code, 2) << no_reason.Describe();
  EXPECT_THAT(no_reason.err, HasSubstr("clear-heuristic needs --reason")) << no_reason.Describe();
  ToolRun bad_xid = RunTool({"--config", config, "clear-heuristic", "not-an-xid", "--reason", "x"});
  EXPECT_EQ(bad_xid.exit_code, 2) << bad_xid.Describe();
  ToolRun unknown = RunTool({"--config", config, "clear-heuristic",
                             xids.Next(Protocol::kThreePhase).ToString(), "--reason", "x"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.Describe();
  EXPECT_THAT(unknown.err, HasSubstr("no uncleared heuristic outcome")) << unknown.Describe();
  Result<LogState> before = DecisionLog::ReadState(options);
  ASSERT_THAT(before, IsOk());
  ASSERT_EQ(before->open_heuristics.count(split), 1u) << "a refused clear wrote to the log";

  ToolRun cleared = RunTool({"--config", config, "clear-heuristic", split.ToString(), "--reason",
                             "refunded the customer by hand"});
  EXPECT_EQ(cleared.exit_code, 0) << cleared.Describe();
  EXPECT_THAT(cleared.out, HasSubstr("cleared the heuristic outcome of " + split.ToString()));
  Result<LogState> after = DecisionLog::ReadState(options);
  ASSERT_THAT(after, IsOk());
  EXPECT_EQ(after->open_heuristics.count(split), 0u);
  bool audited = false;
  Result<std::unique_ptr<DecisionLog>> log = DecisionLog::OpenReadOnly(options);
  ASSERT_THAT(log, IsOk());
  EXPECT_THAT((*log)->Scan([&](const LogRecord& r) {
    audited = audited || (r.type == RecordType::kHeuristicCleared && r.xid == split &&
                          r.reason == "refunded the customer by hand");
  }), IsOk());
  EXPECT_TRUE(audited) << "the clear and its reason are not in the log";

  ToolRun again = RunTool({"--config", config, "clear-heuristic", split.ToString(), "--reason",
                           "again"});
  EXPECT_EQ(again.exit_code, 2) << again.Describe();
}

TEST_F(RecoverToolTest, MalformedNumbersOnTheCommandLineAreUsageErrors) {
  std::string config = ConfigWithUnreachableRm("accounts");
  struct Case {
    std::vector<std::string> args;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {{"resolve", "--second-pass-ms", "abc"},
            "--second-pass-ms must be a whole number from 0 to 3600000, not 'abc'"},
           {{"resolve", "--second-pass-ms", "10s"}, "--second-pass-ms must be"},
           {{"resolve", "--second-pass-ms", "9223372036854775807"}, "--second-pass-ms must be"},
           {{"resolve", "--sessions", "4x"}, "--sessions must be a whole number from 1 to 64"},
       }) {
    std::vector<std::string> args = {"--config", config};
    args.insert(args.end(), c.args.begin(), c.args.end());
    ToolRun run = RunTool(args);
    EXPECT_EQ(run.exit_code, 2) << run.Describe();
    EXPECT_THAT(run.err, HasSubstr(c.expected)) << run.Describe();
    EXPECT_THAT(run.out, IsEmpty()) << run.Describe();
  }
}

TEST_F(RecoverToolTest, FifoAsTheConfigurationIsRefusedWithoutBlocking) {
  std::string fifo = dir_ + "/fifo.conf";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ToolRun run = RunTool({"--config", fifo, "plan"}, {}, std::chrono::seconds(20));
  ASSERT_FALSE(run.timed_out) << run.Describe();
  EXPECT_EQ(run.exit_code, 3) << run.Describe();
  EXPECT_THAT(run.err, AllOf(HasSubstr("FIFO"), HasSubstr("not a regular file"))) << run.Describe();
}

TEST_F(RecoverToolTest, ArgumentsAndNamesAreEscapedInMessages) {
  ToolRun run = RunTool({"plan", "bad\x1b[2J"});
  EXPECT_EQ(run.exit_code, 2) << run.Describe();
  EXPECT_THAT(run.err, HasSubstr("unexpected argument 'bad\\x1b[2J'")) << run.Describe();
  EXPECT_THAT(run.err, Not(HasSubstr("\x1b"))) << run.Describe();
}

}  // namespace
}  // namespace xa
