// Integration tests of xa::mysql::MySqlResourceManager against the real local MariaDB
// (scripts/servers.sh start; source build/servers/env.sh). A missing server fails the tests.
//
// The server is shared with other tests: rows live in our own table (mysqldrv_accounts) under
// keys unique to this process, and every Xid comes from a generator with a random node id, so a
// recover scan is filtered to this process's branches (RecoverScan::OwnedBy).

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/drivers/mysql/mysql_test_util.h"
#include "tests/testutil/race_repetitions.h"
#include "tests/testutil/status_matchers.h"
#include "xa/logging.h"

namespace xa::mysql {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using test::IsOk;
using test::StatusIs;

// ---- Capability probe ----------------------------------------------------------------------

TEST_F(MysqlTest, ProbeFillsServerInfo) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  const ServerInfo& info = rm->server_info();
  std::optional<int64_t> id = QueryInt(rm->connection(), "SELECT CONNECTION_ID()");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(rm->connection_id(), static_cast<uint64_t>(*id));
  EXPECT_EQ(info.product, "MariaDB");
  EXPECT_NE(info.version.find("MariaDB"), std::string::npos);
  EXPECT_GE(info.major * 100 + info.minor, 1005);
  EXPECT_EQ(info.version.rfind(std::to_string(info.major) + "." + std::to_string(info.minor) +
                                   "." + std::to_string(info.patch),
                               0),
            0u);
  EXPECT_TRUE(info.xa_supported);
  EXPECT_TRUE(info.prepared_survive_disconnect);
  EXPECT_TRUE(info.may_recover);
  EXPECT_EQ(info.max_prepared_transactions, -1);
  EXPECT_EQ(rm->name(), "mysqldrv-test");
}

TEST_F(MysqlTest, SessionRunsWithTheConfiguredIsolationAndAutocommit) {
  MySqlOptions options = Options();
  options.isolation = IsolationLevel::kSerializable;
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(options);
  ASSERT_NE(rm, nullptr);
  std::unique_ptr<sql::Statement> statement(rm->connection().createStatement());
  std::unique_ptr<sql::ResultSet> rows(
      statement->executeQuery("SELECT @@session.tx_isolation, @@autocommit"));
  ASSERT_TRUE(rows->next());
  EXPECT_EQ(std::string(rows->getString(1)), "SERIALIZABLE");
  EXPECT_EQ(rows->getInt(2), 1);
}

TEST_F(MysqlTest, WrongPasswordIsAConfigErrorThatNeverShowsThePassword) {
  MySqlOptions options = Options();
  options.password = "Wr0ng-Pa55word-xyzzy";
  Result<std::unique_ptr<MySqlResourceManager>> rm = MySqlResourceManager::Create(options);
  ASSERT_THAT(rm, StatusIs(Code::kConfig,
                           AllOf(Not(HasSubstr("Wr0ng-Pa55word-xyzzy")), HasSubstr("1045"),
                                 HasSubstr("'" + options.user + "'"),
                                 HasSubstr("mysqldrv-test"))));
}

TEST_F(MysqlTest, UnreachableServerIsRmFail) {
  MySqlOptions options = Options();
  options.port = 1;  // nothing listens there
  options.connect_timeout = std::chrono::seconds(2);
  Result<std::unique_ptr<MySqlResourceManager>> rm = MySqlResourceManager::Create(options);
  // No branch exists when the connect fails: nothing may be called in doubt.
  ASSERT_THAT(rm, StatusIs(Code::kRmFail, AllOf(Not(HasSubstr(options.password)),
                                                Not(HasSubstr("IN DOUBT")),
                                                Not(HasSubstr("in doubt")))));
}

TEST_F(MysqlTest, InvalidOptionsAreRefusedBeforeConnecting) {
  MySqlOptions options = Options();
  options.rm_name.clear();
  EXPECT_EQ(MySqlResourceManager::Create(options).status().code(), Code::kInval);
  options = Options();
  options.port = 70000;
  EXPECT_EQ(MySqlResourceManager::Create(options).status().code(), Code::kInval);
}

TEST_F(MysqlTest, ConnectsThroughTheUnixSocket) {
  MySqlOptions options = Options();
  options.unix_socket = test::MariaDbSocket();
  // The tm account exists for 'localhost' (socket) as well as for 127.0.0.1.
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(options);
  ASSERT_NE(rm, nullptr);
  EXPECT_TRUE(rm->server_info().xa_supported);
}

// ---- Lifecycle -----------------------------------------------------------------------------

TEST_F(MysqlTest, CommittedBranchWritesBecomeVisibleOnlyAtCommit) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, xid, key, 42);
  EXPECT_EQ(ValueOf(key), std::nullopt) << "a prepared branch must not be visible";
  Status committed = rm->Commit(xid, CommitMode::kTwoPhase);
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(ValueOf(key), 42);
  EXPECT_TRUE(OurPrepared(*rm).empty());
}

TEST_F(MysqlTest, RolledBackPreparedBranchLeavesNoTrace) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, xid, key, 7);
  Status rolled_back = rm->Rollback(xid);
  ASSERT_THAT(rolled_back, IsOk());
  EXPECT_EQ(ValueOf(key), std::nullopt);
  EXPECT_TRUE(OurPrepared(*rm).empty());
  EXPECT_EQ(rm->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa);
}

TEST_F(MysqlTest, RollbackOfActiveBranchEndsItFirst) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 1);
  Status rolled_back = rm->Rollback(xid);
  ASSERT_THAT(rolled_back, IsOk());
  EXPECT_EQ(ValueOf(key), std::nullopt);
  // The session is free for the next branch.
  Xid next = NewXid();
  ASSERT_TRUE(rm->Start(next, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Rollback(next).ok());
}

TEST_F(MysqlTest, OnePhaseCommitOfEndedBranch) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 5);
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  Status committed = rm->Commit(xid, CommitMode::kOnePhase);
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(ValueOf(key), 5);
  EXPECT_TRUE(OurPrepared(*rm).empty());
}

