#include "examples/local_agents/local_agents.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace xa::local_agents {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::string EnvOrEmpty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool WritePrivateFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  return out && ::chmod(path.c_str(), 0600) == 0;
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

bool Listening(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected =
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  ::close(fd);
  return connected;
}

// Everything the child needs is built before fork(): between fork and exec a multi-threaded
// parent's child may only make async-signal-safe calls.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            int stdout_fd, int stderr_fd) {
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("XA_CRASH_POINT=", 0) == 0 || entry.rfind("XA_CRASH_COUNT=", 0) == 0) continue;
    environment.push_back(entry);
  }
  environment.insert(environment.end(), env.begin(), env.end());
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::dup2(stdout_fd, STDOUT_FILENO);
    ::dup2(stderr_fd, STDERR_FILENO);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

// The process's CPU-time clock, which the kernel keeps in nanoseconds and which counts the
// threads that have already exited. Not /proc/PID/stat's utime and stime: those are in clock
// ticks (10 ms at 100 Hz), and an agent that spends a few ms in a short case read as 0 there.
std::string WaitForWordAfter(const std::string& out, const std::string& mark,
                             std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    std::ifstream in(out);
    std::string found;
    for (std::string line; std::getline(in, line);) {
      if (size_t at = line.find(mark); at != std::string::npos) {
        found = line.substr(at + mark.size());
      }
    }
    if (!found.empty()) return found.substr(0, found.find(' '));
    if (std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

double ChildCpuMs(pid_t pid) {
  if (pid <= 0) return 0;
  clockid_t clock{};
  if (::clock_getcpuclockid(pid, &clock) != 0) return 0;
  timespec used{};
  if (::clock_gettime(clock, &used) != 0) return 0;
  return static_cast<double>(used.tv_sec) * 1000.0 + static_cast<double>(used.tv_nsec) / 1e6;
}

namespace {

// utime+stime, and cutime+cstime when `waited_children`, of /proc/<pid>/stat in ms; its parent.
double StatCpuMs(pid_t pid, bool waited_children, pid_t* parent) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  const size_t close = text.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos || close + 2 > text.size()) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string field; fields >> field;) f.push_back(field);
  if (f.size() < 15) return 0;
  if (parent != nullptr) *parent = static_cast<pid_t>(std::atol(f[1].c_str()));
  double ticks = std::atof(f[11].c_str()) + std::atof(f[12].c_str());
  if (waited_children) ticks += std::atof(f[13].c_str()) + std::atof(f[14].c_str());
  return ticks * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

double ProcessTreeCpuMs(pid_t pid) {
  if (pid <= 0) return 0;
  double total = StatCpuMs(pid, /*waited_children=*/true, nullptr);
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t parent = 0;
    const double cpu = StatCpuMs(static_cast<pid_t>(std::atol(name.c_str())), false, &parent);
    if (parent == pid) total += cpu;
  }
  return total;
}

std::string ServerRmSection(const std::string& rm_name, LocalDatabase database) {
  std::ostringstream out;
  out << "[rm " << rm_name << "]\n";
  if (database == LocalDatabase::kMariaDb) {
    out << "driver = mysql\nhost = " << EnvOrEmpty("XA_TEST_MARIADB_HOST")
        << "\nport = " << EnvOrEmpty("XA_TEST_MARIADB_PORT")
        << "\nuser = " << EnvOrEmpty("XA_TEST_MARIADB_USER")
        << "\ndatabase = " << EnvOrEmpty("XA_TEST_MARIADB_DATABASE")
        << "\npassword_file = " << EnvOrEmpty("XA_TEST_MARIADB_PASSWORD_FILE") << "\n";
  } else {
    out << "driver = odbc\ndialect = postgres\ndsn = " << EnvOrEmpty("XA_TEST_ODBC_PG_DSN")
        << "\nuser = " << EnvOrEmpty("XA_TEST_PG_USER")
        << "\npassword_file = " << EnvOrEmpty("XA_TEST_PG_PASSWORD_FILE") << "\n";
  }
  return out.str();
}

LocalAgents::LocalAgents(std::string work, std::string program, std::vector<LocalAgentSpec> specs,
                         int timeout_ms, uint32_t node_base,
                         std::set<uint32_t> coordinator_nodes)
    : work_(std::move(work)),
      program_(std::move(program)),
      timeout_ms_(timeout_ms),
      node_base_(node_base),
      coordinator_nodes_(std::move(coordinator_nodes)),
      key_file_(work_ + "/agents.key") {
  for (LocalAgentSpec& spec : specs) {
    Agent agent;
    agent.spec = std::move(spec);
    agents_.push_back(std::move(agent));
  }
}

LocalAgents::~LocalAgents() { Stop(); }

double LocalAgents::CpuMs() const {
  double total = 0;
  for (const Agent& agent : agents_) total += ChildCpuMs(agent.pid);
  return total;
}

