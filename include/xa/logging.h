// Logging: xa writes through Boost.Log's core, so an application that configures Boost.Log sinks
// gets xa's lines in them. Every line about a transaction carries its Xid ("xid=<format>:<gtrid
// hex>:<bqual hex>"); no line ever carries a password or a connection string.
//
// Each record has the attributes Severity (boost::log::trivial::severity_level) and Channel
// ("xa"), and the message text starts with the component ("[tm]", "[mysql:accounts]", ...).
//
// Where the lines go. xa adds no sink by itself. An application that adds Boost.Log sinks gets
// xa's lines in them (filter on Channel "xa" to route them apart). An application that adds NO
// sink gets Boost.Log's default sink, which prints every line to standard OUTPUT (stdout),
// interleaved with whatever the program itself prints there. A program whose stdout is data
// (a report, JSON, CSV) must therefore route the lines elsewhere before the first one: call
// LogToStderr(), or add a sink of its own (for example boost::log::add_console_log(std::clog)
// or a file sink from boost/log/utility/setup).

#ifndef XA_LOGGING_H_
#define XA_LOGGING_H_

#include <string_view>

namespace xa {

class Xid;

// The severity of a line: Boost.Log's trivial severity levels, in the same order.
enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarning = 3, kError = 4, kFatal = 5 };

// Lines below this level are dropped before they are formatted. Default: kInfo, or the value of
// the environment variable XA_LOG_LEVEL (trace, debug, info, warning, error, fatal).
void SetLogLevel(LogLevel level) noexcept;
// The level below which lines are dropped (see SetLogLevel()).
LogLevel GetLogLevel() noexcept;

// Adds one Boost.Log sink that writes every record (xa's and the application's) to stderr, one
// line each ("xa: <severity>: <message>"), flushed at once. Adding any sink switches Boost.Log's
// default stdout sink off. Safe to call more than once and from any thread: only the first call
// adds the sink. xa's own tools (xa-recover, xa-log) call it first thing.
void LogToStderr();

// Writes one line. Prefer the XA_LOG macros of the implementation; this is the one entry point
// so that only one translation unit includes Boost.Log.
void LogLine(LogLevel level, std::string_view component, const Xid* xid,
             std::string_view message) noexcept;

}  // namespace xa

#endif  // XA_LOGGING_H_
