#include "src/completion/tcc_completion.h"

#include <exception>
#include <utility>

namespace xa {

std::string_view TccReplyName(TccReply reply) noexcept {
  switch (reply) {
    case TccReply::kDone: return "done";
    case TccReply::kRefused: return "refused";
    case TccReply::kFailed: return "failed";
  }
  return "unknown";
}

Outcome TccHeuristicOutcome(bool confirm, bool another_finished_as_decided) noexcept {
  if (another_finished_as_decided) return Outcome::kHeuristicMixed;
  return confirm ? Outcome::kHeuristicRollback : Outcome::kHeuristicHazard;
}

}  // namespace xa

namespace xa::internal {
namespace {

// Below the log's limit on a reason (recovery-log/log_format.h, kMaxReasonSize).
constexpr size_t kMaxHeuristicReason = 2048;

}  // namespace

std::string_view TccDecisionName(TccDecision decision) noexcept {
  return decision == TccDecision::kConfirm ? "confirm" : "cancel";
}

TccResult CallParticipant(TccParticipant& participant,
                          TccResult (TccParticipant::*operation)(const TccCall&), const Xid& global,
                          const TccBranch& branch) {
  TccCall call{global, branch.branch, branch.participant, branch.payload};
  try {
    return (participant.*operation)(call);
  } catch (const std::exception& e) {
    return TccResult::Failed(std::string("the participant threw: ") + e.what());
  } catch (...) {
    return TccResult::Failed("the participant threw a non-standard exception");
  }
}

void AttemptFinish(const TccParticipants& participants, const Xid& global, TccDecision decision,
                   TccBranch& branch) {
  const std::string_view call = TccDecisionName(decision);
  auto it = participants.find(branch.participant);
  if (it == participants.end() || it->second == nullptr) {
    branch.last = Status(Code::kConfig, "no TCC participant '" + branch.participant +
                                            "' is registered here: register it "
                                            "(TransactionManagerOptions::tcc) so its " +
                                            std::string(call) + " can be made");
    return;
  }
  TccResult result = CallParticipant(
      *it->second, decision == TccDecision::kConfirm ? &TccParticipant::Confirm : &TccParticipant::Cancel,
      global, branch);
  switch (result.reply) {
    case TccReply::kDone:
      branch.end = TccBranchEnd::kFinished;
      branch.last = Status::Ok();
      return;
    case TccReply::kRefused:
      branch.end = TccBranchEnd::kRefused;
      branch.last = Status(decision == TccDecision::kConfirm ? Code::kHeuristicRollback
                                                             : Code::kHeuristicHazard,
                           "participant '" + branch.participant + "' refused " + std::string(call) +
                               " of " + branch.branch.ToString() + " for good: " + result.detail);
      return;
    case TccReply::kFailed:
      break;
  }
  branch.last = Status(Code::kRmFail, std::string(call) + " of " + branch.branch.ToString() +
                                          " on participant '" + branch.participant +
                                          "' failed (tried again): " + result.detail);
}

namespace {

// A compensable operation as a finisher calls it: Cancel compensates.
class CompensationAsCancel final : public TccParticipant {
 public:
  explicit CompensationAsCancel(std::shared_ptr<CompensableOperation> operation)
      : operation_(std::move(operation)) {}
  TccResult Try(const TccCall& call) override { return operation_->Action(call); }
  TccResult Confirm(const TccCall&) override { return TccResult::Done(); }
  TccResult Cancel(const TccCall& call) override { return operation_->Compensate(call); }

 private:
  std::shared_ptr<CompensableOperation> operation_;
};

}  // namespace

Result<TccParticipants> FinishersOf(const TccOptions& tcc, const SagaOptions& saga) {
  TccParticipants finishers;
  for (const auto& [name, participant] : tcc.participants) {
    if (name.empty() || participant == nullptr) {
      return Status(Code::kConfig, "TCC participant '" + name +
                                       "' is registered empty: every name in tcc.participants "
                                       "needs a participant object");
    }
    finishers.emplace(name, participant);
  }
  for (const auto& [name, operation] : saga.operations) {
    if (name.empty() || operation == nullptr) {
      return Status(Code::kConfig, "compensable operation '" + name +
                                       "' is registered empty: every name in saga.operations "
                                       "needs an operation object");
    }
    if (!finishers.emplace(name, std::make_shared<CompensationAsCancel>(operation)).second) {
      return Status(Code::kConfig, "'" + name +
                                       "' is registered both as a TCC participant and as a "
                                       "compensable operation: the log names each by its name "
                                       "alone, so give them different names");
    }
  }
  for (const auto& [name, finisher] : finishers) {
    if (name.size() > 255) {
      return Status(Code::kConfig, "participant name '" + name.substr(0, 40) +
                                       "...' is longer than 255 bytes, the most the decision "
                                       "log keeps");
    }
  }
  return finishers;
}

LogRecord TccRecord(RecordType type, Protocol protocol, const Xid& global,
                    const std::vector<TccBranch>& branches) {
  LogRecord record;
  record.type = type;
  record.xid = global;
  record.protocol = protocol;
  record.participants.reserve(branches.size());
  record.payloads.reserve(branches.size());
  for (const TccBranch& b : branches) {
    record.participants.push_back(Participant{b.participant, b.branch});
    record.payloads.push_back(b.payload);
  }
  return record;
}

std::vector<TccBranch> TccBranchesOf(const LogRecord& record) {
  std::vector<TccBranch> branches;
  branches.reserve(record.participants.size());
  for (size_t i = 0; i < record.participants.size(); ++i) {
    TccBranch b;
    b.participant = record.participants[i].rm_name;
    b.branch = record.participants[i].branch;
    if (i < record.payloads.size()) b.payload = record.payloads[i];
    branches.push_back(std::move(b));
  }
  return branches;
}

TccConclusion ConcludeTcc(const Xid& global, TccDecision decision,
                          const std::vector<TccBranch>& branches) {
  TccConclusion c;
  const TccBranch* first_refused = nullptr;
  bool finished_as_decided = false;
  for (const TccBranch& b : branches) {
    if (b.end == TccBranchEnd::kPending) ++c.pending;
    if (b.end == TccBranchEnd::kFinished) finished_as_decided = true;
    if (b.end == TccBranchEnd::kRefused && first_refused == nullptr) first_refused = &b;
  }
  c.finished = c.pending == 0;
  if (!c.finished) return c;
  const bool confirm = decision == TccDecision::kConfirm;
  if (first_refused == nullptr) {
    c.outcome = confirm ? Outcome::kCommitted : Outcome::kRolledBack;
    return c;
  }
  c.outcome = TccHeuristicOutcome(confirm, finished_as_decided);
  c.record_heuristic = true;
  c.heuristic.type = RecordType::kHeuristic;
  c.heuristic.xid = global;
  c.heuristic.protocol = Protocol::kTcc;
  c.heuristic.outcome = c.outcome;
  for (const TccBranch& b : branches) {
    if (b.end == TccBranchEnd::kRefused) {
      c.heuristic.participants.push_back(Participant{b.participant, b.branch});
    }
  }
  // The participant's words may be long; the record keeps what an operator needs to find it.
  c.heuristic.reason = first_refused->last.message().substr(0, kMaxHeuristicReason);
  return c;
}

}  // namespace xa::internal
