#include "src/tm/three_phase_coordinator.h"

#include <atomic>
#include <functional>
#include <string>

#include "src/base/logging.h"
#include "src/recovery/three_phase_recovery.h"
#include "src/testing/crash_points.h"
#include "src/testing/sync_points.h"
#include "src/three_phase/termination.h"
#include "src/tm/background_completer.h"

namespace xa::internal {
namespace {

using three_phase::AckMessage;
using three_phase::AgentMessage;
using three_phase::CanCommitMessage;
using three_phase::ParticipantState;
using three_phase::PreCommitMessage;
using three_phase::VoteMessage;

std::string On(const BranchContext& b) { return "branch on '" + b.rm_name + "'"; }

// MariaDB (and MySQL) keep a prepared branch bound to the session that prepared it while that
// session lives, so an agent that finishes the branch itself must end that session first (the
// fence). PostgreSQL detaches a branch at PREPARE TRANSACTION: nothing to fence.
bool PreparedBranchStaysWithSession(const ServerInfo& server) {
  return server.product == "MariaDB" || server.product == "MySQL";
}

std::string_view StateName(ParticipantState state) { return three_phase::ParticipantStateName(state); }

// What branch i's agent is told with `decision`: branch_done (so finished) when the branch is
// finished that way already, by the coordinator's own phase 2, or, for a read-only branch, by its
// vote, which finishes it for either decision: the agent then neither fences the application's
// session nor finishes the branch again.
AgentNotice NoticeOf(const TxnContext& txn, size_t i, Decision decision) {
  const BranchContext& b = txn.branches[i];
  const bool done = b.vote == Vote::kReadOnly ||
                    b.end == (decision == Decision::kCommit ? BranchEnd::kCommitted
                                                            : BranchEnd::kRolledBack);
  return AgentNotice{b.rm_name, b.xid, static_cast<uint32_t>(i), done, done};
}

}  // namespace

std::vector<Participant> ThreePhaseCoordinator::Participants(const TxnContext& txn) const {
  std::vector<Participant> participants;
  participants.reserve(txn.branches.size());
  for (const BranchContext& b : txn.branches) participants.push_back(Participant{b.rm_name, b.xid});
  return participants;
}

Result<uint64_t> ThreePhaseCoordinator::FenceOf(BranchContext& b) const {
  if (!PreparedBranchStaysWithSession(b.rm->server_info())) return uint64_t{0};
  return b.rm->SessionId();
}

Outcome ThreePhaseCoordinator::Commit(TxnContext& txn) {
  std::vector<BranchContext>& branches = txn.branches;
  // With one branch there is nobody to agree with: one phase, as in 2PC.
  if (branches.size() <= 1) return TwoPhaseCoordinator::Commit(txn);

  bool ask_agents = true;
  Status vetoed = CanCommit(txn, ask_agents);
  if (!vetoed.ok()) {
    XA_LOG_XID(kInfo, "tm", txn.xid) << "rolling back: " << vetoed.ToString();
    return Rollback(txn, vetoed);
  }
  std::vector<size_t> committers;
  for (size_t i = 0; i < branches.size(); ++i) {
    if (branches[i].vote == Vote::kCommit) committers.push_back(i);
  }
  if (!ask_agents) {
    // Every other branch is read-only, so finished, and no agent was asked: the fate of the one
    // prepared branch is the transaction's (see two_phase_coordinator.h).
    if (committers.empty()) {
      txn.last_status = Status::Ok();
      return Outcome::kCommitted;
    }
    return PhaseTwo(txn, committers, /*decision_logged=*/false);
  }
  if (committers.empty()) {
    // Every branch read-only, each finished by its vote, but the agents (asked beside the
    // prepares) are WAIT: they are released with Abort, which for a branch that wrote nothing is
    // the same outcome as a commit, and the kPreCommit record ends with nothing to decide.
    std::vector<size_t> everyone(branches.size());
    for (size_t i = 0; i < branches.size(); ++i) everyone[i] = i;
    TellAgents(txn, Decision::kRollback, everyone);
    txn.handed_off = true;
    services_->completer->SubmitEnd(txn.xid, Protocol::kThreePhase);
    txn.last_status = Status::Ok();
    return Outcome::kCommitted;
  }

  // PreCommit.
  XA_CRASH_POINT(kAfterPreCommitRecord);
  XA_TEST_SYNC_POINT(kThreePhaseBeforePreCommit);
  Status why_undecided;
  switch (PreCommitAll(txn, why_undecided)) {
    case PreCommitVerdict::kAllPre:
      XA_CRASH_POINT(kAfterAllPreCommitted);
      return DoCommit(txn);
    case PreCommitVerdict::kCommitted:
      return DoCommit(txn);
    case PreCommitVerdict::kAborted:
      return Rollback(txn, Status(Code::kRbOther,
                                  "3PC: an agent's termination round aborted the transaction "
                                  "before every agent acknowledged PreCommit"));
    case PreCommitVerdict::kUndecided:
      break;
  }
  // Not every agent acknowledged PRE: deciding now, either way, could contradict a termination
  // round that is already running. The agents decide. Nothing of the transaction runs in this
  // process any more, so it leaves the in-flight set: the 3PC recovery module (the manager's
  // periodic passes, or the next Open) learns the outcome from the agents and ends the record.
  txn.last_status = Status(
      Code::kTimeout,
      why_undecided.ToString() +
          "; the outcome is left to the agents' termination protocol (never guessed): it is "
          "neither committed nor rolled back yet; xa-recover and the agents' logs show it");
  XA_LOG_XID(kWarning, "tm", txn.xid) << txn.last_status.message();
  return Outcome::kUnknown;
}

Status ThreePhaseCoordinator::CanCommit(TxnContext& txn, bool& ask_agents) {
  std::vector<BranchContext>& branches = txn.branches;
  const size_t n = branches.size();
  const bool during_prepare = three_phase_options_->ask_agents_during_prepare;
  Clock::SteadyTime phase1_start = services_->clock->SteadyNow();
  services_->in_flight->MarkPrepareStarted(txn.xid, phase1_start);

  // The fences are read here, on the caller's thread: the branch's session is not to be used
  // from two threads, and with the agents asked during the prepares it is busy preparing.
  std::vector<uint64_t> fences(n, 0);
  auto read_fences = [&]() -> Status {
    for (size_t i = 0; i < n; ++i) {
      Result<uint64_t> fence = FenceOf(branches[i]);
      if (!fence.ok()) {
        return fence.status().WithContext("CanCommit, " + On(branches[i]) +
                                          ", reading the session id to fence");
      }
      fences[i] = *fence;
    }
    return Status::Ok();
  };
  // A rollback vote (or no vote) of a database, or Ok.
  auto databases_veto = [&]() -> Status {
    for (const BranchContext& b : branches) {
      if (b.vote != Vote::kCommit && b.vote != Vote::kReadOnly) {
        return b.failure.WithContext("CanCommit, " + On(b));
      }
    }
    return Status::Ok();
  };

  LogRecord pre_commit;
  pre_commit.type = RecordType::kPreCommit;
  pre_commit.xid = txn.xid;
  pre_commit.protocol = Protocol::kThreePhase;
  pre_commit.participants = Participants(txn);
  // Beside the agents' votes, on the caller's thread, the pre-commit record is made durable. It
  // only has to be durable before the first PreCommit is sent (a PRE agent must never meet a
  // restarted coordinator with no record, whose presumed abort would then roll back a branch
  // the agents commit). Written before the votes are in, it says no more than "PreCommit may
  // have been sent", which the recovery module reads by asking the agents: the ones that voted
  // are WAIT (termination aborts them), the ones never asked answer ABORT (rule d); so a vote of
  // no, or a crash now, ends as an abort either way. Overlapping the two takes one log sync off
  // every commit's path.
  Status pre_commit_logged = Status(Code::kInternal, "the pre-commit record was not appended");
  auto append_pre_commit = [&] {
    pre_commit_logged = services_->log->Append(pre_commit).status();
    if (pre_commit_logged.ok()) XA_CRASH_POINT(kPreCommitRecordDurable);
  };
  std::vector<Status> agent_votes(n);

  if (during_prepare) {
    if (Status fenced = read_fences(); !fenced.ok()) return fenced;
    // From now on an agent may hold WAIT: it must hear the outcome. Set before the tasks, which
    // must not write the branch's context beside its prepare.
    for (BranchContext& b : branches) b.agent_asked = true;
    // The pool's threads prepare; the caller sends every CanCommit (the read-only vote is not
    // known yet: the agent treats the branch as a writer, which costs at most a rollback or
    // commit that finds it finished), appends the pre-commit record while the agents record
    // WAIT, then reads their votes.
    services_->executor->RunAll(
        n + 1,
        [&](size_t k) {
          if (k < n) {
            PrepareBranch(txn, branches[k]);
          } else {
            std::vector<bool> read_only(n, false);
            agent_votes = AgentVotes(txn, fences, read_only, append_pre_commit);
          }
        },
        /*caller_first=*/n);
    services_->metrics->prepare.Record(services_->clock->SteadyNow() - phase1_start);
    txn.pre_commit_logged = pre_commit_logged.ok();
    if (Status veto = databases_veto(); !veto.ok()) return veto;
    XA_CRASH_POINT(kAfterAllPrepared);  // every branch prepared, every agent asked
  } else {
    services_->executor->RunAll(n, [&](size_t i) { PrepareBranch(txn, branches[i]); });
    if (Status veto = databases_veto(); !veto.ok()) return veto;
    size_t writers = 0;
    for (const BranchContext& b : branches) writers += b.vote == Vote::kCommit ? 1 : 0;
    if (writers <= 1) {
      services_->metrics->prepare.Record(services_->clock->SteadyNow() - phase1_start);
      ask_agents = false;
      return Status::Ok();
    }
    XA_CRASH_POINT(kAfterAllPrepared);  // every branch prepared, no agent asked yet
    if (Status fenced = read_fences(); !fenced.ok()) return fenced;
    for (BranchContext& b : branches) b.agent_asked = true;
    std::vector<bool> read_only(n, false);
    for (size_t i = 0; i < n; ++i) read_only[i] = branches[i].vote == Vote::kReadOnly;
    agent_votes = AgentVotes(txn, fences, read_only, append_pre_commit);
    services_->metrics->prepare.Record(services_->clock->SteadyNow() - phase1_start);
    txn.pre_commit_logged = pre_commit_logged.ok();
  }

  for (size_t i = 0; i < n; ++i) {
    if (!agent_votes[i].ok()) return agent_votes[i].WithContext("CanCommit, " + On(branches[i]));
  }
  if (!pre_commit_logged.ok()) {
    MetricsRegistry::Add(services_->metrics->decision_write_failures);
    XA_LOG_XID(kError, "tm", txn.xid) << "pre-commit record could not be made durable: "
                                      << pre_commit_logged.ToString();
    return pre_commit_logged.WithContext(
        "the pre-commit record could not be made durable, so the transaction was rolled back");
  }
  return Status::Ok();
}

std::vector<Status> ThreePhaseCoordinator::AgentVotes(const TxnContext& txn,
                                                     const std::vector<uint64_t>& fences,
                                                     const std::vector<bool>& read_only,
                                                     const std::function<void()>& meanwhile) {
  const size_t n = txn.branches.size();
  const Clock::SteadyTime deadline =
      services_->clock->DeadlineAfter(three_phase_options_->vote_timeout);
  std::vector<three_phase::AgentClient::PendingCall> calls;
  calls.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    CanCommitMessage can_commit;
    can_commit.xid = txn.xid;
    can_commit.participant = static_cast<uint32_t>(i);
    can_commit.participants = Participants(txn);
    can_commit.fence_session_id = fences[i];
    can_commit.read_only = read_only[i];
    AgentMessage request;
    request.body = std::move(can_commit);
    calls.push_back(agents_->Start(txn.branches[i].rm_name, std::move(request), deadline));
  }
  meanwhile();
  std::vector<Status> votes(n);
  for (size_t i = 0; i < n; ++i) {
    const BranchContext& b = txn.branches[i];
    Result<AgentMessage> reply = agents_->Finish(calls[i], deadline);
    if (!reply.ok()) {
      votes[i] = reply.status();
      continue;
    }
    const auto* vote = std::get_if<VoteMessage>(&reply->body);
    if (vote == nullptr) {
      votes[i] = Status(Code::kProto, "the agent answered CanCommit with " +
                                          std::string(three_phase::AgentMessageTypeName(
                                              three_phase::TypeOf(*reply))));
      continue;
    }
    XA_LOG_XID(kDebug, "tm", b.xid) << "agent vote for '" << b.rm_name << "': "
                                    << (vote->yes ? "yes" : "no");
    if (!vote->yes) {
      votes[i] = Status(Code::kRbOther,
                        "the agent voted no" + (vote->reason.empty() ? "" : ": " + vote->reason));
    }
  }
  return votes;
}

