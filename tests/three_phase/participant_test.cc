// The participant machine's rules one by one (docs/three-phase-commit.md, "The protocol"), and
// the pure termination decisions of termination.h as tables. Effects are compared as their
// ToString() texts, in order: the order is part of the contract (a record ends its list; what
// depends on it comes from OnRecorded()).

#include <string>
#include <type_traits>
#include <variant>
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
// The agent run the machines of a test belong to (restarted ones: kIncarnation + 1).
constexpr uint64_t kIncarnation = 1;

StateReply Reply(State state, bool restarted = false, uint64_t round = 1) {
  return StateReply{round, state, restarted, UndecidedNeverRestarted(state, restarted)};
}

// A participant `number` of `count` that voted yes (WAIT durable).
ParticipantMachine Waiting(uint32_t number, uint32_t count = 3) {
  ParticipantMachine m(number, kIncarnation);
  m.OnCanCommit(CanCommit{7, count});
  m.OnRecorded();
  return m;
}

ParticipantMachine Restarted(uint32_t number, State state, uint32_t count = 3) {
  ParticipantMachine m = ParticipantMachine::Recovered(
      RecoveredParticipant{number, count, state, /*has_branch=*/true, kIncarnation + 1});
  m.OnRestart();
  return m;
}

// ---- voting and PreCommit ----

TEST(ParticipantMachine, VotesYesOnlyOnceWaitIsDurable) {
  ParticipantMachine m(1, kIncarnation);
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
  m.OnStateQuery(P(0), StateQuery{1, false, /*backup_round=*/true, RoundId{0, kIncarnation, 1}});
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
  EXPECT_EQ(T(m.OnStateQuery(P(2), StateQuery{1, false, /*backup_round=*/false,
                                              RoundId{2, kIncarnation, 1}})),
            Texts({"send StateReply(WAIT) to P2"}));
  EXPECT_FALSE(m.asked());
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record PRE"}));
}

TEST(ParticipantMachine, QuestionAboutAnUnknownTransactionIsAnsweredAbortOnceRecorded) {
  ParticipantMachine m(2, kIncarnation);
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{1, false, false, RoundId{0, kIncarnation, 1}})),
            Texts({"record ABORT"}));
  // No branch and no participant list: nothing to finish and nobody to confirm with, yet never
  // done: the agent forgets a participant once done, and then a late CanCommit would meet a new
  // INIT machine and be answered yes after P0 was told ABORT. No timer either (no peer to tell).
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send StateReply(ABORT) to P0"}));
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"send Vote(no) to coordinator"}));
  EXPECT_EQ(m.state(), State::kAbort);
}

TEST(ParticipantMachine, PreCommitForAnUnknownTransactionIsAnsweredAbortOnceRecorded) {
  ParticipantMachine m(2, kIncarnation);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record ABORT"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(ABORT) to coordinator"}));
  EXPECT_FALSE(m.done());
}

TEST(ParticipantMachine, AbortBeforeCanCommitIsRecordedSoALateCanCommitIsRefused) {
  ParticipantMachine m(2, kIncarnation);
  EXPECT_EQ(T(m.OnAbort(kCoordinator, Abort{3, true})),
            Texts({"record ABORT known to the coordinator"}));
  // No branch of its own to finish (nothing was recorded before), and no peers known; kept (not
  // done) so that the late CanCommit is refused.
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(ABORT) to coordinator"}));
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"send Vote(no) to coordinator"}));
}

TEST(ParticipantMachine, DoCommitToAParticipantThatNeverVotedChangesNothing) {
  ParticipantMachine m(2, kIncarnation);
  EXPECT_EQ(T(m.OnDoCommit(P(0), DoCommit{3, false})), Texts({"send Ack(INIT) to P0"}));
  EXPECT_EQ(m.state(), State::kInit);
}

// ---- rule d: one input at a time, a record before anything that depends on it ----

TEST(ParticipantMachine, QuestionsDuringARecordAreAnsweredOnceItIsDurable) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnPreCommit(PreCommit{8})), Texts({"record PRE"}));
  // A backup's question while PRE is being written: not answered WAIT now and PRE later.
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{1, false, true, RoundId{0, kIncarnation, 1}})),
            Texts({}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(PRE) to coordinator", "arm timer", "send StateReply(PRE) to P0"}));
}

