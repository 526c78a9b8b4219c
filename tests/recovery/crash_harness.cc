#include "tests/recovery/crash_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "testutil/db_env.h"

extern char** environ;

namespace xa::test {

bool ProcessResult::Exited(int code) const {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == code;
}

bool ProcessResult::KilledBy(int signal) const {
  return WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == signal;
}

std::string ProcessResult::Describe() const {
  std::string how = WIFEXITED(wait_status)
                        ? "exit " + std::to_string(WEXITSTATUS(wait_status))
                        : "killed by signal " + std::to_string(WTERMSIG(wait_status));
  std::string tail = output.size() > 4000 ? output.substr(output.size() - 4000) : output;
  return how + "; output:\n" + tail;
}

pid_t Spawn(const std::vector<std::string>& argv,
            const std::map<std::string, std::string>& extra_env, const std::string& output_file) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  // A crash point armed for this test process must not leak into children unless asked.
  env.erase("XA_CRASH_POINT");
  env.erase("XA_CRASH_COUNT");
  for (const auto& [k, v] : extra_env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, output_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << argv[0] << ": " << std::strerror(rc);
    return -1;
  }
  return pid;
}

ProcessResult Wait(pid_t pid, const std::string& output_file, std::chrono::seconds timeout) {
  ProcessResult result;
  if (pid <= 0) return result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    pid_t done = waitpid(pid, &result.wait_status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &result.wait_status, 0);
      ADD_FAILURE() << "process " << pid << " ran longer than " << timeout.count()
                    << " s and was killed";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::ifstream in(output_file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  result.output = buffer.str();
  return result;
}

ProcessResult RunProcess(const std::vector<std::string>& argv,
                  const std::map<std::string, std::string>& extra_env,
                  std::chrono::seconds timeout) {
  char pattern[] = "/tmp/xa-run-output-XXXXXX";
  int fd = mkstemp(pattern);
  if (fd >= 0) close(fd);
  ProcessResult result = Wait(Spawn(argv, extra_env, pattern), pattern, timeout);
  unlink(pattern);
  return result;
}

ScratchDir::ScratchDir() {
  char pattern[] = "/tmp/xa-crash-test-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
  }
  path_ = pattern;
  chmod(path_.c_str(), 0700);
}

ScratchDir::~ScratchDir() {
  if (!path_.empty() && std::getenv("XA_KEEP_SCRATCH") == nullptr) {
    std::string command = "rm -rf '" + path_ + "'";
    if (std::system(command.c_str()) != 0) {
      // Leftovers in /tmp only cost disk space.
    }
  }
}

std::string WriteBankRecoverConfig(const ScratchDir& dir, const std::string& log_dir,
                                   uint32_t node_id, int orphan_min_age_ms,
                                   const std::string& marker_rm, const std::string& marker_table) {
  std::string path = dir.File("xa-recover.conf");
  std::ofstream out(path);
  out << "log_dir = " << log_dir << "\n"
      << "node_id = " << node_id << "\n"
      << "orphan_min_age_ms = " << orphan_min_age_ms << "\n";
  if (!marker_rm.empty()) {
    out << "marker_rm = " << marker_rm << "\nmarker_table = " << marker_table << "\n";
  }
  out << "\n"
      << "[rm bank-mariadb]\ndriver = mysql\n"
      << "host = " << RequireEnv("XA_TEST_MARIADB_HOST") << "\n"
      << "port = " << RequireEnv("XA_TEST_MARIADB_PORT") << "\n"
      << "user = " << RequireEnv("XA_TEST_MARIADB_USER") << "\n"
      << "database = " << RequireEnv("XA_TEST_MARIADB_DATABASE") << "\n"
      << "password_file = " << RequireEnv("XA_TEST_MARIADB_PASSWORD_FILE") << "\n\n"
      << "[rm bank-postgres]\ndriver = odbc\ndialect = postgres\n"
      << "dsn = " << RequireEnv("XA_TEST_ODBC_PG_DSN") << "\n"
      << "user = " << RequireEnv("XA_TEST_PG_USER") << "\n"
      << "password_file = " << RequireEnv("XA_TEST_PG_PASSWORD_FILE") << "\n";
  out.close();
  chmod(path.c_str(), 0600);
  return path;
}