TEST_F(MysqlTest, ManyBranchesInSequenceOnOneSession) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::string key = NewKey();
  SeedRow(key, 0);
  for (int i = 0; i < 5; ++i) {
    Xid xid = NewXid();
    ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
    EXPECT_EQ(RunOnRm(*rm, std::string("UPDATE ") + kTable + " SET v = v + 1 WHERE k = '" +
                               key + "'"),
              0);
    ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
    ASSERT_TRUE(rm->Prepare(xid).ok());
    ASSERT_TRUE(rm->Commit(xid, CommitMode::kTwoPhase).ok());
  }
  EXPECT_EQ(ValueOf(key), 5);
}

TEST_F(MysqlTest, EndWithFailMakesThePrepareRollBack) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 9);
  ASSERT_TRUE(rm->End(xid, EndFlag::kFail).ok());
  Status prepared = rm->Prepare(xid);
  EXPECT_EQ(prepared.code(), Code::kRbRollback) << prepared.ToString();
  EXPECT_NE(prepared.message().find("TMFAIL"), std::string::npos);
  EXPECT_EQ(ValueOf(key), std::nullopt);
  EXPECT_TRUE(OurPrepared(*rm).empty());
  EXPECT_EQ(rm->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa);
}

TEST_F(MysqlTest, ForgetIsNota) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  EXPECT_EQ(rm->Forget(NewXid()).code(), Code::kNoTa);
}

// ---- Disconnect and reconnect --------------------------------------------------------------

TEST_F(MysqlTest, PreparedBranchSurvivesDisconnectAndCommitsFromNewSession) {
  Xid xid = NewXid();
  std::string key = NewKey();
  {
    std::unique_ptr<MySqlResourceManager> rm = OpenRm();
    ASSERT_NE(rm, nullptr);
    PrepareInsert(*rm, xid, key, 11);
  }  // destroyed: the session is closed
  std::unique_ptr<MySqlResourceManager> fresh = OpenRm();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(OurPrepared(*fresh), std::vector<Xid>{xid});
  Status committed = RetryWhileRmFail([&] { return fresh->Commit(xid, CommitMode::kTwoPhase); });
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(ValueOf(key), 11);
  EXPECT_EQ(fresh->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa)
      << "a second commit finds nothing: that is how recovery knows it is done";
}

TEST_F(MysqlTest, PreparedBranchSurvivesCloseAndRollsBackAfterReopen) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, xid, key, 12);
  ASSERT_TRUE(rm->Close().ok());
  EXPECT_FALSE(rm->connected());
  ASSERT_TRUE(rm->Open().ok());
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{xid});
  Status rolled_back = RetryWhileRmFail([&] { return rm->Rollback(xid); });
  ASSERT_THAT(rolled_back, IsOk());
  EXPECT_EQ(ValueOf(key), std::nullopt);
  EXPECT_TRUE(OurPrepared(*rm).empty());
}

TEST_F(MysqlTest, KilledSessionIsRmFailAndThePreparedBranchIsCommittedAfterReconnect) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, xid, key, 13);
  uint64_t killed_id = rm->connection_id();
  MustRun(*admin, "KILL " + std::to_string(killed_id));

  Status first = rm->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(first.code(), Code::kRmFail) << first.ToString();
  EXPECT_NE(first.message().find("IN DOUBT"), std::string::npos) << first.ToString();
  EXPECT_NE(first.message().find(xid.ToString()), std::string::npos);
  EXPECT_FALSE(rm->connected());
  EXPECT_EQ(ValueOf(key), std::nullopt);

  // The retry reconnects. The server may still be detaching the branch from the killed session
  // for a moment, which is again XAER_RMFAIL: retry, as the contract says.
  Status retried = RetryWhileRmFail([&] { return rm->Commit(xid, CommitMode::kTwoPhase); });
  ASSERT_THAT(retried, IsOk());
  EXPECT_NE(rm->connection_id(), killed_id);
  EXPECT_EQ(ValueOf(key), 13);
}

TEST_F(MysqlTest, KilledSessionDuringActiveBranchLosesTheBranch) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 14);
  MustRun(*admin, "KILL " + std::to_string(rm->connection_id()));
  Status ended = rm->End(xid, EndFlag::kSuccess);
  Status prepared = rm->Prepare(xid);
  if (kBatchedEnd) {
    // The XA END goes with XA PREPARE: the lost session shows there, as "in doubt".
    EXPECT_THAT(ended, IsOk());
    EXPECT_EQ(prepared.code(), Code::kRmFail) << prepared.ToString();
  } else {
    EXPECT_EQ(ended.code(), Code::kRmFail) << ended.ToString();
    // After reconnecting, the server has rolled the unprepared branch back.
    EXPECT_EQ(prepared.code(), Code::kNoTa) << prepared.ToString();
  }
  EXPECT_TRUE(OurPrepared(*rm).empty());
  EXPECT_EQ(ValueOf(key), std::nullopt);
}

TEST_F(MysqlTest, KilledSessionBetweenEndAndPrepareLosesTheBranch) {
  // With batch_xa_end the XA END travels with XA PREPARE: the lost session shows there.
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 15);
  Status ended = rm->End(xid, EndFlag::kSuccess);
  MustRun(*admin, "KILL " + std::to_string(rm->connection_id()));
  Status prepared = rm->Prepare(xid);
  if (kBatchedEnd) {
    ASSERT_THAT(ended, IsOk());
    EXPECT_EQ(prepared.code(), Code::kRmFail) << prepared.ToString();
  } else {
    // The probe (or XA PREPARE) finds the session gone: in doubt, as XAER_RMFAIL says.
    EXPECT_THAT(prepared, StatusIs(Code::kRmFail)) << "prepared on a killed session";
  }
  EXPECT_TRUE(OurPrepared(*rm).empty());
  EXPECT_EQ(ValueOf(key), std::nullopt);
  // The reconnected session takes the next branch.
  Xid next = NewXid();
  PrepareInsert(*rm, next, NewKey(), 16);
  ASSERT_TRUE(rm->Commit(next, CommitMode::kTwoPhase).ok());
}