TEST(ParticipantMachine, APreCommitQueuedBehindABackupQuestionIsRefused) {
  ParticipantMachine m(1, kIncarnation);
  EXPECT_EQ(T(m.OnCanCommit(CanCommit{7, 3})), Texts({"record WAIT"}));
  m.OnStateQuery(P(0), StateQuery{1, false, true, RoundId{0, kIncarnation, 1}});
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
  // Adopted, not decided here: the peers hear it at the next timeout, P2 too: it holds the
  // decision but has not heard this participant's.
  EXPECT_EQ(T(m.OnRecorded()), Texts({"fence and commit the branch", "arm timer"}));
  EXPECT_EQ(T(m.OnTimer()), Texts({"send DoCommit to P0", "send DoCommit to P2", "arm timer"}));
}

// The peers whose StateReplies told a participant the decision still wait to hear its outcome:
// it must not write done (and be forgotten by its agent, which then answers as INIT) before
// they acknowledged it, or they ask it for ever.
TEST(ParticipantMachine, AdoptingFromStateRepliesIsNotDoneUntilThosePeersAcknowledged) {
  ParticipantMachine m = Waiting(2);
  m.OnTimer();  // probe
  EXPECT_EQ(T(m.OnStateReply(0, Reply(State::kCommit))), Texts({"record COMMIT"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"fence and commit the branch", "arm timer"}));
  EXPECT_EQ(T(m.OnStateReply(1, Reply(State::kCommit))), Texts({}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({})) << "P0 and P1 have not heard P2's outcome";
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnTimer()), Texts({"send DoCommit to P0", "send DoCommit to P1", "arm timer"}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kCommit})), Texts({}));
  // Every peer confirmed, but a COMMIT adopted from peers waits for the coordinator's DoCommit.
  EXPECT_EQ(T(m.OnAck(P(1), Ack{1, State::kCommit})), Texts({}));
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{4, true})),
            Texts({"record COMMIT known to the coordinator, branch finished"}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(COMMIT) to coordinator", "cancel timer", "record done"}));
}

TEST(ParticipantMachine, MoveToPreMovesAWaitParticipantAskedLastByItsRound) {
  ParticipantMachine m = Waiting(2);
  const RoundId round{0, kIncarnation, 2};
  m.OnStateQuery(P(0), StateQuery{2, false, true, round});
  EXPECT_EQ(m.last_asking_round(), round);
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{2, round})), Texts({"record PRE"}));
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(PRE) to P0", "arm timer"}));
}

TEST(ParticipantMachine, RoundQueriesAndMoveToPreCarryTheRoundsIdentity) {
  ParticipantMachine m = BackupInRound();
  const Effects reply = m.OnStateReply(1, Reply(State::kPre, false, 2));
  EXPECT_TRUE(reply.empty());
  const Effects promotion = [&] {
    m.OnStateReply(2, Reply(State::kWait, false, 2));
    return m.OnRecorded();
  }();
  ASSERT_EQ(T(promotion), Texts({"send MoveToPre to P2", "arm timer"}));
  const auto& move = std::get<MoveToPre>(std::get<Send>(promotion[0]).message);
  // The probe was round 1 of this incarnation, the backup round 2.
  EXPECT_EQ(move.round, (RoundId{0, kIncarnation, 2}));
}

TEST(ParticipantMachine, MoveToPreOfARoundThatIsNotTheLastToAskIsRefused) {
  ParticipantMachine m = Waiting(3, 4);
  const RoundId older{0, kIncarnation, 2};
  m.OnStateQuery(P(0), StateQuery{2, false, true, older});
  m.OnStateQuery(P(2), StateQuery{2, false, true, RoundId{2, kIncarnation, 2}});
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{2, older})), Texts({"send Ack(WAIT) to P0"}));
  EXPECT_EQ(m.state(), State::kWait);
}

