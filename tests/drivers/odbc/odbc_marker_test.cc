// The commit marker calls of the ODBC resource manager (OdbcResourceManager) against the real
// local servers (scripts/servers.sh start; source build/servers/env.sh): MariaDB through MariaDB
// Connector/ODBC, PostgreSQL through psqlODBC with either level of rollback on errors
// (PostgresErrorRollback). Each test makes its own marker table (odbcdrv_marker_<random>) with
// the dialect's CreateMarkerTableSql and drops it at the end, so tests never see each other's
// rows.

#include <sql.h>
#include <sqlext.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "drivers/odbc/src/odbc_session.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "src/sql_dialect/postgres_dialect.h"
#include "testutil/db_env.h"
#include "testutil/status_matchers.h"
#include "xa/marker.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/xid.h"

// MariaDB Connector/ODBC 3.1.15 loses one 1 KiB block per process once a multi-statement batch
// has run (a recover scan); the allocation is entirely inside the driver. Any leak with a frame
// of ours still fails.
extern "C" const char* __lsan_default_suppressions() { return "leak:libmaodbc.so\n"; }

namespace xa::odbc {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using internal::Diagnostics;
using internal::OdbcSession;
using internal::Row;
using test::IsOk;
using test::StatusIs;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint32_t RandomU32() {
  static std::mt19937 random{std::random_device{}()};
  return static_cast<uint32_t>(random());
}

// Random per test process, so that ListCommitMarkers sees only this process's rows.
uint32_t NodeId() {
  static const uint32_t node = RandomU32() | 0x20000000u;
  return node;
}

XidGenerator& Generator() {
  static XidGenerator generator(NodeId());
  return generator;
}

// A new marker-commit transaction of this process's node: its global Xid.
Xid NewGlobal() { return Generator().Next(Protocol::kMarkerCommit); }

struct MarkerCase {
  Dialect dialect;
  PostgresErrorRollback error_rollback;  // PostgreSQL only
};

// "MariaDb", "Postgres", "PostgresTransactionRollback".
std::string MarkerCaseName(const ::testing::TestParamInfo<MarkerCase>& param) {
  if (param.param.dialect == Dialect::kMariaDb) return "MariaDb";
  return param.param.error_rollback == PostgresErrorRollback::kTransaction
             ? "PostgresTransactionRollback"
             : "Postgres";
}

class OdbcMarkerTest : public ::testing::TestWithParam<MarkerCase> {
 protected:
  bool postgres() const { return GetParam().dialect == Dialect::kPostgres; }
  const test::ServerAccount& account() const { return account_; }

  void SetUp() override {
    account_ = postgres() ? test::PostgresAccount() : test::MariaDbAccount();
    dsn_ = postgres() ? test::OdbcPostgresDsn() : test::OdbcMariaDbDsn();
    Diagnostics diag;
    ASSERT_TRUE(admin_.Connect("DSN=" + dsn_ + ";UID=" + account_.user + ";PWD=" +
                                   account_.password,
                               std::chrono::seconds(10), &diag))
        << diag.Describe();
    // Two test processes creating the shared data table at once: one of them loses the race.
    const std::string items =
        "CREATE TABLE IF NOT EXISTS odbcdrv_items (id BIGINT PRIMARY KEY, note VARCHAR(200))";
    if (!Exec(items)) MustExec(items);
    table_ = "odbcdrv_marker_" + std::to_string(RandomU32() % 100000000u);
    if (postgres()) {
      Result<std::vector<std::string>> create =
          ::xa::internal::postgres::CreateMarkerTableSql(table_);
      ASSERT_THAT(create, IsOk());
      for (const std::string& statement : *create) MustExec(statement);
    } else {
      Result<std::string> create = ::xa::internal::mariadb::CreateMarkerTableSql(table_);
      ASSERT_THAT(create, IsOk());
      MustExec(*create);
    }
  }

  void TearDown() override {
    Exec("DROP TABLE IF EXISTS " + table_);
    for (int64_t id : ids_) Exec("DELETE FROM odbcdrv_items WHERE id = " + std::to_string(id));
  }

