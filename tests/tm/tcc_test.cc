// The TCC coordinator (src/tm/tcc_coordinator.h) and its recovery module
// (src/recovery/tcc_recovery.h), over fault-injecting in-process participants and the in-memory
// decision log (which encodes and decodes every record with the real codec): every call, every
// record, every outcome.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/testutil/fake_clock.h"
#include "tests/testutil/memory_decision_log.h"
#include "xa/tcc.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr uint32_t kNode = 7;

// A participant whose answers a test scripts per operation: each call takes the next scripted
// answer, or kDone once none is left. Records every call (operation, branch, payload) in order.
class ScriptedParticipant : public TccParticipant {
 public:
  struct Call {
    std::string op;
    Xid branch;
    std::string payload;
  };

  explicit ScriptedParticipant(std::string name) : name_(std::move(name)) {}

  void Script(const std::string& op, std::vector<TccResult> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    for (TccResult& a : answers) script_[op].push_back(std::move(a));
  }
  // Runs inside the next Try (before it answers): to move a fake clock, to crash, ...
  void OnTry(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    on_try_ = std::move(hook);
  }
  void ThrowOn(const std::string& op) {
    std::lock_guard<std::mutex> lock(mu_);
    throw_on_ = op;
  }

  std::vector<Call> Calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<std::string> Ops() const {
    std::vector<std::string> ops;
    for (const Call& c : Calls()) ops.push_back(c.op);
    return ops;
  }
  size_t Count(const std::string& op) const {
    size_t n = 0;
    for (const Call& c : Calls()) n += c.op == op ? 1 : 0;
    return n;
  }

  TccResult Try(const TccCall& call) override { return Answer("try", call); }
  TccResult Confirm(const TccCall& call) override { return Answer("confirm", call); }
  TccResult Cancel(const TccCall& call) override { return Answer("cancel", call); }

 private:
  TccResult Answer(const std::string& op, const TccCall& call) {
    std::function<void()> hook;
    TccResult answer = TccResult::Done();
    {
      std::lock_guard<std::mutex> lock(mu_);
      EXPECT_EQ(call.participant, name_);
      EXPECT_EQ(call.branch.Global(), call.global);
      calls_.push_back(Call{op, call.branch, std::string(call.payload)});
      if (op == "try") hook = std::exchange(on_try_, nullptr);
      if (op == throw_on_) throw std::runtime_error("scripted failure in " + op);
      auto& queue = script_[op];
      if (!queue.empty()) {
        answer = std::move(queue.front());
        queue.pop_front();
      }
    }
    if (hook) hook();
    return answer;
  }

  const std::string name_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<TccResult>> script_;
  std::vector<Call> calls_;
  std::function<void()> on_try_;
  std::string throw_on_;
};

std::vector<RecordType> Types(const std::vector<LogRecord>& records) {
  std::vector<RecordType> out;
  for (const LogRecord& r : records) out.push_back(r.type);
  return out;
}

class TccTest : public ::testing::Test {
 protected:
  TccTest()
      : env_(Env::Default(), &clock_),
        log_(kNode),
        funds_(std::make_shared<ScriptedParticipant>("funds")),
        points_(std::make_shared<ScriptedParticipant>("points")) {}

  TransactionManagerOptions Options() {
    TransactionManagerOptions options;
    options.node_id = kNode;
    options.phase_threads = 2;
    options.sequential_phases_at_cpu_percent = 0;
    options.inline_retry = RetryPolicy{2, std::chrono::microseconds(0),
                                       std::chrono::microseconds(0), 2.0};
    options.background_retry = RetryPolicy{0, std::chrono::microseconds(10),
                                           std::chrono::microseconds(1000), 2.0};
    options.tcc.participants["funds"] = funds_;
    options.tcc.participants["points"] = points_;
    options.recover_on_open = false;
    options.recovery_interval = std::chrono::milliseconds(0);
    return options;
  }

