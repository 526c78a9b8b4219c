#include "xa/xid.h"

#include <chrono>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "testutil/status_matchers.h"

namespace xa {
namespace {

using ::testing::HasSubstr;
using test::StatusIs;

const std::string kHostile = std::string("'); DROP TABLE t; --\\\"\0\n\xff", 25);

TEST(XidTest, MakeValidatesEveryField) {
  EXPECT_TRUE(Xid::Make(0, "g", "").ok());
  EXPECT_TRUE(Xid::Make(0x7fffffff, std::string(64, 'g'), std::string(64, 'b')).ok());
  auto negative = Xid::Make(-1, "g", "b");
  ASSERT_THAT(negative, StatusIs(Code::kInval, HasSubstr("format ID")));
  auto big_format = Xid::Make(0x80000000LL, "g", "b");
  EXPECT_EQ(big_format.status().code(), Code::kInval);
  auto empty_gtrid = Xid::Make(1, "", "b");
  ASSERT_THAT(empty_gtrid, StatusIs(Code::kInval, HasSubstr("gtrid")));
  auto long_gtrid = Xid::Make(1, std::string(65, 'g'), "b");
  EXPECT_NE(long_gtrid.status().message().find("65 bytes"), std::string::npos);
  auto long_bqual = Xid::Make(1, "g", std::string(65, 'b'));
  ASSERT_THAT(long_bqual, StatusIs(Code::kInval, HasSubstr("bqual")));
}

TEST(XidTest, ToStringParsesBack) {
  Xid xid = Xid::Make(42, kHostile, "\x01\x02").value();
  EXPECT_EQ(Xid::Parse(xid.ToString()).value(), xid);
  EXPECT_EQ(Xid::Make(1, "ab", "").value().ToString(), "1:6162:");
}

TEST(XidTest, ParseRefusesMalformedText) {
  for (const char* text : {"", "1", "1:61", "1:61:62:63", "x:61:62", "-1:61:62", "01:61:62",
                           "1:6:62", "1:zz:62", "1::62", "1:61:6"}) {
    auto parsed = Xid::Parse(text);
    EXPECT_THAT(parsed, StatusIs(Code::kInval)) << text;
  }
}

TEST(XidTest, GeneratedXidsCarryFormatAndNodeAndAreUnique) {
  XidGenerator generator(0xA1B2C3D4u);
  std::set<Xid> seen;
  for (int i = 0; i < 1000; ++i) {
    Xid xid = generator.Next();
    EXPECT_EQ(xid.format_id(), Xid::kFormatId);
    EXPECT_TRUE(xid.IsGeneratedByXa());
    EXPECT_EQ(xid.NodeId(), 0xA1B2C3D4u);
    EXPECT_TRUE(xid.IsOwnedBy(0xA1B2C3D4u));
    EXPECT_FALSE(xid.IsOwnedBy(1));
    EXPECT_TRUE(seen.insert(xid).second);
  }
  // Two generators on the same node (a restart) never collide.
  XidGenerator after_restart(0xA1B2C3D4u);
  EXPECT_EQ(seen.count(after_restart.Next()), 0u);
}

TEST(XidTest, GeneratedXidsSayWhichProtocolTheyWereMadeFor) {
  XidGenerator generator(7, 3);
  Xid two_phase = generator.Next();
  Xid three_phase = generator.Next(Protocol::kThreePhase);
  EXPECT_EQ(two_phase.format_id(), Xid::kFormatId);
  EXPECT_EQ(three_phase.format_id(), Xid::kThreePhaseFormatId);
  EXPECT_EQ(generator.Next(Protocol::kOnePhase).format_id(), Xid::kFormatId);
  EXPECT_EQ(two_phase.GeneratedProtocol(), Protocol::kTwoPhase);
  EXPECT_EQ(three_phase.GeneratedProtocol(), Protocol::kThreePhase);
  // Branches keep the protocol of their transaction, and the node and begin time read the same.
  EXPECT_EQ(three_phase.WithBranch(2).GeneratedProtocol(), Protocol::kThreePhase);
  EXPECT_TRUE(three_phase.IsOwnedBy(7));
  EXPECT_TRUE(three_phase.BeginTimeMicros().has_value());
  // Our gtrid layout under a format ID we never write is foreign.
  Xid lookalike = Xid::Make(0x58414d32, three_phase.gtrid(), "").value();
  EXPECT_FALSE(lookalike.GeneratedProtocol().has_value());
  EXPECT_FALSE(lookalike.IsGeneratedByXa());
  EXPECT_FALSE(lookalike.NodeId().has_value());
}

// A TCC transaction's Xid has a format of its own ("XAMT"): a log line, a barrier row or a
// recovery report tells it from an XA transaction's at a glance, and its end record can never
// close a 2PC decision of the same gtrid.
TEST(XidTest, TccXidsHaveTheirOwnFormatAndSayTheyAreTcc) {
  XidGenerator generator(7, 3);
  Xid tcc = generator.Next(Protocol::kTcc);
  EXPECT_EQ(tcc.format_id(), Xid::kTccFormatId);
  EXPECT_EQ(Xid::kTccFormatId, 0x58414d54);  // "XAMT"
  EXPECT_TRUE(tcc.bqual().empty());
  EXPECT_EQ(tcc.GeneratedProtocol(), Protocol::kTcc);
  EXPECT_TRUE(tcc.IsGeneratedByXa());
  EXPECT_TRUE(tcc.IsOwnedBy(7));
  EXPECT_TRUE(tcc.BeginTimeMicros().has_value());
  // A participant's branch keeps its transaction's protocol.
  EXPECT_EQ(tcc.WithBranch(0).GeneratedProtocol(), Protocol::kTcc);
  EXPECT_EQ(tcc.WithBranch(0).Global(), tcc);
  // The same generator makes the other protocols' Xids as before, never with the TCC format.
  Xid two_phase = generator.Next(Protocol::kTwoPhase);
  EXPECT_EQ(two_phase.format_id(), Xid::kFormatId);
  EXPECT_NE(Xid::Make(Xid::kFormatId, tcc.gtrid(), "").value(), tcc);
  EXPECT_EQ(ProtocolName(Protocol::kTcc), "TCC");
}

TEST(XidTest, GeneratedXidsCarryTheirBeginTime) {
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  int64_t before = now();
  Xid xid = XidGenerator(3).Next();
  int64_t after = now();
  ASSERT_TRUE(xid.BeginTimeMicros().has_value());
  EXPECT_GE(*xid.BeginTimeMicros(), before);
  EXPECT_LE(*xid.BeginTimeMicros(), after);
  EXPECT_EQ(xid.WithBranch(2).BeginTimeMicros(), xid.BeginTimeMicros());
  EXPECT_EQ(Xid::Make(1, "x", "").value().BeginTimeMicros(), std::nullopt);
}

TEST(XidTest, GeneratedBeginTimeComesFromTheGivenClock) {
  test::FakeClock clock;
  XidGenerator generator(3, &clock);
  EXPECT_EQ(generator.Next().BeginTimeMicros(), clock.WallMicros());
  clock.StepWall(std::chrono::hours(-24));  // a wall clock set back: the gtrid says so
  EXPECT_EQ(generator.Next().BeginTimeMicros(), clock.WallMicros());
}

TEST(XidTest, BranchesShareTheGtridAndDiffer) {
  Xid global = XidGenerator(5, 99).Next();
  Xid b0 = global.WithBranch(0), b1 = global.WithBranch(1);
  EXPECT_EQ(b0.gtrid(), global.gtrid());
  EXPECT_NE(b0, b1);
  EXPECT_EQ(b1.Global(), global);
  EXPECT_TRUE(b1.IsOwnedBy(5));
}

TEST(XidTest, ForeignXidsAreNotOurs) {
  EXPECT_FALSE(Xid::Make(Xid::kFormatId, "short", "").value().IsGeneratedByXa());
  EXPECT_FALSE(Xid::Make(1, std::string(21, '\x01'), "").value().IsGeneratedByXa());
  EXPECT_EQ(Xid::Make(1, "x", "").value().NodeId(), std::nullopt);
}

}  // namespace
}  // namespace xa