TEST(ParticipantMachine, MoveToPreOfTheSameAskersEarlierIncarnationIsRefused) {
  // P0 ran round 2, crashed, restarted and (rule c) asked again with its new round 2.
  ParticipantMachine m = Waiting(2);
  const RoundId before_crash{0, kIncarnation, 2};
  m.OnStateQuery(P(0), StateQuery{2, false, true, before_crash});
  m.OnStateQuery(P(0), StateQuery{2, true, false, RoundId{0, kIncarnation + 1, 2}});
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{2, before_crash})), Texts({"send Ack(WAIT) to P0"}));
  EXPECT_EQ(m.state(), State::kWait);
}

TEST(ParticipantMachine, MoveToPreWithoutAnAskingRoundIsRefused) {
  // A restart forgets the last asking round, as it forgets *asked*.
  ParticipantMachine m = Restarted(2, State::kWait);
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{2, RoundId{0, kIncarnation, 2}})),
            Texts({"send Ack(WAIT) to P0"}));
  // A probe of a participant that has not restarted leads to no promotion: it is not remembered.
  ParticipantMachine n = Waiting(2);
  n.OnStateQuery(P(0), StateQuery{1, false, false, RoundId{0, kIncarnation, 1}});
  EXPECT_FALSE(n.last_asking_round().has_value());
  EXPECT_EQ(T(n.OnMoveToPre(0, MoveToPre{1, RoundId{0, kIncarnation, 1}})),
            Texts({"send Ack(WAIT) to P0"}));
}

TEST(ParticipantMachine, BackupAbandonsItsRoundWhenATargetRefusesThePromotion) {
  ParticipantMachine m = BackupInRound();
  m.OnStateReply(1, Reply(State::kPre, false, 2));
  m.OnStateReply(2, Reply(State::kWait, false, 2));
  m.OnRecorded();  // its own PRE; MoveToPre to P2
  // P2 was asked by a later round: no commit, no abort; a new round at the next timeout.
  EXPECT_EQ(T(m.OnAck(P(2), Ack{2, State::kWait})), Texts({"arm timer"}));
  EXPECT_EQ(m.state(), State::kPre);
  EXPECT_FALSE(m.in_termination_round());
  EXPECT_EQ(T(m.OnTimer()), Texts({"send StateQuery to P1", "send StateQuery to P2", "arm timer"}));
}

TEST(ParticipantMachine, RestartedParticipantsPromotionAbandonsOnARefusal) {
  ParticipantMachine m = Restarted(0, State::kPre);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, true));
  m.OnStateReply(2, Reply(State::kWait, true));
  EXPECT_EQ(T(m.OnAck(P(1), Ack{1, State::kPre})), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(2), Ack{1, State::kWait})), Texts({"arm timer"}));
  EXPECT_EQ(m.state(), State::kPre);
  EXPECT_FALSE(m.in_termination_round());
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
  ParticipantMachine m = ParticipantMachine::Recovered(
      RecoveredParticipant{1, 3, State::kCommit, /*has_branch=*/true, kIncarnation + 1});
  EXPECT_EQ(T(m.OnRestart()), Texts({"fence and commit the branch", "send DoCommit to P0",
                                     "send DoCommit to P2", "arm timer"}));
}

// ---- decisions, duplicates, confirmation, heuristics ----

TEST(ParticipantMachine, CoordinatorsDoCommitIsRecordedBeforeTheAcknowledgement) {
  ParticipantMachine m = Waiting(1);
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{9, /*branch_done=*/true})),
            Texts({"record COMMIT known to the coordinator, branch finished"}));
  EXPECT_FALSE(m.coordinator_knows_outcome()) << "not before the record is durable";
  // The coordinator committed the branch itself: no fence.
  EXPECT_EQ(T(m.OnRecorded()), Texts({"send Ack(COMMIT) to coordinator", "arm timer"}));
  EXPECT_TRUE(m.coordinator_knows_outcome());
}

// ---- a COMMIT is forgotten only once the coordinator is known to hold it ----