  OdbcOptions Options(std::string rm_name) {
    OdbcOptions options;
    options.rm_name = std::move(rm_name);
    options.dsn = dsn_;
    options.user = account_.user;
    options.password = account_.password;
    options.dialect = GetParam().dialect;
    options.postgres_error_rollback = GetParam().error_rollback;
    return options;
  }

  std::unique_ptr<OdbcResourceManager> NewRm(std::string rm_name = "odbc-marker") {
    auto rm = OdbcResourceManager::Create(Options(std::move(rm_name)));
    EXPECT_THAT(rm, IsOk());
    if (!rm.ok()) return nullptr;
    return std::move(rm).value();
  }

  bool Exec(const std::string& sql) {
    Diagnostics diag;
    bool ok = admin_.Execute(sql, &diag);
    last_ = diag;
    return ok;
  }
  void MustExec(const std::string& sql) {
    ASSERT_TRUE(Exec(sql)) << sql << ": " << last_.Describe();
  }
  std::optional<std::string> QueryText(const std::string& sql) {
    std::vector<Row> rows;
    Diagnostics diag;
    bool ok = admin_.Query(sql, &rows, &diag);
    EXPECT_TRUE(ok) << sql << ": " << diag.Describe();
    if (!ok || rows.empty() || rows[0].empty()) return std::nullopt;
    return rows[0][0];
  }
  int64_t QueryInt(const std::string& sql) {
    std::optional<std::string> text = QueryText(sql);
    return text.has_value() ? std::strtoll(text->c_str(), nullptr, 10) : -1;
  }
  int64_t CountMarkers() { return QueryInt("SELECT COUNT(*) FROM " + table_); }
  int64_t CountItems(int64_t id) {
    return QueryInt("SELECT COUNT(*) FROM odbcdrv_items WHERE id = " + std::to_string(id));
  }

  int64_t NewId() {
    static std::mt19937_64 random{std::random_device{}()};
    ids_.push_back(static_cast<int64_t>(random() >> 2));
    return ids_.back();
  }

  // Starts branch `branch` of `global` on `rm`, inserts a data row (its id) and writes the
  // marker; the branch stays active.
  int64_t StartAndWrite(OdbcResourceManager& rm, const Xid& global, uint16_t branch = 1) {
    const int64_t id = NewId();
    EXPECT_THAT(rm.Start(global.WithBranch(branch), StartFlag::kNoFlags), IsOk());
    EXPECT_THAT(rm.Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                           ", 'marker')"),
                IsOk());
    EXPECT_THAT(rm.WriteCommitMarker(table_, global), IsOk());
    return id;
  }

  void CommitWithMarker(OdbcResourceManager& rm, const Xid& global) {
    const int64_t id = StartAndWrite(rm, global);
    ASSERT_THAT(rm.End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
    ASSERT_THAT(rm.Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());
    EXPECT_EQ(CountItems(id), 1);
  }

  // Whether `rm`'s session can run a branch now: Start, a write, End, one-phase Commit.
  void ExpectBranchWorks(OdbcResourceManager& rm) {
    const Xid xid = Generator().Next().WithBranch(1);
    const int64_t id = NewId();
    ASSERT_THAT(rm.Start(xid, StartFlag::kNoFlags), IsOk());
    ASSERT_THAT(rm.Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                           ", 'next')"),
                IsOk());
    ASSERT_THAT(rm.End(xid, EndFlag::kSuccess), IsOk());
    ASSERT_THAT(rm.Commit(xid, CommitMode::kOnePhase), IsOk());
    EXPECT_EQ(CountItems(id), 1);
  }

