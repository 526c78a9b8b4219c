// HMAC-SHA256 and a constant-time comparison (internal), on OpenSSL's libcrypto: the agents'
// handshake proofs (src/net/peer_auth.h) and the Standard Webhooks signatures (xa/msg/webhook.h).
//
// Thread safety: pure functions.

#ifndef XA_SRC_BASE_HMAC_SHA256_H_
#define XA_SRC_BASE_HMAC_SHA256_H_

#include <string>
#include <string_view>

namespace xa::internal {

inline constexpr size_t kHmacSha256Size = 32;

// The 32-byte MAC of `data` under `key`; "" when libcrypto fails, which no MAC ever equals.
std::string HmacSha256(std::string_view key, std::string_view data);
// Whether `a` and `b` are equal, in time that depends only on their sizes.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_HMAC_SHA256_H_
