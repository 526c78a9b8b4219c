// The peer handshake over the real TCP transport on 127.0.0.1: both sides learn each other's name
// when they hold the same key; a wrong key, a replayed or reflected proof, a malformed message
// and a silent peer are refused, with the connection closed; key files are refused when unsafe.

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "testutil/fake_clock.h"
#include "testutil/connected_pair.h"
#include "testutil/status_matchers.h"

namespace xa::net {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using test::FakeClock;
using test::IsOk;
using test::StatusIs;

constexpr Clock::SteadyTime kForever = Clock::kNoDeadline;

SharedKey Key(char fill) { return *SharedKey::FromBytes(std::string(kMinSharedKeySize, fill)); }

Clock::SteadyTime Soon() { return Env::Default()->clock()->DeadlineAfter(std::chrono::seconds(20)); }

// A connected pair: `client` dialled `server`'s listener.
using Pair = test::ConnectedPair;
using test::Connected;

// Runs the server's side on its own thread and the client's on this one.
struct Outcome {
  Result<std::string> client = Status(Code::kInternal, "not run");
  Result<std::string> server = Status(Code::kInternal, "not run");
};
Outcome Handshake(Pair& p, const SharedKey& client_key, const SharedKey& server_key) {
  Outcome o;
  auto server = std::async(std::launch::async, [&] {
    return AuthenticateAsServer(*p.server, server_key, "agent-b", Soon());
  });
  o.client = AuthenticateAsClient(*p.client, client_key, "agent-a", Soon());
  o.server = server.get();
  return o;
}

// A peer that speaks the handshake by hand.
HandshakeMessage Hello(std::string nonce, std::string name = "mallory") {
  HandshakeMessage m;
  m.kind = HandshakeKind::kHello;
  m.name = std::move(name);
  m.nonce = std::move(nonce);
  return m;
}
HandshakeMessage ProofOf(std::string proof) {
  HandshakeMessage m;
  m.kind = HandshakeKind::kProof;
  m.proof = std::move(proof);
  return m;
}
Result<HandshakeMessage> ReceiveMessage(Connection& c) {
  Result<std::string> payload = c.Receive(Soon());
  if (!payload.ok()) return payload.status();
  return DecodeHandshakeMessage(*payload);
}
// The peer refused with `reason` and closed the connection.
void ExpectRefusedAndClosed(Connection& c, RefusalReason reason) {
  Result<HandshakeMessage> refused = ReceiveMessage(c);
  ASSERT_THAT(refused, IsOk());
  EXPECT_EQ(refused->kind, HandshakeKind::kRefused);
  EXPECT_EQ(refused->reason, reason);
  EXPECT_THAT(c.Receive(Soon()), StatusIs(Code::kIoError, HasSubstr("closed by the peer")));
}

class PeerAuthTest : public ::testing::Test {
 protected:
  std::unique_ptr<Transport> transport_ = NewTcpTransport(Env::Default()->clock());
};

TEST_F(PeerAuthTest, PeersWithTheSameKeyLearnEachOthersNameAndKeepTheConnection) {
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  Outcome o = Handshake(p, Key('k'), Key('k'));
  ASSERT_THAT(o.client, IsOk());
  ASSERT_THAT(o.server, IsOk());
  EXPECT_EQ(*o.client, "agent-b");
  EXPECT_EQ(*o.server, "agent-a");
  ASSERT_THAT(p.client->Send("CanCommit"), IsOk());
  EXPECT_EQ(*p.server->Receive(Soon()), "CanCommit");
  ASSERT_THAT(p.server->Send("Vote"), IsOk());
  EXPECT_EQ(*p.client->Receive(Soon()), "Vote");
}

TEST_F(PeerAuthTest, AWrongKeyOnEitherSideIsRefusedOnBothSidesAndClosesTheConnection) {
  for (bool wrong_on_client : {true, false}) {
    SCOPED_TRACE(wrong_on_client ? "wrong key on the client" : "wrong key on the server");
    Pair p = Connected(*transport_);
    ASSERT_NE(p.server, nullptr);
    const std::string key_text(kMinSharedKeySize, 'w');
    SharedKey wrong = *SharedKey::FromBytes(key_text);
    Outcome o = wrong_on_client ? Handshake(p, wrong, Key('k')) : Handshake(p, Key('k'), wrong);
    // The client checks first: it refuses the server's proof; the server hears the refusal.
    EXPECT_THAT(o.client, StatusIs(Code::kConfig,
                                   HasSubstr("the server (calling itself 'agent-b') failed "
                                             "authentication: its proof does not match")));
    EXPECT_THAT(o.server, StatusIs(Code::kConfig, HasSubstr("the peer refused our proof")));
    EXPECT_THAT(o.client, StatusIs(Code::kConfig, Not(HasSubstr(key_text))));
    EXPECT_THAT(p.client->Send("CanCommit"), StatusIs(Code::kIoError));
    EXPECT_THAT(p.server->Receive(Soon()), StatusIs(Code::kIoError));
  }
}

TEST_F(PeerAuthTest, AClientProofReplayedFromAnEarlierSessionIsRefused) {
  const SharedKey key = Key('k');
  const std::string client_nonce(kHandshakeNonceSize, 'n');
  // Session 1: a real client's Proof, as an eavesdropper records it.
  std::string recorded_proof, first_server_nonce;
  {
    Pair p = Connected(*transport_);
    ASSERT_NE(p.server, nullptr);
    auto server = std::async(std::launch::async,
                             [&] { return AuthenticateAsServer(*p.server, key, "agent-b", Soon()); });
    ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(Hello(client_nonce, "agent-a"))), IsOk());
    Result<HandshakeMessage> challenge = ReceiveMessage(*p.client);
    ASSERT_THAT(challenge, IsOk());
    first_server_nonce = challenge->nonce;
    recorded_proof = HandshakeProof(key, kClientProofLabel, client_nonce, challenge->nonce,
                                    "agent-a", challenge->name);
    ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(ProofOf(recorded_proof))), IsOk());
    ASSERT_THAT(server.get(), IsOk());
  }
  // Session 2: the same Hello, the recorded Proof: the server's nonce is new, the proof stale.
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  auto server = std::async(std::launch::async,
                           [&] { return AuthenticateAsServer(*p.server, key, "agent-b", Soon()); });
  ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(Hello(client_nonce, "agent-a"))), IsOk());
  Result<HandshakeMessage> challenge = ReceiveMessage(*p.client);
  ASSERT_THAT(challenge, IsOk());
  EXPECT_NE(challenge->nonce, first_server_nonce);
  ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(ProofOf(recorded_proof))), IsOk());
  EXPECT_THAT(server.get(),
              StatusIs(Code::kConfig, HasSubstr("the client (calling itself 'agent-a') failed "
                                                "authentication")));
  ExpectRefusedAndClosed(*p.client, RefusalReason::kBadProof);
}