ThreePhaseCoordinator::PreCommitVerdict ThreePhaseCoordinator::PreCommitAll(
    TxnContext& txn, Status& why_undecided) {
  std::vector<BranchContext>& branches = txn.branches;
  std::vector<std::optional<ParticipantState>> states(branches.size());
  std::vector<Status> errors(branches.size());
  Clock::SteadyTime deadline = services_->clock->DeadlineAfter(three_phase_options_->ack_timeout);
  // Every PreCommit goes out from this thread before any acknowledgement is read: the agents
  // record PRE side by side without a thread per agent here.
  std::vector<three_phase::AgentClient::PendingCall> calls;
  calls.reserve(branches.size());
  for (size_t i = 0; i < branches.size(); ++i) {
    AgentMessage request;
    request.body = PreCommitMessage{txn.xid, static_cast<uint32_t>(i)};
    calls.push_back(agents_->Start(branches[i].rm_name, std::move(request), deadline));
  }
  for (size_t i = 0; i < branches.size(); ++i) {
    Result<AgentMessage> reply = agents_->Finish(calls[i], deadline);
    if (!reply.ok()) {
      errors[i] = reply.status();
      continue;
    }
    const auto* ack = std::get_if<AckMessage>(&reply->body);
    if (ack == nullptr) {
      errors[i] = Status(Code::kProto, "the agent answered PreCommit with " +
                                           std::string(three_phase::AgentMessageTypeName(
                                               three_phase::TypeOf(*reply))));
      continue;
    }
    states[i] = ack->state;
  }
  bool all_pre = true;
  bool committed = false;
  bool aborted = false;
  for (size_t i = 0; i < branches.size(); ++i) {
    if (states[i] == ParticipantState::kCommit) committed = true;
    if (states[i] == ParticipantState::kAbort) aborted = true;
    if (states[i] != ParticipantState::kPre) {
      all_pre = false;
      if (why_undecided.ok()) {
        why_undecided =
            states[i].has_value()
                ? Status(Code::kTimeout, "3PC: the agent of " + On(branches[i]) +
                                             " answered PreCommit with its state " +
                                             std::string(StateName(*states[i])))
                : errors[i].WithContext("3PC: PreCommit to the agent of " + On(branches[i]));
      }
    }
  }
  if (committed && aborted) {
    // Two termination rounds cannot decide differently without a partition (the design's
    // assumption); the agents detect and report it. The coordinator adds no third guess.
    XA_LOG_XID(kError, "tm", txn.xid) << "agents answered PreCommit with both COMMIT and "
                                         "ABORT: a partition split the outcome";
    return PreCommitVerdict::kUndecided;
  }
  if (committed) return PreCommitVerdict::kCommitted;
  if (aborted) return PreCommitVerdict::kAborted;
  return all_pre ? PreCommitVerdict::kAllPre : PreCommitVerdict::kUndecided;
}

