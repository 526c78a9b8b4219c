// The participant machine's rules one by one (docs/three-phase-commit.md, "The protocol"), and
// the pure termination decisions of termination.h as tables. Effects are compared as their
// ToString() texts, in order: the order is part of the contract (a record ends its list; what
// depends on it comes from OnRecorded()).

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "src/three_phase/participant.h"
#include "src/three_phase/termination.h"

namespace xa::three_phase {
namespace {

using State = ParticipantState;
using Texts = std::vector<std::string>;

Texts T(const Effects& effects) {
  Texts texts;
  for (const Effect& effect : effects) texts.push_back(ToString(effect));
  return texts;
}

const Endpoint kCoordinator = Endpoint::Coordinator();
Endpoint P(uint32_t number) { return Endpoint::Participant(number); }

StateReply Reply(State state, bool restarted = false, uint64_t round = 1) {
  return StateReply{round, state, restarted, UndecidedNeverRestarted(state, restarted)};
}

// A participant `number` of `count` that voted yes (WAIT durable).
ParticipantMachine Waiting(uint32_t number, uint32_t count = 3) {
  ParticipantMachine m(number);
  m.OnCanCommit(CanCommit{7, count});
  m.OnRecorded();
  return m;
}

ParticipantMachine Restarted(uint32_t number, State state, uint32_t count = 3) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{number, count, state});
  m.OnRestart();
  return m;
}

// ---- voting and PreCommit ----

TEST(ParticipantMachine, VotesYesOnlyOnceWaitIsDurable) {
  ParticipantMachine m(1);
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"record WAIT"}));
  EXPECT_TRUE(m.awaiting_record());
  EXPECT_EQ(m.state(), State::kInit);
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Vote(yes) to coordinator", "arm timer"}));
  EXPECT_EQ(m.state(), State::kWait);
}

TEST(ParticipantMachine, PreCommitRecordsPreBeforeAcknowledging) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record PRE"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(PRE) to coordinator", "arm timer"}));
  EXPECT_EQ(m.state(), State::kPre);
}

TEST(ParticipantMachine, AskedParticipantAnswersPreCommitWithItsStateAndStaysWait) {
  ParticipantMachine m = Waiting(1);
  m.OnStateQuery(P(0), StateQuery{1, false, /*backup_round=*/true});
  EXPECT_TRUE(m.asked());
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"send Ack(WAIT) to coordinator"}));
  EXPECT_EQ(m.state(), State::kWait);
}

TEST(ParticipantMachine, RestartedParticipantAnswersPreCommitWithItsStateAndStaysWait) {
  ParticipantMachine m = Restarted(1, State::kWait);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"send Ack(WAIT) to coordinator"}));
  EXPECT_EQ(m.state(), State::kWait);
}

TEST(ParticipantMachine, ProbeQueriesDoNotSetAsked) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnStateQuery(P(2), StateQuery{1, false, /*backup_round=*/false})),
            Texts({"send StateReply(WAIT) to P2"}));
  EXPECT_FALSE(m.asked());
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record PRE"}));
}

TEST(ParticipantMachine, QuestionAboutAnUnknownTransactionIsAnsweredAbortOnceRecorded) {
  ParticipantMachine m(2);
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{1, false, false})), Texts({"record ABORT"}));
  // No branch, no participant list: nothing to finish, nobody to confirm with.
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send StateReply(ABORT) to P0", "cancel timer", "record done"}));
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"send Vote(no) to coordinator"}));
  EXPECT_EQ(m.state(), State::kAbort);
}

TEST(ParticipantMachine, PreCommitForAnUnknownTransactionIsAnsweredAbortOnceRecorded) {
  ParticipantMachine m(2);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record ABORT"}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(ABORT) to coordinator", "cancel timer", "record done"}));
}

