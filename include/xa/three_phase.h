// Three-phase commit: how a manager reaches the participant agents (xa-agent) that hold the 3PC
// state of its resource managers' branches. The protocol, its failure paths and what it assumes
// are in docs/three-phase-commit.md.
//
//   xa::TransactionManagerOptions options;
//   options.three_phase.agents = {{"agent-a", "127.0.0.1:17001", {"accounts"}},
//                                 {"agent-b", "127.0.0.1:17002", {"ledger"}}};
//   options.three_phase.key_file = "/etc/myservice/agents.key";  // the agents' shared key
//   ...
//   auto txn = (*manager)->Begin(xa::Protocol::kThreePhase);
//
// Every resource manager a 3PC transaction enlists must belong to exactly one agent, and every
// agent's own configuration must hold the same directory (names, addresses, resource managers).
// A 2PC transaction of the same manager may use the same resource managers.

#ifndef XA_THREE_PHASE_H_
#define XA_THREE_PHASE_H_

#include <chrono>
#include <string>
#include <vector>

namespace xa {

// One participant agent.
struct ThreePhaseAgent {
  std::string name;              // as in the agent's configuration ("agent = ...")
  std::string address;           // "127.0.0.1:17001" or "[::1]:17001"
  std::vector<std::string> rms;  // the resource manager names it stands for
};

// Three-phase commit settings of a TransactionManager (TransactionManagerOptions::three_phase).
struct ThreePhaseOptions {
  // No agent (the default): Begin(Protocol::kThreePhase) fails with XA_NOTSUPPORTED.
  std::vector<ThreePhaseAgent> agents;
  // The shared key file of the agents (mode 0600 or 0400, owned by the process's user; see
  // xa-agent's documentation): every connection to an agent proves that both sides hold it.
  std::string key_file;
  // How the manager calls itself in the handshake and in the agents' logs; "" means
  // "tm-node-<node_id>".
  std::string name;
  // How long the coordinator waits for all votes (CanCommit) before it aborts, and for all
  // PreCommit acknowledgements before it leaves the outcome to the agents (Commit() then
  // returns Outcome::kUnknown with XA_TIMEOUT). Both must be shorter than the agents'
  // termination timeout.
  std::chrono::milliseconds vote_timeout{std::chrono::seconds(2)};
  // The wait for the PreCommit acknowledgements (see vote_timeout).
  std::chrono::milliseconds ack_timeout{std::chrono::seconds(2)};
  // Whether CanCommit goes to the agents at the same time as XA END and XA PREPARE go to the
  // databases (true) or once every database has voted (false). At once, the agents record WAIT
  // while the databases prepare, which takes their round off every commit's path (about a
  // quarter of 3PC's commit latency; docs/bench.md). Its price is for transactions that wrote on
  // at most one branch: a read-only vote comes too late to spare the agents, so such a
  // transaction runs every phase through them, where after the votes it commits its one writing
  // branch as 2PC does with no agent, and a rollback vote aborts before any agent hears of it.
  bool ask_agents_during_prepare = true;
};

}  // namespace xa

#endif  // XA_THREE_PHASE_H_
