// xa_tcc_bench: what a TCC transaction costs beside a 2PC transaction that makes the same writes,
// with the participants in-process and over HTTP.
//
// One transfer moves one unit out of an account's funds and grants one point, on MariaDB
// (tables tccb_funds and tccb_points; each client its own account, so no transfer waits for
// another's row locks):
//   (2pc)  xa::TransactionManager, 2PC: two branches (two sessions), UPDATE funds, UPDATE
//          points, Commit (prepare both, durable decision, commit both);
//   (tcc)  BeginTcc with two in-process participants, each in a local transaction of its own
//          behind the barrier (xa::mysql::EnterBarrier): Try freezes the unit / adds a pending
//          point, Confirm spends it / grants it; the coordinator logs the participants and the
//          decision durably (two fdatasyncs, shared with other transactions by group commit);
//   (http) the same participants served over HTTP on loopback (xa/http/tcc_participant.h
//          calling this process's HTTP server), so the difference to (tcc) is the HTTP hop.
// at 1, 4 and 16 clients (threads), each case for XA_TCC_BENCH_SECONDS (default 3). It prints
// transfers/s, p50 and p99 latency, and the CPU time of this process per transfer (the clients,
// the coordinator and its log, and in (http) the HTTP server and its handlers: the servers'
// CPU is not counted), then each mode's ratios to (2pc) at the same clients.
//
// Needs scripts/servers.sh start and its environment (. build/servers/env.sh).


#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_env.h"
#include "examples/bank/bank.h"
#include "src/http/http_server.h"
#include "xa/decision_log.h"
#include "xa/http/tcc_participant.h"
#include "xa/mysql/mysql_resource_manager.h"
#include "xa/mysql/tcc_barrier.h"
#include "xa/tcc.h"
#include "xa/transaction_manager.h"

namespace {

constexpr int kAccounts = 16;
xa::mysql::MySqlOptions g_account;

// Connections are made from many threads at once: through the driver's lock.
std::unique_ptr<sql::Connection> Connect() {
  xa::Result<std::unique_ptr<sql::Connection>> connection =
      xa::mysql::OpenLocalConnection(g_account);
  if (!connection.ok()) throw std::runtime_error(connection.status().ToString());
  return std::move(connection).value();
}

void Execute(sql::Connection& c, const std::string& statement) {
  std::unique_ptr<sql::Statement> s(c.createStatement());
  s->execute(sql::SQLString(statement));
}

void Reset() {
  std::unique_ptr<sql::Connection> c = Connect();
  c->setAutoCommit(true);
  for (const char* t : {"tccb_funds", "tccb_points", "tccb_barrier"}) {
    Execute(*c, std::string("DROP TABLE IF EXISTS ") + t);
  }
  Execute(*c, "CREATE TABLE tccb_funds (account INT PRIMARY KEY, balance BIGINT, frozen BIGINT)");
  Execute(*c, "CREATE TABLE tccb_points (account INT PRIMARY KEY, points BIGINT, pending BIGINT)");
  for (int a = 0; a < kAccounts; ++a) {
    Execute(*c, "INSERT INTO tccb_funds VALUES (" + std::to_string(a) + ", 100000000, 0)");
    Execute(*c, "INSERT INTO tccb_points VALUES (" + std::to_string(a) + ", 0, 0)");
  }
  xa::BarrierOptions barrier;
  barrier.table = "tccb_barrier";
  xa::Status created = xa::mysql::CreateBarrierTable(*c, barrier);
  if (!created.ok()) throw std::runtime_error(created.ToString());
}

// A participant: the barrier and one UPDATE in a local transaction, on a pooled connection.
class Participant : public xa::TccParticipant {
 public:
  explicit Participant(std::string table) : table_(std::move(table)) {}
  xa::TccResult Try(const xa::TccCall& call) override { return Run(call, xa::BarrierOp::kTry); }
  xa::TccResult Confirm(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kConfirm);
  }
  xa::TccResult Cancel(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kCancel);
  }

 private:
  xa::TccResult Run(const xa::TccCall& call, xa::BarrierOp op) {
    std::unique_ptr<sql::Connection> c = Take();
    try {
      xa::BarrierOptions barrier;
      barrier.table = "tccb_barrier";
      std::string branch = std::to_string(static_cast<unsigned char>(call.branch.bqual().back()));
      auto verdict = xa::mysql::EnterBarrier(*c, {call.global.ToString(), branch}, op, barrier);
      if (!verdict.ok()) {
        c->rollback();
        Give(std::move(c));
        return xa::TccResult::Failed(verdict.status().ToString());
      }
      if (*verdict == xa::BarrierVerdict::kRun) {
        const std::string account(call.payload);
        const bool funds = table_ == "tccb_funds";
        const char* column = funds ? "frozen" : "pending";
        std::string set = op == xa::BarrierOp::kTry
                              ? std::string(column) + " = " + column + " + 1" +
                                    (funds ? ", balance = balance - 1" : "")
                          : op == xa::BarrierOp::kConfirm
                              ? std::string(column) + " = " + column + " - 1" +
                                    (funds ? "" : ", points = points + 1")
                              : std::string(column) + " = " + column + " - 1" +
                                    (funds ? ", balance = balance + 1" : "");
        Execute(*c, "UPDATE " + table_ + " SET " + set + " WHERE account = " + account);
      }
      c->commit();
      Give(std::move(c));
      return *verdict == xa::BarrierVerdict::kRefusedAfterCompensation
                 ? xa::TccResult::Refused("cancelled before")
                 : xa::TccResult::Done();
    } catch (const sql::SQLException& e) {
      return xa::TccResult::Failed(e.what());  // the connection is dropped
    }
  }

  std::unique_ptr<sql::Connection> Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
    }
    return Connect();
  }
  void Give(std::unique_ptr<sql::Connection> c) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(c));
  }

  const std::string table_;
  std::mutex mu_;
  std::vector<std::unique_ptr<sql::Connection>> idle_;
};

