// Coordinator: the commit protocol of one kind of transaction (internal).
//
// The manager holds one coordinator per Protocol and routes each transaction to the one it was
// begun with. Transaction and TransactionManager know nothing of the protocol's steps, so a
// three-phase coordinator (talking to participant agents, which are not ResourceManagers) slots
// in beside TwoPhaseCoordinator without touching the public API.
//
// Thread safety: a coordinator is shared by all transactions of its protocol; Commit() and
// Rollback() may run concurrently for different TxnContexts.

#ifndef XA_SRC_TM_COORDINATOR_H_
#define XA_SRC_TM_COORDINATOR_H_

#include "src/tm/txn_context.h"
#include "xa/protocol.h"
#include "xa/status.h"

namespace xa::internal {

class Coordinator {
 public:
  virtual ~Coordinator() = default;
  virtual Protocol protocol() const noexcept = 0;

  // Runs the protocol over the enlisted (started, not yet ended) branches of `txn`. Returns the
  // outcome and leaves the reason for anything but a plain commit in txn.last_status. When it
  // returns, no thread uses the application's sessions any more.
  virtual Outcome Commit(TxnContext& txn) = 0;

  // Rolls back every branch of `txn` that is not finished; `reason` becomes txn.last_status.
  virtual Outcome Rollback(TxnContext& txn, const Status& reason) = 0;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_COORDINATOR_H_
