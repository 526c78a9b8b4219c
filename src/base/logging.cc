#include "xa/logging.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include <iostream>
#include <mutex>

#include <boost/core/null_deleter.hpp>
#include <boost/log/attributes/constant.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions/message.hpp>
#include <boost/log/sinks/sync_frontend.hpp>
#include <boost/log/sinks/text_ostream_backend.hpp>
#include <boost/log/utility/formatting_ostream.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_channel_logger.hpp>
#include <boost/log/trivial.hpp>

#include "xa/xid.h"

namespace xa {
namespace {

LogLevel LevelFromEnvironment() {
  const char* value = std::getenv("XA_LOG_LEVEL");
  if (value == nullptr) return LogLevel::kInfo;
  static constexpr const char* kNames[] = {"trace", "debug", "info", "warning", "error", "fatal"};
  for (int i = 0; i < 6; ++i) {
    if (std::strcmp(value, kNames[i]) == 0) return static_cast<LogLevel>(i);
  }
  return LogLevel::kInfo;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnvironment())};
  return level;
}

using Logger =
    boost::log::sources::severity_channel_logger_mt<boost::log::trivial::severity_level,
                                                    std::string>;

Logger& TheLogger() {
  static Logger logger(boost::log::keywords::channel = "xa");
  return logger;
}

}  // namespace

void SetLogLevel(LogLevel level) noexcept { Level().store(static_cast<int>(level)); }

LogLevel GetLogLevel() noexcept { return static_cast<LogLevel>(Level().load()); }

void LogToStderr() {
  static std::once_flag once;
  std::call_once(once, [] {
    using Backend = boost::log::sinks::text_ostream_backend;
    auto backend = boost::make_shared<Backend>();
    backend->add_stream(boost::shared_ptr<std::ostream>(&std::cerr, boost::null_deleter()));
    backend->auto_flush(true);
    auto sink = boost::make_shared<boost::log::sinks::synchronous_sink<Backend>>(backend);
    sink->set_formatter([](const boost::log::record_view& record,
                           boost::log::formatting_ostream& out) {
      out << "xa: ";
      if (auto severity = record[boost::log::trivial::severity]) out << *severity << ": ";
      out << record[boost::log::expressions::smessage];
    });
    boost::log::core::get()->add_sink(sink);
  });
}

void LogLine(LogLevel level, std::string_view component, const Xid* xid,
             std::string_view message) noexcept {
  if (static_cast<int>(level) < Level().load(std::memory_order_relaxed)) return;
  try {
    auto severity = static_cast<boost::log::trivial::severity_level>(static_cast<int>(level));
    boost::log::record rec = TheLogger().open_record(boost::log::keywords::severity = severity);
    if (!rec) return;
    boost::log::record_ostream out(rec);
    out << '[' << component << "] ";
    if (xid != nullptr) out << "xid=" << xid->ToString() << ' ';
    out << message;
    out.flush();
    TheLogger().push_record(std::move(rec));
  } catch (...) {
    // Logging must never take a transaction down with it.
  }
}

}  // namespace xa
