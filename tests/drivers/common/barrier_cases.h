// The participant barrier's cases on a real database, written once for every driver: each
// driver's test file supplies BarrierConnection (its own connections, autocommit off) and
// instantiates BarrierCases. Every case asserts the verdicts and that the business work ran
// exactly when the verdict said so.

#ifndef XA_TESTS_DRIVERS_COMMON_BARRIER_CASES_H_
#define XA_TESTS_DRIVERS_COMMON_BARRIER_CASES_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "xa/status.h"
#include "xa/tcc_barrier.h"

namespace xa::test {

// One connection of a participant service, in a local transaction (autocommit off).
class BarrierConnection {
 public:
  virtual ~BarrierConnection() = default;
  virtual Result<BarrierVerdict> Enter(const BarrierKey& key, BarrierOp op,
                                       const BarrierOptions& options) = 0;
  virtual Result<int64_t> Purge(const BarrierOptions& options) = 0;
  virtual Status CreateTable(const BarrierOptions& options) = 0;
  // Runs a statement (ADD_FAILURE on an error); the business work of the cases.
  virtual void Run(const std::string& sql) = 0;
  virtual int64_t QueryInt(const std::string& sql) = 0;
  virtual void Commit() = 0;
  virtual void Rollback() = 0;
  // Turns autocommit on (the barrier must refuse such a connection).
  virtual void SetAutocommitOn() = 0;
};

struct BarrierDriver {
  std::string name;
  bool postgres = false;
  std::function<std::unique_ptr<BarrierConnection>()> connect;
  friend void PrintTo(const BarrierDriver& driver, std::ostream* os) { *os << driver.name; }
};

inline std::string BarrierDriverName(const ::testing::TestParamInfo<BarrierDriver>& info) {
  return info.param.name;
}

class BarrierCases : public ::testing::TestWithParam<BarrierDriver> {
 protected:
  void SetUp() override {
    static std::mt19937_64 random{std::random_device{}()};
    suffix_ = std::to_string(random() % 100000000u);
    options_.table = "barrier_" + suffix_;
    accounts_ = "barrier_funds_" + suffix_;
    a_ = GetParam().connect();
    ASSERT_NE(a_, nullptr);
    ASSERT_TRUE(a_->CreateTable(options_).ok());
    a_->Run("CREATE TABLE " + accounts_ + " (id INT PRIMARY KEY, frozen INT NOT NULL)");
    a_->Run("INSERT INTO " + accounts_ + " VALUES (1, 0)");
    a_->Commit();
  }
  void TearDown() override {
    if (a_ == nullptr) return;
    a_->Rollback();
    a_->Run("DROP TABLE IF EXISTS " + options_.table);
    a_->Run("DROP TABLE IF EXISTS " + accounts_);
    a_->Commit();
  }

  // A participant's handler: the barrier, then the business work the verdict allows, then
  // commit. Try freezes 10, Cancel releases 10, Confirm spends them (frozen - 10 as well).
  BarrierVerdict Handle(BarrierConnection& c, const BarrierKey& key, BarrierOp op,
                        bool commit = true) {
    Result<BarrierVerdict> verdict = c.Enter(key, op, options_);
    EXPECT_TRUE(verdict.ok()) << verdict.status().ToString();
    if (!verdict.ok()) {
      c.Rollback();
      return BarrierVerdict::kRepeated;
    }
    if (*verdict == BarrierVerdict::kRun) {
      const char* change = op == BarrierOp::kTry || op == BarrierOp::kAction ? "+ 10" : "- 10";
      c.Run("UPDATE " + accounts_ + " SET frozen = frozen " + change + " WHERE id = 1");
    }
    if (commit) {
      c.Commit();
    } else {
      c.Rollback();
    }
    return *verdict;
  }
  int64_t Frozen() {
    int64_t frozen = a_->QueryInt("SELECT frozen FROM " + accounts_ + " WHERE id = 1");
    a_->Commit();
    return frozen;
  }
  int64_t Rows() {
    int64_t rows = a_->QueryInt("SELECT COUNT(*) FROM " + options_.table);
    a_->Commit();
    return rows;
  }

  std::string suffix_, accounts_;
  BarrierOptions options_;
  std::unique_ptr<BarrierConnection> a_;
};

TEST_P(BarrierCases, TryThenConfirmRunEachOnceAndTheirRepeatsDoNothing) {
  BarrierKey key{"gid-confirm", "b1"};
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRepeated);
  EXPECT_EQ(Frozen(), 10);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kConfirm), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kConfirm), BarrierVerdict::kRepeated);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kConfirm), BarrierVerdict::kRepeated);
  EXPECT_EQ(Frozen(), 0);
}

TEST_P(BarrierCases, TryThenCancelRunsTheBusinessCancelOnceAndItsRepeatsDoNothing) {
  BarrierKey key{"gid-cancel", "b1"};
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCancel), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCancel), BarrierVerdict::kRepeated);
  EXPECT_EQ(Frozen(), 0);
}

