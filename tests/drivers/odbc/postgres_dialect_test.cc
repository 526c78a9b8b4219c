#include "src/sql_dialect/postgres_dialect.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testutil/status_matchers.h"

namespace xa::internal::postgres {
namespace {

const std::string kHostile = std::string("'); DROP TABLE t; --\\\"\0\n\xff", 25);

using test::StatusIs;

TEST(PostgresDialect, XidGidRoundTripsAtEveryLength) {
  for (size_t glen = 1; glen <= 64; ++glen) {
    for (size_t blen : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, glen, size_t{64}}) {
      std::string gtrid, bqual;
      for (size_t i = 0; i < glen; ++i) gtrid.push_back(static_cast<char>(i * 37 + glen));
      for (size_t i = 0; i < blen; ++i) bqual.push_back(static_cast<char>(255 - i));
      Xid xid = Xid::Make(0x7fffffff, gtrid, bqual).value();
      std::string gid = XidToGid(xid);
      ASSERT_LT(gid.size(), 200u);
      ASSERT_LE(gid.size(), kMaxXaGidSize);
      ASSERT_EQ(gid.find_first_not_of(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
                std::string::npos);
      ASSERT_EQ(XidFromGid(gid).value(), xid) << gid;
    }
  }
}

TEST(PostgresDialect, ForeignOrNonCanonicalGidsAreRefused) {
  std::string good = XidToGid(Xid::Make(1, "ab", "c").value());
  EXPECT_EQ(good, "xa1.00000001.YWI.Yw");
  for (const char* gid : {"", "foreign-tx-1", "xa1.", "xa1.00000001.YWI", "xa1.0000001.YWI.Yw",
                          "xa1.0000000G.YWI.Yw", "xa1.0000000A.YWI.Yw", "xa1.00000001.YWJ.Yw",
                          "xa1.00000001.YWI.Yw.", "xa1.00000001.YWI=.Yw", "xa1.00000001..Yw",
                          "xa1.00000001.Y.Yw", "xa1.80000000.YWI.Yw", "XA1.00000001.YWI.Yw"}) {
    auto parsed = XidFromGid(gid);
    EXPECT_THAT(parsed, StatusIs(Code::kInval)) << gid;
  }
}

TEST(PostgresDialect, GidLiteralIsQuotedRestrictedAlphabet) {
  for (const Xid& xid : {Xid::Make(0x7fffffff, std::string(64, '\xff'), std::string(64, '\'')).value(),
                         Xid::Make(1, kHostile, kHostile).value(),
                         Xid::Make(0, std::string("\0", 1), "").value()}) {
    Result<std::string> literal = GidLiteral(xid);
    ASSERT_TRUE(literal.ok());
    ASSERT_GE(literal->size(), 2u);
    EXPECT_EQ(literal->front(), '\'');
    EXPECT_EQ(literal->back(), '\'');
    std::string inner = literal->substr(1, literal->size() - 2);
    EXPECT_LE(inner.size(), kMaxGidSize);
    EXPECT_EQ(inner.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"),
              std::string::npos)
        << inner;
    EXPECT_EQ(XidFromGid(inner).value(), xid);
  }
  Xid xid = Xid::Make(7, "g", "b").value();
  EXPECT_EQ(PrepareTransactionSql(xid).value(), "PREPARE TRANSACTION " + GidLiteral(xid).value());
  EXPECT_EQ(CommitPreparedSql(xid).value(), "COMMIT PREPARED " + GidLiteral(xid).value());
  EXPECT_EQ(RollbackPreparedSql(xid).value(), "ROLLBACK PREPARED " + GidLiteral(xid).value());
}

TEST(PostgresDialect, MapsEachSqlStateAndStepToItsXaCode) {
  struct Case {
    Step step;
    const char* sqlstate;
    const char* text;
    Code code;
  };
  const std::vector<Case> cases = {
      {Step::kCommitPrepared, "42704", "prepared transaction with identifier \"x\" does not exist", Code::kNoTa},
      {Step::kRollbackPrepared, "42704", "does not exist", Code::kNoTa},
      {Step::kPrepare, "42710", "transaction identifier \"x\" is already in use", Code::kDupId},
      {Step::kPrepare, "22023", "transaction identifier \"x\" is too long", Code::kInval},
      {Step::kPrepare, "55000", "prepared transactions are disabled", Code::kConfig},
      {Step::kCommitPrepared, "55000", "prepared transaction with identifier \"x\" is busy", Code::kRetry},
      {Step::kPrepare, "53200", "maximum number of prepared transactions reached", Code::kRmError},
      {Step::kWork, "40P01", "deadlock detected", Code::kRbDeadlock},
      {Step::kPrepare, "40001", "could not serialize access", Code::kRbTransient},
      {Step::kCommitPrepared, "57P01", "terminating connection due to administrator command", Code::kRmFail},
      {Step::kPrepare, "57P02", "crash shutdown", Code::kRmFail},
      {Step::kCommitPrepared, "57P03", "the database system is starting up", Code::kRmFail},
      {Step::kCommitPrepared, "57P04", "database dropped", Code::kRmFail},
      {Step::kCommitPrepared, "57P05", "idle session timeout", Code::kRmFail},
      {Step::kPrepare, "25P03", "idle-in-transaction timeout", Code::kRmFail},
      {Step::kCommitPrepared, "08006", "connection failure", Code::kRmFail},
      {Step::kPrepare, "08S01", "communication link failure", Code::kRmFail},
      {Step::kCommitPrepared, "57014", "canceling statement due to statement timeout", Code::kRmFail},
      {Step::kWork, "57014", "canceling statement due to statement timeout", Code::kRbTimeout},
      {Step::kWork, "55P03", "canceling statement due to lock timeout", Code::kRbTimeout},
      {Step::kCommitPrepared, "42501", "permission denied to finish prepared transaction", Code::kConfig},
      {Step::kCommitPrepared, "0A000", "prepared transaction belongs to another database", Code::kConfig},
      {Step::kReadOnlyProbe, "25P02", "current transaction is aborted", Code::kRbRollback},
      {Step::kCommitPrepared, "25001", "cannot run inside a transaction block", Code::kInternal},
      {Step::kPrepare, "0A000", "cannot PREPARE a transaction that has operated on temporary objects", Code::kRbRollback},
      {Step::kCommitOnePhase, "23505", "duplicate key value violates unique constraint", Code::kRbIntegrity},
      {Step::kConnect, "28P01", "password authentication failed", Code::kConfig},
      {Step::kWork, "42P01", "relation does not exist", Code::kRmError},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CodeForPostgresError(c.step, c.sqlstate, c.text), c.code)
        << StepName(c.step) << " " << c.sqlstate << " " << c.text;
  }
}

TEST(PostgresDialect, MessagesSayWhatToDoAndEscapeServerText) {
  Xid xid = Xid::Make(1, "g", "").value();
  Status terminated = MapPostgresError(Step::kCommitPrepared, "57P01",
                                       "FATAL: terminating connection\n\x01", "ledger", &xid);
  EXPECT_EQ(terminated.code(), Code::kRmFail);
  EXPECT_NE(terminated.message().find("IN DOUBT"), std::string::npos);
  EXPECT_NE(terminated.message().find("ledger"), std::string::npos);
  EXPECT_NE(terminated.message().find(xid.ToString()), std::string::npos);
  EXPECT_NE(terminated.message().find("\\x0a"), std::string::npos);
  EXPECT_EQ(terminated.message().find('\n'), std::string::npos);
  Status slots = MapPostgresError(Step::kPrepare, "53200", "maximum number of prepared transactions reached",
                                  "ledger", &xid);
  EXPECT_NE(slots.message().find("ALERT"), std::string::npos);
}

// A lost connection leaves a branch in doubt only where a prepared transaction may have been
// made or finished; a failed connect, BEGIN or statement names no doubt, and no step is named by
// a verb PostgreSQL does not have.
TEST(PostgresDialect, LostConnectionIsInDoubtOnlyFromPrepareOn) {
  Xid xid = Xid::Make(1, "g", "").value();
  struct Row {
    Step step;
    bool in_doubt;
  };
  const Row table[] = {
      {Step::kConnect, false},        {Step::kProbe, false},         {Step::kBegin, false},
      {Step::kWork, false},           {Step::kReadOnlyProbe, false}, {Step::kRollback, false},
      {Step::kRecover, false},        {Step::kPrepare, true},        {Step::kCommitOnePhase, true},
      {Step::kCommitPrepared, true},  {Step::kRollbackPrepared, true},
  };
  for (const Row& row : table) {
    SCOPED_TRACE(std::string(StepName(row.step)));
    EXPECT_EQ(LostConnectionLeavesBranchInDoubt(row.step), row.in_doubt);
    Status lost = MapPostgresError(row.step, "08006", "connection lost", "ledger", &xid);
    EXPECT_EQ(lost.code(), Code::kRmFail);
    EXPECT_EQ(lost.message().find("IN DOUBT") != std::string::npos, row.in_doubt)
        << lost.ToString();
    EXPECT_EQ(lost.message().find("XA START"), std::string::npos) << lost.ToString();
  }
  EXPECT_EQ(StepName(Step::kBegin), "BEGIN (manual-commit mode)");
}

TEST(PostgresDialect, ProbeRefusesDisabledPreparedTransactionsWithTheFix) {
  ProbeRow probe;
  probe.version_text = "15.18";
  probe.version_num = 150018;
  probe.max_prepared_transactions = 0;
  probe.max_connections = 20;
  probe.may_read_prepared = true;
  ServerInfo info;
  Status refused = CheckProbe(probe, "ledger", &info);
  EXPECT_EQ(refused.code(), Code::kConfig);
  EXPECT_NE(refused.message().find("max_prepared_transactions in postgresql.conf"), std::string::npos);
  EXPECT_NE(refused.message().find("max_connections (currently 20)"), std::string::npos);
  EXPECT_NE(refused.message().find("restart"), std::string::npos);
  EXPECT_FALSE(info.xa_supported);

  probe.max_prepared_transactions = 100;
  probe.max_connections = 100;
  ServerInfo accepted;
  EXPECT_TRUE(CheckProbe(probe, "ledger", &accepted).ok());
  EXPECT_EQ(accepted.major, 15);
  EXPECT_EQ(accepted.minor, 18);
  EXPECT_TRUE(accepted.xa_supported);
  EXPECT_TRUE(ProbeWarning(probe).empty());
  probe.max_connections = 200;
  EXPECT_NE(ProbeWarning(probe).find("53200"), std::string::npos);

  probe.version_num = 90624;
  EXPECT_EQ(CheckProbe(probe, "ledger", &info).code(), Code::kConfig);
}

TEST(PostgresDialect, RecoverRowsSplitOursForeignAndUntouchable) {
  Xid ours = Xid::Make(Xid::kFormatId, "gtrid", "b").value();
  Xid others = Xid::Make(9, "other-owner", "").value();
  std::string almost = XidToGid(ours) + "=";
  std::vector<RecoverRow> rows = {
      {XidToGid(ours), "xa_tm", true},
      {"foreign-app-42", "app", false},
      {almost, "xa_tm", true},
      {XidToGid(others), "someone", false},
      {std::string("xa1.\xff'\0", 7), "evil", false},
  };
  std::vector<std::string> untouchable;
  RecoverScan scan = ParseRecoverRows(rows, /*superuser=*/false, &untouchable);
  ASSERT_EQ(scan.prepared.size(), 2u);
  EXPECT_EQ(scan.prepared[0], ours);
  EXPECT_EQ(scan.prepared[1], others);
  ASSERT_EQ(scan.unparsed.size(), 3u);
  EXPECT_NE(scan.unparsed[0].raw.find("foreign-app-42"), std::string::npos);
  EXPECT_NE(scan.unparsed[2].raw.find("\\xff"), std::string::npos);
  ASSERT_EQ(untouchable.size(), 1u);
  EXPECT_NE(untouchable[0].find("someone"), std::string::npos);

  untouchable.clear();
  ParseRecoverRows(rows, /*superuser=*/true, &untouchable);
  EXPECT_TRUE(untouchable.empty());
}

TEST(PostgresDialect, RandomGidsNeverParseAsSomethingElse) {
  std::mt19937 random(20261124);
  Xid model = Xid::Make(Xid::kFormatId, "gtrid-bytes", "b").value();
  std::string canonical = XidToGid(model);
  for (int i = 0; i < 20000; ++i) {
    std::string gid;
    if (i % 2 == 0) {
      // Random bytes of random length.
      gid.resize(random() % 220);
      for (char& c : gid) c = static_cast<char>(random() & 0xff);
    } else {
      // One byte of a canonical GID changed, inserted or removed.
      gid = canonical;
      size_t at = random() % gid.size();
      switch (random() % 3) {
        case 0:
          gid[at] = static_cast<char>(random() & 0xff);
          break;
        case 1:
          gid.insert(gid.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(random() & 0xff));
          break;
        default:
          gid.erase(at, 1);
      }
    }
    RecoverScan scan = ParseRecoverRows({{gid, "owner", true}}, false, nullptr);
    ASSERT_EQ(scan.prepared.size() + scan.unparsed.size(), 1u);
    if (!scan.prepared.empty()) {
      // Whatever parses must render back to exactly the same GID: one encoding per Xid.
      EXPECT_EQ(XidToGid(scan.prepared[0]), gid);
    } else {
      for (char c : scan.unparsed[0].raw) {
        EXPECT_TRUE(c >= 0x20 && c < 0x7f) << "unparsed entries are escaped";
      }
    }
  }
}

// ---- The 3PC fence ------------------------------------------------------------------------

TEST(PostgresDialect, TerminateIsRenderedOnlyForIdsABackendCanHave) {
  EXPECT_EQ(TerminateBackendSql(4242), "SELECT pg_catalog.pg_terminate_backend(4242)");
  EXPECT_EQ(TerminateBackendSql(2147483647u),
            "SELECT pg_catalog.pg_terminate_backend(2147483647)");
  EXPECT_EQ(TerminateBackendSql(0), std::nullopt);
  EXPECT_EQ(TerminateBackendSql(2147483648u), std::nullopt);
  EXPECT_EQ(TerminateBackendSql(18446744073709551615u), std::nullopt);
  EXPECT_EQ(BackendPresentSql(4242),
            "SELECT COUNT(*) FROM pg_catalog.pg_stat_activity WHERE pid = 4242");
}

TEST(PostgresDialect, ProbeReadsTheBackendPidAsItsLastColumn) {
  EXPECT_NE(std::string_view(kProbeSql).find("pg_catalog.pg_backend_pid()"), std::string::npos);
  EXPECT_EQ(kProbeColumns, 9u);
}

TEST(PostgresDialect, RefusedTerminateSaysWhichRoleToGrant) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  EXPECT_THAT(TerminateFailure("42501", "permission denied to terminate process", "ledger", 4242,
                               "agent"),
              StatusIs(Code::kRmError,
                       AllOf(HasSubstr("pg_terminate_backend(4242)"),
                             HasSubstr("GRANT pg_signal_backend TO agent"),
                             HasSubstr("must not be finished"))));
  // Anything else is mapped like any other statement of the fence.
  EXPECT_THAT(TerminateFailure("08006", "connection failure", "ledger", 4242, "agent"),
              StatusIs(Code::kRmFail, HasSubstr("fence (pg_terminate_backend)")));
  EXPECT_FALSE(LostConnectionLeavesBranchInDoubt(Step::kFence));
}