// The value of "name":"..." in one of the coordinator's request bodies (ids and the account
// number hold no quote or backslash).
std::string Field(const std::string& body, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  size_t at = body.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return body.substr(at, body.find('"', at) - at);
}

// Why the first transfer that did not commit did not (printed after the table).
std::mutex g_failure_mu;
std::string g_first_failure;
void NoteFailure(const std::string& mode, const xa::Status& why) {
  std::lock_guard<std::mutex> lock(g_failure_mu);
  if (g_first_failure.empty()) g_first_failure = mode + ": " + why.ToString();
}

struct Case {
  std::string mode;
  int clients = 0;
  double per_second = 0, p50_ms = 0, p99_ms = 0, cpu_us = 0;
  long failed = 0;
};

// Runs `transfer(client)` on `clients` threads for `seconds`; true from it means it committed.
Case Measure(const std::string& mode, int clients, double seconds,
             const std::function<bool(int)>& transfer) {
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::atomic<long> failed{0};
  std::atomic<bool> stop{false};
  const double cpu_before = xa::bench::SelfCpuMs() / 1000.0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      while (!stop.load()) {
        auto t0 = std::chrono::steady_clock::now();
        bool ok = transfer(c);
        auto t1 = std::chrono::steady_clock::now();
        if (ok) {
          latencies[static_cast<size_t>(c)].push_back(
              std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else {
          ++failed;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (std::thread& t : threads) t.join();
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = xa::bench::SelfCpuMs() / 1000.0 - cpu_before;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Case result{mode, clients};
  result.failed = failed.load();
  if (all.empty()) return result;
  result.per_second = static_cast<double>(all.size()) / wall;
  result.p50_ms = all[all.size() / 2];
  result.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  result.cpu_us = cpu * 1e6 / static_cast<double>(all.size());
  return result;
}

std::unique_ptr<xa::DecisionLog> OpenLog(const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path());
  xa::LogOptions options;
  options.dir = dir;
  options.node_id = 61;
  auto log = xa::DecisionLog::Open(options);
  if (!log.ok()) throw std::runtime_error(log.status().ToString());
  return std::move(*log);
}

xa::TransactionManagerOptions ManagerOptions() {
  xa::TransactionManagerOptions options;
  options.node_id = 61;
  options.recover_on_open = false;
  options.recovery_interval = std::chrono::milliseconds(0);
  return options;
}

}  // namespace

int main() {
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) {
    std::cerr << "xa_tcc_bench: " << settings.status().ToString()
              << " (start the servers: scripts/servers.sh start; . build/servers/env.sh)\n";
    return 1;
  }
  g_account = settings->mariadb;
  const char* seconds_env = std::getenv("XA_TCC_BENCH_SECONDS");
  const double seconds = seconds_env != nullptr ? std::atof(seconds_env) : 3.0;
  const std::string scratch =
      (std::filesystem::temp_directory_path() / ("xa_tcc_bench." + std::to_string(getpid())))
          .string();
  std::vector<Case> cases;
  try {
    Reset();
    auto funds = std::make_shared<Participant>("tccb_funds");
    auto points = std::make_shared<Participant>("tccb_points");

    // The participants over HTTP, served by this process.
    xa::http::HttpServerOptions server_options;
    server_options.address = "127.0.0.1:0";
    server_options.threads = 40;
    for (auto [name, participant] :
         std::vector<std::pair<std::string, std::shared_ptr<Participant>>>{{"funds", funds},
                                                                           {"points", points}}) {
      for (const std::string op : {"try", "confirm", "cancel"}) {
        server_options.post_routes["/" + name + "/" + op] =
            [participant, op](const xa::http::HttpRequest& request) {
              xa::Result<xa::Xid> global = xa::Xid::Parse(Field(request.body, "global_id"));
              if (!global.ok()) return xa::http::HttpResponse{400, "text/plain", "bad id"};
              std::string bqual_hex = Field(request.body, "branch_id");
              uint16_t index = static_cast<uint16_t>(std::stoul(bqual_hex.substr(2), nullptr, 16));
              std::string payload = Field(request.body, "payload");
              xa::TccCall call{*global, global->WithBranch(index), "", payload};
              xa::TccResult r = op == "try"       ? participant->Try(call)
                                : op == "confirm" ? participant->Confirm(call)
                                                  : participant->Cancel(call);
              int status = r.reply == xa::TccReply::kDone      ? 200
                           : r.reply == xa::TccReply::kRefused ? 409
                                                               : 503;
              return xa::http::HttpResponse{status, "text/plain", r.detail};
            };
      }
    }
    auto server = xa::http::HttpServer::Start(std::move(server_options));
    if (!server.ok()) throw std::runtime_error(server.status().ToString());
    auto remote = [&](const std::string& name) {
      xa::http::TccParticipantOptions options;
      const std::string base = "http://" + (*server)->address() + "/" + name + "/";
      options.try_url = base + "try";
      options.confirm_url = base + "confirm";
      options.cancel_url = base + "cancel";
      options.max_connections = 32;
      return xa::http::MakeTccParticipant(options).value();
    };

    const char* only_env = std::getenv("XA_TCC_BENCH_ONLY");  // e.g. "http:16", for a closer look
    const std::string only = only_env != nullptr ? only_env : "";
    auto wanted = [&](const std::string& mode, int clients) {
      return only.empty() || only == mode + ":" + std::to_string(clients);
    };
    for (int clients : {1, 4, 16}) {
      // (2pc)
      if (wanted("2pc", clients)) {
        auto log = OpenLog(scratch + "/2pc");
        xa::TransactionManagerOptions options = ManagerOptions();
        auto mysql_options = [&](const std::string& name) {
          xa::mysql::MySqlOptions o = g_account;
          o.rm_name = name;
          o.read_only_optimization = false;
          o.batch_xa_end = true;
          return o;
        };
        for (const std::string name : {"funds-rm", "points-rm"}) {
          options.resource_managers[name] = [&, name]() -> xa::Result<std::unique_ptr<xa::ResourceManager>> {
            auto rm = xa::mysql::MySqlResourceManager::Create(mysql_options(name));
            if (!rm.ok()) return rm.status();
            return std::unique_ptr<xa::ResourceManager>(std::move(*rm));
          };
        }
        auto manager = xa::TransactionManager::Open(options, *log).value();
        std::vector<std::unique_ptr<xa::mysql::MySqlResourceManager>> sessions;
        for (int c = 0; c < clients; ++c) {
          sessions.push_back(xa::mysql::MySqlResourceManager::Create(mysql_options("funds-rm")).value());
          sessions.push_back(xa::mysql::MySqlResourceManager::Create(mysql_options("points-rm")).value());
        }
        cases.push_back(Measure("2pc", clients, seconds, [&](int c) {
          auto& f = *sessions[static_cast<size_t>(2 * c)];
          auto& p = *sessions[static_cast<size_t>(2 * c + 1)];
          auto txn = manager->Begin();
          if (!txn.ok() || !txn->Enlist(f).ok() || !txn->Enlist(p).ok()) return false;
          const std::string account = std::to_string(c);
          try {
            Execute(f.connection(), "UPDATE tccb_funds SET balance = balance - 1 WHERE account = " + account);
            Execute(p.connection(), "UPDATE tccb_points SET points = points + 1 WHERE account = " + account);
          } catch (const sql::SQLException&) {
            return false;
          }
          auto outcome = txn->Commit();
          return outcome.ok() && *outcome == xa::Outcome::kCommitted;
        }));
      }
      // (tcc) and (http)
      for (const std::string mode : {"tcc", "http"}) {
        if (!wanted(mode, clients)) continue;
        auto log = OpenLog(scratch + "/" + mode);
        xa::TransactionManagerOptions options = ManagerOptions();
        if (mode == "tcc") {
          options.tcc.participants["funds"] = funds;
          options.tcc.participants["points"] = points;
        } else {
          options.tcc.participants["funds"] = remote("funds");
          options.tcc.participants["points"] = remote("points");
        }
        auto manager = xa::TransactionManager::Open(options, *log).value();
        cases.push_back(Measure(mode, clients, seconds, [&](int c) {
          auto txn = manager->BeginTcc();
          if (!txn.ok()) return false;
          const std::string account = std::to_string(c);
          if (!txn->Enlist("funds", account).ok() || !txn->Enlist("points", account).ok()) {
            return false;
          }
          auto outcome = txn->Commit();
          if (outcome.ok() && *outcome == xa::Outcome::kCommitted) return true;
          NoteFailure(mode, outcome.ok() ? txn->last_status() : outcome.status());
          return false;
        }));
        (void)manager->WaitForBackgroundCompletion(std::chrono::seconds(30));
      }
    }
    (*server)->Stop();
  } catch (const std::exception& e) {
    std::cerr << "xa_tcc_bench: " << e.what() << "\n";
    return 1;
  }
  std::filesystem::remove_all(scratch);

  std::printf("%-6s %8s %12s %9s %9s %14s %8s\n", "mode", "clients", "transfers/s", "p50 ms",
              "p99 ms", "app CPU us/tx", "failed");
  for (const Case& c : cases) {
    std::printf("%-6s %8d %12.0f %9.2f %9.2f %14.0f %8ld\n", c.mode.c_str(), c.clients,
                c.per_second, c.p50_ms, c.p99_ms, c.cpu_us, c.failed);
  }
  if (!g_first_failure.empty()) {
    std::printf("first transfer not committed: %s\n", g_first_failure.c_str());
  }
  std::printf("\nratios to 2pc at the same clients (throughput: higher is better; p50, CPU: lower)\n");
  for (const Case& c : cases) {
    if (c.mode == "2pc") continue;
    for (const Case& base : cases) {
      if (base.mode != "2pc" || base.clients != c.clients || base.per_second == 0) continue;
      std::printf("%-6s %8d  throughput x%.2f   p50 x%.2f   app CPU x%.2f\n", c.mode.c_str(),
                  c.clients, c.per_second / base.per_second, c.p50_ms / base.p50_ms,
                  c.cpu_us / base.cpu_us);
    }
  }
  return 0;
}
