// The retrier (src/base/retrier.h): backoff schedule, limits, order, wake-ups and shutdown, all
// on a FakeClock that the test moves by hand. The test thread waits for the retrier's thread
// through condition variables (the job signals each attempt) and FakeClock::WaitForBlocked,
// never with sleep_for.

#include "src/base/retrier.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "testutil/status_matchers.h"
#include "xa/transaction_manager.h"

namespace xa::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::xa::test::FakeClock;
using ::xa::test::IsOk;
using ::xa::test::StatusIs;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::chrono::milliseconds kRealTimeBound{30000};  // a hung thread, not a slow one

// One job whose attempts follow a script (the last step repeats) and which records, for the
// test thread, when each attempt ran and how the job ended.
class ScriptedJob {
 public:
  using Step = std::function<JobOutcome()>;

  ScriptedJob(FakeClock* clock, std::string name, std::vector<Step> script)
      : clock_(clock), name_(std::move(name)), script_(std::move(script)) {}

  RetryJob Make(RetrySchedule schedule) {
    RetryJob job;
    job.name = name_;
    job.schedule = schedule;
    job.attempt = [this] {
      Step step;
      {
        // Notified under the lock: the test may destroy this job as soon as it sees the change.
        std::lock_guard<std::mutex> lock(mu_);
        step = script_[std::min(attempts_.size(), script_.size() - 1)];
        attempts_.push_back(clock_->SteadyNow());
        changed_.notify_all();
      }
      return step();
    };
    job.on_end = [this](JobEnd end, const Status& last) {
      std::lock_guard<std::mutex> lock(mu_);
      ends_.push_back(end);
      last_ = last;
      end_thread_ = std::this_thread::get_id();
      changed_.notify_all();
    };
    return job;
  }

  // Waits, in real time and bounded, until `n` attempts have started.
  bool AwaitAttempts(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kRealTimeBound, [&] { return attempts_.size() >= n; });
  }
  bool AwaitEnd() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, kRealTimeBound, [&] { return !ends_.empty(); });
  }
  // The waits between attempts, in clock time.
  std::vector<microseconds> Gaps() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<microseconds> gaps;
    for (size_t i = 1; i < attempts_.size(); ++i) {
      gaps.push_back(std::chrono::duration_cast<microseconds>(attempts_[i] - attempts_[i - 1]));
    }
    return gaps;
  }
  size_t attempts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_.size();
  }
  std::vector<JobEnd> ends() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ends_;
  }
  Status last() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_;
  }
  std::thread::id end_thread() const {
    std::lock_guard<std::mutex> lock(mu_);
    return end_thread_;
  }

 private:
  FakeClock* clock_;
  std::string name_;
  std::vector<Step> script_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Clock::SteadyTime> attempts_;  // guarded by mu_
  std::vector<JobEnd> ends_;                 // guarded by mu_
  Status last_;                              // guarded by mu_
  std::thread::id end_thread_;               // guarded by mu_
};

JobOutcome Done() { return JobOutcome::Done(); }
JobOutcome Down() { return JobOutcome::RetryLater(Status(Code::kRmFail, "server down")); }

RetrySchedule Schedule(milliseconds initial, double multiplier, milliseconds max) {
  RetrySchedule schedule;
  schedule.initial_delay = initial;
  schedule.multiplier = multiplier;
  schedule.max_delay = max;
  return schedule;
}

class RetrierTest : public ::testing::Test {
 protected:
  RetrierTest() : retrier_(RetrierOptions{&clock_, "test", 42}) {}
  ~RetrierTest() override { retrier_.Stop(); }

  // Submits, then starts the retrier if it is not running yet. Started after its first job, the
  // retrier's first wait on the clock is already the one for that job, so that NextWait() cannot
  // read an earlier wait for work that has not yet seen the job.
  void Submit(RetryJob job, microseconds first_delay = {}) {
    retrier_.Submit(std::move(job), first_delay);
    retrier_.Start();
  }