  void OpenManager() { OpenManager(Options()); }
  void OpenManager(TransactionManagerOptions options) {
    Result<std::unique_ptr<TransactionManager>> manager =
        TransactionManager::Open(std::move(options), log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(*manager);
  }

  // Begins a TCC transaction with funds and points enlisted, in that order.
  TccTransaction BeginBoth() {
    Result<TccTransaction> txn = manager_->BeginTcc();
    EXPECT_TRUE(txn.ok()) << txn.status().ToString();
    if (!txn.ok()) return TccTransaction();
    EXPECT_TRUE(txn->Enlist("funds", "freeze 250 on a-17").ok());
    EXPECT_TRUE(txn->Enlist("points", std::string("grant\0 25", 9)).ok());
    return std::move(*txn);
  }

  void WaitForBackground() {
    Status s = manager_->WaitForBackgroundCompletion(std::chrono::seconds(30));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  FakeClock clock_;
  EnvWithClock env_;
  MemoryDecisionLog log_;
  std::shared_ptr<ScriptedParticipant> funds_, points_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(TccTest, EveryTryDoneConfirmsEveryParticipantAfterTheDurableDecision) {
  OpenManager();
  TccTransaction txn = BeginBoth();
  ASSERT_TRUE(txn.valid());
  EXPECT_EQ(txn.xid().format_id(), Xid::kTccFormatId);
  Result<Outcome> outcome = txn.Commit();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_EQ(txn.state(), TransactionState::kCommitted);
  WaitForBackground();

  EXPECT_THAT(funds_->Ops(), ElementsAre("try", "confirm"));
  EXPECT_THAT(points_->Ops(), ElementsAre("try", "confirm"));
  EXPECT_EQ(funds_->Calls()[0].branch, txn.xid().WithBranch(0));
  EXPECT_EQ(points_->Calls()[0].branch, txn.xid().WithBranch(1));
  EXPECT_EQ(points_->Calls()[1].payload, std::string("grant\0 25", 9));

  std::vector<LogRecord> records = log_.Records();
  ASSERT_THAT(Types(records),
              ElementsAre(RecordType::kTccTry, RecordType::kTccConfirm, RecordType::kEnd));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(records[i].xid, txn.xid());
    ASSERT_EQ(records[i].participants.size(), 2u);
    EXPECT_EQ(records[i].participants[1].rm_name, "points");
    EXPECT_EQ(records[i].payloads[0], "freeze 250 on a-17");
  }
  EXPECT_TRUE(log_.State().open_tcc.empty());
  EXPECT_FALSE(manager_->IsInFlight(txn.xid()));
}

TEST_F(TccTest, ARefusedTryCancelsEveryParticipantAndLogsNoDecision) {
  points_->Script("try", {TccResult::Refused("not enough points")});
  OpenManager();
  TccTransaction txn = BeginBoth();
  Result<Outcome> outcome = txn.Commit();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(txn.last_status().code(), Code::kRbRollback);
  EXPECT_THAT(txn.last_status().message(), HasSubstr("not enough points"));
  EXPECT_THAT(txn.last_status().message(), HasSubstr("'points'"));
  WaitForBackground();
  // The participant that refused is cancelled too: its refusal may hide a reservation made by
  // an earlier attempt whose answer was lost, and a cancel of nothing is an empty cancel.
  EXPECT_THAT(funds_->Ops(), ElementsAre("try", "cancel"));
  EXPECT_THAT(points_->Ops(), ElementsAre("try", "cancel"));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kTccTry, RecordType::kEnd));
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

TEST_F(TccTest, AFailedOrThrowingTryCancelsEveryParticipant) {
  funds_->Script("try", {TccResult::Failed("connection refused")});
  OpenManager();
  TccTransaction first = BeginBoth();
  EXPECT_EQ(first.Commit().value(), Outcome::kRolledBack);
  EXPECT_EQ(first.last_status().code(), Code::kRbCommFail);
  EXPECT_THAT(first.last_status().message(), HasSubstr("connection refused"));

  points_->ThrowOn("try");
  TccTransaction second = BeginBoth();
  EXPECT_EQ(second.Commit().value(), Outcome::kRolledBack);
  EXPECT_THAT(second.last_status().message(), HasSubstr("scripted failure in try"));
  WaitForBackground();
  EXPECT_EQ(funds_->Count("cancel"), 2u);
  EXPECT_EQ(points_->Count("cancel"), 2u);
  EXPECT_EQ(funds_->Count("confirm") + points_->Count("confirm"), 0u);
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

TEST_F(TccTest, ATimeoutBeforeCommitCallsNobodyAndLogsNothing) {
  TransactionManagerOptions options = Options();
  options.env = &env_;
  options.transaction_timeout = std::chrono::seconds(5);
  OpenManager(options);
  TccTransaction txn = BeginBoth();
  clock_.Advance(std::chrono::seconds(6));
  EXPECT_EQ(txn.Commit().value(), Outcome::kRolledBack);
  EXPECT_EQ(txn.last_status().code(), Code::kRbTimeout);
  EXPECT_TRUE(funds_->Calls().empty());
  EXPECT_TRUE(points_->Calls().empty());
  EXPECT_TRUE(log_.Records().empty());
}

TEST_F(TccTest, TrysThatEndPastTheTimeoutCancelInsteadOfConfirming) {
  TransactionManagerOptions options = Options();
  options.env = &env_;
  options.transaction_timeout = std::chrono::seconds(5);
  OpenManager(options);
  funds_->OnTry([this] { clock_.Advance(std::chrono::seconds(6)); });
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kRolledBack);
  EXPECT_EQ(txn.last_status().code(), Code::kRbTimeout);
  WaitForBackground();
  EXPECT_THAT(funds_->Ops(), ElementsAre("try", "cancel"));
  EXPECT_THAT(points_->Ops(), ElementsAre("try", "cancel"));
  EXPECT_THAT(Types(log_.Records()), ElementsAre(RecordType::kTccTry, RecordType::kEnd));
}

TEST_F(TccTest, NoParticipantIsCalledWhenThePreTryRecordCannotBeLogged) {
  log_.FailAppends(RecordType::kTccTry, Status(Code::kIoError, "fsync: EIO"));
  OpenManager();
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kRolledBack);
  EXPECT_THAT(txn.last_status().message(), HasSubstr("none was called"));
  EXPECT_TRUE(funds_->Calls().empty());
  EXPECT_TRUE(points_->Calls().empty());
}

