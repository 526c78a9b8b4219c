// The record codec: CRC32C, every record kind round-trips, hostile payloads are refused.

#include "recovery-log/record_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "log_test_util.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/base/xid_coding.h"

namespace xa::internal {
namespace {

using xa::test::Decision;
using xa::test::End;
using xa::test::Heuristic;
using xa::test::HeuristicCleared;
using xa::test::ParticipantDecision;
using xa::test::ParticipantDecisionCoordinatorKnows;
using xa::test::ParticipantDone;
using xa::test::ParticipantPreCommit;
using xa::test::ParticipantWait;
using xa::test::TccConfirm;
using xa::test::TccTry;
using xa::test::TestBranch;
using xa::test::TestTccXid;
using xa::test::TestXid;

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

// --- The 3PC participant records ------------------------------------------------------------

TEST(RecordCodec, ParticipantRecordsRoundTripAtTheirBoundaries) {
  // Number 0 (its branch Xid ends in zero bytes) and the last number, one participant and the
  // most a record holds, no fence and the largest fence, read-only or not.
  for (size_t size : {size_t{1}, size_t{2}, kMaxParticipants}) {
    for (size_t number : {size_t{0}, size - 1}) {
      for (uint64_t fence : {uint64_t{0}, uint64_t{1}, UINT64_MAX}) {
        for (bool read_only : {false, true}) {
          LogRecord w = ParticipantWait(1, static_cast<uint16_t>(number), size);
          w.fence_session_id = fence;
          w.read_only = read_only;
          w.timestamp_us = 1700000000123456;
          SCOPED_TRACE("size " + std::to_string(size) + " number " + std::to_string(number) +
                       " fence " + std::to_string(fence));
          ExpectRoundTrip(w);
        }
      }
    }
  }
  LogRecord longest_names = ParticipantWait(2, 7, kMaxParticipants);
  for (Participant& p : longest_names.participants) p.rm_name.assign(kMaxRmNameSize, 'r');
  std::string payload;
  ASSERT_TRUE(EncodePayload(longest_names, &payload).ok());
  EXPECT_LE(payload.size(), kMaxPayloadSize);
  ExpectRoundTrip(longest_names);
  for (uint16_t number : {uint16_t{0}, uint16_t{1}, uint16_t{65535}}) {
    ExpectRoundTrip(ParticipantPreCommit(3, number));
    ExpectRoundTrip(ParticipantDecision(4, Outcome::kCommitted, number));
    ExpectRoundTrip(ParticipantDecision(5, Outcome::kRolledBack, number));
    ExpectRoundTrip(ParticipantDecisionCoordinatorKnows(4, Outcome::kCommitted, number));
    ExpectRoundTrip(ParticipantDecisionCoordinatorKnows(5, Outcome::kRolledBack, number));
    LogRecord finished = ParticipantDecisionCoordinatorKnows(5, Outcome::kCommitted, number);
    finished.branch_finished = true;
    ExpectRoundTrip(finished);
    finished.coordinator_knows_outcome = false;
    ExpectRoundTrip(finished);
    ExpectRoundTrip(ParticipantDone(6, number));
  }
}

TEST(RecordCodec, ParticipantRecordsReadBackAsThreePhaseWithoutOtherTypesFields) {
  LogRecord pre = ParticipantPreCommit(1);
  pre.protocol = Protocol::kTwoPhase;
  pre.reason = "not persisted";
  pre.fence_session_id = 9;  // a Wait's field
  pre.participants = ParticipantWait(1).participants;
  std::string payload;
  ASSERT_TRUE(EncodePayload(pre, &payload).ok());
  pre.coordinator_knows_outcome = true;  // a decision's field
  LogRecord out;
  ASSERT_TRUE(DecodePayload(pre.type, payload, &out).ok());
  EXPECT_EQ(out, ParticipantPreCommit(1));
  EXPECT_EQ(out.protocol, Protocol::kThreePhase);
  // Decoding into a record that held a decision with the flags clears them.
  out.coordinator_knows_outcome = true;
  out.branch_finished = true;
  ASSERT_TRUE(EncodePayload(ParticipantDecision(1, Outcome::kCommitted), &payload.assign("")).ok());
  ASSERT_TRUE(DecodePayload(RecordType::kParticipantDecision, payload, &out).ok());
  EXPECT_FALSE(out.coordinator_knows_outcome);
  EXPECT_FALSE(out.branch_finished);
  // And a decision record that is not a participant's carries none of the participant fields.
  LogRecord d = Decision(2);
  d.participant_number = 1;
  d.fence_session_id = 2;
  d.read_only = true;
  payload.clear();
  ASSERT_TRUE(EncodePayload(d, &payload).ok());
  ASSERT_TRUE(DecodePayload(d.type, payload, &out).ok());
  EXPECT_EQ(out, Decision(2));
}

TEST(RecordCodec, EveryParticipantPayloadEndsInANonZeroByte) {
  // A payload ending in zeros could not show that it was written to its end (a damaged final
  // record would pass as a torn write). Branch number 0's Xid ends in zeros.
  for (const LogRecord& r :
       {ParticipantWait(1, 0, 1), ParticipantPreCommit(1, 0),
        ParticipantDecision(1, Outcome::kCommitted, 0),
        ParticipantDecision(1, Outcome::kRolledBack, 0),
        ParticipantDecisionCoordinatorKnows(1, Outcome::kCommitted, 0), ParticipantDone(1, 0)}) {
    std::string payload;
    ASSERT_TRUE(EncodePayload(r, &payload).ok());
    EXPECT_EQ(r.xid.bqual().back(), '\0');
    EXPECT_NE(payload.back(), '\0') << "type " << static_cast<int>(r.type);
  }
}

TEST(RecordCodec, EncoderRefusesParticipantRecordsTheDecoderWouldRefuse) {
  std::string out;
  LogRecord number_out_of_range = ParticipantWait(1, 1, 3);
  number_out_of_range.participant_number = 3;
  EXPECT_EQ(EncodePayload(number_out_of_range, &out).code(), Code::kInval);
  LogRecord other_branch = ParticipantWait(1, 1, 3);
  other_branch.participant_number = 2;  // participants[2] is branch 2, the record's is 1
  EXPECT_EQ(EncodePayload(other_branch, &out).code(), Code::kInval);
  LogRecord no_list = ParticipantWait(1, 0, 1);
  no_list.participants.clear();
  EXPECT_EQ(EncodePayload(no_list, &out).code(), Code::kInval);
  LogRecord too_many = ParticipantWait(1, 0, kMaxParticipants + 1);
  EXPECT_EQ(EncodePayload(too_many, &out).code(), Code::kInval);
  for (RecordType t : {RecordType::kParticipantWait, RecordType::kParticipantPreCommit,
                       RecordType::kParticipantDecision, RecordType::kParticipantDone}) {
    LogRecord global = ParticipantWait(1, 0, 1);
    global.type = t;
    global.outcome = Outcome::kCommitted;
    global.xid = TestXid(1);  // the global Xid, not a branch
    global.participants[0].branch = global.xid;
    EXPECT_EQ(EncodePayload(global, &out).code(), Code::kInval) << static_cast<int>(t);
  }
  for (Outcome o : {Outcome::kUnknown, Outcome::kCommittedCompletionPending,
                    Outcome::kHeuristicMixed, Outcome::kHeuristicCommit}) {
    EXPECT_EQ(EncodePayload(ParticipantDecision(1, o), &out).code(), Code::kInval)
        << OutcomeName(o);
  }
}

TEST(RecordCodec, DecoderRefusesParticipantRecordsThatBreakTheirRules) {
  LogRecord out;
  // A Wait of participant 1 of 3 with a one-byte fence: ... number, fence, vote.
  LogRecord w = ParticipantWait(1, 1, 3);
  w.fence_session_id = 5;
  std::string wait;
  ASSERT_TRUE(EncodePayload(w, &wait).ok());
  ASSERT_TRUE(DecodePayload(w.type, wait, &out).ok());
  const size_t number_at = wait.size() - 3, vote_at = wait.size() - 1;
  std::string bad = wait;
  bad[number_at] = 3;  // out of range of the list of 3
  EXPECT_EQ(DecodePayload(w.type, bad, &out).code(), Code::kCorruption);
  bad = wait;
  bad[number_at] = 0;  // in range, but participants[0] is another branch
  EXPECT_EQ(DecodePayload(w.type, bad, &out).code(), Code::kCorruption);
  for (char vote : {'\0', '\3', '\xff'}) {
    bad = wait;
    bad[vote_at] = vote;  // only commit (1) and read-only (2) are a yes
    EXPECT_EQ(DecodePayload(w.type, bad, &out).code(), Code::kCorruption);
  }
  std::string decision;
  ASSERT_TRUE(EncodePayload(ParticipantDecision(1, Outcome::kCommitted), &decision).ok());
  for (uint8_t outcome = 0; outcome < 10; ++outcome) {
    bad = decision;
    bad.back() = static_cast<char>(outcome);
    bool valid = outcome == 1 || outcome == 2;
    EXPECT_EQ(DecodePayload(RecordType::kParticipantDecision, bad, &out).ok(), valid)
        << int{outcome};
  }
  // The byte before the outcome is the flags: whether the coordinator holds it (bit 0) and
  // whether the branch is finished (bit 1), nothing else. A log written before bit 1 existed
  // holds 0 or 1 there and reads as before.
  const size_t knows_at = decision.size() - 2;
  EXPECT_EQ(decision[knows_at], '\0');
  for (unsigned flags = 0; flags <= 0xff; ++flags) {
    bad = decision;
    bad[knows_at] = static_cast<char>(flags);
    Status decoded = DecodePayload(RecordType::kParticipantDecision, bad, &out);
    if (flags <= 3) {
      ASSERT_TRUE(decoded.ok()) << flags << ": " << decoded.ToString();
      EXPECT_EQ(out.coordinator_knows_outcome, (flags & 1) != 0);
      EXPECT_EQ(out.branch_finished, (flags & 2) != 0);
    } else {
      EXPECT_EQ(decoded.code(), Code::kCorruption) << flags;
    }
  }
  // A decision laid out without the byte (the outcome straight after the branch) is refused.
  bad = decision;
  bad.erase(knows_at, 1);
  EXPECT_EQ(DecodePayload(RecordType::kParticipantDecision, bad, &out).code(), Code::kCorruption);
  for (RecordType t : {RecordType::kParticipantPreCommit, RecordType::kParticipantDone}) {
    std::string marked;
    ASSERT_TRUE(EncodePayload(ParticipantPreCommit(1), &marked).ok());
    EXPECT_EQ(static_cast<uint8_t>(marked.back()), kParticipantEndMark);
    bad = marked;
    bad.back() = 0;
    EXPECT_EQ(DecodePayload(t, bad, &out).code(), Code::kCorruption);
    // A global Xid (no bqual) where a branch belongs.
    std::string global;
    ASSERT_TRUE(EncodePayload(End(1), &global).ok());
    global.push_back(static_cast<char>(kParticipantEndMark));
    EXPECT_EQ(DecodePayload(t, global, &out).code(), Code::kCorruption);
  }
  // Every truncation and trailing bytes, for each type.
  for (const LogRecord& r :
       {w, ParticipantPreCommit(1), ParticipantDecision(1, Outcome::kRolledBack),
        ParticipantDecisionCoordinatorKnows(1, Outcome::kCommitted), ParticipantDone(1)}) {
    std::string payload;
    ASSERT_TRUE(EncodePayload(r, &payload).ok());
    for (size_t n = 0; n < payload.size(); ++n) {
      EXPECT_EQ(DecodePayload(r.type, payload.substr(0, n), &out).code(), Code::kCorruption)
          << "type " << static_cast<int>(r.type) << " cut at " << n;
    }
    EXPECT_EQ(DecodePayload(r.type, payload + "x", &out).code(), Code::kCorruption);
  }
}

TEST(RecordCodec, CheckpointCarriesParticipantStatesButNeverADone) {
  std::string wait, pre, decided, done;
  ASSERT_TRUE(EncodePayload(ParticipantWait(1), &wait).ok());
  ASSERT_TRUE(EncodePayload(ParticipantPreCommit(1), &pre).ok());
  ASSERT_TRUE(EncodePayload(ParticipantDecision(2, Outcome::kRolledBack), &decided).ok());
  ASSERT_TRUE(EncodePayload(ParticipantDone(3), &done).ok());
  std::string payload;
  EncodeCheckpointPayload(42, true,
                          {{RecordType::kParticipantWait, 10, wait},
                           {RecordType::kParticipantPreCommit, 10, pre},
                           {RecordType::kParticipantDecision, 11, decided}},
                          &payload);
  int64_t ts;
  bool last;
  std::vector<CheckpointEntry> entries;
  ASSERT_TRUE(DecodeCheckpointPayload(payload, &ts, &last, &entries).ok());
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[1].type, RecordType::kParticipantPreCommit);
  EXPECT_EQ(entries[2].payload, decided);
  // A done participant is not open: no checkpoint carries one.
  payload.clear();
  EncodeCheckpointPayload(42, true, {{RecordType::kParticipantDone, 12, done}}, &payload);
  EXPECT_EQ(DecodeCheckpointPayload(payload, &ts, &last, &entries).code(), Code::kCorruption);
}

// --- The TCC coordinator's records -----------------------------------------------------------

TEST(RecordCodec, TccRecordsRoundTripWithEveryKindOfPayload) {
  const std::string zeros(16, '\0');
  const std::string binary("\x00\xff\x1b[31m\"\\\xc3", 10);
  for (RecordType type : {RecordType::kTccTry, RecordType::kTccConfirm}) {
    SCOPED_TRACE(static_cast<int>(type));
    for (const std::vector<std::string>& payloads :
         {test::DefaultTccPayloads(), std::vector<std::string>{""}, std::vector<std::string>{zeros},
          std::vector<std::string>{"text", ""}, std::vector<std::string>{binary, zeros, ""},
          std::vector<std::string>{std::string(kMaxTccPayloadSize, 'p')}}) {
      LogRecord r = TccTry(1, payloads);
      r.type = type;
      r.timestamp_us = 1700000000123456;
      ExpectRoundTrip(r);
    }
    // The longest names, and as many participants as a record holds.
    LogRecord many = TccTry(2, std::vector<std::string>(kMaxParticipants, "x"));
    many.type = type;
    for (Participant& p : many.participants) p.rm_name.assign(kMaxRmNameSize, 'n');
    ExpectRoundTrip(many);
  }
}

// A payload may be empty or end in zeros, and branch 0's bqual ends in zeros: the end mark is
// what shows a TCC record was written to its end (log_format.md, "Torn tail or damage").
TEST(RecordCodec, EveryTccPayloadEndsWithItsEndMark) {
  for (const std::vector<std::string>& payloads :
       {std::vector<std::string>{""}, std::vector<std::string>{std::string(8, '\0')},
        test::DefaultTccPayloads()}) {
    for (LogRecord r : {TccTry(1, payloads), TccConfirm(1, payloads)}) {
      std::string payload;
      ASSERT_TRUE(EncodePayload(r, &payload).ok());
      EXPECT_EQ(static_cast<uint8_t>(payload.back()), kTccEndMark);
      EXPECT_NE(payload.back(), '\0');
    }
  }
  EXPECT_EQ(TestTccXid(1).WithBranch(0).bqual().back(), '\0');
  EXPECT_EQ(TestTccXid(1).format_id(), Xid::kTccFormatId);
}

TEST(RecordCodec, TccRecordsReadBackWithoutOtherTypesFields) {
  LogRecord r = TccConfirm(1);
  r.reason = "not persisted";
  r.outcome = Outcome::kCommitted;
  r.fence_session_id = 3;
  std::string payload;
  ASSERT_TRUE(EncodePayload(r, &payload).ok());
  LogRecord out = TccTry(9, {"a", "b", "c"});  // a record that held other payloads
  ASSERT_TRUE(DecodePayload(r.type, payload, &out).ok());
  EXPECT_EQ(out, TccConfirm(1));
  // Another type decoded into a record that held payloads has none.
  payload.clear();
  ASSERT_TRUE(EncodePayload(Decision(2), &payload).ok());
  ASSERT_TRUE(DecodePayload(RecordType::kCommitDecision, payload, &out).ok());
  EXPECT_TRUE(out.payloads.empty());
  EXPECT_EQ(out, Decision(2));
}

TEST(RecordCodec, EncoderRefusesTccRecordsTheDecoderWouldRefuseAndAppendsNothing) {
  struct Bad {
    std::string what;
    LogRecord record;
    std::string says;
  };
  std::vector<Bad> bad;
  auto with = [](auto change) {
    LogRecord r = TccTry(1);
    change(r);
    return r;
  };
  bad.push_back({"another protocol", with([](LogRecord& r) { r.protocol = Protocol::kTwoPhase; }),
                 "protocol TCC"});
  bad.push_back({"no participant", with([](LogRecord& r) {
                   r.participants.clear();
                   r.payloads.clear();
                 }),
                 "1 to 1024 participants, not 0"});
  bad.push_back({"too many participants",
                 TccTry(1, std::vector<std::string>(kMaxParticipants + 1, "")), "not 1025"});
  bad.push_back({"a payload missing", with([](LogRecord& r) { r.payloads.pop_back(); }),
                 "1 payloads for 2 participants"});
  bad.push_back({"a payload too many", with([](LogRecord& r) { r.payloads.push_back(""); }),
                 "3 payloads for 2 participants"});
  bad.push_back({"an empty name", with([](LogRecord& r) { r.participants[1].rm_name.clear(); }),
                 "participant 1 ('') has a name of 0 bytes"});
  bad.push_back({"a name too long", with([](LogRecord& r) {
                   r.participants[0].rm_name.assign(kMaxRmNameSize + 1, 'n');
                 }),
                 "a name of 256 bytes"});
  bad.push_back({"the branches swapped", with([](LogRecord& r) {
                   std::swap(r.participants[0].branch, r.participants[1].branch);
                 }),
                 "not its transaction's branch 0"});
  bad.push_back({"the global Xid as a branch",
                 with([](LogRecord& r) { r.participants[1].branch = r.xid; }),
                 "not its transaction's branch 1"});
  bad.push_back({"another transaction's branch",
                 with([](LogRecord& r) { r.participants[0].branch = TestTccXid(2).WithBranch(0); }),
                 "not its transaction's branch 0"});
  bad.push_back({"a payload too large",
                 with([](LogRecord& r) { r.payloads[1].assign(kMaxTccPayloadSize + 1, 'p'); }),
                 "payload of 65537 bytes"});
  bad.push_back({"a branch Xid for the transaction",
                 with([](LogRecord& r) { r.xid = r.xid.WithBranch(0); }), "global Xid"});
  // Each payload within its limit, the whole beyond what a checkpoint part can carry.
  bad.push_back({"a record too large",
                 TccTry(1, std::vector<std::string>(kMaxLogicalPayloadSize / kMaxTccPayloadSize + 1,
                                                    std::string(kMaxTccPayloadSize, 'p'))),
                 "above the log's limit of 4194272 bytes"});
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    for (RecordType type : {RecordType::kTccTry, RecordType::kTccConfirm}) {
      LogRecord r = b.record;
      r.type = type;
      std::string out = "kept";
      Status s = EncodePayload(r, &out);
      EXPECT_EQ(s.code(), Code::kInval);
      EXPECT_THAT(s.message(), ::testing::HasSubstr(b.says));
      EXPECT_EQ(out, "kept") << "a refused record appended bytes";
    }
  }
  // The largest payloads, as many as fit: one participant fewer.
  LogRecord largest =
      TccTry(1, std::vector<std::string>(kMaxLogicalPayloadSize / kMaxTccPayloadSize,
                                         std::string(kMaxTccPayloadSize, 'p')));
  std::string payload;
  ASSERT_TRUE(EncodePayload(largest, &payload).ok());
  EXPECT_LE(payload.size(), kMaxLogicalPayloadSize);
  ExpectRoundTrip(largest);
}

