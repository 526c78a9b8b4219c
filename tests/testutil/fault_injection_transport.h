// FaultInjectionNetwork: wraps any xa::net::Transport and makes the network between named nodes
// lose, delay, reorder and partition messages, deterministically (after FoundationDB's simulated
// network, in miniature).
//
//   FakeClock clock;
//   auto tcp = net::NewTcpTransport(&clock);
//   FaultInjectionNetwork network(tcp.get(), /*seed=*/42);
//   auto coordinator = network.NodeTransport("coordinator");
//   auto agent = network.NodeTransport("agent-1");
//   ... agent->Listen(...), coordinator->Connect(...) as with any transport ...
//   network.PartitionOneWay("agent-1", "coordinator");  // the agent's replies are lost
//
// Nodes. Each node uses its own NodeTransport; a listener is known by the name of the node that
// opened it, and a connection learns its peer's name from a hello message that NodeTransport's
// Connect sends and its Accept reads, before the caller sees the connection. (Both ends must be
// nodes of the same network.)
//
// Faults act on the messages a node sends, per direction ("link" from -> to), from the moment
// they are set:
//   Partition(a, b) / PartitionOneWay(from, to)  messages are lost; a Connect across a partition
//                        (either direction) waits for a Heal until its deadline, then XA_TIMEOUT
//   DropNext(from, to, n)       the next n messages are lost
//   SetDropRate(from, to, p)    each message is lost with probability p
//   SetDelay(from, to, lo, hi)  each message is delivered after a delay drawn from [lo, hi] on
//                               the clock; a later message with a shorter delay overtakes it
//   SetReorderRate(from, to, p) with probability p a message is held back and delivered right
//                               after the next message of the link (ReleaseHeld sends it alone)
// Lost messages are lost silently, as on a real network: Send() still returns OK.
//
// Determinism: every random draw comes from a generator per link, seeded from the network's seed
// and the link's names, in the order of that link's Send calls; delays are read on the
// transport's clock (a FakeClock: delivered when the test advances it; ties go in send order).
// The same seed and the same sends give the same losses, delays and order.
//
// Thread-safe. The network must outlive its node transports and their connections.

#ifndef XA_TESTS_TESTUTIL_FAULT_INJECTION_TRANSPORT_H_
#define XA_TESTS_TESTUTIL_FAULT_INJECTION_TRANSPORT_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "src/net/transport.h"

namespace xa::test {

class FaultInjectionNetwork {
 public:
  FaultInjectionNetwork(net::Transport* target, uint64_t seed);
  ~FaultInjectionNetwork();  // delayed messages not yet delivered are lost
  FaultInjectionNetwork(const FaultInjectionNetwork&) = delete;
  FaultInjectionNetwork& operator=(const FaultInjectionNetwork&) = delete;

  // The transport that node `node` uses.
  std::unique_ptr<net::Transport> NodeTransport(const std::string& node);

  void Partition(const std::string& a, const std::string& b);
  void PartitionOneWay(const std::string& from, const std::string& to);
  void Heal(const std::string& a, const std::string& b);  // both directions
  void HealAll();
  void DropNext(const std::string& from, const std::string& to, int n);
  void SetDropRate(const std::string& from, const std::string& to, double probability);
  void SetDelay(const std::string& from, const std::string& to, std::chrono::microseconds min,
                std::chrono::microseconds max);
  void SetReorderRate(const std::string& from, const std::string& to, double probability);
  // Sends the message held back for reordering on the link, if any.
  void ReleaseHeld(const std::string& from, const std::string& to);
  // Every fault of every link, partitions included (messages in delay or held stay so).
  void ClearFaults();

  struct LinkStats {
    uint64_t sent = 0;       // Send calls
    uint64_t dropped = 0;    // lost to a partition, DropNext or the drop rate
    uint64_t delayed = 0;    // scheduled for later delivery
    uint64_t reordered = 0;  // held back behind the next message
    uint64_t forwarded = 0;  // handed to the underlying connection (at once or later)
  };
  LinkStats Stats(const std::string& from, const std::string& to) const;
  // Messages scheduled with a delay and not yet forwarded, over all links.
  size_t in_delay() const;

  // Used by the node transports and connections (fault_injection_transport.cc).
  Clock* clock() const;
  net::Transport* target() const { return target_; }
  void RegisterListener(const std::string& address, const std::string& node);
  std::string NodeAt(const std::string& address) const;
  // Waits for `from` and `to` to be connected both ways; false at the deadline.
  bool WaitUntilReachable(const std::string& from, const std::string& to,
                          Clock::SteadyTime deadline);
  // Applies the link's faults to one message; forwards it to `via` now, later, or never.
  Status Route(const std::string& from, const std::string& to,
               const std::shared_ptr<net::Connection>& via, std::string_view message);

 private:
  using LinkKey = std::pair<std::string, std::string>;
  struct Link {
    explicit Link(uint64_t seed) : random(seed) {}
    std::mt19937_64 random;
    bool partitioned = false;
    int drop_next = 0;
    double drop_rate = 0;
    std::chrono::microseconds delay_min{0}, delay_max{0};
    double reorder_rate = 0;
    std::optional<std::pair<std::shared_ptr<net::Connection>, std::string>> held;
    LinkStats stats;
  };
  struct Delayed {
    std::shared_ptr<net::Connection> via;
    std::string message;
    LinkKey link;
  };

  Link& LinkLocked(const std::string& from, const std::string& to);
  double UniformLocked(Link& link);  // [0, 1)
  void DeliveryLoop();

  net::Transport* const target_;
  const uint64_t seed_;

  mutable std::mutex mu_;
  std::condition_variable changed_;  // faults changed, a message scheduled, or stopping
  std::map<LinkKey, Link> links_;               // guarded by mu_
  std::map<std::string, std::string> nodes_;    // listen address -> node; guarded by mu_
  // Delayed messages by (due time, sequence number); guarded by mu_.
  std::map<std::pair<Clock::SteadyTime, uint64_t>, Delayed> delayed_;
  uint64_t next_sequence_ = 0;  // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread delivery_;        // sends delayed messages when they are due
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_FAULT_INJECTION_TRANSPORT_H_
