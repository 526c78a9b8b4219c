// The participant barrier's clean-up job (BarrierPurgeJob) over a scripted purge call, on the
// fake clock (also run under TSan: label "concurrent").

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "xa/tcc_barrier.h"

namespace xa {
namespace {

// The purge job over a scripted purge call: each run calls until 0 rows or the batch limit,
// waits the interval on the Env's clock, and a failure ends the run and is tried next time.
class ScriptedPurge {
 public:
  explicit ScriptedPurge(std::deque<Result<int64_t>> answers) : answers_(std::move(answers)) {}
  Result<int64_t> operator()() {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (answers_.empty()) return int64_t{0};
    Result<int64_t> next = answers_.front();
    answers_.pop_front();
    return next;
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::deque<Result<int64_t>> answers_;
  int calls_ = 0;
};

// Waits (in real time, bounded) until the job has finished `runs` runs and waits on the clock.
bool FinishedRuns(const BarrierPurgeJob& job, test::FakeClock& clock, uint64_t runs) {
  for (int i = 0; i < 10000 && job.stats().runs < runs; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return job.stats().runs >= runs && clock.WaitForBlocked(1);
}

TEST(BarrierPurgeJob, EachRunPurgesUntilNothingIsLeftOrTheBatchLimitThenWaitsTheInterval) {
  test::FakeClock clock;
  ScriptedPurge purge({int64_t{8}, int64_t{8}, int64_t{8}, int64_t{8}, int64_t{2}, int64_t{0}});
  BarrierPurgeJobOptions options;
  options.interval = std::chrono::minutes(10);
  options.max_batches_per_run = 3;
  options.clock = &clock;
  BarrierPurgeJob job([&] { return purge(); }, options);
  // Run 1 stops at the limit of 3 calls (24 rows), then waits the interval.
  ASSERT_TRUE(FinishedRuns(job, clock, 1));
  EXPECT_EQ(purge.calls(), 3);
  EXPECT_EQ(job.stats().rows_deleted, 24u);
  EXPECT_EQ(job.stats().runs, 1u);
  clock.Advance(std::chrono::minutes(9));
  EXPECT_EQ(purge.calls(), 3) << "ran again before the interval";
  clock.Advance(std::chrono::minutes(1));
  // Run 2: 8, 2, then 0: nothing left, the run ends before its limit.
  ASSERT_TRUE(FinishedRuns(job, clock, 2));
  EXPECT_EQ(purge.calls(), 6);
  EXPECT_EQ(job.stats().rows_deleted, 34u);
  EXPECT_EQ(job.stats().failures, 0u);
  job.Stop();  // returns at once although the clock never reaches the next run
}

TEST(BarrierPurgeJob, AFailedCallEndsTheRunAndTheNextRunTriesAgain) {
  test::FakeClock clock;
  ScriptedPurge purge({Result<int64_t>(Status(Code::kRmFail, "server gone")), int64_t{4},
                       int64_t{0}});
  BarrierPurgeJobOptions options;
  options.interval = std::chrono::seconds(30);
  options.clock = &clock;
  BarrierPurgeJob job([&] { return purge(); }, options);
  ASSERT_TRUE(FinishedRuns(job, clock, 1));
  EXPECT_EQ(purge.calls(), 1);
  EXPECT_EQ(job.stats().failures, 1u);
  clock.Advance(std::chrono::seconds(30));
  ASSERT_TRUE(FinishedRuns(job, clock, 2));
  EXPECT_EQ(purge.calls(), 3);
  EXPECT_EQ(job.stats().rows_deleted, 4u);
}

}  // namespace
}  // namespace xa
