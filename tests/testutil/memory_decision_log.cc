#include "tests/testutil/memory_decision_log.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "recovery-log/log_state.h"
#include "recovery-log/record_codec.h"

namespace xa::test {
namespace {

// Through the real log's codec, as the real log does before it queues a record: refuses what the
// real log refuses (a checkpoint, an empty Xid, a record beyond the format's limits) and gives
// the record as replay reads it back (fields its type does not persist are reset).
Status ReadBack(const LogRecord& record, LogRecord* read_back) {
  std::string payload;
  XA_RETURN_IF_ERROR(internal::EncodePayload(record, &payload));
  *read_back = record;
  return internal::DecodePayload(record.type, payload, read_back);
}

}  // namespace

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
    LogRecord read_back;
    Status s = ReadBack(r, &read_back);
    if (!s.ok()) {
      ADD_FAILURE() << "MemoryDecisionLog::Preload: replay could never find this record: "
                    << s.ToString();
      read_back = r;
    }
    // A preloaded record that does not apply is the test's error, as at replay.
    Result<internal::LogStateChange> applied = internal::ApplyRecord(read_back, &state_);
    if (!applied.ok()) ADD_FAILURE() << "MemoryDecisionLog: " << applied.status().ToString();
    state_.last_lsn = read_back.lsn;
    read_back_.push_back(std::move(read_back));
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
  if (record.type != RecordType::kEnd && record.type != RecordType::kParticipantDone) {
    return Status(Code::kInval,
                  "memory log: only end and participant-done records may be appended lazily");
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
  LogRecord copy = record;
  copy.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  LogRecord read_back;
  XA_RETURN_IF_ERROR(ReadBack(copy, &read_back));

  std::lock_guard<std::mutex> lock(mu_);
  if (failed_) {
    return Status(Code::kLogFailed, "memory log: refusing appends after an earlier failure");
  }
  if (fail_type_.has_value() && *fail_type_ == record.type) {
    failed_ = true;
    fail_type_.reset();
    return fail_status_;
  }
  // What the real log refuses before writing (a participant state its history does not allow).
  // A refused record changes nothing (ApplyRecord's contract), so the state is applied in place.
  Result<internal::LogStateChange> applies = internal::ApplyRecord(read_back, &state_);
  if (!applies.ok()) return Status(Code::kProto, applies.status().message());
  copy.lsn = next_lsn_++;
  read_back.lsn = copy.lsn;
  state_.last_lsn = copy.lsn;
  read_back_.push_back(std::move(read_back));
  records_.push_back(std::move(copy));
  lazy_.push_back(false);
  return records_.back().lsn;
}

LogState MemoryDecisionLog::State() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_;
}

Status MemoryDecisionLog::Scan(const std::function<void(const LogRecord&)>& visit) const {
  std::vector<LogRecord> read_back;
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_back = read_back_;
  }
  for (const LogRecord& r : read_back) visit(r);
  return Status::Ok();
}

}  // namespace xa::test
