// AgentClient: how a coordinator (the manager's three-phase coordinator, its 3PC recovery module,
// an operator's tool) talks to the participant agents (docs/three-phase-commit.md).
//
//   AgentDirectory directory{{{"accounts", "agent-a"}}, {{"agent-a", "127.0.0.1:17001"}}};
//   AgentClient client(transport, &key, "tm-node-7", directory);
//   Result<AgentMessage> reply = client.Call("accounts", request, clock->DeadlineAfter(2s));
//
// A call goes to the agent that stands for the resource manager named in it, over an
// authenticated connection (src/net/peer_auth.h) taken from a small pool per agent, and waits for
// the message that carries the request's id. Messages on the connection with another id are
// replies to earlier calls that timed out: they are dropped, so a late answer is never taken for
// a current one. A connection that failed, timed out or carried garbage is closed, never pooled.
// A pooled connection found closed by the agent (it restarted since) empties the pool, and the
// request goes once more on a new connection: every agent message is idempotent.
//
// Errors: XA_CONFIG for a resource manager the directory does not name; XA_TIMEOUT when the
// deadline passes (the agent may or may not have acted: the caller decides what that means);
// XA_IO_ERROR when the agent cannot be reached or the connection broke; XA_CORRUPTION for a
// reply that does not decode; an agent's Error message is returned as a Status with its code and
// message, prefixed with the agent's name.
//
// Thread safety: Call() and Start()/Finish() may run on many threads at once; each call uses a
// connection of its own. A call's Start and Finish run on one thread.

#ifndef XA_SRC_THREE_PHASE_AGENT_CLIENT_H_
#define XA_SRC_THREE_PHASE_AGENT_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_messages.h"
#include "xa/status.h"

namespace xa::three_phase {

// Which agent stands for which resource manager, and where each agent listens. The coordinator
// and every agent read the same directory from their configuration.
struct AgentDirectory {
  std::map<std::string, std::string> agent_of_rm;       // resource manager name → agent name
  std::map<std::string, std::string> address_of_agent;  // agent name → "host:port"

  // XA_CONFIG naming what is missing: an agent without an address, or an empty name.
  Status Validate() const;
  // The agent standing for `rm_name`; XA_CONFIG when the directory names none.
  Result<std::string> AgentOf(const std::string& rm_name) const;
};

struct AgentClientOptions {
  // The most idle connections kept per agent; more are closed when returned.
  size_t max_idle_connections_per_agent = 16;
};

class AgentClient {
  struct Pool;  // the idle connections to one agent

 public:
  // `transport` and `key` must outlive the client. `my_name` is what agents see in the
  // handshake (and log).
  AgentClient(net::Transport* transport, const net::SharedKey* key, std::string my_name,
              AgentDirectory directory, AgentClientOptions options = {});
  ~AgentClient();
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  // Sends `request` (its request_id is replaced by a fresh one) to the agent standing for
  // `rm_name` and returns its reply. See the header comment for the errors.
  Result<AgentMessage> Call(const std::string& rm_name, AgentMessage request,
                            Clock::SteadyTime deadline);

  // Call in two halves, so that one thread can have requests to several agents under way at
  // once (a phase's round, without a thread per agent): Start sends the request and returns at
  // once; Finish waits for its reply and returns what Call would have. Every started call must
  // be finished (that returns its connection to the pool or closes it), on the thread that
  // started it.
  class PendingCall {
   public:
    PendingCall(PendingCall&&) noexcept;
    PendingCall& operator=(PendingCall&&) noexcept;
    ~PendingCall();

   private:
    friend class AgentClient;
    PendingCall();
    std::string rm_name_;
    std::string context_;
    AgentMessage request_;
    std::string payload_;
    Pool* pool_ = nullptr;
    std::unique_ptr<net::Connection> connection_;
    bool reused_ = false;
    Status status_;  // why the call failed before its reply, or OK
  };
  PendingCall Start(const std::string& rm_name, AgentMessage request, Clock::SteadyTime deadline);
  Result<AgentMessage> Finish(PendingCall& call, Clock::SteadyTime deadline);

  const AgentDirectory& directory() const { return directory_; }

 private:
  struct Pool {
    std::mutex mu;
    std::vector<std::unique_ptr<net::Connection>> idle;
  };
  // An idle connection (`*reused`), else a new, authenticated one.
  Result<std::unique_ptr<net::Connection>> Checkout(const std::string& agent, Pool& pool,
                                                    Clock::SteadyTime deadline, bool* reused);
  void Return(Pool& pool, std::unique_ptr<net::Connection> connection);
  // Closes every idle connection of `pool` (the agent closed one: it restarted).
  void DropIdle(Pool& pool);
  Pool& PoolOf(const std::string& agent);

  net::Transport* transport_;
  const net::SharedKey* key_;
  std::string my_name_;
  AgentDirectory directory_;
  AgentClientOptions options_;
  std::atomic<uint64_t> next_request_id_;
  std::mutex pools_mu_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;
};

}  // namespace xa::three_phase

#endif  // XA_SRC_THREE_PHASE_AGENT_CLIENT_H_
