// xa::Status and xa::Result<T>: the one error type of the library.
//
// A Status carries an XA-style code and a message that says what failed and what to do about it.
// The codes are the X/Open XA return codes (same numbers as in xa.h), so a result coming from a
// resource manager is reported exactly as XA defines it, plus a few codes of our own for failures
// that XA has no word for (configuration, I/O, corruption, ...). Those live below -100 so they can
// never collide with an XA value.
//
// Only a caller that reacts differently to a code gets a code of its own; errno, SQLSTATE and the
// server's own error number go into the message.
//
// Thread safety: Status and Result are values; const methods may be called concurrently.

#ifndef XA_STATUS_H_
#define XA_STATUS_H_

#include <cassert>
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace xa {

// The numeric values are those of X/Open XA (xa.h) and are persisted in the decision log and shown
// to operators: never renumber.
enum class Code : int32_t {
  kOk = 0,  // XA_OK

  // Positive: the branch reached an end other than the one asked for.
  kReadOnly = 3,           // XA_RDONLY: the branch was read-only and has been committed
  kRetry = 4,              // XA_RETRY: the RM could not do it now; retry the same call
  kHeuristicMixed = 5,     // XA_HEURMIX: some of the work committed, some rolled back
  kHeuristicRollback = 6,  // XA_HEURRB: the RM rolled the branch back on its own
  kHeuristicCommit = 7,    // XA_HEURCOM: the RM committed the branch on its own
  kHeuristicHazard = 8,    // XA_HEURHAZ: the branch may have been heuristically completed
  kNoMigrate = 9,          // XA_NOMIGRATE

  // 100..107: the branch has been rolled back (XA_RB*).
  kRbRollback = 100,   // XA_RBROLLBACK: rolled back for an unspecified reason
  kRbCommFail = 101,   // XA_RBCOMMFAIL: a communication failure rolled it back
  kRbDeadlock = 102,   // XA_RBDEADLOCK: a deadlock was detected
  kRbIntegrity = 103,  // XA_RBINTEGRITY: a constraint was violated
  kRbOther = 104,      // XA_RBOTHER
  kRbProto = 105,      // XA_RBPROTO: a protocol error inside the RM
  kRbTimeout = 106,    // XA_RBTIMEOUT: the branch took too long
  kRbTransient = 107,  // XA_RBTRANSIENT: may be retried as a new transaction

  // Negative: errors (XAER_*). The branch state is as before the call unless said otherwise.
  kAsync = -2,    // XAER_ASYNC
  kRmError = -3,  // XAER_RMERR: an error inside the RM; the branch may be gone
  kNoTa = -4,     // XAER_NOTA: the RM does not know this Xid
  kInval = -5,    // XAER_INVAL: invalid arguments
  kProto = -6,    // XAER_PROTO: call made in the wrong state
  kRmFail = -7,   // XAER_RMFAIL: the RM is unavailable; the branch is in doubt, retry later
  kDupId = -8,    // XAER_DUPID: the Xid already exists
  kOutside = -9,  // XAER_OUTSIDE: the RM is doing work outside a global transaction

  // Below -100: failures that XA has no code for.
  kConfig = -101,      // unsafe or invalid configuration; the message says how to fix it
  kIoError = -102,     // an operating-system I/O call failed (errno in the message)
  kCorruption = -103,  // stored data failed its checksum or does not parse
  kLogFailed = -104,   // the decision log refuses appends after a failed write or fsync
  kBusy = -105,        // a resource is held by someone else (e.g. the log's lock)
  kTimeout = -106,     // a deadline passed
  kInternal = -107,    // a bug in xa: please report it
  kNotSupported = -108,  // the operation does not exist for this RM or protocol
};

// "XA_OK", "XAER_NOTA", "XA_RBDEADLOCK", "XA_CONFIG", ...
std::string_view CodeName(Code code) noexcept;

// True for XA_RB* codes: the branch has been rolled back by the RM.
constexpr bool IsRollbackCode(Code c) noexcept {
  return static_cast<int32_t>(c) >= 100 && static_cast<int32_t>(c) <= 107;
}
// True for XA_HEUR* codes.
constexpr bool IsHeuristicCode(Code c) noexcept {
  return static_cast<int32_t>(c) >= 5 && static_cast<int32_t>(c) <= 8;
}

// The result of a call that can fail: a Code and a message. Must be used ([[nodiscard]]); drop
// one on purpose with IgnoreError().
class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // XA_OK
  // A Status with `code` and `message`: what failed and what to do about it.
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  // The same as Status(): XA_OK.
  static Status Ok() noexcept { return Status(); }

  // True for Code::kOk only (XA_RDONLY, for one, is not OK).
  bool ok() const noexcept { return code_ == Code::kOk; }
  // The XA code, or one of ours below -100.
  Code code() const noexcept { return code_; }
  // What failed, and what to do about it; empty for an OK Status.
  const std::string& message() const noexcept { return message_; }
  // True for an XA_RB* code: the RM has rolled the branch back.
  bool IsRollback() const noexcept { return IsRollbackCode(code_); }
  // True for an XA_HEUR* code: the RM completed the branch on its own.
  bool IsHeuristic() const noexcept { return IsHeuristicCode(code_); }

  // "XAER_NOTA: <message>"
  std::string ToString() const;

  // Prefixes context to the message, keeping the code: s.WithContext("commit on pg1").
  Status WithContext(std::string_view context) const;

  // Makes a deliberately ignored error searchable.
  void IgnoreError() const noexcept {}

  // Same code and same message.
  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or a non-OK Status. Must be used ([[nodiscard]]). Check ok() before reading the
// value: reading the value of an error asserts in debug builds and is undefined otherwise.
template <typename T>
class [[nodiscard]] Result {
 public:
  // A Result holding `value`.
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // A Result holding the error `status`, which must not be OK (an OK one becomes XA_INTERNAL,
  // and asserts in debug builds).
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result built from an OK Status carries no value");
    if (status_.ok()) status_ = Status(Code::kInternal, "Result built from an OK Status");
  }

  // True when it holds a value.
  bool ok() const noexcept { return value_.has_value(); }
  // The error; OK when it holds a value.
  const Status& status() const& noexcept { return status_; }
  // The error, moved out of an expiring Result.
  Status status() && { return std::move(status_); }

  // The value; only when ok().
  T& value() & { assert(ok()); return *value_; }
  // The value; only when ok().
  const T& value() const& { assert(ok()); return *value_; }
  // The value, moved out of an expiring Result; only when ok().
  T&& value() && { assert(ok()); return std::move(*value_); }

  // value()
  T& operator*() & { return value(); }
  // value()
  const T& operator*() const& { return value(); }
  // value(), moved out of an expiring Result.
  T&& operator*() && { return std::move(*value_); }
  // &value()
  T* operator->() { return &value(); }
  // &value()
  const T* operator->() const { return &value(); }

 private:
  Status status_;  // OK exactly when value_ holds a value
  std::optional<T> value_;
};

}  // namespace xa

// Returns early from a function returning Status or Result<T> when `expr` is not OK.
#define XA_RETURN_IF_ERROR(expr)                         \
  do {                                                   \
    ::xa::Status xa_status_tmp_ = (expr);                \
    if (!xa_status_tmp_.ok()) return xa_status_tmp_;     \
  } while (false)

#endif  // XA_STATUS_H_
