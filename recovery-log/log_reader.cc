#include "recovery-log/log_reader.h"

#include <algorithm>
#include <utility>

#include "recovery-log/log_state.h"
#include "recovery-log/record_codec.h"

namespace xa::internal {
namespace {

std::string Where(std::string_view file, uint64_t offset) {
  std::string s(file);
  s += " at offset ";
  s += std::to_string(offset);
  return s;
}

class Replayer {
 public:
  Replayer(const std::vector<SegmentInput>& segments, const ReplayOptions& options)
      : segments_(segments), options_(options) {}

  ReplayResult Run() {
    for (size_t i = 0; i < segments_.size() && result_.status.ok(); ++i) {
      ReplaySegment(segments_[i], i + 1 == segments_.size());
    }
    result_.state.last_lsn = last_lsn_;
    return std::move(result_);
  }

 private:
  void Report(const SegmentInput& seg, uint64_t offset, const Status& reason) {
    if (options_.reporter != nullptr) {
      uint64_t bytes = seg.contents.size() > offset ? seg.contents.size() - offset : 0;
      options_.reporter->Corruption(seg.name, offset, bytes, reason);
    }
  }

  // Damage that replay cannot step over: stop, and mark the state damaged.
  void Fail(const SegmentInput& seg, uint64_t offset, Code code, const std::string& what) {
    Status s(code, "decision log damaged in " + Where(seg.name, offset) + ": " + what +
                       ". Replay stopped there; the records after it are unknown, so recovery "
                       "must not presume abort. Inspect with `xa-log verify`, restore the log "
                       "from a copy or resolve the in-doubt transactions by hand");
    Report(seg, offset, s);
    result_.status = s;
    result_.state.damaged = true;
    result_.state.damage_report = s.message();
  }

  void ReplaySegment(const SegmentInput& seg, bool newest) {
    SegmentSummary sum;
    sum.name = seg.name;
    sum.number = seg.number;
    sum.file_size = seg.contents.size();
    SegmentReader reader(seg.contents);
    Status hs = reader.ReadHeader(&sum.header);
    if (!hs.ok()) {
      Fail(seg, 0, hs.code(), "file header: " + hs.message());
      result_.segments.push_back(std::move(sum));
      return;
    }
    const SegmentHeader& h = sum.header;
    if (h.segment_number != seg.number) {
      Fail(seg, 0, Code::kCorruption,
           "header says segment " + std::to_string(h.segment_number) + " but the file name says " +
               std::to_string(seg.number));
    } else if (options_.expected_node_id && h.node_id != *options_.expected_node_id) {
      result_.status =
          Status(Code::kConfig, "decision log segment " + seg.name + " belongs to node " +
                                    std::to_string(h.node_id) + ", not to node " +
                                    std::to_string(*options_.expected_node_id) +
                                    ": check LogOptions::dir and node_id (a log is never shared)");
    } else if (node_id_ && *node_id_ != h.node_id) {
      Fail(seg, 0, Code::kCorruption,
           "segment of node " + std::to_string(h.node_id) + " among segments of node " +
               std::to_string(*node_id_));
    } else if (h.first_lsn <= last_lsn_ || h.first_lsn == 0) {
      Fail(seg, 0, Code::kCorruption,
           "segment starts at LSN " + std::to_string(h.first_lsn) +
               ", not after the previous segment's last LSN " + std::to_string(last_lsn_));
    }
    if (!result_.status.ok()) {
      result_.segments.push_back(std::move(sum));
      return;
    }
    node_id_ = h.node_id;
    result_.max_epoch = std::max(result_.max_epoch, h.epoch);

    uint64_t expected_lsn = h.first_lsn;
    bool checkpoint_started = false, checkpoint_done = false;
    PhysicalRecord pr;
    for (;;) {
      SegmentReader::Outcome outcome = reader.Next(&pr);
      if (outcome == SegmentReader::Outcome::kEnd) break;
      if (outcome == SegmentReader::Outcome::kBad) {
        uint64_t at = reader.bad_offset();
        bool tail = newest && checkpoint_done && !reader.ValidRecordAfter(at, last_lsn_);
        std::string evidence;
        if (!tail) {
          std::string why = reader.reason();
          why += newest ? (checkpoint_done ? ", and a valid record follows it"
                                           : ", inside the segment's checkpoint")
                        : ", in a segment that newer segments follow";
          Fail(seg, at, Code::kCorruption, why);
        } else if (!reader.WriteStoppedAt(at, expected_lsn, &evidence)) {
          // Written whole, so its fdatasync may have completed and the append been
          // acknowledged: dropping it could lose a commit decision. Under every mode.
          Fail(seg, at, Code::kCorruption,
               "the last record fails its checks (" + reader.reason() + ") but " + evidence +
                   ": not a torn write, and it may have been acknowledged, so it is neither "
                   "dropped nor truncated. If this host lost power during an append and you "
                   "know the record was never acknowledged, keep a copy of the segment and cut "
                   "it at offset " + std::to_string(at) + " (truncate -s " + std::to_string(at) +
                   "); otherwise restore the segment from a copy");
        } else if (options_.mode == LogRecoveryMode::kAbsoluteConsistency) {
          Fail(seg, at, Code::kCorruption,
               "torn tail (" + reader.reason() + "; " + evidence +
                   "), refused because the recovery mode is kAbsoluteConsistency");
        } else {
          Status s(Code::kCorruption, "torn tail in " + Where(seg.name, at) + " (" +
                                          reader.reason() + "; " + evidence + "), " +
                                          std::to_string(seg.contents.size() - at) +
                                          " bytes: an append that never completed; dropped");
          Report(seg, at, s);
          sum.torn_tail = true;
          result_.state.damage_report = s.message();
        }
        break;
      }
      if (pr.lsn != expected_lsn) {
        Fail(seg, pr.offset, Code::kCorruption,
             "record has LSN " + std::to_string(pr.lsn) + ", expected " +
                 std::to_string(expected_lsn));
        break;
      }
      ++expected_lsn;
      if (!ReplayRecord(seg, pr, &checkpoint_started, &checkpoint_done)) break;
      last_lsn_ = pr.lsn;
      if (sum.records == 0) sum.first_lsn = pr.lsn;
      sum.last_lsn = pr.lsn;
      ++sum.records;
      ++result_.records;
    }
    sum.valid_size = reader.position();
    if (result_.status.ok() && !checkpoint_done) {
      Fail(seg, sum.valid_size, Code::kCorruption,
           "the segment ends before its checkpoint is complete");
    }
    result_.segments.push_back(std::move(sum));
  }

