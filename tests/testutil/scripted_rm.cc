#include "tests/testutil/scripted_rm.h"

namespace xa::test {

std::string_view VerbName(Verb v) {
  switch (v) {
    case Verb::kOpen: return "open";
    case Verb::kClose: return "close";
    case Verb::kStart: return "start";
    case Verb::kEnd: return "end";
    case Verb::kPrepare: return "prepare";
    case Verb::kCommit: return "commit";
    case Verb::kRollback: return "rollback";
    case Verb::kRecover: return "recover";
    case Verb::kForget: return "forget";
    case Verb::kWriteMarker: return "write-marker";
    case Verb::kSettleMarker: return "settle-marker";
    case Verb::kReadMarkers: return "read-markers";
    case Verb::kListMarkers: return "list-markers";
    case Verb::kDeleteMarkers: return "delete-markers";
  }
  return "?";
}

namespace {

std::string FlagName(Verb verb, uint32_t flags) {
  switch (verb) {
    case Verb::kStart:
      if (flags == static_cast<uint32_t>(StartFlag::kNoFlags)) return "TMNOFLAGS";
      if (flags == static_cast<uint32_t>(StartFlag::kJoin)) return "TMJOIN";
      if (flags == static_cast<uint32_t>(StartFlag::kResume)) return "TMRESUME";
      break;
    case Verb::kEnd:
      if (flags == static_cast<uint32_t>(EndFlag::kSuccess)) return "TMSUCCESS";
      if (flags == static_cast<uint32_t>(EndFlag::kFail)) return "TMFAIL";
      if (flags == static_cast<uint32_t>(EndFlag::kSuspend)) return "TMSUSPEND";
      break;
    case Verb::kCommit:
      if (flags == static_cast<uint32_t>(CommitMode::kTwoPhase)) return "TMNOFLAGS";
      if (flags == static_cast<uint32_t>(CommitMode::kOnePhase)) return "TMONEPHASE";
      break;
    default:
      return "";
  }
  return std::to_string(flags);
}

}  // namespace

ScriptedResourceManager::ScriptedResourceManager(std::string name)
    : shared_(std::make_shared<Shared>()) {
  shared_->name = std::move(name);
  info_.product = "Scripted";
  info_.xa_supported = true;
  info_.prepared_survive_disconnect = true;
  info_.may_recover = true;
}

ScriptedResourceManager::ScriptedResourceManager(std::shared_ptr<Shared> shared, int session)
    : shared_(std::move(shared)), session_(session) {
  info_.product = "Scripted";
  info_.xa_supported = true;
  info_.prepared_survive_disconnect = true;
  info_.may_recover = true;
}

ScriptedResourceManager::~ScriptedResourceManager() = default;

ScriptedResourceManager& ScriptedResourceManager::Script(Verb verb, std::vector<Step> steps) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  auto& script = shared_->scripts[verb];
  for (Step& s : steps) script.push_back(std::move(s));
  return *this;
}

ScriptedResourceManager& ScriptedResourceManager::SetDefault(Verb verb, Code code) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->defaults[verb] = code;
  return *this;
}

ScriptedResourceManager& ScriptedResourceManager::SetPolicy(Policy policy) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->policy = std::move(policy);
  return *this;
}

std::unique_ptr<ScriptedResourceManager> ScriptedResourceManager::NewSession() {
  int session;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    session = ++shared_->sessions;
  }
  return std::unique_ptr<ScriptedResourceManager>(new ScriptedResourceManager(shared_, session));
}

std::vector<Call> ScriptedResourceManager::Calls() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->calls;
}

std::vector<std::string> ScriptedResourceManager::Trace(int session) const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<std::string> out;
  for (const Call& c : shared_->calls) {
    if (session >= 0 && c.session != session) continue;
    std::string line(VerbName(c.verb));
    std::string flags = FlagName(c.verb, c.flags);
    if (!flags.empty()) line += "(" + flags + ")";
    out.push_back(std::move(line));
  }
  return out;
}

std::vector<Xid> ScriptedResourceManager::PreparedXids() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<Xid> out;
  for (const auto& [xid, verb] : shared_->branch_state) {
    if (verb == Verb::kPrepare) out.push_back(xid);
  }
  return out;
}

