// FakeClock: an xa::Clock that moves only when the test moves it.
//
//   FakeClock clock;
//   EnvWithClock env(Env::Default(), &clock);    // hand &env (or &clock) to the code under test
//   ... a thread calls clock.SleepFor(5s) or clock.WaitUntil(lock, cv, deadline, pred) ...
//   ASSERT_TRUE(clock.WaitForBlocked(1));          // it is waiting now (no sleep_for guess)
//   clock.Advance(5s);                             // it wakes: its deadline has passed
//
// Steady and wall time advance together; StepWall() jumps wall time alone (an NTP step).
// Sleepers and waiters wake when Advance() passes their deadline, never before; a waiter also
// wakes when its condition variable is notified, as with the real clock.
//
// Do not call Advance() while holding a mutex that a waiter of this clock waits with: Advance
// takes that mutex before notifying (so that a waiter about to wait cannot miss the wake-up).
//
// Thread-safe.

#ifndef XA_TESTS_TESTUTIL_FAKE_CLOCK_H_
#define XA_TESTS_TESTUTIL_FAKE_CLOCK_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>

#include "xa/env.h"

namespace xa::test {

class FakeClock final : public Clock {
 public:
  // Steady time starts an hour after the steady epoch, so that a default-constructed time point
  // stays usable as "never" by the code under test; wall time at 2026-01-01T00:00:00Z.
  static constexpr SteadyTime kSteadyStart = SteadyTime(std::chrono::hours(1));
  static constexpr WallTime kWallStart = WallTime(std::chrono::seconds(1767225600));

  FakeClock() : FakeClock(kSteadyStart, kWallStart) {}
  FakeClock(SteadyTime steady_start, WallTime wall_start);
  ~FakeClock() override;

  SteadyTime SteadyNow() override;
  WallTime WallNow() override;
  void SleepFor(std::chrono::microseconds duration) override;
  std::cv_status WaitOnce(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          SteadyTime deadline) override;

  // Moves steady and wall time forward by `duration` (>= 0) and wakes every sleeper and waiter
  // whose deadline is now reached.
  void Advance(std::chrono::microseconds duration);
  // Advances to the earliest deadline of a blocked sleeper or waiter; false (and no change) when
  // no thread waits with a deadline.
  bool AdvanceToNextDeadline();
  // Wall time jumps by `delta` (negative: backwards); steady time stays, nobody wakes.
  void StepWall(std::chrono::microseconds delta);

  // Threads blocked in SleepFor or WaitOnce (with or without a deadline) right now.
  size_t blocked() const;
  // Blocks the caller, in real time, until at least `n` threads are blocked on this clock;
  // false if that did not happen within `real_timeout` (a test bug or a hung thread).
  bool WaitForBlocked(size_t n,
                      std::chrono::milliseconds real_timeout = std::chrono::seconds(30));
  // The earliest deadline of a blocked sleeper or waiter, if any.
  std::optional<SteadyTime> NextDeadline() const;

 private:
  // A blocked thread. Sleepers have no mutex or condition variable of their own: they wait on
  // changed_.
  struct Blocked {
    SteadyTime deadline;
    std::mutex* mu = nullptr;
    std::condition_variable* cv = nullptr;
    int notifying = 0;  // Advance() calls that are about to notify cv; guarded by mu_
  };

  std::list<Blocked>::iterator AddLocked(SteadyTime deadline, std::mutex* mu,
                                         std::condition_variable* cv);

  mutable std::mutex mu_;
  std::condition_variable changed_;  // time moved, or a thread blocked or left
  SteadyTime steady_;                // guarded by mu_
  WallTime wall_;                    // guarded by mu_
  std::list<Blocked> blocked_;       // guarded by mu_; stable addresses while a thread waits
};

// An Env whose clock() is `clock`; everything else goes to `target`.
class EnvWithClock : public EnvWrapper {
 public:
  EnvWithClock(Env* target, Clock* clock) : EnvWrapper(target), clock_(clock) {}
  Clock* clock() override { return clock_; }

 private:
  Clock* clock_;
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_FAKE_CLOCK_H_
