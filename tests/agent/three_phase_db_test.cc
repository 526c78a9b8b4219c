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
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "daemons/agent/agent.h"
#include "daemons/agent/rm_branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_client.h"
#include "src/three_phase/agent_messages.h"
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
// How long a test waits for the agents to finish on their own.
constexpr auto kSettleLimit = 60s;

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x33000000u | (rd() & 0xffffffu);
}

struct RunningAgent {
  std::string log_dir;
  std::unique_ptr<DecisionLog> log;
  std::unique_ptr<net::Transport> transport;
  std::unique_ptr<net::Listener> listener;  // until the agent takes it
  std::unique_ptr<agent::RmBranchFinisher> finisher;
  std::unique_ptr<agent::Agent> agent;
};

class ThreePhaseDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = UniqueNode();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());

    key_dir_ = TempLogDir("3pc-key");
    ASSERT_FALSE(key_dir_.empty());
    key_file_ = key_dir_ + "/agents.key";
    {
      std::ofstream out(key_file_);
      out << "a shared key for the three-phase tests, 32+ bytes";
    }
    ASSERT_EQ(chmod(key_file_.c_str(), 0600), 0);
    Result<net::SharedKey> key = net::LoadSharedKey(key_file_);
    ASSERT_THAT(key, IsOk());
    key_.emplace(std::move(*key));

    TransactionManagerOptions factories;
    RegisterDbFactories(factories);
    factories_ = factories.resource_managers;

    client_transport_ = net::NewTcpTransport(Env::Default()->clock());
    directory_.agent_of_rm = {{kMariaDbRm, kAgentA}, {kPostgresRm, kAgentB}};
    // Every agent's listener first, on a port the kernel picks and that stays bound: the
    // directory needs every address before any agent starts.
    for (const char* name : {kAgentA, kAgentB}) {
      RunningAgent& running = agents_[name];
      running.transport = net::NewTcpTransport(Env::Default()->clock());
      Result<std::unique_ptr<net::Listener>> listener = running.transport->Listen("127.0.0.1:0");
      ASSERT_THAT(listener, IsOk());
      directory_.address_of_agent[name] = (*listener)->address();
      running.listener = std::move(*listener);
    }
    StartAgent(kAgentA, kMariaDbRm, 1);
    StartAgent(kAgentB, kPostgresRm, 1);

    log_dir_ = TempLogDir("3pc-tm");
    ASSERT_FALSE(log_dir_.empty());
    LogOptions log_options;
    log_options.dir = log_dir_;
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);

    TransactionManagerOptions options;
    options.node_id = node_;
    options.resource_managers = factories_;
    options.three_phase.agents = {
        {kAgentA, directory_.address_of_agent[kAgentA], {kMariaDbRm}},
        {kAgentB, directory_.address_of_agent[kAgentB], {kPostgresRm}}};
    options.three_phase.key_file = key_file_;
    options.three_phase.vote_timeout = 10s;
    options.three_phase.ack_timeout = 10s;
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
    for (auto& [name, running] : agents_) {
      if (running.agent != nullptr) running.agent->Stop();
      running.agent.reset();
      running.log.reset();
      if (!running.log_dir.empty()) std::filesystem::remove_all(running.log_dir);
    }
    if (!log_dir_.empty()) std::filesystem::remove_all(log_dir_);
    if (!key_dir_.empty()) std::filesystem::remove_all(key_dir_);
  }

  void StartAgent(const std::string& name, const std::string& rm, uint64_t incarnation) {
    RunningAgent& running = agents_[name];
    if (running.log_dir.empty()) running.log_dir = TempLogDir("3pc-agent");
    ASSERT_FALSE(running.log_dir.empty());
    LogOptions log_options;
    log_options.dir = running.log_dir;
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    running.log = std::move(*log);
    if (running.transport == nullptr) {
      // A restart: a new transport listens again on the agent's address from the directory.
      running.transport = net::NewTcpTransport(Env::Default()->clock());
      Result<std::unique_ptr<net::Listener>> listener =
          running.transport->Listen(directory_.address_of_agent.at(name));
      ASSERT_THAT(listener, IsOk());
      running.listener = std::move(*listener);
    }
    running.finisher = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{{rm, factories_.at(rm)}});
    agent::AgentOptions options;
    options.name = name;
    options.listen_address = directory_.address_of_agent.at(name);
    options.agent_of_rm = directory_.agent_of_rm;
    options.address_of_agent = directory_.address_of_agent;
    options.termination_timeout = kTerminationTimeout;
    options.peer_timeout = 500ms;
    agent::AgentDependencies deps;
    deps.env = Env::Default();
    deps.log = running.log.get();
    deps.transport = running.transport.get();
    deps.key = &*key_;
    deps.finisher = running.finisher.get();
    deps.incarnation = incarnation;
    Result<std::unique_ptr<agent::Agent>> started =
        agent::Agent::Start(options, deps, std::move(running.listener));
    ASSERT_THAT(started, IsOk());
    running.agent = std::move(*started);
  }

  agent::AgentCounters Counters(const std::string& name) {
    return agents_.at(name).agent->counters();
  }

  // The state the agent's log holds for participant `number` of `global`: its record type, or
  // nullopt when the participant is done (or never recorded).
  std::optional<LogRecord> OpenParticipant(const std::string& name, const Xid& global,
                                           uint16_t number) {
    LogState state = agents_.at(name).log->State();
    auto it = state.open_participants.find(global.WithBranch(number));
    if (it == state.open_participants.end()) return std::nullopt;
    return it->second;
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

  // Polls `done` until it holds or kSettleLimit passes.
  template <typename Pred>
  bool Eventually(Pred done) {
    auto limit = std::chrono::steady_clock::now() + kSettleLimit;
    while (std::chrono::steady_clock::now() < limit) {
      if (done()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return done();
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
                                                           "hand-coordinator", directory_);
    }
    return *client_;
  }

  uint32_t node_ = 0;
  DbTeller admin_;
  DbTeller teller_;
  std::string key_dir_;
  std::string key_file_;
  std::optional<net::SharedKey> key_;
  std::map<std::string, ResourceManagerFactory> factories_;
  std::unique_ptr<net::Transport> client_transport_;
  three_phase::AgentDirectory directory_;
  std::unique_ptr<three_phase::AgentClient> client_;
  std::map<std::string, RunningAgent> agents_;
  std::string log_dir_;
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
  agents_.at(kAgentB).agent->Stop();
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
  agents_.at(kAgentB).agent->Stop();
  agents_.at(kAgentB).agent.reset();
  agents_.at(kAgentB).log.reset();
  agents_.at(kAgentB).transport.reset();
  StartAgent(kAgentB, kPostgresRm, 2);
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
