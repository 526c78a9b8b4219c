// recovery_bench: how long recovery takes to resolve many in-doubt branches on the real servers.
//
//   recovery_bench [--branches 1000,10000] [--sessions 4] [--setup-threads 8]
//
// For each count N it leaves N/2 global transactions in doubt, each with a prepared branch on
// MariaDB and one on PostgreSQL (so N branches): half of them with a commit decision in the
// decision log (recovery commits them), half without (presumed abort: recovery rolls them back).
// Then it times what an operator's `xa-recover resolve` does after a crash: open and replay the
// log, scan both RMs, resolve every branch, write the end records. It prints one line per N.
// Target: 10,000 in-doubt branches in <= 10 s on this 2-core machine.
//
// Needs the local servers (source build/servers/env.sh) and PostgreSQL's
// max_prepared_transactions >= N/2 (scripts/servers.sh sets 6000).

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cppconn/connection.h>
#include <cppconn/statement.h>

#include "examples/bank/bank.h"
#include "xa/decision_log.h"
#include "xa/logging.h"
#include "xa/recovery.h"

namespace {

using Clock = std::chrono::steady_clock;

void Die(const std::string& what, const xa::Status& s) {
  std::cerr << "recovery_bench: " << what << ": " << s.ToString() << "\n";
  std::exit(1);
}

std::vector<long> ParseList(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::atol(item.c_str()));
  return out;
}

struct Setup {
  std::vector<xa::Xid> globals;  // every in-doubt transaction
};

