// The metrics histogram: bucket layout and percentile estimates.

#include "src/tm/histogram.h"

#include <gtest/gtest.h>

namespace xa::internal {
namespace {

TEST(HistogramTest, BucketsTileTheRangeWithoutGaps) {
  for (int i = 0; i + 1 < Histogram::kBuckets; ++i) {
    EXPECT_EQ(Histogram::Upper(i), Histogram::Lower(i + 1)) << "bucket " << i;
    EXPECT_EQ(Histogram::BucketOf(Histogram::Lower(i)), i);
    EXPECT_EQ(Histogram::BucketOf(Histogram::Upper(i) - 1), i);
  }
}

TEST(HistogramTest, BucketWidthIsAtMostAQuarterOfItsLowerBound) {
  for (int i = Histogram::kSubBuckets; i < Histogram::kBuckets; ++i) {
    EXPECT_LE(4 * (Histogram::Upper(i) - Histogram::Lower(i)), Histogram::Lower(i));
  }
}

TEST(HistogramTest, PercentilesAreWithinTheBucketResolution) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(std::chrono::microseconds(i));
  LatencySummary s = h.Summary();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_NEAR(s.p50_us, 500.0, 500.0 * 0.125);
  EXPECT_NEAR(s.p99_us, 990.0, 990.0 * 0.125);
  EXPECT_NEAR(s.sum_us, 500500.0, 1e-6);
  EXPECT_GE(s.max_us, 1000.0);
}

TEST(HistogramTest, EmptyHistogramReportsZeros) {
  Histogram h;
  LatencySummary s = h.Summary();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p50_us, 0.0);
  EXPECT_EQ(h.CountAtMost(1000000), 0u);
}

}  // namespace
}  // namespace xa::internal
