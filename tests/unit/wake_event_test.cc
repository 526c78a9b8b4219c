// WakeEvent: one waiter, one signal, and the timed wait the decision log's gather uses.

#include "src/base/wake_event.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace xa::internal {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST(WakeEvent, TimedWaitWithoutASignalReturnsFalseOnlyOnceTheTimeoutHasPassed) {
  WakeEvent event;
  auto start = steady_clock::now();
  EXPECT_FALSE(event.WaitFor(milliseconds(20)));
  EXPECT_GE(steady_clock::now() - start, milliseconds(20));
}

TEST(WakeEvent, TimedWaitReturnsTrueWhenSignalledBeforeTheTimeout) {
  WakeEvent event;
  std::thread signaller([&] {
    std::this_thread::sleep_for(milliseconds(10));
    event.Signal();
  });
  // An hour: only the signal can end this wait in time for the test's own timeout.
  EXPECT_TRUE(event.WaitFor(std::chrono::hours(1)));
  signaller.join();
}

TEST(WakeEvent, TimedWaitOnAnEventAlreadySignalledReturnsTrueAtOnce) {
  WakeEvent event;
  event.Signal();
  EXPECT_TRUE(event.WaitFor(std::chrono::nanoseconds(0)));
  event.Wait();  // and an untimed wait too
}

// The gather's pattern: a timed wait that ran out, then a signal that was already promised
// (the signaller took the event before the timeout): Wait() sees it.
TEST(WakeEvent, SignalAfterATimedOutWaitIsSeenByTheNextWait) {
  WakeEvent event;
  EXPECT_FALSE(event.WaitFor(milliseconds(1)));
  std::thread signaller([&] { event.Signal(); });
  event.Wait();
  signaller.join();
}

}  // namespace
}  // namespace xa::internal
