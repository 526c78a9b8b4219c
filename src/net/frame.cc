#include "src/net/frame.h"

#include <cstdio>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace xa::net {
namespace {

namespace crc32c = internal::crc32c;

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

}  // namespace

Status CheckPayloadSize(std::string_view payload) {
  if (payload.size() <= kMaxFramePayload) return Status::Ok();
  return Status(Code::kInval, "message of " + std::to_string(payload.size()) +
                                  " bytes exceeds the frame limit of " +
                                  std::to_string(kMaxFramePayload) + " bytes: split it");
}

void AppendFrame(std::string_view payload, std::string* out) {
  char header[kFrameHeaderSize];
  internal::EncodeFixed32(header, kFrameMagic);
  internal::EncodeFixed32(header + 4, static_cast<uint32_t>(payload.size()));
  internal::EncodeFixed32(header + 8, crc32c::Mask(crc32c::Value(payload)));
  internal::EncodeFixed32(header + 12, crc32c::Mask(crc32c::Value(header, 12)));
  out->append(header, kFrameHeaderSize);
  out->append(payload);
}

std::string EncodeFrame(std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderSize + payload.size());
  AppendFrame(payload, &out);
  return out;
}

void FrameDecoder::Append(std::string_view bytes) {
  if (!failed_.ok()) return;
  // Drop what was already returned before growing, so the buffer holds at most one frame and
  // the bytes of the read in progress.
  if (consumed_ > 0 && consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  } else if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

Result<std::optional<std::string>> FrameDecoder::Next() {
  if (!failed_.ok()) return failed_;
  std::string_view rest(buffer_.data() + consumed_, buffer_.size() - consumed_);
  if (rest.size() < kFrameHeaderSize) return std::optional<std::string>();
  const uint32_t magic = internal::DecodeFixed32(rest.data());
  const uint32_t length = internal::DecodeFixed32(rest.data() + 4);
  const uint32_t payload_crc = crc32c::Unmask(internal::DecodeFixed32(rest.data() + 8));
  const uint32_t header_crc = crc32c::Unmask(internal::DecodeFixed32(rest.data() + 12));
  if (magic != kFrameMagic) {
    failed_ = Status(Code::kCorruption,
                     "frame header: magic " + Hex32(magic) + " is not an xa frame (" +
                         Hex32(kFrameMagic) +
                         "): the peer does not speak this protocol, or the stream lost its place");
  } else if (crc32c::Value(rest.data(), 12) != header_crc) {
    failed_ = Status(Code::kCorruption,
                     "frame header checksum mismatch: the header was damaged in transit or by "
                     "the sender; the connection cannot be trusted any more");
  } else if (length > kMaxFramePayload) {
    failed_ = Status(Code::kCorruption, "frame header: payload of " + std::to_string(length) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(kMaxFramePayload) + " bytes");
  }
  if (!failed_.ok()) return failed_;
  if (rest.size() - kFrameHeaderSize < length) return std::optional<std::string>();
  std::string_view payload = rest.substr(kFrameHeaderSize, length);
  if (crc32c::Value(payload) != payload_crc) {
    failed_ = Status(Code::kCorruption,
                     "frame payload checksum mismatch (" + std::to_string(length) +
                         " bytes): the payload was damaged in transit or by the sender; the "
                         "connection cannot be trusted any more");
    return failed_;
  }
  consumed_ += kFrameHeaderSize + length;
  return std::optional<std::string>(std::string(payload));
}

}  // namespace xa::net
