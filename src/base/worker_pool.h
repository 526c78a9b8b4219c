// WorkerPool: a fixed set of threads running posted functions in order of posting; the agent's
// strands and finishers and the manager's decision notifier run on it.
//
// Not asio::thread_pool: asio's completion path synchronises with a standalone atomic fence,
// which the thread sanitizer cannot follow (g++ refuses it under -fsanitize=thread -Werror), and
// the concurrency of both users must be checked under it.
//
// Thread safety: Post() and Stop() may be called from any thread, Stop() not from a function
// the pool runs.

#ifndef XA_SRC_BASE_WORKER_POOL_H_
#define XA_SRC_BASE_WORKER_POOL_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace xa::internal {

class WorkerPool {
 public:
  explicit WorkerPool(size_t threads) {
    for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() { Stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False (and `fn` dropped) once the pool is stopping.
  bool Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return false;
      queue_.push_back(std::move(fn));
    }
    ready_.notify_one();
    return true;
  }
  // Lets the functions running now finish, drops the queued ones, joins the threads.
  // Idempotent.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      queue_.clear();
    }
    ready_.notify_all();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> next;
      {
        std::unique_lock<std::mutex> lock(mu_);
        ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      next();
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace xa::internal

#endif  // XA_SRC_BASE_WORKER_POOL_H_
