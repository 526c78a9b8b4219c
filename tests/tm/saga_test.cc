// Sagas of compensable operations (xa/saga.h) through the TCC coordinator and recovery module,
// over scripted operations and the in-memory decision log: the order of every action and
// compensation, the records, the outcomes.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "tests/testutil/memory_decision_log.h"
#include "xa/saga.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint32_t kNode = 7;

// Every call of every operation, in the order made: "action:debit", "compensate:ship", ...
class CallLog {
 public:
  void Add(std::string call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(std::move(call));
  }
  std::vector<std::string> Calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

class ScriptedOperation : public CompensableOperation {
 public:
  ScriptedOperation(std::string name, CallLog* log) : name_(std::move(name)), log_(log) {}
  void Script(const std::string& op, std::vector<TccResult> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    for (TccResult& a : answers) script_[op].push_back(std::move(a));
  }
  TccResult Action(const TccCall& call) override { return Answer("action", call); }
  TccResult Compensate(const TccCall& call) override { return Answer("compensate", call); }

 private:
  TccResult Answer(const std::string& op, const TccCall& call) {
    EXPECT_EQ(call.participant, name_);
    std::lock_guard<std::mutex> lock(mu_);
    log_->Add(op + ":" + name_);
    auto& queue = script_[op];
    if (queue.empty()) return TccResult::Done();
    TccResult answer = std::move(queue.front());
    queue.pop_front();
    return answer;
  }

  const std::string name_;
  CallLog* log_;
  std::mutex mu_;
  std::map<std::string, std::deque<TccResult>> script_;
};

std::vector<RecordType> Types(const std::vector<LogRecord>& records) {
  std::vector<RecordType> out;
  for (const LogRecord& r : records) out.push_back(r.type);
  return out;
}

class SagaTest : public ::testing::Test {
 protected:
  SagaTest() : log_(kNode) {
    for (const char* name : {"order", "debit", "ship"}) {
      ops_[name] = std::make_shared<ScriptedOperation>(name, &calls_);
    }
  }

  TransactionManagerOptions Options() {
    TransactionManagerOptions options;
    options.node_id = kNode;
    options.phase_threads = 2;
    options.sequential_phases_at_cpu_percent = 0;
    options.inline_retry = RetryPolicy{2, std::chrono::microseconds(0),
                                       std::chrono::microseconds(0), 2.0};
    options.background_retry = RetryPolicy{0, std::chrono::microseconds(10),
                                           std::chrono::microseconds(1000), 2.0};
    for (const auto& [name, op] : ops_) options.saga.operations[name] = op;
    options.recover_on_open = false;
    options.recovery_interval = std::chrono::milliseconds(0);
    return options;
  }
  void OpenManager(TransactionManagerOptions options) {
    Result<std::unique_ptr<TransactionManager>> manager =
        TransactionManager::Open(std::move(options), log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(*manager);
  }
  void OpenManager() { OpenManager(Options()); }

  SagaTransaction BeginThreeSteps() {
    Result<SagaTransaction> saga = manager_->BeginSaga();
    EXPECT_TRUE(saga.ok()) << saga.status().ToString();
    if (!saga.ok()) return SagaTransaction();
    for (const char* name : {"order", "debit", "ship"}) {
      EXPECT_TRUE(saga->Enlist(name, std::string("payload of ") + name).ok());
    }
    return std::move(*saga);
  }
  void WaitForBackground() {
    Status s = manager_->WaitForBackgroundCompletion(std::chrono::seconds(30));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  CallLog calls_;
  MemoryDecisionLog log_;
  std::map<std::string, std::shared_ptr<ScriptedOperation>> ops_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(SagaTest, EveryActionRunsInOrderAndTheCompletedSagaIsLoggedAndEnded) {
  OpenManager();
  SagaTransaction saga = BeginThreeSteps();
  EXPECT_EQ(saga.xid().format_id(), Xid::kSagaFormatId);
  EXPECT_EQ(saga.Commit().value(), Outcome::kCommitted);
  EXPECT_EQ(saga.state(), TransactionState::kCommitted);
  WaitForBackground();
  EXPECT_THAT(calls_.Calls(), ElementsAre("action:order", "action:debit", "action:ship"));
  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records),
              ElementsAre(RecordType::kTccTry, RecordType::kTccConfirm, RecordType::kEnd));
  EXPECT_EQ(records[0].protocol, Protocol::kSaga);
  EXPECT_EQ(records[0].payloads[2], "payload of ship");
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

TEST_F(SagaTest, WhenTheThirdActionFailsForGoodTheStepsAreCompensatedInReverse) {
  ops_["ship"]->Script("action", {TccResult::Refused("no courier")});
  OpenManager();
  SagaTransaction saga = BeginThreeSteps();
  EXPECT_EQ(saga.Commit().value(), Outcome::kRolledBack);
  EXPECT_EQ(saga.last_status().code(), Code::kRbRollback);
  EXPECT_THAT(saga.last_status().message(), HasSubstr("no courier"));
  WaitForBackground();
  // The failing step's own compensation first: its action may have done part of its work.
  EXPECT_THAT(calls_.Calls(),
              ElementsAre("action:order", "action:debit", "action:ship", "compensate:ship",
                          "compensate:debit", "compensate:order"));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kTccTry, RecordType::kEnd));
}

TEST_F(SagaTest, AnActionThatKeepsFailingIsRetriedInlineThenCompensatedAndLaterStepsNeverRun) {
  ops_["debit"]->Script("action", {TccResult::Failed("timeout"), TccResult::Failed("timeout")});
  OpenManager();
  SagaTransaction saga = BeginThreeSteps();
  EXPECT_EQ(saga.Commit().value(), Outcome::kRolledBack);
  EXPECT_EQ(saga.last_status().code(), Code::kRbCommFail);
  WaitForBackground();
  EXPECT_THAT(calls_.Calls(), ElementsAre("action:order", "action:debit", "action:debit",
                                          "compensate:debit", "compensate:order"));
}

TEST_F(SagaTest, AFailingCompensationHoldsBackTheEarlierOnesUntilItSucceeds) {
  ops_["ship"]->Script("action", {TccResult::Refused("no courier")});
  ops_["debit"]->Script("compensate", {TccResult::Failed("db down"), TccResult::Failed("db down"),
                                       TccResult::Failed("db down")});
  OpenManager();
  SagaTransaction saga = BeginThreeSteps();
  EXPECT_EQ(saga.Commit().value(), Outcome::kRolledBack);
  EXPECT_TRUE(manager_->IsInFlight(saga.xid()));  // the background owns it
  WaitForBackground();
  EXPECT_THAT(calls_.Calls(),
              ElementsAre("action:order", "action:debit", "action:ship", "compensate:ship",
                          "compensate:debit", "compensate:debit", "compensate:debit",
                          "compensate:debit", "compensate:order"));
  EXPECT_TRUE(log_.State().open_tcc.empty());
  EXPECT_FALSE(manager_->IsInFlight(saga.xid()));
}

TEST_F(SagaTest, ACompensationRefusedForGoodIsAHeuristicAndTheEarlierStepsAreStillUndone) {
  ops_["ship"]->Script("action", {TccResult::Refused("no courier")});
  ops_["debit"]->Script("compensate", {TccResult::Refused("account closed")});
  OpenManager();
  SagaTransaction saga = BeginThreeSteps();
  EXPECT_EQ(saga.Commit().value(), Outcome::kHeuristicMixed);
  WaitForBackground();
  EXPECT_THAT(calls_.Calls().back(), "compensate:order");
  LogState state = log_.State();
  ASSERT_EQ(state.open_heuristics.count(saga.xid()), 1u);
  EXPECT_THAT(state.open_heuristics.at(saga.xid()).reason, HasSubstr("account closed"));
  EXPECT_TRUE(state.open_tcc.empty());
}

TEST_F(SagaTest, NamesAreCheckedAgainstTheRightRegistry) {
  TransactionManagerOptions options = Options();
  options.tcc.participants["order"] = nullptr;
  Result<std::unique_ptr<TransactionManager>> refused = TransactionManager::Open(options, log_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kConfig);

  struct Participant : TccParticipant {
    TccResult Try(const TccCall&) override { return TccResult::Done(); }
    TccResult Confirm(const TccCall&) override { return TccResult::Done(); }
    TccResult Cancel(const TccCall&) override { return TccResult::Done(); }
  };
  options.tcc.participants["order"] = std::make_shared<Participant>();
  refused = TransactionManager::Open(options, log_);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("both as a TCC participant"));

