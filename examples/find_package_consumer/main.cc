// Uses an installed xa the way a downstream project would: only public headers, only the
// imported targets of find_package(xa). Needs no database server: it makes Xids, opens a
// decision log and a transaction manager in a temporary directory, and checks that each driver
// links and validates its options. Exits 0 when everything it checks holds, 1 otherwise, so
// scripts/test.sh can rely on the exit code.

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "xa/decision_log.h"
#include "xa/status.h"
#include "xa/transaction_manager.h"
#include "xa/xid.h"

#if defined(XA_CONSUMER_HAS_MYSQL)
#include "xa/mysql/mysql_resource_manager.h"
#endif
#if defined(XA_CONSUMER_HAS_ODBC)
#include "xa/odbc/odbc_resource_manager.h"
#endif

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
  xa::XidGenerator generator(/*node_id=*/42);
  xa::Xid xid = generator.Next().WithBranch(1);
  std::printf("xid %s\n", xid.ToString().c_str());

  xa::Result<xa::Xid> parsed = xa::Xid::Parse(xid.ToString());
  Check(parsed.ok() && parsed.value() == xid, "the Xid's text parses back to the same Xid");
  Check(xid.IsOwnedBy(42), "the Xid carries our node id");

  // A decision log and a transaction manager without resource managers: a transaction with no
  // branch begins and rolls back.
  char dir_template[] = "/tmp/xa-consumer-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    Check(false, "a temporary directory for the decision log");
  } else {
    {
      xa::LogOptions log_options;
      log_options.dir = std::string(dir_template) + "/log";
      log_options.node_id = 42;
      auto log = xa::DecisionLog::Open(log_options);
      Check(log.ok(), "xa::DecisionLog::Open creates a log");
      if (log.ok()) {
        xa::TransactionManagerOptions options;
        options.node_id = 42;
        options.recover_on_open = false;
        options.recovery_interval = std::chrono::milliseconds(0);
        auto manager = xa::TransactionManager::Open(options, **log);
        Check(manager.ok(), "xa::TransactionManager::Open over that log");
        if (manager.ok()) {
          auto txn = (*manager)->Begin();
          Check(txn.ok() && txn->xid().IsOwnedBy(42), "Begin() makes a transaction of our node");
          if (txn.ok()) Check(txn->Rollback().ok(), "an empty transaction rolls back");
        }
      }
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_template, ignored);
  }

#if defined(XA_CONSUMER_HAS_MYSQL)
  // Options without an rm_name are refused before any connection: links the driver (and
  // Connector/C++) without needing a server.
  auto rm = xa::mysql::MySqlResourceManager::Create(xa::mysql::MySqlOptions{});
  Check(!rm.ok() && rm.status().code() == xa::Code::kInval,
        "xa::mysql refuses options without an rm_name");
#endif
#if defined(XA_CONSUMER_HAS_ODBC)
  auto odbc = xa::odbc::OdbcResourceManager::Create(xa::odbc::OdbcOptions{});
  Check(!odbc.ok() && odbc.status().code() == xa::Code::kInval,
        "xa::odbc refuses options without an rm_name");
#endif

  std::printf("%s\n", failures == 0 ? "consumer: all checks passed" : "consumer: FAILED");
  return failures == 0 ? 0 : 1;
}
