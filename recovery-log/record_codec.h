// Encoding and decoding of the decision log's records (format: log_format.h).
//
// The decoders treat their input as hostile: every length is bounds-checked, every Xid is
// validated, and trailing bytes are refused. They never allocate more than the input justifies.

#ifndef XA_RECOVERY_LOG_RECORD_CODEC_H_
#define XA_RECOVERY_LOG_RECORD_CODEC_H_

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "recovery-log/log_format.h"
#include "xa/decision_log.h"
#include "xa/status.h"

namespace xa::internal {

// The types whose payload DecodePayload reads (every known type but kCheckpoint), in number
// order. The fuzzers' first input byte picks one of them by index (make_seeds.cc writes it).
constexpr RecordType kLogicalRecordTypes[] = {RecordType::kCommitDecision,
                                              RecordType::kPreCommit,
                                              RecordType::kEnd,
                                              RecordType::kHeuristic,
                                              RecordType::kHeuristicCleared,
                                              RecordType::kParticipantWait,
                                              RecordType::kParticipantPreCommit,
                                              RecordType::kParticipantDecision,
                                              RecordType::kParticipantDone,
                                              RecordType::kTccTry,
                                              RecordType::kTccConfirm};
constexpr bool EveryKnownTypeButTheCheckpointIsLogical() noexcept {
  size_t known = 0;
  for (unsigned t = 0; t <= 0xff; ++t) known += IsKnownRecordType(static_cast<uint8_t>(t));
  for (RecordType t : kLogicalRecordTypes) {
    if (!IsKnownRecordType(static_cast<uint8_t>(t)) || t == RecordType::kCheckpoint) return false;
  }
  return known == std::size(kLogicalRecordTypes) + 1;
}
static_assert(EveryKnownTypeButTheCheckpointIsLogical());

// Appends the payload of `record` (any type but kCheckpoint) to *dst. Refuses (XAER_INVAL)
// records that break the limits of log_format.h (kMaxLogicalPayloadSize among them) or whose Xid
// is empty, and appends nothing then.
Status EncodePayload(const LogRecord& record, std::string* dst);

// Parses the payload of a record of `type` (any known type but kCheckpoint) into *record,
// setting every field but lsn. kCorruption when it does not parse.
Status DecodePayload(RecordType type, std::string_view payload, LogRecord* record);

// The types a checkpoint entry may have: those that keep something open (a decision, a
// heuristic, a participant's Wait, PreCommit or Decision, a TCC transaction's Try or Confirm;
// log_format.h).
constexpr bool IsCheckpointEntryType(RecordType t) noexcept {
  return t == RecordType::kCommitDecision || t == RecordType::kPreCommit ||
         t == RecordType::kHeuristic || t == RecordType::kParticipantWait ||
         t == RecordType::kParticipantPreCommit || t == RecordType::kParticipantDecision ||
         t == RecordType::kTccTry || t == RecordType::kTccConfirm;
}

// One entry of a checkpoint: an open decision or heuristic as originally logged, one of the
// records that rebuild an open participant's state, or an open TCC transaction's newest record.
struct CheckpointEntry {
  RecordType type;
  uint64_t lsn;
  std::string_view payload;
};

// Appends one checkpoint part's payload.
void EncodeCheckpointPayload(int64_t timestamp_us, bool last_part,
                             const std::vector<CheckpointEntry>& entries, std::string* dst);
// Parses a checkpoint part. Entries point into `payload`.
Status DecodeCheckpointPayload(std::string_view payload, int64_t* timestamp_us, bool* last_part,
                               std::vector<CheckpointEntry>* entries);

// Appends a record (header and payload) to *dst.
void AppendPhysicalRecord(std::string* dst, uint8_t type, uint64_t lsn, std::string_view payload);

// A record as it lies in a segment.
struct PhysicalRecord {
  uint8_t type = 0;
  uint64_t lsn = 0;
  std::string_view payload;
  uint64_t offset = 0;  // of the record header in the file
  uint64_t size = 0;    // header and payload
};

// Walks the records of one segment held in memory.
class SegmentReader {
 public:
  enum class Outcome {
    kRecord,  // *record is the next record
    kEnd,     // clean end: end of the data, or zero fill up to the end
    kBad,     // a record that does not check out at bad_offset(); see reason()
  };

  // `contents` is the whole file, header included; it must outlive the reader.
  explicit SegmentReader(std::string_view contents) : contents_(contents) {}

  Status ReadHeader(SegmentHeader* header);
  Outcome Next(PhysicalRecord* record);

  uint64_t bad_offset() const noexcept { return bad_offset_; }
  const std::string& reason() const noexcept { return reason_; }
  // Offset just past the last good record (or the header).
  uint64_t position() const noexcept { return pos_; }

  // True when a record whose checksum holds and whose LSN is above `min_lsn` starts anywhere
  // after `offset`: the damage at `offset` is then in the middle of the log, not a torn tail.
  bool ValidRecordAfter(uint64_t offset, uint64_t min_lsn) const;

  // For a bad record at `offset` with nothing valid after it: true when its bytes show a write
  // that stopped part-way (the rule of log_format.md, "Torn tail or damage"): the file, or the
  // data before the zero fill that ends it, stops inside the record's header or before the end
  // its header announces, and the header that was written is the one the writer would have
  // written there (a known type, LSN `expected_lsn`), and no single flipped bit of the length
  // field makes the record check out. False: the record is complete in length (or its header
  // is damaged), so it was written whole and may have been acknowledged. *evidence says which.
  bool WriteStoppedAt(uint64_t offset, uint64_t expected_lsn, std::string* evidence) const;

 private:
  // Checks a record header and payload at `offset`; fills *record when valid.
  bool CheckRecordAt(uint64_t offset, PhysicalRecord* record, std::string* why) const;

  std::string_view contents_;
  uint64_t pos_ = 0;
  uint64_t bad_offset_ = 0;
  std::string reason_;
};

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_RECORD_CODEC_H_
