// xa::DecisionLog: the durable write-ahead log of commit decisions.
//
// Presumed abort: only decisions to commit are logged; a transaction with no commit decision in
// the log is rolled back by recovery. So a commit decision must be durable (fdatasync'd) before
// any phase-2 call, and Append() returns only once it is.
//
// The on-disk format is defined and documented in recovery-log/log_format.h and
// recovery-log/log_format.md.
//
// Thread safety: a DecisionLog is thread-safe; many threads may Append() at once, and their
// records share fdatasyncs (group commit).

#ifndef XA_DECISION_LOG_H_
#define XA_DECISION_LOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa {

class Env;

// Record types. Persisted: fixed numbers, never reordered or reused. Bit 7 (0x80) marks a type
// that a reader which does not know it may skip (forward compatibility).
enum class RecordType : uint8_t {
  kCommitDecision = 1,    // 2PC/3PC: every branch voted commit; the transaction commits
  kPreCommit = 2,         // 3PC: the coordinator entered PreCommit
  kEnd = 3,               // every branch of the transaction is finished; forget it
  kHeuristic = 4,         // a heuristic outcome, or an operator's forced decision, with a reason
  kHeuristicCleared = 5,  // an operator acknowledged a heuristic outcome
  kCheckpoint = 6,        // segment header: the transactions still open when the segment began
  // The 3PC participant's own states, written by an agent (xa-agent) in its own log; `xid` is the
  // participant's branch Xid (global.WithBranch(participant number)), never the global one.
  kParticipantWait = 32,       // voted yes: the branch is ended and prepared in its database
  kParticipantPreCommit = 33,  // pre-committed: every participant voted yes
  kParticipantDecision = 34,   // decided: outcome kCommitted or kRolledBack
  kParticipantDone = 35,       // the branch is finished and every peer heard the outcome: forget it
  // TCC (xa/tcc.h), written by the TCC coordinator before its first Try and at its decision;
  // `xid` is the global Xid. Presumed cancel: an open kTccTry is cancelled by recovery. A saga
  // (xa/saga.h) uses the same two types with protocol kSaga: its steps before the first action
  // (compensated unless completed), and its completion.
  kTccTry = 48,      // the participants and their payloads, before any Try runs
  kTccConfirm = 49,  // every Try succeeded: the transaction confirms (the decision)
};
// Bit 7 of a record type: a reader that does not know a type with this bit set may skip it.
constexpr uint8_t kRecordTypeIgnorableBit = 0x80;

// One branch of a global transaction: which resource manager, and the branch's own Xid.
struct Participant {
  // The ResourceManager::name() of the branch's resource manager.
  std::string rm_name;
  // The branch's Xid: the global Xid's WithBranch(i).
  Xid branch;
  // Field by field.
  friend bool operator==(const Participant&, const Participant&) = default;
};

