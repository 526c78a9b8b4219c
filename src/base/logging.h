// Internal logging macros over xa::LogLine (include/xa/logging.h).
//
//   XA_LOG(kInfo, "tm") << "opened log " << dir;
//   XA_LOG_XID(kWarning, "tm", xid) << "branch " << rm << " unreachable: " << status.ToString();
//
// The stream is built only when the level is enabled.

#ifndef XA_SRC_BASE_LOGGING_H_
#define XA_SRC_BASE_LOGGING_H_

#include <sstream>
#include <string_view>

#include "xa/logging.h"
#include "xa/xid.h"

namespace xa::internal {

class LogStream {
 public:
  LogStream(LogLevel level, std::string_view component, const Xid* xid)
      : level_(level), component_(component), xid_(xid) {}
  ~LogStream() { LogLine(level_, component_, xid_, out_.str()); }
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;

  template <typename T>
  LogStream& operator<<(const T& value) {
    out_ << value;
    return *this;
  }

 private:
  LogLevel level_;
  std::string_view component_;
  const Xid* xid_;
  std::ostringstream out_;
};

}  // namespace xa::internal

#define XA_LOG(level, component)                                    \
  if (::xa::LogLevel::level < ::xa::GetLogLevel()) {               \
  } else                                                            \
    ::xa::internal::LogStream(::xa::LogLevel::level, (component), nullptr)

#define XA_LOG_XID(level, component, xid)                           \
  if (::xa::LogLevel::level < ::xa::GetLogLevel()) {               \
  } else                                                            \
    ::xa::internal::LogStream(::xa::LogLevel::level, (component), &(xid))

#endif  // XA_SRC_BASE_LOGGING_H_
