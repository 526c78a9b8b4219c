// The on-disk format of the decision log. The grammar is in log_format.md beside this file; a
// test (tests/log/log_format_doc_test.cc) parses that file and checks it against the constants
// below, so the two cannot drift apart.
//
// A log is a directory:
//
//   <dir>/                             the directory itself is flock(2)ed by the owning process
//   <dir>/LOCK                         the owner's pid, for operators (deleting it frees nothing)
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
//             it stops replay (a newer writer's record that changes the state); the numbers
//             are divided in bands, one per owner (RecordTypeBand below)
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
//   kParticipantWait:            fixed64 timestamp_us, xid branch, varint n,
//                                n x (str rm_name, xid branch), varint participant_number,
//                                varint fence_session_id, u8 vote (xa::Vote: kCommit, or
//                                kReadOnly for a read-only branch)
//   kParticipantPreCommit:       fixed64 timestamp_us, xid branch, u8 kParticipantEndMark
//   kParticipantDecision:        fixed64 timestamp_us, xid branch, u8 flags
//                                (kDecisionCoordinatorKnows | kDecisionBranchFinished), u8 outcome
//                                (kCommitted or kRolledBack)
//   kParticipantDone:            fixed64 timestamp_us, xid branch, u8 kParticipantEndMark
//   kTccTry, kTccConfirm:        fixed64 timestamp_us, xid, u8 protocol (kTcc), varint n,
//                                n x (str name, xid branch, str payload), u8 kTccEndMark
//
// A participant record names a branch Xid (non-empty bqual). A Wait's participant_number is
// below n (and below 2^16), and its own branch is participants[participant_number].branch.
// Every participant payload ends with a byte that is never zero (the vote, the outcome or
// kParticipantEndMark): a branch Xid of xa's ends in the branch number, which is zero for the
// first branch, and a payload ending in zeros could not show that it was written to its end
// (log_format.md, "Torn tail or damage"), so a damaged acknowledged state could pass as torn.
//
// A TCC record names the global Xid (empty bqual) of a TCC transaction; 1 <= n <=
// kMaxParticipants, every name is 1 to kMaxRmNameSize bytes, participant i's branch is
// xid.WithBranch(i), and every payload is at most kMaxTccPayloadSize bytes. It ends with
// kTccEndMark for the same reason as a participant record: a payload (the last one may be empty
// or end in zeros, as may branch 0's bqual) could not show that it was written to its end.
//
// Every record but a checkpoint has a payload of at most kMaxLogicalPayloadSize, so that a
// checkpoint part carrying it alone stays within kMaxPayloadSize; only a TCC record, with its
// payloads, can come near it, and Append refuses one beyond it (XAER_INVAL).
//
// A checkpoint lists the open decisions, open heuristics, open participants and open TCC
// transactions when the segment began; it may be split into several parts, the first of which
// replaces the replayed state and the last of which has flag bit 0 set. A decision or heuristic
// is carried as its original type, LSN and payload. An open participant is carried as the
// records that rebuild its state, in order: its Wait (when it had one), then a PreCommit (when
// it is in PRE) or its Decision (when decided, with its coordinator_knows_outcome), each with the
// LSN and timestamp that the open state holds (those of the record that brought it into its
// current state); replayed in order they give the same open state. An open TCC transaction is
// carried as its newest record (its kTccTry, or its kTccConfirm once decided), one entry. The
// entry grammar is unchanged, so a checkpoint of a log without participants or TCC transactions
// reads as before, and a reader that does not know their types refuses such an entry (as
// damage) rather than drop it. Because every segment starts with one, an older segment is
// needed only for the transactions whose first record it holds and which have no end (or done)
// record yet; it is deleted once they all have one.
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
// A checkpoint part that carries one entry adds at most this many bytes to the entry's payload:
// timestamp (8), flags (1), entry count (1), type (1), LSN (8), payload length (varint, 4 for
// kMaxPayloadSize; counted as 5).
constexpr size_t kCheckpointEntryOverhead = 32;
static_assert(kCheckpointEntryOverhead >= 8 + 1 + 1 + 1 + 8 + 5);
// The largest payload of a record that is not a checkpoint: small enough for a checkpoint part
// to carry the record alone (a TCC record with many large payloads comes near it).
constexpr uint32_t kMaxLogicalPayloadSize = kMaxPayloadSize - kCheckpointEntryOverhead;
// The largest payload of one TCC participant in a kTccTry or kTccConfirm record.
constexpr size_t kMaxTccPayloadSize = 64u << 10;
constexpr uint8_t kZeroType = 0;  // never written: unused (zero-filled) space
// Readers refuse a segment file larger than this before reading any of it (a file extended by
// hand must not exhaust memory); the writer stays far below it: LogOptions::segment_size_bytes
// is at most kMaxSegmentSizeBytes, and a segment ends after the batch that crosses it.
constexpr uint64_t kMaxSegmentFileSize = 1ull << 30;
constexpr uint64_t kMaxSegmentSizeBytes = 256ull << 20;

