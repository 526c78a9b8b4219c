// The three-phase coordinator (src/tm/three_phase_coordinator.h) against scripted resource
// managers and two real agents (daemons/agent) in this process over loopback TCP, with a
// recording branch finisher: every XA call the coordinator makes, what each agent records, and
// when the agents are (not) involved. No database: runs in the unit label and under the
// sanitizers. The same paths over the real servers are in three_phase_db_test.cc.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "daemons/agent/agent.h"
#include "daemons/agent/branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/testing/sync_points.h"
#include "src/three_phase/agent_client.h"
#include "src/three_phase/agent_messages.h"
#include "tests/agent/in_process_agents.h"
#include "tests/testutil/scripted_rm.h"
#include "tests/testutil/status_matchers.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint32_t kNode = 31;
constexpr const char* kRmA = "rm-a";
constexpr const char* kRmB = "rm-b";
constexpr const char* kAgentA = "agent-a";
constexpr const char* kAgentB = "agent-b";

class RecordingFinisher : public agent::BranchFinisher {
 public:
  Status Finish(const std::string& rm_name, const Xid& branch, uint64_t, bool,
                bool commit) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(rm_name + (commit ? " commit " : " rollback ") + branch.ToString());
    return Status::Ok();
  }
  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

class ThreePhaseCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("3pc-unit");
    ASSERT_FALSE(dir_.empty());
    key_file_ = WriteTestKeyFile(dir_);
    Result<net::SharedKey> key = net::LoadSharedKey(key_file_);
    ASSERT_THAT(key, IsOk());
    key_.emplace(std::move(*key));

    client_transport_ = net::NewTcpTransport(Env::Default()->clock());
    agents_.emplace(kNode, &*key_);
    agents_->Add(kAgentA, {kRmA});
    agents_->Add(kAgentB, {kRmB});
    // The coordinator is never silent here: a long termination timeout.
    agents_->Start(kAgentA, &finisher_a_, 1);
    agents_->Start(kAgentB, &finisher_b_, 1);

    LogOptions log_options;
    log_options.dir = dir_ + "/tm-log";
    log_options.node_id = kNode;
    // Small preallocated segments: each Scan a test makes reads the segment's zero tail, 64 MiB
    // by default, which took most of these tests' time under TSan.
    log_options.segment_size_bytes = 1 << 20;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);
    ASSERT_NO_FATAL_FAILURE(OpenManager(/*ask_agents_during_prepare=*/true));
  }

  // (Re)opens the manager on the same log and agents.
  void OpenManager(bool ask_agents_during_prepare) {
    manager_.reset();
    TransactionManagerOptions options;
    options.node_id = kNode;
    options.phase_threads = 2;
    options.recovery_interval = 0ms;
    options.resource_managers = {{kRmA, rm_a_.Factory()}, {kRmB, rm_b_.Factory()}};
    agents_->ConfigureManager(options, key_file_);
    options.three_phase.ask_agents_during_prepare = ask_agents_during_prepare;
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    agents_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  RecordingFinisher& FinisherOf(const std::string& name) {
    return name == kAgentA ? finisher_a_ : finisher_b_;
  }
  // Every record agent `name` appended.
  std::vector<LogRecord> Records(const std::string& name) {
    std::vector<LogRecord> out;
    EXPECT_THAT(agents_->log(name).Scan([&](const LogRecord& r) { out.push_back(r); }), IsOk());
    return out;
  }
  // The types of the records agent `name` appended for participant `number` of `global`, in
  // order.
  std::vector<RecordType> RecordTypesOf(const std::string& name, const Xid& global, int number) {
    std::vector<RecordType> types;
    for (const LogRecord& r : Records(name)) {
      if (r.xid == global.WithBranch(static_cast<uint16_t>(number))) types.push_back(r.type);
    }
    return types;
  }
  // Each agent recorded WAIT, PRE and the decision, in that order, for its participant of
  // `global`, and never finished a branch itself (the coordinator's sessions did).
  void ExpectEveryAgentRecordedWaitPreThenCommitAndFinishedNothing(const Xid& global) {
    for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
      const std::vector<RecordType> types = RecordTypesOf(name, global, number);
      ASSERT_GE(types.size(), 3u) << name;
      EXPECT_EQ(types[0], RecordType::kParticipantWait) << name;
      EXPECT_EQ(types[1], RecordType::kParticipantPreCommit) << name;
      EXPECT_EQ(types[2], RecordType::kParticipantDecision) << name;
      EXPECT_THAT(FinisherOf(name).calls(), IsEmpty()) << name;
    }
  }
  std::vector<RecordType> TmRecordTypes() {
    std::vector<RecordType> out;
    EXPECT_THAT(log_->Scan([&](const LogRecord& r) { out.push_back(r.type); }), IsOk());
    return out;
  }

  // An abort at CanCommit logs no decision. The pre-commit record is appended beside the votes
  // (it only has to be durable before the first PreCommit), so it is there, and ended: once the
  // background work is done nothing of the transaction is open.
  void ExpectNoDecisionAndNothingOpen() {
    EXPECT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());
    EXPECT_THAT(TmRecordTypes(), ::testing::Not(::testing::Contains(RecordType::kCommitDecision)));
    EXPECT_THAT(log_->State().open_decisions, IsEmpty());
  }

  Result<Transaction> BeginOnBoth() {
    Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
    if (!txn.ok()) return txn.status();
    XA_RETURN_IF_ERROR(txn->Enlist(rm_a_));
    XA_RETURN_IF_ERROR(txn->Enlist(rm_b_));
    return txn;
  }

  ScriptedResourceManager rm_a_{kRmA};
  ScriptedResourceManager rm_b_{kRmB};
  RecordingFinisher finisher_a_;
  RecordingFinisher finisher_b_;
  std::string dir_;
  std::string key_file_;
  std::optional<net::SharedKey> key_;
  std::unique_ptr<net::Transport> client_transport_;
  std::optional<InProcessAgents> agents_;  // after the finishers and the key: destroyed first
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