// A TCC payload laid out by hand, field by field, so that a test can break any one of them.
struct TccParticipantBytes {
  std::string name;
  Xid branch;
  std::string payload;
};
std::string TccPayloadBytes(const Xid& xid, uint8_t protocol,
                            const std::vector<TccParticipantBytes>& participants,
                            std::string_view end = std::string_view("\xa5", 1)) {
  std::string out;
  PutFixed64(&out, 1700000000123456);
  PutXid(&out, xid);
  out.push_back(static_cast<char>(protocol));
  PutVarint64(&out, participants.size());
  for (const TccParticipantBytes& p : participants) {
    PutLengthPrefixed(&out, p.name);
    PutXid(&out, p.branch);
    PutLengthPrefixed(&out, p.payload);
  }
  out += end;
  return out;
}

TEST(RecordCodec, ASagaTravelsInTheTccRecordsWithItsOwnProtocol) {
  for (RecordType type : {RecordType::kTccTry, RecordType::kTccConfirm}) {
    LogRecord r = TccTry(1, {"debit", ""});
    r.type = type;
    r.protocol = Protocol::kSaga;
    r.timestamp_us = 1700000000123456;
    std::string encoded;
    ASSERT_TRUE(EncodePayload(r, &encoded).ok());
    LogRecord out;
    ASSERT_TRUE(DecodePayload(type, encoded, &out).ok());
    EXPECT_EQ(out.protocol, Protocol::kSaga);
    EXPECT_EQ(out.payloads, r.payloads);
  }
}

