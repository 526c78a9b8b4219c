// The phase calls' timing (internal): each resource manager's running mean per phase, and the
// branch a phase gives the caller's thread (see PhaseExecutor::RunAll). Shared by the
// coordinators that prepare and commit branches through the application's sessions.

#ifndef XA_SRC_TM_PHASE_TIMING_H_
#define XA_SRC_TM_PHASE_TIMING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "src/tm/services.h"
#include "src/tm/txn_context.h"
#include "xa/env.h"

namespace xa::internal {

// The phase a timed call belongs to: each RM keeps one running mean per phase.
enum class TimedPhase : uint8_t { kPrepare, kFinish };

inline std::atomic<uint64_t>* MeanOf(const BranchContext& b, TimedPhase phase) {
  if (b.latency == nullptr) return nullptr;
  return phase == TimedPhase::kFinish ? &b.latency->commit_ns : &b.latency->prepare_ns;
}

// Runs one phase call on `b` and adds its duration to the RM's running mean.
template <typename Call>
inline void TimedCall(Clock& clock, BranchContext& b, TimedPhase phase, Call&& call) {
  Clock::SteadyTime start = clock.SteadyNow();
  call();
  if (std::atomic<uint64_t>* mean = MeanOf(b, phase)) {
    RmLatency::Record(*mean, clock.SteadyNow() - start);
  }
}

// The position, among `n` branches picked by `branch_at`, of the one whose RM took longest in
// this phase lately: the caller's thread runs it (see PhaseExecutor::RunAll).
template <typename BranchAt>
size_t SlowestBranch(size_t n, BranchAt&& branch_at, TimedPhase phase) {
  size_t slowest = 0;
  uint64_t longest = 0;
  for (size_t k = 0; k < n; ++k) {
    std::atomic<uint64_t>* mean = MeanOf(branch_at(k), phase);
    uint64_t value = mean == nullptr ? 0 : mean->load(std::memory_order_relaxed);
    if (value > longest) {
      longest = value;
      slowest = k;
    }
  }
  return slowest;
}

}  // namespace xa::internal

#endif  // XA_SRC_TM_PHASE_TIMING_H_
