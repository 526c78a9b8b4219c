#include "xa/xid.h"

#include <chrono>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

TEST(XidTest, MySqlLiteralIsHexOnly) {
  Xid xid = Xid::Make(7, kHostile, kHostile.substr(0, 3)).value();
  std::string literal = xid.ToMySqlLiteral();
  EXPECT_EQ(literal.rfind("X'", 0), 0u);
  // Exactly the four delimiting quotes; no backslash, semicolon or NUL.
  EXPECT_EQ(std::count(literal.begin(), literal.end(), '\''), 4);
  EXPECT_EQ(literal.find_first_of(";\\\"\n", 0), std::string::npos);
  EXPECT_EQ(literal.find('\0'), std::string::npos);
  EXPECT_EQ(Xid::Make(1, "ab", "c").value().ToMySqlLiteral(), "X'6162',X'63',1");
}

TEST(XidTest, MySqlRecoverRowsParseInEveryServerShape) {
  Xid full = Xid::FromMySqlRecoverRow(7, 2, 1, "X'6162',X'63',7").value();
  EXPECT_EQ(full, Xid::Make(7, "ab", "c").value());
  // The server leaves out a format ID of 1 and an empty bqual.
  EXPECT_EQ(Xid::FromMySqlRecoverRow(1, 2, 1, "X'6162',X'63'").value(),
            Xid::Make(1, "ab", "c").value());
  EXPECT_EQ(Xid::FromMySqlRecoverRow(1, 2, 0, "X'6162'").value(), Xid::Make(1, "ab", "").value());
  EXPECT_EQ(Xid::FromMySqlRecoverRow(9, 2, 0, "X'6162',X'',9").value(),
            Xid::Make(9, "ab", "").value());
}

TEST(XidTest, MySqlRecoverRowsThatDisagreeAreRefused) {
  struct Row {
    int64_t format, glen, blen;
    const char* data;
  };
  for (const Row& row : std::initializer_list<Row>{
           {7, 3, 1, "X'6162',X'63',7"},   // gtrid length mismatch
           {7, 2, 0, "X'6162',X'63',7"},   // bqual length mismatch
           {8, 2, 1, "X'6162',X'63',7"},   // format mismatch
           {7, 2, 1, "X'6162',X'63',7 "},  // trailing text
           {7, 2, 1, "'ab','c',7"},        // not hex
           {7, 2, 1, "X'616',X'63',7"},    // odd hex
           {1, 0, 0, "X''"},               // empty gtrid
           {1, 65, 0, "X'00'"},            // length out of range
       }) {
    auto parsed = Xid::FromMySqlRecoverRow(row.format, row.glen, row.blen, row.data);
    EXPECT_THAT(parsed, StatusIs(Code::kInval)) << row.data;
  }
}

TEST(XidTest, PostgresGidRoundTripsAtEveryLength) {
  for (size_t glen = 1; glen <= 64; ++glen) {
    for (size_t blen : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, glen, size_t{64}}) {
      std::string gtrid, bqual;
      for (size_t i = 0; i < glen; ++i) gtrid.push_back(static_cast<char>(i * 37 + glen));
      for (size_t i = 0; i < blen; ++i) bqual.push_back(static_cast<char>(255 - i));
      Xid xid = Xid::Make(0x7fffffff, gtrid, bqual).value();
      std::string gid = xid.ToPostgresGid();
      ASSERT_LT(gid.size(), 200u);
      ASSERT_LE(gid.size(), Xid::kMaxPostgresGidSize);
      ASSERT_EQ(gid.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
                std::string::npos);
      ASSERT_EQ(Xid::FromPostgresGid(gid).value(), xid) << gid;
    }
  }
}

TEST(XidTest, ForeignOrNonCanonicalGidsAreRefused) {
  std::string good = Xid::Make(1, "ab", "c").value().ToPostgresGid();
  EXPECT_EQ(good, "xa1.00000001.YWI.Yw");
  for (const char* gid : {"", "foreign-tx-1", "xa1.", "xa1.00000001.YWI", "xa1.0000001.YWI.Yw",
                          "xa1.0000000G.YWI.Yw", "xa1.0000000A.YWI.Yw", "xa1.00000001.YWJ.Yw",
                          "xa1.00000001.YWI.Yw.", "xa1.00000001.YWI=.Yw", "xa1.00000001..Yw",
                          "xa1.00000001.Y.Yw", "xa1.80000000.YWI.Yw", "XA1.00000001.YWI.Yw"}) {
    auto parsed = Xid::FromPostgresGid(gid);
    EXPECT_THAT(parsed, StatusIs(Code::kInval)) << gid;
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
