// The file-backed DecisionLog: segments in a directory (format in log_format.h), group commit,
// rotation with checkpoints, and the crash-safe steps between them.
//
// Group commit. Appenders encode their payload on their own thread, then queue under mu_. The
// first appender to find no leader becomes the leader: it takes every queued record (up to
// group_commit_max_records), releases mu_, assigns LSNs, writes the batch with one write() and
// makes it durable with one fdatasync(). Meanwhile new appenders queue behind it without
// waiting for mu_ longer than it takes to link a node. When the batch is durable the leader
// applies it to the state, hands leadership to the first queued appender (waking it first, so
// the next fdatasync starts as early as possible) and then wakes its followers, each on its own
// wake event (src/base/wake_event.h: no spinning, no thundering herd on a shared condition
// variable), through a tree in which every woken follower wakes two more (WakeChildren). A
// leader that finds fewer records queued than its previous batch carried first waits a little
// for the rest (the adaptive gather, Gather()).
// Only the active leader touches the file, next_lsn_ and write_buf_; leadership passes under mu_.
//
// Lazy records (kEnd only, see DecisionLog::AppendLazy) never wait. They apply to the state at
// once and join a list of pending lazies under mu_. With no leader active, the lazy appender
// takes the leadership and writes them itself, without an fdatasync; otherwise the active
// leader writes them, in its next batch or, when nobody else is queued, before it gives up the
// leadership. The next durable batch's fdatasync makes them durable, and so does rotation or
// closing the log.
//
// Failure. If a write or an fdatasync fails, the log is failed for good: the batch's appenders
// and every later Append() get kLogFailed. The fdatasync is never retried (on Linux a failed
// fsync may have dropped the dirty pages and cleared the error, so a retry can "succeed"
// without the data). The failed batch may or may not be on disk: the process must restart and
// let recovery read the log.
//
// Rotation. After a batch, once the current segment holds more than segment_size_bytes of
// records beyond its checkpoint, the leader starts segment n+1: it writes the header and a
// checkpoint (the open decisions, heuristics, participants and TCC transactions) to
// segment-<n+1>.xalog.tmp, fdatasyncs it, renames it into place and fsyncs the directory. Only
// then does it switch to the new file and delete the older segments that no open transaction
// needs (the segment of each open transaction's first record is kept until its end record). A
// crash at any step leaves either the old segments alone (the .tmp is deleted at the next open)
// or the old segments plus a complete new one.
//
// Open. Locks the directory, replays every segment, truncates a torn tail of the newest one
// (kTolerateCorruptedTail; never a damaged record complete in length, which may have been
// acknowledged) and starts a new segment with a checkpoint, so a log that was open is never
// appended to again; the epoch in the new segment's header counts the opens.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "recovery-log/log_state.h"
#include "recovery-log/record_codec.h"
#include "src/base/logging.h"
#include "src/testing/crash_points.h"
#include "src/testing/sync_points.h"
#include "src/base/wake_event.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa {
namespace internal {
namespace {

constexpr uint64_t kMinSegmentSize = 1024;
constexpr uint64_t kMaxPreallocation = 64ull << 20;

// An open participant (LogState::open_participants) as the records whose replay, in order,
// rebuilds it: its Wait (when it had one), a PreCommit when it is in PRE, its Decision when
// decided (with coordinator_knows_outcome and branch_finished as the open state holds them);
// each with the LSN and
// timestamp the open state holds.
std::vector<LogRecord> RecordsRebuildingParticipant(const LogRecord& open) {
  std::vector<LogRecord> records;
  auto as = [&](RecordType type) {
    LogRecord r = open;
    r.type = type;
    if (type != RecordType::kParticipantDecision) {
      r.outcome = Outcome::kUnknown;
      r.coordinator_knows_outcome = false;
      r.branch_finished = false;
    }
    return r;
  };
  // A participant that had a Wait holds its list (never empty: its own number is in it).
  if (!open.participants.empty()) records.push_back(as(RecordType::kParticipantWait));
  if (open.type != RecordType::kParticipantWait) records.push_back(as(open.type));
  return records;
}

class LoggingReporter final : public LogReporter {
 public:
  void Corruption(const std::string& file, uint64_t offset, uint64_t bytes,
                  const Status& reason) override {
    XA_LOG(kWarning, "log") << "damage in " << file << " at offset " << offset << " (" << bytes
                            << " bytes to the end of the file): " << reason.ToString();
  }
};

std::string ParentDir(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  size_t slash = d.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return d.substr(0, slash);
}

std::string ModeString(uint32_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode);
  return buf;
}

// The log holds the only durable trace of commit decisions: refuse a directory or file that
// someone else could replace or rewrite.
Status CheckOwnedAndPrivate(const std::string& path, const FileInfo& info, bool want_dir) {
  if (info.is_symlink) {
    return Status(Code::kConfig, path + " is a symbolic link; the decision log refuses to follow "
                                        "links (point LogOptions::dir at the real directory)");
  }
  if (want_dir ? !info.is_directory : !info.is_regular) {
    return Status(Code::kConfig,
                  path + (want_dir ? " is not a directory"
                                   : " is not a regular file (a FIFO, socket, device or "
                                     "directory under a log file's name); move it out of the log "
                                     "directory"));
  }
  if (info.owner_uid != static_cast<uint32_t>(::geteuid())) {
    return Status(Code::kConfig, path + " is owned by uid " + std::to_string(info.owner_uid) +
                                     ", not by this process (uid " +
                                     std::to_string(::geteuid()) +
                                     "); run the transaction manager as the log's owner");
  }
  if ((info.mode & 022) != 0) {
    return Status(Code::kConfig,
                  path + " is writable by group or others (mode " + ModeString(info.mode) +
                      "); the decision log must be private: chmod " + (want_dir ? "700 " : "600 ") +
                      path);
  }
  return Status::Ok();
}

// Whether `dir` holds a log: a directory with at least one segment. Reads the listing only.
Status CheckLogExists(Env* env, const std::string& dir) {
  Result<FileInfo> info = env->Stat(dir);
  if (!info.ok()) return info.status();
  const std::string hint =
      ": check the path (log_dir, LogOptions::dir). A log is created only by a process that "
      "asks for it (LogOptions::create_if_missing, the default of DecisionLog::Open); recovery "
      "and inspection never create one, since an empty log would presume abort for every "
      "prepared branch of the node";
  if (!info->exists) {
    return Status(Code::kConfig, "no decision log at " + dir + ": no such directory" + hint);
  }
  if (info->is_symlink) {
    return Status(Code::kConfig, dir + " is a symbolic link; the decision log refuses to follow "
                                       "links (use the real directory)");
  }
  if (!info->is_directory) {
    return Status(Code::kConfig, "no decision log at " + dir + ": not a directory" + hint);
  }
  Result<DirListing> listing = ListLogDir(env, dir);
  if (!listing.ok()) return listing.status();
  if (listing->segments.empty()) {
    return Status(Code::kConfig, "no decision log at " + dir +
                                     ": the directory holds no segment (segment-*.xalog)" + hint);
  }
  return Status::Ok();
}

Status PrepareDir(Env* env, const LogOptions& options) {
  Result<FileInfo> info = env->Stat(options.dir);
  if (!info.ok()) return info.status();
  if (!info->exists && options.create_if_missing) {
    XA_RETURN_IF_ERROR(env->CreateDir(options.dir));
    return env->SyncDir(ParentDir(options.dir));
  }
  if (!options.create_if_missing) XA_RETURN_IF_ERROR(CheckLogExists(env, options.dir));
  return CheckOwnedAndPrivate(options.dir, *info, /*want_dir=*/true);
}

// Scan() of both the writer and the read-only view: the records as on disk, read without a lock.
Status ScanLogDir(Env* env, const LogOptions& options,
                  const std::function<void(const LogRecord&)>& visit) {
  ReplayOptions ro;
  ro.mode = LogRecoveryMode::kTolerateCorruptedTail;  // an append in flight looks torn
  ro.expected_node_id = options.node_id;
  ro.visit = [&](const ReplayEvent& e) {
    if (e.record.type != RecordType::kCheckpoint && !e.ignorable_skipped) visit(e.record);
  };
  std::vector<std::string> storage;
  return ReplayDir(env, options.dir, ro, &storage).status;
}

// DecisionLog::OpenReadOnly: a replayed state, and no way to write.
class ReadOnlyDecisionLog final : public DecisionLog {
 public:
  ReadOnlyDecisionLog(const LogOptions& options, Env* env, LogState state)
      : options_(options), env_(env), state_(std::move(state)) {
    options_.env = env;
  }
  Result<uint64_t> Append(const LogRecord&) override { return ReadOnly(); }
  Status AppendLazy(const LogRecord&) override { return ReadOnly(); }
  LogState State() const override { return state_; }
  Status Scan(const std::function<void(const LogRecord&)>& visit) const override {
    return ScanLogDir(env_, options_, visit);
  }
  const LogOptions& options() const noexcept override { return options_; }

