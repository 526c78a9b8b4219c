#include "src/tm/phase_executor.h"

#include <atomic>

namespace xa::internal {

struct PhaseExecutor::Batch {
  const std::function<void(size_t)>* fn = nullptr;  // valid until `finished` reaches n
  size_t n = 0;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable done;
  size_t finished = 0;  // guarded by mu
};

PhaseExecutor::PhaseExecutor(size_t threads) {
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
    if (i >= batch.n) return;
    (*batch.fn)(i);
    std::lock_guard<std::mutex> lock(batch.mu);
    if (++batch.finished == batch.n) batch.done.notify_all();
  }
}

void PhaseExecutor::RunAll(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1 || threads_.empty()) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->fn = &fn;
  batch->n = n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 1; i < n; ++i) queue_.push_back(batch);
  }
  if (n == 2) {
    work_available_.notify_one();
  } else {
    work_available_.notify_all();
  }
  Drain(*batch);
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->done.wait(lock, [&] { return batch->finished == batch->n; });
  // Queue entries of this batch that no worker has popped yet find nothing left to claim.
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