TEST_F(TccTest, AFailedDecisionAppendNeitherConfirmsNorCancelsAndLeavesItToRecovery) {
  log_.FailAppends(RecordType::kTccConfirm, Status(Code::kIoError, "fsync: EIO"));
  OpenManager();
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kUnknown);
  EXPECT_THAT(txn.last_status().message(), HasSubstr("restart"));
  EXPECT_THAT(funds_->Ops(), ElementsAre("try"));
  EXPECT_THAT(points_->Ops(), ElementsAre("try"));
  // This process's recovery must leave it alone: after the restart the log decides.
  EXPECT_TRUE(manager_->IsInFlight(txn.xid()));
}

TEST_F(TccTest, AConfirmThatFailsIsRetriedInTheBackgroundUntilDoneThenEnded) {
  funds_->Script("confirm", {TccResult::Failed("503"), TccResult::Failed("503"),
                             TccResult::Failed("503"), TccResult::Failed("503")});
  OpenManager();
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kCommittedCompletionPending);
  EXPECT_THAT(txn.last_status().message(), HasSubstr("503"));
  WaitForBackground();
  EXPECT_EQ(funds_->Count("confirm"), 5u);
  EXPECT_EQ(points_->Count("confirm"), 1u);
  EXPECT_EQ(funds_->Count("cancel") + points_->Count("cancel"), 0u);
  EXPECT_THAT(Types(log_.Records()),
              ElementsAre(RecordType::kTccTry, RecordType::kTccConfirm, RecordType::kEnd));
  EXPECT_FALSE(manager_->IsInFlight(txn.xid()));
  EXPECT_EQ(manager_->Metrics().background_completed, 1u);
}

