// The connection string of an ODBC connection from OdbcOptions, the one rule every connection of
// this driver is made by (the resource manager's sessions and LocalConnection).
//
// The credentials are written so that the driver reads back exactly their bytes. A user name
// without ';', a leading '{' or a blank at either end goes unbraced, which both drivers read
// verbatim ('=', '{' and '}' inside included). Any other name: MariaDB Connector/ODBC reads a
// braced value out of its braces ('}}' for '}'), but psqlODBC keeps the braces of a braced UID,
// so there the name goes to libpq through pqopt (the caller makes sure that the dialect is known
// then and that the connection string sets no pqopt). psqlODBC URL-decodes an unbraced PWD, so
// the password is always braced. The result carries the password: use it to connect, never log
// or keep it.

#ifndef XA_DRIVERS_ODBC_SRC_CONNECTION_STRING_H_
#define XA_DRIVERS_ODBC_SRC_CONNECTION_STRING_H_

#include <string>
#include <string_view>

#include "xa/odbc/odbc_resource_manager.h"

namespace xa::odbc::internal {

// Connection attributes a dialect imposes. PostgreSQL: psqlODBC's level of rollback on errors
// (see PostgresErrorRollback); never level 1, where the driver itself rolls the whole
// transaction back and the next statement silently opens a new one.
std::string DialectConnectionAttributes(const OdbcOptions& options, Dialect dialect);

// options.dsn (as DSN=) or options.connection_string, the credentials, then `extra`.
std::string OdbcConnectionString(const OdbcOptions& options, Dialect dialect,
                                 std::string_view extra);

}  // namespace xa::odbc::internal

#endif  // XA_DRIVERS_ODBC_SRC_CONNECTION_STRING_H_