TEST_F(MysqlTest, EndedBranchCanBeResumedAndPreparedWithAllItsWork) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string first = NewKey(), second = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, first, 1);
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  Status resumed = rm->Start(xid, StartFlag::kResume);
  ASSERT_THAT(resumed, IsOk());
  Insert(*rm, second, 2);
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  // A second End of the same branch: with batch_xa_end the driver refuses it (XAER_PROTO)
  // before the server sees it; otherwise the server does (1399 XAER_RMFAIL, branch unchanged).
  EXPECT_THAT(rm->End(xid, EndFlag::kSuccess),
              StatusIs(kBatchedEnd ? Code::kProto : Code::kRmFail));
  Status prepared = rm->Prepare(xid);
  ASSERT_THAT(prepared, IsOk());
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{xid});
  ASSERT_TRUE(rm->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(ValueOf(first), 1);
  EXPECT_EQ(ValueOf(second), 2);
}

TEST_F(MysqlTest, RecoverAfterEndStillListsOnlyPreparedBranches) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 3);
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  EXPECT_TRUE(OurPrepared(*rm).empty());
  ASSERT_TRUE(rm->Prepare(xid).ok());
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{xid});
  ASSERT_TRUE(rm->Rollback(xid).ok());
  EXPECT_EQ(ValueOf(key), std::nullopt);
}

TEST_F(MysqlTest, SessionHoldingAPreparedBranchRefusesOtherWorkWithProto) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid held = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, held, key, 31);
  Xid next = NewXid();
  Status started = rm->Start(next, StartFlag::kNoFlags);
  EXPECT_EQ(started.code(), Code::kProto) << started.ToString();
  EXPECT_NE(started.message().find(held.ToString()), std::string::npos) << started.ToString();
  EXPECT_NE(started.message().find("1399"), std::string::npos) << started.ToString();
  EXPECT_TRUE(rm->connected());
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{held}) << "XA RECOVER is allowed in that state";
  // Finishing the held branch frees the session.
  ASSERT_TRUE(rm->Commit(held, CommitMode::kTwoPhase).ok());
  ASSERT_TRUE(rm->Start(next, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Rollback(next).ok());
  EXPECT_EQ(ValueOf(key), 31);
}

// What the server lets a session run while it holds a prepared branch (the dialect's notes in
// src/sql_dialect/mariadb_dialect.h rely on it): a statement without a table runs, one that
// reads a table and XA START are refused with 1399, and the branch is unchanged either way.
TEST_F(MysqlTest, SessionHoldingAPreparedBranchRunsATablelessSelectButNoTableAccess) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid held = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, held, key, 33);
  EXPECT_EQ(RunOnRm(*rm, "SELECT 1"), 0);
  EXPECT_EQ(RunOnRm(*rm, "SELECT CONNECTION_ID()"), 0);
  EXPECT_EQ(RunOnRm(*rm, std::string("SELECT COUNT(*) FROM ") + kTable), 1399);
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{held});
  ASSERT_TRUE(rm->Commit(held, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(ValueOf(key), 33);
}

TEST_F(MysqlTest, LostConnectionDuringApplicationSqlIsRmFailAndTheBranchIsGone) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  MustRun(*admin, "KILL " + std::to_string(rm->connection_id()));
  Status lost;
  EXPECT_NE(RunOnRm(*rm, std::string("INSERT INTO ") + kTable + " VALUES ('" + key + "', 1)",
                    &lost),
            0);
  EXPECT_EQ(lost.code(), Code::kRmFail) << lost.ToString();
  EXPECT_NE(lost.message().find(xid.ToString()), std::string::npos) << lost.ToString();
  EXPECT_FALSE(rm->connected());
  EXPECT_EQ(rm->End(xid, EndFlag::kSuccess).code(), Code::kNoTa);
  EXPECT_TRUE(rm->connected()) << "the next call reconnected";
  EXPECT_EQ(ValueOf(key), std::nullopt);
}

TEST_F(MysqlTest, XaStartOnALostSessionIsRmFailAndCallsNothingInDoubt) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  MustRun(*admin, "KILL " + std::to_string(rm->connection_id()));
  Xid xid = NewXid();
  Status started = rm->Start(xid, StartFlag::kNoFlags);
  // The branch was never started: the failure says so, and the next Start works.
  EXPECT_THAT(started, StatusIs(Code::kRmFail, AllOf(HasSubstr("XA START"),
                                                     Not(HasSubstr("IN DOUBT")),
                                                     Not(HasSubstr("in doubt")))));
  Xid next = NewXid();
  ASSERT_THAT(rm->Start(next, StartFlag::kNoFlags), IsOk());
  EXPECT_THAT(rm->Rollback(next), IsOk());
}

// Everything the library writes to stderr (its log sink) while `work` runs.
template <typename Work>
std::string StderrDuring(Work work) {
  LogToStderr();
  std::fflush(stderr);
  char path[] = "/tmp/xa-mysql-log-XXXXXX";
  int capture = mkstemp(path);
  EXPECT_GE(capture, 0);
  int saved = dup(STDERR_FILENO);
  dup2(capture, STDERR_FILENO);
  work();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(capture);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path);
  return text.str();
}

TEST_F(MysqlTest, CheckViolationOfTheApplicationsStatementIsLoggedAtDebugLevelOnly) {
  MustRun(*verifier_, "CREATE TABLE IF NOT EXISTS mysqldrv_checked (v INT, CHECK (v >= 0))");
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  ASSERT_THAT(rm->Start(xid, StartFlag::kNoFlags), IsOk());
  const LogLevel level = GetLogLevel();
  SetLogLevel(LogLevel::kDebug);
  Status refused;
  std::string logged = StderrDuring(
      [&] { RunOnRm(*rm, "INSERT INTO mysqldrv_checked VALUES (-1)", &refused); });
  SetLogLevel(level);
  // The application gets the server's error; the log has it at debug level, never as a warning.
  EXPECT_THAT(refused, StatusIs(Code::kRmError, HasSubstr("4025")));
  EXPECT_THAT(logged, HasSubstr("xa: debug: "));
  EXPECT_THAT(logged, HasSubstr("4025"));
  EXPECT_THAT(logged, Not(HasSubstr("xa: warning: ")));
  EXPECT_THAT(rm->Rollback(xid), IsOk());
}

// ---- Recover scan --------------------------------------------------------------------------

