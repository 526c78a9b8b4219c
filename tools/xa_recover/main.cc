// xa-recover: the operator's recovery tool. A thin main over xa::RecoveryEngine.
//
// Exit codes (also in --help):
//   0  done: nothing of ours is left in doubt (plan: nothing to do)
//   1  not finished: a resource manager is unreachable, a call failed, or an orphan is too young
//      to be rolled back yet; run again later (plan: there is work to do)
//   2  usage error
//   3  configuration error (file, credentials, a resource manager refused the connection setup)
//   4  the decision log cannot be used (locked by a running transaction manager, unreadable,
//      another node's); damage in the middle of the log is NOT this: see 6
//   5  finished, but heuristic outcomes await an operator (see `xa-log dump`)
//   6  the decision log is damaged: decisions found were committed, presumed abort was refused
//      for everything else; run `xa-log verify` and escalate
//   7  no decision log at log_dir (no such directory, or no segment in it): the tool never
//      creates one; check log_dir

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "src/base/escape.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "tools/common/rm_from_config.h"
#include "tools/xa_recover/config.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/logging.h"
#include "xa/recovery.h"

namespace {

constexpr int kExitDone = 0;
constexpr int kExitNotFinished = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;
constexpr int kExitLog = 4;
constexpr int kExitHeuristics = 5;
constexpr int kExitDamaged = 6;
constexpr int kExitNoLog = 7;

constexpr char kUsage[] =
    "usage: xa-recover [--config FILE] <command> [options]\n"
    "\n"
    "Brings every transaction of this node to one outcome after a crash: commits the branches\n"
    "whose commit decision is in the decision log, rolls back our prepared branches that have\n"
    "no decision (presumed abort, once older than orphan_min_age_ms or seen by two passes), and\n"
    "never touches a branch of another transaction manager or node. A branch of a marker-commit\n"
    "transaction is settled by its marker row when marker_rm is configured, and left alone\n"
    "otherwise: never presumed aborted.\n"
    "\n"
    "commands:\n"
    "  plan [--json]            show, for each branch, its log state, its RM state and the\n"
    "                           action resolve would take, with the reason; changes nothing\n"
    "  resolve [--json] [--second-pass-ms N]\n"
    "                           do it; when an orphan was too young for the first pass, a second\n"
    "                           pass runs N ms later (default 1000; 0: no second pass;\n"
    "                           at most 3600000)\n"
    "  force commit|rollback XID --reason TEXT\n"
    "                           an operator's decision on a stuck transaction (XID as printed by\n"
    "                           plan: <format>:<gtrid hex>:<bqual hex>; an empty bqual means every\n"
    "                           branch); written to the decision log as a heuristic record\n"
    "  clear-heuristic XID --reason TEXT\n"
    "                           an operator's acknowledgement of a heuristic outcome that plan\n"
    "                           and resolve report (exit 5), once its data is repaired: written\n"
    "                           to the decision log; they stop reporting it\n"
    "  --help                   this text (also after any command)\n"
    "\n"
    "options:\n"
    "  --sessions N             sessions per resource manager that resolve branches in\n"
    "                           parallel (default 4; the scan uses one)\n"
    "  --config FILE            the configuration (default: $XA_RECOVER_CONFIG); its format is\n"
    "                           in man 5 xa-recover.conf. Credentials come from\n"
    "                           0600 files or the environment, never from the command line.\n"
    "                           With [agent] sections (three-phase commit), open 3PC records\n"
    "                           are finished through the agents; plan only asks their states.\n"
    "\n"
    "exit codes:\n"
    "  0 done (plan: nothing to do)      1 not finished, run again later (plan: work to do)\n"
    "  2 usage                            3 configuration\n"
    "  4 decision log unusable (locked by a running manager, unreadable, another node's)\n"
    "  5 done, heuristic outcomes await an operator\n"
    "  6 decision log damaged: known decisions committed, presumed abort refused\n"
    "  7 no decision log at log_dir (missing, or no segment in it); never created here\n"
    "\n"
    "plan reads the log without its lock and writes nothing, so it may run beside a running\n"
    "transaction manager. resolve, force and clear-heuristic take the log's lock (an flock on\n"
    "log_dir itself; LOCK only names the holder's pid): exit 4 naming a pid means that process\n"
    "owns the log.\n"
    "A LOCK file that looks stale is harmless: the lock dies with its process, so never\n"
    "delete LOCK to get in; if no process holds the directory, the next open simply succeeds.\n";

int ExitFor(const xa::RecoveryReport& report) {
  if (report.log_damaged) return kExitDamaged;
  if (report.dry_run) {
    bool work = report.decisions_still_open > 0 || report.orphans_deferred > 0 ||
                report.awaiting_agents > 0 ||
                !report.unreachable_rms.empty();
    for (const auto& b : report.branches) {
      if (b.action == xa::RecoveryAction::kCommit || b.action == xa::RecoveryAction::kRollback) {
        work = true;
      }
    }
    return work ? kExitNotFinished : kExitDone;
  }
  if (!report.Converged()) return kExitNotFinished;
  return report.heuristics_open > 0 ? kExitHeuristics : kExitDone;
}

// Flushed at once: stdout to a pipe or a file is fully buffered, and whatever happens after the
// report (a driver's destructor that blocks, a kill) must not take the report with it.
void Print(const xa::RecoveryReport& report, bool json) {
  if (json) {
    std::cout << xa::RecoveryReportToJson(report) << "\n";
  } else {
    std::cout << xa::FormatRecoveryReport(report);
  }
  std::cout.flush();
}

// A number on the command line, by the configuration's rule; exits with kExitUsage otherwise.
long CommandLineNumber(const xa::recover_tool::IntegerSetting& setting, const std::string& text) {
  auto value = xa::recover_tool::ParseInteger(setting, text);
  if (!value.ok()) {
    std::cerr << "xa-recover: " << value.status().message() << "\n";
    std::exit(kExitUsage);
  }
  return static_cast<long>(*value);
}

}  // namespace