// P0 of two, the backup: P1 answered PRE, so P0's round commits without the coordinator.
ParticipantMachine CommittedByItsOwnRound() {
  ParticipantMachine m = Waiting(0, 2);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kPre, false, 1));
  m.OnStateReply(1, Reply(State::kPre, false, 2));  // the backup round: promote, then commit
  m.OnRecorded();                                   // its own PRE
  m.OnRecorded();                                   // COMMIT
  return m;
}

TEST(ParticipantMachine, ACommitDecidedByTerminationIsNeverDoneUntilTheCoordinatorsDoCommit) {
  ParticipantMachine m = CommittedByItsOwnRound();
  ASSERT_EQ(m.state(), State::kCommit);
  EXPECT_FALSE(m.coordinator_knows_outcome());
  // The branch is finished and the only peer confirmed: everything but the coordinator.
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(1), Ack{2, State::kCommit})), Texts({}));
  EXPECT_FALSE(m.done());
  // Nothing is left for a timer to do: it fires once more and is not re-armed (the
  // coordinator's recovery sends its DoCommit unasked).
  EXPECT_EQ(T(m.OnTimer()), Texts({}));
  // A peer's DoCommit is no news from the coordinator: answered, nothing recorded.
  EXPECT_EQ(T(m.OnDoCommit(P(1), DoCommit{5, false})), Texts({"send Ack(COMMIT) to P1"}));
  EXPECT_FALSE(m.done());
  // Questions are answered COMMIT meanwhile, from the kept record.
  EXPECT_EQ(T(m.OnStateQuery(kCoordinator, StateQuery{6, false, false, RoundId{}})),
            Texts({"send StateReply(COMMIT) to coordinator"}));
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{7, true})),
            Texts({"record COMMIT known to the coordinator, branch finished"}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(COMMIT) to coordinator", "cancel timer", "record done"}));
  EXPECT_TRUE(m.done());
}

TEST(ParticipantMachine, TheCoordinatorsDoCommitToADecidedCommitIsRecordedBeforeTheAck) {
  ParticipantMachine m = CommittedByItsOwnRound();
  // The upgrade, not an Ack at once: with the Ack the coordinator may forget its decision.
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{7, false})),
            Texts({"record COMMIT known to the coordinator"}));
  EXPECT_TRUE(m.awaiting_record());
  EXPECT_FALSE(m.coordinator_knows_outcome());
  // The coordinator asks again meanwhile (its recovery): queued behind the record.
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{8, false})), Texts({}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(COMMIT) to coordinator", "send Ack(COMMIT) to coordinator"}));
  EXPECT_TRUE(m.coordinator_knows_outcome());
  EXPECT_EQ(m.state(), State::kCommit);
  // Not done yet: the branch (the coordinator did not say it finished it) and the peer.
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(1), Ack{2, State::kCommit})), Texts({"cancel timer", "record done"}));
}

TEST(ParticipantMachine, ARecoveredCommitTheCoordinatorSentIsDoneOnceItsPeersConfirm) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{
      1, 2, State::kCommit, /*has_branch=*/true, kIncarnation + 1,
      /*coordinator_knows_outcome=*/true});
  EXPECT_TRUE(m.coordinator_knows_outcome());
  EXPECT_EQ(T(m.OnRestart()),
            Texts({"fence and commit the branch", "send DoCommit to P0", "arm timer"}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kCommit})), Texts({"cancel timer", "record done"}));
}

// A decision the coordinator sent with branch_done is recorded with the branch finished, and a
// restart then neither fences nor finishes it: that fence would end the application's session
// with that id, long since back in its pool and at other work.
TEST(ParticipantMachine, ARecoveredDecisionWhoseBranchTheCoordinatorFinishedIsNotFencedAgain) {
  ParticipantMachine m = Waiting(1, 2);
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{7, /*branch_done=*/true})),
            Texts({"record COMMIT known to the coordinator, branch finished"}));
  ParticipantMachine restarted = ParticipantMachine::Recovered(RecoveredParticipant{
      1, 2, State::kCommit, /*has_branch=*/true, kIncarnation + 1,
      /*coordinator_knows_outcome=*/true, /*branch_finished=*/true});
  EXPECT_EQ(T(restarted.OnRestart()), Texts({"send DoCommit to P0", "arm timer"}));
  EXPECT_EQ(T(restarted.OnAck(P(0), Ack{1, State::kCommit})),
            Texts({"cancel timer", "record done"}));
  // Without branch_done the agent finishes the branch itself, after its fence, and says so only
  // in memory: a restart finishes it again.
  ParticipantMachine unfinished = Waiting(1, 2);
  EXPECT_EQ(T(unfinished.OnAbort(kCoordinator, Abort{7, /*branch_done=*/false})),
            Texts({"record ABORT known to the coordinator"}));
  EXPECT_EQ(T(unfinished.OnRecorded())[0], "fence and roll back the branch");
}

