// CRC32C (Castagnoli), as used by the decision log's records and file headers.
//
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run time), a
// slicing-by-8 table otherwise; both give the same values.

#ifndef XA_SRC_BASE_CRC32C_H_
#define XA_SRC_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace xa::internal::crc32c {

// The CRC32C of concat(A, data), where init_crc is the CRC32C of some string A.
uint32_t Extend(uint32_t init_crc, const char* data, size_t n) noexcept;

inline uint32_t Value(const char* data, size_t n) noexcept { return Extend(0, data, n); }
inline uint32_t Value(std::string_view data) noexcept { return Extend(0, data.data(), data.size()); }

// Stored CRCs are masked (as leveldb does): computing the CRC of a string that itself contains
// embedded CRCs is otherwise prone to problems.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr uint32_t Mask(uint32_t crc) noexcept { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
constexpr uint32_t Unmask(uint32_t masked) noexcept {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// For tests: true when the hardware path is in use.
bool UsesHardware() noexcept;
// For tests: the portable path, whatever the CPU.
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n) noexcept;

}  // namespace xa::internal::crc32c

#endif  // XA_SRC_BASE_CRC32C_H_
