// BackgroundCompleter: finishes phase 2 of branches that could not be completed on the caller's
// thread, and (for recovery) of decisions found open in the log.
//
// Each transaction handed over is one job on a Retrier (src/base/retrier.h), the library's
// general retrier, whose one thread the manager owns. An attempt calls every branch still
// pending, each with a fresh session from the resource-manager factories (the application's
// session may be dead); the job is done when none is pending. Between attempts the job waits on
// the Env clock with capped exponential backoff (TransactionManagerOptions::background_retry: one
// backoff per transaction, no jitter), forever: a durable commit decision is never abandoned and
// never turned into a heuristic because an RM stays down (docs/promises.md, P3), so the job's
// schedule has no give-up limit and its attempts never give up (an attempt that throws is retried
// too). A three-phase job is done only once, besides, every participant agent acknowledged its
// decision (CompletionJob::agents_to_tell). A job that is done is concluded
// (src/completion/conclude.h): its heuristic outcome (if any) is persisted, Forget() is sent
// where the RM reported XA_HEUR*, and, for a logged decision, the end record is written.
//
// Recovery hands the decisions it could not finish to Submit() too. Every phase-2 result is read
// by the phase-2 rules (src/completion/branch_outcome.h), the table the coordinator and the
// recovery engine use as well, through BranchState::Apply.
//
// A call to an unreachable RM blocks the retrier's thread for as long as the driver's connect
// timeout; the other jobs wait meanwhile. Acceptable for a path that only runs when something is
// down.
//
// End records. SubmitEnd appends the end record of a transaction whose phase 2 finished on the
// caller's thread lazily (DecisionLog::AppendLazy): no fdatasync of its own and no waiting, since
// a lost end record only makes recovery repeat phase 2, where XAER_NOTA means done. Until then
// the transaction stays in the in-flight registry, so recovery leaves it alone.
//
// Metrics: handed_to_background and background_pending at Submit(), phase2_retries for each
// failed branch call, background_completed (and background_pending down) when a job concludes.
//
// Thread safety: Submit(), SubmitEnd(), WaitIdle() and pending() are thread-safe. Sessions are
// only used by the retrier's thread.

#ifndef XA_SRC_TM_BACKGROUND_COMPLETER_H_
#define XA_SRC_TM_BACKGROUND_COMPLETER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/base/retrier.h"
#include "src/completion/branch_outcome.h"
#include "src/completion/branch_state.h"
#include "src/tm/in_flight.h"
#include "xa/protocol.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::three_phase {
class AgentClient;
}  // namespace xa::three_phase

namespace xa::internal {

struct Services;

// Three-phase commit: a participant agent that must acknowledge a job's decision.
struct AgentToTell {
  std::string rm_name;      // the agent is found by its resource manager
  Xid branch;               // its participant's branch
  uint32_t participant = 0;
};

struct CompletionJob {
  Xid xid;  // global
  Protocol protocol = Protocol::kTwoPhase;
  Decision decision = Decision::kCommit;
  bool decision_logged = true;  // write the end record when done
  // Every branch of the decision; finished ones are carried for the conclusion. A commit of a
  // branch from the log may already have landed (history.maybe_applied), so XAER_NOTA is "done".
  std::vector<BranchState> branches;
  const char* origin = "commit";  // "commit", "rollback" or "recovery", for the log lines
  // Three-phase commit: the agents that must acknowledge the decision before the end record
  // (an agent forgets a committed participant only once told, so an end record written before
  // would leave the outcome with nobody to ask). Once every branch is finished, each attempt
  // tells those that have not acknowledged yet, by the 3PC recovery module's rule
  // (src/recovery/three_phase_recovery.h), until all have. Empty for 2PC.
  std::vector<AgentToTell> agents_to_tell;
  three_phase::AgentClient* agents = nullptr;  // set when agents_to_tell is not empty
  std::chrono::milliseconds agent_timeout{0};   // for each agent's answer, per attempt
};

// When the first background attempt of a job is made.
enum class FirstAttempt : uint8_t {
  kNow,           // recovery: nothing was tried in this process yet
  kAfterBackoff,  // the coordinator's inline attempts just failed: wait background_retry's first
};

class BackgroundCompleter {
 public:
  explicit BackgroundCompleter(const Services* services);
  ~BackgroundCompleter();  // Stop()
  BackgroundCompleter(const BackgroundCompleter&) = delete;
  BackgroundCompleter& operator=(const BackgroundCompleter&) = delete;

  void Start();
  // Stops the thread after the call in progress. Unfinished jobs are dropped: their decisions
  // stay open in the log (recovery finishes them), their rollbacks are presumed, and their Xids
  // leave the in-flight registry (this process no longer works on them).
  void Stop();

  // Takes over `job` (and its Xid in the in-flight registry, adding it if absent).
  void Submit(CompletionJob job, FirstAttempt first);
  // Appends (lazily) the end record of a finished, logged decision and drops its in-flight
  // entry; does not wait for the log.
  void SubmitEnd(const Xid& global_xid, Protocol protocol);
  // XA_TIMEOUT if jobs remain after `timeout` (on the Env clock).
  Status WaitIdle(std::chrono::milliseconds timeout);
  size_t pending() const;

 private:
  // One attempt of `job`: every pending branch once; once none is, the agents still to tell.
  JobOutcome Attempt(CompletionJob& job);
  JobOutcome TellAgents(CompletionJob& job);
  void AttemptBranch(const CompletionJob& job, BranchState& branch);
  void Finish(CompletionJob& job);
  void Dropped(const CompletionJob& job);
  ResourceManager* Session(const std::string& rm_name, Status* error);

  const Services* services_;
  // One cached session per RM name, dropped after XAER_RMFAIL. The retrier's thread only (and
  // Stop(), once that thread has stopped).
  std::map<std::string, std::unique_ptr<ResourceManager>> sessions_;
  Retrier retrier_;  // last: its thread stops before the members it uses go
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_BACKGROUND_COMPLETER_H_
