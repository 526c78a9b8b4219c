// RecoveryModule: the recovery of one commit protocol, as a pure plan and an execute step
// (internal).
//
// A recovery pass (RecoveryEngine::Run) scans every resource manager once, then reads the log's
// state, then asks each registered module, in order, for its plan and executes the plans:
//
//   inputs (log state x recover scans x agents' answers)  --Plan-->  RecoveryPlan
//          --Execute-->  RecoveryReport
//
// What a plan needs from outside parties other than the resource managers (the 3PC module asks
// the participant agents for their states) is gathered by Gather(), before any module plans,
// like the scans.
//
// Plan() is pure: it reads the inputs and the module's memory of earlier passes and makes no
// call to a resource manager or the log, so every rule of a protocol is tested without one, and
// `xa-recover plan` shows exactly what `resolve` would do. Execute() makes the planned calls and
// reads every result through the phase-2 rules (src/completion/branch_outcome.h).
//
// Ownership of records and branches. A module owns the log record types of its protocol's band
// (recovery-log/log_format.h) and the prepared branches those records name. It claims every
// global Xid it plans for (RecoveryPlan::claimed), and a later module leaves claimed
// transactions alone. The two-phase module comes last: it owns the commit decisions of 2PC and
// the branches of our node that no record claims, which presumed abort rolls back.
//
// Thread safety: a module is used by one pass at a time (the engine serialises passes).

#ifndef XA_SRC_RECOVERY_RECOVERY_MODULE_H_
#define XA_SRC_RECOVERY_RECOVERY_MODULE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "src/completion/branch_outcome.h"
#include "src/completion/branch_state.h"
#include "src/three_phase/participant_state.h"
#include "xa/decision_log.h"
#include "xa/recovery.h"
#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/xid.h"

namespace xa::internal {

// One resource manager as the pass's scan found it.
struct ScannedRm {
  std::string name;
  Status status;             // of Open + Recover; not OK: unreachable
  std::set<Xid> prepared;    // well-formed Xids, ours and foreign alike
  std::vector<UnparsedBranch> unparsed;
};

// One participant agent's answer to a question of this pass (3PC): its state, or why there is
// none (unreachable, timed out).
struct AgentAnswer {
  std::optional<three_phase::ParticipantState> state;
  Status error;  // when state is nullopt
};

// What every module's plan reads.
struct PassInputs {
  const LogState* state = nullptr;  // read after the scans
  std::vector<ScannedRm> scans;     // one per distinct RM name, in configuration order
  const RecoveryOptions* options = nullptr;
  int64_t now_micros = 0;           // wall clock, as in the Xids' begin times
  // The agents' states of open 3PC pre-commit records, by global Xid, one per participant of the
  // record in its order (filled by the 3PC module's Gather; empty without agents).
  std::map<Xid, std::vector<AgentAnswer>> agent_states;
  // Marker commit: the committed marker rows of the prepared marker-commit branches of our node
  // that no decision record covers, read by the marker module's Gather (without writing), and
  // why they could not be read when marker_read is not OK.
  std::map<Xid, MarkerOutcome> marker_rows;
  Status marker_read;

  const ScannedRm* Scan(const std::string& rm_name) const;
  bool InFlight(const Xid& global) const;
};

// One call that a plan makes.
struct PlannedCall {
  size_t report_index;  // into RecoveryPlan::report.branches (and states)
  std::string rm_name;
  Xid global;
  Decision decision;
};

// A transaction the plan acts on or waits for, concluded (src/completion/conclude.h) once its
// calls are made.
struct PlannedTransaction {
  Decision decision = Decision::kCommit;
  bool logged_decision = false;  // a decision record without an end record: end it when finished
  std::vector<size_t> branches;  // indices into RecoveryPlan::report.branches (and states)
  // 3PC: the agents hold both outcomes (a partition split it), so each is told its own.
  bool outcome_split = false;
  // Marker commit: no marker row was found, so Execute settles the marker first (writing 'A'
  // unless the marker branch commits first) and commits instead of rolling back if it did.
  bool settle_marker_first = false;
  // A kHeuristic record of it is open in the log, or appended by this plan.
  bool heuristic_recorded = false;
};

// A message to a participant agent that a plan sends (3PC): DoCommit or Abort. For a DoCommit,
// `commit_directly` says that the scan found the branch prepared: when the agent does not hold
// the participant (it answers INIT) or cannot be reached, the module commits the branch itself
// (the decision is durable, so committing is always right).
struct PlannedAgentCall {
  size_t report_index;  // the participant's branch in RecoveryPlan::report.branches
  Xid global;
  uint32_t participant = 0;
  Decision decision = Decision::kCommit;
  bool commit_directly = false;
  bool branch_prepared = false;  // as the scan found it; false also for an unreachable RM
  bool branch_finished = false;  // the scan found it no longer prepared on a reachable RM
};

struct RecoveryPlan {
  RecoveryReport report;           // every branch looked at, with the action and reason
  // The finishers' branch state (src/completion/branch_state.h) of each branch of
  // report.branches, at the same index: what Execute's calls and the conclude step work with.
  // Its end is kPending until its call succeeds (or for branches the plan cannot finish in this
  // pass), kCommitted for one already done. Two types because BranchReport is the public report
  // an operator reads (what the log and the RM said, the action and its reason) and BranchState
  // the internal state every finisher shares; AddBranch makes the state from the report, and
  // Execute records each call's result in both.
  std::vector<BranchState> states;
  std::vector<PlannedCall> calls;  // the commits and rollbacks to make
  std::map<Xid, PlannedTransaction> transactions;
  std::set<Xid> claimed;           // global Xids this plan took charge of
  // Three-phase commit: decisions learned from the agents, and the heuristic-mixed records of
  // outcomes a partition split, appended durably before any call of their transaction; and the
  // messages to the agents.
  std::vector<LogRecord> decisions_to_log;
  std::vector<LogRecord> heuristics_to_log;
  std::vector<PlannedAgentCall> agent_calls;

