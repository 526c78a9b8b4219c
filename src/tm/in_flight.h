// The set of global transactions a manager owns right now, with the ages that monitoring needs.
//
// A transaction is registered at Begin() and stays until its coordinator (or the background
// completion thread, when phase 2 was handed over) has finished with it. Recovery asks this
// registry before resolving anything, so that it never rolls back a transaction under its owner
// (Narayana's isTransactionInMidFlight).
//
// Thread safety: all methods are thread-safe. The map is sharded by Xid hash so that Begin() and
// finish of unrelated transactions rarely contend.

#ifndef XA_SRC_TM_IN_FLIGHT_H_
#define XA_SRC_TM_IN_FLIGHT_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "xa/xid.h"

namespace xa::internal {

using SteadyClock = std::chrono::steady_clock;

class InFlightRegistry {
 public:
  // False if `global_xid` is already registered.
  bool Add(const Xid& global_xid);
  // Notes that phase 1 has begun (the first branch may be prepared from now on). Keeps the
  // earliest time when called again.
  void MarkPrepareStarted(const Xid& global_xid, SteadyClock::time_point when);
  // Notes that the background thread now owns the transaction.
  void MarkBackground(const Xid& global_xid);
  void Remove(const Xid& global_xid);

  bool Contains(const Xid& global_xid) const;
  std::vector<Xid> List() const;
  int64_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
  // Seconds since the oldest MarkPrepareStarted() among registered transactions; 0 if none.
  double OldestPreparedAgeSeconds(SteadyClock::time_point now) const;

 private:
  struct Entry {
    SteadyClock::time_point prepare_started{};  // epoch: not preparing yet
    bool background = false;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Xid, Entry> entries;
  };
  static constexpr size_t kShards = 16;
  Shard& ShardOf(const Xid& xid) const { return shards_[XidHash()(xid) % kShards]; }

  mutable std::array<Shard, kShards> shards_;
  std::atomic<int64_t> size_{0};
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_IN_FLIGHT_H_