 private:
  Status ReadOnly() const {
    return Status(Code::kNotSupported, "decision log " + options_.dir +
                                           " is open read-only (DecisionLog::OpenReadOnly): "
                                           "appends need DecisionLog::Open");
  }
  LogOptions options_;
  Env* const env_;
  const LogState state_;
};

class FileDecisionLog final : public DecisionLog {
 public:
  FileDecisionLog(const LogOptions& options, Env* env, std::unique_ptr<FileLock> lock)
      : options_(options), env_(env), lock_(std::move(lock)) {
    options_.env = env;
  }

  ~FileDecisionLog() override {
    // The caller guarantees no Append() is running (see DecisionLog). Everything acknowledged as
    // durable is; lazy records written since the last fdatasync are made durable here.
    if (file_) {
      if (failed_.ok() && !pending_lazy_.empty()) {
        write_buf_.clear();
        AppendPendingLazy(&write_buf_);
        if (file_->Append(write_buf_).ok()) unsynced_ = true;
      }
      if (unsynced_ && failed_.ok()) {
        Status s = file_->Sync();
        if (!s.ok()) {
          XA_LOG(kWarning, "log") << "syncing lazy records at close: " << s.ToString();
        }
      }
      file_->Close().IgnoreError();
    }
  }

  // Adopts the replayed state and starts a fresh segment.
  Status Start(ReplayResult replay, const std::vector<uint64_t>& existing_segments) {
    state_ = std::move(replay.state);
    for (uint64_t number : existing_segments) segment_refs_[number] = 0;
    decision_origin_ = std::move(replay.decision_origin);
    heuristic_origin_ = std::move(replay.heuristic_origin);
    participant_origin_ = std::move(replay.participant_origin);
    tcc_origin_ = std::move(replay.tcc_origin);
    for (const auto& [xid, seg] : decision_origin_) ++segment_refs_[seg];
    for (const auto& [xid, seg] : heuristic_origin_) ++segment_refs_[seg];
    for (const auto& [xid, seg] : participant_origin_) ++segment_refs_[seg];
    for (const auto& [xid, seg] : tcc_origin_) ++segment_refs_[seg];
    next_lsn_ = state_.last_lsn + 1;
    epoch_ = replay.max_epoch + 1;
    uint64_t number = existing_segments.empty() ? 1 : existing_segments.back() + 1;
    return StartSegment(number);
  }

