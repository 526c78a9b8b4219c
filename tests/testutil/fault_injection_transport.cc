#include "testutil/fault_injection_transport.h"

#include <algorithm>
#include <vector>

namespace xa::test {
namespace {

constexpr std::string_view kHelloPrefix = "xa-fault-injection-hello:";

// FNV-1a: a link's seed must not depend on the standard library's std::hash.
uint64_t Fnv1a(std::string_view s, uint64_t h = 14695981039346656037ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

class FaultConnection final : public net::Connection {
 public:
  FaultConnection(FaultInjectionNetwork* network, std::shared_ptr<net::Connection> under,
                  std::string local_node, std::string peer_node)
      : network_(network),
        under_(std::move(under)),
        local_node_(std::move(local_node)),
        peer_node_(std::move(peer_node)) {}
  ~FaultConnection() override { under_->Close(); }

  Status Send(std::string_view message) override {
    return network_->Route(local_node_, peer_node_, under_, message);
  }
  Result<std::string> Receive(Clock::SteadyTime deadline) override {
    return under_->Receive(deadline);
  }
  void Close() override { under_->Close(); }
  const std::string& local_address() const override { return under_->local_address(); }
  const std::string& peer_address() const override { return under_->peer_address(); }

 private:
  FaultInjectionNetwork* network_;
  std::shared_ptr<net::Connection> under_;  // shared with delayed deliveries
  std::string local_node_, peer_node_;
};

class FaultListener final : public net::Listener {
 public:
  FaultListener(FaultInjectionNetwork* network, std::unique_ptr<net::Listener> under,
                std::string node)
      : network_(network), under_(std::move(under)), node_(std::move(node)) {}

  Result<std::unique_ptr<net::Connection>> Accept(Clock::SteadyTime deadline) override {
    Result<std::unique_ptr<net::Connection>> c = under_->Accept(deadline);
    if (!c.ok()) return c.status();
    Result<std::string> hello = (*c)->Receive(deadline);
    if (!hello.ok()) return hello.status().WithContext("hello of a fault-injection node");
    if (hello->rfind(kHelloPrefix, 0) != 0) {
      return Status(Code::kProto, "connection from " + (*c)->peer_address() +
                                      " did not start with a fault-injection hello: connect "
                                      "through a NodeTransport of the same network");
    }
    std::string peer = hello->substr(kHelloPrefix.size());
    return std::unique_ptr<net::Connection>(new FaultConnection(
        network_, std::shared_ptr<net::Connection>(std::move(*c)), node_, std::move(peer)));
  }
  void Close() override { under_->Close(); }
  const std::string& address() const override { return under_->address(); }

 private:
  FaultInjectionNetwork* network_;
  std::unique_ptr<net::Listener> under_;
  std::string node_;
};

class FaultNodeTransport final : public net::Transport {
 public:
  FaultNodeTransport(FaultInjectionNetwork* network, std::string node)
      : network_(network), node_(std::move(node)) {}

  Result<std::unique_ptr<net::Listener>> Listen(const std::string& address) override {
    Result<std::unique_ptr<net::Listener>> l = network_->target()->Listen(address);
    if (!l.ok()) return l.status();
    network_->RegisterListener((*l)->address(), node_);
    return std::unique_ptr<net::Listener>(new FaultListener(network_, std::move(*l), node_));
  }

  Result<std::unique_ptr<net::Connection>> Connect(const std::string& address,
                                                   Clock::SteadyTime deadline) override {
    std::string peer = network_->NodeAt(address);
    if (!network_->WaitUntilReachable(node_, peer, deadline)) {
      return Status(Code::kTimeout, "connect to " + address + " (node " + peer +
                                        "): no answer before the deadline (injected partition)");
    }
    Result<std::unique_ptr<net::Connection>> c = network_->target()->Connect(address, deadline);
    if (!c.ok()) return c.status();
    XA_RETURN_IF_ERROR((*c)->Send(std::string(kHelloPrefix) + node_));
    return std::unique_ptr<net::Connection>(new FaultConnection(
        network_, std::shared_ptr<net::Connection>(std::move(*c)), node_, std::move(peer)));
  }

  Clock* clock() override { return network_->clock(); }

 private:
  FaultInjectionNetwork* network_;
  std::string node_;
};

}  // namespace

FaultInjectionNetwork::FaultInjectionNetwork(net::Transport* target, uint64_t seed)
    : target_(target), seed_(seed), delivery_([this] { DeliveryLoop(); }) {}

FaultInjectionNetwork::~FaultInjectionNetwork() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    changed_.notify_all();
  }
  delivery_.join();
}

std::unique_ptr<net::Transport> FaultInjectionNetwork::NodeTransport(const std::string& node) {
  return std::make_unique<FaultNodeTransport>(this, node);
}

Clock* FaultInjectionNetwork::clock() const { return target_->clock(); }

FaultInjectionNetwork::Link& FaultInjectionNetwork::LinkLocked(const std::string& from,
                                                               const std::string& to) {
  LinkKey key(from, to);
  auto it = links_.find(key);
  if (it == links_.end()) {
    it = links_.emplace(key, Link(Fnv1a(to, Fnv1a(from + "->", seed_)))).first;
  }
  return it->second;
}

double FaultInjectionNetwork::UniformLocked(Link& link) {
  return static_cast<double>(link.random() >> 11) * 0x1.0p-53;
}

void FaultInjectionNetwork::RegisterListener(const std::string& address, const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[address] = node;
}

