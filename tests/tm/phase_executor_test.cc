// PhaseExecutor and CpuLoadGauge: parallel phase calls while a core is free, calls on the caller's
// thread alone while the CPUs are saturated. The gauge's CPU samples are scripted; one test reads
// the real /proc/stat.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "src/tm/cpu_load.h"
#include "src/tm/phase_executor.h"

namespace xa::internal {
namespace {

using std::chrono::hours;
using std::chrono::nanoseconds;

// A reader that returns the scripted cumulative samples in order, then repeats the last one.
struct ScriptedCpu {
  std::deque<std::optional<CpuTicks>> samples;
  int reads = 0;
  CpuLoadGauge::Reader Reader() {
    return [this]() -> std::optional<CpuTicks> {
      ++reads;
      std::optional<CpuTicks> next = samples.front();
      if (samples.size() > 1) samples.pop_front();
      return next;
    };
  }
};

TEST(CpuLoadGauge, BusyWhenTheShareOfBusyTimeSinceTheLastSampleReachesTheThreshold) {
  ScriptedCpu cpu;
  cpu.samples = {CpuTicks{0, 0},          // first sample: nothing to compare with yet
                 CpuTicks{90, 100},       // 90 of 100 ticks busy: at the threshold
                 CpuTicks{140, 200},      // 50 of 100
                 CpuTicks{239, 300},      // 99 of 100
                 std::nullopt,            // /proc/stat unreadable: not busy
                 CpuTicks{300, 400},      // no previous sample again
                 CpuTicks{389, 500}};     // 89 of 100: just under
  CpuLoadGauge gauge(90, nanoseconds(0), cpu.Reader());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_TRUE(gauge.Busy());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_TRUE(gauge.Busy());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_EQ(cpu.reads, 7);
}

TEST(CpuLoadGauge, KeepsItsAnswerWhenTheCountersDoNotAdvance) {
  ScriptedCpu cpu;
  cpu.samples = {CpuTicks{0, 0}, CpuTicks{100, 100}, CpuTicks{100, 100}};
  CpuLoadGauge gauge(90, nanoseconds(0), cpu.Reader());
  EXPECT_FALSE(gauge.Busy());
  EXPECT_TRUE(gauge.Busy());
  EXPECT_TRUE(gauge.Busy()) << "no time passed in the counters: nothing new to judge";
}

TEST(CpuLoadGauge, SamplesAtMostOncePerPeriod) {
  ScriptedCpu cpu;
  cpu.samples = {CpuTicks{0, 0}, CpuTicks{100, 100}};
  CpuLoadGauge gauge(90, hours(1), cpu.Reader());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(gauge.Busy());
  EXPECT_EQ(cpu.reads, 1);
}

TEST(CpuLoadGauge, ReadsThisMachinesProcStat) {
  std::optional<CpuTicks> first = CpuLoadGauge::ReadProcStat();
  ASSERT_TRUE(first.has_value()) << "/proc/stat could not be read or parsed";
  EXPECT_GT(first->total, 0u);
  EXPECT_LE(first->busy, first->total);
  std::optional<CpuTicks> second = CpuLoadGauge::ReadProcStat();
  ASSERT_TRUE(second.has_value());
  EXPECT_GE(second->total, first->total);
  EXPECT_GE(second->busy, first->busy);
}

// A gauge that reports busy (or not) from its second call on.
std::unique_ptr<CpuLoadGauge> GaugeSaying(bool busy, ScriptedCpu& cpu) {
  cpu.samples = {CpuTicks{0, 0}, CpuTicks{busy ? 100u : 10u, 100}};
  auto gauge = std::make_unique<CpuLoadGauge>(90, nanoseconds(0), cpu.Reader());
  gauge->Busy();  // the first sample
  return gauge;
}

// Each call waits (up to 10 s) until `n` calls have started: true only if they overlapped.
class Rendezvous {
 public:
  explicit Rendezvous(size_t n) : n_(n) {}
  bool ArriveAndWait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (++arrived_ == n_) cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return arrived_ >= n_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t n_;
  size_t arrived_ = 0;
};

TEST(PhaseExecutor, RunsTheCallsInParallelWhileACoreIsFree) {
  ScriptedCpu cpu;
  std::atomic<uint64_t> cpu_busy_runs{0};
  PhaseExecutor executor(2, GaugeSaying(/*busy=*/false, cpu), &cpu_busy_runs);
  Rendezvous all(3);
  std::mutex mu;
  std::vector<std::thread::id> threads;
  std::vector<int> overlapped(3, 0);  // not vector<bool>: each thread writes its own element
  PhaseExecutor::Ran ran = executor.RunAll(3, [&](size_t i) {
    overlapped[i] = all.ArriveAndWait();
    std::lock_guard<std::mutex> lock(mu);
    threads.push_back(std::this_thread::get_id());
  });
  EXPECT_EQ(ran, PhaseExecutor::Ran::kInParallel);
  EXPECT_EQ(overlapped, std::vector<int>(3, 1)) << "the three calls must run at once";
  std::sort(threads.begin(), threads.end());
  EXPECT_EQ(std::unique(threads.begin(), threads.end()) - threads.begin(), 3);
  EXPECT_EQ(cpu_busy_runs.load(), 0u);
}

TEST(PhaseExecutor, RunsEveryCallOnTheCallersThreadInOrderWhileTheCpusAreSaturated) {
  ScriptedCpu cpu;
  std::atomic<uint64_t> cpu_busy_runs{0};
  PhaseExecutor executor(4, GaugeSaying(/*busy=*/true, cpu), &cpu_busy_runs);
  std::vector<size_t> order;
  std::vector<std::thread::id> threads;
  PhaseExecutor::Ran ran = executor.RunAll(
      3,
      [&](size_t i) {
        order.push_back(i);
        threads.push_back(std::this_thread::get_id());
      },
      /*caller_first=*/2);
  EXPECT_EQ(ran, PhaseExecutor::Ran::kCpuBusy);
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(threads, std::vector<std::thread::id>(3, std::this_thread::get_id()));
  EXPECT_EQ(cpu_busy_runs.load(), 1u);
}

TEST(PhaseExecutor, WithoutAGaugeUsesThePoolWhateverTheLoad) {
  PhaseExecutor executor(1, nullptr);
  Rendezvous both(2);
  std::vector<int> overlapped(2, 0);
  PhaseExecutor::Ran ran =
      executor.RunAll(2, [&](size_t i) { overlapped[i] = both.ArriveAndWait(); });
  EXPECT_EQ(ran, PhaseExecutor::Ran::kInParallel);
  EXPECT_EQ(overlapped, std::vector<int>(2, 1));
}

TEST(PhaseExecutor, ASingleCallOrNoPoolRunsAlone) {
  ScriptedCpu cpu;
  PhaseExecutor executor(2, GaugeSaying(/*busy=*/true, cpu));
  int calls = 0;
  EXPECT_EQ(executor.RunAll(1, [&](size_t) { ++calls; }), PhaseExecutor::Ran::kAlone);
  PhaseExecutor no_pool(0, nullptr);
  EXPECT_EQ(no_pool.RunAll(3, [&](size_t) { ++calls; }), PhaseExecutor::Ran::kAlone);
  EXPECT_EQ(calls, 4);
}

}  // namespace
}  // namespace xa::internal
