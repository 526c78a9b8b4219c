// Opens a resource manager from its configuration section (src/base/config_file.h, `[rm name]`)
// through the driver the section names. Shared by the programs that open resource managers
// (xa-recover, xa-agent); it links both drivers, which the core never does.

#ifndef XA_TOOLS_COMMON_RM_FROM_CONFIG_H_
#define XA_TOOLS_COMMON_RM_FROM_CONFIG_H_

#include <memory>

#include "src/base/config_file.h"
#include "xa/odbc/odbc_resource_manager.h"
#include "xa/resource_manager.h"
#include "xa/status.h"

namespace xa::tools {

// A new session to `rm` (driver mysql: MySqlResourceManager; odbc: OdbcResourceManager). The
// driver's own error otherwise: kConfig or kInval when it refused the settings (a configuration
// error), anything else when the database could not be reached now.
Result<std::unique_ptr<ResourceManager>> MakeResourceManager(const internal::RmConfig& rm);

// The ODBC driver's options of a `driver = odbc` section (dsn, user, password, connect timeout,
// dialect); kConfig for a dialect it does not know. Also what xa-msgd opens its store with.
Result<odbc::OdbcOptions> OdbcOptionsFromConfig(const internal::RmConfig& rm);

}  // namespace xa::tools

#endif  // XA_TOOLS_COMMON_RM_FROM_CONFIG_H_
