#include "xa/xid.h"

#include <random>
#include <tuple>

#include "src/base/byte_text.h"
#include "src/base/escape.h"
#include "xa/env.h"

namespace xa {
namespace {

constexpr uint8_t kGtridLayoutVersion = 1;
constexpr uint8_t kBqualLayoutVersion = 1;

using internal::EscapeForMessage;
using internal::LowerHex;
using internal::ParseCanonicalDecimal;
using internal::ParseHex;

Status Invalid(std::string message) { return Status(Code::kInval, std::move(message)); }

// The one form of Parse's refusals: "'<text>' is not an xid: <why>".
Status NotAnXid(std::string_view text, std::string_view why) {
  std::string message = "'";
  message += EscapeForMessage(text);
  message += "' is not an xid: ";
  message += why;
  return Invalid(std::move(message));
}

uint32_t RandomNonce() {
  std::random_device device;
  return static_cast<uint32_t>(device());
}

uint64_t ReadBigEndian(std::string_view bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

void PutBigEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

Result<Xid> Xid::Make(int64_t format_id, std::string_view gtrid, std::string_view bqual) {
  if (format_id < 0 || format_id > kMaxFormatId) {
    return Invalid("xid format ID " + std::to_string(format_id) +
                   " is out of range: it must be in [0, 2147483647] (-1 is the XA null xid)");
  }
  if (gtrid.empty() || gtrid.size() > kMaxGtridSize) {
    return Invalid("xid gtrid is " + std::to_string(gtrid.size()) +
                   " bytes: it must be 1 to 64 bytes");
  }
  if (bqual.size() > kMaxBqualSize) {
    return Invalid("xid bqual is " + std::to_string(bqual.size()) +
                   " bytes: it must be at most 64 bytes");
  }
  Xid xid;
  xid.format_id_ = static_cast<int32_t>(format_id);
  xid.gtrid_.assign(gtrid);
  xid.bqual_.assign(bqual);
  return xid;
}

std::string Xid::ToString() const {
  return std::to_string(format_id_) + ":" + LowerHex(gtrid_) + ":" + LowerHex(bqual_);
}

Result<Xid> Xid::Parse(std::string_view text) {
  size_t first = text.find(':');
  size_t second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos || text.find(':', second + 1) != std::string_view::npos) {
    return NotAnXid(text, "expected <format id>:<gtrid hex>:<bqual hex>");
  }
  int64_t format_id = 0;
  if (!ParseCanonicalDecimal(text.substr(0, first), &format_id)) {
    return NotAnXid(text, "the format ID is not a decimal number");
  }
  std::string gtrid, bqual;
  if (!ParseHex(text.substr(first + 1, second - first - 1), &gtrid) ||
      !ParseHex(text.substr(second + 1), &bqual)) {
    return NotAnXid(text, "gtrid and bqual must be even-length hex");
  }
  return Make(format_id, gtrid, bqual);
}

Xid Xid::WithBranch(uint16_t branch) const {
  Xid out = *this;
  out.bqual_.clear();
  out.bqual_.push_back(static_cast<char>(kBqualLayoutVersion));
  PutBigEndian(&out.bqual_, branch, 2);
  return out;
}

Xid Xid::Global() const {
  Xid out = *this;
  out.bqual_.clear();
  return out;
}

bool Xid::IsGeneratedByXa() const noexcept { return GeneratedProtocol().has_value(); }

std::optional<Protocol> Xid::GeneratedProtocol() const noexcept {
  if (gtrid_.size() != XidGenerator::kGtridSize ||
      static_cast<uint8_t>(gtrid_[0]) != kGtridLayoutVersion) {
    return std::nullopt;
  }
  if (format_id_ == kFormatId) return Protocol::kTwoPhase;
  if (format_id_ == kThreePhaseFormatId) return Protocol::kThreePhase;
  if (format_id_ == kMarkerFormatId) return Protocol::kMarkerCommit;
  if (format_id_ == kTccFormatId) return Protocol::kTcc;
  if (format_id_ == kSagaFormatId) return Protocol::kSaga;
  return std::nullopt;
}

std::optional<uint32_t> Xid::NodeId() const noexcept {
  if (!IsGeneratedByXa()) return std::nullopt;
  return static_cast<uint32_t>(ReadBigEndian(std::string_view(gtrid_).substr(1, 4)));
}

std::optional<int64_t> Xid::BeginTimeMicros() const noexcept {
  if (!IsGeneratedByXa()) return std::nullopt;
  return static_cast<int64_t>(ReadBigEndian(std::string_view(gtrid_).substr(5, 8)));
}

bool operator<(const Xid& a, const Xid& b) noexcept {
  return std::tie(a.format_id_, a.gtrid_, a.bqual_) < std::tie(b.format_id_, b.gtrid_, b.bqual_);
}

size_t XidHash::operator()(const Xid& xid) const noexcept {
  size_t h = std::hash<std::string>()(xid.gtrid());
  h ^= std::hash<std::string>()(xid.bqual()) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h ^ static_cast<size_t>(xid.format_id());
}

XidGenerator::XidGenerator(uint32_t node_id, Clock* clock)
    : XidGenerator(node_id, RandomNonce(), clock) {}

XidGenerator::XidGenerator(uint32_t node_id, uint32_t nonce, Clock* clock)
    : node_id_(node_id), nonce_(nonce), clock_(clock != nullptr ? clock : Env::Default()->clock()) {}

Xid XidGenerator::Next(Protocol protocol) {
  uint32_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
  int64_t now = clock_->WallMicros();
  std::string gtrid;
  gtrid.reserve(kGtridSize);
  gtrid.push_back(static_cast<char>(kGtridLayoutVersion));
  PutBigEndian(&gtrid, node_id_, 4);
  PutBigEndian(&gtrid, static_cast<uint64_t>(now), 8);
  PutBigEndian(&gtrid, nonce_, 4);
  PutBigEndian(&gtrid, sequence, 4);
  const int32_t format_id = protocol == Protocol::kThreePhase    ? Xid::kThreePhaseFormatId
                            : protocol == Protocol::kMarkerCommit ? Xid::kMarkerFormatId
                            : protocol == Protocol::kTcc          ? Xid::kTccFormatId
                            : protocol == Protocol::kSaga         ? Xid::kSagaFormatId
                                                                  : Xid::kFormatId;
  return Xid::Make(format_id, gtrid, "").value();
}

}  // namespace xa
