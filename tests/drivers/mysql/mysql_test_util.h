// Shared support of the MySQL driver's integration tests: connection options from the test
// environment (tests/testutil/db_env.h), plain sessions for checks, a fixture with a per-process
// random node id and row keys, and a table of our own (mysqldrv_accounts).

#ifndef XA_TESTS_DRIVERS_MYSQL_MYSQL_TEST_UTIL_H_
#define XA_TESTS_DRIVERS_MYSQL_MYSQL_TEST_UTIL_H_

#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testutil/db_env.h"
#include "xa/mysql/mysql_resource_manager.h"

namespace xa::mysql {

inline constexpr char kTable[] = "mysqldrv_accounts";

inline uint32_t RandomU32() {
  static std::mt19937 rng(std::random_device{}());
  return static_cast<uint32_t>(rng());
}

// Random per test process (gtest_discover_tests runs each test in its own process).
inline uint32_t NodeId() {
  static const uint32_t node = RandomU32() | 0x80000000u;
  return node;
}

inline XidGenerator& Generator() {
  static XidGenerator generator(NodeId());
  return generator;
}

inline Xid NewXid() { return Generator().Next().WithBranch(1); }

// Built twice: XA_TEST_BATCH_XA_END=1 runs every test with MySqlOptions::batch_xa_end on and
// the read-only optimisation off (so that Prepare sends XA END and XA PREPARE together).
#ifdef XA_TEST_BATCH_XA_END
inline constexpr bool kBatchedEnd = true;
#else
inline constexpr bool kBatchedEnd = false;
#endif

inline MySqlOptions Options(const std::string& rm_name = "mysqldrv-test") {
  test::ServerAccount account = test::MariaDbAccount();
  MySqlOptions options;
  options.rm_name = rm_name;
  options.host = account.host;
  options.port = account.port;
  options.user = account.user;
  options.password = account.password;
  options.database = account.database;
  options.read_timeout = std::chrono::seconds(20);
  if (kBatchedEnd) {
    options.batch_xa_end = true;
    options.read_only_optimization = false;
  }
  return options;
}

inline std::unique_ptr<MySqlResourceManager> OpenRm(MySqlOptions options = Options()) {
  Result<std::unique_ptr<MySqlResourceManager>> rm = MySqlResourceManager::Create(options);
  EXPECT_TRUE(rm.ok()) << rm.status().ToString();
  if (!rm.ok()) return nullptr;
  return std::move(rm).value();
}

// A plain session: the tm account over TCP, or root over the unix socket.
inline std::unique_ptr<sql::Connection> Connect(bool admin) {
  test::ServerAccount account = test::MariaDbAccount();
  sql::ConnectOptionsMap map;
  if (admin) {
    map["hostName"] = sql::SQLString("unix://" + test::MariaDbSocket());
    map["userName"] = sql::SQLString(test::MariaDbAdminUser());
    map["password"] = sql::SQLString("");
  } else {
    map["hostName"] = sql::SQLString(account.host);
    map["port"] = account.port;
    map["userName"] = sql::SQLString(account.user);
    map["password"] = sql::SQLString(account.password);
  }
  map["schema"] = sql::SQLString(account.database);
  map["OPT_RECONNECT"] = false;
  try {
    return std::unique_ptr<sql::Connection>(get_driver_instance()->connect(map));
  } catch (const sql::SQLException& e) {
    ADD_FAILURE() << "cannot connect (" << (admin ? "admin" : "tm") << "): " << e.getErrorCode()
                  << " " << e.what();
    return nullptr;
  }
}

// Runs a statement; returns the server's error number (0 on success).
inline int RunSql(sql::Connection& connection, const std::string& sql) {
  try {
    std::unique_ptr<sql::Statement> statement(connection.createStatement());
    statement->execute(sql::SQLString(sql));
    return 0;
  } catch (const sql::SQLException& e) {
    return e.getErrorCode() == 0 ? -1 : e.getErrorCode();
  }
}

inline void MustRun(sql::Connection& connection, const std::string& sql) {
  try {
    std::unique_ptr<sql::Statement> statement(connection.createStatement());
    statement->execute(sql::SQLString(sql));
  } catch (const sql::SQLException& e) {
    ADD_FAILURE() << sql << " failed: " << e.getErrorCode() << " " << e.what();
  }
}

inline std::optional<int64_t> QueryInt(sql::Connection& connection, const std::string& sql) {
  try {
    std::unique_ptr<sql::Statement> statement(connection.createStatement());
    std::unique_ptr<sql::ResultSet> rows(statement->executeQuery(sql::SQLString(sql)));
    if (!rows->next() || rows->isNull(1)) return std::nullopt;
    return rows->getInt64(1);
  } catch (const sql::SQLException& e) {
    ADD_FAILURE() << sql << " failed: " << e.getErrorCode() << " " << e.what();
    return std::nullopt;
  }
}

// Phase 2 from another session right after the preparer disconnected may find the branch still
// attached to the dying session: XAER_RMFAIL, retry (the contract of XAER_RMFAIL).
template <typename F>
Status RetryWhileRmFail(F&& call) {
  Status status;
  for (int attempt = 0; attempt < 50; ++attempt) {
    status = call();
    if (status.code() != Code::kRmFail) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return status;
}

class MysqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    verifier_ = Connect(false);
    ASSERT_NE(verifier_, nullptr);
    MustRun(*verifier_, std::string("CREATE TABLE IF NOT EXISTS ") + kTable +
                            " (k VARCHAR(64) PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB");
    // A branch a failed test left prepared holds its rows: fail fast instead of hanging.
    MustRun(*verifier_, "SET SESSION innodb_lock_wait_timeout = 5");
  }

