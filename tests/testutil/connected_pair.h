// A connected pair of Connections over a real Transport, for the tests of the network seam and
// of what runs over it (the peers' handshake).

#ifndef XA_TESTS_TESTUTIL_CONNECTED_PAIR_H_
#define XA_TESTS_TESTUTIL_CONNECTED_PAIR_H_

#include <memory>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "src/net/transport.h"
#include "testutil/status_matchers.h"

namespace xa::test {

// `client` dialled `server` through `listener` (on 127.0.0.1, a port the system picked). A
// member is null when its step failed; the failure is already reported to the test.
struct ConnectedPair {
  std::unique_ptr<net::Listener> listener;
  std::unique_ptr<net::Connection> client;
  std::unique_ptr<net::Connection> server;
};

inline ConnectedPair Connected(net::Transport& transport) {
  ConnectedPair p;
  Result<std::unique_ptr<net::Listener>> l = transport.Listen("127.0.0.1:0");
  EXPECT_THAT(l, IsOk());
  if (!l.ok()) return p;
  p.listener = std::move(*l);
  Result<std::unique_ptr<net::Connection>> c =
      transport.Connect(p.listener->address(), Clock::kNoDeadline);
  EXPECT_THAT(c, IsOk());
  if (!c.ok()) return p;
  p.client = std::move(*c);
  Result<std::unique_ptr<net::Connection>> s = p.listener->Accept(Clock::kNoDeadline);
  EXPECT_THAT(s, IsOk());
  if (s.ok()) p.server = std::move(*s);
  return p;
}

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_CONNECTED_PAIR_H_
