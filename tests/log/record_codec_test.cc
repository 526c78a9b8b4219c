// The record codec: CRC32C, every record kind round-trips, hostile payloads are refused.

#include "recovery-log/record_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "log_test_util.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace xa::internal {
namespace {

using xa::test::Decision;
using xa::test::End;
using xa::test::Heuristic;
using xa::test::HeuristicCleared;

TEST(Crc32c, MatchesKnownValues) {
  // RFC 3720 B.4 test vectors and the classic check value.
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c::Value(zeros), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c::Value(ones), 0x62a8ab43u);
}

TEST(Crc32c, HardwareAndPortablePathsAgreeAtEveryLengthAndSplit) {
  std::mt19937 rng(42);
  std::string data(300, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t n = 0; n <= data.size(); ++n) {
    uint32_t whole = crc32c::ExtendPortable(0, data.data(), n);
    ASSERT_EQ(crc32c::Value(data.data(), n), whole) << n;
    size_t split = n / 3;
    ASSERT_EQ(crc32c::Extend(crc32c::Value(data.data(), split), data.data() + split, n - split),
              whole)
        << n;
  }
}

TEST(Crc32c, MaskRoundTripsAndChangesTheValue) {
  uint32_t crc = crc32c::Value("decision");
  EXPECT_NE(crc32c::Mask(crc), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Mask(crc)), crc);
}

TEST(Coding, FixedWidthIntegersAreLittleEndianOnDisk) {
  std::string s;
  PutFixed32(&s, 0x01020304u);
  PutFixed64(&s, 0x0102030405060708ull);
  EXPECT_EQ(s, std::string("\x04\x03\x02\x01\x08\x07\x06\x05\x04\x03\x02\x01", 12));
}

TEST(Coding, VarintRefusesOverlongEncoding) {
  std::string s(11, '\xff');
  Decoder d(s);
  uint64_t v;
  EXPECT_FALSE(d.GetVarint64(&v));
  std::string ok;
  PutVarint64(&ok, UINT64_MAX);
  Decoder d2(ok);
  ASSERT_TRUE(d2.GetVarint64(&v));
  EXPECT_EQ(v, UINT64_MAX);
}

void ExpectRoundTrip(const LogRecord& original) {
  std::string payload;
  ASSERT_TRUE(EncodePayload(original, &payload).ok());
  std::string file;
  SegmentHeader h;
  h.node_id = 3;
  h.epoch = 9;
  h.segment_number = 5;
  h.first_lsn = 77;
  EncodeSegmentHeader(h, &file);
  AppendPhysicalRecord(&file, static_cast<uint8_t>(original.type), 77, payload);

  SegmentReader reader(file);
  SegmentHeader got_header;
  ASSERT_TRUE(reader.ReadHeader(&got_header).ok());
  EXPECT_EQ(got_header.node_id, 3u);
  EXPECT_EQ(got_header.epoch, 9u);
  EXPECT_EQ(got_header.segment_number, 5u);
  EXPECT_EQ(got_header.first_lsn, 77u);
  PhysicalRecord pr;
  ASSERT_EQ(reader.Next(&pr), SegmentReader::Outcome::kRecord);
  EXPECT_EQ(pr.lsn, 77u);
  EXPECT_EQ(pr.offset, kFileHeaderSize);
  LogRecord decoded;
  ASSERT_TRUE(DecodePayload(original.type, pr.payload, &decoded).ok());
  decoded.lsn = original.lsn;
  EXPECT_EQ(decoded, original);
  EXPECT_EQ(reader.Next(&pr), SegmentReader::Outcome::kEnd);
}

TEST(RecordCodec, EveryRecordKindRoundTrips) {
  LogRecord d = Decision(1);
  d.timestamp_us = 1700000000123456;
  ExpectRoundTrip(d);
  LogRecord d3 = Decision(2, Protocol::kThreePhase);
  d3.timestamp_us = -5;  // a clock before 1970 still round-trips
  ExpectRoundTrip(d3);
  LogRecord pc = Decision(3, Protocol::kThreePhase);
  pc.type = RecordType::kPreCommit;
  ExpectRoundTrip(pc);
  ExpectRoundTrip(End(4));
  ExpectRoundTrip(Heuristic(5, std::string("reason with\nnewline and \0 byte", 31)));
  ExpectRoundTrip(HeuristicCleared(6));
  LogRecord no_participants = Decision(7);
  no_participants.participants.clear();
  ExpectRoundTrip(no_participants);
}