// The agent kill soak's leak: the peer finished, wrote done and forgot the participant, and its
// agent restarted (losing the outcome it kept in memory), so it answers the decision INIT. A
// COMMIT means that peer voted yes: INIT can only be the forgotten one, which heard ours.
TEST(ParticipantMachine, ACommitIsDoneWhenAPeerAnswersThatItForgotTheTransaction) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{
      1, 2, State::kCommit, /*has_branch=*/true, kIncarnation + 1,
      /*coordinator_knows_outcome=*/true});
  EXPECT_EQ(T(m.OnRestart()),
            Texts({"fence and commit the branch", "send DoCommit to P0", "arm timer"}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kInit})), Texts({"cancel timer", "record done"}));
  EXPECT_TRUE(m.done());
}

// Not for an ABORT: a peer that never voted answers INIT too, and must first record the ABORT
// (rule d) that makes its late CanCommit be answered no; the Abort itself makes it do so.
TEST(ParticipantMachine, AnAbortIsNotSettledByAPeerThatAnswersInit) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{
      1, 2, State::kAbort, /*has_branch=*/true, kIncarnation + 1,
      /*coordinator_knows_outcome=*/true});
  EXPECT_EQ(T(m.OnRestart()),
            Texts({"fence and roll back the branch", "send Abort to P0", "arm timer"}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kInit})), Texts({}));
  EXPECT_FALSE(m.done());
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kAbort})), Texts({"cancel timer", "record done"}));
}

TEST(ParticipantMachine, ARecoveredCommitWithoutTheCoordinatorWaitsForItsDoCommit) {
  ParticipantMachine m = ParticipantMachine::Recovered(RecoveredParticipant{
      1, 2, State::kCommit, /*has_branch=*/true, kIncarnation + 1,
      /*coordinator_knows_outcome=*/false});
  EXPECT_FALSE(m.coordinator_knows_outcome());
  EXPECT_EQ(T(m.OnRestart()),
            Texts({"fence and commit the branch", "send DoCommit to P0", "arm timer"}));
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  EXPECT_EQ(T(m.OnAck(P(0), Ack{1, State::kCommit})), Texts({}));
  EXPECT_FALSE(m.done());
  // Asked after the restart, it answers COMMIT: it kept the participant.
  EXPECT_EQ(T(m.OnStateQuery(kCoordinator, StateQuery{2, false, false, RoundId{}})),
            Texts({"send StateReply(COMMIT, restarted) to coordinator"}));
  EXPECT_EQ(T(m.OnDoCommit(kCoordinator, DoCommit{3, false})),
            Texts({"record COMMIT known to the coordinator, branch finished"}));
  EXPECT_EQ(T(m.OnRecorded()),
            Texts({"send Ack(COMMIT) to coordinator", "cancel timer", "record done"}));
}

