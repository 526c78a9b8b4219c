// The demo's child processes (crashing copies of itself, agents): waiting for one with a bound,
// and saying how it ended.

#ifndef XA_EXAMPLES_BANK_TRANSFER_CHILD_PROCESS_H_
#define XA_EXAMPLES_BANK_TRANSFER_CHILD_PROCESS_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>

namespace xa::demo {

// Waits up to `limit` for `pid` to end; past it, kills it (SIGKILL) and reaps it. Returns its
// wait status.
inline int WaitOrKill(pid_t pid, std::chrono::milliseconds limit) {
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return status;
}

// "killed by signal 9", "exit 0".
inline std::string DescribeExit(int status) {
  return WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                             : "exit " + std::to_string(WEXITSTATUS(status));
}

}  // namespace xa::demo

#endif  // XA_EXAMPLES_BANK_TRANSFER_CHILD_PROCESS_H_
