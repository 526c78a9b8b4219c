// RmBranchFinisher: the agent's BranchFinisher over real resource managers. For each resource
// manager the agent stands for it opens sessions of its own from a factory (the same factories an
// application registers with its TransactionManager: xa::mysql, xa::odbc), fences the
// application's session, and finishes the branch by the phase-2 rules.
//
//   RmBranchFinisher finisher({{"accounts", [] { return OpenMyMariaDb(); }}});
//   Status s = finisher.Finish("accounts", branch, fence_session_id, read_only, commit);
//
// The rules (daemons/agent/branch_finisher.h says what OK and an error mean):
//   - Fence first (ResourceManager::FenceSession) whenever the coordinator gave a session id,
//     read-only branches too: after the agents decided, the coordinator's session must not act.
//   - Then Commit(kTwoPhase) or Rollback() read by src/completion/branch_outcome.h with
//     maybe_applied set: the decision did not start here, so the coordinator (normal path) or an
//     earlier attempt may already have finished the branch, and "unknown Xid" after the fence
//     means exactly that.
//   - A heuristic end (the database finished the branch another way) is finished too: there is
//     nothing left to call. It is logged at error level with the branch's Xid and counted
//     (heuristics()), and Forget() is sent where the table says so.
//   - A session that failed with XAER_RMFAIL is closed and the next attempt opens a new one.
// ListPrepared (the orphan scan's PreparedBranchLister) runs the recover scan on a pooled session
// of the resource manager; entries that are no Xid are left out (they are not the agent's).
//
// Thread safety: Finish may run on several threads at once; each call uses a session of its own
// (idle sessions are pooled per resource manager).

#ifndef XA_DAEMONS_AGENT_RM_BRANCH_FINISHER_H_
#define XA_DAEMONS_AGENT_RM_BRANCH_FINISHER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemons/agent/branch_finisher.h"
#include "xa/resource_manager.h"
#include "xa/transaction_manager.h"

namespace xa::agent {

class RmBranchFinisher : public BranchFinisher, public PreparedBranchLister {
 public:
  explicit RmBranchFinisher(std::map<std::string, ResourceManagerFactory> factories);
  ~RmBranchFinisher() override;

  Status Finish(const std::string& rm_name, const Xid& branch, uint64_t fence_session_id,
                bool read_only, bool commit) override;
  Result<std::vector<Xid>> ListPrepared(const std::string& rm_name) override;

  // Branches the databases had already finished another way (heuristic ends).
  uint64_t heuristics() const { return heuristics_.load(std::memory_order_relaxed); }

 private:
  struct Pool {
    std::mutex mu;
    std::vector<std::unique_ptr<ResourceManager>> idle;
  };
  Result<std::unique_ptr<ResourceManager>> Checkout(const std::string& rm_name, Pool& pool);
  void Return(Pool& pool, std::unique_ptr<ResourceManager> session);

  const std::map<std::string, ResourceManagerFactory> factories_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;  // one per factory, fixed at construction
  std::atomic<uint64_t> heuristics_{0};
};

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_RM_BRANCH_FINISHER_H_
