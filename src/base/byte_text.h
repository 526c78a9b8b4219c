// Byte strings as text and back (internal): lower-case hex, base64url without padding, and
// canonical decimals. Each parser is strict, so that every value has exactly one accepted
// spelling: an Xid read back from a database or a file is then either exactly what we wrote or
// refused.
//
// Thread safety: pure functions.

#ifndef XA_SRC_BASE_BYTE_TEXT_H_
#define XA_SRC_BASE_BYTE_TEXT_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace xa::internal {

// Two lower-case hex digits a byte.
std::string LowerHex(std::string_view bytes);
// The value of one hex digit (either case), or -1.
int HexDigitValue(char c) noexcept;
// Even-length hex, either case, into bytes; false (and *out unspecified) otherwise.
bool ParseHex(std::string_view hex, std::string* out);

// RFC 4648 base64url without padding.
std::string Base64Url(std::string_view bytes);
// Strict: no padding, no whitespace, and the unused low bits of the last character must be zero.
bool ParseBase64Url(std::string_view text, std::string* out);

// RFC 4648 base64 with its standard alphabet and padding (the Standard Webhooks secrets and
// signatures).
std::string Base64(std::string_view bytes);
// Strict: length a multiple of 4, padding only at the end, no whitespace, unused bits zero.
bool ParseBase64(std::string_view text, std::string* out);

// A non-negative decimal of at most 12 digits without a leading zero ("0" itself is fine).
bool ParseCanonicalDecimal(std::string_view text, int64_t* value);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_BYTE_TEXT_H_
