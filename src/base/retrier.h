// Retrier: runs jobs on a thread of its own until each is done, trying a failed job again later
// on a backoff schedule, with every wait taken on an xa::Clock (internal).
//
// Why in src/base: the retrier knows nothing about XA, transactions or logs. The background
// completer (src/tm) hands it the phase-2 retries of the two-phase commit; the reliable-message
// relay and the best-effort notifier hand it their deliveries. Each layer that retries sits
// above it, so it lives under all of them.
//
// A job (RetryJob) is one function that makes one attempt and says how it went (JobOutcome):
//   done          finished: the job leaves the retrier;
//   retry later   the attempt failed in a way that may heal (an RM or a peer is down), with the
//                 reason, for the log and for the job's end;
//   give up       the attempt failed in a way that will not heal; the job leaves the retrier.
// An attempt that throws counts as "retry later" (Code::kInternal, the exception's message): a
// job that must never be lost (a durable commit decision) is not dropped by a bug's exception,
// and a job that should stop on its own errors says give up.
//
// When the retrier is done with a job it calls the job's on_end once, with how it ended
// (JobEnd): kDone, kGaveUp (the job said so, or its schedule's limit was reached), or kDropped
// (Stop() with the job still pending).
//
// The schedule (RetrySchedule), for a demanding user:
//   - the first attempt is made `first_delay` after Submit() (0: as soon as the thread is free);
//   - after the n-th failed attempt the job waits initial_delay * multiplier^(n-1), capped at
//     max_delay (BackoffDelay, the one backoff formula of the library);
//   - jitter in [0, 1] draws each wait uniformly from [wait * (1 - jitter), wait]: 0 keeps the
//     exact sequence (tests, one job at a time); near 1 spreads jobs that failed together (every
//     branch on one RM that just went down) so that they do not all return at the same instant
//     when it comes back. A wait never exceeds max_delay;
//   - give-up limits, both off by default (retry forever): max_attempts (the n-th failed attempt
//     ends the job), and give_up_after, a deadline measured from Submit(): the last attempt is
//     made at the deadline (a wait is shortened to reach it, never extended past it), and if it
//     fails the job ends with kGaveUp.
//
// Order and concurrency. Jobs run one attempt at a time, in the order they fall due; jobs due
// at the same time run in submission order. A new job due earlier than the one being waited for
// wakes the thread. An attempt that blocks (a connect to a server that is down) delays the
// others: the retrier is for paths that run only when something is failing.
//
// Lifecycle. Start() starts the thread; Submit() works before Start() (the job waits). Stop()
// returns once the attempt in progress has finished, then drops every pending job: their on_end
// runs with kDropped on the caller of Stop(). The destructor calls Stop().
//
// Thread safety: every public member is thread-safe. A job's attempt and its on_end for kDone
// and kGaveUp run on the retrier's thread, one job at a time; on_end(kDropped) runs on the
// caller of Stop() once that thread has stopped. on_end must not throw (an exception from it is
// logged and swallowed).

#ifndef XA_SRC_BASE_RETRIER_H_
#define XA_SRC_BASE_RETRIER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "xa/env.h"
#include "xa/status.h"

namespace xa::internal {

// initial * multiplier^(attempt - 1), capped at `max` (attempt 0 counts as 1; a multiplier below
// 1 as 1). The one backoff formula: RetryPolicy::BackoffBefore and RetrySchedule use it.
std::chrono::microseconds BackoffDelay(std::chrono::microseconds initial, double multiplier,
                                       std::chrono::microseconds max, uint32_t attempt) noexcept;

// When a job is tried again, and when the retrier gives up on it (see the header comment).
struct RetrySchedule {
  std::chrono::microseconds initial_delay{std::chrono::milliseconds(10)};
  double multiplier = 2.0;
  std::chrono::microseconds max_delay{std::chrono::seconds(5)};
  double jitter = 0.0;                          // in [0, 1]; outside is clamped
  uint32_t max_attempts = 0;                    // 0: no limit
  std::chrono::microseconds give_up_after{0};   // from Submit(); 0 (or less): no deadline