  using DecisionLog::Append;

  Status AppendLazy(const LogRecord& record) override {
    if (record.type != RecordType::kEnd && record.type != RecordType::kParticipantDone) {
      return Status(Code::kInval, "AppendLazy: only end and participant-done records may be "
                                  "appended lazily; a record of type " +
                                      std::to_string(static_cast<int>(record.type)) +
                                      " must be durable before Append returns");
    }
    LazyRecord lazy;
    lazy.type = record.type;
    LogRecord stamped = record;
    stamped.timestamp_us = env_->NowMicros();
    XA_RETURN_IF_ERROR(EncodePayload(stamped, &lazy.payload));
    XA_RETURN_IF_ERROR(DecodePayload(stamped.type, lazy.payload, &stamped));  // as replay reads it
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failed_.ok()) return failed_;
      if (judged_in_flight_.contains(stamped.xid)) {
        // Lazy records are written before the batch that is queued now: this one would land
        // before the participant's (or TCC transaction's) earlier record and replay would reopen
        // it.
        return Status(Code::kInval, "AppendLazy: a record of " + stamped.xid.ToString() +
                                        " (a participant or a TCC transaction) is still being "
                                        "appended; append this one after that Append returned");
      }
      if (IsParticipantRecordType(stamped.type)) {
        XA_RETURN_IF_ERROR(JudgedAfter(stamped).status());
      }
      ApplyLocked(std::move(stamped));
      pending_lazy_.push_back(std::move(lazy));
      if (leader_active_) return Status::Ok();  // the active leader writes it
      leader_active_ = true;
    }
    WritePendingLazy();
    HandOff();
    return Status::Ok();
  }

  Result<uint64_t> Append(const LogRecord& record) override {
    switch (record.type) {
      case RecordType::kCommitDecision:
      case RecordType::kPreCommit:
      case RecordType::kEnd:
      case RecordType::kHeuristic:
      case RecordType::kHeuristicCleared:
      case RecordType::kParticipantWait:
      case RecordType::kParticipantPreCommit:
      case RecordType::kParticipantDecision:
      case RecordType::kParticipantDone:
      case RecordType::kTccTry:
      case RecordType::kTccConfirm:
        break;
      default:
        return Status(Code::kInval, "Append: record type " +
                                        std::to_string(static_cast<int>(record.type)) +
                                        " cannot be appended");
    }
    Waiter w;
    w.record = record;
    w.record.timestamp_us = env_->NowMicros();
    // A per-thread buffer: no allocation per append once it has grown.
    thread_local std::string payload;
    payload.clear();
    XA_RETURN_IF_ERROR(EncodePayload(w.record, &payload));
    // The state holds each record as replay will read it back, so that it is the same before
    // and after a restart: fields that the record's type does not persist (a heuristic's
    // protocol, a decision's reason) are reset.
    XA_RETURN_IF_ERROR(DecodePayload(w.record.type, payload, &w.record));
    w.payload = &payload;

    bool leader = false;
    WakeEvent* gathered = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!failed_.ok()) return failed_;
      // Judged and queued under one hold of mu_: the queue's order is the order judged in.
      if (MustBeJudged(w.record)) {
        XA_RETURN_IF_ERROR(ReserveJudged(w.record));
        w.judged = true;
      }
      if (queue_tail_ != nullptr) {
        queue_tail_->next = &w;
      } else {
        queue_head_ = &w;
      }
      queue_tail_ = &w;
      ++queued_;
      if (!leader_active_) {
        leader_active_ = true;
        leader = true;
      } else if (gatherer_ != nullptr && queued_ >= gather_target_) {
        gathered = gatherer_;  // this append completes the leader's gather
        gatherer_ = nullptr;
      }
    }
    if (gathered != nullptr) gathered->Signal();
    XA_TEST_SYNC_POINT(kLogAppendQueued);
    // Once queued, w belongs to the leaders until its wake event is signalled; only then is
    // w.done read here. Woken with done == false, it has been handed the leadership, and a
    // leader's own record is always in the batch it writes.
    if (!leader) w.wake.Wait();
    if (w.done) {
      WakeChildren(w);  // a follower passes the wake-up on before it returns
    } else {
      LeadBatch();
    }
    assert(w.done);
    if (!w.status.ok()) return w.status;
    return w.lsn;
  }

  LogState State() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }

  Status Scan(const std::function<void(const LogRecord&)>& visit) const override {
    return ScanLogDir(env_, options_, visit);
  }

  const LogOptions& options() const noexcept override { return options_; }

  LogSyncStats SyncStats() const override {
    return LogSyncStats{syncs_.load(std::memory_order_relaxed),
                        synced_records_.load(std::memory_order_relaxed)};
  }

 private:
  struct Waiter {
    LogRecord record;                  // applied to the state once durable
    const std::string* payload = nullptr;
    uint64_t lsn = 0;
    Status status;
    // Counted in judged_in_flight_ (ReserveJudged) until it is applied or fails.
    bool judged = false;
    bool done = false;  // record durable (status ok) or failed
    WakeEvent wake;  // no spinning: see wake_event.h
    Waiter* next = nullptr;
    // The followers this one wakes once its batch is done (WakeChildren); set with done.
    Waiter* children[2] = {nullptr, nullptr};
  };

  // The wake-ups of a batch form a binary tree over the batch's order: batch[i] wakes batch[2i+1]
  // and batch[2i+2], the leader (batch[0]) first. Each wake-up is a system call that costs the
  // waker several microseconds (about a fifth of all CPU at 64 appenders, when the leader made
  // them all); in a tree they run on every core at once and the last follower wakes after about
  // log2(n) of them instead of n. A waiter stays alive until it is woken, and a parent wakes its
  // children before it returns, so every pointer here is to a live waiter.
  static void WakeChildren(const Waiter& w) {
    Waiter* children[2] = {w.children[0], w.children[1]};  // w may be gone after a signal
    for (Waiter* child : children) {
      if (child != nullptr) child->wake.Signal();
    }
  }

  // Runs one batch as the leader; the caller's own record is the first of it.
  void LeadBatch() {
    if (options_.group_commit_max_delay_us > 0) {
      // On the Env's clock, so a test decides who arrives within the delay.
      env_->clock()->SleepFor(std::chrono::microseconds(options_.group_commit_max_delay_us));
    } else if (options_.group_commit_adaptive_gather) {
      Gather();
    }
    thread_local std::vector<Waiter*> batch;
    batch.clear();
    Status failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t limit = BatchLimit();
      while (queue_head_ != nullptr && batch.size() < limit) {
        batch.push_back(queue_head_);
        queue_head_ = queue_head_->next;
      }
      if (queue_head_ == nullptr) queue_tail_ = nullptr;
      queued_ -= batch.size();
      failed = failed_;
      write_buf_.clear();
      if (failed.ok()) AppendPendingLazy(&write_buf_);  // written before the batch's records
    }

    Status s = failed;
    if (s.ok()) {
      for (Waiter* w : batch) {
        w->lsn = next_lsn_++;
        AppendPhysicalRecord(&write_buf_, static_cast<uint8_t>(w->record.type), w->lsn,
                             *w->payload);
      }
      s = file_->Append(write_buf_);
      if (s.ok()) {
        for (Waiter* w : batch) {
          if (w->record.type == RecordType::kCommitDecision) {
            XA_CRASH_POINT(kAfterDecisionWrite);  // C5: written, not yet fdatasync'd
            break;
          }
        }
        auto sync_start = std::chrono::steady_clock::now();
        s = file_->Sync();
        last_sync_ = std::chrono::steady_clock::now() - sync_start;
        if (s.ok()) {
          unsynced_ = false;
          syncs_.fetch_add(1, std::memory_order_relaxed);
          synced_records_.fetch_add(batch.size(), std::memory_order_relaxed);
        }
      }
      if (!s.ok()) s = WriteFailed(s);
    }

    bool rotate = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (s.ok()) {
        for (Waiter* w : batch) {
          w->record.lsn = w->lsn;
          // Both under mu_, so nobody sees the release before the apply; releasing first spares
          // every other record's append a copy of its Xid.
          if (w->judged) ReleaseJudged(w->record.xid);
          ApplyLocked(std::move(w->record));
        }
        state_.last_lsn = batch.back()->lsn;
        bytes_since_checkpoint_ += write_buf_.size();
        rotate = bytes_since_checkpoint_ > options_.segment_size_bytes;
      } else {
        if (failed_.ok()) {
          failed_ = s;
          XA_LOG(kError, "log") << s.message();
        }
        for (Waiter* w : batch) {
          if (w->judged) ReleaseJudged(w->record.xid);
        }
      }
      // Everyone who waited at the end of this batch: its own appenders and those queued
      // behind it. What the next gather waits for (capped at a batch's limit).
      expected_appenders_ = std::min(batch.size() + queued_, BatchLimit());
      for (size_t i = 0; i < batch.size(); ++i) {
        batch[i]->status = s;
        batch[i]->done = true;
        for (size_t k = 0; k < 2; ++k) {
          size_t child = 2 * i + 1 + k;
          batch[i]->children[k] = child < batch.size() ? batch[child] : nullptr;
        }
      }
    }
    Waiter* self = batch.front();
    // The next leader first, so that its fdatasync starts early; lazy records only after the
    // followers' wake-ups have started, since nobody waits for them.
    bool passed = !rotate && PassLeadership();
    WakeChildren(*self);
    if (rotate) Rotate();
    if (!passed) HandOff();
  }

  size_t BatchLimit() const {
    return options_.group_commit_max_records == 0 ? SIZE_MAX : options_.group_commit_max_records;
  }

  // The adaptive gather (LogOptions::group_commit_adaptive_gather). The appenders of a batch
  // come back one by one after it: woken in turn, each returns, does its work and appends
  // again. The first of them to append finds no leader, leads, and would sync almost alone
  // while the rest queue behind its fdatasync; batches then alternate between a few records and
  // all the others (about half the appenders per fdatasync on average: 30.7 of 64 in the
  // decision-log bench). So a leader that finds fewer records queued than there were appenders
  // waiting when the last batch ended (its own and those queued behind it) waits for them:
  // until as many are queued (the append that completes the count wakes it) or for half the
  // last fdatasync's duration, whichever comes first. Half, so that a gather that does not fill
  // up costs less than the fdatasync it saves; counting those queued behind the last batch, so
  // that batches split in two by a late appender join up again. Real time, not the Env's
  // clock: it changes how records are batched, never what is written or what an append returns.
  void Gather() {
    WakeEvent arrived;
    std::chrono::nanoseconds bound;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (queued_ >= expected_appenders_ || last_sync_ <= std::chrono::nanoseconds::zero()) {
        return;
      }
      gatherer_ = &arrived;
      gather_target_ = expected_appenders_;
      bound = last_sync_ / 2;
    }
    if (arrived.WaitFor(bound)) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (gatherer_ == &arrived) {
        gatherer_ = nullptr;
        return;
      }
    }
    arrived.Wait();  // an appender took the event and is about to signal it: it must outlive that
  }

  // Wakes the first queued appender to lead the next batch, or gives the leadership up when
  // nothing waits at all. False: no appender is queued but lazy records are pending, and the
  // caller is still the leader.
  bool PassLeadership() {
    Waiter* next = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      next = queue_head_;
      if (next == nullptr) {
        if (!pending_lazy_.empty() && failed_.ok()) return false;
        leader_active_ = false;
        return true;
      }
    }
    next->wake.Signal();
    return true;
  }

  // Passes the leadership to the first queued appender. With nobody queued it writes the lazy
  // records that arrived meanwhile (two rounds at most, so that a stream of lazy appends cannot
  // hold this thread: what arrives later is written by the next append), then gives it up.
  void HandOff() {
    for (int round = 0;; ++round) {
      if (PassLeadership()) return;
      if (round == 2) {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_head_ == nullptr) {
          leader_active_ = false;
          return;
        }
        continue;  // someone queued meanwhile: PassLeadership wakes it
      }
      WritePendingLazy();
    }
  }

  // Leader only: writes the pending lazy records without an fdatasync (rotating if the segment
  // is full).
  void WritePendingLazy() {
    write_buf_.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (failed_.ok()) AppendPendingLazy(&write_buf_);
    }
    if (write_buf_.empty()) return;
    Status s = file_->Append(write_buf_);
    bool rotate = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (s.ok()) {
        unsynced_ = true;
        state_.last_lsn = next_lsn_ - 1;
        bytes_since_checkpoint_ += write_buf_.size();
        rotate = bytes_since_checkpoint_ > options_.segment_size_bytes;
      } else if (failed_.ok()) {
        failed_ = WriteFailed(s);
        XA_LOG(kError, "log") << failed_.message();
      }
    }
    if (rotate) Rotate();
  }

  // The error that fails the log for good after a failed write or fdatasync of a batch.
  Status WriteFailed(const Status& cause) const {
    return Status(Code::kLogFailed,
                  "decision log " + options_.dir + " failed writing " +
                      SegmentFileName(current_segment_) + " and refuses all further appends: " +
                      cause.ToString() +
                      ". The records being written may or may not be durable; the fdatasync is "
                      "never retried. Restart the process and let recovery read the log");
  }

  // Leader only, under mu_: encodes the pending lazy records into `out` with the next LSNs.
  void AppendPendingLazy(std::string* out) {
    for (const LazyRecord& lazy : pending_lazy_) {
      AppendPhysicalRecord(out, static_cast<uint8_t>(lazy.type), next_lsn_++, lazy.payload);
    }
    pending_lazy_.clear();
  }

  // Under mu_: applies a record to the state and keeps the segment of each open transaction's
  // first record referenced until the transaction ends.
  void ApplyLocked(LogRecord&& rec) {
    Xid xid = rec.xid;
    Result<LogStateChange> change = ApplyRecord(std::move(rec), &state_);
    if (!change.ok()) {
      // Append judged the record against the same state (ReserveJudged): a bug. The record
      // is on disk and replay will refuse it too, so nothing more may be written.
      if (failed_.ok()) {
        failed_ = Status(Code::kInternal, "decision log " + options_.dir +
                                              ": a record Append accepted no longer applies (" +
                                              change.status().message() +
                                              "); refusing all further appends");
        XA_LOG(kError, "log") << failed_.message();
      }
      return;
    }
    std::unordered_map<Xid, uint64_t>* origins = nullptr;
    switch (change->set) {
      case LogStateChange::Set::kNone:
        return;
      case LogStateChange::Set::kOpenDecisions:
        origins = &decision_origin_;
        break;
      case LogStateChange::Set::kOpenHeuristics:
        origins = &heuristic_origin_;
        break;
      case LogStateChange::Set::kOpenParticipants:
        origins = &participant_origin_;
        break;
      case LogStateChange::Set::kOpenTcc:
        origins = &tcc_origin_;
        break;
    }
    if (change->opened && origins->try_emplace(xid, current_segment_).second) {
      ++segment_refs_[current_segment_];
    }
    if (change->closed) Unref(origins, xid);
  }

  // Under mu_: whether Append judges `record` before it is queued (ReserveJudged). The records
  // that ApplyRecord may refuse (a participant's, a TCC transaction's) are; so is an end record
  // of a TCC transaction that is open or has records in flight, so that a record judged after it
  // meets the transaction closed, as replay will.
  bool MustBeJudged(const LogRecord& record) const {
    if (IsParticipantRecordType(record.type) || IsTccRecordType(record.type)) return true;
    return record.type == RecordType::kEnd &&
           (judged_in_flight_.contains(record.xid) || state_.open_tcc.contains(record.xid));
  }

  // Under mu_: the open state of record.xid (as a participant or as a TCC transaction; a branch
  // Xid and a global one never meet) once `record` applies after everything accepted so far,
  // the records still in flight included; XAER_PROTO when the record does not apply: it is
  // refused before anything is written, so a bad record never poisons the log.
  Result<LogState> JudgedAfter(const LogRecord& record) const {
    LogState scratch;
    auto in_flight = judged_in_flight_.find(record.xid);
    if (in_flight != judged_in_flight_.end()) {
      if (const std::optional<LogRecord>& open = in_flight->second.state; open) {
        (IsTccRecordType(open->type) ? scratch.open_tcc : scratch.open_participants)
            .emplace(record.xid, *open);
      }
    } else {
      if (auto open = state_.open_participants.find(record.xid);
          open != state_.open_participants.end()) {
        scratch.open_participants.emplace(record.xid, open->second);
      }
      if (auto open = state_.open_tcc.find(record.xid); open != state_.open_tcc.end()) {
        scratch.open_tcc.emplace(record.xid, open->second);
      }
    }
    Result<LogStateChange> change = ApplyRecord(record, &scratch);
    if (!change.ok()) {
      return Status(Code::kProto, "decision log " + options_.dir +
                                      ": Append refused: " + change.status().message());
    }
    return scratch;
  }

  // Under mu_, before a judged record is queued: judges it with JudgedAfter and counts it in
  // flight, with the state it leaves (the state applies a record only once it is durable).
  Status ReserveJudged(const LogRecord& record) {
    Result<LogState> scratch = JudgedAfter(record);
    if (!scratch.ok()) return scratch.status();
    InFlight& entry = judged_in_flight_[record.xid];
    ++entry.records;
    entry.state.reset();
    for (std::map<Xid, LogRecord>* open : {&scratch->open_participants, &scratch->open_tcc}) {
      auto after = open->find(record.xid);
      if (after != open->end()) entry.state = std::move(after->second);
    }
    return Status::Ok();
  }

  // Under mu_: a record counted by ReserveJudged is applied (or failed).
  void ReleaseJudged(const Xid& xid) {
    auto it = judged_in_flight_.find(xid);
    if (it != judged_in_flight_.end() && --it->second.records == 0) {
      judged_in_flight_.erase(it);
    }
  }

  void Unref(std::unordered_map<Xid, uint64_t>* origins, const Xid& xid) {
    auto it = origins->find(xid);
    if (it == origins->end()) return;
    auto seg = segment_refs_.find(it->second);
    if (seg != segment_refs_.end() && seg->second > 0) --seg->second;
    origins->erase(it);
  }

  // Leader only (or Open): writes segment `number` with its checkpoint, crash-safely, and makes
  // it the current segment.
  Status StartSegment(uint64_t number) {
    std::string contents;
    SegmentHeader h;
    h.node_id = options_.node_id;
    h.epoch = epoch_;
    h.segment_number = number;
    h.first_lsn = next_lsn_;
    EncodeSegmentHeader(h, &contents);

    // The checkpoint: every open decision and heuristic as originally logged, the records that
    // rebuild each open participant, and each open TCC transaction's newest record
    // (log_format.h), in LSN order, in parts.
    std::vector<std::vector<LogRecord>> groups;
    {
      std::lock_guard<std::mutex> lock(mu_);
      groups.reserve(state_.open_decisions.size() + state_.open_heuristics.size() +
                     state_.open_participants.size() + state_.open_tcc.size());
      for (const auto& [xid, rec] : state_.open_decisions) groups.push_back({rec});
      for (const auto& [xid, rec] : state_.open_heuristics) groups.push_back({rec});
      for (const auto& [xid, rec] : state_.open_tcc) groups.push_back({rec});
      for (const auto& [xid, rec] : state_.open_participants) {
        groups.push_back(RecordsRebuildingParticipant(rec));
      }
    }
    std::stable_sort(groups.begin(), groups.end(),
                     [](const auto& a, const auto& b) { return a.front().lsn < b.front().lsn; });
    std::vector<LogRecord> open;
    for (std::vector<LogRecord>& group : groups) {
      for (LogRecord& rec : group) open.push_back(std::move(rec));
    }
    std::vector<std::string> bodies(open.size());
    for (size_t i = 0; i < open.size(); ++i) {
      XA_RETURN_IF_ERROR(EncodePayload(open[i], &bodies[i]));
    }
    int64_t now = env_->NowMicros();
    size_t i = 0;
    do {
      std::vector<CheckpointEntry> part;
      size_t part_bytes = 0;
      while (i < open.size() && (part.empty() || part_bytes + bodies[i].size() + 32 <=
                                                     kCheckpointPartSize)) {
        part.push_back(CheckpointEntry{open[i].type, open[i].lsn, bodies[i]});
        part_bytes += bodies[i].size() + 32;
        ++i;
      }
      std::string payload;
      EncodeCheckpointPayload(now, i == open.size(), part, &payload);
      AppendPhysicalRecord(&contents, static_cast<uint8_t>(RecordType::kCheckpoint), next_lsn_++,
                           payload);
    } while (i < open.size());

    std::string path = JoinPath(options_.dir, SegmentFileName(number));
    std::string tmp = path + std::string(kTempSuffix);
    Result<std::unique_ptr<WritableFile>> file = env_->NewWritableFile(tmp);
    if (!file.ok()) return file.status();
    XA_CRASH_POINT(kRotateBeforeWrite);
    XA_RETURN_IF_ERROR((*file)->Append(contents));
    if (options_.preallocate_segments) {
      uint64_t size = contents.size() + std::min<uint64_t>(options_.segment_size_bytes,
                                                           kMaxPreallocation);
      Status s = (*file)->Preallocate(size);
      if (!s.ok()) {
        // Not fatal: appends extend the file as they would without it.
        XA_LOG(kWarning, "log") << "preallocating " << size << " bytes: " << s.ToString();
      }
    }
    XA_CRASH_POINT(kRotateBeforeSync);
    XA_RETURN_IF_ERROR((*file)->Sync());
    XA_CRASH_POINT(kRotateAfterSync);
    XA_RETURN_IF_ERROR(env_->Rename(tmp, path));
    XA_RETURN_IF_ERROR(env_->SyncDir(options_.dir));
    XA_CRASH_POINT(kRotateAfterRename);

    // The new segment is durable and complete: switch to it.
    if (file_) {
      Status s = file_->Close();
      if (!s.ok()) {
        XA_LOG(kWarning, "log") << "closing the previous segment: " << s.ToString();
      }
    }
    file_ = std::move(file).value();
    std::vector<uint64_t> obsolete;
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_.last_lsn = next_lsn_ - 1;
      current_segment_ = number;
      segment_refs_[number] += 0;
      bytes_since_checkpoint_ = 0;
      for (auto it = segment_refs_.begin(); it != segment_refs_.end();) {
        if (it->first != number && it->second == 0) {
          obsolete.push_back(it->first);
          it = segment_refs_.erase(it);
        } else {
          ++it;
        }
      }
    }
    // Every transaction of an obsolete segment has ended, or is carried by a checkpoint and
    // first written in a segment we keep: deleting it loses nothing, even if a crash
    // interrupts the deletions.
    for (uint64_t old : obsolete) {
      XA_CRASH_POINT(kBeforeSegmentDelete);
      Status s = env_->Delete(JoinPath(options_.dir, SegmentFileName(old)));
      if (!s.ok()) {
        XA_LOG(kWarning, "log") << "deleting an obsolete segment: " << s.ToString();
      }
    }
    if (!obsolete.empty()) {
      Status s = env_->SyncDir(options_.dir);
      if (!s.ok()) {
        XA_LOG(kWarning, "log") << "after deleting segments: " << s.ToString();
      }
    }
    return Status::Ok();
  }

  // Before a new segment: the newest segment in the directory is still ours. The directory
  // lock keeps a second owner out; this catches what a lock cannot (the directory replaced or
  // emptied under us, a log copied in by hand): any other writer starts a segment above the
  // newest it found, and a segment above ours means our epoch is no longer the newest.
  Status CheckStillOwner() {
    Result<DirListing> listing = ListLogDir(env_, options_.dir);
    if (!listing.ok()) return listing.status();
    uint64_t newest = listing->segments.empty() ? 0 : listing->segments.back();
    if (newest != current_segment_) {
      return Status(Code::kBusy,
                    "decision log " + options_.dir + ": the newest segment is " +
                        (newest == 0 ? std::string("missing") : SegmentFileName(newest)) +
                        ", not this process's " + SegmentFileName(current_segment_) +
                        " (epoch " + std::to_string(epoch_) +
                        "): another process has written or removed segments of this log");
    }
    return Status::Ok();
  }

  void Rotate() {
    // Lazy records at the end of the segment must be durable before a newer segment exists:
    // replay truncates a torn tail only in the newest segment.
    Status s = unsynced_ ? file_->Sync() : Status::Ok();
    if (s.ok()) s = CheckStillOwner();
    if (s.ok()) {
      unsynced_ = false;
      s = StartSegment(current_segment_ + 1);
    }
    if (s.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_.ok()) {
      failed_ = Status(Code::kLogFailed,
                       "decision log " + options_.dir +
                           " failed to start a new segment and refuses all further appends: " +
                           s.ToString() + ". Restart the process and let recovery read the log");
      XA_LOG(kError, "log") << failed_.message();
    }
  }

  LogOptions options_;
  Env* const env_;
  std::unique_ptr<FileLock> lock_;

  // Owned by the active leader (handed over under mu_).
  std::unique_ptr<WritableFile> file_;
  std::string write_buf_;
  // Lazy records have been written since the last fdatasync. Leader (or destructor) only.
  bool unsynced_ = false;
  struct LazyRecord {
    RecordType type = RecordType::kEnd;
    std::string payload;
  };
  std::vector<LazyRecord> pending_lazy_;  // applied to the state, not yet written; guarded by mu_
  uint64_t next_lsn_ = 1;
  uint64_t epoch_ = 1;

  mutable std::mutex mu_;
  std::atomic<uint64_t> syncs_{0}, synced_records_{0};  // SyncStats()
  Waiter* queue_head_ = nullptr;  // appenders not yet taken by a leader, in arrival order
  Waiter* queue_tail_ = nullptr;
  size_t queued_ = 0;  // appenders in the queue
  bool leader_active_ = false;
  // The adaptive gather (Gather()): the leader waiting for gather_target_ queued appenders, the
  // appenders waiting when the last batch ended, and the duration of the last fdatasync (leader
  // only).
  WakeEvent* gatherer_ = nullptr;
  size_t gather_target_ = 0;
  size_t expected_appenders_ = 0;
  std::chrono::nanoseconds last_sync_{0};
  Status failed_;
  // Open decisions and heuristics, last_lsn (the last record written) and the torn-tail report
  // of the replay at open (a damaged log never opens).
  LogState state_;
  std::unordered_map<Xid, uint64_t> decision_origin_, heuristic_origin_, participant_origin_,
      tcc_origin_;
  // Participants and TCC transactions with judged records queued or being written (not yet
  // applied to state_): their state once those are applied (nullopt: not open) and how many
  // there are. Guarded by mu_.
  struct InFlight {
    std::optional<LogRecord> state;
    uint32_t records = 0;
  };
  std::map<Xid, InFlight> judged_in_flight_;
  std::map<uint64_t, uint64_t> segment_refs_;  // retained segment -> open transactions it holds
  uint64_t current_segment_ = 0;
  uint64_t bytes_since_checkpoint_ = 0;
};

}  // namespace

