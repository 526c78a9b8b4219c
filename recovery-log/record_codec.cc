#include "recovery-log/record_codec.h"

#include <cstdio>
#include <cstring>

#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/base/escape.h"
#include "src/base/xid_coding.h"

namespace xa::internal {
namespace {

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }

// The Xid layout is shared with the agents' messages (src/base/xid_coding.h).
bool GetXid(Decoder* in, Xid* xid) { return internal::GetXid(in, "xid", xid).ok(); }

Status CheckParticipants(const LogRecord& r) {
  if (r.participants.size() > kMaxParticipants) {
    return Status(Code::kInval, "a log record holds at most " + std::to_string(kMaxParticipants) +
                                    " participants, not " + std::to_string(r.participants.size()));
  }
  for (const Participant& p : r.participants) {
    if (p.rm_name.size() > kMaxRmNameSize) {
      return Status(Code::kInval, "resource manager name longer than " +
                                      std::to_string(kMaxRmNameSize) + " bytes");
    }
    if (p.branch.empty()) {
      return Status(Code::kInval, "participant " + p.rm_name + " has an empty branch Xid");
    }
  }
  return Status::Ok();
}

void PutParticipants(std::string* dst, const std::vector<Participant>& participants) {
  PutVarint64(dst, participants.size());
  for (const Participant& p : participants) {
    PutLengthPrefixed(dst, p.rm_name);
    PutXid(dst, p.branch);
  }
}

bool GetParticipants(Decoder* in, std::vector<Participant>* participants) {
  uint64_t n;
  if (!in->GetVarint64(&n) || n > kMaxParticipants) return false;
  participants->resize(static_cast<size_t>(n));
  for (Participant& p : *participants) {
    std::string_view name;
    if (!in->GetLengthPrefixed(&name, kMaxRmNameSize)) return false;
    p.rm_name.assign(name);
    if (!GetXid(in, &p.branch)) return false;
  }
  return true;
}

// A participant record names its branch: an Xid with a bqual.
Status CheckParticipantRecord(const LogRecord& r) {
  if (r.xid.bqual().empty()) {
    return Status(Code::kInval, "a participant record names a branch Xid (with a bqual), not " +
                                    r.xid.ToString() + " (a global transaction's)");
  }
  if (r.type == RecordType::kParticipantDecision && r.outcome != Outcome::kCommitted &&
      r.outcome != Outcome::kRolledBack) {
    return Status(Code::kInval, "a participant decision is committed or rolled back, not " +
                                    std::string(OutcomeName(r.outcome)));
  }
  if (r.type != RecordType::kParticipantWait) return Status::Ok();
  XA_RETURN_IF_ERROR(CheckParticipants(r));
  if (r.participant_number >= r.participants.size()) {
    return Status(Code::kInval, "participant number " + std::to_string(r.participant_number) +
                                    " is not in the list of " +
                                    std::to_string(r.participants.size()) + " participants");
  }
  if (r.participants[r.participant_number].branch != r.xid) {
    return Status(Code::kInval, "participant " + std::to_string(r.participant_number) +
                                    " of the list has branch " +
                                    r.participants[r.participant_number].branch.ToString() +
                                    ", not the record's " + r.xid.ToString());
  }
  return Status::Ok();
}

// A TCC record (kTccTry, kTccConfirm): what the decoder checks, refused before anything is
// encoded. The names and payloads are summed first, so that a record far beyond
// kMaxLogicalPayloadSize is refused before a buffer of its size is filled.
Status CheckTccRecord(const LogRecord& r) {
  if (!r.xid.bqual().empty()) {
    return Status(Code::kInval,
                  "a TCC record names its transaction's global Xid (empty bqual), not " +
                      r.xid.ToString());
  }
  if (r.protocol != Protocol::kTcc && r.protocol != Protocol::kSaga) {
    return Status(Code::kInval, "a TCC record has protocol TCC or saga, not " +
                                    std::string(ProtocolName(r.protocol)));
  }
  if (r.participants.empty() || r.participants.size() > kMaxParticipants) {
    return Status(Code::kInval, "a TCC record holds 1 to " + std::to_string(kMaxParticipants) +
                                    " participants, not " + std::to_string(r.participants.size()));
  }
  if (r.payloads.size() != r.participants.size()) {
    return Status(Code::kInval, "a TCC record holds one payload per participant, not " +
                                    std::to_string(r.payloads.size()) + " payloads for " +
                                    std::to_string(r.participants.size()) + " participants");
  }
  size_t bytes = 0;
  for (size_t i = 0; i < r.participants.size(); ++i) {
    const Participant& p = r.participants[i];
    const std::string which = "TCC participant " + std::to_string(i) + " ('" +
                              EscapeForMessage(p.rm_name) + "')";
    if (p.rm_name.empty() || p.rm_name.size() > kMaxRmNameSize) {
      return Status(Code::kInval, which + " has a name of " + std::to_string(p.rm_name.size()) +
                                      " bytes; a name is 1 to " +
                                      std::to_string(kMaxRmNameSize) + " bytes");
    }
    const Xid branch = r.xid.WithBranch(static_cast<uint16_t>(i));
    if (p.branch != branch) {
      return Status(Code::kInval, which + " has branch " + p.branch.ToString() +
                                      ", not its transaction's branch " + std::to_string(i) +
                                      " (" + branch.ToString() + ")");
    }
    if (r.payloads[i].size() > kMaxTccPayloadSize) {
      return Status(Code::kInval, which + " has a payload of " +
                                      std::to_string(r.payloads[i].size()) +
                                      " bytes, above the log's limit of " +
                                      std::to_string(kMaxTccPayloadSize) + " bytes");
    }
    bytes += p.rm_name.size() + r.payloads[i].size();
  }
  if (bytes > kMaxLogicalPayloadSize) {
    return Status(Code::kInval, "a TCC record of " + std::to_string(r.participants.size()) +
                                    " participants holds " + std::to_string(bytes) +
                                    " bytes of names and payloads, above the log's limit of " +
                                    std::to_string(kMaxLogicalPayloadSize) +
                                    " bytes per record: enlist fewer participants or pass "
                                    "smaller payloads");
  }
  return Status::Ok();
}

// The payload of `r` after its timestamp (EncodePayload checks what every type shares).
Status EncodeFields(const LogRecord& r, std::string* dst) {
  switch (r.type) {
    case RecordType::kCommitDecision:
    case RecordType::kPreCommit:
      XA_RETURN_IF_ERROR(CheckParticipants(r));
      PutXid(dst, r.xid);
      dst->push_back(static_cast<char>(r.protocol));
      PutParticipants(dst, r.participants);
      return Status::Ok();
    case RecordType::kEnd:
      PutXid(dst, r.xid);
      return Status::Ok();
    case RecordType::kHeuristic:
      XA_RETURN_IF_ERROR(CheckParticipants(r));
      PutXid(dst, r.xid);
      dst->push_back(static_cast<char>(r.outcome));
      PutParticipants(dst, r.participants);
      PutLengthPrefixed(dst, r.reason);
      return Status::Ok();
    case RecordType::kHeuristicCleared:
      PutXid(dst, r.xid);
      PutLengthPrefixed(dst, r.reason);
      return Status::Ok();
    case RecordType::kParticipantWait:
      XA_RETURN_IF_ERROR(CheckParticipantRecord(r));
      PutXid(dst, r.xid);
      PutParticipants(dst, r.participants);
      PutVarint64(dst, r.participant_number);
      PutVarint64(dst, r.fence_session_id);
      dst->push_back(static_cast<char>(r.read_only ? Vote::kReadOnly : Vote::kCommit));
      return Status::Ok();
    case RecordType::kParticipantPreCommit:
    case RecordType::kParticipantDone:
      XA_RETURN_IF_ERROR(CheckParticipantRecord(r));
      PutXid(dst, r.xid);
      dst->push_back(static_cast<char>(kParticipantEndMark));
      return Status::Ok();
    case RecordType::kParticipantDecision:
      XA_RETURN_IF_ERROR(CheckParticipantRecord(r));
      PutXid(dst, r.xid);
      dst->push_back(static_cast<char>((r.coordinator_knows_outcome ? kDecisionCoordinatorKnows : 0) |
                                       (r.branch_finished ? kDecisionBranchFinished : 0)));
      dst->push_back(static_cast<char>(r.outcome));  // last: never zero
      return Status::Ok();
    case RecordType::kTccTry:
    case RecordType::kTccConfirm:
      XA_RETURN_IF_ERROR(CheckTccRecord(r));
      PutXid(dst, r.xid);
      dst->push_back(static_cast<char>(r.protocol));
      PutVarint64(dst, r.participants.size());
      for (size_t i = 0; i < r.participants.size(); ++i) {
        PutLengthPrefixed(dst, r.participants[i].rm_name);
        PutXid(dst, r.participants[i].branch);
        PutLengthPrefixed(dst, r.payloads[i]);
      }
      dst->push_back(static_cast<char>(kTccEndMark));  // last: never zero
      return Status::Ok();
    case RecordType::kCheckpoint:
      break;
  }
  return Status(Code::kInval, "record type " + std::to_string(static_cast<int>(r.type)) +
                                  " cannot be appended (checkpoints are written by the log)");
}

// A TCC record's participants, payloads and end mark (after its Xid), into *r.
Status GetTccFields(Decoder* in, LogRecord* r) {
  if (!r->xid.bqual().empty()) {
    return Corrupt("TCC record names a branch Xid, not its transaction's global Xid");
  }
  uint8_t protocol;
  uint64_t n;
  if (!in->GetU8(&protocol) || !in->GetVarint64(&n)) return Corrupt("TCC record does not parse");
  if (protocol != static_cast<uint8_t>(Protocol::kTcc) &&
      protocol != static_cast<uint8_t>(Protocol::kSaga)) {
    return Corrupt("TCC record has protocol " + std::to_string(protocol) + ", not TCC (" +
                   std::to_string(static_cast<int>(Protocol::kTcc)) + ") or saga (" +
                   std::to_string(static_cast<int>(Protocol::kSaga)) + ")");
  }
  if (n == 0 || n > kMaxParticipants) {
    return Corrupt("TCC record has " + std::to_string(n) + " participants, not 1 to " +
                   std::to_string(kMaxParticipants));
  }
  r->protocol = static_cast<Protocol>(protocol);
  r->participants.resize(static_cast<size_t>(n));
  r->payloads.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < r->participants.size(); ++i) {
    const std::string which = "TCC participant " + std::to_string(i);
    uint64_t size;
    std::string_view bytes;
    if (!in->GetVarint64(&size)) return Corrupt(which + ": its name does not parse");
    if (size == 0 || size > kMaxRmNameSize) {
      return Corrupt(which + " has a name of " + std::to_string(size) + " bytes, not 1 to " +
                     std::to_string(kMaxRmNameSize));
    }
    if (!in->GetBytes(static_cast<size_t>(size), &bytes)) {
      return Corrupt(which + ": its name is truncated");
    }
    Participant& p = r->participants[i];
    p.rm_name.assign(bytes);
    if (!GetXid(in, &p.branch)) return Corrupt(which + ": its branch Xid does not parse");
    if (p.branch != r->xid.WithBranch(static_cast<uint16_t>(i))) {
      return Corrupt(which + " has branch " + p.branch.ToString() +
                     ", not its transaction's branch " + std::to_string(i));
    }
    if (!in->GetVarint64(&size)) return Corrupt(which + ": its payload does not parse");
    if (size > kMaxTccPayloadSize) {
      return Corrupt(which + " has a payload of " + std::to_string(size) + " bytes, above " +
                     std::to_string(kMaxTccPayloadSize));
    }
    if (!in->GetBytes(static_cast<size_t>(size), &bytes)) {
      return Corrupt(which + ": its payload is truncated");
    }
    r->payloads[i].assign(bytes);
  }
  uint8_t mark;
  if (!in->GetU8(&mark) || mark != kTccEndMark) return Corrupt("TCC record lacks its end mark");
  return Status::Ok();
}

