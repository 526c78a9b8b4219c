#include "testutil/fake_clock.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace xa::test {

FakeClock::FakeClock(SteadyTime steady_start, WallTime wall_start)
    : steady_(steady_start), wall_(wall_start) {}

FakeClock::~FakeClock() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!blocked_.empty()) {
    // A thread still inside SleepFor/WaitOnce would touch freed memory: stop here, loudly.
    std::fprintf(stderr, "FakeClock destroyed while %zu thread(s) are blocked on it\n",
                 blocked_.size());
    std::abort();
  }
}

Clock::SteadyTime FakeClock::SteadyNow() {
  std::lock_guard<std::mutex> lock(mu_);
  return steady_;
}

Clock::WallTime FakeClock::WallNow() {
  std::lock_guard<std::mutex> lock(mu_);
  return wall_;
}

std::list<FakeClock::Blocked>::iterator FakeClock::AddLocked(SteadyTime deadline, std::mutex* mu,
                                                             std::condition_variable* cv) {
  blocked_.push_back(Blocked{deadline, mu, cv, 0});
  changed_.notify_all();  // WaitForBlocked
  return std::prev(blocked_.end());
}

void FakeClock::SleepFor(std::chrono::microseconds duration) {
  if (duration.count() <= 0) return;
  std::unique_lock<std::mutex> lock(mu_);
  const SteadyTime deadline = AddSaturating(steady_, duration);
  auto self = AddLocked(deadline, nullptr, nullptr);
  changed_.wait(lock, [&] { return steady_ >= deadline; });
  blocked_.erase(self);
  changed_.notify_all();
}

std::cv_status FakeClock::WaitOnce(std::unique_lock<std::mutex>& lock,
                                   std::condition_variable& cv, SteadyTime deadline) {
  std::list<Blocked>::iterator self;
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (steady_ >= deadline) return std::cv_status::timeout;
    self = AddLocked(deadline, lock.mutex(), &cv);
  }
  // Registered while holding `lock`: an Advance() from now on takes that mutex before it
  // notifies, so it cannot slip in between the check above and this wait.
  cv.wait(lock);
  // Leave only once no Advance() is about to touch this waiter's mutex and condition variable
  // (they may die as soon as we return). Advance() takes `lock`'s mutex, so release it meanwhile.
  lock.unlock();
  bool timed_out;
  {
    std::unique_lock<std::mutex> guard(mu_);
    changed_.wait(guard, [&] { return self->notifying == 0; });
    timed_out = steady_ >= deadline;
    blocked_.erase(self);
    changed_.notify_all();
  }
  lock.lock();
  return timed_out ? std::cv_status::timeout : std::cv_status::no_timeout;
}

void FakeClock::Advance(std::chrono::microseconds duration) {
  if (duration.count() < 0) duration = std::chrono::microseconds(0);
  std::vector<Blocked*> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    steady_ += duration;
    wall_ += duration;
    for (Blocked& b : blocked_) {
      if (b.cv != nullptr && b.deadline <= steady_) {
        ++b.notifying;
        due.push_back(&b);
      }
    }
    changed_.notify_all();  // sleepers
  }
  for (Blocked* b : due) {
    // Taking the waiter's mutex orders this notify after its wait began (see WaitOnce).
    { std::lock_guard<std::mutex> waiter_lock(*b->mu); }
    b->cv->notify_all();
  }
  if (due.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (Blocked* b : due) --b->notifying;
  changed_.notify_all();
}

bool FakeClock::AdvanceToNextDeadline() {
  std::optional<SteadyTime> next = NextDeadline();
  if (!next) return false;
  SteadyTime now = SteadyNow();
  Advance(*next > now ? std::chrono::duration_cast<std::chrono::microseconds>(*next - now)
                      : std::chrono::microseconds(0));
  return true;
}

void FakeClock::StepWall(std::chrono::microseconds delta) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ += delta;
}

size_t FakeClock::blocked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_.size();
}

bool FakeClock::WaitForBlocked(size_t n, std::chrono::milliseconds real_timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, real_timeout, [&] { return blocked_.size() >= n; });
}

std::optional<Clock::SteadyTime> FakeClock::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<SteadyTime> next;
  for (const Blocked& b : blocked_) {
    if (b.deadline != kNoDeadline && (!next || b.deadline < *next)) next = b.deadline;
  }
  return next;
}

}  // namespace xa::test
