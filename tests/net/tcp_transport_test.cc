// The TCP transport on real loopback sockets: messages both ways and in order, a peer's close,
// a refused connect, damaged bytes from a peer, and timeouts decided by the transport's clock.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/net/frame.h"
#include "src/net/transport.h"
#include "testutil/fake_clock.h"
#include "testutil/connected_pair.h"
#include "testutil/status_matchers.h"

namespace xa::net {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;
using test::FakeClock;
using test::IsOk;
using test::StatusIs;

constexpr Clock::SteadyTime kForever = Clock::kNoDeadline;

// A connected pair: `client` dialled `server`'s listener.
using Pair = test::ConnectedPair;
using test::Connected;

std::string ReceiveOk(Connection& c) {
  Result<std::string> m = c.Receive(kForever);
  EXPECT_THAT(m, IsOk());
  return m.ok() ? *m : std::string("<error>");
}

TEST(TcpTransportTest, ListenerOnPortZeroReportsThePortItPicked) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  const std::string& address = (*l)->address();
  EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
  EXPECT_NE(address, "127.0.0.1:0");
}

TEST(TcpTransportTest, MessagesTravelBothWaysWholeAndInOrder) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  EXPECT_EQ(p.client->peer_address(), p.listener->address());
  EXPECT_EQ(p.server->peer_address(), p.client->local_address());

  const std::string big(1 << 20, 'b');  // many reads on the receiving side
  ASSERT_THAT(p.client->Send("prepare"), IsOk());
  ASSERT_THAT(p.client->Send(""), IsOk());
  ASSERT_THAT(p.client->Send(big), IsOk());
  for (int i = 0; i < 500; ++i) ASSERT_THAT(p.client->Send(std::to_string(i)), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), "prepare");
  EXPECT_EQ(ReceiveOk(*p.server), "");
  EXPECT_EQ(ReceiveOk(*p.server), big);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(ReceiveOk(*p.server), std::to_string(i));

  ASSERT_THAT(p.server->Send("vote yes"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.client), "vote yes");
}

// A send with nothing queued goes to the kernel from the caller's thread; a frame larger than
// the kernel takes at once (16 MiB, while the peer reads nothing) leaves its rest queued for the
// I/O thread, and what is sent after it must follow it, never overtake it.
TEST(TcpTransportTest, AFrameTheKernelTakesOnlyPartOfStillArrivesWholeBeforeTheNextOnes) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  const std::string first(kMaxFramePayload, 'f');
  const std::string second(kMaxFramePayload, 's');
  ASSERT_THAT(p.client->Send("small before"), IsOk());
  ASSERT_THAT(p.client->Send(first), IsOk());
  ASSERT_THAT(p.client->Send("small between"), IsOk());
  ASSERT_THAT(p.client->Send(second), IsOk());
  ASSERT_THAT(p.client->Send("small after"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), "small before");
  EXPECT_TRUE(ReceiveOk(*p.server) == first) << "the first large frame arrived damaged";
  EXPECT_EQ(ReceiveOk(*p.server), "small between");
  EXPECT_TRUE(ReceiveOk(*p.server) == second) << "the second large frame arrived damaged";
  EXPECT_EQ(ReceiveOk(*p.server), "small after");
  // The queue is empty again: the next send goes straight out, and the answer comes back.
  ASSERT_THAT(p.client->Send("ping"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), "ping");
  ASSERT_THAT(p.server->Send("pong"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.client), "pong");
}

// A close is graceful: what the peer sent before it arrives first, then the close.
TEST(TcpTransportTest, PeerCloseIsReportedAfterTheMessagesItSentBefore) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  ASSERT_THAT(p.server->Send("one"), IsOk());
  ASSERT_THAT(p.server->Send(std::string(256 * 1024, 't')), IsOk());
  p.server.reset();  // destroying closes, after the queued messages went out
  EXPECT_EQ(ReceiveOk(*p.client), "one");
  EXPECT_EQ(ReceiveOk(*p.client), std::string(256 * 1024, 't'));
  EXPECT_THAT(p.client->Receive(kForever),
              StatusIs(Code::kIoError, HasSubstr("closed by the peer")));
  EXPECT_THAT(p.client->Send("anyone there?"),
              StatusIs(Code::kIoError, HasSubstr("closed by the peer")));
}