Result<std::unique_ptr<DecisionLog>> OpenFileDecisionLog(const LogOptions& options) {
  if (options.dir.empty()) return Status(Code::kConfig, "LogOptions::dir is empty");
  if (options.segment_size_bytes < kMinSegmentSize) {
    return Status(Code::kConfig, "LogOptions::segment_size_bytes must be at least " +
                                     std::to_string(kMinSegmentSize));
  }
  if (options.segment_size_bytes > kMaxSegmentSizeBytes) {
    return Status(Code::kConfig, "LogOptions::segment_size_bytes must be at most " +
                                     std::to_string(kMaxSegmentSizeBytes) +
                                     " (readers refuse segment files above " +
                                     std::to_string(kMaxSegmentFileSize) + " bytes)");
  }
  Env* env = options.env != nullptr ? options.env : Env::Default();
  XA_RETURN_IF_ERROR(PrepareDir(env, options));
  std::string lock_path = JoinPath(options.dir, kLockFileName);
  Result<FileInfo> lock_info = env->Stat(lock_path);
  if (!lock_info.ok()) return lock_info.status();
  if (lock_info->exists) {
    XA_RETURN_IF_ERROR(CheckOwnedAndPrivate(lock_path, *lock_info, /*want_dir=*/false));
  }
  // The lock is the directory's own: LOCK only names the owner, and deleting it frees nothing.
  Result<std::unique_ptr<FileLock>> lock = env->LockDir(options.dir, lock_path);
  if (!lock.ok()) return lock.status();

  Result<DirListing> listing = ListLogDir(env, options.dir);
  if (!listing.ok()) return listing.status();
  for (const std::string& name : listing->temp_files) {
    // A segment whose creation a crash interrupted: it was never renamed into place.
    XA_LOG(kInfo, "log") << "deleting the unfinished segment " << name;
    XA_RETURN_IF_ERROR(env->Delete(JoinPath(options.dir, name)));
  }
  if (!listing->temp_files.empty()) XA_RETURN_IF_ERROR(env->SyncDir(options.dir));
  for (uint64_t number : listing->segments) {
    std::string path = JoinPath(options.dir, SegmentFileName(number));
    Result<FileInfo> info = env->Stat(path);
    if (!info.ok()) return info.status();
    XA_RETURN_IF_ERROR(CheckOwnedAndPrivate(path, *info, /*want_dir=*/false));
  }

  LoggingReporter logging_reporter;
  ReplayOptions ro;
  ro.mode = options.recovery_mode;
  ro.expected_node_id = options.node_id;
  ro.reporter = options.reporter != nullptr ? options.reporter : &logging_reporter;
  std::vector<std::string> storage;
  ReplayResult replay = ReplayDir(env, options.dir, ro, &storage);
  if (!replay.status.ok()) return replay.status;
  storage.clear();
  if (!replay.segments.empty() && replay.segments.back().torn_tail) {
    const SegmentSummary& last = replay.segments.back();
    XA_LOG(kWarning, "log") << "truncating " << last.name << " from " << last.file_size
                            << " to " << last.valid_size << " bytes (torn tail)";
    XA_RETURN_IF_ERROR(env->Truncate(last.name, last.valid_size));
  }
  std::vector<uint64_t> segments;
  for (const SegmentSummary& s : replay.segments) segments.push_back(s.number);

  uint64_t records = replay.records;
  auto log = std::make_unique<FileDecisionLog>(options, env, std::move(lock).value());
  XA_RETURN_IF_ERROR(log->Start(std::move(replay), segments));
  LogState state = log->State();
  XA_LOG(kInfo, "log") << "opened decision log " << options.dir << ": replayed " << records
                       << " records from " << segments.size() << " segment(s); "
                       << state.open_decisions.size() << " open decision(s), "
                       << state.open_heuristics.size() << " open heuristic(s), "
                       << state.open_participants.size() << " open participant(s), "
                       << state.open_tcc.size() << " open TCC transaction(s), last LSN "
                       << state.last_lsn;
  return std::unique_ptr<DecisionLog>(std::move(log));
}

