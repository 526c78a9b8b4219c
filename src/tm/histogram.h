// A lock-free log-linear latency histogram for the transaction manager's metrics.
//
// Values are nanoseconds. Bucket i covers [Lower(i), Upper(i)): values below 4 ns have a bucket
// each; above, every power of two is split into 4 equal buckets, so a bucket is at most 25% of
// its lower bound wide and a percentile reported at the bucket's midpoint is within about 12% of
// the true value. Record() is two relaxed atomic adds and a compare-exchange for the maximum.
//
// Thread safety: Record() and the readers may run concurrently; a reader sees each counter at
// some recent value (the snapshot is not atomic across buckets, which is fine for monitoring).

#ifndef XA_SRC_TM_HISTOGRAM_H_
#define XA_SRC_TM_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "xa/metrics.h"

namespace xa::internal {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 2;
  static constexpr int kSubBuckets = 1 << kSubBucketBits;
  static constexpr int kMaxExponent = 44;  // 2^44 ns is about 4.9 hours: anything above clamps
  static constexpr int kBuckets = kSubBuckets + (kMaxExponent - kSubBucketBits) * kSubBuckets;

  void Record(std::chrono::nanoseconds value) noexcept;

  LatencySummary Summary() const noexcept;
  // Number of recorded values not greater than `bound_ns` (bucket midpoints decide).
  uint64_t CountAtMost(uint64_t bound_ns) const noexcept;
  uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  uint64_t sum_ns() const noexcept { return sum_ns_.load(std::memory_order_relaxed); }

  static int BucketOf(uint64_t ns) noexcept;
  static uint64_t Lower(int bucket) noexcept;
  static uint64_t Upper(int bucket) noexcept;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_HISTOGRAM_H_
