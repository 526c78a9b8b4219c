// xa_msg_bench: what a message costs end to end through xa-msgd, beside publishing it to
// RabbitMQ directly with publisher confirms (the floor the store and the extra round trips add
// to), in one run.
//
//   (raw)           each producer thread publishes to a durable queue with its own connection
//                   and waits for the broker's confirm (xa/rabbitmq/amqp_connection.h); the
//                   consumers ack each delivery to the broker;
//   (msgd-mariadb)  each producer thread pre-sends and confirms through xa-msgd (its own
//   (msgd-postgres) process, its store on the local MariaDB, PostgreSQL or Redis with
//   (msgd-redis)    appendfsync always); xa-msgd publishes
//                   with confirms; the consumers acknowledge each delivery to xa-msgd, then to
//                   the broker (xa/msg/message_client.h, MessageConsumer::Done).
//
// at 1, 4 and 16 producers, each case XA_MSG_BENCH_SECONDS long (default 3), with 4 consumer
// threads. A message's latency runs from the start of its Confirm (raw: of its Publish) to its
// arrival at a consumer; messages/s counts arrivals from the case's start until the last one.
// CPU per message is printed for this process (producers, consumers, their HTTP clients), for
// xa-msgd, for the broker and for the store's database server, read from /proc: from 4
// producers up this machine's 2 cores are the limit, and the CPU columns say where they went.
//
// Needs scripts/servers.sh start and its environment (. build/servers/env.sh).

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_env.h"
#include "daemons/msgd/sql_message_store.h"
#include "examples/local_agents/local_agents.h"
#include "xa/msg/message_client.h"
#include "xa/odbc/local_connection.h"
#include "xa/rabbitmq/amqp_connection.h"

namespace {

using xa::bench::RequireEnv;
using xa::bench::ReadFirstLine;
using xa::bench::SelfCpuMs;
using xa::bench::ReadPid;

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kConsumers = 4;
constexpr auto kDrainLimit = 30s;  // after the producers stop, the longest wait for the last

std::string RandomHex(size_t bytes) {
  static std::mt19937_64 random{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < bytes * 2; ++i) out += digits[random() % 16];
  return out;
}

xa::rabbitmq::AmqpOptions Broker() {
  xa::rabbitmq::AmqpOptions options;
  options.host = RequireEnv("XA_TEST_RABBITMQ_HOST");
  options.port = std::atoi(RequireEnv("XA_TEST_RABBITMQ_PORT").c_str());
  options.user = RequireEnv("XA_TEST_RABBITMQ_USER");
  options.password = ReadFirstLine(RequireEnv("XA_TEST_RABBITMQ_PASSWORD_FILE"));
  return options;
}

enum class Store { kNone, kMariaDb, kPostgres, kRedis };

const char* ModeName(Store store) {
  switch (store) {
    case Store::kNone: return "raw";
    case Store::kMariaDb: return "msgd-mariadb";
    case Store::kPostgres: return "msgd-postgres";
    case Store::kRedis: return "msgd-redis";
  }
  return "?";
}

// The processes whose CPU a case counts, other than this one.
struct Processes {
  int msgd = 0, broker = 0, store = 0;
};

struct CpuSample {
  double app = 0, msgd = 0, broker = 0, store = 0;
};

CpuSample SampleCpu(const Processes& processes) {
  return {SelfCpuMs(), xa::local_agents::ChildCpuMs(processes.msgd),
          xa::local_agents::ProcessTreeCpuMs(processes.broker),
          xa::local_agents::ProcessTreeCpuMs(processes.store)};
}

struct CaseResult {
  int64_t messages = 0;  // arrived at a consumer (first arrival of each)
  int64_t failed = 0;    // producer calls or acknowledgements that failed
  double per_second = 0;
  double p50_ms = 0, p99_ms = 0;
  CpuSample cpu_us;  // per message
};

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t at = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(at, values.size() - 1)];
}

// What the producers sent and when, and what the consumers received.
class Ledger {
 public:
  void Sent(const std::string& id, SteadyClock::time_point at) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_at_[id] = at;
  }
  // A delivery arrived: its latency once, the first time.
  void Arrived(const std::string& id, SteadyClock::time_point at) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sent_at_.find(id);
    if (it == sent_at_.end() || !received_.insert(id).second) return;
    latencies_ms_.push_back(std::chrono::duration<double, std::milli>(at - it->second).count());
    last_arrival_ = at;
  }
  void Failed() { failed_.fetch_add(1); }
  size_t sent() {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_at_.size();
  }
  size_t received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_.size();
  }
  CaseResult Result(SteadyClock::time_point start) {
    std::lock_guard<std::mutex> lock(mu_);
    CaseResult result;
    result.messages = static_cast<int64_t>(received_.size());
    result.failed = failed_.load() + static_cast<int64_t>(sent_at_.size() - received_.size());
    double seconds = std::chrono::duration<double>(last_arrival_ - start).count();
    result.per_second = seconds > 0 ? static_cast<double>(result.messages) / seconds : 0;
    result.p50_ms = Percentile(latencies_ms_, 0.50);
    result.p99_ms = Percentile(latencies_ms_, 0.99);
    return result;
  }

 private:
  std::mutex mu_;
  std::map<std::string, SteadyClock::time_point> sent_at_;
  std::set<std::string> received_;
  std::vector<double> latencies_ms_;
  SteadyClock::time_point last_arrival_;
  std::atomic<int64_t> failed_{0};
};

