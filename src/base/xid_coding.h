// The one binary layout of an Xid, shared by the decision log's records
// (recovery-log/log_format.md) and the 3PC agents' messages (src/three_phase/agent_messages.md):
//
//   fixed32 format id, u8 g, g bytes gtrid, u8 b, b bytes bqual     (little-endian)
//
// with the bounds of xa::Xid::Make (format id < 2^31, 1 <= g <= 64, b <= 64).

#ifndef XA_SRC_BASE_XID_CODING_H_
#define XA_SRC_BASE_XID_CODING_H_

#include <string>

#include "src/base/coding.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

void PutXid(std::string* out, const Xid& xid);

// Reads one Xid from `in`. On failure (Code::kCorruption) the message names the part: "<field>
// format id truncated (4 bytes needed, 2 left)", "<field> gtrid truncated (...)", or Xid::Make's
// refusal as "<field>: xid gtrid is 0 bytes: ...". `field` is how the caller names the Xid.
Status GetXid(Decoder* in, const std::string& field, Xid* xid);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_XID_CODING_H_
