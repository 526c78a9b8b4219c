#include "xa/tcc_barrier.h"

#include "xa/marker.h"

namespace xa {

std::string_view BarrierOpName(BarrierOp op) noexcept {
  switch (op) {
    case BarrierOp::kTry: return "try";
    case BarrierOp::kConfirm: return "confirm";
    case BarrierOp::kCancel: return "cancel";
    case BarrierOp::kAction: return "action";
    case BarrierOp::kCompensate: return "compensate";
  }
  return "unknown";
}

std::optional<BarrierOp> CompensatedOp(BarrierOp op) noexcept {
  switch (op) {
    case BarrierOp::kCancel: return BarrierOp::kTry;
    case BarrierOp::kCompensate: return BarrierOp::kAction;
    default: return std::nullopt;
  }
}

std::string_view BarrierVerdictName(BarrierVerdict verdict) noexcept {
  switch (verdict) {
    case BarrierVerdict::kRun: return "run";
    case BarrierVerdict::kRepeated: return "repeated";
    case BarrierVerdict::kEmptyCompensation: return "empty compensation";
    case BarrierVerdict::kRefusedAfterCompensation: return "refused after compensation";
  }
  return "unknown";
}

BarrierVerdict DecideBarrier(BarrierOp op, bool origin_inserted, bool own_inserted,
                             std::optional<BarrierOp> existing_reason) noexcept {
  // A compensation that found no row of what it compensates: that operation never arrived. Its
  // row, written now by this compensation, refuses it if it comes later.
  if (CompensatedOp(op).has_value() && origin_inserted) return BarrierVerdict::kEmptyCompensation;
  if (own_inserted) return BarrierVerdict::kRun;
  // The row was there: written by an earlier delivery of this operation, or, for a Try or an
  // Action, by the compensation that overtook it.
  if (existing_reason.has_value() && existing_reason != op && CompensatedOp(*existing_reason) == op) {
    return BarrierVerdict::kRefusedAfterCompensation;
  }
  return BarrierVerdict::kRepeated;
}

std::string BarrierKeyError(const BarrierKey& key) {
  if (key.global_id.empty()) return "barrier key: the global id is empty";
  if (key.global_id.size() > 128) {
    return "barrier key: the global id is " + std::to_string(key.global_id.size()) +
           " bytes long; at most 128";
  }
  if (key.branch_id.empty()) return "barrier key: the branch id is empty";
  if (key.branch_id.size() > 64) {
    return "barrier key: the branch id is " + std::to_string(key.branch_id.size()) +
           " bytes long; at most 64";
  }
  return "";
}

std::string BarrierOptionsError(const BarrierOptions& options) {
  if (std::string error = MarkerTableNameError(options.table); !error.empty()) {
    // The rule is the marker table's; the message names the barrier's table.
    return "barrier table" + error.substr(error.find(" '"));
  }
  if (options.retention < std::chrono::hours(1)) {
    return "barrier retention of " + std::to_string(options.retention.count()) +
           " s is shorter than an hour: a delayed Try or a repeated Confirm could then outlive "
           "the rows that judge it; keep it longer than any request can be delayed";
  }
  if (options.purge_batch < 1 || options.purge_batch > 10000) {
    return "barrier purge_batch " + std::to_string(options.purge_batch) +
           " is outside 1..10000";
  }
  return "";
}

}  // namespace xa
