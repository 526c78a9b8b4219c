// What every bench reads from its surroundings: the local servers' settings that
// `scripts/servers.sh start` writes to build/servers/env.sh, their password and pid files, and
// its own CPU time for the "CPU per ..." columns.
//
// Header only: each bench is one program, and these are a few lines each.

#ifndef XA_BENCH_BENCH_ENV_H_
#define XA_BENCH_BENCH_ENV_H_

#include <sys/resource.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace xa::bench {

// The variable's value; throws naming it and how to set it when it is missing or empty.
inline std::string RequireEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: start the servers (scripts/servers.sh start) and "
                             "source build/servers/env.sh");
  }
  return value;
}

// The first line of a file (a password file); throws naming the file when it has none.
inline std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  if (line.empty()) throw std::runtime_error("cannot read a line from " + path);
  return line;
}

// The pid in a server's pid file, 0 when there is none (the bench then leaves that server's
// CPU out of its table).
inline int ReadPid(const std::string& path) {
  std::ifstream in(path);
  int pid = 0;
  in >> pid;
  return pid;
}

// CPU time (user + system) this process has used so far, every thread, in ms.
inline double SelfCpuMs() {
  rusage self{};
  getrusage(RUSAGE_SELF, &self);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1000.0 + static_cast<double>(t.tv_usec) / 1000.0;
  };
  return ms(self.ru_utime) + ms(self.ru_stime);
}

}  // namespace xa::bench

#endif  // XA_BENCH_BENCH_ENV_H_
