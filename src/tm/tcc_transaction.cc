#include "xa/tcc.h"

#include "src/tm/manager_core.h"
#include "src/tm/tcc_coordinator.h"

namespace xa {
namespace {
const Xid& EmptyXid() {
  static const Xid* const kEmpty = new Xid();
  return *kEmpty;
}
const Status& NoTransaction() {
  static const Status* const kStatus =
      new Status(Code::kProto, "empty TccTransaction handle: no transaction");
  return *kStatus;
}
}  // namespace

TccTransaction::TccTransaction() noexcept = default;

TccTransaction::TccTransaction(internal::ManagerCore* core,
                               std::unique_ptr<internal::TccContext> context) noexcept
    : core_(core), context_(std::move(context)) {}

TccTransaction::~TccTransaction() {
  if (context_ != nullptr && core_ != nullptr) core_->TccAbandon(*context_).IgnoreError();
}

TccTransaction::TccTransaction(TccTransaction&& other) noexcept
    : core_(other.core_), context_(std::move(other.context_)) {
  other.core_ = nullptr;
}

TccTransaction& TccTransaction::operator=(TccTransaction&& other) noexcept {
  if (this != &other) {
    if (context_ != nullptr && core_ != nullptr) core_->TccAbandon(*context_).IgnoreError();
    core_ = other.core_;
    context_ = std::move(other.context_);
    other.core_ = nullptr;
  }
  return *this;
}

Status TccTransaction::Enlist(std::string_view participant, std::string payload) {
  if (!valid()) return NoTransaction();
  return core_->TccEnlist(*context_, participant, std::move(payload));
}

Result<Outcome> TccTransaction::Commit() {
  if (!valid()) return NoTransaction();
  return core_->TccCommit(*context_);
}

Status TccTransaction::Abandon() {
  if (!valid()) return NoTransaction();
  return core_->TccAbandon(*context_);
}

TransactionState TccTransaction::state() const noexcept {
  return valid() ? context_->state : TransactionState::kNone;
}

const Xid& TccTransaction::xid() const noexcept { return valid() ? context_->xid : EmptyXid(); }

size_t TccTransaction::participant_count() const noexcept {
  return valid() ? context_->branches.size() : 0;
}

const Status& TccTransaction::last_status() const noexcept {
  return valid() ? context_->last_status : NoTransaction();
}

}  // namespace xa
