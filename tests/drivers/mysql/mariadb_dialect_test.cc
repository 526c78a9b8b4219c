// Unit tests of the MariaDB/MySQL XA dialect (src/sql_dialect/mariadb_dialect.h): pure text and
// value handling, no server.

#include "src/sql_dialect/mariadb_dialect.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "src/base/byte_text.h"
#include "src/sql_dialect/commit_marker.h"
#include "src/sql_dialect/session_wait.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::internal::mariadb {
namespace {

Xid MakeXid(int64_t format, std::string_view gtrid, std::string_view bqual) {
  Result<Xid> xid = Xid::Make(format, gtrid, bqual);
  EXPECT_TRUE(xid.ok()) << xid.status().ToString();
  return xid.ok() ? *xid : Xid();
}

using test::StatusIs;

const std::string kHostile = std::string("'); DROP TABLE t; --\\\"\0\n\xff", 25);

TEST(MariaDbDialect, XidLiteralIsHexOnly) {
  Xid xid = Xid::Make(7, kHostile, kHostile.substr(0, 3)).value();
  std::string literal = XidLiteral(xid);
  EXPECT_EQ(literal.rfind("X'", 0), 0u);
  // Exactly the four delimiting quotes; no backslash, semicolon or NUL.
  EXPECT_EQ(std::count(literal.begin(), literal.end(), '\''), 4);
  EXPECT_EQ(literal.find_first_of(";\\\"\n", 0), std::string::npos);
  EXPECT_EQ(literal.find('\0'), std::string::npos);
  EXPECT_EQ(XidLiteral(Xid::Make(1, "ab", "c").value()), "X'6162',X'63',1");
}

TEST(MariaDbDialect, XidRecoverRowsParseInEveryServerShape) {
  Xid full = XidFromRecoverRow(7, 2, 1, "X'6162',X'63',7").value();
  EXPECT_EQ(full, Xid::Make(7, "ab", "c").value());
  // The server leaves out a format ID of 1 and an empty bqual.
  EXPECT_EQ(XidFromRecoverRow(1, 2, 1, "X'6162',X'63'").value(),
            Xid::Make(1, "ab", "c").value());
  EXPECT_EQ(XidFromRecoverRow(1, 2, 0, "X'6162'").value(), Xid::Make(1, "ab", "").value());
  EXPECT_EQ(XidFromRecoverRow(9, 2, 0, "X'6162',X'',9").value(),
            Xid::Make(9, "ab", "").value());
}

TEST(MariaDbDialect, XidRecoverRowsThatDisagreeAreRefused) {
  struct Row {
    int64_t format, glen, blen;
    const char* data;
  };
  for (const Row& row : std::initializer_list<Row>{
           {7, 3, 1, "X'6162',X'63',7"},   // gtrid length mismatch
           {7, 2, 0, "X'6162',X'63',7"},   // bqual length mismatch
           {8, 2, 1, "X'6162',X'63',7"},   // format mismatch
           {7, 2, 1, "X'6162',X'63',7 "},  // trailing text
           {7, 2, 1, "'ab','c',7"},        // not hex
           {7, 2, 1, "X'616',X'63',7"},    // odd hex
           {1, 0, 0, "X''"},               // empty gtrid
           {1, 65, 0, "X'00'"},            // length out of range
       }) {
    auto parsed = XidFromRecoverRow(row.format, row.glen, row.blen, row.data);
    EXPECT_THAT(parsed, StatusIs(Code::kInval)) << row.data;
  }
}

TEST(MariaDbDialect, StatementsCarryTheXidAsHexOnly) {
  Xid xid = MakeXid(7, std::string("a'\\\0b", 5), "c");
  EXPECT_EQ(XaStartSql(xid, StartFlag::kNoFlags), "XA START X'61275c0062',X'63',7");
  EXPECT_EQ(XaStartSql(xid, StartFlag::kJoin), "XA START X'61275c0062',X'63',7 JOIN");
  EXPECT_EQ(XaStartSql(xid, StartFlag::kResume), "XA START X'61275c0062',X'63',7 RESUME");
  EXPECT_EQ(XaEndSql(xid, EndFlag::kSuccess), "XA END X'61275c0062',X'63',7");
  EXPECT_EQ(XaEndSql(xid, EndFlag::kFail), "XA END X'61275c0062',X'63',7");
  EXPECT_EQ(XaEndSql(xid, EndFlag::kSuspend), "XA END X'61275c0062',X'63',7 SUSPEND");
  EXPECT_EQ(XaPrepareSql(xid), "XA PREPARE X'61275c0062',X'63',7");
  EXPECT_EQ(XaCommitSql(xid, CommitMode::kTwoPhase), "XA COMMIT X'61275c0062',X'63',7");
  EXPECT_EQ(XaCommitSql(xid, CommitMode::kOnePhase), "XA COMMIT X'61275c0062',X'63',7 ONE PHASE");
  EXPECT_EQ(XaRollbackSql(xid), "XA ROLLBACK X'61275c0062',X'63',7");
}

TEST(MariaDbDialect, IsolationStatements) {
  EXPECT_EQ(SetIsolationSql(Isolation::kRepeatableRead),
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  EXPECT_EQ(SetIsolationSql(Isolation::kSerializable),
            "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE");
}

TEST(MariaDbDialect, RecoverRowsInHexAndQuotedFormsParse) {
  std::vector<RecoverRow> rows = {
      {0x58414d31, 3, 2, "X'010203',X'0a0b',1480674609"},
      {1, 1, 0, "'c'"},                               // format 1, empty bqual: both omitted
      {1, 13, 1, "'foreign-gtrid','b'"},              // format 1: omitted
      {0, 4, 0, "'ab c',''"},                         // format 0... see below
      {5, 2, 3, "'a_','b-c',5"},
  };
  RecoverScan scan = ParseRecoverRows(rows);
  ASSERT_EQ(scan.unparsed.size(), 1u) << (scan.unparsed.empty() ? "" : scan.unparsed[0].reason);
  // The server writes ",<format>" whenever the format is not 1: "'ab c',''" with format 0 is
  // not what it would write, so it is refused.
  EXPECT_NE(scan.unparsed[0].raw.find("'ab c'"), std::string::npos);
  ASSERT_EQ(scan.prepared.size(), 4u);
  EXPECT_EQ(scan.prepared[0], MakeXid(0x58414d31, "\x01\x02\x03", "\x0a\x0b"));
  EXPECT_EQ(scan.prepared[1], MakeXid(1, "c", ""));
  EXPECT_EQ(scan.prepared[2], MakeXid(1, "foreign-gtrid", "b"));
  EXPECT_EQ(scan.prepared[3], MakeXid(5, "a_", "b-c"));
}

TEST(MariaDbDialect, HostileRecoverRowsAreReportedNotFatal) {
  std::vector<RecoverRow> rows = {
      {1, 3, 0, "'a'"},                                // length mismatch
      {1, 2, 0, "'a'');DROP TABLE t;--'"},             // quote inside: not a server rendering
      {1, 2, 0, "X'zz'"},                              // not hex
      {-1, 0, 0, ""},                                  // null xid
      {1, 65, 0, "X'" + std::string(130, 'a') + "'"},  // too long
      {3, 1, 0, "'a',3"},                              // bqual part missing before the format
      {1, 1, 0, std::string("'\xff'", 3)},             // byte the server would hex-encode
  };
  RecoverScan scan = ParseRecoverRows(rows);
  EXPECT_TRUE(scan.prepared.empty());
  ASSERT_EQ(scan.unparsed.size(), rows.size());
  for (const UnparsedBranch& entry : scan.unparsed) {
    EXPECT_FALSE(entry.reason.empty());
    for (char c : entry.raw) {
      EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "raw text must be escaped: " << entry.raw;
    }
  }
}

TEST(MariaDbDialect, ParsesServerVersions) {
  Result<ServerVersion> mariadb = ParseServerVersion("10.11.19-MariaDB-0+deb12u1");
  ASSERT_TRUE(mariadb.ok());
  EXPECT_EQ(mariadb->product, "MariaDB");
  EXPECT_EQ(mariadb->major, 10);
  EXPECT_EQ(mariadb->minor, 11);
  EXPECT_EQ(mariadb->patch, 19);
  EXPECT_TRUE(PreparedBranchSurvivesDisconnect(*mariadb));
  EXPECT_TRUE(CheckServerVersion(*mariadb, "rm").ok());

  Result<ServerVersion> compat = ParseServerVersion("5.5.5-10.4.31-MariaDB-log");
  ASSERT_TRUE(compat.ok());
  EXPECT_EQ(compat->major, 10);
  EXPECT_EQ(compat->minor, 4);
  EXPECT_FALSE(PreparedBranchSurvivesDisconnect(*compat));
  Status refused = CheckServerVersion(*compat, "accounts");
  EXPECT_EQ(refused.code(), Code::kConfig);
  EXPECT_NE(refused.message().find("upgrade the server to MariaDB 10.5"), std::string::npos);
  EXPECT_NE(refused.message().find("accounts"), std::string::npos);

  Result<ServerVersion> mysql = ParseServerVersion("8.0.36");
  ASSERT_TRUE(mysql.ok());
  EXPECT_EQ(mysql->product, "MySQL");
  EXPECT_TRUE(PreparedBranchSurvivesDisconnect(*mysql));
  Result<ServerVersion> old_mysql = ParseServerVersion("5.7.6-log");
  ASSERT_TRUE(old_mysql.ok());
  EXPECT_FALSE(PreparedBranchSurvivesDisconnect(*old_mysql));
  EXPECT_TRUE(PreparedBranchSurvivesDisconnect(*ParseServerVersion("5.7.7")));

  EXPECT_EQ(ParseServerVersion("garbage").status().code(), Code::kInval);
  EXPECT_EQ(ParseServerVersion("10.-1.2").status().code(), Code::kInval);
}

TEST(MariaDbDialect, MapsServerErrorsToXaCodes) {
  EXPECT_EQ(CodeForMariaDbError(1397), Code::kNoTa);
  EXPECT_EQ(CodeForMariaDbError(1398), Code::kInval);
  EXPECT_EQ(CodeForMariaDbError(1399), Code::kRmFail);
  EXPECT_EQ(CodeForMariaDbError(1400), Code::kOutside);
  EXPECT_EQ(CodeForMariaDbError(1401), Code::kRmError);
  EXPECT_EQ(CodeForMariaDbError(1402), Code::kRbRollback);
  EXPECT_EQ(CodeForMariaDbError(1440), Code::kDupId);
  EXPECT_EQ(CodeForMariaDbError(1613), Code::kRbTimeout);
  EXPECT_EQ(CodeForMariaDbError(1614), Code::kRbDeadlock);
  EXPECT_EQ(CodeForMariaDbError(1205), Code::kRbTimeout);
  EXPECT_EQ(CodeForMariaDbError(1213), Code::kRbDeadlock);
  for (int lost : {2006, 2013, 2055, 1927, 0}) {
    EXPECT_EQ(CodeForMariaDbError(lost), Code::kRmFail) << lost;
  }
  EXPECT_EQ(CodeForMariaDbError(1045), Code::kConfig);
  EXPECT_EQ(CodeForMariaDbError(1064), Code::kRmError);
  EXPECT_TRUE(IsConnectionLost(2013));
  EXPECT_FALSE(IsConnectionLost(1399));
}

TEST(MariaDbDialect, OnlyAStateRefusalOfXaEndMeansTheServerRolledTheBranchBack) {
  EXPECT_TRUE(EndRefusedBecauseRolledBack(1399));
  // A lost connection leaves the branch in doubt; other refusals say nothing about its state.
  for (int other : {0, 2006, 2013, 1397, 1398, 1400, 1213, 1205, 1064}) {
    EXPECT_FALSE(EndRefusedBecauseRolledBack(other)) << other;
  }
}

TEST(MariaDbDialect, ErrorMessageNamesRmXidAndServerError) {
  Xid xid = MakeXid(1, "g", "b");
  Status s = MapMariaDbError(1397, "XAE04", "XAER_NOTA: Unknown XID", "accounts", &xid,
                             "XA COMMIT");
  EXPECT_EQ(s.code(), Code::kNoTa);
  EXPECT_NE(s.message().find("'accounts'"), std::string::npos);
  EXPECT_NE(s.message().find("XA COMMIT"), std::string::npos);
  EXPECT_NE(s.message().find(xid.ToString()), std::string::npos);
  EXPECT_NE(s.message().find("1397"), std::string::npos);
  EXPECT_NE(s.message().find("XAE04"), std::string::npos);
  EXPECT_NE(s.message().find("Unknown XID"), std::string::npos);

  Status lost = MapMariaDbError(2013, "HY000", "Lost connection\n\x01", "accounts", &xid,
                                "XA COMMIT");
  EXPECT_EQ(lost.code(), Code::kRmFail);
  EXPECT_NE(lost.message().find("IN DOUBT"), std::string::npos);
  EXPECT_NE(lost.message().find("\\x0a\\x01"), std::string::npos) << "text must be escaped";
}

// A lost connection leaves a branch in doubt only after XA PREPARE, XA COMMIT or XA ROLLBACK
// may have reached the server; a failed connect, XA START, statement or XA END names no doubt.
TEST(MariaDbDialect, LostConnectionIsInDoubtOnlyFromPrepareOn) {
  Xid xid = MakeXid(1, "g", "b");
  for (std::string_view operation :
       {"XA PREPARE", "XA COMMIT", "XA COMMIT ONE PHASE", "XA COMMIT ONE PHASE (read-only branch)",
        "XA ROLLBACK", "XA ROLLBACK (after a failed prepare)"}) {
    SCOPED_TRACE(std::string(operation));
    EXPECT_TRUE(LostConnectionLeavesBranchInDoubt(operation));
    Status lost = MapMariaDbError(2013, "HY000", "Lost connection", "accounts", &xid, operation);
    EXPECT_EQ(lost.code(), Code::kRmFail);
    EXPECT_NE(lost.message().find("IN DOUBT"), std::string::npos) << lost.ToString();
  }
  for (std::string_view operation :
       {"XA START", "XA END", "statement", "branch statement", "capability probe",
        "connect to 127.0.0.1:1 as 'xa_tm'", "read the session's write counters", "XA RECOVER"}) {
    SCOPED_TRACE(std::string(operation));
    EXPECT_FALSE(LostConnectionLeavesBranchInDoubt(operation));
    for (const Xid* with : {static_cast<const Xid*>(&xid), static_cast<const Xid*>(nullptr)}) {
      Status lost = MapMariaDbError(2006, "HY000", "gone away", "accounts", with, operation);
      EXPECT_EQ(lost.code(), Code::kRmFail);
      EXPECT_EQ(lost.message().find("IN DOUBT"), std::string::npos) << lost.ToString();
      EXPECT_EQ(lost.message().find("in doubt"), std::string::npos) << lost.ToString();
    }
  }
}

TEST(MariaDbDialect, ReadOnlyOnlyWhenTheCounterDidNotMove) {
  EXPECT_TRUE(CounterProvesReadOnly(10, 10));
  EXPECT_FALSE(CounterProvesReadOnly(10, 11));
  EXPECT_FALSE(CounterProvesReadOnly(10, 3));  // FLUSH STATUS or another session: no proof
  EXPECT_FALSE(CounterProvesReadOnly(-1, -1));
}

// The one reading of a 1397 from XA COMMIT / XA ROLLBACK, as a table: XAER_NOTA ("already
// finished") only when the scan run after it proves the xid is gone.
TEST(MariaDbDialect, PhaseTwoNotaIsNotaOnlyWhenTheScanProvesTheBranchIsGone) {
  Xid xid = MakeXid(1, "g", "b");
  Status nota = MapMariaDbError(1397, "XAE04", "XAER_NOTA: Unknown XID", "accounts", &xid,
                                "XA COMMIT");
  Status scan_failed = MapMariaDbError(2013, "HY000", "Lost connection", "accounts", nullptr,
                                       "XA RECOVER");
  struct Row {
    NotaScan scan;
    Code expected;
    std::string_view says;
  };
  const Row table[] = {
      {NotaScan::kNotListed, Code::kNoTa, "Unknown XID"},
      {NotaScan::kListed, Code::kRmFail, "still attached to the session that prepared it"},
      {NotaScan::kFailed, Code::kRmFail, "the XA RECOVER that would confirm it failed"},
  };
  for (const Row& row : table) {
    Status read = ReadPhaseTwoNota(nota, row.scan, row.scan == NotaScan::kFailed ? scan_failed
                                                                                 : Status::Ok(),
                                   "accounts", xid);
    EXPECT_EQ(read.code(), row.expected) << static_cast<int>(row.scan) << ": " << read.ToString();
    EXPECT_NE(read.message().find(row.says), std::string::npos) << read.ToString();
    EXPECT_NE(read.message().find(xid.ToString()), std::string::npos) << read.ToString();
  }
  // A failed scan names its own failure, so the operator sees why the NOTA was not believed.
  Status in_doubt = ReadPhaseTwoNota(nota, NotaScan::kFailed, scan_failed, "accounts", xid);
  EXPECT_NE(in_doubt.message().find("Lost connection"), std::string::npos) << in_doubt.ToString();
}

TEST(MariaDbDialect, EndedSessionChecksNameTheSessionAndSayRetry) {
  EXPECT_EQ(SessionPresentSql(42),
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = 42");
  Xid xid = MakeXid(1, "g", "b");
  Status busy = EndedSessionStillPresent("accounts", xid, 42);
  EXPECT_EQ(busy.code(), Code::kRmFail);
  EXPECT_NE(busy.message().find("session 42"), std::string::npos) << busy.ToString();
  EXPECT_NE(busy.message().find("retry later"), std::string::npos) << busy.ToString();
  EXPECT_NE(busy.message().find(xid.ToString()), std::string::npos) << busy.ToString();
}

// ---- The 3PC fence (and the wait both MariaDB drivers share) -----------------------------

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(MariaDbDialect, KillIsOneStatementWithTheDecimalId) {
  EXPECT_EQ(KillConnectionSql(42), "KILL CONNECTION 42");
  EXPECT_EQ(KillConnectionSql(18446744073709551615u), "KILL CONNECTION 18446744073709551615");
}

TEST(MariaDbDialect, KillRefusalsAreReadByTheServersErrorNumber) {
  EXPECT_EQ(ReadKillRefusal(1094), KillRefusal::kNoSuchSession);
  EXPECT_EQ(ReadKillRefusal(1095), KillRefusal::kNotPermitted);
  for (int other : {0, 1045, 1399, 2006, 2013}) {
    EXPECT_EQ(ReadKillRefusal(other), KillRefusal::kOther) << other;
  }
}

TEST(MariaDbDialect, RefusedKillSaysWhichPrivilegeToGrantAndToWait) {
  EXPECT_THAT(KillNotPermitted("accounts", 42, "agent", "You are not owner of thread 42"),
              StatusIs(Code::kRmError,
                       AllOf(HasSubstr("KILL CONNECTION 42"), HasSubstr("server error 1095"),
                             HasSubstr("CONNECTION ADMIN"), HasSubstr("'agent'"),
                             HasSubstr("must not be finished"))));
  EXPECT_THAT(KilledSessionNotVisible("accounts", 42, "agent"),
              StatusIs(Code::kRmError, AllOf(HasSubstr("GRANT PROCESS"), HasSubstr("42"),
                                             HasSubstr("do not finish the branch"))));
}

TEST(SessionWait, FenceRefusesSessionZeroAndItsOwnSession) {
  EXPECT_THAT(CheckFenceTarget(0, 7, "accounts"),
              StatusIs(Code::kInval, HasSubstr("no fence")));
  EXPECT_THAT(CheckFenceTarget(7, 7, "accounts"),
              StatusIs(Code::kInval, AllOf(HasSubstr("own session"), HasSubstr("7"))));
  EXPECT_TRUE(CheckFenceTarget(8, 7, "accounts").ok());
  EXPECT_THAT(FencedSessionStillPresent("accounts", 8),
              StatusIs(Code::kRmFail, AllOf(HasSubstr("session 8"), HasSubstr("5000 ms"),
                                            HasSubstr("must not be finished yet"))));
}

TEST(SessionWait, ReturnsGoneAtTheFirstLookThatMissesTheSessionAfterTheGracePause) {
  const SessionWaitRule rule{std::chrono::milliseconds(5000), std::chrono::milliseconds(1),
                             std::chrono::milliseconds(30)};
  int looks = 0;
  const auto began = std::chrono::steady_clock::now();
  Result<SessionWaitEnd> end = AwaitSessionGone(rule, [&]() -> Result<bool> {
    ++looks;
    return looks < 4;
  });
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, SessionWaitEnd::kGone);
  EXPECT_EQ(looks, 4);
  EXPECT_GE(took, rule.grace_after_gone + 3 * rule.poll);
}

TEST(SessionWait, GivesUpAfterTheBoundWhenTheSessionStaysListed) {
  const SessionWaitRule rule{std::chrono::milliseconds(40), std::chrono::milliseconds(2),
                             std::chrono::milliseconds(5000)};
  int looks = 0;
  const auto began = std::chrono::steady_clock::now();
  Result<SessionWaitEnd> end = AwaitSessionGone(rule, [&]() -> Result<bool> {
    ++looks;
    return true;
  });
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(end.ok()) << end.status().ToString();
  EXPECT_EQ(*end, SessionWaitEnd::kStillPresent);
  EXPECT_GE(took, rule.bound);
  EXPECT_LT(took, rule.grace_after_gone);  // no grace pause for a session that stayed
  EXPECT_GE(looks, 2);
}

TEST(SessionWait, AFailedLookEndsTheWaitWithItsError) {
  int looks = 0;
  Result<SessionWaitEnd> end = AwaitSessionGone(kSessionWaitRule, [&]() -> Result<bool> {
    if (++looks == 2) return Status(Code::kRmFail, "process list unreadable");
    return true;
  });
  EXPECT_THAT(end.status(), StatusIs(Code::kRmFail, HasSubstr("process list unreadable")));
  EXPECT_EQ(looks, 2);
}

TEST(SessionWait, TheSharedRuleIsTheMeasuredOne) {
  EXPECT_EQ(kSessionWaitRule.bound, std::chrono::milliseconds(5000));
  EXPECT_EQ(kSessionWaitRule.poll, std::chrono::milliseconds(1));
  EXPECT_EQ(kSessionWaitRule.grace_after_gone, std::chrono::milliseconds(50));
}

// ---- The commit marker -----------------------------------------------------------------------

using ::testing::Not;

Xid MarkerXid(std::string_view gtrid) { return MakeXid(Xid::kMarkerFormatId, gtrid, ""); }

std::string LowerHexOf(std::string_view bytes) { return internal::LowerHex(bytes); }

// How many hex literals X'..' a statement holds.
long HexLiterals(const std::string& sql) {
  long count = 0;
  for (size_t at = sql.find("X'"); at != std::string::npos; at = sql.find("X'", at + 2)) ++count;
  return count;
}

std::vector<Xid> MarkerXids(size_t count) {
  std::vector<Xid> xids;
  for (size_t i = 0; i < count; ++i) xids.push_back(MarkerXid("g" + std::to_string(i)));
  return xids;
}

TEST(MariaDbMarker, WriteInsertsTheCommittedRowWithTheGtridInHex) {
  Xid global = Xid::Make(7, "ab", "").value();
  EXPECT_EQ(WriteCommitMarkerSql("xa_commit_marker", global).value(),
            "INSERT INTO xa_commit_marker (gtrid, format_id, node_id, outcome) VALUES "
            "(X'6162',7,0,'C')");
  // An xa-generated Xid carries its node id, which the row stores for ListCommitMarkers.
  Xid ours = XidGenerator(0x1234).Next(Protocol::kMarkerCommit);
  EXPECT_THAT(WriteCommitMarkerSql("db1.markers", ours).value(),
              HasSubstr(",1480674637,4660,'C')"));
  // Hostile bytes stay hex: the only quotes are the literals' own.
  std::string hostile = WriteCommitMarkerSql("t", MarkerXid(kHostile)).value();
  EXPECT_EQ(std::count(hostile.begin(), hostile.end(), '\''), 4) << hostile;
  EXPECT_EQ(hostile.find_first_of(";\\\"\n"), std::string::npos) << hostile;
  EXPECT_EQ(hostile.find('\0'), std::string::npos);
}

TEST(MariaDbMarker, SettleWaitIsWholeSecondsRoundedUpAndAtLeastOne) {
  using std::chrono::milliseconds;
  EXPECT_EQ(SettleWaitSeconds(milliseconds(-5)), 1);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(0)), 1);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(1)), 1);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(1000)), 1);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(1001)), 2);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(2500)), 3);
  EXPECT_EQ(SettleWaitSeconds(milliseconds(INT64_MAX)), 1073741824);
}