// ---- The commit marker -----------------------------------------------------------------------

Xid MarkerXid(std::string_view gtrid) {
  return Xid::Make(Xid::kMarkerFormatId, gtrid, "").value();
}

// How many bytea literals '\x..'::bytea a statement holds.
long ByteaLiterals(const std::string& sql) {
  long count = 0;
  for (size_t at = sql.find("::bytea"); at != std::string::npos; at = sql.find("::bytea", at + 1)) {
    ++count;
  }
  return count;
}

TEST(PostgresMarker, WriteInsertsTheCommittedRowWithTheGtridAsHexBytea) {
  Xid global = Xid::Make(7, "ab", "").value();
  EXPECT_EQ(WriteCommitMarkerSql("xa_commit_marker", global).value(),
            "INSERT INTO xa_commit_marker (gtrid, format_id, node_id, outcome) VALUES "
            "('\\x6162'::bytea,7,0,'C')");
  Xid ours = XidGenerator(0xfffffffeu).Next(Protocol::kMarkerCommit);
  EXPECT_THAT(WriteCommitMarkerSql("s.m", ours).value(),
              ::testing::HasSubstr("::bytea,1480674637,4294967294,'C')"));
  // Hostile bytes stay hex: the only quotes are the literal's own, the only backslash its \x.
  std::string hostile = WriteCommitMarkerSql("t", MarkerXid(kHostile)).value();
  EXPECT_EQ(std::count(hostile.begin(), hostile.end(), '\''), 4) << hostile;
  EXPECT_EQ(std::count(hostile.begin(), hostile.end(), '\\'), 1) << hostile;
  EXPECT_EQ(hostile.find_first_of(";\"\n"), std::string::npos) << hostile;
  EXPECT_EQ(hostile.find('\0'), std::string::npos);
}

