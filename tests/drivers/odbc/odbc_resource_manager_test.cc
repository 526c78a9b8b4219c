// The ODBC resource manager against the real local servers (scripts/servers.sh start), through
// MariaDB Connector/ODBC and psqlODBC. Every test runs for both dialects.
//
// The servers are shared with other test programs: tables are prefixed odbcdrv_, each test process
// uses a random node id, and recover-scan assertions look only at this process's Xids.

#include <sql.h>
#include <sqlext.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "drivers/odbc/src/odbc_session.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "testutil/db_env.h"
#include "testutil/finish.h"
#include "testutil/race_repetitions.h"
#include "testutil/status_matchers.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/xid.h"

// MariaDB Connector/ODBC 3.1.15 loses one 1 KiB block per process once a multi-statement batch
// has run (the recover scan's "SELECT 1;XA RECOVER"); the allocation is entirely inside the driver.
// Reported here so that ASan builds stay clean; any leak with a frame of ours still fails.
extern "C" const char* __lsan_default_suppressions() { return "leak:libmaodbc.so\n"; }

namespace xa::odbc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using internal::Diagnostics;
using internal::OdbcSession;
using internal::Row;

uint32_t RandomNodeId() {
  std::random_device device;
  return device() | 0x40000000u;  // never 0, never another test's fixed id
}

uint32_t NodeId() {
  static const uint32_t node = RandomNodeId();
  return node;
}

XidGenerator& Generator() {
  static XidGenerator generator(NodeId());
  return generator;
}

std::string RandomSuffix() {
  std::random_device device;
  return std::to_string(device() % 100000000u);
}

struct Server {
  Dialect dialect;
  std::string dsn;
  test::ServerAccount account;
};

Server ServerFor(Dialect dialect) {
  if (dialect == Dialect::kPostgres) {
    return {dialect, test::OdbcPostgresDsn(), test::PostgresAccount()};
  }
  return {dialect, test::OdbcMariaDbDsn(), test::MariaDbAccount()};
}

OdbcOptions OptionsFor(const Server& server, std::string rm_name = "odbc-test") {
  OdbcOptions options;
  options.rm_name = std::move(rm_name);
  options.dsn = server.dsn;
  options.user = server.account.user;
  options.password = server.account.password;
  options.dialect = server.dialect;
  return options;
}

std::string ConnectionString(const Server& server, std::string_view extra = "") {
  return "DSN=" + server.dsn + ";UID=" + server.account.user + ";PWD=" + server.account.password +
         std::string(extra);
}

// A plain connection of the test itself: checks data from outside the branch, seeds foreign
// branches, kills sessions.
class Admin {
 public:
  explicit Admin(const Server& server, std::string_view extra = "") {
    Diagnostics diag;
    connected_ = session_.Connect(ConnectionString(server, extra), std::chrono::seconds(10), &diag);
    EXPECT_TRUE(connected_) << diag.Describe();
  }
  bool Exec(const std::string& sql) {
    Diagnostics diag;
    bool ok = session_.Execute(sql, &diag);
    last_ = diag;
    return ok;
  }
  void MustExec(const std::string& sql) { ASSERT_TRUE(Exec(sql)) << sql << ": " << last_.Describe(); }
  int64_t QueryInt(const std::string& sql) {
    std::vector<Row> rows;
    Diagnostics diag;
    bool ok = session_.Query(sql, &rows, &diag);
    EXPECT_TRUE(ok) << sql << ": " << diag.Describe();
    if (!ok || rows.empty() || rows[0].empty() || !rows[0][0].has_value()) return -1;
    return std::strtoll(rows[0][0]->c_str(), nullptr, 10);
  }
  bool SetAutocommit(bool on) {
    Diagnostics diag;
    return session_.SetAutocommit(on, &diag);
  }
  const Diagnostics& last() const { return last_; }
  OdbcSession& session() { return session_; }

 private:
  OdbcSession session_;
  bool connected_ = false;
  Diagnostics last_;
};

// The table the tests write to. OdbcDriverTest creates it in SetUp; the tests outside that
// fixture create it too, since on a fresh database (CI) they may run first.
void EnsureItemsTable(Admin& admin) {
  const std::string create =
      "CREATE TABLE IF NOT EXISTS odbcdrv_items (id BIGINT PRIMARY KEY, note VARCHAR(200))";
  if (!admin.Exec(create)) {
    // Two test processes creating the table at once: one of them loses the race.
    ASSERT_TRUE(admin.Exec(create)) << admin.last().Describe();
  }
}

// One row of the connection's own server session id: PostgreSQL backend pid, MariaDB
// CONNECTION_ID().
int64_t SessionId(OdbcResourceManager& rm) {
  SQLHSTMT stmt;
  EXPECT_TRUE(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm.connection(), &stmt)));
  std::string sql = rm.dialect() == Dialect::kPostgres ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()";
  int64_t id = -1;
  if (SQL_SUCCEEDED(SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(sql.data()), SQL_NTS)) &&
      SQL_SUCCEEDED(SQLFetch(stmt))) {
    SQLBIGINT value = 0;
    SQLLEN indicator = 0;
    if (SQL_SUCCEEDED(SQLGetData(stmt, 1, SQL_C_SBIGINT, &value, sizeof value, &indicator))) {
      id = value;
    }
  }
  SQLFreeHandle(SQL_HANDLE_STMT, stmt);
  return id;
}

// Phase 2 as a transaction manager runs it: XAER_RMFAIL means "in doubt, retry". MariaDB answers
// for a while after a disconnect or KILL as if the old session still held the branch.
Status FinishWithRetry(OdbcResourceManager& rm, const Xid& xid, test::Finish how) {
  Status status;
  for (int attempt = 0; attempt < 100; ++attempt) {
    status = how == test::Finish::kCommit ? rm.Commit(xid, CommitMode::kTwoPhase)
                                          : rm.Rollback(xid);
    if (status.code() != Code::kRmFail) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status;
}

// The suite runs on both servers, with the read-only optimisation on (the default: Prepare
// probes first, then commits or prepares) and off (PostgreSQL sends the probe and PREPARE
// TRANSACTION in one round trip).
struct DriverCase {
  Dialect dialect;
  bool read_only_optimization;
};

class OdbcDriverTest : public ::testing::TestWithParam<DriverCase> {
 protected:
  Dialect dialect() const { return GetParam().dialect; }
  bool read_only_optimization() const { return GetParam().read_only_optimization; }

  OdbcOptions Options(std::string rm_name = "odbc-test") {
    OdbcOptions options = OptionsFor(server_, std::move(rm_name));
    options.read_only_optimization = read_only_optimization();
    return options;
  }

  void SetUp() override {
    server_ = ServerFor(dialect());
    admin_ = std::make_unique<Admin>(server_);
    EnsureItemsTable(*admin_);
  }

  std::unique_ptr<OdbcResourceManager> NewRm(std::string name = "odbc-test") {
    auto rm = OdbcResourceManager::Create(Options(std::move(name)));
    EXPECT_THAT(rm, test::IsOk());
    if (!rm.ok()) return nullptr;
    EXPECT_EQ((*rm)->dialect(), dialect());
    return std::move(rm).value();
  }

  int64_t NewId() {
    static std::mt19937_64 random{std::random_device{}()};
    return static_cast<int64_t>(random() >> 2);
  }

  std::string Insert(int64_t id, std::string_view note = "x") {
    return "INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) + ", '" +
           std::string(note) + "')";
  }

  int64_t CountRows(int64_t id) {
    return admin_->QueryInt("SELECT COUNT(*) FROM odbcdrv_items WHERE id = " + std::to_string(id));
  }

  // Start, one insert, End(TMSUCCESS).
  void WorkBranch(OdbcResourceManager& rm, const Xid& xid, int64_t id) {
    ASSERT_TRUE(rm.Start(xid, StartFlag::kNoFlags).ok());
    auto inserted = rm.Execute(Insert(id));
    ASSERT_THAT(inserted, test::IsOk());
    EXPECT_EQ(*inserted, 1);
    ASSERT_TRUE(rm.End(xid, EndFlag::kSuccess).ok());
  }

  std::vector<Xid> OurPreparedXids(OdbcResourceManager& rm) {
    auto scan = rm.Recover();
    EXPECT_THAT(scan, test::IsOk());
    if (!scan.ok()) return {};
    return scan->OwnedBy(NodeId());
  }

  Server server_;
  std::unique_ptr<Admin> admin_;
};

bool Contains(const std::vector<Xid>& xids, const Xid& xid) {
  for (const Xid& x : xids) {
    if (x == xid) return true;
  }
  return false;
}

TEST_P(OdbcDriverTest, ProbeFillsServerInfo) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  const ServerInfo& info = rm->server_info();
  EXPECT_TRUE(info.xa_supported);
  EXPECT_TRUE(info.prepared_survive_disconnect);
  EXPECT_TRUE(info.may_recover);
  if (dialect() == Dialect::kPostgres) {
    EXPECT_EQ(info.product, "PostgreSQL");
    EXPECT_GE(info.major, 10);
    EXPECT_GT(info.max_prepared_transactions, 0);
  } else {
    EXPECT_EQ(info.product, "MariaDB");
    EXPECT_TRUE(info.major > 10 || (info.major == 10 && info.minor >= 5));
  }
}

