// MemoryDecisionLog: an in-memory DecisionLog for unit tests of the coordinator, with injectable
// append failures.
//
// It follows the contract of the real log (include/xa/decision_log.h): Append() assigns LSNs and
// timestamps and refuses what the real log's codec refuses; State() and Scan() see each record
// as the real log's replay reads it back, and State() applies them with the real log's apply
// function (recovery-log/log_state.h); after a failed append every later append fails with
// XA_LOGFAILED, like a log whose write or fsync failed. Records() returns the records exactly
// as the caller appended them (with LSN and timestamp), for tests that assert what a caller
// wrote, including fields the record's type does not persist.
//
//   MemoryDecisionLog log(/*node_id=*/1);
//   log.FailAppends(RecordType::kCommitDecision, Status(Code::kIoError, "fsync: EIO"));
//
// Thread safety: all methods are thread-safe.

#ifndef XA_TESTS_TESTUTIL_MEMORY_DECISION_LOG_H_
#define XA_TESTS_TESTUTIL_MEMORY_DECISION_LOG_H_

#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "xa/decision_log.h"

namespace xa::test {

class MemoryDecisionLog : public DecisionLog {
 public:
  explicit MemoryDecisionLog(uint32_t node_id = 1);

  // The next append of a record of `type` fails with `error`; the log then refuses every later
  // append (XA_LOGFAILED), as the real log does after a failed write or fsync.
  void FailAppends(RecordType type, Status error);
  // Arbitrary hook, run before each append (outside the lock). A non-OK result fails that append
  // without poisoning the log.
  void SetAppendHook(std::function<Status(const LogRecord&)> hook);
  // Preloads records as if found by replay at open (for recovery tests); a record that the real
  // log would refuse is a test failure.
  void Preload(std::vector<LogRecord> records);

  std::vector<LogRecord> Records() const;
  std::vector<LogRecord> RecordsOfType(RecordType type) const;
  bool failed() const;

  // DecisionLog.
  Result<uint64_t> Append(const LogRecord& record) override;
  Status AppendLazy(const LogRecord& record) override;
  // Whether each record was appended lazily, in order (parallel to Records()).
  std::vector<bool> Lazy() const;
  LogState State() const override;
  Status Scan(const std::function<void(const LogRecord&)>& visit) const override;
  const LogOptions& options() const noexcept override { return options_; }

 private:
  mutable std::mutex mu_;
  LogOptions options_;
  std::vector<LogRecord> records_;    // as appended
  std::vector<LogRecord> read_back_;  // parallel: as the real log's replay reads them back
  std::vector<bool> lazy_;
  // read_back_ applied in order, kept as records arrive: rebuilding it on every append made a
  // test of a few thousand transactions quadratic (minutes under the sanitizers).
  LogState state_;
  uint64_t next_lsn_ = 1;
  std::optional<RecordType> fail_type_;
  Status fail_status_;
  bool failed_ = false;
  std::function<Status(const LogRecord&)> hook_;
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_MEMORY_DECISION_LOG_H_
