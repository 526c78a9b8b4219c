// tcc_shop_worker: places orders through TCC transactions whose three participants (orders,
// funds, points) are in-process objects that each work in a local transaction of their own on
// MariaDB, guarded by the participant barrier; so a crash of this process kills the coordinator
// and leaves the databases holding whatever each participant committed. The crash tests kill it
// at a named crash point, run it again with --recover, and check the shop's invariant.
//
//   tcc_shop_worker --log-dir DIR --node-id N --prefix P --ack-file FILE [--orders K]
//                   [--recover] [--reset] [--saga | --saga-third-fails]
//
// Tables (<prefix>_ on the test MariaDB): orders(id, status), funds(account 1: balance, frozen),
// points(account 1: points, pending), and the barrier table. Each order: Try freezes
// kOrderAmount funds, adds kOrderPoints pending points and inserts a 'pending' order; Confirm
// spends the frozen funds, grants the points and confirms the order; Cancel releases them and
// deletes the order. Every order whose Commit() answered committed is appended to the ack file
// (fdatasync'd) before the next one begins.
//
// With --saga, each order is a saga of three compensable steps on the same tables instead
// (saga-orders inserts a 'placed' order, saga-funds spends the funds, saga-points grants the
// points; each compensation undoes its step), and every action and compensation that runs also
// writes a row to <prefix>_journal in its local transaction. --saga-third-fails makes every
// action of saga-points fail for good, so every saga is compensated.
//
// --reset drops and re-creates the tables (funds balance kInitialBalance) and exits.
// --recover opens the manager with recovery on open, waits until every TCC transaction the log
// holds open is finished, prints "open TCC transactions: <n>" and exits.
// Exit codes: 0 done, 1 failed, 2 usage.

#include <fcntl.h>
#include <unistd.h>

#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/statement.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "examples/bank/bank.h"
#include "tests/tcc/shop_tables.h"
#include "xa/decision_log.h"
#include "xa/mysql/tcc_barrier.h"
#include "xa/saga.h"
#include "xa/tcc.h"
#include "xa/transaction_manager.h"

namespace {

using xa::test::shop::kInitialBalance;
using xa::test::shop::kOrderAmount;
using xa::test::shop::kOrderPoints;

xa::mysql::MySqlOptions g_account;

// Participants connect from the coordinator's threads at once: through the driver's lock.
std::unique_ptr<sql::Connection> Connect() {
  xa::Result<std::unique_ptr<sql::Connection>> connection =
      xa::mysql::OpenLocalConnection(g_account);
  if (!connection.ok()) throw sql::SQLException(connection.status().ToString());
  return std::move(connection).value();
}

// The barrier's branch id: the branch qualifier in hex (unique within the global id).
std::string BranchId(const xa::Xid& branch) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : branch.bqual()) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

int Execute(sql::Connection& connection, const std::string& statement) {
  std::unique_ptr<sql::Statement> s(connection.createStatement());
  return s->executeUpdate(sql::SQLString(statement));
}

// One participant: a connection of its own (calls are serialised on it), the barrier, and the
// business work of each operation, all in one local transaction.
class ShopParticipant : public xa::TccParticipant, public xa::CompensableOperation {
 public:
  ShopParticipant(std::string prefix, std::string what, bool refuse_actions = false)
      : prefix_(std::move(prefix)), what_(std::move(what)), refuse_actions_(refuse_actions) {}

