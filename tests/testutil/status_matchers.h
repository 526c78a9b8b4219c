// GoogleTest matchers for xa::Status and xa::Result<T> that print the code and the message of
// what was actually returned when they fail:
//
//   EXPECT_THAT(rm->Commit(xid, CommitMode::kTwoPhase), IsOk());
//   ASSERT_THAT(log, StatusIs(Code::kCorruption));               // log is a Result<...>
//   EXPECT_THAT(status, StatusIs(Code::kConfig, HasSubstr("max_prepared_transactions")));
//
// There is deliberately no NotOk(): a test that only checks "some error" passes for the wrong
// error. Name the code the code under test returns.

#ifndef XA_TESTS_TESTUTIL_STATUS_MATCHERS_H_
#define XA_TESTS_TESTUTIL_STATUS_MATCHERS_H_

#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include <gmock/gmock.h>

#include "xa/status.h"

namespace xa {

// How GoogleTest prints a Status or a Result in its messages ("XAER_NOTA: <message>"). A test
// file that has GoogleTest print a Status includes this header, so that every test program prints
// it the same way. (A Code is left to GoogleTest: it prints it as its number everywhere.)
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.ToString(); }
template <typename T>
void PrintTo(const Result<T>& result, std::ostream* os) {
  *os << (result.ok() ? std::string("XA_OK (with a value)") : result.status().ToString());
}

namespace test {

// The Status a matcher looks at: the Status itself, or a Result's status (OK when it holds a
// value).
inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

namespace status_matchers_detail {

template <typename StatusOrResult>
class StatusIsMatcherImpl : public ::testing::MatcherInterface<const StatusOrResult&> {
 public:
  StatusIsMatcherImpl(Code code, std::optional<::testing::Matcher<const std::string&>> message)
      : code_(code), message_(std::move(message)) {}

  // GoogleTest prints the actual Status (PrintTo above) before this explanation.
  bool MatchAndExplain(const StatusOrResult& actual,
                       ::testing::MatchResultListener* listener) const override {
    const Status& status = StatusOf(actual);
    if (status.code() != code_) {
      *listener << "whose code is " << CodeName(status.code());
      return false;
    }
    if (!message_.has_value()) return true;
    ::testing::StringMatchResultListener message_listener;
    if (!message_->MatchAndExplain(status.message(), &message_listener)) {
      *listener << "whose message does not match";
      if (!message_listener.str().empty()) *listener << " (" << message_listener.str() << ")";
      return false;
    }
    return true;
  }

  void DescribeTo(std::ostream* os) const override {
    *os << "has code " << CodeName(code_);
    if (!message_.has_value()) return;
    *os << " and a message that ";
    message_->DescribeTo(os);
  }

  void DescribeNegationTo(std::ostream* os) const override {
    *os << "does not have code " << CodeName(code_);
    if (!message_.has_value()) return;
    *os << " or has a message that ";
    message_->DescribeNegationTo(os);
  }

 private:
  Code code_;
  std::optional<::testing::Matcher<const std::string&>> message_;  // none: any message
};

// Polymorphic: one StatusIs(...) works on a Status and on any Result<T>.
class StatusIsMatcher {
 public:
  StatusIsMatcher(Code code, std::optional<::testing::Matcher<const std::string&>> message)
      : code_(code), message_(std::move(message)) {}

  template <typename StatusOrResult>
  operator ::testing::Matcher<const StatusOrResult&>() const {  // NOLINT: implicit by design
    return ::testing::Matcher<const StatusOrResult&>(
        new StatusIsMatcherImpl<std::remove_cv_t<std::remove_reference_t<StatusOrResult>>>(
            code_, message_));
  }

 private:
  Code code_;
  std::optional<::testing::Matcher<const std::string&>> message_;
};

}  // namespace status_matchers_detail

// The Status (or the Result's status) has `code`, with any message.
inline status_matchers_detail::StatusIsMatcher StatusIs(Code code) {
  return status_matchers_detail::StatusIsMatcher(code, std::nullopt);
}

// The Status (or the Result's status) has `code`, and its message matches `message`: a string
// (equal) or a matcher such as HasSubstr("...").
inline status_matchers_detail::StatusIsMatcher StatusIs(
    Code code, ::testing::Matcher<const std::string&> message) {
  return status_matchers_detail::StatusIsMatcher(code, std::move(message));
}

// The Status is OK, or the Result holds a value.
inline status_matchers_detail::StatusIsMatcher IsOk() { return StatusIs(Code::kOk); }

}  // namespace test
}  // namespace xa

#endif  // XA_TESTS_TESTUTIL_STATUS_MATCHERS_H_
