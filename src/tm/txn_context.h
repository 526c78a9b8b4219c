// The state of one global transaction as the coordinators see it (internal).

#ifndef XA_SRC_TM_TXN_CONTEXT_H_
#define XA_SRC_TM_TXN_CONTEXT_H_

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "src/completion/branch_outcome.h"
#include "src/completion/branch_state.h"
#include "xa/protocol.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/transaction.h"
#include "xa/xid.h"

namespace xa::internal {

struct RmLatency;

// One branch: the application's session with one RM, what phase 1 did on it, and its state
// through phase 2 (BranchState, the type every finisher shares: rm_name, xid, history, end,
// forget, last). history.maybe_prepared starts false and is set once Prepare() is sent.
struct BranchContext : BranchState {
  BranchContext() { history.maybe_prepared = false; }

  ResourceManager* rm = nullptr;  // the application's session; never used after Commit returns
  RmLatency* latency = nullptr;  // the manager's running phase latencies of this RM

  bool end_sent = false;        // End(TMSUCCESS) was called (whatever it answered)
  bool ended = false;           // End() succeeded
  std::optional<Vote> vote;     // set when Prepare() returned a vote
  Status failure;               // the first non-OK result of End()/Prepare() that is no vote
  bool agent_asked = false;     // 3PC: CanCommit was sent to the branch's agent (it may be WAIT)
};

struct TxnContext {
  Xid xid;  // global (empty bqual)
  Protocol protocol = Protocol::kTwoPhase;
  TransactionState state = TransactionState::kActive;
  std::chrono::steady_clock::time_point begun_at;
  std::chrono::steady_clock::time_point deadline;  // time_point::max(): no timeout
  std::vector<BranchContext> branches;
  Status last_status;
  Status rollback_only;     // non-OK: Transaction::SetRollbackOnly() was called, with this reason
  bool handed_off = false;  // phase 2 continues in the background thread, which owns the Xid now
  bool pre_commit_logged = false;  // 3PC: a kPreCommit record was appended (it needs an end)
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_TXN_CONTEXT_H_
