// A resource manager whose Recover() ran on another thread, on the real servers: its Close(), its
// destructor and its next calls on this thread return, and TransactionManager::Open() with
// recover_on_open (which scans every resource manager but the first on a thread of its own)
// returns whichever resource manager comes first by name. MariaDB Connector/ODBC 3.1.15 keeps
// its connection lock after the recover scan's multi-statement batch, on the thread that ran it;
// a connection touched after such a batch by any other thread waits forever. Each call here is
// bounded: a hang fails the test with its name.

#include <sql.h>
#include <sqlext.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/drivers/odbc/bounded_call.h"
#include "testutil/db_env.h"
#include "xa/decision_log.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/transaction_manager.h"
#include "xa/xid.h"

namespace xa::odbc {
namespace {

using test::ReturnsWithin;

constexpr std::chrono::milliseconds kBound{20000};

uint32_t RandomNode() {
  static std::mt19937 random{std::random_device{}()};
  return (random() & 0x0fffffffu) | 0x30000000u;
}

OdbcOptions OptionsFor(Dialect dialect, std::string name) {
  test::ServerAccount account =
      dialect == Dialect::kPostgres ? test::PostgresAccount() : test::MariaDbAccount();
  OdbcOptions options;
  options.rm_name = std::move(name);
  options.dsn = dialect == Dialect::kPostgres ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = dialect;
  return options;
}

std::string DialectCase(const ::testing::TestParamInfo<Dialect>& info) {
  return info.param == Dialect::kPostgres ? "Postgres" : "MariaDb";
}

class OdbcRecoverThreadTest : public ::testing::TestWithParam<Dialect> {
 protected:
  // A resource manager that has run `scans` recover scans on threads of their own (one thread
  // each, joined), never on this one.
  std::shared_ptr<OdbcResourceManager> ScannedElsewhere(int scans) {
    auto created = OdbcResourceManager::Create(OptionsFor(GetParam(), "recover-thread"));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return nullptr;
    std::shared_ptr<OdbcResourceManager> rm = std::move(created).value();
    for (int i = 0; i < scans; ++i) {
      bool scanned = false;
      EXPECT_TRUE(ReturnsWithin(kBound, [rm, &scanned] { scanned = rm->Recover().ok(); }))
          << "Recover() on a thread of its own did not return";
      EXPECT_TRUE(scanned) << "scan " << i;
    }
    return rm;
  }
};

TEST_P(OdbcRecoverThreadTest, CloseAndDestroyReturnAfterScansOnAnotherThread) {
  std::shared_ptr<OdbcResourceManager> rm = ScannedElsewhere(2);
  ASSERT_NE(rm, nullptr);
  Status closed;
  ASSERT_TRUE(ReturnsWithin(kBound, [rm, &closed] { closed = rm->Close(); }))
      << "Close() after a recover scan on another thread did not return";
  EXPECT_TRUE(closed.ok()) << closed.ToString();
  // The destructor closes again (a no-op on a closed object) and frees the handles.
  auto owner = std::make_shared<std::shared_ptr<OdbcResourceManager>>(std::move(rm));
  EXPECT_TRUE(ReturnsWithin(kBound, [owner] { owner->reset(); }))
      << "the destructor after Close() did not return";
}

TEST_P(OdbcRecoverThreadTest, DestructorReturnsAfterAScanOnAnotherThread) {
  auto owner = std::make_shared<std::shared_ptr<OdbcResourceManager>>(ScannedElsewhere(1));
  ASSERT_NE(*owner, nullptr);
  EXPECT_TRUE(ReturnsWithin(kBound, [owner] { owner->reset(); }))
      << "the destructor after a recover scan on another thread did not return";
}

TEST_P(OdbcRecoverThreadTest, SessionRunsABranchHereAfterAScanOnAnotherThread) {
  std::shared_ptr<OdbcResourceManager> rm = ScannedElsewhere(1);
  ASSERT_NE(rm, nullptr);
  XidGenerator generator(RandomNode());
  Xid xid = generator.Next().WithBranch(1);
  Status started, ended, committed;
  Result<RecoverScan> scan_here = Status(Code::kRmFail, "not run");
  ASSERT_TRUE(ReturnsWithin(kBound, [rm, xid, &started, &ended, &committed, &scan_here] {
    started = rm->Start(xid, StartFlag::kNoFlags);
    if (!started.ok()) return;
    ended = rm->End(xid, EndFlag::kSuccess);
    committed = rm->Commit(xid, CommitMode::kOnePhase);
    scan_here = rm->Recover();
  })) << "a branch on the session after a recover scan on another thread did not return";
  EXPECT_TRUE(started.ok()) << started.ToString();
  EXPECT_TRUE(ended.ok()) << ended.ToString();
  EXPECT_TRUE(committed.ok() || committed.code() == Code::kReadOnly) << committed.ToString();
  EXPECT_TRUE(scan_here.ok()) << scan_here.status().ToString();
  auto owner = std::make_shared<std::shared_ptr<OdbcResourceManager>>(std::move(rm));
  EXPECT_TRUE(ReturnsWithin(kBound, [owner] { owner->reset(); }));
}

INSTANTIATE_TEST_SUITE_P(Dialects, OdbcRecoverThreadTest,
                         ::testing::Values(Dialect::kMariaDb, Dialect::kPostgres), DialectCase);

// TransactionManager::Open with recover_on_open scans the first resource manager by name on the
// calling thread and every other one on a thread of its own, then drops those sessions on the
// calling thread.
struct ManagerCase {
  const char* name;
  Dialect first;  // named "a-..."
  Dialect second;  // named "b-...": scanned on another thread
};

class ManagerOpenTest : public ::testing::TestWithParam<ManagerCase> {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/xa-recover-thread-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    log_dir_ = std::string(pattern) + "/log";
  }
  void TearDown() override {
    if (!log_dir_.empty()) std::filesystem::remove_all(std::filesystem::path(log_dir_).parent_path());
  }
  std::string log_dir_;
};

ResourceManagerFactory FactoryFor(Dialect dialect, std::string name) {
  OdbcOptions options = OptionsFor(dialect, std::move(name));
  return [options]() -> Result<std::unique_ptr<ResourceManager>> {
    auto rm = OdbcResourceManager::Create(options);
    if (!rm.ok()) return rm.status();
    return std::unique_ptr<ResourceManager>(std::move(rm).value());
  };
}

TEST_P(ManagerOpenTest, OpenWithRecoveryReturnsWhenMariaDbOdbcIsNotFirstByName) {
  const uint32_t node = RandomNode();
  LogOptions log_options;
  log_options.dir = log_dir_;
  log_options.node_id = node;
  auto log = DecisionLog::Open(log_options);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::shared_ptr<DecisionLog> shared_log = std::move(log).value();

  TransactionManagerOptions options;
  options.node_id = node;
  options.recover_on_open = true;
  options.recovery_interval = std::chrono::milliseconds(0);
  options.resource_managers["a-first"] = FactoryFor(GetParam().first, "a-first");
  options.resource_managers["b-second"] = FactoryFor(GetParam().second, "b-second");
  ASSERT_EQ(options.resource_managers.begin()->first, "a-first");

  auto manager = std::make_shared<std::unique_ptr<TransactionManager>>();
  auto opened = std::make_shared<Status>(Status(Code::kRmFail, "not run"));
  ASSERT_TRUE(ReturnsWithin(kBound, [options, shared_log, manager, opened] {
    auto result = TransactionManager::Open(options, *shared_log);
    *opened = result.status();
    if (result.ok()) *manager = std::move(result).value();
  })) << "TransactionManager::Open with recover_on_open did not return";
  ASSERT_TRUE(opened->ok()) << opened->ToString();
  EXPECT_TRUE(ReturnsWithin(kBound, [manager, shared_log] { manager->reset(); }))
      << "the manager's destructor did not return";
}

std::string ManagerCaseName(const ::testing::TestParamInfo<ManagerCase>& case_info) {
  return case_info.param.name;
}

INSTANTIATE_TEST_SUITE_P(
    Orders, ManagerOpenTest,
    ::testing::Values(ManagerCase{"PostgresThenMariaDb", Dialect::kPostgres, Dialect::kMariaDb},
                      ManagerCase{"MariaDbThenMariaDb", Dialect::kMariaDb, Dialect::kMariaDb}),
    ManagerCaseName);

}  // namespace
}  // namespace xa::odbc