TEST_P(OdbcDriverTest, PreparedBranchCommitsAndIsVisibleOnlyAfterCommit) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*rm, xid, id);
  ASSERT_TRUE(rm->Prepare(xid).ok());
  EXPECT_EQ(CountRows(id), 0) << "a prepared branch must not be visible";
  EXPECT_TRUE(Contains(OurPreparedXids(*rm), xid));
  Status committed = rm->Commit(xid, CommitMode::kTwoPhase);
  ASSERT_THAT(committed, test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
  EXPECT_FALSE(Contains(OurPreparedXids(*rm), xid));
}

TEST_P(OdbcDriverTest, PreparedBranchRollsBack) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*rm, xid, id);
  ASSERT_TRUE(rm->Prepare(xid).ok());
  Status rolled_back = rm->Rollback(xid);
  ASSERT_THAT(rolled_back, test::IsOk());
  EXPECT_EQ(CountRows(id), 0);
  EXPECT_FALSE(Contains(OurPreparedXids(*rm), xid));
}

TEST_P(OdbcDriverTest, OnePhaseCommitAndActiveRollback) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid committed_xid = Generator().Next().WithBranch(1);
  int64_t committed_id = NewId();
  WorkBranch(*rm, committed_xid, committed_id);
  Status committed = rm->Commit(committed_xid, CommitMode::kOnePhase);
  ASSERT_THAT(committed, test::IsOk());
  EXPECT_EQ(CountRows(committed_id), 1);

  Xid rolled_back_xid = Generator().Next().WithBranch(1);
  int64_t rolled_back_id = NewId();
  WorkBranch(*rm, rolled_back_xid, rolled_back_id);
  ASSERT_TRUE(rm->Rollback(rolled_back_xid).ok());
  EXPECT_EQ(CountRows(rolled_back_id), 0);

  // TMFAIL: rolled back at End, Prepare reports it.
  Xid failed_xid = Generator().Next().WithBranch(1);
  int64_t failed_id = NewId();
  ASSERT_TRUE(rm->Start(failed_xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Execute(Insert(failed_id)).ok());
  ASSERT_TRUE(rm->End(failed_xid, EndFlag::kFail).ok());
  EXPECT_EQ(rm->Prepare(failed_xid).code(), Code::kRbRollback);
  EXPECT_TRUE(rm->Rollback(failed_xid).ok());
  EXPECT_EQ(CountRows(failed_id), 0);
}

TEST_P(OdbcDriverTest, SuspendResumeAndJoinKeepOneBranch) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t first = NewId(), second = NewId();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Execute(Insert(first)).ok());
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuspend).ok());
  ASSERT_TRUE(rm->Start(xid, StartFlag::kResume).ok());
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Start(xid, StartFlag::kJoin).ok());
  ASSERT_TRUE(rm->Execute(Insert(second)).ok());
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Prepare(xid).ok());
  ASSERT_TRUE(rm->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(first), 1);
  EXPECT_EQ(CountRows(second), 1);
}

