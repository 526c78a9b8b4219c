// The notifier's URL policy (daemons/msgd/endpoint_url_policy.h) on its own: URLs parsed or
// refused with the reason, schemes and host patterns, and the reserved address ranges an
// endpoint may not resolve to unless the operator allowed them.

#include "daemons/msgd/endpoint_url_policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace xa::msg {
namespace {

bool Allowed(const std::string& address, const UrlPolicy& policy) {
  sockaddr_storage storage{};
  if (address.find(':') == std::string::npos) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    EXPECT_EQ(inet_pton(AF_INET, address.c_str(), &in->sin_addr), 1) << address;
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    EXPECT_EQ(inet_pton(AF_INET6, address.c_str(), &in6->sin6_addr), 1) << address;
  }
  return AddressAllowed(reinterpret_cast<const sockaddr*>(&storage), policy);
}

TEST(EndpointUrlTest, ParsesHostPortAndTargetWithDefaults) {
  auto url = ParseEndpointUrl("https://Pay.Shop.example/notify?x=1");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->scheme, "https");
  EXPECT_EQ(url->host, "pay.shop.example");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/notify?x=1");
  EXPECT_EQ(url->Origin(), "https://pay.shop.example:443");
  auto v6 = ParseEndpointUrl("http://[::1]:8080");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->target, "/");
  EXPECT_EQ(v6->Origin(), "http://[::1]:8080");
}

TEST(EndpointUrlTest, RefusesWhatCouldSmuggleAnotherDestination) {
  for (const char* bad : {"ftp://a.example/", "https://user:pw@a.example/", "https://a.example/#x",
                          "https://a.example:0/", "https://a.example:99999/", "https:///x",
                          "https://a.example/ x", "https://a_b.example/", "https://[::1/",
                          "a.example/notify"}) {
    auto url = ParseEndpointUrl(bad);
    EXPECT_EQ(url.status().code(), Code::kInval) << bad;
  }
}

TEST(EndpointUrlTest, SchemesAndHostPatternsAreChecked) {
  UrlPolicy policy;
  policy.hosts = {"*.shop.example", "pay.example"};
  EXPECT_TRUE(CheckEndpointUrl(ParseEndpointUrl("https://a.shop.example/").value(), policy).ok());
  EXPECT_TRUE(CheckEndpointUrl(ParseEndpointUrl("https://pay.example/").value(), policy).ok());
  EXPECT_FALSE(CheckEndpointUrl(ParseEndpointUrl("https://shop.example/").value(), policy).ok());
  EXPECT_FALSE(CheckEndpointUrl(ParseEndpointUrl("https://evilshop.example/").value(), policy).ok());
  Status http = CheckEndpointUrl(ParseEndpointUrl("http://pay.example/").value(), policy);
  EXPECT_EQ(http.code(), Code::kInval);
  EXPECT_NE(http.message().find("allowed_schemes"), std::string::npos) << http.ToString();
}

TEST(EndpointUrlTest, ReservedAddressesAreRefusedUnlessTheOperatorAllowedThem) {
  UrlPolicy policy;
  for (const char* reserved : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
                               "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1",
                               "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::"}) {
    EXPECT_FALSE(Allowed(reserved, policy)) << reserved;
  }
  for (const char* public_address : {"93.184.216.34", "8.8.8.8", "2606:4700::1111"}) {
    EXPECT_TRUE(Allowed(public_address, policy)) << public_address;
  }
  policy.networks = {ParseIpNetwork("10.1.0.0/16").value()};
  EXPECT_TRUE(Allowed("10.1.2.3", policy));
  EXPECT_FALSE(Allowed("10.2.0.1", policy));
  policy.allow_public = false;
  EXPECT_FALSE(Allowed("8.8.8.8", policy));
}

TEST(EndpointUrlTest, NamesResolvingToRefusedAddressesAreNotCalled) {
  UrlPolicy policy;
  policy.schemes = {"http"};
  auto refused = ResolveEndpointUrl(ParseEndpointUrl("http://localhost:1/").value(), policy);
  EXPECT_EQ(refused.status().code(), Code::kInval) << refused.status().ToString();
  policy.networks = {ParseIpNetwork("127.0.0.0/8").value(), ParseIpNetwork("::1/128").value()};
  auto allowed = ResolveEndpointUrl(ParseEndpointUrl("http://localhost:1/").value(), policy);
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_TRUE(*allowed == "127.0.0.1" || *allowed == "::1") << *allowed;
}

TEST(EndpointUrlTest, NetworksParseOrSayWhy) {
  EXPECT_TRUE(ParseIpNetwork("fd00::/8").ok());
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "::/129", "x/8", "10.0.0.0/"}) {
    EXPECT_EQ(ParseIpNetwork(bad).status().code(), Code::kInval) << bad;
  }
}

}  // namespace
}  // namespace xa::msg
