// libFuzzer target: how `xa-log dump` renders a record, on every record the decoder accepts.
//
// The input is a record seed (the first byte picks a record type, the rest is its payload); a
// payload that decodes, as that type or as a checkpoint whose entries decode, is rendered as text
// and as JSON, with the LSN and timestamp taken from the input too (any int64, INT64_MIN
// included). Whatever the input: no crash, no sanitizer report (no overflow in the time
// conversion), no raw control character in either output, and JSON strings that are closed.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "recovery-log/log_tool.h"
#include "recovery-log/record_codec.h"

namespace {

// Text: control characters escaped. JSON: none at all outside escapes, and quotes balanced.
void CheckRendered(const xa::LogRecord& record) {
  std::ostringstream text, json;
  xa::internal::RenderRecordText(record, text);
  xa::internal::RenderRecordJson(record, json);
  json << "}";
  for (char c : text.str()) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
  }
  bool in_string = false, escaped = false;
  for (char c : json.str()) {
    if (static_cast<unsigned char>(c) < 0x20) std::abort();
    if (escaped) {
      escaped = false;
    } else if (c == '\\') {
      if (!in_string) std::abort();
      escaped = true;
    } else if (c == '"') {
      in_string = !in_string;
    }
  }
  if (in_string || escaped) std::abort();
}

int64_t Int64At(std::string_view in, size_t at) {
  uint64_t v = 0;
  if (in.size() >= at + 8) std::memcpy(&v, in.data() + at, 8);
  return static_cast<int64_t>(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::internal;  // NOLINT(build/namespaces): a fuzzer's .cc, not a header
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.empty()) return 0;
  xa::RecordType type =
      kLogicalRecordTypes[static_cast<uint8_t>(in[0]) % std::size(kLogicalRecordTypes)];
  std::string_view payload = in.substr(1);
  xa::LogRecord record;
  if (DecodePayload(type, payload, &record).ok()) {
    record.lsn = static_cast<uint64_t>(Int64At(payload, 1));
    CheckRendered(record);
    record.timestamp_us = Int64At(payload, 0);  // the decoder's own, and any other
    CheckRendered(record);
  }
  int64_t ts;
  bool last;
  std::vector<CheckpointEntry> entries;
  if (DecodeCheckpointPayload(payload, &ts, &last, &entries).ok()) {
    xa::LogRecord checkpoint;
    checkpoint.type = xa::RecordType::kCheckpoint;
    checkpoint.timestamp_us = ts;
    CheckRendered(checkpoint);
    for (const CheckpointEntry& e : entries) {
      xa::LogRecord r;
      if (DecodePayload(e.type, e.payload, &r).ok()) {
        r.lsn = e.lsn;
        CheckRendered(r);
      }
    }
  }
  return 0;
}
