// The ODBC options of the local test servers' accounts (testutil/db_env.h) for a store of either
// dialect: what every msgd test that opens the SQL store, or a connection beside it, connects
// with.

#ifndef XA_TESTS_MSGD_STORE_TEST_ENV_H_
#define XA_TESTS_MSGD_STORE_TEST_ENV_H_

#include "testutil/db_env.h"
#include "xa/odbc/local_connection.h"

namespace xa::test {

inline odbc::OdbcOptions StoreOdbcOptions(odbc::Dialect dialect) {
  const bool postgres = dialect == odbc::Dialect::kPostgres;
  ServerAccount account = postgres ? PostgresAccount() : MariaDbAccount();
  odbc::OdbcOptions options;
  options.dsn = postgres ? OdbcPostgresDsn() : OdbcMariaDbDsn();
  options.user = account.user;
  options.password = account.password;
  options.dialect = dialect;
  return options;
}

}  // namespace xa::test

#endif  // XA_TESTS_MSGD_STORE_TEST_ENV_H_
