// xa_notify_bench: what the notifier (daemons/msgd/notifier.h) delivers, in one run, on the
// local MariaDB and PostgreSQL:
//
//   (throughput)  N notifications (XA_NOTIFY_BENCH_NOTIFICATIONS, default 2000) submitted round
//                 robin to 1, 16 and 256 endpoints of a local receiver that answers 200 at once,
//                 then delivered by a notifier of 16 workers: notifications/s from the start of
//                 delivery to the last arrival, and the CPU per notification of this process
//                 (the notifier and the receiver) and of the database server;
//   (fairness)    one healthy endpoint's notifications (it has answered before), one every 50 ms
//                 for 4 s, while 100 other endpoints hold 5 notifications each and time out
//                 (their server accepts and never answers; call timeout 2 s): each healthy
//                 notification's delay from its submission to its arrival, p50, p99 and max,
//                 beside the same with no endpoint timing out.
//
// The ratios printed at the end are of the same run. Needs scripts/servers.sh start and its
// environment (. build/servers/env.sh).

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_env.h"
#include "daemons/msgd/notifier.h"
#include "daemons/msgd/sql_message_store.h"
#include "examples/local_agents/local_agents.h"
#include "src/http/http_server.h"
#include "xa/env.h"
#include "xa/msg/webhook.h"

namespace {

using xa::bench::RequireEnv;
using xa::bench::ReadFirstLine;
using xa::bench::SelfCpuMs;
using xa::bench::ReadPid;

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using xa::msg::Notifier;

xa::odbc::OdbcOptions StoreOptions(bool maria) {
  xa::odbc::OdbcOptions options;
  options.dsn = RequireEnv(maria ? "XA_TEST_ODBC_MARIADB_DSN" : "XA_TEST_ODBC_PG_DSN");
  options.user = RequireEnv(maria ? "XA_TEST_MARIADB_USER" : "XA_TEST_PG_USER");
  options.password =
      ReadFirstLine(RequireEnv(maria ? "XA_TEST_MARIADB_PASSWORD_FILE"
                                     : "XA_TEST_PG_PASSWORD_FILE"));
  options.dialect = maria ? xa::odbc::Dialect::kMariaDb : xa::odbc::Dialect::kPostgres;
  return options;
}

// The merchants' server: one path an endpoint, answering 200 at once; when each notification
// (by its body, the submission's steady time in microseconds) arrived.
class Receiver {
 public:
  explicit Receiver(int endpoints) {
    xa::http::HttpServerOptions options;
    options.address = "127.0.0.1:0";
    options.threads = 16;
    for (int i = 0; i < endpoints; ++i) {
      options.post_routes["/e/" + std::to_string(i)] = [this](const xa::http::HttpRequest& r) {
        const auto now = SteadyClock::now();
        {
          std::lock_guard<std::mutex> lock(mu_);
          delays_us_.push_back(
              std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch())
                  .count() -
              std::atoll(r.body.c_str()));
        }
        ++arrived_;
        return xa::http::HttpResponse(200, "text/plain", "");
      };
    }
    server_ = xa::http::HttpServer::Start(std::move(options)).value();
  }
  std::string url(int endpoint) const {
    return "http://" + server_->address() + "/e/" + std::to_string(endpoint);
  }
  int arrived() const { return arrived_.load(); }
  std::vector<int64_t> delays_us() {
    std::lock_guard<std::mutex> lock(mu_);
    return delays_us_;
  }

 private:
  std::unique_ptr<xa::http::HttpServer> server_;
  std::atomic<int> arrived_{0};
  std::mutex mu_;
  std::vector<int64_t> delays_us_;
};

// A server that accepts connections (the kernel's backlog does) and never answers.
class Silent {
 public:
  Silent() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd_, 4096) != 0) {
      throw std::runtime_error("cannot listen for the silent server");
    }
    socklen_t size = sizeof(address);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
  }
  ~Silent() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

double Percentile(std::vector<int64_t> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1));
  return static_cast<double>(values[index]);
}

