// The kill soak's producer and consumer (tests/msgd/msgd_kill_soak_test.cc), each a process the
// soak kills at random moments.
//
//   msgd_soak_worker producer <prefix> <queue> <query url> <token> <msgd url>...
//     Forever: pre-send through a random xa-msgd, then the business operation in MariaDB, one
//     local transaction: INSERT INTO <prefix>order (message_id, state) VALUES (id, 'placed').
//     One operation in six fails on purpose (rolled back); an insert that meets the query
//     endpoint's 'void' row for the id fails too. Then Confirm, or Cancel for a failed one.
//     Errors are not fatal: an unsettled message is the back-query's to settle.
//   msgd_soak_worker consumer <prefix> <queue> <token> <msgd url>
//     Forever: each delivery in one PostgreSQL transaction: FirstDelivery (the dedupe), and on
//     the first, INSERT INTO <prefix>effect (message_id); commit; then Done.
//
// The databases, RabbitMQ and ODBC come from the test servers' environment (env.sh). Each line
// it prints is flushed, so a kill loses no line of what was done.

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/testutil/rabbitmq_env.h"
#include "xa/msg/message_client.h"
#include "xa/odbc/local_connection.h"

namespace {

using namespace std::chrono_literals;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) {
    std::cerr << "msgd_soak_worker: missing " << name << std::endl;
    std::exit(2);
  }
  return value;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

xa::odbc::OdbcOptions DatabaseOptions(bool postgres) {
  xa::odbc::OdbcOptions options;
  options.dsn = Env(postgres ? "XA_TEST_ODBC_PG_DSN" : "XA_TEST_ODBC_MARIADB_DSN");
  options.user = Env(postgres ? "XA_TEST_PG_USER" : "XA_TEST_MARIADB_USER");
  options.password =
      ReadFirstLine(Env(postgres ? "XA_TEST_PG_PASSWORD_FILE" : "XA_TEST_MARIADB_PASSWORD_FILE"));
  options.dialect = postgres ? xa::odbc::Dialect::kPostgres : xa::odbc::Dialect::kMariaDb;
  return options;
}

// A connection that is made again after it was lost (the soak does not kill the databases, but
// a statement may still fail).
class ReconnectingDatabase {
 public:
  explicit ReconnectingDatabase(bool postgres) : options_(DatabaseOptions(postgres)) {}
  xa::odbc::LocalConnection* Get() {
    if (connection_ && !connection_->lost()) return connection_.get();
    connection_.reset();
    auto made = xa::odbc::LocalConnection::Open(options_);
    if (!made.ok()) {
      std::cout << "database: " << made.status().ToString() << std::endl;
      std::this_thread::sleep_for(200ms);
      return nullptr;
    }
    connection_ = std::move(made).value();
    return connection_.get();
  }

 private:
  xa::odbc::OdbcOptions options_;
  std::unique_ptr<xa::odbc::LocalConnection> connection_;
};

xa::rabbitmq::AmqpOptions Broker() {
  xa::Result<xa::rabbitmq::AmqpOptions> from_env = xa::test::RabbitMqOptionsFromEnv();
  if (!from_env.ok()) {
    std::cerr << "msgd_soak_worker: " << from_env.status().ToString() << std::endl;
    std::exit(2);
  }
  xa::rabbitmq::AmqpOptions options = std::move(from_env).value();
  options.confirm_timeout = 3s;
  options.connect_timeout = 2s;
  return options;
}

std::unique_ptr<xa::msg::MessageClient> Client(const std::string& url, const std::string& token) {
  xa::msg::ClientOptions options{url, token};
  options.connect_timeout = 1s;
  options.request_timeout = 5s;
  auto client = xa::msg::MessageClient::Make(options);
  if (!client.ok()) {
    std::cerr << "msgd_soak_worker: " << client.status().ToString() << std::endl;
    std::exit(2);
  }
  return std::move(client).value();
}

int Producer(const std::string& prefix, const std::string& queue, const std::string& query_url,
             const std::string& token, const std::vector<std::string>& urls) {
  std::mt19937 random{std::random_device{}()};
  std::vector<std::unique_ptr<xa::msg::MessageClient>> clients;
  for (const std::string& url : urls) clients.push_back(Client(url, token));
  ReconnectingDatabase orders(/*postgres=*/false);
  for (int n = 0;; ++n) {
    xa::msg::MessageClient& client = *clients[random() % clients.size()];
    auto id = client.PreSend({"order.placed", queue, "order " + std::to_string(n), query_url});
    if (!id.ok()) {
      std::this_thread::sleep_for(50ms);
      continue;
    }
    std::cout << "pre-sent " << *id << std::endl;
    bool placed = false;
    if (xa::odbc::LocalConnection* db = orders.Get()) {
      bool fail_on_purpose = random() % 6 == 0;
      auto inserted = db->Execute("INSERT INTO " + prefix + "order (message_id, state) VALUES ('" +
                                  *id + "', 'placed')");
      if (inserted.ok() && !fail_on_purpose) {
        placed = db->Commit().ok();
      } else {
        db->Rollback();
      }
    }
    std::cout << (placed ? "placed " : "failed ") << *id << std::endl;
    xa::Status settled = placed ? client.Confirm(*id) : client.Cancel(*id);
    std::cout << (placed ? "confirm " : "cancel ") << *id << " " << (settled.ok() ? "ok" : "failed")
              << std::endl;
  }
}

int Consumer(const std::string& prefix, const std::string& queue, const std::string& token,
             const std::string& url) {
  auto acks = Client(url, token);
  ReconnectingDatabase effects(/*postgres=*/true);
  while (true) {
    auto consumer = xa::msg::MessageConsumer::Connect(Broker(), queue, *acks, 8);
    if (!consumer.ok()) {
      std::this_thread::sleep_for(200ms);
      continue;
    }
    while (true) {
      auto next = (*consumer)->Next(200ms);
      if (!next.ok()) break;  // the broker went away: connect again
      if (!*next) continue;
      const xa::msg::Delivery& delivery = **next;
      xa::odbc::LocalConnection* db = effects.Get();
      if (db == nullptr) break;  // unacknowledged: the broker gives it to the next connection
      auto first = xa::msg::FirstDelivery(db->handle(), xa::odbc::Dialect::kPostgres, "soak",
                                          delivery.id);
      bool committed = false;
      if (first.ok()) {
        bool worked = !*first || db->Execute("INSERT INTO " + prefix + "effect (message_id) VALUES ('" +
                                             delivery.id + "')")
                                     .ok();
        committed = worked && db->Commit().ok();
      }
      if (!committed) {
        db->Rollback();
        break;
      }
      std::cout << (first.ok() && *first ? "processed " : "again ") << delivery.id << std::endl;
      // With its xa-msgd down the ack fails and the delivery is requeued: not too fast a loop.
      if (!(*consumer)->Done(delivery).ok()) std::this_thread::sleep_for(100ms);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() >= 6 && args[0] == "producer") {
    return Producer(args[1], args[2], args[3], args[4],
                    std::vector<std::string>(args.begin() + 5, args.end()));
  }
  if (args.size() == 5 && args[0] == "consumer") return Consumer(args[1], args[2], args[3], args[4]);
  std::cerr << "usage: msgd_soak_worker producer <prefix> <queue> <query url> <token> <msgd url>...\n"
               "       msgd_soak_worker consumer <prefix> <queue> <token> <msgd url>\n";
  return 2;
}
