// The commit marker calls of the Connector/C++ driver (MySqlResourceManager) against the real
// local MariaDB (scripts/servers.sh start; source build/servers/env.sh). Each test makes its own
// marker table (mysqldrv_marker_<random>) with the dialect's CreateMarkerTableSql and drops it at
// the end, so tests never see each other's rows.

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "mysql_test_util.h"
#include "src/sql_dialect/mariadb_dialect.h"
#include "testutil/status_matchers.h"
#include "xa/marker.h"

namespace xa::mysql {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::IsOk;
using test::StatusIs;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class MysqlMarkerTest : public MysqlTest {
 protected:
  void SetUp() override {
    MysqlTest::SetUp();
    if (HasFatalFailure()) return;
    table_ = "mysqldrv_marker_" + std::to_string(RandomU32() % 100000000u);
    Result<std::string> create = internal::mariadb::CreateMarkerTableSql(table_);
    ASSERT_THAT(create, IsOk());
    MustRun(*verifier_, *create);
  }

  void TearDown() override {
    if (verifier_ != nullptr) RunSql(*verifier_, "DROP TABLE IF EXISTS " + table_);
    MysqlTest::TearDown();
  }

  // A new marker-commit transaction of this process's node: its global Xid.
  static Xid NewGlobal() { return Generator().Next(Protocol::kMarkerCommit); }

  // Starts the marker branch of `global` on `rm`, writes a data row and the marker; the branch
  // stays ACTIVE.
  void StartAndWrite(MySqlResourceManager& rm, const Xid& global, uint16_t branch = 1) {
    ASSERT_THAT(rm.Start(global.WithBranch(branch), StartFlag::kNoFlags), IsOk());
    Insert(rm, NewKey(), 1);
    ASSERT_THAT(rm.WriteCommitMarker(table_, global), IsOk());
  }

  // The marker branch of `global`, committed in one phase with its marker.
  void CommitWithMarker(MySqlResourceManager& rm, const Xid& global) {
    StartAndWrite(rm, global);
    ASSERT_THAT(rm.End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
    ASSERT_THAT(rm.Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());
  }

  // Whether `rm`'s session can run a branch now: Start, a write, End, one-phase Commit.
  void ExpectBranchWorks(MySqlResourceManager& rm) {
    Xid xid = NewXid();
    ASSERT_THAT(rm.Start(xid, StartFlag::kNoFlags), IsOk());
    const std::string key = NewKey();
    Insert(rm, key, 7);
    ASSERT_THAT(rm.End(xid, EndFlag::kSuccess), IsOk());
    ASSERT_THAT(rm.Commit(xid, CommitMode::kOnePhase), IsOk());
    EXPECT_EQ(ValueOf(key), 7);
  }

  // Waits until session `session_id` runs the settle's insert (it then waits for the row's
  // lock: without a holder the statement takes a millisecond). False after 10 s.
  bool SeenWaiting(uint64_t session_id) {
    std::unique_ptr<sql::Connection> looker = Connect(false);
    if (looker == nullptr) return false;
    const std::string sql =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
        std::to_string(session_id) + " AND INFO LIKE '%INSERT IGNORE INTO " + table_ + "%'";
    for (auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
      if (QueryInt(*looker, sql) == 1) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

  // Settles `global` on `settler` while `writer` holds its marker uncommitted, and finishes the
  // writer's branch (commit or rollback) once the settle is seen waiting plus 200 ms. Returns
  // the settle's answer; `waited` gets how long the settle took.
  Result<MarkerOutcome> SettleWhileHeld(MySqlResourceManager& writer, MySqlResourceManager& settler,
                                        const Xid& global, bool commit, milliseconds* waited) {
    const Xid branch = global.WithBranch(1);
    const uint64_t settler_id = settler.connection_id();
    std::future<bool> finisher = std::async(std::launch::async, [&] {
      if (!SeenWaiting(settler_id)) return false;
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

  std::string table_;
};

bool Has(const std::vector<MarkerRow>& rows, const Xid& global, MarkerOutcome outcome) {
  for (const MarkerRow& row : rows) {
    if (row.global == global && row.outcome == outcome) return true;
  }
  return false;
}

TEST_F(MysqlMarkerTest, CommittedMarkerBranchSettlesAsCommittedAndIsReadAndListed) {
  auto writer = OpenRm();
  auto reader = OpenRm(Options("mysqldrv-marker-reader"));
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  // Uncommitted: a plain read does not see it and does not wait for it.
  const auto began = Clock::now();
  Result<std::vector<MarkerRow>> before = reader->ReadCommitMarkers(table_, {global});
  ASSERT_THAT(before, IsOk());
  EXPECT_TRUE(before->empty());
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(1));
  ASSERT_THAT(writer->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  ASSERT_THAT(writer->Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());

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
  EXPECT_EQ(QueryInt(*verifier_, "SELECT node_id FROM " + table_), NodeId());
}

TEST_F(MysqlMarkerTest, RolledBackMarkerSettlesAsAbortedAndALateWriteIsDupId) {
  auto writer = OpenRm();
  ASSERT_NE(writer, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  ASSERT_THAT(writer->Rollback(global.WithBranch(1)), IsOk());

  auto settler = OpenRm(Options("mysqldrv-marker-settler"));
  ASSERT_NE(settler, nullptr);
  Result<MarkerOutcome> settled = settler->SettleCommitMarker(table_, global, milliseconds(1000));
  ASSERT_THAT(settled, IsOk());
  EXPECT_EQ(*settled, MarkerOutcome::kAborted);
  // Settling again reads the same row.
  EXPECT_EQ(settler->SettleCommitMarker(table_, global, milliseconds(1000)).value(),
            MarkerOutcome::kAborted);

  // The coordinator's marker, late, in a new branch: refused, and that branch can only roll back.
  const Xid late = global.WithBranch(2);
  ASSERT_THAT(writer->Start(late, StartFlag::kNoFlags), IsOk());
  const std::string key = NewKey();
  Insert(*writer, key, 5);
  EXPECT_THAT(writer->WriteCommitMarker(table_, global),
              StatusIs(Code::kDupId, AllOf(HasSubstr("settled it as aborted"),
                                           HasSubstr(table_), HasSubstr("1062"))));
  ASSERT_THAT(writer->End(late, EndFlag::kSuccess), IsOk());
  EXPECT_THAT(writer->Commit(late, CommitMode::kOnePhase), StatusIs(Code::kRbRollback));
  EXPECT_EQ(ValueOf(key), std::nullopt);
  Result<std::vector<MarkerRow>> read = settler->ReadCommitMarkers(table_, {global});
  ASSERT_THAT(read, IsOk());
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().outcome, MarkerOutcome::kAborted);
  ExpectBranchWorks(*writer);
}

TEST_F(MysqlMarkerTest, SettleWaitsForTheMarkerBranchAndSeesItsCommit) {
  auto writer = OpenRm();
  auto settler = OpenRm(Options("mysqldrv-marker-settler"));
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

TEST_F(MysqlMarkerTest, SettleWaitsForTheMarkerBranchAndSeesItsRollback) {
  auto writer = OpenRm();
  auto settler = OpenRm(Options("mysqldrv-marker-settler"));
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

TEST_F(MysqlMarkerTest, SettleIsRetryWhenTheWaitEndsFirstAndLeavesTheSessionAsItWas) {
  auto writer = OpenRm();
  auto settler = OpenRm(Options("mysqldrv-marker-settler"));
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(settler, nullptr);
  const Xid global = NewGlobal();
  StartAndWrite(*writer, global);
  const auto began = Clock::now();
  EXPECT_THAT(settler->SettleCommitMarker(table_, global, milliseconds(1000)),
              StatusIs(Code::kRetry, AllOf(HasSubstr("settle again later"), HasSubstr("1205"))));
  const auto took = Clock::now() - began;
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  // SET STATEMENT bounded that statement only: the session keeps its own setting (50 s).
  std::unique_ptr<sql::Statement> statement(settler->connection().createStatement());
  std::unique_ptr<sql::ResultSet> rows(
      statement->executeQuery("SELECT @@SESSION.innodb_lock_wait_timeout"));
  ASSERT_TRUE(rows->next());
  EXPECT_EQ(rows->getInt64(1), QueryInt(*verifier_, "SELECT @@GLOBAL.innodb_lock_wait_timeout"));
  rows.reset();
  statement.reset();
  // Nothing was settled: the writer still commits, and the next settle says so.
  ASSERT_THAT(writer->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  ASSERT_THAT(writer->Commit(global.WithBranch(1), CommitMode::kOnePhase), IsOk());
  EXPECT_EQ(settler->SettleCommitMarker(table_, global, milliseconds(1000)).value(),
            MarkerOutcome::kCommitted);
  ExpectBranchWorks(*settler);
}

TEST_F(MysqlMarkerTest, ListIsByNodeOldestFirstAndHonoursTheLimit) {
  auto rm = OpenRm();
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

TEST_F(MysqlMarkerTest, ListWithLimitZeroFailsOnAMissingTableNamingIt) {
  auto rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  const std::string missing = table_ + "_missing";
  EXPECT_THAT(rm->ListCommitMarkers(missing, NodeId(), 0),
              StatusIs(Code::kRmError, AllOf(HasSubstr("'" + missing + "' does not exist"),
                                             HasSubstr("docs/marker-commit.md"),
                                             HasSubstr("1146"))));
  // In a database the user has no privilege on, MariaDB does not say whether it exists (1142).
  EXPECT_THAT(rm->ListCommitMarkers("no_such_db_xa." + table_, NodeId(), 0),
              StatusIs(Code::kRmError, AllOf(HasSubstr("1142"), HasSubstr("GRANT SELECT"),
                                             HasSubstr("database that does not exist"))));
  // In a branch, the INSERT fails the same way, and the branch can only roll back.
  const Xid global = NewGlobal();
  ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
  EXPECT_THAT(rm->WriteCommitMarker(missing, global),
              StatusIs(Code::kRmError, HasSubstr("'" + missing + "' does not exist")));
  ASSERT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
  ExpectBranchWorks(*rm);
}

TEST_F(MysqlMarkerTest, WithoutThePrivilegeTheMessageSaysWhatToGrant) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  const std::string user = "xa_marker_ro_" + std::to_string(RandomU32() % 1000000u);
  MustRun(*admin, "CREATE USER '" + user + "'@'%' IDENTIFIED BY 'pw-" + user + "'");
  MustRun(*admin, "GRANT SELECT ON " + test::MariaDbAccount().database + "." + table_ + " TO '" +
                      user + "'@'%'");
  MySqlOptions options = Options("mysqldrv-marker-readonly");
  options.user = user;
  options.password = "pw-" + user;
  auto rm = OpenRm(options);
  if (rm != nullptr) {
    EXPECT_THAT(rm->ListCommitMarkers(table_, NodeId(), 0), IsOk());
    EXPECT_THAT(rm->SettleCommitMarker(table_, NewGlobal(), milliseconds(1000)),
                StatusIs(Code::kRmError,
                         AllOf(HasSubstr("needs the INSERT and SELECT privilege"),
                               HasSubstr("GRANT SELECT, INSERT, DELETE ON " + table_ + " TO '" +
                                         user + "'"))));
    EXPECT_THAT(rm->DeleteCommitMarkers(table_, {NewGlobal()}),
                StatusIs(Code::kRmError, HasSubstr("needs the DELETE")));
  }
  rm.reset();
  MustRun(*admin, "DROP USER '" + user + "'@'%'");
}

TEST_F(MysqlMarkerTest, DeleteRemovesExactlyTheGivenRows) {
  auto rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::vector<Xid> globals;
  for (int i = 0; i < 4; ++i) {
    globals.push_back(NewGlobal());
    ASSERT_THAT(rm->SettleCommitMarker(table_, globals.back(), milliseconds(1000)), IsOk());
  }
  EXPECT_THAT(rm->DeleteCommitMarkers(table_, {}), IsOk());
  // One statement: rows 0 and 2, and one that has no row.
  ASSERT_THAT(rm->DeleteCommitMarkers(table_, {globals[0], globals[2], NewGlobal()}), IsOk());
  Result<std::vector<MarkerRow>> left = rm->ReadCommitMarkers(table_, globals);
  ASSERT_THAT(left, IsOk());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_TRUE(Has(*left, globals[1], MarkerOutcome::kAborted));
  EXPECT_TRUE(Has(*left, globals[3], MarkerOutcome::kAborted));
  ExpectBranchWorks(*rm);
  // Several statements in one transaction (more than 500 Xids), reads in chunks too.
  std::vector<Xid> many;
  for (int i = 0; i < 1100; ++i) many.push_back(NewGlobal());
  many[700] = globals[3];
  Result<std::vector<MarkerRow>> found = rm->ReadCommitMarkers(table_, many);
  ASSERT_THAT(found, IsOk());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().global, globals[3]);
  ASSERT_THAT(rm->DeleteCommitMarkers(table_, many), IsOk());
  EXPECT_EQ(QueryInt(*verifier_, "SELECT COUNT(*) FROM " + table_), 1);
  EXPECT_TRUE(Has(rm->ReadCommitMarkers(table_, globals).value(), globals[1],
                  MarkerOutcome::kAborted));
  ExpectBranchWorks(*rm);
}

TEST_F(MysqlMarkerTest, EveryCallOutsideABranchLeavesTheSessionReadyForTheNextBranch) {
  auto rm = OpenRm();
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
  // A failed settle (missing table) too.
  EXPECT_THAT(rm->SettleCommitMarker(table_ + "_missing", global, milliseconds(1000)),
              StatusIs(Code::kRmError));
  ExpectBranchWorks(*rm);
}

TEST_F(MysqlMarkerTest, CallsMadeInTheWrongStateAreProtocolErrors) {
  auto rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  const Xid global = NewGlobal();
  // No branch: no marker to write.
  EXPECT_THAT(rm->WriteCommitMarker(table_, global),
              StatusIs(Code::kProto, HasSubstr("between Start() and End()")));
  ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
  // In a branch: the other calls run outside any.
  EXPECT_THAT(rm->SettleCommitMarker(table_, global, milliseconds(1000)),
              StatusIs(Code::kProto, HasSubstr("outside any branch")));
  EXPECT_THAT(rm->ReadCommitMarkers(table_, {global}), StatusIs(Code::kProto));
  EXPECT_THAT(rm->ListCommitMarkers(table_, NodeId(), 1), StatusIs(Code::kProto));
  EXPECT_THAT(rm->DeleteCommitMarkers(table_, {global}), StatusIs(Code::kProto));
  ASSERT_THAT(rm->End(global.WithBranch(1), EndFlag::kSuccess), IsOk());
  // Ended: too late for the marker.
  EXPECT_THAT(rm->WriteCommitMarker(table_, global), StatusIs(Code::kProto));
  ASSERT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
  // Holding a prepared branch: MariaDB would refuse the table.
  const Xid prepared = NewXid();
  PrepareInsert(*rm, prepared, NewKey(), 3);
  EXPECT_THAT(rm->SettleCommitMarker(table_, global, milliseconds(1000)),
              StatusIs(Code::kProto, HasSubstr(prepared.ToString())));
  ASSERT_THAT(rm->Rollback(prepared), IsOk());
  EXPECT_EQ(QueryInt(*verifier_, "SELECT COUNT(*) FROM " + table_), 0);
}

TEST_F(MysqlMarkerTest, TableNamesThatAreNoPlainIdentifierAreRefusedBeforeAnySql) {
  auto rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  const Xid global = NewGlobal();
  auto questions = [&] {
    std::unique_ptr<sql::Statement> statement(rm->connection().createStatement());
    std::unique_ptr<sql::ResultSet> rows(
        statement->executeQuery("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                                "WHERE VARIABLE_NAME = 'QUESTIONS'"));
    return rows->next() ? rows->getInt64(1) : -1;
  };
  for (const std::string& table :
       std::vector<std::string>{"bad name", "t'x", table_ + "; DROP TABLE " + table_, ""}) {
    SCOPED_TRACE(table);
    const int64_t before = questions();
    EXPECT_THAT(rm->SettleCommitMarker(table, global, milliseconds(1000)), StatusIs(Code::kInval));
    EXPECT_THAT(rm->ReadCommitMarkers(table, {global}), StatusIs(Code::kInval));
    EXPECT_THAT(rm->ListCommitMarkers(table, NodeId(), 0), StatusIs(Code::kInval));
    EXPECT_THAT(rm->DeleteCommitMarkers(table, {global}), StatusIs(Code::kInval));
    ASSERT_THAT(rm->Start(global.WithBranch(1), StartFlag::kNoFlags), IsOk());
    EXPECT_THAT(rm->WriteCommitMarker(table, global),
                StatusIs(Code::kInval, HasSubstr("nothing was sent")));
    ASSERT_THAT(rm->Rollback(global.WithBranch(1)), IsOk());
    // The session ran only the XA statements (START, END, ROLLBACK) and this count's own query.
    EXPECT_EQ(questions() - before, 4);
  }
  EXPECT_EQ(QueryInt(*verifier_, "SELECT COUNT(*) FROM " + table_), 0);
}

}  // namespace
}  // namespace xa::mysql