TEST(MariaDbMarker, SettleBoundsOnlyItsOwnStatementsLockWait) {
  Xid global = Xid::Make(7, "ab", "").value();
  EXPECT_EQ(SettleCommitMarkerSql("m", global, std::chrono::milliseconds(1500)).value(),
            "SET STATEMENT innodb_lock_wait_timeout=2 FOR INSERT IGNORE INTO m (gtrid, format_id, "
            "node_id, outcome) VALUES (X'6162',7,0,'A')");
  EXPECT_EQ(ReadOutcomeSql("m", global).value(), "SELECT outcome FROM m WHERE gtrid = X'6162'");
}

TEST(MariaDbMarker, ReadsAndDeletesNameAtMost500XidsAStatement) {
  EXPECT_TRUE(ReadCommitMarkersSql("m", {}).value().empty());
  EXPECT_TRUE(DeleteCommitMarkersSql("m", {}).value().empty());
  std::vector<Xid> xids = MarkerXids(1001);
  std::vector<std::string> reads = ReadCommitMarkersSql("m", xids).value();
  std::vector<std::string> deletes = DeleteCommitMarkersSql("m", xids).value();
  ASSERT_EQ(reads.size(), 3u);
  ASSERT_EQ(deletes.size(), 3u);
  const std::vector<long> sizes = {500, 500, 1};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(HexLiterals(reads[i]), sizes[i]);
    EXPECT_EQ(HexLiterals(deletes[i]), sizes[i]);
    EXPECT_EQ(reads[i].rfind("SELECT HEX(gtrid), format_id, outcome FROM m WHERE gtrid IN (X'", 0),
              0u)
        << reads[i].substr(0, 80);
    EXPECT_EQ(deletes[i].rfind("DELETE FROM m WHERE gtrid IN (X'", 0), 0u)
        << deletes[i].substr(0, 80);
  }
  // Every Xid once, in order.
  EXPECT_THAT(reads[0], HasSubstr("(X'6730',X'6731',"));
  EXPECT_THAT(reads[2], HasSubstr("IN (X'" + LowerHexOf("g1000") + "')"));
}

