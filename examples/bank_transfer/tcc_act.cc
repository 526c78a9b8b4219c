#include "examples/bank_transfer/tcc_act.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "examples/bank_transfer/admin_sql.h"
#include "examples/bank_transfer/child_process.h"
#include "xa/decision_log.h"
#include "xa/http/tcc_participant.h"
#include "xa/logging.h"
#include "xa/tcc.h"
#include "xa/transaction_manager.h"

namespace xa::demo {
namespace {

constexpr uint32_t kTccNodeId = 44;
constexpr char kPrefix[] = "demoshop";
const char* const kRoles[] = {"order", "funds", "points"};

std::unique_ptr<DecisionLog> OpenTccLog(const std::string& dir) {
  LogOptions options;
  options.dir = dir;
  options.node_id = kTccNodeId;
  auto log = DecisionLog::Open(options);
  if (!log.ok()) {
    std::cerr << "xa-demo: decision log: " << log.status().ToString() << "\n";
    return nullptr;
  }
  return std::move(log).value();
}

// A manager whose TCC participants are the three services at `addresses`.
std::unique_ptr<TransactionManager> OpenTccManager(DecisionLog& log,
                                                   const std::vector<std::string>& addresses,
                                                   bool recover) {
  TransactionManagerOptions options;
  options.node_id = kTccNodeId;
  options.recover_on_open = recover;
  options.recovery_interval = std::chrono::milliseconds(0);
  for (size_t i = 0; i < 3; ++i) {
    http::TccParticipantOptions participant;
    const std::string base = "http://" + addresses[i] + "/tcc/";
    participant.try_url = base + "try";
    participant.confirm_url = base + "confirm";
    participant.cancel_url = base + "cancel";
    options.tcc.participants[kRoles[i]] = http::MakeTccParticipant(participant).value();
  }
  auto manager = TransactionManager::Open(options, log);
  if (!manager.ok()) {
    std::cerr << "xa-demo: transaction manager: " << manager.status().ToString() << "\n";
    return nullptr;
  }
  return std::move(manager).value();
}

Result<Outcome> PlaceOrder(TransactionManager& manager, int amount) {
  Result<TccTransaction> txn = manager.BeginTcc();
  if (!txn.ok()) return txn.status();
  const std::string payload = "{\"account\":1,\"amount\":" + std::to_string(amount) +
                              ",\"points\":" + std::to_string(amount / 10) + "}";
  for (const char* role : kRoles) XA_RETURN_IF_ERROR(txn->Enlist(role, payload));
  return txn->Commit();
}

struct Shop {
  std::string confirmed, other_orders, balance, frozen, points, pending;
};

Shop ReadShop() {
  const std::string p = kPrefix;
  return Shop{MariaDb("SELECT COUNT(*) FROM " + p + "_orders WHERE status = 'confirmed'"),
              MariaDb("SELECT COUNT(*) FROM " + p + "_orders WHERE status <> 'confirmed'"),
              Postgres("SELECT balance FROM " + p + "_funds WHERE account = 1"),
              Postgres("SELECT frozen FROM " + p + "_funds WHERE account = 1"),
              MariaDb("SELECT points FROM " + p + "_points WHERE account = 1"),
              MariaDb("SELECT pending FROM " + p + "_points WHERE account = 1")};
}

void PrintShop(const char* title) {
  Shop s = ReadShop();
  std::cout << "  " << std::left << std::setw(34) << title << " orders confirmed " << s.confirmed
            << " (other " << s.other_orders << "), funds " << s.balance << " (frozen " << s.frozen
            << "), points " << s.points << " (pending " << s.pending << ")\n";
}

struct ServiceProcess {
  pid_t pid = -1;
  std::string address;
};

ServiceProcess StartService(const std::string& path, const std::string& role,
                            const std::string& work) {
  ServiceProcess service;
  const std::string out = work + "/" + role + ".out";
  std::cout.flush();
  service.pid = ::fork();
  if (service.pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(path.c_str(), path.c_str(), "--role", role.c_str(), "--listen", "127.0.0.1:0",
            "--prefix", kPrefix, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 400 && service.address.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(out);
    for (std::string line; std::getline(in, line);) {
      const std::string mark = "listening on ";
      if (size_t at = line.find(mark); at != std::string::npos) {
        service.address = line.substr(at + mark.size());
      }
    }
  }
  return service;
}

bool ResetService(const std::string& path, const std::string& role) {
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(path.c_str(), path.c_str(), "--role", role.c_str(), "--prefix", kPrefix, "--reset",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = WaitOrKill(pid, std::chrono::seconds(30));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int RunTccCrashingChild(const std::string& log_dir, const std::vector<std::string>& addresses) {
  SetLogLevel(LogLevel::kWarning);
  auto log = OpenTccLog(log_dir);
  if (log == nullptr) return 1;
  auto manager = OpenTccManager(*log, addresses, /*recover=*/false);
  if (manager == nullptr) return 1;
  auto outcome = PlaceOrder(*manager, 100);
  // Only reached when the crash points are not compiled in: the parent then kills us.
  std::cout << "    (child: order finished: "
            << (outcome.ok() ? std::string(OutcomeName(*outcome)) : outcome.status().ToString())
            << ")\n";
  std::cout.flush();
  ::pause();
  return 0;
}

bool RunTccAct(const std::string& work, const std::string& service_path,
               const std::string& self) {
  std::cout << "\n6. TCC: a shop of three participant services, each a process with its own "
               "database behind the participant barrier (order: MariaDB, funds: PostgreSQL, "
               "points: MariaDB), called over HTTP by the same library:\n";
  for (const char* role : kRoles) {
    if (!ResetService(service_path, role)) {
      std::cout << "  could not create the " << role << " service's tables\n";
      return false;
    }
  }
  std::vector<ServiceProcess> services;
  std::vector<std::string> addresses;
  for (const char* role : kRoles) {
    services.push_back(StartService(service_path, role, work));
    addresses.push_back(services.back().address);
    std::cout << "  " << role << " service on " << services.back().address << "\n";
  }
  auto stop_all = [&] {
    bool clean = true;
    for (ServiceProcess& s : services) {
      if (s.pid <= 0) continue;
      ::kill(s.pid, SIGTERM);
      int status = WaitOrKill(s.pid, std::chrono::seconds(10));
      clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    return clean;
  };
  for (const std::string& a : addresses) {
    if (a.empty()) {
      std::cout << "  a service did not start\n";
      stop_all();
      return false;
    }
  }
  PrintShop("before:");

  const std::string log_dir = work + "/tcc-decision-log";
  {
    auto log = OpenTccLog(log_dir);
    auto manager = log == nullptr ? nullptr : OpenTccManager(*log, addresses, true);
    if (manager == nullptr) {
      stop_all();
      return false;
    }
    for (int amount : {100, 250}) {
      auto outcome = PlaceOrder(*manager, amount);
      std::cout << "  order of " << amount << ": "
                << (outcome.ok() ? std::string(OutcomeName(*outcome)) : outcome.status().ToString())
                << " (Try on all three, the decision logged, Confirm on all three)\n";
    }
    auto refused = PlaceOrder(*manager, 5000000);
    std::cout << "  order of 5000000: "
              << (refused.ok() ? std::string(OutcomeName(*refused)) : refused.status().ToString())
              << " (the funds service refused its Try: every service cancelled)\n";
    Status idle = manager->WaitForBackgroundCompletion(std::chrono::seconds(30));
    if (!idle.ok()) std::cout << "  " << idle.ToString() << "\n";
  }
  PrintShop("after three orders:");

  std::cout << "\n  A copy of this program places an order of 100 and is killed once the confirm "
               "decision is durable, before any Confirm:\n";
  std::cout.flush();
  pid_t child = ::fork();
  if (child == 0) {
    ::setenv("XA_CRASH_POINT", "tcc-after-confirm-record", 1);
    ::setenv("XA_CRASH_COUNT", "1", 1);
    ::execl(self.c_str(), self.c_str(), "--tcc-crashing-child", log_dir.c_str(),
            addresses[0].c_str(), addresses[1].c_str(), addresses[2].c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const int status = WaitOrKill(child, std::chrono::seconds(20));
  std::cout << "  the copy died: " << DescribeExit(status) << "\n";
  PrintShop("right after the crash:");

  std::cout << "  The manager opens the copy's log and recovers: the decision is there, so every "
               "service is confirmed:\n";
  {
    auto log = OpenTccLog(log_dir);
    auto manager = log == nullptr ? nullptr : OpenTccManager(*log, addresses, true);
    if (manager != nullptr) {
      Status idle = manager->WaitForBackgroundCompletion(std::chrono::seconds(30));
      if (!idle.ok()) std::cout << "  " << idle.ToString() << "\n";
      std::cout << "  open TCC transactions in the log: " << log->State().open_tcc.size() << "\n";
    }
  }
  PrintShop("after recovery:");
  Shop s = ReadShop();
  const bool clean = stop_all();
  const bool ok = s.confirmed == "3" && s.other_orders == "0" && s.frozen == "0" &&
                  s.pending == "0" && s.balance == "999550" && s.points == "45" && clean;
  std::cout << "  " << (ok ? "TCC: every order is on all three services or on none, nothing "
                             "frozen or pending."
                           : "TCC: the shop is NOT consistent (see above).")
            << "\n";
  return ok;
}

}  // namespace xa::demo
