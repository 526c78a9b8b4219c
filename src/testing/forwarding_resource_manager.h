// ForwardingResourceManager: a ResourceManager that passes every call on to another one (a real
// session), for the wrappers of tests and benches that change one call of a session they do not
// own: a fault injected before a commit, a hook at a chosen moment, a prepare made slow. A
// wrapper derives from it and overrides only what it changes; the wrapped session must outlive
// it. Header-only: the tests and the benches include it, the library never does.

#ifndef XA_SRC_TESTING_FORWARDING_RESOURCE_MANAGER_H_
#define XA_SRC_TESTING_FORWARDING_RESOURCE_MANAGER_H_

#include <cstdint>
#include <string>

#include "xa/resource_manager.h"

namespace xa::internal {

class ForwardingResourceManager : public ResourceManager {
 public:
  explicit ForwardingResourceManager(ResourceManager& inner) : inner_(inner) {}

  const std::string& name() const noexcept override { return inner_.name(); }
  Status Open() override { return inner_.Open(); }
  Status Close() override { return inner_.Close(); }
  const ServerInfo& server_info() const noexcept override { return inner_.server_info(); }
  Status Start(const Xid& xid, StartFlag flag) override { return inner_.Start(xid, flag); }
  Status End(const Xid& xid, EndFlag flag) override { return inner_.End(xid, flag); }
  Status Prepare(const Xid& xid) override { return inner_.Prepare(xid); }
  Status Commit(const Xid& xid, CommitMode mode) override { return inner_.Commit(xid, mode); }
  Status Rollback(const Xid& xid) override { return inner_.Rollback(xid); }
  Result<RecoverScan> Recover() override { return inner_.Recover(); }
  Status Forget(const Xid& xid) override { return inner_.Forget(xid); }
  Result<uint64_t> SessionId() override { return inner_.SessionId(); }
  Status FenceSession(uint64_t session_id) override { return inner_.FenceSession(session_id); }

 protected:
  ResourceManager& inner() { return inner_; }

 private:
  ResourceManager& inner_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TESTING_FORWARDING_RESOURCE_MANAGER_H_
