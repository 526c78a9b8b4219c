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

namespace {
Status MarkerNotSupported(const std::string& rm_name) {
  return Status(Code::kNotSupported,
                "resource manager '" + rm_name +
                    "' has no commit marker: it cannot be the marker resource manager of "
                    "marker-commit transactions; name one whose driver supports it (mysql, odbc)");
}
}  // namespace

Status ResourceManager::WriteCommitMarker(std::string_view, const Xid&) {
  return MarkerNotSupported(name());
}
Result<MarkerOutcome> ResourceManager::SettleCommitMarker(std::string_view, const Xid&,
                                                          std::chrono::milliseconds) {
  return MarkerNotSupported(name());
}
Result<std::vector<MarkerRow>> ResourceManager::ReadCommitMarkers(std::string_view,
                                                                  const std::vector<Xid>&) {
  return MarkerNotSupported(name());
}
Result<std::vector<MarkerRow>> ResourceManager::ListCommitMarkers(std::string_view, uint32_t,
                                                                  size_t) {
  return MarkerNotSupported(name());
}
Status ResourceManager::DeleteCommitMarkers(std::string_view, const std::vector<Xid>&) {
  return MarkerNotSupported(name());
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
