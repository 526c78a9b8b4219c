// Sagas of compensable operations: services that offer an action and a compensation, but no
// reservation (no Try).
//
//   xa::Result<xa::SagaTransaction> saga = manager->BeginSaga();
//   XA_RETURN_IF_ERROR(saga->Enlist("create-order", order_json));
//   XA_RETURN_IF_ERROR(saga->Enlist("debit-funds", debit_json));
//   XA_RETURN_IF_ERROR(saga->Enlist("ship", shipment_json));
//   xa::Result<xa::Outcome> outcome = saga->Commit();
//
// Commit() appends the steps and their payloads to the decision log (the same kTccTry record as
// TCC, with protocol kSaga), durably, before the first action; then runs the actions one after
// the other, in the order enlisted. When every action answered done it logs that the saga
// completed (kTccConfirm, protocol kSaga) and returns kCommitted. When one fails for good (it
// answers refused, or still fails after the manager's inline_retry, or the timeout passes), the
// compensations run in reverse order, starting with the failing step's own (its action may have
// done part of its work before failing, and the participant's barrier turns the compensation of
// an action that never landed into an empty compensation), and Commit() returns kRolledBack. A
// compensation that fails is retried until it succeeds (the manager's inline_retry, then its
// background retrier, forever); the compensations of earlier steps wait for it, so the reverse
// order holds. A compensation refused for good is a heuristic outcome, recorded for an operator;
// the earlier steps are still compensated.
//
// After a crash, recovery compensates every step of a saga that did not complete, in reverse
// order, whether its action ran or not: the barrier (xa/tcc_barrier.h, kAction and kCompensate)
// turns a compensation that overtakes its action into an empty compensation and refuses the
// late action. A completed saga is only ended.
//
// Operations answer with the TCC types (xa/tcc.h): TccResult (done, refused, failed) for a
// TccCall (the saga's global Xid, the step's branch Xid, its name and payload).
//
// Thread safety: as for TCC (a SagaTransaction is used by one thread at a time; operations are
// called from many threads and must be thread-safe).

#ifndef XA_SAGA_H_
#define XA_SAGA_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/tcc.h"
#include "xa/transaction.h"
#include "xa/xid.h"

namespace xa {

// One compensable step's service. Action and Compensate must be idempotent, a Compensate may come
// without or before its Action (answer kDone, undo nothing), and an Action after its Compensate
// must be refused: xa/tcc_barrier.h's kAction and kCompensate do all three. Thread-safe.
class CompensableOperation {
 public:
  virtual ~CompensableOperation() = default;
  // Does the step; kRefused when it never will (the saga compensates), kFailed when it may work
  // if tried again (it is, per inline_retry, before the saga gives up on it).
  virtual TccResult Action(const TccCall& call) = 0;
  // Undoes the step's action; kDone for a repeat and for an action that never ran here.
  virtual TccResult Compensate(const TccCall& call) = 0;
};

// The compensable operations of a manager (TransactionManagerOptions::saga), by the name sagas
// enlist them under; the names must differ from the TCC participants'. Recovery calls the same
// objects to compensate the sagas the log holds open.
struct SagaOptions {
  // Registered name -> operation (never null).
  std::map<std::string, std::shared_ptr<CompensableOperation>> operations;
};

// A handle on one saga, made by TransactionManager::BeginSaga(): move-only. Nothing runs before
// Commit(), so destroying an uncommitted handle calls no operation.
class SagaTransaction {
 public:
  SagaTransaction() noexcept;  // an empty handle
  ~SagaTransaction();          // abandons an active saga (calls nobody)
  // Takes over `other`'s saga; `other` becomes an empty handle.
  SagaTransaction(SagaTransaction&& other) noexcept;
  // Abandons an active *this first (calls nobody), then takes over `other`'s saga.
  SagaTransaction& operator=(SagaTransaction&& other) noexcept;
  SagaTransaction(const SagaTransaction&) = delete;
  SagaTransaction& operator=(const SagaTransaction&) = delete;

  // Appends step `operation` (a name registered in TransactionManagerOptions::saga) with
  // `payload`; steps run in the order enlisted. Errors as TccTransaction::Enlist.
  [[nodiscard]] Status Enlist(std::string_view operation, std::string payload);
  // Runs the saga (see the file comment) and returns its outcome: kCommitted (every action
  // done), kRolledBack (compensated, or compensating in the background; last_status() says which
  // action failed), a heuristic outcome (a compensation refused for good), or kUnknown (the log
  // failed at the end: the restart's recovery decides). A non-OK Status means misuse.
  [[nodiscard]] Result<Outcome> Commit();
  // Ends the saga without running it: nothing was called, so nothing is. XAER_PROTO when it is
  // not active.
  [[nodiscard]] Status Abandon();

  // False for an empty (default-constructed or moved-from) handle.
  bool valid() const noexcept { return context_ != nullptr; }
  // kActive until Commit() or Abandon(); then kCommitted, kRolledBack or kHeuristic.
  TransactionState state() const noexcept;
  // The global Xid (format Xid::kSagaFormatId); step i's branch is WithBranch(i).
  const Xid& xid() const noexcept;
  // How many steps Enlist() added.
  size_t step_count() const noexcept;
  // Why the outcome is not a plain completion: the failing action, the timeout, a log failure,
  // a refused compensation. OK otherwise.
  const Status& last_status() const noexcept;

 private:
  friend class internal::ManagerCore;
  SagaTransaction(internal::ManagerCore* core,
                  std::unique_ptr<internal::TccContext> context) noexcept;

  internal::ManagerCore* core_ = nullptr;
  std::unique_ptr<internal::TccContext> context_;
};

}  // namespace xa

#endif  // XA_SAGA_H_