// Whether every byte of `bytes` is zero, compared a block at a time: the unused tail of a
// preallocated segment is up to 64 MiB, checked at every open and scan, and a byte-by-byte loop
// over it took most of the log tests' time under the sanitizers (memcmp runs uninstrumented).
bool AllZero(std::string_view bytes) {
  static constexpr char kZeros[4096] = {};
  while (bytes.size() > sizeof(kZeros)) {
    if (std::memcmp(bytes.data(), kZeros, sizeof(kZeros)) != 0) return false;
    bytes.remove_prefix(sizeof(kZeros));
  }
  return std::memcmp(bytes.data(), kZeros, bytes.size()) == 0;
}

}  // namespace

void EncodeSegmentHeader(const SegmentHeader& h, std::string* dst) {
  size_t start = dst->size();
  dst->append(kMagic, kMagicSize);
  PutFixed32(dst, h.format_version);
  PutFixed32(dst, h.node_id);
  PutFixed64(dst, h.epoch);
  PutFixed64(dst, h.segment_number);
  PutFixed64(dst, h.first_lsn);
  PutFixed32(dst, crc32c::Mask(crc32c::Value(dst->data() + start, dst->size() - start)));
}

Status DecodeSegmentHeader(std::string_view in, SegmentHeader* h) {
  if (in.size() < kFileHeaderSize) {
    return Corrupt("file header truncated: " + std::to_string(in.size()) + " of " +
                   std::to_string(kFileHeaderSize) + " bytes");
  }
  if (std::memcmp(in.data(), kMagic, kMagicSize) != 0) {
    return Corrupt("not a decision log segment (bad magic)");
  }
  uint32_t stored = DecodeFixed32(in.data() + kFileHeaderSize - 4);
  if (crc32c::Unmask(stored) != crc32c::Value(in.data(), kFileHeaderSize - 4)) {
    return Corrupt("file header checksum mismatch");
  }
  h->format_version = DecodeFixed32(in.data() + 8);
  h->node_id = DecodeFixed32(in.data() + 12);
  h->epoch = DecodeFixed64(in.data() + 16);
  h->segment_number = DecodeFixed64(in.data() + 24);
  h->first_lsn = DecodeFixed64(in.data() + 32);
  if (h->format_version != kFormatVersion) {
    return Status(Code::kNotSupported,
                  "segment format version " + std::to_string(h->format_version) +
                      " is not supported by this build (it reads version " +
                      std::to_string(kFormatVersion) + "); use the xa release that wrote it");
  }
  return Status::Ok();
}