  // Waits until session `session_id` waits for the marker row's lock (PostgreSQL:
  // pg_stat_activity says so; MariaDB: it runs the settle's insert, which without a holder takes
  // a millisecond). False after 10 s.
  bool SeenWaiting(uint64_t session_id) {
    OdbcSession looker;
    Diagnostics diag;
    if (!looker.Connect("DSN=" + dsn_ + ";UID=" + account_.user + ";PWD=" + account_.password,
                        std::chrono::seconds(10), &diag)) {
      return false;
    }
    const std::string sql =
        postgres() ? "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = " +
                         std::to_string(session_id) + " AND wait_event_type = 'Lock'"
                   : "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                         std::to_string(session_id) + " AND INFO LIKE '%INSERT IGNORE INTO " +
                         table_ + "%'";
    for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
      std::vector<Row> rows;
      if (looker.Query(sql, &rows, &diag) && rows.size() == 1 && rows[0][0] == "1") return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  // Settles `global` on `settler` while `writer` holds its marker uncommitted, and finishes the
  // writer's branch (commit or rollback) once the settle is seen waiting, plus 200 ms. Returns
  // the settle's answer; `waited` gets how long it took.
  Result<MarkerOutcome> SettleWhileHeld(OdbcResourceManager& writer, OdbcResourceManager& settler,
                                        const Xid& global, bool commit, milliseconds* waited) {
    const Xid branch = global.WithBranch(1);
    Result<uint64_t> settler_id = settler.SessionId();
    EXPECT_THAT(settler_id, IsOk());
    std::future<bool> finisher = std::async(std::launch::async, [&] {
      if (!settler_id.ok() || !SeenWaiting(*settler_id)) return false;
      std::this_thread::sleep_for(milliseconds(200));
      if (!writer.End(branch, EndFlag::kSuccess).ok()) return false;
      return commit ? writer.Commit(branch, CommitMode::kOnePhase).ok()
                    : writer.Rollback(branch).ok();
    });
    const auto began = Clock::now();
    Result<MarkerOutcome> settled =
        settler.SettleCommitMarker(table_, global, std::chrono::seconds(20));
    *waited = std::chrono::duration_cast<milliseconds>(Clock::now() - began);
    EXPECT_TRUE(finisher.get()) << "the settle was never seen waiting, or the writer's branch "
                                   "could not be finished";
    return settled;
  }

  test::ServerAccount account_;
  std::string dsn_;
  OdbcSession admin_;
  Diagnostics last_;
  std::string table_;
  std::vector<int64_t> ids_;
};

bool Has(const std::vector<MarkerRow>& rows, const Xid& global, MarkerOutcome outcome) {
  for (const MarkerRow& row : rows) {
    if (row.global == global && row.outcome == outcome) return true;
  }
  return false;
}

TEST_P(OdbcMarkerTest, CommittedMarkerBranchSettlesAsCommittedAndIsReadAndListed) {
  auto writer = NewRm();
  auto reader = NewRm("odbc-marker-reader");
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  const Xid global = NewGlobal();
  const int64_t id = StartAndWrite(*writer, global);
  // Uncommitted: a plain read neither sees it nor waits for it.
  const auto began = Clock::now();
  Result<std::vector<MarkerRow>> before = reader->ReadCommitMarkers(table_, {global});
  ASSERT_THAT(before, IsOk());
  EXPECT_TRUE(before->empty());
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(1));
  ASSERT_THAT(writer->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  ASSERT_THAT(writer->Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());
  EXPECT_EQ(CountItems(id), 1);

  Result<MarkerOutcome> settled = reader->SettleCommitMarker(table_, global, milliseconds(1000));
  ASSERT_THAT(settled, IsOk());
  EXPECT_EQ(*settled, MarkerOutcome::kCommitted);
  Result<std::vector<MarkerRow>> read = reader->ReadCommitMarkers(table_, {global, NewGlobal()});
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().global, global);
  EXPECT_EQ(read->front().outcome, MarkerOutcome::kCommitted);
  Result<std::vector<MarkerRow>> listed = reader->ListCommitMarkers(table_, NodeId(), 10);
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().global, global);
  EXPECT_EQ(QueryInt("SELECT node_id FROM " + table_), NodeId());
  EXPECT_EQ(QueryInt("SELECT format_id FROM " + table_), Xid::kMarkerFormatId);
}