TEST(ParticipantMachine, AbortBeforeCanCommitIsRecordedSoALateCanCommitIsRefused) {
  ParticipantMachine m(2);
  EXPECT_EQ(T(m.OnAbort(kCoordinator, Abort{3, true})), Texts({"record ABORT"}));
  // No branch of its own to finish (nothing was recorded before), and no peers known.
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(ABORT) to coordinator", "cancel timer", "record done"}));
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"send Vote(no) to coordinator"}));
}

TEST(ParticipantMachine, DoCommitToAParticipantThatNeverVotedChangesNothing) {
  ParticipantMachine m(2);
  EXPECT_EQ(T(m.OnDoCommit(P(0), DoCommit{3, false})), Texts({"send Ack(INIT) to P0"}));
  EXPECT_EQ(m.state(), State::kInit);
}

// ---- rule d: one input at a time, a record before anything that depends on it ----

TEST(ParticipantMachine, QuestionsDuringARecordAreAnsweredOnceItIsDurable) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record PRE"}));
  // A backup's question while PRE is being written: not answered WAIT now and PRE later.
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{1, false, true})), Texts({}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(PRE) to coordinator", "arm timer", "send StateReply(PRE) to P0"}));
}

TEST(ParticipantMachine, APreCommitQueuedBehindABackupQuestionIsRefused) {
  ParticipantMachine m(1);
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"record WAIT"}));
  m.OnStateQuery(P(0), StateQuery{1, false, true});
  m.OnPreCommit(PreCommit{8});
  // In arrival order: the vote, the answer WAIT (now asked), then PreCommit refused.
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Vote(yes) to coordinator", "arm timer", "send StateReply(WAIT) to P0",
                   "send Ack(WAIT) to coordinator"}));
  EXPECT_EQ(m.state(), State::kWait);
}

// ---- termination: election, rule b, promotion ----

TEST(ParticipantMachine, TimeoutStartsAProbeOfEveryPeer) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnTimer()), Texts({"send StateQuery to P0", "send StateQuery to P2", "arm timer"}));
  EXPECT_FALSE(m.asked());
}

TEST(ParticipantMachine, NonBackupWaitsWhileALowerUndecidedPeerNeverRestarted) {
  ParticipantMachine m = Waiting(1);
  m.OnTimer();
  m.OnStateReply(0, Reply(State::kWait));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait))), Texts({"arm timer"}));
  EXPECT_FALSE(m.asked());
}

TEST(ParticipantMachine, BackupIsTheLowestReachableParticipantNotRestarted) {
  ParticipantMachine m = Waiting(1);
  m.OnTimer();
  m.OnStateReply(0, Reply(State::kWait, /*restarted=*/true));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait))),
            Texts({"send StateQuery(backup round) to P0", "send StateQuery(backup round) to P2",
                   "arm timer"}));
  EXPECT_TRUE(m.asked());
}

TEST(ParticipantMachine, UnreachableLowerPeerMakesTheNextOneBackup) {
  ParticipantMachine m = Waiting(1);
  m.OnTimer();
  m.OnPeerUnreachable(0);
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait))),
            Texts({"send StateQuery(backup round) to P0", "send StateQuery(backup round) to P2",
                   "arm timer"}));
}

// P0 as backup after its probe: the backup round's queries are out (round 2).
ParticipantMachine BackupInRound(State own = State::kWait) {
  ParticipantMachine m = Waiting(0);
  if (own == State::kPre) {
    m.OnPreCommit(PreCommit{8});
    m.OnRecorded();
  }
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, false, 1));
  m.OnStateReply(2, Reply(State::kWait, false, 1));
  return m;
}

TEST(ParticipantMachine, BackupAbortsWhenEveryoneCountedIsWait) {
  ParticipantMachine m = BackupInRound();
  m.OnStateReply(1, Reply(State::kWait, false, 2));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, false, 2))), Texts({"record ABORT"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"fence and roll back the branch", "send Abort to P1",
                                      "send Abort to P2", "arm timer"}));
}