std::string SegmentFileName(uint64_t number) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "segment-%016llx.xalog",
                static_cast<unsigned long long>(number));  // NOLINT(runtime/int)
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* number) {
  constexpr std::string_view kPrefix = "segment-";
  constexpr std::string_view kSuffix = ".xalog";
  if (name.size() != kPrefix.size() + 16 + kSuffix.size()) return false;
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  uint64_t v = 0;
  for (char c : name.substr(kPrefix.size(), 16)) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *number = v;
  return true;
}

Status EncodePayload(const LogRecord& r, std::string* dst) {
  if (r.xid.empty()) return Status(Code::kInval, "a log record needs a non-empty Xid");
  if (r.reason.size() > kMaxReasonSize) {
    return Status(Code::kInval,
                  "reason longer than " + std::to_string(kMaxReasonSize) + " bytes");
  }
  const size_t start = dst->size();
  PutFixed64(dst, static_cast<uint64_t>(r.timestamp_us));
  Status s = EncodeFields(r, dst);
  if (s.ok() && dst->size() - start > kMaxLogicalPayloadSize) {
    // Only a TCC record comes near it, with the names and Xids its check did not count.
    s = Status(Code::kInval, "a log record of type " + std::to_string(static_cast<int>(r.type)) +
                                 " would take " + std::to_string(dst->size() - start) +
                                 " bytes, above the log's limit of " +
                                 std::to_string(kMaxLogicalPayloadSize) +
                                 " bytes per record: enlist fewer participants or pass smaller "
                                 "payloads");
  }
  if (!s.ok()) dst->resize(start);
  return s;
}