TEST_P(OdbcMarkerTest, RolledBackMarkerSettlesAsAbortedAndALateWriteIsDupIdAndRollsBack) {
  auto writer = NewRm();
  auto settler = NewRm("odbc-marker-settler");
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(settler, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  ASSERT_THAT(writer->Rollback(global.WithBranch(1)), IsOk());
  Result<MarkerOutcome> settled = settler->SettleCommitMarker(table_, global, milliseconds(1000));
  ASSERT_THAT(settled, IsOk());
  EXPECT_EQ(*settled, MarkerOutcome::kAborted);
  EXPECT_EQ(settler->SettleCommitMarker(table_, global, milliseconds(1000)).value(),
            MarkerOutcome::kAborted);

  // The coordinator's marker, late: refused, and the branch is rolled back whatever the caller
  // does next. End(TMFAIL) and Rollback():
  const Xid late = global.WithBranch(2);
  ASSERT_THAT(writer->Start(late, StartFlag::kNoFlags), IsOk());
  const int64_t first = NewId();
  ASSERT_THAT(writer->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" +
                              std::to_string(first) + ", 'late')"),
              IsOk());
  EXPECT_THAT(writer->WriteCommitMarker(table_, global),
              StatusIs(Code::kDupId, AllOf(HasSubstr("settled it as aborted"), HasSubstr(table_),
                                           HasSubstr(postgres() ? "23505" : "1062"))));
  EXPECT_TRUE(writer->End(late, EndFlag::kFail).IsRollback());
  EXPECT_THAT(writer->Rollback(late), IsOk());
  EXPECT_EQ(CountItems(first), 0);
  // End(TMSUCCESS) and a one-phase Commit: still rolled back.
  const Xid later = global.WithBranch(3);
  ASSERT_THAT(writer->Start(later, StartFlag::kNoFlags), IsOk());
  const int64_t second = NewId();
  ASSERT_THAT(writer->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" +
                              std::to_string(second) + ", 'later')"),
              IsOk());
  EXPECT_THAT(writer->WriteCommitMarker(table_, global), StatusIs(Code::kDupId));
  EXPECT_TRUE(writer->End(later, EndFlag::kSuccess).IsRollback());
  EXPECT_THAT(writer->Commit(later, CommitMode::kOnePhase), StatusIs(Code::kRbRollback));
  EXPECT_EQ(CountItems(second), 0);
  Result<std::vector<MarkerRow>> read = settler->ReadCommitMarkers(table_, {global});
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().outcome, MarkerOutcome::kAborted);
  ExpectBranchWorks(*writer);
}

