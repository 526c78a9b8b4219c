// DecisionNotifier: tells the participant agents of a committed three-phase transaction its
// DoCommit after Commit() has returned, so that the agents' round (a message each way and the
// agent's durable COMMIT record) is off the commit's latency path.
//
// Why that is safe: the notice is submitted once the commit decision is durable and every branch
// is committed. The outcome no longer depends on the agents: each acknowledged PreCommit, so any
// termination round they run commits too. Their acknowledgement matters only for forgetting: an
// agent forgets a committed participant once the coordinator told it, and the coordinator ends
// its decision only once every agent acknowledged. Until then the transaction stays in the
// in-flight registry (recovery leaves it alone); when every agent acknowledged, its end record is
// written lazily (BackgroundCompleter::SubmitEnd); otherwise the decision stays open, logged
// with the Xid, for the 3PC recovery module, which tells the agents again until they acknowledge
// (the same rule, AcknowledgesDecision, in both places).
//
// Each agent of a notice is told on a pool thread of its own, so the round costs one agent's
// latency, not the sum. Within an agent's termination timeout is when a notice must arrive, or
// the agent commits on its own and fences the application's session (correct, but the session
// is ended under the application's feet): the pool keeps the queue short.
//
// Stop() refuses new notices and sends those already submitted, waiting up to twice the
// acknowledgement timeout (each call is bounded by it), so that a manager closed right after a
// commit still tells its agents; the notices left after that are dropped: their decisions stay
// open in the log for recovery, and their Xids leave the in-flight registry.
//
// Thread safety: every method may be called from any thread.

#ifndef XA_SRC_TM_DECISION_NOTIFIER_H_
#define XA_SRC_TM_DECISION_NOTIFIER_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/base/worker_pool.h"
#include "src/completion/branch_outcome.h"
#include "xa/env.h"
#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::three_phase {
class AgentClient;
}  // namespace xa::three_phase

namespace xa::internal {

struct Services;

// One agent to tell: the participant `participant` of the transaction, whose branch is `branch`
// on resource manager `rm_name`. `branch_done` (sent): the coordinator committed the branch, so
// the agent neither fences nor commits it again. `branch_finished` (for reading the answer):
// nothing is left to do in the database, a read-only branch included (finished at its vote).
struct AgentNotice {
  std::string rm_name;
  Xid branch;
  uint32_t participant = 0;
  bool branch_done = false;
  bool branch_finished = false;
};

// Tells the agent of `notice` the transaction `global`'s `decision` (DoCommit or Abort, with
// notice.branch_done) and reads its answer by AcknowledgesDecision (with notice.branch_finished);
// a missing answer, or one that holds the other outcome (heuristic mixed), is logged with the
// branch's Xid. True when the agent acknowledged. The coordinator's synchronous round and the
// notifier both tell an agent through this one function.
bool TellAgent(three_phase::AgentClient& agents, const Xid& global, const AgentNotice& notice,
               Decision decision, Clock::SteadyTime deadline);

struct DecisionNotice {
  Xid xid;  // global
  std::vector<AgentNotice> agents;
};

class DecisionNotifier {
 public:
  // Threads: enough for the agents of a few transactions at once (a call waits for the agent's
  // log sync); `agents` and `services` must outlive the notifier.
  static constexpr size_t kThreads = 4;

  DecisionNotifier(const Services* services, three_phase::AgentClient* agents,
                   std::chrono::milliseconds ack_timeout);
  ~DecisionNotifier();  // Stop()
  DecisionNotifier(const DecisionNotifier&) = delete;
  DecisionNotifier& operator=(const DecisionNotifier&) = delete;

  // Takes over the transaction's in-flight entry. False when the notifier is stopping (nothing
  // was taken over: the caller tells the agents itself).
  bool Submit(DecisionNotice notice);
  // XA_TIMEOUT if notices are still being sent after `timeout` (on the steady clock).
  Status WaitIdle(std::chrono::milliseconds timeout);
  size_t pending() const;
  void Stop();

 private:
  struct Job;
  void TellOne(const std::shared_ptr<Job>& job, size_t k);
  void Conclude(const Job& job);
  void Forget(const Xid& xid);

  const Services* services_;
  three_phase::AgentClient* agents_;
  const std::chrono::milliseconds ack_timeout_;
  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::map<Xid, std::shared_ptr<Job>> jobs_;  // guarded by mu_: submitted, not yet concluded
  bool stopping_ = false;                     // guarded by mu_
  WorkerPool pool_{kThreads};                 // last: its threads stop before the members go
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_DECISION_NOTIFIER_H_