TEST(PostgresMarker, SettleIsOneReadCommittedTransactionWithABoundedLockWait) {
  Xid global = Xid::Make(7, "ab", "").value();
  EXPECT_EQ(kReadCommittedSql, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
  EXPECT_EQ(SettleLockTimeoutSql(std::chrono::milliseconds(1500)),
            "SET LOCAL lock_timeout = '1500ms'");
  // 0 would mean "no limit": never less than 1ms.
  EXPECT_EQ(SettleLockTimeoutSql(std::chrono::milliseconds(0)), "SET LOCAL lock_timeout = '1ms'");
  EXPECT_EQ(SettleLockTimeoutSql(std::chrono::milliseconds(-3)), "SET LOCAL lock_timeout = '1ms'");
  EXPECT_EQ(SettleLockTimeoutSql(std::chrono::milliseconds(INT64_MAX)),
            "SET LOCAL lock_timeout = '2147483647ms'");
  EXPECT_EQ(SettleCommitMarkerSql("m", global).value(),
            "INSERT INTO m (gtrid, format_id, node_id, outcome) VALUES ('\\x6162'::bytea,7,0,'A') "
            "ON CONFLICT (gtrid) DO NOTHING");
  EXPECT_EQ(ReadOutcomeSql("m", global).value(),
            "SELECT outcome FROM m WHERE gtrid = '\\x6162'::bytea");
}

TEST(PostgresMarker, ReadsAndDeletesNameAtMost500XidsAStatement) {
  EXPECT_TRUE(ReadCommitMarkersSql("m", {}).value().empty());
  EXPECT_TRUE(DeleteCommitMarkersSql("m", {}).value().empty());
  std::vector<Xid> xids;
  for (int i = 0; i < 1200; ++i) xids.push_back(MarkerXid("g" + std::to_string(i)));
  std::vector<std::string> reads = ReadCommitMarkersSql("m", xids).value();
  std::vector<std::string> deletes = DeleteCommitMarkersSql("m", xids).value();
  ASSERT_EQ(reads.size(), 3u);
  ASSERT_EQ(deletes.size(), 3u);
  const std::vector<long> sizes = {500, 500, 200};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ByteaLiterals(reads[i]), sizes[i]);
    EXPECT_EQ(ByteaLiterals(deletes[i]), sizes[i]);
    EXPECT_EQ(reads[i].rfind("SELECT encode(gtrid, 'hex'), format_id, outcome FROM m WHERE gtrid "
                             "IN ('\\x",
                             0),
              0u)
        << reads[i].substr(0, 90);
    EXPECT_EQ(deletes[i].rfind("DELETE FROM m WHERE gtrid IN ('\\x", 0), 0u);
  }
  EXPECT_THAT(reads[0], ::testing::HasSubstr("IN ('\\x6730'::bytea,'\\x6731'::bytea,"));
}

