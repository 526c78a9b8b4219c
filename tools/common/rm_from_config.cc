#include "tools/common/rm_from_config.h"

#include <string>
#include <utility>

#include "src/base/escape.h"
#include "xa/mysql/mysql_resource_manager.h"
#include "xa/odbc/odbc_resource_manager.h"

namespace xa::tools {

Result<std::unique_ptr<ResourceManager>> MakeResourceManager(const internal::RmConfig& rm) {
  auto as_rm = [](auto result) -> Result<std::unique_ptr<ResourceManager>> {
    if (!result.ok()) return result.status();
    return std::unique_ptr<ResourceManager>(std::move(result).value());
  };
  if (rm.driver == "mysql") {
    mysql::MySqlOptions options;
    options.rm_name = rm.name;
    if (!rm.Get("host").empty()) options.host = rm.Get("host");
    if (rm.port) options.port = *rm.port;
    options.unix_socket = rm.Get("socket");
    options.user = rm.Get("user");
    options.password = rm.password;
    options.database = rm.Get("database");
    if (rm.connect_timeout) options.connect_timeout = *rm.connect_timeout;
    return as_rm(mysql::MySqlResourceManager::Create(std::move(options)));
  }
  Result<odbc::OdbcOptions> options = OdbcOptionsFromConfig(rm);
  if (!options.ok()) return options.status();
  return as_rm(odbc::OdbcResourceManager::Create(std::move(options).value()));
}

Result<odbc::OdbcOptions> OdbcOptionsFromConfig(const internal::RmConfig& rm) {
  odbc::OdbcOptions options;
  options.rm_name = rm.name;
  options.dsn = rm.Get("dsn");
  options.user = rm.Get("user");
  options.password = rm.password;
  if (rm.connect_timeout) options.login_timeout = *rm.connect_timeout;
  std::string dialect = rm.Get("dialect");
  if (dialect == "postgres" || dialect == "postgresql") {
    options.dialect = odbc::Dialect::kPostgres;
  } else if (dialect == "mariadb" || dialect == "mysql") {
    options.dialect = odbc::Dialect::kMariaDb;
  } else if (!dialect.empty()) {
    return Status(Code::kConfig, "[rm " + internal::EscapeForMessage(rm.name) +
                                     "] dialect must be postgres or mariadb, not '" +
                                     internal::EscapeForMessage(dialect) + "'");
  }
  return options;
}

}  // namespace xa::tools