  // After an attempt has started, the retrier's next wait on the clock begins; returns its
  // length, or nullopt when the retrier waits with no deadline (nothing pending).
  std::optional<microseconds> NextWait() {
    EXPECT_TRUE(clock_.WaitForBlocked(1));
    std::optional<Clock::SteadyTime> deadline = clock_.NextDeadline();
    if (!deadline) return std::nullopt;
    return std::chrono::duration_cast<microseconds>(*deadline - clock_.SteadyNow());
  }

  // Moves the clock through `n` more failed attempts of `job`, each at its next deadline.
  void RunAttempts(ScriptedJob& job, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      size_t before = job.attempts();
      ASSERT_TRUE(clock_.WaitForBlocked(1));
      ASSERT_TRUE(clock_.AdvanceToNextDeadline());
      ASSERT_TRUE(job.AwaitAttempts(before + 1));
    }
  }

  // Submits `job` and moves the clock through its first `attempts` attempts, each at its due
  // time; then waits for the job's end.
  void SubmitAndRun(ScriptedJob& job, const RetrySchedule& schedule, size_t attempts) {
    Submit(job.Make(schedule));
    ASSERT_TRUE(job.AwaitAttempts(1));
    RunAttempts(job, attempts - 1);
    ASSERT_TRUE(job.AwaitEnd());
  }

  FakeClock clock_;
  Retrier retrier_;
};

TEST(BackoffDelayTest, GrowsByTheMultiplierFromTheInitialDelayAndStopsAtTheMaximum) {
  const microseconds initial = milliseconds(10);
  const microseconds max = milliseconds(100);
  std::vector<microseconds> delays;
  for (uint32_t attempt = 1; attempt <= 6; ++attempt) {
    delays.push_back(BackoffDelay(initial, 2.0, max, attempt));
  }
  EXPECT_THAT(delays, ElementsAre(milliseconds(10), milliseconds(20), milliseconds(40),
                                  milliseconds(80), milliseconds(100), milliseconds(100)));
  // Attempt 0 counts as the first; a multiplier below 1 keeps the delay constant; a huge
  // exponent saturates at the maximum instead of overflowing.
  EXPECT_EQ(BackoffDelay(initial, 2.0, max, 0), initial);
  EXPECT_EQ(BackoffDelay(initial, 0.5, max, 5), initial);
  EXPECT_EQ(BackoffDelay(initial, 10.0, max, 4000000000u), max);
}

TEST(BackoffDelayTest, IsTheFormulaOfTheManagersRetryPolicy) {
  RetryPolicy policy{0, milliseconds(3), milliseconds(700), 3.0};
  for (uint32_t attempt = 0; attempt < 12; ++attempt) {
    EXPECT_EQ(policy.BackoffBefore(attempt),
              BackoffDelay(policy.initial_backoff, policy.multiplier, policy.max_backoff, attempt))
        << attempt;
  }
}

TEST_F(RetrierTest, WaitsTheBackoffSequenceOnTheClockAndStopsAtTheMaximumDelay) {
  ScriptedJob job(&clock_, "backoff", {Down, Down, Down, Down, Down, Down, Done});
  Submit(job.Make(Schedule(milliseconds(10), 2.0, milliseconds(50))));
  ASSERT_TRUE(job.AwaitAttempts(1));
  // Before each attempt the retrier waits exactly the schedule's delay, and not a tick less.
  for (microseconds expected : std::vector<microseconds>{milliseconds(10), milliseconds(20),
                                                         milliseconds(40), milliseconds(50),
                                                         milliseconds(50), milliseconds(50)}) {
    EXPECT_EQ(NextWait(), expected);
    size_t before = job.attempts();
    clock_.Advance(expected - microseconds(1));
    ASSERT_TRUE(clock_.WaitForBlocked(1));
    EXPECT_EQ(job.attempts(), before);
    clock_.Advance(microseconds(1));
    ASSERT_TRUE(job.AwaitAttempts(before + 1));
  }
  ASSERT_TRUE(job.AwaitEnd());
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kDone));
  EXPECT_THAT(job.last(), IsOk());
  EXPECT_THAT(job.Gaps(), ElementsAre(milliseconds(10), milliseconds(20), milliseconds(40),
                                      milliseconds(50), milliseconds(50), milliseconds(50)));
  // on_end has run; the job leaves the count right after it.
  EXPECT_TRUE(retrier_.WaitIdle(seconds(1)));
  EXPECT_EQ(retrier_.pending(), 0u);
}

