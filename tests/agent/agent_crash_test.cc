// Three-phase commit with real xa-agent processes killed at the agent's named crash points
// (src/testing/crash_points.h, "Agent (3PC participant)") and restarted on their logs: the
// transaction must end complete everywhere or nowhere. The test process is the coordinator (a
// TransactionManager with 3PC options and a decision log of its own); the two agents serve
// MariaDB and PostgreSQL of scripts/servers.sh (label db); a missing server fails.
//
// After each case: the two rows of the transfer agree (both changed or neither), no branch of
// this test's node is left prepared in either database, and the coordinator's Commit outcome,
// when it says committed or rolled back, is what the rows show (kUnknown only where the agents
// finished the transaction on their own). docs/crash-matrix.md lists the cases (rows A1..A6).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "src/testing/forwarding_resource_manager.h"
#include "tests/agent/agent_processes.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"
#include "tests/tm/tm_db_util.h"
#include "xa/decision_log.h"
#include "xa/resource_manager.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kTable = "agent_crash_accounts";
constexpr int kAccounts = 2;
constexpr int64_t kBalance = 1000;
constexpr int64_t kAmount = 100;
// How long the agents get to finish a transaction after the restart: a few termination rounds.
constexpr auto kSettleLimit = 60s;

// A session of the application that runs `before_commit` before its first Commit: the manager
// commits only after every agent acknowledged PRE and the decision is durable, so the hook runs
// while every agent is PRE and the coordinator is alive.
class CommitHookRm final : public internal::ForwardingResourceManager {
 public:
  using ForwardingResourceManager::ForwardingResourceManager;
  std::function<void()> before_commit;

  Status Commit(const Xid& x, CommitMode m) override {
    if (before_commit) {
      std::function<void()> hook = std::move(before_commit);
      before_commit = nullptr;
      hook();
    }
    return inner().Commit(x, m);
  }
};

// One case: which agent is armed with which point; the other agent may be armed too (the
// points of an agent's own finish are reached only when the agents terminate without the
// coordinator, which the other agent's crash after its PRE record brings about).
struct CrashCase {
  std::string label;
  std::string armed_agent;
  std::string point;
  std::string other_point;  // "" when the other agent is not armed
  // The coordinator's outcome where the crash leaves it one choice; otherwise any outcome the
  // rows agree with.
  std::optional<Outcome> expected;
};

// gtest prints a parameter in the list of tests (and ctest names a test by that list).
void PrintTo(const CrashCase& c, std::ostream* out) { *out << c.label; }

std::vector<CrashCase> AllCases() {
  std::vector<CrashCase> cases;
  for (const char* agent : {kAgentMariaDb, kAgentPostgres}) {
    const std::string other = AgentPair::OtherThan(agent);
    const std::string tag =
        agent == std::string(kAgentMariaDb) ? "mariadb_agent" : "postgres_agent";
    // No vote from the armed agent: the coordinator aborts.
    cases.push_back({tag + "_after_wait_record", agent, "agent-after-wait-record", "",
                     Outcome::kRolledBack});
    // The coordinator lacks an Ack(PRE) and decides nothing; the agents decide (the other agent
    // may or may not have been sent PreCommit: under load the coordinator runs phases in turn).
    cases.push_back({tag + "_after_pre_record", agent, "agent-after-pre-record", "", {}});
    // Killed at DoCommit: the decision was durable at the coordinator first.
    cases.push_back({tag + "_after_decision_record", agent, "agent-after-decision-record", "",
                     Outcome::kCommitted});
    cases.push_back(
        {tag + "_after_fence", agent, "agent-after-fence", "agent-after-pre-record", {}});
    cases.push_back({tag + "_after_branch_finished", agent, "agent-after-branch-finished",
                     "agent-after-pre-record", {}});
  }
  return cases;
}

class AgentCrashFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    Result<DbTeller> admin = OpenTeller();
    ASSERT_THAT(admin, IsOk());
    admin_ = std::move(*admin);
    ASSERT_THAT(ResetAccounts(admin_, kTable, kAccounts, kBalance), IsOk());
    agents_.emplace(node_, scratch_);
  }

  void TearDown() override {
    manager_.reset();
    log_.reset();
    agents_.reset();
  }

  void OpenManager() {
    LogOptions log_options;
    log_options.dir = scratch_.File("tm-log");
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    log_ = std::move(*log);
    TransactionManagerOptions options;
    options.node_id = node_;
    RegisterDbFactories(options, /*read_only_optimization=*/false);
    agents_->ConfigureManager(options);
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, *log_);
    ASSERT_THAT(manager, IsOk());
    manager_ = std::move(*manager);
    Result<DbTeller> teller = OpenTeller(/*read_only_optimization=*/false);
    ASSERT_THAT(teller, IsOk());
    teller_ = std::move(*teller);
  }

  // One transfer through 3PC: MariaDB account 1 gives kAmount to PostgreSQL account 1. The
  // transaction's last_status() goes to last_status_.
  Result<Outcome> Transfer(ResourceManager& mariadb, ResourceManager& postgres) {
    Result<Transaction> txn = manager_->Begin(Protocol::kThreePhase);
    if (!txn.ok()) return txn.status();
    XA_RETURN_IF_ERROR(txn->Enlist(mariadb));
    XA_RETURN_IF_ERROR(txn->Enlist(postgres));
    Status work = TransferWork(teller_, kTable, 1, 1, kAmount);
    if (!work.ok()) XA_RETURN_IF_ERROR(txn->SetRollbackOnly(work));
    Result<Outcome> outcome = txn->Commit();
    last_status_ = txn->last_status();
    return outcome;
  }

  // Waits (bounded) until nothing of this node is prepared and the two rows agree; then checks
  // the coordinator's outcome against them.
  void ExpectAllOrNothing(const Result<Outcome>& outcome) {
    std::vector<Xid> prepared;
    int64_t mariadb = -1;
    int64_t postgres = -1;
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    bool settled = false;
    while (std::chrono::steady_clock::now() < until) {
      Result<std::vector<Xid>> scan = PreparedBranchesOf(admin_, node_);
      ASSERT_THAT(scan, IsOk());
      prepared = *scan;
      Result<int64_t> m = MariaDbBalance(admin_, kTable, 1);
      Result<int64_t> p = PostgresBalance(admin_, kTable, 1);
      ASSERT_THAT(m, IsOk());
      ASSERT_THAT(p, IsOk());
      mariadb = *m;
      postgres = *p;
      const bool agree = (mariadb == kBalance && postgres == kBalance) ||
                         (mariadb == kBalance - kAmount && postgres == kBalance + kAmount);
      if (prepared.empty() && agree) {
        settled = true;
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::string left;
    for (const Xid& x : prepared) left += " " + x.ToString();
    ASSERT_TRUE(settled) << "not complete everywhere or nowhere after "
                         << std::chrono::seconds(kSettleLimit).count()
                         << " s: MariaDB account 1 = " << mariadb << ", PostgreSQL account 1 = "
                         << postgres << " (each started at " << kBalance
                         << "), still prepared:" << (left.empty() ? " nothing" : left)
                         << "\nagent-mariadb:\n"
                         << agents_->Output(kAgentMariaDb) << "\nagent-postgres:\n"
                         << agents_->Output(kAgentPostgres);
    const bool committed = mariadb == kBalance - kAmount;
    ASSERT_THAT(outcome, IsOk());
    if (*outcome == Outcome::kCommitted) {
      EXPECT_TRUE(committed) << "the coordinator said committed, the rows say rolled back";
    } else if (*outcome == Outcome::kRolledBack) {
      EXPECT_FALSE(committed) << "the coordinator said rolled back, the rows say committed";
    } else {
      EXPECT_EQ(*outcome, Outcome::kUnknown)
          << "outcome " << OutcomeName(*outcome) << ": "
          << last_status_.ToString();
    }
    agents_->ExpectAlive(kAgentMariaDb);
    agents_->ExpectAlive(kAgentPostgres);
  }

  uint32_t node_ = 0;
  ScratchDir scratch_;
  DbTeller admin_;
  DbTeller teller_;
  Status last_status_;
  std::optional<AgentPair> agents_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
};

class AgentCrashTest : public AgentCrashFixture,
                       public ::testing::WithParamInterface<CrashCase> {};

TEST_P(AgentCrashTest, AgentKilledAtItsCrashPointAndRestartedEndsAllOrNothing) {
  const CrashCase& c = GetParam();
  const std::string other = AgentPair::OtherThan(c.armed_agent);
  std::map<std::string, std::string> armed{{c.armed_agent, c.point}};
  if (!c.other_point.empty()) armed[other] = c.other_point;
  ASSERT_NO_FATAL_FAILURE(agents_->StartBoth(armed));
  ASSERT_NO_FATAL_FAILURE(OpenManager());

  Result<Outcome> outcome = Transfer(*teller_.mariadb, *teller_.postgres);

  if (!c.other_point.empty()) {
    ASSERT_NO_FATAL_FAILURE(agents_->WaitForCrash(other));
  }
  ASSERT_NO_FATAL_FAILURE(agents_->WaitForCrash(c.armed_agent));
  ASSERT_NO_FATAL_FAILURE(agents_->Restart(c.armed_agent));
  if (!c.other_point.empty()) {
    ASSERT_NO_FATAL_FAILURE(agents_->Restart(other));
  }
  ExpectAllOrNothing(outcome);
  if (c.expected) {
    ASSERT_THAT(outcome, IsOk());
    EXPECT_EQ(OutcomeName(*outcome), OutcomeName(*c.expected)) << last_status_.ToString();
  }
}

INSTANTIATE_TEST_SUITE_P(Points, AgentCrashTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<CrashCase>& param) {
                           return param.param.label;
                         });

class AgentKilledFromOutsideTest : public AgentCrashFixture,
                                   public ::testing::WithParamInterface<const char*> {};

// Every agent acknowledged PRE and the coordinator is committing when one agent is SIGKILLed:
// the coordinator commits, the killed agent misses DoCommit, learns COMMIT after its restart
// and finishes its (already committed) branch.
TEST_P(AgentKilledFromOutsideTest, AgentKilledWhilePreAndRestartedEndsCommitted) {
  const std::string victim = GetParam();
  ASSERT_NO_FATAL_FAILURE(agents_->StartBoth());
  ASSERT_NO_FATAL_FAILURE(OpenManager());
  CommitHookRm mariadb(*teller_.mariadb);
  bool killed = false;
  mariadb.before_commit = [&] {
    agents_->Kill(victim);
    killed = true;
  };
  Result<Outcome> outcome = Transfer(mariadb, *teller_.postgres);
  ASSERT_TRUE(killed) << "the coordinator never committed the MariaDB branch: "
                      << last_status_.ToString();
  ASSERT_NO_FATAL_FAILURE(agents_->Restart(victim));
  ExpectAllOrNothing(outcome);
  ASSERT_THAT(outcome, IsOk());
  EXPECT_EQ(OutcomeName(*outcome), OutcomeName(Outcome::kCommitted)) << last_status_.ToString();
}

INSTANTIATE_TEST_SUITE_P(Victim, AgentKilledFromOutsideTest,
                         ::testing::Values(kAgentMariaDb, kAgentPostgres),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           return std::string(param.param) == kAgentMariaDb ? "mariadb_agent"
                                                                           : "postgres_agent";
                         });

}  // namespace
}  // namespace xa::test
