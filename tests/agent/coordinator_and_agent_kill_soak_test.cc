// The coordinator and the agents killed together: a real bank_worker process (the application
// and its coordinator, tests/recovery/bank_worker.cc) moves money between MariaDB and
// PostgreSQL through 3PC and the two real xa-agent processes, and each round SIGKILLs the worker
// and, in most rounds, one agent or both, in a random order and at random moments: before the
// worker, while the agents terminate after it, or with it. Killed agents are restarted after a
// random time down; the next round's worker recovers on open (its log's open 3PC records through
// the agents) and goes on transferring.
//
// Every few rounds, and at the end, the test settles (agents up, the real xa-recover resolving
// through them, until nothing of the worker's node is prepared) and checks the bank's
// invariants: the total unchanged, every transfer on both databases or on neither, every
// transfer the worker acknowledged present, nothing left prepared. Bounded by XA_BOTH_SOAK_KILLS
// (default 100 processes killed) and XA_BOTH_SOAK_SECONDS (default 300); fewer kills than
// XA_BOTH_SOAK_MIN_KILLS (default 100) in the time fails. Labels db;crash;soak (scripts/servers.sh).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.h"
#include "tests/agent/agent_processes.h"
#include "tests/agent/bank_with_agents.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr char kPrefix[] = "bothsoak";
constexpr int kRoundsBetweenChecks = 8;
// Longer than the agents' termination timeout: a transaction whose coordinator died while the
// agents were pre-committed ends by their termination round, recovery or not.
constexpr auto kSettleLimit = 60s;

// How a round kills: the worker always; the agents as drawn.
enum class KillPattern { kWorkerOnly, kAgentThenWorker, kWorkerThenAgent, kWorkerAndBothAgents };

const char* PatternName(KillPattern pattern) {
  switch (pattern) {
    case KillPattern::kWorkerOnly: return "worker only";
    case KillPattern::kAgentThenWorker: return "an agent, then the worker";
    case KillPattern::kWorkerThenAgent: return "the worker, then an agent";
    case KillPattern::kWorkerAndBothAgents: return "the worker and both agents";
  }
  return "?";
}

class CoordinatorAndAgentKillSoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    ASSERT_NO_FATAL_FAILURE(StartBankAndAgents(kPrefix, node_, scratch_, &bank_, &agents_));
    recover_config_ = WriteBankRecoverConfig(scratch_, log_dir(), node_, 0);
    agents_->AddToRecoverConfig(recover_config_);
    // The decision log exists before the first kill, so that xa-recover always finds one.
    ProcessResult created = RunProcess(WorkerArgs(0, 0), {}, 60s);
    ASSERT_TRUE(created.Exited(0)) << created.Describe();
  }

  std::vector<std::string> WorkerArgs(long transfers, long seed) const {
    std::vector<std::string> argv = {BankWorkerPath(), "--log-dir",   log_dir(),
                                     "--node-id",      std::to_string(node_),
                                     "--ack-file",     ack_file(),    "--threads",
                                     "2",              "--transfers", std::to_string(transfers),
                                     "--prefix",       kPrefix,       "--seed",
                                     std::to_string(seed), "--recover-on-open"};
    for (const std::string& argument : agents_->WorkerArguments()) argv.push_back(argument);
    return argv;
  }

  // Agents up, then the real xa-recover through them until it has nothing left to do and
  // nothing of the worker's node is prepared (bounded); then the bank's invariants. The worker is
  // dead here: xa-recover may presume abort a branch with no record, as an operator's run would
  // after the crash.
  void SettleAndCheck(long round) {
    for (const char* name : {kAgentMariaDb, kAgentPostgres}) {
      if (!agents_->Running(name)) {
        ASSERT_NO_FATAL_FAILURE(agents_->Restart(name));
      }
    }
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    std::string left;
    while (true) {
      ProcessResult resolved =
          RunProcess({XaRecoverPath(), "--config", recover_config_, "resolve", "--json"}, {});
      std::ofstream(scratch_.File("resolve.log"), std::ios::app)
          << "== round " << round << ": " << resolved.Describe() << "\n"
          << resolved.output << "\n";
      // 0: nothing left to do; 1: work that waits (an agent still terminating, say).
      ASSERT_TRUE(resolved.Exited(0) || resolved.Exited(1))
          << "round " << round << ": " << resolved.Describe();
      Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
      ASSERT_THAT(snapshot, IsOk());
      if (resolved.Exited(0) && snapshot->prepared_ours.empty()) break;
      left = resolved.Exited(0) ? "" : " (xa-recover: not finished)";
      for (const Xid& x : snapshot->prepared_ours) left += " " + x.ToString();
      ASSERT_LT(std::chrono::steady_clock::now(), until)
          << "round " << round << ": not settled " << kSettleLimit.count()
          << " s after the kills:" << left << "\nxa-recover: " << resolved.Describe()
          << "\nagent-mariadb:\n"
          << agents_->Output(kAgentMariaDb) << "\nagent-postgres:\n"
          << agents_->Output(kAgentPostgres);
      std::this_thread::sleep_for(200ms);
    }
    Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
    ASSERT_THAT(snapshot, IsOk());
    Status invariants = bank_->CheckInvariants(*snapshot, ReadAcknowledged(ack_file()));
    ASSERT_THAT(invariants, IsOk()) << "round " << round;
    ++checks_;
  }

  // After the last check: xa-recover ended every record of the coordinator, each once every
  // agent acknowledged, so no agent may hold a committed participant once its peers heard the
  // outcome (within a termination timeout).
  void CheckNoCommittedParticipantHeld() {
    std::map<std::string, double> held = agents_->AwaitNoCommittedParticipantHeld(kSettleLimit);
    for (const auto& [name, count] : held) {
      EXPECT_EQ(count, 0) << name << " still holds committed participants after the "
                          << "coordinator's records ended:\n" << agents_->Output(name);
    }
  }

  std::string log_dir() const { return scratch_.File("coordinator-log"); }
  std::string ack_file() const { return scratch_.File("acks"); }

  ScratchDir scratch_;
  uint32_t node_ = 0;
  std::unique_ptr<bank::Bank> bank_;
  std::unique_ptr<AgentPair> agents_;
  std::string recover_config_;
  long checks_ = 0;
};

