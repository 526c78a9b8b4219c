#include "daemons/agent/rm_branch_finisher.h"

#include <utility>

#include "src/base/escape.h"
#include "src/base/logging.h"
#include "src/completion/branch_outcome.h"
#include "src/testing/crash_points.h"

namespace xa::agent {
namespace {

// Sessions kept open per resource manager between branches.
constexpr size_t kMaxIdleSessions = 4;

}  // namespace

RmBranchFinisher::RmBranchFinisher(std::map<std::string, ResourceManagerFactory> factories)
    : factories_(std::move(factories)) {
  for (const auto& [name, factory] : factories_) pools_[name] = std::make_unique<Pool>();
}

RmBranchFinisher::~RmBranchFinisher() = default;

Result<std::unique_ptr<ResourceManager>> RmBranchFinisher::Checkout(const std::string& rm_name,
                                                                    Pool& pool) {
  {
    std::lock_guard<std::mutex> lock(pool.mu);
    if (!pool.idle.empty()) {
      std::unique_ptr<ResourceManager> session = std::move(pool.idle.back());
      pool.idle.pop_back();
      return session;
    }
  }
  Result<std::unique_ptr<ResourceManager>> session = factories_.at(rm_name)();
  if (!session.ok()) return session.status();
  if (*session == nullptr) {
    return Status(Code::kInternal, "the factory of resource manager '" +
                                       internal::EscapeForMessage(rm_name) +
                                       "' returned no session");
  }
  Status opened = (*session)->Open();
  if (!opened.ok()) return opened;
  return session;
}

void RmBranchFinisher::Return(Pool& pool, std::unique_ptr<ResourceManager> session) {
  std::lock_guard<std::mutex> lock(pool.mu);
  if (pool.idle.size() < kMaxIdleSessions) pool.idle.push_back(std::move(session));
}

Status RmBranchFinisher::Finish(const std::string& rm_name, const Xid& branch,
                                uint64_t fence_session_id, bool read_only, bool commit) {
  auto pool = pools_.find(rm_name);
  if (pool == pools_.end()) {
    return Status(Code::kConfig, "this agent has no resource manager '" +
                                     internal::EscapeForMessage(rm_name) +
                                     "' to finish a branch on: add it to the agent's "
                                     "configuration");
  }
  const std::string context = std::string(commit ? "commit" : "rollback") + " of a branch on '" +
                              internal::EscapeForMessage(rm_name) + "'";
  Result<std::unique_ptr<ResourceManager>> session = Checkout(rm_name, *pool->second);
  if (!session.ok()) return session.status().WithContext(context + ", opening a session");

  if (fence_session_id != 0) {
    Status fenced = (*session)->FenceSession(fence_session_id);
    XA_LOG_XID(kInfo, "agent", branch) << "fenced session " << fence_session_id << " on '"
                                       << rm_name << "': " << CodeName(fenced.code());
    if (!fenced.ok()) {
      if (fenced.code() != Code::kRmFail) Return(*pool->second, std::move(*session));
      return fenced.WithContext(context + ", fencing the application's session " +
                                std::to_string(fence_session_id));
    }
  }
  XA_CRASH_POINT(kAgentAfterFence);
  if (read_only) {
    Return(*pool->second, std::move(*session));
    return Status::Ok();
  }

  const internal::FinishCall call = commit ? internal::FinishCall::kCommit
                                           : internal::FinishCall::kRollback;
  Status s = commit ? (*session)->Commit(branch, CommitMode::kTwoPhase)
                    : (*session)->Rollback(branch);
  internal::BranchHistory history;
  history.maybe_applied = true;  // the coordinator or an earlier attempt may have finished it
  history.maybe_prepared = true;
  internal::BranchReading reading = internal::ReadFinishResult(call, s, history);
  XA_LOG_XID(kDebug, "agent", branch) << internal::FinishCallName(call) << " on '" << rm_name
                                      << "': " << CodeName(s.code()) << " -> "
                                      << internal::BranchEndName(reading.end);
  if (reading.end == internal::BranchEnd::kPending) {
    if (s.code() != Code::kRmFail) Return(*pool->second, std::move(*session));
    return s.WithContext(context);
  }
  if (internal::IsHeuristic(reading.end)) {
    heuristics_.fetch_add(1, std::memory_order_relaxed);
    XA_LOG_XID(kError, "agent", branch)
        << context << " ended " << internal::BranchEndName(reading.end)
        << ": the database finished the branch another way (" << s.ToString() << ")";
  }
  if (reading.forget) {
    Status forgotten = (*session)->Forget(branch);
    XA_LOG_XID(kDebug, "agent", branch) << "forget on '" << rm_name << "': "
                                        << CodeName(forgotten.code());
  }
  Return(*pool->second, std::move(*session));
  return Status::Ok();
}

Result<std::vector<Xid>> RmBranchFinisher::ListPrepared(const std::string& rm_name) {
  auto pool = pools_.find(rm_name);
  if (pool == pools_.end()) {
    return Status(Code::kConfig, "this agent has no resource manager '" +
                                     internal::EscapeForMessage(rm_name) +
                                     "' to scan: add it to the agent's configuration");
  }
  const std::string context = "the recover scan of '" + internal::EscapeForMessage(rm_name) + "'";
  Result<std::unique_ptr<ResourceManager>> session = Checkout(rm_name, *pool->second);
  if (!session.ok()) return session.status().WithContext(context + ", opening a session");
  Result<RecoverScan> scan = (*session)->Recover();
  if (!scan.ok()) {
    if (scan.status().code() != Code::kRmFail) Return(*pool->second, std::move(*session));
    return scan.status().WithContext(context);
  }
  Return(*pool->second, std::move(*session));
  return std::move(scan->prepared);
}

}  // namespace xa::agent
