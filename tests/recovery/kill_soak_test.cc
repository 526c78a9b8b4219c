// The randomized kill soak: a bank_worker moves money with four threads and is killed with
// SIGKILL at a random moment, again and again. After every kill the application is restarted
// (every other round it recovers on its own at TransactionManager::Open) and `xa-recover resolve`
// runs; then every bank invariant is checked: transfers on both databases or neither (I1), total
// unchanged (I2), no negative balance (I3), every acknowledged transfer present (I4), no
// prepared branch of ours left and the foreign ones untouched (I5).
//
// Bounded: XA_SOAK_KILLS kills (default 120) or XA_SOAK_SECONDS seconds (default 300), whichever
// comes first; XA_SOAK_MIN_KILLS (default 100) must be reached. It prints the rounds and kills.

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "examples/bank/bank.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"

namespace xa::test {
namespace {

constexpr char kPrefix[] = "soak";

TEST(KillSoakTest, SurvivesRepeatedKillsWithEveryInvariantHolding) {
  const long target_kills = EnvLong("XA_SOAK_KILLS", 120);
  const long min_kills = EnvLong("XA_SOAK_MIN_KILLS", 100);
  const auto budget = std::chrono::seconds(EnvLong("XA_SOAK_SECONDS", 300));

  ScratchDir scratch;
  const uint32_t node = RandomNodeId();
  const std::string log_dir = scratch.File("log");
  const std::string acks = scratch.File("acks");
  const std::string config = WriteBankRecoverConfig(scratch, log_dir, node, 0);
  auto settings = bank::SettingsFromEnvironment();
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  settings->table_prefix = kPrefix;
  settings->accounts = 50;
  auto connected = bank::Bank::Connect(*settings);
  ASSERT_TRUE(connected.ok()) << connected.status().ToString();
  std::unique_ptr<bank::Bank> bank = std::move(connected).value();
  ASSERT_TRUE(bank->Reset().ok());
  SeedForeignBranches(kPrefix);

  std::mt19937 random(static_cast<unsigned>(node));
  std::uniform_int_distribution<int> run_ms(30, 400);
  auto worker_args = [&](long transfers, long seed) {
    return std::vector<std::string>{BankWorkerPath(), "--log-dir", log_dir, "--node-id",
                                    std::to_string(node), "--ack-file", acks, "--threads", "4",
                                    "--transfers", std::to_string(transfers), "--prefix",
                                    kPrefix, "--seed", std::to_string(seed),
                                    "--recover-on-open", "--segment-size", "65536"};
  };
  const auto start = std::chrono::steady_clock::now();
  long rounds = 0, kills = 0, exited_early = 0;
  while (kills < target_kills && std::chrono::steady_clock::now() - start < budget) {
    ++rounds;
    std::string output = scratch.File("worker.out");
    pid_t pid = Spawn(worker_args(1000000, rounds), {}, output);
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms(random)));
    ::kill(pid, SIGKILL);
    ProcessResult worker = Wait(pid, output, std::chrono::seconds(30));
    if (worker.KilledBy(SIGKILL)) {
      ++kills;
    } else {
      ++exited_early;
      ASSERT_TRUE(worker.Exited(0)) << "round " << rounds << ": " << worker.Describe();
    }
    if (rounds % 2 == 0) {
      // The application restarts and recovers by itself (decisions found open are finished).
      ProcessResult restarted = RunProcess(worker_args(0, rounds), {}, std::chrono::seconds(60));
      ASSERT_TRUE(restarted.Exited(0)) << "round " << rounds << ": " << restarted.Describe();
    }
    ProcessResult resolved =
        RunProcess({XaRecoverPath(), "--config", config, "resolve", "--json"}, {});
    ASSERT_TRUE(resolved.Exited(0)) << "round " << rounds << ": " << resolved.Describe();
    auto snapshot = bank->Snapshot(node);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    Status invariants = bank->CheckInvariants(*snapshot, ReadAcknowledged(acks));
    ASSERT_TRUE(invariants.ok()) << "round " << rounds << ": " << invariants.ToString();
  }
  EXPECT_EQ(CountForeignSeeds(), 2) << "a foreign prepared branch was touched";
  RemoveForeignBranches(kPrefix);
  auto final_snapshot = bank->Snapshot(node);
  ASSERT_TRUE(final_snapshot.ok());
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "kill soak: " << rounds << " rounds, " << kills << " kills survived ("
            << exited_early << " runs ended before their kill), "
            << ReadAcknowledged(acks).size() << " acknowledged transfers, "
            << final_snapshot->mariadb_transfers.size() << " committed, " << seconds
            << " s; every invariant held after every round\n";
  EXPECT_GE(kills, min_kills) << "the soak ran out of time before " << min_kills << " kills";
}

}  // namespace
}  // namespace xa::test
