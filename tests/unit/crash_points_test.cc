#include "src/testing/crash_points.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace xa::crash {
namespace {

// Runs `hits` hits of `point` in a child armed with `armed_name`/`count`; returns the wait status.
int RunChild(const char* armed_name, const char* count, const Point& point, int hits) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("XA_CRASH_POINT", armed_name, 1);
    setenv("XA_CRASH_COUNT", count, 1);
    for (int i = 0; i < hits; ++i) Hit(point);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(CrashPointsTest, ArmedPointKillsAtTheKthHitWithSigkill) {
  int status = RunChild("after-decision-sync", "3", kAfterDecisionSync, 3);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(CrashPointsTest, FewerHitsThanTheCountLeaveTheProcessAlive) {
  int status = RunChild("after-decision-sync", "3", kAfterDecisionSync, 2);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CrashPointsTest, OtherPointsDoNotFire) {
  int status = RunChild("after-decision-sync", "1", kAfterFirstCommit, 5);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(CrashPointsTest, NamesAreUnique) {
  std::set<std::string_view> names;
  for (const Point& point : AllPoints()) EXPECT_TRUE(names.insert(point.name).second) << point.name;
  EXPECT_GE(names.size(), 19u);
}

}  // namespace
}  // namespace xa::crash
