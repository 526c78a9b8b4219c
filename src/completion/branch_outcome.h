// The phase-2 rules: how the result of one XA call that finishes a branch is read. One table for
// every caller that finishes branches (the coordinator's inline phase 2 and rollback, the
// background completer, and the recovery engine's resolve and forced passes), so that a result
// never means one thing to the coordinator and another to recovery (internal).
//
// Terms. A branch END is where the branch stands after the call (BranchEnd below). kPending means
// "not finished": the caller repeats the call later (the coordinator a few times inline, then the
// background completer with backoff, recovery on its next pass); for a one-phase commit it means
// "still unprepared: roll it back". FORGET: the RM reported XA_HEUR*, so once the outcome is
// persisted the caller sends Forget().
//
// History of the branch before this call (BranchHistory):
//   maybe_applied   an earlier call of this same decision may have landed on the RM: it failed
//                   with XAER_RMFAIL (the reply was lost with the connection), or the decision
//                   comes from the log (the crashed process may have committed the branch).
//   maybe_prepared  Prepare() was sent, so the branch may be prepared and survive its session.
//
// The table. Reading the rows: a result, then for each call the end (and "+F" for Forget).
//
//   result            Commit (2PC, prepared)          Rollback                     Commit (1PC)
//   ---------------   -----------------------------   --------------------------   -------------
//   XA_OK             committed                       rolled back                  committed
//   XA_HEURCOM        committed +F (what we decided)  heuristic commit +F          committed +F
//   XA_HEURRB         heuristic rollback +F           rolled back +F               heur. rb +F
//   XA_HEURMIX        heuristic mixed +F              heuristic mixed +F           heur. mixed +F
//   XA_HEURHAZ        heuristic hazard +F             heuristic hazard +F          heur. hazard +F
//   XA_RETRY          pending                         pending if maybe_prepared,   pending
//   XAER_RMFAIL       pending                           else rolled back (1)       hazard (2)
//   XAER_NOTA         committed if maybe_applied,     rolled back (3)              rolled back
//                       else heuristic hazard (4)
//   XA_RB*            heuristic rollback (5)          rolled back                  rolled back
//   XAER_RMERR        heuristic hazard (6)            rolled back (7)              rolled back (8)
//   anything else     heuristic hazard (9)            heuristic hazard if          pending (10)
//   (XAER_PROTO, ...)                                   maybe_prepared, else
//                                                       rolled back
//
//  (1) An unprepared branch does not survive its session: the RM rolls it back when the
//      connection goes. A branch that may be prepared survives and must be rolled back from
//      another session.
//  (2) Nothing was prepared, so nobody can tell later whether the commit landed before the
//      connection broke: the outcome is unknown (a one-phase commit lost in flight).
//  (3) The RM does not know the Xid: it was never prepared (the RM dropped it) or it is already
//      rolled back. Presumed abort makes both a rollback. (Drivers confirm a NOTA before they
//      report one: MariaDB answers a false 1397 for a branch still held by another session.)
//  (4) A prepared branch that the RM no longer knows, although no call of ours may have
//      finished it: someone completed it behind our back (an operator, another manager), and we
//      cannot tell which way.
//  (5) The RM rolled back what it had promised to commit.
//  (6) XA says xa_commit's XAER_RMERR means the branch's work was rolled back, but drivers also
//      use it for errors that leave the branch in place. Retrying an error that will not heal
//      would spin forever, and reading it as "rolled back" could be wrong either way: report it
//      and let an operator decide. Recovery leaves the branches of a transaction with an open
//      heuristic record alone until an operator clears it, so a branch still prepared is never
//      presumed aborted behind the operator's back.
//  (7) xa_rollback's XAER_RMERR: "the RM is free to forget about the branch". Should the branch
//      still be prepared, presumed abort finishes it on the next recovery pass: no decision
//      record names it.
//  (8) "the branch's work has been rolled back".
//  (9) XAER_PROTO, XAER_INVAL and codes a driver should not return here: the branch's fate is
//      unknown; reported, not retried (see (6)).
// (10) The branch is ended and not prepared (XA_RETRY exhausted, XAER_PROTO, ...): the
//      coordinator rolls it back.
//
// Ending a branch (xa_end) is not in the table because its rule has no cases: a failed End
// never finishes a branch. Whatever End answered (XA_RB*, XAER_NOTA, XAER_RMFAIL, ...), the
// coordinator still sends Rollback() on that session: some RMs only release the session after
// it (MariaDB keeps a deadlock victim's branch in the ROLLBACK ONLY state, refusing every other
// statement, until XA ROLLBACK), and the table reads its answer (XA_RB*, XAER_NOTA: rolled back).

#ifndef XA_SRC_COMPLETION_BRANCH_OUTCOME_H_
#define XA_SRC_COMPLETION_BRANCH_OUTCOME_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "xa/protocol.h"
#include "xa/status.h"

namespace xa::internal {

// What was decided for a transaction: the way its branches are to be finished.
enum class Decision : uint8_t { kCommit, kRollback };
std::string_view DecisionName(Decision decision) noexcept;  // "commit", "rollback"

// The calls that finish a branch.
enum class FinishCall : uint8_t {
  kCommit,          // Commit(xid, kTwoPhase) of a prepared branch
  kRollback,        // Rollback(xid), prepared or not
  kCommitOnePhase,  // Commit(xid, kOnePhase) of the only branch, ended and not prepared
};
std::string_view FinishCallName(FinishCall call) noexcept;  // "commit", "rollback", "commit(1PC)"

// The call that finishes a branch the way `decision` says (two-phase commit or rollback).
constexpr FinishCall FinishCallFor(Decision decision) noexcept {
  return decision == Decision::kCommit ? FinishCall::kCommit : FinishCall::kRollback;
}

// Where a branch ended up (see the header comment).
enum class BranchEnd : uint8_t {
  kPending,            // not finished: call again later
  kCommitted,
  kRolledBack,
  kHeuristicCommit,    // committed although the decision was rollback
  kHeuristicRollback,  // rolled back although the decision was commit
  kHeuristicMixed,     // the RM itself reports part committed, part rolled back
  kHeuristicHazard,    // the branch's fate is unknown
};
std::string_view BranchEndName(BranchEnd end) noexcept;

struct BranchHistory {
  bool maybe_applied = false;
  bool maybe_prepared = true;
};

struct BranchReading {
  BranchEnd end = BranchEnd::kPending;
  bool forget = false;  // the RM reported XA_HEUR*: Forget() once the outcome is persisted
  bool operator==(const BranchReading&) const = default;
};

// The table above, for the result `s` of `call` on a branch with `history`.
BranchReading ReadFinishResult(FinishCall call, const Status& s, BranchHistory history) noexcept;

// The global outcome from the ends of the branches that took part in phase 2 (read-only
// branches take no part).
Outcome Aggregate(Decision decision, const std::vector<BranchEnd>& ends) noexcept;

bool IsHeuristic(BranchEnd end) noexcept;
// True for the ends that need no more calls (everything but kPending).
inline bool IsFinished(BranchEnd end) noexcept { return end != BranchEnd::kPending; }

}  // namespace xa::internal

#endif  // XA_SRC_COMPLETION_BRANCH_OUTCOME_H_