TEST_F(MysqlTest, RecoverListsExactlyOurPreparedBranchesAndLeavesForeignOnesAlone) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  // Foreign branches: another TM's (format 1, printable gtrid: MariaDB renders it quoted) and
  // one with format 0 and a binary gtrid. Each writes a row so that it is really prepared.
  std::string suffix = std::to_string(NodeId());
  std::string foreign_gtrid = "foreign-gtrid-" + suffix;
  std::string foreign_key_1 = NewKey();
  std::string foreign_key_2 = NewKey();
  std::string binary_gtrid_hex = "00ff27225c" + [&] {
    char buf[9];
    snprintf(buf, sizeof buf, "%08x", NodeId());
    return std::string(buf);
  }();
  std::vector<std::string> foreign_sql = {
      "'" + foreign_gtrid + "','b',1",
      "X'" + binary_gtrid_hex + "',X'',0",
  };
  Xid foreign_1 = *Xid::Make(1, foreign_gtrid, "b");
  std::string binary_gtrid = {'\x00', '\xff', '\x27', '\x22', '\x5c'};
  for (int shift = 24; shift >= 0; shift -= 8) {
    binary_gtrid.push_back(static_cast<char>((NodeId() >> shift) & 0xff));
  }
  Xid foreign_2 = *Xid::Make(0, binary_gtrid, "");
  CleanUpIfLeft(foreign_1);
  CleanUpIfLeft(foreign_2);
  std::vector<std::unique_ptr<sql::Connection>> foreign_sessions;
  for (size_t i = 0; i < foreign_sql.size(); ++i) {
    std::unique_ptr<sql::Connection> session = Connect(false);
    ASSERT_NE(session, nullptr);
    MustRun(*session, "XA START " + foreign_sql[i]);
    MustRun(*session, std::string("INSERT INTO ") + kTable + " VALUES ('" +
                          (i == 0 ? foreign_key_1 : foreign_key_2) + "', 1)");
    MustRun(*session, "XA END " + foreign_sql[i]);
    MustRun(*session, "XA PREPARE " + foreign_sql[i]);
    foreign_sessions.push_back(std::move(session));
  }
  foreign_sessions.clear();  // disconnect: the prepared branches stay

  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::vector<Xid> ours;
  for (int i = 0; i < 3; ++i) {
    Xid xid = NewXid();
    PrepareInsert(*rm, xid, NewKey(), i);
    ours.push_back(xid);
    // A prepared branch keeps its session busy until phase 2: use a new session each time.
    ASSERT_TRUE(rm->Close().ok());
    ASSERT_TRUE(rm->Open().ok());
  }
  std::sort(ours.begin(), ours.end());

  Result<RecoverScan> scan = rm->Recover();
  ASSERT_THAT(scan, IsOk());
  std::vector<Xid> owned = scan->OwnedBy(NodeId());
  std::sort(owned.begin(), owned.end());
  EXPECT_EQ(owned, ours);
  std::vector<Xid> not_owned = scan->NotOwnedBy(NodeId());
  EXPECT_NE(std::find(not_owned.begin(), not_owned.end(), foreign_1), not_owned.end());
  EXPECT_NE(std::find(not_owned.begin(), not_owned.end(), foreign_2), not_owned.end());
  EXPECT_FALSE(foreign_1.IsOwnedBy(NodeId()));
  EXPECT_FALSE(foreign_2.IsOwnedBy(NodeId()));

  // Our cleanup touches only our branches.
  for (const Xid& xid : owned) {
    ASSERT_TRUE(RetryWhileRmFail([&] { return rm->Rollback(xid); }).ok());
  }
  Result<RecoverScan> after = rm->Recover();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->OwnedBy(NodeId()).empty());
  std::vector<Xid> still = after->NotOwnedBy(NodeId());
  EXPECT_NE(std::find(still.begin(), still.end(), foreign_1), still.end());
  EXPECT_NE(std::find(still.begin(), still.end(), foreign_2), still.end());

  // Clean the foreign ones up by hand, as their owner would.
  for (const std::string& literal : foreign_sql) MustRun(*admin, "XA ROLLBACK " + literal);
  EXPECT_EQ(ValueOf(foreign_key_1), std::nullopt);
  EXPECT_EQ(ValueOf(foreign_key_2), std::nullopt);
}

TEST_F(MysqlTest, HostileXidBytesRoundTripWithoutInjectingSql) {
  std::string gtrid = "'); DROP TABLE mysqldrv_accounts; --";
  gtrid += std::string("\0\\\"'\xff\xfe`;", 9);
  std::string node = std::to_string(NodeId());
  gtrid += node;  // unique to this process
  gtrid.resize(Xid::kMaxGtridSize, '\xff');
  std::string bqual(Xid::kMaxBqualSize, '\'');
  bqual[0] = '\0';
  bqual[1] = '\\';
  bqual[63] = '\xff';
  Result<Xid> hostile = Xid::Make(Xid::kMaxFormatId, gtrid, bqual);
  ASSERT_TRUE(hostile.ok());
  // All bytes printable-safe: MariaDB renders this one quoted instead of in hex.
  Result<Xid> plain = Xid::Make(Xid::kMaxFormatId, std::string(58, 'a') + "-" + node.substr(0, 5),
                                std::string(64, 'Z'));
  ASSERT_TRUE(plain.ok());

  CleanUpIfLeft(*hostile);
  CleanUpIfLeft(*plain);
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::string key_1 = NewKey(), key_2 = NewKey();
  PrepareInsert(*rm, *hostile, key_1, 1);
  ASSERT_TRUE(rm->Close().ok());
  ASSERT_TRUE(rm->Open().ok());
  PrepareInsert(*rm, *plain, key_2, 2);
  ASSERT_TRUE(rm->Close().ok());
  ASSERT_TRUE(rm->Open().ok());

  EXPECT_EQ(QueryInt(*verifier_,
                     "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                     "DATABASE() AND TABLE_NAME = 'mysqldrv_accounts'"),
            1)
      << "the table must still exist";
  Result<RecoverScan> scan = rm->Recover();
  ASSERT_THAT(scan, IsOk());
  EXPECT_NE(std::find(scan->prepared.begin(), scan->prepared.end(), *hostile),
            scan->prepared.end())
      << "the scan must return exactly the bytes we prepared";
  EXPECT_NE(std::find(scan->prepared.begin(), scan->prepared.end(), *plain), scan->prepared.end());
  for (const UnparsedBranch& entry : scan->unparsed) {
    EXPECT_EQ(entry.raw.find(node), std::string::npos) << "ours went unparsed: " << entry.raw;
  }
  // The plain branch's preparing session has just ended: the server may hold it for a moment.
  ASSERT_TRUE(RetryWhileRmFail([&] { return rm->Commit(*hostile, CommitMode::kTwoPhase); }).ok());
  ASSERT_TRUE(RetryWhileRmFail([&] { return rm->Commit(*plain, CommitMode::kTwoPhase); }).ok());
  EXPECT_EQ(ValueOf(key_1), 1);
  EXPECT_EQ(ValueOf(key_2), 2);
}

// ---- Mapped errors, provoked for real ------------------------------------------------------

TEST_F(MysqlTest, CommitOfNeverPreparedXidIsNota) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  Status committed = rm->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(committed.code(), Code::kNoTa) << committed.ToString();
  EXPECT_NE(committed.message().find("mysqldrv-test"), std::string::npos);
  EXPECT_NE(committed.message().find(xid.ToString()), std::string::npos);
  EXPECT_NE(committed.message().find("1397"), std::string::npos);
  EXPECT_NE(committed.message().find("XAE04"), std::string::npos);
  EXPECT_TRUE(rm->connected()) << "an unknown xid does not break the session";
  EXPECT_EQ(rm->Rollback(xid).code(), Code::kNoTa);
}

