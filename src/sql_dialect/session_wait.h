// Waiting for a server session to leave the server's list of sessions, and the argument rule of
// the 3PC fence: one loop and one bound for every driver and database.
//
// Two callers wait for a session to be gone:
//   - A MariaDB driver that ended a session of its own while it held a prepared branch, before
//     it finishes that branch from another session (the detach window, mariadb_dialect.h).
//   - ResourceManager::FenceSession(), after it asked the server to end another session (KILL
//     CONNECTION, pg_terminate_backend), before it reports that session gone.
// Both poll the server's list through a callback the driver supplies (it owns the connection and
// the SQL text of its dialect), under SessionWaitRule.
//
// Thread safety: free functions; `present` is called on the calling thread only.

#ifndef XA_SRC_SQL_DIALECT_SESSION_WAIT_H_
#define XA_SRC_SQL_DIALECT_SESSION_WAIT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "xa/status.h"

namespace xa::internal {

// How long to watch, how often to look, and how long to pause once the session is gone.
struct SessionWaitRule {
  std::chrono::milliseconds bound;
  std::chrono::milliseconds poll;
  // MariaDB takes an ending session off its process list a few instructions BEFORE it detaches
  // the session's prepared branch from InnoDB, and on a saturated machine the ending thread can
  // be preempted right there (measured once in about 8,000 commits without this pause). It
  // makes that window smaller, not closed: no client-visible signal follows the detach.
  std::chrono::milliseconds grace_after_gone;
};

// The one rule: watch for up to 5 s, look every millisecond, pause 50 ms after the session is
// gone. By the end of the bound the window after a session's end is long over: a session still
// listed then is alive (or, after a server restart, a new session that reuses the id).
inline constexpr SessionWaitRule kSessionWaitRule{std::chrono::milliseconds(5000),
                                                  std::chrono::milliseconds(1),
                                                  std::chrono::milliseconds(50)};

enum class SessionWaitEnd : uint8_t {
  kGone,          // the server no longer lists the session (and the grace pause has passed)
  kStillPresent,  // still listed when the bound passed
};

// Calls `present` (true while the server lists the session) every rule.poll until it answers
// false, then pauses rule.grace_after_gone and returns kGone; kStillPresent once rule.bound has
// passed with the session still listed; the callback's own error when a look fails.
Result<SessionWaitEnd> AwaitSessionGone(const SessionWaitRule& rule,
                                        const std::function<Result<bool>()>& present);

// The fence's argument rule, the same for every driver: XAER_INVAL for session 0 ("no fence" in
// the 3PC messages: the caller must not call) and for the RM's own session (ending it would
// end the fencer; a bug in the caller). OK otherwise.
Status CheckFenceTarget(uint64_t session_id, uint64_t own_session_id, std::string_view rm_name);

// XAER_RMFAIL: the fenced session was still listed when the wait's bound passed.
Status FencedSessionStillPresent(std::string_view rm_name, uint64_t session_id);

}  // namespace xa::internal

#endif  // XA_SRC_SQL_DIALECT_SESSION_WAIT_H_