TEST_P(OdbcDriverTest, PreparedBranchSurvivesDisconnectAndCommitsFromNewConnection) {
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  {
    auto rm = NewRm();
    ASSERT_NE(rm, nullptr);
    WorkBranch(*rm, xid, id);
    ASSERT_TRUE(rm->Prepare(xid).ok());
  }  // the connection is gone
  auto fresh = NewRm();
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(Contains(OurPreparedXids(*fresh), xid));
  EXPECT_EQ(CountRows(id), 0);
  Status committed = FinishWithRetry(*fresh, xid, test::Finish::kCommit);
  ASSERT_THAT(committed, test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
  // A second commit finds nothing: XAER_NOTA, which recovery reads as "already done".
  EXPECT_EQ(fresh->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa);
}

TEST_P(OdbcDriverTest, PreparedBranchSurvivesDisconnectAndRollsBackFromNewConnection) {
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  {
    auto rm = NewRm();
    ASSERT_NE(rm, nullptr);
    WorkBranch(*rm, xid, id);
    ASSERT_TRUE(rm->Prepare(xid).ok());
  }
  auto fresh = NewRm();
  ASSERT_NE(fresh, nullptr);
  Status rolled_back = FinishWithRetry(*fresh, xid, test::Finish::kRollback);
  ASSERT_THAT(rolled_back, test::IsOk());
  EXPECT_EQ(CountRows(id), 0);
  EXPECT_FALSE(Contains(OurPreparedXids(*fresh), xid));
  EXPECT_EQ(fresh->Rollback(xid).code(), Code::kNoTa);
}

TEST_P(OdbcDriverTest, CommitFromAnotherSessionWhileThePreparerIsConnectedIsNeverFalseNota) {
  auto preparer = NewRm("odbc-preparer");
  auto other = NewRm("odbc-other");
  ASSERT_NE(preparer, nullptr);
  ASSERT_NE(other, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*preparer, xid, id);
  ASSERT_TRUE(preparer->Prepare(xid).ok());
  Status committed = other->Commit(xid, CommitMode::kTwoPhase);
  if (dialect() == Dialect::kMariaDb) {
    // MariaDB answers 1397 while the preparing session holds the branch: that is no NOTA.
    EXPECT_EQ(committed.code(), Code::kRmFail) << committed.ToString();
    EXPECT_EQ(CountRows(id), 0);
    preparer.reset();  // the branch detaches from its session
    committed = FinishWithRetry(*other, xid, test::Finish::kCommit);
  }
  ASSERT_THAT(committed, test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
}

// The detach window: MariaDB hands a prepared branch of an ending session over before it
// detaches it from InnoDB, and a phase-2 call from another session in between answers OK without
// effect (src/sql_dialect/mariadb_dialect.h). The preparer's session carries many user variables,
// which the server frees inside that window, so that the window is wide. Close() must return only
// once the server has let the session go: then every commit from another session made at once
// is applied, and the branch is no longer listed. (PostgreSQL runs the same sequence.)
TEST_P(OdbcDriverTest, CommitAtOnceAfterThePreparerClosedIsAlwaysApplied) {
  auto other = NewRm("odbc-other");
  ASSERT_NE(other, nullptr);
  std::string many_variables = "SET @v0 = 0";
  for (int v = 1; v < 5000; ++v) many_variables += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  constexpr int kIterations = 60;
  for (int i = 0; i < kIterations; ++i) {
    Xid xid = Generator().Next().WithBranch(1);
    int64_t id = NewId();
    {
      auto preparer = NewRm("odbc-preparer");
      ASSERT_NE(preparer, nullptr);
      ASSERT_TRUE(preparer->Start(xid, StartFlag::kNoFlags).ok());
      if (dialect() == Dialect::kMariaDb) {  // PostgreSQL has no detach window to widen
        auto set = preparer->Execute(many_variables);
        ASSERT_TRUE(set.ok()) << set.status().ToString();
      }
      ASSERT_TRUE(preparer->Execute(Insert(id)).ok());
      ASSERT_TRUE(preparer->End(xid, EndFlag::kSuccess).ok());
      ASSERT_TRUE(preparer->Prepare(xid).ok());
    }  // destroyed: its session is closed
    Status committed = FinishWithRetry(*other, xid, test::Finish::kCommit);
    ASSERT_TRUE(committed.ok()) << "iteration " << i << ": " << committed.ToString();
    EXPECT_FALSE(Contains(OurPreparedXids(*other), xid)) << "iteration " << i;
    ASSERT_EQ(CountRows(id), 1) << "iteration " << i
                                << ": the commit was answered OK but not applied";
  }
}

// The driver replaces a session that holds a prepared branch when the next branch starts, and
// again when phase 2 of another branch begins; the branch the replaced session held must then be
// finished only once the server has let that session go. Many user variables in the branch's
// session make the server's cleanup, and so the detach window, long enough that a commit sent
// in it (answered OK, applied nowhere) is caught in almost every iteration.
TEST_P(OdbcDriverTest, BranchOfAReplacedSessionIsCommittedOnlyOnceTheServerLetItGo) {
  std::string many_variables = "SET @v0 = 0";
  for (int v = 1; v < 200'000; ++v) {
    many_variables += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  }
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  constexpr int kIterations = 8;
  for (int i = 0; i < kIterations; ++i) {
    Xid first = Generator().Next().WithBranch(1);
    Xid second = Generator().Next().WithBranch(1);
    int64_t first_id = NewId(), second_id = NewId();
    WorkBranch(*rm, first, first_id);
    ASSERT_TRUE(rm->Prepare(first).ok());
    ASSERT_TRUE(rm->Start(second, StartFlag::kNoFlags).ok());  // replaces the session
    if (dialect() == Dialect::kMariaDb) {  // PostgreSQL has no detach window to widen
      auto set = rm->Execute(many_variables);
      ASSERT_TRUE(set.ok()) << set.status().ToString();
    }
    ASSERT_TRUE(rm->Execute(Insert(second_id)).ok());
    ASSERT_TRUE(rm->End(second, EndFlag::kSuccess).ok());
    ASSERT_TRUE(rm->Prepare(second).ok());
    // Replaces the session that holds `second`, then commits `first`.
    ASSERT_THAT(FinishWithRetry(*rm, first, test::Finish::kCommit), test::IsOk());
    Status committed = rm->Commit(second, CommitMode::kTwoPhase);
    ASSERT_THAT(committed, test::IsOk()) << "iteration " << i;
    EXPECT_FALSE(Contains(OurPreparedXids(*rm), second)) << "iteration " << i;
    ASSERT_EQ(CountRows(first_id), 1) << "iteration " << i;
    ASSERT_EQ(CountRows(second_id), 1)
        << "iteration " << i << ": the commit was answered OK but not applied";
  }
}

TEST_P(OdbcDriverTest, SessionHoldingAPreparedBranchCanStartTheNextOne) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid first = Generator().Next().WithBranch(1);
  Xid second = Generator().Next().WithBranch(1);
  int64_t first_id = NewId(), second_id = NewId();
  WorkBranch(*rm, first, first_id);
  ASSERT_TRUE(rm->Prepare(first).ok());
  WorkBranch(*rm, second, second_id);
  ASSERT_TRUE(rm->Prepare(second).ok());
  Status committed = FinishWithRetry(*rm, first, test::Finish::kCommit);
  ASSERT_THAT(committed, test::IsOk());
  ASSERT_TRUE(rm->Commit(second, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(first_id), 1);
  EXPECT_EQ(CountRows(second_id), 1);
}

TEST_P(OdbcDriverTest, RecoverListsExactlyOurBranchesAndLeavesForeignOnesAlone) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid mine1 = Generator().Next().WithBranch(1);
  Xid mine2 = Generator().Next().WithBranch(2);
  WorkBranch(*rm, mine1, NewId());
  ASSERT_TRUE(rm->Prepare(mine1).ok());
  WorkBranch(*rm, mine2, NewId());
  ASSERT_TRUE(rm->Prepare(mine2).ok());

  // Foreign branches, prepared by the test's own connection.
  std::string suffix = RandomSuffix();
  Xid foreign_format = Xid::Make(7, "foreign-" + suffix, "b").value();
  Xid other_node = XidGenerator(NodeId() ^ 0x1u).Next().WithBranch(1);
  std::vector<std::string> foreign_gids;
  if (dialect() == Dialect::kPostgres) {
    std::string canonical = ::xa::internal::postgres::XidToGid(mine1);
    foreign_gids = {"foreign-app-42-" + suffix,
                    // Almost ours: upper-case hex in the format ID is not what we write.
                    "xa1.58414D31." + canonical.substr(13) + suffix.substr(0, 1),
                    ::xa::internal::postgres::XidToGid(other_node),
                    ::xa::internal::postgres::XidToGid(foreign_format)};
    Admin seeder(server_);
    for (const std::string& gid : foreign_gids) {
      ASSERT_TRUE(seeder.SetAutocommit(false));
      seeder.MustExec(Insert(NewId(), "foreign"));
      seeder.MustExec("PREPARE TRANSACTION '" + gid + "'");
      ASSERT_TRUE(seeder.SetAutocommit(true));
    }
  } else {
    for (const Xid& xid : {foreign_format, other_node}) {
      // MariaDB keeps a prepared branch attached to its session until the session ends.
      Admin seeder(server_);
      seeder.MustExec("XA START " + ::xa::internal::mariadb::XidLiteral(xid));
      seeder.MustExec(Insert(NewId(), "foreign"));
      seeder.MustExec("XA END " + ::xa::internal::mariadb::XidLiteral(xid));
      seeder.MustExec("XA PREPARE " + ::xa::internal::mariadb::XidLiteral(xid));
    }
  }

  auto scan = rm->Recover();
  ASSERT_THAT(scan, test::IsOk());
  std::vector<Xid> ours = scan->OwnedBy(NodeId());
  ASSERT_EQ(ours.size(), 2u);
  EXPECT_TRUE(Contains(ours, mine1));
  EXPECT_TRUE(Contains(ours, mine2));
  std::vector<Xid> others = scan->NotOwnedBy(NodeId());
  EXPECT_TRUE(Contains(others, other_node));
  EXPECT_TRUE(Contains(others, foreign_format));
  if (dialect() == Dialect::kPostgres) {
    int found = 0;
    for (const UnparsedBranch& entry : scan->unparsed) {
      if (entry.raw.find(foreign_gids[0]) != std::string::npos) ++found;
      if (entry.raw.find(foreign_gids[1]) != std::string::npos) ++found;
    }
    EXPECT_EQ(found, 2) << "foreign and almost-canonical GIDs must be reported as unparsed";
  }

  // Recovery of our node: commit ours, touch nothing else.
  for (const Xid& xid : ours) {
    ASSERT_THAT(FinishWithRetry(*rm, xid, test::Finish::kCommit), test::IsOk());
  }
  auto after = rm->Recover();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->OwnedBy(NodeId()).empty());
  EXPECT_TRUE(Contains(after->NotOwnedBy(NodeId()), other_node));
  EXPECT_TRUE(Contains(after->NotOwnedBy(NodeId()), foreign_format));

  // Clean up the foreign branches.
  if (dialect() == Dialect::kPostgres) {
    for (const std::string& gid : foreign_gids) admin_->MustExec("ROLLBACK PREPARED '" + gid + "'");
  } else {
    admin_->MustExec("XA ROLLBACK " + ::xa::internal::mariadb::XidLiteral(foreign_format));
    admin_->MustExec("XA ROLLBACK " + ::xa::internal::mariadb::XidLiteral(other_node));
  }
  auto cleaned = rm->Recover();
  ASSERT_TRUE(cleaned.ok());
  EXPECT_FALSE(Contains(cleaned->prepared, other_node));
}

TEST_P(OdbcDriverTest, UnknownXidIsNota) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid unknown = Generator().Next().WithBranch(9);
  Status committed = rm->Commit(unknown, CommitMode::kTwoPhase);
  EXPECT_EQ(committed.code(), Code::kNoTa) << committed.ToString();
  EXPECT_NE(committed.message().find(unknown.ToString()), std::string::npos);
  EXPECT_EQ(rm->Rollback(unknown).code(), Code::kNoTa);
  EXPECT_EQ(rm->Forget(unknown).code(), Code::kNoTa);
}

TEST_P(OdbcDriverTest, DuplicateXidIsDupIdAndLeavesTheFirstBranchAlone) {
  auto first = NewRm("odbc-first");
  auto second = NewRm("odbc-second");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t first_id = NewId(), second_id = NewId();
  WorkBranch(*first, xid, first_id);
  ASSERT_TRUE(first->Prepare(xid).ok());

  Status duplicate;
  if (dialect() == Dialect::kPostgres) {
    // PostgreSQL finds the clash only at PREPARE TRANSACTION, and rolls the new branch back.
    WorkBranch(*second, xid, second_id);
    duplicate = second->Prepare(xid);
    // The failed branch is finished on this session: a rollback must not reach the other one.
    EXPECT_TRUE(second->Rollback(xid).ok());
  } else {
    duplicate = second->Start(xid, StartFlag::kNoFlags);
  }
  EXPECT_EQ(duplicate.code(), Code::kDupId) << duplicate.ToString();
  EXPECT_TRUE(Contains(OurPreparedXids(*second), xid)) << "the first branch must survive";
  ASSERT_TRUE(first->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(first_id), 1);
  EXPECT_EQ(CountRows(second_id), 0);
}