static_assert(static_cast<uint8_t>(RecordType::kCommitDecision) == 1);
static_assert(static_cast<uint8_t>(RecordType::kPreCommit) == 2);
static_assert(static_cast<uint8_t>(RecordType::kEnd) == 3);
static_assert(static_cast<uint8_t>(RecordType::kHeuristic) == 4);
static_assert(static_cast<uint8_t>(RecordType::kHeuristicCleared) == 5);
static_assert(static_cast<uint8_t>(RecordType::kCheckpoint) == 6);
static_assert(static_cast<uint8_t>(RecordType::kParticipantWait) == 32);
static_assert(static_cast<uint8_t>(RecordType::kParticipantPreCommit) == 33);
static_assert(static_cast<uint8_t>(RecordType::kParticipantDecision) == 34);
static_assert(static_cast<uint8_t>(RecordType::kParticipantDone) == 35);
static_assert(static_cast<uint8_t>(RecordType::kTccTry) == 48);
static_assert(static_cast<uint8_t>(RecordType::kTccConfirm) == 49);
static_assert(static_cast<uint8_t>(Protocol::kTcc) == 5);
static_assert(kRecordTypeIgnorableBit == 0x80);
static_assert(kFileHeaderSize == kMagicSize + 4 + 4 + 8 + 8 + 8 + 4);
static_assert(kRecordHeaderSize == 4 + 4 + 1 + 8);

constexpr uint8_t kCheckpointLastPart = 0x01;
// The last byte of a participant PreCommit or Done payload: never zero (see the payloads above).
constexpr uint8_t kParticipantEndMark = 0xA5;
// The flags byte of a participant decision (LogRecord's fields of the same names); any other bit
// set is damage. A log written before kDecisionBranchFinished existed holds 0 or 1 there.
constexpr uint8_t kDecisionCoordinatorKnows = 0x01;
constexpr uint8_t kDecisionBranchFinished = 0x02;
// The last byte of a kTccTry or kTccConfirm payload: never zero (see the payloads above).
constexpr uint8_t kTccEndMark = 0xA5;

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
constexpr bool IsKnownRecordType(uint8_t t) noexcept {
  return (t >= 1 && t <= 6) || (t >= 32 && t <= 35) || t == 48 || t == 49;
}

// The 3PC participant's records (an agent's log): their `xid` is a branch Xid, and they apply to
// LogState::open_participants.
constexpr bool IsParticipantRecordType(RecordType t) noexcept {
  return t == RecordType::kParticipantWait || t == RecordType::kParticipantPreCommit ||
         t == RecordType::kParticipantDecision || t == RecordType::kParticipantDone;
}

// The TCC coordinator's records: their `xid` is a TCC transaction's global Xid, and they apply to
// LogState::open_tcc (which kEnd closes).
constexpr bool IsTccRecordType(RecordType t) noexcept {
  return t == RecordType::kTccTry || t == RecordType::kTccConfirm;
}

// What replay does with a record's type byte, given which types the reader knows: apply a known
// type; skip an unknown one that carries kRecordTypeIgnorableBit; stop at any other (a newer
// writer's record that may change the state). `is_known` is a parameter so that a test can ask
// what a reader of an older version (which knew fewer types) does with today's types.
enum class RecordTypeAction : uint8_t { kApply, kSkip, kStopReplay };
constexpr RecordTypeAction ActionForRecordType(uint8_t type,
                                               bool (*is_known)(uint8_t) = IsKnownRecordType) {
  if (is_known(type)) return RecordTypeAction::kApply;
  if ((type & kRecordTypeIgnorableBit) != 0) return RecordTypeAction::kSkip;
  return RecordTypeAction::kStopReplay;
}

// Record-type bands: the number space of record types, divided among their owners before any
// owner needs it, so that protocols written at the same time never take the same number. A
// type's band is decided by its low 7 bits (bit 7 is kRecordTypeIgnorableBit, which any type may
// carry). The shared band holds the log's own records (kCheckpoint) and those of the
// presumed-abort commit family that 2PC writes today and 3PC shares (decision, pre-commit, end,
// heuristic, heuristic cleared): the log owns them. Each other band belongs to one protocol's
// recovery module, which alone writes the types of its band; how it owns them is in
// log_format.md ("Record-type bands"). Numbers from kFirstUnassignedRecordType up are not
// assigned to anyone yet. Bands only grow into unassigned numbers: a persisted type is never
// renumbered.
struct RecordTypeBand {
  std::string_view name;  // as in the table of log_format.md
  uint8_t first;          // inclusive, without the ignorable bit
  uint8_t last;           // inclusive
};
constexpr RecordTypeBand kSharedRecordTypes{"kSharedRecordTypes", 1, 15};
constexpr RecordTypeBand kTwoPhaseRecordTypes{"kTwoPhaseRecordTypes", 16, 31};
constexpr RecordTypeBand kThreePhaseRecordTypes{"kThreePhaseRecordTypes", 32, 47};
constexpr RecordTypeBand kTccRecordTypes{"kTccRecordTypes", 48, 63};
constexpr RecordTypeBand kMessageRecordTypes{"kMessageRecordTypes", 64, 79};
constexpr uint8_t kFirstUnassignedRecordType = 80;  // up to 127
constexpr RecordTypeBand kRecordTypeBands[] = {kSharedRecordTypes, kTwoPhaseRecordTypes,
                                               kThreePhaseRecordTypes, kTccRecordTypes,
                                               kMessageRecordTypes};

