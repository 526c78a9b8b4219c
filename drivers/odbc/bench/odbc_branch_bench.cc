// Latency of each XA verb of xa::odbc::OdbcResourceManager against the local servers, for both
// dialects, and the cost of the read-only probe.
//
//   scripts/servers.sh start && . build/servers/env.sh && build/drivers/odbc/xa_odbc_bench
//
// Every benchmark runs whole branches (one INSERT each, into odbcdrv_bench) and times one verb
// with manual timing, so the untimed steps cost nothing in the figure. Argument 0 is MariaDB
// (through MariaDB Connector/ODBC), 1 PostgreSQL (through psqlODBC). The read-only probe rows
// time the probe statement alone, as the dialect runs it before every PREPARE.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>

#include "xa/odbc/odbc_resource_manager.h"

namespace {

using Clock = std::chrono::steady_clock;
using xa::CommitMode;
using xa::EndFlag;
using xa::StartFlag;
using xa::odbc::Dialect;
using xa::odbc::OdbcResourceManager;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

Dialect DialectOf(const benchmark::State& state) {
  return state.range(0) == 1 ? Dialect::kPostgres : Dialect::kMariaDb;
}

// One resource manager per dialect for the whole run.
OdbcResourceManager* Rm(Dialect dialect, bool read_only_optimization = true) {
  static std::unique_ptr<OdbcResourceManager> rms[2][2];
  std::unique_ptr<OdbcResourceManager>& rm =
      rms[dialect == Dialect::kPostgres][read_only_optimization];
  if (rm != nullptr) return rm.get();
  bool pg = dialect == Dialect::kPostgres;
  xa::odbc::OdbcOptions options;
  options.rm_name = "odbcdrv-bench";
  options.dsn = Env(pg ? "XA_TEST_ODBC_PG_DSN" : "XA_TEST_ODBC_MARIADB_DSN");
  options.user = Env(pg ? "XA_TEST_PG_USER" : "XA_TEST_MARIADB_USER");
  std::ifstream secret(Env(pg ? "XA_TEST_PG_PASSWORD_FILE" : "XA_TEST_MARIADB_PASSWORD_FILE"));
  std::getline(secret, options.password);
  options.dialect = dialect;
  options.read_only_optimization = read_only_optimization;
  auto opened = OdbcResourceManager::Create(std::move(options));
  if (!opened.ok()) {
    std::fprintf(stderr, "cannot open the RM (scripts/servers.sh start; . build/servers/env.sh): %s\n",
                 opened.status().ToString().c_str());
    std::exit(1);
  }
  rm = std::move(opened).value();
  auto created =
      rm->Execute("CREATE TABLE IF NOT EXISTS odbcdrv_bench (id BIGINT PRIMARY KEY, v INT)");
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
    std::exit(1);
  }
  return rm.get();
}

xa::XidGenerator& Generator() {
  static xa::XidGenerator generator(std::random_device{}() | 0x20000000u);
  return generator;
}

std::string InsertSql() {
  static std::mt19937_64 random{std::random_device{}()};
  return "INSERT INTO odbcdrv_bench VALUES (" + std::to_string(random() >> 2) + ", 1)";
}

// Aborts the run on an unexpected result: a figure for a failing verb would mean nothing.
void Check(const xa::Status& status, const char* what, benchmark::State& state) {
  if (status.ok() || status.code() == xa::Code::kReadOnly) return;
  state.SkipWithError((std::string(what) + ": " + status.ToString()).c_str());
}

enum class Timed { kStart, kPrepare, kCommit, kBranch };

void RunBranches(benchmark::State& state, Timed timed) {
  OdbcResourceManager* rm = Rm(DialectOf(state));
  for (auto _ : state) {
    xa::Xid xid = Generator().Next().WithBranch(1);
    auto t0 = Clock::now();
    Check(rm->Start(xid, StartFlag::kNoFlags), "start", state);
    auto t1 = Clock::now();
    auto inserted = rm->Execute(InsertSql());
    if (!inserted.ok()) Check(inserted.status(), "insert", state);
    Check(rm->End(xid, EndFlag::kSuccess), "end", state);
    auto t2 = Clock::now();
    Check(rm->Prepare(xid), "prepare", state);
    auto t3 = Clock::now();
    Check(rm->Commit(xid, CommitMode::kTwoPhase), "commit", state);
    auto t4 = Clock::now();
    Clock::duration spent = timed == Timed::kStart     ? t1 - t0
                            : timed == Timed::kPrepare ? t3 - t2
                            : timed == Timed::kCommit  ? t4 - t3
                                                       : t4 - t0;
    state.SetIterationTime(std::chrono::duration<double>(spent).count());
  }
}

