// A bank transfer as two XA branches driven by hand through xa::mysql::MySqlResourceManager:
// the debit in one session, the credit in another (in production: two databases), then
// two-phase commit. Copy TransferLeg() for your own branches; the transaction manager does the
// rest (decision log, retries, recovery) for real applications.
//
//   source build/servers/env.sh && build/drivers/mysql/xa_mysql_transfer_example
//
// Uses the test account (XA_TEST_MARIADB_*) and the table mysqldrv_example_account.

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/statement.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <tuple>

#include "xa/mysql/mysql_resource_manager.h"

namespace {

// Runs one leg of a transfer as a complete branch up to End: Start, the guarded UPDATE, End.
// A leg that would overdraw the account ends the branch with TMFAIL, so that Prepare rolls it
// back and votes XA_RBROLLBACK. Statement errors come back as the RM's Status (a deadlock is
// XA_RBDEADLOCK, and the branch is then rolled back at Prepare).
xa::Status TransferLeg(xa::mysql::MySqlResourceManager& rm, const xa::Xid& xid,
                       int64_t account_id, int64_t delta) {
  XA_RETURN_IF_ERROR(rm.Start(xid, xa::StartFlag::kNoFlags));
  int updated = 0;
  try {
    std::unique_ptr<sql::PreparedStatement> update(rm.connection().prepareStatement(
        "UPDATE mysqldrv_example_account SET balance = balance + ? "
        "WHERE id = ? AND balance + ? >= 0"));
    update->setInt64(1, delta);
    update->setInt64(2, account_id);
    update->setInt64(3, delta);
    updated = update->executeUpdate();
  } catch (const sql::SQLException& e) {
    xa::Status failed = rm.StatusFromException(e);
    rm.End(xid, xa::EndFlag::kFail).IgnoreError();  // the Status above is what matters
    return failed;
  }
  return rm.End(xid, updated == 1 ? xa::EndFlag::kSuccess : xa::EndFlag::kFail);
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

xa::mysql::MySqlOptions OptionsFromEnv(const std::string& rm_name) {
  xa::mysql::MySqlOptions options;
  options.rm_name = rm_name;
  options.host = Env("XA_TEST_MARIADB_HOST");
  options.port = std::atoi(Env("XA_TEST_MARIADB_PORT").c_str());
  options.user = Env("XA_TEST_MARIADB_USER");
  options.database = Env("XA_TEST_MARIADB_DATABASE");
  std::ifstream secret(Env("XA_TEST_MARIADB_PASSWORD_FILE"));
  std::getline(secret, options.password);
  return options;
}

int Fail(const char* what, const xa::Status& status) {
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  auto debit_rm = xa::mysql::MySqlResourceManager::Create(OptionsFromEnv("example-debit"));
  if (!debit_rm.ok()) return Fail("open debit RM", debit_rm.status());
  auto credit_rm = xa::mysql::MySqlResourceManager::Create(OptionsFromEnv("example-credit"));
  if (!credit_rm.ok()) return Fail("open credit RM", credit_rm.status());

  try {
    std::unique_ptr<sql::Statement> setup((*debit_rm)->connection().createStatement());
    setup->execute("CREATE TABLE IF NOT EXISTS mysqldrv_example_account "
                   "(id BIGINT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB");
    setup->execute("INSERT IGNORE INTO mysqldrv_example_account VALUES (1, 1000), (2, 1000)");
  } catch (const sql::SQLException& e) {
    std::fprintf(stderr, "setup: %s\n", (*debit_rm)->StatusFromException(e).ToString().c_str());
    return 1;
  }

  xa::XidGenerator generator(static_cast<uint32_t>(std::random_device{}()));
  xa::Xid global = generator.Next();
  xa::Xid debit = global.WithBranch(1), credit = global.WithBranch(2);

  // Phase 0: the work. Phase 1: prepare both; any vote other than commit rolls everything back.
  xa::Status debit_done = TransferLeg(**debit_rm, debit, 1, -100);
  xa::Status credit_done = TransferLeg(**credit_rm, credit, 2, +100);
  xa::Status debit_vote = debit_done.ok() ? (*debit_rm)->Prepare(debit) : debit_done;
  xa::Status credit_vote = credit_done.ok() ? (*credit_rm)->Prepare(credit) : credit_done;
  bool commit = debit_vote.ok() && credit_vote.ok();

  // Phase 2. (A real transaction manager writes the commit decision durably first, and retries
  // XAER_RMFAIL until the branch answers.)
  for (auto [rm, xid, vote] : {std::tuple{debit_rm->get(), debit, debit_vote},
                               std::tuple{credit_rm->get(), credit, credit_vote}}) {
    if (!vote.ok()) continue;  // read-only or rolled back: nothing left to do
    xa::Status finished =
        commit ? rm->Commit(xid, xa::CommitMode::kTwoPhase) : rm->Rollback(xid);
    if (!finished.ok()) return Fail("phase 2", finished);
  }
  std::printf("transfer %s: %s\n", global.ToString().c_str(),
              commit ? "committed" : "rolled back");
  return commit ? 0 : 1;
}
