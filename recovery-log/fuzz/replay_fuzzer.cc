// libFuzzer target: replay (the state machine over segments) on hostile bytes.
//
// The input is one or two segments: if it contains the separator "\n--segment--\n", the part
// before it is segment 1 and the part after it segment 2. Seeded with real logs (see
// make_seeds.cc), truncated and bit-flipped. Checked for every input and both recovery modes:
// no crash or sanitizer report; a replay that succeeds is not marked damaged; a damaged replay
// has an error that names a segment and an offset.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "recovery-log/log_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using xa::internal::ReplayOptions;
  using xa::internal::ReplayResult;
  using xa::internal::SegmentInput;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSeparator = "\n--segment--\n";
  std::vector<SegmentInput> segments;
  size_t cut = in.find(kSeparator);
  if (cut == std::string_view::npos) {
    segments.push_back(SegmentInput{"segment-1", 1, in});
  } else {
    segments.push_back(SegmentInput{"segment-1", 1, in.substr(0, cut)});
    segments.push_back(SegmentInput{"segment-2", 2, in.substr(cut + kSeparator.size())});
  }
  for (xa::LogRecoveryMode mode :
       {xa::LogRecoveryMode::kTolerateCorruptedTail, xa::LogRecoveryMode::kAbsoluteConsistency}) {
    ReplayOptions options;
    options.mode = mode;
    uint64_t visited = 0;
    options.visit = [&](const xa::internal::ReplayEvent&) { ++visited; };
    ReplayResult r = xa::internal::ReplaySegments(segments, options);
    if (r.status.ok() && r.state.damaged) std::abort();
    if (r.state.damaged && r.status.message().find("segment-") == std::string::npos) std::abort();
    if (r.status.ok() && visited != r.records) std::abort();
  }
  return 0;
}
