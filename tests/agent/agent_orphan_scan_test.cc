// The participant agent's orphan scan (daemons/agent/agent.h, "Orphan scan") over the real
// servers: a 3PC transaction whose branches were prepared on MariaDB (xa::mysql) and PostgreSQL
// (xa::odbc) by a coordinator that then died before any CanCommit reached the agent, so no one
// will ever talk to the agent about it. The running agent, with its own sessions
// (RmBranchFinisher, which also lists the prepared branches), rolls both back on its own within
// its scan interval plus its termination timeout, and leaves alone a 2PC branch and a 3PC
// branch it voted on. Needs scripts/servers.sh (label db): a missing server fails.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
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

namespace xa::test {
namespace {

using namespace std::chrono_literals;
using three_phase::AgentMessage;

constexpr const char* kTable = "orphan_scan_accounts";
constexpr int kAccounts = 4;
constexpr int64_t kBalance = 1000;
constexpr const char* kAgent = "agent-orphans";
constexpr auto kScanInterval = 200ms;
constexpr auto kTerminationTimeout = 1000ms;

uint32_t UniqueNode() {
  std::random_device rd;
  return 0x0a000000u | (rd() & 0xffffffu);
}

class AgentOrphanScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = UniqueNode();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());

    dir_ = MakeTempDir("orphan-scan");
    ASSERT_FALSE(dir_.empty());
    Result<net::SharedKey> key = net::LoadSharedKey(WriteTestKeyFile(dir_));
    ASSERT_THAT(key, IsOk());
    key_.emplace(std::move(*key));