std::string FaultInjectionNetwork::NodeAt(const std::string& address) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(address);
  return it == nodes_.end() ? address : it->second;
}

bool FaultInjectionNetwork::WaitUntilReachable(const std::string& from, const std::string& to,
                                               Clock::SteadyTime deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return clock()->WaitUntil(lock, changed_, deadline, [&] {
    return !LinkLocked(from, to).partitioned && !LinkLocked(to, from).partitioned;
  });
}

void FaultInjectionNetwork::Partition(const std::string& a, const std::string& b) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(a, b).partitioned = true;
  LinkLocked(b, a).partitioned = true;
}

void FaultInjectionNetwork::PartitionOneWay(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(from, to).partitioned = true;
}

void FaultInjectionNetwork::Heal(const std::string& a, const std::string& b) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(a, b).partitioned = false;
  LinkLocked(b, a).partitioned = false;
  changed_.notify_all();
}

void FaultInjectionNetwork::HealAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, link] : links_) link.partitioned = false;
  changed_.notify_all();
}

void FaultInjectionNetwork::DropNext(const std::string& from, const std::string& to, int n) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(from, to).drop_next = n;
}

void FaultInjectionNetwork::SetDropRate(const std::string& from, const std::string& to,
                                        double probability) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(from, to).drop_rate = probability;
}

void FaultInjectionNetwork::SetDelay(const std::string& from, const std::string& to,
                                     std::chrono::microseconds min,
                                     std::chrono::microseconds max) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = LinkLocked(from, to);
  link.delay_min = min;
  link.delay_max = std::max(min, max);
}

void FaultInjectionNetwork::SetReorderRate(const std::string& from, const std::string& to,
                                           double probability) {
  std::lock_guard<std::mutex> lock(mu_);
  LinkLocked(from, to).reorder_rate = probability;
}

void FaultInjectionNetwork::ReleaseHeld(const std::string& from, const std::string& to) {
  std::optional<std::pair<std::shared_ptr<net::Connection>, std::string>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Link& link = LinkLocked(from, to);
    held.swap(link.held);
    if (held) ++link.stats.forwarded;
  }
  if (held) held->first->Send(held->second).IgnoreError();  // a broken connection loses it
}

void FaultInjectionNetwork::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, link] : links_) {
    link.partitioned = false;
    link.drop_next = 0;
    link.drop_rate = 0;
    link.delay_min = link.delay_max = std::chrono::microseconds(0);
    link.reorder_rate = 0;
  }
  changed_.notify_all();
}

FaultInjectionNetwork::LinkStats FaultInjectionNetwork::Stats(const std::string& from,
                                                              const std::string& to) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = links_.find(LinkKey(from, to));
  return it == links_.end() ? LinkStats() : it->second.stats;
}

size_t FaultInjectionNetwork::in_delay() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

Status FaultInjectionNetwork::Route(const std::string& from, const std::string& to,
                                    const std::shared_ptr<net::Connection>& via,
                                    std::string_view message) {
  std::optional<std::pair<std::shared_ptr<net::Connection>, std::string>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Link& link = LinkLocked(from, to);
    ++link.stats.sent;
    bool lost = link.partitioned;
    if (!lost && link.drop_next > 0) {
      --link.drop_next;
      lost = true;
    }
    if (!lost && link.drop_rate > 0) lost = UniformLocked(link) < link.drop_rate;
    if (lost) {
      ++link.stats.dropped;
      return Status::Ok();
    }
    if (link.delay_max.count() > 0) {
      std::chrono::microseconds delay = link.delay_min;
      if (link.delay_max > link.delay_min) {
        uint64_t span = static_cast<uint64_t>((link.delay_max - link.delay_min).count()) + 1;
        delay += std::chrono::microseconds(static_cast<int64_t>(link.random() % span));
      }
      delayed_.emplace(std::make_pair(clock()->SteadyNow() + delay, next_sequence_++),
                       Delayed{via, std::string(message), LinkKey(from, to)});
      ++link.stats.delayed;
      changed_.notify_all();
      return Status::Ok();
    }
    if (link.held) {
      held.swap(link.held);  // goes right after this message
    } else if (link.reorder_rate > 0 && UniformLocked(link) < link.reorder_rate) {
      link.held.emplace(via, std::string(message));
      ++link.stats.reordered;
      return Status::Ok();
    }
    link.stats.forwarded += held ? 2 : 1;
  }
  Status s = via->Send(message);
  if (held) held->first->Send(held->second).IgnoreError();  // a broken connection loses it
  return s;
}

void FaultInjectionNetwork::DeliveryLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (delayed_.empty()) {
      // Idle: not blocked on the clock, so that FakeClock::blocked() counts only the threads
      // under test.
      changed_.wait(lock, [&] { return stopping_ || !delayed_.empty(); });
      continue;
    }
    const Clock::SteadyTime due = delayed_.begin()->first.first;
    if (clock()->SteadyNow() < due) {
      clock()->WaitUntil(lock, changed_, due, [&] {
        return stopping_ || delayed_.empty() || delayed_.begin()->first.first < due;
      });
      continue;
    }
    std::vector<Delayed> ready;
    const Clock::SteadyTime now = clock()->SteadyNow();
    while (!delayed_.empty() && delayed_.begin()->first.first <= now) {
      ready.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
    for (const Delayed& d : ready) ++LinkLocked(d.link.first, d.link.second).stats.forwarded;
    lock.unlock();
    for (const Delayed& d : ready) d.via->Send(d.message).IgnoreError();  // broken: lost
    lock.lock();
  }
}

}  // namespace xa::test