  // As a saga's step: the work done at once, undone by the compensation; each run also writes a
  // journal row (in the same local transaction), so the test can check the order of the
  // compensations across a crash.
  xa::TccResult Action(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kAction);
  }
  xa::TccResult Compensate(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kCompensate);
  }

  xa::TccResult Try(const xa::TccCall& call) override { return Run(call, xa::BarrierOp::kTry); }
  xa::TccResult Confirm(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kConfirm);
  }
  xa::TccResult Cancel(const xa::TccCall& call) override {
    return Run(call, xa::BarrierOp::kCancel);
  }

 private:
  xa::TccResult Run(const xa::TccCall& call, xa::BarrierOp op) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      if (connection_ == nullptr) connection_ = Connect();
      xa::BarrierOptions options;
      options.table = prefix_ + "_barrier";
      const std::string gid = call.global.ToString();
      xa::Result<xa::BarrierVerdict> verdict =
          xa::mysql::EnterBarrier(*connection_, {gid, BranchId(call.branch)}, op, options);
      if (!verdict.ok()) {
        connection_->rollback();
        return xa::TccResult::Failed(verdict.status().ToString());
      }
      if (*verdict == xa::BarrierVerdict::kRefusedAfterCompensation) {
        connection_->rollback();
        return xa::TccResult::Refused("cancelled before this Try arrived");
      }
      if (*verdict == xa::BarrierVerdict::kRun && !Work(op, gid)) {
        connection_->rollback();
        return xa::TccResult::Refused(op == xa::BarrierOp::kAction ? "this step always fails"
                                                                   : "insufficient funds");
      }
      if (*verdict == xa::BarrierVerdict::kRun &&
          (op == xa::BarrierOp::kAction || op == xa::BarrierOp::kCompensate)) {
        Execute(*connection_, "INSERT INTO " + prefix_ + "_journal (gid, step, op) VALUES ('" +
                                  gid + "', '" + what_ + "', '" +
                                  std::string(xa::BarrierOpName(op)) + "')");
      }
      connection_->commit();
      return xa::TccResult::Done();
    } catch (const sql::SQLException& e) {
      connection_.reset();  // reconnect on the next call
      return xa::TccResult::Failed(std::string(what_) + ": " + e.what());
    }
  }

  // The business work of `op`; false when a Try cannot reserve.
  bool Work(xa::BarrierOp op, const std::string& gid) {
    sql::Connection& c = *connection_;
    const std::string amount = std::to_string(kOrderAmount);
    const std::string points = std::to_string(kOrderPoints);
    if (op == xa::BarrierOp::kAction || op == xa::BarrierOp::kCompensate) {
      const bool undo = op == xa::BarrierOp::kCompensate;
      if (!undo && refuse_actions_) return false;
      if (what_ == "orders") {
        Execute(c, undo ? "DELETE FROM " + prefix_ + "_orders WHERE id = '" + gid + "'"
                        : "INSERT INTO " + prefix_ + "_orders (id, status) VALUES ('" + gid +
                              "', 'placed')");
      } else if (what_ == "funds") {
        Execute(c, "UPDATE " + prefix_ + "_funds SET balance = balance " + (undo ? "+ " : "- ") +
                       amount + " WHERE account = 1");
      } else {
        Execute(c, "UPDATE " + prefix_ + "_points SET points = points " + (undo ? "- " : "+ ") +
                       points + " WHERE account = 1");
      }
      return true;
    }
    if (what_ == "orders") {
      if (op == xa::BarrierOp::kTry) {
        Execute(c, "INSERT INTO " + prefix_ + "_orders (id, status) VALUES ('" + gid + "', 'pending')");
      } else if (op == xa::BarrierOp::kConfirm) {
        Execute(c, "UPDATE " + prefix_ + "_orders SET status = 'confirmed' WHERE id = '" + gid + "'");
      } else {
        Execute(c, "DELETE FROM " + prefix_ + "_orders WHERE id = '" + gid + "'");
      }
    } else if (what_ == "funds") {
      const std::string table = prefix_ + "_funds";
      if (op == xa::BarrierOp::kTry) {
        return Execute(c, "UPDATE " + table + " SET balance = balance - " + amount +
                              ", frozen = frozen + " + amount + " WHERE account = 1 AND balance >= " +
                              amount) == 1;
      } else if (op == xa::BarrierOp::kConfirm) {
        Execute(c, "UPDATE " + table + " SET frozen = frozen - " + amount + " WHERE account = 1");
      } else {
        Execute(c, "UPDATE " + table + " SET balance = balance + " + amount +
                       ", frozen = frozen - " + amount + " WHERE account = 1");
      }
    } else {
      const std::string table = prefix_ + "_points";
      if (op == xa::BarrierOp::kTry) {
        Execute(c, "UPDATE " + table + " SET pending = pending + " + points + " WHERE account = 1");
      } else if (op == xa::BarrierOp::kConfirm) {
        Execute(c, "UPDATE " + table + " SET pending = pending - " + points +
                       ", points = points + " + points + " WHERE account = 1");
      } else {
        Execute(c, "UPDATE " + table + " SET pending = pending - " + points + " WHERE account = 1");
      }
    }
    return true;
  }

  const std::string prefix_;
  const std::string what_;
  const bool refuse_actions_;
  std::mutex mu_;
  std::unique_ptr<sql::Connection> connection_;
};