TEST_F(ThreePhaseCoordinatorTest, CommitPreparesThenPreCommitsThenCommitsAndEveryAgentRecordsIt) {
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  EXPECT_EQ(global.GeneratedProtocol(), Protocol::kThreePhase);
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
  // The agents are told DoCommit once the branches are committed, off Commit()'s path.
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());

  // The databases see 2PC's calls; the coordinator commits through the application's sessions.
  EXPECT_THAT(rm_a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                         "commit(TMNOFLAGS)"));
  EXPECT_THAT(rm_b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                         "commit(TMNOFLAGS)"));
  // The coordinator logged PreCommit before the commit decision.
  std::vector<RecordType> tm = TmRecordTypes();
  auto pre = std::find(tm.begin(), tm.end(), RecordType::kPreCommit);
  auto decision = std::find(tm.begin(), tm.end(), RecordType::kCommitDecision);
  ASSERT_NE(pre, tm.end());
  ASSERT_NE(decision, tm.end());
  EXPECT_LT(pre, decision);
  ExpectEveryAgentRecordedWaitPreThenCommitAndFinishedNothing(global);
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
}

#ifdef XA_ENABLE_TEST_HOOKS
// DoCommit is off the commit's path: Commit() returns once the branches are committed, while the
// agents still hold PRE, and the transaction stays in flight (recovery leaves it alone) with its
// decision open until every agent acknowledged; then its end record is written.
TEST_F(ThreePhaseCoordinatorTest, CommitReturnsBeforeTheAgentsAreToldAndTheDecisionEndsOnceTheyAcknowledge) {
  std::mutex mu;
  std::condition_variable changed;
  bool released = false;
  int waiting = 0;
  auto release = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
    }
    changed.notify_all();
  };
  // Whatever fails below, the notifier's threads are released before the manager stops them.
  struct Releaser {
    std::function<void()> release;
    ~Releaser() {
      release();
      sync::SyncPoints::Instance().DisableProcessing();
      sync::SyncPoints::Instance().ClearAll();
    }
  } releaser{release};
  auto& sync_points = sync::SyncPoints::Instance();
  sync_points.SetCallback(sync::kThreePhaseBeforeDoCommit, [&](void*) {
    std::unique_lock<std::mutex> lock(mu);
    ++waiting;
    changed.notify_all();
    changed.wait(lock, [&] { return released; });
  });
  sync_points.EnableProcessing();
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  const Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return waiting == 2; }));
  }
  // Committed in both databases; neither agent told yet.
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
  EXPECT_TRUE(manager_->IsInFlight(global));
  EXPECT_FALSE(manager_->WaitForBackgroundCompletion(0ms).ok());
  for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
    EXPECT_THAT(RecordTypesOf(name, global, number),
                ::testing::Not(::testing::Contains(RecordType::kParticipantDecision)))
        << name;
  }
  EXPECT_EQ(log_->State().open_decisions.count(global), 1u);
  release();
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(30s), IsOk());
  EXPECT_FALSE(manager_->IsInFlight(global));
  EXPECT_EQ(log_->State().open_decisions.count(global), 0u);
  for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
    const std::vector<RecordType> types = RecordTypesOf(name, global, number);
    EXPECT_THAT(types, ::testing::Contains(RecordType::kParticipantDecision)) << name;
    EXPECT_THAT(FinisherOf(name).calls(), IsEmpty()) << name;
  }
}
#endif  // XA_ENABLE_TEST_HOOKS

