#include "xa/resource_manager.h"

namespace xa {

Status ResourceManager::PreCommit(const Xid& xid) {
  return Status(Code::kNotSupported,
                "resource manager '" + name() + "' has no pre-commit state (xid " +
                    xid.ToString() + "): 3PC needs a participant agent in front of it");
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
