// LinkRelay: a TCP relay between the coordinator and one participant agent that delays what
// crosses it, both ways: what `tc netem` does to a link, done in user space so that it works on
// every machine, including containers and microVMs whose kernel has no netem qdisc.
//
//   LinkShape shape{std::chrono::milliseconds(4), std::chrono::milliseconds(6), 0.01};
//   auto relay = LinkRelay::Start("127.0.0.1:7001", shape, /*seed=*/1);
//   ... the coordinator is told the agent is at (*relay)->address() ...
//
// Each chunk of bytes read from one side is written to the other after a delay drawn uniformly
// from [min_delay, max_delay]. With probability `loss` a chunk is held `retransmit` longer:
// that is what losing a packet does to a TCP connection (the sender retransmits after its
// retransmission timeout, 200 ms at least on Linux), whose bytes still arrive whole and in
// order. So chunks of one direction leave in the order they arrived, and the ones behind a late
// chunk wait for it, as TCP's in-order delivery makes them. Messages are never dropped or
// damaged: the framing above TCP sees a slow link, not a broken one.
//
// One thread accepts; each relayed connection has a thread per direction that reads and one that
// writes. Closing one side closes the other's write half once every byte before it was written.
//
// Thread safety: the counters may be read from any thread; destroy the relay from one.

#ifndef XA_BENCH_LOCKHOLD_LINK_RELAY_H_
#define XA_BENCH_LOCKHOLD_LINK_RELAY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "xa/status.h"

namespace xa::bench {

struct LinkShape {
  std::chrono::microseconds min_delay{0};  // one way, each direction
  std::chrono::microseconds max_delay{0};
  double loss = 0;                          // the share of chunks held for a retransmission
  std::chrono::microseconds retransmit{std::chrono::milliseconds(200)};
};

class LinkRelay {
 public:
  // Listens on 127.0.0.1 (a port the kernel picks) and relays each connection to `target`
  // ("127.0.0.1:<port>"). XA_INVAL for a bad target or shape; XA_IO_ERROR when it cannot listen.
  static Result<std::unique_ptr<LinkRelay>> Start(const std::string& target, LinkShape shape,
                                                  uint64_t seed);
  ~LinkRelay();  // closes every connection and joins every thread
  LinkRelay(const LinkRelay&) = delete;
  LinkRelay& operator=(const LinkRelay&) = delete;

  // Where to connect instead of the target: "127.0.0.1:<port>".
  const std::string& address() const { return address_; }
  // Chunks relayed, both directions, and how many of them were held for a retransmission.
  uint64_t chunks() const { return chunks_.load(); }
  uint64_t retransmitted() const { return retransmitted_.load(); }

 private:
  class Direction;
  struct Relayed;
  LinkRelay(int listen_fd, int target_port, LinkShape shape, uint64_t seed);
  void AcceptLoop();

  const int listen_fd_;
  const int target_port_;
  const LinkShape shape_;
  const uint64_t seed_;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> chunks_{0};
  std::atomic<uint64_t> retransmitted_{0};
  std::mutex mutex_;
  std::list<std::unique_ptr<Relayed>> relayed_;
  std::thread acceptor_;
};

}  // namespace xa::bench

#endif  // XA_BENCH_LOCKHOLD_LINK_RELAY_H_