TEST(RecordCodec, DecoderRefusesTccRecordsThatBreakTheirRules) {
  const Xid xid = TestTccXid(1);
  const uint8_t tcc = static_cast<uint8_t>(Protocol::kTcc);
  const std::vector<TccParticipantBytes> good = {{"funds", xid.WithBranch(0), "a"},
                                                 {"points", xid.WithBranch(1), ""}};
  LogRecord out;
  for (RecordType type : {RecordType::kTccTry, RecordType::kTccConfirm}) {
    SCOPED_TRACE(static_cast<int>(type));
    // The hand layout is the encoder's.
    std::string encoded;
    LogRecord r = TccTry(1, {"a", ""});
    r.type = type;
    r.timestamp_us = 1700000000123456;
    ASSERT_TRUE(EncodePayload(r, &encoded).ok());
    ASSERT_EQ(TccPayloadBytes(xid, tcc, good), encoded);
    ASSERT_TRUE(DecodePayload(type, encoded, &out).ok());

    struct Bad {
      std::string what, bytes, says;
    };
    auto changed = [&](auto change) {
      std::vector<TccParticipantBytes> ps = good;
      change(ps);
      return TccPayloadBytes(xid, tcc, ps);
    };
    std::vector<Bad> bad = {
        {"protocol 2PC", TccPayloadBytes(xid, 2, good), "protocol 2, not TCC (5)"},
        {"protocol 3PC", TccPayloadBytes(xid, 3, good), "protocol 3, not TCC (5)"},
        {"protocol 0", TccPayloadBytes(xid, 0, good), "protocol 0, not TCC (5)"},
        {"no participant", TccPayloadBytes(xid, tcc, {}), "0 participants"},
        {"too many participants",
         TccPayloadBytes(xid, tcc, std::vector<TccParticipantBytes>(kMaxParticipants + 1, good[0])),
         "1025 participants"},
        {"an empty name", changed([](auto& ps) { ps[1].name.clear(); }),
         "participant 1 has a name of 0 bytes"},
        {"a name too long", changed([](auto& ps) { ps[0].name.assign(kMaxRmNameSize + 1, 'n'); }),
         "participant 0 has a name of 256 bytes"},
        {"the global Xid as a branch", changed([&](auto& ps) { ps[0].branch = xid; }),
         "participant 0 has branch"},
        {"the other participant's branch",
         changed([&](auto& ps) { ps[1].branch = xid.WithBranch(0); }), "participant 1 has branch"},
        {"another transaction's branch",
         changed([&](auto& ps) { ps[1].branch = TestTccXid(2).WithBranch(1); }),
         "not its transaction's branch 1"},
        {"a payload too large",
         changed([](auto& ps) { ps[0].payload.assign(kMaxTccPayloadSize + 1, 'p'); }),
         "participant 0 has a payload of 65537 bytes"},
        {"no end mark", TccPayloadBytes(xid, tcc, good, ""), "end mark"},
        {"a zero end mark", TccPayloadBytes(xid, tcc, good, std::string_view("\0", 1)), "end mark"},
        {"another end mark", TccPayloadBytes(xid, tcc, good, "\x5a"), "end mark"},
        {"trailing bytes", TccPayloadBytes(xid, tcc, good) + "x", "trailing bytes"},
        {"a branch Xid for the transaction",
         TccPayloadBytes(xid.WithBranch(0), tcc,
                         {{"funds", xid.WithBranch(0), "a"}, {"points", xid.WithBranch(1), ""}}),
         "global Xid"},
        // Payloads each within the limit, the record beyond what a checkpoint part can carry.
        {"a record too large",
         TccPayloadBytes(
             xid, tcc,
             [&] {
               std::vector<TccParticipantBytes> ps;
               for (uint16_t i = 0; i <= kMaxLogicalPayloadSize / kMaxTccPayloadSize; ++i) {
                 ps.push_back({"funds", xid.WithBranch(i), std::string(kMaxTccPayloadSize, 'p')});
               }
               return ps;
             }()),
         "above the limit of 4194272"},
    };
    for (const Bad& b : bad) {
      Status s = DecodePayload(type, b.bytes, &out);
      EXPECT_EQ(s.code(), Code::kCorruption) << b.what;
      EXPECT_THAT(s.message(), ::testing::HasSubstr(b.says)) << b.what;
    }
    // Every truncation.
    for (size_t n = 0; n < encoded.size(); ++n) {
      EXPECT_EQ(DecodePayload(type, encoded.substr(0, n), &out).code(), Code::kCorruption)
          << "cut at " << n;
    }
  }
}

