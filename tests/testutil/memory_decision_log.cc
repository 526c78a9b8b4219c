#include "tests/testutil/memory_decision_log.h"

#include <chrono>

namespace xa::test {

MemoryDecisionLog::MemoryDecisionLog(uint32_t node_id) {
  options_.dir = "<memory>";
  options_.node_id = node_id;
}

void MemoryDecisionLog::FailAppends(RecordType type, Status error) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_type_ = type;
  fail_status_ = std::move(error);
}

void MemoryDecisionLog::SetAppendHook(std::function<Status(const LogRecord&)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

void MemoryDecisionLog::Preload(std::vector<LogRecord> records) {
  std::lock_guard<std::mutex> lock(mu_);
  for (LogRecord& r : records) {
    r.lsn = next_lsn_++;
    records_.push_back(std::move(r));
    lazy_.push_back(false);
  }
}

std::vector<LogRecord> MemoryDecisionLog::Records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

std::vector<LogRecord> MemoryDecisionLog::RecordsOfType(RecordType type) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LogRecord> out;
  for (const LogRecord& r : records_) {
    if (r.type == type) out.push_back(r);
  }
  return out;
}

bool MemoryDecisionLog::failed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

std::vector<bool> MemoryDecisionLog::Lazy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lazy_;
}

Status MemoryDecisionLog::AppendLazy(const LogRecord& record) {
  if (record.type != RecordType::kEnd) {
    return Status(Code::kInval, "memory log: only end records may be appended lazily");
  }
  Result<uint64_t> appended = Append(record);
  if (!appended.ok()) return appended.status();
  std::lock_guard<std::mutex> lock(mu_);
  lazy_.back() = true;
  return Status::Ok();
}

Result<uint64_t> MemoryDecisionLog::Append(const LogRecord& record) {
  std::function<Status(const LogRecord&)> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hook = hook_;
  }
  if (hook) {
    Status s = hook(record);
    if (!s.ok()) return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_) {
    return Status(Code::kLogFailed, "memory log: refusing appends after an earlier failure");
  }
  if (fail_type_.has_value() && *fail_type_ == record.type) {
    failed_ = true;
    fail_type_.reset();
    return fail_status_;
  }
  LogRecord copy = record;
  copy.lsn = next_lsn_++;
  copy.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  records_.push_back(std::move(copy));
  lazy_.push_back(false);
  return records_.back().lsn;
}

LogState MemoryDecisionLog::State() const {
  std::lock_guard<std::mutex> lock(mu_);
  LogState state;
  for (const LogRecord& r : records_) {
    switch (r.type) {
      case RecordType::kCommitDecision:
      case RecordType::kPreCommit:
        state.open_decisions[r.xid] = r;
        break;
      case RecordType::kEnd:
        state.open_decisions.erase(r.xid);
        break;
      case RecordType::kHeuristic:
        state.open_heuristics[r.xid] = r;
        break;
      case RecordType::kHeuristicCleared:
        state.open_heuristics.erase(r.xid);
        break;
      case RecordType::kCheckpoint:
        break;
    }
    state.last_lsn = r.lsn;
  }
  return state;
}

Status MemoryDecisionLog::Scan(const std::function<void(const LogRecord&)>& visit) const {
  for (const LogRecord& r : Records()) visit(r);
  return Status::Ok();
}

}  // namespace xa::test
