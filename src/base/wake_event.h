// WakeEvent: one thread sleeps until another signals it, once, on a bare futex.
//
// Why not std::binary_semaphore: libstdc++'s acquire() spins and then calls sched_yield() in a
// loop before it sleeps. With more runnable threads than cores (16 clients and two database
// servers on two cores) every yield is a context switch that helps nobody, and the group commit
// of the decision log waits on one of these per follower: measured 3 sched_yield per transaction
// at 16 clients. A follower here waits for an fdatasync (tens of microseconds at least), so there
// is nothing to gain from spinning; WakeEvent goes straight to FUTEX_WAIT.
//
// Lifetime: the waiter may return, and destroy the event, as soon as it sees the signal, which
// can be before Signal() has made its FUTEX_WAKE call. A wake on a futex word that is gone (or
// reused) is harmless with private futexes: at worst a spurious wake-up, which every waiter
// handles by re-checking its word. Signal() touches no member after the store but the address.

#ifndef XA_SRC_BASE_WAKE_EVENT_H_
#define XA_SRC_BASE_WAKE_EVENT_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>

namespace xa::internal {

class WakeEvent {
 public:
  WakeEvent() = default;
  WakeEvent(const WakeEvent&) = delete;
  WakeEvent& operator=(const WakeEvent&) = delete;

  // Blocks until Signal() has been called (returns at once if it was already).
  void Wait() noexcept {
    while (word_.load(std::memory_order_acquire) == 0) {
      // EAGAIN: signalled between the load and the call; EINTR: a signal handler ran.
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, 0, nullptr,
              nullptr, 0);
    }
  }

  // Blocks until Signal() has been called or `timeout` has passed on the steady (real) clock,
  // whichever comes first. True: signalled. A false return leaves the event armed: a Signal()
  // may still come, and the caller must not destroy the event before it knows none will (or
  // has seen it with Wait()).
  bool WaitFor(std::chrono::nanoseconds timeout) noexcept {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (word_.load(std::memory_order_acquire) == 0) {
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return false;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec relative{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      // ETIMEDOUT, EAGAIN and EINTR all come back to the word and the clock.
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, 0, &relative,
              nullptr, 0);
    }
    return true;
  }

  // Wakes the waiter. Call at most once per event.
  void Signal() noexcept {
    uint32_t* address = reinterpret_cast<uint32_t*>(&word_);
    word_.store(1, std::memory_order_release);
    syscall(SYS_futex, address, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }

 private:
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  std::atomic<uint32_t> word_{0};
};

}  // namespace xa::internal

#endif  // XA_SRC_BASE_WAKE_EVENT_H_