TEST_F(TccTest, AConfirmRefusedForGoodIsRecordedAsAHeuristicForTheOperator) {
  points_->Script("confirm", {TccResult::Refused("account closed")});
  OpenManager();
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kHeuristicMixed);
  EXPECT_EQ(txn.state(), TransactionState::kHeuristic);
  EXPECT_THAT(txn.last_status().message(), HasSubstr("account closed"));
  WaitForBackground();
  EXPECT_EQ(points_->Count("confirm"), 1u);  // never again: it said so
  EXPECT_THAT(Types(log_.Records()),
              ElementsAre(RecordType::kTccTry, RecordType::kTccConfirm, RecordType::kHeuristic,
                          RecordType::kEnd));
  LogState state = log_.State();
  ASSERT_EQ(state.open_heuristics.count(txn.xid()), 1u);
  const LogRecord& heuristic = state.open_heuristics.at(txn.xid());
  EXPECT_EQ(heuristic.outcome, Outcome::kHeuristicMixed);
  ASSERT_EQ(heuristic.participants.size(), 1u);
  EXPECT_EQ(heuristic.participants[0].rm_name, "points");
  EXPECT_THAT(heuristic.reason, HasSubstr("account closed"));
  EXPECT_TRUE(state.open_tcc.empty());
  EXPECT_TRUE(manager_->ClearHeuristic(txn.xid(), "points re-granted by hand").ok());
}

TEST_F(TccTest, TheOnlyParticipantRefusingItsCancelIsAHazard) {
  funds_->Script("try", {TccResult::Failed("timeout")});
  funds_->Script("cancel", {TccResult::Refused("reservation lost")});
  OpenManager();
  Result<TccTransaction> txn = manager_->BeginTcc();
  ASSERT_TRUE(txn.ok());
  ASSERT_TRUE(txn->Enlist("funds", "x").ok());
  EXPECT_EQ(txn->Commit().value(), Outcome::kHeuristicHazard);
  EXPECT_EQ(log_.State().open_heuristics.at(txn->xid()).outcome, Outcome::kHeuristicHazard);
}

TEST_F(TccTest, EnlistRefusesWhatCouldNotBeFinishedOrLogged) {
  OpenManager();
  Result<TccTransaction> txn = manager_->BeginTcc();
  ASSERT_TRUE(txn.ok());
  Status unknown = txn->Enlist("stock", "x");
  EXPECT_EQ(unknown.code(), Code::kConfig);
  EXPECT_THAT(unknown.message(), HasSubstr("'stock'"));
  Status big = txn->Enlist("funds", std::string(kMaxTccPayloadBytes + 1, 'x'));
  EXPECT_EQ(big.code(), Code::kInval);
  EXPECT_THAT(big.message(), HasSubstr("65537 bytes"));
  for (size_t i = 0; i < kMaxTccTransactionPayloadBytes / kMaxTccPayloadBytes; ++i) {
    ASSERT_TRUE(txn->Enlist("funds", std::string(kMaxTccPayloadBytes, '\0')).ok());
  }
  Status total = txn->Enlist("funds", "x");
  EXPECT_EQ(total.code(), Code::kInval);
  EXPECT_THAT(total.message(), HasSubstr("add up to"));
  while (txn->participant_count() < kMaxTccParticipants) {
    ASSERT_TRUE(txn->Enlist("points", "").ok());
  }
  EXPECT_EQ(txn->Enlist("points", "").code(), Code::kInval);
  // The largest transaction there is still fits in one record.
  EXPECT_EQ(txn->Commit().value(), Outcome::kCommitted);
  WaitForBackground();
  EXPECT_EQ(points_->Count("confirm"),
            kMaxTccParticipants - kMaxTccTransactionPayloadBytes / kMaxTccPayloadBytes);
}

TEST_F(TccTest, MisuseIsAnErrorAndAbandoningCallsNobody) {
  OpenManager();
  Result<TccTransaction> empty = manager_->BeginTcc();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->Commit().status().code(), Code::kProto);
  EXPECT_TRUE(empty->Abandon().ok());
  EXPECT_EQ(empty->state(), TransactionState::kRolledBack);
  EXPECT_EQ(empty->Enlist("funds", "x").code(), Code::kProto);
  {
    TccTransaction dropped = BeginBoth();
    EXPECT_TRUE(manager_->IsInFlight(dropped.xid()));
  }
  EXPECT_TRUE(manager_->InFlightTransactions().empty());
  EXPECT_TRUE(funds_->Calls().empty());
  EXPECT_TRUE(log_.Records().empty());
  TccTransaction none;
  EXPECT_EQ(none.Commit().status().code(), Code::kProto);
}

