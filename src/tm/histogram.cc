#include "src/tm/histogram.h"

#include <bit>

namespace xa::internal {

int Histogram::BucketOf(uint64_t ns) noexcept {
  if (ns < static_cast<uint64_t>(kSubBuckets)) return static_cast<int>(ns);
  int exponent = std::bit_width(ns) - 1;  // >= kSubBucketBits
  if (exponent >= kMaxExponent) return kBuckets - 1;
  int sub = static_cast<int>((ns >> (exponent - kSubBucketBits)) & (kSubBuckets - 1));
  return kSubBuckets + (exponent - kSubBucketBits) * kSubBuckets + sub;
}

uint64_t Histogram::Lower(int bucket) noexcept {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket);
  int exponent = (bucket - kSubBuckets) / kSubBuckets + kSubBucketBits;
  uint64_t sub = static_cast<uint64_t>((bucket - kSubBuckets) % kSubBuckets);
  return (static_cast<uint64_t>(kSubBuckets) + sub) << (exponent - kSubBucketBits);
}

uint64_t Histogram::Upper(int bucket) noexcept {
  if (bucket < kSubBuckets) return static_cast<uint64_t>(bucket) + 1;
  int exponent = (bucket - kSubBuckets) / kSubBuckets + kSubBucketBits;
  return Lower(bucket) + (uint64_t{1} << (exponent - kSubBucketBits));
}

void Histogram::Record(std::chrono::nanoseconds value) noexcept {
  uint64_t ns = value.count() < 0 ? 0 : static_cast<uint64_t>(value.count());
  buckets_[static_cast<size_t>(BucketOf(ns))].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Histogram::CountAtMost(uint64_t bound_ns) const noexcept {
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if ((Lower(i) + Upper(i)) / 2 > bound_ns) break;
    total += buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
  }
  return total;
}

LatencySummary Histogram::Summary() const noexcept {
  std::array<uint64_t, kBuckets> counts;
  uint64_t total = 0;
  for (int i = 0; i < kBuckets; ++i) {
    counts[static_cast<size_t>(i)] = buckets_[static_cast<size_t>(i)].load(std::memory_order_relaxed);
    total += counts[static_cast<size_t>(i)];
  }
  LatencySummary out;
  out.count = total;
  out.sum_us = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1000.0;
  if (total == 0) return out;
  auto midpoint_us = [](int i) {
    return static_cast<double>(Lower(i) + Upper(i)) / 2.0 / 1000.0;
  };
  // Rank r (1-based) of the q-quantile: the smallest r with r >= q * total.
  auto rank = [total](double q) {
    uint64_t r = static_cast<uint64_t>(q * static_cast<double>(total));
    if (static_cast<double>(r) < q * static_cast<double>(total)) ++r;
    return r == 0 ? uint64_t{1} : r;
  };
  uint64_t r50 = rank(0.50), r99 = rank(0.99), seen = 0;
  bool have50 = false, have99 = false;
  for (int i = 0; i < kBuckets; ++i) {
    uint64_t c = counts[static_cast<size_t>(i)];
    if (c == 0) continue;
    seen += c;
    if (!have50 && seen >= r50) { out.p50_us = midpoint_us(i); have50 = true; }
    if (!have99 && seen >= r99) { out.p99_us = midpoint_us(i); have99 = true; }
    out.max_us = static_cast<double>(Upper(i)) / 1000.0;
  }
  return out;
}

}  // namespace xa::internal