TEST_F(MysqlTest, StartOfAnXidThatIsPreparedIsDupId) {
  std::unique_ptr<MySqlResourceManager> first = OpenRm();
  std::unique_ptr<MySqlResourceManager> second = OpenRm();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  Xid xid = NewXid();
  PrepareInsert(*first, xid, NewKey(), 1);
  Status started = second->Start(xid, StartFlag::kNoFlags);
  EXPECT_EQ(started.code(), Code::kDupId) << started.ToString();
  EXPECT_NE(started.message().find("1440"), std::string::npos);
  ASSERT_TRUE(first->Rollback(xid).ok());
}

TEST_F(MysqlTest, StartInsideALocalTransactionIsOutside) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::string key = NewKey();
  ASSERT_EQ(RunOnRm(*rm, "BEGIN"), 0);
  Insert(*rm, key, 3);
  Xid xid = NewXid();
  Status started = rm->Start(xid, StartFlag::kNoFlags);
  EXPECT_EQ(started.code(), Code::kOutside) << started.ToString();
  EXPECT_NE(started.message().find("1400"), std::string::npos);
  // The local transaction is the application's: Start did not end it.
  ASSERT_EQ(RunOnRm(*rm, "ROLLBACK"), 0);
  EXPECT_EQ(ValueOf(key), std::nullopt);
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->Rollback(xid).ok());
}

TEST_F(MysqlTest, PrepareOfAnActiveBranchIsRmFailAndChangesNothing) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, key, 4);
  Status prepared = rm->Prepare(xid);
  EXPECT_EQ(prepared.code(), Code::kRmFail) << prepared.ToString();
  EXPECT_NE(prepared.message().find("1399"), std::string::npos);
  EXPECT_NE(prepared.message().find("ACTIVE"), std::string::npos);
  EXPECT_TRUE(rm->connected()) << "a state error does not break the session";
  // The branch is still active and can go on normally.
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Prepare(xid).ok());
  ASSERT_TRUE(rm->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(ValueOf(key), 4);
}

TEST_F(MysqlTest, SuspendAndJoinAreInvalidOnMariaDb) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Xid xid = NewXid();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  EXPECT_EQ(rm->End(xid, EndFlag::kSuspend).code(), Code::kInval);
  ASSERT_TRUE(rm->Rollback(xid).ok());
  EXPECT_EQ(rm->Start(xid, StartFlag::kJoin).code(), Code::kInval);
}

TEST_F(MysqlTest, LockWaitTimeoutMakesTheWholeBranchRollBack) {
  std::unique_ptr<MySqlResourceManager> holder = OpenRm();
  std::unique_ptr<MySqlResourceManager> waiter = OpenRm();
  ASSERT_NE(holder, nullptr);
  ASSERT_NE(waiter, nullptr);
  std::string locked = NewKey(), other = NewKey();
  SeedRow(locked, 1);
  Xid holder_xid = NewXid(), waiter_xid = NewXid();
  ASSERT_EQ(RunOnRm(*waiter, "SET SESSION innodb_lock_wait_timeout = 1"), 0);
  ASSERT_TRUE(holder->Start(holder_xid, StartFlag::kNoFlags).ok());
  ASSERT_EQ(RunOnRm(*holder, std::string("UPDATE ") + kTable + " SET v = 2 WHERE k = '" +
                                 locked + "'"),
            0);
  ASSERT_TRUE(waiter->Start(waiter_xid, StartFlag::kNoFlags).ok());
  Insert(*waiter, other, 5);  // work done before the timeout
  Status timed_out;
  EXPECT_EQ(RunOnRm(*waiter, std::string("UPDATE ") + kTable + " SET v = 3 WHERE k = '" +
                                 locked + "'",
                    &timed_out),
            1205);
  EXPECT_EQ(timed_out.code(), Code::kRbTimeout) << timed_out.ToString();
  // MariaDB rolled back only the statement and left the branch ACTIVE; the driver rolls back
  // the whole branch at prepare.
  ASSERT_TRUE(waiter->End(waiter_xid, EndFlag::kSuccess).ok());
  Status prepared = waiter->Prepare(waiter_xid);
  EXPECT_EQ(prepared.code(), Code::kRbTimeout) << prepared.ToString();
  EXPECT_EQ(ValueOf(other), std::nullopt) << "the work before the timeout is rolled back too";
  ASSERT_TRUE(holder->Rollback(holder_xid).ok());
  EXPECT_EQ(ValueOf(locked), 1);
  EXPECT_TRUE(OurPrepared(*holder).empty());
}

// ---- Read-only optimisation ----------------------------------------------------------------