#ifdef XA_ENABLE_TEST_HOOKS
// DoCommit goes out after Commit() returned; a manager closed right then still sends every
// notice it took before it stops, so that the agents need not terminate on their own (fencing
// the application's sessions) and the decisions do not wait for the next start's recovery. Each
// agent call is held 300 ms, so that more notices than the notifier has threads are still queued
// when the manager closes.
TEST_F(ThreePhaseCoordinatorTest, AManagerClosedRightAfterCommitsStillTellsTheAgents) {
  struct Disable {
    ~Disable() {
      sync::SyncPoints::Instance().DisableProcessing();
      sync::SyncPoints::Instance().ClearAll();
    }
  } disable;
  auto& sync_points = sync::SyncPoints::Instance();
  sync_points.SetCallback(sync::kThreePhaseBeforeDoCommit,
                          [](void*) { std::this_thread::sleep_for(300ms); });
  sync_points.EnableProcessing();
  std::vector<Xid> committed;
  for (int i = 0; i < 4; ++i) {
    Result<Transaction> txn = BeginOnBoth();
    ASSERT_THAT(txn, IsOk());
    Result<Outcome> outcome = txn->Commit();
    ASSERT_THAT(outcome, IsOk());
    ASSERT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
    committed.push_back(txn->xid());
  }
  manager_.reset();
  for (const Xid& global : committed) {
    EXPECT_EQ(log_->State().open_decisions.count(global), 0u)
        << global.ToString() << ": its decision was left open, DoCommit dropped at close";
    for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
      const std::vector<RecordType> types = RecordTypesOf(name, global, number);
      EXPECT_THAT(types, ::testing::Contains(RecordType::kParticipantDecision)) << name;
    }
  }
}
#endif  // XA_ENABLE_TEST_HOOKS

