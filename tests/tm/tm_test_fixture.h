// Shared fixture of the transaction manager's protocol tests: scripted RMs "a", "b", "c", an
// in-memory decision log, and a manager with instant retries.

#ifndef XA_TESTS_TM_TM_TEST_FIXTURE_H_
#define XA_TESTS_TM_TM_TEST_FIXTURE_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/testutil/memory_decision_log.h"
#include "tests/testutil/scripted_rm.h"
#include "xa/transaction_manager.h"

namespace xa::test {

constexpr uint32_t kNode = 7;

inline std::vector<RecordType> Types(const std::vector<LogRecord>& records) {
  std::vector<RecordType> out;
  for (const LogRecord& r : records) out.push_back(r.type);
  return out;
}

inline std::vector<std::string> Names(const std::vector<Participant>& participants) {
  std::vector<std::string> out;
  for (const Participant& p : participants) out.push_back(p.rm_name);
  return out;
}

class TmTest : public ::testing::Test {
 protected:
  TmTest() : log_(kNode), a_("a"), b_("b"), c_("c") {}

  TransactionManagerOptions Options() {
    TransactionManagerOptions options;
    options.node_id = kNode;
    options.phase_threads = 2;
    // Parallel phases whatever the machine's load: a test that proves two branches overlap must
    // not see them run one after the other because CI's CPUs happen to be busy (the switch
    // itself is tested in phase_executor_test.cc).
    options.sequential_phases_at_cpu_percent = 0;
    options.inline_retry = RetryPolicy{3, std::chrono::microseconds(0),
                                       std::chrono::microseconds(0), 2.0};
    options.background_retry = RetryPolicy{0, std::chrono::microseconds(10),
                                           std::chrono::microseconds(1000), 2.0};
    RegisterFakes(options, {&a_, &b_, &c_});
    // Protocol tests assert every XA call the coordinator makes; recovery passes (a scan of
    // every RM at Open() and periodically) are tested on their own, with this turned on.
    options.recover_on_open = false;
    return options;
  }

  void OpenManager() { OpenManager(Options()); }
  void OpenManager(TransactionManagerOptions options) {
    Result<std::unique_ptr<TransactionManager>> manager =
        TransactionManager::Open(std::move(options), log_);
    ASSERT_TRUE(manager.ok()) << manager.status().ToString();
    manager_ = std::move(*manager);
  }

  // Begins a transaction and enlists `rms` in that order.
  Transaction BeginWith(std::vector<ScriptedResourceManager*> rms) {
    Result<Transaction> txn = manager_->Begin();
    EXPECT_TRUE(txn.ok()) << txn.status().ToString();
    if (!txn.ok()) return Transaction();
    for (ScriptedResourceManager* rm : rms) {
      Status s = txn->Enlist(*rm);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return std::move(*txn);
  }

  Outcome CommitWith(std::vector<ScriptedResourceManager*> rms, Xid* xid = nullptr,
                     Status* last_status = nullptr) {
    Transaction txn = BeginWith(std::move(rms));
    if (xid != nullptr) *xid = txn.xid();
    Result<Outcome> outcome = txn.Commit();
    EXPECT_TRUE(outcome.ok()) << outcome.status().ToString();
    if (last_status != nullptr) *last_status = txn.last_status();
    // End records are written by a background thread: wait for them, so that tests see the
    // log as it will stay (a pending completion is waited for by the test itself).
    if (outcome.ok() && *outcome != Outcome::kCommittedCompletionPending) WaitForBackground();
    return outcome.ok() ? *outcome : Outcome::kUnknown;
  }

  void WaitForBackground() {
    Status s = manager_->WaitForBackgroundCompletion(std::chrono::seconds(30));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  MemoryDecisionLog log_;
  ScriptedResourceManager a_, b_, c_;
  std::unique_ptr<TransactionManager> manager_;
};

}  // namespace xa::test

#endif  // XA_TESTS_TM_TM_TEST_FIXTURE_H_