    TransactionManagerOptions factories;
    RegisterDbFactories(factories);
    finisher_ = std::make_unique<agent::RmBranchFinisher>(
        std::map<std::string, ResourceManagerFactory>{
            {kMariaDbRm, factories.resource_managers.at(kMariaDbRm)},
            {kPostgresRm, factories.resource_managers.at(kPostgresRm)}});
    transport_ = net::NewTcpTransport(Env::Default()->clock());
  }

  void TearDown() override {
    if (agent_) agent_->Stop();
    agent_.reset();
    log_.reset();
    // Whatever a failed test left prepared of this node (and of the other node one test plays),
    // so that its locks go with it.
    for (uint32_t node : {node_, node_ ^ 1u}) {
      for (const Xid& xid : Prepared(node)) {
        if (admin_.mariadb->Rollback(xid).ok()) continue;
        (void)admin_.postgres->Rollback(xid);
      }
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void StartAgent() {
    LogOptions log_options;
    log_options.dir = dir_ + "/agent-log";
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);
    agent::AgentOptions options;
    options.name = kAgent;
    options.listen_address = "127.0.0.1:0";
    options.agent_of_rm = {{kMariaDbRm, kAgent}, {kPostgresRm, kAgent}};
    options.address_of_agent = {{kAgent, "127.0.0.1:0"}};
    options.termination_timeout = kTerminationTimeout;
    options.peer_timeout = 500ms;
    options.orphan_scan_interval = kScanInterval;
    options.orphan_scan_nodes = {node_};
    agent::AgentDependencies deps;
    deps.env = Env::Default();
    deps.log = log_.get();
    deps.transport = transport_.get();
    deps.key = &*key_;
    deps.finisher = finisher_.get();
    deps.lister = finisher_.get();
    deps.incarnation = 1;
    Result<std::unique_ptr<agent::Agent>> agent = agent::Agent::Start(options, deps);
    ASSERT_THAT(agent, IsOk());
    agent_ = std::move(*agent);
  }

  std::vector<Xid> Prepared(uint32_t node) {
    Result<std::vector<Xid>> prepared = PreparedBranchesOf(admin_, node);
    EXPECT_THAT(prepared, IsOk());
    return prepared.ok() ? *prepared : std::vector<Xid>{};
  }
  bool IsPrepared(const Xid& branch) {
    std::vector<Xid> prepared = Prepared(branch.NodeId().value_or(node_));
    return std::find(prepared.begin(), prepared.end(), branch) != prepared.end();
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

  // A transfer of `amount` from MariaDB account `account` to PostgreSQL account `account`,
  // prepared on both databases under `global`'s branches 0 and 1 by `teller`'s sessions.
  void PrepareTransfer(DbTeller& teller, const Xid& global, int account, int64_t amount) {
    const Xid on_mariadb = global.WithBranch(0);
    const Xid on_postgres = global.WithBranch(1);
    ASSERT_THAT(teller.mariadb->Start(on_mariadb, StartFlag::kNoFlags), IsOk());
    ASSERT_THAT(teller.postgres->Start(on_postgres, StartFlag::kNoFlags), IsOk());
    ASSERT_THAT(TransferWork(teller, kTable, account, account, amount), IsOk());
    ASSERT_THAT(teller.mariadb->End(on_mariadb, EndFlag::kSuccess), IsOk());
    ASSERT_THAT(teller.postgres->End(on_postgres, EndFlag::kSuccess), IsOk());
    ASSERT_THAT(teller.mariadb->Prepare(on_mariadb), IsOk());
    ASSERT_THAT(teller.postgres->Prepare(on_postgres), IsOk());
  }

  // The coordinator's death: its sessions end (MariaDB detaches their prepared branches).
  static void Disconnect(DbTeller& teller) {
    EXPECT_THAT(teller.mariadb->Close(), IsOk());
    EXPECT_THAT(teller.postgres->Close(), IsOk());
    teller.mariadb.reset();
    teller.postgres.reset();
  }

  uint32_t node_ = 0;
  DbTeller admin_;
  std::string dir_;
  std::optional<net::SharedKey> key_;
  std::unique_ptr<agent::RmBranchFinisher> finisher_;
  std::unique_ptr<net::Transport> transport_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<agent::Agent> agent_;
};

TEST_F(AgentOrphanScanTest, BranchesPreparedWithoutACanCommitAreRolledBackByTheRunningAgent) {
  XidGenerator xids(node_);
  const Xid orphan = xids.Next(Protocol::kThreePhase);
  const Xid two_phase = xids.Next(Protocol::kTwoPhase);
  // A 3PC branch of another node: another deployment's, whose agents may hold it WAIT or PRE.
  const Xid others = XidGenerator(node_ ^ 1u).Next(Protocol::kThreePhase);
  // Each prepared by sessions of their own (a session holds one prepared branch at a time).
  for (const auto& [global, account] :
       {std::pair{orphan, 1}, std::pair{two_phase, 2}, std::pair{others, 3}}) {
    Result<DbTeller> coordinator = OpenTeller();
    ASSERT_THAT(coordinator, IsOk());
    ASSERT_NO_FATAL_FAILURE(PrepareTransfer(*coordinator, global, account, 100));
    Disconnect(*coordinator);
  }
  ASSERT_TRUE(IsPrepared(orphan.WithBranch(0)));
  ASSERT_TRUE(IsPrepared(orphan.WithBranch(1)));

  const auto started = std::chrono::steady_clock::now();
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  // Seen unknown by the scans for a termination timeout, then rolled back: within two scan
  // intervals and the timeout, plus room for a loaded machine.
  const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(
      kTerminationTimeout + 2 * kScanInterval + 3s);
  ASSERT_TRUE(Eventually(
      [&] { return !IsPrepared(orphan.WithBranch(0)) && !IsPrepared(orphan.WithBranch(1)); },
      limit))
      << "the orphan's branches are still prepared after " << limit.count() << " ms";
  EXPECT_GE(std::chrono::steady_clock::now() - started, kTerminationTimeout)
      << "rolled back before the scans saw it unknown for a termination timeout";
  ASSERT_TRUE(Eventually([&] { return agent_->counters().orphans_rolled_back == 2; }, 10s));

  // Rolled back, not committed: the transfer left no trace.
  EXPECT_EQ(MariaDb(1), kBalance);
  EXPECT_EQ(Postgres(1), kBalance);
  // ABORT is in the agent's log for both participants (a late CanCommit is answered no).
  LogState state = log_->State();
  for (uint16_t number : {0, 1}) {
    auto record = state.open_participants.find(orphan.WithBranch(number));
    ASSERT_NE(record, state.open_participants.end()) << "participant " << number;
    EXPECT_EQ(record->second.type, RecordType::kParticipantDecision);
    EXPECT_EQ(record->second.outcome, Outcome::kRolledBack);
  }
  // The 2PC branches are not the agent's, nor another node's 3PC branches: still prepared after
  // more scans.
  const uint64_t scans = agent_->counters().orphan_scans;
  ASSERT_TRUE(Eventually([&] { return agent_->counters().orphan_scans >= scans + 4; }, 10s));
  EXPECT_TRUE(IsPrepared(two_phase.WithBranch(0)));
  EXPECT_TRUE(IsPrepared(two_phase.WithBranch(1)));
  EXPECT_TRUE(IsPrepared(others.WithBranch(0))) << "another deployment's branch was rolled back";
  EXPECT_TRUE(IsPrepared(others.WithBranch(1))) << "another deployment's branch was rolled back";
  EXPECT_EQ(agent_->counters().orphans_rolled_back, 2u);
  EXPECT_THAT(admin_.mariadb->Rollback(two_phase.WithBranch(0)), IsOk());
  EXPECT_THAT(admin_.postgres->Rollback(two_phase.WithBranch(1)), IsOk());
  EXPECT_THAT(admin_.mariadb->Rollback(others.WithBranch(0)), IsOk());
  EXPECT_THAT(admin_.postgres->Rollback(others.WithBranch(1)), IsOk());
}

TEST_F(AgentOrphanScanTest, BranchesTheAgentVotedOnAreLeftToItsOwnRules) {
  XidGenerator xids(node_);
  const Xid global = xids.Next(Protocol::kThreePhase);
  Result<DbTeller> coordinator = OpenTeller();
  ASSERT_THAT(coordinator, IsOk());
  ASSERT_NO_FATAL_FAILURE(PrepareTransfer(*coordinator, global, 1, 100));
  Result<uint64_t> fence = coordinator->mariadb->SessionId();
  ASSERT_THAT(fence, IsOk());
  ASSERT_NO_FATAL_FAILURE(StartAgent());

  // The coordinator gets every vote and every PreCommit acknowledgement, then falls silent
  // (its sessions stay connected: the agent fences the MariaDB one).
  three_phase::AgentDirectory directory;
  directory.agent_of_rm = {{kMariaDbRm, kAgent}, {kPostgresRm, kAgent}};
  directory.address_of_agent = {{kAgent, agent_->address()}};
  three_phase::AgentClient client(transport_.get(), &*key_, "hand-coordinator", directory);
  const std::vector<Participant> participants = {{kMariaDbRm, global.WithBranch(0)},
                                                 {kPostgresRm, global.WithBranch(1)}};
  auto call = [&](const std::string& rm, decltype(AgentMessage::body) body) {
    AgentMessage request;
    request.body = std::move(body);
    Result<AgentMessage> reply =
        client.Call(rm, request, Env::Default()->clock()->DeadlineAfter(10s));
    EXPECT_THAT(reply, IsOk());
    return reply.ok() ? *reply : AgentMessage{};
  };
  for (uint32_t number : {0u, 1u}) {
    three_phase::CanCommitMessage can_commit;
    can_commit.xid = global;
    can_commit.participant = number;
    can_commit.participants = participants;
    can_commit.fence_session_id = number == 0 ? *fence : 0;
    AgentMessage vote = call(participants[number].rm_name, can_commit);
    const auto* yes = std::get_if<three_phase::VoteMessage>(&vote.body);
    ASSERT_TRUE(yes != nullptr && yes->yes) << "participant " << number;
  }
  for (uint32_t number : {0u, 1u}) {
    AgentMessage ack =
        call(participants[number].rm_name, three_phase::PreCommitMessage{global, number});
    const auto* pre = std::get_if<three_phase::AckMessage>(&ack.body);
    ASSERT_TRUE(pre != nullptr && pre->state == three_phase::ParticipantState::kPre)
        << "participant " << number;
  }

  // Termination commits (every participant PRE); the orphan scan must not roll back first.
  ASSERT_TRUE(Eventually(
      [&] { return !IsPrepared(global.WithBranch(0)) && !IsPrepared(global.WithBranch(1)); },
      30s));
  EXPECT_EQ(MariaDb(1), kBalance - 100) << "the transfer was rolled back";
  EXPECT_EQ(Postgres(1), kBalance + 100) << "the transfer was rolled back";
  EXPECT_GE(agent_->counters().orphan_scans, 2u);
  EXPECT_EQ(agent_->counters().orphans_rolled_back, 0u);
}

}  // namespace
}  // namespace xa::test
