#include "daemons/msgd/endpoint_url_policy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>

#include "src/base/escape.h"

namespace xa::msg {
namespace {

using internal::EscapeForMessage;

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool InNetwork(const unsigned char* bytes, bool v6, const IpNetwork& network) {
  if (network.v6 != v6) return false;
  int whole = network.prefix / 8, rest = network.prefix % 8;
  if (std::memcmp(bytes, network.bytes, static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (bytes[whole] & mask) == (network.bytes[whole] & mask);
}

// The ranges no public service lives in: loopback, private, shared (CGNAT), link-local (cloud
// metadata at 169.254.169.254), documentation, benchmarking, multicast, reserved.
const std::vector<IpNetwork>& ReservedNetworks() {
  static const std::vector<IpNetwork> reserved = [] {
    std::vector<IpNetwork> networks;
    for (const char* text :
         {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
          "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
          "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
          "::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001::/23", "2001:db8::/32",
          "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8"}) {
      networks.push_back(ParseIpNetwork(text).value());
    }
    return networks;
  }();
  return reserved;
}

}  // namespace

Result<IpNetwork> ParseIpNetwork(std::string_view text) {
  auto bad = [&] {
    return Status(Code::kInval, "'" + EscapeForMessage(text.substr(0, 60)) +
                                    "' is not a network address/prefix-length (127.0.0.0/8)");
  };
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return bad();
  std::string address(text.substr(0, slash));
  std::string_view length = text.substr(slash + 1);
  IpNetwork network;
  if (inet_pton(AF_INET, address.c_str(), network.bytes) == 1) {
    network.v6 = false;
  } else if (inet_pton(AF_INET6, address.c_str(), network.bytes) == 1) {
    network.v6 = true;
  } else {
    return bad();
  }
  auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), network.prefix);
  if (length.empty() || error != std::errc() || end != length.data() + length.size() ||
      network.prefix < 0 || network.prefix > (network.v6 ? 128 : 32)) {
    return bad();
  }
  return network;
}

std::string EndpointUrl::Origin() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<EndpointUrl> ParseEndpointUrl(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return Status(Code::kInval, "endpoint url '" + EscapeForMessage(url.substr(0, 200)) +
                                    "': " + why);
  };
  EndpointUrl parsed;
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) return bad("not scheme://host[:port][/path]");
  parsed.scheme = Lower(url.substr(0, colon));
  if (parsed.scheme != "http" && parsed.scheme != "https") return bad("the scheme is not http(s)");
  std::string_view rest = url.substr(colon + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) return bad("user info is not allowed");
  if (target.find('#') != std::string_view::npos) return bad("a fragment is not allowed");
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return bad("blanks and control characters are not allowed");
    }
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 literal lacks its ']'");
    parsed.host = Lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the IPv6 literal");
      port_text = after.substr(1);
    }
    in6_addr probe{};
    if (inet_pton(AF_INET6, parsed.host.c_str(), &probe) != 1) return bad("bad IPv6 literal");
  } else {
    size_t port_colon = authority.rfind(':');
    parsed.host = Lower(authority.substr(0, port_colon));
    if (port_colon != std::string_view::npos) port_text = authority.substr(port_colon + 1);
    if (parsed.host.empty() || parsed.host.size() > 253) return bad("no host, or a host too long");
    for (char c : parsed.host) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
        return bad("the host has a character other than [a-z0-9.-]");
      }
    }
  }
  parsed.port = parsed.scheme == "https" ? 443 : 80;
  if (!port_text.empty() || authority.ends_with(":")) {
    auto [p, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(),
                                      parsed.port);
    if (port_text.empty() || error != std::errc() || p != port_text.data() + port_text.size() ||
        parsed.port < 1 || parsed.port > 65535) {
      return bad("the port is not 1 to 65535");
    }
  }
  parsed.target = target.empty() ? "/" : (target.front() == '?' ? "/" : "") + std::string(target);
  return parsed;
}

Status CheckEndpointUrl(const EndpointUrl& url, const UrlPolicy& policy) {
  if (std::find(policy.schemes.begin(), policy.schemes.end(), url.scheme) ==
      policy.schemes.end()) {
    return Status(Code::kInval, "the notifier's allowed_schemes do not include '" + url.scheme +
                                    "'");
  }
  if (policy.hosts.empty()) return Status::Ok();
  for (const std::string& pattern : policy.hosts) {
    if (pattern == url.host) return Status::Ok();
    if (pattern.starts_with("*.") && url.host.size() > pattern.size() - 1 &&
        url.host.ends_with(std::string_view(pattern).substr(1))) {
      return Status::Ok();
    }
  }
  return Status(Code::kInval, "the notifier's allowed_hosts do not include '" +
                                  EscapeForMessage(url.host) + "'");
}

bool AddressAllowed(const sockaddr* address, const UrlPolicy& policy) {
  unsigned char bytes[16] = {};
  bool v6 = false;
  if (address->sa_family == AF_INET) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(bytes, &in6->sin6_addr, 16);
    v6 = true;
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kMapped, 12) == 0) {  // ::ffff:a.b.c.d is a.b.c.d
      std::memmove(bytes, bytes + 12, 4);
      std::memset(bytes + 4, 0, 12);
      v6 = false;
    }
  } else {
    return false;
  }
  for (const IpNetwork& network : policy.networks) {
    if (InNetwork(bytes, v6, network)) return true;
  }
  if (!policy.allow_public) return false;
  for (const IpNetwork& network : ReservedNetworks()) {
    if (InNetwork(bytes, v6, network)) return false;
  }
  return true;
}

Result<std::string> ResolveEndpointUrl(const EndpointUrl& url, const UrlPolicy& policy) {
  XA_RETURN_IF_ERROR(CheckEndpointUrl(url, policy));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int error = getaddrinfo(url.host.c_str(), nullptr, &hints, &found);
  if (error != 0) {
    return Status(Code::kRmFail, "the endpoint's host '" + EscapeForMessage(url.host) +
                                     "' does not resolve: " + gai_strerror(error));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(found, freeaddrinfo);
  std::string chosen;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = a->ai_family == AF_INET
                          ? static_cast<const void*>(
                                &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr)
                          : static_cast<const void*>(
                                &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (inet_ntop(a->ai_family, raw, text, sizeof(text)) == nullptr) continue;
    // Every address must be allowed: a name that resolves to a public and an internal address
    // is refused, whichever a connect would pick.
    if (!AddressAllowed(a->ai_addr, policy)) {
      return Status(Code::kInval, "the endpoint's host '" + EscapeForMessage(url.host) +
                                      "' resolves to " + text +
                                      ", which the notifier's allowed_networks do not include");
    }
    if (chosen.empty()) chosen = text;
  }
  if (chosen.empty()) {
    return Status(Code::kRmFail, "the endpoint's host '" + EscapeForMessage(url.host) +
                                     "' resolves to no address");
  }
  return chosen;
}

}  // namespace xa::msg
