// The Env clock: the real one (env_posix.cc) and the fake one tests drive by hand.

#include "testutil/fake_clock.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace xa::test {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FakeClockTest, StartsAtTheDocumentedTimesAndAdvancesSteadyAndWallTogether) {
  FakeClock clock;
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart);
  EXPECT_EQ(clock.WallNow(), FakeClock::kWallStart);
  EXPECT_EQ(clock.WallMicros(), int64_t{1767225600} * 1000000);
  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart + milliseconds(1500));
  EXPECT_EQ(clock.WallNow(), FakeClock::kWallStart + milliseconds(1500));
}

TEST(FakeClockTest, StepWallMovesWallTimeAloneEvenBackwards) {
  FakeClock clock;
  clock.StepWall(-hours(2));
  EXPECT_EQ(clock.WallNow(), FakeClock::kWallStart - hours(2));
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart);
}

TEST(FakeClockTest, DeadlineAfterSaturatesInsteadOfOverflowing) {
  FakeClock clock;
  EXPECT_EQ(clock.DeadlineAfter(microseconds::max()), Clock::kNoDeadline);
  EXPECT_EQ(clock.DeadlineAfter(seconds(3)), FakeClock::kSteadyStart + seconds(3));
}

TEST(FakeClockTest, SleepForReturnsOnlyOnceTheClockPassesItsDeadline) {
  FakeClock clock;
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepFor(seconds(5));
    woke = true;
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  clock.Advance(seconds(4));
  // Still registered as blocked: it leaves the list only after its deadline.
  EXPECT_EQ(clock.blocked(), 1u);
  EXPECT_FALSE(woke);
  clock.Advance(seconds(1));
  sleeper.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(clock.blocked(), 0u);
}

TEST(FakeClockTest, SleepForZeroOrLessReturnsAtOnce) {
  FakeClock clock;
  clock.SleepFor(microseconds(0));
  clock.SleepFor(microseconds(-5));
  EXPECT_EQ(clock.blocked(), 0u);
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart);
}

TEST(FakeClockTest, WaitUntilTimesOutWhenTheClockReachesTheDeadline) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool flag = false;
  bool result = true;
  Clock::SteadyTime returned_at{};
  const Clock::SteadyTime deadline = clock.DeadlineAfter(seconds(10));
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitUntil(lock, cv, deadline, [&] { return flag; });
    returned_at = clock.SteadyNow();
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  clock.Advance(seconds(9));
  EXPECT_EQ(clock.blocked(), 1u);
  clock.Advance(seconds(1));
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_EQ(returned_at, deadline);
}

TEST(FakeClockTest, WaitUntilReturnsTrueWhenNotifiedBeforeTheDeadline) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool flag = false;
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitUntil(lock, cv, clock.DeadlineAfter(seconds(10)), [&] { return flag; });
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  {
    std::lock_guard<std::mutex> lock(mu);
    flag = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart);  // no time had to pass
}

TEST(FakeClockTest, WaitWithoutDeadlineIgnoresTimeAndWakesOnNotify) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool flag = false;
  bool result = false;
  std::thread waiter([&] {
    std::unique_lock<std::mutex> lock(mu);
    result = clock.WaitUntil(lock, cv, Clock::kNoDeadline, [&] { return flag; });
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  EXPECT_FALSE(clock.NextDeadline().has_value());
  EXPECT_FALSE(clock.AdvanceToNextDeadline());
  clock.Advance(hours(1000));
  EXPECT_EQ(clock.blocked(), 1u);
  {
    std::lock_guard<std::mutex> lock(mu);
    flag = true;
  }
  cv.notify_all();
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(FakeClockTest, WaitWhoseDeadlineHasPassedReturnsAtOnceWithThePredicate) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  EXPECT_FALSE(clock.WaitUntil(lock, cv, clock.SteadyNow(), [] { return false; }));
  EXPECT_TRUE(clock.WaitUntil(lock, cv, clock.SteadyNow(), [] { return true; }));
  EXPECT_EQ(clock.WaitOnce(lock, cv, clock.SteadyNow()), std::cv_status::timeout);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_EQ(clock.blocked(), 0u);
}

TEST(FakeClockTest, AdvanceToNextDeadlineWakesTheEarliestSleeperFirst) {
  FakeClock clock;
  std::atomic<bool> short_done{false}, long_done{false};
  std::thread long_sleeper([&] {
    clock.SleepFor(seconds(7));
    long_done = true;
  });
  std::thread short_sleeper([&] {
    clock.SleepFor(seconds(3));
    short_done = true;
  });
  ASSERT_TRUE(clock.WaitForBlocked(2));
  EXPECT_EQ(clock.NextDeadline(), FakeClock::kSteadyStart + seconds(3));
  ASSERT_TRUE(clock.AdvanceToNextDeadline());
  short_sleeper.join();
  EXPECT_TRUE(short_done);
  EXPECT_FALSE(long_done);
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart + seconds(3));
  ASSERT_TRUE(clock.AdvanceToNextDeadline());
  long_sleeper.join();
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart + seconds(7));
}

