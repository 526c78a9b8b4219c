// ParticipantState: the five states of a 3PC participant (one branch of one transaction at an
// agent), as the agent records them, as they travel in StateReply and Ack, and as the
// participant machine (participant.h) moves between them. docs/three-phase-commit.md, "States of
// a participant", says what each one means and which durable record stands for it.

#ifndef XA_SRC_THREE_PHASE_PARTICIPANT_STATE_H_
#define XA_SRC_THREE_PHASE_PARTICIPANT_STATE_H_

#include <cstdint>
#include <string_view>

namespace xa::three_phase {

// The numbers are the wire's and the agent log's: never renumber.
enum class ParticipantState : std::uint8_t {
  kInit = 1,    // nothing recorded
  kWait = 2,    // voted yes: the branch is ended and prepared
  kPre = 3,     // pre-committed: every participant voted yes
  kCommit = 4,  // decided commit
  kAbort = 5,   // decided abort
};

// True for a number that names a state (1..5): decoders of the wire and the log check a byte with
// it before they cast it.
constexpr bool IsParticipantState(std::uint8_t value) { return value >= 1 && value <= 5; }

// The state's name as the design and the logs write it ("INIT", "WAIT", ...); "UNKNOWN" for a
// number outside the enum (a damaged or newer record).
constexpr std::string_view ParticipantStateName(ParticipantState state) {
  switch (state) {
    case ParticipantState::kInit:
      return "INIT";
    case ParticipantState::kWait:
      return "WAIT";
    case ParticipantState::kPre:
      return "PRE";
    case ParticipantState::kCommit:
      return "COMMIT";
    case ParticipantState::kAbort:
      return "ABORT";
  }
  return "UNKNOWN";
}

}  // namespace xa::three_phase

#endif  // XA_SRC_THREE_PHASE_PARTICIPANT_STATE_H_