TEST(MariaDbMarker, ListReadsOneNodeOldestFirstUpToTheLimit) {
  EXPECT_EQ(ListCommitMarkersSql("db.m", 42, 10).value(),
            "SELECT HEX(gtrid), format_id, outcome FROM db.m WHERE node_id = 42 ORDER BY "
            "created, gtrid LIMIT 10");
  EXPECT_THAT(ListCommitMarkersSql("m", 0xffffffffu, 0).value(),
              HasSubstr("WHERE node_id = 4294967295 ORDER BY created, gtrid LIMIT 0"));
}

TEST(MariaDbMarker, CreateTableIsTheDocumentedSchema) {
  EXPECT_EQ(CreateMarkerTableSql("xa_commit_marker").value(),
            "CREATE TABLE IF NOT EXISTS xa_commit_marker (gtrid VARBINARY(64) NOT NULL PRIMARY "
            "KEY, format_id INT NOT NULL, node_id INT UNSIGNED NOT NULL, outcome CHAR(1) NOT NULL "
            "CHECK (outcome IN ('C', 'A')), created TIMESTAMP(6) NOT NULL DEFAULT "
            "CURRENT_TIMESTAMP(6), KEY xa_commit_marker_by_node (node_id, created)) ENGINE=InnoDB");
}

