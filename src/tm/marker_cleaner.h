// MarkerCleaner: deletes the marker rows of finished marker-commit transactions (internal).
//
// A marker row is needed only while a branch of its transaction may still be prepared: recovery
// settles such a branch by it. Once every branch is finished the coordinator hands the global Xid
// here, and a thread of the cleaner's own deletes the rows in batches (one DELETE of up to
// MarkerCommitOptions::cleanup_batch rows, once that many wait or cleanup_interval has passed)
// through a session of its own with the marker resource manager, so no commit waits for it.
//
// Nothing depends on a row being deleted promptly, only on a row not being deleted while it is
// needed: a failed delete is retried with the next batch, a full queue drops the newest Xids
// (counted), and rows left behind by a crash or a drop are deleted by recovery's sweep
// (src/recovery/marker_recovery.h).
//
// Thread safety: Finished() and queued() are thread-safe; Start() and Stop() are called by the
// manager's owner thread.

#ifndef XA_SRC_TM_MARKER_CLEANER_H_
#define XA_SRC_TM_MARKER_CLEANER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "src/tm/services.h"
#include "xa/marker.h"
#include "xa/xid.h"

namespace xa::internal {

class MarkerCleaner {
 public:
  // Rows waiting beyond this are dropped (recovery's sweep deletes them later).
  static constexpr size_t kMaxQueued = 100'000;

  // `services` and `options` must outlive the cleaner.
  MarkerCleaner(const Services* services, const MarkerCommitOptions* options);
  ~MarkerCleaner();
  MarkerCleaner(const MarkerCleaner&) = delete;
  MarkerCleaner& operator=(const MarkerCleaner&) = delete;

  void Start();
  // Deletes what is queued (one attempt) and stops the thread.
  void Stop();

  // Queues the row of `global`, a transaction whose every branch is finished.
  void Finished(const Xid& global);
  // Rows queued and not yet deleted.
  size_t queued() const;

 private:
  void Run();
  // Deletes `batch`; false (and the batch kept by the caller) when it failed.
  bool Delete(const std::vector<Xid>& batch);

  const Services* services_;
  const MarkerCommitOptions* options_;
  std::unique_ptr<ResourceManager> session_;  // the cleaner thread's; reopened after a failure
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<Xid> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_MARKER_CLEANER_H_
