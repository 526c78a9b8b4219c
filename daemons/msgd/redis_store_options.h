// Where and how xa-msgd reaches its Redis store (redis_message_store.h; the configuration's
// [redis store] section, msgd_config.h): apart from the store so that the configuration is read
// without hiredis.
//
// Thread safety: values and pure functions.

#ifndef XA_DAEMONS_MSGD_REDIS_STORE_OPTIONS_H_
#define XA_DAEMONS_MSGD_REDIS_STORE_OPTIONS_H_

#include <chrono>
#include <string>

namespace xa::msg {

struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int database = 0;       // SELECT
  std::string user;       // an ACL user; "" for the default user (requirepass)
  std::string password;   // never logged
  std::string key_prefix = "xa_msg_";  // [a-z_][a-z0-9_]{0,30}, as the SQL store's table prefix
  std::chrono::milliseconds lease{30'000};
  std::chrono::milliseconds lock_wait{10'000};
  std::chrono::milliseconds io_timeout{5'000};  // connecting, and each command
};

// What is wrong with `options` (a message naming the setting), or "".
std::string RedisStoreOptionsError(const RedisStoreOptions& options);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_REDIS_STORE_OPTIONS_H_
