// TccRecovery: the recovery module of TCC (internal; the protocol is src/tm/tcc_coordinator.h).
//
// It owns the open TCC transactions of the log (LogState::open_tcc, the records of the TCC band:
// kTccTry and kTccConfirm) and the participants they name. No resource manager holds anything
// of a TCC transaction, so its plan reads the log alone:
//   - a kTccConfirm (the decision) without an end record: Confirm every participant;
//   - a kTccTry without a decision: Cancel every participant (presumed cancel: the coordinator
//     never confirmed, and a participant whose Try never ran records an empty cancel) — but not
//     while the log is damaged: a decision may follow the damage, and cancelling would
//     contradict it;
//   - a transaction in flight in this process: left to its coordinator.
// Execute calls each participant once per pass, through the participants the options register
// (RecoveryOptions::tcc; a name registered nowhere is left with a reason, and so is every TCC
// transaction for a recovery that registers none, such as xa-recover without them), and reads
// each answer by the finishing rules (src/completion/tcc_completion.h): done, failed (the next
// pass calls again), refused for good (a heuristic outcome). Once every participant is finished
// it records the heuristic (if any) and the end record. Confirms count as commits in the
// report, cancels as rollbacks.
//
// Sagas (protocol kSaga, in the same records): a saga that completed (kTccConfirm) has nothing
// to call and is only ended; one that did not is compensated, every step, in reverse order, a
// step's compensation only once the later steps' are done (a pass stops at the first that fails).

#ifndef XA_SRC_RECOVERY_TCC_RECOVERY_H_
#define XA_SRC_RECOVERY_TCC_RECOVERY_H_

#include <set>
#include <string_view>
#include <vector>

#include "src/completion/tcc_completion.h"
#include "src/recovery/recovery_module.h"

namespace xa::internal {

class TccRecovery final : public RecoveryModule {
 public:
  std::string_view name() const noexcept override { return "tcc"; }
  RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) override;
  void Execute(RecoveryPlan& plan, const PassContext& context) override;

 private:
  // A transaction the last Plan() decided to finish: its branches, each with its index in the
  // plan's report.
  struct Planned {
    Xid global;
    TccDecision decision = TccDecision::kCancel;
    bool saga = false;  // compensations in reverse order; a completed saga calls nobody
    std::vector<TccBranch> branches;
    std::vector<size_t> report_index;
  };
  std::vector<Planned> planned_;  // from Plan() to Execute() of one pass
};

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_TCC_RECOVERY_H_
