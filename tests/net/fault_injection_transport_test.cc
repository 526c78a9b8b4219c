// The fault-injecting network over real loopback TCP, with the fake clock: each fault kind, and
// the same seed giving the same losses and order.

#include "testutil/fault_injection_transport.h"

#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "testutil/status_matchers.h"

namespace xa::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr Clock::SteadyTime kForever = Clock::kNoDeadline;

// Node "a" dialled node "b": a_to_b is a's end, b_to_a is b's.
class FaultNetworkTest : public ::testing::Test {
 protected:
  explicit FaultNetworkTest(uint64_t seed = 7)
      : tcp_(net::NewTcpTransport(&clock_)), network_(tcp_.get(), seed) {}

  void SetUp() override { Connect(); }

  void Connect() {
    a_ = network_.NodeTransport("a");
    b_ = network_.NodeTransport("b");
    Result<std::unique_ptr<net::Listener>> l = b_->Listen("127.0.0.1:0");
    ASSERT_THAT(l, IsOk());
    listener_ = std::move(*l);
    Result<std::unique_ptr<net::Connection>> c = a_->Connect(listener_->address(), kForever);
    ASSERT_THAT(c, IsOk());
    a_to_b_ = std::move(*c);
    Result<std::unique_ptr<net::Connection>> s = listener_->Accept(kForever);
    ASSERT_THAT(s, IsOk());
    b_to_a_ = std::move(*s);
  }

  static std::string Next(net::Connection& c) {
    Result<std::string> m = c.Receive(kForever);
    EXPECT_THAT(m, IsOk());
    return m.ok() ? *m : std::string("<error>");
  }

  // Sends `n` numbered messages a -> b, then (with the faults cleared) "end"; returns what b got.
  std::vector<std::string> SendNumberedThenEnd(int n) {
    for (int i = 0; i < n; ++i) EXPECT_THAT(a_to_b_->Send(std::to_string(i)), IsOk());
    network_.ClearFaults();
    EXPECT_THAT(a_to_b_->Send("end"), IsOk());
    std::vector<std::string> got;
    for (std::string m = Next(*b_to_a_); m != "end" && m != "<error>"; m = Next(*b_to_a_)) {
      got.push_back(m);
    }
    return got;
  }

  FakeClock clock_;
  std::unique_ptr<net::Transport> tcp_;
  FaultInjectionNetwork network_;
  std::unique_ptr<net::Transport> a_, b_;
  std::unique_ptr<net::Listener> listener_;
  std::unique_ptr<net::Connection> a_to_b_, b_to_a_;
};

TEST_F(FaultNetworkTest, WithoutFaultsMessagesPassBothWays) {
  ASSERT_THAT(a_to_b_->Send("prepare"), IsOk());
  EXPECT_EQ(Next(*b_to_a_), "prepare");
  ASSERT_THAT(b_to_a_->Send("yes"), IsOk());
  EXPECT_EQ(Next(*a_to_b_), "yes");
  EXPECT_EQ(network_.Stats("a", "b").forwarded, 1u);
  EXPECT_EQ(network_.Stats("b", "a").forwarded, 1u);
}

// TCP keeps order, so receiving the marker first proves the message before it was lost.
TEST_F(FaultNetworkTest, APartitionLosesMessagesBothWaysUntilHealed) {
  network_.Partition("a", "b");
  ASSERT_THAT(a_to_b_->Send("lost a->b"), IsOk());  // lost silently, as on a real network
  ASSERT_THAT(b_to_a_->Send("lost b->a"), IsOk());
  network_.Heal("a", "b");
  ASSERT_THAT(a_to_b_->Send("after a->b"), IsOk());
  ASSERT_THAT(b_to_a_->Send("after b->a"), IsOk());
  EXPECT_EQ(Next(*b_to_a_), "after a->b");
  EXPECT_EQ(Next(*a_to_b_), "after b->a");
  EXPECT_EQ(network_.Stats("a", "b").dropped, 1u);
  EXPECT_EQ(network_.Stats("b", "a").dropped, 1u);
}