  // Adds a branch to the report (its end is pending) and returns its index.
  size_t AddBranch(BranchReport branch);
  // Logged decisions not finished by this plan (all, before Execute).
  size_t OpenDecisions() const;
};

// What Execute() works with.
struct PassContext {
  std::vector<ResourceManager*> sessions;  // every configured session; same name = one RM's pool
  DecisionLog* log = nullptr;              // nullptr: the log is read-only (damaged)
  const RecoveryOptions* options = nullptr;
};

class RecoveryModule {
 public:
  virtual ~RecoveryModule() = default;
  virtual std::string_view name() const noexcept = 0;

  // Asks the parties other than the resource managers what the plan needs (before any module
  // plans; also for a dry run, so questions only, never a decision), into `inputs`.
  virtual void Gather(PassInputs& /*inputs*/, const PassContext& /*context*/) {}

  // Decides what to do with the transactions and branches this module owns that no earlier
  // module claimed (`claimed`), and remembers what a later pass needs (e.g. orphans seen once).
  virtual RecoveryPlan Plan(const PassInputs& inputs, const std::set<Xid>& claimed) = 0;

  // Makes the plan's calls; updates its report with each result, and writes the records the
  // results call for (heuristics, end records).
  virtual void Execute(RecoveryPlan& plan, const PassContext& context) = 0;
};

// When `global` has an open heuristic record in `state`, says so in `branch` (its log state, and
// a leave-alone reason: an operator decides it) and returns true. Deciding such a branch by a
// protocol's rule (presumed abort, a marker) could undo a decision behind the operator's back;
// the one rule of every module that decides branches without a decision record.
bool LeftForTheOperator(const LogState& state, const Xid& global, BranchReport& branch);

// Adds `from` (one module's report) to `into` (the pass's report).
void MergeReport(RecoveryReport& into, RecoveryReport&& from);

// Appends a record that recovery writes (a heuristic outcome, an end record); does nothing when
// `log` is nullptr (read-only: damaged).
Status AppendRecoveryRecord(DecisionLog* log, const LogRecord& record);

// An operator's acknowledgement of a heuristic outcome, once what it split is repaired: appends
// kHeuristicCleared for the open heuristic of `xid` (as given, or its global Xid), with `reason`
// as the audit trail; the transaction's decision record, if still open, stays open. XA_INVAL
// for an empty reason; XAER_NOTA when the log holds no uncleared heuristic for it. One rule for
// the manager's ClearHeuristic and xa-recover's clear-heuristic.
Status ClearOpenHeuristic(DecisionLog& log, const Xid& xid, std::string reason);

// The last step of every module's Execute for a logged decision it finished (2PC: every branch
// concluded; 3PC: besides, every agent acknowledged): passes the crash point
// kRecoveryBeforeEndRecord, appends the end record and counts it in `report`
// (end_records_written; on failure decisions_still_open and failed, and an error line: the next
// pass finishes it again). True when the record was appended. `log` is the writable log.
bool EndFinishedDecision(DecisionLog& log, const Xid& global, RecoveryReport& report);

}  // namespace xa::internal

#endif  // XA_SRC_RECOVERY_RECOVERY_MODULE_H_
