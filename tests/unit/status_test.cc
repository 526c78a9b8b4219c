#include "xa/status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa {
namespace {

using test::StatusIs;

TEST(StatusTest, DefaultIsOkWithXaOkName) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.ToString(), "XA_OK");
}

TEST(StatusTest, CodesKeepTheirXOpenNumbers) {
  // Persisted and shown to operators: these numbers are those of X/Open xa.h.
  EXPECT_EQ(static_cast<int>(Code::kReadOnly), 3);
  EXPECT_EQ(static_cast<int>(Code::kRetry), 4);
  EXPECT_EQ(static_cast<int>(Code::kHeuristicMixed), 5);
  EXPECT_EQ(static_cast<int>(Code::kHeuristicHazard), 8);
  EXPECT_EQ(static_cast<int>(Code::kRbRollback), 100);
  EXPECT_EQ(static_cast<int>(Code::kRbTimeout), 106);
  EXPECT_EQ(static_cast<int>(Code::kRmError), -3);
  EXPECT_EQ(static_cast<int>(Code::kNoTa), -4);
  EXPECT_EQ(static_cast<int>(Code::kRmFail), -7);
  EXPECT_EQ(static_cast<int>(Code::kDupId), -8);
  EXPECT_EQ(static_cast<int>(Code::kOutside), -9);
}

TEST(StatusTest, ClassifiesRollbackAndHeuristicCodes) {
  EXPECT_TRUE(Status(Code::kRbDeadlock, "x").IsRollback());
  EXPECT_TRUE(Status(Code::kRbTransient, "x").IsRollback());
  EXPECT_FALSE(Status(Code::kRmFail, "x").IsRollback());
  EXPECT_TRUE(Status(Code::kHeuristicMixed, "x").IsHeuristic());
  EXPECT_FALSE(Status(Code::kReadOnly, "x").IsHeuristic());
}

TEST(StatusTest, ContextIsPrependedAndCodeKept) {
  Status s = Status(Code::kNoTa, "unknown xid").WithContext("commit on pg");
  EXPECT_EQ(s.code(), Code::kNoTa);
  EXPECT_EQ(s.ToString(), "XAER_NOTA: commit on pg: unknown xid");
}

TEST(StatusTest, ResultHoldsValueOrError) {
  Result<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());
  Result<int> bad = Status(Code::kIoError, "disk gone");
  // ok() itself is what this test is about; the matchers read status().
  EXPECT_FALSE(bad.ok()) << "a Result built from an error holds no value";
  EXPECT_THAT(bad, StatusIs(Code::kIoError, "disk gone"));
}

Status FailsEarly(bool fail, int* reached) {
  XA_RETURN_IF_ERROR(fail ? Status(Code::kBusy, "held") : Status::Ok());
  *reached = 1;
  return Status::Ok();
}

TEST(StatusTest, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_EQ(FailsEarly(true, &reached).code(), Code::kBusy);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(FailsEarly(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace xa
