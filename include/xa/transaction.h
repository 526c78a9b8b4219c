// xa::Transaction: a handle on one global transaction, made by TransactionManager::Begin().
//
//   xa::Result<xa::Transaction> txn = manager->Begin();
//   XA_RETURN_IF_ERROR(txn->Enlist(accounts_mariadb));   // XA START on that session
//   XA_RETURN_IF_ERROR(txn->Enlist(accounts_postgres));
//   ... run the work on each driver's connection ...
//   xa::Result<xa::Outcome> outcome = txn->Commit();      // 2PC (1PC for a single branch)
//   if (outcome.ok() && *outcome != xa::Outcome::kCommitted)
//     report(xa::OutcomeName(*outcome), txn->last_status().ToString());
//
// Commit() answers with an Outcome value: committed, rolled back (a branch voted rollback, a
// prepare failed, the decision could not be logged, the transaction timed out), committed with
// completion pending (the decision is durable; the manager finishes an unreachable branch in the
// background), a heuristic outcome, or unknown. A non-OK Status from Commit() means misuse (no
// transaction, already finished). last_status() says why the outcome is not a plain commit.
//
// A handle destroyed, or assigned over, while its transaction is still active rolls it back.
//
// Lifetime: the TransactionManager must outlive its Transactions, and every enlisted
// ResourceManager must outlive the transaction's Commit()/Rollback()/destruction. Once Commit()
// or Rollback() has returned, the manager no longer uses the enlisted sessions (phase-2 work
// still pending goes through fresh sessions from the manager's factories).
//
// Thread safety: a Transaction is used by one thread at a time (like the sessions it enlists).
// Different transactions may be used concurrently.

#ifndef XA_TRANSACTION_H_
#define XA_TRANSACTION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa {

class ResourceManager;
namespace internal {
class ManagerCore;
struct TxnContext;
}  // namespace internal

// Where a Transaction handle stands (Transaction::state()).
enum class TransactionState : uint8_t {
  kNone = 0,        // an empty (default-constructed or moved-from) handle
  kActive = 1,      // begun; branches may be enlisted
  kCommitted = 2,   // Commit() returned a committed outcome (including completion pending)
  kRolledBack = 3,  // rolled back, by Rollback(), by Commit() or because of the timeout
  kHeuristic = 4,   // Commit() or Rollback() returned a heuristic or unknown outcome
};
// "none", "active", "committed", "rolled back", "heuristically completed".
std::string_view TransactionStateName(TransactionState s) noexcept;

// Per-transaction settings for TransactionManager::Begin().
struct TransactionOptions {
  // The commit protocol: kTwoPhase (a transaction with a single branch commits in one phase by
  // itself), kOnePhase (one branch only: Enlist() refuses a second) or kThreePhase (needs the
  // participant agents of TransactionManagerOptions::three_phase).
  Protocol protocol = Protocol::kTwoPhase;
  // 0: the manager's TransactionManagerOptions::transaction_timeout.
  std::chrono::milliseconds timeout{0};
};

// A handle on one global transaction (see the file comment): move-only; rolls back an active
// transaction when destroyed.
class Transaction {
 public:
  Transaction() noexcept;  // an empty handle (state kNone)
  ~Transaction();          // rolls back an active transaction
  // Takes over `other`'s transaction; `other` becomes an empty handle.
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&& other) noexcept;  // rolls back an active *this first
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Adds a branch on `rm`: XA START of Xid global.WithBranch(i) on that session. `rm` must be
  // open, and its name() registered in the manager's resource-manager factories (so a branch
  // can always be completed after a crash). One branch per session object.
  // Errors: XAER_PROTO (not active, session already enlisted, too many branches), XA_CONFIG
  // (unregistered RM name), XA_RBTIMEOUT (the transaction timed out: it has been rolled back),
  // or the RM's own error from Start (the transaction stays active; the session is not
  // enlisted).
  [[nodiscard]] Status Enlist(ResourceManager& rm);

  // Ends every branch and commits the transaction (see the protocol comment in
  // src/tm/two_phase_coordinator.h). Returns the outcome; the transaction is finished whatever
  // it is.
  [[nodiscard]] Result<Outcome> Commit();

  // Marks the transaction rollback-only: Commit() then rolls it back and returns kRolledBack with
  // `reason` in last_status() (XA_RBROLLBACK when `reason` is OK). For work that failed in a
  // way the resource manager did not turn into a rollback: a constraint violation, for one, rolls
  // back only the failed statement on MariaDB and, through psqlODBC's statement-level rollback,
  // on PostgreSQL, so committing anyway would commit the rest of the work. XAER_PROTO when the
  // transaction is not active.
  [[nodiscard]] Status SetRollbackOnly(Status reason);
  // True once SetRollbackOnly() has been called on this transaction.
  bool rollback_only() const noexcept;

  // Rolls every branch back. OK once every branch is rolled back or handed to the background
  // (a prepared branch whose RM is unreachable); a heuristic result of a branch is reported as
  // an error with that XA_HEUR* code (and persisted).
  [[nodiscard]] Status Rollback();

  // False for an empty handle (default-constructed or moved from), true otherwise, also once
  // the transaction is finished.
  bool valid() const noexcept { return context_ != nullptr; }
  // kNone for an empty handle.
  TransactionState state() const noexcept;
  // The commit protocol given to Begin() (kTwoPhase for an empty handle).
  Protocol protocol() const noexcept;
  // The global Xid (empty bqual); branch i is xid().WithBranch(i).
  const Xid& xid() const noexcept;
  // How many branches Enlist() has added (0 for an empty handle).
  size_t branch_count() const noexcept;
  // Why the last Commit()/Rollback() did not end in a plain commit/rollback: the first branch
  // failure, the log failure, the timeout... OK otherwise.
  const Status& last_status() const noexcept;

 private:
  friend class internal::ManagerCore;
  Transaction(internal::ManagerCore* core, std::unique_ptr<internal::TxnContext> context) noexcept;
  void RollbackIfActive() noexcept;

  internal::ManagerCore* core_ = nullptr;
  std::unique_ptr<internal::TxnContext> context_;
};

}  // namespace xa

#endif  // XA_TRANSACTION_H_
