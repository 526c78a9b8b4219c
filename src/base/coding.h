// Explicit little-endian encoding for the decision log: fixed-width integers, varints and
// length-prefixed strings. Bytes are assembled one by one, so the encoding is the same on every
// host; no struct is ever copied to disk.

#ifndef XA_SRC_BASE_CODING_H_
#define XA_SRC_BASE_CODING_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace xa::internal {

inline void EncodeFixed32(char* dst, uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void EncodeFixed64(char* dst, uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t DecodeFixed32(const char* p) noexcept {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 |
         static_cast<uint32_t>(u[2]) << 16 | static_cast<uint32_t>(u[3]) << 24;
}
inline uint64_t DecodeFixed64(const char* p) noexcept {
  return static_cast<uint64_t>(DecodeFixed32(p)) |
         static_cast<uint64_t>(DecodeFixed32(p + 4)) << 32;
}

inline void PutFixed32(std::string* dst, uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  dst->append(buf, 4);
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  dst->append(buf, 8);
}
inline void PutVarint64(std::string* dst, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  dst->append(buf, n);
}
inline void PutLengthPrefixed(std::string* dst, std::string_view s) {
  PutVarint64(dst, s.size());
  dst->append(s.data(), s.size());
}

// Reads from a bounded byte range. Every Get* returns false, consuming nothing useful, when
// the input is too short or malformed; callers stop at the first false.
class Decoder {
 public:
  explicit Decoder(std::string_view in) noexcept : in_(in) {}

  bool GetU8(uint8_t* v) noexcept {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool GetFixed32(uint32_t* v) noexcept {
    if (in_.size() < 4) return false;
    *v = DecodeFixed32(in_.data());
    in_.remove_prefix(4);
    return true;
  }
  bool GetFixed64(uint64_t* v) noexcept {
    if (in_.size() < 8) return false;
    *v = DecodeFixed64(in_.data());
    in_.remove_prefix(8);
    return true;
  }
  bool GetVarint64(uint64_t* v) noexcept {
    uint64_t result = 0;
    for (unsigned shift = 0; shift <= 63 && !in_.empty(); shift += 7) {
      uint64_t byte = static_cast<unsigned char>(in_[0]);
      in_.remove_prefix(1);
      if (shift == 63 && byte > 1) return false;  // more than 64 bits
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  // A varint length, then that many bytes; refused when longer than max_size.
  bool GetLengthPrefixed(std::string_view* s, size_t max_size) noexcept {
    uint64_t n;
    if (!GetVarint64(&n) || n > max_size || n > in_.size()) return false;
    *s = in_.substr(0, static_cast<size_t>(n));
    in_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  bool GetBytes(size_t n, std::string_view* s) noexcept {
    if (n > in_.size()) return false;
    *s = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }

  bool empty() const noexcept { return in_.empty(); }
  size_t remaining() const noexcept { return in_.size(); }

 private:
  std::string_view in_;
};

}  // namespace xa::internal

#endif  // XA_SRC_BASE_CODING_H_
