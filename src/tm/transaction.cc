#include "xa/transaction.h"

#include "src/tm/manager_core.h"
#include "src/tm/txn_context.h"

namespace xa {
namespace {
const Xid& EmptyXid() {
  static const Xid* const kEmpty = new Xid();
  return *kEmpty;
}
const Status& NoTransaction() {
  static const Status* const kStatus =
      new Status(Code::kProto, "empty Transaction handle: no transaction");
  return *kStatus;
}
}  // namespace

std::string_view TransactionStateName(TransactionState s) noexcept {
  switch (s) {
    case TransactionState::kNone: return "none";
    case TransactionState::kActive: return "active";
    case TransactionState::kCommitted: return "committed";
    case TransactionState::kRolledBack: return "rolled back";
    case TransactionState::kHeuristic: return "heuristically completed";
  }
  return "unknown";
}

Transaction::Transaction() noexcept = default;

Transaction::Transaction(internal::ManagerCore* core,
                         std::unique_ptr<internal::TxnContext> context) noexcept
    : core_(core), context_(std::move(context)) {}

Transaction::~Transaction() { RollbackIfActive(); }

Transaction::Transaction(Transaction&& other) noexcept
    : core_(other.core_), context_(std::move(other.context_)) {
  other.core_ = nullptr;
}

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    RollbackIfActive();
    core_ = other.core_;
    context_ = std::move(other.context_);
    other.core_ = nullptr;
  }
  return *this;
}

void Transaction::RollbackIfActive() noexcept {
  if (context_ != nullptr && core_ != nullptr) core_->RollbackOnDestroy(*context_);
}

Status Transaction::Enlist(ResourceManager& rm) {
  if (!valid()) return NoTransaction();
  return core_->Enlist(*context_, rm);
}

Result<Outcome> Transaction::Commit() {
  if (!valid()) return NoTransaction();
  return core_->Commit(*context_);
}

Status Transaction::SetRollbackOnly(Status reason) {
  if (!valid()) return NoTransaction();
  if (context_->state != TransactionState::kActive) {
    return Status(Code::kProto, "cannot mark transaction " + context_->xid.ToString() +
                                    " rollback-only: it is " +
                                    std::string(TransactionStateName(context_->state)));
  }
  if (reason.ok()) {
    reason = Status(Code::kRbRollback, "the application marked the transaction rollback-only");
  }
  if (context_->rollback_only.ok()) context_->rollback_only = std::move(reason);
  return Status::Ok();
}

bool Transaction::rollback_only() const noexcept {
  return valid() && !context_->rollback_only.ok();
}

Status Transaction::Rollback() {
  if (!valid()) return NoTransaction();
  return core_->Rollback(*context_);
}

TransactionState Transaction::state() const noexcept {
  return valid() ? context_->state : TransactionState::kNone;
}

Protocol Transaction::protocol() const noexcept {
  return valid() ? context_->protocol : Protocol::kTwoPhase;
}

const Xid& Transaction::xid() const noexcept { return valid() ? context_->xid : EmptyXid(); }

size_t Transaction::branch_count() const noexcept {
  return valid() ? context_->branches.size() : 0;
}

const Status& Transaction::last_status() const noexcept {
  return valid() ? context_->last_status : NoTransaction();
}

}  // namespace xa