TEST_F(MysqlTest, ReadOnlyBranchIsFinishedAtPrepareAndNeverListed) {
  MySqlOptions options = Options();
  // Also in the batch_xa_end build, where the probe sends the deferred XA END first.
  options.read_only_optimization = true;
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(options);
  ASSERT_NE(rm, nullptr);
  std::string key = NewKey();
  SeedRow(key, 50);
  // A branch that only reads (with locks), one whose UPDATE matches no row, and an empty one:
  // all three are read-only for InnoDB. (An UPDATE that sets a row to the value it has is a
  // write for InnoDB and for the counters alike: it is prepared, and commits from any session.)
  std::vector<std::string> bodies = {
      std::string("SELECT * FROM ") + kTable + " WHERE k = '" + key + "' FOR UPDATE",
      std::string("UPDATE ") + kTable + " SET v = 1 WHERE k = '" + key + "-missing'",
      "",
  };
  for (const std::string& body : bodies) {
    Xid xid = NewXid();
    ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
    if (!body.empty()) {
      ASSERT_EQ(RunOnRm(*rm, body), 0);
    }
    ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
    Status prepared = rm->Prepare(xid);
    EXPECT_EQ(prepared.code(), Code::kReadOnly) << body << ": " << prepared.ToString();
    EXPECT_TRUE(OurPrepared(*rm).empty()) << body;
    EXPECT_EQ(rm->Commit(xid, CommitMode::kTwoPhase).code(), Code::kNoTa) << body;
  }
  // A writing branch after them is still prepared normally.
  Xid writer = NewXid();
  ASSERT_TRUE(rm->Start(writer, StartFlag::kNoFlags).ok());
  ASSERT_EQ(RunOnRm(*rm, std::string("UPDATE ") + kTable + " SET v = 51 WHERE k = '" + key +
                             "'"),
            0);
  ASSERT_TRUE(rm->End(writer, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Prepare(writer).ok());
  EXPECT_EQ(OurPrepared(*rm), std::vector<Xid>{writer});
  ASSERT_TRUE(rm->Commit(writer, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(ValueOf(key), 51);
}

TEST_F(MysqlTest, WriteOutsideABranchNeverMakesTheNextBranchLookReadOnly) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  std::string outside = NewKey(), inside = NewKey();
  Insert(*rm, outside, 1);  // autocommit, between branches
  Xid xid = NewXid();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  Insert(*rm, inside, 2);
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Prepare(xid).ok());
  ASSERT_TRUE(rm->Commit(xid, CommitMode::kTwoPhase).ok());
  EXPECT_EQ(ValueOf(inside), 2);
}

TEST_F(MysqlTest, WithoutTheOptimisationAReadOnlyBranchIsLeftPreparedAndUncommittable) {
  MySqlOptions options = Options();
  options.read_only_optimization = false;
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(options);
  std::unique_ptr<MySqlResourceManager> other = OpenRm();
  ASSERT_NE(rm, nullptr);
  ASSERT_NE(other, nullptr);
  Xid xid = NewXid();
  ASSERT_TRUE(rm->Start(xid, StartFlag::kNoFlags).ok());
  ASSERT_TRUE(rm->End(xid, EndFlag::kSuccess).ok());
  ASSERT_TRUE(rm->Prepare(xid).ok());
  EXPECT_EQ(OurPrepared(*other), std::vector<Xid>{xid}) << "the quirk: listed as prepared";
  // While the preparing session lives, the server answers another session with 1397, a false
  // XAER_NOTA: the driver sees the xid still listed and reports XAER_RMFAIL (busy, retry).
  Status busy = other->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(busy.code(), Code::kRmFail) << busy.ToString();
  EXPECT_NE(busy.message().find("attached"), std::string::npos) << busy.ToString();
  // Once it is gone, another session cannot commit the read-only branch: 1402, and it is gone.
  ASSERT_TRUE(rm->Close().ok());
  Status committed =
      RetryWhileRmFail([&] { return other->Commit(xid, CommitMode::kTwoPhase); });
  EXPECT_EQ(committed.code(), Code::kRbRollback) << committed.ToString();
  EXPECT_NE(committed.message().find("1402"), std::string::npos);
  EXPECT_TRUE(OurPrepared(*other).empty());
}

TEST_F(MysqlTest, PhaseTwoFromAnotherSessionWhileThePreparerLivesIsRmFailNotNota) {
  std::unique_ptr<MySqlResourceManager> preparer = OpenRm();
  std::unique_ptr<MySqlResourceManager> other = OpenRm();
  ASSERT_NE(preparer, nullptr);
  ASSERT_NE(other, nullptr);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*preparer, xid, key, 21);
  Status busy = other->Rollback(xid);
  EXPECT_EQ(busy.code(), Code::kRmFail) << busy.ToString();
  busy = other->Commit(xid, CommitMode::kTwoPhase);
  EXPECT_EQ(busy.code(), Code::kRmFail) << busy.ToString();
  ASSERT_TRUE(preparer->Close().ok());
  Status committed =
      RetryWhileRmFail([&] { return other->Commit(xid, CommitMode::kTwoPhase); });
  ASSERT_THAT(committed, IsOk());
  EXPECT_EQ(ValueOf(key), 21);
}

// The detach window: MariaDB hands a prepared branch of an ending session over before it
// detaches it from InnoDB, and a phase-2 call from another session in between answers OK without
// effect (src/sql_dialect/mariadb_dialect.h). The preparer's session carries many user variables,
// which the server frees inside that window, so that the window is wide. Closing the preparer
// must return only once the server has let its session go: then every commit from another
// session made at once is applied, and the branch is no longer listed.
TEST_F(MysqlTest, CommitAtOnceAfterThePreparerClosedIsAlwaysApplied) {
  std::unique_ptr<MySqlResourceManager> other = OpenRm();
  ASSERT_NE(other, nullptr);
  std::string many_variables = "SET @v0 = 0";
  for (int v = 1; v < 5000; ++v) {
    many_variables += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  }
  constexpr int kIterations = 60;
  for (int i = 0; i < kIterations; ++i) {
    Xid xid = NewXid();
    std::string key = NewKey();
    {
      std::unique_ptr<MySqlResourceManager> preparer = OpenRm();
      ASSERT_NE(preparer, nullptr);
      ASSERT_EQ(RunSql(preparer->connection(), many_variables), 0);
      PrepareInsert(*preparer, xid, key, 30 + i);
    }  // destroyed: its session is closed
    Status committed =
        RetryWhileRmFail([&] { return other->Commit(xid, CommitMode::kTwoPhase); });
    ASSERT_THAT(committed, IsOk()) << "iteration " << i;
    EXPECT_EQ(OurPrepared(*other), std::vector<Xid>{}) << "iteration " << i;
    ASSERT_EQ(ValueOf(key), 30 + i) << "iteration " << i
                                    << ": the commit was answered OK but not applied";
  }
}

