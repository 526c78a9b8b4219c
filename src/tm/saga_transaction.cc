#include "xa/saga.h"

#include "src/tm/manager_core.h"
#include "src/tm/tcc_coordinator.h"

namespace xa {
namespace {
const Xid& EmptyXid() {
  static const Xid* const kEmpty = new Xid();
  return *kEmpty;
}
const Status& NoSaga() {
  static const Status* const kStatus =
      new Status(Code::kProto, "empty SagaTransaction handle: no saga");
  return *kStatus;
}
}  // namespace

// The saga's handle shares the TCC transaction's context and the manager's TCC entry points,
// which tell the two apart by the context's protocol.
SagaTransaction::SagaTransaction() noexcept = default;

SagaTransaction::SagaTransaction(internal::ManagerCore* core,
                                 std::unique_ptr<internal::TccContext> context) noexcept
    : core_(core), context_(std::move(context)) {}

SagaTransaction::~SagaTransaction() {
  if (context_ != nullptr && core_ != nullptr) core_->TccAbandon(*context_).IgnoreError();
}

SagaTransaction::SagaTransaction(SagaTransaction&& other) noexcept
    : core_(other.core_), context_(std::move(other.context_)) {
  other.core_ = nullptr;
}

SagaTransaction& SagaTransaction::operator=(SagaTransaction&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr && core_ != nullptr) core_->TccAbandon(*context_).IgnoreError();
    core_ = other.core_;
    context_ = std::move(other.context_);
    other.core_ = nullptr;
  }
  return *this;
}

Status SagaTransaction::Enlist(std::string_view operation, std::string payload) {
  if (!valid()) return NoSaga();
  return core_->TccEnlist(*context_, operation, std::move(payload));
}

Result<Outcome> SagaTransaction::Commit() {
  if (!valid()) return NoSaga();
  return core_->TccCommit(*context_);
}

Status SagaTransaction::Abandon() {
  if (!valid()) return NoSaga();
  return core_->TccAbandon(*context_);
}

TransactionState SagaTransaction::state() const noexcept {
  return valid() ? context_->state : TransactionState::kNone;
}

const Xid& SagaTransaction::xid() const noexcept { return valid() ? context_->xid : EmptyXid(); }

size_t SagaTransaction::step_count() const noexcept {
  return valid() ? context_->branches.size() : 0;
}

const Status& SagaTransaction::last_status() const noexcept {
  return valid() ? context_->last_status : NoSaga();
}

}  // namespace xa