TEST_F(ThreePhaseCoordinatorTest, APendingCommitIsEndedOnlyOnceEveryAgentAcknowledgedDoCommit) {
  // Branch B's commit fails on every inline attempt and the first background one (it goes to
  // the background completer, which then commits it), and its first failure stops agent A: A is
  // PRE and misses DoCommit.
  std::vector<Step> commits_of_b = {Step::Then(Code::kRmFail, [&] { agents_->Stop(kAgentA); })};
  for (int i = 0; i < 4; ++i) commits_of_b.push_back(Step::Return(Code::kRmFail));
  rm_b_.Script(Verb::kCommit, commits_of_b);
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  const Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  ASSERT_EQ(*outcome, Outcome::kCommittedCompletionPending) << txn->last_status().ToString();

  // The completer commits branch B; agent A, still down, has not acknowledged the decision, so
  // the job is not over and the decision stays open: ending it now would leave A's PRE
  // participant with no record at the coordinator to learn the outcome from.
  ASSERT_TRUE(Eventually([&] { return rm_b_.PreparedXids().empty(); }));
  EXPECT_THAT(manager_->WaitForBackgroundCompletion(1s), StatusIs(Code::kTimeout));
  EXPECT_EQ(log_->State().open_decisions.count(global), 1u);

  // Agent A back (its termination timeout is far away): the completer tells it DoCommit with
  // the branch done, A records COMMIT without finishing the branch itself, and only then is the
  // decision ended.
  agents_->Start(kAgentA, &finisher_a_, 2);
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(30s), IsOk());
  bool a_recorded_commit = false;
  for (const LogRecord& r : Records(kAgentA)) {
    if (r.xid == global.WithBranch(0) && r.type == RecordType::kParticipantDecision &&
        r.outcome == Outcome::kCommitted) {
      a_recorded_commit = true;
    }
  }
  EXPECT_TRUE(a_recorded_commit) << "the decision was ended without agent A's acknowledgement";
  EXPECT_THAT(finisher_a_.calls(), IsEmpty());
  manager_.reset();  // the lazy end record is written at the latest when the manager closes
  EXPECT_EQ(log_->State().open_decisions.count(global), 0u);
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, AnAgentVotingNoRollsBothBranchesBackAndTellsTheOtherAgent) {
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  // Agent B is asked about the transaction before it ever voted: it records ABORT (an unknown
  // transaction aborts), so it will vote no.
  three_phase::AgentClient client(client_transport_.get(), &*key_, "a-curious-peer",
                                  agents_->directory());
  three_phase::AgentMessage query;
  query.body = three_phase::StateQueryMessage{global, 1, three_phase::kCoordinatorAsker};
  Result<three_phase::AgentMessage> reply =
      client.Call(kRmB, query, Env::Default()->clock()->DeadlineAfter(10s));
  ASSERT_THAT(reply, IsOk());

  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_THAT(rm_a_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  EXPECT_THAT(rm_b_.Trace(),
              ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare", "rollback"));
  ExpectNoDecisionAndNothingOpen();  // presumed abort: no decision logged
  // Agent A had voted yes: it heard the Abort, with the branch already rolled back.
  EXPECT_TRUE(Eventually([&] {
    std::optional<LogRecord> open = agents_->OpenParticipant(kAgentA, global, 0);
    return !open.has_value() || open->outcome == Outcome::kRolledBack;
  }));
  EXPECT_THAT(finisher_a_.calls(), IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, AnUnreachableAgentAtCanCommitRollsBack) {
  agents_->Stop(kAgentB);
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(txn->last_status().code(), Code::kIoError) << txn->last_status().ToString();
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
  ExpectNoDecisionAndNothingOpen();
}

// The coordinator keeps its connections to the agents open between transactions; an agent that
// restarted meanwhile closed its end. The next CanCommit finds its pooled connection closed and
// asks again on a new one (every agent message is idempotent), instead of aborting the
// transaction, as it did before the agent-crash bench case showed.
TEST_F(ThreePhaseCoordinatorTest, AnAgentRestartedBetweenTransactionsIsAskedAgainOnANewConnection) {
  Result<Transaction> first = BeginOnBoth();
  ASSERT_THAT(first, IsOk());
  Result<Outcome> outcome = first->Commit();
  ASSERT_THAT(outcome, IsOk());
  ASSERT_EQ(*outcome, Outcome::kCommitted) << first->last_status().ToString();
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());

  agents_->Stop(kAgentB);
  agents_->Start(kAgentB, &finisher_b_, 2);
  Result<Transaction> second = BeginOnBoth();
  ASSERT_THAT(second, IsOk());
  outcome = second->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << second->last_status().ToString();
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
}

// With the agents asked once the databases voted (ask_agents_during_prepare = false), a
// rollback vote aborts before any agent hears of the transaction, and a transaction with one
// writing branch commits it as 2PC does, without the agents.
TEST_F(ThreePhaseCoordinatorTest, AskedAfterTheVotesARollbackVoteAbortsBeforeAnyAgentHearsOfIt) {
  ASSERT_NO_FATAL_FAILURE(OpenManager(/*ask_agents_during_prepare=*/false));
  rm_b_.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_THAT(Records(kAgentA), IsEmpty());
  EXPECT_THAT(Records(kAgentB), IsEmpty());
  ExpectNoDecisionAndNothingOpen();
}

TEST_F(ThreePhaseCoordinatorTest, AskedAfterTheVotesOneCommitVoteBesideReadOnlyBranchesCommitsWithoutTheAgents) {
  ASSERT_NO_FATAL_FAILURE(OpenManager(/*ask_agents_during_prepare=*/false));
  rm_b_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_THAT(rm_a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                         "commit(TMNOFLAGS)"));
  EXPECT_THAT(Records(kAgentA), IsEmpty());
  EXPECT_THAT(Records(kAgentB), IsEmpty());
  EXPECT_THAT(TmRecordTypes(), IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, AskedAfterTheVotesEveryPhaseStillRunsThroughTheAgents) {
  ASSERT_NO_FATAL_FAILURE(OpenManager(/*ask_agents_during_prepare=*/false));
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());
  ExpectEveryAgentRecordedWaitPreThenCommitAndFinishedNothing(global);
  EXPECT_THAT(log_->State().open_decisions, IsEmpty());
}

// Asked during the prepares (the default), the agents hold WAIT by the time a database votes
// rollback: each is told Abort, the branches roll back through the application's sessions, no
// decision is logged and no agent finishes a branch itself.
TEST_F(ThreePhaseCoordinatorTest, ARollbackVoteDuringTheAgentsVotesRollsBackAndTellsEveryAgentAbort) {
  rm_b_.Script(Verb::kPrepare, {Step::Return(Code::kRbDeadlock)});
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(txn->last_status().code(), Code::kRbDeadlock) << txn->last_status().ToString();
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
  ExpectNoDecisionAndNothingOpen();
  for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
    EXPECT_THAT(RecordTypesOf(name, global, number),
                ElementsAre(RecordType::kParticipantWait, RecordType::kParticipantDecision))
        << name;
    EXPECT_TRUE(Eventually([&, name = name, number = number] {
      std::optional<LogRecord> open = agents_->OpenParticipant(name, global, number);
      return !open.has_value() || open->outcome == Outcome::kRolledBack;
    })) << name;
    EXPECT_THAT(FinisherOf(name).calls(), IsEmpty()) << name;
  }
}