// One store's tables under a prefix of their own, dropped at the end.
class Tables {
 public:
  Tables(bool maria, std::string prefix) : maria_(maria), prefix_(std::move(prefix)) {
    auto store = xa::msg::SqlMessageStore::Open(StoreOptions(maria_), prefix_);
    if (!store.ok() || !(*store)->Migrate().ok()) throw std::runtime_error("cannot migrate");
  }
  ~Tables() {
    auto connection = xa::odbc::LocalConnection::Open(StoreOptions(maria_));
    if (!connection.ok()) return;
    (void)(*connection)->Execute(xa::msg::DropStoreTablesSql(prefix_));
    (void)(*connection)->Commit();
  }
  xa::msg::NotificationStoreFactory factory() const {
    return [options = StoreOptions(maria_),
            prefix = prefix_]() -> xa::Result<std::unique_ptr<xa::msg::NotificationStore>> {
      auto store = xa::msg::SqlMessageStore::Open(options, prefix);
      if (!store.ok()) return store.status();
      return std::unique_ptr<xa::msg::NotificationStore>(std::move(store).value());
    };
  }

 private:
  bool maria_;
  std::string prefix_;
};

xa::msg::NotifierOptions Options() {
  xa::msg::NotifierOptions options;
  options.workers = 16;
  options.call_timeout = 2s;
  options.connect_timeout = 1s;
  options.poll_interval = 100ms;
  options.url_policy.schemes = {"http"};
  options.url_policy.networks = {xa::msg::ParseIpNetwork("127.0.0.0/8").value()};
  return options;
}

void PutEndpoint(Notifier& notifier, const std::string& id, const std::string& url,
                 const std::string& secret) {
  xa::msg::EndpointChange change;
  change.id = id;
  change.url = url;
  change.secrets = std::vector<std::string>{secret};
  auto put = notifier.PutEndpoint(change);
  if (!put.ok()) throw std::runtime_error(put.status().ToString());
}

struct Throughput {
  double per_second = 0, app_us = 0, db_us = 0, submit_us = 0;
};

Throughput RunThroughput(bool maria, int endpoints, int count, int db_pid) {
  Tables tables(maria, "nb" + std::to_string(getpid()) + "_" + std::to_string(endpoints) + "_");
  Receiver receiver(endpoints);
  const std::string secret = xa::msg::WebhookSecret::Generate().value().ToString();
  xa::msg::NotifierOptions options = Options();
  Notifier notifier(options, tables.factory(), xa::msg::MakeHttpEndpointCaller(options),
                    xa::Env::Default()->clock());
  for (int i = 0; i < endpoints; ++i) {
    PutEndpoint(notifier, "e" + std::to_string(i), receiver.url(i), secret);
  }
  const auto submit_start = SteadyClock::now();
  for (int i = 0; i < count; ++i) {
    auto submitted = notifier.Submit("e" + std::to_string(i % endpoints), "payment.succeeded",
                                     std::to_string(NowUs()));
    if (!submitted.ok()) throw std::runtime_error(submitted.status().ToString());
  }
  const double submit_us =
      std::chrono::duration<double, std::micro>(SteadyClock::now() - submit_start).count() /
      count;
  const double app_before = SelfCpuMs();
  const double db_before = xa::local_agents::ProcessTreeCpuMs(db_pid);
  const auto start = SteadyClock::now();
  notifier.Start();
  while (receiver.arrived() < count && SteadyClock::now() - start < 120s) {
    std::this_thread::sleep_for(2ms);
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const double app_ms = SelfCpuMs() - app_before;
  const double db_ms = xa::local_agents::ProcessTreeCpuMs(db_pid) - db_before;
  notifier.Stop();
  if (receiver.arrived() < count) throw std::runtime_error("not every notification arrived");
  return {count / seconds, app_ms * 1000 / count, db_ms * 1000 / count, submit_us};
}

struct Delays {
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int healthy = 0;
};

Delays RunFairness(bool maria, int timing_out) {
  Tables tables(maria, "nf" + std::to_string(getpid()) + "_" + std::to_string(timing_out) + "_");
  Receiver receiver(1);
  Silent silent;
  const std::string secret = xa::msg::WebhookSecret::Generate().value().ToString();
  xa::msg::NotifierOptions options = Options();
  Notifier notifier(options, tables.factory(), xa::msg::MakeHttpEndpointCaller(options),
                    xa::Env::Default()->clock());
  PutEndpoint(notifier, "healthy", receiver.url(0), secret);
  // The healthy endpoint has answered before (the notifier knows it as proven): the steady
  // state this case is about. A new endpoint's first call competes with the unproven ones.
  notifier.Start();
  if (!notifier.Submit("healthy", "e", std::to_string(NowUs())).ok()) {
    throw std::runtime_error("submit failed");
  }
  const auto warm_start = SteadyClock::now();
  while (receiver.arrived() < 1 && SteadyClock::now() - warm_start < 10s) {
    std::this_thread::sleep_for(2ms);
  }
  if (receiver.arrived() < 1) throw std::runtime_error("the healthy endpoint was not reached");
  for (int i = 0; i < timing_out; ++i) {
    PutEndpoint(notifier, "slow" + std::to_string(i), silent.url(), secret);
    for (int k = 0; k < 5; ++k) {
      if (!notifier.Submit("slow" + std::to_string(i), "e", "0").ok()) {
        throw std::runtime_error("submit failed");
      }
    }
  }
  std::this_thread::sleep_for(200ms);  // the timing-out endpoints' calls are under way
  int healthy = 1;
  const auto end = SteadyClock::now() + 4s;
  while (SteadyClock::now() < end) {
    if (!notifier.Submit("healthy", "e", std::to_string(NowUs())).ok()) {
      throw std::runtime_error("submit failed");
    }
    ++healthy;
    std::this_thread::sleep_for(50ms);
  }
  const auto wait_start = SteadyClock::now();
  while (receiver.arrived() < healthy && SteadyClock::now() - wait_start < 30s) {
    std::this_thread::sleep_for(5ms);
  }
  notifier.Stop();
  std::vector<int64_t> delays = receiver.delays_us();
  delays.erase(delays.begin());  // the warm-up's
  if (static_cast<int>(delays.size()) < healthy - 1) {
    throw std::runtime_error("not every healthy notification arrived");
  }
  return {Percentile(delays, 0.5) / 1000, Percentile(delays, 0.99) / 1000,
          Percentile(delays, 1.0) / 1000, healthy - 1};
}

}  // namespace