int Reset(const std::string& prefix) {
  std::unique_ptr<sql::Connection> c = Connect();
  c->setAutoCommit(true);
  for (const char* t : {"_orders", "_funds", "_points", "_barrier", "_journal"}) {
    Execute(*c, "DROP TABLE IF EXISTS " + prefix + t);
  }
  Execute(*c, "CREATE TABLE " + prefix + "_orders (id VARCHAR(128) PRIMARY KEY, status VARCHAR(16) NOT NULL)");
  Execute(*c, "CREATE TABLE " + prefix + "_funds (account INT PRIMARY KEY, balance BIGINT NOT NULL, frozen BIGINT NOT NULL)");
  Execute(*c, "CREATE TABLE " + prefix + "_points (account INT PRIMARY KEY, points BIGINT NOT NULL, pending BIGINT NOT NULL)");
  Execute(*c, "CREATE TABLE " + prefix + "_journal (seq BIGINT AUTO_INCREMENT PRIMARY KEY, gid VARCHAR(128) NOT NULL, step VARCHAR(16) NOT NULL, op VARCHAR(16) NOT NULL)");
  Execute(*c, "INSERT INTO " + prefix + "_funds VALUES (1, " + std::to_string(kInitialBalance) + ", 0)");
  Execute(*c, "INSERT INTO " + prefix + "_points VALUES (1, 0, 0)");
  xa::BarrierOptions options;
  options.table = prefix + "_barrier";
  xa::Status created = xa::mysql::CreateBarrierTable(*c, options);
  if (!created.ok()) {
    std::cerr << "tcc_shop_worker: " << created.ToString() << "\n";
    return 1;
  }
  return 0;
}

void Acknowledge(int fd, const xa::Xid& xid) {
  std::string line = xid.ToString() + "\n";
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      ::fdatasync(fd) != 0) {
    std::perror("tcc_shop_worker: ack file");
    std::exit(1);
  }
}

// One order through TCC; acknowledged once confirmed.
xa::Result<xa::Outcome> PlaceByTcc(xa::TransactionManager& manager, long n, int ack) {
  xa::Result<xa::TccTransaction> txn = manager.BeginTcc();
  if (!txn.ok()) return txn.status();
  for (const char* name : {"orders", "funds", "points"}) {
    XA_RETURN_IF_ERROR(txn->Enlist(name, "order " + std::to_string(n)));
  }
  xa::Result<xa::Outcome> outcome = txn->Commit();
  if (outcome.ok() && (*outcome == xa::Outcome::kCommitted ||
                       *outcome == xa::Outcome::kCommittedCompletionPending)) {
    Acknowledge(ack, txn->xid());
  }
  return outcome;
}

// One order as a saga of three steps; acknowledged once completed.
xa::Result<xa::Outcome> PlaceBySaga(xa::TransactionManager& manager, long n, int ack) {
  xa::Result<xa::SagaTransaction> saga = manager.BeginSaga();
  if (!saga.ok()) return saga.status();
  for (const char* name : {"saga-orders", "saga-funds", "saga-points"}) {
    XA_RETURN_IF_ERROR(saga->Enlist(name, "order " + std::to_string(n)));
  }
  xa::Result<xa::Outcome> outcome = saga->Commit();
  if (outcome.ok() && *outcome == xa::Outcome::kCommitted) Acknowledge(ack, saga->xid());
  return outcome;
}

}  // namespace

