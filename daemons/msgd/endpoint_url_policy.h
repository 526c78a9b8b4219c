// Which URLs the notifier may call (docs/notifications.md, "Which URLs"): the defence against
// the classic webhook SSRF, where a merchant registers http://10.0.0.5/admin or a name that
// resolves to 127.0.0.1 and makes the payment system call its own internal services.
//
// A URL is http(s)://host[:port][/path][?query], without user info or fragment. The operator
// allows schemes (https only, by default) and host names (any, or a list of names and
// "*.suffix" patterns). At every call the host is resolved again, and every address it
// resolves to must be allowed: a public unicast address (unless allow_public is off), or one in
// the operator's networks. The call then goes to the address that was checked, not to a second
// lookup's (no DNS rebinding between check and call).
//
// Thread safety: values and pure functions (ResolveEndpointUrl calls getaddrinfo, which is
// thread-safe).

#ifndef XA_DAEMONS_MSGD_ENDPOINT_URL_POLICY_H_
#define XA_DAEMONS_MSGD_ENDPOINT_URL_POLICY_H_

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa::msg {

// A network as "address/prefix-length" ("127.0.0.0/8", "fd00::/8").
struct IpNetwork {
  bool v6 = false;
  unsigned char bytes[16] = {};
  int prefix = 0;
};
Result<IpNetwork> ParseIpNetwork(std::string_view text);

struct UrlPolicy {
  std::vector<std::string> schemes = {"https"};
  std::vector<std::string> hosts;      // empty: any name; else names and "*.suffix" patterns
  std::vector<IpNetwork> networks;     // allowed besides the public addresses
  bool allow_public = true;            // addresses no reserved range holds
};

struct EndpointUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // a name, an IPv4 literal, or an IPv6 literal without brackets
  int port = 0;
  std::string target;  // the path and query, at least "/"
  // "scheme://host:port", brackets around an IPv6 literal.
  std::string Origin() const;
};

// The parts of `url`; kInval naming what is wrong.
Result<EndpointUrl> ParseEndpointUrl(std::string_view url);
// Whether the policy allows the URL's scheme and host name (no lookup); kInval naming why.
Status CheckEndpointUrl(const EndpointUrl& url, const UrlPolicy& policy);
// Whether the policy allows a call to `address` (AF_INET or AF_INET6; a v4-mapped v6 address
// is judged as the v4 one).
bool AddressAllowed(const sockaddr* address, const UrlPolicy& policy);
// Checks the URL (CheckEndpointUrl), resolves its host and checks every address; the address
// to call, as a literal. kInval naming a refused address; kRmFail when the name does not
// resolve.
Result<std::string> ResolveEndpointUrl(const EndpointUrl& url, const UrlPolicy& policy);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_ENDPOINT_URL_POLICY_H_