TEST_P(OdbcDriverTest, DeadlockRollsBackTheVictimBranch) {
  int64_t a = NewId(), b = NewId();
  admin_->MustExec(Insert(a, "a"));
  admin_->MustExec(Insert(b, "b"));
  auto rm1 = NewRm("odbc-deadlock-1");
  auto rm2 = NewRm("odbc-deadlock-2");
  ASSERT_NE(rm1, nullptr);
  ASSERT_NE(rm2, nullptr);
  Xid x1 = Generator().Next().WithBranch(1);
  Xid x2 = Generator().Next().WithBranch(1);
  auto update = [](int64_t id) {
    return "UPDATE odbcdrv_items SET note = 'locked' WHERE id = " + std::to_string(id);
  };
  ASSERT_TRUE(rm1->Start(x1, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm2->Start(x2, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm1->Execute(update(a)).ok());
  ASSERT_TRUE(rm2->Execute(update(b)).ok());
  Result<int64_t> first = int64_t{0};
  std::thread blocked([&] { first = rm1->Execute(update(b)); });  // waits for rm2
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Result<int64_t> second = rm2->Execute(update(a));  // closes the cycle
  blocked.join();

  ASSERT_NE(first.ok(), second.ok()) << "exactly one branch is the deadlock victim: "
                                     << (first.ok() ? "" : first.status().ToString()) << " / "
                                     << (second.ok() ? "" : second.status().ToString());
  OdbcResourceManager& victim = first.ok() ? *rm2 : *rm1;
  OdbcResourceManager& survivor = first.ok() ? *rm1 : *rm2;
  const Xid& victim_xid = first.ok() ? x2 : x1;
  const Xid& survivor_xid = first.ok() ? x1 : x2;
  Status failure = first.ok() ? second.status() : first.status();
  EXPECT_EQ(failure.code(), Code::kRbDeadlock) << failure.ToString();
  EXPECT_EQ(victim.End(victim_xid, EndFlag::kSuccess).code(), Code::kRbDeadlock);
  EXPECT_EQ(victim.Prepare(victim_xid).code(), Code::kRbDeadlock);
  ASSERT_TRUE(survivor.End(survivor_xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(survivor.Prepare(survivor_xid).ok());
  ASSERT_TRUE(survivor.Commit(survivor_xid, CommitMode::kTwoPhase).ok());
  EXPECT_FALSE(Contains(OurPreparedXids(survivor), victim_xid));
}

TEST_P(OdbcDriverTest, LockWaitTimeoutRollsTheBranchBack) {
  int64_t id = NewId();
  admin_->MustExec(Insert(id, "contended"));
  auto holder = NewRm("odbc-lock-holder");
  auto waiter = NewRm("odbc-lock-waiter");
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  // Session settings, outside any branch.
  ASSERT_TRUE(waiter->Execute(dialect() == Dialect::kPostgres ? "SET lock_timeout = '1s'"
                                                                : "SET SESSION innodb_lock_wait_timeout = 1")
                  .ok());
  std::string update = "UPDATE odbcdrv_items SET note = 'mine' WHERE id = " + std::to_string(id);
  Xid held = Generator().Next().WithBranch(1);
  Xid waiting = Generator().Next().WithBranch(1);
  ASSERT_TRUE(holder->Start(held, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(holder->Execute(update).ok());
  ASSERT_TRUE(waiter->Start(waiting, StartFlag::kNoFlags).ok());
  int64_t other = NewId();
  ASSERT_TRUE(waiter->Execute(Insert(other)).ok());
  Result<int64_t> timed_out = waiter->Execute(update);
  ASSERT_THAT(timed_out, test::StatusIs(Code::kRbTimeout));
  // The whole branch is rolled back, not only the statement, and its locks are gone.
  EXPECT_EQ(waiter->End(waiting, EndFlag::kSuccess).code(), Code::kRbTimeout);
  EXPECT_EQ(waiter->Prepare(waiting).code(), Code::kRbTimeout);
  EXPECT_TRUE(waiter->Rollback(waiting).ok());
  EXPECT_EQ(CountRows(other), 0);
  ASSERT_TRUE(holder->End(held, EndFlag::kSuccess).ok());
  ASSERT_TRUE(holder->Commit(held, CommitMode::kOnePhase).ok());
}

TEST_P(OdbcDriverTest, KilledSessionWhilePreparedIsRmFailAndTheBranchSurvives) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*rm, xid, id);
  ASSERT_TRUE(rm->Prepare(xid).ok());
  int64_t session = SessionId(*rm);
  ASSERT_GT(session, 0);
  if (dialect() == Dialect::kPostgres) {
    EXPECT_EQ(admin_->QueryInt("SELECT pg_terminate_backend(" + std::to_string(session) + ")::int"), 1);
    // pg_terminate_backend only signals: wait until the backend is gone.
    for (int i = 0; i < 100 && admin_->QueryInt("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = " +
                                                    std::to_string(session)) != 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } else {
    admin_->MustExec("KILL " + std::to_string(session));
  }
  Status first_try = rm->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(first_try.code(), Code::kRmFail) << first_try.ToString();
  EXPECT_EQ(CountRows(id), 0);
  // The branch survives the killed session; the same object reconnects for phase 2.
  EXPECT_TRUE(Contains(OurPreparedXids(*rm), xid));
  Status retried = FinishWithRetry(*rm, xid, test::Finish::kCommit);
  ASSERT_THAT(retried, test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
}

TEST_P(OdbcDriverTest, KilledSessionBeforePrepareLosesTheBranch) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*rm, xid, id);
  int64_t session = SessionId(*rm);
  ASSERT_GT(session, 0);
  if (dialect() == Dialect::kPostgres) {
    admin_->QueryInt("SELECT pg_terminate_backend(" + std::to_string(session) + ")::int");
    for (int i = 0; i < 100 && admin_->QueryInt("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = " +
                                                    std::to_string(session)) != 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  } else {
    admin_->MustExec("KILL " + std::to_string(session));
  }
  Status prepared = rm->Prepare(xid);
  EXPECT_EQ(prepared.code(), Code::kRmFail) << prepared.ToString();
  EXPECT_FALSE(Contains(OurPreparedXids(*rm), xid));
  EXPECT_EQ(CountRows(id), 0);
}

// ---- The 3PC fence -------------------------------------------------------------------------

// 1 while the server lists session `id` as one of the test account's, 0 when it does not.
int64_t ListedAsOurs(Admin& admin, Dialect dialect, uint64_t id, const std::string& user) {
  if (dialect == Dialect::kPostgres) {
    return admin.QueryInt("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = " +
                          std::to_string(id) + " AND usename = '" + user + "'");
  }
  return admin.QueryInt("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                        std::to_string(id) + " AND USER = '" + user + "'");
}

TEST_P(OdbcDriverTest, SessionIdIsTheIdTheServerListsForThisSession) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Result<uint64_t> id = rm->SessionId();
  ASSERT_THAT(id, test::IsOk());
  EXPECT_EQ(static_cast<int64_t>(*id), SessionId(*rm));
  EXPECT_EQ(ListedAsOurs(*admin_, dialect(), *id, server_.account.user), 1);

  // Right after Prepare, on the session that prepared (the coordinator's moment): the same id.
  Xid first = Generator().Next().WithBranch(1);
  WorkBranch(*rm, first, NewId());
  ASSERT_THAT(rm->Prepare(first), test::IsOk());
  Result<uint64_t> after_prepare = rm->SessionId();
  ASSERT_THAT(after_prepare, test::IsOk());
  EXPECT_EQ(*after_prepare, *id);

  // MariaDB: the next branch replaces the session that still holds `first`, and the id follows.
  Xid second = Generator().Next().WithBranch(1);
  WorkBranch(*rm, second, NewId());
  Result<uint64_t> next = rm->SessionId();
  ASSERT_THAT(next, test::IsOk());
  EXPECT_EQ(static_cast<int64_t>(*next), SessionId(*rm));
  EXPECT_EQ(*next != *id, dialect() == Dialect::kMariaDb);
  EXPECT_EQ(ListedAsOurs(*admin_, dialect(), *next, server_.account.user), 1);
  ASSERT_THAT(rm->Commit(second, CommitMode::kOnePhase), test::IsOk());
  ASSERT_THAT(FinishWithRetry(*rm, first, test::Finish::kCommit), test::IsOk());

  ASSERT_THAT(rm->Close(), test::IsOk());
  EXPECT_THAT(rm->SessionId(), test::StatusIs(Code::kRmFail, HasSubstr("no session")));
}

// The agent's path: A (the application's session) prepares; B (the agent's RM) fences A's
// session and finishes the branch. On MariaDB many user variables in A's session widen the
// detach window (mariadb_dialect.h), so that a commit sent before A's session is really gone
// would be answered OK and applied nowhere in many of the iterations.
TEST_P(OdbcDriverTest, FencedSessionsPreparedBranchCanBeCommittedFromAnotherSession) {
  auto fencer = NewRm("odbc-fencer");
  ASSERT_NE(fencer, nullptr);
  std::string many_variables = "SET @v0 = 0";
  for (int v = 1; v < 5000; ++v) many_variables += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  // The fence does not depend on the read-only probe: the long loop runs once per server.
  const int iterations = xa::test::RaceRepetitions(read_only_optimization() ? 200 : 20);
  std::vector<std::chrono::microseconds> times;
  for (int i = 0; i < iterations; ++i) {
    auto app = NewRm("odbc-app");
    ASSERT_NE(app, nullptr);
    Xid xid = Generator().Next().WithBranch(1);
    int64_t id = NewId();
    ASSERT_TRUE(app->Start(xid, StartFlag::kNoFlags).ok());
    if (dialect() == Dialect::kMariaDb) {
      ASSERT_THAT(app->Execute(many_variables), test::IsOk());
    }
    ASSERT_THAT(app->Execute(Insert(id)), test::IsOk());
    ASSERT_TRUE(app->End(xid, EndFlag::kSuccess).ok());
    ASSERT_THAT(app->Prepare(xid), test::IsOk());
    Result<uint64_t> session = app->SessionId();
    ASSERT_THAT(session, test::IsOk());

    const auto began = std::chrono::steady_clock::now();
    Status fenced = fencer->FenceSession(*session);
    times.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - began));
    ASSERT_THAT(fenced, test::IsOk()) << "iteration " << i;
    EXPECT_EQ(ListedAsOurs(*admin_, dialect(), *session, server_.account.user), 0);
    Status committed = fencer->Commit(xid, CommitMode::kTwoPhase);
    ASSERT_THAT(committed, test::IsOk()) << "iteration " << i;
    ASSERT_EQ(CountRows(id), 1) << "iteration " << i
                                << ": the commit after the fence was answered OK but not applied";
    EXPECT_FALSE(Contains(OurPreparedXids(*fencer), xid)) << "iteration " << i;
  }
  std::sort(times.begin(), times.end());
  std::printf("fence before commit (%s): %zu fences, p50 %.1f ms, max %.1f ms\n",
              std::string(DialectName(dialect())).c_str(), times.size(),
              static_cast<double>(times[times.size() / 2].count()) / 1000.0,
              static_cast<double>(times.back().count()) / 1000.0);
}

TEST_P(OdbcDriverTest, FencedSessionsPreparedBranchCanBeRolledBackFromAnotherSession) {
  auto fencer = NewRm("odbc-fencer");
  ASSERT_NE(fencer, nullptr);
  std::string many_variables = "SET @v0 = 0";
  for (int v = 1; v < 5000; ++v) many_variables += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  const int iterations = read_only_optimization() ? 50 : 10;
  for (int i = 0; i < iterations; ++i) {
    auto app = NewRm("odbc-app");
    ASSERT_NE(app, nullptr);
    Xid xid = Generator().Next().WithBranch(1);
    int64_t id = NewId();
    ASSERT_TRUE(app->Start(xid, StartFlag::kNoFlags).ok());
    if (dialect() == Dialect::kMariaDb) {
      ASSERT_THAT(app->Execute(many_variables), test::IsOk());
    }
    ASSERT_THAT(app->Execute(Insert(id)), test::IsOk());
    ASSERT_TRUE(app->End(xid, EndFlag::kSuccess).ok());
    ASSERT_THAT(app->Prepare(xid), test::IsOk());
    Result<uint64_t> session = app->SessionId();
    ASSERT_THAT(session, test::IsOk());
    ASSERT_THAT(fencer->FenceSession(*session), test::IsOk()) << "iteration " << i;
    ASSERT_THAT(fencer->Rollback(xid), test::IsOk()) << "iteration " << i;
    ASSERT_FALSE(Contains(OurPreparedXids(*fencer), xid)) << "iteration " << i;
    EXPECT_EQ(CountRows(id), 0) << "iteration " << i;
    // Rolled back for real: its lock on the key is gone, so the same insert goes through.
    EXPECT_TRUE(admin_->Exec(Insert(id))) << "iteration " << i << ": "
                                          << admin_->last().Describe();
    EXPECT_EQ(CountRows(id), 1) << "iteration " << i;
  }
}

TEST_P(OdbcDriverTest, FencingAnUnknownSessionSucceeds) {
  auto fencer = NewRm("odbc-fencer");
  ASSERT_NE(fencer, nullptr);
  auto gone = NewRm();
  ASSERT_NE(gone, nullptr);
  Result<uint64_t> gone_id = gone->SessionId();
  ASSERT_THAT(gone_id, test::IsOk());
  ASSERT_THAT(gone->Close(), test::IsOk());
  // A session that existed and is gone (the server lets a closed session go a moment later).
  for (int i = 0; i < 250 && ListedAsOurs(*admin_, dialect(), *gone_id, server_.account.user) != 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(ListedAsOurs(*admin_, dialect(), *gone_id, server_.account.user), 0);
  EXPECT_THAT(fencer->FenceSession(*gone_id), test::IsOk());
  // Ids no session has: beyond what the server hands out, and beyond PostgreSQL's pid range.
  EXPECT_THAT(fencer->FenceSession(1u << 30), test::IsOk());
  EXPECT_THAT(fencer->FenceSession(uint64_t{1} << 60), test::IsOk());
  EXPECT_TRUE(fencer->connected());
}

TEST_P(OdbcDriverTest, FencingOwnSessionIsRefused) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Result<uint64_t> own = rm->SessionId();
  ASSERT_THAT(own, test::IsOk());
  EXPECT_THAT(rm->FenceSession(*own), test::StatusIs(Code::kInval, HasSubstr("own session")));
  // Nothing was ended: the same session goes on working.
  EXPECT_EQ(SessionId(*rm), static_cast<int64_t>(*own));
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*rm, xid, id);
  ASSERT_THAT(rm->Prepare(xid), test::IsOk());
  ASSERT_THAT(rm->Commit(xid, CommitMode::kTwoPhase), test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
}

TEST_P(OdbcDriverTest, FencingSessionZeroIsRefused) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  EXPECT_THAT(rm->FenceSession(0), test::StatusIs(Code::kInval, HasSubstr("no fence")));
  EXPECT_TRUE(rm->connected());
}

TEST_P(OdbcDriverTest, FencingWhileABranchIsOpenOnTheSessionIsRefused) {
  auto fencer = NewRm("odbc-fencer");
  ASSERT_NE(fencer, nullptr);
  auto other = NewRm();
  ASSERT_NE(other, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(*fencer, xid, id);
  EXPECT_THAT(fencer->FenceSession(other->SessionId().value()),
              test::StatusIs(Code::kProto, HasSubstr("finish it first")));
  EXPECT_TRUE(other->connected());
  ASSERT_THAT(fencer->Commit(xid, CommitMode::kOnePhase), test::IsOk());
  EXPECT_EQ(CountRows(id), 1);
}

// What the application's RM does after its session was fenced. MariaDB: the session still
// holds the fenced branch in the driver's view, so the next Start replaces it as usual and
// goes through at once. PostgreSQL: nothing notices until the next statement, which reports
// the lost session (XAER_RMFAIL); the branch is then lost, and the next one reconnects.
TEST_P(OdbcDriverTest, FencedRmCarriesOnWithANewSession) {
  auto fencer = NewRm("odbc-fencer");
  ASSERT_NE(fencer, nullptr);
  auto app = NewRm("odbc-app");
  ASSERT_NE(app, nullptr);
  Xid fenced_xid = Generator().Next().WithBranch(1);
  int64_t fenced_id = NewId();
  WorkBranch(*app, fenced_xid, fenced_id);
  ASSERT_THAT(app->Prepare(fenced_xid), test::IsOk());
  uint64_t fenced_session = app->SessionId().value();
  ASSERT_THAT(fencer->FenceSession(fenced_session), test::IsOk());
  ASSERT_THAT(fencer->Commit(fenced_xid, CommitMode::kTwoPhase), test::IsOk());
  EXPECT_EQ(CountRows(fenced_id), 1);

  Xid next = Generator().Next().WithBranch(1);
  int64_t next_id = NewId();
  ASSERT_THAT(app->Start(next, StartFlag::kNoFlags), test::IsOk());
  if (dialect() == Dialect::kPostgres) {
    EXPECT_THAT(app->Execute(Insert(next_id)), test::StatusIs(Code::kRmFail));
    EXPECT_FALSE(app->connected());
    EXPECT_EQ(app->Prepare(next).code(), Code::kRbCommFail);
    ASSERT_THAT(app->Rollback(next), test::IsOk());
    next = Generator().Next().WithBranch(1);
    ASSERT_THAT(app->Start(next, StartFlag::kNoFlags), test::IsOk());
  }
  ASSERT_THAT(app->Execute(Insert(next_id)), test::IsOk());
  ASSERT_TRUE(app->End(next, EndFlag::kSuccess).ok());
  ASSERT_THAT(app->Prepare(next), test::IsOk());
  ASSERT_THAT(app->Commit(next, CommitMode::kTwoPhase), test::IsOk());
  EXPECT_EQ(CountRows(next_id), 1);
  Result<uint64_t> now = app->SessionId();
  ASSERT_THAT(now, test::IsOk());
  EXPECT_NE(*now, fenced_session);
  // The fenced branch was finished by the fencer: the application's RM finds nothing to do.
  EXPECT_EQ(app->Commit(fenced_xid, CommitMode::kTwoPhase).code(), Code::kNoTa);
}

// The read-only optimisation's own behaviour: instantiated only with the optimisation on.
class OdbcReadOnlyProbeTest : public OdbcDriverTest {};

TEST_P(OdbcReadOnlyProbeTest, ReadOnlyBranchIsCommittedAtPrepare) {
  ASSERT_TRUE(read_only_optimization());
  int64_t id = NewId();
  admin_->MustExec(Insert(id, "read me"));
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Execute("SELECT note FROM odbcdrv_items WHERE id = " + std::to_string(id)).ok());
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  Status vote = rm->Prepare(xid);
  EXPECT_EQ(vote.code(), Code::kReadOnly) << vote.ToString();
  EXPECT_FALSE(Contains(OurPreparedXids(*rm), xid));
  EXPECT_EQ(rm->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa);

  // The next branch of the same session that writes is prepared normally.
  Xid writer = Generator().Next().WithBranch(1);
  int64_t written = NewId();
  WorkBranch(*rm, writer, written);
  ASSERT_TRUE(rm->Prepare(writer).ok());
  EXPECT_TRUE(Contains(OurPreparedXids(*rm), writer));
  ASSERT_TRUE(rm->Commit(writer, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(written), 1);
}

TEST_P(OdbcDriverTest, HostileXidsRoundTripWithoutInjectingSql) {
  const std::string table_guard = "odbcdrv_guard_" + RandomSuffix();
  admin_->MustExec("CREATE TABLE " + table_guard + " (id INT)");
  std::vector<Xid> hostile = {
      Xid::Make(1, "'); DROP TABLE " + table_guard + "; --", "'\\\"").value(),
      Xid::Make(0x7fffffff, std::string("a\0b'c\\", 6), std::string("\xff\xfe\x00'", 4)).value(),
      Xid::Make(0, std::string(64, '\''), std::string(64, '\xff')).value(),
      Xid::Make(42, std::string("\x00", 1), "").value(),
  };
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  for (const Xid& xid : hostile) {
    SCOPED_TRACE(xid.ToString());
    int64_t id = NewId();
    WorkBranch(*rm, xid, id);
    Status prepared = rm->Prepare(xid);
    ASSERT_THAT(prepared, test::IsOk());
    auto scan = rm->Recover();
    ASSERT_THAT(scan, test::IsOk());
    EXPECT_TRUE(Contains(scan->prepared, xid)) << "the scan must find the branch";
    Status committed = rm->Commit(xid, CommitMode::kTwoPhase);
    ASSERT_THAT(committed, test::IsOk());
    EXPECT_EQ(CountRows(id), 1);
  }
  EXPECT_EQ(admin_->QueryInt("SELECT COUNT(*) FROM " + table_guard), 0) << "the table must still exist";
  admin_->MustExec("DROP TABLE " + table_guard);
}

TEST_P(OdbcDriverTest, CloseRollsBackAnOpenBranchAndOpenReconnects) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Execute(Insert(id)).ok());
  ASSERT_TRUE(rm->Close().ok());
  EXPECT_FALSE(rm->connected());
  EXPECT_EQ(rm->connection(), nullptr);
  EXPECT_EQ(CountRows(id), 0);
  ASSERT_TRUE(rm->Open().ok());
  ASSERT_TRUE(rm->Open().ok());  // idempotent
  Xid next = Generator().Next().WithBranch(1);
  int64_t next_id = NewId();
  WorkBranch(*rm, next, next_id);
  ASSERT_TRUE(rm->Commit(next, CommitMode::kOnePhase).ok());
  EXPECT_EQ(CountRows(next_id), 1);
}

TEST_P(OdbcDriverTest, StatementTimeoutKeepsEveryVerbWorking) {
  OdbcOptions options = Options("odbc-timeout");
  options.statement_timeout = std::chrono::seconds(30);
  auto created = OdbcResourceManager::Create(options);
  ASSERT_THAT(created, test::IsOk());
  OdbcResourceManager& rm = **created;
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(rm, xid, id);
  ASSERT_TRUE(rm.Prepare(xid).ok());
  EXPECT_TRUE(Contains(OurPreparedXids(rm), xid));
  ASSERT_TRUE(rm.Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(id), 1);
  Xid read_only = Generator().Next().WithBranch(1);
  ASSERT_TRUE(rm.Start(read_only, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm.End(read_only, EndFlag::kSuccess).ok());
  if (read_only_optimization()) {
    EXPECT_EQ(rm.Prepare(read_only).code(), Code::kReadOnly);
  } else {
    ASSERT_TRUE(rm.Prepare(read_only).ok());
    EXPECT_TRUE(rm.Rollback(read_only).ok());
  }
}

TEST_P(OdbcDriverTest, ConnectionStringWithoutDataSourceWorks) {
  OdbcOptions options = Options("odbc-connection-string");
  options.dsn.clear();
  const test::ServerAccount& account = server_.account;
  // Driver names of the project-local odbcinst.ini (scripts/servers.sh).
  options.connection_string =
      dialect() == Dialect::kPostgres
          ? "Driver={PostgreSQL Unicode};Servername=" + account.host +
                ";Port=" + std::to_string(account.port) + ";Database=" + account.database
          : "Driver={MariaDB};Server=" + account.host + ";Port=" + std::to_string(account.port) +
                ";Database=" + account.database;
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_THAT(rm, test::IsOk());
  Xid xid = Generator().Next().WithBranch(1);
  int64_t id = NewId();
  WorkBranch(**rm, xid, id);
  ASSERT_TRUE((*rm)->Prepare(xid).ok());
  ASSERT_TRUE((*rm)->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(CountRows(id), 1);
}

TEST_P(OdbcDriverTest, ProtocolMisuseIsRefusedWithoutTouchingTheServer) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = Generator().Next().WithBranch(1);
  Xid other = Generator().Next().WithBranch(1);
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  EXPECT_EQ(rm->Start(other, StartFlag::kNoFlags).code(), Code::kProto);
  EXPECT_EQ(rm->Prepare(xid).code(), Code::kProto);  // still active
  EXPECT_EQ(rm->Commit(xid, CommitMode::kTwoPhase).code(), Code::kProto);
  EXPECT_EQ(rm->Recover().status().code(), Code::kProto);
  EXPECT_EQ(rm->Commit(other, CommitMode::kTwoPhase).code(), Code::kProto);
  ASSERT_TRUE(rm->Rollback(xid).ok());
}

// "MariaDb", "Postgres", "MariaDbNoReadOnlyProbe", "PostgresNoReadOnlyProbe".
std::string DriverCaseName(const ::testing::TestParamInfo<DriverCase>& param) {
  std::string name = param.param.dialect == Dialect::kPostgres ? "Postgres" : "MariaDb";
  return param.param.read_only_optimization ? name : name + "NoReadOnlyProbe";
}

INSTANTIATE_TEST_SUITE_P(BothServers, OdbcDriverTest,
                         ::testing::Values(DriverCase{Dialect::kMariaDb, true},
                                           DriverCase{Dialect::kPostgres, true},
                                           DriverCase{Dialect::kMariaDb, false},
                                           DriverCase{Dialect::kPostgres, false}),
                         DriverCaseName);
INSTANTIATE_TEST_SUITE_P(BothServers, OdbcReadOnlyProbeTest,
                         ::testing::Values(DriverCase{Dialect::kMariaDb, true},
                                           DriverCase{Dialect::kPostgres, true}),
                         DriverCaseName);

TEST(OdbcPostgresDisabled, OpenIsRefusedWithTheFix) {
  Server server{Dialect::kPostgres, test::OdbcPostgresDisabledDsn(), test::PostgresAccount()};
  auto rm = OdbcResourceManager::Create(OptionsFor(server, "odbc-disabled"));
  ASSERT_THAT(rm, test::StatusIs(Code::kConfig));
  const std::string& message = rm.status().message();
  EXPECT_NE(message.find("max_prepared_transactions = 0"), std::string::npos) << message;
  EXPECT_NE(message.find("postgresql.conf"), std::string::npos) << message;
  EXPECT_NE(message.find("max_connections"), std::string::npos) << message;
  EXPECT_NE(message.find("restart"), std::string::npos) << message;
  EXPECT_EQ(message.find(server.account.password), std::string::npos);
}

TEST(OdbcPostgresDisabled, PrepareThereMapsToConfig) {
  Server server{Dialect::kPostgres, test::OdbcPostgresDisabledDsn(), test::PostgresAccount()};
  Admin admin(server);
  ASSERT_TRUE(admin.SetAutocommit(false));
  ASSERT_TRUE(admin.Exec("SELECT 1"));
  ASSERT_FALSE(admin.Exec("PREPARE TRANSACTION 'odbcdrv-disabled'"));
  const internal::DiagRecord& error = admin.last().primary();
  Status mapped = ::xa::internal::postgres::MapPostgresError(
      ::xa::internal::postgres::Step::kPrepare, error.sqlstate, error.text, "pg-disabled", nullptr);
  EXPECT_EQ(error.sqlstate, "55000");
  EXPECT_EQ(mapped.code(), Code::kConfig) << mapped.ToString();
  EXPECT_NE(mapped.message().find("max_prepared_transactions"), std::string::npos);
}

// A connection of the test to the main PostgreSQL with other credentials or database.
class PgSession {
 public:
  explicit PgSession(const std::string& connection_string) {
    Diagnostics diag;
    connected_ = session_.Connect(connection_string, std::chrono::seconds(10), &diag);
    EXPECT_TRUE(connected_) << diag.Describe();
  }
  void MustExec(const std::string& sql) {
    Diagnostics diag;
    ASSERT_TRUE(session_.Execute(sql, &diag)) << sql << ": " << diag.Describe();
  }
  void PrepareReadOnly(const std::string& gid) {
    Diagnostics diag;
    ASSERT_TRUE(session_.SetAutocommit(false, &diag));
    MustExec("SELECT 1");
    MustExec("PREPARE TRANSACTION '" + gid + "'");
    ASSERT_TRUE(session_.SetAutocommit(true, &diag));
  }

 private:
  OdbcSession session_;
  bool connected_ = false;
};

// The fence of another user's session (an administrator's, which the application's user may not
// end): refused with the database's own error and the privilege to grant, and the session lives.
struct FencePrivilegeCase {
  const char* name;
  Dialect dialect;
  const char* session_id_query;  // run on the administrator's session
  const char* database_error;    // the server's error number or SQLSTATE
  const char* privilege;         // what the message says to grant
};

class OdbcFencePrivileges : public ::testing::TestWithParam<FencePrivilegeCase> {};

TEST_P(OdbcFencePrivileges, FencingAnAdministratorsSessionSaysWhatToGrantAndLeavesItAlone) {
  const FencePrivilegeCase& c = GetParam();
  Server server = ServerFor(c.dialect);
  const std::string admin_connection =
      c.dialect == Dialect::kPostgres
          ? "DSN=" + server.dsn + ";UID=" + test::PostgresAdminUser()
          : "DSN=" + server.dsn + ";UID=" + test::MariaDbAdminUser() +
                ";SOCKET=" + test::MariaDbSocket();
  OdbcSession admin;
  Diagnostics diag;
  ASSERT_TRUE(admin.Connect(admin_connection, std::chrono::seconds(10), &diag))
      << diag.Describe();
  std::vector<Row> rows;
  ASSERT_TRUE(admin.Query(c.session_id_query, &rows, &diag)) << diag.Describe();
  ASSERT_EQ(rows.size(), 1u);
  const uint64_t session = std::stoull(rows[0][0].value_or("0"));
  auto rm = OdbcResourceManager::Create(OptionsFor(server, "odbc-fencer"));
  ASSERT_THAT(rm, test::IsOk());
  EXPECT_THAT((*rm)->FenceSession(session),
              test::StatusIs(Code::kRmError, ::testing::AllOf(HasSubstr(c.database_error),
                                                              HasSubstr(c.privilege))));
  rows.clear();
  EXPECT_TRUE(admin.Query("SELECT 1", &rows, &diag)) << "the admin session must be untouched: "
                                                     << diag.Describe();
}

INSTANTIATE_TEST_SUITE_P(
    BothServers, OdbcFencePrivileges,
    ::testing::Values(FencePrivilegeCase{"PostgresSuperuser", Dialect::kPostgres,
                                         "SELECT pg_backend_pid()", "42501", "pg_signal_backend"},
                      FencePrivilegeCase{"MariaDbRoot", Dialect::kMariaDb,
                                         "SELECT CONNECTION_ID()", "1095", "CONNECTION ADMIN"}),
    [](const ::testing::TestParamInfo<FencePrivilegeCase>& fence_case) {
      return std::string(fence_case.param.name);
    });

TEST(OdbcPostgresOwners, BranchOfAnotherRoleIsListedAndFinishingItNamesTheRole) {
  Server server = ServerFor(Dialect::kPostgres);
  // The admin role is trusted on 127.0.0.1 (scripts/servers.sh).
  PgSession admin("DSN=" + server.dsn + ";UID=" + test::PostgresAdminUser());
  Xid xid = Generator().Next().WithBranch(3);
  admin.PrepareReadOnly(::xa::internal::postgres::XidToGid(xid));

  auto rm = OdbcResourceManager::Create(OptionsFor(server, "odbc-owner"));
  ASSERT_THAT(rm, test::IsOk());
  auto scan = (*rm)->Recover();
  ASSERT_THAT(scan, test::IsOk());
  // Listed (hiding it would let recovery take it for finished), but this role may not touch it.
  EXPECT_TRUE(Contains(scan->OwnedBy(NodeId()), xid));
  Status committed = (*rm)->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(committed.code(), Code::kConfig) << committed.ToString();
  EXPECT_NE(committed.message().find("42501"), std::string::npos) << committed.message();
  EXPECT_NE(committed.message().find("superuser"), std::string::npos) << committed.message();
  auto again = (*rm)->Recover();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(Contains(again->prepared, xid)) << "a refused commit must leave the branch alone";
  admin.MustExec("ROLLBACK PREPARED '" + ::xa::internal::postgres::XidToGid(xid) + "'");
}

TEST(OdbcPostgresOwners, BranchOfAnotherDatabaseIsNotListedAndFinishingItSaysWhere) {
  Server server = ServerFor(Dialect::kPostgres);
  // Same role, database 'postgres' (CONNECT is granted to PUBLIC there).
  PgSession elsewhere(ConnectionString(server, ";Database=postgres"));
  Xid xid = Generator().Next().WithBranch(4);
  elsewhere.PrepareReadOnly(::xa::internal::postgres::XidToGid(xid));

  auto rm = OdbcResourceManager::Create(OptionsFor(server, "odbc-other-db"));
  ASSERT_THAT(rm, test::IsOk());
  auto scan = (*rm)->Recover();
  ASSERT_THAT(scan, test::IsOk());
  EXPECT_FALSE(Contains(scan->prepared, xid)) << "only this database's branches are listed";
  Status committed = (*rm)->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(committed.code(), Code::kConfig) << committed.ToString();
  EXPECT_NE(committed.message().find("another database"), std::string::npos) << committed.message();
  elsewhere.MustExec("ROLLBACK PREPARED '" + ::xa::internal::postgres::XidToGid(xid) + "'");
}

// With the read-only optimisation off, the probe and PREPARE TRANSACTION go in one batch: the
// probe must still fail in the aborted block and keep PREPARE from running.
void ExpectAbortedTransactionVotesRollback(bool read_only_optimization) {
  Server server = ServerFor(Dialect::kPostgres);
  OdbcOptions options = OptionsFor(server, "odbc-aborted");
  options.postgres_error_rollback = PostgresErrorRollback::kTransaction;
  options.read_only_optimization = read_only_optimization;
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_THAT(rm, test::IsOk());
  Admin admin(server);
  EnsureItemsTable(admin);
  Xid xid = Generator().Next().WithBranch(1);
  std::mt19937_64 random{std::random_device{}()};
  int64_t id = static_cast<int64_t>(random() >> 2);
  ASSERT_TRUE((*rm)->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE((*rm)->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                             ", 'lost')").ok());
  Result<int64_t> failed = (*rm)->Execute("SELECT 1/0");
  ASSERT_THAT(failed, test::StatusIs(Code::kRmError));
  ASSERT_TRUE((*rm)->End(xid, EndFlag::kSuccess).ok());
  Status vote = (*rm)->Prepare(xid);
  EXPECT_EQ(vote.code(), Code::kRbRollback) << vote.ToString();
  EXPECT_NE(vote.message().find("25P02"), std::string::npos) << vote.message();
  auto scan = (*rm)->Recover();
  ASSERT_TRUE(scan.ok());
  EXPECT_FALSE(Contains(scan->prepared, xid));
  EXPECT_EQ(admin.QueryInt("SELECT COUNT(*) FROM odbcdrv_items WHERE id = " + std::to_string(id)), 0);
}

TEST(OdbcPostgresErrors, AbortedTransactionVotesRollbackInsteadOfAnEmptyPrepare) {
  ExpectAbortedTransactionVotesRollback(/*read_only_optimization=*/true);
}

TEST(OdbcPostgresErrors, AbortedTransactionVotesRollbackAlsoWhenProbeAndPrepareAreBatched) {
  ExpectAbortedTransactionVotesRollback(/*read_only_optimization=*/false);
}

// psqlODBC's statement-level rollback (the default) undoes a failed statement alone, first or
// later in the branch, so the block is never left aborted: without the read-only optimisation
// PREPARE TRANSACTION then goes alone, with no probe in front, and must prepare the work that
// succeeded, all of it.
void ExpectStatementLevelRollbackKeepsTheBranchUsable(bool read_only_optimization) {
  Server server = ServerFor(Dialect::kPostgres);
  OdbcOptions options = OptionsFor(server, "odbc-statement");
  options.read_only_optimization = read_only_optimization;
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_THAT(rm, test::IsOk());
  Admin admin(server);
  EnsureItemsTable(admin);
  Xid xid = Generator().Next().WithBranch(1);
  std::mt19937_64 random{std::random_device{}()};
  int64_t first = static_cast<int64_t>(random() >> 2), second = first + 1;
  auto insert = [&](int64_t id) {
    return (*rm)->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                          ", 'kept')");
  };
  ASSERT_TRUE((*rm)->Start(xid, StartFlag::kNoFlags).ok());
  // Division by zero fails the statement only (XAER_RMERR): the application decides.
  ASSERT_THAT((*rm)->Execute("SELECT 1/0"), test::StatusIs(Code::kRmError));  // first statement
  ASSERT_TRUE(insert(first).ok());
  ASSERT_THAT((*rm)->Execute("SELECT 1/0"), test::StatusIs(Code::kRmError));  // under a savepoint
  ASSERT_TRUE(insert(second).ok());
  ASSERT_TRUE((*rm)->End(xid, EndFlag::kSuccess).ok());
  Status vote = (*rm)->Prepare(xid);
  ASSERT_THAT(vote, test::IsOk());
  auto scan = (*rm)->Recover();
  ASSERT_THAT(scan, test::IsOk());
  EXPECT_TRUE(Contains(scan->prepared, xid)) << "the branch must really be prepared";
  ASSERT_TRUE((*rm)->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(admin.QueryInt("SELECT COUNT(*) FROM odbcdrv_items WHERE id IN (" +
                           std::to_string(first) + ", " + std::to_string(second) + ")"),
            2);
}

TEST(OdbcPostgresErrors, StatementLevelRollbackKeepsTheBranchUsable) {
  ExpectStatementLevelRollbackKeepsTheBranchUsable(/*read_only_optimization=*/true);
}

TEST(OdbcPostgresErrors, StatementLevelRollbackKeepsTheBranchUsableWhenPrepareGoesAlone) {
  ExpectStatementLevelRollbackKeepsTheBranchUsable(/*read_only_optimization=*/false);
}

TEST(OdbcPostgresErrors, AutocommitSwitchedOnDuringTheBranchIsReportedNotPrepared) {
  Server server = ServerFor(Dialect::kPostgres);
  auto rm = OdbcResourceManager::Create(OptionsFor(server, "odbc-autocommit"));
  ASSERT_THAT(rm, test::IsOk());
  Xid xid = Generator().Next().WithBranch(1);
  ASSERT_TRUE((*rm)->Start(xid, StartFlag::kNoFlags).ok());
  // The misuse the header forbids: the application changes the connection's commit mode.
  ASSERT_TRUE(SQL_SUCCEEDED(SQLSetConnectAttr((*rm)->connection(), SQL_ATTR_AUTOCOMMIT,
                                              reinterpret_cast<SQLPOINTER>(SQL_AUTOCOMMIT_ON), 0)));
  ASSERT_TRUE((*rm)->End(xid, EndFlag::kSuccess).ok());
  Status vote = (*rm)->Prepare(xid);
  EXPECT_EQ(vote.code(), Code::kRmError) << vote.ToString();
  EXPECT_NE(vote.message().find("autocommit"), std::string::npos);
  auto scan = (*rm)->Recover();
  ASSERT_TRUE(scan.ok());
  EXPECT_FALSE(Contains(scan->prepared, xid));
}

TEST(OdbcPostgresErrors, SerializationFailureAtPrepareIsRbTransient) {
  Server server = ServerFor(Dialect::kPostgres);
  Admin admin(server);
  EnsureItemsTable(admin);
  std::mt19937_64 random{std::random_device{}()};
  int64_t a = static_cast<int64_t>(random() >> 2), b = static_cast<int64_t>(random() >> 2);
  admin.MustExec("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(a) + ", 'on'), (" +
                 std::to_string(b) + ", 'on')");
  auto rm1 = OdbcResourceManager::Create(OptionsFor(server, "odbc-ssi-1"));
  auto rm2 = OdbcResourceManager::Create(OptionsFor(server, "odbc-ssi-2"));
  ASSERT_TRUE(rm1.ok() && rm2.ok());
  Xid x1 = Generator().Next().WithBranch(1), x2 = Generator().Next().WithBranch(1);
  std::string both = "SELECT COUNT(*) FROM odbcdrv_items WHERE note = 'on' AND id IN (" +
                     std::to_string(a) + ", " + std::to_string(b) + ")";
  // Write skew: each branch reads both rows and switches off a different one.
  for (auto [rm, xid, id] : {std::tuple{rm1->get(), x1, a}, std::tuple{rm2->get(), x2, b}}) {
    ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
    ASSERT_TRUE(rm->Execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").ok());
    ASSERT_TRUE(rm->Execute(both).ok());
  }
  for (auto [rm, xid, id] : {std::tuple{rm1->get(), x1, a}, std::tuple{rm2->get(), x2, b}}) {
    ASSERT_TRUE(rm->Execute("UPDATE odbcdrv_items SET note = 'off' WHERE id = " + std::to_string(id)).ok());
    ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  }
  Status first = (*rm1)->Prepare(x1);
  Status second = (*rm2)->Prepare(x2);
  ASSERT_THAT(first, test::IsOk());
  EXPECT_EQ(second.code(), Code::kRbTransient) << second.ToString();
  EXPECT_NE(second.message().find("40001"), std::string::npos);
  ASSERT_TRUE((*rm1)->Commit(x1, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(admin.QueryInt("SELECT COUNT(*) FROM odbcdrv_items WHERE note = 'off' AND id IN (" +
                           std::to_string(a) + ", " + std::to_string(b) + ")"),
            1);
}

TEST(OdbcDialectDetection, AutoFindsBothServers) {
  for (Dialect dialect : {Dialect::kMariaDb, Dialect::kPostgres}) {
    OdbcOptions options = OptionsFor(ServerFor(dialect), "odbc-auto");
    options.dialect = Dialect::kAuto;
    auto rm = OdbcResourceManager::Create(options);
    ASSERT_THAT(rm, test::IsOk());
    EXPECT_EQ((*rm)->dialect(), dialect);
    Xid xid = Generator().Next().WithBranch(1);
    ASSERT_TRUE((*rm)->Start(xid, StartFlag::kNoFlags).ok());
    ASSERT_TRUE((*rm)->End(xid, EndFlag::kSuccess).ok());
    EXPECT_EQ((*rm)->Prepare(xid).code(), Code::kReadOnly);
  }
  // An explicit dialect that does not match the server is refused.
  OdbcOptions wrong = OptionsFor(ServerFor(Dialect::kPostgres), "odbc-wrong-dialect");
  wrong.dialect = Dialect::kMariaDb;
  EXPECT_EQ(OdbcResourceManager::Create(wrong).status().code(), Code::kConfig);
}

TEST(OdbcOptionsValidation, RefusesCredentialsInTheConnectionString) {
  OdbcOptions options;
  options.rm_name = "bad";
  options.connection_string = "Driver=PostgreSQL Unicode;Servername=127.0.0.1;PWD=secret";
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_THAT(rm, test::StatusIs(Code::kInval, Not(HasSubstr("secret"))));
  options.connection_string.clear();
  EXPECT_EQ(OdbcResourceManager::Create(options).status().code(), Code::kInval);  // no source
}

TEST(OdbcOptionsValidation, WrongPasswordIsConfigAndNeverEchoed) {
  Server server = ServerFor(Dialect::kPostgres);
  OdbcOptions options = OptionsFor(server, "odbc-wrong-password");
  options.password = "not-the-password-" + RandomSuffix();
  auto rm = OdbcResourceManager::Create(options);
  ASSERT_THAT(rm, test::StatusIs(Code::kConfig, Not(HasSubstr(options.password))));
}

}  // namespace
}  // namespace xa::odbc