TEST(ParticipantMachine, BackupMovesEveryWaitParticipantToPreBeforeCommitting) {
  ParticipantMachine m = BackupInRound();
  m.OnStateReply(1, Reply(State::kPre, false, 2));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, false, 2))), Texts({"record PRE"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send MoveToPre to P2", "arm timer"}));
  EXPECT_EQ(T(m.OnAck(P(2), Ack{2, State::kPre})), Texts({"record COMMIT"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"fence and commit the branch", "send DoCommit to P1",
                                      "send DoCommit to P2", "arm timer"}));
}

TEST(ParticipantMachine, PromotionGoesOnWithoutATargetThatBecameUnreachable) {
  ParticipantMachine m = BackupInRound(State::kPre);
  m.OnStateReply(1, Reply(State::kWait, false, 2));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, false, 2))),
            Texts({"send MoveToPre to P1", "send MoveToPre to P2", "arm timer"}));
  EXPECT_EQ(T(m.OnAck(P(1), Ack{2, State::kPre})), Texts({}));
  EXPECT_EQ(T(m.OnPeerUnreachable(2)), Texts({"record COMMIT"}));
}

TEST(ParticipantMachine, BackupDoesNotCountRestartedParticipantsStates) {
  ParticipantMachine m = BackupInRound();
  m.OnStateReply(1, Reply(State::kPre, /*restarted=*/true, 2));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, false, 2))), Texts({"record ABORT"}));
}

TEST(ParticipantMachine, AnyDecisionSeenIsAdopted) {
  ParticipantMachine m = Waiting(1);
  m.OnTimer();
  // Rule a: even a restarted peer's decision is a decision.
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kCommit, /*restarted=*/true))),
            Texts({"record COMMIT"}));
  // Adopted, not decided here: the peers hear it at the next timeout; P2 already holds it.
  EXPECT_EQ(T(m.OnRecorded()), Texts({"fence and commit the branch", "arm timer"}));
  EXPECT_EQ(T(m.OnTimer()), Texts({"send DoCommit to P0", "arm timer"}));
}

TEST(ParticipantMachine, MoveToPreMovesAnAskedWaitParticipant) {
  ParticipantMachine m = Waiting(2);
  m.OnStateQuery(P(0), StateQuery{2, false, true});
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{2})), Texts({"record PRE"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(PRE) to P0", "arm timer"}));
}

// ---- rule c: restarted participants ----

TEST(ParticipantMachine, RestartedParticipantWaitsWhileAnUndecidedPeerNeverRestarted) {
  ParticipantMachine m = Restarted(0, State::kPre);
  EXPECT_EQ(T(m.OnTimer()), Texts({"send StateQuery[asker restarted] to P1",
                                   "send StateQuery[asker restarted] to P2", "arm timer"}));
  m.OnStateReply(1, Reply(State::kWait, /*restarted=*/true));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait))), Texts({"arm timer"}));
  EXPECT_EQ(m.state(), State::kPre);
}

TEST(ParticipantMachine, RestartedParticipantWaitsUntilEveryPeerIsUp) {
  ParticipantMachine m = Restarted(0, State::kPre);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, true));
  EXPECT_EQ(T(m.OnPeerUnreachable(2)), Texts({"arm timer"}));
}

TEST(ParticipantMachine, RestartedParticipantAppliesRuleBOverAllWhenEveryoneRestarted) {
  ParticipantMachine m = Restarted(0, State::kPre);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, true));
  // Its own PRE counts (rule b over all participants): WAIT peers are moved, then commit.
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, true))),
            Texts({"send MoveToPre to P1", "send MoveToPre to P2", "arm timer"}));
}

TEST(ParticipantMachine, RestartedParticipantAbortsWhenNoOneIsPre) {
  ParticipantMachine m = Restarted(0, State::kWait);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, true));
  EXPECT_EQ(T(m.OnStateReply(2, Reply(State::kWait, true))), Texts({"record ABORT"}));
}