void BM_Start(benchmark::State& state) { RunBranches(state, Timed::kStart); }
void BM_Prepare(benchmark::State& state) { RunBranches(state, Timed::kPrepare); }
void BM_CommitTwoPhase(benchmark::State& state) { RunBranches(state, Timed::kCommit); }
void BM_WholeBranch(benchmark::State& state) { RunBranches(state, Timed::kBranch); }

// Prepare of a branch that only reads: XA_RDONLY with the optimisation (probe + commit), or a
// plain prepare without it (then committed, untimed).
void PrepareReadOnly(benchmark::State& state, bool optimisation) {
  OdbcResourceManager* rm = Rm(DialectOf(state), optimisation);
  for (auto _ : state) {
    xa::Xid xid = Generator().Next().WithBranch(1);
    Check(rm->Start(xid, StartFlag::kNoFlags), "start", state);
    auto read = rm->Execute("SELECT COUNT(*) FROM odbcdrv_bench WHERE id = 1");
    if (!read.ok()) Check(read.status(), "select", state);
    Check(rm->End(xid, EndFlag::kSuccess), "end", state);
    auto t0 = Clock::now();
    xa::Status vote = rm->Prepare(xid);
    auto t1 = Clock::now();
    Check(vote, "prepare", state);
    if (optimisation && vote.code() != xa::Code::kReadOnly) {
      state.SkipWithError(("read-only branch voted " + vote.ToString()).c_str());
    }
    if (vote.ok()) Check(rm->Commit(xid, CommitMode::kTwoPhase), "commit", state);
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
}
void BM_PrepareReadOnly(benchmark::State& state) { PrepareReadOnly(state, true); }
void BM_PrepareReadOnlyWithoutOptimisation(benchmark::State& state) {
  PrepareReadOnly(state, false);
}

// The probe statement alone, inside a writing branch (then rolled back, untimed).
void BM_ReadOnlyProbe(benchmark::State& state) {
  Dialect dialect = DialectOf(state);
  OdbcResourceManager* rm = Rm(dialect);
  const std::string probe = dialect == Dialect::kPostgres
                                ? "SELECT (pg_current_xact_id_if_assigned() IS NULL)::int"
                                : "SELECT CAST(SUM(VARIABLE_VALUE) AS SIGNED) FROM "
                                  "information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN "
                                  "('HANDLER_WRITE','HANDLER_UPDATE','HANDLER_DELETE')";
  for (auto _ : state) {
    xa::Xid xid = Generator().Next().WithBranch(1);
    Check(rm->Start(xid, StartFlag::kNoFlags), "start", state);
    auto inserted = rm->Execute(InsertSql());
    if (!inserted.ok()) Check(inserted.status(), "insert", state);
    auto t0 = Clock::now();
    auto probed = rm->Execute(probe);
    auto t1 = Clock::now();
    if (!probed.ok()) Check(probed.status(), "probe", state);
    Check(rm->End(xid, EndFlag::kSuccess), "end", state);
    Check(rm->Rollback(xid), "rollback", state);
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
}

void Dialects(benchmark::internal::Benchmark* b) {
  // Fixed iterations: with manual time the timed verb may be a few µs of a branch that costs
  // milliseconds, and the library would run until the few µs add up to its minimum time.
  b->ArgName("pg")->Arg(0)->Arg(1)->UseManualTime()->Iterations(300)->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Start)->Apply(Dialects);
BENCHMARK(BM_Prepare)->Apply(Dialects);
BENCHMARK(BM_CommitTwoPhase)->Apply(Dialects);
BENCHMARK(BM_WholeBranch)->Apply(Dialects);
BENCHMARK(BM_PrepareReadOnly)->Apply(Dialects);
BENCHMARK(BM_PrepareReadOnlyWithoutOptimisation)->Apply(Dialects);
BENCHMARK(BM_ReadOnlyProbe)->Apply(Dialects);

}  // namespace

BENCHMARK_MAIN();