int ScriptedResourceManager::sessions_opened() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->sessions;
}

void ScriptedResourceManager::FailNextSessions(int n) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->failing_sessions += n;
}

void ScriptedResourceManager::RefuseSessions() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->refusing_sessions = true;
}

void ScriptedResourceManager::AllowSessions() {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->refusing_sessions = false;
  shared_->failing_sessions = 0;
}

ResourceManagerFactory ScriptedResourceManager::Factory() {
  std::shared_ptr<Shared> shared = shared_;
  return [shared]() -> Result<std::unique_ptr<ResourceManager>> {
    int session;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (shared->refusing_sessions || shared->failing_sessions > 0) {
        if (shared->failing_sessions > 0) --shared->failing_sessions;
        return Status(Code::kRmFail, "scripted: cannot connect to '" + shared->name + "'");
      }
      session = ++shared->sessions;
    }
    return std::unique_ptr<ResourceManager>(new ScriptedResourceManager(shared, session));
  };
}

Status ScriptedResourceManager::Do(Verb verb, const Xid& xid, uint32_t flags) {
  Step step;
  Policy policy;
  {
    std::lock_guard<std::mutex> lock(shared_->mu);
    policy = shared_->policy;
  }
  std::optional<Status> decided;
  if (policy) decided = policy(verb, xid);
  if (decided.has_value()) {
    step.result = *decided;
  } else {
    std::lock_guard<std::mutex> lock(shared_->mu);
    auto& script = shared_->scripts[verb];
    if (!script.empty()) {
      step = std::move(script.front());
      script.erase(script.begin());
    } else {
      auto it = shared_->defaults.find(verb);
      Code code = it == shared_->defaults.end() ? Code::kOk : it->second;
      step = Step::Return(code, "scripted default");
    }
  }
  if (step.before) step.before();
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->calls.push_back(Call{verb, xid, flags, session_, step.result.code()});
  const Status& s = step.result;
  switch (verb) {
    case Verb::kStart:
    case Verb::kEnd:
      if (s.ok()) shared_->branch_state[xid] = verb;
      if (s.IsRollback()) shared_->branch_state.erase(xid);
      break;
    case Verb::kPrepare:
      if (s.ok()) {
        shared_->branch_state[xid] = Verb::kPrepare;
      } else if (s.code() == Code::kReadOnly || s.IsRollback() || s.code() == Code::kNoTa) {
        shared_->branch_state.erase(xid);
      }
      break;
    case Verb::kCommit:
    case Verb::kRollback:
      if (s.ok() || s.IsRollback() || s.IsHeuristic() || s.code() == Code::kNoTa) {
        shared_->branch_state.erase(xid);
      }
      // A marker row written in this branch is committed with its one-phase commit, and gone
      // with any other end of the branch (a failed commit's branch is rolled back by the
      // server; a test that wants it committed says so with SetMarker).
      for (auto it = shared_->pending_markers.begin(); it != shared_->pending_markers.end();) {
        if (it->second != xid) {
          ++it;
          continue;
        }
        if (verb == Verb::kCommit && s.ok() &&
            flags == static_cast<uint32_t>(CommitMode::kOnePhase)) {
          shared_->markers[it->first] = MarkerOutcome::kCommitted;
        }
        it = shared_->pending_markers.erase(it);
      }
      break;
    default:
      break;
  }
  return step.result;
}

Status ScriptedResourceManager::Start(const Xid& xid, StartFlag flag) {
  return Do(Verb::kStart, xid, static_cast<uint32_t>(flag));
}
Status ScriptedResourceManager::End(const Xid& xid, EndFlag flag) {
  return Do(Verb::kEnd, xid, static_cast<uint32_t>(flag));
}
Status ScriptedResourceManager::Prepare(const Xid& xid) { return Do(Verb::kPrepare, xid, 0); }
Status ScriptedResourceManager::Commit(const Xid& xid, CommitMode mode) {
  return Do(Verb::kCommit, xid, static_cast<uint32_t>(mode));
}
Status ScriptedResourceManager::Rollback(const Xid& xid) { return Do(Verb::kRollback, xid, 0); }
Status ScriptedResourceManager::Forget(const Xid& xid) { return Do(Verb::kForget, xid, 0); }

