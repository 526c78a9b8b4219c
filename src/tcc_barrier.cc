#include "xa/tcc_barrier.h"

#include "src/base/logging.h"
#include "xa/env.h"
#include "xa/marker.h"

namespace xa {

std::string_view BarrierOpName(BarrierOp op) noexcept {
  switch (op) {
    case BarrierOp::kTry: return "try";
    case BarrierOp::kConfirm: return "confirm";
    case BarrierOp::kCancel: return "cancel";
    case BarrierOp::kAction: return "action";
    case BarrierOp::kCompensate: return "compensate";
  }
  return "unknown";
}

std::optional<BarrierOp> CompensatedOp(BarrierOp op) noexcept {
  switch (op) {
    case BarrierOp::kCancel: return BarrierOp::kTry;
    case BarrierOp::kCompensate: return BarrierOp::kAction;
    default: return std::nullopt;
  }
}

std::string_view BarrierVerdictName(BarrierVerdict verdict) noexcept {
  switch (verdict) {
    case BarrierVerdict::kRun: return "run";
    case BarrierVerdict::kRepeated: return "repeated";
    case BarrierVerdict::kEmptyCompensation: return "empty compensation";
    case BarrierVerdict::kRefusedAfterCompensation: return "refused after compensation";
  }
  return "unknown";
}

BarrierVerdict DecideBarrier(BarrierOp op, bool origin_inserted, bool own_inserted,
                             std::optional<BarrierOp> existing_reason) noexcept {
  // A compensation that found no row of what it compensates: that operation never arrived. Its
  // row, written now by this compensation, refuses it if it comes later.
  if (CompensatedOp(op).has_value() && origin_inserted) return BarrierVerdict::kEmptyCompensation;
  if (own_inserted) return BarrierVerdict::kRun;
  // The row was there: written by an earlier delivery of this operation, or, for a Try or an
  // Action, by the compensation that overtook it.
  if (existing_reason.has_value() && existing_reason != op && CompensatedOp(*existing_reason) == op) {
    return BarrierVerdict::kRefusedAfterCompensation;
  }
  return BarrierVerdict::kRepeated;
}

std::string BarrierKeyError(const BarrierKey& key) {
  if (key.global_id.empty()) return "barrier key: the global id is empty";
  if (key.global_id.size() > 128) {
    return "barrier key: the global id is " + std::to_string(key.global_id.size()) +
           " bytes long; at most 128";
  }
  if (key.branch_id.empty()) return "barrier key: the branch id is empty";
  if (key.branch_id.size() > 64) {
    return "barrier key: the branch id is " + std::to_string(key.branch_id.size()) +
           " bytes long; at most 64";
  }
  return "";
}

std::string BarrierOptionsError(const BarrierOptions& options) {
  if (std::string error = MarkerTableNameError(options.table); !error.empty()) {
    // The rule is the marker table's; the message names the barrier's table.
    return "barrier table" + error.substr(error.find(" '"));
  }
  if (options.retention < std::chrono::hours(1)) {
    return "barrier retention of " + std::to_string(options.retention.count()) +
           " s is shorter than an hour: a delayed Try or a repeated Confirm could then outlive "
           "the rows that judge it; keep it longer than any request can be delayed";
  }
  if (options.purge_batch < 1 || options.purge_batch > 10000) {
    return "barrier purge_batch " + std::to_string(options.purge_batch) +
           " is outside 1..10000";
  }
  return "";
}

BarrierPurgeJob::BarrierPurgeJob(PurgeOnce purge_once, BarrierPurgeJobOptions options)
    : purge_once_(std::move(purge_once)), options_(options) {
  if (options_.clock == nullptr) options_.clock = Env::Default()->clock();
  if (options_.max_batches_per_run == 0) options_.max_batches_per_run = 1;
  thread_ = std::thread([this] { Run(); });
}

BarrierPurgeJob::~BarrierPurgeJob() { Stop(); }

void BarrierPurgeJob::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

BarrierPurgeJob::Stats BarrierPurgeJob::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BarrierPurgeJob::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    uint64_t deleted = 0;
    for (size_t batch = 0; batch < options_.max_batches_per_run && !stopping_; ++batch) {
      lock.unlock();
      Result<int64_t> rows = purge_once_();
      lock.lock();
      ++stats_.calls;
      if (!rows.ok()) {
        ++stats_.failures;
        XA_LOG(kWarning, "tcc-barrier")
            << "purging the barrier table failed, tried again in "
            << options_.interval.count() << " ms: " << rows.status().ToString();
        break;
      }
      deleted += static_cast<uint64_t>(*rows);
      stats_.rows_deleted += static_cast<uint64_t>(*rows);
      if (*rows == 0) break;
    }
    ++stats_.runs;
    if (deleted > 0) {
      XA_LOG(kInfo, "tcc-barrier") << "purged " << deleted << " barrier rows of finished branches";
    }
    cv_.notify_all();  // stats() waiters in tests read the count of runs
    options_.clock->WaitFor(lock, cv_,
                            std::chrono::duration_cast<std::chrono::microseconds>(options_.interval),
                            [this] { return stopping_; });
  }
}

}  // namespace xa
