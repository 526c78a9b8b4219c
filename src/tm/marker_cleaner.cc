#include "src/tm/marker_cleaner.h"

#include <algorithm>
#include <utility>

#include "src/base/logging.h"

namespace xa::internal {

MarkerCleaner::MarkerCleaner(const Services* services, const MarkerCommitOptions* options)
    : services_(services), options_(options) {}

MarkerCleaner::~MarkerCleaner() { Stop(); }

void MarkerCleaner::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void MarkerCleaner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void MarkerCleaner::Finished(const Xid& global) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      XA_LOG_XID(kDebug, "marker", global)
          << "cleanup queue full: the marker row is left to recovery's sweep";
      return;
    }
    queue_.push_back(global);
    wake = queue_.size() >= std::max<size_t>(options_->cleanup_batch, 1);
  }
  if (wake) wake_.notify_one();
}

size_t MarkerCleaner::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void MarkerCleaner::Run() {
  const size_t batch_size = std::max<size_t>(options_->cleanup_batch, 1);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait_for(lock, options_->cleanup_interval,
                   [&] { return stopping_ || queue_.size() >= batch_size; });
    const bool last = stopping_;
    while (!queue_.empty()) {
      const size_t n = std::min(batch_size, queue_.size());
      std::vector<Xid> batch(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      lock.unlock();
      const bool deleted = Delete(batch);
      lock.lock();
      if (!deleted) {
        // Kept for the next round (at the front, oldest first), within the queue's bound.
        const size_t room = kMaxQueued > queue_.size() ? kMaxQueued - queue_.size() : 0;
        if (batch.size() > room) batch.resize(room);
        queue_.insert(queue_.begin(), batch.begin(), batch.end());
        break;
      }
    }
    if (last) return;
  }
}

bool MarkerCleaner::Delete(const std::vector<Xid>& batch) {
  if (session_ == nullptr) {
    Result<std::unique_ptr<ResourceManager>> session = services_->OpenSession(options_->rm);
    if (!session.ok()) {
      XA_LOG(kWarning, "marker") << "cannot delete " << batch.size()
                                 << " marker row(s), will try again: " << session.status().ToString();
      return false;
    }
    session_ = std::move(*session);
  }
  Status s = session_->DeleteCommitMarkers(options_->table, batch);
  if (!s.ok()) {
    XA_LOG(kWarning, "marker") << "deleting " << batch.size() << " marker row(s) from '"
                               << options_->table << "' on '" << options_->rm
                               << "' failed, will try again on a new session: " << s.ToString();
    session_.reset();
    return false;
  }
  MetricsRegistry::Add(services_->metrics->marker_rows_deleted, batch.size());
  return true;
}

}  // namespace xa::internal
