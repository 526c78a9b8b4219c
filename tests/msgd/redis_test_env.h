// The local Redis server of scripts/servers.sh for the message store's tests: the store's
// options from the environment (XA_TEST_REDIS_HOST, _PORT, _PASSWORD_FILE, written to env.sh),
// and the cleanup of a test's keys.

#ifndef XA_TESTS_MSGD_REDIS_TEST_ENV_H_
#define XA_TESTS_MSGD_REDIS_TEST_ENV_H_

#include <string>
#include <vector>

#include "daemons/msgd/redis_store_options.h"

namespace xa::test {

// Options for a Redis store under `key_prefix`; a test failure names a missing variable.
msg::RedisStoreOptions RedisStoreOptionsFromEnv(const std::string& key_prefix);
// Deletes every key that starts with `key_prefix` (SCAN, then DEL): a test's own keys.
void DeleteRedisKeys(const std::string& key_prefix);
// Runs one command as the store's user; its reply as text ("" for nil, the elements joined by
// '\n' for an array). A test failure when Redis cannot be reached or answers an error.
std::string RedisCommand(const std::vector<std::string>& args);

}  // namespace xa::test

#endif  // XA_TESTS_MSGD_REDIS_TEST_ENV_H_