Status DecodePayload(RecordType type, std::string_view payload, LogRecord* r) {
  if (payload.size() > kMaxLogicalPayloadSize) {
    return Corrupt("record payload of " + std::to_string(payload.size()) +
                   " bytes is above the limit of " + std::to_string(kMaxLogicalPayloadSize));
  }
  Decoder in(payload);
  uint64_t ts;
  if (!in.GetFixed64(&ts)) return Corrupt("record payload too short for its timestamp");
  r->type = type;
  r->timestamp_us = static_cast<int64_t>(ts);
  r->protocol = Protocol::kTwoPhase;
  r->outcome = Outcome::kUnknown;
  r->participants.clear();
  r->reason.clear();
  r->participant_number = 0;
  r->fence_session_id = 0;
  r->read_only = false;
  r->coordinator_knows_outcome = false;
  r->branch_finished = false;
  r->payloads.clear();
  if (!GetXid(&in, &r->xid)) return Corrupt("record Xid does not parse");
  if (IsParticipantRecordType(type)) {
    r->protocol = Protocol::kThreePhase;  // implied by the type
    if (r->xid.bqual().empty()) return Corrupt("participant record names no branch (empty bqual)");
  }
  switch (type) {
    case RecordType::kCommitDecision:
    case RecordType::kPreCommit: {
      uint8_t protocol;
      if (!in.GetU8(&protocol) || protocol < 1 || protocol > 3) {
        return Corrupt("decision record has an invalid protocol");
      }
      r->protocol = static_cast<Protocol>(protocol);
      if (!GetParticipants(&in, &r->participants)) {
        return Corrupt("decision record participants do not parse");
      }
      break;
    }
    case RecordType::kEnd:
      break;
    case RecordType::kHeuristic: {
      uint8_t outcome;
      if (!in.GetU8(&outcome) || outcome < 1 || outcome > 8) {
        return Corrupt("heuristic record has an invalid outcome");
      }
      r->outcome = static_cast<Outcome>(outcome);
      std::string_view reason;
      if (!GetParticipants(&in, &r->participants) ||
          !in.GetLengthPrefixed(&reason, kMaxReasonSize)) {
        return Corrupt("heuristic record does not parse");
      }
      r->reason.assign(reason);
      break;
    }
    case RecordType::kHeuristicCleared: {
      std::string_view reason;
      if (!in.GetLengthPrefixed(&reason, kMaxReasonSize)) {
        return Corrupt("heuristic-cleared record does not parse");
      }
      r->reason.assign(reason);
      break;
    }
    case RecordType::kParticipantWait: {
      uint64_t number, fence;
      uint8_t vote;
      if (!GetParticipants(&in, &r->participants) || !in.GetVarint64(&number) ||
          !in.GetVarint64(&fence) || !in.GetU8(&vote)) {
        return Corrupt("participant wait record does not parse");
      }
      if (number >= r->participants.size()) {
        return Corrupt("participant wait record: participant number " + std::to_string(number) +
                       " is not in its list of " + std::to_string(r->participants.size()));
      }
      r->participant_number = static_cast<uint16_t>(number);  // < kMaxParticipants
      if (r->participants[r->participant_number].branch != r->xid) {
        return Corrupt("participant wait record: participant " + std::to_string(number) +
                       " of its list is not the record's branch");
      }
      if (vote != static_cast<uint8_t>(Vote::kCommit) &&
          vote != static_cast<uint8_t>(Vote::kReadOnly)) {
        return Corrupt("participant wait record has vote " + std::to_string(vote) +
                       ", not commit or read-only");
      }
      r->fence_session_id = fence;
      r->read_only = vote == static_cast<uint8_t>(Vote::kReadOnly);
      break;
    }
    case RecordType::kParticipantPreCommit:
    case RecordType::kParticipantDone: {
      uint8_t mark;
      if (!in.GetU8(&mark) || mark != kParticipantEndMark) {
        return Corrupt("participant record lacks its end mark");
      }
      break;
    }
    case RecordType::kParticipantDecision: {
      uint8_t flags, outcome;
      if (!in.GetU8(&flags) || !in.GetU8(&outcome)) {
        return Corrupt("participant decision record does not parse");
      }
      if ((flags & ~(kDecisionCoordinatorKnows | kDecisionBranchFinished)) != 0) {
        return Corrupt("participant decision record has flags " + std::to_string(flags) +
                       ", of which only bits 0 (coordinator_knows_outcome) and 1 "
                       "(branch_finished) are defined");
      }
      if (outcome != static_cast<uint8_t>(Outcome::kCommitted) &&
          outcome != static_cast<uint8_t>(Outcome::kRolledBack)) {
        return Corrupt("participant decision record has an outcome other than committed or "
                       "rolled back");
      }
      r->coordinator_knows_outcome = (flags & kDecisionCoordinatorKnows) != 0;
      r->branch_finished = (flags & kDecisionBranchFinished) != 0;
      r->outcome = static_cast<Outcome>(outcome);
      break;
    }
    case RecordType::kTccTry:
    case RecordType::kTccConfirm:
      XA_RETURN_IF_ERROR(GetTccFields(&in, r));
      break;
    case RecordType::kCheckpoint:
      return Corrupt("checkpoint payload given to the logical record decoder");
  }
  if (!in.empty()) return Corrupt("record payload has trailing bytes");
  return Status::Ok();
}