TEST(TcpTransportTest, SendOnAConnectionClosedByThisSideFails) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.client, nullptr);
  p.client->Close();
  p.client->Close();  // idempotent
  EXPECT_THAT(p.client->Send("late"), StatusIs(Code::kIoError, HasSubstr("closed by this side")));
  EXPECT_THAT(p.client->Receive(kForever),
              StatusIs(Code::kIoError, HasSubstr("closed by this side")));
  EXPECT_THAT(p.server->Receive(kForever),
              StatusIs(Code::kIoError, HasSubstr("closed by the peer")));
}

TEST(TcpTransportTest, ConnectToAPortNobodyListensOnIsRefused) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  std::string address;
  {
    Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
    ASSERT_THAT(l, IsOk());
    address = (*l)->address();
  }  // closed: the port is free again
  EXPECT_THAT(transport->Connect(address, kForever),
              StatusIs(Code::kIoError, HasSubstr("Connection refused")));
}

TEST(TcpTransportTest, AddressesThatAreNotIpLiteralsWithPortsAreRefused) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  EXPECT_THAT(transport->Listen("localhost:0"), StatusIs(Code::kInval, HasSubstr("IP literal")));
  EXPECT_THAT(transport->Listen("127.0.0.1"), StatusIs(Code::kInval, HasSubstr("port")));
  EXPECT_THAT(transport->Connect("127.0.0.1:99999", kForever),
              StatusIs(Code::kInval, HasSubstr("port")));
  Result<std::unique_ptr<Listener>> v6 = transport->Listen("[::1]:0");
  if (v6.ok()) EXPECT_EQ((*v6)->address().rfind("[::1]:", 0), 0u);
  else EXPECT_THAT(v6, StatusIs(Code::kIoError));  // a host without IPv6 loopback
}

TEST(TcpTransportTest, AMessageOverTheFrameLimitIsRefusedAndTheConnectionStaysUsable) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.client, nullptr);
  EXPECT_THAT(p.client->Send(std::string(kMaxFramePayload + 1, 'x')), StatusIs(Code::kInval));
  ASSERT_THAT(p.client->Send("small"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), "small");
}

TEST(TcpTransportTest, SendFailsBusyWhenMoreThanTheLimitIsQueued) {
  TcpOptions options;
  options.max_queued_send_bytes = 1000;
  auto transport = NewTcpTransport(Env::Default()->clock(), options);
  Pair p = Connected(*transport);
  ASSERT_NE(p.client, nullptr);
  // One message alone over the limit can never be queued, whatever the I/O thread has written.
  EXPECT_THAT(p.client->Send(std::string(1000, 'x')),
              StatusIs(Code::kBusy, HasSubstr("already waiting")));
  ASSERT_THAT(p.client->Send(std::string(900, 'y')), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), std::string(900, 'y'));
}

