// Uses an installed xa the way a downstream project would: only public headers, only the
// imported targets of find_package(xa). Needs no database server. Exits 0 when everything it
// checks holds, 1 otherwise, so scripts/test.sh can rely on the exit code.

#include <cstdio>
#include <string>

#include "xa/status.h"
#include "xa/xid.h"

#if defined(XA_CONSUMER_HAS_MYSQL)
#include "xa/mysql/mysql_resource_manager.h"
#endif

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
  xa::XidGenerator generator(/*node_id=*/42);
  xa::Xid xid = generator.Next().WithBranch(1);
  std::string gid = xid.ToPostgresGid();
  std::printf("xid %s\n", xid.ToString().c_str());
  std::printf("PostgreSQL GID %s\n", gid.c_str());
  std::printf("MariaDB literal %s\n", xid.ToMySqlLiteral().c_str());

  xa::Result<xa::Xid> parsed = xa::Xid::FromPostgresGid(gid);
  Check(parsed.ok() && parsed.value() == xid, "the GID parses back to the same Xid");
  Check(xid.IsOwnedBy(42), "the Xid carries our node id");

#if defined(XA_CONSUMER_HAS_MYSQL)
  // Options without an rm_name are refused before any connection: links the driver (and
  // Connector/C++) without needing a server.
  auto rm = xa::mysql::MySqlResourceManager::Create(xa::mysql::MySqlOptions{});
  Check(!rm.ok() && rm.status().code() == xa::Code::kInval,
        "xa::mysql refuses options without an rm_name");
#endif

  std::printf("%s\n", failures == 0 ? "consumer: all checks passed" : "consumer: FAILED");
  return failures == 0 ? 0 : 1;
}