void EncodeCheckpointPayload(int64_t timestamp_us, bool last_part,
                             const std::vector<CheckpointEntry>& entries, std::string* dst) {
  PutFixed64(dst, static_cast<uint64_t>(timestamp_us));
  dst->push_back(static_cast<char>(last_part ? kCheckpointLastPart : 0));
  PutVarint64(dst, entries.size());
  for (const CheckpointEntry& e : entries) {
    dst->push_back(static_cast<char>(e.type));
    PutFixed64(dst, e.lsn);
    PutLengthPrefixed(dst, e.payload);
  }
}

Status DecodeCheckpointPayload(std::string_view payload, int64_t* timestamp_us, bool* last_part,
                               std::vector<CheckpointEntry>* entries) {
  Decoder in(payload);
  uint64_t ts, n;
  uint8_t flags;
  if (!in.GetFixed64(&ts) || !in.GetU8(&flags) || (flags & ~kCheckpointLastPart) != 0 ||
      !in.GetVarint64(&n)) {
    return Corrupt("checkpoint header does not parse");
  }
  // Each entry takes at least 10 bytes: refuse a count the payload cannot hold before reserving.
  if (n > in.remaining() / 10) return Corrupt("checkpoint entry count exceeds its payload");
  *timestamp_us = static_cast<int64_t>(ts);
  *last_part = (flags & kCheckpointLastPart) != 0;
  entries->clear();
  entries->reserve(static_cast<size_t>(n));
  for (uint64_t i = 0; i < n; ++i) {
    uint8_t type;
    uint64_t lsn;
    std::string_view body;
    if (!in.GetU8(&type) || !in.GetFixed64(&lsn) || !in.GetLengthPrefixed(&body, kMaxPayloadSize)) {
      return Corrupt("checkpoint entry does not parse");
    }
    auto t = static_cast<RecordType>(type);
    if (!IsCheckpointEntryType(t)) {
      return Corrupt("checkpoint entry has type " + std::to_string(type) +
                     ", not a decision, a heuristic, a participant's state or a TCC "
                     "transaction's");
    }
    entries->push_back(CheckpointEntry{t, lsn, body});
  }
  if (!in.empty()) return Corrupt("checkpoint payload has trailing bytes");
  return Status::Ok();
}

