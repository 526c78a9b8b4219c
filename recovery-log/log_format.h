// The on-disk format of the decision log. The grammar is in log_format.md beside this file; a
// test (tests/log/log_format_doc_test.cc) parses that file and checks it against the constants
// below, so the two cannot drift apart.
//
// A log is a directory:
//
//   <dir>/LOCK                         flock(2)ed by the owning process, holds its pid
//   <dir>/segment-<16 hex digits>.xalog   segments, numbered upwards; replayed in number order
//   <dir>/segment-<...>.xalog.tmp      a segment being created; never replayed, deleted at open
//
// Every segment is a file header followed by records:
//
//   segment := file_header checkpoint_record+ record* zero_fill?
//
// File header (kFileHeaderSize = 44 bytes, all integers little-endian):
//
//   +--------+---------+---------+-------+---------+-----------+--------+
//   | magic  | version | node id | epoch | segment | first LSN | crc32c |
//   | 8      | 4       | 4       | 8     | 8       | 8         | 4      |
//   +--------+---------+---------+-------+---------+-----------+--------+
//   magic     "XADLOG\r\n" (the \r\n catches text-mode mangling)
//   version   kFormatVersion; a reader refuses a version it does not know
//   node id   the transaction manager node that owns the log (LogOptions::node_id)
//   epoch     incremented by each DecisionLog::Open: which incarnation wrote the segment
//   segment   the segment number, equal to the one in the file name
//   first LSN the LSN of the segment's first record
//   crc32c    masked CRC32C of the 40 bytes before it
//
// Record (kRecordHeaderSize = 17 bytes of header, then the payload):
//
//   +--------+--------+------+-----+-------------------+
//   | crc32c | length | type | LSN | payload           |
//   | 4      | 4      | 1    | 8   | length bytes      |
//   +--------+--------+------+-----+-------------------+
//   crc32c    masked CRC32C of everything after it: length, type, LSN and payload. (Covering
//             the length and the LSN as well as type and payload means a flipped bit anywhere in
//             a record is caught.)
//   length    payload bytes, at most kMaxPayloadSize
//   type      RecordType (include/xa/decision_log.h); bit 7 (kRecordTypeIgnorableBit) set means
//             a reader that does not know the type may skip the record; an unknown type without
//             it stops replay (a newer writer's record that changes the state)
//   LSN       log sequence number: +1 for each record, across segments; never reused for an
//             acknowledged record
//
// Payloads (fixed = little-endian fixed width, varint = LEB128, str = varint length + bytes,
// xid = fixed32 format id, u8 gtrid length, gtrid, u8 bqual length, bqual):
//
//   kCommitDecision, kPreCommit: fixed64 timestamp_us, xid, u8 protocol, varint n,
//                                n x (str rm_name, xid branch)
//   kEnd:                        fixed64 timestamp_us, xid
//   kHeuristic:                  fixed64 timestamp_us, xid, u8 outcome, varint n,
//                                n x (str rm_name, xid branch), str reason
//   kHeuristicCleared:           fixed64 timestamp_us, xid, str reason
//   kCheckpoint:                 fixed64 timestamp_us, u8 flags (bit 0: last part), varint n,
//                                n x (u8 type, fixed64 lsn, str payload)
//
// A checkpoint lists the open decisions and open heuristics (each as its original type, LSN and
// payload) when the segment began; it may be split into several parts, the first of which
// replaces the replayed state and the last of which has flag bit 0 set. Because every segment
// starts with one, an older segment is needed only for the transactions whose first record it
// holds and which have no end yet; it is deleted once they all have one.
//
// The tail of the newest segment may be zero-filled (kZeroType where a header would be):
// that is unused space, not damage.

#ifndef XA_RECOVERY_LOG_LOG_FORMAT_H_
#define XA_RECOVERY_LOG_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "xa/decision_log.h"

namespace xa::internal {

constexpr char kMagic[] = "XADLOG\r\n";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kFileHeaderSize = 44;
constexpr size_t kRecordHeaderSize = 17;
// Large enough for a decision with kMaxParticipants branches; a checkpoint is split in parts of
// at most kCheckpointPartSize.
constexpr uint32_t kMaxPayloadSize = 4u << 20;
constexpr size_t kCheckpointPartSize = 1u << 20;
constexpr size_t kMaxParticipants = 1024;
constexpr size_t kMaxRmNameSize = 255;
constexpr size_t kMaxReasonSize = 4096;
constexpr uint8_t kZeroType = 0;  // never written: unused (zero-filled) space

static_assert(static_cast<uint8_t>(RecordType::kCommitDecision) == 1);
static_assert(static_cast<uint8_t>(RecordType::kPreCommit) == 2);
static_assert(static_cast<uint8_t>(RecordType::kEnd) == 3);
static_assert(static_cast<uint8_t>(RecordType::kHeuristic) == 4);
static_assert(static_cast<uint8_t>(RecordType::kHeuristicCleared) == 5);
static_assert(static_cast<uint8_t>(RecordType::kCheckpoint) == 6);
static_assert(kRecordTypeIgnorableBit == 0x80);
static_assert(kFileHeaderSize == kMagicSize + 4 + 4 + 8 + 8 + 8 + 4);
static_assert(kRecordHeaderSize == 4 + 4 + 1 + 8);

constexpr uint8_t kCheckpointLastPart = 0x01;

struct SegmentHeader {
  uint32_t format_version = kFormatVersion;
  uint32_t node_id = 0;
  uint64_t epoch = 0;
  uint64_t segment_number = 0;
  uint64_t first_lsn = 0;
};

// Appends the kFileHeaderSize bytes of `h` to *dst.
void EncodeSegmentHeader(const SegmentHeader& h, std::string* dst);
// Parses and checks magic, CRC and version. Errors: kCorruption, or kNotSupported for a newer
// format version.
Status DecodeSegmentHeader(std::string_view in, SegmentHeader* h);

// "segment-00000000000000ab.xalog"
std::string SegmentFileName(uint64_t number);
// Parses a segment file name (not a .tmp); false for any other name.
bool ParseSegmentFileName(std::string_view name, uint64_t* number);
constexpr std::string_view kTempSuffix = ".tmp";
constexpr std::string_view kLockFileName = "LOCK";

// True for the types this version knows.
constexpr bool IsKnownRecordType(uint8_t t) noexcept { return t >= 1 && t <= 6; }

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_LOG_FORMAT_H_