TEST_F(FaultNetworkTest, AOneWayPartitionLosesOnlyThatDirection) {
  network_.PartitionOneWay("b", "a");  // the participant's votes are lost, requests arrive
  ASSERT_THAT(a_to_b_->Send("prepare"), IsOk());
  ASSERT_THAT(b_to_a_->Send("yes"), IsOk());
  EXPECT_EQ(Next(*b_to_a_), "prepare");
  network_.HealAll();
  ASSERT_THAT(b_to_a_->Send("yes again"), IsOk());
  EXPECT_EQ(Next(*a_to_b_), "yes again");
  EXPECT_EQ(network_.Stats("a", "b").dropped, 0u);
  EXPECT_EQ(network_.Stats("b", "a").dropped, 1u);
}

TEST_F(FaultNetworkTest, DropNextLosesExactlyTheNextMessages) {
  network_.DropNext("a", "b", 2);
  EXPECT_EQ(SendNumberedThenEnd(4), (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(network_.Stats("a", "b").dropped, 2u);
}

TEST_F(FaultNetworkTest, ADropRateLosesSomeMessagesAndTheSameSeedLosesTheSameOnes) {
  network_.SetDropRate("a", "b", 0.5);
  std::vector<std::string> got = SendNumberedThenEnd(64);
  EXPECT_GT(got.size(), 0u);
  EXPECT_LT(got.size(), 64u);
  EXPECT_EQ(network_.Stats("a", "b").dropped, 64u - got.size());

  // A second network with the same seed, over new connections, loses the same messages.
  FaultInjectionNetwork same_seed(tcp_.get(), 7);
  auto a = same_seed.NodeTransport("a");
  auto b = same_seed.NodeTransport("b");
  auto l = b->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  auto c = a->Connect((*l)->address(), kForever);
  ASSERT_THAT(c, IsOk());
  auto s = (*l)->Accept(kForever);
  ASSERT_THAT(s, IsOk());
  same_seed.SetDropRate("a", "b", 0.5);
  for (int i = 0; i < 64; ++i) ASSERT_THAT((*c)->Send(std::to_string(i)), IsOk());
  same_seed.ClearFaults();
  ASSERT_THAT((*c)->Send("end"), IsOk());
  std::vector<std::string> again;
  for (std::string m = Next(**s); m != "end" && m != "<error>"; m = Next(**s)) again.push_back(m);
  EXPECT_EQ(again, got);
}

TEST_F(FaultNetworkTest, ADelayedMessageArrivesOnlyOnceTheClockPassesItsDelay) {
  network_.SetDelay("a", "b", milliseconds(10), milliseconds(10));
  ASSERT_THAT(a_to_b_->Send("late"), IsOk());
  EXPECT_EQ(network_.Stats("a", "b").delayed, 1u);
  EXPECT_EQ(network_.in_delay(), 1u);
  clock_.Advance(milliseconds(9));
  EXPECT_EQ(network_.in_delay(), 1u);
  EXPECT_EQ(network_.Stats("a", "b").forwarded, 0u);
  // Nothing has been handed to TCP: b's Receive with the deadline at "now" finds nothing.
  EXPECT_THAT(b_to_a_->Receive(clock_.SteadyNow()), StatusIs(Code::kTimeout));
  clock_.Advance(milliseconds(1));
  EXPECT_EQ(Next(*b_to_a_), "late");
  EXPECT_EQ(network_.in_delay(), 0u);
  EXPECT_EQ(network_.Stats("a", "b").forwarded, 1u);
}

// Delays drawn from a range let later messages overtake earlier ones; the seed fixes how.
TEST_F(FaultNetworkTest, DelaysFromARangeReorderMessagesTheSameWayForTheSameSeed) {
  auto run = [&](net::Connection& from, net::Connection& to, FaultInjectionNetwork& network) {
    network.SetDelay("a", "b", milliseconds(1), milliseconds(50));
    for (int i = 0; i < 20; ++i) EXPECT_THAT(from.Send(std::to_string(i)), IsOk());
    network.ClearFaults();
    clock_.Advance(milliseconds(50));
    std::vector<std::string> got;
    for (int i = 0; i < 20; ++i) got.push_back(Next(to));
    return got;
  };
  std::vector<std::string> first = run(*a_to_b_, *b_to_a_, network_);
  std::vector<std::string> in_send_order;
  for (int i = 0; i < 20; ++i) in_send_order.push_back(std::to_string(i));
  EXPECT_NE(first, in_send_order);
  EXPECT_EQ(std::set<std::string>(first.begin(), first.end()),
            std::set<std::string>(in_send_order.begin(), in_send_order.end()));

  FaultInjectionNetwork same_seed(tcp_.get(), 7);
  auto a = same_seed.NodeTransport("a");
  auto b = same_seed.NodeTransport("b");
  auto l = b->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  auto c = a->Connect((*l)->address(), kForever);
  ASSERT_THAT(c, IsOk());
  auto s = (*l)->Accept(kForever);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(run(**c, **s, same_seed), first);
}

TEST_F(FaultNetworkTest, ReorderSwapsEachHeldMessageWithTheNextOne) {
  network_.SetReorderRate("a", "b", 1.0);
  EXPECT_EQ(SendNumberedThenEnd(4), (std::vector<std::string>{"1", "0", "3", "2"}));
  EXPECT_EQ(network_.Stats("a", "b").reordered, 2u);
}

TEST_F(FaultNetworkTest, ReleaseHeldSendsAMessageThatNoOtherFollowed) {
  network_.SetReorderRate("a", "b", 1.0);
  ASSERT_THAT(a_to_b_->Send("held"), IsOk());
  network_.ReleaseHeld("a", "b");
  EXPECT_EQ(Next(*b_to_a_), "held");
}

TEST_F(FaultNetworkTest, AConnectAcrossAPartitionTimesOutOnTheClock) {
  network_.Partition("a", "b");
  auto result = std::async(std::launch::async, [&] {
    return a_->Connect(listener_->address(), clock_.DeadlineAfter(seconds(3)));
  });
  ASSERT_TRUE(clock_.WaitForBlocked(1));
  clock_.Advance(seconds(3));
  EXPECT_THAT(result.get(), StatusIs(Code::kTimeout, HasSubstr("injected partition")));
}

TEST_F(FaultNetworkTest, AConnectWaitingOnAPartitionGoesThroughWhenHealed) {
  network_.PartitionOneWay("b", "a");  // a TCP handshake needs both directions
  auto result = std::async(std::launch::async, [&] {
    return a_->Connect(listener_->address(), clock_.DeadlineAfter(seconds(3)));
  });
  ASSERT_TRUE(clock_.WaitForBlocked(1));
  network_.HealAll();
  Result<std::unique_ptr<net::Connection>> c = result.get();
  ASSERT_THAT(c, IsOk());
  Result<std::unique_ptr<net::Connection>> s = listener_->Accept(kForever);
  ASSERT_THAT(s, IsOk());
  ASSERT_THAT((*c)->Send("hello b"), IsOk());
  EXPECT_EQ(Next(**s), "hello b");
}

TEST_F(FaultNetworkTest, APeerThatIsNotANodeOfTheNetworkIsRefusedAtAccept) {
  Result<std::unique_ptr<net::Connection>> raw = tcp_->Connect(listener_->address(), kForever);
  ASSERT_THAT(raw, IsOk());
  ASSERT_THAT((*raw)->Send("hello, I am not a node"), IsOk());
  EXPECT_THAT(listener_->Accept(kForever),
              StatusIs(Code::kProto, HasSubstr("did not start with a fault-injection hello")));
}

}  // namespace
}  // namespace xa::test