void AppendPhysicalRecord(std::string* dst, uint8_t type, uint64_t lsn, std::string_view payload) {
  char header[kRecordHeaderSize];
  EncodeFixed32(header + 4, static_cast<uint32_t>(payload.size()));
  header[8] = static_cast<char>(type);
  EncodeFixed64(header + 9, lsn);
  uint32_t crc = crc32c::Value(header + 4, kRecordHeaderSize - 4);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  EncodeFixed32(header, crc32c::Mask(crc));
  dst->append(header, kRecordHeaderSize);
  dst->append(payload.data(), payload.size());
}

Status SegmentReader::ReadHeader(SegmentHeader* header) {
  XA_RETURN_IF_ERROR(DecodeSegmentHeader(contents_, header));
  pos_ = kFileHeaderSize;
  return Status::Ok();
}

bool SegmentReader::CheckRecordAt(uint64_t offset, PhysicalRecord* record,
                                  std::string* why) const {
  size_t left = contents_.size() - offset;
  const char* p = contents_.data() + offset;
  if (left < kRecordHeaderSize) {
    if (why) *why = "record header truncated (" + std::to_string(left) + " bytes)";
    return false;
  }
  uint32_t length = DecodeFixed32(p + 4);
  if (length > kMaxPayloadSize) {
    if (why) *why = "record length " + std::to_string(length) + " exceeds the maximum";
    return false;
  }
  if (left - kRecordHeaderSize < length) {
    if (why) {
      *why = "record truncated: header announces " + std::to_string(length) +
             " payload bytes, " + std::to_string(left - kRecordHeaderSize) + " remain";
    }
    return false;
  }
  uint32_t crc = crc32c::Value(p + 4, kRecordHeaderSize - 4 + length);
  if (crc32c::Mask(crc) != DecodeFixed32(p)) {
    if (why) *why = "record checksum mismatch";
    return false;
  }
  uint8_t type = static_cast<uint8_t>(p[8]);
  if (type == kZeroType) {
    if (why) *why = "record of type 0";
    return false;
  }
  record->type = type;
  record->lsn = DecodeFixed64(p + 9);
  record->payload = std::string_view(p + kRecordHeaderSize, length);
  record->offset = offset;
  record->size = kRecordHeaderSize + length;
  return true;
}