TEST(MariaDbMarker, TableNamesThatAreNoPlainIdentifierGiveNoText) {
  Xid global = MarkerXid("g");
  for (std::string_view table :
       {"", "a b", "t'", "t;DROP", "1t", "a.b.c", "`t`", "t\"", "schema.", ".t"}) {
    SCOPED_TRACE(std::string(table));
    EXPECT_THAT(CreateMarkerTableSql(table), StatusIs(Code::kInval));
    EXPECT_THAT(WriteCommitMarkerSql(table, global), StatusIs(Code::kInval));
    EXPECT_THAT(SettleCommitMarkerSql(table, global, std::chrono::seconds(1)),
                StatusIs(Code::kInval));
    EXPECT_THAT(ReadOutcomeSql(table, global), StatusIs(Code::kInval));
    EXPECT_THAT(ReadCommitMarkersSql(table, {global}), StatusIs(Code::kInval));
    EXPECT_THAT(ListCommitMarkersSql(table, 1, 1), StatusIs(Code::kInval));
    EXPECT_THAT(DeleteCommitMarkersSql(table, {global}), StatusIs(Code::kInval));
  }
}

Status MarkerError(int error_number, MarkerCall call, const Xid* global) {
  Status mapped = MapMariaDbError(error_number, "HY000", "server text", "rm1", global,
                                  std::string(MarkerCallName(call)) + " (statement)");
  return ReadMarkerError(std::move(mapped), error_number, call, "rm1", "xa_commit_marker",
                         "xa_tm", global);
}