TEST_P(BarrierCases, CancelWithoutTryIsAnEmptyCompensationAndTheLateTryIsRefused) {
  BarrierKey key{"gid-empty", "b1"};
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCancel), BarrierVerdict::kEmptyCompensation);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCancel), BarrierVerdict::kRepeated);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRefusedAfterCompensation);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRefusedAfterCompensation);
  EXPECT_EQ(Frozen(), 0) << "nothing may stay frozen: the Try was refused";
}

TEST_P(BarrierCases, CompensateBeforeItsActionIsEmptyAndTheLateActionIsRefused) {
  BarrierKey key{"gid-saga", "step-2"};
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCompensate), BarrierVerdict::kEmptyCompensation);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kAction), BarrierVerdict::kRefusedAfterCompensation);
  BarrierKey other{"gid-saga", "step-1"};
  EXPECT_EQ(Handle(*a_, other, BarrierOp::kAction), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, other, BarrierOp::kCompensate), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, other, BarrierOp::kCompensate), BarrierVerdict::kRepeated);
  EXPECT_EQ(Frozen(), 0);
}

TEST_P(BarrierCases, ARolledBackTryLeavesNoRowSoItsRedeliveryRuns) {
  BarrierKey key{"gid-rollback", "b1"};
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry, /*commit=*/false), BarrierVerdict::kRun);
  EXPECT_EQ(Rows(), 0);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRun);
  EXPECT_EQ(Frozen(), 10);
}

// Keys are bytes: case, quotes, NUL and non-ASCII bytes are distinct keys, never SQL.
TEST_P(BarrierCases, KeysAreComparedByteForByteAndNeverReadAsSql) {
  EXPECT_EQ(Handle(*a_, {"GID", "b"}, BarrierOp::kCancel), BarrierVerdict::kEmptyCompensation);
  EXPECT_EQ(Handle(*a_, {"gid", "b"}, BarrierOp::kTry), BarrierVerdict::kRun);
  std::string hostile("x'); DROP TABLE t; --\0\xff", 24);
  EXPECT_EQ(Handle(*a_, {hostile, hostile.substr(0, 10)}, BarrierOp::kTry), BarrierVerdict::kRun);
  EXPECT_EQ(Handle(*a_, {hostile, hostile.substr(0, 10)}, BarrierOp::kTry),
            BarrierVerdict::kRepeated);
  EXPECT_EQ(Frozen(), 20);
}

TEST_P(BarrierCases, BadKeysOptionsAndAutocommitAreRefusedNamingWhatIsWrong) {
  Result<BarrierVerdict> empty = a_->Enter({"", "b"}, BarrierOp::kTry, options_);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), Code::kInval);
  EXPECT_NE(empty.status().message().find("global id is empty"), std::string::npos);
  Result<BarrierVerdict> longer = a_->Enter({"g", std::string(65, 'b')}, BarrierOp::kTry, options_);
  ASSERT_FALSE(longer.ok());
  EXPECT_NE(longer.status().message().find("at most 64"), std::string::npos);
  BarrierOptions bad = options_;
  bad.table = "t; DROP";
  Result<BarrierVerdict> table = a_->Enter({"g", "b"}, BarrierOp::kTry, bad);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("barrier table"), std::string::npos);
  a_->Rollback();
  a_->SetAutocommitOn();
  Result<BarrierVerdict> autocommit = a_->Enter({"g", "b"}, BarrierOp::kTry, options_);
  ASSERT_FALSE(autocommit.ok());
  EXPECT_EQ(autocommit.status().code(), Code::kProto);
  EXPECT_NE(autocommit.status().message().find("autocommit"), std::string::npos);
}