TEST_F(TccTest, BeginTccNeedsRegisteredParticipantsAndOpenRefusesAnEmptyOne) {
  TransactionManagerOptions options = Options();
  options.tcc.participants.clear();
  OpenManager(options);
  EXPECT_EQ(manager_->BeginTcc().status().code(), Code::kNotSupported);
  manager_.reset();
  options.tcc.participants["funds"] = nullptr;
  Result<std::unique_ptr<TransactionManager>> refused = TransactionManager::Open(options, log_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kConfig);
  EXPECT_THAT(refused.status().message(), HasSubstr("'funds'"));
}

TEST_F(TccTest, ManyThreadsCommitAtOnceAndEveryTransactionEndsConfirmedOrCancelled) {
  // Every 5th Try of points is refused, every 3rd Confirm of funds fails once.
  for (int i = 0; i < 40; ++i) {
    points_->Script("try", {i % 5 == 4 ? TccResult::Refused("no") : TccResult::Done()});
    funds_->Script("confirm", {i % 3 == 2 ? TccResult::Failed("busy") : TccResult::Done()});
  }
  OpenManager();
  std::atomic<int> confirmed{0}, cancelled{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        TccTransaction txn = BeginBoth();
        Result<Outcome> outcome = txn.Commit();
        ASSERT_TRUE(outcome.ok());
        if (*outcome == Outcome::kRolledBack) {
          ++cancelled;
        } else {
          EXPECT_TRUE(*outcome == Outcome::kCommitted ||
                      *outcome == Outcome::kCommittedCompletionPending)
              << OutcomeName(*outcome);
          ++confirmed;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  WaitForBackground();
  EXPECT_EQ(confirmed + cancelled, 40);
  EXPECT_EQ(cancelled, 8);
  EXPECT_EQ(points_->Count("confirm"), static_cast<size_t>(confirmed.load()));
  EXPECT_EQ(points_->Count("cancel"), static_cast<size_t>(cancelled.load()));
  EXPECT_EQ(funds_->Count("cancel"), static_cast<size_t>(cancelled.load()));
  EXPECT_TRUE(log_.State().open_tcc.empty());
  EXPECT_TRUE(manager_->InFlightTransactions().empty());
}

// Recovery: the log alone says what to do.

LogRecord OpenRecord(RecordType type, const Xid& global) {
  LogRecord record;
  record.type = type;
  record.xid = global;
  record.protocol = Protocol::kTcc;
  record.participants = {Participant{"funds", global.WithBranch(0)},
                         Participant{"points", global.WithBranch(1)}};
  record.payloads = {"f", "p"};
  return record;
}

TEST_F(TccTest, RecoveryCancelsAnUndecidedTransactionAndConfirmsADecidedOne) {
  XidGenerator xids(kNode);
  Xid undecided = xids.Next(Protocol::kTcc);
  Xid decided = xids.Next(Protocol::kTcc);
  log_.Preload({OpenRecord(RecordType::kTccTry, undecided),
                OpenRecord(RecordType::kTccTry, decided),
                OpenRecord(RecordType::kTccConfirm, decided)});
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  OpenManager(options);
  WaitForBackground();
  EXPECT_THAT(funds_->Ops(), ::testing::UnorderedElementsAre("cancel", "confirm"));
  EXPECT_THAT(points_->Ops(), ::testing::UnorderedElementsAre("cancel", "confirm"));
  for (const auto& call : funds_->Calls()) {
    EXPECT_EQ(call.op == "cancel" ? undecided.WithBranch(0) : decided.WithBranch(0), call.branch);
    EXPECT_EQ(call.payload, "f");
  }
  EXPECT_TRUE(log_.State().open_tcc.empty());

  // A second pass changes nothing.
  Result<RecoveryReport> again = manager_->RunRecovery();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->Converged());
  EXPECT_EQ(again->committed + again->rolled_back, 0u);
  EXPECT_EQ(funds_->Calls().size(), 2u);
}

TEST_F(TccTest, RecoveryReportsEveryCallAndKeepsAFailingTransactionOpenForTheNextPass) {
  XidGenerator xids(kNode);
  Xid decided = xids.Next(Protocol::kTcc);
  log_.Preload({OpenRecord(RecordType::kTccConfirm, decided)});
  points_->Script("confirm", {TccResult::Failed("service down")});
  OpenManager();
  Result<RecoveryReport> first = manager_->RunRecovery();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->Converged());
  EXPECT_EQ(first->committed, 1u);
  EXPECT_EQ(first->failed, 1u);
  EXPECT_EQ(first->decisions_still_open, 1u);
  ASSERT_EQ(first->branches.size(), 2u);
  EXPECT_EQ(first->branches[0].action, RecoveryAction::kConfirm);
  EXPECT_THAT(first->branches[1].result.message(), HasSubstr("service down"));
  EXPECT_THAT(FormatRecoveryReport(*first), HasSubstr("confirm"));
  EXPECT_EQ(log_.State().open_tcc.count(decided), 1u);

  Result<RecoveryReport> second = manager_->RunRecovery();
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->Converged());
  EXPECT_EQ(second->end_records_written, 1u);
  EXPECT_EQ(funds_->Count("confirm"), 2u);  // idempotent repeat: the pass calls every one
  EXPECT_EQ(points_->Count("confirm"), 2u);
  EXPECT_TRUE(log_.State().open_tcc.empty());
}

