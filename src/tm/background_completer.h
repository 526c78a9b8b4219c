// BackgroundCompleter: finishes phase 2 of branches that could not be completed on the caller's
// thread, and (for recovery) of decisions found open in the log.
//
// One thread, owned by the manager. Each branch is retried with fresh sessions from the
// resource-manager factories (the application's session may be dead), with capped exponential
// backoff (TransactionManagerOptions::background_retry), forever: a durable commit decision is
// never abandoned and never turned into a heuristic because an RM stays down (docs/promises.md,
// P3). When every branch of a job is finished, the job's heuristic outcome (if any) is persisted,
// Forget() is sent where the RM reported XA_HEUR*, and, for a logged decision, the end record is
// written.
//
// Recovery hands the decisions it could not finish to Submit() too. Every phase-2 result is read
// by the phase-2 rules (src/completion/branch_outcome.h), the table the coordinator and the
// recovery engine use as well.
//
// A call to an unreachable RM blocks this thread for as long as the driver's connect timeout;
// the other jobs wait meanwhile. Acceptable for a path that only runs when something is down.
//
// End records. SubmitEnd appends the end record of a transaction whose phase 2 finished on the
// caller's thread lazily (DecisionLog::AppendLazy): no fdatasync of its own and no waiting, since
// a lost end record only makes recovery repeat phase 2, where XAER_NOTA means done. Until then
// the transaction stays in the in-flight registry, so recovery leaves it alone.
//
// Thread safety: Submit(), WaitIdle() and pending() are thread-safe. Sessions are only used by
// the completion thread.

#ifndef XA_SRC_TM_BACKGROUND_COMPLETER_H_
#define XA_SRC_TM_BACKGROUND_COMPLETER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/completion/branch_outcome.h"
#include "src/tm/in_flight.h"
#include "xa/protocol.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

struct Services;

struct CompletionBranch {
  std::string rm_name;
  Xid xid;
  // Commit jobs: a commit of this branch may already have landed (an earlier XAER_RMFAIL, or the
  // decision comes from a log replay), so XAER_NOTA means "done".
  bool maybe_applied = false;
  // Rollback jobs: Prepare() was sent, so the branch may survive its session.
  bool maybe_prepared = true;
  BranchEnd end = BranchEnd::kPending;  // finished branches are carried for the final outcome
  bool forget = false;
  bool persisted = false;  // a heuristic end already recorded by the coordinator
  Status last;
  uint32_t attempts = 0;
  SteadyClock::time_point next_attempt{};
};

struct CompletionJob {
  Xid xid;  // global
  Protocol protocol = Protocol::kTwoPhase;
  Decision decision = Decision::kCommit;
  bool decision_logged = true;  // write the end record when done
  std::vector<CompletionBranch> branches;
  const char* origin = "commit";  // "commit", "rollback" or "recovery", for the log lines
};

class BackgroundCompleter {
 public:
  explicit BackgroundCompleter(const Services* services);
  ~BackgroundCompleter();  // Stop()
  BackgroundCompleter(const BackgroundCompleter&) = delete;
  BackgroundCompleter& operator=(const BackgroundCompleter&) = delete;

  void Start();
  // Stops the thread after the call in progress. Unfinished jobs are dropped: their decisions
  // stay open in the log (recovery finishes them), and their rollbacks are presumed.
  void Stop();

  // Takes over `job` (and its Xid in the in-flight registry, adding it if absent).
  void Submit(CompletionJob job);
  // Appends (lazily) the end record of a finished, logged decision and drops its in-flight
  // entry; does not wait for the log.
  void SubmitEnd(const Xid& global_xid, Protocol protocol);
  // XA_TIMEOUT if jobs remain after `timeout`.
  Status WaitIdle(std::chrono::milliseconds timeout);
  size_t pending() const;

 private:
  void Loop();
  void Attempt(const CompletionJob& job, CompletionBranch& branch);
  void Finish(CompletionJob& job);
  ResourceManager* Session(const std::string& rm_name, Status* error);

  const Services* services_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::list<CompletionJob> jobs_;  // guarded by mu_
  size_t working_ = 0;             // jobs taken out of jobs_ by the thread; guarded by mu_
  bool stopping_ = false;          // guarded by mu_
  std::thread thread_;
  // One cached session per RM name, dropped after XAER_RMFAIL. Completion thread only.
  std::map<std::string, std::unique_ptr<ResourceManager>> sessions_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_BACKGROUND_COMPLETER_H_