// Asked during the prepares, a read-only vote comes after the agents' WAIT: the one writing
// branch commits through every phase, and the read-only branch's agent is told it is finished.
TEST_F(ThreePhaseCoordinatorTest, OneCommitVoteBesideReadOnlyBranchesRunsEveryPhaseWhenTheAgentsWereAskedDuringThePrepares) {
  rm_b_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
  ASSERT_THAT(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)), IsOk());
  EXPECT_THAT(rm_a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare",
                                         "commit(TMNOFLAGS)"));
  EXPECT_THAT(rm_b_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)", "prepare"));
  ExpectEveryAgentRecordedWaitPreThenCommitAndFinishedNothing(global);
  EXPECT_THAT(log_->State().open_decisions, IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, EveryBranchReadOnlyCommitsAndTellsTheAgentsAskedDuringThePreparesAbort) {
  rm_a_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  rm_b_.Script(Verb::kPrepare, {Step::Return(Code::kReadOnly)});
  Result<Transaction> txn = BeginOnBoth();
  ASSERT_THAT(txn, IsOk());
  Xid global = txn->xid();
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted) << txn->last_status().ToString();
  ExpectNoDecisionAndNothingOpen();
  for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
    // Not forgotten yet: the agent keeps it until its peers heard the decision (termination timer).
    EXPECT_TRUE(Eventually([&, name = name, number = number] {
      std::optional<LogRecord> open = agents_->OpenParticipant(name, global, number);
      return !open.has_value() || open->outcome == Outcome::kRolledBack;
    })) << name;
    EXPECT_THAT(FinisherOf(name).calls(), IsEmpty()) << name;
  }
}

TEST_F(ThreePhaseCoordinatorTest, ASingleBranchCommitsInOnePhaseWithoutTheAgents) {
  Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
  ASSERT_THAT(txn, IsOk());
  ASSERT_THAT(txn->Enlist(rm_a_), IsOk());
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_THAT(rm_a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMSUCCESS)",
                                         "commit(TMONEPHASE)"));
  EXPECT_THAT(Records(kAgentA), IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, ManyConcurrentTransactionsAllCommitEverywhere) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10;
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<ScriptedResourceManager> a = rm_a_.NewSession();
      std::unique_ptr<ScriptedResourceManager> b = rm_b_.NewSession();
      for (int i = 0; i < kPerThread; ++i) {
        Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
        if (!txn.ok() || !txn->Enlist(*a).ok() || !txn->Enlist(*b).ok()) continue;
        Result<Outcome> outcome = txn->Commit();
        if (outcome.ok() && *outcome == Outcome::kCommitted) committed.fetch_add(1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(committed.load(), kThreads * kPerThread);
  EXPECT_THAT(rm_a_.PreparedXids(), IsEmpty());
  EXPECT_THAT(rm_b_.PreparedXids(), IsEmpty());
  EXPECT_THAT(finisher_a_.calls(), IsEmpty());
}

TEST_F(ThreePhaseCoordinatorTest, OpenRefusesAnAgentResourceManagerWithoutAFactory) {
  TransactionManagerOptions options;
  options.node_id = kNode;
  options.resource_managers = {{kRmA, rm_a_.Factory()}};
  options.three_phase.agents = {{kAgentA, "127.0.0.1:1", {kRmA, "rm-unknown"}}};
  options.three_phase.key_file = key_file_;
  LogOptions log_options;
  log_options.dir = dir_ + "/other-log";
  log_options.node_id = kNode;
  Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
  ASSERT_THAT(log, IsOk());
  Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, **log);
  EXPECT_THAT(manager, StatusIs(Code::kConfig));
  EXPECT_THAT(manager.status().message(), ::testing::HasSubstr("rm-unknown"));
}

TEST_F(ThreePhaseCoordinatorTest, WithoutAgentsBeginThreePhaseIsRefused) {
  TransactionManagerOptions options;
  options.node_id = kNode;
  options.resource_managers = {{kRmA, rm_a_.Factory()}};
  LogOptions log_options;
  log_options.dir = dir_ + "/plain-log";
  log_options.node_id = kNode;
  Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
  ASSERT_THAT(log, IsOk());
  Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, **log);
  ASSERT_THAT(manager, IsOk());
  EXPECT_THAT((*manager)->Begin(Protocol::kThreePhase), StatusIs(Code::kNotSupported));
}

}  // namespace
}  // namespace xa::test