TEST(RecordCodec, CheckpointRoundTripsItsEntries) {
  std::string p1, p2;
  ASSERT_TRUE(EncodePayload(Decision(1), &p1).ok());
  ASSERT_TRUE(EncodePayload(Heuristic(2), &p2).ok());
  std::string payload;
  EncodeCheckpointPayload(42, true,
                          {{RecordType::kCommitDecision, 10, p1}, {RecordType::kHeuristic, 11, p2}},
                          &payload);
  int64_t ts;
  bool last;
  std::vector<CheckpointEntry> entries;
  ASSERT_TRUE(DecodeCheckpointPayload(payload, &ts, &last, &entries).ok());
  EXPECT_EQ(ts, 42);
  EXPECT_TRUE(last);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].lsn, 10u);
  EXPECT_EQ(entries[1].type, RecordType::kHeuristic);
  EXPECT_EQ(entries[1].payload, p2);
}

TEST(RecordCodec, RefusesRecordsBeyondTheLimits) {
  LogRecord r = Decision(1);
  r.participants.resize(kMaxParticipants + 1, r.participants[0]);
  std::string out;
  EXPECT_EQ(EncodePayload(r, &out).code(), Code::kInval);
  r = Decision(1);
  r.participants[0].rm_name.assign(kMaxRmNameSize + 1, 'x');
  EXPECT_EQ(EncodePayload(r, &out).code(), Code::kInval);
  r = Heuristic(1, std::string(kMaxReasonSize + 1, 'r'));
  EXPECT_EQ(EncodePayload(r, &out).code(), Code::kInval);
  LogRecord empty;
  EXPECT_EQ(EncodePayload(empty, &out).code(), Code::kInval);
  LogRecord cp = Decision(1);
  cp.type = RecordType::kCheckpoint;
  EXPECT_EQ(EncodePayload(cp, &out).code(), Code::kInval);
}

TEST(RecordCodec, RefusesEveryTruncationAndTrailingBytes) {
  for (const LogRecord& r : {Decision(1), End(2), Heuristic(3), HeuristicCleared(4)}) {
    std::string payload;
    ASSERT_TRUE(EncodePayload(r, &payload).ok());
    LogRecord out;
    for (size_t n = 0; n < payload.size(); ++n) {
      EXPECT_EQ(DecodePayload(r.type, payload.substr(0, n), &out).code(), Code::kCorruption)
          << "type " << static_cast<int>(r.type) << " cut at " << n;
    }
    EXPECT_EQ(DecodePayload(r.type, payload + "x", &out).code(), Code::kCorruption);
  }
}

TEST(RecordCodec, RefusesInvalidXidsAndEnumValues) {
  std::string payload;
  ASSERT_TRUE(EncodePayload(Decision(1), &payload).ok());
  LogRecord out;
  // Byte 12 is the gtrid length (after the 8-byte timestamp and 4-byte format id).
  std::string bad_len = payload;
  bad_len[12] = static_cast<char>(65);
  EXPECT_EQ(DecodePayload(RecordType::kCommitDecision, bad_len, &out).code(), Code::kCorruption);
  std::string bad_format = payload;
  bad_format[11] = static_cast<char>(0x80);  // format id >= 2^31
  EXPECT_EQ(DecodePayload(RecordType::kCommitDecision, bad_format, &out).code(),
            Code::kCorruption);
  size_t protocol_at = 8 + 4 + 1 + Decision(1).xid.gtrid().size() + 1;
  std::string bad_protocol = payload;
  bad_protocol[protocol_at] = 9;
  EXPECT_EQ(DecodePayload(RecordType::kCommitDecision, bad_protocol, &out).code(),
            Code::kCorruption);
}

TEST(SegmentHeader, RefusesBadMagicChecksumAndNewerVersion) {
  std::string file;
  SegmentHeader h;
  h.segment_number = 1;
  h.first_lsn = 1;
  EncodeSegmentHeader(h, &file);
  ASSERT_EQ(file.size(), kFileHeaderSize);
  SegmentHeader out;
  EXPECT_TRUE(DecodeSegmentHeader(file, &out).ok());
  std::string bad = file;
  bad[0] = 'Y';
  EXPECT_EQ(DecodeSegmentHeader(bad, &out).code(), Code::kCorruption);
  bad = file;
  bad[20] ^= 1;
  EXPECT_EQ(DecodeSegmentHeader(bad, &out).code(), Code::kCorruption);
  h.format_version = kFormatVersion + 1;
  std::string newer;
  EncodeSegmentHeader(h, &newer);
  EXPECT_EQ(DecodeSegmentHeader(newer, &out).code(), Code::kNotSupported);
  EXPECT_EQ(DecodeSegmentHeader(file.substr(0, 43), &out).code(), Code::kCorruption);
}

TEST(SegmentFileName, RoundTripsAndRefusesLookalikes) {
  uint64_t n;
  ASSERT_TRUE(ParseSegmentFileName(SegmentFileName(0xabc), &n));
  EXPECT_EQ(n, 0xabcu);
  EXPECT_FALSE(ParseSegmentFileName(SegmentFileName(1) + ".tmp", &n));
  EXPECT_FALSE(ParseSegmentFileName("segment-000000000000000G.xalog", &n));
  EXPECT_FALSE(ParseSegmentFileName("LOCK", &n));
}

}  // namespace
}  // namespace xa::internal
