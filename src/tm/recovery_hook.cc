#include "src/tm/recovery_hook.h"

#include "src/logging.h"
#include "src/tm/background_completer.h"

namespace xa::internal {

Status RecoverOnOpen(const Services& services) {
  LogState state = services.log->State();
  for (const auto& [xid, record] : state.open_decisions) {
    for (const Participant& p : record.participants) {
      if (services.options->resource_managers.count(p.rm_name) == 0) {
        return Status(Code::kConfig,
                      "the decision log holds an open commit decision for " + xid.ToString() +
                          " with a branch on resource manager '" + p.rm_name +
                          "', which has no factory: register it in "
                          "TransactionManagerOptions::resource_managers so recovery can finish "
                          "the commit");
      }
    }
  }
  for (const auto& [xid, record] : state.open_decisions) {
    if (record.type != RecordType::kCommitDecision) {
      // 3PC pre-commit records belong to the 3PC recovery rules (not implemented yet).
      XA_LOG_XID(kWarning, "recovery", xid) << "open record of type "
                                            << static_cast<int>(record.type)
                                            << " left for the 3PC recovery rules";
      continue;
    }
    CompletionJob job;
    job.xid = xid;
    job.protocol = record.protocol;
    job.commit = true;
    job.decision_logged = true;
    job.origin = "recovery";
    for (const Participant& p : record.participants) {
      CompletionBranch branch;
      branch.rm_name = p.rm_name;
      branch.xid = p.branch;
      // The previous run may have committed this branch already: NOTA means done.
      branch.maybe_applied = true;
      job.branches.push_back(std::move(branch));
    }
    XA_LOG_XID(kInfo, "recovery", xid) << "open commit decision (lsn " << record.lsn
                                       << "): completing " << job.branches.size()
                                       << " branch(es)";
    services.completer->Submit(std::move(job));
  }
  for (const auto& [xid, record] : state.open_heuristics) {
    XA_LOG_XID(kWarning, "recovery", xid)
        << "heuristic outcome " << OutcomeName(record.outcome)
        << " not yet cleared by an operator: " << record.reason;
  }
  return Status::Ok();
}

}  // namespace xa::internal
