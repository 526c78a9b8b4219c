// ParticipantMachine: the 3PC participant rules for one branch of one transaction at an agent,
// as a pure, deterministic state machine. The design and the reasons behind every rule are in
// docs/three-phase-commit.md ("States of a participant", "The protocol", "Partitions"); this
// header says what each input does in each state.
//
// No I/O, no threads, no clock. Every input is a method call; each returns the ordered list of
// effects the agent must carry out, in order:
//   RecordState   write the state durably (kParticipantWait, kParticipantPreCommit,
//                 kParticipantDecision, with coordinator_knows_outcome as the effect says; a
//                 decision the participant already holds, recorded again with it set, is the
//                 upgrade of its record). Always the LAST effect of its list: the machine then
//                 waits for OnRecorded(), which returns the effects that depend on the record
//                 (the vote, the acknowledgement, the sends of a decision, the fence). Inputs that
//                 arrive meanwhile are queued inside the machine and handled, in arrival order,
//                 after the record is durable: a StateQuery never sees a state that is not yet
//                 durable, and never interleaves with a PreCommit (rule e).
//   Send          a message to the coordinator or to a participant number.
//   FinishBranch  fence and finish the branch: KILL the application's MariaDB session (the fence
//                 session id from CanCommit), then XA COMMIT / XA ROLLBACK (COMMIT PREPARED /
//                 ROLLBACK PREPARED) through the phase-2 rules. Call OnBranchFinished() once done.
//   ArmTimer      (re)start the termination timer (the agent's termination timeout);
//   CancelTimer   stop it.
//   ReportHeuristicMixed  a peer holds the other outcome (a partition healed): record
//                 kHeuristic, count it, log it.
//   RecordDone    write kParticipantDone (lazily): the branch is finished and every peer holds
//                 the same outcome; the agent may forget the participant. Never for an ABORT
//                 recorded under rule d by a participant that never saw its participant list:
//                 that record must outlive any late CanCommit, which it answers no. Never for a
//                 COMMIT until the coordinator is known to hold it (coordinator_knows_outcome():
//                 the coordinator itself sent DoCommit, and that is durable): once forgotten, a
//                 restarted agent answers a question about the participant ABORT (rule d), and
//                 the coordinator's recovery, holding only its pre-commit, would take that for
//                 the outcome. The coordinator keeps its commit decision until every agent
//                 acknowledged its DoCommit, so whichever side forgets a COMMIT last, the other
//                 still holds it. An ABORT is forgotten without the coordinator: a forgotten
//                 ABORT answered under rule d is the truth (presumed abort agrees).
//
// The machine is single-threaded by construction: the agent must serialise all calls for one
// transaction (one strand per transaction), including OnRecorded() and the timer.
//
// What each input does (own state → behaviour):
//   CanCommit   INIT → record WAIT, then Vote(yes) and arm the timer (a yes is durable first).
//               WAIT, PRE, COMMIT → Vote(yes) again; ABORT → Vote(no).
//   PreCommit   WAIT, neither asked nor restarted → record PRE, then Ack(PRE) to the
//               coordinator and re-arm the timer. INIT → record ABORT, then Ack(ABORT) (rule d:
//               an unknown transaction aborts). Otherwise → Ack(own state), nothing changes:
//               the coordinator then cannot collect a full set of PRE acknowledgements.
//   DoCommit    WAIT/PRE → record COMMIT, then fence-and-finish (unless branch_done), Ack(COMMIT).
//               COMMIT → Ack(COMMIT); but from the coordinator to a COMMIT it is not yet known to
//               hold (decided by a termination round or adopted from a peer) → record COMMIT
//               again with coordinator_knows_outcome, then Ack(COMMIT). Recorded before the
//               Ack: the coordinator forgets its decision once every agent acknowledged it, and
//               an agent that lost the upgrade in a crash after acknowledging would never hear
//               DoCommit again, and keep the participant for ever.
//               INIT → Ack(INIT), nothing changes (it never voted).
//               ABORT → ReportHeuristicMixed, Ack(ABORT).
//               From the coordinator, the decision recorded carries coordinator_knows_outcome.
//   Abort       INIT/WAIT/PRE → record ABORT, then fence-and-finish (unless branch_done or INIT,
//               which holds no branch of its own), Ack(ABORT). ABORT → Ack(ABORT).
//               COMMIT → ReportHeuristicMixed, Ack(COMMIT). From the coordinator, the decision
//               recorded carries coordinator_knows_outcome (an ABORT is never upgraded: it is
//               forgotten without it).
//   StateQuery  INIT → record ABORT, then StateReply(ABORT) (rule d: a transaction it has no
//               record of aborts, so a late CanCommit is answered no; it is never a backup).
//               Any other state → StateReply(state, restarted, undecided-and-never-restarted).
//               A backup round's query (from a participant that has not restarted) sets *asked*.
//               A participant's query that may lead to a promotion (a backup round's, or any
//               from a restarted participant, whose rule c may promote) makes its round the
//               *last asking round* (memory only, like *asked*: a restart forgets it).
//   MoveToPre   WAIT, and the MoveToPre's round is the last asking round → record PRE, then
//               Ack(PRE). Otherwise → Ack(own state), nothing changes: a MoveToPre of an older
//               round (a crashed backup's, delivered late) must not move a participant that a
//               later round counted as WAIT and may have aborted on.
//   Timer       INIT: nothing. Decided: send the decision again to every peer that has not
//               confirmed it, re-arm (not when only the coordinator's DoCommit is awaited:
//               the coordinator's recovery sends it, and a timer would only fire for nothing). Undecided, between rounds: start a probe (a StateQuery
//               to every peer, not a backup round). During a round: peers that did not answer
//               count as unreachable and the round is evaluated.
//   StateReply / Ack / PeerUnreachable  collected by the running round; a decision in any of
//               them is adopted at once (rule a). A decided participant reads them as
//               confirmations (same outcome) or as a split (ReportHeuristicMixed).
//   Termination, after a probe with no decision seen:
//     not restarted, elected backup (termination.h IsBackup) → backup round: set own *asked*,
//       StateQuery(backup round) to every peer, then rule b over its own state and the answers
//       of peers that have not restarted (DecideTermination): commit, abort, or promote (record
//       PRE itself if WAIT, MoveToPre every counted WAIT peer, wait for their acks or for them
//       to become unreachable, then commit). It records the decision, then tells every peer.
//       A promotion target that answers Ack with any state but PRE (a later round asked it, or
//       it restarted) makes the backup abandon the round without deciding: it tries a new
//       round at its next timeout.
//     not restarted, not the backup → wait for the next timeout (the backup may crash).
//     restarted → rule c: only when every peer answered, none is undecided and never
//       restarted, and no lower-numbered peer is undecided (RestartedMayDecide: one rule c
//       runner at a time), rule b over all participants; otherwise wait. Its
//       promotion follows the backup's rules (MoveToPre of its round, abandon on a refusal).
//   Decided: the outcome is kept, and sent to peers, until every peer confirmed it (an Ack to
//     our decision, or its own DoCommit/Abort carrying the same outcome; not a StateReply or an
//     Ack to a question or a MoveToPre, which the peer sent without having heard ours; to a
//     COMMIT, also an Ack(INIT): a peer that voted yes holds no participant only once it was
//     done, so it heard ours, and its agent restarted since), and a
//     COMMIT also until the coordinator sent it (see RecordDone); a peer holding the other
//     outcome is reported once as heuristic-mixed and is not asked again. Duplicates and late
//     messages (PreCommit after a decision, a second DoCommit, a StateQuery after done) are
//     answered with the current state and change nothing, but for the coordinator's DoCommit
//     to a COMMIT it is not yet known to hold (the upgrade above).
//
// Who hears a decision: a participant that decided by its own termination round tells every
// peer at once; one that adopted a decision (from the coordinator or a peer) sends it to its
// peers at its next timeout, off the commit's latency path.

