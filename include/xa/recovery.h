// xa::RecoveryEngine: brings every transaction of this node to one outcome after a crash.
//
// A pass:
//   1. Scan every configured resource manager for its prepared branches (xa_recover).
//   2. Read the decision log's state (after the scans, so a decision written during the scan is
//      seen).
//   3. Each protocol's recovery module plans what to do from the state and the scans (a pure
//      step: `xa-recover plan` shows it), then carries its plan out. For two-phase commit:
//      - each commit decision without an end record: commit each of its branches that is still
//        prepared; a branch no longer prepared on a reachable RM is already committed. Once
//        every branch is done, append an end record. An unreachable RM leaves the decision open
//        for the next pass; nothing is presumed.
//      - each prepared branch of OUR node (our format ID and node id in the gtrid) with no
//        commit decision: presumed abort, roll it back, but only when the log is undamaged, the
//        transaction is not in flight in this process, has no open heuristic record, and is
//        older than `orphan_min_age` or was already seen by an earlier pass of this engine.
//        Otherwise leave it, with the reason.
//      - never touch a branch that is not ours (other format ID, other node, unparsable entry):
//        report it as foreign.
//   Every result of a commit or rollback is read by the same phase-2 rules as the transaction
//   manager's (a heuristic result is recorded in the log before Forget()).
// Every branch looked at is reported with what was done or why nothing was done. A second pass
// over the same state does nothing (idempotent): committing or rolling back a branch the RM no
// longer knows (XAER_NOTA) counts as done.
//
// Thread safety: one pass at a time per engine (Run() serialises). The ResourceManager sessions
// given to the engine must not be used by anyone else while a pass runs; the engine drives each
// session from its own thread, so RMs are worked on in parallel. Several sessions with the same
// name() form a pool for that RM: it is scanned once, and its commits and rollbacks are spread
// over all of them (recovering thousands of branches is bound by the RM's round trips).

#ifndef XA_RECOVERY_H_
#define XA_RECOVERY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa {

namespace internal {
class RecoveryModule;
}  // namespace internal
namespace three_phase {
class AgentClient;
}  // namespace three_phase