// Waiters with deadlines 1 s apart each wake exactly when the clock reaches theirs, in order.
TEST(FakeClockTest, ManyWaitersWakeInDeadlineOrderAtTheirOwnDeadline) {
  constexpr int kWaiters = 8;
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;  // shared by every waiter: notifies reach all of them
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::vector<Clock::SteadyTime> woke_at(kWaiters);
  int woken = 0;
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      std::unique_lock<std::mutex> lock(mu);
      bool r = clock.WaitUntil(lock, cv, FakeClock::kSteadyStart + seconds(i + 1),
                               [] { return false; });
      EXPECT_FALSE(r);
      lock.unlock();
      std::lock_guard<std::mutex> done(done_mu);
      woke_at[i] = clock.SteadyNow();
      ++woken;
      done_cv.notify_all();
    });
  }
  ASSERT_TRUE(clock.WaitForBlocked(kWaiters));
  for (int i = 0; i < kWaiters; ++i) {
    clock.Advance(seconds(1));
    std::unique_lock<std::mutex> done(done_mu);
    done_cv.wait(done, [&] { return woken == i + 1; });
  }
  for (std::thread& t : waiters) t.join();
  for (int i = 0; i < kWaiters; ++i) {
    EXPECT_EQ(woke_at[i], FakeClock::kSteadyStart + seconds(i + 1)) << "waiter " << i;
  }
}

// Advance racing with a waiter that is just starting to wait must never lose the wake-up.
TEST(FakeClockTest, AdvanceRacingWithAWaiterNeverLosesTheWakeUp) {
  FakeClock clock;
  std::mutex mu;
  std::condition_variable cv;
  for (int i = 0; i < 500; ++i) {
    const Clock::SteadyTime deadline = clock.DeadlineAfter(microseconds(1));
    std::thread waiter([&] {
      std::unique_lock<std::mutex> lock(mu);
      EXPECT_FALSE(clock.WaitUntil(lock, cv, deadline, [] { return false; }));
    });
    clock.Advance(microseconds(1));
    waiter.join();  // hangs (and the test times out) if the wake-up was lost
  }
  EXPECT_EQ(clock.blocked(), 0u);
}

TEST(FakeClockTest, EnvWithClockReadsWallTimeFromTheFakeClock) {
  FakeClock clock;
  EnvWithClock env(Env::Default(), &clock);
  EXPECT_EQ(env.clock(), &clock);
  EXPECT_EQ(env.NowMicros(), clock.WallMicros());
  clock.Advance(seconds(2));
  EXPECT_EQ(env.NowMicros(), clock.WallMicros());
}

TEST(RealClockTest, DefaultEnvReadsTheSystemAndSteadyClocks) {
  Clock* clock = Env::Default()->clock();
  auto wall_before = std::chrono::system_clock::now();
  auto steady_before = std::chrono::steady_clock::now();
  Clock::WallTime wall = clock->WallNow();
  Clock::SteadyTime steady = clock->SteadyNow();
  EXPECT_GE(wall, wall_before);
  EXPECT_GE(steady, steady_before);
  EXPECT_LE(steady, std::chrono::steady_clock::now());
  EXPECT_GE(Env::Default()->NowMicros(),
            std::chrono::duration_cast<microseconds>(wall_before.time_since_epoch()).count());
}

TEST(RealClockTest, WaitUntilTimesOutAfterTheDeadlineOnTheSteadyClock) {
  Clock* clock = Env::Default()->clock();
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock<std::mutex> lock(mu);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(clock->WaitFor(lock, cv, milliseconds(20), [] { return false; }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));
  EXPECT_TRUE(lock.owns_lock());
}

TEST(RealClockTest, SleepForSleepsAtLeastTheDuration) {
  auto start = std::chrono::steady_clock::now();
  Env::Default()->clock()->SleepFor(milliseconds(5));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(5));
}

}  // namespace
}  // namespace xa::test