#ifndef XA_SRC_THREE_PHASE_PARTICIPANT_H_
#define XA_SRC_THREE_PHASE_PARTICIPANT_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "src/three_phase/participant_state.h"
#include "src/three_phase/termination.h"

namespace xa::three_phase {

// The coordinator, or a participant by its number.
struct Endpoint {
  bool coordinator = false;
  uint32_t number = 0;  // a participant's number; unused for the coordinator

  static Endpoint Coordinator() { return Endpoint{true, 0}; }
  static Endpoint Participant(uint32_t number) { return Endpoint{false, number}; }
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
std::string ToString(Endpoint endpoint);

// The messages as the machine reads and writes them: the fields the rules use, no bytes (the
// agent maps them to and from the wire format of agent_messages.h). request_id pairs a reply
// with its request.
struct CanCommit {
  uint64_t request_id = 0;
  uint32_t participant_count = 0;  // the size of the transaction's participant list
};
struct Vote {
  uint64_t request_id = 0;
  bool yes = false;
};
struct PreCommit {
  uint64_t request_id = 0;
};
struct DoCommit {
  uint64_t request_id = 0;
  bool branch_done = false;  // the sender already committed this branch in its database
};
struct Abort {
  uint64_t request_id = 0;
  bool branch_done = false;  // the sender already rolled this branch back in its database
};
// Names one termination round of one participant, uniquely across its restarts: a MoveToPre
// is accepted only from the round that asked the participant last (see MoveToPre above).
struct RoundId {
  uint32_t asker = 0;        // the participant running the round
  uint64_t incarnation = 0;  // the asker's incarnation (see ParticipantMachine's constructor)
  uint64_t counter = 0;      // the asker's round counter within that incarnation (from 1)
  friend bool operator==(const RoundId&, const RoundId&) = default;
};

struct StateQuery {
  uint64_t request_id = 0;
  bool asker_restarted = false;
  bool backup_round = false;
  RoundId round;  // the asking participant's round (unused in the coordinator's queries)
};
struct StateReply {
  uint64_t request_id = 0;
  ParticipantState state = ParticipantState::kInit;
  bool restarted = false;
  bool undecided_never_restarted = false;
};
struct MoveToPre {
  uint64_t request_id = 0;
  RoundId round;  // the round whose StateQuery counted the target as WAIT
};
struct Ack {
  uint64_t request_id = 0;
  ParticipantState state = ParticipantState::kInit;  // the sender's state after the message
};
// What the machine sends.
using OutMessage = std::variant<Vote, Ack, StateQuery, StateReply, MoveToPre, DoCommit, Abort>;
std::string ToString(const OutMessage& message);

// Effects (see the header comment).
struct RecordState {
  ParticipantState state = ParticipantState::kInit;
  // A decision the coordinator itself sent (DoCommit or Abort): LogRecord's
  // coordinator_knows_outcome. Only a COMMIT with it may ever be done.
  bool coordinator_knows_outcome = false;
  // A decision whose branch is finished (the coordinator said so: branch_done): LogRecord's
  // branch_finished, so that a restarted agent neither fences nor finishes it again.
  bool branch_finished = false;
};
struct Send {
  Endpoint to;
  OutMessage message;
};
struct FinishBranch {
  bool commit = false;  // false: roll back
};
struct ArmTimer {};
struct CancelTimer {};
struct ReportHeuristicMixed {
  Endpoint peer;
  ParticipantState own = ParticipantState::kInit;
  ParticipantState peer_state = ParticipantState::kInit;
};
struct RecordDone {};
using Effect = std::variant<RecordState, Send, FinishBranch, ArmTimer, CancelTimer,
                            ReportHeuristicMixed, RecordDone>;
using Effects = std::vector<Effect>;
std::string ToString(const Effect& effect);

// Test-only: each value breaks one rule the design says must never be broken, so that the
// simulation test can prove it catches the mistake. Never set outside tests.
enum class BrokenRuleForTesting {
  kNone,
  kTextbookTimeouts,         // on timeout WAIT aborts and PRE commits, without asking anyone
  kNoPromotionBeforeCommit,  // the backup commits on a PRE without moving WAIT peers to PRE
  kRestartedDecidesAlone,    // a restarted participant applies rule b without rule c's wait
  kEveryoneTerminates,       // every undecided participant runs a backup round (no election)
  kCountRestartedStates,     // the backup counts restarted participants' states in rule b
  kMoveToPreFromAnyRound,    // MoveToPre moves WAIT to PRE whichever round sent it
  kForgetsCommitWithoutTheCoordinator,  // done for a COMMIT the coordinator never sent
};

struct ParticipantOptions {
  BrokenRuleForTesting broken = BrokenRuleForTesting::kNone;
};

// A participant as the agent's log holds it after a restart.
struct RecoveredParticipant {
  uint32_t number = 0;
  uint32_t participant_count = 0;
  ParticipantState state = ParticipantState::kWait;  // WAIT, PRE, COMMIT or ABORT
  // False for a decision recorded without WAIT (an Abort heard before any CanCommit): there is
  // no branch of this participant to finish.
  bool has_branch = true;
  // The incarnation of the agent run that recovered it (see ParticipantMachine's constructor).
  uint64_t incarnation = 0;
  // COMMIT or ABORT: the decision record says the coordinator itself sent it (DoCommit or
  // Abort). A recovered COMMIT without it is never done until the coordinator's DoCommit.
  bool coordinator_knows_outcome = false;
  // COMMIT or ABORT: the decision record says the branch is finished in its database (the
  // coordinator's branch_done): nothing to fence or finish after the restart.
  bool branch_finished = false;
};

class ParticipantMachine {
 public:
  // A participant the agent has no record of (INIT): made for a CanCommit, or to answer a
  // StateQuery or a decision for a transaction it does not know.
  // `incarnation` names this run of the agent and must differ in every run (the agent's restart
  // counter, incremented and synced in its log at every start): with the participant's number
  // and a per-machine counter it makes every termination round's RoundId unique across
  // restarts, so that a MoveToPre a crashed earlier run sent is never taken for a current one.
  ParticipantMachine(uint32_t number, uint64_t incarnation, ParticipantOptions options = {});
  // A participant recovered from the agent's log after a crash: *restarted*. Call OnRestart()
  // for its first effects.
  static ParticipantMachine Recovered(const RecoveredParticipant& recovered,
                                      ParticipantOptions options = {});

