// The manager takes time from its Env's clock (TransactionManagerOptions::env): transaction
// timeouts and the background completer's retry schedule happen when the clock says, which a
// test moves by hand (no sleep_for guess).

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/fake_clock.h"
#include "testutil/status_matchers.h"
#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class ClockTest : public TmTest {
 protected:
  ClockTest() : env_(Env::Default(), &clock_) {}
  // The manager's threads wait on the clock: stop them before the clock goes.
  ~ClockTest() override { manager_.reset(); }

  TransactionManagerOptions Options() {
    TransactionManagerOptions options = TmTest::Options();
    options.env = &env_;
    // No periodic recovery pass: its thread would wait on the clock too.
    options.recovery_interval = std::chrono::milliseconds(0);
    return options;
  }

  int CommitCallsOn(const ScriptedResourceManager& rm) {
    int n = 0;
    for (const Call& call : rm.Calls()) n += call.verb == Verb::kCommit ? 1 : 0;
    return n;
  }

  FakeClock clock_;
  EnvWithClock env_;
};

TEST_F(ClockTest, TransactionTimesOutWhenTheClockPassesItsTimeoutAtEnlist) {
  TransactionManagerOptions options = Options();
  options.transaction_timeout = std::chrono::seconds(5);
  OpenManager(std::move(options));
  Transaction txn = BeginWith({&a_});
  clock_.Advance(std::chrono::seconds(5));
  EXPECT_THAT(txn.Enlist(b_), IsOk()) << "exactly at the timeout the transaction is still alive";
  clock_.Advance(std::chrono::microseconds(1));
  EXPECT_THAT(txn.Enlist(c_), StatusIs(Code::kRbTimeout));
  EXPECT_EQ(txn.state(), TransactionState::kRolledBack);
  EXPECT_THAT(a_.Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  EXPECT_THAT(c_.Calls(), IsEmpty());
  EXPECT_EQ(manager_->Metrics().timeouts, 1u);
}

TEST_F(ClockTest, TransactionTimesOutWhenTheClockPassesItsTimeoutAtCommit) {
  OpenManager(Options());
  TransactionOptions topts;
  topts.timeout = std::chrono::milliseconds(1);
  Result<Transaction> txn = manager_->Begin(topts);
  ASSERT_THAT(txn, IsOk());
  ASSERT_THAT(txn->Enlist(a_), IsOk());
  ASSERT_THAT(txn->Enlist(b_), IsOk());
  clock_.Advance(std::chrono::milliseconds(2));
  Result<Outcome> outcome = txn->Commit();
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(*outcome, Outcome::kRolledBack);
  EXPECT_THAT(txn->last_status(), StatusIs(Code::kRbTimeout));
  for (ScriptedResourceManager* rm : {&a_, &b_}) {
    EXPECT_THAT(rm->Trace(), ElementsAre("start(TMNOFLAGS)", "end(TMFAIL)", "rollback"));
  }
  EXPECT_THAT(log_.Records(), IsEmpty());
}

TEST_F(ClockTest, BackgroundCompleterRetriesWhenTheClockReachesTheBackoff) {
  TransactionManagerOptions options = Options();
  options.background_retry = RetryPolicy{0, std::chrono::seconds(10), std::chrono::seconds(10),
                                         1.0};
  OpenManager(std::move(options));
  // Every inline attempt fails; the background's first attempt succeeds.
  b_.Script(Verb::kCommit, {Step::Return(Code::kRmFail), Step::Return(Code::kRmFail),
                            Step::Return(Code::kRmFail)});
  EXPECT_EQ(CommitWith({&a_, &b_}), Outcome::kCommittedCompletionPending);

  // The completer waits for the backoff on the clock, and nothing happens before it. (It may
  // still be waiting for work, without a deadline, when Commit returns: wait, in real time and
  // bounded, until it waits for the retry.)
  for (int i = 0; i < 3000 && !clock_.NextDeadline().has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(clock_.NextDeadline().has_value());
  EXPECT_EQ(*clock_.NextDeadline() - clock_.SteadyNow(), std::chrono::seconds(10));
  clock_.Advance(std::chrono::seconds(9));
  EXPECT_EQ(CommitCallsOn(b_), 3);
  EXPECT_EQ(manager_->Metrics().background_pending, 1);

  clock_.Advance(std::chrono::seconds(1));
  // The retry runs on the completer's thread: wait for it in real time, bounded.
  for (int i = 0; i < 3000 && manager_->Metrics().background_pending != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(manager_->Metrics().background_pending, 0);
  EXPECT_EQ(CommitCallsOn(b_), 4);
  EXPECT_EQ(log_.RecordsOfType(RecordType::kEnd).size(), 1u);
}

}  // namespace
}  // namespace xa::test
