// The library behind the `xa-log` command-line tool (tools/xa_log_main.cc is a thin main over
// RunXaLogTool), so tests call the same code.
//
//   xa-log dump   [--json] [--absolute] <log-dir>   every record, human-readable or JSON
//   xa-log verify [--tolerate-tail] <log-dir>       checks every record; non-zero on damage
//   xa-log stats  [--json] <log-dir>                segments, records by type, open transactions
//   xa-log <command> --help
//
// Read-only: the tool never takes the log's lock, never truncates, never deletes, never writes.
// It may run while a transaction manager owns the log: it then reads a snapshot of what is on
// disk, says that the log is in use (by which pid), and an append in flight at the end of the
// newest segment may show as a torn tail (run verify again to tell a crash from a live append).
//
// Exit codes (kExit*): 0 the log is intact; 1 damage found (the message names file and
// offset); 2 bad usage; 3 the log could not be read (permission, another node's log, a segment
// that is not a regular file or is larger than kMaxSegmentFileSize); 4 no log at that path (no
// such directory, or a directory without a segment): the tool never creates one.

#ifndef XA_RECOVERY_LOG_LOG_TOOL_H_
#define XA_RECOVERY_LOG_LOG_TOOL_H_

#include <ostream>
#include <string>

#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa::internal {

constexpr int kExitOk = 0;
constexpr int kExitDamaged = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreadable = 3;
constexpr int kExitNoLog = 4;

struct ToolOptions {
  bool json = false;
  LogRecoveryMode mode = LogRecoveryMode::kTolerateCorruptedTail;
};

int DumpLog(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
            std::ostream& err);
int VerifyLog(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
              std::ostream& err);
int LogStats(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
             std::ostream& err);

// How `dump` renders one record (also the fuzz target's entry point: every field comes from a
// file and may be anything the decoder accepts). Text: one line without the newline, control
// characters escaped. JSON: the record's fields as an object left open, so that the caller can
// add fields before the closing brace; the output is valid JSON whatever the bytes. Times
// outside [1970, 9999] are shown as out-of-range(<microseconds>), never converted.
void RenderRecordText(const LogRecord& record, std::ostream& out);
void RenderRecordJson(const LogRecord& record, std::ostream& out);
std::string RenderUtcTime(int64_t microseconds_since_epoch);

// Parses the command line (argv[0] is the program name) and runs the command.
int RunXaLogTool(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace xa::internal

#endif  // XA_RECOVERY_LOG_LOG_TOOL_H_
