// Participant agents inside a test process, over loopback TCP, for the tests of three-phase
// commit through the manager: the shared key file, one listener per agent bound before any agent
// starts (the directory needs every address first, and a port the kernel picked stays ours), and
// agents started, stopped and restarted on their own logs.
//
//   InProcessAgents agents(node_id, &key);
//   agents.Add("agent-a", {"accounts"});
//   agents.Add("agent-b", {"ledger"});
//   ASSERT_THAT(agents.Start("agent-a", &finisher_a, /*incarnation=*/1, timeouts), IsOk());
//   options.three_phase.agents = agents.ThreePhaseAgents();

#ifndef XA_TESTS_AGENT_IN_PROCESS_AGENTS_H_
#define XA_TESTS_AGENT_IN_PROCESS_AGENTS_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemons/agent/agent.h"
#include "daemons/agent/branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/three_phase.h"
#include "xa/transaction_manager.h"
#include "xa/xid.h"

namespace xa::test {

// A fresh directory under /tmp; "" when it cannot be made (the caller asserts).
inline std::string MakeTempDir(const std::string& tag) {
  std::string pattern = "/tmp/xa-" + tag + "-XXXXXX";
  char* dir = mkdtemp(pattern.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

// Writes `dir`/agents.key, mode 0600, holding a fixed test key; returns its path.
inline std::string WriteTestKeyFile(const std::string& dir) {
  const std::string path = dir + "/agents.key";
  {
    std::ofstream out(path);
    out << "the agents' shared key of the 3PC tests, over 32 bytes";
  }
  EXPECT_EQ(chmod(path.c_str(), 0600), 0);
  return path;
}

// Polls `done` every 10 ms until it holds or `limit` passes; returns its last value.
template <typename Pred>
bool Eventually(Pred done, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

struct AgentTimeouts {
  std::chrono::microseconds termination{std::chrono::seconds(30)};
  std::chrono::microseconds peer{std::chrono::seconds(1)};
};

class InProcessAgents {
 public:
  // `key` must outlive the agents.
  InProcessAgents(uint32_t node_id, const net::SharedKey* key) : node_id_(node_id), key_(key) {}
  ~InProcessAgents() {
    for (auto& [name, slot] : agents_) slot.Stop();
    for (auto& [name, slot] : agents_) {
      if (!slot.log_dir.empty()) std::filesystem::remove_all(slot.log_dir);
    }
  }
  InProcessAgents(const InProcessAgents&) = delete;
  InProcessAgents& operator=(const InProcessAgents&) = delete;

  // Adds agent `name`, standing for `rms`, with a listener on a port the kernel picks, bound
  // now and kept until the agent starts.
  void Add(const std::string& name, const std::vector<std::string>& rms) {
    Slot& slot = agents_[name];
    slot.rms = rms;
    slot.log_dir = MakeTempDir("3pc-agent");
    ASSERT_FALSE(slot.log_dir.empty());
    ASSERT_NO_FATAL_FAILURE(Bind(slot, "127.0.0.1:0"));
    directory_.address_of_agent[name] = slot.listener->address();
    for (const std::string& rm : rms) directory_.agent_of_rm[rm] = name;
  }

  // Starts agent `name` on its log, or restarts it after Stop() (a new transport listens on
  // its address again). Every agent must be added first: each knows the whole directory.
  void Start(const std::string& name, agent::BranchFinisher* finisher, uint64_t incarnation,
             AgentTimeouts timeouts = {}) {
    Slot& slot = agents_.at(name);
    if (slot.listener == nullptr) {
      ASSERT_NO_FATAL_FAILURE(Bind(slot, directory_.address_of_agent.at(name)));
    }
    LogOptions log_options;
    log_options.dir = slot.log_dir;
    log_options.node_id = node_id_;
    // Small preallocated segments: each Scan a test makes reads the segment's zero tail, 64 MiB
    // by default, which took most of these tests' time under TSan.
    log_options.segment_size_bytes = 1 << 20;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    slot.log = std::move(*log);
    agent::AgentOptions options;
    options.name = name;
    options.listen_address = directory_.address_of_agent.at(name);
    options.agent_of_rm = directory_.agent_of_rm;
    options.address_of_agent = directory_.address_of_agent;
    options.termination_timeout = timeouts.termination;
    options.peer_timeout = timeouts.peer;
    agent::AgentDependencies deps;
    deps.env = Env::Default();
    deps.log = slot.log.get();
    deps.transport = slot.transport.get();
    deps.key = key_;
    deps.finisher = finisher;
    deps.incarnation = incarnation;
    Result<std::unique_ptr<agent::Agent>> started =
        agent::Agent::Start(options, deps, std::move(slot.listener));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    slot.running = std::move(*started);
  }

  // As a crash looks to the peers: the agent stops, its log and its port are released.
  void Stop(const std::string& name) { agents_.at(name).Stop(); }

  agent::Agent& Get(const std::string& name) { return *agents_.at(name).running; }
  DecisionLog& log(const std::string& name) { return *agents_.at(name).log; }
  agent::AgentCounters counters(const std::string& name) {
    return agents_.at(name).running->counters();
  }

  // What agent `name`'s log holds open for participant `number` of `global`; nullopt once it
  // is done, or when it never recorded it.
  std::optional<LogRecord> OpenParticipant(const std::string& name, const Xid& global,
                                           uint16_t number) {
    LogState state = log(name).State();
    auto it = state.open_participants.find(global.WithBranch(number));
    if (it == state.open_participants.end()) return std::nullopt;
    return it->second;
  }

  const three_phase::AgentDirectory& directory() const { return directory_; }

  // Points a manager's 3PC options at these agents, with coordinator timeouts long enough for
  // a loaded machine (a test that wants the coordinator silent stops talking instead).
  void ConfigureManager(TransactionManagerOptions& options, const std::string& key_file) const {
    options.three_phase.agents = ThreePhaseAgents();
    options.three_phase.key_file = key_file;
    options.three_phase.vote_timeout = std::chrono::seconds(10);
    options.three_phase.ack_timeout = std::chrono::seconds(10);
  }
  // The same directory, as TransactionManagerOptions::three_phase.agents wants it.
  std::vector<ThreePhaseAgent> ThreePhaseAgents() const {
    std::vector<ThreePhaseAgent> out;
    for (const auto& [name, slot] : agents_) {
      out.push_back(ThreePhaseAgent{name, directory_.address_of_agent.at(name), slot.rms});
    }
    return out;
  }

 private:
  struct Slot {
    std::vector<std::string> rms;
    std::string log_dir;
    std::unique_ptr<net::Transport> transport;
    std::unique_ptr<net::Listener> listener;  // until the agent takes it
    std::unique_ptr<DecisionLog> log;
    std::unique_ptr<agent::Agent> running;

    void Stop() {
      if (running != nullptr) running->Stop();
      running.reset();
      log.reset();
      listener.reset();
      transport.reset();
    }
  };

  static void Bind(Slot& slot, const std::string& address) {
    slot.transport = net::NewTcpTransport(Env::Default()->clock());
    Result<std::unique_ptr<net::Listener>> listener = slot.transport->Listen(address);
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    slot.listener = std::move(*listener);
  }

  const uint32_t node_id_;
  const net::SharedKey* const key_;
  three_phase::AgentDirectory directory_;
  std::map<std::string, Slot> agents_;
};

}  // namespace xa::test

#endif  // XA_TESTS_AGENT_IN_PROCESS_AGENTS_H_