TEST(ParticipantMachine, AnAbortIsDoneWithoutTheCoordinator) {
  // The backup's round: everyone counted is WAIT, so it aborts; the coordinator never speaks.
  ParticipantMachine m = Waiting(0, 2);
  m.OnTimer();
  m.OnStateReply(1, Reply(State::kWait, false, 1));
  EXPECT_EQ(T(m.OnStateReply(1, Reply(State::kWait, false, 2))), Texts({"record ABORT"}));
  m.OnRecorded();
  EXPECT_FALSE(m.coordinator_knows_outcome());
  EXPECT_EQ(T(m.OnBranchFinished()), Texts({}));
  // A forgotten ABORT answered under rule d is the truth: done once the peer confirmed.
  EXPECT_EQ(T(m.OnAck(P(1), Ack{2, State::kAbort})), Texts({"cancel timer", "record done"}));
  // The coordinator's Abort to an ABORT adopted from a peer is answered, never recorded again.
  ParticipantMachine n = Waiting(1, 2);
  n.OnAbort(P(0), Abort{3, false});
  n.OnRecorded();
  EXPECT_EQ(T(n.OnAbort(kCoordinator, Abort{4, /*branch_done=*/true})),
            Texts({"send Ack(ABORT) to coordinator", "cancel timer", "record done"}));
  EXPECT_FALSE(n.coordinator_knows_outcome());
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
  EXPECT_EQ(T(m.OnMoveToPre(0, MoveToPre{12, RoundId{0, kIncarnation, 12}})),
            Texts({"send Ack(COMMIT) to P0"}));
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
  EXPECT_EQ(T(m.OnStateQuery(P(0), StateQuery{5, false, true, RoundId{0, kIncarnation, 5}})),
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

// ---- a late MoveToPre from a crashed backup ----

// Delivers `message`, sent by peer `from`, to `to`; every record it asks for becomes durable.
Effects DeliverDurably(ParticipantMachine& to, uint32_t from, const OutMessage& message) {
  Effects out = std::visit(
      [&](const auto& m) -> Effects {
        using M = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<M, Ack>) return to.OnAck(P(from), m);
        if constexpr (std::is_same_v<M, StateQuery>) return to.OnStateQuery(P(from), m);
        if constexpr (std::is_same_v<M, StateReply>) return to.OnStateReply(from, m);
        if constexpr (std::is_same_v<M, MoveToPre>) return to.OnMoveToPre(from, m);
        if constexpr (std::is_same_v<M, DoCommit>) return to.OnDoCommit(P(from), m);
        if constexpr (std::is_same_v<M, Abort>) return to.OnAbort(P(from), m);
        return {};  // a Vote goes to the coordinator
      },
      message);
  while (to.awaiting_record()) {
    Effects more = to.OnRecorded();
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

Effects Durably(ParticipantMachine& m, Effects out) {
  while (m.awaiting_record()) {
    Effects more = m.OnRecorded();
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

// The sends in `effects` to participant `to`.
std::vector<OutMessage> SentTo(const Effects& effects, uint32_t to) {
  std::vector<OutMessage> sent;
  for (const Effect& effect : effects) {
    const auto* send = std::get_if<Send>(&effect);
    if (send != nullptr && send->to == P(to)) sent.push_back(send->message);
  }
  return sent;
}

// One question-and-answer exchange of `asker`'s round: its sends in `asked` go to the live
// peers (`up`, by number; nullptr: down, so unreachable), whose answers come back at once.
// Returns what the asker did with the answers.
Effects Exchange(std::vector<ParticipantMachine*> up, uint32_t asker, const Effects& asked) {
  Effects out;
  ParticipantMachine& a = *up[asker];
  for (uint32_t peer = 0; peer < up.size(); ++peer) {
    if (peer == asker) continue;
    for (const OutMessage& question : SentTo(asked, peer)) {
      Effects reaction;
      if (up[peer] == nullptr) {
        reaction = Durably(a, a.OnPeerUnreachable(peer));
      } else {
        for (const OutMessage& answer : SentTo(DeliverDurably(*up[peer], asker, question), asker)) {
          Effects more = DeliverDurably(a, peer, answer);
          reaction.insert(reaction.end(), more.begin(), more.end());
        }
      }
      out.insert(out.end(), reaction.begin(), reaction.end());
    }
  }
  return out;
}

// Four participants; the coordinator's PreCommit reached only P1, then the coordinator died.
// P0, the backup, promotes and crashes: its MoveToPre to P2 is lost, the one to P3 delayed. P2,
// the next backup, asks P3 (WAIT), aborts and crashes with its Aborts lost. P0's MoveToPre then
// reaches P3: it must not move P3 to PRE, or P3, alone, would commit beside P2's ABORT.
TEST(ParticipantMachine, LateMoveToPreFromACrashedBackupIsRefused) {
  ParticipantMachine p0 = Waiting(0, 4);
  ParticipantMachine p1 = Waiting(1, 4);
  ParticipantMachine p2 = Waiting(2, 4);
  ParticipantMachine p3 = Waiting(3, 4);
  p1.OnPreCommit(PreCommit{8});
  p1.OnRecorded();
  ASSERT_EQ(p1.state(), State::kPre);

  // 1. P0 probes, is the backup, runs its round (P1 PRE, P2 and P3 WAIT) and promotes.
  Effects probe = p0.OnTimer();
  Effects round = Exchange({&p0, &p1, &p2, &p3}, 0, probe);
  Effects promotion = Durably(p0, Exchange({&p0, &p1, &p2, &p3}, 0, round));
  ASSERT_EQ(p0.state(), State::kPre);
  ASSERT_EQ(SentTo(promotion, 2).size(), 1u);
  const std::vector<OutMessage> late = SentTo(promotion, 3);
  ASSERT_EQ(late.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<MoveToPre>(late[0]));
  // P0 and P1 crash; the MoveToPre to P2 is lost, the one to P3 still in flight.

  // 2. P2: P0 and P1 unreachable, so P2 is the backup; P3 answers WAIT; P2 aborts.
  probe = p2.OnTimer();
  round = Exchange({nullptr, nullptr, &p2, &p3}, 2, probe);
  Durably(p2, Exchange({nullptr, nullptr, &p2, &p3}, 2, round));
  ASSERT_EQ(p2.state(), State::kAbort);
  // P2 crashes; its Aborts are lost.

  // 3. P0's late MoveToPre reaches P3.
  EXPECT_EQ(T(DeliverDurably(p3, 0, late[0])), Texts({"send Ack(WAIT) to P0"}));
  EXPECT_EQ(p3.state(), State::kWait);

  // 4. P3 alone: everyone else unreachable, it is the backup and decides over its own state.
  probe = p3.OnTimer();
  round = Exchange({nullptr, nullptr, nullptr, &p3}, 3, probe);
  Durably(p3, Exchange({nullptr, nullptr, nullptr, &p3}, 3, round));
  ASSERT_TRUE(IsDecided(p3.state()));
  EXPECT_EQ(p3.state(), p2.state()) << "agreement: P2 " << ParticipantStateName(p2.state())
                                    << ", P3 " << ParticipantStateName(p3.state());
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
  EXPECT_TRUE(RestartedMayDecide(0, all_restarted, 2));
  EXPECT_FALSE(RestartedMayDecide(0, all_restarted, 3));  // one peer did not answer
  const std::vector<PeerAnswer> one_live = {{1, State::kWait, true}, {2, State::kWait, false}};
  EXPECT_FALSE(RestartedMayDecide(0, one_live, 2));
  const std::vector<PeerAnswer> init_peer = {{1, State::kInit, false}, {2, State::kWait, true}};
  EXPECT_TRUE(RestartedMayDecide(0, init_peer, 2));
}

// Two restarted participants running rule c together void each other's MoveToPre and abandon
// in turn for ever; only the lowest-numbered undecided one runs it. A decided or INIT lower peer
// does not hold a higher one back.
TEST(Termination, OnlyTheLowestNumberedUndecidedRestartedParticipantRunsRuleC) {
  const std::vector<PeerAnswer> seen_by_2 = {{0, State::kWait, true}, {1, State::kPre, true}};
  EXPECT_FALSE(RestartedMayDecide(2, seen_by_2, 2));
  const std::vector<PeerAnswer> seen_by_0 = {{1, State::kPre, true}, {2, State::kWait, true}};
  EXPECT_TRUE(RestartedMayDecide(0, seen_by_0, 2));
  const std::vector<PeerAnswer> lower_done = {{0, State::kAbort, true}, {1, State::kInit, false}};
  EXPECT_TRUE(RestartedMayDecide(2, lower_done, 2));
}

}  // namespace
}  // namespace xa::three_phase
