// The seam where crash recovery plugs into TransactionManager::Open() (internal).
//
// Open() calls RecoverOnOpen() once, after the manager's threads run and before it returns the
// manager, when TransactionManagerOptions::recover_on_open is true. What exists today is the
// part of recovery that needs only the log: every commit decision found open (no end record) is
// handed to the background completer, which commits its branches through fresh sessions
// (XAER_NOTA meaning "already done") and writes the end record; open heuristics are reported.
//
// The recovery engine (issue 5) extends this function: pass 1 combines each factory's
// Recover() scan with the log, pass 2 (after a backoff) rolls back this node's prepared branches
// with no decision (presumed abort) and skips every Xid that services.in_flight still holds, so
// it never resolves a transaction under its owner. It resolves through the same
// BackgroundCompleter::Submit() (commit or rollback jobs), so the rules that read phase-2
// results live in one place (branch_outcome.h).

#ifndef XA_SRC_TM_RECOVERY_HOOK_H_
#define XA_SRC_TM_RECOVERY_HOOK_H_

#include "src/tm/services.h"
#include "xa/status.h"

namespace xa::internal {

// XA_CONFIG when the log holds an open decision on an RM that has no factory (it could never
// be completed: register the RM and reopen).
Status RecoverOnOpen(const Services& services);

}  // namespace xa::internal

#endif  // XA_SRC_TM_RECOVERY_HOOK_H_
