#include "src/recovery/three_phase_recovery.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "src/base/logging.h"
#include "src/three_phase/agent_client.h"
#include "src/three_phase/agent_messages.h"
#include "src/three_phase/termination.h"

namespace xa::internal {
namespace {

using three_phase::AgentMessage;
using three_phase::ParticipantState;

constexpr std::string_view kComponent = "recovery";
constexpr std::string_view kNoAgents =
    "three-phase commit: waits for its participant agents (no agent is configured here; the "
    "transaction manager's recovery, which knows them, finishes it)";

std::string StateName(ParticipantState state) {
  return std::string(three_phase::ParticipantStateName(state));
}

std::string LogStateOf(const LogRecord& record) {
  return std::string(record.type == RecordType::kPreCommit ? "3PC pre-commit (lsn "
                                                           : "3PC commit decision (lsn ") +
         std::to_string(record.lsn) + ")";
}

std::string AnswerText(const AgentAnswer& answer) {
  return answer.state ? "its agent answered " + StateName(*answer.state)
                      : "its agent did not answer: " + answer.error.ToString();
}

Clock* ClockOf(const RecoveryOptions& options) {
  return (options.env != nullptr ? options.env : Env::Default())->clock();
}

// What the scan says of one branch.
struct BranchOnRm {
  std::string rm_state;
  bool reachable = false;
  bool prepared = false;
};

BranchOnRm Look(const PassInputs& in, const Participant& p) {
  const ScannedRm* scan = in.Scan(p.rm_name);
  if (scan == nullptr) return {"unknown resource manager", false, false};
  if (!scan->status.ok()) return {"unreachable: " + scan->status.ToString(), false, false};
  bool prepared = scan->prepared.count(p.branch) != 0;
  return {prepared ? "prepared" : "not prepared", true, prepared};
}

// Sends `request` to the agent of `rm_name` and reads the state its reply carries (a StateReply
// or an Ack); anything else is an error.
AgentAnswer Ask(three_phase::AgentClient& agents, const std::string& rm_name,
                AgentMessage request, Clock::SteadyTime deadline) {
  AgentAnswer answer;
  Result<AgentMessage> reply = agents.Call(rm_name, std::move(request), deadline);
  if (!reply.ok()) {
    answer.error = reply.status();
  } else if (const auto* state = std::get_if<three_phase::StateReplyMessage>(&reply->body)) {
    answer.state = state->state;
  } else if (const auto* ack = std::get_if<three_phase::AckMessage>(&reply->body)) {
    answer.state = ack->state;
  } else {
    answer.error = Status(Code::kProto, "the agent of '" + rm_name + "' answered with " +
                                            std::string(three_phase::AgentMessageTypeName(
                                                three_phase::TypeOf(*reply))));
  }
  return answer;
}

// Runs fn(i) for i in [0, n), each on its own thread (agents answer in parallel).
template <typename Fn>
void ForEachInParallel(size_t n, Fn fn) {
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(fn, i);
  if (n > 0) fn(0);
  for (auto& t : threads) t.join();
}

// Plans the end of a decided transaction: `decision` sent to every participant's agent, a
// commit's prepared branches committed directly where the agent does not hold them.
void PlanDecided(RecoveryPlan& plan, const PassInputs& in, const Xid& global,
                 const std::vector<Participant>& participants, Decision decision,
                 const std::string& log_state) {
  PlannedTransaction& transaction = plan.transactions[global];
  transaction.decision = decision;
  transaction.logged_decision = true;
  transaction.heuristic_recorded = in.state->open_heuristics.count(global) != 0;
  const bool commit = decision == Decision::kCommit;
  const std::string message = commit ? "DoCommit" : "Abort";
  for (const Participant& p : participants) {
    const BranchOnRm on_rm = Look(in, p);
    BranchReport branch{p.rm_name, p.branch, "", log_state, on_rm.rm_state,
                        RecoveryAction::kLeaveAlone, "", Status()};
    std::optional<uint32_t> number = ParticipantNumberOfBranch(p.branch);
    if (!number) {
      branch.reason = "not a 3PC branch Xid (no participant number): an operator decides";
      transaction.branches.push_back(plan.AddBranch(std::move(branch)));
      continue;
    }
    if (commit && on_rm.prepared) {
      branch.action = RecoveryAction::kCommit;
      branch.reason = "the log holds a 3PC commit decision: DoCommit to its agent, and a direct "
                      "commit if the agent does not hold the participant";
    } else if (on_rm.reachable && !on_rm.prepared) {
      branch.action = RecoveryAction::kAlreadyDone;
      branch.reason = "branch finished; " + message + " to its agent until it acknowledges";
    } else {
      branch.reason = message + " to its agent" +
                      (on_rm.reachable ? std::string(" (it finishes the branch)")
                                       : ", which finishes the branch (resource manager not "
                                         "reachable from here)");
    }
    size_t index = plan.AddBranch(std::move(branch));
    transaction.branches.push_back(index);
    plan.agent_calls.push_back(PlannedAgentCall{index, global, *number, decision,
                                                /*commit_directly=*/commit && on_rm.prepared,
                                                on_rm.prepared,
                                                /*branch_finished=*/on_rm.reachable &&
                                                    !on_rm.prepared});
  }
}

// Reports every branch of `record` as left alone for `reason`.
void LeaveAlone(RecoveryPlan& plan, const PassInputs& in, const LogRecord& record,
                const std::vector<std::string>& reasons, size_t& counter) {
  for (size_t i = 0; i < record.participants.size(); ++i) {
    const Participant& p = record.participants[i];
    plan.AddBranch(BranchReport{p.rm_name, p.branch, "", LogStateOf(record), Look(in, p).rm_state,
                                RecoveryAction::kLeaveAlone,
                                reasons.size() == 1 ? reasons[0] : reasons[i], Status()});
    ++counter;
  }
}

// Appends a record that must be durable before any agent is told anything of its transaction
// (an adopted decision, a heuristic-mixed outcome). A read-only (damaged) log refuses it, where
// AppendRecoveryRecord would skip it: the caller then tells the agents nothing.
Status AppendBeforeTellingTheAgents(DecisionLog* log, const LogRecord& record) {
  if (log == nullptr) return Status(Code::kLogFailed, "the decision log is read-only (damaged)");
  return AppendRecoveryRecord(log, record);
}

// The record of a heuristic-mixed outcome the coordinator learned from its agents: `branches`
// are the participants concerned, `reason` says who holds what.
LogRecord SplitRecord(const Xid& global, std::vector<Participant> branches, std::string reason) {
  LogRecord record;
  record.type = RecordType::kHeuristic;
  record.xid = global;
  record.protocol = Protocol::kThreePhase;
  record.participants = std::move(branches);
  record.outcome = Outcome::kHeuristicMixed;
  record.reason = std::move(reason);
  return record;
}

// A pre-commit whose agents hold both COMMIT and ABORT: a partition split the outcome (each
// side's termination saw only itself). A decided participant never changes, so nothing here
// decides. The split is recorded once for an operator (kHeuristic, heuristic-mixed, naming every
// participant and what its agent holds), and each decided agent is told its own outcome: that
// is what lets it forget the participant (an agent keeps a COMMIT until the coordinator is known
// to hold it). Nothing is committed directly: the coordinator holds no commit decision, and the
// agents finish their own branches. The record ends as any other, once every agent acknowledged
// and every branch whose agent committed is finished; an agent still undecided (a third side
// of the partition) is asked again by the next pass.
void PlanSplit(RecoveryPlan& plan, const PassInputs& in, const LogRecord& record,
               const std::vector<AgentAnswer>& answers) {
  RecoveryReport& report = plan.report;
  const Xid& global = record.xid;
  PlannedTransaction& transaction = plan.transactions[global];
  transaction.decision = Decision::kRollback;
  transaction.logged_decision = true;
  transaction.outcome_split = true;
  transaction.heuristic_recorded = in.state->open_heuristics.count(global) != 0;
  std::string holdings;
  for (size_t i = 0; i < record.participants.size(); ++i) {
    holdings += (i == 0 ? "" : ", ") + record.participants[i].rm_name + ": " +
                (answers[i].state ? StateName(*answers[i].state) : std::string("no answer"));
  }
  const std::string split = "a partition split the outcome, the agents hold both COMMIT and "
                            "ABORT (" + holdings + "): heuristic-mixed, for an operator";
  if (!transaction.heuristic_recorded) {
    plan.heuristics_to_log.push_back(SplitRecord(global, record.participants, split));
    transaction.heuristic_recorded = true;
    ++report.heuristics_open;
  }
  for (size_t i = 0; i < record.participants.size(); ++i) {
    const Participant& p = record.participants[i];
    const BranchOnRm on_rm = Look(in, p);
    BranchReport branch{p.rm_name, p.branch, "", LogStateOf(record), on_rm.rm_state,
                        RecoveryAction::kReportHeuristic, split, Status()};
    std::optional<uint32_t> number = ParticipantNumberOfBranch(p.branch);
    const std::optional<ParticipantState> own = answers[i].state;
    if (!number || !own || !three_phase::IsDecided(*own)) {
      branch.reason += "; " + AnswerText(answers[i]) + ": asked again by the next pass";
      transaction.branches.push_back(plan.AddBranch(std::move(branch)));
      ++report.awaiting_agents;
      continue;
    }
    const Decision decision =
        *own == ParticipantState::kCommit ? Decision::kCommit : Decision::kRollback;
    branch.reason += "; " + AnswerText(answers[i]) + ": told its own outcome";
    size_t index = plan.AddBranch(std::move(branch));
    transaction.branches.push_back(index);
    plan.agent_calls.push_back(PlannedAgentCall{index, global, *number, decision,
                                                /*commit_directly=*/false, on_rm.prepared,
                                                /*branch_finished=*/on_rm.reachable &&
                                                    !on_rm.prepared});
  }
}

}  // namespace

AgentAnswer TellAgentTheDecision(three_phase::AgentClient& agents, const std::string& rm_name,
                                 const Xid& global, uint32_t participant, Decision decision,
                                 bool branch_done, Clock::SteadyTime deadline) {
  AgentMessage request;
  if (decision == Decision::kCommit) {
    request.body = three_phase::DoCommitMessage{global, participant, branch_done,
                                                three_phase::kCoordinatorSender};
  } else {
    request.body = three_phase::AbortMessage{global, participant, branch_done,
                                             three_phase::kCoordinatorSender};
  }
  return Ask(agents, rm_name, std::move(request), deadline);
}

bool AcknowledgesDecision(const AgentAnswer& answer, Decision decision, bool branch_finished) {
  if (!answer.state) return false;
  const ParticipantState decided =
      decision == Decision::kCommit ? ParticipantState::kCommit : ParticipantState::kAbort;
  return *answer.state == decided ||
         (*answer.state == ParticipantState::kInit && branch_finished);
}

std::optional<uint32_t> ParticipantNumberOfBranch(const Xid& branch) {
  const std::string& bqual = branch.bqual();
  if (bqual.size() != 3) return std::nullopt;
  uint32_t number = (static_cast<uint32_t>(static_cast<uint8_t>(bqual[1])) << 8) |
                    static_cast<uint8_t>(bqual[2]);
  if (branch.Global().WithBranch(static_cast<uint16_t>(number)) != branch) return std::nullopt;
  return number;
}

void ThreePhaseRecovery::Gather(PassInputs& in, const PassContext& /*context*/) {
  three_phase::AgentClient* agents = in.options->agents;
  if (agents == nullptr) return;
  // Not a structured binding: clang (the fuzz build) refuses to capture one in a lambda.
  for (const auto& open : in.state->open_decisions) {
    const Xid& global = open.first;
    const LogRecord& record = open.second;
    if (record.protocol != Protocol::kThreePhase || record.type != RecordType::kPreCommit ||
        in.InFlight(global)) {
      continue;
    }
    std::vector<AgentAnswer> answers(record.participants.size());
    const Clock::SteadyTime deadline =
        ClockOf(*in.options)->DeadlineAfter(in.options->agent_timeout);
    ForEachInParallel(record.participants.size(), [&](size_t i) {
      const Participant& p = record.participants[i];
      std::optional<uint32_t> number = ParticipantNumberOfBranch(p.branch);
      if (!number) {
        answers[i].error = Status(Code::kProto, "not a 3PC branch Xid: " + p.branch.ToString());
        return;
      }
      three_phase::StateQueryMessage query;
      query.xid = global;
      query.participant = *number;
      query.asker = three_phase::kCoordinatorAsker;
      query.backup_round = false;  // the coordinator asks; it never runs a termination round
      AgentMessage request;
      request.body = query;
      answers[i] = Ask(*agents, p.rm_name, std::move(request), deadline);
    });
    in.agent_states[global] = std::move(answers);
  }
}

RecoveryPlan ThreePhaseRecovery::Plan(const PassInputs& in, const std::set<Xid>& claimed) {
  RecoveryPlan plan;
  RecoveryReport& report = plan.report;
  const bool have_agents = in.options->agents != nullptr;
  for (const auto& [global, record] : in.state->open_decisions) {
    if (record.protocol != Protocol::kThreePhase || claimed.count(global) != 0) continue;
    plan.claimed.insert(global);
    if (!have_agents) {
      LeaveAlone(plan, in, record, {std::string(kNoAgents)}, report.awaiting_agents);
      continue;
    }
    if (in.InFlight(global)) {
      LeaveAlone(plan, in, record, {"in flight: its transaction manager is still completing it"},
                 report.in_flight);
      continue;
    }
    if (record.type == RecordType::kCommitDecision) {
      PlanDecided(plan, in, global, record.participants, Decision::kCommit, LogStateOf(record));
      continue;
    }
    // A pre-commit without a decision: the agents' states decide, never a guess.
    static const std::vector<AgentAnswer> kNotAsked;
    auto found = in.agent_states.find(global);
    const std::vector<AgentAnswer>& answers =
        found != in.agent_states.end() ? found->second : kNotAsked;
    bool committed = false;
    bool aborted = false;
    std::vector<std::string> reasons;
    for (size_t i = 0; i < record.participants.size(); ++i) {
      AgentAnswer answer;
      if (i < answers.size()) {
        answer = answers[i];
      } else {
        answer.error = Status(Code::kTimeout, "not asked in this pass");
      }
      committed |= answer.state == ParticipantState::kCommit;
      aborted |= answer.state == ParticipantState::kAbort;
      reasons.push_back(AnswerText(answer));
    }
    if (committed && aborted) {
      PlanSplit(plan, in, record, answers);
    } else if (committed) {
      LogRecord decision;
      decision.type = RecordType::kCommitDecision;
      decision.xid = global;
      decision.protocol = Protocol::kThreePhase;
      decision.participants = record.participants;
      plan.decisions_to_log.push_back(decision);
      PlanDecided(plan, in, global, record.participants, Decision::kCommit,
                  LogStateOf(record) + ", an agent decided COMMIT: adopted");
    } else if (aborted) {
      PlanDecided(plan, in, global, record.participants, Decision::kRollback,
                  LogStateOf(record) + ", an agent decided ABORT: adopted");
    } else {
      for (std::string& reason : reasons) {
        reason = "undecided: the agents terminate on their own, asked again by the next pass; " +
                 reason;
      }
      LeaveAlone(plan, in, record, reasons, report.awaiting_agents);
    }
  }
  return plan;
}

void ThreePhaseRecovery::Execute(RecoveryPlan& plan, const PassContext& context) {
  RecoveryReport& report = plan.report;
  const RecoveryOptions& options = *context.options;

  // Decisions adopted from the agents, durable before any DoCommit of theirs.
  std::set<Xid> not_logged;
  for (const LogRecord& decision : plan.decisions_to_log) {
    Status appended = AppendBeforeTellingTheAgents(context.log, decision);
    if (!appended.ok()) {
      not_logged.insert(decision.xid);
      ++report.failed;
      XA_LOG_XID(kError, kComponent, decision.xid)
          << "cannot record the commit decision adopted from the agents, nothing sent: "
          << appended.ToString();
    } else {
      XA_LOG_XID(kInfo, kComponent, decision.xid)
          << "an agent decided COMMIT: the decision is recorded";
    }
  }

  // Splits a partition made, recorded before any agent is told its own outcome: told, the
  // agent may forget it, and only this record would still say that the outcome split.
  for (const LogRecord& heuristic : plan.heuristics_to_log) {
    Status appended = AppendBeforeTellingTheAgents(context.log, heuristic);
    if (!appended.ok()) {
      not_logged.insert(heuristic.xid);
      ++report.failed;
      XA_LOG_XID(kError, kComponent, heuristic.xid)
          << "cannot record the heuristic-mixed outcome, nothing sent: " << appended.ToString();
    } else {
      XA_LOG_XID(kError, kComponent, heuristic.xid)
          << "heuristic-mixed outcome recorded for an operator: " << heuristic.reason;
    }
  }

  // The agents' messages, in parallel.
  std::vector<AgentAnswer> answers(plan.agent_calls.size());
  const Clock::SteadyTime deadline = ClockOf(options)->DeadlineAfter(options.agent_timeout);
  ForEachInParallel(plan.agent_calls.size(), [&](size_t k) {
    const PlannedAgentCall& call = plan.agent_calls[k];
    if (not_logged.count(call.global) != 0) {
      answers[k].error = Status(Code::kLogFailed, "the record it waits for is not durable");
      return;
    }
    if (options.agents == nullptr) {  // planned only with agents
      answers[k].error = Status(Code::kConfig, "no 3PC agent configured");
      return;
    }
    answers[k] = TellAgentTheDecision(*options.agents, report.branches[call.report_index].rm_name,
                                      call.global, call.participant, call.decision,
                                      /*branch_done=*/false, deadline);
  });

  // Direct commits where the agent does not hold the participant, then who acknowledged.
  std::map<Xid, bool> all_acknowledged;
  for (size_t k = 0; k < plan.agent_calls.size(); ++k) {
    const PlannedAgentCall& call = plan.agent_calls[k];
    const AgentAnswer& answer = answers[k];
    BranchReport& branch = report.branches[call.report_index];
    BranchState& state = plan.states[call.report_index];
    const bool commit = call.decision == Decision::kCommit;
    const ParticipantState decided = commit ? ParticipantState::kCommit : ParticipantState::kAbort;
    bool finished_here = false;
    if (not_logged.count(call.global) == 0 && call.commit_directly &&
        (!answer.state || *answer.state == ParticipantState::kInit)) {
      ResourceManager* rm = nullptr;
      for (ResourceManager* session : context.sessions) {
        if (session->name() == branch.rm_name) {
          rm = session;
          break;
        }
      }
      if (rm != nullptr) {
        rm->Open().IgnoreError();
        Status s = rm->Commit(branch.branch, CommitMode::kTwoPhase);
        // The decision is durable and the scan found the branch prepared.
        state.history = {/*maybe_applied=*/true, /*maybe_prepared=*/true};
        BranchReading reading = state.Apply(FinishCallFor(Decision::kCommit), s);
        branch.result = s;
        if (reading.end == BranchEnd::kCommitted) {
          finished_here = true;
          if (s.code() == Code::kNoTa) {
            branch.action = RecoveryAction::kAlreadyDone;
            ++report.already_done;
          } else {
            ++report.committed;
          }
          XA_LOG_XID(kInfo, kComponent, branch.branch)
              << "committed directly on " << branch.rm_name << " (" << AnswerText(answer) << ")";
        } else {
          ++report.failed;
          XA_LOG_XID(kWarning, kComponent, branch.branch)
              << "direct commit on " << branch.rm_name << ": " << s.ToString();
        }
        if (reading.forget) rm->Forget(branch.branch).IgnoreError();
      }
    }
    const bool branch_finished = finished_here || call.branch_finished;
    const bool acknowledged = AcknowledgesDecision(answer, call.decision, branch_finished);
    PlannedTransaction& transaction = plan.transactions[call.global];
    // The agent holds the other outcome (it decided in a partition): heuristic-mixed. Recorded
    // once for an operator; then the agent's answer settles its part as an acknowledgement does,
    // since a decided participant never changes.
    const bool holds_other = !acknowledged && answer.state &&
                             three_phase::IsDecided(*answer.state) && *answer.state != decided;
    if (holds_other) {
      XA_LOG_XID(kError, kComponent, branch.branch)
          << "the agent of " << branch.rm_name << " holds " << StateName(*answer.state)
          << " where the coordinator decided " << StateName(decided)
          << ": heuristic-mixed outcome";
      if (!transaction.heuristic_recorded) {
        Status appended = AppendBeforeTellingTheAgents(
            context.log, SplitRecord(call.global, {Participant{branch.rm_name, branch.branch}},
                                     "the agent of " + branch.rm_name + " holds " +
                                         StateName(*answer.state) + " where the coordinator "
                                         "decided " + StateName(decided) +
                                         " (it decided in a partition): heuristic-mixed"));
        transaction.heuristic_recorded = appended.ok();
        if (transaction.heuristic_recorded) ++report.heuristics_open;
      }
      if (!transaction.heuristic_recorded) ++report.failed;
    }
    // The record may end (as far as this branch goes) only once the branch is finished too,
    // when its agent holds COMMIT: an ended record no longer names its branches, and the
    // two-phase module presumes abort for a prepared XAM3 branch that no record names. An agent
    // that holds COMMIT but has yet to commit its branch (its database was slow or down) would
    // otherwise see that branch rolled back under it while the others committed: a transfer in
    // one database only (found by the coordinator-and-agent kill soak). An ABORT may end at
    // once: presumed abort of what is left prepared agrees with it.
    const bool settled = acknowledged || (holds_other && transaction.heuristic_recorded);
    const bool agent_commits = holds_other ? *answer.state == ParticipantState::kCommit : commit;
    const bool lets_record_end = settled && (branch_finished || !agent_commits);
    branch.reason += "; " + AnswerText(answer) +
                     (lets_record_end ? (holds_other ? " (the other outcome: heuristic-mixed)"
                                                     : " (acknowledged)")
                      : settled ? " (settled, its branch not yet committed: the decision "
                                  "stays open until it is)"
                                : " (not acknowledged: the decision stays open for the next "
                                  "pass)");
    if (holds_other) branch.action = RecoveryAction::kReportHeuristic;
    if (!answer.state && branch.result.ok()) branch.result = answer.error;
    state.end = lets_record_end ? (agent_commits ? BranchEnd::kCommitted : BranchEnd::kRolledBack)
                                : BranchEnd::kPending;
    auto [it, added] = all_acknowledged.emplace(call.global, lets_record_end);
    if (!added) it->second = it->second && lets_record_end;
  }

  for (const auto& [global, transaction] : plan.transactions) {
    bool finished = all_acknowledged.count(global) != 0 && all_acknowledged[global];
    for (size_t i : transaction.branches) finished = finished && IsFinished(plan.states[i].end);
    if (!finished || context.log == nullptr) {
      ++report.decisions_still_open;
      continue;
    }
    if (!EndFinishedDecision(*context.log, global, report)) continue;
    XA_LOG_XID(kInfo, kComponent, global)
        << (transaction.outcome_split
                ? std::string("every agent acknowledged its own outcome of the split")
                : "every agent acknowledged the " + std::string(DecisionName(transaction.decision)))
        << ": end record written"
        << (transaction.heuristic_recorded ? " (its heuristic stays open for an operator)" : "");
  }
}

}  // namespace xa::internal
