// Many threads moving money between MariaDB and PostgreSQL through one manager and the file
// decision log: the total balance is unchanged and no branch of our node is left prepared.
// Labels db and concurrent (runs under TSan).
//
// Size: XA_TM_STRESS_TRANSFERS transfers in all (default 10,000; 2,000 under TSan, where every
// call is about ten times slower, to keep the run within the per-test timeout), over
// XA_TM_STRESS_THREADS threads (default 8).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "testutil/db_env.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using ::testing::IsEmpty;

#if defined(__SANITIZE_THREAD__)
constexpr int kDefaultTransfers = 2000;
#else
constexpr int kDefaultTransfers = 10000;
#endif

TEST(TmDbStressTest, ConcurrentTransfersKeepTheTotalAndLeaveNoPreparedBranch) {
  const int transfers = EnvInt("XA_TM_STRESS_TRANSFERS", kDefaultTransfers);
  const int threads = EnvInt("XA_TM_STRESS_THREADS", 8);
  constexpr int kAccounts = 20;
  constexpr int64_t kBalance = 1000;
  const std::string table = "tm_stress_accounts";
  const uint32_t node = 0x55000000u | (std::random_device()() & 0xffffffu);

  auto admin = OpenTeller();
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  ASSERT_TRUE(ResetAccounts(*admin, table, kAccounts, kBalance).ok());

  std::string dir = TempLogDir("tm-stress");
  LogOptions log_options;
  log_options.dir = dir;
  log_options.node_id = node;
  auto log = DecisionLog::Open(log_options);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  TransactionManagerOptions options;
  options.node_id = node;
  // Every branch writes: the sessions run as the bench does, without the read-only probe, so
  // MariaDB's XA END travels with XA PREPARE (batch_xa_end), deadlock victims included.
  constexpr bool kReadOnlyProbe = false;
  RegisterDbFactories(options, kReadOnlyProbe);
  auto manager = TransactionManager::Open(options, **log);
  ASSERT_TRUE(manager.ok()) << manager.status().ToString();

  std::mutex mu;
  std::map<Outcome, int> outcomes;
  std::vector<std::string> errors;
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto teller = OpenTeller(kReadOnlyProbe);
      if (!teller.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(teller.status().ToString());
        return;
      }
      std::mt19937 random(static_cast<uint32_t>(t) * 7919u + 1);
      std::uniform_int_distribution<int> account(1, kAccounts);
      std::uniform_int_distribution<int> amount(-200, 200);
      while (next.fetch_add(1) < transfers) {
        auto outcome = Transfer(**manager, *teller, table, account(random), account(random),
                                amount(random));
        std::lock_guard<std::mutex> lock(mu);
        if (outcome.ok()) {
          ++outcomes[*outcome];
        } else {
          errors.push_back(outcome.status().ToString());
        }
      }
    });
  }
  for (std::thread& w : workers) w.join();
  Status drained = (*manager)->WaitForBackgroundCompletion(std::chrono::seconds(120));
  EXPECT_TRUE(drained.ok()) << drained.ToString();

  EXPECT_LE(errors.size(), 0u) << (errors.empty() ? "" : errors.front());
  int total = 0;
  for (const auto& [outcome, count] : outcomes) {
    total += count;
    EXPECT_TRUE(outcome == Outcome::kCommitted || outcome == Outcome::kRolledBack ||
                outcome == Outcome::kCommittedCompletionPending)
        << OutcomeName(outcome) << " x" << count;
  }
  EXPECT_EQ(total + static_cast<int>(errors.size()), transfers);
  EXPECT_GT(outcomes[Outcome::kCommitted], transfers / 2);

  auto my = MariaDbTotal(*admin, table);
  auto pg = PostgresTotal(*admin, table);
  ASSERT_TRUE(my.ok() && pg.ok());
  EXPECT_EQ(*my + *pg, 2 * kAccounts * kBalance) << "money was created or destroyed";
  auto prepared = PreparedBranchesOf(*admin, node);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EXPECT_THAT(*prepared, IsEmpty());
  EXPECT_THAT((*log)->State().open_decisions, IsEmpty());
  EXPECT_THAT((*manager)->InFlightTransactions(), IsEmpty());

  TransactionMetrics m = (*manager)->Metrics();
  std::printf("transfers=%d committed=%d rolled_back=%d pending=%d; commit p50=%.0fus p99=%.0fus "
              "prepare p50=%.0fus decision p50=%.0fus\n",
              transfers, outcomes[Outcome::kCommitted], outcomes[Outcome::kRolledBack],
              outcomes[Outcome::kCommittedCompletionPending], m.total_commit.p50_us,
              m.total_commit.p99_us, m.prepare.p50_us, m.decision_write.p50_us);
  manager->reset();
  log->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace xa::test