TEST(MariaDbMarker, ErrorsReadAsEachCallNeeds) {
  Xid global = MarkerXid("g");
  // The coordinator's row collides with recovery's: the transaction was settled as aborted.
  EXPECT_THAT(MarkerError(1062, MarkerCall::kWrite, &global),
              StatusIs(Code::kDupId, HasSubstr("settled it as aborted")));
  // The settle's bounded wait ran out: retry later. In the branch it is the branch's timeout.
  EXPECT_THAT(MarkerError(1205, MarkerCall::kSettle, &global),
              StatusIs(Code::kRetry, HasSubstr("settle again later")));
  EXPECT_THAT(MarkerError(1205, MarkerCall::kWrite, &global), StatusIs(Code::kRbTimeout));
  EXPECT_THAT(MarkerError(1213, MarkerCall::kWrite, &global), StatusIs(Code::kRbDeadlock));
  // The table: the code of the statement mapping, with what to do.
  EXPECT_THAT(MarkerError(1146, MarkerCall::kList, nullptr),
              StatusIs(Code::kRmError, AllOf(HasSubstr("'xa_commit_marker' does not exist"),
                                             HasSubstr("docs/marker-commit.md"))));
  EXPECT_THAT(MarkerError(1142, MarkerCall::kDelete, nullptr),
              StatusIs(Code::kRmError,
                       AllOf(HasSubstr("needs the DELETE"),
                             HasSubstr("GRANT SELECT, INSERT, DELETE ON xa_commit_marker TO "
                                       "'xa_tm'"))));
  EXPECT_THAT(MarkerError(1054, MarkerCall::kRead, nullptr),
              StatusIs(Code::kRmError, HasSubstr("lacks a column")));
  // Outside a branch no branch is involved, whatever the code.
  EXPECT_THAT(MarkerError(1064, MarkerCall::kRead, nullptr),
              StatusIs(Code::kRmError, AllOf(HasSubstr("no branch is involved"),
                                             Not(HasSubstr("the branch goes on")))));
}

