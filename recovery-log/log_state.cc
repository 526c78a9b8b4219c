#include "recovery-log/log_state.h"

#include <map>
#include <string>
#include <utility>

namespace xa::internal {
namespace {

using Set = LogStateChange::Set;

LogStateChange Open(std::map<Xid, LogRecord>* open, Set set, LogRecord record) {
  Xid xid = record.xid;
  bool inserted = open->insert_or_assign(std::move(xid), std::move(record)).second;
  return LogStateChange{set, /*opened=*/inserted, /*closed=*/false};
}

LogStateChange Close(std::map<Xid, LogRecord>* open, Set set, const Xid& xid) {
  bool erased = open->erase(xid) != 0;
  return LogStateChange{set, /*opened=*/false, /*closed=*/erased};
}

LogRecord* Find(std::map<Xid, LogRecord>* open, const Xid& xid) {
  auto it = open->find(xid);
  return it == open->end() ? nullptr : &it->second;
}

// An open participant enters the state of `record` (its Wait's fields stay).
void Advance(const LogRecord& record, LogRecord* current) {
  current->type = record.type;
  if (record.type == RecordType::kParticipantDecision) {
    current->outcome = record.outcome;
    current->coordinator_knows_outcome = record.coordinator_knows_outcome;
    current->branch_finished = record.branch_finished;
  }
  current->lsn = record.lsn;
  current->timestamp_us = record.timestamp_us;
}

// A TCC record that the transaction's open record does not allow (`open`: its Try or Confirm).
Status RefusedTcc(const LogRecord& record, const LogRecord& open, std::string_view why) {
  return Status(Code::kCorruption,
                "TCC record of type " + std::to_string(static_cast<int>(record.type)) +
                    " for transaction " + record.xid.ToString() +
                    " refused: the transaction is open with its " +
                    (open.type == RecordType::kTccConfirm ? "confirm decision" : "try") + " (lsn " +
                    std::to_string(open.lsn) + "), and " + std::string(why));
}

Status Refused(const LogRecord& record, const LogRecord* open, std::string_view why) {
  std::string state =
      open == nullptr ? std::string("not open")
                      : "in state " + std::string(ParticipantStateName(open->type, open->outcome)) +
                            " (lsn " + std::to_string(open->lsn) + ")";
  return Status(Code::kCorruption,
                "participant record of type " + std::to_string(static_cast<int>(record.type)) +
                    " for branch " + record.xid.ToString() + " refused: the participant is " +
                    state + ", and " + std::string(why));
}

}  // namespace

std::string_view ParticipantStateName(RecordType type, Outcome outcome) noexcept {
  switch (type) {
    case RecordType::kParticipantWait:
      return "wait";
    case RecordType::kParticipantPreCommit:
      return "pre-commit";
    case RecordType::kParticipantDecision:
      return outcome == Outcome::kCommitted ? "decided commit" : "decided rollback";
    case RecordType::kParticipantDone:
      return "done";
    default:
      return "not a participant state";
  }
}

Result<LogStateChange> ApplyRecord(LogRecord record, LogState* state) {
  switch (record.type) {
    case RecordType::kCommitDecision:
    case RecordType::kPreCommit:
      return Open(&state->open_decisions, Set::kOpenDecisions, std::move(record));
    case RecordType::kEnd:
      if (state->open_tcc.contains(record.xid)) {
        return Close(&state->open_tcc, Set::kOpenTcc, record.xid);
      }
      return Close(&state->open_decisions, Set::kOpenDecisions, record.xid);
    case RecordType::kHeuristic:
      return Open(&state->open_heuristics, Set::kOpenHeuristics, std::move(record));
    case RecordType::kHeuristicCleared:
      return Close(&state->open_heuristics, Set::kOpenHeuristics, record.xid);
    // A participant: WAIT -> PRE -> decided, or decided from any state (also from none), then
    // done (only once decided). A repeated PRE changes nothing; a repeated decision only tells
    // that the coordinator now holds the outcome.
    case RecordType::kParticipantWait: {
      LogRecord* current = Find(&state->open_participants, record.xid);
      if (current != nullptr) return Refused(record, current, "a participant votes only once");
      return Open(&state->open_participants, Set::kOpenParticipants, std::move(record));
    }
    case RecordType::kParticipantPreCommit: {
      LogRecord* current = Find(&state->open_participants, record.xid);
      if (current == nullptr) return Refused(record, current, "PRE needs a Wait first");
      if (current->type == RecordType::kParticipantWait) Advance(record, current);
      if (current->type != RecordType::kParticipantPreCommit) {
        return Refused(record, current, "a decided participant never goes back to PRE");
      }
      return LogStateChange{Set::kOpenParticipants, false, false};
    }
    case RecordType::kParticipantDecision: {
      LogRecord* current = Find(&state->open_participants, record.xid);
      if (current == nullptr) {
        return Open(&state->open_participants, Set::kOpenParticipants, std::move(record));
      }
      if (current->type != RecordType::kParticipantDecision) Advance(record, current);
      if (current->outcome != record.outcome) {
        return Refused(record, current,
                       "a decision never changes (this record says " +
                           std::string(OutcomeName(record.outcome)) + ")");
      }
      // The same decision, now known to be held by the coordinator (it sent it): the upgrade
      // that lets the agent forget a COMMIT; or now with the branch finished. Once known, never
      // unknown again.
      if ((record.coordinator_knows_outcome && !current->coordinator_knows_outcome) ||
          (record.branch_finished && !current->branch_finished)) {
        const bool knows = current->coordinator_knows_outcome || record.coordinator_knows_outcome;
        const bool finished = current->branch_finished || record.branch_finished;
        Advance(record, current);
        current->coordinator_knows_outcome = knows;
        current->branch_finished = finished;
      }
      return LogStateChange{Set::kOpenParticipants, false, false};
    }
    case RecordType::kParticipantDone: {
      // Forgetting an undecided participant would lose its prepared branch's state: after a
      // restart the agent would take the branch for an orphan and roll it back, while its
      // peers may have committed.
      LogRecord* current = Find(&state->open_participants, record.xid);
      if (current != nullptr && current->type != RecordType::kParticipantDecision) {
        return Refused(record, current, "only a decided participant may be forgotten");
      }
      // Forgetting a commit that the coordinator may not hold would lose the outcome: after a
      // restart the agent answers a question about it ABORT (rule d), and the coordinator's
      // recovery, finding no decision of its own, would take that for the outcome.
      if (current != nullptr && current->outcome == Outcome::kCommitted &&
          !current->coordinator_knows_outcome) {
        return Refused(record, current,
                       "a commit is forgotten only once the coordinator is known to hold it");
      }
      return Close(&state->open_participants, Set::kOpenParticipants, record.xid);
    }
    // A TCC transaction: Try, then (once every Try succeeded) its Confirm decision, then end.
    // Without a Confirm, recovery cancels (presumed cancel); a decision never goes back.
    case RecordType::kTccTry: {
      LogRecord* current = Find(&state->open_tcc, record.xid);
      if (current != nullptr) {
        return RefusedTcc(record, *current,
                          current->type == RecordType::kTccConfirm
                              ? "a decision never goes back to its Try"
                              : "a transaction logs its Try once");
      }
      return Open(&state->open_tcc, Set::kOpenTcc, std::move(record));
    }
    case RecordType::kTccConfirm:
      return Open(&state->open_tcc, Set::kOpenTcc, std::move(record));
    case RecordType::kCheckpoint:
      break;
  }
  return LogStateChange{};
}

}  // namespace xa::internal
