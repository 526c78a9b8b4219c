// A small bank split across two databases: accounts in MariaDB (through MySQL Connector/C++)
// and accounts in PostgreSQL (through unixODBC and psqlODBC). Every transfer moves money from an
// account in one database to an account in the other inside one global transaction, and writes
// a marker row with its gtrid in both databases, so anyone can check afterwards that each
// transfer is on both sides or on neither (the bank invariants I1..I6 of docs/promises.md).
//
// Used by the main-job demo (examples/bank_transfer) and by the crash tests (tests/recovery).
//
// Thread safety: a Bank is used by one thread at a time. Tellers (pairs of sessions) belong to
// one thread each.

#ifndef XA_EXAMPLES_BANK_BANK_H_
#define XA_EXAMPLES_BANK_BANK_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "xa/mysql/mysql_resource_manager.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/status.h"
#include "xa/transaction_manager.h"

namespace xa::bank {

struct BankSettings {
  mysql::MySqlOptions mariadb;  // rm_name defaults to "bank-mariadb"
  odbc::OdbcOptions postgres;   // rm_name defaults to "bank-postgres"
  std::string table_prefix = "bank";  // tables <prefix>_accounts and <prefix>_transfers
  int accounts = 10;                  // per database
  int64_t initial_balance = 1000;
  int64_t Total() const { return 2 * accounts * initial_balance; }
  // The marker table of marker-commit transfers (Protocol::kMarkerCommit), on both databases:
  // <prefix>_marker (docs/marker-commit.md).
  std::string MarkerTable() const { return table_prefix + "_marker"; }
};

// Settings for the local servers of scripts/servers.sh, from the variables it writes to
// build/servers/env.sh (XA_TEST_MARIADB_*, XA_TEST_PG_*, XA_TEST_ODBC_PG_DSN). Passwords come
// from the password files named there.
Result<BankSettings> SettingsFromEnvironment();

// One thread's sessions: a branch on each database.
struct Teller {
  std::unique_ptr<mysql::MySqlResourceManager> mariadb;
  std::unique_ptr<odbc::OdbcResourceManager> postgres;
};

// What the databases hold, read with plain (non-XA) queries.
struct BankSnapshot {
  int64_t mariadb_total = 0;
  int64_t postgres_total = 0;
  int64_t total() const { return mariadb_total + postgres_total; }
  bool any_negative = false;
  std::set<std::string> mariadb_transfers;   // gtrid hex of every transfer marker
  std::set<std::string> postgres_transfers;
  std::vector<Xid> prepared_ours;            // our node's branches still prepared, both RMs
  size_t prepared_foreign = 0;               // everybody else's, both RMs
  size_t marker_rows = 0;                    // rows in both marker tables
};

class Bank {
 public:
  static Result<std::unique_ptr<Bank>> Connect(BankSettings settings);

  // Drops and re-creates the tables (the marker tables too) and gives every account the initial
  // balance.
  Status Reset();

  // New sessions for one thread.
  Result<Teller> NewTeller() const;

  // Registers both RMs' factories (fresh sessions) with the manager's options.
  void RegisterFactories(TransactionManagerOptions& options) const;
  // Marker commit with the marker in `database` ("mariadb" or "postgres"): the options'
  // marker_commit names that RM and the bank's marker table. XA_INVAL for another name.
  Status UseMarkerOn(const std::string& database, TransactionManagerOptions& options) const;

  // Moves `amount` from MariaDB account `mariadb_account` to PostgreSQL account `pg_account`
  // (a negative amount moves money the other way), and records the transfer on both sides.
  // A transfer that would make a balance negative is refused by a CHECK constraint and rolled
  // back. `xid` receives the global Xid. `protocol`: 2PC, 3PC through the manager's agents, or
  // marker commit (the marker branch is the one on the manager's marker resource manager).
  Result<Outcome> Transfer(TransactionManager& manager, Teller& teller, int mariadb_account,
                           int pg_account, int64_t amount, Xid* xid,
                           Protocol protocol = Protocol::kTwoPhase) const;

  // Reads balances, markers and the recover scans. `node_id` selects "ours".
  Result<BankSnapshot> Snapshot(uint32_t node_id) const;

  // The invariants at quiescence: total unchanged (I2), no negative balance (I3), every
  // transfer on both databases or on neither (I1), every acknowledged transfer present (I4), no
  // prepared branch of ours left (I5). OK, or XA_INTERNAL naming every violation.
  Status CheckInvariants(const BankSnapshot& snapshot,
                         const std::set<std::string>& acknowledged) const;

  const BankSettings& settings() const { return settings_; }

 private:
  explicit Bank(BankSettings settings) : settings_(std::move(settings)) {}
  BankSettings settings_;
  Teller admin_;  // plain sessions for setup and snapshots
};

// Hex of a gtrid: the marker key of a transfer.
std::string GtridHex(const Xid& xid);

}  // namespace xa::bank

#endif  // XA_EXAMPLES_BANK_BANK_H_