// A Cancel delivered while its Try is still running (not committed) waits on the Try's row,
// then judges by what the Try did: committed, it cancels the reservation; rolled back, the
// Cancel is empty and the Try, delivered again, is refused.
TEST_P(BarrierCases, ACancelThatOvertakesAnUncommittedTryWaitsForItAndJudgesByItsOutcome) {
  for (bool try_commits : {true, false}) {
    SCOPED_TRACE(try_commits ? "the Try commits" : "the Try rolls back");
    BarrierKey key{try_commits ? "gid-race-commit" : "gid-race-rollback", "b1"};
    std::unique_ptr<BarrierConnection> b = GetParam().connect();
    ASSERT_NE(b, nullptr);
    Result<BarrierVerdict> tried = a_->Enter(key, BarrierOp::kTry, options_);
    ASSERT_TRUE(tried.ok()) << tried.status().ToString();
    ASSERT_EQ(*tried, BarrierVerdict::kRun);
    a_->Run("UPDATE " + accounts_ + " SET frozen = frozen + 10 WHERE id = 1");
    // The Cancel's transaction reads first, so that under REPEATABLE READ its snapshot is older
    // than the Try's commit: the barrier must still see that row.
    EXPECT_EQ(b->QueryInt("SELECT frozen FROM " + accounts_ + " WHERE id = 1"), 0);
    std::future<BarrierVerdict> cancel =
        std::async(std::launch::async, [&] { return Handle(*b, key, BarrierOp::kCancel); });
    EXPECT_EQ(cancel.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
        << "the Cancel did not wait for the uncommitted Try's row";
    if (try_commits) {
      a_->Commit();
      EXPECT_EQ(cancel.get(), BarrierVerdict::kRun);
    } else {
      a_->Rollback();
      EXPECT_EQ(cancel.get(), BarrierVerdict::kEmptyCompensation);
      EXPECT_EQ(Handle(*a_, key, BarrierOp::kTry), BarrierVerdict::kRefusedAfterCompensation);
    }
    EXPECT_EQ(Frozen(), 0);
  }
}

// A Try delivered late, on a transaction whose snapshot is older than the Cancel's commit (it
// read before the Cancel ran): the barrier reads the row that refuses it with a locking read,
// which sees the committed row, so the Try is refused, not taken for a repeat.
TEST_P(BarrierCases, ALateTryOnASnapshotOlderThanItsCancelIsStillRefused) {
  BarrierKey key{"gid-snapshot", "b1"};
  std::unique_ptr<BarrierConnection> late = GetParam().connect();
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(late->QueryInt("SELECT frozen FROM " + accounts_ + " WHERE id = 1"), 0);
  EXPECT_EQ(Handle(*a_, key, BarrierOp::kCancel), BarrierVerdict::kEmptyCompensation);
  EXPECT_EQ(Handle(*late, key, BarrierOp::kTry), BarrierVerdict::kRefusedAfterCompensation);
  EXPECT_EQ(Frozen(), 0);
}

// Two deliveries of one Cancel at once, without a Try: the second waits on the first's rows,
// neither deadlocks, and only the first is judged (an empty compensation); the second repeats.
TEST_P(BarrierCases, TwoDeliveriesOfOneCancelAtOnceAreJudgedOnceWithoutADeadlock) {
  BarrierKey key{"gid-twice", "b1"};
  std::unique_ptr<BarrierConnection> b = GetParam().connect();
  ASSERT_NE(b, nullptr);
  Result<BarrierVerdict> first = a_->Enter(key, BarrierOp::kCancel, options_);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, BarrierVerdict::kEmptyCompensation);
  std::future<BarrierVerdict> second =
      std::async(std::launch::async, [&] { return Handle(*b, key, BarrierOp::kCancel); });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "the second delivery did not wait for the first's rows";
  a_->Commit();
  EXPECT_EQ(second.get(), BarrierVerdict::kRepeated);
  EXPECT_EQ(Rows(), 2);
}

// The purge deletes finished branches older than the retention (rows aged here by hand: the
// retention is at least an hour) and never a Try without its Confirm or Cancel.
TEST_P(BarrierCases, PurgeDeletesOnlyFinishedBranchesOlderThanTheRetentionInBatches) {
  for (int i = 0; i < 5; ++i) {
    BarrierKey key{"gid-purge", "confirmed-" + std::to_string(i)};
    Handle(*a_, key, BarrierOp::kTry);
    Handle(*a_, key, BarrierOp::kConfirm);
  }
  Handle(*a_, {"gid-purge", "cancelled-empty"}, BarrierOp::kCancel);
  Handle(*a_, {"gid-purge", "in-doubt"}, BarrierOp::kTry);
  Handle(*a_, {"gid-purge", "recent"}, BarrierOp::kTry);
  EXPECT_EQ(Rows(), 14);
  const std::string aged = GetParam().postgres ? "created_at - interval '2 hours'"
                                               : "created_at - INTERVAL 2 HOUR";
  a_->Run("UPDATE " + options_.table + " SET created_at = " + aged +
          " WHERE branch_id <> " + (GetParam().postgres ? "'recent'::bytea" : "'recent'"));
  a_->Commit();
  Handle(*a_, {"gid-purge", "recent"}, BarrierOp::kConfirm);  // finished, but young
  BarrierOptions purge = options_;
  purge.retention = std::chrono::hours(1);
  purge.purge_batch = 4;
  Result<int64_t> first = a_->Purge(purge);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 8) << "4 branches of 2 rows each";
  int64_t total = *first;
  for (;;) {
    Result<int64_t> more = a_->Purge(purge);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (*more == 0) break;
    total += *more;
  }
  EXPECT_EQ(total, 12) << "5 confirmed and 1 empty cancel, 2 rows each";
  EXPECT_EQ(Rows(), 3) << "the in-doubt Try and the young branch stay";
  EXPECT_EQ(Handle(*a_, {"gid-purge", "in-doubt"}, BarrierOp::kCancel), BarrierVerdict::kRun);
  BarrierOptions short_retention = options_;
  short_retention.retention = std::chrono::minutes(59);
  Result<int64_t> refused = a_->Purge(short_retention);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("shorter than an hour"), std::string::npos);
}

}  // namespace xa::test

#endif  // XA_TESTS_DRIVERS_COMMON_BARRIER_CASES_H_