TEST(RecordCodec, CheckpointCarriesOpenTccTransactions) {
  std::string tried, confirmed;
  ASSERT_TRUE(EncodePayload(TccTry(1), &tried).ok());
  ASSERT_TRUE(EncodePayload(TccConfirm(2, {std::string(4, '\0')}), &confirmed).ok());
  std::string payload;
  EncodeCheckpointPayload(42, true,
                          {{RecordType::kTccTry, 10, tried},
                           {RecordType::kTccConfirm, 11, confirmed}},
                          &payload);
  int64_t ts;
  bool last;
  std::vector<CheckpointEntry> entries;
  ASSERT_TRUE(DecodeCheckpointPayload(payload, &ts, &last, &entries).ok());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].type, RecordType::kTccTry);
  EXPECT_EQ(entries[0].payload, tried);
  EXPECT_EQ(entries[1].type, RecordType::kTccConfirm);
  EXPECT_EQ(entries[1].lsn, 11u);
  LogRecord out;
  ASSERT_TRUE(DecodePayload(entries[1].type, entries[1].payload, &out).ok());
  EXPECT_EQ(out.payloads, std::vector<std::string>{std::string(4, '\0')});
  // The largest TCC record fits in a checkpoint part of its own.
  LogRecord largest =
      TccConfirm(3, std::vector<std::string>(kMaxLogicalPayloadSize / kMaxTccPayloadSize,
                                             std::string(kMaxTccPayloadSize, 'p')));
  std::string body;
  ASSERT_TRUE(EncodePayload(largest, &body).ok());
  payload.clear();
  EncodeCheckpointPayload(INT64_MAX, true, {{RecordType::kTccConfirm, UINT64_MAX, body}}, &payload);
  EXPECT_LE(payload.size(), kMaxPayloadSize);
  ASSERT_TRUE(DecodeCheckpointPayload(payload, &ts, &last, &entries).ok());
  EXPECT_EQ(entries[0].payload, body);
}

