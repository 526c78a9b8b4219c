// Helpers shared by the decision-log tests: a private temporary directory, records of every
// kind, and a reporter that collects what replay reports.

#ifndef XA_TESTS_LOG_LOG_TEST_UTIL_H_
#define XA_TESTS_LOG_LOG_TEST_UTIL_H_

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/xid.h"
#include "testutil/status_matchers.h"

namespace xa::test {

// A fresh directory under the test temp dir, removed with everything in it at destruction.
// path() is the parent of the log: the log directory itself is log_dir(), created by Open.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "xa-log-test-XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string log_dir() const { return path_ + "/log"; }

 private:
  std::string path_;
};

inline Xid TestXid(uint64_t i) {
  std::string gtrid = "gtrid-" + std::to_string(i);
  return Xid::Make(Xid::kFormatId, gtrid, "").value();
}

inline LogRecord Decision(uint64_t i, Protocol protocol = Protocol::kTwoPhase) {
  LogRecord r;
  r.type = RecordType::kCommitDecision;
  r.xid = TestXid(i);
  r.protocol = protocol;
  r.participants = {
      Participant{"mariadb-accounts", Xid::Make(Xid::kFormatId, r.xid.gtrid(), "b1").value()},
      Participant{"pg-ledger", Xid::Make(Xid::kFormatId, r.xid.gtrid(), "b2").value()}};
  return r;
}

inline LogRecord End(uint64_t i) {
  LogRecord r;
  r.type = RecordType::kEnd;
  r.xid = TestXid(i);
  return r;
}

inline LogRecord Heuristic(uint64_t i, std::string reason = "operator rolled back pg-ledger") {
  LogRecord r = Decision(i);
  r.type = RecordType::kHeuristic;
  r.outcome = Outcome::kHeuristicMixed;
  r.participants.resize(1);
  r.reason = std::move(reason);
  return r;
}

inline LogRecord HeuristicCleared(uint64_t i) {
  LogRecord r;
  r.type = RecordType::kHeuristicCleared;
  r.xid = TestXid(i);
  r.reason = "ticket OPS-42: reconciled by hand";
  return r;
}

// The 3PC participant records of an agent's log, about branch `number` of transaction i (of
// `size` participants): number 0's branch Xid ends in zero bytes.
inline Xid TestBranch(uint64_t i, uint16_t number) { return TestXid(i).WithBranch(number); }

inline LogRecord ParticipantWait(uint64_t i, uint16_t number = 1, size_t size = 3) {
  LogRecord r;
  r.type = RecordType::kParticipantWait;
  r.xid = TestBranch(i, number);
  r.protocol = Protocol::kThreePhase;
  for (size_t n = 0; n < size; ++n) {
    r.participants.push_back(Participant{n % 2 == 0 ? "mariadb-accounts" : "pg-ledger",
                                         TestBranch(i, static_cast<uint16_t>(n))});
  }
  r.participant_number = number;
  r.fence_session_id = 4000 + i;
  return r;
}

inline LogRecord ParticipantState(RecordType type, uint64_t i, uint16_t number = 1,
                                  Outcome outcome = Outcome::kUnknown) {
  LogRecord r;
  r.type = type;
  r.xid = TestBranch(i, number);
  r.protocol = Protocol::kThreePhase;
  r.outcome = outcome;
  return r;
}

inline LogRecord ParticipantPreCommit(uint64_t i, uint16_t number = 1) {
  return ParticipantState(RecordType::kParticipantPreCommit, i, number);
}

inline LogRecord ParticipantDecision(uint64_t i, Outcome outcome, uint16_t number = 1) {
  return ParticipantState(RecordType::kParticipantDecision, i, number, outcome);
}

// A decision the coordinator itself sent to the participant (DoCommit or Abort): the agent may
// forget it even when it is a commit.
inline LogRecord ParticipantDecisionCoordinatorKnows(uint64_t i, Outcome outcome,
                                                     uint16_t number = 1) {
  LogRecord r = ParticipantDecision(i, outcome, number);
  r.coordinator_knows_outcome = true;
  return r;
}

