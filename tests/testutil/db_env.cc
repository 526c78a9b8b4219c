#include "testutil/db_env.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace xa::test {

std::string RequireEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << "environment variable " << name
                  << " is not set: run the tests through scripts/test.sh, or source "
                     "build/servers/env.sh after scripts/servers.sh start";
    return "";
  }
  return value;
}

std::string ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read secret file " << path;
    return "";
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

namespace {
ServerAccount Account(const std::string& prefix) {
  ServerAccount account;
  account.host = RequireEnv((prefix + "_HOST").c_str());
  std::string port = RequireEnv((prefix + "_PORT").c_str());
  account.port = port.empty() ? 0 : std::atoi(port.c_str());
  account.user = RequireEnv((prefix + "_USER").c_str());
  std::string password_file = RequireEnv((prefix + "_PASSWORD_FILE").c_str());
  if (!password_file.empty()) account.password = ReadSecretFile(password_file);
  if (prefix != "XA_TEST_RABBITMQ") account.database = RequireEnv((prefix + "_DATABASE").c_str());
  return account;
}
}  // namespace

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

ServerAccount MariaDbAccount() { return Account("XA_TEST_MARIADB"); }
ServerAccount PostgresAccount() { return Account("XA_TEST_PG"); }
ServerAccount RabbitMqAccount() { return Account("XA_TEST_RABBITMQ"); }
std::string MariaDbSocket() { return RequireEnv("XA_TEST_MARIADB_SOCKET"); }
std::string MariaDbAdminUser() { return RequireEnv("XA_TEST_MARIADB_ADMIN_USER"); }
std::string PostgresAdminUser() { return RequireEnv("XA_TEST_PG_ADMIN_USER"); }
std::string OdbcMariaDbDsn() { return RequireEnv("XA_TEST_ODBC_MARIADB_DSN"); }
std::string OdbcPostgresDsn() { return RequireEnv("XA_TEST_ODBC_PG_DSN"); }
std::string OdbcPostgresDisabledDsn() { return RequireEnv("XA_TEST_ODBC_PG_DISABLED_DSN"); }

}  // namespace xa::test
