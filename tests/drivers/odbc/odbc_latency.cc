// Prints the latency of each XA call of the ODBC resource manager against the local servers, for
// both dialects: p50 and p99 over N branches, each one INSERT, two-phase commit; then the same
// with a read-only branch, and the cost of the PostgreSQL read-only probe measured as Prepare with
// and without the optimisation's commit path. Not a test (no assertion on speed); run it after
// `scripts/servers.sh start` and `. build/servers/env.sh`:
//
//   xa_odbc_latency [branches]        (default 500)

#include <sql.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "testutil/db_env.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/xid.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Samples {
  std::vector<double> micros;
  void Add(Clock::time_point start) {
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  double Percentile(double p) {
    if (micros.empty()) return 0;
    std::sort(micros.begin(), micros.end());
    return micros[std::min(micros.size() - 1, static_cast<size_t>(p * micros.size()))];
  }
};

bool Check(const xa::Status& s, const char* what) {
  if (s.ok()) return true;
  std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
  return false;
}

int Run(xa::odbc::Dialect dialect, int branches,
        xa::odbc::PostgresErrorRollback pg_rollback = xa::odbc::PostgresErrorRollback::kStatement,
        bool read_only_optimization = true) {
  xa::odbc::OdbcOptions options;
  options.rm_name = "odbc-latency";
  xa::test::ServerAccount account =
      dialect == xa::odbc::Dialect::kPostgres ? xa::test::PostgresAccount() : xa::test::MariaDbAccount();
  options.dsn = dialect == xa::odbc::Dialect::kPostgres ? xa::test::OdbcPostgresDsn()
                                                        : xa::test::OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = dialect;
  options.postgres_error_rollback = pg_rollback;
  options.read_only_optimization = read_only_optimization;
  auto rm = xa::odbc::OdbcResourceManager::Create(options);
  if (!rm.ok()) {
    std::fprintf(stderr, "open: %s\n", rm.status().ToString().c_str());
    return 1;
  }
  auto created = (*rm)->Execute(
      "CREATE TABLE IF NOT EXISTS odbcdrv_latency (id BIGINT PRIMARY KEY, v INT)");
  if (!created.ok()) return Check(created.status(), "create table") ? 0 : 1;
  xa::XidGenerator generator(std::random_device{}() | 0x20000000u);
  std::mt19937_64 random{std::random_device{}()};

  Samples start, work, end, prepare, commit, total, ro_prepare;
  for (int i = 0; i < branches; ++i) {
    xa::Xid xid = generator.Next().WithBranch(1);
    auto t0 = Clock::now();
    auto t = Clock::now();
    if (!Check((*rm)->Start(xid, xa::StartFlag::kNoFlags), "start")) return 1;
    start.Add(t);
    t = Clock::now();
    auto inserted = (*rm)->Execute("INSERT INTO odbcdrv_latency VALUES (" +
                                   std::to_string(random() >> 2) + ", 1)");
    if (!inserted.ok()) return Check(inserted.status(), "insert") ? 0 : 1;
    work.Add(t);
    t = Clock::now();
    if (!Check((*rm)->End(xid, xa::EndFlag::kSuccess), "end")) return 1;
    end.Add(t);
    t = Clock::now();
    if (!Check((*rm)->Prepare(xid), "prepare")) return 1;
    prepare.Add(t);
    t = Clock::now();
    if (!Check((*rm)->Commit(xid, xa::CommitMode::kTwoPhase), "commit")) return 1;
    commit.Add(t);
    total.Add(t0);
  }
  // The cost of the read-only probe alone: the same query the dialect runs before PREPARE.
  Samples probe;
  const std::string probe_sql = dialect == xa::odbc::Dialect::kPostgres
                                    ? "SELECT (pg_current_xact_id_if_assigned() IS NULL)::int"
                                    : "SELECT CAST(SUM(VARIABLE_VALUE) AS SIGNED) FROM "
                                      "information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN "
                                      "('HANDLER_WRITE','HANDLER_UPDATE','HANDLER_DELETE')";
  for (int i = 0; i < branches; ++i) {
    xa::Xid xid = generator.Next().WithBranch(1);
    if (!Check((*rm)->Start(xid, xa::StartFlag::kNoFlags), "start")) return 1;
    auto inserted = (*rm)->Execute("INSERT INTO odbcdrv_latency VALUES (" +
                                   std::to_string(random() >> 2) + ", 1)");
    if (!inserted.ok()) return Check(inserted.status(), "insert") ? 0 : 1;
    auto t = Clock::now();
    auto probed = (*rm)->Execute(probe_sql);
    probe.Add(t);
    if (!probed.ok()) return Check(probed.status(), "probe") ? 0 : 1;
    if (!Check((*rm)->End(xid, xa::EndFlag::kSuccess), "end")) return 1;
    if (!Check((*rm)->Rollback(xid), "rollback")) return 1;
  }
  for (int i = 0; i < branches; ++i) {
    xa::Xid xid = generator.Next().WithBranch(1);
    if (!Check((*rm)->Start(xid, xa::StartFlag::kNoFlags), "start")) return 1;
    auto read = (*rm)->Execute("SELECT v FROM odbcdrv_latency WHERE id = 1");
    if (!read.ok()) return Check(read.status(), "select") ? 0 : 1;
    if (!Check((*rm)->End(xid, xa::EndFlag::kSuccess), "end")) return 1;
    auto t = Clock::now();
    xa::Status vote = (*rm)->Prepare(xid);
    ro_prepare.Add(t);
    if (!read_only_optimization) {
      if (!Check(vote, "prepare") || !Check((*rm)->Commit(xid, xa::CommitMode::kTwoPhase), "commit")) {
        return 1;
      }
      continue;
    }
    if (vote.code() != xa::Code::kReadOnly) {
      std::fprintf(stderr, "read-only branch voted %s\n", vote.ToString().c_str());
      return 1;
    }
  }
  std::string label(xa::odbc::DialectName(dialect));
  if (!read_only_optimization) label += " (no read-only opt.)";
  if (dialect == xa::odbc::Dialect::kPostgres) {
    label += pg_rollback == xa::odbc::PostgresErrorRollback::kStatement ? " (statement rollback)"
                                                                       : " (transaction rollback)";
  }
  std::printf("%-34s branches=%d  (microseconds)      p50      p99\n", label.c_str(), branches);
  auto line = [](const char* name, Samples& s) {
    std::printf("  %-34s %8.0f %8.0f\n", name, s.Percentile(0.5), s.Percentile(0.99));
  };
  line("Start", start);
  line("INSERT (branch work)", work);
  line("End", end);
  line("Prepare (probe + PREPARE)", prepare);
  line("Commit two-phase", commit);
  line("whole branch", total);
  line(read_only_optimization ? "Prepare of a read-only branch" : "Prepare of a read-only branch (prepared)", ro_prepare);
  line("read-only probe alone", probe);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int branches = argc > 1 ? std::atoi(argv[1]) : 500;
  int rc = Run(xa::odbc::Dialect::kMariaDb, branches);
  rc |= Run(xa::odbc::Dialect::kPostgres, branches);
  rc |= Run(xa::odbc::Dialect::kPostgres, branches, xa::odbc::PostgresErrorRollback::kTransaction);
  rc |= Run(xa::odbc::Dialect::kMariaDb, branches, xa::odbc::PostgresErrorRollback::kStatement,
            /*read_only_optimization=*/false);
  return rc;
}
