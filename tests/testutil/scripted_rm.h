// ScriptedResourceManager: a fake XA resource manager for protocol tests (in the spirit of
// LIXA's monkey RM and Narayana's CrashRecord).
//
// Each verb has a script: a list of Steps consumed in order, one per call; once a verb's script
// is used up, the verb returns its default (XA_OK unless SetDefault() says otherwise). A Step is
// a result plus an optional action run before the result is returned: block on a latch (a slow
// call), count, or "crash here" (throw from a test, kill a process, flip a flag...).
//
// Every call is recorded (verb, Xid, flags, session) so a test asserts the exact XA calls, their
// order on this RM and their flags:
//
//   ScriptedResourceManager pg("pg");
//   pg.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
//   ... run a transaction ...
//   EXPECT_THAT(pg.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
//
// Factory() returns a ResourceManagerFactory whose sessions share this RM's scripts and journal
// (they are "other connections to the same server"), so background completion and recovery are
// scripted and observed in the same place; Call::session tells the connections apart (0 is the
// object itself).
//
// The fake also keeps the branch states that successful calls imply (active, idle, prepared),
// so a test can assert that no branch is left prepared: PreparedXids().
//
// And a marker table, as one shared by every session: WriteCommitMarker's row is pending until
// the branch that wrote it commits in one phase (XA_OK: the row is committed) or ends otherwise
// (it is dropped); SettleCommitMarker answers XA_RETRY while a row is pending (the real one
// waits), else returns the committed row or writes 'A'. A scripted result other than XA_OK
// decides the call without touching the table; SetMarker() and Marker() reach the table
// directly, e.g. to make a one-phase commit land although its reply says XAER_RMFAIL.
//
// Thread safety: all methods are thread-safe.

#ifndef XA_TESTS_TESTUTIL_SCRIPTED_RM_H_
#define XA_TESTS_TESTUTIL_SCRIPTED_RM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "xa/resource_manager.h"
#include "xa/status.h"
#include "xa/transaction_manager.h"
#include "xa/xid.h"

namespace xa::test {

enum class Verb : uint8_t {
  kOpen, kClose, kStart, kEnd, kPrepare, kCommit, kRollback, kRecover, kForget,
  // The commit marker's calls (Protocol::kMarkerCommit).
  kWriteMarker, kSettleMarker, kReadMarkers, kListMarkers, kDeleteMarkers
};
std::string_view VerbName(Verb v);

struct Step {
  Status result;
  std::function<void()> before;  // runs before the result is returned (outside the fake's lock)

  static Step Return(Code code, std::string message = "scripted") {
    return Step{code == Code::kOk ? Status::Ok() : Status(code, std::move(message)), nullptr};
  }
  static Step Ok() { return Step{Status::Ok(), nullptr}; }
  static Step Then(Code code, std::function<void()> action) {
    Step s = Return(code);
    s.before = std::move(action);
    return s;
  }
};

struct Call {
  Verb verb;
  Xid xid;
  uint32_t flags = 0;  // StartFlag / EndFlag / CommitMode value; 0 for the others
  int session = 0;     // 0: the object itself; 1, 2, ...: sessions made by Factory()
  Code result = Code::kOk;
};

class ScriptedResourceManager : public ResourceManager {
 public:
  explicit ScriptedResourceManager(std::string name);
  ~ScriptedResourceManager() override;

  // Appends steps to the script of `verb`.
  ScriptedResourceManager& Script(Verb verb, std::vector<Step> steps);
  // Result once the script of `verb` is used up.
  ScriptedResourceManager& SetDefault(Verb verb, Code code);
  // Consulted before the scripts on every call (outside the fake's lock): a result decides the
  // call, nullopt falls through to the script. For concurrent tests, where the order of calls
  // across threads is not fixed but the result of a call can depend on its Xid.
  using Policy = std::function<std::optional<Status>(Verb verb, const Xid& xid)>;
  ScriptedResourceManager& SetPolicy(Policy policy);
  // Another connection to the same fake server: shares scripts, policy, journal and branch
  // states (what Factory() returns, without the connection failures).
  std::unique_ptr<ScriptedResourceManager> NewSession();

  std::vector<Call> Calls() const;
  // "start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "commit(TMONEPHASE)", "rollback", ...
  // For the calls of one session (-1: all sessions).
  std::vector<std::string> Trace(int session = 0) const;
  std::vector<Xid> PreparedXids() const;
  // Sessions opened through Factory() so far.
  int sessions_opened() const;
  // Makes Factory() fail (XAER_RMFAIL) `n` more times: "the RM is down".
  void FailNextSessions(int n);
  // Makes Factory() fail until AllowSessions(): the RM is down for as long as the test says.
  void RefuseSessions();
  void AllowSessions();

  ResourceManagerFactory Factory();

  // The fake marker table (see the file comment).
  void SetMarker(const Xid& global, MarkerOutcome outcome);
  std::optional<MarkerOutcome> Marker(const Xid& global) const;
  size_t marker_rows() const;

  // ResourceManager.
  const std::string& name() const noexcept override { return shared_->name; }
  Status Open() override { return Do(Verb::kOpen, Xid(), 0); }
  Status Close() override { return Do(Verb::kClose, Xid(), 0); }
  const ServerInfo& server_info() const noexcept override { return info_; }
  Status Start(const Xid& xid, StartFlag flag) override;
  Status End(const Xid& xid, EndFlag flag) override;
  Status Prepare(const Xid& xid) override;
  Status Commit(const Xid& xid, CommitMode mode) override;
  Status Rollback(const Xid& xid) override;
  Result<RecoverScan> Recover() override;
  Status Forget(const Xid& xid) override;
  Status WriteCommitMarker(std::string_view table, const Xid& global_xid) override;
  Result<MarkerOutcome> SettleCommitMarker(std::string_view table, const Xid& global_xid,
                                           std::chrono::milliseconds wait) override;
  Result<std::vector<MarkerRow>> ReadCommitMarkers(std::string_view table,
                                                   const std::vector<Xid>& global_xids) override;
  Result<std::vector<MarkerRow>> ListCommitMarkers(std::string_view table, uint32_t node_id,
                                                   size_t limit) override;
  Status DeleteCommitMarkers(std::string_view table, const std::vector<Xid>& global_xids) override;

 private:
  struct Shared {
    std::string name;
    mutable std::mutex mu;
    std::map<Verb, std::vector<Step>> scripts;
    std::map<Verb, Code> defaults;
    Policy policy;
    std::vector<Call> calls;
    std::map<Xid, Verb> branch_state;  // last successful Start/End/Prepare per Xid
    int sessions = 0;
    int failing_sessions = 0;
    bool refusing_sessions = false;
    std::map<Xid, MarkerOutcome> markers;  // committed rows, by global Xid (in insertion order
                                           // of their Xids' sequence, which is time order)
    std::map<Xid, Xid> pending_markers;    // written, not committed: global Xid -> branch Xid
  };
  ScriptedResourceManager(std::shared_ptr<Shared> shared, int session);
  Status Do(Verb verb, const Xid& xid, uint32_t flags);

  std::shared_ptr<Shared> shared_;
  int session_ = 0;
  ServerInfo info_;
};

// Makes the `resource_managers` map entry for each fake.
void RegisterFakes(TransactionManagerOptions& options,
                   std::initializer_list<ScriptedResourceManager*> rms);

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_SCRIPTED_RM_H_