  // The wait after the n-th failed attempt, before jitter.
  std::chrono::microseconds DelayAfter(uint32_t failed_attempts) const noexcept {
    return BackoffDelay(initial_delay, multiplier, max_delay, failed_attempts);
  }
  bool RetriesForever() const noexcept {
    return max_attempts == 0 && give_up_after <= std::chrono::microseconds::zero();
  }
};

// What one attempt says.
struct JobOutcome {
  enum class Verdict : uint8_t { kDone, kRetryLater, kGiveUp };
  Verdict verdict = Verdict::kDone;
  Status reason;  // why the attempt failed (OK for kDone)

  static JobOutcome Done() { return {Verdict::kDone, Status::Ok()}; }
  static JobOutcome RetryLater(Status why) { return {Verdict::kRetryLater, std::move(why)}; }
  static JobOutcome GiveUp(Status why) { return {Verdict::kGiveUp, std::move(why)}; }
};

// How the retrier was done with a job.
enum class JobEnd : uint8_t {
  kDone,     // an attempt said done
  kGaveUp,   // an attempt said give up, or the schedule's max_attempts / give_up_after ran out
  kDropped,  // Stop() while the job was pending
};
std::string_view JobEndName(JobEnd end) noexcept;  // "done", "gave up", "dropped"

struct RetryJob {
  std::string name;  // for the log lines: what the job does, e.g. "commit of <xid>"
  RetrySchedule schedule;
  std::function<JobOutcome()> attempt;
  // Optional. `last` is the reason of the last failed attempt (OK for kDone and for a job
  // dropped before its first attempt); for kGaveUp by the schedule, it says which limit ran out.
  std::function<void(JobEnd end, const Status& last)> on_end;
};

struct RetrierOptions {
  Clock* clock = nullptr;              // required; every wait and every time stamp
  std::string component = "retrier";   // the log lines' component ("tm", "relay", ...)
  uint64_t jitter_seed = 0;            // seeds the jitter draws; 0: a random seed
};

class Retrier {
 public:
  explicit Retrier(RetrierOptions options);
  ~Retrier();  // Stop()
  Retrier(const Retrier&) = delete;
  Retrier& operator=(const Retrier&) = delete;

  void Start();
  void Stop();

  // Takes over `job`; its first attempt is due `first_delay` from now.
  void Submit(RetryJob job, std::chrono::microseconds first_delay = {});

  // Waits on the clock, up to `timeout`, until no job is pending or running (or Stop() is
  // called); true when none is.
  bool WaitIdle(std::chrono::microseconds timeout);
  // Jobs submitted and not yet ended (waiting or in an attempt).
  size_t pending() const;

 private:
  struct Entry {
    RetryJob job;
    uint32_t failed_attempts = 0;
    Clock::SteadyTime give_up_at = Clock::kNoDeadline;
    Status last;
  };

  void Loop();
  // Makes one attempt of `entry` (on the retrier's thread, without mu_). True when the job is
  // to be tried again, at *next_attempt; false when it ended (on_end has run).
  bool RunAttempt(Entry& entry, Clock::SteadyTime* next_attempt);
  void End(Entry& entry, JobEnd end);
  std::chrono::microseconds Jittered(std::chrono::microseconds wait, double jitter);

  const RetrierOptions options_;
  Clock* const clock_;
  mutable std::mutex mu_;
  std::condition_variable wake_;  // a job was submitted, or Stop()
  std::condition_variable idle_;  // nothing pending any more, or Stop()
  // Pending jobs by due time; equal times keep submission order (multimap inserts at the end of
  // its equal range). Guarded by mu_.
  std::multimap<Clock::SteadyTime, Entry> due_;
  size_t running_ = 0;     // jobs taken out of due_ for an attempt; guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
  std::mt19937_64 random_;  // the retrier's thread only
};

}  // namespace xa::internal

#endif  // XA_SRC_BASE_RETRIER_H_