  options.tcc.participants.clear();
  options.tcc.participants["funds"] = std::make_shared<Participant>();
  OpenManager(options);
  Result<SagaTransaction> saga = manager_->BeginSaga();
  ASSERT_TRUE(saga.ok());
  EXPECT_EQ(saga->Enlist("funds", "x").code(), Code::kConfig);
  Result<TccTransaction> tcc = manager_->BeginTcc();
  ASSERT_TRUE(tcc.ok());
  EXPECT_EQ(tcc->Enlist("order", "x").code(), Code::kConfig);
}

LogRecord SagaRecord(RecordType type, const Xid& global) {
  LogRecord record;
  record.type = type;
  record.xid = global;
  record.protocol = Protocol::kSaga;
  const char* names[] = {"order", "debit", "ship"};
  for (uint16_t i = 0; i < 3; ++i) {
    record.participants.push_back(Participant{names[i], global.WithBranch(i)});
    record.payloads.push_back(names[i]);
  }
  return record;
}

TEST_F(SagaTest, RecoveryCompensatesAnUnfinishedSagaInReverseAndOnlyEndsACompletedOne) {
  XidGenerator xids(kNode);
  Xid unfinished = xids.Next(Protocol::kSaga);
  Xid completed = xids.Next(Protocol::kSaga);
  log_.Preload({SagaRecord(RecordType::kTccTry, unfinished),
                SagaRecord(RecordType::kTccTry, completed),
                SagaRecord(RecordType::kTccConfirm, completed)});
  ops_["debit"]->Script("compensate", {TccResult::Failed("db down")});
  OpenManager();
  Result<RecoveryReport> first = manager_->RunRecovery();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // The failing compensation stops the pass: the first step's waits for it.
  EXPECT_THAT(calls_.Calls(), ElementsAre("compensate:ship", "compensate:debit"));
  EXPECT_EQ(first->decisions_still_open, 1u);
  EXPECT_EQ(first->end_records_written, 1u);  // the completed saga
  EXPECT_EQ(first->already_done, 3u);

  Result<RecoveryReport> second = manager_->RunRecovery();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->Converged());
  EXPECT_THAT(calls_.Calls(),
              ElementsAre("compensate:ship", "compensate:debit", "compensate:ship",
                          "compensate:debit", "compensate:order"));
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

}  // namespace
}  // namespace xa::test
