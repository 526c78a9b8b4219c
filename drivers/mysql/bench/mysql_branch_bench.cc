// Latency of each XA verb of xa::mysql::MySqlResourceManager against a real server, and the
// cost of the read-only detection.
//
//   source build/servers/env.sh && build/drivers/mysql/xa_mysql_bench
//
// Reads the same variables as the tests (XA_TEST_MARIADB_HOST, _PORT, _USER, _PASSWORD_FILE,
// _DATABASE). Each benchmark times one verb; the other steps of the branch run with the timer
// paused. Rows live in mysqldrv_bench (created if missing), one row per benchmark run.

#include <benchmark/benchmark.h>
#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "xa/mysql/mysql_resource_manager.h"

namespace {

using xa::CommitMode;
using xa::EndFlag;
using xa::StartFlag;
using xa::mysql::MySqlResourceManager;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::unique_ptr<MySqlResourceManager> OpenRm(bool read_only_optimization) {
  xa::mysql::MySqlOptions options;
  options.rm_name = "mysqldrv-bench";
  options.host = Env("XA_TEST_MARIADB_HOST");
  options.port = std::atoi(Env("XA_TEST_MARIADB_PORT").c_str());
  options.user = Env("XA_TEST_MARIADB_USER");
  options.database = Env("XA_TEST_MARIADB_DATABASE");
  std::ifstream secret(Env("XA_TEST_MARIADB_PASSWORD_FILE"));
  std::getline(secret, options.password);
  options.read_only_optimization = read_only_optimization;
  auto rm = MySqlResourceManager::Create(std::move(options));
  if (!rm.ok()) {
    std::fprintf(stderr, "cannot open the RM (source build/servers/env.sh?): %s\n",
                 rm.status().ToString().c_str());
    return nullptr;
  }
  return std::move(rm).value();
}

xa::XidGenerator& Generator() {
  static xa::XidGenerator generator(static_cast<uint32_t>(std::random_device{}()));
  return generator;
}

void Sql(MySqlResourceManager& rm, const std::string& sql) {
  std::unique_ptr<sql::Statement> statement(rm.connection().createStatement());
  if (statement->execute(sql)) {
    std::unique_ptr<sql::ResultSet> rows(statement->getResultSet());
    while (rows->next()) {
    }
  }
}

void Check(const xa::Status& status, xa::Code expected, benchmark::State& state) {
  if (status.code() != expected) state.SkipWithError(status.ToString().c_str());
}

enum class Verb { kStart, kEnd, kPrepare, kCommit, kOnePhase, kWholeBranch };

// One branch that updates one row, timing `verb`. Arg 0: read-only optimisation off/on.
void RunBranches(benchmark::State& state, Verb verb, bool write) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(state.range(0) != 0);
  if (rm == nullptr) {
    state.SkipWithError("no server");
    return;
  }
  std::string key = "bench-" + std::to_string(std::random_device{}());
  try {
    Sql(*rm, "CREATE TABLE IF NOT EXISTS mysqldrv_bench (k VARCHAR(64) PRIMARY KEY, v BIGINT) "
             "ENGINE=InnoDB");
    Sql(*rm, "INSERT INTO mysqldrv_bench VALUES ('" + key + "', 0)");
  } catch (const sql::SQLException& e) {
    state.SkipWithError(e.what());
    return;
  }
  std::string body = write ? "UPDATE mysqldrv_bench SET v = v + 1 WHERE k = '" + key + "'"
                           : "SELECT v FROM mysqldrv_bench WHERE k = '" + key + "'";
  xa::Code prepared_code = write || state.range(0) == 0 ? xa::Code::kOk : xa::Code::kReadOnly;
  {
    // One untimed branch: its Prepare takes the counter reading that later branches compare
    // against (the setup's writes above happened outside any branch).
    xa::Xid warm_up = Generator().Next().WithBranch(1);
    Check(rm->Start(warm_up, StartFlag::kNoFlags), xa::Code::kOk, state);
    Check(rm->End(warm_up, EndFlag::kSuccess), xa::Code::kOk, state);
    Check(rm->Commit(warm_up, CommitMode::kOnePhase), xa::Code::kOk, state);
    xa::Xid reading = Generator().Next().WithBranch(1);
    Check(rm->Start(reading, StartFlag::kNoFlags), xa::Code::kOk, state);
    Check(rm->End(reading, EndFlag::kSuccess), xa::Code::kOk, state);
    xa::Status voted = rm->Prepare(reading);
    if (voted.ok()) Check(rm->Commit(reading, CommitMode::kTwoPhase), xa::Code::kOk, state);
  }
  auto timed = [&](Verb step) { return step == verb || verb == Verb::kWholeBranch; };
  auto pause = [&](Verb step) {
    if (!timed(step)) state.PauseTiming();
  };
  auto resume = [&](Verb step) {
    if (!timed(step)) state.ResumeTiming();
  };
  for (auto _ : state) {
    xa::Xid xid = Generator().Next().WithBranch(1);
    pause(Verb::kStart);
    Check(rm->Start(xid, StartFlag::kNoFlags), xa::Code::kOk, state);
    resume(Verb::kStart);
    if (verb != Verb::kWholeBranch) state.PauseTiming();
    Sql(*rm, body);
    if (verb != Verb::kWholeBranch) state.ResumeTiming();
    pause(Verb::kEnd);
    Check(rm->End(xid, EndFlag::kSuccess), xa::Code::kOk, state);
    resume(Verb::kEnd);
    if (verb == Verb::kOnePhase) {
      Check(rm->Commit(xid, CommitMode::kOnePhase), xa::Code::kOk, state);
      continue;
    }
    pause(Verb::kPrepare);
    Check(rm->Prepare(xid), prepared_code, state);
    resume(Verb::kPrepare);
    if (prepared_code == xa::Code::kOk) {
      pause(Verb::kCommit);
      Check(rm->Commit(xid, CommitMode::kTwoPhase), xa::Code::kOk, state);
      resume(Verb::kCommit);
    }
  }
  try {
    Sql(*rm, "DELETE FROM mysqldrv_bench WHERE k = '" + key + "'");
  } catch (const sql::SQLException&) {
  }
}

