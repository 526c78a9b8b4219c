#include "examples/bank_transfer/msg_act.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank_transfer/admin_sql.h"
#include "examples/bank_transfer/child_process.h"
#include "examples/local_agents/local_agents.h"

namespace xa::demo {
namespace {

constexpr char kPrefix[] = "demomsg";
constexpr char kQueue[] = "xa-demo-accounting";
constexpr int kOrders = 5;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string RandomToken() {
  std::random_device random;
  std::string token;
  for (int i = 0; i < 40; ++i) token += "0123456789abcdef"[random() % 16];
  return token;
}

bool WriteSecret(const std::string& path, const std::string& text) {
  std::ofstream(path) << text << "\n";
  return ::chmod(path.c_str(), 0600) == 0;
}

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// Starts `argv` with its output in `out`; the pid.
pid_t Start(const std::vector<std::string>& argv, const std::string& out) {
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Prints the lines of `out` (a service's account of what it did), indented.
void Replay(const std::string& out, const std::string& who) {
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("listening on") != std::string::npos || line.find("consuming") == 0) continue;
    std::cout << "    " << who << ": " << line << "\n";
  }
}

}  // namespace

bool RunMessagesAct(const std::string& work, const std::string& msgd_path,
                    const std::string& shop_path) {
  std::cout << "\n7. Reliable messages through xa-msgd: an order service (orders in PostgreSQL) "
               "announces each order to an accounting service (a ledger in MariaDB) through the "
               "message service (its store in PostgreSQL, delivery through RabbitMQ):\n";
  const std::string producer_token = RandomToken(), consumer_token = RandomToken();
  bool files = WriteSecret(work + "/msgd.tokens", "producer orders " + producer_token +
                                                      "\nconsumer accounting " + consumer_token) &&
               WriteSecret(work + "/orders.token", producer_token) &&
               WriteSecret(work + "/accounting.token", consumer_token) &&
               WriteSecret(work + "/pg.pw", ReadFirstLine(Env("XA_TEST_PG_PASSWORD_FILE"))) &&
               WriteSecret(work + "/amqp.pw", ReadFirstLine(Env("XA_TEST_RABBITMQ_PASSWORD_FILE")));
  std::ofstream conf(work + "/msgd.conf");
  conf << "listen = 127.0.0.1:0\ntokens_file = " << work << "/msgd.tokens\n"
       << "table_prefix = demomsg_\npoll_interval_ms = 100\nconfirm_timeout_ms = 1500\n"
       << "check_ladder_ms = 500, 1000, 2000\nack_timeout_ms = 1500\n"
       << "redelivery_ladder_ms = 1000\nmax_redeliveries = 5\n"
       << "[rm store]\ndriver = odbc\ndsn = " << Env("XA_TEST_ODBC_PG_DSN")
       << "\ndialect = postgres\nuser = " << Env("XA_TEST_PG_USER") << "\npassword_file = " << work
       << "/pg.pw\n[broker rabbitmq]\nhost = " << Env("XA_TEST_RABBITMQ_HOST")
       << "\nport = " << Env("XA_TEST_RABBITMQ_PORT") << "\nuser = "
       << Env("XA_TEST_RABBITMQ_USER") << "\npassword_file = " << work << "/amqp.pw\n";
  conf.close();
  ::chmod((work + "/msgd.conf").c_str(), 0600);
  if (!files) {
    std::cout << "  could not write the act's files\n";
    return false;
  }
  Postgres("DROP TABLE IF EXISTS demomsg_event, demomsg_message, demomsg_schema");
  {
    pid_t reset = Start({shop_path, "--role", "order", "--prefix", kPrefix, "--reset"},
                        work + "/reset.out");
    int status = WaitOrKill(reset, std::chrono::seconds(30));
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      std::cout << "  could not create the shop's tables\n";
      Replay(work + "/reset.out", "reset");
      return false;
    }
  }

