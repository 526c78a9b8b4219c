#include "src/tm/services.h"

#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::internal {

Result<std::unique_ptr<ResourceManager>> Services::OpenSession(const std::string& rm_name) const {
  auto it = options->resource_managers.find(rm_name);
  if (it == options->resource_managers.end() || !it->second) {
    return Status(Code::kConfig, "no resource-manager factory registered for '" + rm_name +
                                     "': add it to TransactionManagerOptions::resource_managers");
  }
  Result<std::unique_ptr<ResourceManager>> session = it->second();
  if (!session.ok()) {
    return session.status().WithContext("opening a fresh session with '" + rm_name + "'");
  }
  if (*session == nullptr) {
    return Status(Code::kInternal,
                  "the factory of resource manager '" + rm_name + "' returned no session");
  }
  return session;
}

RetrySchedule RetryForever(const RetryPolicy& policy) {
  RetrySchedule schedule;
  schedule.initial_delay = policy.initial_backoff;
  schedule.multiplier = policy.multiplier;
  schedule.max_delay = policy.max_backoff;
  schedule.jitter = 0.0;
  schedule.max_attempts = 0;
  schedule.give_up_after = std::chrono::microseconds::zero();
  return schedule;
}

bool Services::PersistHeuristic(const Xid& global_xid, Protocol protocol,
                                const Conclusion& conclusion) const {
  Result<uint64_t> lsn = log->Append(HeuristicRecord(global_xid, protocol, conclusion));
  MetricsRegistry::Add(metrics->heuristic_records);
  if (lsn.ok()) {
    XA_LOG_XID(kError, "tm", global_xid)
        << "heuristic outcome " << OutcomeName(conclusion.outcome) << " recorded at lsn " << *lsn
        << " until an operator clears it: " << conclusion.reason;
    return true;
  }
  XA_LOG_XID(kError, "tm", global_xid)
      << "heuristic outcome " << OutcomeName(conclusion.outcome)
      << " could NOT be recorded in the decision log (" << lsn.status().ToString()
      << "); check the branches by hand (their RMs are not told to forget them): "
      << conclusion.reason;
  return false;
}

void Services::WriteEnd(const Xid& global_xid, Protocol protocol) const {
  LogRecord record;
  record.type = RecordType::kEnd;
  record.xid = global_xid;
  record.protocol = protocol;
  // Lazy: no fdatasync of its own, and no waiting (see services.h).
  Status appended = log->AppendLazy(record);
  XA_CRASH_POINT(kAfterEndRecord);
  if (!appended.ok()) {
    XA_LOG_XID(kWarning, "tm", global_xid)
        << "could not write the end record (" << appended.ToString()
        << "); recovery will repeat phase 2, which finds the branches done";
  }
}

}  // namespace xa::internal
