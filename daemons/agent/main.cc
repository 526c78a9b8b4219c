// xa-agent: the three-phase-commit participant agent (docs/three-phase-commit.md). A thin main
// over xa::agent::Agent: reads the configuration (agent_config.h), opens the agent's own log,
// takes the next incarnation, connects its resource managers through the drivers, serves until
// SIGTERM or SIGINT.
//
// Exit codes (also in --help):
//   0  stopped by SIGTERM or SIGINT
//   2  usage error
//   3  configuration error (the file, the key, a resource manager's settings)
//   4  the agent's log or its incarnation file cannot be used (locked by another agent,
//      unreadable, damaged)
//   5  the agent could not start serving (the listen address is taken, ...)

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "daemons/agent/agent.h"
#include "daemons/agent/agent_config.h"
#include "daemons/agent/agent_metrics.h"
#include "daemons/agent/incarnation.h"
#include "daemons/agent/rm_branch_finisher.h"
#include "src/base/escape.h"
#include "src/http/http_server.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "tools/common/rm_from_config.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/logging.h"

namespace {

constexpr int kExitStopped = 0;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;
constexpr int kExitLog = 4;
constexpr int kExitServe = 5;

constexpr char kUsage[] =
    "usage: xa-agent --config FILE\n"
    "\n"
    "Stands beside one or more databases as the three-phase-commit participant for their\n"
    "branches: records each participant's state durably in its own log, answers the\n"
    "coordinator and its peer agents, and, when the coordinator falls silent, finishes the\n"
    "transactions with its peers (termination), fencing the coordinator's sessions first.\n"
    "\n"
    "options:\n"
    "  --config FILE   the agent's configuration (its format: man 5 xa-agent.conf); required\n"
    "  --help          this text\n"
    "\n"
    "environment:\n"
    "  XA_LOG_LEVEL    trace, debug, info (default), warning, error\n"
    "\n"
    "exit codes:\n"
    "  0  stopped by SIGTERM or SIGINT\n"
    "  2  usage error\n"
    "  3  configuration error\n"
    "  4  the agent's log or incarnation file cannot be used\n"
    "  5  the agent could not start serving (for example, its address or its metrics_address\n"
    "     is taken)\n";

int Fail(int code, const std::string& what) {
  std::cerr << "xa-agent: " << what << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return kExitStopped;
    }
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
      continue;
    }
    return Fail(kExitUsage, "unknown or incomplete option '" +
                                xa::internal::EscapeForMessage(arg) + "'\n" + kUsage);
  }
  if (config_path.empty()) return Fail(kExitUsage, std::string("--config is required\n") + kUsage);

  // The signals are taken by sigwait below, on this thread: block them before any thread starts
  // so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  xa::Result<xa::agent::AgentConfig> config = xa::agent::LoadAgentConfig(config_path);
  if (!config.ok()) return Fail(kExitConfig, config.status().ToString());
  xa::Result<xa::net::SharedKey> key = xa::net::LoadSharedKey(config->key_file);
  if (!key.ok()) return Fail(kExitConfig, key.status().ToString());

  std::map<std::string, xa::ResourceManagerFactory> factories;
  for (const xa::internal::RmConfig& rm : config->rms) {
    factories[rm.name] = [rm]() { return xa::tools::MakeResourceManager(rm); };
  }

  xa::LogOptions log_options;
  log_options.dir = config->log_dir;
  log_options.node_id = config->node_id;
  xa::Result<std::unique_ptr<xa::DecisionLog>> log = xa::DecisionLog::Open(log_options);
  if (!log.ok()) return Fail(kExitLog, log.status().ToString());
  xa::Result<uint64_t> incarnation = xa::agent::NextIncarnation(config->log_dir);
  if (!incarnation.ok()) return Fail(kExitLog, incarnation.status().ToString());

  std::unique_ptr<xa::net::Transport> transport =
      xa::net::NewTcpTransport(xa::Env::Default()->clock());
  xa::agent::RmBranchFinisher finisher(std::move(factories));
  xa::agent::AgentOptions options;
  options.name = config->agent;
  options.listen_address = config->address_of_agent.at(config->agent);
  options.agent_of_rm = config->agent_of_rm;
  options.address_of_agent = config->address_of_agent;
  options.termination_timeout = config->termination_timeout;
  options.peer_timeout = config->peer_timeout;
  options.orphan_scan_interval = config->orphan_scan_interval;
  options.orphan_scan_nodes = config->coordinator_node_ids;
  xa::agent::AgentDependencies deps;
  deps.env = xa::Env::Default();
  deps.log = log->get();
  deps.transport = transport.get();
  deps.key = &*key;
  deps.finisher = &finisher;
  deps.lister = &finisher;
  deps.incarnation = *incarnation;
  xa::Result<std::unique_ptr<xa::agent::Agent>> agent = xa::agent::Agent::Start(options, deps);
  if (!agent.ok()) return Fail(kExitServe, agent.status().ToString());
  std::cerr << "xa-agent: " << config->agent << " serving on " << (*agent)->address()
            << " (incarnation " << *incarnation << ")\n";

  // The metrics page: the agent's counters, rendered at each scrape.
  std::unique_ptr<xa::http::HttpServer> metrics;
  if (config->metrics_address) {
    xa::http::HttpServerOptions http;
    http.address = *config->metrics_address;
    const xa::agent::Agent* serving = agent->get();
    http.routes["/metrics"] = [serving] {
      return xa::http::HttpResponse{200, std::string(xa::http::kPrometheusContentType),
                                    xa::agent::RenderAgentPrometheus(serving->counters())};
    };
    xa::Result<std::unique_ptr<xa::http::HttpServer>> started =
        xa::http::HttpServer::Start(std::move(http));
    if (!started.ok()) {
      (*agent)->Stop();
      return Fail(kExitServe, started.status().WithContext("metrics_address").ToString());
    }
    metrics = std::move(*started);
    std::cerr << "xa-agent: metrics on http://" << metrics->address() << "/metrics\n";
  }

  int received = 0;
  sigwait(&stop_signals, &received);
  std::cerr << "xa-agent: " << strsignal(received) << ", stopping\n";
  if (metrics) metrics->Stop();
  (*agent)->Stop();
  return kExitStopped;
}
