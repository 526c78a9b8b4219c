// The demo's look at the databases as their administrators see them: a statement run with the
// command-line clients (root over MariaDB's socket, postgres over TCP), its first column's text.
// The acts print the state of the shops with it, from outside the services.

#ifndef XA_EXAMPLES_BANK_TRANSFER_ADMIN_SQL_H_
#define XA_EXAMPLES_BANK_TRANSFER_ADMIN_SQL_H_

#include <cstdio>
#include <cstdlib>
#include <string>

namespace xa::demo {

// Runs a command and returns its standard output (empty when it failed).
inline std::string Capture(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

inline std::string MariaDb(const std::string& sql) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  return Capture("/usr/bin/mariadb --no-defaults -S '" + env("XA_TEST_MARIADB_SOCKET") +
                 "' -u '" + env("XA_TEST_MARIADB_ADMIN_USER") + "' '" +
                 env("XA_TEST_MARIADB_DATABASE") + "' -N -e \"" + sql + "\" 2>/dev/null");
}

inline std::string Postgres(const std::string& sql) {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  return Capture("/usr/bin/psql -X -q -t -A -h '" + env("XA_TEST_PG_HOST") + "' -p '" +
                 env("XA_TEST_PG_PORT") + "' -U '" + env("XA_TEST_PG_ADMIN_USER") + "' -d '" +
                 env("XA_TEST_PG_DATABASE") + "' -c \"" + sql + "\" 2>/dev/null");
}

}  // namespace xa::demo

#endif  // XA_EXAMPLES_BANK_TRANSFER_ADMIN_SQL_H_