TEST_P(OdbcMarkerTest, SettleWaitsForTheMarkerBranchAndSeesItsCommit) {
  auto writer = NewRm();
  auto settler = NewRm("odbc-marker-settler");
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(settler, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  milliseconds waited{0};
  Result<MarkerOutcome> settled = SettleWhileHeld(*writer, *settler, global, true, &waited);
  ASSERT_THAT(settled, IsOk());
  EXPECT_EQ(*settled, MarkerOutcome::kCommitted);
  EXPECT_GE(waited, milliseconds(200));
  ExpectBranchWorks(*settler);
}

TEST_P(OdbcMarkerTest, SettleWaitsForTheMarkerBranchAndSeesItsRollback) {
  auto writer = NewRm();
  auto settler = NewRm("odbc-marker-settler");
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(settler, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  milliseconds waited{0};
  Result<MarkerOutcome> settled = SettleWhileHeld(*writer, *settler, global, false, &waited);
  ASSERT_THAT(settled, IsOk());
  EXPECT_EQ(*settled, MarkerOutcome::kAborted);
  EXPECT_GE(waited, milliseconds(200));
  ExpectBranchWorks(*settler);
}

TEST_P(OdbcMarkerTest, SettleIsRetryWhenTheWaitEndsFirstAndLeavesTheSessionAsItWas) {
  auto writer = NewRm();
  auto settler = NewRm("odbc-marker-settler");
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(settler, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  const auto began = Clock::now();
  EXPECT_THAT(settler->SettleCommitMarker(table_, global, milliseconds(1000)),
              StatusIs(Code::kRetry, AllOf(HasSubstr("settle again later"),
                                           HasSubstr(postgres() ? "55P03" : "1205"))));
  const auto took = Clock::now() - began;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  // The wait bound only the settle: the session's own setting is what it was.
  Result<int64_t> shown = settler->Execute(
      postgres() ? "SELECT 1 WHERE current_setting('lock_timeout') = '0'"
                 : "SELECT 1 FROM DUAL WHERE @@SESSION.innodb_lock_wait_timeout = "
                   "@@GLOBAL.innodb_lock_wait_timeout");
  ASSERT_THAT(shown, IsOk());
  EXPECT_EQ(*shown, 1);
  // Nothing was settled: the writer still commits, and the next settle says so.
  ASSERT_THAT(writer->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  ASSERT_THAT(writer->Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());
  EXPECT_EQ(settler->SettleCommitMarker(table_, global, milliseconds(1000)).value(),
            MarkerOutcome::kCommitted);
  ExpectBranchWorks(*settler);
}

TEST_P(OdbcMarkerTest, ListIsByNodeOldestFirstAndHonoursTheLimit) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  std::vector<Xid> ours;
  for (int i = 0; i < 3; ++i) {
    ours.push_back(NewGlobal());
    if (i == 1) {
      CommitWithMarker(*rm, ours.back());
    } else {
      ASSERT_THAT(rm->SettleCommitMarker(table_, ours.back(), milliseconds(1000)), IsOk());
    }
    if (HasFatalFailure()) return;
  }
  XidGenerator other_node(NodeId() ^ 1u);
  ASSERT_THAT(rm->SettleCommitMarker(table_, other_node.Next(Protocol::kMarkerCommit),
                                     milliseconds(1000)),
              IsOk());
  Result<std::vector<MarkerRow>> all = rm->ListCommitMarkers(table_, NodeId(), 10);
  ASSERT_THAT(all, IsOk());
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*all)[i].global, ours[i]) << i;
  EXPECT_EQ((*all)[0].outcome, MarkerOutcome::kAborted);
  EXPECT_EQ((*all)[1].outcome, MarkerOutcome::kCommitted);
  Result<std::vector<MarkerRow>> first_two = rm->ListCommitMarkers(table_, NodeId(), 2);
  ASSERT_THAT(first_two, IsOk());
  ASSERT_EQ(first_two->size(), 2u);
  EXPECT_EQ((*first_two)[0].global, ours[0]);
  EXPECT_EQ((*first_two)[1].global, ours[1]);
  Result<std::vector<MarkerRow>> none = rm->ListCommitMarkers(table_, NodeId(), 0);
  ASSERT_THAT(none, IsOk());
  EXPECT_TRUE(none->empty());
  ExpectBranchWorks(*rm);
}

TEST_P(OdbcMarkerTest, ListWithLimitZeroFailsOnAMissingTableNamingIt) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  const std::string missing = table_ + "_missing";
  EXPECT_THAT(rm->ListCommitMarkers(missing, NodeId(), 0),
              StatusIs(Code::kRmError, AllOf(HasSubstr("'" + missing + "' does not exist"),
                                             HasSubstr("docs/marker-commit.md"),
                                             HasSubstr(postgres() ? "42P01" : "1146"))));
  ExpectBranchWorks(*rm);
  // In a branch, the INSERT fails the same way, and the branch is rolled back.
  const Xid global = NewGlobal();
  ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
  const int64_t id = NewId();
  ASSERT_THAT(rm->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                          ", 'missing')"),
              IsOk());
  EXPECT_THAT(rm->WriteCommitMarker(missing, global),
              StatusIs(Code::kRmError, HasSubstr("'" + missing + "' does not exist")));
  EXPECT_TRUE(rm->End(global.WithBranch(1), EndFlag::kSuccess).IsRollback());
  EXPECT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
  EXPECT_EQ(CountItems(id), 0);
  ExpectBranchWorks(*rm);
}