// xa-msgd as a child process, its store's tables under a prefix of its own.
class Msgd {
 public:
  Msgd(Store store, const std::string& work) : store_(store), work_(work) {
    std::filesystem::create_directories(work_);
    producer_token_ = RandomHex(20);
    consumer_token_ = RandomHex(20);
    prefix_ = "mb" + RandomHex(4) + "_";
    Write("tokens", "producer orders " + producer_token_ + "\nconsumer accounting " +
                        consumer_token_ + "\n");
    std::ostringstream config;
    config << "listen = 127.0.0.1:0\n"
           << "tokens_file = " << work_ << "/tokens\n"
           << "table_prefix = " << prefix_ << "\n"
           << "http_threads = 32\n"
           // Nothing is asked about or redelivered while the case runs: every message is
           // confirmed at once and acknowledged within seconds.
           << "confirm_timeout_ms = 600000\n"
           << "ack_timeout_ms = 600000\n"
           << StoreSection()
           << "[broker rabbitmq]\nhost = " << RequireEnv("XA_TEST_RABBITMQ_HOST") << "\n"
           << "port = " << RequireEnv("XA_TEST_RABBITMQ_PORT") << "\n"
           << "user = " << RequireEnv("XA_TEST_RABBITMQ_USER") << "\n"
           << "password_file = " << RequireEnv("XA_TEST_RABBITMQ_PASSWORD_FILE") << "\n";
    Write("msgd.conf", config.str());
    const std::string output = work_ + "/msgd.out";
    int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) throw std::runtime_error("cannot write " + output);
    pid_ = xa::local_agents::Spawn({XA_MSGD_PATH, "--config", work_ + "/msgd.conf"}, {}, fd, fd);
    ::close(fd);
    if (pid_ <= 0) throw std::runtime_error("cannot start xa-msgd");
    address_ = xa::local_agents::WaitForWordAfter(output, "serving on http://");
    if (address_.empty()) {
      std::ifstream in(output);
      std::stringstream text;
      text << in.rdbuf();
      throw std::runtime_error("xa-msgd did not start:\n" + text.str());
    }
  }
  ~Msgd() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    DropTables();
  }
  int pid() const { return pid_; }
  std::unique_ptr<xa::msg::MessageClient> Client(bool producer) const {
    auto client = xa::msg::MessageClient::Make(
        {"http://" + address_, producer ? producer_token_ : consumer_token_});
    if (!client.ok()) throw std::runtime_error(client.status().ToString());
    return std::move(client).value();
  }

 private:
  void Write(const std::string& name, const std::string& text) {
    if (!xa::local_agents::WritePrivateFile(work_ + "/" + name, text)) {
      throw std::runtime_error("cannot write " + work_ + "/" + name);
    }
  }
  // The configuration's store section for the local server of the case's store.
  std::string StoreSection() const {
    if (store_ == Store::kRedis) {
      return "[redis store]\nhost = " + RequireEnv("XA_TEST_REDIS_HOST") +
             "\nport = " + RequireEnv("XA_TEST_REDIS_PORT") +
             "\npassword_file = " + RequireEnv("XA_TEST_REDIS_PASSWORD_FILE") + "\n";
    }
    const bool maria = store_ == Store::kMariaDb;
    return std::string("[rm store]\ndriver = odbc\n") +
           "dsn = " + RequireEnv(maria ? "XA_TEST_ODBC_MARIADB_DSN" : "XA_TEST_ODBC_PG_DSN") + "\n" +
           "dialect = " + (maria ? "mariadb" : "postgres") + "\n" +
           "user = " + RequireEnv(maria ? "XA_TEST_MARIADB_USER" : "XA_TEST_PG_USER") + "\n" +
           "password_file = " +
           RequireEnv(maria ? "XA_TEST_MARIADB_PASSWORD_FILE" : "XA_TEST_PG_PASSWORD_FILE") + "\n";
  }
  void DropTables() {
    if (store_ == Store::kRedis) {
      // redis-cli takes the password from its environment, never from argv.
      const std::string password = ReadFirstLine(RequireEnv("XA_TEST_REDIS_PASSWORD_FILE"));
      const int quiet = ::open("/dev/null", O_WRONLY);
      pid_t cli = xa::local_agents::Spawn(
          {"/usr/bin/redis-cli", "-h", RequireEnv("XA_TEST_REDIS_HOST"), "-p", RequireEnv("XA_TEST_REDIS_PORT"),
           "EVAL",
           "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end",
           "0", prefix_ + "*"},
          {"REDISCLI_AUTH=" + password}, quiet, quiet);
      if (quiet >= 0) ::close(quiet);
      if (cli > 0) ::waitpid(cli, nullptr, 0);
      return;
    }
    const bool maria = store_ == Store::kMariaDb;
    xa::odbc::OdbcOptions options;
    options.dsn = RequireEnv(maria ? "XA_TEST_ODBC_MARIADB_DSN" : "XA_TEST_ODBC_PG_DSN");
    options.user = RequireEnv(maria ? "XA_TEST_MARIADB_USER" : "XA_TEST_PG_USER");
    options.password =
        ReadFirstLine(RequireEnv(maria ? "XA_TEST_MARIADB_PASSWORD_FILE"
                                       : "XA_TEST_PG_PASSWORD_FILE"));
    options.dialect = maria ? xa::odbc::Dialect::kMariaDb : xa::odbc::Dialect::kPostgres;
    auto connection = xa::odbc::LocalConnection::Open(options);
    if (!connection.ok()) return;
    (void)(*connection)->Execute(xa::msg::DropStoreTablesSql(prefix_));
    (void)(*connection)->Commit();
  }

  Store store_;
  std::string work_, producer_token_, consumer_token_, prefix_, address_;
  pid_t pid_ = -1;
};