TEST(CommitMarkerRows, ValidRowsParseAndDamagedOnesAreNamed) {
  using internal::MarkerTextRow;
  const std::string gtrid_hex = LowerHexOf("gtrid-1");
  Result<std::vector<MarkerRow>> rows = internal::ParseMarkerRows(
      {MarkerTextRow{gtrid_hex, "1480674637", "C"},
       MarkerTextRow{"6162", "7", "A"}},
      "rm1", "m");
  ASSERT_THAT(rows, test::IsOk());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].global, MarkerXid("gtrid-1"));
  EXPECT_EQ((*rows)[0].outcome, MarkerOutcome::kCommitted);
  EXPECT_EQ((*rows)[1].global, Xid::Make(7, "ab", "").value());
  EXPECT_EQ((*rows)[1].outcome, MarkerOutcome::kAborted);
  // Upper-case hex (MariaDB's HEX()) and a blank-padded CHAR read the same.
  EXPECT_EQ(internal::ParseMarkerRow("6A6B", "1", "C ", "rm1", "m").value().global,
            Xid::Make(1, "jk", "").value());

  struct Bad {
    MarkerTextRow row;
    std::string named;
  };
  for (const Bad& bad : std::initializer_list<Bad>{
           {{"6162", "7", "X"}, "'X'"},
           {{"6162", "7", std::nullopt}, "outcome NULL"},
           {{"zz", "7", "C"}, "gtrid is no hex"},
           {{"", "7", "C"}, "gtrid"},
           {{"6162", "-1", "C"}, "format ID"},
           {{"6162", "2147483648", "C"}, "format"},
           {{std::string(130, 'a'), "1", "C"}, "gtrid"},
           {{"6162", "7"}, "expected 3"}}) {
    EXPECT_THAT(internal::ParseMarkerRows({bad.row}, "rm1", "m"),
                StatusIs(Code::kRmError, AllOf(HasSubstr("marker table 'm'"),
                                               HasSubstr(bad.named))));
  }
}

TEST(CommitMarkerRows, ChunksKeepOrderAndSize) {
  EXPECT_TRUE(internal::MarkerChunks({}).empty());
  std::vector<Xid> xids = MarkerXids(1000);
  std::vector<std::vector<Xid>> chunks = internal::MarkerChunks(xids);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].size(), 500u);
  EXPECT_EQ(chunks[1].size(), 500u);
  EXPECT_EQ(chunks[1].front(), xids[500]);
  EXPECT_EQ(internal::MarkerChunks(MarkerXids(501)).back().size(), 1u);
}

}  // namespace
}  // namespace xa::internal::mariadb
