#include "xa/resource_manager.h"

namespace xa {

Result<uint64_t> ResourceManager::SessionId() {
  return Status(Code::kNotSupported, "resource manager '" + name() +
                                         "' cannot tell its session's id: it cannot take part "
                                         "in a 3PC fence");
}

Status ResourceManager::FenceSession(uint64_t session_id) {
  return Status(Code::kNotSupported, "resource manager '" + name() + "' cannot end session " +
                                         std::to_string(session_id) +
                                         " of its server: it cannot act as a 3PC fence");
}

std::vector<Xid> RecoverScan::OwnedBy(uint32_t node_id) const {
  std::vector<Xid> out;
  for (const Xid& xid : prepared) {
    if (xid.IsOwnedBy(node_id)) out.push_back(xid);
  }
  return out;
}

std::vector<Xid> RecoverScan::NotOwnedBy(uint32_t node_id) const {
  std::vector<Xid> out;
  for (const Xid& xid : prepared) {
    if (!xid.IsOwnedBy(node_id)) out.push_back(xid);
  }
  return out;
}

}  // namespace xa