CaseResult RunCase(int producers, double seconds, Msgd* msgd,
                   const Processes& processes) {
  const std::string queue = "xa-msg-bench-" + RandomHex(4);
  Ledger ledger;
  std::atomic<bool> producing{true}, consuming{true};
  {
    // The queue exists before the first publication (raw publishes are mandatory).
    auto publisher = xa::rabbitmq::AmqpPublisher::Connect(Broker());
    if (!publisher.ok()) throw std::runtime_error(publisher.status().ToString());
    if (xa::Status declared = (*publisher)->DeclareQueue(queue); !declared.ok()) {
      throw std::runtime_error(declared.ToString());
    }
  }
  std::unique_ptr<xa::msg::MessageClient> acks = msgd ? msgd->Client(false) : nullptr;

  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&] {
      if (msgd != nullptr) {
        auto consumer = xa::msg::MessageConsumer::Connect(Broker(), queue, *acks, 64);
        if (!consumer.ok()) {
          std::cerr << consumer.status().ToString() << "\n";
          ledger.Failed();
          return;
        }
        while (consuming.load()) {
          auto next = (*consumer)->Next(50ms);
          if (!next.ok()) {
            ledger.Failed();
            return;
          }
          if (!*next) continue;
          ledger.Arrived((*next)->id, SteadyClock::now());
          if (!(*consumer)->Done(**next).ok()) ledger.Failed();
        }
      } else {
        auto consumer = xa::rabbitmq::AmqpConsumer::Connect(Broker(), queue, 64);
        if (!consumer.ok()) {
          std::cerr << consumer.status().ToString() << "\n";
          ledger.Failed();
          return;
        }
        while (consuming.load()) {
          auto next = (*consumer)->Next(50ms);
          if (!next.ok()) {
            ledger.Failed();
            return;
          }
          if (!*next) continue;
          ledger.Arrived((*next)->message_id, SteadyClock::now());
          if (!(*consumer)->Ack((*next)->delivery_tag).ok()) ledger.Failed();
        }
      }
    });
  }

  const CpuSample before = SampleCpu(processes);
  const auto start = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      if (msgd != nullptr) {
        auto client = msgd->Client(true);
        for (int n = 0; producing.load(); ++n) {
          auto id = client->PreSend({"bench.message", queue,
                                     "{\"producer\": " + std::to_string(p) + ", \"n\": " +
                                         std::to_string(n) + "}",
                                     "http://127.0.0.1:9/never-asked"});
          if (!id.ok()) {
            ledger.Failed();
            continue;
          }
          ledger.Sent(*id, SteadyClock::now());
          if (!client->Confirm(*id).ok()) ledger.Failed();
        }
      } else {
        auto publisher = xa::rabbitmq::AmqpPublisher::Connect(Broker());
        if (!publisher.ok()) {
          ledger.Failed();
          return;
        }
        for (int n = 0; producing.load(); ++n) {
          const std::string id = std::to_string(p) + "-" + std::to_string(n);
          ledger.Sent(id, SteadyClock::now());
          xa::Status published = (*publisher)->Publish(
              queue, id, "application/json", "{\"producer\": " + std::to_string(p) + "}");
          if (!published.ok()) ledger.Failed();
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  producing = false;
  for (std::thread& thread : threads) thread.join();
  const auto drain_deadline = SteadyClock::now() + kDrainLimit;
  while (ledger.received() < ledger.sent() && SteadyClock::now() < drain_deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const CpuSample after = SampleCpu(processes);
  consuming = false;
  for (std::thread& thread : consumers) thread.join();

  CaseResult result = ledger.Result(start);
  const double n = std::max<double>(1.0, static_cast<double>(result.messages));
  result.cpu_us = {(after.app - before.app) * 1000.0 / n, (after.msgd - before.msgd) * 1000.0 / n,
                   (after.broker - before.broker) * 1000.0 / n,
                   (after.store - before.store) * 1000.0 / n};
  return result;
}

}  // namespace

int main() {
  const char* seconds_env = std::getenv("XA_MSG_BENCH_SECONDS");
  const double seconds = seconds_env != nullptr ? std::atof(seconds_env) : 3.0;
  const std::string work =
      (std::filesystem::temp_directory_path() / ("xa_msg_bench." + std::to_string(getpid())))
          .string();
  std::map<std::pair<Store, int>, CaseResult> results;
  try {
    const std::string servers = RequireEnv("XA_TEST_SERVERS_DIR");
    const int broker = ReadPid(servers + "/rabbitmq/rabbitmq.pid");
    const int mariadb = ReadPid(servers + "/mariadb/mariadbd.pid");
    const int postgres = ReadPid(servers + "/pg/data/postmaster.pid");
    const int redis = ReadPid(servers + "/redis/redis.pid");
    for (Store store : {Store::kNone, Store::kMariaDb, Store::kPostgres, Store::kRedis}) {
      std::unique_ptr<Msgd> msgd;
      Processes processes{0, broker, 0};
      if (store != Store::kNone) {
        msgd = std::make_unique<Msgd>(store, work + "/" + ModeName(store));
        processes.msgd = msgd->pid();
        processes.store = store == Store::kMariaDb    ? mariadb
                          : store == Store::kPostgres ? postgres
                                                      : redis;
      }
      for (int producers : {1, 4, 16}) {
        results[{store, producers}] = RunCase(producers, seconds, msgd.get(), processes);
        std::cerr << "xa_msg_bench: " << ModeName(store) << " at " << producers
                  << " producers done\n";
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "xa_msg_bench: " << e.what() << "\n";
    std::filesystem::remove_all(work);
    return 1;
  }
  std::filesystem::remove_all(work);

  std::printf("\nxa_msg_bench: end to end, from Confirm (raw: Publish) to a consumer; %d consumers; "
              "%.1f s a case; CPU in us per message\n",
              kConsumers, seconds);
  std::printf("%-14s %9s %9s %9s %8s %8s %8s %8s %8s %8s %8s %6s\n", "mode", "producers",
              "messages", "msgs/s", "p50_ms", "p99_ms", "app_us", "msgd_us", "broker_us",
              "store_us", "total_us", "failed");
  for (const auto& [key, r] : results) {
    const double total = r.cpu_us.app + r.cpu_us.msgd + r.cpu_us.broker + r.cpu_us.store;
    std::printf("%-14s %9d %9lld %9.0f %8.2f %8.2f %8.0f %8.0f %8.0f %8.0f %8.0f %6lld\n",
                ModeName(key.first), key.second, static_cast<long long>(r.messages),
                r.per_second, r.p50_ms, r.p99_ms, r.cpu_us.app, r.cpu_us.msgd, r.cpu_us.broker,
                r.cpu_us.store, total, static_cast<long long>(r.failed));
  }
  std::printf("\nratios to raw RabbitMQ publishing with confirms, same producers:\n");
  for (Store store : {Store::kMariaDb, Store::kPostgres, Store::kRedis}) {
    for (int producers : {1, 4, 16}) {
      const CaseResult& r = results[{store, producers}];
      const CaseResult& raw = results[{Store::kNone, producers}];
      auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
      auto total = [](const CaseResult& c) {
        return c.cpu_us.app + c.cpu_us.msgd + c.cpu_us.broker + c.cpu_us.store;
      };
      std::printf("%-14s %2d  throughput x%.2f   p50 x%.1f   CPU x%.1f\n", ModeName(store),
                  producers, ratio(r.per_second, raw.per_second), ratio(r.p50_ms, raw.p50_ms),
                  ratio(total(r), total(raw)));
    }
  }
  return 0;
}
