// Connection settings for the local test servers, read from the environment that
// `scripts/servers.sh start` writes to build/servers/env.sh (the test command sources it).
//
// A variable that is missing is a test failure, never a skip: CI must not pass without servers.
//
//   XA_TEST_MARIADB_HOST, _PORT, _USER, _PASSWORD_FILE, _DATABASE   the 'xa_tm' account (TCP)
//   XA_TEST_MARIADB_SOCKET, XA_TEST_MARIADB_ADMIN_USER               root over the unix socket
//   XA_TEST_PG_HOST, _PORT, _USER, _PASSWORD_FILE, _DATABASE         the 'xa_tm' role (TCP, scram)
//   XA_TEST_PG_ADMIN_USER                                             'postgres', trusted on TCP
//   XA_TEST_PG_DISABLED_PORT    a second PostgreSQL port whose max_prepared_transactions = 0
//                               (same role, password and database as XA_TEST_PG_*)
//   ODBCSYSINI, ODBCINI         project-local unixODBC configuration with DSNs
//   XA_TEST_ODBC_MARIADB_DSN, XA_TEST_ODBC_PG_DSN                     DSN names in ODBCINI
//   XA_TEST_ODBC_PG_DISABLED_DSN  DSN of the max_prepared_transactions = 0 instance
//   XA_TEST_RABBITMQ_HOST, _PORT, _USER, _PASSWORD_FILE   the 'xa_msg' account of RabbitMQ
//   XA_TEST_SERVERS_SCRIPT      absolute path of scripts/servers.sh (for restart/kill tests):
//                               `start` (idempotent), `kill-mariadb`, `kill-pg`, `kill-rabbitmq`
//                               (SIGKILL, a crash;
//                               `start` brings the server back with its prepared transactions)
//   XA_TEST_SERVERS_DIR, XA_SERVERS_DIR   the servers' directory; XA_SERVERS_DIR makes the
//                               script act on these very servers when a test runs it

#ifndef XA_TESTS_TESTUTIL_DB_ENV_H_
#define XA_TESTS_TESTUTIL_DB_ENV_H_

#include <string>

namespace xa::test {

struct ServerAccount {
  std::string host;
  int port = 0;
  std::string user;
  std::string password;  // read from the password file; never printed
  std::string database;
};

// Each getter fails the current test (ADD_FAILURE with the variable's name) and returns an
// empty value when the variable is missing.
std::string RequireEnv(const char* name);
// A soak's or stress test's size from the environment: the variable as an integer, `fallback`
// when it is unset or empty.
int EnvInt(const char* name, int fallback);
ServerAccount MariaDbAccount();
ServerAccount PostgresAccount();
// RabbitMQ's account (database empty).
ServerAccount RabbitMqAccount();
std::string MariaDbSocket();
std::string MariaDbAdminUser();
std::string PostgresAdminUser();
std::string OdbcMariaDbDsn();
std::string OdbcPostgresDsn();
// XA_TEST_ODBC_PG_DISABLED_DSN: the PostgreSQL whose max_prepared_transactions = 0.
std::string OdbcPostgresDisabledDsn();

// Reads a whole file, without a trailing newline. Fails the test when it cannot.
std::string ReadSecretFile(const std::string& path);

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_DB_ENV_H_
