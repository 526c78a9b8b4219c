// The pure decisions of 3PC's termination protocol (docs/three-phase-commit.md, "Termination"):
// who is the backup (rule b), when a restarted participant may decide (rule c), and what a
// termination round decides from the states it collected (rule b's table, also applied by rule
// c over all participants). The participant machine (participant.h) calls these and nothing
// else decides them; they hold no state and read no clock.

#ifndef XA_SRC_THREE_PHASE_TERMINATION_H_
#define XA_SRC_THREE_PHASE_TERMINATION_H_

#include <cstdint>
#include <optional>
#include <span>

#include "src/three_phase/participant_state.h"

namespace xa::three_phase {

// COMMIT or ABORT: a decision.
constexpr bool IsDecided(ParticipantState state) {
  return state == ParticipantState::kCommit || state == ParticipantState::kAbort;
}

// WAIT or PRE: voted yes and not decided, so able to run (or wait for) termination.
constexpr bool IsUndecided(ParticipantState state) {
  return state == ParticipantState::kWait || state == ParticipantState::kPre;
}

// The StateReply flag that rule b's election and rule c's wait read: this participant is
// undecided and has not restarted during the transaction, so it may still decide on its own.
constexpr bool UndecidedNeverRestarted(ParticipantState state, bool restarted) {
  return IsUndecided(state) && !restarted;
}

// What one peer told a termination round.
struct PeerAnswer {
  uint32_t number = 0;
  ParticipantState state = ParticipantState::kInit;
  bool restarted = false;
};

// Rule b's table over the states a round may count: any COMMIT → commit; any ABORT → abort; any
// PRE → move every counted WAIT participant to PRE, then commit; otherwise (all WAIT or INIT) →
// abort. A COMMIT beside an ABORT cannot happen without a partition; COMMIT wins the table then,
// and the peers' confirmation reports the split as heuristic-mixed.
enum class TerminationOutcome { kCommit, kAbort, kPromoteThenCommit };
TerminationOutcome DecideTermination(ParticipantState own, std::span<const PeerAnswer> counted);

// The decision a state already is (rule a adopts it), if it is one.
std::optional<ParticipantState> DecisionIn(ParticipantState state);

// Rule b's election, from one participant's view after it asked every peer: it is the backup
// when it has not restarted and no reachable peer with a lower number is undecided and never
// restarted. INIT peers cannot run a round (they know no participant list), decided ones end
// termination by being adopted, restarted ones never decide alone: none of them is elected.
// `reachable` holds the peers that answered.
bool IsBackup(uint32_t own_number, bool own_restarted, std::span<const PeerAnswer> reachable);

// Rule c: a restarted participant may apply rule b over all participants only when every peer
// answered (`answered` == `peer_count`), none of them is undecided and never restarted, and no
// peer with a lower number is undecided: one rule c round at a time, run by the lowest-numbered
// undecided participant, because each round's questions void the MoveToPre of any other and two
// runners could abandon each other's rounds for ever (the model shows the livelock).
bool RestartedMayDecide(uint32_t own_number, std::span<const PeerAnswer> answered,
                        uint32_t peer_count);

}  // namespace xa::three_phase

#endif  // XA_SRC_THREE_PHASE_TERMINATION_H_
