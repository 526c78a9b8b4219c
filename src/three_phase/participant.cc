#include "src/three_phase/participant.h"

#include <utility>

#include "src/base/overloaded.h"

namespace xa::three_phase {
namespace {

using internal::Overloaded;

std::string StateName(ParticipantState state) { return std::string(ParticipantStateName(state)); }

OutMessage DecisionMessage(ParticipantState decision, uint64_t request_id) {
  if (decision == ParticipantState::kCommit) return DoCommit{request_id, false};
  return Abort{request_id, false};
}

}  // namespace

std::string ToString(Endpoint endpoint) {
  return endpoint.coordinator ? std::string("coordinator") : "P" + std::to_string(endpoint.number);
}

std::string ToString(const OutMessage& message) {
  return std::visit(Overloaded{
                        [](const Vote& m) { return std::string(m.yes ? "Vote(yes)" : "Vote(no)"); },
                        [](const Ack& m) { return "Ack(" + StateName(m.state) + ")"; },
                        [](const StateQuery& m) {
                          return std::string(m.backup_round ? "StateQuery(backup round)"
                                                            : "StateQuery") +
                                 (m.asker_restarted ? "[asker restarted]" : "");
                        },
                        [](const StateReply& m) {
                          return "StateReply(" + StateName(m.state) +
                                 (m.restarted ? ", restarted" : "") + ")";
                        },
                        [](const MoveToPre&) { return std::string("MoveToPre"); },
                        [](const DoCommit& m) {
                          return std::string(m.branch_done ? "DoCommit(branch done)" : "DoCommit");
                        },
                        [](const Abort& m) {
                          return std::string(m.branch_done ? "Abort(branch done)" : "Abort");
                        },
                    },
                    message);
}

std::string ToString(const Effect& effect) {
  return std::visit(Overloaded{
                        [](const RecordState& e) {
                          return "record " + StateName(e.state) +
                                 (e.coordinator_knows_outcome ? " known to the coordinator" : "") +
                                 (e.branch_finished ? ", branch finished" : "");
                        },
                        [](const Send& e) {
                          return "send " + ToString(e.message) + " to " + ToString(e.to);
                        },
                        [](const FinishBranch& e) {
                          return std::string(e.commit ? "fence and commit the branch"
                                                      : "fence and roll back the branch");
                        },
                        [](const ArmTimer&) { return std::string("arm timer"); },
                        [](const CancelTimer&) { return std::string("cancel timer"); },
                        [](const ReportHeuristicMixed& e) {
                          return "heuristic-mixed: own " + StateName(e.own) + ", " +
                                 ToString(e.peer) + " " + StateName(e.peer_state);
                        },
                        [](const RecordDone&) { return std::string("record done"); },
                    },
                    effect);
}

ParticipantMachine::ParticipantMachine(uint32_t number, uint64_t incarnation,
                                       ParticipantOptions options)
    : number_(number), incarnation_(incarnation), options_(options) {}

ParticipantMachine ParticipantMachine::Recovered(const RecoveredParticipant& recovered,
                                                 ParticipantOptions options) {
  ParticipantMachine machine(recovered.number, recovered.incarnation, options);
  machine.SetParticipantCount(recovered.participant_count);
  machine.state_ = recovered.state;
  machine.restarted_ = true;
  machine.has_branch_ = recovered.has_branch;
  machine.branch_finished_ = !recovered.has_branch || recovered.branch_finished;
  machine.coordinator_knows_outcome_ =
      IsDecided(recovered.state) && recovered.coordinator_knows_outcome;
  return machine;
}

Effects ParticipantMachine::OnRestart() {
  Effects out;
  if (IsDecided(state_)) {
    // Which peers heard the outcome was not recorded: tell every peer again. The branch is
    // finished again (idempotent after the fence) unless the decision record says the
    // coordinator finished it: that fence would end an application session that has long
    // moved on to other work.
    if (has_branch_ && !branch_finished_) {
      out.push_back(FinishBranch{state_ == ParticipantState::kCommit});
    }
    SendDecisionToUnsettledPeers(out);
    FinishDecidedStep(out);
  } else if (IsUndecided(state_)) {
    out.push_back(ArmTimer{});
  }
  return out;
}

Effects ParticipantMachine::OnCanCommit(const CanCommit& message) { return Handle(message); }
Effects ParticipantMachine::OnPreCommit(const PreCommit& message) { return Handle(message); }
Effects ParticipantMachine::OnDoCommit(Endpoint from, const DoCommit& message) {
  return Handle(DoCommitFrom{from, message});
}
Effects ParticipantMachine::OnAbort(Endpoint from, const Abort& message) {
  return Handle(AbortFrom{from, message});
}
Effects ParticipantMachine::OnStateQuery(Endpoint from, const StateQuery& message) {
  return Handle(StateQueryFrom{from, message});
}
Effects ParticipantMachine::OnStateReply(uint32_t peer, const StateReply& message) {
  return Handle(StateReplyFrom{peer, message});
}
Effects ParticipantMachine::OnMoveToPre(uint32_t peer, const MoveToPre& message) {
  return Handle(MoveToPreFrom{peer, message});
}
Effects ParticipantMachine::OnAck(Endpoint from, const Ack& message) {
  return Handle(AckFrom{from, message});
}
Effects ParticipantMachine::OnTimer() { return Handle(TimerFired{}); }
Effects ParticipantMachine::OnPeerUnreachable(uint32_t peer) {
  return Handle(PeerUnreachable{peer});
}
Effects ParticipantMachine::OnBranchFinished() { return Handle(BranchFinished{}); }

Effects ParticipantMachine::OnRecorded() {
  Effects out;
  if (!recording_) return out;  // nothing was being recorded
  HandleRecorded(out);
  // Rule e: what arrived during the record is handled now, one input at a time, until the next
  // record (if any) makes the rest wait again.
  while (!recording_ && !queued_.empty()) {
    QueuedInput input = std::move(queued_.front());
    queued_.pop_front();
    Effects more = Dispatch(input);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

Effects ParticipantMachine::Handle(QueuedInput input) {
  if (recording_) {
    queued_.push_back(std::move(input));
    return {};
  }
  return Dispatch(input);
}

Effects ParticipantMachine::Dispatch(const QueuedInput& input) {
  Effects out;
  std::visit(Overloaded{
                 [&](const CanCommit& m) { HandleCanCommit(m, out); },
                 [&](const PreCommit& m) { HandlePreCommit(m, out); },
                 [&](const DoCommitFrom& m) {
                   HandleDecisionMessage(m.from, ParticipantState::kCommit, m.message.request_id,
                                         m.message.branch_done, out);
                 },
                 [&](const AbortFrom& m) {
                   HandleDecisionMessage(m.from, ParticipantState::kAbort, m.message.request_id,
                                         m.message.branch_done, out);
                 },
                 [&](const StateQueryFrom& m) { HandleStateQuery(m.from, m.message, out); },
                 [&](const StateReplyFrom& m) { HandleStateReply(m.peer, m.message, out); },
                 [&](const MoveToPreFrom& m) { HandleMoveToPre(m.peer, m.message, out); },
                 [&](const AckFrom& m) { HandleAck(m.from, m.message, out); },
                 [&](const TimerFired&) { HandleTimer(out); },
                 [&](const PeerUnreachable& m) { HandlePeerUnreachable(m.peer, out); },
                 [&](const BranchFinished&) { HandleBranchFinished(out); },
             },
             input);
  return out;
}

void ParticipantMachine::SetParticipantCount(uint32_t count) {
  if (participant_count_ != 0) return;
  participant_count_ = count;
  peers_.assign(count, PeerView{});
}

void ParticipantMachine::Record(ParticipantState state, AfterRecord after, Effects& out) {
  const RecordState record{state, IsDecided(state) && after.coordinator_knows_outcome,
                           IsDecided(state) && has_branch_ &&
                               (branch_finished_ || after.branch_done)};
  out.push_back(record);
  recording_ = record;
  after_record_ = after;
}

void ParticipantMachine::HandleRecorded(Effects& out) {
  state_ = recording_->state;
  if (recording_->coordinator_knows_outcome) coordinator_knows_outcome_ = true;
  recording_.reset();
  if (state_ == ParticipantState::kWait) {
    has_branch_ = true;
    branch_finished_ = false;
  }
  const AfterRecord after = after_record_;
  switch (after.kind) {
    case AfterRecord::Kind::kVoteYes:
      out.push_back(Send{Endpoint::Coordinator(), Vote{after.request_id, true}});
      out.push_back(ArmTimer{});
      return;
    case AfterRecord::Kind::kAckPre:
      out.push_back(Send{*after.reply_to, Ack{after.request_id, state_}});
      out.push_back(ArmTimer{});
      return;
    case AfterRecord::Kind::kStartPromotion:
      StartPromotion(out);
      return;
    case AfterRecord::Kind::kDecided:
      if (after.branch_done) branch_finished_ = true;
      if (has_branch_ && !branch_finished_) {
        out.push_back(FinishBranch{state_ == ParticipantState::kCommit});
      }
      if (after.reply_to && after.reply_with_state) {
        out.push_back(
            Send{*after.reply_to, StateReply{after.request_id, state_, restarted_,
                                             UndecidedNeverRestarted(state_, restarted_)}});
      } else if (after.reply_to) {
        out.push_back(Send{*after.reply_to, Ack{after.request_id, state_}});
      }
      if (after.tell_peers_now) SendDecisionToUnsettledPeers(out);
      FinishDecidedStep(out);
      return;
    case AfterRecord::Kind::kCoordinatorHoldsCommit:
      out.push_back(Send{*after.reply_to, Ack{after.request_id, state_}});
      MaybeDone(out);
      return;
  }
}

void ParticipantMachine::HandleCanCommit(const CanCommit& message, Effects& out) {
  switch (state_) {
    case ParticipantState::kInit: {
      SetParticipantCount(message.participant_count);
      AfterRecord after;
      after.kind = AfterRecord::Kind::kVoteYes;
      after.request_id = message.request_id;
      Record(ParticipantState::kWait, after, out);
      return;
    }
    case ParticipantState::kWait:
    case ParticipantState::kPre:
    case ParticipantState::kCommit:
      out.push_back(Send{Endpoint::Coordinator(), Vote{message.request_id, true}});
      return;
    case ParticipantState::kAbort:
      out.push_back(Send{Endpoint::Coordinator(), Vote{message.request_id, false}});
      return;
  }
}

void ParticipantMachine::HandlePreCommit(const PreCommit& message, Effects& out) {
  if (state_ == ParticipantState::kInit) {  // an unknown transaction aborts (rule d)
    AfterRecord after;
    after.reply_to = Endpoint::Coordinator();
    after.request_id = message.request_id;
    Decide(ParticipantState::kAbort, after, out);
    return;
  }
  if (state_ == ParticipantState::kWait && !asked_ && !restarted_) {
    AfterRecord after;
    after.kind = AfterRecord::Kind::kAckPre;
    after.reply_to = Endpoint::Coordinator();
    after.request_id = message.request_id;
    Record(ParticipantState::kPre, after, out);
    return;
  }
  // Asked, restarted, or past WAIT: the state, never a new PRE.
  out.push_back(Send{Endpoint::Coordinator(), Ack{message.request_id, state_}});
}

void ParticipantMachine::HandleDecisionMessage(Endpoint from, ParticipantState decision,
                                               uint64_t request_id, bool branch_done,
                                               Effects& out) {
  if (IsDecided(state_)) {
    if (state_ == decision && branch_done && from.coordinator) branch_finished_ = true;
    NotePeerOutcome(from, decision, out);
    if (from.coordinator && decision == ParticipantState::kCommit &&
        state_ == ParticipantState::kCommit && !coordinator_knows_outcome_) {
      // The COMMIT of a termination round (or adopted from a peer), now from the coordinator:
      // durable as the coordinator's before the Ack, with which the coordinator may forget it.
      AfterRecord after;
      after.kind = AfterRecord::Kind::kCoordinatorHoldsCommit;
      after.reply_to = from;
      after.request_id = request_id;
      after.coordinator_knows_outcome = true;
      Record(ParticipantState::kCommit, after, out);
      return;
    }
    out.push_back(Send{from, Ack{request_id, state_}});
    MaybeDone(out);
    return;
  }
  if (state_ == ParticipantState::kInit && decision == ParticipantState::kCommit) {
    // It never voted: a commit cannot be meant for it. Answer, change nothing.
    out.push_back(Send{from, Ack{request_id, state_}});
    return;
  }
  // The sender holds the decision this participant is about to record.
  if (!from.coordinator && from.number < peers_.size()) peers_[from.number].settled = true;
  AfterRecord after;
  after.reply_to = from;
  after.request_id = request_id;
  after.branch_done = branch_done;
  after.coordinator_knows_outcome = from.coordinator;
  Decide(decision, after, out);
}

void ParticipantMachine::HandleStateQuery(Endpoint from, const StateQuery& message, Effects& out) {
  if (message.backup_round && !message.asker_restarted) asked_ = true;
  // Only a backup round, or a restarted participant's rule c, may follow with a MoveToPre.
  if (!from.coordinator && (message.backup_round || message.asker_restarted)) {
    last_asking_round_ = message.round;
  }
  if (state_ == ParticipantState::kInit) {
    // Rule d: a question about a transaction this participant never recorded is answered ABORT,
    // recorded first, so that a late CanCommit is answered no.
    AfterRecord after;
    after.reply_to = from;
    after.request_id = message.request_id;
    after.reply_with_state = true;
    Decide(ParticipantState::kAbort, after, out);
    return;
  }
  out.push_back(Send{from, StateReply{message.request_id, state_, restarted_,
                                      UndecidedNeverRestarted(state_, restarted_)}});
}

void ParticipantMachine::HandleStateReply(uint32_t peer, const StateReply& message, Effects& out) {
  if (peer >= peers_.size() || peer == number_) return;
  const Endpoint from = Endpoint::Participant(peer);
  // A StateReply answers a question that carried no decision: the peer has not heard ours, so
  // it is not settled by it (only a split is noted). Were it settled, this participant could
  // write done and forget while the peer still waits to hear its outcome, and then ask for ever.
  if (IsDecided(state_)) {
    if (IsDecided(message.state) && message.state != state_) {
      NotePeerOutcome(from, message.state, out);
    }
    MaybeDone(out);
    return;
  }
  if (IsDecided(message.state)) {  // rule a, from any reply, of any round
    Decide(message.state, AfterRecord{}, out);
    return;
  }
  const bool in_round = phase_ == Phase::kProbing || phase_ == Phase::kBackupRound;
  if (!in_round || message.request_id != round_id_ || peers_[peer].answered) return;
  PeerView& view = peers_[peer];
  view.answered = true;
  view.reachable = true;
  view.state = message.state;
  view.restarted = message.restarted;
  if (RoundComplete()) EvaluateRound(out);
}

bool ParticipantMachine::AcceptsMoveToPre(uint32_t peer, const MoveToPre& message) const {
  if (Broken(BrokenRuleForTesting::kMoveToPreFromAnyRound)) return true;
  // The round that counted this participant as WAIT must be the last one that asked it: a later
  // round may have counted it as WAIT and aborted.
  return message.round.asker == peer && last_asking_round_ == message.round;
}

void ParticipantMachine::HandleMoveToPre(uint32_t peer, const MoveToPre& message, Effects& out) {
  const Endpoint from = Endpoint::Participant(peer);
  if (state_ == ParticipantState::kWait && AcceptsMoveToPre(peer, message)) {
    AfterRecord after;
    after.kind = AfterRecord::Kind::kAckPre;
    after.reply_to = from;
    after.request_id = message.request_id;
    Record(ParticipantState::kPre, after, out);
    return;
  }
  out.push_back(Send{from, Ack{message.request_id, state_}});
}

void ParticipantMachine::HandleAck(Endpoint from, const Ack& message, Effects& out) {
  if (from.coordinator || from.number >= peers_.size() || from.number == number_) return;
  if (IsDecided(state_)) {
    if (state_ == ParticipantState::kCommit && message.state == ParticipantState::kInit) {
      // A COMMIT anywhere means every participant recorded WAIT, and an agent drops a recorded
      // participant only at its done record, which needs our outcome heard. So a peer that
      // answers INIT finished and forgot it, then lost the outcome it kept in memory (its agent
      // restarted): it will never answer COMMIT again, and waiting for it would keep this
      // participant, and re-finish its branch at every restart of our agent, for ever.
      peers_[from.number].settled = true;
    }
    NotePeerOutcome(from, message.state, out);
    MaybeDone(out);
    return;
  }
  if (IsDecided(message.state)) {  // rule a (the peer has not heard ours: not settled)
    Decide(message.state, AfterRecord{}, out);
    return;
  }
  PeerView& view = peers_[from.number];
  if (phase_ != Phase::kPromoting || message.request_id != round_id_ || !view.promotion_target ||
      view.answered) {
    return;
  }
  if (message.state != ParticipantState::kPre) {
    // Refused: a later round asked the peer (and may have aborted on its WAIT), or it restarted.
    // Committing now could split the outcome; deciding abort could too (our own PRE may have
    // been counted by someone). Decide nothing, and look again at the next timeout.
    AbandonPromotion(out);
    return;
  }
  view.answered = true;
  MaybeFinishPromotion(out);
}

void ParticipantMachine::HandleTimer(Effects& out) {
  if (IsDecided(state_)) {
    if (done_emitted_) return;
    SendDecisionToUnsettledPeers(out);
    FinishDecidedStep(out);
    return;
  }
  if (!IsUndecided(state_)) return;  // INIT runs no termination
  if (Broken(BrokenRuleForTesting::kTextbookTimeouts)) {
    AfterRecord after;
    after.tell_peers_now = true;
    Decide(state_ == ParticipantState::kPre ? ParticipantState::kCommit : ParticipantState::kAbort,
           after, out);
    return;
  }
  switch (phase_) {
    case Phase::kIdle:
      StartRound(Phase::kProbing, out);
      return;
    case Phase::kProbing:
    case Phase::kBackupRound:
      // Timeouts are longer than any message delay: a peer that has not answered is down.
      for (uint32_t peer = 0; peer < peers_.size(); ++peer) peers_[peer].answered = true;
      EvaluateRound(out);
      return;
    case Phase::kPromoting:
      for (uint32_t peer = 0; peer < peers_.size(); ++peer) peers_[peer].answered = true;
      MaybeFinishPromotion(out);
      return;
  }
}

void ParticipantMachine::HandlePeerUnreachable(uint32_t peer, Effects& out) {
  if (peer >= peers_.size() || peer == number_ || !IsUndecided(state_)) return;
  PeerView& view = peers_[peer];
  if (view.answered) return;
  if (phase_ == Phase::kProbing || phase_ == Phase::kBackupRound) {
    view.answered = true;
    view.reachable = false;
    if (RoundComplete()) EvaluateRound(out);
  } else if (phase_ == Phase::kPromoting && view.promotion_target) {
    view.answered = true;
    MaybeFinishPromotion(out);
  }
}

void ParticipantMachine::HandleBranchFinished(Effects& out) {
  branch_finished_ = true;
  MaybeDone(out);
}

void ParticipantMachine::StartRound(Phase phase, Effects& out) {
  phase_ = phase;
  ++round_id_;
  const bool backup_round = phase == Phase::kBackupRound;
  if (backup_round) asked_ = true;  // the backup's own state is one of the answers
  for (uint32_t peer = 0; peer < peers_.size(); ++peer) {
    PeerView& view = peers_[peer];
    view.answered = peer == number_;
    view.reachable = false;
    view.promotion_target = false;
    if (peer == number_) continue;
    out.push_back(Send{Endpoint::Participant(peer),
                       StateQuery{round_id_, restarted_, backup_round, CurrentRound()}});
  }
  if (RoundComplete()) {  // no peers to ask
    EvaluateRound(out);
    return;
  }
  out.push_back(ArmTimer{});
}

bool ParticipantMachine::RoundComplete() const {
  for (const PeerView& view : peers_) {
    if (!view.answered) return false;
  }
  return true;
}

void ParticipantMachine::EvaluateRound(Effects& out) {
  if (phase_ == Phase::kProbing) {
    EvaluateProbe(out);
  } else {
    EvaluateBackupRound(out);
  }
}

std::vector<PeerAnswer> ParticipantMachine::Answers(bool include_restarted) const {
  std::vector<PeerAnswer> answers;
  for (uint32_t peer = 0; peer < peers_.size(); ++peer) {
    const PeerView& view = peers_[peer];
    if (peer == number_ || !view.reachable) continue;
    if (view.restarted && !include_restarted) continue;
    answers.push_back(PeerAnswer{peer, view.state, view.restarted});
  }
  return answers;
}

void ParticipantMachine::EvaluateProbe(Effects& out) {
  const std::vector<PeerAnswer> reachable = Answers(/*include_restarted=*/true);
  if (restarted_) {
    const uint32_t peer_count = participant_count_ > 0 ? participant_count_ - 1 : 0;
    if (Broken(BrokenRuleForTesting::kRestartedDecidesAlone) ||
        RestartedMayDecide(number_, reachable, peer_count)) {
      ApplyTermination(reachable, out);
      return;
    }
  } else if (Broken(BrokenRuleForTesting::kEveryoneTerminates) ||
             IsBackup(number_, restarted_, reachable)) {
    StartRound(Phase::kBackupRound, out);
    return;
  }
  // Not this participant's turn: the backup (or a restarted peer's rule c) decides; look again at
  // the next timeout, when the backup may have crashed.
  phase_ = Phase::kIdle;
  out.push_back(ArmTimer{});
}

void ParticipantMachine::EvaluateBackupRound(Effects& out) {
  const std::vector<PeerAnswer> counted =
      Answers(/*include_restarted=*/Broken(BrokenRuleForTesting::kCountRestartedStates));
  ApplyTermination(counted, out);
}

void ParticipantMachine::ApplyTermination(std::span<const PeerAnswer> counted, Effects& out) {
  AfterRecord decided;
  decided.tell_peers_now = true;
  switch (DecideTermination(state_, counted)) {
    case TerminationOutcome::kCommit:
      Decide(ParticipantState::kCommit, decided, out);
      return;
    case TerminationOutcome::kAbort:
      Decide(ParticipantState::kAbort, decided, out);
      return;
    case TerminationOutcome::kPromoteThenCommit:
      break;
  }
  if (Broken(BrokenRuleForTesting::kNoPromotionBeforeCommit)) {
    Decide(ParticipantState::kCommit, decided, out);
    return;
  }
  for (PeerView& view : peers_) view.promotion_target = false;
  for (const PeerAnswer& answer : counted) {
    if (answer.state == ParticipantState::kWait) peers_[answer.number].promotion_target = true;
  }
  phase_ = Phase::kPromoting;
  if (state_ == ParticipantState::kWait) {
    AfterRecord after;
    after.kind = AfterRecord::Kind::kStartPromotion;
    Record(ParticipantState::kPre, after, out);
    return;
  }
  StartPromotion(out);
}

void ParticipantMachine::StartPromotion(Effects& out) {
  phase_ = Phase::kPromoting;
  bool any = false;
  for (uint32_t peer = 0; peer < peers_.size(); ++peer) {
    PeerView& view = peers_[peer];
    view.answered = !view.promotion_target;
    if (!view.promotion_target) continue;
    out.push_back(Send{Endpoint::Participant(peer), MoveToPre{round_id_, CurrentRound()}});
    any = true;
  }
  if (any) {
    out.push_back(ArmTimer{});
    return;
  }
  MaybeFinishPromotion(out);
}

void ParticipantMachine::AbandonPromotion(Effects& out) {
  phase_ = Phase::kIdle;
  for (PeerView& view : peers_) view.promotion_target = false;
  out.push_back(ArmTimer{});
}

void ParticipantMachine::MaybeFinishPromotion(Effects& out) {
  if (!RoundComplete()) return;
  AfterRecord decided;
  decided.tell_peers_now = true;
  Decide(ParticipantState::kCommit, decided, out);
}

void ParticipantMachine::Decide(ParticipantState decision, AfterRecord after, Effects& out) {
  after.kind = AfterRecord::Kind::kDecided;
  phase_ = Phase::kIdle;
  for (PeerView& view : peers_) view.promotion_target = false;
  Record(decision, after, out);
}

void ParticipantMachine::SendDecisionToUnsettledPeers(Effects& out) {
  for (uint32_t peer = 0; peer < peers_.size(); ++peer) {
    if (peer == number_ || peers_[peer].settled) continue;
    out.push_back(Send{Endpoint::Participant(peer), DecisionMessage(state_, round_id_)});
  }
}

void ParticipantMachine::NotePeerOutcome(Endpoint peer, ParticipantState peer_state, Effects& out) {
  if (!IsDecided(peer_state)) return;  // not decided yet: it adopts ours when told
  if (peer.coordinator) {
    if (peer_state != state_ && !coordinator_heuristic_reported_) {
      coordinator_heuristic_reported_ = true;
      out.push_back(ReportHeuristicMixed{peer, state_, peer_state});
    }
    return;
  }
  if (peer.number >= peers_.size() || peers_[peer.number].settled) return;
  peers_[peer.number].settled = true;
  if (peer_state != state_) out.push_back(ReportHeuristicMixed{peer, state_, peer_state});
}

void ParticipantMachine::MaybeDone(Effects& out) {
  if (!IsDecided(state_) || done_emitted_ || !branch_finished_) return;
  // A participant that never learned its transaction's participant list decided ABORT because
  // it was asked about a transaction it had no record of (rule d). That record is what makes a
  // late CanCommit be answered no; forgetting it would let the agent vote yes after telling a
  // backup ABORT, and the coordinator could then commit what the backup aborted.
  if (!KnowsItsTransaction() || !EveryPeerSettled()) return;
  // A COMMIT the coordinator is not known to hold is kept: forgotten, it would be answered
  // ABORT after a restart (rule d), and the coordinator's recovery may know no outcome but that.
  if (CommitTheCoordinatorMayNotHold() &&
      !Broken(BrokenRuleForTesting::kForgetsCommitWithoutTheCoordinator)) {
    return;
  }
  done_emitted_ = true;
  out.push_back(CancelTimer{});
  out.push_back(RecordDone{});
}

void ParticipantMachine::FinishDecidedStep(Effects& out) {
  MaybeDone(out);
  // Without a participant list there is no peer to tell or to hear from: no timer. Nor when
  // only the coordinator's DoCommit is awaited: its recovery sends it unasked.
  if (!done_emitted_ && KnowsItsTransaction() && !AwaitsOnlyTheCoordinator()) {
    out.push_back(ArmTimer{});
  }
}

bool ParticipantMachine::EveryPeerSettled() const {
  for (uint32_t peer = 0; peer < peers_.size(); ++peer) {
    if (peer != number_ && !peers_[peer].settled) return false;
  }
  return true;
}

bool ParticipantMachine::CommitTheCoordinatorMayNotHold() const {
  return state_ == ParticipantState::kCommit && !coordinator_knows_outcome_;
}

bool ParticipantMachine::AwaitsOnlyTheCoordinator() const {
  return branch_finished_ && EveryPeerSettled() && CommitTheCoordinatorMayNotHold();
}

}  // namespace xa::three_phase