// ---- The 3PC fence -------------------------------------------------------------------------

std::string ManyVariables() {
  std::string sql = "SET @v0 = 0";
  for (int v = 1; v < 5000; ++v) sql += ", @v" + std::to_string(v) + " = " + std::to_string(v);
  return sql;
}

// Prints the median and the longest of the fence calls a test made (for the driver's report).
void ReportFenceTimes(const char* what, std::vector<std::chrono::microseconds> times) {
  if (times.empty()) return;
  std::sort(times.begin(), times.end());
  std::printf("%s: %zu fences, p50 %.1f ms, max %.1f ms\n", what, times.size(),
              static_cast<double>(times[times.size() / 2].count()) / 1000.0,
              static_cast<double>(times.back().count()) / 1000.0);
}

TEST_F(MysqlTest, SessionIdIsTheIdTheServerListsForThisSession) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  Result<uint64_t> id = rm->SessionId();
  ASSERT_THAT(id.status(), IsOk());
  const std::string user = test::MariaDbAccount().user;
  auto listed_as_ours = [&](uint64_t session) {
    return QueryInt(*verifier_, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                                    std::to_string(session) + " AND USER = '" + user + "'");
  };
  EXPECT_EQ(listed_as_ours(*id), 1);
  EXPECT_EQ(*id, rm->connection_id());

  // Right after Prepare, on the session that prepared (the coordinator's moment): the same id.
  Xid xid = NewXid();
  PrepareInsert(*rm, xid, NewKey(), 1);
  Result<uint64_t> after_prepare = rm->SessionId();
  ASSERT_THAT(after_prepare.status(), IsOk());
  EXPECT_EQ(*after_prepare, *id);
  ASSERT_THAT(rm->Commit(xid, CommitMode::kTwoPhase), IsOk());

  // A new session has a new id, listed as well; without a session there is no id.
  ASSERT_THAT(rm->Close(), IsOk());
  EXPECT_THAT(rm->SessionId().status(), StatusIs(Code::kRmFail, HasSubstr("no session")));
  ASSERT_THAT(rm->Open(), IsOk());
  Result<uint64_t> reopened = rm->SessionId();
  ASSERT_THAT(reopened.status(), IsOk());
  EXPECT_NE(*reopened, *id);
  EXPECT_EQ(listed_as_ours(*reopened), 1);
  EXPECT_EQ(listed_as_ours(*id), 0);
}

// The agent's path: A (the application's session) prepares; B (the agent's RM) fences A's
// session and finishes the branch. Many user variables in A's session widen the detach window
// (mariadb_dialect.h), so that a commit sent before A's session is really gone would be answered
// OK and applied nowhere in many of the iterations.
TEST_F(MysqlTest, FencedSessionsPreparedBranchCanBeCommittedFromAnotherSession) {
  std::unique_ptr<MySqlResourceManager> fencer = OpenRm(Options("mysqldrv-fencer"));
  ASSERT_NE(fencer, nullptr);
  const std::string many_variables = ManyVariables();
  std::vector<std::chrono::microseconds> times;
  constexpr int kIterations = xa::test::RaceRepetitions(200);
  for (int i = 0; i < kIterations; ++i) {
    std::unique_ptr<MySqlResourceManager> app = OpenRm();
    ASSERT_NE(app, nullptr);
    ASSERT_EQ(RunSql(app->connection(), many_variables), 0);
    Xid xid = NewXid();
    std::string key = NewKey();
    PrepareInsert(*app, xid, key, 100 + i);
    Result<uint64_t> session = app->SessionId();
    ASSERT_THAT(session.status(), IsOk());

    const auto began = std::chrono::steady_clock::now();
    Status fenced = fencer->FenceSession(*session);
    times.push_back(std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - began));
    ASSERT_THAT(fenced, IsOk()) << "iteration " << i;
    EXPECT_EQ(QueryInt(*verifier_, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                                   "ID = " + std::to_string(*session)),
              0);
    Status committed = fencer->Commit(xid, CommitMode::kTwoPhase);
    ASSERT_THAT(committed, IsOk()) << "iteration " << i;
    ASSERT_EQ(QueryInt(*verifier_, std::string("SELECT COUNT(*) FROM ") + kTable +
                                       " WHERE k = '" + key + "'"),
              1)
        << "iteration " << i << ": the commit after the fence was answered OK but not applied";
    EXPECT_EQ(OurPrepared(*fencer), std::vector<Xid>{}) << "iteration " << i;
  }
  ReportFenceTimes("fence before commit", times);
}

TEST_F(MysqlTest, FencedSessionsPreparedBranchCanBeRolledBackFromAnotherSession) {
  std::unique_ptr<MySqlResourceManager> fencer = OpenRm(Options("mysqldrv-fencer"));
  ASSERT_NE(fencer, nullptr);
  const std::string many_variables = ManyVariables();
  constexpr int kIterations = 50;
  for (int i = 0; i < kIterations; ++i) {
    std::unique_ptr<MySqlResourceManager> app = OpenRm();
    ASSERT_NE(app, nullptr);
    ASSERT_EQ(RunSql(app->connection(), many_variables), 0);
    Xid xid = NewXid();
    std::string key = NewKey();
    PrepareInsert(*app, xid, key, 7);
    Result<uint64_t> session = app->SessionId();
    ASSERT_THAT(session.status(), IsOk());
    ASSERT_THAT(fencer->FenceSession(*session), IsOk()) << "iteration " << i;
    ASSERT_THAT(fencer->Rollback(xid), IsOk()) << "iteration " << i;
    // Rolled back for real: not listed, and its row lock is gone (the insert of the same key
    // from another session would otherwise wait for the lock).
    ASSERT_EQ(OurPrepared(*fencer), std::vector<Xid>{}) << "iteration " << i;
    EXPECT_EQ(ValueOf(key), std::nullopt) << "iteration " << i;
    EXPECT_EQ(RunSql(*verifier_, std::string("INSERT INTO ") + kTable + " VALUES ('" + key +
                                     "', 1)"),
              0)
        << "iteration " << i << ": the rolled-back branch still holds its row lock";
  }
}