int main(int argc, char** argv) {
  std::string log_dir, ack_file, prefix = "tccshop";
  uint32_t node_id = 0;
  long orders = 5;
  bool recover = false, reset = false, saga = false, third_fails = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "tcc_shop_worker: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--log-dir") log_dir = next();
    else if (a == "--node-id") node_id = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--prefix") prefix = next();
    else if (a == "--ack-file") ack_file = next();
    else if (a == "--orders") orders = std::stol(next());
    else if (a == "--recover") recover = true;
    else if (a == "--reset") reset = true;
    else if (a == "--saga") saga = true;
    else if (a == "--saga-third-fails") saga = third_fails = true;
    else {
      std::cerr << "tcc_shop_worker: unknown argument '" << a << "'\n";
      return 2;
    }
  }
  xa::Result<xa::bank::BankSettings> settings = xa::bank::SettingsFromEnvironment();
  if (!settings.ok()) {
    std::cerr << "tcc_shop_worker: " << settings.status().ToString() << "\n";
    return 1;
  }
  g_account = settings->mariadb;
  try {
    if (reset) return Reset(prefix);
  } catch (const sql::SQLException& e) {
    std::cerr << "tcc_shop_worker: reset: " << e.what() << "\n";
    return 1;
  }
  if (log_dir.empty() || node_id == 0) {
    std::cerr << "tcc_shop_worker: --log-dir and --node-id are required\n";
    return 2;
  }

  xa::LogOptions log_options;
  log_options.dir = log_dir;
  log_options.node_id = node_id;
  auto log = xa::DecisionLog::Open(log_options);
  if (!log.ok()) {
    std::cerr << "tcc_shop_worker: " << log.status().ToString() << "\n";
    return 1;
  }
  xa::TransactionManagerOptions options;
  options.node_id = node_id;
  options.recover_on_open = recover;
  options.recovery_interval = std::chrono::milliseconds(0);
  options.background_retry = xa::RetryPolicy{0, std::chrono::milliseconds(5),
                                             std::chrono::milliseconds(200), 2.0};
  for (const char* name : {"orders", "funds", "points"}) {
    options.tcc.participants[name] = std::make_shared<ShopParticipant>(prefix, name);
    // The same services as saga steps, under names of their own.
    options.saga.operations[std::string("saga-") + name] = std::make_shared<ShopParticipant>(
        prefix, name, third_fails && std::string(name) == "points");
  }
  auto manager = xa::TransactionManager::Open(options, **log);
  if (!manager.ok()) {
    std::cerr << "tcc_shop_worker: " << manager.status().ToString() << "\n";
    return 1;
  }
  if (recover) {
    xa::Status idle = (*manager)->WaitForBackgroundCompletion(std::chrono::seconds(60));
    if (!idle.ok()) {
      std::cerr << "tcc_shop_worker: " << idle.ToString() << "\n";
      return 1;
    }
    std::cout << "open TCC transactions: " << (*log)->State().open_tcc.size() << std::endl;
    return 0;
  }

  const int ack = ::open(ack_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (ack < 0) {
    std::perror("tcc_shop_worker: ack file");
    return 1;
  }
  for (long n = 0; n < orders; ++n) {
    xa::Result<xa::Outcome> outcome = saga ? PlaceBySaga(**manager, n, ack)
                                           : PlaceByTcc(**manager, n, ack);
    if (!outcome.ok()) {
      std::cerr << "tcc_shop_worker: " << outcome.status().ToString() << "\n";
      return 1;
    }
  }
  xa::Status idle = (*manager)->WaitForBackgroundCompletion(std::chrono::seconds(60));
  if (!idle.ok()) {
    std::cerr << "tcc_shop_worker: " << idle.ToString() << "\n";
    return 1;
  }
  return 0;
}
