// The three anomalies of TCC provoked for real against the shop's participant services
// (examples/tcc_shop: order on MariaDB, funds on PostgreSQL, points on MariaDB, each a process of
// its own behind the barrier), called over HTTP by a TransactionManager with the durable file
// log: a repeated Confirm and Cancel, a Cancel that overtakes its Try held back in the service,
// and a Try that arrives after its Cancel. Each leaves the databases as if it had been delivered
// once and in order.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/recovery/crash_harness.h"
#include "xa/decision_log.h"
#include "xa/http/tcc_participant.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

constexpr char kPrefix[] = "shopanomaly";

std::string ServicePath() { return XA_TCC_SHOP_SERVICE_PATH; }

// A running service process and its address.
struct Service {
  pid_t pid = -1;
  std::string address;
};

Service Start(const ScratchDir& dir, const std::string& role,
              const std::vector<std::string>& extra = {},
              const std::string& listen = "127.0.0.1:0", const std::string& output = "") {
  std::vector<std::string> argv = {ServicePath(), "--role", role, "--listen", listen,
                                   "--prefix", kPrefix};
  argv.insert(argv.end(), extra.begin(), extra.end());
  const std::string out = dir.File((output.empty() ? role : output) + ".out");
  Service service;
  service.pid = Spawn(argv, {}, out);
  for (int i = 0; i < 200 && service.address.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    std::ifstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      const std::string mark = "listening on ";
      size_t at = line.find(mark);
      if (at != std::string::npos) service.address = line.substr(at + mark.size());
    }
  }
  EXPECT_FALSE(service.address.empty()) << role << " did not start";
  return service;
}

void Stop(Service& service) {
  if (service.pid <= 0) return;
  ::kill(service.pid, SIGTERM);
  int status = 0;
  ::waitpid(service.pid, &status, 0);
  service.pid = -1;
}

int64_t PostgresNumber(const std::string& sql) {
  ProcessResult r = PostgresAdmin(sql);
  EXPECT_TRUE(r.Exited(0)) << r.Describe();
  return std::stoll(r.output);
}

struct ShopState {
  int64_t confirmed = 0, pending_orders = 0, balance = 0, frozen = 0, points = 0, pending = 0;
  friend bool operator==(const ShopState&, const ShopState&) = default;
};

ShopState Read() {
  const std::string p = kPrefix;
  ShopState s;
  s.confirmed = MariaDbNumber("SELECT COUNT(*) FROM " + p + "_orders WHERE status = 'confirmed'");
  s.pending_orders = MariaDbNumber("SELECT COUNT(*) FROM " + p + "_orders WHERE status <> 'confirmed'");
  s.balance = PostgresNumber("SELECT balance FROM " + p + "_funds WHERE account = 1");
  s.frozen = PostgresNumber("SELECT frozen FROM " + p + "_funds WHERE account = 1");
  s.points = MariaDbNumber("SELECT points FROM " + p + "_points WHERE account = 1");
  s.pending = MariaDbNumber("SELECT pending FROM " + p + "_points WHERE account = 1");
  return s;
}

std::string Describe(const ShopState& s) {
  return "confirmed orders " + std::to_string(s.confirmed) + ", other orders " +
         std::to_string(s.pending_orders) + ", balance " + std::to_string(s.balance) +
         ", frozen " + std::to_string(s.frozen) + ", points " + std::to_string(s.points) +
         ", pending " + std::to_string(s.pending);
}

class ShopServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* role : {"order", "funds", "points"}) {
      ProcessResult reset = RunProcess({ServicePath(), "--role", role, "--prefix", kPrefix,
                                        "--reset"}, {});
      ASSERT_TRUE(reset.Exited(0)) << role << ": " << reset.Describe();
    }
    services_["order"] = Start(dir_, "order");
    services_["points"] = Start(dir_, "points");
  }
  void TearDown() override {
    manager_.reset();
    log_.reset();
    for (auto& [role, service] : services_) Stop(service);
  }

  std::shared_ptr<TccParticipant> Participant(const std::string& role,
                                              std::chrono::milliseconds timeout) {
    http::TccParticipantOptions options;
    const std::string base = "http://" + services_[role].address + "/tcc/";
    options.try_url = base + "try";
    options.confirm_url = base + "confirm";
    options.cancel_url = base + "cancel";
    options.request_timeout = timeout;
    return http::MakeTccParticipant(options).value();
  }

  // A manager whose participants are the three services (each call bounded by `timeout`).
  void OpenManager(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    LogOptions log_options;
    log_options.dir = dir_.File("log");
    log_options.node_id = node_;
    log_ = DecisionLog::Open(log_options).value();
    TransactionManagerOptions options;
    options.node_id = node_;
    options.background_retry = RetryPolicy{0, std::chrono::milliseconds(20),
                                           std::chrono::milliseconds(200), 2.0};
    for (const char* role : {"order", "funds", "points"}) {
      options.tcc.participants[role] = Participant(role, timeout);
    }
    manager_ = TransactionManager::Open(options, *log_).value();
  }

  Result<Outcome> PlaceOrder(int amount, Xid* xid = nullptr) {
    Result<TccTransaction> txn = manager_->BeginTcc();
    if (!txn.ok()) return txn.status();
    const std::string payload =
        "{\"account\":1,\"amount\":" + std::to_string(amount) + ",\"points\":1}";
    for (const char* role : {"order", "funds", "points"}) {
      XA_RETURN_IF_ERROR(txn->Enlist(role, payload));
    }
    if (xid != nullptr) *xid = txn->xid();
    return txn->Commit();
  }

  TccCall CallFor(const Xid& global, uint16_t branch, const std::string& role,
                  const std::string& payload) {
    call_payload_ = payload;
    return TccCall{global, global.WithBranch(branch), role, call_payload_};
  }

  ScratchDir dir_;
  uint32_t node_ = RandomNodeId();
  std::map<std::string, Service> services_;
  std::unique_ptr<DecisionLog> log_;
  std::unique_ptr<TransactionManager> manager_;
  std::string call_payload_;
};

TEST_F(ShopServiceTest, AnOrderIsPlacedOnAllThreeServicesAndRepeatedConfirmsChangeNothing) {
  services_["funds"] = Start(dir_, "funds");
  OpenManager();
  Xid xid;
  ASSERT_EQ(PlaceOrder(10, &xid).value(), Outcome::kCommitted);
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  ShopState placed = Read();
  EXPECT_EQ(placed, (ShopState{1, 0, 999990, 0, 1, 0})) << Describe(placed);

  // The same Confirm again, as a coordinator whose answer was lost sends it: each service
  // answers done and changes nothing.
  const std::string payload = "{\"account\":1,\"amount\":10,\"points\":1}";
  const char* roles[] = {"order", "funds", "points"};
  for (uint16_t i = 0; i < 3; ++i) {
    auto participant = Participant(roles[i], std::chrono::seconds(5));
    EXPECT_EQ(participant->Confirm(CallFor(xid, i, roles[i], payload)).reply, TccReply::kDone);
    EXPECT_EQ(participant->Confirm(CallFor(xid, i, roles[i], payload)).reply, TccReply::kDone);
  }
  EXPECT_EQ(Read(), placed) << Describe(Read());
}

TEST_F(ShopServiceTest, ARefusedTryCancelsEverywhereAndRepeatedCancelsChangeNothing) {
  services_["funds"] = Start(dir_, "funds");
  OpenManager();
  const ShopState before = Read();
  Xid xid;
  EXPECT_EQ(PlaceOrder(2000000, &xid).value(), Outcome::kRolledBack);  // more than the funds
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  EXPECT_EQ(Read(), before) << Describe(Read());
  const std::string payload = "{\"account\":1,\"amount\":2000000,\"points\":1}";
  const char* roles[] = {"order", "funds", "points"};
  for (uint16_t i = 0; i < 3; ++i) {
    auto participant = Participant(roles[i], std::chrono::seconds(5));
    EXPECT_EQ(participant->Cancel(CallFor(xid, i, roles[i], payload)).reply, TccReply::kDone);
  }
  EXPECT_EQ(Read(), before) << Describe(Read());
}

TEST_F(ShopServiceTest, ACancelThatOvertakesItsHeldBackTryIsEmptyAndTheLateTryIsRefused) {
  // The funds service holds every Try back 1.5 s; the coordinator gives each call 300 ms, so the
  // Try times out, the transaction cancels, and funds' Cancel arrives before its Try runs.
  services_["funds"] = Start(dir_, "funds", {"--delay-try-ms", "1500"});
  OpenManager(std::chrono::milliseconds(300));
  const ShopState before = Read();
  Xid xid;
  EXPECT_EQ(PlaceOrder(10, &xid).value(), Outcome::kRolledBack);
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(10)).ok());
  // The service's own account of its calls: the Cancel came first and found nothing to
  // release; the Try, once its hold-back ended, came after it and was refused. Waits (up to 30 s)
  // for the held-back Try's line.
  const std::string late_line = "try " + xid.ToString() + " 010001: refused after compensation";
  std::string calls;
  for (int i = 0; i < 300 && calls.find(late_line) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream out(dir_.File("funds.out"));
    calls.clear();
    for (std::string line; std::getline(out, line);) calls += line + "\n";
  }
  const size_t cancel = calls.find("cancel " + xid.ToString() + " 010001: empty compensation");
  const size_t late = calls.find(late_line);
  ASSERT_NE(cancel, std::string::npos) << calls;
  ASSERT_NE(late, std::string::npos) << calls;
  EXPECT_LT(cancel, late) << calls;
  const ShopState after = Read();
  EXPECT_EQ(after, before) << "funds frozen by a Try after its Cancel? " << Describe(after);
}

