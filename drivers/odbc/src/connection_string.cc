#include "drivers/odbc/src/connection_string.h"

#include "drivers/odbc/src/odbc_session.h"

namespace xa::odbc::internal {

std::string DialectConnectionAttributes(const OdbcOptions& options, Dialect dialect) {
  if (dialect != Dialect::kPostgres) return "";
  return options.postgres_error_rollback == PostgresErrorRollback::kTransaction
             ? ";Protocol=7.4-0"
             : ";Protocol=7.4-2";
}

std::string OdbcConnectionString(const OdbcOptions& options, Dialect dialect,
                                 std::string_view extra) {
  std::string out = options.dsn.empty() ? options.connection_string
                                        : "DSN=" + ConnectionStringValue(options.dsn);
  if (PsqlOdbcTakesAsUid(options.user)) {
    out += ";UID=" + options.user;  // unbraced: both drivers read it verbatim
  } else if (!options.user.empty() && dialect == Dialect::kPostgres) {
    out += ";pqopt=" + BracedConnectionStringValue(PsqlOdbcPqoptUser(options.user));
  } else if (!options.user.empty()) {
    out += ";UID=" + BracedConnectionStringValue(options.user);
  }
  if (!options.password.empty()) {
    out += ";PWD=" + BracedConnectionStringValue(options.password);
  }
  out.append(extra);
  return out;
}

}  // namespace xa::odbc::internal
