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

// A real deadlock between two branches on two sessions, and what is left of each.
struct Deadlock {
  MySqlResourceManager* victim = nullptr;
  MySqlResourceManager* winner = nullptr;
  Xid victim_xid, winner_xid;
  Status victim_status;  // StatusFromException's answer, when the application reported it
  int winner_delta = 0;  // what the winner added to both rows
};

// Whether the application handed the victim's statement error to the driver.
enum class Report { kStatusFromException, kUnreported };

class MysqlDeadlockFixture : public MysqlTest {
 protected:
  std::string Update(const std::string& key, int delta) {
    return std::string("UPDATE ") + kTable + " SET v = v + " + std::to_string(delta) +
           " WHERE k = '" + key + "'";
  }

  // A statement on the RM's session; the server's error number (0 on success). With
  // Report::kUnreported the error never reaches the driver, as in an application that handles
  // sql::SQLException itself.
  int RunReported(MySqlResourceManager& rm, const std::string& sql, Report report,
                  Status* status) {
    if (report == Report::kStatusFromException) return RunOnRm(rm, sql, status);
    return RunSql(rm.connection(), sql);
  }

  // Branches on `rm_a` and `rm_b` update rows 1 and 2 in opposite orders; MariaDB rolls one of
  // them back (1213). Rows start at 100 and 200; A adds 1, B adds 10.
  void MakeDeadlock(MySqlResourceManager& rm_a, MySqlResourceManager& rm_b, Report report,
                    Deadlock* out) {
    std::unique_ptr<sql::Connection> admin = Connect(true);
    ASSERT_NE(admin, nullptr);
    row_1_ = NewKey();
    row_2_ = NewKey();
    SeedRow(row_1_, 100);
    SeedRow(row_2_, 200);
    Xid xid_a = NewXid(), xid_b = NewXid();
    ASSERT_TRUE(rm_a.Start(xid_a, StartFlag::kNoFlags).ok());
    ASSERT_TRUE(rm_b.Start(xid_b, StartFlag::kNoFlags).ok());
    ASSERT_EQ(RunOnRm(rm_a, Update(row_1_, 1)), 0);
    ASSERT_EQ(RunOnRm(rm_b, Update(row_2_, 10)), 0);

    // A waits for B's row in another thread; once the server runs A's update (it can only wait),
    // B asks for A's row. The process list is read live; INNODB_TRX is a cache that often shows
    // the wait late.
    Status status_a, status_b;
    int error_a = 0;
    std::thread waiter([&] { error_a = RunReported(rm_a, Update(row_2_, 1), report, &status_a); });
    std::string waiting_sql =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE%' AND ID = " +
        std::to_string(rm_a.connection_id());
    for (int i = 0; i < 200 && QueryInt(*admin, waiting_sql) != 1; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    int error_b = RunReported(rm_b, Update(row_1_, 10), report, &status_b);
    waiter.join();

    ASSERT_TRUE((error_a == 1213) != (error_b == 1213))
        << "exactly one deadlock victim, got A=" << error_a << " B=" << error_b;
    bool a_is_victim = error_a == 1213;
    out->victim = a_is_victim ? &rm_a : &rm_b;
    out->winner = a_is_victim ? &rm_b : &rm_a;
    out->victim_xid = a_is_victim ? xid_a : xid_b;
    out->winner_xid = a_is_victim ? xid_b : xid_a;
    out->victim_status = a_is_victim ? status_a : status_b;
    out->winner_delta = a_is_victim ? 10 : 1;
  }

  // The winner commits; only its two updates are in the rows.
  void CommitWinnerAndCheckRows(const Deadlock& deadlock) {
    ASSERT_TRUE(deadlock.winner->End(deadlock.winner_xid, EndFlag::kSuccess).ok());
    ASSERT_TRUE(deadlock.winner->Prepare(deadlock.winner_xid).ok());
    ASSERT_TRUE(deadlock.winner->Commit(deadlock.winner_xid, CommitMode::kTwoPhase).ok());
    EXPECT_EQ(ValueOf(row_1_), 100 + deadlock.winner_delta);
    EXPECT_EQ(ValueOf(row_2_), 200 + deadlock.winner_delta);
    EXPECT_TRUE(OurPrepared(*deadlock.winner).empty());
  }

  // A whole two-phase transaction on `rm`, committed and visible: the session is usable.
  void RunNextTransaction(MySqlResourceManager& rm) {
    Xid next = NewXid();
    std::string key = NewKey();
    Status started = rm.Start(next, StartFlag::kNoFlags);
    ASSERT_TRUE(started.ok()) << started.ToString();
    Insert(rm, key, 77);
    ASSERT_TRUE(rm.End(next, EndFlag::kSuccess).ok());
    Status prepared = rm.Prepare(next);
    ASSERT_TRUE(prepared.ok()) << prepared.ToString();
    Status committed = rm.Commit(next, CommitMode::kTwoPhase);
    ASSERT_TRUE(committed.ok()) << committed.ToString();
    EXPECT_EQ(ValueOf(key), 77);
  }

  MySqlOptions DeadlockOptions(bool batched) {
    MySqlOptions options = Options("mysqldrv-deadlock");
    options.batch_xa_end = batched;
    if (batched) options.read_only_optimization = false;  // so that Prepare batches too
    return options;
  }

  std::string row_1_, row_2_;
};

// How the application (or the transaction manager) ends the deadlock victim's branch.
enum class VictimEnding {
  kEndThenPrepare,          // commit as if nothing happened: Prepare votes rollback
  kEndThenRollback,         // End(TMSUCCESS) fails, then Rollback
  kEndFailThenRollback,     // the manager's rollback: End(TMFAIL) fails, then Rollback
  kRollbackAtOnce,          // Rollback of the ACTIVE branch
};

struct DeadlockCase {
  Report report;
  VictimEnding ending;
  bool batched_end;  // MySqlOptions::batch_xa_end
};

std::string CaseName(const ::testing::TestParamInfo<DeadlockCase>& info) {
  std::string name = info.param.report == Report::kStatusFromException ? "Reported" : "Unreported";
  switch (info.param.ending) {
    case VictimEnding::kEndThenPrepare: name += "EndThenPrepare"; break;
    case VictimEnding::kEndThenRollback: name += "EndThenRollback"; break;
    case VictimEnding::kEndFailThenRollback: name += "EndFailThenRollback"; break;
    case VictimEnding::kRollbackAtOnce: name += "RollbackAtOnce"; break;
  }
  return name + (info.param.batched_end ? "BatchedEnd" : "");
}

class MysqlDeadlockTest : public MysqlDeadlockFixture,
                          public ::testing::WithParamInterface<DeadlockCase> {};

TEST_P(MysqlDeadlockTest, VictimIsRolledBackTheWinnerCommitsAndTheVictimSessionRunsTheNextOne) {
  const DeadlockCase& param = GetParam();
  std::unique_ptr<MySqlResourceManager> rm_a = OpenRm(DeadlockOptions(param.batched_end));
  std::unique_ptr<MySqlResourceManager> rm_b = OpenRm(DeadlockOptions(param.batched_end));
  ASSERT_NE(rm_a, nullptr);
  ASSERT_NE(rm_b, nullptr);
  Deadlock deadlock;
  ASSERT_NO_FATAL_FAILURE(MakeDeadlock(*rm_a, *rm_b, param.report, &deadlock));
  MySqlResourceManager& victim = *deadlock.victim;
  const Xid& victim_xid = deadlock.victim_xid;
  // What the driver knows of the cause decides the XA_RB* code it reports.
  const Code expected_rb = param.report == Report::kStatusFromException ? Code::kRbDeadlock
                                                                        : Code::kRbRollback;
  // End(TMSUCCESS) only notes the end of a batched branch the driver does not know is lost.
  const bool deferred_end = param.batched_end && param.report == Report::kUnreported;
  if (param.report == Report::kStatusFromException) {
    EXPECT_EQ(deadlock.victim_status.code(), Code::kRbDeadlock)
        << deadlock.victim_status.ToString();
    EXPECT_NE(deadlock.victim_status.message().find(victim_xid.ToString()), std::string::npos);
  }

  switch (param.ending) {
    case VictimEnding::kEndThenPrepare: {
      Status ended = victim.End(victim_xid, EndFlag::kSuccess);
      if (deferred_end) {
        // XA END travels with XA PREPARE: its refusal is Prepare's answer.
        EXPECT_TRUE(ended.ok()) << ended.ToString();
      } else {
        EXPECT_EQ(ended.code(), expected_rb) << ended.ToString();
      }
      Status prepared = victim.Prepare(victim_xid);
      EXPECT_EQ(prepared.code(), expected_rb) << prepared.ToString();
      break;
    }
    case VictimEnding::kEndThenRollback:
    case VictimEnding::kEndFailThenRollback: {
      EndFlag flag =
          param.ending == VictimEnding::kEndThenRollback ? EndFlag::kSuccess : EndFlag::kFail;
      Status ended = victim.End(victim_xid, flag);
      if (deferred_end && flag == EndFlag::kSuccess) {
        EXPECT_TRUE(ended.ok()) << ended.ToString();  // noted only; Rollback sends it
      } else {
        EXPECT_EQ(ended.code(), expected_rb) << ended.ToString();
      }
      Status rolled_back = victim.Rollback(victim_xid);
      EXPECT_TRUE(rolled_back.ok()) << rolled_back.ToString();
      break;
    }
    case VictimEnding::kRollbackAtOnce: {
      Status rolled_back = victim.Rollback(victim_xid);
      EXPECT_TRUE(rolled_back.ok()) << rolled_back.ToString();
      break;
    }
  }
  EXPECT_TRUE(victim.connected());
  ASSERT_NO_FATAL_FAILURE(RunNextTransaction(victim));
  ASSERT_NO_FATAL_FAILURE(CommitWinnerAndCheckRows(deadlock));
}

std::vector<DeadlockCase> AllDeadlockCases() {
  std::vector<DeadlockCase> cases;
  for (Report report : {Report::kStatusFromException, Report::kUnreported}) {
    for (VictimEnding ending : {VictimEnding::kEndThenPrepare, VictimEnding::kEndThenRollback,
                                VictimEnding::kEndFailThenRollback,
                                VictimEnding::kRollbackAtOnce}) {
      for (bool batched : {false, true}) cases.push_back(DeadlockCase{report, ending, batched});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(VictimEndings, MysqlDeadlockTest, ::testing::ValuesIn(AllDeadlockCases()),
                         CaseName);

// A victim whose failed End is never followed by Rollback keeps the session bound to the
// rolled-back branch: Start says which branch and what releases it, Open() of the live session
// changes nothing, and Rollback of that xid frees the session.
TEST_F(MysqlDeadlockFixture, UnreleasedVictimRefusesStartWithProtoUntilItIsRolledBack) {
  std::unique_ptr<MySqlResourceManager> rm_a = OpenRm(DeadlockOptions(false));
  std::unique_ptr<MySqlResourceManager> rm_b = OpenRm(DeadlockOptions(false));
  ASSERT_NE(rm_a, nullptr);
  ASSERT_NE(rm_b, nullptr);
  Deadlock deadlock;
  ASSERT_NO_FATAL_FAILURE(MakeDeadlock(*rm_a, *rm_b, Report::kUnreported, &deadlock));
  MySqlResourceManager& victim = *deadlock.victim;
  EXPECT_EQ(victim.End(deadlock.victim_xid, EndFlag::kFail).code(), Code::kRbRollback);

  Xid next = NewXid();
  Status refused = victim.Start(next, StartFlag::kNoFlags);
  EXPECT_EQ(refused.code(), Code::kProto) << refused.ToString();
  EXPECT_NE(refused.message().find(deadlock.victim_xid.ToString()), std::string::npos)
      << refused.ToString();
  EXPECT_NE(refused.message().find("Rollback()"), std::string::npos) << refused.ToString();
  EXPECT_NE(refused.message().find("1399"), std::string::npos) << refused.ToString();
  ASSERT_TRUE(victim.Open().ok());
  EXPECT_EQ(victim.Start(next, StartFlag::kNoFlags).code(), Code::kProto)
      << "Open() of a live session does not release the branch";

  Status rolled_back = victim.Rollback(deadlock.victim_xid);
  EXPECT_TRUE(rolled_back.ok()) << rolled_back.ToString();
  ASSERT_NO_FATAL_FAILURE(RunNextTransaction(victim));
  ASSERT_NO_FATAL_FAILURE(CommitWinnerAndCheckRows(deadlock));
}

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
