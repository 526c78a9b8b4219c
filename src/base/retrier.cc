#include "src/base/retrier.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <utility>
#include <vector>

#include "src/base/logging.h"

namespace xa::internal {

std::chrono::microseconds BackoffDelay(std::chrono::microseconds initial, double multiplier,
                                       std::chrono::microseconds max, uint32_t attempt) noexcept {
  if (attempt == 0) attempt = 1;
  double factor = std::pow(multiplier < 1.0 ? 1.0 : multiplier, static_cast<double>(attempt - 1));
  double wait = static_cast<double>(initial.count()) * factor;
  double cap = static_cast<double>(max.count());
  if (!(wait < cap)) wait = cap;  // also catches overflow to infinity
  return std::chrono::microseconds(static_cast<int64_t>(wait));
}

std::string_view JobEndName(JobEnd end) noexcept {
  switch (end) {
    case JobEnd::kDone: return "done";
    case JobEnd::kGaveUp: return "gave up";
    case JobEnd::kDropped: return "dropped";
  }
  return "?";
}

Retrier::Retrier(RetrierOptions options)
    : options_(std::move(options)),
      clock_(options_.clock),
      random_(options_.jitter_seed != 0 ? options_.jitter_seed : std::random_device{}()) {}

Retrier::~Retrier() { Stop(); }

void Retrier::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Retrier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::multimap<Clock::SteadyTime, Entry> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(due_);
  }
  for (auto& [due, entry] : dropped) End(entry, JobEnd::kDropped);
  idle_.notify_all();
}

void Retrier::Submit(RetryJob job, std::chrono::microseconds first_delay) {
  Entry entry;
  const Clock::SteadyTime now = clock_->SteadyNow();
  if (job.schedule.give_up_after > std::chrono::microseconds::zero()) {
    entry.give_up_at = Clock::AddSaturating(now, job.schedule.give_up_after);
  }
  entry.job = std::move(job);
  const Clock::SteadyTime due =
      Clock::AddSaturating(now, std::max(first_delay, std::chrono::microseconds::zero()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    due_.emplace(due, std::move(entry));
  }
  // The thread may be waiting for a later job: it re-reads the earliest due time.
  wake_.notify_one();
}

bool Retrier::WaitIdle(std::chrono::microseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto nothing_left = [&] { return due_.empty() && running_ == 0; };
  clock_->WaitFor(lock, idle_, timeout, [&] { return nothing_left() || stopping_; });
  return nothing_left();
}

size_t Retrier::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return due_.size() + running_;
}

std::chrono::microseconds Retrier::Jittered(std::chrono::microseconds wait, double jitter) {
  jitter = std::clamp(jitter, 0.0, 1.0);
  if (wait.count() <= 0) return std::chrono::microseconds::zero();  // a negative delay: none
  if (jitter == 0.0) return wait;
  const auto spread = static_cast<int64_t>(static_cast<double>(wait.count()) * jitter);
  std::uniform_int_distribution<int64_t> draw(0, spread);
  return wait - std::chrono::microseconds(draw(random_));
}

void Retrier::End(Entry& entry, JobEnd end) {
  if (!entry.job.on_end) return;
  try {
    entry.job.on_end(end, entry.last);
  } catch (const std::exception& e) {
    XA_LOG(kError, options_.component) << entry.job.name << ": on_end(" << JobEndName(end)
                                       << ") threw, ignored: " << e.what();
  } catch (...) {
    XA_LOG(kError, options_.component) << entry.job.name << ": on_end(" << JobEndName(end)
                                       << ") threw, ignored";
  }
}

bool Retrier::RunAttempt(Entry& entry, Clock::SteadyTime* next_attempt) {
  JobOutcome outcome;
  try {
    outcome = entry.job.attempt();
  } catch (const std::exception& e) {
    outcome = JobOutcome::RetryLater(
        Status(Code::kInternal, std::string("the attempt threw: ") + e.what()));
  } catch (...) {
    outcome = JobOutcome::RetryLater(
        Status(Code::kInternal, "the attempt threw something that is not a std::exception"));
  }
  if (outcome.verdict == JobOutcome::Verdict::kDone) {
    entry.last = Status::Ok();
    End(entry, JobEnd::kDone);
    return false;
  }
  ++entry.failed_attempts;
  entry.last = outcome.reason;
  if (outcome.verdict == JobOutcome::Verdict::kGiveUp) {
    XA_LOG(kWarning, options_.component) << entry.job.name << ": gave up at attempt "
                                         << entry.failed_attempts << ": "
                                         << outcome.reason.ToString();
    End(entry, JobEnd::kGaveUp);
    return false;
  }

  const RetrySchedule& schedule = entry.job.schedule;
  const Clock::SteadyTime now = clock_->SteadyNow();
  std::string limit;
  if (schedule.max_attempts != 0 && entry.failed_attempts >= schedule.max_attempts) {
    limit = std::to_string(schedule.max_attempts) + " attempt(s) made, the schedule's limit";
  } else if (now >= entry.give_up_at) {
    limit = "the schedule's deadline (" +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                               schedule.give_up_after)
                               .count()) +
            " ms after submission) passed";
  }
  if (!limit.empty()) {
    entry.last = outcome.reason.WithContext("gave up: " + limit);
    XA_LOG(kWarning, options_.component) << entry.job.name << ": " << entry.last.ToString();
    End(entry, JobEnd::kGaveUp);
    return false;
  }

  const std::chrono::microseconds wait =
      Jittered(schedule.DelayAfter(entry.failed_attempts), schedule.jitter);
  *next_attempt = std::min(Clock::AddSaturating(now, wait), entry.give_up_at);
  XA_LOG(kWarning, options_.component)
      << entry.job.name << ": attempt " << entry.failed_attempts << " failed, next in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(*next_attempt - now).count()
      << " ms: " << outcome.reason.ToString();
  return true;
}

void Retrier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      if (running_ == 0) idle_.notify_all();
      clock_->WaitUntil(lock, wake_, Clock::kNoDeadline,
                        [&] { return stopping_ || !due_.empty(); });
      continue;
    }
    auto first = due_.begin();
    if (first->first > clock_->SteadyNow()) {
      // Woken early by a new job (perhaps due sooner) or by Stop(): the loop re-reads both.
      clock_->WaitOnce(lock, wake_, first->first);
      continue;
    }
    Entry entry = std::move(first->second);
    due_.erase(first);
    ++running_;
    lock.unlock();

    Clock::SteadyTime next_attempt{};
    const bool again = RunAttempt(entry, &next_attempt);

    lock.lock();
    --running_;
    if (again) due_.emplace(next_attempt, std::move(entry));
  }
}

}  // namespace xa::internal