  void TearDown() override {
    if (verifier_ == nullptr) return;
    // Leave nothing of ours behind, even when a test failed half-way.
    // A branch whose preparing session just ended answers XAER_RMFAIL for a moment: retry.
    if (std::unique_ptr<MySqlResourceManager> rm = OpenRm()) {
      Result<RecoverScan> scan = rm->Recover();
      if (scan.ok()) {
        std::vector<Xid> leftovers = scan->OwnedBy(NodeId());
        for (const Xid& xid : scan->prepared) {
          if (std::find(cleanup_xids_.begin(), cleanup_xids_.end(), xid) != cleanup_xids_.end()) {
            leftovers.push_back(xid);
          }
        }
        for (const Xid& xid : leftovers) {
          RetryWhileRmFail([&] { return rm->Rollback(xid); }).IgnoreError();
        }
      }
    }
    for (const std::string& key : keys_) {
      RunSql(*verifier_, std::string("DELETE FROM ") + kTable + " WHERE k = '" + key + "'");
    }
  }

  // An Xid not generated by our node that the test prepares: rolled back by TearDown if the
  // test leaves it prepared.
  void CleanUpIfLeft(const Xid& xid) { cleanup_xids_.push_back(xid); }

  // A row key unique to this process.
  std::string NewKey() {
    keys_.push_back("n" + std::to_string(NodeId()) + "-" + std::to_string(keys_.size()));
    return keys_.back();
  }

  std::optional<int64_t> ValueOf(const std::string& key) {
    return QueryInt(*verifier_, std::string("SELECT v FROM ") + kTable + " WHERE k = '" + key +
                                    "'");
  }

  // Runs the statement on the RM's session; returns the error number (0 on success) and, when it
  // failed, the RM's Status for it.
  int RunOnRm(MySqlResourceManager& rm, const std::string& sql, Status* status = nullptr) {
    try {
      std::unique_ptr<sql::Statement> statement(rm.connection().createStatement());
      if (statement->execute(sql::SQLString(sql))) {
        // Read the rows: a pending result set would put the session out of sync (2014).
        std::unique_ptr<sql::ResultSet> rows(statement->getResultSet());
        while (rows->next()) {
        }
      }
      return 0;
    } catch (const sql::SQLException& e) {
      Status mapped = rm.StatusFromException(e);
      if (status != nullptr) *status = mapped;
      return e.getErrorCode() == 0 ? -1 : e.getErrorCode();
    }
  }

  void Insert(MySqlResourceManager& rm, const std::string& key, int64_t value) {
    EXPECT_EQ(RunOnRm(rm, std::string("INSERT INTO ") + kTable + " VALUES ('" + key + "', " +
                              std::to_string(value) + ")"),
              0);
  }

  void SeedRow(const std::string& key, int64_t value) {
    MustRun(*verifier_, std::string("INSERT INTO ") + kTable + " VALUES ('" + key + "', " +
                            std::to_string(value) + ")");
  }

  // Start, insert (key, value), end, prepare.
  void PrepareInsert(MySqlResourceManager& rm, const Xid& xid, const std::string& key,
                     int64_t value) {
    ASSERT_TRUE(rm.Start(xid, StartFlag::kNoFlags).ok());
    Insert(rm, key, value);
    ASSERT_TRUE(rm.End(xid, EndFlag::kSuccess).ok());
    Status prepared = rm.Prepare(xid);
    ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  }

  std::vector<Xid> OurPrepared(MySqlResourceManager& rm) {
    Result<RecoverScan> scan = rm.Recover();
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    if (!scan.ok()) return {};
    std::vector<Xid> ours = scan->OwnedBy(NodeId());
    std::sort(ours.begin(), ours.end());
    return ours;
  }

  std::unique_ptr<sql::Connection> verifier_;
  std::vector<std::string> keys_;
  std::vector<Xid> cleanup_xids_;
};

}  // namespace xa::mysql

#endif  // XA_TESTS_DRIVERS_MYSQL_MYSQL_TEST_UTIL_H_
