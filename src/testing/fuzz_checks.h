// What every fuzz target checks beside ASan and UBSan: its own invariants, and that a refusal's
// message is printable ASCII (hostile bytes must never reach a log or a terminal unescaped).

#ifndef XA_SRC_TESTING_FUZZ_CHECKS_H_
#define XA_SRC_TESTING_FUZZ_CHECKS_H_

#include <cstdlib>
#include <string_view>

namespace xa::fuzz {

// Aborts when `invariant` is false, which libFuzzer reports as a finding with the input.
inline void Check(bool invariant) {
  if (!invariant) std::abort();
}

inline bool Printable(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace xa::fuzz

#endif  // XA_SRC_TESTING_FUZZ_CHECKS_H_
