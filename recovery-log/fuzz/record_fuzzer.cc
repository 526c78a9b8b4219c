// libFuzzer target: the record decoders and the segment reader on hostile bytes.
//
// The first byte picks a record type; the rest is decoded as that type's payload and as a
// checkpoint payload, and the whole input is walked as a segment. Whatever the input: no crash,
// no sanitizer report, and a payload that decodes re-encodes to the same record.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "recovery-log/record_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::internal;  // NOLINT(build/namespaces): a fuzzer's .cc, not a header
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty()) {
    xa::RecordType type =
        kLogicalRecordTypes[static_cast<uint8_t>(in[0]) % std::size(kLogicalRecordTypes)];
    std::string_view payload = in.substr(1);
    xa::LogRecord record;
    if (DecodePayload(type, payload, &record).ok()) {
      // What decodes must re-encode, and decode back to the same record (varints may have
      // several encodings, so compare records, not bytes).
      std::string again;
      xa::LogRecord back;
      if (!EncodePayload(record, &again).ok() || !DecodePayload(type, again, &back).ok() ||
          !(back == record)) {
        std::abort();
      }
    }
    int64_t ts;
    bool last;
    std::vector<CheckpointEntry> entries;
    if (DecodeCheckpointPayload(payload, &ts, &last, &entries).ok()) {
      for (const CheckpointEntry& e : entries) {
        xa::LogRecord r;
        DecodePayload(e.type, e.payload, &r).IgnoreError();
      }
    }
  }
  SegmentReader reader(in);
  SegmentHeader header;
  reader.ReadHeader(&header).IgnoreError();
  PhysicalRecord pr;
  for (int i = 0; i < 100000; ++i) {
    SegmentReader::Outcome o = reader.Next(&pr);
    if (o == SegmentReader::Outcome::kRecord) {
      if (pr.offset + pr.size > in.size()) std::abort();
      continue;
    }
    if (o == SegmentReader::Outcome::kBad) reader.ValidRecordAfter(reader.bad_offset(), 0);
    break;
  }
  return 0;
}
