#include "xa/transaction_manager.h"

#include "src/base/retrier.h"
#include "src/tm/manager_core.h"

namespace xa {

std::chrono::microseconds RetryPolicy::BackoffBefore(uint32_t attempt) const noexcept {
  return internal::BackoffDelay(initial_backoff, multiplier, max_backoff, attempt);
}

Result<std::unique_ptr<TransactionManager>> TransactionManager::Open(
    TransactionManagerOptions options, DecisionLog& log) {
  auto core = std::make_unique<internal::ManagerCore>(std::move(options), log);
  XA_RETURN_IF_ERROR(core->Start());
  return std::unique_ptr<TransactionManager>(new TransactionManager(std::move(core)));
}

TransactionManager::TransactionManager(std::unique_ptr<internal::ManagerCore> core)
    : core_(std::move(core)) {}

TransactionManager::~TransactionManager() = default;

Result<Transaction> TransactionManager::Begin(const TransactionOptions& options) {
  return core_->Begin(options);
}

Result<TccTransaction> TransactionManager::BeginTcc(std::chrono::milliseconds timeout) {
  return core_->BeginTcc(timeout);
}

Result<SagaTransaction> TransactionManager::BeginSaga(std::chrono::milliseconds timeout) {
  return core_->BeginSaga(timeout);
}

Result<Transaction> TransactionManager::Begin(Protocol protocol) {
  TransactionOptions options;
  options.protocol = protocol;
  return core_->Begin(options);
}

Status TransactionManager::ClearHeuristic(const Xid& global_xid, std::string reason) {
  return core_->ClearHeuristic(global_xid, std::move(reason));
}

std::vector<Xid> TransactionManager::InFlightTransactions() const {
  return core_->in_flight().List();
}

bool TransactionManager::IsInFlight(const Xid& global_xid) const {
  return core_->in_flight().Contains(global_xid.Global());
}

Status TransactionManager::WaitForBackgroundCompletion(std::chrono::milliseconds timeout) {
  return core_->WaitForBackgroundWork(timeout);
}

Result<RecoveryReport> TransactionManager::RunRecovery() { return core_->RunRecovery(); }

TransactionMetrics TransactionManager::Metrics() const { return core_->Metrics(); }

std::string TransactionManager::PrometheusText() const { return core_->PrometheusText(); }

const TransactionManagerOptions& TransactionManager::options() const noexcept {
  return core_->options();
}

DecisionLog& TransactionManager::decision_log() const noexcept { return core_->log(); }

}  // namespace xa