TEST_F(MysqlTest, FencingAnUnknownSessionSucceeds) {
  std::unique_ptr<MySqlResourceManager> fencer = OpenRm(Options("mysqldrv-fencer"));
  ASSERT_NE(fencer, nullptr);
  // A session that existed and is gone.
  std::unique_ptr<MySqlResourceManager> gone = OpenRm();
  ASSERT_NE(gone, nullptr);
  uint64_t gone_id = gone->SessionId().value();
  ASSERT_THAT(gone->Close(), IsOk());
  EXPECT_THAT(fencer->FenceSession(gone_id), IsOk());
  // An id no session ever had.
  EXPECT_THAT(fencer->FenceSession(uint64_t{1} << 60), IsOk());
  EXPECT_TRUE(fencer->connected());
}

TEST_F(MysqlTest, FencingOwnSessionIsRefused) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  uint64_t own = rm->SessionId().value();
  EXPECT_THAT(rm->FenceSession(own), StatusIs(Code::kInval, HasSubstr("own session")));
  // Nothing was ended: the same session goes on working.
  EXPECT_TRUE(rm->connected());
  EXPECT_EQ(rm->SessionId().value(), own);
  Xid xid = NewXid();
  std::string key = NewKey();
  PrepareInsert(*rm, xid, key, 3);
  ASSERT_THAT(rm->Commit(xid, CommitMode::kTwoPhase), IsOk());
  EXPECT_EQ(ValueOf(key), 3);
}

TEST_F(MysqlTest, FencingSessionZeroIsRefused) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  EXPECT_THAT(rm->FenceSession(0), StatusIs(Code::kInval, HasSubstr("no fence")));
  EXPECT_TRUE(rm->connected());
}

TEST_F(MysqlTest, FencingAnotherUsersSessionWithoutThePrivilegeSaysWhatToGrant) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  std::optional<int64_t> admin_id = QueryInt(*admin, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(admin_id.has_value());
  std::unique_ptr<MySqlResourceManager> rm = OpenRm();
  ASSERT_NE(rm, nullptr);
  EXPECT_THAT(rm->FenceSession(static_cast<uint64_t>(*admin_id)),
              StatusIs(Code::kRmError, AllOf(HasSubstr("1095"), HasSubstr("CONNECTION ADMIN"),
                                             HasSubstr(test::MariaDbAccount().user))));
  EXPECT_EQ(QueryInt(*admin, "SELECT 1"), 1);  // untouched
}

// CONNECTION ADMIN without PROCESS: the KILL of another user's session succeeds, but the
// process list never showed that session, so its leaving cannot be watched (measured on MariaDB
// 10.11: the list shows 0 before and after). The fence must not report success then.
TEST_F(MysqlTest, FencingASessionTheProcessListHidesIsRefusedAndSaysToGrantProcess) {
  std::unique_ptr<sql::Connection> admin = Connect(true);
  ASSERT_NE(admin, nullptr);
  const std::string host = test::MariaDbAccount().host;
  const std::string fencer_user = "xa_fencer_np" + std::to_string(NodeId() % 100000);
  const std::string account = "'" + fencer_user + "'@'" + host + "'";
  MustRun(*admin, "CREATE USER IF NOT EXISTS " + account + " IDENTIFIED BY 'fence-pw'");
  MustRun(*admin, "GRANT CONNECTION ADMIN ON *.* TO " + account);
  MustRun(*admin, "GRANT SELECT ON " + test::MariaDbAccount().database + ".* TO " + account);
  std::unique_ptr<sql::Connection> victim = Connect(true);
  ASSERT_NE(victim, nullptr);
  std::optional<int64_t> victim_id = QueryInt(*victim, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(victim_id.has_value());

  MySqlOptions options = Options("mysqldrv-fencer");
  options.user = fencer_user;
  options.password = "fence-pw";
  std::unique_ptr<MySqlResourceManager> fencer = OpenRm(options);
  ASSERT_NE(fencer, nullptr);
  EXPECT_THAT(fencer->FenceSession(static_cast<uint64_t>(*victim_id)),
              StatusIs(Code::kRmError, AllOf(HasSubstr("GRANT PROCESS"), HasSubstr(fencer_user),
                                             HasSubstr("do not finish the branch"))));
  fencer.reset();
  MustRun(*admin, "DROP USER " + account);
}

// What the application's RM does after its session was fenced: the next call reports the lost
// session (XAER_RMFAIL, connection gone), Open() connects again, and new work goes through.
TEST_F(MysqlTest, FencedRmReportsTheLostSessionOnceAndWorksAgainAfterOpen) {
  std::unique_ptr<MySqlResourceManager> fencer = OpenRm(Options("mysqldrv-fencer"));
  ASSERT_NE(fencer, nullptr);
  std::unique_ptr<MySqlResourceManager> app = OpenRm();
  ASSERT_NE(app, nullptr);
  Xid fenced_xid = NewXid();
  std::string fenced_key = NewKey();
  PrepareInsert(*app, fenced_xid, fenced_key, 5);
  uint64_t fenced_session = app->SessionId().value();
  ASSERT_THAT(fencer->FenceSession(fenced_session), IsOk());
  ASSERT_THAT(fencer->Commit(fenced_xid, CommitMode::kTwoPhase), IsOk());

  Xid next = NewXid();
  EXPECT_THAT(app->Start(next, StartFlag::kNoFlags),
              StatusIs(Code::kRmFail, HasSubstr("connection is gone")));
  EXPECT_FALSE(app->connected());
  EXPECT_THAT(app->SessionId().status(), StatusIs(Code::kRmFail));
  ASSERT_THAT(app->Open(), IsOk());
  EXPECT_NE(app->SessionId().value(), fenced_session);
  std::string key = NewKey();
  PrepareInsert(*app, next, key, 6);
  ASSERT_THAT(app->Commit(next, CommitMode::kTwoPhase), IsOk());
  EXPECT_EQ(ValueOf(key), 6);
  // The fenced branch was finished by the fencer: the application's RM finds nothing to do.
  EXPECT_EQ(app->Commit(fenced_xid, CommitMode::kTwoPhase).code(), Code::kNoTa);
  EXPECT_EQ(ValueOf(fenced_key), 5);
}

}  // namespace
}  // namespace xa::mysql