  const std::string msgd_out = work + "/msgd.out";
  pid_t msgd = Start({msgd_path, "--config", work + "/msgd.conf"}, msgd_out);
  const std::string address = local_agents::WaitForWordAfter(msgd_out, "serving on http://");
  if (address.empty()) {
    std::cout << "  xa-msgd did not start:\n";
    Replay(msgd_out, "xa-msgd");
    ::kill(msgd, SIGKILL);
    WaitOrKill(msgd, std::chrono::seconds(5));
    return false;
  }
  std::cout << "  xa-msgd serving on " << address << "\n";
  const std::string url = "http://" + address;
  auto shop = [&](const std::string& role, std::vector<std::string> extra) {
    std::vector<std::string> argv = {shop_path, "--role", role, "--msgd", url, "--queue", kQueue,
                                     "--prefix", kPrefix, "--token-file",
                                     work + "/" + (role == "order" ? "orders" : "accounting") +
                                         ".token"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  };

  std::cout << "\n  The order service places 3 orders and is killed after the third committed, "
               "before its confirm:\n";
  const std::string order1 = work + "/order-1.out";
  pid_t orders = Start(shop("order", {"--orders", "3", "--die-before-confirm", "3"}), order1);
  const std::string listen = local_agents::WaitForWordAfter(order1, "listening on ");
  int status = WaitOrKill(orders, std::chrono::seconds(30));
  Replay(order1, "orders");
  std::cout << "    orders: " << DescribeExit(status) << "\n";

  std::cout << "\n  It comes back on the same address and places 2 more; xa-msgd asks it about "
               "the third order's message:\n";
  const std::string order2 = work + "/order-2.out";
  orders = Start(shop("order", {"--listen", listen, "--orders", "2", "--serve-ms", "8000"}),
                 order2);

  std::cout << "\n  The accounting service books the messages and is killed after booking the "
               "second, before acknowledging it; then it comes back:\n";
  const std::string accounting1 = work + "/accounting-1.out";
  pid_t accounting = Start(shop("accounting", {"--die-before-ack", "2"}), accounting1);
  status = WaitOrKill(accounting, std::chrono::seconds(30));
  Replay(accounting1, "accounting");
  std::cout << "    accounting: " << DescribeExit(status) << "\n";
  const std::string accounting2 = work + "/accounting-2.out";
  accounting = Start(shop("accounting", {"--idle-exit-ms", "6000"}), accounting2);
  status = WaitOrKill(accounting, std::chrono::seconds(60));
  Replay(accounting2, "accounting");
  int orders_status = WaitOrKill(orders, std::chrono::seconds(30));
  Replay(order2, "orders");

  const std::string placed = Postgres(std::string("SELECT COUNT(*) FROM ") + kPrefix + "_orders");
  const std::string booked = MariaDb(std::string("SELECT COUNT(*) FROM ") + kPrefix + "_ledger");
  const std::string distinct =
      MariaDb(std::string("SELECT COUNT(DISTINCT message_id) FROM ") + kPrefix + "_ledger");
  const std::string done =
      Postgres("SELECT COUNT(*) FROM demomsg_message WHERE status = 4 AND dead = 0");
  const std::string left =
      Postgres("SELECT COUNT(*) FROM demomsg_message WHERE status <> 4 OR dead <> 0");
  ::kill(msgd, SIGTERM);
  int msgd_status = WaitOrKill(msgd, std::chrono::seconds(10));
  {
    std::ifstream in(msgd_out);
    for (std::string line; std::getline(in, line);) {
      if (line.find("back-query answered") != std::string::npos) {
        std::cout << "    xa-msgd: " << line.substr(line.find("message ")) << "\n";
      }
    }
  }
  std::cout << "\n  orders placed " << placed << ", ledger entries " << booked << " ("
            << distinct << " distinct messages), messages done " << done << ", other messages "
            << left << "; xa-msgd " << DescribeExit(msgd_status) << ", order service "
            << DescribeExit(orders_status) << "\n";
  const bool ok = placed == std::to_string(kOrders) && booked == placed && distinct == placed &&
                  done == placed && left == "0" && WIFEXITED(msgd_status) &&
                  WEXITSTATUS(msgd_status) == 0;
  std::cout << "  " << (ok ? "Messages: every order committed was booked exactly once, through "
                             "the back-query and the redelivery."
                           : "Messages: the shop is NOT consistent (see above).")
            << "\n";
  return ok;
}

}  // namespace xa::demo
