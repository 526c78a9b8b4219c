#include "xa/xid.h"

#include <charconv>
#include <chrono>
#include <random>
#include <tuple>

#include "src/base/escape.h"

namespace xa {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::string_view kGidPrefix = "xa1.";
constexpr uint8_t kGtridLayoutVersion = 1;
constexpr uint8_t kBqualLayoutVersion = 1;

std::string Hex(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHexDigits[c >> 4]);
    out.push_back(kHexDigits[c & 0xf]);
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  out->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
  }
  return true;
}

std::string Base64Url(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
    out.push_back(kBase64Url[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = byte(i) << 16;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

int Base64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: no padding, no whitespace, and the unused low bits of the last character must be zero,
// so that every byte string has exactly one encoding.
bool UnBase64Url(std::string_view text, std::string* out) {
  if (text.size() % 4 == 1) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = Base64UrlValue(c);
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

bool ParseDecimal(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 12) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return ec == std::errc() && ptr == text.data() + text.size();
}

using internal::EscapeForMessage;

Status Invalid(std::string message) { return Status(Code::kInval, std::move(message)); }

// Parses one X'<hex>' literal at the front of `text` and advances past it.
bool TakeHexLiteral(std::string_view* text, std::string* bytes) {
  if (text->size() < 3 || ((*text)[0] != 'X' && (*text)[0] != 'x') || (*text)[1] != '\'') {
    return false;
  }
  size_t close = text->find('\'', 2);
  if (close == std::string_view::npos) return false;
  if (!Unhex(text->substr(2, close - 2), bytes)) return false;
  text->remove_prefix(close + 1);
  return true;
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
  return std::to_string(format_id_) + ":" + Hex(gtrid_) + ":" + Hex(bqual_);
}

Result<Xid> Xid::Parse(std::string_view text) {
  size_t first = text.find(':');
  size_t second = first == std::string_view::npos ? first : text.find(':', first + 1);
  if (second == std::string_view::npos || text.find(':', second + 1) != std::string_view::npos) {
    return Invalid("'" + EscapeForMessage(text) +
                   "' is not an xid: expected <format id>:<gtrid hex>:<bqual hex>");
  }
  int64_t format_id = 0;
  if (!ParseDecimal(text.substr(0, first), &format_id)) {
    return Invalid("'" + EscapeForMessage(text) + "' is not an xid: the format ID is not a decimal number");
  }
  std::string gtrid, bqual;
  if (!Unhex(text.substr(first + 1, second - first - 1), &gtrid) ||
      !Unhex(text.substr(second + 1), &bqual)) {
    return Invalid("'" + EscapeForMessage(text) + "' is not an xid: gtrid and bqual must be even-length hex");
  }
  return Make(format_id, gtrid, bqual);
}

std::string Xid::ToMySqlLiteral() const {
  return "X'" + Hex(gtrid_) + "',X'" + Hex(bqual_) + "'," + std::to_string(format_id_);
}

Result<Xid> Xid::FromMySqlRecoverRow(int64_t format_id, int64_t gtrid_length,
                                     int64_t bqual_length, std::string_view data) {
  auto bad = [&](std::string_view why) {
    return Invalid("XA RECOVER row (formatID=" + std::to_string(format_id) +
                   ", gtrid_length=" + std::to_string(gtrid_length) +
                   ", bqual_length=" + std::to_string(bqual_length) + ", data='" +
                   EscapeForMessage(data) + "') is not a valid xid: " + std::string(why));
  };
  if (gtrid_length < 1 || gtrid_length > 64 || bqual_length < 0 || bqual_length > 64) {
    return bad("lengths out of range");
  }
  std::string_view rest = data;
  std::string gtrid, bqual;
  if (!TakeHexLiteral(&rest, &gtrid)) return bad("data does not start with X'<hex>'");
  int64_t rendered_format = 1;  // the server omits a format ID of 1
  if (!rest.empty()) {
    if (rest[0] != ',') return bad("unexpected text after the gtrid");
    rest.remove_prefix(1);
    if (!TakeHexLiteral(&rest, &bqual)) return bad("second part is not X'<hex>'");
    if (!rest.empty()) {
      if (rest[0] != ',') return bad("unexpected text after the bqual");
      rest.remove_prefix(1);
      if (!ParseDecimal(rest, &rendered_format)) return bad("format ID is not a decimal number");
    }
  }
  if (static_cast<int64_t>(gtrid.size()) != gtrid_length ||
      static_cast<int64_t>(bqual.size()) != bqual_length) {
    return bad("data does not match the length columns");
  }
  if (rendered_format != format_id) return bad("data does not match the formatID column");
  return Make(format_id, gtrid, bqual);
}

std::string Xid::ToPostgresGid() const {
  char format[9];
  uint32_t f = static_cast<uint32_t>(format_id_);
  for (int i = 7; i >= 0; --i) {
    format[i] = kHexDigits[f & 0xf];
    f >>= 4;
  }
  format[8] = '\0';
  return std::string(kGidPrefix) + format + "." + Base64Url(gtrid_) + "." + Base64Url(bqual_);
}

Result<Xid> Xid::FromPostgresGid(std::string_view gid) {
  auto bad = [&](std::string_view why) {
    return Invalid("prepared transaction gid '" + EscapeForMessage(gid) + "' is not an xa gid: " +
                   std::string(why));
  };
  if (gid.size() > kMaxPostgresGidSize) return bad("too long");
  if (gid.substr(0, kGidPrefix.size()) != kGidPrefix) return bad("no 'xa1.' prefix");
  std::string_view rest = gid.substr(kGidPrefix.size());
  size_t dot1 = rest.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : rest.find('.', dot1 + 1);
  if (dot1 != 8 || dot2 == std::string_view::npos ||
      rest.find('.', dot2 + 1) != std::string_view::npos) {
    return bad("expected xa1.<8 hex>.<base64url>.<base64url>");
  }
  int64_t format_id = 0;
  for (char c : rest.substr(0, 8)) {
    int v = HexValue(c);
    if (v < 0 || (c >= 'A' && c <= 'F')) return bad("format ID is not 8 lower-case hex digits");
    format_id = (format_id << 4) | v;
  }
  std::string gtrid, bqual;
  if (!UnBase64Url(rest.substr(dot1 + 1, dot2 - dot1 - 1), &gtrid) ||
      !UnBase64Url(rest.substr(dot2 + 1), &bqual)) {
    return bad("gtrid or bqual is not canonical base64url");
  }
  auto xid = Make(format_id, gtrid, bqual);
  if (!xid.ok()) return bad(xid.status().message());
  return xid;
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

bool Xid::IsGeneratedByXa() const noexcept {
  return format_id_ == kFormatId && gtrid_.size() == XidGenerator::kGtridSize &&
         static_cast<uint8_t>(gtrid_[0]) == kGtridLayoutVersion;
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

XidGenerator::XidGenerator(uint32_t node_id) : XidGenerator(node_id, RandomNonce()) {}

XidGenerator::XidGenerator(uint32_t node_id, uint32_t nonce) : node_id_(node_id), nonce_(nonce) {}

Xid XidGenerator::Next() {
  uint32_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed) + 1;
  auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::string gtrid;
  gtrid.reserve(kGtridSize);
  gtrid.push_back(static_cast<char>(kGtridLayoutVersion));
  PutBigEndian(&gtrid, node_id_, 4);
  PutBigEndian(&gtrid, static_cast<uint64_t>(now), 8);
  PutBigEndian(&gtrid, nonce_, 4);
  PutBigEndian(&gtrid, sequence, 4);
  return Xid::Make(Xid::kFormatId, gtrid, "").value();
}

}  // namespace xa