Status CheckLogExists(const LogOptions& options) {
  if (options.dir.empty()) return Status(Code::kConfig, "LogOptions::dir is empty");
  return CheckLogExists(options.env != nullptr ? options.env : Env::Default(), options.dir);
}

Result<LogState> ReadLogState(const LogOptions& options) {
  if (options.dir.empty()) return Status(Code::kConfig, "LogOptions::dir is empty");
  Env* env = options.env != nullptr ? options.env : Env::Default();
  XA_RETURN_IF_ERROR(CheckLogExists(env, options.dir));
  LoggingReporter logging_reporter;
  ReplayOptions ro;
  ro.mode = options.recovery_mode;
  ro.expected_node_id = options.node_id;
  ro.reporter = options.reporter != nullptr ? options.reporter : &logging_reporter;
  std::vector<std::string> storage;
  ReplayResult replay = ReplayDir(env, options.dir, ro, &storage);
  if (!replay.status.ok() && !replay.state.damaged) return replay.status;
  return std::move(replay.state);
}

}  // namespace internal

namespace {

// "link/" and "link" name the same directory, but lstat("link/") follows the link: every entry
// point drops trailing slashes first, so the symlink check sees what the path names.
LogOptions WithCanonicalDir(const LogOptions& options) {
  LogOptions canonical = options;
  while (canonical.dir.size() > 1 && canonical.dir.back() == '/') canonical.dir.pop_back();
  return canonical;
}

}  // namespace

Result<std::unique_ptr<DecisionLog>> DecisionLog::Open(const LogOptions& options) {
  return internal::OpenFileDecisionLog(WithCanonicalDir(options));
}

Result<LogState> DecisionLog::ReadState(const LogOptions& options) {
  return internal::ReadLogState(WithCanonicalDir(options));
}

Result<std::unique_ptr<DecisionLog>> DecisionLog::OpenReadOnly(const LogOptions& raw_options) {
  LogOptions options = WithCanonicalDir(raw_options);
  Result<LogState> state = internal::ReadLogState(options);
  if (!state.ok()) return state.status();
  Env* env = options.env != nullptr ? options.env : Env::Default();
  return std::unique_ptr<DecisionLog>(
      new internal::ReadOnlyDecisionLog(options, env, std::move(state).value()));
}

Status DecisionLog::CheckExists(const LogOptions& options) {
  return internal::CheckLogExists(WithCanonicalDir(options));
}

}  // namespace xa