// A logical log record. Which fields matter depends on `type`:
//   kCommitDecision, kPreCommit: xid, protocol, participants
//   kEnd:                        xid
//   kHeuristic:                  xid, participants (the branches concerned), outcome, reason
//   kHeuristicCleared:           xid, reason
//   kCheckpoint:                 written by the log itself; not passed to Append()
//   kParticipantWait:            xid (the branch), participants (the whole transaction's),
//                                participant_number, fence_session_id, read_only
//   kParticipantPreCommit:       xid (the branch)
//   kParticipantDecision:        xid (the branch), outcome (kCommitted or kRolledBack only),
//                                coordinator_knows_outcome, branch_finished
//   kParticipantDone:            xid (the branch)
//   kTccTry, kTccConfirm:        xid, protocol (kTcc or kSaga), participants (branch i is
//                                xid.WithBranch(i); rm_name is the participant's registered
//                                name), payloads (one per participant, in the same order)
// A participant record reads back with protocol kThreePhase (its type implies it); fields that
// a record's type does not name read back as their defaults.
struct LogRecord {
  // What the record says; it decides which of the fields below matter (see above).
  RecordType type = RecordType::kCommitDecision;
  Xid xid;  // the global transaction (empty bqual); a participant record's branch Xid
  // The transaction's commit protocol: kTwoPhase or kThreePhase.
  Protocol protocol = Protocol::kTwoPhase;
  // The branches: all of the transaction's, or for kHeuristic those concerned.
  std::vector<Participant> participants;
  // kHeuristic: the heuristic or forced outcome; kParticipantDecision: the decision.
  Outcome outcome = Outcome::kUnknown;
  // kHeuristic and kHeuristicCleared: why, in words (the audit trail an operator reads).
  std::string reason;
  int64_t timestamp_us = 0;  // wall clock at append, microseconds since the epoch; set by the log
  uint64_t lsn = 0;          // set by the log
  // Meaningful for the participant records only (kParticipantWait; carried in the open state of
  // a participant, LogState::open_participants); 0/false elsewhere.
  // The participant's own number in its transaction: participants[participant_number].branch is
  // `xid` (the decoder refuses anything else). The lowest-numbered reachable participant is the
  // termination protocol's backup.
  uint16_t participant_number = 0;
  // The fence: the MariaDB connection id of the application's session that prepared the branch,
  // which the agent ends (KILL CONNECTION) before it finishes the branch itself; 0 for none
  // (PostgreSQL detaches a branch at PREPARE TRANSACTION).
  uint64_t fence_session_id = 0;
  // The branch voted read-only: it holds nothing to commit or roll back in its database, but
  // its participant still takes part in termination.
  bool read_only = false;
  // kParticipantDecision only (and an open participant's state): the coordinator is known to
  // hold this outcome, because it sent it to this participant itself (DoCommit or Abort, on its
  // normal path or from its recovery). An agent forgets a committed participant (writes
  // kParticipantDone) only once this is true: the coordinator keeps its commit decision until
  // every agent acknowledged its DoCommit, so whichever side forgets a COMMIT last, the other
  // still holds it. A decision recorded without it (a termination round, a decision adopted
  // from a peer, rule d) is upgraded by a second decision record with the same outcome and
  // this set. An ABORT may be forgotten without it (presumed abort answers the same).
  bool coordinator_knows_outcome = false;
  // kParticipantDecision only (and an open participant's state): the branch is finished in its
  // database (the coordinator committed or rolled it back and said so with its DoCommit or Abort),
  // so an agent that restarts neither fences the application's session nor finishes the branch
  // again. Set by the record that decides or by a repeated decision; never cleared.
  bool branch_finished = false;
  // kTccTry and kTccConfirm only: the payload each participant's Try, Confirm and Cancel are
  // called with, payloads[i] for participants[i] (as many as participants; empty elsewhere).
  std::vector<std::string> payloads;
  // Field by field.
  friend bool operator==(const LogRecord&, const LogRecord&) = default;
};

// What a replay of the log says about the transactions that are not finished.
struct LogState {
  // Commit decisions (and 3PC pre-commits) without an end record, by global Xid.
  std::map<Xid, LogRecord> open_decisions;
  // Heuristic outcomes that no operator has cleared yet, by global Xid (or by branch Xid, for
  // a heuristic an agent records about one participant).
  std::map<Xid, LogRecord> open_heuristics;
  // The 3PC participants of an agent's log that are not done, by branch Xid: the fields of the
  // participant's kParticipantWait record (none for a participant that was decided without a
  // Wait: an orphan branch the agent aborted, or a decision adopted from a peer), with `type`
  // its current state (kParticipantWait, kParticipantPreCommit or kParticipantDecision),
  // `outcome` set once decided, and `lsn` and `timestamp_us` those of the record that brought
  // it into its current state (a repeated PreCommit changes nothing; a repeated decision only
  // sets coordinator_knows_outcome and branch_finished, never clears them). The rules
  // (what is refused as damage) are ApplyRecord's, recovery-log/log_state.h.
  std::map<Xid, LogRecord> open_participants;
  // TCC transactions without an end record, by global Xid: the newest of their kTccTry
  // (undecided: recovery cancels) and kTccConfirm (decided: recovery confirms) records.
  std::map<Xid, LogRecord> open_tcc;
  // The LSN of the last record in the log; 0 when it holds none.
  uint64_t last_lsn = 0;
  // True when replay met damage in the middle of the log and stopped there: records after it
  // (perhaps commit decisions) are unknown, so recovery must not presume abort. A torn tail
  // truncated under kTolerateCorruptedTail does not set it (that record was never acknowledged)
  // but is described in damage_report.
  bool damaged = false;
  // What replay found damaged (segment, offset, what is wrong), or the torn tail it truncated;
  // empty when it found neither.
  std::string damage_report;
};