TEST(PostgresMarker, ListReadsOneNodeOldestFirstUpToTheLimit) {
  EXPECT_EQ(ListCommitMarkersSql("s.m", 42, 10).value(),
            "SELECT encode(gtrid, 'hex'), format_id, outcome FROM s.m WHERE node_id = 42 ORDER BY "
            "created, gtrid LIMIT 10");
  EXPECT_THAT(ListCommitMarkersSql("m", 1, 0).value(), ::testing::EndsWith(" LIMIT 0"));
  // LIMIT takes a bigint.
  EXPECT_THAT(ListCommitMarkersSql("m", 1, SIZE_MAX).value(),
              ::testing::EndsWith(" LIMIT 9223372036854775807"));
}

TEST(PostgresMarker, CreateTableIsTheDocumentedSchemaWithAnUnqualifiedIndexName) {
  std::vector<std::string> plain = CreateMarkerTableSql("xa_commit_marker").value();
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_EQ(plain[0],
            "CREATE TABLE IF NOT EXISTS xa_commit_marker (gtrid bytea NOT NULL PRIMARY KEY, "
            "format_id integer NOT NULL, node_id bigint NOT NULL, outcome char(1) NOT NULL CHECK "
            "(outcome IN ('C', 'A')), created timestamptz NOT NULL DEFAULT clock_timestamp())");
  EXPECT_EQ(plain[1],
            "CREATE INDEX IF NOT EXISTS xa_commit_marker_by_node ON xa_commit_marker (node_id, "
            "created)");
  std::vector<std::string> qualified = CreateMarkerTableSql("xa.markers").value();
  ASSERT_EQ(qualified.size(), 2u);
  EXPECT_THAT(qualified[0], ::testing::StartsWith("CREATE TABLE IF NOT EXISTS xa.markers ("));
  EXPECT_EQ(qualified[1],
            "CREATE INDEX IF NOT EXISTS markers_by_node ON xa.markers (node_id, created)");
}

