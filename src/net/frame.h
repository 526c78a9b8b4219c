// Frames: how a message travels over a byte stream between xa processes (the coordinator and
// its participant agents). The format is also in frame_format.md beside this file; a test
// (tests/net/frame_format_doc_test.cc) checks that the two agree.
//
// A frame is a 16-byte header and the payload (all integers little-endian):
//
//   +-------+--------+-------------+------------+---------------+
//   | magic | length | payload crc | header crc | payload       |
//   | 4     | 4      | 4           | 4          | length bytes  |
//   +-------+--------+-------------+------------+---------------+
//   magic        kFrameMagic: the bytes "XAF1"; anything else is not an xa peer, or a stream
//                that lost its place
//   length       payload bytes, at most kMaxFramePayload
//   payload crc  masked CRC32C of the payload
//   header crc   masked CRC32C of the 12 bytes before it: a damaged length is caught before the
//                decoder waits for a payload that never comes
//
// What the payload means is the business of the protocol that sends it; a frame only promises
// that the bytes arrive whole and unchanged, or not at all.
//
// The CRC is the decision log's (src/base/crc32c.h): one checksum for every record and frame.

#ifndef XA_SRC_NET_FRAME_H_
#define XA_SRC_NET_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xa/status.h"

namespace xa::net {

inline constexpr uint32_t kFrameMagic = 0x31464158;  // "XAF1" little-endian
inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint32_t kMaxFramePayload = 16 * 1024 * 1024;

// Appends the frame of `payload` to *out. `payload` must not exceed kMaxFramePayload (the
// transports check with CheckPayloadSize first).
void AppendFrame(std::string_view payload, std::string* out);
std::string EncodeFrame(std::string_view payload);

// XA_INVAL naming the size and the limit when `payload` is too large to frame.
Status CheckPayloadSize(std::string_view payload);

// Splits a byte stream into payloads. Feed it what the stream delivers, in order, then take
// frames until it needs more bytes:
//
//   decoder.Append(bytes);
//   while (true) {
//     Result<std::optional<std::string>> next = decoder.Next();
//     if (!next.ok()) ... the stream is damaged: drop the connection
//     if (!next->has_value()) break;  // need more bytes
//     ... use **next ...
//   }
//
// Damage is Code::kCorruption with what was wrong; after it, the decoder stays failed (the
// stream's framing is lost, nothing after it can be trusted).
class FrameDecoder {
 public:
  void Append(std::string_view bytes);
  Result<std::optional<std::string>> Next();
  // Bytes received but not yet returned as a frame (a partial frame at a close is a torn one).
  size_t buffered() const noexcept { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already returned as frames
  Status failed_;
};

}  // namespace xa::net

#endif  // XA_SRC_NET_FRAME_H_
