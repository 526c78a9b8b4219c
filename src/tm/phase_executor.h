// PhaseExecutor: runs the calls of one protocol phase on the branches of one transaction in
// parallel, on a fixed pool of threads owned by the manager (no thread is created per
// transaction).
//
// RunAll(n, fn, caller_first) calls fn(0..n-1) and returns when every call has returned. The
// calling thread takes part: it runs fn(caller_first) itself, then claims further indices until
// none is left, while pool threads claim the others when they are free (without pool threads
// the calls run in index order). So a saturated pool
// degrades to sequential calls on the caller's thread, never to a deadlock or to waiting in a
// queue for work the caller could have done. Give the caller the call expected to take
// longest: a pool thread starts its call only after a wake-up, and the caller then waits on
// nobody (no second wake-up) when the pool's calls were the shorter ones.
//
// When the machine's CPUs are saturated (the CpuLoadGauge given at construction says so), RunAll
// runs every call on the caller's thread, in index order, and wakes nobody: a hand-off then
// costs CPU that the other transactions need and saves no time (see cpu_load.h).
//
// Thread safety: RunAll() may be called from many threads at once. fn(i) runs on exactly one
// thread, so each branch's session is used by one thread at a time.

#ifndef XA_SRC_TM_PHASE_EXECUTOR_H_
#define XA_SRC_TM_PHASE_EXECUTOR_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/tm/cpu_load.h"

namespace xa::internal {

class PhaseExecutor {
 public:
  // `cpu_load` may be null: the pool is then used whatever the load. `cpu_busy_runs` (may be
  // null) counts the RunAll calls that went sequential because the CPUs were saturated.
  PhaseExecutor(size_t threads, std::unique_ptr<CpuLoadGauge> cpu_load,
                std::atomic<uint64_t>* cpu_busy_runs = nullptr);
  ~PhaseExecutor();  // joins the threads; no RunAll() may be running
  PhaseExecutor(const PhaseExecutor&) = delete;
  PhaseExecutor& operator=(const PhaseExecutor&) = delete;

  // How RunAll ran the calls.
  enum class Ran : uint8_t {
    kAlone,         // n <= 1, or no pool threads
    kInParallel,    // offered to the pool threads
    kCpuBusy,       // sequentially on the caller's thread because the CPUs were saturated
  };
  Ran RunAll(size_t n, const std::function<void(size_t)>& fn, size_t caller_first = 0);

 private:
  struct Batch;
  void WorkerLoop();
  static void Drain(Batch& batch);

  std::mutex mu_;
  std::condition_variable work_available_;
  std::deque<std::shared_ptr<Batch>> queue_;  // one entry per index a pool thread may take
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::unique_ptr<CpuLoadGauge> cpu_load_;
  std::atomic<uint64_t>* cpu_busy_runs_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_PHASE_EXECUTOR_H_