constexpr bool InRecordTypeBand(uint8_t type, const RecordTypeBand& band) noexcept {
  uint8_t number = static_cast<uint8_t>(type & ~kRecordTypeIgnorableBit);
  return number >= band.first && number <= band.last;
}
constexpr bool InRecordTypeBand(RecordType type, const RecordTypeBand& band) noexcept {
  return InRecordTypeBand(static_cast<uint8_t>(type), band);
}

// The bands leave out kZeroType, follow each other without overlap, and end below the
// unassigned numbers, which end below the ignorable bit.
constexpr bool RecordTypeBandsAreOrdered() noexcept {
  uint8_t next = kZeroType + 1;
  for (const RecordTypeBand& band : kRecordTypeBands) {
    if (band.first < next || band.last < band.first) return false;
    next = static_cast<uint8_t>(band.last + 1);
  }
  return next <= kFirstUnassignedRecordType &&
         kFirstUnassignedRecordType < kRecordTypeIgnorableBit;
}
static_assert(RecordTypeBandsAreOrdered());
// Every type this version knows lies in a band.
constexpr bool EveryKnownRecordTypeIsInABand() noexcept {
  for (unsigned t = 0; t <= 0xff; ++t) {
    if (!IsKnownRecordType(static_cast<uint8_t>(t))) continue;
    bool banded = false;
    for (const RecordTypeBand& band : kRecordTypeBands) {
      banded = banded || InRecordTypeBand(static_cast<uint8_t>(t), band);
    }
    if (!banded) return false;
  }
  return true;
}
static_assert(EveryKnownRecordTypeIsInABand());
// The log's own types and the presumed-abort commit family are the shared band's; the 3PC
// participant's states are the three-phase band's; the TCC coordinator's records are the TCC
// band's.
static_assert(InRecordTypeBand(RecordType::kCommitDecision, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kPreCommit, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kEnd, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kHeuristic, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kHeuristicCleared, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kCheckpoint, kSharedRecordTypes));
static_assert(InRecordTypeBand(RecordType::kParticipantWait, kThreePhaseRecordTypes));
static_assert(InRecordTypeBand(RecordType::kParticipantPreCommit, kThreePhaseRecordTypes));
static_assert(InRecordTypeBand(RecordType::kParticipantDecision, kThreePhaseRecordTypes));
static_assert(InRecordTypeBand(RecordType::kParticipantDone, kThreePhaseRecordTypes));
static_assert(InRecordTypeBand(RecordType::kTccTry, kTccRecordTypes));
static_assert(InRecordTypeBand(RecordType::kTccConfirm, kTccRecordTypes));
// A participant record changes the state: it is written without the ignorable bit, so that a
// reader of the version before them (types 1 to 6) stops at it instead of replaying a wrong
// state.
constexpr bool IsKnownRecordTypeOfVersionWithoutParticipants(uint8_t t) noexcept {
  return t >= 1 && t <= 6;
}
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kParticipantWait),
                                  IsKnownRecordTypeOfVersionWithoutParticipants) ==
              RecordTypeAction::kStopReplay);
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kParticipantPreCommit),
                                  IsKnownRecordTypeOfVersionWithoutParticipants) ==
              RecordTypeAction::kStopReplay);
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kParticipantDecision),
                                  IsKnownRecordTypeOfVersionWithoutParticipants) ==
              RecordTypeAction::kStopReplay);
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kParticipantDone),
                                  IsKnownRecordTypeOfVersionWithoutParticipants) ==
              RecordTypeAction::kStopReplay);
// The same for the TCC records: a reader of the version before them (types 1 to 6 and 32 to 35)
// stops at them, since they open and close TCC transactions.
constexpr bool IsKnownRecordTypeOfVersionWithoutTcc(uint8_t t) noexcept {
  return (t >= 1 && t <= 6) || (t >= 32 && t <= 35);
}
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kTccTry),
                                  IsKnownRecordTypeOfVersionWithoutTcc) ==
              RecordTypeAction::kStopReplay);
static_assert(ActionForRecordType(static_cast<uint8_t>(RecordType::kTccConfirm),
                                  IsKnownRecordTypeOfVersionWithoutTcc) ==
              RecordTypeAction::kStopReplay);

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_LOG_FORMAT_H_