TEST_F(RetrierTest, FirstAttemptWaitsTheSubmittedDelay) {
  ScriptedJob job(&clock_, "later", {Done});
  Submit(job.Make(Schedule(milliseconds(10), 2.0, milliseconds(50))), seconds(3));
  EXPECT_EQ(NextWait(), seconds(3));
  EXPECT_EQ(job.attempts(), 0u);
  EXPECT_EQ(retrier_.pending(), 1u);
  clock_.Advance(seconds(3));
  ASSERT_TRUE(job.AwaitEnd());
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kDone));
}

TEST_F(RetrierTest, GivesUpAfterMaxAttemptsWithTheLastErrorStatus) {
  ScriptedJob job(&clock_, "limited", {Down});
  RetrySchedule schedule = Schedule(milliseconds(10), 2.0, milliseconds(50));
  schedule.max_attempts = 3;
  ASSERT_NO_FATAL_FAILURE(SubmitAndRun(job, schedule, 3));
  EXPECT_EQ(job.attempts(), 3u);
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kGaveUp));
  EXPECT_THAT(job.last(), StatusIs(Code::kRmFail, HasSubstr("3 attempt(s)")));
  EXPECT_THAT(job.last(), StatusIs(Code::kRmFail, HasSubstr("server down")));
  // Nothing is left to wait for: the retrier waits without a deadline.
  EXPECT_FALSE(NextWait().has_value());
  EXPECT_EQ(retrier_.pending(), 0u);
}

TEST_F(RetrierTest, MakesTheLastAttemptAtTheDeadlineThenGivesUp) {
  ScriptedJob job(&clock_, "deadline", {Down});
  RetrySchedule schedule = Schedule(milliseconds(30), 2.0, seconds(10));
  schedule.give_up_after = milliseconds(100);
  // Attempts at 0, 30 and 90 ms; the next wait (120 ms) is cut to reach the deadline at 100.
  ASSERT_NO_FATAL_FAILURE(SubmitAndRun(job, schedule, 4));
  EXPECT_EQ(job.attempts(), 4u);
  EXPECT_THAT(job.Gaps(), ElementsAre(milliseconds(30), milliseconds(60), milliseconds(10)));
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kGaveUp));
  EXPECT_THAT(job.last(), StatusIs(Code::kRmFail, HasSubstr("deadline")));
}

TEST_F(RetrierTest, AJobThatGivesUpEndsAtOnceWithItsReason) {
  ScriptedJob job(&clock_, "hopeless", {[] {
                    return JobOutcome::GiveUp(Status(Code::kInval, "malformed message"));
                  }});
  Submit(job.Make(RetrySchedule{}));
  ASSERT_TRUE(job.AwaitEnd());
  EXPECT_EQ(job.attempts(), 1u);
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kGaveUp));
  EXPECT_THAT(job.last(), StatusIs(Code::kInval, "malformed message"));
}

