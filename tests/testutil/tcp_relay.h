// TcpRelay: a TCP relay on 127.0.0.1 that a test can cut and heal, standing for the network
// between two real processes (the partition tests of three-phase commit: one agent reaches
// another, or the coordinator reaches an agent, only through a relay).
//
//   TcpRelay relay;                       // listens on a free port of 127.0.0.1 at once
//   relay.SetTarget(agent_port);          // where accepted connections are forwarded
//   ... give relay.address() to the process that should go through it ...
//   relay.Cut();                          // the partition starts
//   relay.Heal();                         // and ends
//
// A cut relay stops moving bytes in both directions on every connection, old and new: what each
// side sends waits in the kernel's socket buffers (new connections still complete their TCP
// handshake in the kernel's backlog and then hear nothing). That is what a network that drops
// every packet looks like to TCP: the sender's messages are neither delivered nor refused, its
// replies never come, and its own timeouts fire. When the relay is healed the waiting bytes are
// delivered, late, as TCP's retransmissions would deliver them; a side that gave up on a
// connection in between has closed it, and the relay passes the close on after the bytes.
//
// One thread accepts, one thread a connection pumps both directions (poll, 20 ms ticks, so that
// Cut and Heal take effect within a tick). Writes use MSG_NOSIGNAL: a peer that closed its end
// makes the relay close the connection, never the test process die of SIGPIPE. Test code only.

#ifndef XA_TESTS_TESTUTIL_TCP_RELAY_H_
#define XA_TESTS_TESTUTIL_TCP_RELAY_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace xa::test {

class TcpRelay {
 public:
  TcpRelay() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = Loopback(0);
    if (listener_ < 0 ||
        ::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener_, 64) != 0) {
      error_ = "cannot listen on 127.0.0.1: errno " + std::to_string(errno);
      return;
    }
    socklen_t length = sizeof(address);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TcpRelay() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::list<std::thread> pumps;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pumps.swap(pumps_);
    }
    for (std::thread& pump : pumps) pump.join();
    if (listener_ >= 0) ::close(listener_);
  }

  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  // Empty when the relay listens; otherwise why it does not.
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Where connections accepted from now on are forwarded (127.0.0.1:`port`).
  void SetTarget(int port) { target_port_ = port; }

  void Cut() { cut_ = true; }
  void Heal() { cut_ = false; }
  bool cut() const { return cut_; }

  // Connections accepted so far: a test can tell that traffic did take the relay's path.
  size_t connections_accepted() const { return accepted_; }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
  }

  void AcceptLoop() {
    while (!stopping_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, kTickMs) <= 0) continue;
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      ++accepted_;
      const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const sockaddr_in target = Loopback(target_port_);
      if (server < 0 ||
          ::connect(server, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
        // The target is down: the client sees its connection closed, as a refused connect.
        if (server >= 0) ::close(server);
        ::close(client);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      std::lock_guard<std::mutex> lock(mutex_);
      pumps_.emplace_back([this, client, server] { Pump(client, server); });
    }
  }

  // Moves bytes both ways between `a` and `b` while not cut; passes a half-close on; ends (and
  // closes both) once both directions are closed, on an error, or when the relay stops.
  void Pump(int a, int b) {
    const std::array<int, 2> from = {a, b};
    std::array<bool, 2> open = {true, true};  // from[i] may still send
    std::array<char, 16384> buffer;
    while (!stopping_ && (open[0] || open[1])) {
      if (cut_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        continue;
      }
      std::array<pollfd, 2> ready = {pollfd{open[0] ? a : -1, POLLIN, 0},
                                     pollfd{open[1] ? b : -1, POLLIN, 0}};
      if (::poll(ready.data(), ready.size(), kTickMs) <= 0) continue;
      // Cut while poll waited: bytes sent after the cut (they woke poll) stay undelivered. A
      // Cut() that happened before a sender's send is seen here, after poll saw those bytes.
      if (cut_) continue;
      bool failed = false;
      for (size_t i = 0; i < 2 && !failed; ++i) {
        if (!open[i] || (ready[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int to = from[1 - i];
        const ssize_t got = ::recv(from[i], buffer.data(), buffer.size(), 0);
        if (got <= 0) {
          open[i] = false;
          ::shutdown(to, SHUT_WR);
          failed = got < 0;
          continue;
        }
        for (ssize_t sent = 0; sent < got;) {
          const ssize_t n = ::send(to, buffer.data() + sent, static_cast<size_t>(got - sent),
                                   MSG_NOSIGNAL);
          if (n <= 0) {
            failed = true;
            break;
          }
          sent += n;
        }
      }
      if (failed) break;
    }
    ::close(a);
    ::close(b);
  }

  static constexpr int kTickMs = 20;

  int listener_ = -1;
  int port_ = 0;
  std::string error_;
  std::atomic<int> target_port_{0};
  std::atomic<bool> cut_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> accepted_{0};
  std::thread acceptor_;
  std::mutex mutex_;
  std::list<std::thread> pumps_;
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_TCP_RELAY_H_