inline LogRecord ParticipantDone(uint64_t i, uint16_t number = 1) {
  return ParticipantState(RecordType::kParticipantDone, i, number);
}

// The TCC coordinator's records of TCC transaction i (a global Xid of the TCC format), one
// participant a payload: participant n is "funds" or "points" on branch n (branch 0's bqual ends
// in zero bytes). The default payloads are JSON text, as an application enlists them.
inline Xid TestTccXid(uint64_t i) {
  return Xid::Make(Xid::kTccFormatId, "tcc-gtrid-" + std::to_string(i), "").value();
}

inline std::vector<std::string> DefaultTccPayloads() {
  return {R"({"account":"a-17","amount":250})", R"({"account":"a-17","points":25})"};
}

inline LogRecord TccTry(uint64_t i, std::vector<std::string> payloads = DefaultTccPayloads()) {
  LogRecord r;
  r.type = RecordType::kTccTry;
  r.xid = TestTccXid(i);
  r.protocol = Protocol::kTcc;
  for (size_t n = 0; n < payloads.size(); ++n) {
    r.participants.push_back(
        Participant{n % 2 == 0 ? "funds" : "points", r.xid.WithBranch(static_cast<uint16_t>(n))});
  }
  r.payloads = std::move(payloads);
  return r;
}

inline LogRecord TccConfirm(uint64_t i, std::vector<std::string> payloads = DefaultTccPayloads()) {
  LogRecord r = TccTry(i, std::move(payloads));
  r.type = RecordType::kTccConfirm;
  return r;
}

// The end record of TCC transaction i.
inline LogRecord TccEnd(uint64_t i) {
  LogRecord r;
  r.type = RecordType::kEnd;
  r.xid = TestTccXid(i);
  return r;
}

class CollectingReporter : public LogReporter {
 public:
  struct Report {
    std::string file;
    uint64_t offset;
    uint64_t bytes;
    Status reason;
  };
  void Corruption(const std::string& file, uint64_t offset, uint64_t bytes,
                  const Status& reason) override {
    reports.push_back(Report{file, offset, bytes, reason});
  }
  std::vector<Report> reports;
};

// Sync and SyncDir do nothing: for tests that append many records and do not test durability
// (or that model it in a FaultInjectionEnv above this one).
class NoSyncEnv : public EnvWrapper {
 public:
  NoSyncEnv() : EnvWrapper(Env::Default()) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    auto f = target()->NewWritableFile(path);
    if (!f.ok()) return f;
    return std::unique_ptr<WritableFile>(new File(std::move(f).value()));
  }
  Status SyncDir(const std::string&) override { return Status::Ok(); }

 private:
  class File : public WritableFile {
   public:
    explicit File(std::unique_ptr<WritableFile> f) : f_(std::move(f)) {}
    Status Append(std::string_view d) override { return f_->Append(d); }
    Status Sync() override { return Status::Ok(); }
    Status Close() override { return f_->Close(); }

   private:
    std::unique_ptr<WritableFile> f_;
  };
};

// Options for a log in `dir` (its log_dir()) of node `node_id`, on `env` (nullptr: the default).
inline LogOptions LogOptionsIn(const ScratchDir& dir, uint32_t node_id, Env* env = nullptr) {
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = node_id;
  o.env = env;
  return o;
}

// Opens the log; a failure is reported to the test and gives nullptr.
inline std::unique_ptr<DecisionLog> OpenOrDie(const LogOptions& o) {
  auto log = DecisionLog::Open(o);
  EXPECT_THAT(log, IsOk());
  return log.ok() ? std::move(log).value() : nullptr;
}

}  // namespace xa::test

#endif  // XA_TESTS_LOG_LOG_TEST_UTIL_H_
