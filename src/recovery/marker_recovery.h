// MarkerRecovery: the recovery module of marker commit (Protocol::kMarkerCommit; internal).
//
// A marker-commit transaction's decision is its marker row (xa/marker.h): the coordinator wrote
// it in the marker branch and committed that branch in one phase, and logged nothing. So a
// prepared branch of ours with the marker format ID and no decision record is settled by the
// marker, not by presumed abort:
//
//   Gather: reads (without writing or waiting) the committed marker rows of those branches'
//   transactions, through a session of the marker resource manager.
//   Plan, for each such transaction no earlier module claimed (it claims every one, so that 2PC's
//   presumed abort never touches them):
//     - in flight in this process, or with an open heuristic record: leave alone (as 2PC);
//     - no marker configuration (RecoveryOptions::marker.rm empty), or the rows unreadable:
//       leave alone, with the reason; nothing is presumed;
//     - row 'C': commit its prepared branches; row 'A': roll them back;
//     - no row: roll back once Execute has settled the marker (ResourceManager::
//       SettleCommitMarker writes 'A', after waiting for a marker branch still in flight); if
//       the marker branch commits first, the settle says so and the branches are committed. With
//       the log damaged, leave alone: a transaction without a branch on the marker resource
//       manager falls back to a decision record, which a damaged log may have lost.
//   No age rule: settling is safe however young the transaction is, because a coordinator still
//   running can no longer write its row past the 'A'.
//   Execute: the settles, then the commits and rollbacks and their conclusion (2PC's executor),
//   then deletes the rows of the transactions it finished, then sweeps: rows of our node whose
//   transaction is not in flight and has no branch prepared on any resource manager (a scan made
//   after the rows were listed) are deleted, so rows a crash or a failed cleanup left behind do
//   not pile up.
//
// Thread safety: used by one pass at a time (the engine serialises passes).

#ifndef XA_SRC_RECOVERY_MARKER_RECOVERY_H_
#define XA_SRC_RECOVERY_MARKER_RECOVERY_H_

#include <cstddef>
#include <set>
#include <string_view>

#include "src/recovery/recovery_module.h"

namespace xa::internal {

class MarkerRecovery final : public RecoveryModule {
 public:
  // Rows of our node the sweep looks at in one pass.
  static constexpr size_t kSweepLimit = 1000;

  std::string_view name() const noexcept override { return "marker"; }
  void Gather(PassInputs& inputs, const PassContext& context) override;
  RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) override;
  void Execute(RecoveryPlan& plan, const PassContext& context) override;
};

// The prepared branches' global Xids that marker recovery owns: the marker format ID, made by
// node `node_id`, and no open decision record in `state`.
std::set<Xid> MarkerOrphans(const PassInputs& inputs);

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_MARKER_RECOVERY_H_