TEST(PostgresMarker, TableNamesThatAreNoPlainIdentifierGiveNoText) {
  Xid global = MarkerXid("g");
  for (std::string_view table : {"", "a b", "t'", "t;DROP", "1t", "a.b.c", "\"t\"", "s.", ".t"}) {
    SCOPED_TRACE(std::string(table));
    EXPECT_THAT(CreateMarkerTableSql(table), StatusIs(Code::kInval));
    EXPECT_THAT(WriteCommitMarkerSql(table, global), StatusIs(Code::kInval));
    EXPECT_THAT(SettleCommitMarkerSql(table, global), StatusIs(Code::kInval));
    EXPECT_THAT(ReadOutcomeSql(table, global), StatusIs(Code::kInval));
    EXPECT_THAT(ReadCommitMarkersSql(table, {global}), StatusIs(Code::kInval));
    EXPECT_THAT(ListCommitMarkersSql(table, 1, 1), StatusIs(Code::kInval));
    EXPECT_THAT(DeleteCommitMarkersSql(table, {global}), StatusIs(Code::kInval));
  }
}

Status MarkerError(Step step, std::string_view sqlstate, MarkerCall call, const Xid* global) {
  return ReadMarkerError(MapPostgresError(step, sqlstate, "server text", "rm1", global), sqlstate,
                         call, "rm1", "xa_commit_marker", "xa_tm", global);
}