std::set<std::string> ReadAcknowledged(const std::string& ack_file) {
  std::set<std::string> acked;
  std::ifstream in(ack_file);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) acked.insert(line);
  }
  return acked;
}

ProcessResult MariaDbAdmin(const std::string& sql) {
  return RunProcess({"/usr/bin/mariadb", "--no-defaults", "-S", MariaDbSocket(), "-u",
              MariaDbAdminUser(), RequireEnv("XA_TEST_MARIADB_DATABASE"), "-N", "-e", sql},
             {});
}

int64_t MariaDbNumber(const std::string& sql) {
  ProcessResult r = MariaDbAdmin(sql);
  EXPECT_TRUE(r.Exited(0)) << sql << ": " << r.Describe();
  try {
    return std::stoll(r.output);
  } catch (...) {
    ADD_FAILURE() << sql << " answered '" << r.output << "'";
    return -1;
  }
}

ProcessResult PostgresAdmin(const std::string& sql) {
  return RunProcess({"/usr/bin/psql", "-X", "-q", "-t", "-A", "-h", RequireEnv("XA_TEST_PG_HOST"), "-p",
              RequireEnv("XA_TEST_PG_PORT"), "-U", PostgresAdminUser(), "-d",
              RequireEnv("XA_TEST_PG_DATABASE"), "-v", "ON_ERROR_STOP=1", "-c", sql},
             {});
}

namespace {

constexpr char kForeignMariaDbXid[] = "'foreign-tm-gtrid','branch-1',77";
constexpr char kForeignPostgresGid[] = "foreign-app-42";

}  // namespace

void SeedForeignBranches(const std::string& prefix) {
  RemoveForeignBranches(prefix);
  const std::string table = prefix + "_foreign";
  ProcessResult m = MariaDbAdmin(
      "CREATE TABLE IF NOT EXISTS " + table + " (id INT PRIMARY KEY) ENGINE=InnoDB; " +
      "XA START " + kForeignMariaDbXid + "; INSERT INTO " + table + " VALUES (1); XA END " +
      kForeignMariaDbXid + "; XA PREPARE " + kForeignMariaDbXid + ";");
  ASSERT_TRUE(m.Exited(0)) << m.Describe();
  ProcessResult p = PostgresAdmin("CREATE TABLE IF NOT EXISTS " + table +
                                  " (id INT PRIMARY KEY); BEGIN; INSERT INTO " + table +
                                  " VALUES (1); PREPARE TRANSACTION '" + kForeignPostgresGid +
                                  "';");
  ASSERT_TRUE(p.Exited(0)) << p.Describe();
  ASSERT_EQ(CountForeignSeeds(), 2);
}

int CountForeignSeeds() {
  int found = 0;
  ProcessResult m = MariaDbAdmin("XA RECOVER");
  if (m.output.find("foreign-tm-gtridbranch-1") != std::string::npos) ++found;
  ProcessResult p = PostgresAdmin("SELECT gid FROM pg_prepared_xacts");
  if (p.output.find(kForeignPostgresGid) != std::string::npos) ++found;
  return found;
}

void RemoveForeignBranches(const std::string& prefix) {
  MariaDbAdmin(std::string("XA ROLLBACK ") + kForeignMariaDbXid);
  PostgresAdmin(std::string("ROLLBACK PREPARED '") + kForeignPostgresGid + "'");
  MariaDbAdmin("DROP TABLE IF EXISTS " + prefix + "_foreign");
  PostgresAdmin("DROP TABLE IF EXISTS " + prefix + "_foreign");
}

long EnvLong(const char* name, long fallback) {
  const char* value = std::getenv(name);
  return value == nullptr ? fallback : std::atol(value);
}

uint32_t RandomNodeId() {
  std::random_device device;
  uint32_t node = device();
  return node == 0 ? 1 : node;
}

std::string BankWorkerPath() { return XA_BANK_WORKER_PATH; }
std::string XaRecoverPath() { return XA_RECOVER_PATH; }

}  // namespace xa::test
