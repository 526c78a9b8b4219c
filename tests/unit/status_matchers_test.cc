// The test matchers of tests/testutil/status_matchers.h: what they accept, and that a failure
// names the code and the message that were actually returned.

#include "testutil/status_matchers.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xa {
namespace {

using ::testing::HasSubstr;
using ::testing::Matcher;
using ::testing::StringMatchResultListener;
using test::IsOk;
using test::StatusIs;

// Runs `matcher` on `value`; returns whether it matched and fills `explanation`.
template <typename T>
bool Explain(const Matcher<const T&>& matcher, const T& value, std::string* explanation) {
  StringMatchResultListener listener;
  bool matched = matcher.MatchAndExplain(value, &listener);
  *explanation = listener.str();
  return matched;
}

TEST(StatusMatchersTest, IsOkAcceptsOnlyAnOkStatusOrAResultWithAValue) {
  EXPECT_THAT(Status::Ok(), IsOk());
  EXPECT_THAT(Result<int>(3), IsOk());
  std::string explanation;
  EXPECT_FALSE(Explain<Status>(IsOk(), Status(Code::kNoTa, "unknown xid 1:61:"), &explanation));
  EXPECT_THAT(explanation, HasSubstr("XAER_NOTA"));
  EXPECT_FALSE(Explain<Result<int>>(IsOk(), Result<int>(Status(Code::kIoError, "disk gone")),
                                    &explanation));
  EXPECT_THAT(explanation, HasSubstr("XA_IOERROR"));
}

TEST(StatusMatchersTest, AFailureShowsTheActualCodeAndMessage) {
  // What GoogleTest prints as "Actual:" beside the matcher's explanation.
  EXPECT_EQ(::testing::PrintToString(Status(Code::kNoTa, "unknown xid 1:61:")),
            "XAER_NOTA: unknown xid 1:61:");
  EXPECT_EQ(::testing::PrintToString(Result<int>(Status(Code::kIoError, "disk gone"))),
            "XA_IOERROR: disk gone");
  EXPECT_EQ(::testing::PrintToString(Result<int>(3)), "XA_OK (with a value)");
  EXPECT_EQ(::testing::DescribeMatcher<const Status&>(IsOk()), "has code XA_OK");
}

TEST(StatusMatchersTest, StatusIsComparesTheCodeAndNamesTheActualOneOnAMismatch) {
  Status nota(Code::kNoTa, "unknown xid");
  EXPECT_THAT(nota, StatusIs(Code::kNoTa));
  EXPECT_THAT(Result<int>(nota), StatusIs(Code::kNoTa));
  std::string explanation;
  EXPECT_FALSE(Explain<Status>(StatusIs(Code::kRmFail), nota, &explanation));
  EXPECT_EQ(explanation, "whose code is XAER_NOTA");
  EXPECT_FALSE(Explain<Result<int>>(StatusIs(Code::kNoTa), Result<int>(7), &explanation))
      << "a Result with a value has an OK status";
  EXPECT_FALSE(Explain<Status>(StatusIs(Code::kNoTa), Status::Ok(), &explanation));
  EXPECT_THAT(::testing::DescribeMatcher<const Status&>(StatusIs(Code::kRmFail)),
              HasSubstr("XAER_RMFAIL"));
}

TEST(StatusMatchersTest, StatusIsWithAMessageMatcherNeedsBoth) {
  Status config(Code::kConfig, "max_prepared_transactions = 0: set it in postgresql.conf");
  EXPECT_THAT(config, StatusIs(Code::kConfig, HasSubstr("postgresql.conf")));
  std::string explanation;
  EXPECT_FALSE(
      Explain<Status>(StatusIs(Code::kConfig, HasSubstr("pg_hba.conf")), config, &explanation));
  EXPECT_THAT(explanation, HasSubstr("message does not match"));
  EXPECT_EQ(::testing::DescribeMatcher<const Status&>(
                StatusIs(Code::kConfig, HasSubstr("pg_hba.conf"))),
            "has code XA_CONFIG and a message that has substring \"pg_hba.conf\"");
  EXPECT_FALSE(Explain<Status>(StatusIs(Code::kInval, HasSubstr("postgresql.conf")), config,
                               &explanation))
      << "the right message under the wrong code";
}

}  // namespace
}  // namespace xa