TEST(ParticipantMachine, RestartedDecidedParticipantFinishesAndTellsEveryPeerAgain) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{1, 3, State::kCommit});
  EXPECT_EQ(T(m.OnRestart()), Texts({"fence and commit the branch", "send DoCommit to P0",
                                     "send DoCommit to P2", "arm timer"}));
}

// ---- decisions, duplicates, confirmation, heuristics ----

TEST(ParticipantMachine, CoordinatorsDoCommitIsRecordedBeforeTheAcknowledgement) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{9, /*branch_done=*/true})),
            Texts({"record COMMIT"}));
  // The coordinator committed the branch itself: no fence.
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(COMMIT) to coordinator", "arm timer"}));
}

TEST(ParticipantMachine, DecisionWithoutBranchDoneFencesAndFinishesTheBranch) {
  ParticipantMachine m = Waiting(1);
  m.OnAbort(P(0), Abort{9, false});
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"fence and roll back the branch", "send Ack(ABORT) to P0", "arm timer"}));
}

TEST(ParticipantMachine, DuplicateAndLateMessagesAreAnsweredWithTheStateAndChangeNothing) {
  ParticipantMachine m = Waiting(1);
  m.OnDoCommit(kCoordinator, DoCommit{9, true});
  m.OnRecorded();
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{10, true})),
            Texts({"send Ack(COMMIT) to coordinator"}));
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{11})), Texts({"send Ack(COMMIT) to coordinator"}));
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{12})), Texts({"send Ack(COMMIT) to P0"}));
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{13, 3})), Texts({"send Vote(yes) to coordinator"}));
  EXPECT_EQ(m.state(), State::kCommit);
  EXPECT_FALSE(m.awaiting_record());
}

TEST(ParticipantMachine, KeepsTheOutcomeUntilEveryPeerConfirmedItThenRecordsDone) {
  ParticipantMachine m = Waiting(1);
  m.OnDoCommit(kCoordinator, DoCommit{9, true});
  m.OnRecorded();
  EXPECT_EQ(T(m.OnTimer()), Texts({"send DoCommit to P0", "send DoCommit to P2", "arm timer"}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kCommit})), Texts({}));
  EXPECT_EQ(T(m.OnTimer()), Texts({"send DoCommit to P2", "arm timer"}));
  EXPECT_EQ(T(m.OnAck(P(2), Ack{1, State::kCommit})), Texts({"cancel timer", "record done"}));
  EXPECT_TRUE(m.done());
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{5, false, true})),
            Texts({"send StateReply(COMMIT) to P0"}));
  EXPECT_EQ(T(m.OnTimer()), Texts({}));
}

TEST(ParticipantMachine, DoneWaitsForTheBranchToBeFinished) {
  ParticipantMachine m = Waiting(1, 2);
  m.OnAbort(P(0), Abort{9, false});
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"fence and roll back the branch", "send Ack(ABORT) to P0", "arm timer"}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({"cancel timer", "record done"}));
}

TEST(ParticipantMachine, APeerHoldingTheOtherOutcomeIsReportedAsHeuristicMixed) {
  ParticipantMachine m = Waiting(1);
  m.OnDoCommit(kCoordinator, DoCommit{9, true});
  m.OnRecorded();
  EXPECT_EQ(T(m.OnAbort(P(2), Abort{4, false})),
            Texts({"heuristic-mixed: own COMMIT, P2 ABORT", "send Ack(COMMIT) to P2"}));
  // Reported once: the same news again is only answered.
  EXPECT_EQ(T(m.OnAck(P(2), Ack{4, State::kAbort})), Texts({}));
  EXPECT_EQ(m.state(), State::kCommit);
}