// Raw bytes from a peer that does not speak the frame format.
TEST(TcpTransportTest, DamagedBytesFromThePeerBreakTheConnectionWithCorruption) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  const std::string& address = (*l)->address();
  int port = std::stoi(address.substr(address.rfind(':') + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  std::string good = EncodeFrame("fine");
  std::string bad = EncodeFrame("damaged");
  bad[kFrameHeaderSize + 1] = static_cast<char>(bad[kFrameHeaderSize + 1] ^ 0x20);
  std::string bytes = good + bad + EncodeFrame("never read");
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  Result<std::unique_ptr<Connection>> server = (*l)->Accept(kForever);
  ASSERT_THAT(server, IsOk());
  EXPECT_EQ(ReceiveOk(**server), "fine");
  EXPECT_THAT((*server)->Receive(kForever),
              StatusIs(Code::kCorruption, HasSubstr("payload checksum mismatch")));
  EXPECT_THAT((*server)->Send("reply"), StatusIs(Code::kCorruption));
  ::close(fd);
}

TEST(TcpTransportTest, ReceiveTimesOutExactlyWhenTheClockPassesTheDeadline) {
  FakeClock clock;
  auto transport = NewTcpTransport(&clock);
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  auto result = std::async(std::launch::async, [&] {
    return p.server->Receive(clock.DeadlineAfter(seconds(5)));
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  clock.Advance(seconds(4));
  EXPECT_EQ(clock.blocked(), 1u);  // still waiting: its deadline has not come
  clock.Advance(seconds(1));
  EXPECT_THAT(result.get(), StatusIs(Code::kTimeout, HasSubstr("before the deadline")));
  // A message arriving after the timeout is still there for the next Receive.
  ASSERT_THAT(p.client->Send("late"), IsOk());
  EXPECT_EQ(ReceiveOk(*p.server), "late");
}

TEST(TcpTransportTest, AMessageWakesAReceiveWaitingOnAFakeClock) {
  FakeClock clock;
  auto transport = NewTcpTransport(&clock);
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  auto result = std::async(std::launch::async, [&] {
    return p.server->Receive(clock.DeadlineAfter(seconds(5)));
  });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  ASSERT_THAT(p.client->Send("on time"), IsOk());
  Result<std::string> m = result.get();
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(*m, "on time");
  EXPECT_EQ(clock.SteadyNow(), FakeClock::kSteadyStart);  // no time had to pass
}

TEST(TcpTransportTest, AcceptTimesOutWhenTheClockPassesTheDeadline) {
  FakeClock clock;
  auto transport = NewTcpTransport(&clock);
  Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  auto result =
      std::async(std::launch::async, [&] { return (*l)->Accept(clock.DeadlineAfter(seconds(3))); });
  ASSERT_TRUE(clock.WaitForBlocked(1));
  clock.Advance(seconds(3));
  EXPECT_THAT(result.get(), StatusIs(Code::kTimeout, HasSubstr("no connection")));
}

// Decided before trying: a loopback connect would otherwise win or lose the race at random.
TEST(TcpTransportTest, ConnectWithADeadlineAlreadyPassedTimesOutWithoutTrying) {
  FakeClock clock;
  auto transport = NewTcpTransport(&clock);
  Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  EXPECT_THAT(transport->Connect((*l)->address(), clock.SteadyNow()),
              StatusIs(Code::kTimeout, HasSubstr("the deadline had passed")));
  EXPECT_THAT((*l)->Accept(clock.SteadyNow()), StatusIs(Code::kTimeout));
}

TEST(TcpTransportTest, ClosingAListenerEndsAWaitingAccept) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Result<std::unique_ptr<Listener>> l = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(l, IsOk());
  auto result = std::async(std::launch::async, [&] { return (*l)->Accept(kForever); });
  (*l)->Close();
  EXPECT_THAT(result.get(), StatusIs(Code::kIoError, HasSubstr("closed")));
}

// A server restarted in the same process listens on its address again at once: Close (and
// destroying the listener) frees the port before it returns. A close left to the I/O thread
// made the new Listen fail now and then with "Address already in use".
TEST(TcpTransportTest, AClosedListenersAddressCanBeListenedOnAgainAtOnce) {
  auto transport = NewTcpTransport(Env::Default()->clock());
  Result<std::unique_ptr<Listener>> first = transport->Listen("127.0.0.1:0");
  ASSERT_THAT(first, IsOk());
  const std::string address = (*first)->address();
  (*first)->Close();
  for (int i = 0; i < 200; ++i) {
    Result<std::unique_ptr<Listener>> again = transport->Listen(address);
    ASSERT_THAT(again, IsOk()) << "round " << i;
    if (i % 2 == 0) {
      (*again)->Close();
    } else {
      again->reset();  // destroying it closes it as well
    }
  }
}

// Several threads send on one connection while the peer receives: every message arrives once,
// and each thread's messages in its own order.
TEST(TcpTransportTest, ConcurrentSendersOnOneConnectionKeepEachThreadsOrder) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 300;
  auto transport = NewTcpTransport(Env::Default()->clock());
  Pair p = Connected(*transport);
  ASSERT_NE(p.server, nullptr);
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_THAT(p.client->Send(std::to_string(t) + ":" + std::to_string(i)), IsOk());
      }
    });
  }
  std::map<int, int> next;  // thread -> next index expected
  for (int n = 0; n < kThreads * kPerThread; ++n) {
    std::string m = ReceiveOk(*p.server);
    size_t colon = m.find(':');
    ASSERT_NE(colon, std::string::npos) << m;
    int t = std::stoi(m.substr(0, colon));
    int i = std::stoi(m.substr(colon + 1));
    EXPECT_EQ(i, next[t]) << "thread " << t;
    next[t] = i + 1;
  }
  for (std::thread& s : senders) s.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPerThread);
}

}  // namespace
}  // namespace xa::net