TEST_F(ShopServiceTest, ATryThatArrivesAfterItsCancelIsRefused) {
  services_["funds"] = Start(dir_, "funds");
  const ShopState before = Read();
  XidGenerator xids(node_);
  const Xid xid = xids.Next(Protocol::kTcc);
  const std::string payload = "{\"account\":1,\"amount\":10,\"points\":1}";
  const char* roles[] = {"order", "funds", "points"};
  for (uint16_t i = 0; i < 3; ++i) {
    auto participant = Participant(roles[i], std::chrono::seconds(5));
    EXPECT_EQ(participant->Cancel(CallFor(xid, i, roles[i], payload)).reply, TccReply::kDone)
        << roles[i] << ": an empty cancel";
    TccResult late = participant->Try(CallFor(xid, i, roles[i], payload));
    EXPECT_EQ(late.reply, TccReply::kRefused) << roles[i];
    EXPECT_THAT(late.detail, ::testing::HasSubstr("cancelled before")) << roles[i];
  }
  EXPECT_EQ(Read(), before) << Describe(Read());
}

// A participant service killed (SIGKILL) right after it committed its work of a Try, a Confirm
// or a Cancel and before it answered (crash-matrix row P9): the coordinator sees the call fail,
// and once the service is back on the same address, its repeat finds the work done (the
// barrier answers it as a repeat). Afterwards the order is on all three services or on none,
// nothing is frozen or pending.
class ServiceKilledTest : public ShopServiceTest,
                          public ::testing::WithParamInterface<std::string> {
 protected:
  // Waits (up to 30 s) for `role` to die, then starts it again on the same address.
  void RestartWhenDead(const std::string& role) {
    Service& service = services_[role];
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && done == 0; ++i) {
      done = ::waitpid(service.pid, &status, WNOHANG);
      if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(done, service.pid) << role << " did not die";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << role;
    const std::string address = service.address;
    service = Start(dir_, role, {}, address, role + "-again");
  }
};

TEST_P(ServiceKilledTest, TheOrderEndsOnAllThreeServicesOrOnNoneOnceTheServiceIsBack) {
  const std::string op = GetParam();
  // Cancel needs a cancelled order: the funds refuse it (too large), and the order service,
  // whose Try inserted the order, dies after deleting it.
  const std::string role = op == "cancel" ? "order" : "funds";
  services_.erase(role);
  if (role == "order") {
    Stop(services_["order"]);
    services_["order"] = Start(dir_, "order", {"--die-after", op});
    services_["funds"] = Start(dir_, "funds");
  } else {
    services_["funds"] = Start(dir_, "funds", {"--die-after", op});
  }
  OpenManager(std::chrono::seconds(2));
  const ShopState before = Read();
  const int amount = op == "cancel" ? 2000000 : 10;
  Result<Outcome> outcome = Status(Code::kInternal, "not run");
  std::thread client([&] { outcome = PlaceOrder(amount); });
  RestartWhenDead(role);
  client.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  ASSERT_TRUE(manager_->WaitForBackgroundCompletion(std::chrono::seconds(30)).ok());
  EXPECT_TRUE(log_->State().open_tcc.empty());
  const ShopState after = Read();
  if (op == "confirm") {
    EXPECT_EQ(*outcome, Outcome::kCommittedCompletionPending);
    EXPECT_EQ(after, (ShopState{before.confirmed + 1, 0, before.balance - 10, 0,
                                before.points + 1, 0}))
        << Describe(after);
  } else {
    // A Try that died is a failed Try: the order is cancelled everywhere, and the dead
    // service's committed reservation is released once it is back.
    EXPECT_EQ(*outcome, Outcome::kRolledBack);
    EXPECT_EQ(after, before) << Describe(after);
  }
}

INSTANTIATE_TEST_SUITE_P(During, ServiceKilledTest, ::testing::Values("try", "confirm", "cancel"),
                         [](const ::testing::TestParamInfo<std::string>& op) {
                           return op.param;
                         });

}  // namespace
}  // namespace xa::test
