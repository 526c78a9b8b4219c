// Three-phase commit over the real servers: a TransactionManager with Protocol::kThreePhase,
// MariaDB through xa::mysql and PostgreSQL through xa::odbc, and two participant agents
// (daemons/agent) in this process over loopback TCP, each with its own log and its own database
// sessions (RmBranchFinisher). Needs scripts/servers.sh (label db): a missing server fails.
//
// Two kinds of tests: through the manager (the normal paths), and with the test as a coordinator
// that prepares the branches by hand, talks to the agents with AgentClient and then falls silent,
// so that the agents must finish the transaction on their own (termination, fence included).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include "daemons/agent/agent.h"
#include "daemons/agent/rm_branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "src/three_phase/agent_messages.h"
#include "tests/agent/in_process_agents.h"
#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using three_phase::AgentMessage;
using three_phase::ParticipantState;

constexpr const char* kTable = "three_phase_accounts";
constexpr int kAccounts = 4;
constexpr int64_t kBalance = 1000;
constexpr const char* kAgentA = "agent-mariadb";
constexpr const char* kAgentB = "agent-postgres";
// Long enough that the coordinator's phases finish first on a loaded machine; short enough
// that the termination tests do not wait long.
constexpr auto kTerminationTimeout = 1500ms;

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x33000000u | (rd() & 0xffffffu);
}

class ThreePhaseDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = UniqueNode();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());

    dir_ = MakeTempDir("3pc-db");
    ASSERT_FALSE(dir_.empty());
    key_file_ = WriteTestKeyFile(dir_);
    Result<net::SharedKey> key = net::LoadSharedKey(key_file_);
    ASSERT_THAT(key, IsOk());
    key_.emplace(std::move(*key));

    TransactionManagerOptions factories;
    RegisterDbFactories(factories);
    factories_ = factories.resource_managers;
    finishers_[kAgentA] = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{{kMariaDbRm, factories_.at(kMariaDbRm)}});
    finishers_[kAgentB] = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{{kPostgresRm, factories_.at(kPostgresRm)}});

    client_transport_ = net::NewTcpTransport(Env::Default()->clock());
    agents_.emplace(node_, &*key_);
    agents_->Add(kAgentA, {kMariaDbRm});
    agents_->Add(kAgentB, {kPostgresRm});
    StartAgent(kAgentA, 1);
    StartAgent(kAgentB, 1);

    LogOptions log_options;
    log_options.dir = dir_ + "/tm-log";
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);

    TransactionManagerOptions options;
    options.node_id = node_;
    options.resource_managers = factories_;
    agents_->ConfigureManager(options, key_file_);
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);

    Result<DbTeller> teller = OpenTeller();
    ASSERT_THAT(teller, IsOk());
    teller_ = std::move(*teller);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    agents_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartAgent(const std::string& name, uint64_t incarnation) {
    agents_->Start(name, finishers_.at(name).get(), incarnation,
                   AgentTimeouts{kTerminationTimeout, 500ms});
  }

  agent::AgentCounters Counters(const std::string& name) { return agents_->counters(name); }
  std::optional<LogRecord> OpenParticipant(const std::string& name, const Xid& global,
                                           uint16_t number) {
    return agents_->OpenParticipant(name, global, number);
  }

  int64_t MariaDb(int id) {
    Result<int64_t> v = MariaDbBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  int64_t Postgres(int id) {
    Result<int64_t> v = PostgresBalance(admin_, kTable, id);
    EXPECT_THAT(v, IsOk());
    return v.ok() ? *v : -1;
  }
  std::vector<Xid> Prepared() {
    Result<std::vector<Xid>> prepared = PreparedBranchesOf(admin_, node_);
    EXPECT_THAT(prepared, IsOk());
    return prepared.ok() ? *prepared : std::vector<Xid>{};
  }

  // The test as a coordinator: starts both branches of a transfer on the teller's sessions,
  // ends and prepares them, and asks both agents to vote. Returns the global Xid.
  Xid PrepareAndVoteByHand(int64_t amount) {
    XidGenerator xids(node_);
    Xid global = xids.Next(Protocol::kThreePhase);
    Xid on_mariadb = global.WithBranch(0);
    Xid on_postgres = global.WithBranch(1);
    EXPECT_THAT(teller_.mariadb->Start(on_mariadb, StartFlag::kNoFlags), IsOk());
    EXPECT_THAT(teller_.postgres->Start(on_postgres, StartFlag::kNoFlags), IsOk());
    EXPECT_THAT(TransferWork(teller_, kTable, 1, 1, amount), IsOk());
    EXPECT_THAT(teller_.mariadb->End(on_mariadb, EndFlag::kSuccess), IsOk());
    EXPECT_THAT(teller_.postgres->End(on_postgres, EndFlag::kSuccess), IsOk());
    EXPECT_THAT(teller_.mariadb->Prepare(on_mariadb), IsOk());
    EXPECT_THAT(teller_.postgres->Prepare(on_postgres), IsOk());
    Result<uint64_t> fence = teller_.mariadb->SessionId();
    EXPECT_THAT(fence, IsOk());

    std::vector<Participant> participants = {{kMariaDbRm, on_mariadb}, {kPostgresRm, on_postgres}};
    for (uint32_t number : {0u, 1u}) {
      three_phase::CanCommitMessage can_commit;
      can_commit.xid = global;
      can_commit.participant = number;
      can_commit.participants = participants;
      can_commit.fence_session_id = number == 0 && fence.ok() ? *fence : 0;
      AgentMessage request;
      request.body = can_commit;
      Result<AgentMessage> reply =
          Client().Call(participants[number].rm_name, request, Env::Default()->clock()->DeadlineAfter(10s));
      EXPECT_THAT(reply, IsOk());
      if (!reply.ok()) continue;
      const auto* vote = std::get_if<three_phase::VoteMessage>(&reply->body);
      EXPECT_TRUE(vote != nullptr && vote->yes) << "participant " << number;
    }
    return global;
  }

  three_phase::AgentClient& Client() {
    if (client_ == nullptr) {
      client_ = std::make_unique<three_phase::AgentClient>(client_transport_.get(), &*key_,
                                                           "hand-coordinator",
                                                           agents_->directory());
    }
    return *client_;
  }

  uint32_t node_ = 0;
  DbTeller admin_;
  DbTeller teller_;
  std::string dir_;
  std::string key_file_;
  std::optional<net::SharedKey> key_;
  std::map<std::string, ResourceManagerFactory> factories_;
  std::map<std::string, std::unique_ptr<agent::RmBranchFinisher>> finishers_;
  std::unique_ptr<net::Transport> client_transport_;
  std::unique_ptr<three_phase::AgentClient> client_;
  std::optional<InProcessAgents> agents_;  // after the finishers and the key: destroyed first
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

Result<Outcome> TransferThreePhase(TransactionManager& manager, DbTeller& teller, int64_t amount,
                                   Xid* xid) {
  Result<Transaction> txn = manager.Begin(Protocol::kThreePhase);
  if (!txn.ok()) return txn.status();
  *xid = txn->xid();
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.mariadb));
  XA_RETURN_IF_ERROR(txn->Enlist(*teller.postgres));
  Status work = TransferWork(teller, kTable, 1, 1, amount);
  if (!work.ok()) XA_RETURN_IF_ERROR(txn->SetRollbackOnly(work));
  return txn->Commit();
}

TEST_F(ThreePhaseDbTest, TransferCommitsOnBothDatabasesAndEveryAgentRecordsCommit) {
  Xid global;
  Result<Outcome> outcome = TransferThreePhase(*manager_, teller_, 100, &global);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kCommitted);
  EXPECT_EQ(global.GeneratedProtocol(), Protocol::kThreePhase);
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
  // The coordinator finished both branches itself: no agent fenced or finished anything, and
  // each recorded COMMIT (then, lazily, done).
  for (const char* name : {kAgentA, kAgentB}) {
    EXPECT_EQ(Counters(name).fences, 0u) << name;
    EXPECT_EQ(Counters(name).terminations_committed, 0u) << name;
  }
  EXPECT_TRUE(Eventually([&] {
    for (auto [name, number] : {std::pair{kAgentA, 0}, std::pair{kAgentB, 1}}) {
      std::optional<LogRecord> open = OpenParticipant(name, global, static_cast<uint16_t>(number));
      if (open.has_value() && open->type != RecordType::kParticipantDecision) return false;
      if (open.has_value() && open->outcome != Outcome::kCommitted) return false;
    }
    return true;
  }));
}

