// TCC crash tests: a real worker process (tests/tcc/shop_worker.cc: the coordinator and three
// in-process participants that each commit locally on MariaDB behind the barrier) is killed at
// each named TCC crash point, and at recovery's own points; a second run recovers. After
// recovery every order is complete on all three participants or on none, no funds stay frozen
// and no points pending, every order the worker acknowledged is confirmed, and a second recovery
// changes nothing (docs/tcc.md, "Crash points").

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/recovery/crash_harness.h"
#include "tests/tcc/shop_tables.h"

namespace xa::test {
namespace {

using ::testing::HasSubstr;

using shop::kInitialBalance;
using shop::kOrderAmount;
using shop::kOrderPoints;


std::string ShopWorkerPath() { return XA_TCC_SHOP_WORKER_PATH; }

struct Shop {
  int64_t balance = 0, frozen = 0, points = 0, pending = 0;
  int64_t confirmed = 0, unconfirmed = 0;
  std::set<std::string> confirmed_ids;
  std::string barrier_rows;  // every barrier row, for "a second recovery changes nothing"
  std::string Describe() const {
    std::ostringstream out;
    out << "balance " << balance << ", frozen " << frozen << ", points " << points << ", pending "
        << pending << ", confirmed orders " << confirmed << ", other orders " << unconfirmed;
    return out.str();
  }
};

Shop ReadShop(const std::string& prefix) {
  Shop shop;
  shop.balance = MariaDbNumber("SELECT balance FROM " + prefix + "_funds WHERE account = 1");
  shop.frozen = MariaDbNumber("SELECT frozen FROM " + prefix + "_funds WHERE account = 1");
  shop.points = MariaDbNumber("SELECT points FROM " + prefix + "_points WHERE account = 1");
  shop.pending = MariaDbNumber("SELECT pending FROM " + prefix + "_points WHERE account = 1");
  shop.confirmed = MariaDbNumber("SELECT COUNT(*) FROM " + prefix + "_orders WHERE status = 'confirmed'");
  shop.unconfirmed =
      MariaDbNumber("SELECT COUNT(*) FROM " + prefix + "_orders WHERE status <> 'confirmed'");
  ProcessResult ids = MariaDbAdmin("SELECT id FROM " + prefix + "_orders WHERE status = 'confirmed'");
  std::istringstream lines(ids.output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) shop.confirmed_ids.insert(line);
  }
  shop.barrier_rows = MariaDbAdmin("SELECT * FROM " + prefix + "_barrier ORDER BY 1, 2, 3").output;
  return shop;
}

// The invariant: each order complete on all three participants or on none.
void ExpectAllOrNothing(const Shop& shop, const std::set<std::string>& acknowledged) {
  SCOPED_TRACE(shop.Describe());
  EXPECT_EQ(shop.frozen, 0) << "funds left frozen";
  EXPECT_EQ(shop.pending, 0) << "points left pending";
  EXPECT_EQ(shop.unconfirmed, 0) << "orders neither confirmed nor cancelled";
  EXPECT_EQ(kInitialBalance - shop.balance, shop.confirmed * kOrderAmount);
  EXPECT_EQ(shop.points, shop.confirmed * kOrderPoints);
  for (const std::string& id : acknowledged) {
    EXPECT_EQ(shop.confirmed_ids.count(id), 1u) << "acknowledged order " << id << " is lost";
  }
}

std::set<std::string> Acknowledged(const std::string& file) { return ReadAcknowledged(file); }

class TccCrashTest : public ::testing::TestWithParam<std::string> {
 public:
  void SetUp() override {
    ProcessResult reset = RunProcess({ShopWorkerPath(), "--reset", "--prefix", prefix_}, {});
    ASSERT_TRUE(reset.Exited(0)) << reset.Describe();
  }