TEST_F(PeerAuthTest, TheServersProofReflectedBackAsTheClientsIsRefused) {
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  auto server = std::async(std::launch::async, [&] {
    return AuthenticateAsServer(*p.server, Key('k'), "agent-b", Soon());
  });
  ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(Hello(std::string(kHandshakeNonceSize, 'n')))),
              IsOk());
  Result<HandshakeMessage> challenge = ReceiveMessage(*p.client);
  ASSERT_THAT(challenge, IsOk());
  ASSERT_EQ(challenge->proof.size(), kHandshakeProofSize);
  ASSERT_THAT(p.client->Send(EncodeHandshakeMessage(ProofOf(challenge->proof))), IsOk());
  EXPECT_THAT(server.get(), StatusIs(Code::kConfig, HasSubstr("failed authentication")));
  ExpectRefusedAndClosed(*p.client, RefusalReason::kBadProof);
}

TEST_F(PeerAuthTest, AServerThatSendsTheClientsNonceBackIsRefused) {
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  auto client = std::async(std::launch::async, [&] {
    return AuthenticateAsClient(*p.client, Key('k'), "agent-a", Soon());
  });
  Result<HandshakeMessage> hello = ReceiveMessage(*p.server);
  ASSERT_THAT(hello, IsOk());
  HandshakeMessage challenge;
  challenge.kind = HandshakeKind::kChallenge;
  challenge.name = "mallory";
  challenge.nonce = hello->nonce;
  challenge.proof = std::string(kHandshakeProofSize, 'p');
  ASSERT_THAT(p.server->Send(EncodeHandshakeMessage(challenge)), IsOk());
  EXPECT_THAT(client.get(), StatusIs(Code::kConfig, HasSubstr("sent our own nonce back")));
  ExpectRefusedAndClosed(*p.server, RefusalReason::kBadProof);
}

// What a hand-made client sends in place of its Hello, and what the server says about it.
struct BadFirstMessage {
  const char* what;
  std::string payload;
  const char* error;
};

