// RecoveryRunner: crash recovery inside a TransactionManager (internal).
//
// At Open() (TransactionManagerOptions::recover_on_open) the manager runs one pass of the
// recovery engine (xa/recovery.h) over fresh sessions from its factories: commit decisions
// found open in the log are committed on every reachable RM and ended; prepared branches of
// this node with no decision are rolled back once older than the transaction timeout. What the
// pass could not finish because an RM is unreachable is handed to the background completer,
// which retries forever. Orphans too young for the first pass are rolled back by the next one,
// which runs `recovery_first_pass_delay` after Open() on the runner's own thread and then every
// `recovery_interval`: a branch seen by two passes and still without a decision belongs to no
// running transaction, because every pass skips the Xids that the in-flight registry holds (the
// manager's own transactions, from Begin() until their end record, including background jobs).
// Open 3PC records are the 3PC recovery module's alone (it asks the manager's agents, and ends a
// record only once every agent acknowledged its outcome): the background completer never takes
// them, and a manager without periodic passes finishes them at its next Open() or RunRecovery().
//
// Thread safety: RunOnce() is thread-safe (the engine serialises passes).

#ifndef XA_SRC_TM_RECOVERY_HOOK_H_
#define XA_SRC_TM_RECOVERY_HOOK_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "src/tm/services.h"
#include "xa/recovery.h"
#include "xa/status.h"

namespace xa::internal {

class RecoveryRunner {
 public:
  // `agents` (nullptr without three-phase commit) must outlive the runner: the 3PC recovery
  // module asks them for the outcomes of the manager's 3PC transactions.
  RecoveryRunner(const Services* services, three_phase::AgentClient* agents,
                 std::chrono::milliseconds agent_timeout);
  ~RecoveryRunner();  // Stop()
  RecoveryRunner(const RecoveryRunner&) = delete;
  RecoveryRunner& operator=(const RecoveryRunner&) = delete;

  // The pass at Open(). XA_CONFIG when the log holds an open decision on an RM that has no
  // factory (it could never be completed: register the RM and reopen).
  Status RecoverOnOpen();

  // One pass now, over fresh sessions.
  Result<RecoveryReport> RunOnce();

  // Starts the periodic passes (no-op for a zero interval). Stop() ends them.
  void StartPeriodic(std::chrono::milliseconds first_delay, std::chrono::milliseconds interval);
  void Stop();

 private:
  void Loop(std::chrono::milliseconds first_delay, std::chrono::milliseconds interval);

  const Services* services_;
  RecoveryEngine engine_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace xa::internal

#endif  // XA_SRC_TM_RECOVERY_HOOK_H_
