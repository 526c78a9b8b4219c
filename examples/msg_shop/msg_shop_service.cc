// The message shop: an order service that announces each order through xa-msgd, and an
// accounting service that books it, each a process of its own with its own database
// (docs/messages.md). The demo's message act and the message tests run them, and kill them at the
// two moments that matter: the order service between its business commit and its confirm (the
// service's back-query settles the message from the orders table), the accounting service
// between its booking commit and its acknowledgement (the redelivery meets the dedupe).
//
//   msg-shop-service --role order --msgd http://127.0.0.1:18700 --token-file F --queue Q
//                    [--listen 127.0.0.1:0] [--orders N] [--die-before-confirm K]
//                    [--serve-ms MS] [--prefix P]
//   msg-shop-service --role accounting --msgd ... --token-file F --queue Q
//                    [--die-before-ack K] [--idle-exit-ms MS] [--prefix P]
//   msg-shop-service --role order|accounting --reset [--prefix P]
//
// The order service keeps <prefix>_orders in PostgreSQL (message_id, amount): an order's row
// and its message id commit together, so its query endpoint (POST /query) answers from the
// table alone: a row means "committed"; no row, and no transaction of this process still in
// flight for that id, means "rolled_back". The accounting service keeps <prefix>_ledger in
// MariaDB, written behind xa::msg::FirstDelivery in the same local transaction; the ledger has
// no unique key, so a double booking would show.
//
// Settings of the databases and RabbitMQ: the local servers' environment (build/servers/env.sh).

#include <signal.h>
#include <unistd.h>

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "examples/bank/bank.h"
#include "src/http/http_server.h"
#include "xa/msg/message_client.h"
#include "xa/mysql/tcc_barrier.h"
#include "xa/odbc/local_connection.h"
#include "xa/odbc/tcc_barrier.h"

namespace {

using Json = nlohmann::json;

struct Args {
  std::string role, msgd, token_file, queue, listen = "127.0.0.1:0", prefix = "msgshop";
  int orders = 5;
  int die_before_confirm = 0;  // 0: never
  int die_before_ack = 0;
  int serve_ms = 0;
  int idle_exit_ms = 3000;
  bool reset = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "msg-shop-service: " << what << "\n";
  std::exit(1);
}

std::string ReadToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  std::getline(in, token);
  if (token.empty()) Die("no token in --token-file");
  return token;
}

xa::bank::BankSettings Settings() {
  auto settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) Die(settings.status().ToString());
  return *settings;
}

xa::rabbitmq::AmqpOptions Amqp() {
  auto get = [](const char* name) {
    const char* value = std::getenv(name);
    if (value == nullptr) Die(std::string(name) + " is not set: source the servers' env.sh");
    return std::string(value);
  };
  xa::rabbitmq::AmqpOptions options;
  options.host = get("XA_TEST_RABBITMQ_HOST");
  options.port = std::atoi(get("XA_TEST_RABBITMQ_PORT").c_str());
  options.user = get("XA_TEST_RABBITMQ_USER");
  std::ifstream in(get("XA_TEST_RABBITMQ_PASSWORD_FILE"));
  std::getline(in, options.password);
  return options;
}

std::unique_ptr<xa::odbc::LocalConnection> OpenOrders() {
  xa::odbc::OdbcOptions options = Settings().postgres;
  options.dialect = xa::odbc::Dialect::kPostgres;
  auto connection = xa::odbc::LocalConnection::Open(options);
  if (!connection.ok()) Die(connection.status().ToString());
  return std::move(connection).value();
}

std::unique_ptr<sql::Connection> OpenLedger() {
  auto connection = xa::mysql::OpenLocalConnection(Settings().mariadb);
  if (!connection.ok()) Die(connection.status().ToString());
  (*connection)->setAutoCommit(false);
  return std::move(connection).value();
}

void Reset(const Args& args) {
  auto orders = OpenOrders();
  for (const std::string& sql :
       {"DROP TABLE IF EXISTS " + args.prefix + "_orders",
        "CREATE TABLE " + args.prefix + "_orders (message_id CHAR(32) PRIMARY KEY, amount BIGINT)"}) {
    if (auto done = orders->Execute(sql); !done.ok()) Die(done.status().ToString());
  }
  if (auto done = orders->Commit(); !done.ok()) Die(done.ToString());
  auto ledger = OpenLedger();
  std::unique_ptr<sql::Statement> statement(ledger->createStatement());
  statement->execute("DROP TABLE IF EXISTS " + args.prefix + "_ledger");
  statement->execute("CREATE TABLE " + args.prefix +
                     "_ledger (message_id CHAR(32) NOT NULL, amount BIGINT) ENGINE=InnoDB");
  if (auto created = xa::mysql::CreateBarrierTable(*ledger); !created.ok()) {
    Die(created.ToString());
  }
  ledger->commit();
}

