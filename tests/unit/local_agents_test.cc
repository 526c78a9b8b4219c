// The process helpers of examples/local_agents, with which the benches measure the agents' CPU.

#include "examples/local_agents/local_agents.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace xa::local_agents {
namespace {

double OwnCpuMs() {
  timespec used{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
  return static_cast<double>(used.tv_sec) * 1000.0 + static_cast<double>(used.tv_nsec) / 1e6;
}

// A child that spends 3 ms of CPU, reports how much it has used, and waits to be killed: the
// lock-hold bench's agents spend a few ms in its short agent-link case, and a reading in clock
// ticks (10 ms) showed them as 0 there. Read to the microsecond, the child's CPU is what it
// reported, plus the little it spent writing the report.
TEST(ChildCpuMs, ReadsAFewMillisecondsOfARunningChildToTheMicrosecond) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    double used = OwnCpuMs();
    while (used < 3.0) used = OwnCpuMs();
    if (::write(report[1], &used, sizeof used) != static_cast<ssize_t>(sizeof used)) ::_exit(1);
    while (true) ::pause();
  }
  ::close(report[1]);
  double reported = 0;
  const ssize_t got = ::read(report[0], &reported, sizeof reported);
  ::close(report[0]);
  const double read = ChildCpuMs(child);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof reported));
  EXPECT_GE(read, reported);
  EXPECT_LT(read, reported + 2.0);
}

TEST(ChildCpuMs, ReadsZeroForAProcessThatDoesNotExist) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);  // reaped: its pid names nothing now
  EXPECT_EQ(ChildCpuMs(child), 0.0);
  EXPECT_EQ(ChildCpuMs(0), 0.0);
}

}  // namespace
}  // namespace xa::local_agents