TEST(PostgresMarker, ErrorsReadAsEachCallNeeds) {
  using ::testing::AllOf;
  using ::testing::HasSubstr;
  using ::testing::Not;
  Xid global = MarkerXid("g");
  // In the branch: the coordinator's row collides with recovery's, or the branch must go.
  EXPECT_THAT(MarkerError(Step::kWriteMarker, "23505", MarkerCall::kWrite, &global),
              StatusIs(Code::kDupId, HasSubstr("settled it as aborted")));
  EXPECT_THAT(MarkerError(Step::kWriteMarker, "55P03", MarkerCall::kWrite, &global),
              StatusIs(Code::kRbTimeout));
  EXPECT_THAT(MarkerError(Step::kWriteMarker, "40P01", MarkerCall::kWrite, &global),
              StatusIs(Code::kRbDeadlock));
  EXPECT_THAT(MarkerError(Step::kWriteMarker, "23514", MarkerCall::kWrite, &global),
              StatusIs(Code::kRmError));
  // Outside: the settle's bounded wait ran out.
  EXPECT_EQ(CodeForPostgresError(Step::kMarker, "55P03", ""), Code::kRetry);
  EXPECT_THAT(MarkerError(Step::kMarker, "55P03", MarkerCall::kSettle, &global),
              StatusIs(Code::kRetry, HasSubstr("settle again later")));
  EXPECT_EQ(CodeForPostgresError(Step::kMarker, "23505", ""), Code::kRmError);
  // The table: the code of the statement mapping, with what to do.
  EXPECT_THAT(MarkerError(Step::kMarker, "42P01", MarkerCall::kList, nullptr),
              StatusIs(Code::kRmError, AllOf(HasSubstr("'xa_commit_marker' does not exist"),
                                             HasSubstr("docs/marker-commit.md"),
                                             HasSubstr("no branch is involved"))));
  EXPECT_THAT(MarkerError(Step::kMarker, "42501", MarkerCall::kRead, nullptr),
              StatusIs(Code::kConfig,
                       AllOf(HasSubstr("needs the SELECT"),
                             HasSubstr("GRANT SELECT, INSERT, DELETE ON xa_commit_marker TO "
                                       "'xa_tm'"),
                             Not(HasSubstr("pg_prepared_xacts")))));
  EXPECT_THAT(MarkerError(Step::kWriteMarker, "42501", MarkerCall::kWrite, &global),
              StatusIs(Code::kConfig, AllOf(HasSubstr("needs the INSERT"),
                                            Not(HasSubstr("pg_prepared_xacts")))));
  EXPECT_THAT(MarkerError(Step::kMarker, "42703", MarkerCall::kRead, nullptr),
              StatusIs(Code::kRmError, HasSubstr("lacks a column")));
}

}  // namespace
}  // namespace xa::internal::postgres