Status LocalAgents::Start(std::vector<std::string> env) {
  env_ = std::move(env);
  std::string key(32, '\0');
  std::ifstream random("/dev/urandom", std::ios::binary);
  random.read(key.data(), static_cast<std::streamsize>(key.size()));
  if (!random || !WritePrivateFile(key_file_, key)) {
    return Status(Code::kIoError, "cannot write the agents' key file " + key_file_);
  }
  // A port found free can be taken before the agent binds it: the agent then exits at start and
  // all start again on new ports (nothing has used the old addresses yet).
  for (int attempt = 0; attempt < 5; ++attempt) {
    for (Agent& agent : agents_) agent.port = FreeLoopbackPort();
    bool all = true;
    uint32_t node = node_base_;
    for (Agent& agent : agents_) {
      agent.config = work_ + "/" + agent.spec.name + ".conf";
      agent.output = work_ + "/" + agent.spec.name + ".out";
      if (!WritePrivateFile(agent.config, Config(agent, node++))) {
        return Status(Code::kIoError, "cannot write " + agent.config);
      }
      if (!Launch(agent)) {
        all = false;
        break;
      }
    }
    if (all) return Status::Ok();
    Stop();
  }
  return Status(Code::kTimeout,
                "the xa-agent processes did not start; their output is in " + work_ + "/*.out");
}

bool LocalAgents::Stop() {
  bool clean = true;
  for (Agent& agent : agents_) clean = StopOne(agent) && clean;
  return clean;
}

Status LocalAgents::Relaunch(size_t i, const std::vector<std::string>& env) {
  Agent& agent = agents_[i];
  StopOne(agent);
  if (!Launch(agent, env, /*append=*/true)) {
    return Status(Code::kIoError, "agent " + agent.spec.name + " did not start again; its "
                                  "output is in " + agent.output);
  }
  return Status::Ok();
}

Status LocalAgents::RestartAll(int timeout_ms) {
  Stop();
  timeout_ms_ = timeout_ms;
  uint32_t node = node_base_;
  for (Agent& agent : agents_) {
    if (!WritePrivateFile(agent.config, Config(agent, node++))) {
      return Status(Code::kIoError, "cannot write " + agent.config);
    }
    if (!Launch(agent, {}, /*append=*/true)) {
      return Status(Code::kIoError, "agent " + agent.spec.name + " did not start again; its "
                                    "output is in " + agent.output);
    }
  }
  return Status::Ok();
}

Result<SteadyClock::time_point> LocalAgents::WaitDied(size_t i, std::chrono::seconds limit) {
  Agent& agent = agents_[i];
  const auto until = SteadyClock::now() + limit;
  int status = 0;
  while (agent.pid > 0 && ::waitpid(agent.pid, &status, WNOHANG) == 0) {
    if (SteadyClock::now() > until) {
      StopOne(agent);
      return Status(Code::kTimeout, "agent " + agent.spec.name + " was to die at its crash "
                                    "point and did not; its output is in " + agent.output);
    }
    std::this_thread::sleep_for(milliseconds(1));
  }
  agent.pid = -1;
  return SteadyClock::now();
}

ThreePhaseOptions LocalAgents::CoordinatorOptions() const {
  ThreePhaseOptions options;
  for (const Agent& agent : agents_) {
    options.agents.push_back({agent.spec.name, agent.address(), {agent.spec.rm_name}});
  }
  options.key_file = key_file_;
  // The coordinator's waits must be shorter than the agents' termination timeout.
  options.vote_timeout = milliseconds(timeout_ms_ / 2);
  options.ack_timeout = milliseconds(timeout_ms_ / 2);
  return options;
}

std::string LocalAgents::address(size_t i) const { return agents_[i].address(); }

std::string LocalAgents::Config(const Agent& self, uint32_t node) const {
  std::ostringstream out;
  out << "# written by examples/local_agents/local_agents.cc\nagent = " << self.spec.name
      << "\nlog_dir = " << work_ << "/" << self.spec.name << "-log\nnode_id = " << node
      << "\nkey_file = " << key_file_ << "\ntermination_timeout_ms = " << timeout_ms_
      << "\npeer_timeout_ms = 500\n";
  // The bench's 3PC coordinators: the orphan scan takes only their branches.
  out << "coordinator_node_ids = ";
  bool first = true;
  for (uint32_t coordinator : coordinator_nodes_) {
    out << (first ? "" : ", ") << coordinator;
    first = false;
  }
  out << "\n\n";
  for (const Agent& agent : agents_) {
    out << "[agent " << agent.spec.name << "]\naddress = " << agent.address()
        << "\nrms = " << agent.spec.rm_name << "\n";
  }
  out << "\n" << ServerRmSection(self.spec.rm_name, self.spec.database);
  return out.str();
}

bool LocalAgents::StopOne(Agent& agent) {
  if (agent.pid <= 0) return true;
  ::kill(agent.pid, SIGTERM);
  int status = 0;
  const auto until = SteadyClock::now() + std::chrono::seconds(10);
  while (::waitpid(agent.pid, &status, WNOHANG) == 0) {
    if (SteadyClock::now() > until) {
      ::kill(agent.pid, SIGKILL);
      ::waitpid(agent.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  agent.pid = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool LocalAgents::Launch(Agent& agent, const std::vector<std::string>& env, bool append) {
  const int fd = ::open(agent.output.c_str(),
                        O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::vector<std::string> environment = env_;
  environment.insert(environment.end(), env.begin(), env.end());
  agent.pid = Spawn({program_, "--config", agent.config}, environment, fd, fd);
  ::close(fd);
  if (agent.pid < 0) return false;
  for (int waited = 0; waited < 300; ++waited) {
    int status = 0;
    if (::waitpid(agent.pid, &status, WNOHANG) == agent.pid) {
      agent.pid = -1;
      return false;
    }
    if (Listening(agent.port)) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

}  // namespace xa::local_agents