  Effects OnRestart();
  Effects OnCanCommit(const CanCommit& message);
  Effects OnPreCommit(const PreCommit& message);
  Effects OnDoCommit(Endpoint from, const DoCommit& message);
  Effects OnAbort(Endpoint from, const Abort& message);
  Effects OnStateQuery(Endpoint from, const StateQuery& message);
  Effects OnStateReply(uint32_t peer, const StateReply& message);
  Effects OnMoveToPre(uint32_t peer, const MoveToPre& message);
  Effects OnAck(Endpoint from, const Ack& message);
  Effects OnTimer();
  // The agent could not reach `peer` (connection refused or lost) for the running round.
  Effects OnPeerUnreachable(uint32_t peer);
  // The RecordState last returned is durable.
  Effects OnRecorded();
  // The FinishBranch last returned succeeded (or the branch was already finished).
  Effects OnBranchFinished();

  uint32_t number() const { return number_; }
  // The size of the participant list (0 until CanCommit, for an INIT participant).
  uint32_t participant_count() const { return participant_count_; }
  // The state last recorded durably: what the participant answers with.
  ParticipantState state() const { return state_; }
  bool awaiting_record() const { return recording_.has_value(); }
  bool asked() const { return asked_; }
  // The round whose MoveToPre this participant would accept, if any.
  const std::optional<RoundId>& last_asking_round() const { return last_asking_round_; }
  bool restarted() const { return restarted_; }
  // The decision recorded durably says that the coordinator itself sent it (see RecordDone).
  bool coordinator_knows_outcome() const { return coordinator_knows_outcome_; }
  bool done() const { return done_emitted_; }
  // A termination round (probe, backup round or promotion) is waiting for peers' answers.
  bool in_termination_round() const { return phase_ != Phase::kIdle; }