TEST_F(RetrierTest, AnAttemptThatThrowsIsRetriedAndItsMessageKept) {
  ScriptedJob throws_once(&clock_, "throws once",
                          {[]() -> JobOutcome { throw std::runtime_error("driver bug"); }, Done});
  ASSERT_NO_FATAL_FAILURE(
      SubmitAndRun(throws_once, Schedule(milliseconds(10), 2.0, milliseconds(50)), 2));
  EXPECT_THAT(throws_once.ends(), ElementsAre(JobEnd::kDone));

  ScriptedJob always_throws(&clock_, "always throws",
                            {[]() -> JobOutcome { throw std::runtime_error("driver bug"); }});
  RetrySchedule limited = Schedule(milliseconds(10), 2.0, milliseconds(50));
  limited.max_attempts = 2;
  ASSERT_NO_FATAL_FAILURE(SubmitAndRun(always_throws, limited, 2));
  EXPECT_THAT(always_throws.ends(), ElementsAre(JobEnd::kGaveUp));
  EXPECT_THAT(always_throws.last(), StatusIs(Code::kInternal, HasSubstr("driver bug")));
}

TEST_F(RetrierTest, ANewJobDueSoonerWakesTheWaitForALaterOne) {
  ScriptedJob later(&clock_, "later", {Done});
  Submit(later.Make(RetrySchedule{}), seconds(10));
  EXPECT_EQ(NextWait(), seconds(10));
  ScriptedJob now(&clock_, "now", {Done});
  Submit(now.Make(RetrySchedule{}));
  // Runs without the clock moving; the later job still waits for its time.
  ASSERT_TRUE(now.AwaitEnd());
  EXPECT_THAT(now.ends(), ElementsAre(JobEnd::kDone));
  EXPECT_EQ(NextWait(), seconds(10));
  EXPECT_EQ(later.attempts(), 0u);
  clock_.Advance(seconds(10));
  ASSERT_TRUE(later.AwaitEnd());
}

TEST_F(RetrierTest, ManyJobsRunInTheOrderTheyFallDueAndAllFinish) {
  constexpr int kJobs = 200;
  std::mutex order_mu;
  std::vector<int> order;
  std::vector<std::unique_ptr<ScriptedJob>> jobs;
  // Job i is due at (kJobs - i) / 2 ms: later submissions first, pairs due together run in
  // submission order. Each fails once, then succeeds.
  for (int i = 0; i < kJobs; ++i) {
    auto record = [&order_mu, &order, i]() {
      std::lock_guard<std::mutex> lock(order_mu);
      order.push_back(i);
      return Done();
    };
    jobs.push_back(std::make_unique<ScriptedJob>(
        &clock_, "job " + std::to_string(i), std::vector<ScriptedJob::Step>{Down, record}));
    Submit(jobs.back()->Make(Schedule(seconds(1), 1.0, seconds(1))),
                    milliseconds((kJobs - i) / 2));
  }
  // Every first attempt, then every second attempt a second later.
  clock_.Advance(milliseconds(kJobs));
  for (auto& job : jobs) ASSERT_TRUE(job->AwaitAttempts(1));
  ASSERT_TRUE(clock_.WaitForBlocked(1));  // every failed job is back in the queue
  clock_.Advance(seconds(1));
  for (auto& job : jobs) ASSERT_TRUE(job->AwaitEnd());
  EXPECT_TRUE(retrier_.WaitIdle(seconds(1)));
  EXPECT_EQ(retrier_.pending(), 0u);

  std::vector<int> expected;
  for (int due = 0; due <= kJobs / 2; ++due) {
    for (int i = 0; i < kJobs; ++i) {
      if ((kJobs - i) / 2 == due) expected.push_back(i);
    }
  }
  EXPECT_THAT(order, ElementsAreArray(expected));
  for (auto& job : jobs) {
    EXPECT_THAT(job->ends(), ElementsAre(JobEnd::kDone));
    EXPECT_EQ(job->attempts(), 2u);
  }
}

