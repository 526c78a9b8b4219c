// The recovery report as xa-recover prints it: the summary's first word says the outcome, and the
// JSON document is valid JSON for any text a configuration, a log or a server may hold.

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/base/escape.h"
#include "testutil/json_validator.h"
#include "xa/recovery.h"

namespace xa {
namespace {

using test::JsonValidator;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// The summary is the last line.
std::string SummaryOf(const RecoveryReport& report) {
  std::string text = FormatRecoveryReport(report);
  text.pop_back();
  return text.substr(text.rfind('\n') + 1);
}

TEST(RecoveryReportTest, SummaryLeadsWithTheOutcomeNeverDoneWhenWorkIsLeft) {
  RecoveryReport converged;
  converged.committed = 2;
  EXPECT_THAT(SummaryOf(converged), StartsWith("done: 2 committed"));

  RecoveryReport failed;
  failed.failed = 1;
  RecoveryReport deferred;
  deferred.orphans_deferred = 1;
  RecoveryReport unreachable;
  unreachable.unreachable_rms = {"ledger"};
  RecoveryReport open_decision;
  open_decision.decisions_still_open = 1;
  RecoveryReport damaged;
  damaged.log_damaged = true;
  damaged.orphans_deferred = 1;
  RecoveryReport three_phase;
  three_phase.awaiting_agents = 1;
  for (const RecoveryReport* report :
       {&failed, &deferred, &unreachable, &open_decision, &damaged, &three_phase}) {
    ASSERT_FALSE(report->Converged());
    EXPECT_THAT(SummaryOf(*report), StartsWith("not finished: ")) << SummaryOf(*report);
  }

  RecoveryReport plan = failed;
  plan.dry_run = true;
  EXPECT_THAT(SummaryOf(plan), StartsWith("plan: "));
}

TEST(RecoveryReportTest, TextReportEscapesNamesAndRawEntries) {
  RecoveryReport report;
  BranchReport branch;
  branch.rm_name = "a\x1b[2Jb";
  branch.raw = "gid\x9b"
               "2J";
  report.branches.push_back(branch);
  report.unreachable_rms = {"c\x1b]0;title\x07"};
  std::string text = FormatRecoveryReport(report);
  for (unsigned char c : text) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f)) << "byte " << int{c} << " in " << text;
  }
  EXPECT_THAT(text, HasSubstr("rm=a\\x1b[2Jb"));
}

TEST(RecoveryReportTest, JsonIsValidForAnyTextAndKeepsUtf8) {
  RecoveryReport report;
  BranchReport branch;
  branch.rm_name = "Z\xc3\xbcrich-\xe6\x9d\xb1\xe4\xba\xac-\xf0\x9f\x8f\xa6";  // Zürich-東京-🏦
  constexpr char kRaw[] = "nul\0quote\"back\\slash\x7f";
  branch.raw = std::string(kRaw, sizeof(kRaw) - 1);
  branch.log_state = "bad utf-8: \xff\xfe \xc3 \xe6\x9d \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80";
  branch.rm_state = "esc \x1b[31m c1 \xc2\x9b tab\t nl\n cr\r";
  branch.reason = "\xf0\x9f";  // cut in the middle of a character
  report.branches.push_back(branch);
  report.unreachable_rms = {"\x80"};
  std::string json = RecoveryReportToJson(report);
  EXPECT_EQ(JsonValidator::Check(json), "") << json;
  EXPECT_THAT(json,
              HasSubstr("\"rm\":\"Z\xc3\xbcrich-\xe6\x9d\xb1\xe4\xba\xac-\xf0\x9f\x8f\xa6\""));
  EXPECT_THAT(json, HasSubstr("nul\\u0000quote\\\"back\\\\slash\\u007f"));
  EXPECT_THAT(json, HasSubstr("esc \\u001b[31m c1 \\u009b tab\\t nl\\n cr\\u000d"));
  // Each byte that is no part of well-formed UTF-8 stands as U+FFFD.
  EXPECT_THAT(json, HasSubstr("bad utf-8: \\ufffd\\ufffd \\ufffd \\ufffd\\ufffd "
                              "\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\\ufffd"));
  EXPECT_THAT(json, HasSubstr("\"reason\":\"\\ufffd\\ufffd\""));
  EXPECT_THAT(json, Not(HasSubstr("\\u00c3")));  // no mojibake of the ü
}

TEST(RecoveryReportTest, JsonEscapingOfEveryByteValueIsValid) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  // Every single byte, every pair: the escaper must never emit invalid JSON.
  EXPECT_EQ(JsonValidator::Check("\"" + internal::EscapeJsonString(all) + "\""), "");
  for (int a = 0; a < 256; ++a) {
    for (int b = 0x80; b < 256; b += 7) {
      std::string pair{static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(JsonValidator::Check("\"" + internal::EscapeJsonString(pair) + "\""), "")
          << a << " " << b;
    }
  }
}

TEST(RecoveryReportTest, JsonValidatorRefusesWhatIsNotJson) {
  // The validator must be able to fail, or the tests above prove nothing.
  for (const char* bad : {"", "{", "{\"a\":1,}", "[1 2]", "\"\x1b\"", "\"\xc3\"", "\"\\x41\"",
                          "\"\\ud800\"", "01", "{} {}", "\"\xed\xa0\x80\""}) {
    EXPECT_NE(JsonValidator::Check(bad), "") << bad;
  }
  EXPECT_EQ(JsonValidator::Check(" {\"a\":[1,-2.5e3,true,null,\"\\u00e9\xc3\xa9\"]} "), "");
}

}  // namespace
}  // namespace xa