struct RecoveryOptions {
  uint32_t node_id = 0;
  // A prepared branch of ours with no decision is rolled back only once it is this old (by the
  // begin time in its gtrid) or was seen by an earlier pass. Use the transaction timeout.
  std::chrono::milliseconds orphan_min_age{60'000};
  // True for `plan`: decide and report, change nothing (no RM call but the scans, no log write).
  bool dry_run = false;
  // Global Xids of transactions still running in this process; recovery never touches them.
  std::function<bool(const Xid& global)> in_flight;
  // Called after each action, for progress on long runs (done, total).
  std::function<void(size_t done, size_t total)> progress;
  // Where a pass reads the wall clock to age orphans (Env::clock()). nullptr: Env::Default().
  Env* env = nullptr;
  // The participant agents of three-phase commit, for the 3PC recovery module (a transaction
  // manager passes its own client; internal type). nullptr: every open 3PC record is reported as
  // awaiting its agents and none of its branches is touched (xa-recover, which has no agent
  // configuration).
  three_phase::AgentClient* agents = nullptr;
  // How long the 3PC module waits for each agent's answer in a pass.
  std::chrono::milliseconds agent_timeout{2'000};
};

// What recovery did, or would do, to one branch.
enum class RecoveryAction : uint8_t {
  kCommit = 1,         // commit decision in the log, branch prepared: commit it
  kRollback = 2,       // ours, no decision, old enough: presumed abort
  kAlreadyDone = 3,    // decision in the log, branch no longer prepared: nothing to do
  kLeaveAlone = 4,     // see reason: foreign, in flight, too young, log damaged, RM unreachable
  kReportHeuristic = 5,  // a heuristic outcome awaits an operator
};
std::string_view RecoveryActionName(RecoveryAction action) noexcept;

struct BranchReport {
  std::string rm_name;
  Xid branch;               // empty for unparsed entries (see `raw`)
  std::string raw;          // the RM's own rendering for entries that are no Xid of ours
  std::string log_state;    // "commit decision (lsn 12)", "no decision", "heuristic ..."
  std::string rm_state;     // "prepared", "not prepared", "unreachable: ..."
  RecoveryAction action = RecoveryAction::kLeaveAlone;
  std::string reason;
  Status result;            // of the action; OK when nothing was attempted
};

struct RecoveryReport {
  std::vector<BranchReport> branches;
  size_t committed = 0, rolled_back = 0, already_done = 0, failed = 0;
  size_t foreign = 0;            // branches of other TMs or nodes, and unparsable entries
  size_t in_flight = 0;          // ours, still running in this process
  size_t orphans_deferred = 0;   // ours, no decision, not old enough yet or log damaged
  // Ours, three-phase commit, not finished: the participant agents decide these (with the 3PC
  // recovery module), never 2PC's presumed abort.
  size_t awaiting_agents = 0;
  size_t heuristics_open = 0;    // heuristic outcomes awaiting an operator
  size_t end_records_written = 0;
  size_t decisions_still_open = 0;  // need another pass (an RM unreachable, a call failed)
  bool log_damaged = false;         // presumed abort was refused for this pass
  std::vector<std::string> unreachable_rms;
  bool dry_run = false;
  bool log_read_only = false;       // damaged log: end and heuristic records were not written
  // True when nothing of ours is left to do (heuristics awaiting an operator aside).
  bool Converged() const noexcept {
    return decisions_still_open == 0 && failed == 0 && unreachable_rms.empty() &&
           orphans_deferred == 0 && awaiting_agents == 0;
  }
};

class RecoveryEngine {
 public:
  // `log` and every RM must outlive the engine. RMs are matched to the decision log's
  // participants by ResourceManager::name(); they are opened by Run() if needed.
  RecoveryEngine(DecisionLog& log, std::vector<ResourceManager*> rms, RecoveryOptions options);
  // For a log that cannot be opened for appends because it is damaged in the middle: works from
  // the state read up to the damage (DecisionLog::ReadState), commits the decisions found there,
  // never presumes abort, and writes nothing (no end or heuristic records; the report says so).
  RecoveryEngine(LogState damaged_state, std::vector<ResourceManager*> rms,
                 RecoveryOptions options);
  ~RecoveryEngine();
  RecoveryEngine(const RecoveryEngine&) = delete;
  RecoveryEngine& operator=(const RecoveryEngine&) = delete;

  // Replaces the sessions used by the next passes (a manager opens fresh ones for each pass).
  // What earlier passes saw is kept.
  void SetResourceManagers(std::vector<ResourceManager*> rms);

  // One pass. Fails only when it cannot even start (e.g. no RM configured, log failed); the
  // failures of single branches are in the report.
  Result<RecoveryReport> Run();

  // An operator's decision on a stuck branch: writes a heuristic record with `reason` to the
  // log (the audit trail), then commits or rolls back every prepared branch of `global` on the
  // configured RMs, and writes an end record when that succeeded everywhere. `reason` must not be
  // empty.
  enum class Forced : uint8_t { kCommit, kRollback };
  Result<RecoveryReport> Force(const Xid& global, Forced decision, const std::string& reason);

  // An operator's acknowledgement of a heuristic outcome, once what it split is repaired:
  // writes a kHeuristicCleared record with `reason` (the audit trail), so that recovery stops
  // reporting it. XA_INVAL for an empty reason; XAER_NOTA when the log holds no uncleared
  // heuristic for `global`; XA_LOGFAILED for a read-only (damaged) log.
  Status ClearHeuristic(const Xid& global, const std::string& reason);

  const RecoveryOptions& options() const noexcept { return options_; }

 private:
  // Appends a record, or does nothing when the log is read-only (damaged).
  Status AppendRecord(const LogRecord& record);

  DecisionLog* log_;  // nullptr: working from fixed_state_, read-only
  LogState fixed_state_;
  std::vector<ResourceManager*> rms_;
  RecoveryOptions options_;
  std::mutex mu_;
  // One module per protocol (plan and execute; see src/recovery/recovery_module.h). They keep
  // what later passes need, e.g. the orphans an earlier pass saw.
  std::vector<std::unique_ptr<internal::RecoveryModule>> modules_;
};

// A stand-in for a resource manager that cannot be connected to: every call answers `why`, so
// a recovery pass reports it as unreachable (with that error) and leaves its branches for a
// later pass while it resolves what the other RMs hold.
std::unique_ptr<ResourceManager> MakeUnreachableResourceManager(std::string name, Status why);

// Renders a report for people: one line a branch, then the counts, led by the outcome: "plan:"
// (dry run), "done:" (converged) or "not finished:". Names and raw entries are escaped.
std::string FormatRecoveryReport(const RecoveryReport& report);
// The same as a JSON document (for `xa-recover plan --json`): always valid JSON, every text
// escaped, well-formed UTF-8 kept and any other byte as U+FFFD.
std::string RecoveryReportToJson(const RecoveryReport& report);

}  // namespace xa

#endif  // XA_RECOVERY_H_
