// `xa-recover plan`, the real binary on the real servers, with an ODBC MariaDB resource manager
// that is not the first [rm]: the scan of every [rm] but the first runs on a thread of its own,
// and MariaDB Connector/ODBC 3.1.15 keeps its connection lock on the thread that ran the scan's
// batch, so closing that connection from the main thread at exit waited forever (with stdout
// redirected, nothing was printed). Each run, with stdout to a file and to a pipe, must exit
// within a bound with its whole report; a run that does not is killed and fails the test.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "testutil/db_env.h"
#include "xa/decision_log.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/xid.h"

namespace xa {
namespace {

constexpr std::chrono::seconds kBound{30};

enum class Output { kFile, kPipe };

struct ToolRun {
  bool exited = false;  // within kBound; otherwise killed
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs xa-recover with `args`, stdout to a file or a pipe, stderr to a file; kills it (and says
// so) when it has not exited after kBound.
ToolRun RunRecover(const std::string& dir, const std::vector<std::string>& args, Output output) {
  ToolRun run;
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";
  int pipe_fds[2] = {-1, -1};
  if (output == Output::kPipe && pipe(pipe_fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return run;
  }
  pid_t child = fork();
  if (child == 0) {
    int out = output == Output::kPipe
                  ? pipe_fds[1]
                  : open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0 || err < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) _exit(125);
    if (output == Output::kPipe) close(pipe_fds[0]);
    std::vector<char*> argv;
    static std::string program = XA_RECOVER_PATH;
    argv.push_back(program.data());
    std::vector<std::string> copies = args;
    for (std::string& arg : copies) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(126);
  }
  if (child < 0) {
    ADD_FAILURE() << "fork failed";
    return run;
  }
  const auto deadline = std::chrono::steady_clock::now() + kBound;
  if (output == Output::kPipe) {
    close(pipe_fds[1]);
    char buffer[4096];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd readable{pipe_fds[0], POLLIN, 0};
      if (poll(&readable, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t n = read(pipe_fds[0], buffer, sizeof buffer);
      if (n <= 0) break;  // EOF: the child closed stdout (exited)
      run.stdout_text.append(buffer, static_cast<size_t>(n));
    }
    close(pipe_fds[0]);
  }
  int status = 0;
  for (;;) {
    pid_t done = waitpid(child, &status, WNOHANG);
    if (done == child) {
      run.exited = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(child, SIGKILL);
      waitpid(child, &status, 0);
      break;
    }
    usleep(20000);
  }
  if (run.exited && WIFEXITED(status)) run.exit_code = WEXITSTATUS(status);
  if (output == Output::kFile) run.stdout_text = ReadAll(out_path);
  run.stderr_text = ReadAll(err_path);
  return run;
}

std::string MariaDbPasswordFile() { return test::RequireEnv("XA_TEST_MARIADB_PASSWORD_FILE"); }
std::string PostgresPasswordFile() { return test::RequireEnv("XA_TEST_PG_PASSWORD_FILE"); }

std::string OdbcSection(const std::string& name, const std::string& dsn, const char* dialect,
                        const test::ServerAccount& account, const std::string& password_file) {
  return "[rm " + name + "]\ndriver = odbc\ndsn = " + dsn + "\ndialect = " + dialect +
         "\nuser = " + account.user + "\npassword_file = " + password_file + "\n";
}

std::string MysqlSection(const std::string& name, const test::ServerAccount& account) {
  return "[rm " + name + "]\ndriver = mysql\nhost = " + account.host +
         "\nport = " + std::to_string(account.port) + "\nuser = " + account.user +
         "\ndatabase = " + account.database + "\npassword_file = " + MariaDbPasswordFile() +
         "\n";
}

struct ConfigCase {
  const char* name;
  std::string (*sections)();
  std::vector<std::string> rm_names;
  // The servers of the resource managers; each gets a foreign prepared branch, which every
  // resource manager on that server lists and the plan leaves alone.
  std::vector<odbc::Dialect> servers;
};

odbc::OdbcOptions ForeignBranchOptions(odbc::Dialect dialect) {
  test::ServerAccount account =
      dialect == odbc::Dialect::kPostgres ? test::PostgresAccount() : test::MariaDbAccount();
  odbc::OdbcOptions options;
  options.rm_name = "foreign-branch-maker";
  options.dsn =
      dialect == odbc::Dialect::kPostgres ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = dialect;
  options.read_only_optimization = false;  // an empty branch is prepared, not committed
  return options;
}

std::string PostgresOdbcThenMariaDbOdbc() {
  return OdbcSection("pg", test::OdbcPostgresDsn(), "postgres", test::PostgresAccount(),
                     PostgresPasswordFile()) +
         OdbcSection("maria_odbc", test::OdbcMariaDbDsn(), "mariadb", test::MariaDbAccount(),
                     MariaDbPasswordFile());
}
std::string MysqlThenMariaDbOdbc() {
  return MysqlSection("maria_cpp", test::MariaDbAccount()) +
         OdbcSection("maria_odbc", test::OdbcMariaDbDsn(), "mariadb", test::MariaDbAccount(),
                     MariaDbPasswordFile());
}
std::string TwoMariaDbOdbc() {
  return OdbcSection("maria_odbc_a", test::OdbcMariaDbDsn(), "mariadb", test::MariaDbAccount(),
                     MariaDbPasswordFile()) +
         OdbcSection("maria_odbc_b", test::OdbcMariaDbDsn(), "mariadb", test::MariaDbAccount(),
                     MariaDbPasswordFile());
}

class XaRecoverOdbcExitTest
    : public ::testing::TestWithParam<std::tuple<ConfigCase, Output, bool /*json*/>> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-recover-exit-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    std::mt19937 random{std::random_device{}()};
    const uint32_t node = (random() & 0x0fffffffu) | 0x40000000u;
    // An existing, empty log of the node: the tool never creates one.
    LogOptions log_options;
    log_options.dir = dir_ + "/log";
    log_options.node_id = node;
    {
      auto log = DecisionLog::Open(log_options);
      ASSERT_TRUE(log.ok()) << log.status().ToString();
    }
    foreign_ = Xid::Make(7, "xa-recover-exit-" + std::to_string(random()), "b").value();
    for (odbc::Dialect server : std::get<0>(GetParam()).servers) {
      auto rm = odbc::OdbcResourceManager::Create(ForeignBranchOptions(server));
      ASSERT_TRUE(rm.ok()) << rm.status().ToString();
      ASSERT_TRUE((*rm)->Start(foreign_, StartFlag::kNoFlags).ok());
      ASSERT_TRUE((*rm)->End(foreign_, EndFlag::kSuccess).ok());
      Status prepared = (*rm)->Prepare(foreign_);
      ASSERT_TRUE(prepared.ok()) << prepared.ToString();
      prepared_on_.push_back(server);
    }
    config_ = dir_ + "/xa-recover.conf";
    std::ofstream out(config_);
    out << "log_dir = " << dir_ << "/log\nnode_id = " << node << "\n"
        << std::get<0>(GetParam()).sections();
    out.close();
    ASSERT_EQ(chmod(config_.c_str(), 0600), 0);
  }
  void TearDown() override {
    for (odbc::Dialect server : prepared_on_) {
      auto rm = odbc::OdbcResourceManager::Create(ForeignBranchOptions(server));
      ASSERT_TRUE(rm.ok()) << rm.status().ToString();
      Status rolled_back = (*rm)->Rollback(foreign_);
      // MariaDB answers XA_RBROLLBACK for a branch that wrote nothing, prepared in another
      // session: rolled back all the same.
      EXPECT_TRUE(rolled_back.ok() || rolled_back.code() == Code::kRbRollback)
          << rolled_back.ToString();
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::string config_;
  Xid foreign_;
  std::vector<odbc::Dialect> prepared_on_;
};

TEST_P(XaRecoverOdbcExitTest, PlanExitsWithItsWholeReport) {
  const auto& [config, output, json] = GetParam();
  std::vector<std::string> args = {"--config", config_, "plan"};
  if (json) args.push_back("--json");
  auto start = std::chrono::steady_clock::now();
  ToolRun run = RunRecover(dir_, args, output);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_TRUE(run.exited) << "xa-recover plan did not exit within " << kBound.count()
                          << " s and was killed; stdout so far: " << run.stdout_text
                          << "\nstderr: " << run.stderr_text;
  // Nothing of the new node is anywhere, and a foreign branch is left alone: nothing to do.
  EXPECT_EQ(run.exit_code, 0) << run.stdout_text << "\nstderr: " << run.stderr_text;
  ASSERT_FALSE(run.stdout_text.empty()) << "stderr: " << run.stderr_text;
  EXPECT_EQ(run.stdout_text.back(), '\n');
  if (json) {
    // One whole JSON document: the closing brace of the report ends it.
    std::string trimmed = run.stdout_text.substr(0, run.stdout_text.find_last_not_of("\n") + 1);
    EXPECT_EQ(trimmed.front(), '{') << run.stdout_text;
    EXPECT_EQ(trimmed.back(), '}') << run.stdout_text;
  }
  // Every resource manager's scan is in the report: each lists the foreign branch of its server.
  for (const std::string& name : config.rm_names) {
    std::string row = json ? "\"rm\":\"" + name + "\",\"xid\":\"" + foreign_.ToString() + "\""
                           : foreign_.ToString() + "  rm=" + name + " ";
    EXPECT_NE(run.stdout_text.find(row), std::string::npos)
        << "no row of resource manager '" << name << "' for " << foreign_.ToString()
        << " in the report: " << run.stdout_text << "\nstderr: " << run.stderr_text;
  }
  RecordProperty("exit_ms", static_cast<int>(took.count()));
}

std::string CaseName(
    const ::testing::TestParamInfo<std::tuple<ConfigCase, Output, bool>>& info) {
  const auto& [config, output, json] = info.param;
  return std::string(config.name) + (output == Output::kPipe ? "ToPipe" : "ToFile") +
         (json ? "Json" : "Text");
}

INSTANTIATE_TEST_SUITE_P(
    Configs, XaRecoverOdbcExitTest,
    ::testing::Combine(
        ::testing::Values(
            ConfigCase{"PostgresOdbcThenMariaDbOdbc", PostgresOdbcThenMariaDbOdbc,
                       {"pg", "maria_odbc"}, {odbc::Dialect::kPostgres, odbc::Dialect::kMariaDb}},
            ConfigCase{"MysqlThenMariaDbOdbc", MysqlThenMariaDbOdbc, {"maria_cpp", "maria_odbc"},
                       {odbc::Dialect::kMariaDb}},
            ConfigCase{"TwoMariaDbOdbc", TwoMariaDbOdbc, {"maria_odbc_a", "maria_odbc_b"},
                       {odbc::Dialect::kMariaDb}}),
        ::testing::Values(Output::kFile, Output::kPipe), ::testing::Bool()),
    CaseName);

}  // namespace
}  // namespace xa
