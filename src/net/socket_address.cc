#include "src/net/socket_address.h"

#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "src/base/escape.h"

namespace xa::net {

Result<SocketAddress> ParseSocketAddress(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status(Code::kInval, "address '" + internal::EscapeForMessage(text) + "' " +
                                    std::string(why) +
                                    ": expected <IPv4>:<port> or [<IPv6>]:<port>");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return bad("has no port");
  std::string_view host = text.substr(0, colon);
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return bad("has no valid port");
  }
  boost::system::error_code parse_error;
  const boost::asio::ip::address ip = boost::asio::ip::make_address(std::string(host), parse_error);
  if (parse_error) return bad("has no IP literal as its host (names are not resolved)");
  // One spelling an address: an IPv6 literal in brackets (its colons would otherwise run into
  // the port's), an IPv4 literal without.
  if (ip.is_v6() != bracketed) {
    return bad(ip.is_v6() ? "has an IPv6 literal without brackets"
                          : "has an IPv4 literal in brackets");
  }
  return SocketAddress{ip.to_string(), static_cast<uint16_t>(port), ip.is_v6()};
}

}  // namespace xa::net