int main() {
  const char* count_env = std::getenv("XA_NOTIFY_BENCH_NOTIFICATIONS");
  const int count = count_env != nullptr ? std::atoi(count_env) : 2000;
  try {
    const std::string servers = RequireEnv("XA_TEST_SERVERS_DIR");
    const int mariadb = ReadPid(servers + "/mariadb/mariadbd.pid");
    const int postgres = ReadPid(servers + "/pg/data/postmaster.pid");
    std::map<std::pair<bool, int>, Throughput> throughput;
    std::map<std::pair<bool, int>, Delays> fairness;
    std::printf("%-8s %9s %10s %12s %8s %8s %9s\n", "store", "endpoints", "notif/s",
                "submit us", "app us", "db us", "total us");
    for (bool maria : {true, false}) {
      for (int endpoints : {1, 16, 256}) {
        Throughput t = RunThroughput(maria, endpoints, count, maria ? mariadb : postgres);
        throughput[{maria, endpoints}] = t;
        std::printf("%-8s %9d %10.0f %12.0f %8.0f %8.0f %9.0f\n", maria ? "mariadb" : "postgres",
                    endpoints, t.per_second, t.submit_us, t.app_us, t.db_us, t.app_us + t.db_us);
        std::fflush(stdout);
      }
    }
    std::printf("\n%-8s %11s %8s %8s %8s %8s\n", "store", "timing out", "healthy", "p50 ms",
                "p99 ms", "max ms");
    for (bool maria : {true, false}) {
      for (int timing_out : {0, 100}) {
        Delays d = RunFairness(maria, timing_out);
        fairness[{maria, timing_out}] = d;
        std::printf("%-8s %11d %8d %8.1f %8.1f %8.1f\n", maria ? "mariadb" : "postgres",
                    timing_out, d.healthy, d.p50_ms, d.p99_ms, d.max_ms);
        std::fflush(stdout);
      }
    }
    std::printf("\n");
    for (bool maria : {true, false}) {
      const char* name = maria ? "mariadb" : "postgres";
      std::printf("%-8s 256/1 endpoints  throughput x%.2f   CPU x%.2f\n", name,
                  throughput[{maria, 256}].per_second / throughput[{maria, 1}].per_second,
                  (throughput[{maria, 256}].app_us + throughput[{maria, 256}].db_us) /
                      (throughput[{maria, 1}].app_us + throughput[{maria, 1}].db_us));
      std::printf("%-8s 100 timing out / none  healthy p50 x%.2f   p99 x%.2f\n", name,
                  fairness[{maria, 100}].p50_ms / fairness[{maria, 0}].p50_ms,
                  fairness[{maria, 100}].p99_ms / fairness[{maria, 0}].p99_ms);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "xa_notify_bench: %s\n", error.what());
    return 1;
  }
  return 0;
}
