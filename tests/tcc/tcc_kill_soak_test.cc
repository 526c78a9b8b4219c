// The randomized TCC kill soak: the shop worker (tests/tcc/shop_worker.cc) places orders through
// TCC transactions, completed sagas or failing sagas (chosen at random each round) and is killed
// again and again, at a random TCC or saga crash point or by SIGKILL at a random moment; now and
// then its recovery is killed too. After every kill it recovers, and the shop's invariants are
// checked over everything done so far: no funds frozen and no points pending (I1), every order
// row is a confirmed TCC order or a completed saga's, and funds and points moved for exactly
// those (I2), every acknowledged order is there (I3), every action of a saga that did not
// complete is compensated (I4), and nothing is left open in the log (I5).
//
// Bounded: XA_TCC_SOAK_KILLS kills (default 100) or XA_TCC_SOAK_SECONDS seconds (default 150),
// whichever comes first; XA_TCC_SOAK_MIN_KILLS (default 100) must be reached.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/recovery/crash_harness.h"
#include "tests/tcc/shop_tables.h"

namespace xa::test {
namespace {

using ::testing::HasSubstr;

using shop::kInitialBalance;
using shop::kOrderAmount;
using shop::kOrderPoints;

constexpr char kPrefix[] = "tccsoak";

std::string ShopWorkerPath() { return XA_TCC_SHOP_WORKER_PATH; }

std::set<std::string> Lines(const std::string& sql) {
  ProcessResult r = MariaDbAdmin(sql);
  EXPECT_TRUE(r.Exited(0)) << sql << ": " << r.Describe();
  std::set<std::string> out;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

void ExpectInvariants(const std::string& ack_file, long round) {
  SCOPED_TRACE("after round " + std::to_string(round));
  const std::string p = kPrefix;
  EXPECT_EQ(MariaDbNumber("SELECT frozen FROM " + p + "_funds"), 0) << "I1: funds left frozen";
  EXPECT_EQ(MariaDbNumber("SELECT pending FROM " + p + "_points"), 0) << "I1: points left pending";
  EXPECT_EQ(MariaDbNumber("SELECT COUNT(*) FROM " + p +
                   "_orders WHERE status NOT IN ('confirmed', 'placed')"),
            0)
      << "I2: an order neither confirmed nor of a completed saga";
  const int64_t orders = MariaDbNumber("SELECT COUNT(*) FROM " + p + "_orders");
  EXPECT_EQ(MariaDbNumber("SELECT balance FROM " + p + "_funds"), kInitialBalance - orders * kOrderAmount)
      << "I2: funds moved for other orders than those kept";
  EXPECT_EQ(MariaDbNumber("SELECT points FROM " + p + "_points"), orders * kOrderPoints)
      << "I2: points granted for other orders than those kept";
  std::set<std::string> kept = Lines("SELECT id FROM " + p + "_orders");
  for (const std::string& id : ReadAcknowledged(ack_file)) {
    EXPECT_EQ(kept.count(id), 1u) << "I3: acknowledged order " << id << " is lost";
  }
  EXPECT_EQ(MariaDbNumber("SELECT COUNT(*) FROM (SELECT gid FROM " + p + "_journal j WHERE NOT EXISTS "
                   "(SELECT 1 FROM " + p + "_orders o WHERE o.id = j.gid) GROUP BY gid HAVING "
                   "SUM(op = 'action') <> SUM(op = 'compensate')) x"),
            0)
      << "I4: a saga that did not complete has an action without its compensation";
}

TEST(TccKillSoakTest, SurvivesRepeatedKillsWithEveryInvariantHolding) {
  const long target_kills = EnvLong("XA_TCC_SOAK_KILLS", 100);
  const long min_kills = EnvLong("XA_TCC_SOAK_MIN_KILLS", 100);
  const auto budget = std::chrono::seconds(EnvLong("XA_TCC_SOAK_SECONDS", 150));

  ScratchDir scratch;
  const uint32_t node = RandomNodeId();
  const std::string ack = scratch.File("ack");
  auto worker = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {ShopWorkerPath(), "--log-dir", scratch.File("log"),
                                     "--node-id", std::to_string(node), "--prefix", kPrefix,
                                     "--ack-file", ack};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };
  ProcessResult reset = RunProcess({ShopWorkerPath(), "--reset", "--prefix", kPrefix}, {});
  ASSERT_TRUE(reset.Exited(0)) << reset.Describe();

  std::mt19937 random(node);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(random); };
  const std::vector<std::string> modes = {"", "--saga", "--saga-third-fails"};
  const std::vector<std::vector<std::string>> points = {
      {"tcc-after-try-record", "tcc-after-first-try", "tcc-after-all-tried",
       "tcc-after-confirm-record", "tcc-after-first-confirm", "after-end-record"},
      {"tcc-after-try-record", "saga-after-first-action", "after-end-record"},
      {"tcc-after-try-record", "saga-after-first-action", "saga-after-first-compensation",
       "after-end-record"}};
  const std::vector<std::string> recovery_points = {"recovery-after-first-action",
                                                    "recovery-after-action",
                                                    "recovery-before-end-record"};