TEST_F(TccTest, RecoveryLeavesATransactionInFlightToItsCoordinator) {
  funds_->Script("confirm", {TccResult::Failed("1"), TccResult::Failed("2"),
                             TccResult::Failed("3")});
  TransactionManagerOptions options = Options();
  options.background_retry = RetryPolicy{0, std::chrono::seconds(3600),
                                         std::chrono::seconds(3600), 2.0};
  OpenManager(options);
  TccTransaction txn = BeginBoth();
  EXPECT_EQ(txn.Commit().value(), Outcome::kCommittedCompletionPending);
  Result<RecoveryReport> report = manager_->RunRecovery();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->in_flight, 2u);
  EXPECT_EQ(funds_->Count("confirm"), 2u);  // the inline attempts only
}

TEST_F(TccTest, OpenRefusesALogWhoseOpenTransactionNamesAnUnregisteredParticipant) {
  XidGenerator xids(kNode);
  LogRecord record = OpenRecord(RecordType::kTccTry, xids.Next(Protocol::kTcc));
  record.participants[1].rm_name = "stock";
  log_.Preload({record});
  TransactionManagerOptions options = Options();
  options.recover_on_open = true;
  Result<std::unique_ptr<TransactionManager>> refused = TransactionManager::Open(options, log_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kConfig);
  EXPECT_THAT(refused.status().message(), HasSubstr("'stock'"));
  EXPECT_THAT(refused.status().message(), HasSubstr("cancel"));
}

TEST_F(TccTest, ARecoveryWithoutTheParticipantsLeavesTheTransactionOpenAndSaysWhy) {
  XidGenerator xids(kNode);
  Xid decided = xids.Next(Protocol::kTcc);
  log_.Preload({OpenRecord(RecordType::kTccConfirm, decided)});
  RecoveryOptions options;
  options.node_id = kNode;
  options.dry_run = false;
  options.tcc.participants["funds"] = funds_;  // points is not registered here
  RecoveryEngine engine(log_, {}, options);
  Result<RecoveryReport> report = engine.Run();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->Converged());
  EXPECT_EQ(report->decisions_still_open, 1u);
  ASSERT_EQ(report->branches.size(), 2u);
  EXPECT_THAT(report->branches[1].reason, HasSubstr("no TCC participant 'points'"));
  EXPECT_TRUE(funds_->Calls().empty());  // all or nothing: no participant is called alone
  EXPECT_EQ(log_.State().open_tcc.count(decided), 1u);
}

}  // namespace
}  // namespace xa::test
