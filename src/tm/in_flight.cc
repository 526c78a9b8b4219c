#include "src/tm/in_flight.h"

namespace xa::internal {

bool InFlightRegistry::Add(const Xid& global_xid) {
  Shard& shard = ShardOf(global_xid);
  std::lock_guard<std::mutex> lock(shard.mu);
  bool inserted = shard.entries.emplace(global_xid, Entry{}).second;
  if (inserted) size_.fetch_add(1, std::memory_order_relaxed);
  return inserted;
}

void InFlightRegistry::MarkPrepareStarted(const Xid& global_xid, SteadyClock::time_point when) {
  Shard& shard = ShardOf(global_xid);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(global_xid);
  if (it == shard.entries.end()) return;
  if (it->second.prepare_started == SteadyClock::time_point{} ||
      when < it->second.prepare_started) {
    it->second.prepare_started = when;
  }
}

void InFlightRegistry::MarkBackground(const Xid& global_xid) {
  Shard& shard = ShardOf(global_xid);
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.entries.find(global_xid);
  if (it != shard.entries.end()) it->second.background = true;
}

void InFlightRegistry::Remove(const Xid& global_xid) {
  Shard& shard = ShardOf(global_xid);
  std::lock_guard<std::mutex> lock(shard.mu);
  if (shard.entries.erase(global_xid) > 0) size_.fetch_sub(1, std::memory_order_relaxed);
}

bool InFlightRegistry::Contains(const Xid& global_xid) const {
  Shard& shard = ShardOf(global_xid);
  std::lock_guard<std::mutex> lock(shard.mu);
  return shard.entries.count(global_xid) > 0;
}

std::vector<Xid> InFlightRegistry::List() const {
  std::vector<Xid> out;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [xid, entry] : shard.entries) out.push_back(xid);
  }
  return out;
}

double InFlightRegistry::OldestPreparedAgeSeconds(SteadyClock::time_point now) const {
  SteadyClock::time_point oldest = SteadyClock::time_point::max();
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (const auto& [xid, entry] : shard.entries) {
      if (entry.prepare_started != SteadyClock::time_point{} && entry.prepare_started < oldest) {
        oldest = entry.prepare_started;
      }
    }
  }
  if (oldest == SteadyClock::time_point::max() || oldest > now) return 0;
  return std::chrono::duration<double>(now - oldest).count();
}

}  // namespace xa::internal
