#include "src/three_phase/termination.h"

namespace xa::three_phase {

TerminationOutcome DecideTermination(ParticipantState own, std::span<const PeerAnswer> counted) {
  bool any_commit = own == ParticipantState::kCommit;
  bool any_abort = own == ParticipantState::kAbort;
  bool any_pre = own == ParticipantState::kPre;
  for (const PeerAnswer& answer : counted) {
    any_commit = any_commit || answer.state == ParticipantState::kCommit;
    any_abort = any_abort || answer.state == ParticipantState::kAbort;
    any_pre = any_pre || answer.state == ParticipantState::kPre;
  }
  if (any_commit) return TerminationOutcome::kCommit;
  if (any_abort) return TerminationOutcome::kAbort;
  if (any_pre) return TerminationOutcome::kPromoteThenCommit;
  return TerminationOutcome::kAbort;
}

std::optional<ParticipantState> DecisionIn(ParticipantState state) {
  if (IsDecided(state)) return state;
  return std::nullopt;
}

bool IsBackup(uint32_t own_number, bool own_restarted, std::span<const PeerAnswer> reachable) {
  if (own_restarted) return false;
  for (const PeerAnswer& answer : reachable) {
    if (answer.number < own_number && UndecidedNeverRestarted(answer.state, answer.restarted)) {
      return false;
    }
  }
  return true;
}

bool RestartedMayDecide(uint32_t own_number, std::span<const PeerAnswer> answered,
                        uint32_t peer_count) {
  if (answered.size() != peer_count) return false;
  for (const PeerAnswer& answer : answered) {
    if (UndecidedNeverRestarted(answer.state, answer.restarted)) return false;
    if (answer.number < own_number && IsUndecided(answer.state)) return false;
  }
  return true;
}

}  // namespace xa::three_phase