  std::vector<std::string> Worker(std::vector<std::string> extra) {
    std::vector<std::string> argv = {ShopWorkerPath(), "--log-dir", dir_.File("log"),
                                     "--node-id", std::to_string(node_), "--prefix", prefix_,
                                     "--ack-file", dir_.File("ack")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  ProcessResult Recover(const std::map<std::string, std::string>& env = {}) {
    return RunProcess(Worker({"--recover"}), env);
  }

  ScratchDir dir_;
  uint32_t node_ = RandomNodeId();
  std::string prefix_ = "tcccrash";
};

TEST_P(TccCrashTest, EveryOrderIsCompleteEverywhereOrNowhereAfterRecovery) {
  const std::string point = GetParam();
  // Crash at the 3rd hit: two orders before it went through, so the log and the tables hold
  // finished and unfinished orders side by side.
  ProcessResult crashed =
      RunProcess(Worker({"--orders", "6"}), {{"XA_CRASH_POINT", point}, {"XA_CRASH_COUNT", "3"}});
  ASSERT_TRUE(crashed.KilledBy(SIGKILL)) << point << ": " << crashed.Describe();
  std::set<std::string> acknowledged = Acknowledged(dir_.File("ack"));
  EXPECT_EQ(acknowledged.size(), 2u);

  ProcessResult recovered = Recover();
  ASSERT_TRUE(recovered.Exited(0)) << recovered.Describe();
  EXPECT_THAT(recovered.output, HasSubstr("open TCC transactions: 0"));
  Shop after = ReadShop(prefix_);
  ExpectAllOrNothing(after, acknowledged);

  ProcessResult again = Recover();
  ASSERT_TRUE(again.Exited(0)) << again.Describe();
  Shop twice = ReadShop(prefix_);
  EXPECT_EQ(twice.Describe(), after.Describe());
  EXPECT_EQ(twice.barrier_rows, after.barrier_rows) << "a second recovery changed the barrier";
}

INSTANTIATE_TEST_SUITE_P(CoordinatorPoints, TccCrashTest,
                         ::testing::Values("tcc-after-try-record", "tcc-after-first-try",
                                           "tcc-after-all-tried", "tcc-after-confirm-record",
                                           "tcc-after-first-confirm", "after-end-record"),
                         [](const ::testing::TestParamInfo<std::string>& point) {
                           std::string name = point.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

// Recovery itself killed part-way, then run again: the worker leaves one decided order
// unconfirmed, and the first recovery dies at `point`.
void RecoveryKilledAt(TccCrashTest& test, const char* point) {
  ProcessResult crashed = RunProcess(test.Worker({"--orders", "4"}),
                                     {{"XA_CRASH_POINT", "tcc-after-confirm-record"},
                                      {"XA_CRASH_COUNT", "2"}});
  ASSERT_TRUE(crashed.KilledBy(SIGKILL)) << crashed.Describe();
  ProcessResult killed = test.Recover({{"XA_CRASH_POINT", point}});
  ASSERT_TRUE(killed.KilledBy(SIGKILL)) << killed.Describe();
  ProcessResult recovered = test.Recover();
  ASSERT_TRUE(recovered.Exited(0)) << recovered.Describe();
  EXPECT_THAT(recovered.output, HasSubstr("open TCC transactions: 0"));
  Shop after = ReadShop(test.prefix_);
  ExpectAllOrNothing(after, Acknowledged(test.dir_.File("ack")));
  EXPECT_EQ(after.confirmed, 2) << "the decided order is confirmed";
}

TEST_F(TccCrashTest, RecoveryKilledAfterItsFirstCallIsFinishedByTheNextRecovery) {
  RecoveryKilledAt(*this, "recovery-after-first-action");
}

TEST_F(TccCrashTest, RecoveryKilledBeforeItsEndRecordIsFinishedByTheNextRecovery) {
  RecoveryKilledAt(*this, "recovery-before-end-record");
}

// A cancel path: the funds run out, so the last Try is refused and every participant is
// cancelled; the worker is killed after the first Cancel.
TEST_F(TccCrashTest, AnOrderKilledWhileCancellingIsCancelledEverywhere) {
  ASSERT_TRUE(MariaDbAdmin("UPDATE " + prefix_ + "_funds SET balance = " +
                           std::to_string(kOrderAmount * 2) + " WHERE account = 1")
                  .Exited(0));
  ProcessResult crashed = RunProcess(Worker({"--orders", "3"}),
                                     {{"XA_CRASH_POINT", "tcc-after-first-cancel"}});
  ASSERT_TRUE(crashed.KilledBy(SIGKILL)) << crashed.Describe();
  ProcessResult recovered = Recover();
  ASSERT_TRUE(recovered.Exited(0)) << recovered.Describe();
  Shop after = ReadShop(prefix_);
  SCOPED_TRACE(after.Describe());
  EXPECT_EQ(after.confirmed, 2);
  EXPECT_EQ(after.balance, 0);
  EXPECT_EQ(after.frozen, 0);
  EXPECT_EQ(after.pending, 0);
  EXPECT_EQ(after.unconfirmed, 0);
  EXPECT_EQ(after.points, 2 * kOrderPoints);
}

// Sagas: the same worker places each order as a saga of three compensable steps (orders, funds,
// points) whose third step fails for good, so every saga is compensated in reverse; the worker
// is killed at a saga crash point, then recovered. Afterwards nothing of any saga is left (no
// order, funds and points as before), and in every saga the compensations that ran did so in
// reverse step order, across the crash (the journal the steps write in their own transactions).
class SagaCrashTest : public TccCrashTest {};

// For each saga, the steps whose compensation ran, in the order they ran.
std::map<std::string, std::vector<std::string>> Compensations(const std::string& prefix) {
  ProcessResult rows = MariaDbAdmin("SELECT gid, step FROM " + prefix +
                                    "_journal WHERE op = 'compensate' ORDER BY seq");
  EXPECT_TRUE(rows.Exited(0)) << rows.Describe();
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream lines(rows.output);
  for (std::string line; std::getline(lines, line);) {
    size_t tab = line.find('\t');
    if (tab != std::string::npos) out[line.substr(0, tab)].push_back(line.substr(tab + 1));
  }
  return out;
}

TEST_P(SagaCrashTest, EverySagaWhoseThirdStepFailsIsCompensatedInReverseAcrossTheCrash) {
  const std::string point = GetParam();
  ProcessResult crashed = RunProcess(Worker({"--orders", "4", "--saga-third-fails"}),
                                     {{"XA_CRASH_POINT", point}, {"XA_CRASH_COUNT", "2"}});
  ASSERT_TRUE(crashed.KilledBy(SIGKILL)) << point << ": " << crashed.Describe();
  EXPECT_TRUE(Acknowledged(dir_.File("ack")).empty());
  ProcessResult recovered = Recover();
  ASSERT_TRUE(recovered.Exited(0)) << recovered.Describe();
  EXPECT_THAT(recovered.output, HasSubstr("open TCC transactions: 0"));

  Shop after = ReadShop(prefix_);
  SCOPED_TRACE(after.Describe());
  EXPECT_EQ(after.balance, kInitialBalance);
  EXPECT_EQ(after.points, 0);
  EXPECT_EQ(after.confirmed + after.unconfirmed, 0) << "an order of a failed saga is left";
  const std::map<std::string, int> step_number = {{"orders", 0}, {"funds", 1}, {"points", 2}};
  auto compensations = Compensations(prefix_);
  // The first saga was compensated before the crash (funds, then orders: the points step's own
  // compensation is empty, its action never landed); the one the crash cut may have run nothing.
  ASSERT_FALSE(compensations.empty());
  EXPECT_LE(compensations.size(), 2u);
  EXPECT_THAT(compensations.begin()->second, ::testing::ElementsAre("funds", "orders"));
  for (const auto& [gid, steps] : compensations) {
    for (size_t i = 1; i < steps.size(); ++i) {
      EXPECT_GT(step_number.at(steps[i - 1]), step_number.at(steps[i]))
          << gid << ": compensations out of reverse order";
    }
  }
  EXPECT_EQ(MariaDbNumber("SELECT COUNT(*) FROM " + prefix_ + "_journal WHERE op = 'action'"),
            MariaDbNumber("SELECT COUNT(*) FROM " + prefix_ + "_journal WHERE op = 'compensate'"))
      << "every action that ran is compensated";

  ProcessResult again = Recover();
  ASSERT_TRUE(again.Exited(0)) << again.Describe();
  EXPECT_EQ(ReadShop(prefix_).barrier_rows, after.barrier_rows);
}

INSTANTIATE_TEST_SUITE_P(SagaPoints, SagaCrashTest,
                         ::testing::Values("tcc-after-try-record", "saga-after-first-action",
                                           "saga-after-first-compensation"),
                         [](const ::testing::TestParamInfo<std::string>& point) {
                           std::string name = point.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST_F(TccCrashTest, CompletedSagasStayCompleteAndTheCutOneIsCompensated) {
  ProcessResult crashed = RunProcess(Worker({"--orders", "4", "--saga"}),
                                     {{"XA_CRASH_POINT", "saga-after-first-action"},
                                      {"XA_CRASH_COUNT", "3"}});
  ASSERT_TRUE(crashed.KilledBy(SIGKILL)) << crashed.Describe();
  EXPECT_EQ(Acknowledged(dir_.File("ack")).size(), 2u);
  ProcessResult recovered = Recover();
  ASSERT_TRUE(recovered.Exited(0)) << recovered.Describe();
  Shop after = ReadShop(prefix_);
  SCOPED_TRACE(after.Describe());
  EXPECT_EQ(after.unconfirmed, 2) << "the two completed sagas' orders ('placed')";
  EXPECT_EQ(after.balance, kInitialBalance - 2 * kOrderAmount);
  EXPECT_EQ(after.points, 2 * kOrderPoints);
}

}  // namespace
}  // namespace xa::test