void BM_Start(benchmark::State& state) { RunBranches(state, Verb::kStart, true); }
void BM_End(benchmark::State& state) { RunBranches(state, Verb::kEnd, true); }
void BM_Prepare(benchmark::State& state) { RunBranches(state, Verb::kPrepare, true); }
void BM_Commit(benchmark::State& state) { RunBranches(state, Verb::kCommit, true); }
void BM_OnePhaseCommit(benchmark::State& state) { RunBranches(state, Verb::kOnePhase, true); }
void BM_WholeWritingBranch(benchmark::State& state) {
  RunBranches(state, Verb::kWholeBranch, true);
}
// Prepare of a read-only branch: with the optimisation, counter read + XA COMMIT ONE PHASE.
void BM_PrepareReadOnly(benchmark::State& state) { RunBranches(state, Verb::kPrepare, false); }
void BM_WholeReadOnlyBranch(benchmark::State& state) {
  RunBranches(state, Verb::kWholeBranch, false);
}

// The read-only detection's own round trip: the counter query alone.
void BM_WriteCounterQuery(benchmark::State& state) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(true);
  if (rm == nullptr) {
    state.SkipWithError("no server");
    return;
  }
  std::unique_ptr<sql::Statement> statement(rm->connection().createStatement());
  for (auto _ : state) {
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(
        "SELECT CAST(SUM(VARIABLE_VALUE) AS SIGNED) FROM information_schema.SESSION_STATUS "
        "WHERE VARIABLE_NAME IN ('HANDLER_WRITE','HANDLER_UPDATE','HANDLER_DELETE')"));
    rows->next();
    benchmark::DoNotOptimize(rows->getInt64(1));
  }
}

// A trivial round trip, for scale.
void BM_SelectOne(benchmark::State& state) {
  std::unique_ptr<MySqlResourceManager> rm = OpenRm(true);
  if (rm == nullptr) {
    state.SkipWithError("no server");
    return;
  }
  std::unique_ptr<sql::Statement> statement(rm->connection().createStatement());
  for (auto _ : state) {
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery("SELECT 1"));
    rows->next();
  }
}

#define XA_BRANCH_BENCH(fn) \
  BENCHMARK(fn)->ArgName("ro_opt")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime()

XA_BRANCH_BENCH(BM_Start);
XA_BRANCH_BENCH(BM_End);
XA_BRANCH_BENCH(BM_Prepare);
XA_BRANCH_BENCH(BM_Commit);
XA_BRANCH_BENCH(BM_OnePhaseCommit);
XA_BRANCH_BENCH(BM_WholeWritingBranch);
XA_BRANCH_BENCH(BM_PrepareReadOnly);
XA_BRANCH_BENCH(BM_WholeReadOnlyBranch);
BENCHMARK(BM_WriteCounterQuery)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SelectOne)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
