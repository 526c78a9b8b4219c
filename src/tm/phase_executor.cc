#include "src/tm/phase_executor.h"

#include <atomic>
#include <utility>

namespace xa::internal {

struct PhaseExecutor::Batch {
  const std::function<void(size_t)>* fn = nullptr;  // valid until `finished` reaches order.size()
  std::vector<size_t> order;  // the indices left for claiming (all but the caller's first)
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable done;
  size_t finished = 0;  // guarded by mu
};

PhaseExecutor::PhaseExecutor(size_t threads, std::unique_ptr<CpuLoadGauge> cpu_load,
                             std::atomic<uint64_t>* cpu_busy_runs)
    : cpu_load_(std::move(cpu_load)), cpu_busy_runs_(cpu_busy_runs) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

PhaseExecutor::~PhaseExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (std::thread& t : threads_) t.join();
}

// Claims and runs indices of `batch` until none is left.
void PhaseExecutor::Drain(Batch& batch) {
  for (;;) {
    size_t i = batch.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= batch.order.size()) return;
    (*batch.fn)(batch.order[i]);
    std::lock_guard<std::mutex> lock(batch.mu);
    if (++batch.finished == batch.order.size()) batch.done.notify_all();
  }
}

PhaseExecutor::Ran PhaseExecutor::RunAll(size_t n, const std::function<void(size_t)>& fn,
                                         size_t caller_first) {
  Ran ran = Ran::kInParallel;
  if (n <= 1 || threads_.empty()) {
    ran = Ran::kAlone;
  } else if (cpu_load_ != nullptr && cpu_load_->Busy()) {
    ran = Ran::kCpuBusy;
    if (cpu_busy_runs_ != nullptr) cpu_busy_runs_->fetch_add(1, std::memory_order_relaxed);
  }
  if (ran != Ran::kInParallel) {
    for (size_t i = 0; i < n; ++i) fn(i);  // sequential: the order of the branches
    return ran;
  }
  if (caller_first >= n) caller_first = 0;
  auto batch = std::make_shared<Batch>();
  batch->fn = &fn;
  batch->order.reserve(n - 1);
  for (size_t i = 0; i < n; ++i) {
    if (i != caller_first) batch->order.push_back(i);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < batch->order.size(); ++i) queue_.push_back(batch);
  }
  if (batch->order.size() == 1) {
    work_available_.notify_one();
  } else {
    work_available_.notify_all();
  }
  fn(caller_first);
  Drain(*batch);
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->done.wait(lock, [&] { return batch->finished == batch->order.size(); });
  // Queue entries of this batch that no worker has popped yet find nothing left to claim.
  return ran;
}

void PhaseExecutor::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_available_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    Drain(*batch);
  }
}

}  // namespace xa::internal
