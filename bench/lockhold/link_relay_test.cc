// LinkRelay over real loopback sockets: what crosses it arrives whole, in order, and no earlier
// than the shape says; a retransmitted chunk holds back the ones behind it; a close is passed on.

#include "bench/lockhold/link_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace xa::bench {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A loopback server that echoes every byte back until its client closes, then closes.
class EchoServer {
 public:
  EchoServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    EXPECT_EQ(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      char buffer[4096];
      ssize_t n;
      while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
        if (::send(fd, buffer, static_cast<size_t>(n), MSG_NOSIGNAL) != n) break;
      }
      ::close(fd);
    });
  }
  ~EchoServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

int ConnectTo(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  target.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.find(':') + 1))));
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)), 0);
  return fd;
}

// Reads exactly `size` bytes (or what arrives before the peer closes).
std::string ReadBytes(int fd, size_t size) {
  std::string text;
  char buffer[4096];
  while (text.size() < size) {
    const ssize_t n = ::recv(fd, buffer, std::min(sizeof(buffer), size - text.size()), 0);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

double MsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

TEST(LinkRelayTest, RelaysEveryByteBothWaysInOrderNoSoonerThanTheDelayEachWay) {
  EchoServer echo;
  LinkShape shape;
  shape.min_delay = milliseconds(10);
  shape.max_delay = milliseconds(15);
  auto relay = LinkRelay::Start(echo.address(), shape, /*seed=*/1);
  ASSERT_TRUE(relay.ok()) << relay.status().ToString();
  const int fd = ConnectTo((*relay)->address());
  std::string sent;
  for (int i = 0; i < 200; ++i) sent += "message " + std::to_string(i) + ";";
  const auto start = SteadyClock::now();
  // In pieces, so that several chunks of different delays are in flight at once.
  for (size_t at = 0; at < sent.size(); at += 97) {
    const std::string piece = sent.substr(at, 97);
    ASSERT_EQ(::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(piece.size()));
  }
  EXPECT_EQ(ReadBytes(fd, sent.size()), sent);
  EXPECT_GE(MsSince(start), 20.0) << "a round trip crosses the link twice, 10 ms each at least";
  EXPECT_GT((*relay)->chunks(), 0u);
  EXPECT_EQ((*relay)->retransmitted(), 0u);
  ::close(fd);
}

TEST(LinkRelayTest, AChunkHeldForARetransmissionHoldsBackTheBytesBehindIt) {
  EchoServer echo;
  LinkShape shape;
  shape.loss = 1.0;  // every chunk is "lost" once: each direction adds the retransmission time
  shape.retransmit = milliseconds(60);
  auto relay = LinkRelay::Start(echo.address(), shape, /*seed=*/2);
  ASSERT_TRUE(relay.ok()) << relay.status().ToString();
  const int fd = ConnectTo((*relay)->address());
  const auto start = SteadyClock::now();
  ASSERT_EQ(::send(fd, "first", 5, MSG_NOSIGNAL), 5);
  std::this_thread::sleep_for(milliseconds(5));
  ASSERT_EQ(::send(fd, "second", 6, MSG_NOSIGNAL), 6);
  EXPECT_EQ(ReadBytes(fd, 11), "firstsecond");
  EXPECT_GE(MsSince(start), 120.0) << "held 60 ms in each direction";
  EXPECT_GE((*relay)->retransmitted(), 2u);
  ::close(fd);
}

TEST(LinkRelayTest, APeerThatClosesClosesTheRelayedConnection) {
  EchoServer echo;
  auto relay = LinkRelay::Start(echo.address(), LinkShape{}, /*seed=*/3);
  ASSERT_TRUE(relay.ok()) << relay.status().ToString();
  const int fd = ConnectTo((*relay)->address());
  ASSERT_EQ(::send(fd, "ping", 4, MSG_NOSIGNAL), 4);
  EXPECT_EQ(ReadBytes(fd, 4), "ping");
  ::shutdown(fd, SHUT_WR);  // the echo server sees the end, closes, and so must the relay
  char byte;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0);
  ::close(fd);
}

TEST(LinkRelayTest, RefusesATargetOffLoopbackAndAShapeOutOfOrder) {
  auto remote = LinkRelay::Start("10.0.0.1:5000", LinkShape{}, 4);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), Code::kInval);
  EXPECT_NE(remote.status().message().find("10.0.0.1:5000"), std::string::npos);
  LinkShape reversed;
  reversed.min_delay = milliseconds(5);
  reversed.max_delay = milliseconds(1);
  auto bad = LinkRelay::Start("127.0.0.1:5000", reversed, 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInval);
}

}  // namespace
}  // namespace xa::bench
