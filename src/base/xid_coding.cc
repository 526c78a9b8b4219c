#include "src/base/xid_coding.h"

#include <string_view>
#include <utility>

namespace xa::internal {
namespace {

Status Truncated(const std::string& part, size_t needed, size_t left) {
  return Status(Code::kCorruption, part + " truncated (" + std::to_string(needed) +
                                       " bytes needed, " + std::to_string(left) + " left)");
}

}  // namespace

void PutXid(std::string* out, const Xid& xid) {
  PutFixed32(out, static_cast<uint32_t>(xid.format_id()));
  out->push_back(static_cast<char>(xid.gtrid().size()));
  out->append(xid.gtrid());
  out->push_back(static_cast<char>(xid.bqual().size()));
  out->append(xid.bqual());
}

Status GetXid(Decoder* in, const std::string& field, Xid* xid) {
  uint32_t format_id = 0;
  uint8_t gtrid_size = 0, bqual_size = 0;
  std::string_view gtrid, bqual;
  if (!in->GetFixed32(&format_id)) return Truncated(field + " format id", 4, in->remaining());
  if (!in->GetU8(&gtrid_size)) return Truncated(field + " gtrid length", 1, in->remaining());
  if (!in->GetBytes(gtrid_size, &gtrid)) {
    return Truncated(field + " gtrid", gtrid_size, in->remaining());
  }
  if (!in->GetU8(&bqual_size)) return Truncated(field + " bqual length", 1, in->remaining());
  if (!in->GetBytes(bqual_size, &bqual)) {
    return Truncated(field + " bqual", bqual_size, in->remaining());
  }
  Result<Xid> made = Xid::Make(format_id, gtrid, bqual);
  if (!made.ok()) return Status(Code::kCorruption, field + ": " + made.status().message());
  *xid = std::move(made).value();
  return Status::Ok();
}

}  // namespace xa::internal
