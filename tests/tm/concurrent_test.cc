// Many transactions in flight at once over the scripted RMs: the manager's shared state (thread
// pool, in-flight registry, metrics, background completion, log) under contention. Run under
// TSan by the test script (label `concurrent`).

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "tests/tm/tm_test_fixture.h"

namespace xa::test {
namespace {

using ::testing::IsEmpty;

// The sequence number in an xa-generated gtrid (bytes 13-20, big-endian).
uint64_t Sequence(const Xid& xid) {
  uint64_t n = 0;
  for (size_t i = 13; i < 21 && i < xid.gtrid().size(); ++i) {
    n = (n << 8) | static_cast<unsigned char>(xid.gtrid()[i]);
  }
  return n;
}

class ConcurrentTest : public TmTest {};

TEST_F(ConcurrentTest, ManyThreadsKeepOutcomesAndLogConsistent) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  OpenManager();

  // Per transaction (by sequence number): every 7th has b vote rollback; every 11th makes b
  // unreachable for its first 4 commit calls (3 inline, 1 background); every 5th has c vote
  // read-only.
  std::mutex mu;
  std::map<uint64_t, int> b_commit_failures;
  b_.SetPolicy([&](Verb verb, const Xid& xid) -> std::optional<Status> {
    uint64_t seq = Sequence(xid);
    if (verb == Verb::kPrepare && seq % 7 == 0) return Status(Code::kRbDeadlock, "deadlock");
    if (verb == Verb::kCommit && seq % 11 == 0 && seq % 7 != 0) {
      std::lock_guard<std::mutex> lock(mu);
      if (b_commit_failures[seq]++ < 4) return Status(Code::kRmFail, "connection lost");
    }
    return std::nullopt;
  });
  c_.SetPolicy([&](Verb verb, const Xid& xid) -> std::optional<Status> {
    if (verb == Verb::kPrepare && Sequence(xid) % 5 == 0) return Status(Code::kReadOnly, "");
    return std::nullopt;
  });

  std::atomic<int> committed{0}, pending{0}, rolled_back{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<ScriptedResourceManager> a = a_.NewSession();
      std::unique_ptr<ScriptedResourceManager> b = b_.NewSession();
      std::unique_ptr<ScriptedResourceManager> c = c_.NewSession();
      for (int i = 0; i < kPerThread; ++i) {
        Result<Transaction> txn = manager_->Begin();
        ASSERT_TRUE(txn.ok());
        ASSERT_TRUE(txn->Enlist(*a).ok());
        ASSERT_TRUE(txn->Enlist(*b).ok());
        if ((i + t) % 2 == 0) {
          ASSERT_TRUE(txn->Enlist(*c).ok());
        }
        Result<Outcome> outcome = txn->Commit();
        ASSERT_TRUE(outcome.ok());
        switch (*outcome) {
          case Outcome::kCommitted: ++committed; break;
          case Outcome::kCommittedCompletionPending: ++pending; break;
          case Outcome::kRolledBack: ++rolled_back; break;
          default: ++other; break;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  WaitForBackground();

  const int total = kThreads * kPerThread;
  EXPECT_EQ(committed + pending + rolled_back, total);
  EXPECT_EQ(other.load(), 0);
  EXPECT_NEAR(rolled_back.load(), total / 7, 1) << "every 7th votes no";
  EXPECT_GT(pending.load(), 0);

  LogState state = log_.State();
  EXPECT_THAT(state.open_decisions, IsEmpty()) << "every decision got its end record";
  EXPECT_THAT(state.open_heuristics, IsEmpty());
  size_t decisions = log_.RecordsOfType(RecordType::kCommitDecision).size();
  EXPECT_EQ(decisions, log_.RecordsOfType(RecordType::kEnd).size());
  EXPECT_EQ(decisions, static_cast<size_t>(committed + pending));
  for (ScriptedResourceManager* rm : {&a_, &b_, &c_}) EXPECT_THAT(rm->PreparedXids(), IsEmpty());
  EXPECT_THAT(manager_->InFlightTransactions(), IsEmpty());

  TransactionMetrics m = manager_->Metrics();
  EXPECT_EQ(m.begun, static_cast<uint64_t>(total));
  EXPECT_EQ(m.Count(Outcome::kCommitted) + m.Count(Outcome::kCommittedCompletionPending) +
                m.Count(Outcome::kRolledBack),
            static_cast<uint64_t>(total));
  EXPECT_EQ(m.background_completed, m.handed_to_background);
  EXPECT_EQ(m.in_flight, 0);
  EXPECT_EQ(m.background_pending, 0);
}

TEST_F(ConcurrentTest, ManagerWithoutPhaseThreadsRunsPhasesOnTheCaller) {
  TransactionManagerOptions options = Options();
  options.phase_threads = 0;
  OpenManager(std::move(options));
  std::vector<std::thread> threads;
  std::atomic<int> committed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<ScriptedResourceManager> a = a_.NewSession();
      std::unique_ptr<ScriptedResourceManager> b = b_.NewSession();
      for (int i = 0; i < 100; ++i) {
        Result<Transaction> txn = manager_->Begin();
        ASSERT_TRUE(txn.ok());
        ASSERT_TRUE(txn->Enlist(*a).ok());
        ASSERT_TRUE(txn->Enlist(*b).ok());
        if (*txn->Commit() == Outcome::kCommitted) ++committed;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(committed.load(), 400);
  WaitForBackground();  // end records are appended in the background
  EXPECT_THAT(log_.State().open_decisions, IsEmpty());
  EXPECT_EQ(log_.RecordsOfType(RecordType::kEnd).size(), 400u);
}

}  // namespace
}  // namespace xa::test