  // Returns false when replay must stop (status set).
  bool ReplayRecord(const SegmentInput& seg, const PhysicalRecord& pr, bool* checkpoint_started,
                   bool* checkpoint_done) {
    RecordTypeAction action = ActionForRecordType(pr.type);
    if (action != RecordTypeAction::kApply) {
      if (action == RecordTypeAction::kSkip && *checkpoint_done) {
        ++result_.ignorable_skipped;
        if (options_.visit) {
          scratch_ = LogRecord();
          scratch_.lsn = pr.lsn;
          options_.visit(ReplayEvent{scratch_, seg.name, pr.offset, pr.size, nullptr, true});
        }
        return true;
      }
      Fail(seg, pr.offset, Code::kNotSupported,
           "record of unknown type " + std::to_string(pr.type) +
               " (written by a newer xa?); it may change the state, so replay cannot skip it");
      return false;
    }
    auto type = static_cast<RecordType>(pr.type);
    if (type == RecordType::kCheckpoint) {
      if (*checkpoint_done) {
        Fail(seg, pr.offset, Code::kCorruption, "checkpoint record after the segment's start");
        return false;
      }
      return ApplyCheckpoint(seg, pr, checkpoint_started, checkpoint_done);
    }
    if (!*checkpoint_done) {
      Fail(seg, pr.offset, Code::kCorruption, "the segment does not start with a checkpoint");
      return false;
    }
    Status s = DecodePayload(type, pr.payload, &scratch_);
    if (!s.ok()) {
      Fail(seg, pr.offset, Code::kCorruption,
           "record with a valid checksum does not parse: " + s.message());
      return false;
    }
    scratch_.lsn = pr.lsn;
    ++result_.records_by_type[pr.type];
    if (options_.visit) {
      options_.visit(ReplayEvent{scratch_, seg.name, pr.offset, pr.size, nullptr, false});
    }
    return Apply(seg, pr.offset, scratch_, seg.number);
  }

  // Applies a record to the state and keeps the segment of each open transaction's first record.
  // A record the state refuses (a participant's state that its history does not allow) is
  // damage: replay stops there. Returns false then.
  bool Apply(const SegmentInput& seg, uint64_t offset, const LogRecord& record, uint64_t segment) {
    Result<LogStateChange> change = ApplyRecord(record, &result_.state);
    if (!change.ok()) {
      Fail(seg, offset, Code::kCorruption,
           "record of LSN " + std::to_string(record.lsn) +
               " does not follow from the state before it: " + change.status().message());
      return false;
    }
    std::unordered_map<Xid, uint64_t>* origins = nullptr;
    switch (change->set) {
      case LogStateChange::Set::kNone:
        return true;
      case LogStateChange::Set::kOpenDecisions:
        origins = &result_.decision_origin;
        break;
      case LogStateChange::Set::kOpenHeuristics:
        origins = &result_.heuristic_origin;
        break;
      case LogStateChange::Set::kOpenParticipants:
        origins = &result_.participant_origin;
        break;
      case LogStateChange::Set::kOpenTcc:
        origins = &result_.tcc_origin;
        break;
    }
    // A transaction carried by a checkpoint keeps the older segment it was first written in.
    if (change->opened) origins->try_emplace(record.xid, segment);
    if (change->closed) origins->erase(record.xid);
    return true;
  }

