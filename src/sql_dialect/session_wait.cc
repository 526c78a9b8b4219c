#include "src/sql_dialect/session_wait.h"

#include <string>
#include <thread>

namespace xa::internal {

Result<SessionWaitEnd> AwaitSessionGone(const SessionWaitRule& rule,
                                        const std::function<Result<bool>()>& present) {
  const auto deadline = std::chrono::steady_clock::now() + rule.bound;
  for (;;) {
    Result<bool> listed = present();
    if (!listed.ok()) return listed.status();
    if (!*listed) {
      std::this_thread::sleep_for(rule.grace_after_gone);
      return SessionWaitEnd::kGone;
    }
    if (std::chrono::steady_clock::now() >= deadline) return SessionWaitEnd::kStillPresent;
    std::this_thread::sleep_for(rule.poll);
  }
}

Status CheckFenceTarget(uint64_t session_id, uint64_t own_session_id, std::string_view rm_name) {
  if (session_id == 0) {
    return Status(Code::kInval, "resource manager '" + std::string(rm_name) +
                                    "': session id 0 means \"no fence\": there is no session "
                                    "to end, do not call FenceSession");
  }
  if (session_id == own_session_id) {
    return Status(Code::kInval, "resource manager '" + std::string(rm_name) +
                                    "': refusing to fence session " +
                                    std::to_string(session_id) +
                                    ", which is this resource manager's own session: the fence "
                                    "ends the session that prepared the branch, never the one "
                                    "that is to finish it (a bug in the caller)");
  }
  return Status::Ok();
}

Status FencedSessionStillPresent(std::string_view rm_name, uint64_t session_id) {
  return Status(Code::kRmFail,
                "resource manager '" + std::string(rm_name) + "': session " +
                    std::to_string(session_id) +
                    " was asked to end but the server still lists it after " +
                    std::to_string(kSessionWaitRule.bound.count()) +
                    " ms; a branch it prepared must not be finished yet: fence again later");
}

}  // namespace xa::internal