TEST_P(OdbcMarkerTest, DeleteRemovesExactlyTheGivenRows) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  std::vector<Xid> globals;
  for (int i = 0; i < 4; ++i) {
    globals.push_back(NewGlobal());
    ASSERT_THAT(rm->SettleCommitMarker(table_, globals.back(), milliseconds(1000)), IsOk());
  }
  EXPECT_THAT(rm->DeleteCommitMarkers(table_, {}), IsOk());
  ASSERT_THAT(rm->DeleteCommitMarkers(table_, {globals[0], globals[2], NewGlobal()}), IsOk());
  Result<std::vector<MarkerRow>> left = rm->ReadCommitMarkers(table_, globals);
  ASSERT_THAT(left, IsOk());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_TRUE(Has(*left, globals[1], MarkerOutcome::kAborted));
  EXPECT_TRUE(Has(*left, globals[3], MarkerOutcome::kAborted));
  ExpectBranchWorks(*rm);
  // More than 500 Xids: several statements in one transaction, reads in chunks too.
  std::vector<Xid> many;
  for (int i = 0; i < 1100; ++i) many.push_back(NewGlobal());
  many[700] = globals[3];
  Result<std::vector<MarkerRow>> found = rm->ReadCommitMarkers(table_, many);
  ASSERT_THAT(found, IsOk());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().global, globals[3]);
  ASSERT_THAT(rm->DeleteCommitMarkers(table_, many), IsOk());
  EXPECT_EQ(CountMarkers(), 1);
  EXPECT_TRUE(Has(rm->ReadCommitMarkers(table_, globals).value(), globals[1],
                  MarkerOutcome::kAborted));
  ExpectBranchWorks(*rm);
}

TEST_P(OdbcMarkerTest, EveryCallOutsideABranchLeavesTheSessionReadyForTheNextBranch) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  const Xid global = NewGlobal();
  ASSERT_THAT(rm->SettleCommitMarker(table_, global, milliseconds(1000)), IsOk());
  ExpectBranchWorks(*rm);
  ASSERT_THAT(rm->ReadCommitMarkers(table_, {global}), IsOk());
  ExpectBranchWorks(*rm);
  ASSERT_THAT(rm->ListCommitMarkers(table_, NodeId(), 5), IsOk());
  ExpectBranchWorks(*rm);
  ASSERT_THAT(rm->DeleteCommitMarkers(table_, {global}), IsOk());
  ExpectBranchWorks(*rm);
  // Failed ones too: the settle's transaction is ended, autocommit is back.
  EXPECT_THAT(rm->SettleCommitMarker(table_ + "_missing", global, milliseconds(1000)),
              StatusIs(Code::kRmError));
  ExpectBranchWorks(*rm);
  std::vector<Xid> many(600, global);
  EXPECT_THAT(rm->DeleteCommitMarkers(table_ + "_missing", many), StatusIs(Code::kRmError));
  ExpectBranchWorks(*rm);
}

TEST_P(OdbcMarkerTest, CallsMadeInTheWrongStateAreProtocolErrors) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  const Xid global = NewGlobal();
  EXPECT_THAT(rm->WriteCommitMarker(table_, global),
              StatusIs(Code::kProto, HasSubstr("between Start() and End()")));
  ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
  EXPECT_THAT(rm->SettleCommitMarker(table_, global, milliseconds(1000)),
              StatusIs(Code::kProto, HasSubstr("outside any branch")));
  EXPECT_THAT(rm->ReadCommitMarkers(table_, {global}), StatusIs(Code::kProto));
  EXPECT_THAT(rm->ListCommitMarkers(table_, NodeId(), 1), StatusIs(Code::kProto));
  EXPECT_THAT(rm->DeleteCommitMarkers(table_, {global}), StatusIs(Code::kProto));
  ASSERT_THAT(rm->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  EXPECT_THAT(rm->WriteCommitMarker(table_, global), StatusIs(Code::kProto));
  ASSERT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
  EXPECT_EQ(CountMarkers(), 0);
  // A session that prepared a branch settles too (on MariaDB a new session, as before Start),
  // and the prepared branch is then committed as usual.
  const Xid prepared = Generator().Next().WithBranch(1);
  const int64_t id = NewId();
  ASSERT_THAT(rm->Start(prepared, StartFlag::kNoFlags), IsOk());
  ASSERT_THAT(rm->Execute("INSERT INTO odbcdrv_items (id, note) VALUES (" + std::to_string(id) +
                          ", 'prepared')"),
              IsOk());
  ASSERT_THAT(rm->End(prepared, EndFlag::kSuccess), IsOk());
  ASSERT_THAT(rm->Prepare(prepared), IsOk());
  EXPECT_EQ(rm->SettleCommitMarker(table_, global, milliseconds(1000)).value(),
            MarkerOutcome::kAborted);
  Status committed;
  for (int attempt = 0; attempt < 100; ++attempt) {
    committed = rm->Commit(prepared, CommitMode::kTwoPhase);
    if (committed.code() != Code::kRmFail) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_THAT(committed, IsOk());
  EXPECT_EQ(CountItems(id), 1);
}

// One value that the session `rm` itself reads (raw ODBC on its connection).
std::string QueryOnRm(OdbcResourceManager& rm, const std::string& sql) {
  SQLHSTMT stmt = SQL_NULL_HSTMT;
  if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, rm.connection(), &stmt))) return "?";
  std::string value = "?";
  std::string text = sql;
  if (SQL_SUCCEEDED(SQLExecDirect(stmt, reinterpret_cast<SQLCHAR*>(text.data()), SQL_NTS)) &&
      SQL_SUCCEEDED(SQLFetch(stmt))) {
    char buffer[64] = {0};
    SQLLEN indicator = 0;
    if (SQL_SUCCEEDED(SQLGetData(stmt, 1, SQL_C_CHAR, buffer, sizeof buffer, &indicator))) {
      value = buffer;
    }
  }
  SQLFreeHandle(SQL_HANDLE_STMT, stmt);
  return value;
}