TEST_F(PeerAuthTest, AMalformedOversizedTruncatedOrOutOfTurnMessageIsRefusedAndClosed) {
  std::string hello = EncodeHandshakeMessage(Hello(std::string(kHandshakeNonceSize, 'n')));
  std::string oversized = hello;
  oversized.resize(kMaxHandshakeMessageSize + 1, 'x');
  const BadFirstMessage cases[] = {
      {"garbage", "GET / HTTP/1.1\r\n\r\n", "version 71 unknown"},
      {"oversized", oversized, "513 bytes, over the limit of 512"},
      {"truncated", hello.substr(0, hello.size() - 1), "Hello: nonce truncated (32 bytes needed"},
      {"trailing byte", hello + "x", "Hello: 1 bytes after the last field"},
      {"out of turn", EncodeHandshakeMessage(ProofOf(std::string(kHandshakeProofSize, 'p'))),
       "waiting for Hello, got Proof"},
      {"empty", "", "header truncated"},
  };
  for (const BadFirstMessage& c : cases) {
    SCOPED_TRACE(c.what);
    Pair p = Connected(*transport_);
    ASSERT_NE(p.server, nullptr);
    auto server = std::async(std::launch::async, [&] {
      return AuthenticateAsServer(*p.server, Key('k'), "agent-b", Soon());
    });
    ASSERT_THAT(p.client->Send(c.payload), IsOk());
    EXPECT_THAT(server.get(), StatusIs(Code::kCorruption, HasSubstr(c.error)));
    ExpectRefusedAndClosed(*p.client, RefusalReason::kMalformed);
  }
}

TEST_F(PeerAuthTest, AMalformedChallengeIsRefusedByTheClient) {
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  auto client = std::async(std::launch::async, [&] {
    return AuthenticateAsClient(*p.client, Key('k'), "agent-a", Soon());
  });
  ASSERT_THAT(ReceiveMessage(*p.server), IsOk());
  ASSERT_THAT(p.server->Send(std::string("\x01\x02\x00", 3)), IsOk());  // a Challenge, empty name
  EXPECT_THAT(client.get(), StatusIs(Code::kCorruption, HasSubstr("Challenge: name: empty")));
  ExpectRefusedAndClosed(*p.server, RefusalReason::kMalformed);
}

TEST_F(PeerAuthTest, AnEmptyOrOverlongOwnNameIsRefusedBeforeAnythingIsSent) {
  Pair p = Connected(*transport_);
  ASSERT_NE(p.server, nullptr);
  EXPECT_THAT(AuthenticateAsClient(*p.client, Key('k'), "", Soon()),
              StatusIs(Code::kInval, HasSubstr("own name of 0 bytes (1..255 allowed)")));
  EXPECT_THAT(AuthenticateAsServer(*p.server, Key('k'), std::string(256, 'n'), Soon()),
              StatusIs(Code::kInval, HasSubstr("own name of 256 bytes")));
}

// The deadline is read on the transport's clock: a silent peer fails the handshake exactly when
// the fake clock reaches it, and not before.
TEST(PeerAuthDeadlineTest, ASilentPeerTimesOutAtTheDeadlineOnEitherSide) {
  for (bool silent_client : {true, false}) {
    SCOPED_TRACE(silent_client ? "silent client" : "silent server");
    FakeClock clock;
    auto transport = NewTcpTransport(&clock);
    Pair p = Connected(*transport);
    ASSERT_NE(p.server, nullptr);
    const Clock::SteadyTime deadline = clock.DeadlineAfter(std::chrono::seconds(3));
    auto side = std::async(std::launch::async, [&] {
      return silent_client ? AuthenticateAsServer(*p.server, Key('k'), "agent-b", deadline)
                           : AuthenticateAsClient(*p.client, Key('k'), "agent-a", deadline);
    });
    ASSERT_TRUE(clock.WaitForBlocked(1));
    clock.Advance(std::chrono::seconds(3) - std::chrono::microseconds(1));
    EXPECT_EQ(clock.blocked(), 1u) << "woke before its deadline";
    clock.Advance(std::chrono::microseconds(1));
    EXPECT_THAT(side.get(),
                StatusIs(Code::kTimeout, HasSubstr(silent_client ? "waiting for Hello"
                                                                 : "waiting for Challenge")));
    Connection& silent = silent_client ? *p.client : *p.server;
    if (!silent_client) {
      ASSERT_THAT(silent.Receive(kForever), IsOk());  // the client's Hello
    }
    EXPECT_THAT(silent.Receive(kForever), StatusIs(Code::kIoError, HasSubstr("closed by the peer")));
  }
}