int main(int argc, char** argv) {
  // The report is the output, on stdout; the library's lines go to stderr (Boost.Log's default
  // sink would print them on stdout, into the middle of `plan --json`), info lines (connections)
  // only on request.
  xa::LogToStderr();
  if (std::getenv("XA_LOG_LEVEL") == nullptr) xa::SetLogLevel(xa::LogLevel::kWarning);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string config_path;
  if (const char* env = std::getenv("XA_RECOVER_CONFIG")) config_path = env;
  std::string command, force_what, force_xid, reason;
  bool json = false;
  long second_pass_ms = 1000;
  long sessions = 4;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&](const char* what) -> std::string {
      if (i + 1 >= args.size()) {
        std::cerr << "xa-recover: " << xa::internal::EscapeForMessage(a) << " needs " << what
                  << "\n";
        std::exit(kExitUsage);
      }
      return args[++i];
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage << std::flush;
      return kExitDone;
    } else if (a == "--config") {
      config_path = next("a file");
    } else if (a == "--json") {
      json = true;
    } else if (a == "--second-pass-ms") {
      second_pass_ms =
          CommandLineNumber(xa::recover_tool::kSecondPassMs, next("a number of milliseconds"));
    } else if (a == "--sessions") {
      sessions = CommandLineNumber(xa::recover_tool::kSessions, next("a number"));
    } else if (a == "--reason") {
      reason = next("a text");
    } else if (a == "--password" || a.rfind("--password=", 0) == 0) {
      std::cerr << "xa-recover: passwords are never taken from the command line (other users "
                   "see it in ps): use password_file or password_env in the configuration\n";
      return kExitUsage;
    } else if (command.empty() &&
               (a == "plan" || a == "resolve" || a == "force" || a == "clear-heuristic")) {
      command = a;
    } else if (command == "clear-heuristic" && force_xid.empty()) {
      force_xid = a;
    } else if (command == "force" && force_what.empty()) {
      force_what = a;
    } else if (command == "force" && force_xid.empty()) {
      force_xid = a;
    } else {
      std::cerr << "xa-recover: unexpected argument '" << xa::internal::EscapeForMessage(a)
                << "'\n\n" << kUsage;
      return kExitUsage;
    }
  }
  if (command.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  if (config_path.empty()) {
    std::cerr << "xa-recover: no configuration: pass --config FILE or set XA_RECOVER_CONFIG\n";
    return kExitUsage;
  }
  std::optional<xa::Xid> forced;
  if (command == "force") {
    if (force_what != "commit" && force_what != "rollback") {
      std::cerr << "xa-recover: force takes 'commit' or 'rollback', then the XID\n";
      return kExitUsage;
    }
    auto xid = xa::Xid::Parse(force_xid);
    if (!xid.ok()) {
      std::cerr << "xa-recover: " << xid.status().ToString() << "\n";
      return kExitUsage;
    }
    if (reason.empty()) {
      std::cerr << "xa-recover: force needs --reason TEXT (it is written to the decision log)\n";
      return kExitUsage;
    }
    forced = *xid;
  }
  std::optional<xa::Xid> to_clear;
  if (command == "clear-heuristic") {
    auto xid = xa::Xid::Parse(force_xid);
    if (!xid.ok()) {
      std::cerr << "xa-recover: clear-heuristic takes the XID that plan reports: "
                << xid.status().ToString() << "\n";
      return kExitUsage;
    }
    if (reason.empty()) {
      std::cerr << "xa-recover: clear-heuristic needs --reason TEXT (what was checked or "
                   "repaired; it is written to the decision log)\n";
      return kExitUsage;
    }
    to_clear = *xid;
  }

  auto config = xa::recover_tool::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "xa-recover: " << config.status().ToString() << "\n";
    return kExitConfig;
  }
  std::vector<std::unique_ptr<xa::ResourceManager>> owned;
  std::vector<xa::ResourceManager*> rms;
  // resolve spreads each RM's work over `sessions` sessions; plan and force need one.
  const long per_rm = command == "resolve" ? sessions : 1;
  for (const auto& rm : config->rms) {
    for (long session = 0; session < per_rm; ++session) {
      auto made = xa::tools::MakeResourceManager(rm);
      if (!made.ok()) {
        // An RM that cannot be reached now is not a configuration error: recovery resolves
        // what the others hold and reports its branches as in doubt. A refused setup is.
        if (made.status().code() == xa::Code::kConfig ||
            made.status().code() == xa::Code::kInval) {
          std::cerr << "xa-recover: resource manager '" << xa::internal::EscapeForMessage(rm.name)
                    << "': " << made.status().ToString() << "\n";
          return kExitConfig;
        }
        std::cerr << "xa-recover: resource manager '" << xa::internal::EscapeForMessage(rm.name)
                  << "' is unreachable now: " << made.status().ToString() << "\n"
                  << "xa-recover: its branches stay in doubt; run again once it is back\n";
        owned.push_back(xa::MakeUnreachableResourceManager(rm.name, made.status()));
        rms.push_back(owned.back().get());
        break;
      }
      rms.push_back(made->get());
      owned.push_back(std::move(made).value());
    }
  }

  xa::LogOptions log_options;
  log_options.dir = config->log_dir;
  log_options.node_id = config->node_id;
  xa::RecoveryOptions options;
  options.node_id = config->node_id;
  options.orphan_min_age = config->orphan_min_age;
  options.dry_run = command == "plan";
  options.marker.rm = config->marker_rm;
  options.marker.table = config->marker_table;
  options.marker.settle_wait = config->marker_settle_wait;
  // The participant agents of three-phase commit, when configured: the 3PC recovery module
  // finishes open 3PC records through them (plan only asks their states).
  std::optional<xa::net::SharedKey> agents_key;
  std::unique_ptr<xa::net::Transport> agents_transport;
  std::unique_ptr<xa::three_phase::AgentClient> agents;
  if (!config->agents.empty()) {
    auto key = xa::net::LoadSharedKey(config->agents_key_file);
    if (!key.ok()) {
      std::cerr << "xa-recover: agents_key_file: " << key.status().ToString() << "\n";
      return kExitConfig;
    }
    agents_key.emplace(std::move(key).value());
    xa::three_phase::AgentDirectory directory;
    for (const auto& agent : config->agents) {
      directory.address_of_agent[agent.name] = agent.address;
      for (const std::string& rm : agent.rms) directory.agent_of_rm[rm] = agent.name;
    }
    if (auto valid = directory.Validate(); !valid.ok()) {
      std::cerr << "xa-recover: " << valid.ToString() << "\n";
      return kExitConfig;
    }
    agents_transport = xa::net::NewTcpTransport(xa::Env::Default()->clock());
    agents = std::make_unique<xa::three_phase::AgentClient>(
        agents_transport.get(), &*agents_key,
        "xa-recover-node-" + std::to_string(config->node_id), std::move(directory));
    options.agents = agents.get();
    options.agent_timeout = config->agent_timeout;
  }
  auto last_progress = std::chrono::steady_clock::now();
  options.progress = [&](size_t done, size_t total) {
    auto now = std::chrono::steady_clock::now();
    if (done == total || now - last_progress > std::chrono::seconds(1)) {
      std::cerr << "xa-recover: " << done << "/" << total << " branches resolved\n";
      last_progress = now;
    }
  };

  // The tool never creates a log (a mistyped log_dir must not look like an empty log) and
  // plan never writes to one: it reads the directory without the writer's lock.
  log_options.create_if_missing = false;
  if (auto exists = xa::DecisionLog::CheckExists(log_options); !exists.ok()) {
    std::cerr << "xa-recover: " << exists.ToString() << "\n";
    return kExitNoLog;
  }
  std::unique_ptr<xa::DecisionLog> log;
  std::unique_ptr<xa::RecoveryEngine> engine;
  auto opened = command == "plan" ? xa::DecisionLog::OpenReadOnly(log_options)
                                  : xa::DecisionLog::Open(log_options);
  if (opened.ok() && !(*opened)->State().damaged) {
    log = std::move(opened).value();
    engine = std::make_unique<xa::RecoveryEngine>(*log, rms, options);
  } else if ((opened.ok() || opened.status().code() == xa::Code::kCorruption) && !forced &&
             !to_clear) {
    auto state = opened.ok() ? xa::Result<xa::LogState>((*opened)->State())
                             : xa::DecisionLog::ReadState(log_options);
    if (!state.ok()) {
      std::cerr << "xa-recover: " << state.status().ToString() << "\n";
      return kExitLog;
    }
    std::cerr << "xa-recover: the decision log is damaged: " << state->damage_report
              << "\nxa-recover: " << (command == "plan" ? "resolve would commit" : "committing")
              << " the decisions read before the damage; presumed abort is refused\n";
    engine = std::make_unique<xa::RecoveryEngine>(std::move(state).value(), rms, options);
  } else if (opened.ok()) {
    // force and clear-heuristic write to the log: never to a damaged one.
    std::cerr << "xa-recover: the decision log is damaged: " << (*opened)->State().damage_report
              << "\nxa-recover: " << command << " writes to the log, so it refuses a damaged "
              << "one; resolve commits what the log still holds\n";
    return kExitDamaged;
  } else {
    std::cerr << "xa-recover: " << opened.status().ToString() << "\n";
    return kExitLog;
  }

  if (to_clear) {
    xa::Status cleared = engine->ClearHeuristic(*to_clear, reason);
    if (!cleared.ok()) {
      std::cerr << "xa-recover: " << cleared.ToString() << "\n";
      return cleared.code() == xa::Code::kNoTa ? kExitUsage : kExitLog;
    }
    std::cout << "xa-recover: cleared the heuristic outcome of " << to_clear->ToString() << "\n";
    return kExitDone;
  }
  if (forced) {
    auto report = engine->Force(*forced,
                                force_what == "commit" ? xa::RecoveryEngine::Forced::kCommit
                                                       : xa::RecoveryEngine::Forced::kRollback,
                                reason);
    if (!report.ok()) {
      std::cerr << "xa-recover: " << report.status().ToString() << "\n";
      return report.status().code() == xa::Code::kLogFailed ? kExitLog : kExitNotFinished;
    }
    Print(*report, json);
    return report->failed == 0 ? kExitDone : kExitNotFinished;
  }
  auto report = engine->Run();
  if (!report.ok()) {
    std::cerr << "xa-recover: " << report.status().ToString() << "\n";
    return kExitConfig;
  }
  if (command == "resolve" && report->orphans_deferred > 0 && !report->log_damaged &&
      second_pass_ms > 0) {
    std::cerr << "xa-recover: " << report->orphans_deferred
              << " orphan(s) too young for presumed abort; second pass in " << second_pass_ms
              << " ms\n";
    Print(*report, json);
    std::this_thread::sleep_for(std::chrono::milliseconds(second_pass_ms));
    report = engine->Run();
    if (!report.ok()) {
      std::cerr << "xa-recover: " << report.status().ToString() << "\n";
      return kExitConfig;
    }
  }
  Print(*report, json);
  return ExitFor(*report);
}
