#include "recovery-log/log_tool.h"

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

#include "recovery-log/log_format.h"
#include "recovery-log/log_reader.h"
#include "recovery-log/log_state.h"
#include "src/base/escape.h"

namespace xa::internal {
namespace {

std::string_view TypeName(RecordType t) {
  switch (t) {
    case RecordType::kCommitDecision: return "commit-decision";
    case RecordType::kPreCommit: return "pre-commit";
    case RecordType::kEnd: return "end";
    case RecordType::kHeuristic: return "heuristic";
    case RecordType::kHeuristicCleared: return "heuristic-cleared";
    case RecordType::kCheckpoint: return "checkpoint";
    case RecordType::kParticipantWait: return "participant-wait";
    case RecordType::kParticipantPreCommit: return "participant-pre-commit";
    case RecordType::kParticipantDecision: return "participant-decision";
    case RecordType::kParticipantDone: return "participant-done";
    case RecordType::kTccTry: return "tcc-try";
    case RecordType::kTccConfirm: return "tcc-confirm";
  }
  return "unknown";
}

// An open TCC transaction's state, by its newest record: "trying" (recovery cancels it) or
// "confirmed" (recovery confirms it).
std::string_view TccStateName(RecordType t) {
  return t == RecordType::kTccConfirm ? "confirmed" : "trying";
}

// One JSON rule for every tool (src/base/escape.h): UTF-8 text (operator reasons, RM names)
// stays readable, control characters and broken bytes are escaped, the output is always valid.
std::string JsonString(std::string_view s) { return "\"" + EscapeJsonString(s) + "\""; }

// Printable text for the human-readable dump: control characters escaped.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// A TCC payload for the human-readable dump: application bytes, perhaps binary. Printable
// ASCII stays; every other byte, and the quote and backslash that would make the quoting
// ambiguous, as \xNN. Never truncated, so the bytes can be read back exactly.
std::string EscapedPayload(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\' && c != '"') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

// The last microsecond of year 9999: every time the writer can have stamped (a wall clock
// from 1970 on) lies in [0, kMaxRenderedTimeUs].
constexpr int64_t kMaxRenderedTimeUs = 253402300799999999;

}  // namespace

// "2026-11-24T07:16:21.958927Z": operators read UTC wall-clock times, not microseconds. The time
// comes from the file: one outside [1970, 9999] (damage the checksum missed, or a forged record)
// is shown as such, never converted (no overflow, no year 292277026596).
std::string RenderUtcTime(int64_t us) {
  if (us < 0 || us > kMaxRenderedTimeUs) return "out-of-range(" + std::to_string(us) + ")";
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  int64_t frac = us % 1000000;
  std::tm tm{};
  if (::gmtime_r(&secs, &tm) == nullptr) return "out-of-range(" + std::to_string(us) + ")";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(frac));  // NOLINT(runtime/int)
  return buf;
}

void RenderRecordText(const LogRecord& r, std::ostream& out) {
  out << "lsn=" << r.lsn << " type=" << TypeName(r.type)
      << " time=" << RenderUtcTime(r.timestamp_us);
  if (r.type == RecordType::kCheckpoint) return;
  out << " xid=" << r.xid.ToString();
  if (IsParticipantRecordType(r.type)) {
    out << " state=\"" << ParticipantStateName(r.type, r.outcome) << "\"";
    if (r.type == RecordType::kParticipantWait) {
      out << " participant=" << r.participant_number << " fence_session=" << r.fence_session_id
          << " read_only=" << (r.read_only ? "yes" : "no");
    }
    if (r.type == RecordType::kParticipantDecision) {
      out << " coordinator_knows_outcome=" << (r.coordinator_knows_outcome ? "yes" : "no")
          << " branch_finished=" << (r.branch_finished ? "yes" : "no");
    }
  }
  if (r.type == RecordType::kCommitDecision || r.type == RecordType::kPreCommit ||
      IsTccRecordType(r.type)) {
    out << " protocol=" << ProtocolName(r.protocol);
  }
  if (r.type == RecordType::kHeuristic) out << " outcome=" << OutcomeName(r.outcome);
  if (!r.participants.empty()) {
    out << " participants=[";
    for (size_t i = 0; i < r.participants.size(); ++i) {
      if (i > 0) out << ", ";
      out << Printable(r.participants[i].rm_name) << ":" << r.participants[i].branch.ToString();
      if (IsTccRecordType(r.type) && i < r.payloads.size()) {
        out << " payload=\"" << EscapedPayload(r.payloads[i]) << "\"";
      }
    }
    out << "]";
  }
  if (r.type == RecordType::kHeuristic || r.type == RecordType::kHeuristicCleared) {
    out << " reason=\"" << Printable(r.reason) << "\"";
  }
}

void RenderRecordJson(const LogRecord& r, std::ostream& out) {
  out << "{\"lsn\":" << r.lsn << ",\"type\":" << JsonString(TypeName(r.type))
      << ",\"type_code\":" << static_cast<int>(r.type) << ",\"timestamp_us\":" << r.timestamp_us
      << ",\"time\":" << JsonString(RenderUtcTime(r.timestamp_us));
  if (r.type != RecordType::kCheckpoint) {
    out << ",\"xid\":" << JsonString(r.xid.ToString());
    if (IsParticipantRecordType(r.type)) {
      out << ",\"state\":" << JsonString(ParticipantStateName(r.type, r.outcome));
    }
    if (r.type == RecordType::kParticipantWait) {
      out << ",\"participant\":" << r.participant_number
          << ",\"fence_session_id\":" << r.fence_session_id
          << ",\"read_only\":" << (r.read_only ? "true" : "false");
    }
    if (r.type == RecordType::kParticipantDecision) {
      out << ",\"coordinator_knows_outcome\":"
          << (r.coordinator_knows_outcome ? "true" : "false")
          << ",\"branch_finished\":" << (r.branch_finished ? "true" : "false");
    }
    if (r.type == RecordType::kCommitDecision || r.type == RecordType::kPreCommit ||
        IsTccRecordType(r.type)) {
      out << ",\"protocol\":" << JsonString(ProtocolName(r.protocol));
    }
    if (r.type == RecordType::kHeuristic) {
      out << ",\"outcome\":" << JsonString(OutcomeName(r.outcome));
    }
    if (r.type == RecordType::kCommitDecision || r.type == RecordType::kPreCommit ||
        r.type == RecordType::kHeuristic || r.type == RecordType::kParticipantWait ||
        IsTccRecordType(r.type)) {
      out << ",\"participants\":[";
      for (size_t i = 0; i < r.participants.size(); ++i) {
        if (i > 0) out << ",";
        out << "{\"rm\":" << JsonString(r.participants[i].rm_name)
            << ",\"branch\":" << JsonString(r.participants[i].branch.ToString());
        // The one JSON rule (UTF-8 readable, anything else escaped or U+FFFD), with the size
        // in bytes, which a replaced byte does not change.
        if (IsTccRecordType(r.type) && i < r.payloads.size()) {
          out << ",\"payload\":" << JsonString(r.payloads[i])
              << ",\"payload_bytes\":" << r.payloads[i].size();
        }
        out << "}";
      }
      out << "]";
    }
    if (r.type == RecordType::kHeuristic || r.type == RecordType::kHeuristicCleared) {
      out << ",\"reason\":" << JsonString(r.reason);
    }
  }
}

namespace {

class CollectingReporter final : public LogReporter {
 public:
  void Corruption(const std::string& file, uint64_t offset, uint64_t bytes,
                  const Status& reason) override {
    reports.push_back(file + " offset " + std::to_string(offset) + " (" + std::to_string(bytes) +
                      " bytes): " + reason.ToString());
  }
  std::vector<std::string> reports;
};

// "in use by process 1234" when the LOCK file names a live process; empty otherwise. Looks
// only: the lock is never taken, so a running transaction manager is never disturbed.
std::string LockHolderNote(Env* env, const std::string& dir) {
  std::string contents;
  // A pid and a newline; anything longer (or not a regular file) is not a note worth reading.
  if (!env->ReadFile(JoinPath(dir, kLockFileName), &contents, 32).ok()) return "";
  long pid = std::strtol(contents.c_str(), nullptr, 10);  // NOLINT(runtime/int)
  // A pid_t is an int: a larger number is not a pid, and cast down it could name another
  // process (or -1, every process).
  if (pid <= 0 || pid > INT_MAX) return "";
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return "";
  return "the log is in use by process " + std::to_string(pid) +
         ": reading a snapshot without taking its lock (an append in flight may show as a torn "
         "tail)";
}

// The directory must hold a log before anything is read from it: a mistyped path is "no log
// here" (kExitNoLog), never an empty log.
bool NoLogThere(Env* env, const std::string& dir, std::ostream& err) {
  LogOptions probe;
  probe.dir = dir;
  probe.env = env;
  Status s = DecisionLog::CheckExists(probe);
  if (s.ok()) return false;
  err << "xa-log: " << s.ToString() << "\n";
  return true;
}

int ExitFor(const ReplayResult& r) {
  if (r.status.ok()) return r.segments.empty() ? kExitUnreadable : kExitOk;
  return r.state.damaged ? kExitDamaged : kExitUnreadable;
}

struct Run {
  ReplayResult result;
  std::vector<std::string> storage;
  CollectingReporter reporter;
};

void Replay(Env* env, const std::string& dir, const ToolOptions& options,
            std::function<void(const ReplayEvent&)> visit, Run* run) {
  ReplayOptions ro;
  ro.mode = options.mode;
  ro.reporter = &run->reporter;
  ro.visit = std::move(visit);
  run->result = ReplayDir(env, dir, ro, &run->storage);
}

void PrintProblems(const Run& run, std::ostream& err) {
  for (const std::string& r : run.reporter.reports) err << "xa-log: damage: " << r << "\n";
  if (!run.result.status.ok() && !run.result.state.damaged) {
    err << "xa-log: " << run.result.status.ToString() << "\n";
  } else if (run.result.status.ok() && run.result.segments.empty()) {
    err << "xa-log: no log segment found: not a decision log directory, or an empty one\n";
  }
}

}  // namespace

int DumpLog(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
            std::ostream& err) {
  if (NoLogThere(env, dir, err)) return kExitNoLog;
  std::string note = LockHolderNote(env, dir);
  if (!note.empty()) err << "xa-log: note: " << note << "\n";
  Run run;
  bool first = true;
  std::string current_segment;
  if (options.json) out << "{\"log\":" << JsonString(dir) << ",\"records\":[";
  Replay(
      env, dir, options,
      [&](const ReplayEvent& e) {
        if (options.json) {
          out << (first ? "\n" : ",\n");
          first = false;
          if (e.ignorable_skipped) {
            out << "{\"lsn\":" << e.record.lsn << ",\"type\":\"unknown-ignorable\"";
          } else {
            RenderRecordJson(e.record, out);
          }
          out << ",\"segment\":" << JsonString(e.segment) << ",\"offset\":" << e.offset;
          if (e.checkpoint_entries != nullptr) {
            out << ",\"entries\":[";
            for (size_t i = 0; i < e.checkpoint_entries->size(); ++i) {
              if (i > 0) out << ",";
              RenderRecordJson((*e.checkpoint_entries)[i], out);
              out << "}";
            }
            out << "]";
          }
          out << "}";
          return;
        }
        if (e.segment != current_segment) {
          current_segment = std::string(e.segment);
          out << "# segment " << current_segment << "\n";
        }
        out << "@" << e.offset << " ";
        if (e.ignorable_skipped) {
          out << "lsn=" << e.record.lsn << " type=unknown (ignorable, skipped)\n";
          return;
        }
        RenderRecordText(e.record, out);
        out << "\n";
        if (e.checkpoint_entries != nullptr) {
          for (const LogRecord& r : *e.checkpoint_entries) {
            out << "    open: ";
            RenderRecordText(r, out);
            out << "\n";
          }
        }
      },
      &run);
  const LogState& st = run.result.state;
  if (options.json) {
    out << "\n],\"last_lsn\":" << st.last_lsn << ",\"open_decisions\":" << st.open_decisions.size()
        << ",\"open_heuristics\":" << st.open_heuristics.size()
        << ",\"open_participants\":" << st.open_participants.size()
        << ",\"open_tcc\":" << st.open_tcc.size()
        << ",\"damaged\":" << (st.damaged ? "true" : "false")
        << ",\"report\":" << JsonString(st.damage_report)
        << ",\"error\":" << JsonString(run.result.status.ok() ? "" : run.result.status.ToString())
        << "}\n";
  } else {
    out << "# last_lsn=" << st.last_lsn << " open_decisions=" << st.open_decisions.size()
        << " open_heuristics=" << st.open_heuristics.size()
        << " open_participants=" << st.open_participants.size()
        << " open_tcc=" << st.open_tcc.size() << "\n";
    for (const auto& [xid, p] : st.open_participants) {
      out << "# open participant: ";
      RenderRecordText(p, out);
      out << "\n";
    }
    for (const auto& [xid, t] : st.open_tcc) {
      out << "# open TCC transaction (" << TccStateName(t.type) << "): ";
      RenderRecordText(t, out);
      out << "\n";
    }
  }
  PrintProblems(run, err);
  return ExitFor(run.result);
}

int VerifyLog(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
              std::ostream& err) {
  if (NoLogThere(env, dir, err)) return kExitNoLog;
  std::string note = LockHolderNote(env, dir);
  if (!note.empty()) err << "xa-log: note: " << note << "\n";
  Run run;
  Replay(env, dir, options, nullptr, &run);
  PrintProblems(run, err);
  int code = ExitFor(run.result);
  if (code == kExitOk) {
    out << "ok: " << run.result.segments.size() << " segment(s), " << run.result.records
        << " record(s), last LSN " << run.result.state.last_lsn;
    bool torn = !run.result.segments.empty() && run.result.segments.back().torn_tail;
    if (torn) out << " (torn tail tolerated: " << run.result.state.damage_report << ")";
    out << "\n";
  } else if (code == kExitDamaged) {
    out << "DAMAGED: " << run.result.status.message() << "\n";
  }
  return code;
}

int LogStats(Env* env, const std::string& dir, const ToolOptions& options, std::ostream& out,
             std::ostream& err) {
  if (NoLogThere(env, dir, err)) return kExitNoLog;
  std::string note = LockHolderNote(env, dir);
  Run run;
  Replay(env, dir, options, nullptr, &run);
  PrintProblems(run, err);
  const ReplayResult& r = run.result;
  uint64_t bytes = 0;
  for (const SegmentSummary& s : r.segments) bytes += s.file_size;
  const RecordType kTypes[] = {RecordType::kCommitDecision,
                               RecordType::kPreCommit,
                               RecordType::kEnd,
                               RecordType::kHeuristic,
                               RecordType::kHeuristicCleared,
                               RecordType::kCheckpoint,
                               RecordType::kParticipantWait,
                               RecordType::kParticipantPreCommit,
                               RecordType::kParticipantDecision,
                               RecordType::kParticipantDone,
                               RecordType::kTccTry,
                               RecordType::kTccConfirm};
  // Open participants by state, in the order a participant goes through them; states that no
  // participant is in are left out.
  std::vector<std::pair<std::string_view, uint64_t>> by_state;
  for (auto [type, outcome] : {std::pair{RecordType::kParticipantWait, Outcome::kUnknown},
                               std::pair{RecordType::kParticipantPreCommit, Outcome::kUnknown},
                               std::pair{RecordType::kParticipantDecision, Outcome::kCommitted},
                               std::pair{RecordType::kParticipantDecision, Outcome::kRolledBack}}) {
    uint64_t n = 0;
    for (const auto& [xid, p] : r.state.open_participants) {
      n += p.type == type && (type != RecordType::kParticipantDecision || p.outcome == outcome);
    }
    if (n > 0) by_state.emplace_back(ParticipantStateName(type, outcome), n);
  }
  // Open TCC transactions by state, likewise: trying (recovery cancels), confirmed.
  std::vector<std::pair<std::string_view, uint64_t>> tcc_by_state;
  for (RecordType type : {RecordType::kTccTry, RecordType::kTccConfirm}) {
    uint64_t n = 0;
    for (const auto& [xid, t] : r.state.open_tcc) n += t.type == type;
    if (n > 0) tcc_by_state.emplace_back(TccStateName(type), n);
  }
  if (options.json) {
    out << "{\"log\":" << JsonString(dir) << ",\"segments\":[";
    for (size_t i = 0; i < r.segments.size(); ++i) {
      const SegmentSummary& s = r.segments[i];
      out << (i ? "," : "") << "{\"file\":" << JsonString(s.name) << ",\"number\":" << s.number
          << ",\"epoch\":" << s.header.epoch << ",\"node_id\":" << s.header.node_id
          << ",\"bytes\":" << s.file_size << ",\"records\":" << s.records
          << ",\"first_lsn\":" << s.first_lsn << ",\"last_lsn\":" << s.last_lsn
          << ",\"torn_tail\":" << (s.torn_tail ? "true" : "false") << "}";
    }
    out << "],\"bytes\":" << bytes << ",\"records\":" << r.records << ",\"by_type\":{";
    for (size_t i = 0; i < std::size(kTypes); ++i) {
      out << (i ? "," : "") << JsonString(TypeName(kTypes[i])) << ":"
          << r.records_by_type[static_cast<int>(kTypes[i])];
    }
    out << "},\"ignorable_skipped\":" << r.ignorable_skipped
        << ",\"open_decisions\":" << r.state.open_decisions.size()
        << ",\"open_heuristics\":" << r.state.open_heuristics.size()
        << ",\"open_participants\":" << r.state.open_participants.size()
        << ",\"open_participants_by_state\":{";
    for (size_t i = 0; i < by_state.size(); ++i) {
      out << (i ? "," : "") << JsonString(by_state[i].first) << ":" << by_state[i].second;
    }
    out << "},\"open_tcc\":" << r.state.open_tcc.size() << ",\"open_tcc_by_state\":{";
    for (size_t i = 0; i < tcc_by_state.size(); ++i) {
      out << (i ? "," : "") << JsonString(tcc_by_state[i].first) << ":" << tcc_by_state[i].second;
    }
    out << "},\"last_lsn\":" << r.state.last_lsn
        << ",\"damaged\":" << (r.state.damaged ? "true" : "false")
        << ",\"in_use\":" << JsonString(note) << "}\n";
  } else {
    if (!note.empty()) out << "note: " << note << "\n";
    out << "segments: " << r.segments.size() << " (" << bytes << " bytes)\n";
    for (const SegmentSummary& s : r.segments) {
      out << "  " << s.name << ": epoch " << s.header.epoch << ", node " << s.header.node_id
          << ", " << s.file_size << " bytes, " << s.records << " records, LSN " << s.first_lsn
          << ".." << s.last_lsn << (s.torn_tail ? ", torn tail" : "") << "\n";
    }
    out << "records: " << r.records << "\n";
    for (RecordType t : kTypes) {
      out << "  " << TypeName(t) << ": " << r.records_by_type[static_cast<int>(t)] << "\n";
    }
    if (r.ignorable_skipped) out << "  unknown (ignorable): " << r.ignorable_skipped << "\n";
    out << "open decisions: " << r.state.open_decisions.size() << "\n";
    out << "open heuristics: " << r.state.open_heuristics.size() << "\n";
    out << "open participants: " << r.state.open_participants.size();
    for (size_t i = 0; i < by_state.size(); ++i) {
      out << (i ? ", " : " (") << by_state[i].first << " " << by_state[i].second;
    }
    out << (by_state.empty() ? "" : ")") << "\n";
    out << "open TCC transactions: " << r.state.open_tcc.size();
    for (size_t i = 0; i < tcc_by_state.size(); ++i) {
      out << (i ? ", " : " (") << tcc_by_state[i].first << " " << tcc_by_state[i].second;
    }
    out << (tcc_by_state.empty() ? "" : ")") << "\n";
    out << "last LSN: " << r.state.last_lsn << "\n";
    if (r.state.damaged) out << "DAMAGED: " << r.state.damage_report << "\n";
  }
  return ExitFor(r);
}

namespace {

constexpr std::string_view kUsage =
    "usage: xa-log <command> [options] <log-dir>\n"
    "\n"
    "Inspects an xa decision log, read-only: never takes the log's lock, never writes.\n"
    "It may run while a transaction manager owns the log (it then says so).\n"
    "\n"
    "commands:\n"
    "  dump    print every record (--json for JSON)\n"
    "  verify  check every record; exit 1 on damage, naming file and offset\n"
    "  stats   segments, records by type, open transactions (--json for JSON)\n"
    "\n"
    "`xa-log <command> --help` describes a command.\n"
    "\n"
    "exit codes: 0 intact, 1 damage found, 2 bad usage, 3 log unreadable (permission denied,\n"
    "            another node's, a segment that is not a regular file or is too large),\n"
    "            4 no log there (no such directory, or no segment in it)\n";

constexpr std::string_view kDumpHelp =
    "usage: xa-log dump [--json] [--absolute] <log-dir>\n"
    "\n"
    "Prints every record of every segment in LSN order, with its segment and offset; a\n"
    "checkpoint is followed by the open transactions it carries. A torn tail (an append that\n"
    "never completed) is reported on stderr and tolerated, unless --absolute is given.\n"
    "  --json      one JSON document: {\"records\":[...], \"last_lsn\":..., \"damaged\":...}\n"
    "  --absolute  refuse a torn tail too (LogRecoveryMode::kAbsoluteConsistency)\n"
    "exit codes: 0 intact, 1 damage found, 2 bad usage, 3 log unreadable, 4 no log there\n";

constexpr std::string_view kVerifyHelp =
    "usage: xa-log verify [--tolerate-tail] <log-dir>\n"
    "\n"
    "Checks every file header and record (checksum, length, LSN order, checkpoints). By\n"
    "default any damage fails, even a torn tail (kAbsoluteConsistency): use it on a log copied\n"
    "from a failed machine. --tolerate-tail accepts a torn tail at the end of the newest\n"
    "segment, as the transaction manager does at open (kTolerateCorruptedTail). On a live log an\n"
    "append in flight can look like a torn tail: run it again.\n"
    "exit codes: 0 intact, 1 damage found (the message names file and offset), 2 bad usage,\n"
    "            3 log unreadable, 4 no log there\n";

constexpr std::string_view kStatsHelp =
    "usage: xa-log stats [--json] <log-dir>\n"
    "\n"
    "Prints the segments (epoch, node, size, LSN range), the number of records of each type,\n"
    "and the number of open decisions, open heuristics, open 3PC participants (an agent's\n"
    "log), the participants by state (wait, pre-commit, decided commit, decided rollback), and\n"
    "open TCC transactions by state (trying: recovery cancels; confirmed: recovery confirms).\n"
    "exit codes: 0 intact, 1 damage found, 2 bad usage, 3 log unreadable, 4 no log there\n";

}  // namespace

int RunXaLogTool(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  if (argc < 2) {
    err << kUsage;
    return kExitUsage;
  }
  std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    out << kUsage;
    return kExitOk;
  }
  std::string_view help;
  if (command == "dump") {
    help = kDumpHelp;
  } else if (command == "verify") {
    help = kVerifyHelp;
  } else if (command == "stats") {
    help = kStatsHelp;
  } else {
    err << "xa-log: unknown command '" << Printable(command) << "'\n" << kUsage;
    return kExitUsage;
  }
  ToolOptions options;
  if (command == "verify") options.mode = LogRecoveryMode::kAbsoluteConsistency;
  std::string dir;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out << help;
      return kExitOk;
    } else if (arg == "--json" && command != "verify") {
      options.json = true;
    } else if (arg == "--absolute" && command == "dump") {
      options.mode = LogRecoveryMode::kAbsoluteConsistency;
    } else if (arg == "--tolerate-tail" && command == "verify") {
      options.mode = LogRecoveryMode::kTolerateCorruptedTail;
    } else if (!arg.empty() && arg[0] == '-') {
      err << "xa-log " << command << ": unknown option '" << Printable(arg) << "'\n" << help;
      return kExitUsage;
    } else if (dir.empty()) {
      dir = std::string(arg);
    } else {
      err << "xa-log " << command << ": one log directory only\n" << help;
      return kExitUsage;
    }
  }
  if (dir.empty()) {
    err << "xa-log " << command << ": missing <log-dir>\n" << help;
    return kExitUsage;
  }
  Env* env = Env::Default();
  if (command == "dump") return DumpLog(env, dir, options, out, err);
  if (command == "verify") return VerifyLog(env, dir, options, out, err);
  return LogStats(env, dir, options, out, err);
}

}  // namespace xa::internal