Outcome ThreePhaseCoordinator::DoCommit(TxnContext& txn) {
  std::vector<size_t> committers;
  std::vector<size_t> everyone;
  for (size_t i = 0; i < txn.branches.size(); ++i) {
    everyone.push_back(i);
    if (txn.branches[i].vote == Vote::kCommit) committers.push_back(i);
  }
  // The commit decision is appended beside the branches' commits, not before them as in 2PC:
  // every agent acknowledged PRE, so every termination round commits and the outcome is fixed
  // already. The record is for the coordinator's recovery and for forgetting: it must be durable
  // before any agent is told DoCommit (an agent forgets a committed participant once told), which
  // the join below ensures, not before the databases commit. A crash that leaves a branch
  // committed and no decision leaves every agent PRE: they commit by termination, and the
  // recovery module, finding only kPreCommit, adopts their COMMIT. So one log sync leaves the
  // commit's path. Phase 2 goes through the application's sessions, as 2PC's; a branch the RM no
  // longer knows was committed by this same outcome, which is what the phase-2 rules'
  // maybe_applied says (an "unknown Xid" reads as committed, not as a heuristic hazard, for a
  // coordinator that resumes late after the agents committed).
  for (size_t i : committers) txn.branches[i].history.maybe_applied = true;
  Clock::SteadyTime start = services_->clock->SteadyNow();
  std::atomic<size_t> committed{0};
  Result<uint64_t> lsn = Status(Code::kInternal, "the commit decision was not appended");
  const size_t decision_task = committers.size();
  services_->executor->RunAll(
      committers.size() + 1,
      [&](size_t k) {
        if (k == decision_task) {
          lsn = services_->log->Append(DecisionRecord(txn, committers));
          // 2PC's point C6 on the 3PC path: the decision is durable and every agent is PRE;
          // the branches' commits may have run or not.
          if (lsn.ok()) XA_CRASH_POINT(kAfterDecisionSync);
          return;
        }
        FinishBranchInline(txn.branches[committers[k]], Decision::kCommit);
        if (committed.fetch_add(1) == 0) XA_CRASH_POINT(kAfterFirstCommit);  // the other not yet
      },
      /*caller_first=*/decision_task);
  if (!lsn.ok()) {
    // Every agent acknowledged PRE, so termination commits: the outcome is not ours to change
    // any more, only to learn. Leave it to the agents, as on a missing acknowledgement.
    MetricsRegistry::Add(services_->metrics->decision_write_failures);
    txn.last_status = lsn.status().WithContext(
        "3PC: the commit decision could not be made durable after every agent pre-committed; "
        "the agents' termination protocol commits the transaction");
    XA_LOG_XID(kError, "tm", txn.xid) << txn.last_status.ToString();
    return Outcome::kUnknown;
  }
  MetricsRegistry::Add(services_->metrics->decision_records);
  XA_CRASH_POINT(kAfterAllCommitted);  // every branch committed, no agent told DoCommit
  services_->metrics->commit_phase.Record(services_->clock->SteadyNow() - start);
  bool pending = false;
  for (size_t i : committers) pending = pending || !IsFinished(txn.branches[i].end);
  if (!pending && notifier_ != nullptr) {
    // Every branch is committed, so the outcome is final whatever the agents answer: their
    // DoCommit only lets the decision be forgotten, and goes off the caller's path
    // (decision_notifier.h), which then owns the transaction's in-flight entry.
    DecisionNotice notice;
    notice.xid = txn.xid;
    for (size_t i : everyone) notice.agents.push_back(NoticeOf(txn, i, Decision::kCommit));
    const Outcome outcome = Conclude(txn, committers, Decision::kCommit,
                                     /*decision_logged=*/false, Status::Ok());
    if (notifier_->Submit(std::move(notice))) {
      txn.handed_off = true;
    } else {
      XA_LOG_XID(kWarning, "tm", txn.xid)
          << "committed while the manager is stopping: no agent was told DoCommit, and the "
             "commit decision stays open for recovery";
    }
    return outcome;
  }
  const bool every_agent_acknowledged = TellAgents(txn, Decision::kCommit, everyone).empty();
  // The end record only once every agent acknowledged COMMIT: an agent forgets a committed
  // participant only after the coordinator told it, so the outcome is never forgotten on both
  // sides. Otherwise the decision stays open (no end record, the transaction leaves the in-flight
  // set) and the 3PC recovery module sends DoCommit again until every agent acknowledged. A
  // branch still pending goes to the background completer as in 2PC; its job carries the agents
  // (AddProtocolWork), and it ends the decision only once the branch is committed AND every agent
  // acknowledged, by the same rule as the recovery module (AcknowledgesDecision).
  if (!every_agent_acknowledged && !pending) {
    XA_LOG_XID(kWarning, "tm", txn.xid)
        << "committed, but not every agent acknowledged DoCommit: the commit decision stays "
           "open for the 3PC recovery module";
  }
  return Conclude(txn, committers, Decision::kCommit,
                  /*decision_logged=*/every_agent_acknowledged || pending, Status::Ok());
}

