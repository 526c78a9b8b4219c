#include "bench/lockhold/link_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

namespace xa::bench {

namespace {

using SteadyClock = std::chrono::steady_clock;

// A loopback socket address for `port`.
sockaddr_in Loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// The port of "127.0.0.1:<port>"; -1 when `target` is not that.
int LoopbackPort(const std::string& target) {
  const std::string prefix = "127.0.0.1:";
  if (target.rfind(prefix, 0) != 0) return -1;
  const std::string digits = target.substr(prefix.size());
  if (digits.empty() || digits.size() > 5 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  const int port = std::atoi(digits.c_str());
  return port > 0 && port <= 65535 ? port : -1;
}

void NoDelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// One direction of a relayed connection: a reader that timestamps each chunk with the instant it
// may leave, and a writer that sends it then.
class LinkRelay::Direction {
 public:
  Direction(int from, int to, const LinkShape& shape, uint64_t seed, std::atomic<bool>& stop,
            std::atomic<uint64_t>& chunks, std::atomic<uint64_t>& retransmitted)
      : from_(from), to_(to), shape_(shape), random_(seed), stop_(stop), chunks_(chunks),
        retransmitted_(retransmitted) {
    reader_ = std::thread([this] { Read(); });
    writer_ = std::thread([this] { Write(); });
  }
  ~Direction() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
    reader_.join();
    writer_.join();
  }

 private:
  struct Chunk {
    SteadyClock::time_point due;
    std::string bytes;
  };

  void Read() {
    std::vector<char> buffer(64 * 1024);
    SteadyClock::time_point last_due{};
    std::uniform_int_distribution<int64_t> delay(shape_.min_delay.count(),
                                                 shape_.max_delay.count());
    std::bernoulli_distribution lost(shape_.loss);
    while (!stop_.load()) {
      pollfd p{from_, POLLIN, 0};
      const int ready = ::poll(&p, 1, 100);
      if (ready < 0 && errno != EINTR) break;
      if (ready <= 0) continue;
      const ssize_t n = ::recv(from_, buffer.data(), buffer.size(), 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;  // the sender closed, or the connection broke
      auto due = SteadyClock::now() + std::chrono::microseconds(delay(random_));
      if (lost(random_)) {
        due += shape_.retransmit;
        retransmitted_.fetch_add(1);
      }
      due = std::max(due, last_due);  // in order, as TCP delivers
      last_due = due;
      chunks_.fetch_add(1);
      {
        std::lock_guard lock(mutex_);
        queue_.push_back({due, std::string(buffer.data(), static_cast<size_t>(n))});
      }
      ready_.notify_all();
    }
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
    }
    ready_.notify_all();
  }

  void Write() {
    std::unique_lock lock(mutex_);
    while (true) {
      ready_.wait(lock, [&] { return closed_ || ended_ || !queue_.empty(); });
      if (closed_) return;
      if (queue_.empty()) {  // ended, and every byte before the end was written
        ::shutdown(to_, SHUT_WR);
        return;
      }
      const SteadyClock::time_point due = queue_.front().due;
      if (ready_.wait_until(lock, due, [&] { return closed_; })) return;
      Chunk chunk = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      size_t sent = 0;
      bool broken = false;
      while (sent < chunk.bytes.size()) {
        const ssize_t n =
            ::send(to_, chunk.bytes.data() + sent, chunk.bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          broken = true;
          break;
        }
        sent += static_cast<size_t>(n);
      }
      lock.lock();
      if (broken) {  // the receiver is gone: so is this direction
        ::shutdown(from_, SHUT_RD);
        return;
      }
    }
  }

  const int from_, to_;
  const LinkShape shape_;
  std::mt19937_64 random_;
  std::atomic<bool>& stop_;
  std::atomic<uint64_t>& chunks_;
  std::atomic<uint64_t>& retransmitted_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> queue_;
  bool ended_ = false;   // the reader saw the end of its side
  bool closed_ = false;  // the relay is being destroyed
  std::thread reader_, writer_;
};

struct LinkRelay::Relayed {
  int client = -1, server = -1;
  std::unique_ptr<Direction> to_server, to_client;
  ~Relayed() {
    // Wakes readers blocked in poll at once; then the directions join their threads.
    if (client >= 0) ::shutdown(client, SHUT_RDWR);
    if (server >= 0) ::shutdown(server, SHUT_RDWR);
    to_server.reset();
    to_client.reset();
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }
};

Result<std::unique_ptr<LinkRelay>> LinkRelay::Start(const std::string& target, LinkShape shape,
                                                    uint64_t seed) {
  const int port = LoopbackPort(target);
  if (port < 0) {
    return Status(Code::kInval, "link relay: target '" + target + "' is not 127.0.0.1:<port>");
  }
  if (shape.min_delay.count() < 0 || shape.max_delay < shape.min_delay || shape.loss < 0 ||
      shape.loss > 1 || shape.retransmit.count() < 0) {
    return Status(Code::kInval, "link relay: the delay range must be ordered and non-negative "
                                "and the loss a share from 0 to 1");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Code::kIoError, std::string("link relay: socket: ") + strerror(errno));
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const std::string error = strerror(errno);
    ::close(fd);
    return Status(Code::kIoError, "link relay: cannot listen on 127.0.0.1: " + error);
  }
  std::unique_ptr<LinkRelay> relay(new LinkRelay(fd, port, shape, seed));
  relay->address_ = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  relay->acceptor_ = std::thread([r = relay.get()] { r->AcceptLoop(); });
  return relay;
}

LinkRelay::LinkRelay(int listen_fd, int target_port, LinkShape shape, uint64_t seed)
    : listen_fd_(listen_fd), target_port_(target_port), shape_(shape), seed_(seed) {}

LinkRelay::~LinkRelay() {
  stop_.store(true);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::lock_guard lock(mutex_);
  relayed_.clear();
}

void LinkRelay::AcceptLoop() {
  uint64_t accepted = 0;
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in target = Loopback(target_port_);
    if (server < 0 ||
        ::connect(server, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
      // The agent is down: the coordinator sees its connection refused, as without the relay.
      if (server >= 0) ::close(server);
      ::close(client);
      continue;
    }
    NoDelay(client);
    NoDelay(server);
    auto relayed = std::make_unique<Relayed>();
    relayed->client = client;
    relayed->server = server;
    const uint64_t seed = seed_ * 1000003 + 2 * accepted++;
    relayed->to_server = std::make_unique<Direction>(client, server, shape_, seed, stop_, chunks_,
                                                     retransmitted_);
    relayed->to_client = std::make_unique<Direction>(server, client, shape_, seed + 1, stop_,
                                                     chunks_, retransmitted_);
    std::lock_guard lock(mutex_);
    relayed_.push_back(std::move(relayed));
  }
}

}  // namespace xa::bench