  bool ApplyCheckpoint(const SegmentInput& seg, const PhysicalRecord& pr, bool* started,
                       bool* done) {
    int64_t ts;
    bool last;
    Status s = DecodeCheckpointPayload(pr.payload, &ts, &last, &entries_);
    if (!s.ok()) {
      Fail(seg, pr.offset, Code::kCorruption, "checkpoint does not parse: " + s.message());
      return false;
    }
    ++result_.records_by_type[pr.type];
    if (!*started) {
      // The checkpoint is the whole truth as of the segment's start: what older segments said
      // is replaced (they may be partly deleted already).
      result_.state.open_decisions.clear();
      result_.state.open_heuristics.clear();
      result_.state.open_participants.clear();
      result_.state.open_tcc.clear();
      *started = true;
    }
    checkpoint_records_.clear();
    for (const CheckpointEntry& e : entries_) {
      LogRecord rec;
      s = DecodePayload(e.type, e.payload, &rec);
      if (!s.ok() || e.lsn >= pr.lsn) {
        Fail(seg, pr.offset, Code::kCorruption,
             "checkpoint entry does not parse: " +
                 (s.ok() ? "LSN " + std::to_string(e.lsn) + " not before the checkpoint"
                         : s.message()));
        return false;
      }
      rec.lsn = e.lsn;
      // An entry is the record it carries: it applies as that record.
      if (!Apply(seg, pr.offset, rec, seg.number)) return false;
      if (options_.visit) checkpoint_records_.push_back(std::move(rec));
    }
    if (options_.visit) {
      LogRecord cp;
      cp.type = RecordType::kCheckpoint;
      cp.lsn = pr.lsn;
      cp.timestamp_us = ts;
      options_.visit(ReplayEvent{cp, seg.name, pr.offset, pr.size, &checkpoint_records_, false});
    }
    if (last) {
      *done = true;
      const LogState& state = result_.state;
      std::erase_if(result_.decision_origin,
                    [&](const auto& kv) { return !state.open_decisions.contains(kv.first); });
      std::erase_if(result_.heuristic_origin,
                    [&](const auto& kv) { return !state.open_heuristics.contains(kv.first); });
      std::erase_if(result_.participant_origin,
                    [&](const auto& kv) { return !state.open_participants.contains(kv.first); });
      std::erase_if(result_.tcc_origin,
                    [&](const auto& kv) { return !state.open_tcc.contains(kv.first); });
    }
    return true;
  }

  const std::vector<SegmentInput>& segments_;
  const ReplayOptions& options_;
  ReplayResult result_;
  uint64_t last_lsn_ = 0;
  std::optional<uint32_t> node_id_;
  LogRecord scratch_;
  std::vector<CheckpointEntry> entries_;
  std::vector<LogRecord> checkpoint_records_;
};

}  // namespace

std::string JoinPath(const std::string& dir, std::string_view name) {
  std::string path = dir;
  if (!path.empty() && path.back() != '/') path += '/';
  path += name;
  return path;
}

ReplayResult ReplaySegments(const std::vector<SegmentInput>& segments,
                            const ReplayOptions& options) {
  return Replayer(segments, options).Run();
}

Result<DirListing> ListLogDir(Env* env, const std::string& dir) {
  Result<std::vector<std::string>> names = env->ListDir(dir);
  if (!names.ok()) return names.status();
  DirListing listing;
  for (const std::string& name : *names) {
    uint64_t number;
    if (ParseSegmentFileName(name, &number)) {
      listing.segments.push_back(number);
    } else if (name.size() > kTempSuffix.size() &&
               name.compare(name.size() - kTempSuffix.size(), kTempSuffix.size(), kTempSuffix) ==
                   0 &&
               ParseSegmentFileName(name.substr(0, name.size() - kTempSuffix.size()), &number)) {
      listing.temp_files.push_back(name);
    } else if (name == kLockFileName) {
      listing.has_lock_file = true;
    }
  }
  std::sort(listing.segments.begin(), listing.segments.end());
  return listing;
}

ReplayResult ReplayDir(Env* env, const std::string& dir, const ReplayOptions& options,
                       std::vector<std::string>* storage) {
  Result<DirListing> listing = ListLogDir(env, dir);
  if (!listing.ok()) {
    ReplayResult r;
    r.status = listing.status();
    return r;
  }
  storage->clear();
  storage->reserve(listing->segments.size());
  std::vector<SegmentInput> inputs;
  for (uint64_t number : listing->segments) {
    std::string path = JoinPath(dir, SegmentFileName(number));
    std::string contents;
    Status s = env->ReadFile(path, &contents, kMaxSegmentFileSize);
    if (!s.ok()) {
      Result<FileInfo> info = env->Stat(path);
      if (info.ok() && !info->exists) continue;  // deleted by a rotation since the listing
      ReplayResult r;
      r.status = s;
      return r;
    }
    storage->push_back(std::move(contents));
    inputs.push_back(SegmentInput{path, number, storage->back()});
  }
  return ReplaySegments(inputs, options);
}

}  // namespace xa::internal
