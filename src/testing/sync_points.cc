#include "src/testing/sync_points.h"

#include <array>

namespace xa::sync {
namespace {

constexpr std::array kAll = {
    kNetConnectionAccepted,
    kNetMessageQueued,
    kNetConnectionClosedByPeer,
    kLogAppendQueued,
    kThreePhaseBeforePreCommit,
    kThreePhaseBeforeDoCommit,
};

}  // namespace

std::span<const Point> AllPoints() noexcept { return kAll; }

SyncPoints& SyncPoints::Instance() {
  static SyncPoints* instance = new SyncPoints;  // leaked on purpose: used until the process ends
  return *instance;
}

void SyncPoints::LoadDependency(std::vector<std::pair<Point, Point>> happens_before) {
  std::lock_guard<std::mutex> lock(mu_);
  predecessors_.clear();
  for (const auto& [before, after] : happens_before) {
    predecessors_[after.name].push_back(before.name);
  }
  passed_points_.clear();
  hits_.clear();
  passed_.notify_all();  // a thread may now wait for something else, or for nothing
}

void SyncPoints::SetCallback(const Point& point, std::function<void(void*)> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_[point.name] = std::move(callback);
}

void SyncPoints::ClearCallback(const Point& point) {
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_.erase(point.name);
}

void SyncPoints::ClearTrace() {
  std::lock_guard<std::mutex> lock(mu_);
  passed_points_.clear();
  hits_.clear();
}

void SyncPoints::ClearAll() {
  std::lock_guard<std::mutex> lock(mu_);
  predecessors_.clear();
  callbacks_.clear();
  passed_points_.clear();
  hits_.clear();
  passed_.notify_all();
}

void SyncPoints::EnableProcessing() {
  std::lock_guard<std::mutex> lock(mu_);
  enabled_.store(true, std::memory_order_relaxed);
}

void SyncPoints::DisableProcessing() {
  std::lock_guard<std::mutex> lock(mu_);
  enabled_.store(false, std::memory_order_relaxed);
  passed_.notify_all();  // release every waiting thread
}

uint64_t SyncPoints::Hits(const Point& point) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = hits_.find(point.name);
  return it == hits_.end() ? 0 : it->second;
}

void SyncPoints::Process(const Point& point, void* arg) {
  if (!enabled_.load(std::memory_order_relaxed)) return;
  std::unique_lock<std::mutex> lock(mu_);
  auto predecessors_passed = [&] {
    auto it = predecessors_.find(point.name);
    if (it == predecessors_.end()) return true;
    for (std::string_view before : it->second) {
      if (passed_points_.count(before) == 0) return false;
    }
    return true;
  };
  passed_.wait(lock, [&] { return !enabled_.load(std::memory_order_relaxed) ||
                                  predecessors_passed(); });
  if (!enabled_.load(std::memory_order_relaxed)) return;
  std::function<void(void*)> callback;
  if (auto it = callbacks_.find(point.name); it != callbacks_.end()) callback = it->second;
  if (callback) {
    // Without the lock: a callback may block, or pass sync points of its own.
    lock.unlock();
    callback(arg);
    lock.lock();
  }
  passed_points_.insert(point.name);
  ++hits_[point.name];
  passed_.notify_all();
}

}  // namespace xa::sync