 private:
  // An input kept while a record is in flight (rule e), handled after OnRecorded().
  struct TimerFired {};
  struct PeerUnreachable {
    uint32_t peer = 0;
  };
  struct BranchFinished {};
  struct DoCommitFrom {
    Endpoint from;
    DoCommit message;
  };
  struct AbortFrom {
    Endpoint from;
    Abort message;
  };
  struct StateQueryFrom {
    Endpoint from;
    StateQuery message;
  };
  struct StateReplyFrom {
    uint32_t peer = 0;
    StateReply message;
  };
  struct MoveToPreFrom {
    uint32_t peer = 0;
    MoveToPre message;
  };
  struct AckFrom {
    Endpoint from;
    Ack message;
  };
  using QueuedInput =
      std::variant<CanCommit, PreCommit, DoCommitFrom, AbortFrom, StateQueryFrom, StateReplyFrom,
                   MoveToPreFrom, AckFrom, TimerFired, PeerUnreachable, BranchFinished>;
  // What the machine does once the state it is recording is durable.
  struct AfterRecord {
    // kCoordinatorHoldsCommit: the COMMIT already held is now recorded as the coordinator's.
    enum class Kind {
      kVoteYes,
      kAckPre,
      kStartPromotion,
      kDecided,
      kCoordinatorHoldsCommit
    } kind = Kind::kDecided;
    std::optional<Endpoint> reply_to;  // gets Ack(state) (kAckPre, kDecided)
    uint64_t request_id = 0;
    bool reply_with_state = false;  // kDecided: reply_to asked a StateQuery: StateReply, not Ack
    bool tell_peers_now = false;    // kDecided: this participant decided by its own round
    bool branch_done = false;       // kDecided: the sender of the decision finished the branch
    // kDecided, kCoordinatorHoldsCommit: the coordinator itself sent the decision.
    bool coordinator_knows_outcome = false;
  };
  // Per-peer knowledge: the running round's answer, and whether the peer holds our decision.
  struct PeerView {
    bool answered = false;   // the running round has its answer (or it is unreachable)
    bool reachable = false;  // answered with a StateReply or an Ack
    ParticipantState state = ParticipantState::kInit;
    bool restarted = false;
    bool promotion_target = false;  // awaiting its Ack(PRE)
    bool settled = false;           // confirmed our decision, or reported as heuristic-mixed
  };
  enum class Phase { kIdle, kProbing, kBackupRound, kPromoting };

