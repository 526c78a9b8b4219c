// The participant barrier's one rule (DecideBarrier) and its input checks, without a database:
// every operation against every outcome of its inserts.

#include "xa/tcc_barrier.h"

#include <gtest/gtest.h>

namespace xa {
namespace {

using V = BarrierVerdict;

TEST(BarrierRule, FirstDeliveryOfEveryOperationRuns) {
  for (BarrierOp op : {BarrierOp::kTry, BarrierOp::kConfirm, BarrierOp::kAction}) {
    EXPECT_EQ(DecideBarrier(op, false, true, std::nullopt), V::kRun) << BarrierOpName(op);
  }
  // A compensation whose compensated row was there (the Try ran) and whose own row is new.
  EXPECT_EQ(DecideBarrier(BarrierOp::kCancel, false, true, std::nullopt), V::kRun);
  EXPECT_EQ(DecideBarrier(BarrierOp::kCompensate, false, true, std::nullopt), V::kRun);
}

TEST(BarrierRule, ACompensationThatWroteTheCompensatedRowIsEmpty) {
  EXPECT_EQ(DecideBarrier(BarrierOp::kCancel, true, true, std::nullopt), V::kEmptyCompensation);
  EXPECT_EQ(DecideBarrier(BarrierOp::kCompensate, true, true, std::nullopt),
            V::kEmptyCompensation);
}

TEST(BarrierRule, ARowWrittenByTheSameOperationIsARepeat) {
  EXPECT_EQ(DecideBarrier(BarrierOp::kTry, false, false, BarrierOp::kTry), V::kRepeated);
  EXPECT_EQ(DecideBarrier(BarrierOp::kAction, false, false, BarrierOp::kAction), V::kRepeated);
  EXPECT_EQ(DecideBarrier(BarrierOp::kConfirm, false, false, std::nullopt), V::kRepeated);
  EXPECT_EQ(DecideBarrier(BarrierOp::kCancel, false, false, std::nullopt), V::kRepeated);
  EXPECT_EQ(DecideBarrier(BarrierOp::kCompensate, false, false, std::nullopt), V::kRepeated);
}

TEST(BarrierRule, ATryOrActionWhoseRowItsCompensationWroteIsRefused) {
  EXPECT_EQ(DecideBarrier(BarrierOp::kTry, false, false, BarrierOp::kCancel),
            V::kRefusedAfterCompensation);
  EXPECT_EQ(DecideBarrier(BarrierOp::kAction, false, false, BarrierOp::kCompensate),
            V::kRefusedAfterCompensation);
  // Another operation's compensation is not this one's: a Try row a Compensate wrote cannot
  // exist, and is never read as a refusal of the Try.
  EXPECT_EQ(DecideBarrier(BarrierOp::kTry, false, false, BarrierOp::kCompensate), V::kRepeated);
}

TEST(BarrierRule, EveryOperationAndVerdictHasAName) {
  EXPECT_EQ(BarrierOpName(BarrierOp::kCompensate), "compensate");
  EXPECT_EQ(BarrierVerdictName(V::kRefusedAfterCompensation), "refused after compensation");
  EXPECT_EQ(CompensatedOp(BarrierOp::kCancel), BarrierOp::kTry);
  EXPECT_EQ(CompensatedOp(BarrierOp::kCompensate), BarrierOp::kAction);
  EXPECT_EQ(CompensatedOp(BarrierOp::kConfirm), std::nullopt);
}

TEST(BarrierRule, KeysAndOptionsAreCheckedNamingWhatIsWrong) {
  EXPECT_EQ(BarrierKeyError({"g", "b"}), "");
  EXPECT_EQ(BarrierKeyError({std::string(128, 'g'), std::string(64, 'b')}), "");
  EXPECT_NE(BarrierKeyError({std::string(129, 'g'), "b"}).find("129 bytes long; at most 128"),
            std::string::npos);
  EXPECT_NE(BarrierKeyError({"g", ""}).find("branch id is empty"), std::string::npos);
  BarrierOptions options;
  EXPECT_EQ(BarrierOptionsError(options), "");
  options.table = "1bad";
  EXPECT_NE(BarrierOptionsError(options).find("barrier table '1bad'"), std::string::npos)
      << BarrierOptionsError(options);
  options = BarrierOptions();
  options.purge_batch = 0;
  EXPECT_NE(BarrierOptionsError(options).find("outside 1..10000"), std::string::npos);
  options = BarrierOptions();
  options.retention = std::chrono::seconds(3599);
  EXPECT_NE(BarrierOptionsError(options).find("shorter than an hour"), std::string::npos);
}

}  // namespace
}  // namespace xa