  long kills = 0, rounds = 0, by_point = 0, by_signal = 0, recoveries_killed = 0;
  const auto start = std::chrono::steady_clock::now();
  while (kills < target_kills && std::chrono::steady_clock::now() - start < budget) {
    ++rounds;
    const int mode = pick(3);
    std::vector<std::string> args = {"--orders", "100000"};
    if (!modes[mode].empty()) args.push_back(modes[mode]);
    std::map<std::string, std::string> env;
    const bool at_point = pick(3) != 0;
    if (at_point) {
      env["XA_CRASH_POINT"] = points[mode][pick(static_cast<int>(points[mode].size()))];
      env["XA_CRASH_COUNT"] = std::to_string(1 + pick(4));
    }
    const std::string out = scratch.File("worker.out");
    pid_t pid = Spawn(worker(args), env, out);
    if (!at_point) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20 + pick(300)));
      ::kill(pid, SIGKILL);
    }
    ProcessResult run = Wait(pid, out, std::chrono::seconds(60));
    ASSERT_TRUE(run.KilledBy(SIGKILL)) << "round " << rounds << ": " << run.Describe();
    ++kills;
    ++(at_point ? by_point : by_signal);

    if (pick(5) == 0) {  // recovery itself killed part-way
      ProcessResult killed = RunProcess(
          worker({"--recover"}),
          {{"XA_CRASH_POINT", recovery_points[pick(3)]}, {"XA_CRASH_COUNT", "1"}});
      // Nothing may be open for recovery to act on (the kill came between transactions).
      ASSERT_TRUE(killed.KilledBy(SIGKILL) || killed.Exited(0))
          << "round " << rounds << ": " << killed.Describe();
      if (killed.KilledBy(SIGKILL)) {
        ++kills;
        ++recoveries_killed;
      }
    }
    ProcessResult recovered = RunProcess(worker({"--recover"}), {});
    ASSERT_TRUE(recovered.Exited(0)) << "round " << rounds << ": " << recovered.Describe();
    EXPECT_THAT(recovered.output, HasSubstr("open TCC transactions: 0")) << "I5";
    ExpectInvariants(ack, rounds);
    if (HasFailure()) break;
  }
  std::cout << "tcc kill soak: " << rounds << " rounds, " << kills << " kills (" << by_point
            << " at crash points, " << by_signal << " by SIGKILL at a random moment, "
            << recoveries_killed << " of recovery), " << ReadAcknowledged(ack).size()
            << " orders acknowledged, in "
            << std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::steady_clock::now() - start)
                   .count()
            << " s" << std::endl;
  EXPECT_GE(kills, min_kills) << "the soak ran out of time before its minimum of kills";
}

}  // namespace
}  // namespace xa::test