  Effects Handle(QueuedInput input);
  Effects Dispatch(const QueuedInput& input);
  void HandleCanCommit(const CanCommit& message, Effects& out);
  void HandlePreCommit(const PreCommit& message, Effects& out);
  void HandleDecisionMessage(Endpoint from, ParticipantState decision, uint64_t request_id,
                             bool branch_done, Effects& out);
  void HandleStateQuery(Endpoint from, const StateQuery& message, Effects& out);
  void HandleStateReply(uint32_t peer, const StateReply& message, Effects& out);
  void HandleMoveToPre(uint32_t peer, const MoveToPre& message, Effects& out);
  void HandleAck(Endpoint from, const Ack& message, Effects& out);
  void HandleTimer(Effects& out);
  void HandlePeerUnreachable(uint32_t peer, Effects& out);
  void HandleRecorded(Effects& out);
  void HandleBranchFinished(Effects& out);

  void SetParticipantCount(uint32_t count);
  void Record(ParticipantState state, AfterRecord after, Effects& out);
  void StartRound(Phase phase, Effects& out);
  bool RoundComplete() const;
  void EvaluateRound(Effects& out);
  void EvaluateProbe(Effects& out);
  void EvaluateBackupRound(Effects& out);
  void ApplyTermination(std::span<const PeerAnswer> counted, Effects& out);
  void StartPromotion(Effects& out);
  void MaybeFinishPromotion(Effects& out);
  void Decide(ParticipantState decision, AfterRecord after, Effects& out);
  void SendDecisionToUnsettledPeers(Effects& out);
  void NotePeerOutcome(Endpoint peer, ParticipantState peer_state, Effects& out);
  void MaybeDone(Effects& out);
  void FinishDecidedStep(Effects& out);
  bool EveryPeerSettled() const;
  // Decided COMMIT, but not (durably) by the coordinator's own DoCommit: never done.
  bool CommitTheCoordinatorMayNotHold() const;
  // Branch finished, every peer settled: done but for the coordinator's DoCommit.
  bool AwaitsOnlyTheCoordinator() const;
  std::vector<PeerAnswer> Answers(bool include_restarted) const;
  bool Broken(BrokenRuleForTesting rule) const { return options_.broken == rule; }
  // The participant list is known (a CanCommit arrived, or the log had a Wait record).
  bool KnowsItsTransaction() const { return participant_count_ > 0; }
  RoundId CurrentRound() const { return RoundId{number_, incarnation_, round_id_}; }
  bool AcceptsMoveToPre(uint32_t peer, const MoveToPre& message) const;
  void AbandonPromotion(Effects& out);

  uint32_t number_;
  uint64_t incarnation_;
  ParticipantOptions options_;
  uint32_t participant_count_ = 0;  // 0 until CanCommit (an INIT participant knows no list)
  ParticipantState state_ = ParticipantState::kInit;
  std::optional<RecordState> recording_;
  AfterRecord after_record_;
  std::deque<QueuedInput> queued_;
  bool asked_ = false;
  std::optional<RoundId> last_asking_round_;
  bool restarted_ = false;
  bool has_branch_ = false;      // WAIT was recorded: a prepared branch belongs to this machine
  bool branch_finished_ = true;  // no FinishBranch is outstanding (none without a branch)
  bool done_emitted_ = false;
  bool coordinator_knows_outcome_ = false;  // as recorded durably with the decision
  Phase phase_ = Phase::kIdle;
  uint64_t round_id_ = 0;  // request id of the running round's queries and MoveToPre
  std::vector<PeerView> peers_;
  bool coordinator_heuristic_reported_ = false;
};

}  // namespace xa::three_phase

#endif  // XA_SRC_THREE_PHASE_PARTICIPANT_H_