// Told about every damaged region that replay meets, whatever the recovery mode (as leveldb's
// log::Reader::Reporter): the caller decides what to do with the report (log it, print it,
// alert). `file` is the segment's path, `offset` where the damage starts, `bytes` how many bytes
// are affected up to the end of the file.
class LogReporter {
 public:
  virtual ~LogReporter() = default;
  // One damaged region (see above); `reason` says what is wrong there.
  virtual void Corruption(const std::string& file, uint64_t offset, uint64_t bytes,
                          const Status& reason) = 0;
};

// How replay treats damage. Use case comments as in the options of a database.
enum class LogRecoveryMode : uint8_t {
  // A torn or half-written record at the very end of the newest segment is what a crash during
  // an append leaves behind: it was never acknowledged, so it is truncated and reported, and the
  // log opens. Damage anywhere else (a bad record followed by valid ones) is refused.
  // Use case: the default, for the transaction manager and for `xa-recover resolve`.
  kTolerateCorruptedTail = 1,
  // Any damage, even a torn tail, is refused; nothing is truncated.
  // Use case: `xa-log verify` and forensic inspection of a log copied from a failed machine.
  kAbsoluteConsistency = 2,
};

// Where a decision log lives, and how it is written and replayed (DecisionLog::Open()).
struct LogOptions {
  std::string dir;         // refused if others can write it; see create_if_missing
  // What Open() does when `dir` is missing or holds no log (no segment): true (default) creates
  // the log (the directory 0700 if missing, and a first segment): this is how a new node starts
  // (the application opens its log before TransactionManager::Open; an application that knows
  // its log must exist sets false). false refuses (Code::kConfig, naming the
  // directory) and creates nothing: for a process that must find an existing log, such as the
  // recovery tool, where a mistyped path would otherwise look like an empty log and presume abort
  // for every prepared branch. ReadState() and the tools never create.
  bool create_if_missing = true;
  uint32_t node_id = 0;    // written into the file header; a log of another node is refused
  // How replay treats damage.
  LogRecoveryMode recovery_mode = LogRecoveryMode::kTolerateCorruptedTail;
  // Rotate to a new segment once the current one is larger than this.
  uint64_t segment_size_bytes = 64ull << 20;
  // The group-commit leader waits this long before it writes its batch, so that more appenders
  // join it (fewer fdatasyncs, each append that much slower). 0 (default): no artificial delay;
  // appends that arrive while an fdatasync runs share the next one.
  uint32_t group_commit_max_delay_us = 0;
  // Without a fixed delay, the adaptive gather: a leader that finds fewer appenders queued than
  // were waiting when the previous batch ended waits until as many are queued, at most half the
  // previous fdatasync's duration (real time); a single appender never waits. It pays where
  // many appenders append again at once after each batch (threads that do nothing else between
  // appends: the decision-log bench at 64 such appenders carries about 51 records per
  // fdatasync with it, 31 without, and twice the appends/s at 8). It does not pay in the
  // transaction manager, whose decisions arrive spread over the transactions' other work: there
  // it added about 130 us to the decision write's p50 and no throughput (xa_tm_bench, 16
  // clients, this kind of machine). Hence off by default.
  bool group_commit_adaptive_gather = false;
  // At most this many records share one fdatasync; 0 (default): no limit. 1 gives one
  // fdatasync per record, which is never faster: it is there to measure what group commit buys.
  uint32_t group_commit_max_records = 0;
  // Allocate each new segment's space up front (fallocate, up to segment_size_bytes, at most
  // 64 MiB), so that appends overwrite allocated blocks: an fdatasync that need not commit a
  // new file size is cheaper (about 90 us instead of 115 us on ext4 here). The unused tail of
  // a segment then reads as zeros, which replay knows as unused space.
  bool preallocate_segments = true;
  // Env for all file I/O; nullptr means Env::Default().
  Env* env = nullptr;
  // Receives damage reports during replay; nullptr: they are written to the xa log (warning).
  LogReporter* reporter = nullptr;
};

// The fdatasyncs of durable appends since Open(), and the records they made durable (lazy records
// riding along are not counted): records / syncs is how many appenders a sync carried.
struct LogSyncStats {
  // fdatasyncs that made a batch of durable appends durable.
  uint64_t syncs = 0;
  // Durable appends (Append() calls) those fdatasyncs made durable.
  uint64_t records = 0;
};

// The durable log of commit decisions (see the file comment). Open() opens it for appends;
// ReadState() and OpenReadOnly() read it without a lock. Thread-safe.
class DecisionLog {
 public:
  virtual ~DecisionLog() = default;