// The TCC records open and close transactions: a reader of the version before them (types 1 to
// 6 and 32 to 35) must stop at one, never skip it.
TEST(RecordTypeCheck, OlderReaderStopsAtEveryTccRecord) {
  for (RecordType t : {RecordType::kTccTry, RecordType::kTccConfirm}) {
    uint8_t type = static_cast<uint8_t>(t);
    EXPECT_EQ(ActionForRecordType(type, IsKnownRecordTypeOfVersionWithoutTcc),
              RecordTypeAction::kStopReplay)
        << int{type};
    EXPECT_EQ(ActionForRecordType(type), RecordTypeAction::kApply) << int{type};
    EXPECT_TRUE(InRecordTypeBand(t, kTccRecordTypes)) << int{type};
  }
  for (unsigned t = 0; t < 256; ++t) {
    EXPECT_EQ(IsKnownRecordTypeOfVersionWithoutTcc(static_cast<uint8_t>(t)),
              IsKnownRecordType(static_cast<uint8_t>(t)) && t != 48 && t != 49)
        << t;
  }
}

// Forward compatibility: an older reader (it knew types 1 to 6) must stop at a participant
// record, not skip it: skipping would replay a participant's state wrongly.
TEST(RecordTypeCheck, OlderReaderStopsAtEveryParticipantRecord) {
  for (RecordType t : {RecordType::kParticipantWait, RecordType::kParticipantPreCommit,
                       RecordType::kParticipantDecision, RecordType::kParticipantDone}) {
    uint8_t type = static_cast<uint8_t>(t);
    EXPECT_EQ(ActionForRecordType(type, IsKnownRecordTypeOfVersionWithoutParticipants),
              RecordTypeAction::kStopReplay)
        << int{type};
    EXPECT_EQ(ActionForRecordType(type), RecordTypeAction::kApply) << int{type};
  }
  EXPECT_EQ(ActionForRecordType(32, IsKnownRecordTypeOfVersionWithoutParticipants),
            RecordTypeAction::kStopReplay);
  // The same check skips a type only when the writer marked it ignorable.
  EXPECT_EQ(ActionForRecordType(32 | kRecordTypeIgnorableBit,
                                IsKnownRecordTypeOfVersionWithoutParticipants),
            RecordTypeAction::kSkip);
  // The older reader knew exactly the shared band's six types.
  for (unsigned t = 0; t < 256; ++t) {
    EXPECT_EQ(IsKnownRecordTypeOfVersionWithoutParticipants(static_cast<uint8_t>(t)),
              t >= 1 && t <= 6)
        << t;
  }
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