// Leaves `transactions` global transactions prepared on both databases.
Setup PrepareInDoubt(const xa::bank::BankSettings& settings, uint32_t node, long transactions,
                     int threads) {
  Setup setup;
  xa::XidGenerator xids(node);
  for (long i = 0; i < transactions; ++i) setup.globals.push_back(xids.Next());
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  auto work = [&] {
    auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
    auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
    if (!m.ok()) Die("MariaDB session", m.status());
    if (!p.ok()) Die("PostgreSQL session", p.status());
    long i;
    while (!failed && (i = next.fetch_add(1)) < transactions) {
      const xa::Xid& global = setup.globals[i];
      // Unique across the counts of one run, whose committed rows stay in the table.
      std::string insert = "INSERT INTO rbench_rows VALUES (" +
                           std::to_string(transactions * 1000000L + i) + ")";
      xa::Xid mb = global.WithBranch(0), pb = global.WithBranch(1);
      xa::Status s = (*m)->Start(mb, xa::StartFlag::kNoFlags);
      if (s.ok()) {
        try {
          std::unique_ptr<sql::Statement> st((*m)->connection().createStatement());
          st->executeUpdate(insert);
        } catch (const sql::SQLException& e) {
          s = (*m)->StatusFromException(e);
        }
      }
      if (s.ok()) s = (*m)->End(mb, xa::EndFlag::kSuccess);
      if (s.ok()) s = (*m)->Prepare(mb);
      if (!s.ok()) Die("preparing a MariaDB branch", s);
      // A MariaDB session stays attached to its prepared branch (1399 on the next XA START)
      // until it disconnects, as the crashed application's did.
      s = (*m)->Close();
      if (s.ok()) s = (*m)->Open();
      if (!s.ok()) Die("reconnecting to MariaDB", s);
      s = (*p)->Start(pb, xa::StartFlag::kNoFlags);
      if (s.ok()) {
        auto rows = (*p)->Execute(insert);
        if (!rows.ok()) s = rows.status();
      }
      if (s.ok()) s = (*p)->End(pb, xa::EndFlag::kSuccess);
      if (s.ok()) s = (*p)->Prepare(pb);
      if (!s.ok()) Die("preparing a PostgreSQL branch", s);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  return setup;
}

// Rolls back what an earlier, interrupted run of this bench left prepared for `node`.
void CleanLeftovers(const xa::bank::BankSettings& settings, uint32_t node) {
  std::string dir = std::filesystem::temp_directory_path() /
                    ("xa-recovery-bench-clean-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  xa::LogOptions options;
  options.dir = dir;
  options.node_id = node;
  auto log = xa::DecisionLog::Open(options);
  if (!log.ok()) Die("log", log.status());
  auto m = xa::mysql::MySqlResourceManager::Create(settings.mariadb);
  auto p = xa::odbc::OdbcResourceManager::Create(settings.postgres);
  if (!m.ok()) Die("MariaDB", m.status());
  if (!p.ok()) Die("PostgreSQL", p.status());
  xa::RecoveryOptions recovery;
  recovery.node_id = node;
  recovery.orphan_min_age = std::chrono::milliseconds(0);
  xa::RecoveryEngine engine(**log, {m->get(), p->get()}, recovery);
  auto report = engine.Run();
  if (!report.ok()) Die("cleaning up", report.status());
  std::filesystem::remove_all(dir);
}

uint32_t NodeFor(long branches) { return 0x5EC00000u + static_cast<uint32_t>(branches); }

}  // namespace

int main(int argc, char** argv) {
  xa::SetLogLevel(xa::LogLevel::kWarning);
  std::vector<long> counts = {1000, 10000};
  int sessions = 4, setup_threads = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--branches") counts = ParseList(argv[i + 1]);
    else if (a == "--sessions") sessions = std::atoi(argv[i + 1]);
    else if (a == "--setup-threads") setup_threads = std::atoi(argv[i + 1]);
    else {
      std::cerr << "usage: recovery_bench [--branches 1000,10000] [--sessions 4] "
                   "[--setup-threads 8]\n";
      return 2;
    }
  }
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) Die("settings", settings.status());
  settings->mariadb.rm_name = "rbench-mariadb";
  settings->postgres.rm_name = "rbench-postgres";
  for (long n : counts) CleanLeftovers(*settings, NodeFor(n));
  {
    auto m = xa::mysql::MySqlResourceManager::Create(settings->mariadb);
    auto p = xa::odbc::OdbcResourceManager::Create(settings->postgres);
    if (!m.ok()) Die("MariaDB", m.status());
    if (!p.ok()) Die("PostgreSQL", p.status());
    try {
      std::unique_ptr<sql::Statement> st((*m)->connection().createStatement());
      st->execute("CREATE TABLE IF NOT EXISTS rbench_rows (id BIGINT PRIMARY KEY) ENGINE=InnoDB");
      st->execute("TRUNCATE TABLE rbench_rows");
    } catch (const sql::SQLException& e) {
      Die("MariaDB table", (*m)->StatusFromException(e));
    }
    for (const char* sql : {"CREATE TABLE IF NOT EXISTS rbench_rows (id BIGINT PRIMARY KEY)",
                            "TRUNCATE TABLE rbench_rows"}) {
      auto r = (*p)->Execute(sql);
      if (!r.ok()) Die("PostgreSQL table", r.status());
    }
    int max_prepared = (*p)->server_info().max_prepared_transactions;
    for (long n : counts) {
      if (max_prepared >= 0 && n / 2 > max_prepared) {
        std::cerr << "recovery_bench: " << n << " branches need " << n / 2
                  << " prepared transactions on PostgreSQL, but max_prepared_transactions is "
                  << max_prepared << ": raise it (scripts/servers.sh sets 6000) or lower "
                                     "--branches\n";
        return 1;
      }
    }
  }

  std::printf("%-10s %-8s %-9s %-9s %-10s %-12s %s\n", "branches", "txns", "commit", "rollback",
              "setup s", "recovery s", "branches/s");
  bool all_converged = true;
  double ten_thousand_seconds = -1;
  for (long n : counts) {
    const long transactions = n / 2;
    const uint32_t node = NodeFor(n);
    std::string dir = std::filesystem::temp_directory_path() /
                      ("xa-recovery-bench-" + std::to_string(::getpid()) + "-" +
                       std::to_string(n));
    std::filesystem::remove_all(dir);
    auto setup_start = Clock::now();
    Setup setup = PrepareInDoubt(*settings, node, transactions, setup_threads);
    {
      // The crashed manager's log: a commit decision for every other transaction.
      xa::LogOptions options;
      options.dir = dir;
      options.node_id = node;
      auto log = xa::DecisionLog::Open(options);
      if (!log.ok()) Die("log", log.status());
      std::atomic<long> next{0};
      auto append = [&] {
        long i;
        while ((i = next.fetch_add(2)) < transactions) {
          xa::LogRecord record;
          record.type = xa::RecordType::kCommitDecision;
          record.xid = setup.globals[i];
          record.participants = {{settings->mariadb.rm_name, setup.globals[i].WithBranch(0)},
                                 {settings->postgres.rm_name, setup.globals[i].WithBranch(1)}};
          auto lsn = (*log)->Append(record);
          if (!lsn.ok()) Die("append", lsn.status());
        }
      };
      std::vector<std::thread> pool;
      for (int t = 0; t < 8; ++t) pool.emplace_back(append);
      for (auto& t : pool) t.join();
    }
    double setup_s = std::chrono::duration<double>(Clock::now() - setup_start).count();

    // What `xa-recover resolve` does: open (replay) the log, scan, resolve, end.
    auto start = Clock::now();
    xa::LogOptions options;
    options.dir = dir;
    options.node_id = node;
    auto log = xa::DecisionLog::Open(options);
    if (!log.ok()) Die("reopening the log", log.status());
    std::vector<std::unique_ptr<xa::ResourceManager>> owned;
    std::vector<xa::ResourceManager*> rms;
    for (int s = 0; s < sessions; ++s) {
      auto m = xa::mysql::MySqlResourceManager::Create(settings->mariadb);
      auto p = xa::odbc::OdbcResourceManager::Create(settings->postgres);
      if (!m.ok()) Die("MariaDB session", m.status());
      if (!p.ok()) Die("PostgreSQL session", p.status());
      owned.push_back(std::move(m).value());
      rms.push_back(owned.back().get());
      owned.push_back(std::move(p).value());
      rms.push_back(owned.back().get());
    }
    xa::RecoveryOptions recovery;
    recovery.node_id = node;
    recovery.orphan_min_age = std::chrono::milliseconds(0);
    xa::RecoveryEngine engine(**log, rms, recovery);
    auto report = engine.Run();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!report.ok()) Die("recovery", report.status());
    bool converged = report->Converged() &&
                     report->committed == static_cast<size_t>(2 * ((transactions + 1) / 2)) &&
                     report->rolled_back == static_cast<size_t>(2 * (transactions / 2));
    all_converged = all_converged && converged;
    if (n == 10000) ten_thousand_seconds = seconds;
    std::printf("%-10ld %-8ld %-9zu %-9zu %-10.2f %-12.3f %.0f%s\n", n, transactions,
                report->committed, report->rolled_back, setup_s, seconds, n / seconds,
                converged ? "" : "   NOT CONVERGED");
    std::filesystem::remove_all(dir);
  }
  std::printf("sessions per RM during recovery: %d\n", sessions);
  if (ten_thousand_seconds >= 0) {
    std::printf("10,000 in-doubt branches recovered in %.2f s (target <= 10 s): %s\n",
                ten_thousand_seconds, ten_thousand_seconds <= 10.0 ? "met" : "MISSED");
  }
  return all_converged ? 0 : 1;
}
