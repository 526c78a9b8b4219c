// What the coordinators and the background completion thread share: the manager's options, its
// log, thread pool, metrics and in-flight registry (internal).

#ifndef XA_SRC_TM_SERVICES_H_
#define XA_SRC_TM_SERVICES_H_

#include <memory>
#include <string>
#include <vector>

#include "src/tm/in_flight.h"
#include "src/tm/metrics_registry.h"
#include "src/tm/phase_executor.h"
#include "xa/decision_log.h"
#include "xa/resource_manager.h"
#include "xa/transaction_manager.h"

namespace xa::internal {

class BackgroundCompleter;

struct Services {
  const TransactionManagerOptions* options = nullptr;
  DecisionLog* log = nullptr;
  PhaseExecutor* executor = nullptr;
  BackgroundCompleter* completer = nullptr;
  MetricsRegistry* metrics = nullptr;
  InFlightRegistry* in_flight = nullptr;

  // A fresh, open session from the factory registered for `rm_name`.
  Result<std::unique_ptr<ResourceManager>> OpenSession(const std::string& rm_name) const;

  // Appends a kHeuristic record (and says so at error level). A failed append is logged: the
  // outcome is still reported to the caller, and the log's own failure stops later decisions.
  void PersistHeuristic(const Xid& global_xid, Protocol protocol,
                        std::vector<Participant> branches, Outcome outcome,
                        const std::string& reason) const;

  // Appends the kEnd record of a logged decision whose branches are all finished, lazily: it
  // rides on the next decision's fdatasync instead of paying for one of its own. Losing it in a
  // crash, like failing to write it (only logged), makes recovery repeat phase 2 of the
  // decision, where NOTA means "done".
  void WriteEnd(const Xid& global_xid, Protocol protocol) const;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_SERVICES_H_