std::vector<size_t> ThreePhaseCoordinator::TellAgents(TxnContext& txn, Decision decision,
                                                      const std::vector<size_t>& to) {
  Clock::SteadyTime deadline = services_->clock->DeadlineAfter(three_phase_options_->ack_timeout);
  std::vector<char> acknowledged(to.size(), 0);
  services_->executor->RunAll(to.size(), [&](size_t k) {
    acknowledged[k] = TellAgent(*agents_, txn.xid, NoticeOf(txn, to[k], decision), decision,
                                deadline);
  });
  std::vector<size_t> not_acknowledged;
  for (size_t k = 0; k < to.size(); ++k) {
    if (!acknowledged[k]) not_acknowledged.push_back(to[k]);
  }
  return not_acknowledged;
}

void ThreePhaseCoordinator::AddProtocolWork(const TxnContext& txn, CompletionJob& job) const {
  // A commit decision of this protocol, through the agents (not the single-committer path, which
  // asks none): its end record waits for every agent's acknowledgement, as the 3PC recovery
  // module's does. Agents that already acknowledged answer again (COMMIT, or INIT once they
  // forgot the participant, which reads as acknowledged with the branch finished).
  if (job.decision != Decision::kCommit || !job.decision_logged) return;
  for (size_t i = 0; i < txn.branches.size(); ++i) {
    const BranchContext& b = txn.branches[i];
    if (!b.agent_asked) continue;
    job.agents = agents_;
    job.agent_timeout = three_phase_options_->ack_timeout;
    job.agents_to_tell.push_back(AgentToTell{b.rm_name, b.xid, static_cast<uint32_t>(i)});
  }
}

Outcome ThreePhaseCoordinator::Rollback(TxnContext& txn, const Status& reason) {
  Outcome outcome = TwoPhaseCoordinator::Rollback(txn, reason);
  std::vector<size_t> asked;
  for (size_t i = 0; i < txn.branches.size(); ++i) {
    if (txn.branches[i].agent_asked) asked.push_back(i);
  }
  if (!asked.empty()) TellAgents(txn, Decision::kRollback, asked);
  // Rolled back: the pre-commit record has nothing left to decide (no agent that missed the
  // Abort can be PRE without a decided ABORT beside it, and termination adopts that).
  if (txn.pre_commit_logged && !txn.handed_off) {
    txn.handed_off = true;
    services_->completer->SubmitEnd(txn.xid, Protocol::kThreePhase);
  }
  return outcome;
}

}  // namespace xa::internal