TEST_F(RetrierTest, StopEndsTheAttemptInProgressThenDropsEveryPendingJob) {
  // An attempt in progress when Stop() is called runs to its end, and its job is dropped with
  // the attempt's reason; jobs waiting are dropped without an attempt. All on Stop's caller.
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  ScriptedJob running(&clock_, "running", {[&] {
                        std::unique_lock<std::mutex> lock(gate_mu);
                        gate_cv.wait(lock, [&] { return open; });
                        return Down();
                      }});
  ScriptedJob waiting(&clock_, "waiting", {Done});
  Submit(waiting.Make(RetrySchedule{}), seconds(60));
  Submit(running.Make(RetrySchedule{}));
  ASSERT_TRUE(running.AwaitAttempts(1));
  EXPECT_EQ(retrier_.pending(), 2u);

  std::thread stopper([&] { retrier_.Stop(); });
  const std::thread::id stopper_id = stopper.get_id();
  {
    std::lock_guard<std::mutex> lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  stopper.join();

  EXPECT_THAT(running.ends(), ElementsAre(JobEnd::kDropped));
  EXPECT_THAT(running.last(), StatusIs(Code::kRmFail, "server down"));
  EXPECT_EQ(running.end_thread(), stopper_id);
  EXPECT_THAT(waiting.ends(), ElementsAre(JobEnd::kDropped));
  EXPECT_EQ(waiting.attempts(), 0u);
  EXPECT_THAT(waiting.last(), IsOk());
  EXPECT_EQ(retrier_.pending(), 0u);
  EXPECT_TRUE(retrier_.WaitIdle(seconds(0)));
}

TEST_F(RetrierTest, JitterDrawsEachWaitWithinItsSpreadAndNeverAboveTheMaximum) {
  ScriptedJob job(&clock_, "jittered", {Down});
  RetrySchedule schedule = Schedule(milliseconds(100), 2.0, milliseconds(400));
  schedule.jitter = 0.5;
  schedule.max_attempts = 30;
  ASSERT_NO_FATAL_FAILURE(SubmitAndRun(job, schedule, 30));
  std::vector<microseconds> gaps = job.Gaps();
  ASSERT_EQ(gaps.size(), 29u);
  for (size_t i = 0; i < gaps.size(); ++i) {
    microseconds full = schedule.DelayAfter(static_cast<uint32_t>(i + 1));
    EXPECT_GE(gaps[i], full / 2) << i;
    EXPECT_LE(gaps[i], full) << i;
  }
  // Spread, not a constant: the waits at the cap differ from one another.
  std::set<int64_t> distinct;
  for (size_t i = 2; i < gaps.size(); ++i) distinct.insert(gaps[i].count());
  EXPECT_GT(distinct.size(), 10u);
}

TEST_F(RetrierTest, WaitIdleTimesOutOnTheClockWhileAJobIsPending) {
  ScriptedJob job(&clock_, "far", {Done});
  Submit(job.Make(RetrySchedule{}), seconds(3600));
  ASSERT_EQ(NextWait(), seconds(3600));
  bool idle = true;
  std::thread waiter([&] { idle = retrier_.WaitIdle(seconds(5)); });
  ASSERT_TRUE(clock_.WaitForBlocked(2));  // the retrier and the waiter
  clock_.Advance(seconds(5));
  waiter.join();
  EXPECT_FALSE(idle);
  EXPECT_EQ(job.attempts(), 0u);
  retrier_.Stop();  // drops the job while it is still alive
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kDropped));
}

TEST(RetrierLifecycleTest, AJobSubmittedBeforeStartRunsOnceStarted) {
  FakeClock clock;
  Retrier retrier(RetrierOptions{&clock, "test", 1});
  ScriptedJob job(&clock, "early", {Done});
  retrier.Submit(job.Make(RetrySchedule{}));
  EXPECT_EQ(retrier.pending(), 1u);
  retrier.Start();
  ASSERT_TRUE(job.AwaitEnd());
  EXPECT_THAT(job.ends(), ElementsAre(JobEnd::kDone));
  retrier.Stop();
}

}  // namespace
}  // namespace xa::internal
