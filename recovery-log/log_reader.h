// Replay of a decision log: reads the segments in order, checks every record, and rebuilds the
// state (open decisions, heuristics, participants and TCC transactions). Used by
// DecisionLog::Open, by Scan, by the xa-log tool and by the fuzzer (through ReplaySegments, which
// works on bytes in memory).
//
// Damage policy (see LogRecoveryMode in include/xa/decision_log.h):
//   - a record that does not check out at the very end of the newest segment, with no valid
//     record after it, and whose bytes show a write that stopped part-way
//     (SegmentReader::WriteStoppedAt), is a torn tail: an append that never completed, so never
//     acknowledged. kTolerateCorruptedTail reports it and replay ends before it;
//     kAbsoluteConsistency refuses. Such a record that is complete in length was written whole
//     and may have been acknowledged: it is damage, under every mode.
//   - anything else (bad record followed by a valid one, damage in an older segment, a bad file
//     header, an LSN out of order, a segment without its checkpoint) is damage in the middle of
//     the log: replay stops with kCorruption naming the file and offset, and the state is marked
//     damaged, so recovery may not presume abort.
// Every damaged region is also passed to the LogReporter, whatever the mode.

#ifndef XA_RECOVERY_LOG_LOG_READER_H_
#define XA_RECOVERY_LOG_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recovery-log/log_format.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa::internal {

struct SegmentInput {
  std::string name;  // file name (for messages)
  uint64_t number = 0;
  std::string_view contents;
};

struct SegmentSummary {
  std::string name;
  uint64_t number = 0;
  SegmentHeader header;
  uint64_t file_size = 0;
  uint64_t valid_size = 0;  // up to the end of the last good record
  uint64_t records = 0;
  uint64_t first_lsn = 0, last_lsn = 0;  // 0 when the segment holds no record
  bool torn_tail = false;
};

// What a visitor sees: each record as read, with where it lies. For a checkpoint part,
// `record` has type kCheckpoint, lsn and timestamp only, and `checkpoint_entries` its contents.
struct ReplayEvent {
  const LogRecord& record;
  std::string_view segment;
  uint64_t offset;
  uint64_t size;
  const std::vector<LogRecord>* checkpoint_entries;  // only for checkpoints
  bool ignorable_skipped;  // an unknown record with the ignorable bit, skipped
};

struct ReplayOptions {
  LogRecoveryMode mode = LogRecoveryMode::kTolerateCorruptedTail;
  std::optional<uint32_t> expected_node_id;
  LogReporter* reporter = nullptr;
  std::function<void(const ReplayEvent&)> visit;  // optional
};

struct ReplayResult {
  Status status;  // first error; the state is what was read before it
  LogState state;
  // For each open decision, heuristic, participant or TCC transaction: the segment that holds its
  // first record (the segment must be kept until the transaction ends).
  std::unordered_map<Xid, uint64_t> decision_origin, heuristic_origin, participant_origin,
      tcc_origin;
  std::vector<SegmentSummary> segments;
  uint64_t max_epoch = 0;
  uint64_t records = 0;
  uint64_t ignorable_skipped = 0;
  // index = RecordType value (0 unused; every known type is below the ignorable bit)
  uint64_t records_by_type[kRecordTypeIgnorableBit] = {};
};

// Replays segments held in memory, in the order given (ascending number).
ReplayResult ReplaySegments(const std::vector<SegmentInput>& segments,
                            const ReplayOptions& options);

// Lists `dir`: segment numbers (ascending) and leftover temp files.
struct DirListing {
  std::vector<uint64_t> segments;
  std::vector<std::string> temp_files;
  bool has_lock_file = false;
};
Result<DirListing> ListLogDir(Env* env, const std::string& dir);

// Reads every segment of `dir` through `env` and replays them. `storage` keeps the file
// contents alive for the caller (events point into them). Takes no lock and writes nothing.
// Segments that vanish while being listed (deleted by a rotation of a live log) are skipped.
ReplayResult ReplayDir(Env* env, const std::string& dir, const ReplayOptions& options,
                       std::vector<std::string>* storage);

std::string JoinPath(const std::string& dir, std::string_view name);

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_LOG_READER_H_
