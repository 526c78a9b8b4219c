// Enumerations shared by the coordinator, the decision log and recovery.
//
// Every enum here with a fixed underlying type is persisted in the decision log or shown to
// operators by number: values are fixed, never reordered, never reused. A retired value stays
// listed with a comment ("7 was used for ...").

#ifndef XA_PROTOCOL_H_
#define XA_PROTOCOL_H_

#include <cstdint>
#include <string_view>

namespace xa {

// The commit protocol used for a transaction.
enum class Protocol : uint8_t {
  kOnePhase = 1,    // a single branch, committed with one phase; never logged
  kTwoPhase = 2,    // prepare, durable decision, commit
  kThreePhase = 3,  // CanCommit, PreCommit, DoCommit through participant agents
  // Two-phase commit whose decision is the one-phase commit of the branch on the marker resource
  // manager, together with a row in its marker table (TransactionManagerOptions::marker_commit,
  // docs/marker-commit.md): no decision record, no prepare on that branch. Never in a log record.
  kMarkerCommit = 4,
  // Try / Confirm / Cancel over participant services (xa/tcc.h): every Try, a durable confirm
  // decision, every Confirm; or every Cancel. In the TCC records (kTccTry, kTccConfirm).
  kTcc = 5,
  // A saga of compensable operations (xa/saga.h): every action in order; when one fails for
  // good, the compensations of those that ran, in reverse. In the same records as TCC.
  kSaga = 6,
};
static_assert(static_cast<uint8_t>(Protocol::kOnePhase) == 1);
static_assert(static_cast<uint8_t>(Protocol::kTwoPhase) == 2);
static_assert(static_cast<uint8_t>(Protocol::kThreePhase) == 3);
static_assert(static_cast<uint8_t>(Protocol::kMarkerCommit) == 4);
static_assert(static_cast<uint8_t>(Protocol::kTcc) == 5);
static_assert(static_cast<uint8_t>(Protocol::kSaga) == 6);

// A participant's answer to prepare (or to 3PC's CanCommit).
enum class Vote : uint8_t {
  kCommit = 1,    // XA_OK: prepared, will commit when told
  kReadOnly = 2,  // XA_RDONLY: nothing to commit; the branch is already finished
  kRollback = 3,  // XA_RB*: the branch has been rolled back
};

// The final result of a global transaction, as reported to the caller and as recorded.
enum class Outcome : uint8_t {
  kCommitted = 1,
  kRolledBack = 2,
  // The decision (commit) is durable but at least one branch could not be reached yet; the
  // manager keeps completing it in the background and recovery finishes it after a crash.
  kCommittedCompletionPending = 3,
  kHeuristicCommit = 4,    // a branch committed on its own while we decided rollback
  kHeuristicRollback = 5,  // a branch rolled back on its own while we decided commit
  kHeuristicMixed = 6,     // some branches committed and some rolled back
  kHeuristicHazard = 7,    // a branch may have been completed heuristically; outcome unknown
  kUnknown = 8,            // the outcome could not be established
};
static_assert(static_cast<uint8_t>(Outcome::kCommitted) == 1);
static_assert(static_cast<uint8_t>(Outcome::kUnknown) == 8);

// "1PC", "2PC", "3PC", "2PC-marker", "TCC", "saga"
std::string_view ProtocolName(Protocol p) noexcept;
std::string_view VoteName(Vote v) noexcept;          // "commit", "read-only", "rollback"
std::string_view OutcomeName(Outcome o) noexcept;    // "committed", "heuristic-mixed", ...

}  // namespace xa

#endif  // XA_PROTOCOL_H_