TEST_F(ThreePhaseDbTest, WorkThatFailsRollsBackOnBothDatabasesWithoutAskingTheAgents) {
  Xid global;
  // More than the balance: the MariaDB CHECK refuses it, the transaction is rollback-only.
  Result<Outcome> outcome = TransferThreePhase(*manager_, teller_, kBalance + 1, &global);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
  EXPECT_FALSE(OpenParticipant(kAgentA, global, 0).has_value());
  EXPECT_FALSE(OpenParticipant(kAgentB, global, 1).has_value());
}

TEST_F(ThreePhaseDbTest, AnAgentThatCannotBeReachedAtCanCommitRollsTheTransactionBack) {
  agents_->Stop(kAgentB);
  Xid global;
  Result<Outcome> outcome = TransferThreePhase(*manager_, teller_, 100, &global);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  EXPECT_THAT(Prepared(), ::testing::IsEmpty());
  // The agent that voted yes heard the Abort.
  EXPECT_TRUE(Eventually([&] {
    std::optional<LogRecord> open = OpenParticipant(kAgentA, global, 0);
    return !open.has_value() || (open->type == RecordType::kParticipantDecision &&
                                 open->outcome == Outcome::kRolledBack);
  }));
}

TEST_F(ThreePhaseDbTest, CoordinatorSilentAfterOnePreCommitLetsTheAgentsCommitWithTheFence) {
  Xid global = PrepareAndVoteByHand(100);
  // PreCommit reaches the MariaDB participant only; then the coordinator is silent for good.
  AgentMessage request;
  request.body = three_phase::PreCommitMessage{global, 0};
  Result<AgentMessage> ack =
      Client().Call(kMariaDbRm, request, Env::Default()->clock()->DeadlineAfter(10s));
  ASSERT_THAT(ack, IsOk());
  const auto* pre = std::get_if<three_phase::AckMessage>(&ack->body);
  ASSERT_NE(pre, nullptr);
  EXPECT_EQ(pre->state, ParticipantState::kPre);

  // Termination: one participant is PRE, so the backup promotes the other and commits; each
  // agent fences the coordinator's sessions and commits its branch.
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";
  EXPECT_EQ(MariaDb(1), kBalance - 100);
  EXPECT_EQ(Postgres(1), kBalance + 100);
  EXPECT_GE(Counters(kAgentA).fences, 1u);
  EXPECT_EQ(Counters(kAgentA).terminations_aborted + Counters(kAgentB).terminations_aborted, 0u);
  // The fenced MariaDB session is gone: the coordinator's late commit can no longer act on it.
  EXPECT_FALSE(teller_.mariadb->Commit(global.WithBranch(0), CommitMode::kTwoPhase).ok());
}

TEST_F(ThreePhaseDbTest, CoordinatorSilentAfterTheVotesLetsTheAgentsRollBack) {
  PrepareAndVoteByHand(100);
  // Nobody is PRE: termination aborts, and each agent rolls its branch back.
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  EXPECT_EQ(Counters(kAgentA).terminations_committed + Counters(kAgentB).terminations_committed,
            0u);
}

TEST_F(ThreePhaseDbTest, AnAgentRestartedWithPreInItsLogAdoptsTheBackupsAbort) {
  Xid global = PrepareAndVoteByHand(100);
  AgentMessage request;
  request.body = three_phase::PreCommitMessage{global, 1};
  Result<AgentMessage> ack =
      Client().Call(kPostgresRm, request, Env::Default()->clock()->DeadlineAfter(10s));
  ASSERT_THAT(ack, IsOk());
  // The PostgreSQL agent stops with PRE in its log and comes back as a new incarnation. A
  // restarted participant's PRE is not counted (it may have been asked before the crash and not
  // remember it), so the MariaDB participant (WAIT, never restarted) is the backup and aborts;
  // the restarted one adopts that. The coordinator never had every PRE, so abort is right.
  agents_->Stop(kAgentB);
  StartAgent(kAgentB, 2);
  EXPECT_EQ(Counters(kAgentB).participants_recovered, 1u);
  EXPECT_TRUE(Eventually([&] { return Prepared().empty(); })) << "branches still prepared";
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  EXPECT_TRUE(Eventually([&] {
    std::optional<LogRecord> open = OpenParticipant(kAgentB, global, 1);
    return !open.has_value() || open->outcome == Outcome::kRolledBack;
  }));
}

}  // namespace
}  // namespace xa::test
