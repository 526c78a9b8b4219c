// The one parser of the network addresses the transport listens on and connects to, and that a
// configuration names (the agents' directory): "<IPv4 literal>:<port>" or
// "[<IPv6 literal>]:<port>". Host names are not resolved (a name's address may change under a
// running deployment; an IP literal says exactly where a peer is).

#ifndef XA_SRC_NET_SOCKET_ADDRESS_H_
#define XA_SRC_NET_SOCKET_ADDRESS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "xa/status.h"

namespace xa::net {

struct SocketAddress {
  std::string ip;  // the literal without brackets: "127.0.0.1", "::1"
  uint16_t port = 0;
  bool ipv6 = false;
};

// Parses `text`; port 0 is accepted (a listener picks a free port), a caller that needs a real
// port checks it. Code::kInval otherwise, the message saying what is wrong, the expected forms,
// and "IP literal" when the host is not one; `text` is escaped in it.
Result<SocketAddress> ParseSocketAddress(std::string_view text);

}  // namespace xa::net

#endif  // XA_SRC_NET_SOCKET_ADDRESS_H_