int RunOrder(const Args& args) {
  auto client = xa::msg::MessageClient::Make({args.msgd, ReadToken(args.token_file)});
  if (!client.ok()) Die(client.status().ToString());
  auto orders = OpenOrders();
  auto query_db = OpenOrders();
  std::mutex query_mu;
  std::set<std::string> in_flight;

  xa::http::HttpServerOptions http;
  http.address = args.listen;
  http.post_routes["/query"] = [&](const xa::http::HttpRequest& request) {
    Json question = Json::parse(request.body, nullptr, false);
    std::string id = question.is_object() ? question.value("id", "") : "";
    auto hex = [](const std::string& s) {
      return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
    };
    if (!hex(id)) return xa::http::HttpResponse{400, "text/plain", "bad id\n"};
    std::lock_guard<std::mutex> lock(query_mu);
    if (in_flight.count(id)) return xa::http::HttpResponse{503, "text/plain", "in flight\n"};
    auto rows = query_db->Query("SELECT COUNT(*) FROM " + args.prefix +
                                "_orders WHERE message_id = '" + id + "'");
    query_db->Rollback();
    if (!rows.ok() || rows->empty() || !(*rows)[0][0]) {
      return xa::http::HttpResponse{503, "text/plain", "database unavailable\n"};
    }
    std::string state = *(*rows)[0][0] == "0" ? "rolled_back" : "committed";
    std::cout << "back-query for " << id << ": " << state << std::endl;
    return xa::http::HttpResponse{200, "application/json", Json{{"state", state}}.dump()};
  };
  auto server = xa::http::HttpServer::Start(std::move(http));
  if (!server.ok()) Die(server.status().ToString());
  std::cout << "listening on " << (*server)->address() << std::endl;
  const std::string query_url = "http://" + (*server)->address() + "/query";

  for (int n = 1; n <= args.orders; ++n) {
    const int64_t amount = 10 * n;
    Json body{{"order", n}, {"amount", amount}};
    auto id = (*client)->PreSend({"order.placed", args.queue, body.dump(), query_url});
    if (!id.ok()) {
      std::cout << "order " << n << ": pre-send failed, order not placed: "
                << id.status().ToString() << std::endl;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(query_mu);
      in_flight.insert(*id);
    }
    auto inserted = orders->Execute("INSERT INTO " + args.prefix + "_orders VALUES ('" + *id +
                                    "', " + std::to_string(amount) + ")");
    xa::Status committed = inserted.ok() ? orders->Commit() : inserted.status();
    {
      std::lock_guard<std::mutex> lock(query_mu);
      in_flight.erase(*id);
    }
    if (!committed.ok()) {
      orders->Rollback();
      std::cout << "order " << n << ": not placed (" << committed.ToString() << "), cancel"
                << std::endl;
      (void)(*client)->Cancel(*id);
      continue;
    }
    if (n == args.die_before_confirm) {
      std::cout << "order " << n << ": committed with message " << *id
                << "; killed before its confirm" << std::endl;
      ::raise(SIGKILL);
    }
    xa::Status confirmed = (*client)->Confirm(*id);
    std::cout << "order " << n << ": committed, message " << *id
              << (confirmed.ok() ? " confirmed" : " confirm failed: " + confirmed.ToString())
              << std::endl;
  }
  if (args.serve_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(args.serve_ms));
  (*server)->Stop();
  return 0;
}

int RunAccounting(const Args& args) {
  auto acks = xa::msg::MessageClient::Make({args.msgd, ReadToken(args.token_file)});
  if (!acks.ok()) Die(acks.status().ToString());
  auto consumer = xa::msg::MessageConsumer::Connect(Amqp(), args.queue, **acks);
  if (!consumer.ok()) Die(consumer.status().ToString());
  auto ledger = OpenLedger();
  int processed = 0;
  auto idle_since = std::chrono::steady_clock::now();
  std::cout << "consuming " << args.queue << std::endl;
  while (std::chrono::steady_clock::now() - idle_since <
         std::chrono::milliseconds(args.idle_exit_ms)) {
    auto next = (*consumer)->Next(std::chrono::milliseconds(100));
    if (!next.ok()) Die(next.status().ToString());
    if (!*next) continue;
    idle_since = std::chrono::steady_clock::now();
    const xa::msg::Delivery& delivery = **next;
    Json body = Json::parse(delivery.body, nullptr, false);
    int64_t amount = body.is_object() ? body.value("amount", int64_t{0}) : 0;
    auto first = xa::msg::FirstDelivery(*ledger, "accounting", delivery.id);
    if (!first.ok()) {
      ledger->rollback();
      std::cout << "message " << delivery.id << ": " << first.status().ToString() << std::endl;
      continue;
    }
    if (*first) {
      std::unique_ptr<sql::Statement> statement(ledger->createStatement());
      statement->execute("INSERT INTO " + args.prefix + "_ledger VALUES ('" + delivery.id +
                         "', " + std::to_string(amount) + ")");
    }
    ledger->commit();
    std::cout << "message " << delivery.id << ": "
              << (*first ? "booked " + std::to_string(amount) : std::string("duplicate, skipped"))
              << (delivery.redelivered ? " (redelivered)" : "") << std::endl;
    if (*first && ++processed == args.die_before_ack) {
      std::cout << "killed after booking, before acknowledging" << std::endl;
      ::raise(SIGKILL);
    }
    xa::Status done = (*consumer)->Done(delivery);
    if (!done.ok()) std::cout << "acknowledge failed: " << done.ToString() << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--role") args.role = value();
    else if (arg == "--msgd") args.msgd = value();
    else if (arg == "--token-file") args.token_file = value();
    else if (arg == "--queue") args.queue = value();
    else if (arg == "--listen") args.listen = value();
    else if (arg == "--prefix") args.prefix = value();
    else if (arg == "--orders") args.orders = std::atoi(value().c_str());
    else if (arg == "--die-before-confirm") args.die_before_confirm = std::atoi(value().c_str());
    else if (arg == "--die-before-ack") args.die_before_ack = std::atoi(value().c_str());
    else if (arg == "--serve-ms") args.serve_ms = std::atoi(value().c_str());
    else if (arg == "--idle-exit-ms") args.idle_exit_ms = std::atoi(value().c_str());
    else if (arg == "--reset") args.reset = true;
    else Die("unknown option " + arg);
  }
  if (args.reset) {
    Reset(args);
    return 0;
  }
  if (args.role == "order") return RunOrder(args);
  if (args.role == "accounting") return RunAccounting(args);
  Die("--role must be order or accounting");
}
