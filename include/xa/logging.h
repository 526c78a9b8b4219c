// Logging: xa writes through Boost.Log's core, so an application that configures Boost.Log sinks
// gets xa's lines in them. Every line about a transaction carries its Xid ("xid=<format>:<gtrid
// hex>:<bqual hex>"); no line ever carries a password or a connection string.
//
// Each record has the attributes Severity (boost::log::trivial::severity_level) and Channel
// ("xa"), and the message text starts with the component ("[tm]", "[mysql:accounts]", ...).

#ifndef XA_LOGGING_H_
#define XA_LOGGING_H_

#include <string_view>

namespace xa {

class Xid;

enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarning = 3, kError = 4, kFatal = 5 };

// Lines below this level are dropped before they are formatted. Default: kInfo, or the value of
// the environment variable XA_LOG_LEVEL (trace, debug, info, warning, error, fatal).
void SetLogLevel(LogLevel level) noexcept;
LogLevel GetLogLevel() noexcept;

// Writes one line. Prefer the XA_LOG macros of the implementation; this is the one entry point
// so that only one translation unit includes Boost.Log.
void LogLine(LogLevel level, std::string_view component, const Xid* xid,
             std::string_view message) noexcept;

}  // namespace xa

#endif  // XA_LOGGING_H_
