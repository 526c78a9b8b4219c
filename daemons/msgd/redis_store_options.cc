#include "daemons/msgd/redis_store_options.h"

#include "daemons/msgd/message.h"

namespace xa::msg {

std::string RedisStoreOptionsError(const RedisStoreOptions& options) {
  if (options.host.empty()) return "host is required";
  if (options.port < 1 || options.port > 65535) return "port must be 1 to 65535";
  if (options.database < 0 || options.database > 1'000'000) return "db must be 0 or more";
  if (!IsTablePrefix(options.key_prefix)) {
    return "the key prefix (table_prefix) must be 1 to 31 of [a-z0-9_], starting with a letter "
           "or '_'";
  }
  if (options.lease < std::chrono::milliseconds(100)) return "lease_ms must be at least 100";
  if (options.lock_wait < std::chrono::milliseconds(0)) return "lock_wait_ms must be 0 or more";
  if (options.io_timeout < std::chrono::milliseconds(10)) return "the I/O timeout must be >= 10 ms";
  return "";
}

}  // namespace xa::msg