TEST_P(OdbcMarkerTest, TableNamesThatAreNoPlainIdentifierAreRefusedBeforeAnySql) {
  auto rm = NewRm();
  ASSERT_NE(rm, nullptr);
  const Xid global = NewGlobal();
  Result<uint64_t> session = rm->SessionId();
  ASSERT_THAT(session, IsOk());
  static const std::string kQuestionsSql =
      "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = "
      "'QUESTIONS'";
  // Whether the session ran anything since the last look: PostgreSQL's pg_stat_activity keeps
  // the text of its last statement (read from another session); MariaDB counts its statements
  // (read on the session itself, which counts that read too).
  auto ran_since = [&](const std::string& before) {
    if (postgres()) {
      return QueryText("SELECT query FROM pg_stat_activity WHERE pid = " +
                       std::to_string(*session)) != before;
    }
    const std::string now = QueryOnRm(*rm, kQuestionsSql);
    EXPECT_NE(now, "?");
    return std::strtoll(now.c_str(), nullptr, 10) != std::strtoll(before.c_str(), nullptr, 10) + 1;
  };
  auto look = [&]() -> std::string {
    if (postgres()) {
      const std::string probe = "SELECT 1 AS marker_probe";
      EXPECT_THAT(rm->Execute(probe), IsOk());
      return probe;
    }
    return QueryOnRm(*rm, kQuestionsSql);
  };
  for (const std::string& table :
       std::vector<std::string>{"bad name", "t'x", table_ + "; DROP TABLE " + table_, ""}) {
    SCOPED_TRACE(table);
    std::string before = look();
    EXPECT_THAT(rm->SettleCommitMarker(table, global, milliseconds(1000)), StatusIs(Code::kInval));
    EXPECT_THAT(rm->ReadCommitMarkers(table, {global}), StatusIs(Code::kInval));
    EXPECT_THAT(rm->ListCommitMarkers(table, NodeId(), 0), StatusIs(Code::kInval));
    EXPECT_THAT(rm->DeleteCommitMarkers(table, {global}), StatusIs(Code::kInval));
    EXPECT_FALSE(ran_since(before));
    ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
    // PostgreSQL: Start sent nothing (psqlODBC opens the transaction with the first statement).
    before = postgres() ? before : look();
    EXPECT_THAT(rm->WriteCommitMarker(table, global),
                StatusIs(Code::kInval, HasSubstr("nothing was sent")));
    EXPECT_FALSE(ran_since(before));
    ASSERT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
  }
  EXPECT_EQ(CountMarkers(), 0);
  ExpectBranchWorks(*rm);
}

INSTANTIATE_TEST_SUITE_P(
    BothServers, OdbcMarkerTest,
    ::testing::Values(MarkerCase{Dialect::kMariaDb, PostgresErrorRollback::kStatement},
                      MarkerCase{Dialect::kPostgres, PostgresErrorRollback::kStatement},
                      MarkerCase{Dialect::kPostgres, PostgresErrorRollback::kTransaction}),
    MarkerCaseName);

}  // namespace
}  // namespace xa::odbc