TEST(ParticipantMachine, PartitionSplitIsReportedOnBothSidesWhenItHeals) {
  // The coordinator reached P0 with PreCommit and died; a partition separates P0 from P1.
  ParticipantMachine p0 = Waiting(0, 2);
  p0.OnPreCommit(PreCommit{8});
  p0.OnRecorded();
  ParticipantMachine p1 = Waiting(1, 2);
  // Each side's termination sees only itself: P0 (PRE) commits, P1 (WAIT) aborts.
  p0.OnTimer();
  p0.OnPeerUnreachable(1);
  p0.OnPeerUnreachable(1);  // the backup round's question is lost too
  EXPECT_EQ(p0.state(), State::kPre);
  EXPECT_TRUE(p0.awaiting_record());
  p0.OnRecorded();
  EXPECT_EQ(p0.state(), State::kCommit);
  p1.OnTimer();
  p1.OnPeerUnreachable(0);
  p1.OnPeerUnreachable(0);
  p1.OnRecorded();
  EXPECT_EQ(p1.state(), State::kAbort);
  // Healed: P0 tells P1 its outcome again; each side reports the split.
  EXPECT_EQ(T(p1.OnDoCommit(P(0), DoCommit{3, false})),
            Texts({"heuristic-mixed: own ABORT, P0 COMMIT", "send Ack(ABORT) to P0"}));
  EXPECT_EQ(T(p0.OnAck(P(1), Ack{3, State::kAbort})),
            Texts({"heuristic-mixed: own COMMIT, P1 ABORT"}));
}

// ---- termination.h as tables ----

TEST(Termination, RuleBTable) {
  struct Row {
    State own;
    std::vector<State> peers;
    TerminationOutcome outcome;
  };
  const Row rows[] = {
      {State::kWait, {State::kWait, State::kWait}, TerminationOutcome::kAbort},
      {State::kWait, {State::kInit, State::kWait}, TerminationOutcome::kAbort},
      {State::kWait, {State::kPre, State::kWait}, TerminationOutcome::kPromoteThenCommit},
      {State::kPre, {State::kWait}, TerminationOutcome::kPromoteThenCommit},
      {State::kWait, {State::kPre, State::kCommit}, TerminationOutcome::kCommit},
      {State::kPre, {State::kAbort, State::kWait}, TerminationOutcome::kAbort},
      {State::kPre, {}, TerminationOutcome::kPromoteThenCommit},
      {State::kWait, {}, TerminationOutcome::kAbort},
  };
  for (const Row& row : rows) {
    std::vector<PeerAnswer> answers;
    for (uint32_t i = 0; i < row.peers.size(); ++i) answers.push_back({i + 1, row.peers[i], false});
    EXPECT_EQ(DecideTermination(row.own, answers), row.outcome)
        << ParticipantStateName(row.own) << " with " << row.peers.size() << " peers";
  }
}

TEST(Termination, BackupElection) {
  const std::vector<PeerAnswer> lower_waiting = {{0, State::kWait, false},
                                                 {2, State::kWait, false}};
  EXPECT_FALSE(IsBackup(1, false, lower_waiting));
  const std::vector<PeerAnswer> lower_restarted = {{0, State::kPre, true},
                                                   {2, State::kWait, false}};
  EXPECT_TRUE(IsBackup(1, false, lower_restarted));
  const std::vector<PeerAnswer> lower_init = {{0, State::kInit, false}};
  EXPECT_TRUE(IsBackup(1, false, lower_init));
  EXPECT_FALSE(IsBackup(0, /*own_restarted=*/true, {}));
}

TEST(Termination, RestartedMayDecideOnlyWhenAllAnsweredAndNoneCanStillDecide) {
  const std::vector<PeerAnswer> all_restarted = {{1, State::kWait, true}, {2, State::kPre, true}};
  EXPECT_TRUE(RestartedMayDecide(all_restarted, 2));
  EXPECT_FALSE(RestartedMayDecide(all_restarted, 3));  // one peer did not answer
  const std::vector<PeerAnswer> one_live = {{1, State::kWait, true}, {2, State::kWait, false}};
  EXPECT_FALSE(RestartedMayDecide(one_live, 2));
  const std::vector<PeerAnswer> init_peer = {{1, State::kInit, false}, {2, State::kWait, true}};
  EXPECT_TRUE(RestartedMayDecide(init_peer, 2));
}

}  // namespace
}  // namespace xa::three_phase