Result<RecoverScan> ScriptedResourceManager::Recover() {
  Status s = Do(Verb::kRecover, Xid(), 0);
  if (!s.ok()) return s;
  RecoverScan scan;
  scan.prepared = PreparedXids();
  return scan;
}

Status ScriptedResourceManager::WriteCommitMarker(std::string_view, const Xid& global_xid) {
  Status s = Do(Verb::kWriteMarker, global_xid, 0);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (shared_->markers.count(global_xid) != 0 || shared_->pending_markers.count(global_xid) != 0) {
    shared_->calls.back().result = Code::kDupId;
    return Status(Code::kDupId, "marker row exists");
  }
  // The branch this session works in: its last started branch of that global transaction.
  Xid branch;
  for (auto it = shared_->calls.rbegin(); it != shared_->calls.rend(); ++it) {
    if (it->session == session_ && it->verb == Verb::kStart && it->xid.Global() == global_xid) {
      branch = it->xid;
      break;
    }
  }
  shared_->pending_markers[global_xid] = branch;
  return Status::Ok();
}

Result<MarkerOutcome> ScriptedResourceManager::SettleCommitMarker(std::string_view,
                                                                  const Xid& global_xid,
                                                                  std::chrono::milliseconds) {
  Status s = Do(Verb::kSettleMarker, global_xid, 0);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(shared_->mu);
  if (shared_->pending_markers.count(global_xid) != 0) {
    shared_->calls.back().result = Code::kRetry;
    return Status(Code::kRetry, "marker row held by a transaction in flight");
  }
  auto [it, added] = shared_->markers.emplace(global_xid, MarkerOutcome::kAborted);
  return it->second;
}

Result<std::vector<MarkerRow>> ScriptedResourceManager::ReadCommitMarkers(
    std::string_view, const std::vector<Xid>& global_xids) {
  Status s = Do(Verb::kReadMarkers, Xid(), 0);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<MarkerRow> rows;
  for (const Xid& global : global_xids) {
    auto it = shared_->markers.find(global);
    if (it != shared_->markers.end()) rows.push_back(MarkerRow{global, it->second});
  }
  return rows;
}

Result<std::vector<MarkerRow>> ScriptedResourceManager::ListCommitMarkers(std::string_view,
                                                                          uint32_t node_id,
                                                                          size_t limit) {
  Status s = Do(Verb::kListMarkers, Xid(), 0);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(shared_->mu);
  std::vector<MarkerRow> rows;
  for (const auto& [global, outcome] : shared_->markers) {
    if (rows.size() >= limit) break;
    if (global.IsOwnedBy(node_id)) rows.push_back(MarkerRow{global, outcome});
  }
  return rows;
}

Status ScriptedResourceManager::DeleteCommitMarkers(std::string_view,
                                                    const std::vector<Xid>& global_xids) {
  Status s = Do(Verb::kDeleteMarkers, Xid(), 0);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(shared_->mu);
  for (const Xid& global : global_xids) shared_->markers.erase(global);
  return Status::Ok();
}

void ScriptedResourceManager::SetMarker(const Xid& global, MarkerOutcome outcome) {
  std::lock_guard<std::mutex> lock(shared_->mu);
  shared_->markers[global] = outcome;
}

std::optional<MarkerOutcome> ScriptedResourceManager::Marker(const Xid& global) const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  auto it = shared_->markers.find(global);
  if (it == shared_->markers.end()) return std::nullopt;
  return it->second;
}

size_t ScriptedResourceManager::marker_rows() const {
  std::lock_guard<std::mutex> lock(shared_->mu);
  return shared_->markers.size();
}

void RegisterFakes(TransactionManagerOptions& options,
                   std::initializer_list<ScriptedResourceManager*> rms) {
  for (ScriptedResourceManager* rm : rms) options.resource_managers[rm->name()] = rm->Factory();
}

}  // namespace xa::test
