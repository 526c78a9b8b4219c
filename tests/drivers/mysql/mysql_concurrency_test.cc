// Concurrent sessions of xa::mysql::MySqlResourceManager against the real local MariaDB: a
// deadlock between two branches, and independent sessions driven from parallel threads. Labelled
// `concurrent` so that the TSan build runs them.

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/drivers/mysql/mysql_test_util.h"

namespace xa::mysql {
namespace {

// How the application ends the deadlock victim's branch.
enum class VictimEnding { kEndThenPrepare, kEndThenRollback, kRollbackAtOnce };

class MysqlDeadlockTest : public MysqlTest,
                          public ::testing::WithParamInterface<VictimEnding> {};

TEST_P(MysqlDeadlockTest, DeadlockRollsBackOneBranchAndTheOtherCommits) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  std::unique_ptr<MySqlResourceManager> rm_a = OpenRm();
  std::unique_ptr<MySqlResourceManager> rm_b = OpenRm();
  ASSERT_NE(admin, nullptr);
  ASSERT_NE(rm_a, nullptr);
  ASSERT_NE(rm_b, nullptr);
  std::string row_1 = NewKey(), row_2 = NewKey();
  SeedRow(row_1, 100);
  SeedRow(row_2, 200);
  auto update = [&](const std::string& key, int delta) {
    return std::string("UPDATE ") + kTable + " SET v = v + " + std::to_string(delta) +
           " WHERE k = '" + key + "'";
  };
  Xid xid_a = NewXid(), xid_b = NewXid();
  ASSERT_TRUE(rm_a->Start(xid_a, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm_b->Start(xid_b, StartFlag::kNoFlags).ok());
  ASSERT_EQ(RunOnRm(*rm_a, update(row_1, 1)), 0);
  ASSERT_EQ(RunOnRm(*rm_b, update(row_2, 10)), 0);

  // A waits for B's row in another thread; once the server shows A waiting, B asks for A's row.
  Status status_a, status_b;
  int error_a = 0;
  std::thread waiter([&] { error_a = RunOnRm(*rm_a, update(row_2, 1), &status_a); });
  std::string waiting_sql =
      "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT' AND "
      "trx_mysql_thread_id = " +
      std::to_string(rm_a->connection_id());
  for (int i = 0; i < 200 && QueryInt(*admin, waiting_sql) != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  int error_b = RunOnRm(*rm_b, update(row_1, 10), &status_b);
  waiter.join();

  ASSERT_TRUE((error_a == 1213) != (error_b == 1213))
      << "exactly one deadlock victim, got A=" << error_a << " B=" << error_b;
  bool a_is_victim = error_a == 1213;
  MySqlResourceManager& victim = a_is_victim ? *rm_a : *rm_b;
  MySqlResourceManager& winner = a_is_victim ? *rm_b : *rm_a;
  const Xid& victim_xid = a_is_victim ? xid_a : xid_b;
  const Xid& winner_xid = a_is_victim ? xid_b : xid_a;
  Status victim_status = a_is_victim ? status_a : status_b;
  EXPECT_EQ(victim_status.code(), Code::kRbDeadlock) << victim_status.ToString();
  EXPECT_NE(victim_status.message().find(victim_xid.ToString()), std::string::npos);

  if (GetParam() != VictimEnding::kRollbackAtOnce) {
    Status victim_end = victim.End(victim_xid, EndFlag::kSuccess);
    EXPECT_EQ(victim_end.code(), Code::kRbDeadlock) << victim_end.ToString();
  }
  if (GetParam() == VictimEnding::kEndThenPrepare) {
    Status victim_prepare = victim.Prepare(victim_xid);
    EXPECT_EQ(victim_prepare.code(), Code::kRbDeadlock) << victim_prepare.ToString();
  } else {
    Status victim_rollback = victim.Rollback(victim_xid);
    EXPECT_TRUE(victim_rollback.ok()) << victim_rollback.ToString();
  }
  // Either way the victim's session is free again.
  Xid next = NewXid();
  EXPECT_TRUE(victim.Start(next, StartFlag::kNoFlags).ok());
  EXPECT_TRUE(victim.Rollback(next).ok());

  ASSERT_TRUE(winner.End(winner_xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(winner.Prepare(winner_xid).ok());
  ASSERT_TRUE(winner.Commit(winner_xid, CommitMode::kTwoPhase).ok());
  // Only the winner's two updates are there.
  int delta = a_is_victim ? 10 : 1;
  EXPECT_EQ(ValueOf(row_1), 100 + delta);
  EXPECT_EQ(ValueOf(row_2), 200 + delta);
  EXPECT_TRUE(OurPrepared(winner).empty());
}

INSTANTIATE_TEST_SUITE_P(VictimEndings, MysqlDeadlockTest,
                         ::testing::Values(VictimEnding::kEndThenPrepare,
                                           VictimEnding::kEndThenRollback,
                                           VictimEnding::kRollbackAtOnce),
                         [](const ::testing::TestParamInfo<VictimEnding>& param_info) {
                           switch (param_info.param) {
                             case VictimEnding::kEndThenPrepare:
                               return std::string("EndThenPrepare");
                             case VictimEnding::kEndThenRollback:
                               return std::string("EndThenRollback");
                             case VictimEnding::kRollbackAtOnce:
                               return std::string("RollbackAtOnce");
                           }
                           return std::string("Unknown");
                         });

TEST_F(MysqlTest, ParallelSessionsRunBranchesIndependently) {
  constexpr int kThreads = 4;
  constexpr int kBranchesPerThread = 10;
  std::vector<std::string> keys;
  for (int t = 0; t < kThreads; ++t) {
    keys.push_back(NewKey());
    SeedRow(keys.back(), 0);
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Each thread opens its own RM: the connects race on the driver's first use.
      std::unique_ptr<MySqlResourceManager> rm = OpenRm(Options("mysqldrv-parallel"));
      if (rm == nullptr) {
        ++failures;
        return;
      }
      for (int i = 0; i < kBranchesPerThread; ++i) {
        Xid xid = NewXid();
        bool ok = rm->Start(xid, StartFlag::kNoFlags).ok() &&
                  RunOnRm(*rm, std::string("UPDATE ") + kTable + " SET v = v + 1 WHERE k = '" +
                                   keys[t] + "'") == 0 &&
                  rm->End(xid, EndFlag::kSuccess).ok() && rm->Prepare(xid).ok() &&
                  rm->Commit(xid, CommitMode::kTwoPhase).ok();
        if (!ok) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (const std::string& key : keys) EXPECT_EQ(ValueOf(key), kBranchesPerThread);
}

}  // namespace
}  // namespace xa::mysql