TEST_F(CoordinatorAndAgentKillSoakTest,
       KillingTheCoordinatorAndAgentsTogetherLeavesEveryTransferAllOrNothing) {
  const long target_kills = EnvLong("XA_BOTH_SOAK_KILLS", 100);
  const long min_kills = EnvLong("XA_BOTH_SOAK_MIN_KILLS", 100);
  const auto budget = std::chrono::seconds(EnvLong("XA_BOTH_SOAK_SECONDS", 300));

  std::mt19937 random(node_);
  std::uniform_int_distribution<int> run_ms(150, 700);
  std::uniform_int_distribution<int> gap_ms(0, 300);
  std::uniform_int_distribution<int> down_ms(0, 500);
  std::uniform_int_distribution<int> pattern_of(0, 3);
  std::uniform_int_distribution<int> which_agent(0, 1);
  const auto started = std::chrono::steady_clock::now();
  long rounds = 0, worker_kills = 0, agent_kills = 0, exited_early = 0;
  std::map<KillPattern, long> patterns;
  while (worker_kills + agent_kills < target_kills &&
         std::chrono::steady_clock::now() - started < budget) {
    ++rounds;
    const KillPattern pattern = static_cast<KillPattern>(pattern_of(random));
    ++patterns[pattern];
    const std::string agent = which_agent(random) == 0 ? kAgentMariaDb : kAgentPostgres;
    // A file a round: with XA_KEEP_SCRATCH=1 a failure can be traced round by round.
    const std::string output = scratch_.File("worker-" + std::to_string(rounds) + ".out");
    const pid_t worker = Spawn(WorkerArgs(1000000, rounds), {}, output);
    ASSERT_GT(worker, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(random)));

    std::vector<std::string> killed_agents;
    if (pattern == KillPattern::kAgentThenWorker) {
      ASSERT_NO_FATAL_FAILURE(agents_->Kill(agent));
      killed_agents.push_back(agent);
      std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(random)));
    }
    ::kill(worker, SIGKILL);
    ProcessResult died = Wait(worker, output, 30s);
    if (died.KilledBy(SIGKILL)) {
      ++worker_kills;
    } else {
      // A worker that ends on its own must have ended well (it never does with a million
      // transfers to run, unless it could not start).
      ++exited_early;
      ASSERT_TRUE(died.Exited(0)) << "round " << rounds << ": " << died.Describe();
    }
    if (pattern == KillPattern::kWorkerThenAgent) {
      std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms(random)));
      ASSERT_NO_FATAL_FAILURE(agents_->Kill(agent));
      killed_agents.push_back(agent);
    } else if (pattern == KillPattern::kWorkerAndBothAgents) {
      for (const char* name : {kAgentMariaDb, kAgentPostgres}) {
        ASSERT_NO_FATAL_FAILURE(agents_->Kill(name));
        killed_agents.push_back(name);
      }
    }
    agent_kills += static_cast<long>(killed_agents.size());
    // An agent that died on its own (it must not) is found here, not hidden by its restart.
    for (const char* name : {kAgentMariaDb, kAgentPostgres}) agents_->ExpectAlive(name);
    std::this_thread::sleep_for(std::chrono::milliseconds(down_ms(random)));
    for (const std::string& name : killed_agents) {
      ASSERT_NO_FATAL_FAILURE(agents_->Restart(name));
    }
    if (rounds % kRoundsBetweenChecks == 0) {
      ASSERT_NO_FATAL_FAILURE(SettleAndCheck(rounds));
    }
  }
  ASSERT_NO_FATAL_FAILURE(SettleAndCheck(rounds));
  ASSERT_NO_FATAL_FAILURE(CheckNoCommittedParticipantHeld());

  Result<bank::BankSnapshot> final_snapshot = bank_->Snapshot(node_);
  ASSERT_THAT(final_snapshot, IsOk());
  const size_t acknowledged = ReadAcknowledged(ack_file()).size();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << "coordinator and agent kill soak: " << rounds << " rounds in " << seconds
            << " s, " << worker_kills << " coordinator kills, " << agent_kills
            << " agent kills (" << exited_early << " workers ended before their kill); rounds by "
            << "pattern:";
  for (const auto& [pattern, count] : patterns) {
    std::cout << " " << PatternName(pattern) << " " << count << ";";
  }
  std::cout << " " << acknowledged << " acknowledged transfers, "
            << final_snapshot->mariadb_transfers.size() << " committed; the invariants held at "
            << checks_ << " checks\n";
  EXPECT_GE(worker_kills + agent_kills, min_kills)
      << "the soak ran out of time before " << min_kills << " kills";
  EXPECT_GT(agent_kills, 0);
  EXPECT_GT(acknowledged, 0u) << "no transfer was acknowledged: the soak tested nothing";
}

}  // namespace
}  // namespace xa::test