// Handshakes one after another on loopback: all succeed; prints the cost of one.
TEST_F(PeerAuthTest, ManyHandshakesInARowAllSucceed) {
  constexpr int kRounds = 200;
  const SharedKey key = Key('k');
  Result<std::unique_ptr<Listener>> listener = transport_->Listen("127.0.0.1:0");
  ASSERT_THAT(listener, IsOk());
  // The server stops at its first failed Accept: closing the listener ends it at once.
  auto server = std::async(std::launch::async, [&] {
    int ok = 0;
    for (int i = 0; i < kRounds; ++i) {
      Result<std::unique_ptr<Connection>> c = (*listener)->Accept(Soon());
      if (!c.ok()) break;
      if (AuthenticateAsServer(**c, key, "agent-b", Soon()).ok()) ++ok;
    }
    return ok;
  });
  std::chrono::nanoseconds in_handshake{0};
  int client_ok = 0;
  for (int i = 0; i < kRounds; ++i) {
    Result<std::unique_ptr<Connection>> c = transport_->Connect((*listener)->address(), Soon());
    ASSERT_THAT(c, IsOk());
    auto start = std::chrono::steady_clock::now();
    Result<std::string> peer = AuthenticateAsClient(**c, key, "agent-a", Soon());
    in_handshake += std::chrono::steady_clock::now() - start;
    EXPECT_THAT(peer, IsOk()) << "round " << i;
    if (!peer.ok()) break;
    ++client_ok;
  }
  (*listener)->Close();
  EXPECT_EQ(client_ok, kRounds);
  EXPECT_EQ(server.get(), kRounds);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(in_handshake).count() / kRounds;
  std::printf("peer handshake on loopback: %lld us each (client side, %d rounds)\n",
              static_cast<long long>(micros), kRounds);
  RecordProperty("handshake_us", std::to_string(micros));
}

// ---- Key files ----------------------------------------------------------------------------------

class KeyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xa_peer_auth_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes, mode_t mode) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(KeyFileTest, AKeyFileOfTheOwnerAloneIsReadWhole) {
  const std::string bytes = std::string(31, '\x01') + "\n";
  Result<SharedKey> key = LoadSharedKey(Write("key", bytes, 0600));
  ASSERT_THAT(key, IsOk());
  EXPECT_EQ(key->bytes(), bytes) << "every byte, the newline too";
  ASSERT_THAT(LoadSharedKey(Write("big", std::string(kMaxSharedKeySize, 'b'), 0400)), IsOk());
}

TEST_F(KeyFileTest, AKeyFileThatTheGroupOrOthersCanReadOrWriteIsRefused) {
  for (mode_t mode : {0640, 0620, 0604, 0602, 0644, 0666}) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%03o", static_cast<unsigned>(mode));
    EXPECT_THAT(LoadSharedKey(Write("key", std::string(32, 'k'), mode)),
                StatusIs(Code::kConfig, HasSubstr(std::string("(mode ") + octal +
                                                  "): run `chmod 600 " + dir_ + "/key`")));
  }
}

TEST_F(KeyFileTest, AKeyFileShorterThan32BytesOrLargerThan4KiBIsRefused) {
  EXPECT_THAT(LoadSharedKey(Write("short", std::string(31, 'k'), 0600)),
              StatusIs(Code::kConfig, HasSubstr("holds 31 bytes; a key is 32..4096 bytes: make one "
                                                "with `head -c 32 /dev/urandom")));
  EXPECT_THAT(LoadSharedKey(Write("empty", "", 0600)),
              StatusIs(Code::kConfig, HasSubstr("holds 0 bytes")));
  EXPECT_THAT(LoadSharedKey(Write("long", std::string(kMaxSharedKeySize + 1, 'k'), 0600)),
              StatusIs(Code::kConfig, HasSubstr("is larger than 4096 bytes")));
}

TEST_F(KeyFileTest, ASymbolicLinkOrSomethingOtherThanARegularFileIsRefusedWithoutWaiting) {
  EXPECT_THAT(LoadSharedKey(dir_),
              StatusIs(Code::kConfig, HasSubstr("is a directory, not a regular file")));
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(LoadSharedKey(fifo),
              StatusIs(Code::kConfig, HasSubstr("is a FIFO, not a regular file")));
  // A symbolic link, even to a good key file: whoever controls the link would choose the key.
  const std::string target = Write("key", std::string(32, 'k'), 0600);
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_THAT(LoadSharedKey(link),
              StatusIs(Code::kConfig, HasSubstr("a symbolic link is refused")));
}

TEST_F(KeyFileTest, AMissingKeyFileIsRefusedNamingIt) {
  EXPECT_THAT(LoadSharedKey(dir_ + "/absent"),
              StatusIs(Code::kConfig, HasSubstr("cannot open the shared key file " + dir_ +
                                                "/absent: No such file or directory")));
}

TEST_F(KeyFileTest, TheKeyBytesNeverAppearInARefusal) {
  const std::string secret = "correct horse battery staple!!!";  // 31 bytes: refused
  Result<SharedKey> key = LoadSharedKey(Write("key", secret, 0644));
  ASSERT_THAT(key, StatusIs(Code::kConfig));
  EXPECT_EQ(key.status().message().find("horse"), std::string::npos);
  EXPECT_THAT(SharedKey::FromBytes(secret), StatusIs(Code::kConfig, Not(HasSubstr("horse"))));
}

}  // namespace
}  // namespace xa::net