SegmentReader::Outcome SegmentReader::Next(PhysicalRecord* record) {
  if (pos_ >= contents_.size()) return Outcome::kEnd;
  if (CheckRecordAt(pos_, record, &reason_)) {
    pos_ += record->size;
    return Outcome::kRecord;
  }
  // Zero fill to the end is unused (preallocated) space, not damage.
  if (AllZero(contents_.substr(pos_))) return Outcome::kEnd;
  bad_offset_ = pos_;
  return Outcome::kBad;
}

bool SegmentReader::ValidRecordAfter(uint64_t offset, uint64_t min_lsn) const {
  PhysicalRecord r;
  // A record after `offset` has an LSN above min_lsn, and at most one LSN per
  // kRecordHeaderSize bytes can follow: cheap filters (type, LSN range) before a checksum, so
  // that the scan stays linear on any input.
  const uint64_t max_lsn = min_lsn + (contents_.size() - offset) / kRecordHeaderSize + 1;
  for (uint64_t at = offset + 1; at + kRecordHeaderSize <= contents_.size(); ++at) {
    uint8_t type = static_cast<uint8_t>(contents_[at + 8]);
    if (!IsKnownRecordType(type) && (type & kRecordTypeIgnorableBit) == 0) continue;
    uint64_t lsn = DecodeFixed64(contents_.data() + at + 9);
    if (lsn <= min_lsn || lsn > max_lsn) continue;
    if (CheckRecordAt(at, &r, nullptr)) return true;
  }
  return false;
}

bool SegmentReader::WriteStoppedAt(uint64_t offset, uint64_t expected_lsn,
                                   std::string* evidence) const {
  std::string_view rest = contents_.substr(offset);
  // Where the written data ends: the end of the file, or the start of the zero fill (unwritten
  // space of a preallocated segment) that runs to it.
  size_t last = rest.find_last_not_of('\0');
  const uint64_t data = last == std::string_view::npos ? 0 : last + 1;  // bytes from `offset`
  if (data < kRecordHeaderSize) {
    *evidence = "the data stops " + std::to_string(data) + " bytes into the record header";
    return true;
  }
  const char* p = rest.data();
  uint32_t length = DecodeFixed32(p + 4);
  uint8_t type = static_cast<uint8_t>(p[8]);
  uint64_t lsn = DecodeFixed64(p + 9);
  if (length > kMaxPayloadSize || (!IsKnownRecordType(type) &&
                                   (type & kRecordTypeIgnorableBit) == 0) ||
      lsn != expected_lsn) {
    // Unwritten bytes read as zeros, which never raise a length, make an unknown type or a
    // wrong LSN out of a header written whole: this header was damaged after it was written.
    *evidence = "its header was written whole but is damaged (type " + std::to_string(type) +
                ", LSN " + std::to_string(lsn) + " where " + std::to_string(expected_lsn) +
                " was due, length " + std::to_string(length) + ")";
    return false;
  }
  const uint64_t size = kRecordHeaderSize + static_cast<uint64_t>(length);
  if (data >= size) {
    *evidence = "it is complete in length (" + std::to_string(size) + " bytes, all written)";
    return false;
  }
  // Incomplete as its length says. A flipped bit in the length itself would say so of a record
  // written whole: that record checks out with the bit flipped back.
  for (int bit = 0; bit < 32; ++bit) {
    uint32_t other = length ^ (1u << bit);
    if (other > kMaxPayloadSize || kRecordHeaderSize + static_cast<uint64_t>(other) > rest.size()) {
      continue;
    }
    std::string header(p, kRecordHeaderSize);
    EncodeFixed32(header.data() + 4, other);
    uint32_t crc = crc32c::Extend(crc32c::Value(header.data() + 4, kRecordHeaderSize - 4),
                                  p + kRecordHeaderSize, other);
    if (crc32c::Mask(crc) == DecodeFixed32(p)) {
      *evidence = "it is complete in length but its length field is damaged (bit " +
                  std::to_string(bit) + " flipped)";
      return false;
    }
  }
  *evidence = "the data stops " + std::to_string(data) + " bytes into a record of " +
              std::to_string(size) + " bytes";
  return true;
}

}  // namespace xa::internal
