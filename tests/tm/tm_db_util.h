// Helpers for the transaction manager's tests and benchmark against the real local servers
// (scripts/servers.sh): sessions through both drivers, an accounts table in each database, and
// the transfer that moves money between them.
//
// MariaDB is reached through xa::mysql (Connector/C++); PostgreSQL through xa::odbc (psqlODBC).
// Settings come from the environment (tests/testutil/db_env.h): a missing variable fails the
// current test. Tables are named by the caller (prefix tm_) so areas never collide.
//
// Thread safety: free functions; each session is used by one thread at a time.

#ifndef XA_TESTS_TM_TM_DB_UTIL_H_
#define XA_TESTS_TM_TM_DB_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "xa/decision_log.h"
#include "xa/mysql/mysql_resource_manager.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/status.h"
#include "xa/transaction_manager.h"

namespace xa::test {

inline constexpr const char* kMariaDbRm = "tm-accounts-mariadb";
inline constexpr const char* kPostgresRm = "tm-accounts-postgres";

// `read_only_optimization`: the drivers' probe at Prepare that finishes a branch which wrote
// nothing without preparing it (see the drivers' headers). Worth it when branches may be
// read-only; a workload whose branches always write (a transfer) saves a round trip without it.
mysql::MySqlOptions MariaDbOptions(bool read_only_optimization = true);
odbc::OdbcOptions PostgresOptions(bool read_only_optimization = true);
Result<std::unique_ptr<mysql::MySqlResourceManager>> OpenMariaDb(
    bool read_only_optimization = true);
Result<std::unique_ptr<odbc::OdbcResourceManager>> OpenPostgres(
    bool read_only_optimization = true);

// Registers factories for both RMs (fresh sessions for background completion and recovery).
void RegisterDbFactories(TransactionManagerOptions& options, bool read_only_optimization = true);

// Two sessions, one per database, for one thread.
struct DbTeller {
  std::unique_ptr<mysql::MySqlResourceManager> mariadb;
  std::unique_ptr<odbc::OdbcResourceManager> postgres;
};
Result<DbTeller> OpenTeller(bool read_only_optimization = true);

// (Re)creates `table` (id, balance >= 0) in both databases with `accounts` rows each holding
// `balance`. Uses plain autocommit statements on MariaDB and a one-phase branch on PostgreSQL.
Status ResetAccounts(DbTeller& admin, const std::string& table, int accounts, int64_t balance);
// Drops and re-creates marker table `table` (docs/marker-commit.md) on both databases.
Status ResetMarkerTables(DbTeller& admin, const std::string& table);

// SUM(balance) of `table` in each database (plain reads, outside any global transaction).
Result<int64_t> MariaDbTotal(DbTeller& admin, const std::string& table);
Result<int64_t> PostgresTotal(DbTeller& admin, const std::string& table);
Result<int64_t> MariaDbBalance(DbTeller& admin, const std::string& table, int id);
Result<int64_t> PostgresBalance(DbTeller& admin, const std::string& table, int id);

// The work of a transfer inside an enlisted transaction: MariaDB account `from` loses
// `amount`, PostgreSQL account `to` gains it (negative amounts go the other way). An error
// (CHECK violation, deadlock...) is returned as the driver classified it.
Status TransferWork(DbTeller& teller, const std::string& table, int mariadb_account,
                    int pg_account, int64_t amount);

// A transfer through the manager: Begin(protocol), Enlist both, TransferWork, Commit (or
// Rollback when the work failed, which then yields kRolledBack).
Result<Outcome> Transfer(TransactionManager& manager, DbTeller& teller, const std::string& table,
                         int mariadb_account, int pg_account, int64_t amount,
                         Xid* xid = nullptr, Protocol protocol = Protocol::kTwoPhase);

// Branches of `node_id` still prepared in either database.
Result<std::vector<Xid>> PreparedBranchesOf(DbTeller& admin, uint32_t node_id);

// A fresh 0700 directory for a decision log.
std::string TempLogDir(const std::string& tag);

}  // namespace xa::test

#endif  // XA_TESTS_TM_TM_DB_UTIL_H_