  // Opens the log in options.dir (creating it only under options.create_if_missing), takes its
  // exclusive lock, replays it according to options.recovery_mode and leaves it ready for
  // appends. The lock is an flock(2) on the directory itself, so deleting the LOCK file (which
  // only names the owner's pid) cannot let a second owner in: a second Open fails with
  // Code::kBusy for as long as the first owner lives. A damaged final record that is complete
  // in length may have been acknowledged: Open refuses it (Code::kCorruption, naming the
  // segment and offset) and truncates nothing; only a torn tail, an append whose write visibly
  // stopped part-way, is cut (recovery-log/log_format.md, "Torn tail or damage").
  static Result<std::unique_ptr<DecisionLog>> Open(const LogOptions& options);

  // Replays the log in options.dir read-only: takes no lock, creates, truncates and deletes
  // nothing, writes no byte, so it may run while another process owns the log (it then sees the
  // records made durable so far; an append in flight may show as a torn tail). Damage in the
  // middle of the log, or a damaged final record that may have been acknowledged, is not an
  // error here: the state read up to it is returned with damaged = true and the report, so that
  // recovery can finish the decisions it knows and refuse to presume abort for the rest. Errors:
  // no log there (CheckExists), the directory or a segment cannot be read, or the log belongs
  // to another node.
  static Result<LogState> ReadState(const LogOptions& options);

  // The read-only view of ReadState as a DecisionLog, for code that takes one (the recovery
  // engine's dry run): State() is the replayed state (damaged = true when replay met damage),
  // Scan() reads the files again, and Append() and AppendLazy() fail with Code::kNotSupported.
  // Takes no lock, creates, truncates, deletes and writes nothing. Errors as ReadState.
  static Result<std::unique_ptr<DecisionLog>> OpenReadOnly(const LogOptions& options);

  // Ok when options.dir is a directory holding at least one segment; otherwise Code::kConfig
  // saying what is there instead (no such directory, not a directory, no segment) and what to
  // check. Reads the directory listing only. Open() without create_if_missing and ReadState()
  // apply this check; a tool calls it first to tell "no log at this path" from other errors.
  static Status CheckExists(const LogOptions& options);

  // Appends and makes durable. Returns the record's LSN once it is on stable storage. A
  // participant or TCC record that the state refuses (ApplyRecord's rules: a second Wait, a
  // PreCommit without a Wait or after a decision, a decision that contradicts an earlier one, a
  // second kTccTry, a kTccTry after its kTccConfirm) is refused with XAER_PROTO before anything
  // is written, judged against the records appended before it (even those whose fdatasync is
  // still running); a record the format cannot hold (a TCC payload over 64 KiB, a record over
  // the log's size limit) with XAER_INVAL. After any failed write or fdatasync every
  // later Append fails with XA_LOGFAILED: the log never retries an fsync, and the process must
  // restart and recover.
  virtual Result<uint64_t> Append(const LogRecord& record) = 0;

  // Appends without waiting, for records whose loss is harmless: only kEnd (a lost end record
  // makes recovery repeat phase 2, where the branches are found finished) and kParticipantDone
  // (a lost one makes the agent finish the branch and tell its peers again, both idempotent);
  // other types are refused with XAER_INVAL, and so is a kParticipantDone while a durable
  // record of the same participant is still being appended, and a kEnd while a TCC record of
  // the same transaction is (append it after that returned).
  // The record applies to State() at once. It is written (no fdatasync of its own) by this call
  // when no append is in progress, else by the append in progress when its batch is done; it
  // becomes durable with the next durable Append, which syncs the whole file, before the log
  // moves to a new segment, or when the log is destroyed. So a lazy record is durable once any
  // Append that started after AppendLazy returned has returned. A crash before then may lose
  // it, or leave it torn at the tail, which replay truncates.
  virtual Status AppendLazy(const LogRecord& record) = 0;

  // The state found by replay at Open(), updated by every Append() since.
  virtual LogState State() const = 0;

  // Calls `visit` for every live record in LSN order (as read from disk, not cached).
  virtual Status Scan(const std::function<void(const LogRecord&)>& visit) const = 0;

  // The options it was opened with.
  virtual const LogOptions& options() const noexcept = 0;

  // How well group commit shares fdatasyncs since Open(): see LogSyncStats. A log that keeps no
  // count (a read-only view, a test double) returns zeros.
  virtual LogSyncStats SyncStats() const { return {}; }
};

}  // namespace xa

#endif  // XA_DECISION_LOG_H_
