// Three-phase commit under a network partition between real xa-agent processes: the one failure
// the protocol does not mask (docs/three-phase-commit.md, "Partitions: detected, never silent").
// The agents of the bank's two databases reach each other only through TCP relays
// (tests/testutil/tcp_relay.h), and the coordinator (a TransactionManager in this process)
// reaches the PostgreSQL agent through one too. The relays are cut once the votes are in and
// the coordinator's pre-commit record is durable, so its PreCommit reaches the MariaDB agent
// only: that agent is PRE, the PostgreSQL agent WAIT, and neither hears the other. The
// coordinator decides nothing (its acknowledgement timeout) and goes away. Each side's
// termination sees only itself: the PRE side commits, the WAIT side aborts. The split is real
// (the transfer is in MariaDB only), and the test is about what must follow: once the partition
// heals, both agents report it as heuristic-mixed (their log line and the
// xa_agent_heuristics_total counter of their metrics page), and the coordinator's recovery records
// it in its decision log, where xa-recover shows it to an operator; nothing is left prepared and
// no record of the transaction is left open. Needs scripts/servers.sh (label db).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "examples/bank/bank.h"
#include "src/testing/sync_points.h"
#include "tests/agent/agent_processes.h"
#include "tests/agent/bank_with_agents.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"
#include "tests/testutil/tcp_relay.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr auto kSettleLimit = 60s;
constexpr int64_t kAmount = 100;
constexpr const char* kHeuristicLine = "heuristic-mixed outcome";

class AgentPartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    for (TcpRelay* relay :
         {&mariadb_to_postgres_, &postgres_to_mariadb_, &coordinator_to_postgres_}) {
      ASSERT_EQ(relay->error(), "");
    }
    ASSERT_NO_FATAL_FAILURE(
        StartBankAndAgents("partition", node_, scratch_, &bank_, &agents_, [this](AgentPair& a) {
          a.RouteThrough(kAgentMariaDb, kAgentPostgres, mariadb_to_postgres_);
          a.RouteThrough(kAgentPostgres, kAgentMariaDb, postgres_to_mariadb_);
          a.RouteThrough(kCoordinator, kAgentPostgres, coordinator_to_postgres_);
        }));
  }

  void TearDown() override {
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.DisableProcessing();
    sync_points.ClearAll();
  }

  Result<std::unique_ptr<TransactionManager>> OpenManager(DecisionLog& log, bool recover) {
    TransactionManagerOptions options;
    options.node_id = node_;
    options.recover_on_open = recover;
    bank_->RegisterFactories(options);
    agents_->ConfigureManager(options);
    return TransactionManager::Open(options, log);
  }

  Result<std::unique_ptr<DecisionLog>> OpenLog() const {
    LogOptions log_options;
    log_options.dir = log_dir();
    log_options.node_id = node_;
    return DecisionLog::Open(log_options);
  }

  // Cuts every relay once every agent voted yes and the coordinator's pre-commit record is
  // durable, before any PreCommit is sent.
  void PartitionBeforePreCommit() {
    auto& sync_points = sync::SyncPoints::Instance();
    sync_points.SetCallback(sync::kThreePhaseBeforePreCommit, [this](void*) { CutAll(); });
    sync_points.EnableProcessing();
  }
  void CutAll() {
    mariadb_to_postgres_.Cut();
    postgres_to_mariadb_.Cut();
    coordinator_to_postgres_.Cut();
  }
  void HealAll() {
    mariadb_to_postgres_.Heal();
    postgres_to_mariadb_.Heal();
    coordinator_to_postgres_.Heal();
  }

  // Waits (bounded) until nothing of this node is prepared; returns the last snapshot.
  Result<bank::BankSnapshot> SettledSnapshot() {
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    while (true) {
      Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
      if (!snapshot.ok() || snapshot->prepared_ours.empty() ||
          std::chrono::steady_clock::now() >= until) {
        return snapshot;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  // Waits (bounded) until agent `name` has logged the heuristic-mixed outcome.
  bool WaitForHeuristicReport(const std::string& name) {
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    while (std::chrono::steady_clock::now() < until) {
      if (agents_->Output(name).find(kHeuristicLine) != std::string::npos) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  std::string AgentOutputs() const {
    return "\nagent-mariadb:\n" + agents_->Output(kAgentMariaDb) + "\nagent-postgres:\n" +
           agents_->Output(kAgentPostgres);
  }

  std::string log_dir() const { return scratch_.File("coordinator-log"); }

  // Declared before the agents, so that they outlive the agent processes that use them.
  TcpRelay mariadb_to_postgres_;
  TcpRelay postgres_to_mariadb_;
  TcpRelay coordinator_to_postgres_;
  ScratchDir scratch_;
  uint32_t node_ = 0;
  std::unique_ptr<bank::Bank> bank_;
  std::unique_ptr<AgentPair> agents_;
};

TEST_F(AgentPartitionTest, ASplitByAPartitionIsReportedAsHeuristicMixedOnBothSidesAndInTheLog) {
  Xid global;
  {
    Result<std::unique_ptr<DecisionLog>> log = OpenLog();
    ASSERT_THAT(log, IsOk());
    Result<std::unique_ptr<TransactionManager>> manager = OpenManager(**log, false);
    ASSERT_THAT(manager, IsOk());
    Result<bank::Teller> teller = bank_->NewTeller();
    ASSERT_THAT(teller, IsOk());
    // One transfer across the healthy network first: the relays are on the path.
    Xid healthy;
    Result<Outcome> first =
        bank_->Transfer(**manager, *teller, 2, 2, kAmount, &healthy, Protocol::kThreePhase);
    ASSERT_THAT(first, IsOk());
    ASSERT_EQ(OutcomeName(*first), OutcomeName(Outcome::kCommitted));
    EXPECT_GT(coordinator_to_postgres_.connections_accepted(), 0u)
        << "the coordinator did not reach the PostgreSQL agent through its relay";

    PartitionBeforePreCommit();
    Result<Outcome> outcome =
        bank_->Transfer(**manager, *teller, 1, 1, kAmount, &global, Protocol::kThreePhase);
    TearDown();  // no more cuts
    ASSERT_THAT(outcome, IsOk());
    // Without the PostgreSQL agent's Ack(PRE) the coordinator must not decide.
    EXPECT_EQ(OutcomeName(*outcome), OutcomeName(Outcome::kUnknown));
    ASSERT_TRUE(mariadb_to_postgres_.cut());
    // The coordinator goes away: the agents are on their own.
  }

  // Each side terminates alone: the MariaDB agent (PRE) commits, the PostgreSQL agent (WAIT)
  // aborts. Nothing is left prepared, and the transfer is in MariaDB only.
  Result<bank::BankSnapshot> split = SettledSnapshot();
  ASSERT_THAT(split, IsOk());
  ASSERT_TRUE(split->prepared_ours.empty())
      << "the agents did not finish their sides of the partition" << AgentOutputs();
  const std::string gtrid = bank::GtridHex(global);
  ASSERT_EQ(split->mariadb_transfers.count(gtrid), 1u)
      << "the PRE side did not commit: no split to detect" << AgentOutputs();
  ASSERT_EQ(split->postgres_transfers.count(gtrid), 0u)
      << "the WAIT side committed: no split to detect" << AgentOutputs();
  EXPECT_EQ(agents_->Output(kAgentMariaDb).find(kHeuristicLine), std::string::npos)
      << "reported before the partition healed";

  // Healed: the agents tell each other their outcomes, and each reports the split.
  HealAll();
  EXPECT_TRUE(WaitForHeuristicReport(kAgentMariaDb))
      << "the MariaDB agent did not report the split" << AgentOutputs();
  EXPECT_TRUE(WaitForHeuristicReport(kAgentPostgres))
      << "the PostgreSQL agent did not report the split" << AgentOutputs();
  // And counts it where an operator's monitoring reads it.
  for (const char* agent : {kAgentMariaDb, kAgentPostgres}) {
    EXPECT_THAT(agents_->Metrics(agent), ::testing::HasSubstr("\nxa_agent_heuristics_total 1\n"))
        << agent << "'s metrics page";
  }

  // The coordinator comes back: its recovery learns both outcomes from the agents, records the
  // split for an operator, tells each agent its own outcome and ends the pre-commit record.
  {
    Result<std::unique_ptr<DecisionLog>> log = OpenLog();
    ASSERT_THAT(log, IsOk());
    Result<std::unique_ptr<TransactionManager>> manager = OpenManager(**log, true);
    ASSERT_THAT(manager, IsOk());
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    while ((*log)->State().open_decisions.count(global) != 0 &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(200ms);
      EXPECT_THAT((*manager)->RunRecovery(), IsOk());
    }
    const LogState state = (*log)->State();
    EXPECT_EQ(state.open_decisions.count(global), 0u)
        << "the coordinator's recovery left the split transaction's record open";
    auto heuristic = state.open_heuristics.find(global);
    ASSERT_NE(heuristic, state.open_heuristics.end())
        << "the coordinator's recovery did not record the split" << AgentOutputs();
    EXPECT_EQ(OutcomeName(heuristic->second.outcome), OutcomeName(Outcome::kHeuristicMixed));
    EXPECT_EQ(heuristic->second.participants.size(), 2u);
    EXPECT_THAT(heuristic->second.reason, ::testing::HasSubstr("partition split"));
  }

  // xa-recover shows it to an operator: exit 5, the heuristic awaiting an operator.
  const std::string config = WriteBankRecoverConfig(scratch_, log_dir(), node_, 0);
  agents_->AddToRecoverConfig(config);
  ProcessResult resolved =
      RunProcess({XaRecoverPath(), "--config", config, "resolve", "--json"}, {});
  EXPECT_TRUE(resolved.Exited(5)) << resolved.Describe();
  EXPECT_NE(resolved.output.find("\"heuristics_open\":1"), std::string::npos) << resolved.output;
  EXPECT_NE(resolved.output.find("heuristic-mixed"), std::string::npos) << resolved.output;
  // The operator repairs the data, then acknowledges the heuristic: no longer reported.
  ProcessResult cleared = RunProcess({XaRecoverPath(), "--config", config, "clear-heuristic",
                                      global.ToString(), "--reason",
                                      "moved the missing 100 into PostgreSQL by hand"},
                                     {});
  EXPECT_TRUE(cleared.Exited(0)) << cleared.Describe();
  ProcessResult quiet =
      RunProcess({XaRecoverPath(), "--config", config, "resolve", "--json"}, {});
  EXPECT_TRUE(quiet.Exited(0)) << quiet.Describe();
  EXPECT_NE(quiet.output.find("\"heuristics_open\":0"), std::string::npos) << quiet.output;

  // Nothing else moved: the split is exactly the one transfer, and the rest of the bank holds.
  Result<bank::BankSnapshot> after = bank_->Snapshot(node_);
  ASSERT_THAT(after, IsOk());
  EXPECT_TRUE(after->prepared_ours.empty());
  EXPECT_EQ(after->mariadb_transfers, split->mariadb_transfers);
  EXPECT_EQ(after->postgres_transfers, split->postgres_transfers);
  EXPECT_EQ(after->total(), bank_->settings().Total() - kAmount)
      << "the split should move exactly the one transfer's amount out of the bank";
  agents_->ExpectAlive(kAgentMariaDb);
  agents_->ExpectAlive(kAgentPostgres);
}

}  // namespace
}  // namespace xa::test
