// The frame codec (src/net/frame.h): whole frames decode to their payloads, in any slicing of
// the stream; every kind of damage is refused with Code::kCorruption and a message that says
// which part was damaged.

#include "src/net/frame.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "testutil/status_matchers.h"

namespace xa::net {
namespace {

using ::testing::HasSubstr;
using test::IsOk;
using test::StatusIs;

// Every payload the decoder returns until it needs more bytes; stops at an error.
struct Decoded {
  std::vector<std::string> payloads;
  Status error;
};
Decoded DrainAll(FrameDecoder& decoder) {
  Decoded out;
  while (true) {
    Result<std::optional<std::string>> next = decoder.Next();
    if (!next.ok()) {
      out.error = next.status();
      return out;
    }
    if (!next->has_value()) return out;
    out.payloads.push_back(**next);
  }
}

TEST(FrameTest, FramesFedOneByteAtATimeDecodeToTheirPayloadsInOrder) {
  const std::vector<std::string> sent = {"prepare x1", "", std::string(70000, 'z'),
                                         std::string("\0\x01\xff", 3)};
  std::string stream;
  for (const std::string& p : sent) AppendFrame(p, &stream);
  FrameDecoder decoder;
  std::vector<std::string> got;
  for (char c : stream) {
    decoder.Append(std::string_view(&c, 1));
    Decoded d = DrainAll(decoder);
    ASSERT_THAT(d.error, IsOk());
    got.insert(got.end(), d.payloads.begin(), d.payloads.end());
  }
  EXPECT_EQ(got, sent);
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameTest, AFrameIsHeaderSizePlusPayloadAndStartsWithTheMagic) {
  std::string frame = EncodeFrame("abc");
  ASSERT_EQ(frame.size(), kFrameHeaderSize + 3);
  EXPECT_EQ(frame.substr(0, 4), "XAF1");
  EXPECT_EQ(internal::DecodeFixed32(frame.data() + 4), 3u);
  EXPECT_EQ(frame.substr(kFrameHeaderSize), "abc");
}

TEST(FrameTest, AnIncompleteFrameWaitsForMoreBytes) {
  std::string frame = EncodeFrame("hello");
  FrameDecoder decoder;
  decoder.Append(std::string_view(frame).substr(0, frame.size() - 1));
  Decoded d = DrainAll(decoder);
  EXPECT_THAT(d.error, IsOk());
  EXPECT_TRUE(d.payloads.empty());
  EXPECT_EQ(decoder.buffered(), frame.size() - 1);
  decoder.Append(std::string_view(frame).substr(frame.size() - 1));
  d = DrainAll(decoder);
  EXPECT_EQ(d.payloads, std::vector<std::string>{"hello"});
}

TEST(FrameTest, AWrongMagicIsRefusedAsNotAnXaFrame) {
  std::string frame = EncodeFrame("hello");
  frame[0] = 'G';  // e.g. "GET / HTTP/1.1"
  FrameDecoder decoder;
  decoder.Append(frame);
  EXPECT_THAT(DrainAll(decoder).error,
              StatusIs(Code::kCorruption, HasSubstr("is not an xa frame")));
}

TEST(FrameTest, ADamagedLengthIsCaughtByTheHeaderChecksumWithoutWaitingForThePayload) {
  std::string frame = EncodeFrame("hello");
  frame[4] = static_cast<char>(frame[4] ^ 0x40);  // length 5 -> 69: more bytes than will come
  FrameDecoder decoder;
  decoder.Append(frame);
  EXPECT_THAT(DrainAll(decoder).error,
              StatusIs(Code::kCorruption, HasSubstr("header checksum mismatch")));
}

TEST(FrameTest, ADamagedPayloadIsRefusedByThePayloadChecksum) {
  std::string frame = EncodeFrame("commit x1");
  frame[kFrameHeaderSize + 2] = static_cast<char>(frame[kFrameHeaderSize + 2] ^ 0x01);
  FrameDecoder decoder;
  decoder.Append(frame);
  EXPECT_THAT(DrainAll(decoder).error,
              StatusIs(Code::kCorruption, HasSubstr("payload checksum mismatch")));
}

TEST(FrameTest, ALengthOverTheLimitIsRefusedEvenWithAValidHeaderChecksum) {
  namespace crc32c = internal::crc32c;
  char header[kFrameHeaderSize];
  internal::EncodeFixed32(header, kFrameMagic);
  internal::EncodeFixed32(header + 4, kMaxFramePayload + 1);
  internal::EncodeFixed32(header + 8, 0);
  internal::EncodeFixed32(header + 12, crc32c::Mask(crc32c::Value(header, 12)));
  FrameDecoder decoder;
  decoder.Append(std::string_view(header, sizeof(header)));
  EXPECT_THAT(DrainAll(decoder).error,
              StatusIs(Code::kCorruption, HasSubstr("exceeds the limit")));
}

// No single flipped bit anywhere in a frame yields a payload: each is refused.
TEST(FrameTest, EverySingleBitFlipIsRefused) {
  const std::string frame = EncodeFrame("vote yes x1");
  for (size_t bit = 0; bit < frame.size() * 8; ++bit) {
    std::string damaged = frame;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    FrameDecoder decoder;
    decoder.Append(damaged);
    Decoded d = DrainAll(decoder);
    EXPECT_TRUE(d.payloads.empty()) << "bit " << bit;
    EXPECT_THAT(d.error, StatusIs(Code::kCorruption)) << "bit " << bit;
  }
}

TEST(FrameTest, AfterDamageTheDecoderStaysFailedEvenForGoodFrames) {
  std::string bad = EncodeFrame("x");
  bad[kFrameHeaderSize] = 'y';
  FrameDecoder decoder;
  decoder.Append(bad);
  ASSERT_THAT(DrainAll(decoder).error, StatusIs(Code::kCorruption));
  decoder.Append(EncodeFrame("good"));
  Decoded d = DrainAll(decoder);
  EXPECT_TRUE(d.payloads.empty());
  EXPECT_THAT(d.error, StatusIs(Code::kCorruption, HasSubstr("payload checksum mismatch")));
}

TEST(FrameTest, APayloadOverTheLimitCannotBeSent) {
  EXPECT_THAT(CheckPayloadSize(std::string(kMaxFramePayload, 'a')), IsOk());
  EXPECT_THAT(CheckPayloadSize(std::string(kMaxFramePayload + 1, 'a')),
              StatusIs(Code::kInval, HasSubstr("exceeds the frame limit")));
}

}  // namespace
}  // namespace xa::net
