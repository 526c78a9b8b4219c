#include "src/base/byte_text.h"

#include <charconv>

namespace xa::internal {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64UrlDigits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Base64UrlValue(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::string LowerHex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 0xf]);
  }
  return out;
}

int HexDigitValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  out->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigitValue(hex[i]);
    int lo = HexDigitValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
  }
  return true;
}

std::string Base64Url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kBase64UrlDigits[(v >> 18) & 63]);
    out.push_back(kBase64UrlDigits[(v >> 12) & 63]);
    out.push_back(kBase64UrlDigits[(v >> 6) & 63]);
    out.push_back(kBase64UrlDigits[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out.push_back(kBase64UrlDigits[(v >> 18) & 63]);
    out.push_back(kBase64UrlDigits[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kBase64UrlDigits[(v >> 18) & 63]);
    out.push_back(kBase64UrlDigits[(v >> 12) & 63]);
    out.push_back(kBase64UrlDigits[(v >> 6) & 63]);
  }
  return out;
}

namespace {
// Base64 digits (their values from `value`, -1 for a character that is not one) into bytes;
// false when a character is not a digit or the unused low bits are not zero.
template <typename DigitValue>
bool DecodeBase64Digits(std::string_view digits, DigitValue value, std::string* out) {
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : digits) {
    int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}
}  // namespace

bool ParseBase64Url(std::string_view text, std::string* out) {
  if (text.size() % 4 == 1) return false;
  return DecodeBase64Digits(text, Base64UrlValue, out);
}

namespace {
int Base64Value(char c) noexcept {
  if (c == '+') return 62;
  if (c == '/') return 63;
  if (c == '-' || c == '_') return -1;
  return Base64UrlValue(c);
}
}  // namespace

std::string Base64(std::string_view bytes) {
  std::string out = Base64Url(bytes);
  for (char& c : out) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

bool ParseBase64(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) return false;
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string_view digits = text.substr(0, text.size() - padding);
  return DecodeBase64Digits(digits, Base64Value, out);
}

bool ParseCanonicalDecimal(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 12) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace xa::internal
