// Keeps src/net/frame_format.md (the format for people) and src/net/frame.h (the constants) in
// step: the test reads the .md's tables and compares them with the header.

#include <cstdint>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "src/net/frame.h"
#include "testutil/doc_table.h"

namespace xa::net {
namespace {

std::string FrameFormatDoc() { return test::ReadSourceFile(XA_SOURCE_DIR, "src/net/frame_format.md"); }

TEST(FrameFormatDocTest, ConstantsTableMatchesTheHeader) {
  std::string md = FrameFormatDoc();
  ASSERT_FALSE(md.empty()) << "src/net/frame_format.md not found under " << XA_SOURCE_DIR;
  const std::map<std::string, uint64_t> expected = {
      {"kFrameMagic", kFrameMagic},
      {"kFrameHeaderSize", kFrameHeaderSize},
      {"kMaxFramePayload", kMaxFramePayload},
  };
  EXPECT_EQ(test::TableConstants(md), expected);
}

TEST(FrameFormatDocTest, FieldTableEndsTheHeaderWhereThePayloadStarts) {
  std::string md = FrameFormatDoc();
  ASSERT_FALSE(md.empty());
  EXPECT_NE(md.find("| header_crc | 12 | 4 |"), std::string::npos);
  EXPECT_NE(md.find("| payload | " + std::to_string(kFrameHeaderSize) + " | length |"),
            std::string::npos);
}

}  // namespace
}  // namespace xa::net
