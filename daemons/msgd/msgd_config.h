// The configuration file of `xa-msgd`, the reliable message service (docs/messages.md).
//
// Grammar (the shared reader's, src/base/config_file.h: one setting a line; '#' starts a
// comment; values run to the end of the line, surrounding blanks trimmed; no quoting; secrets
// only through password_file / password_env):
//
//   listen = 127.0.0.1:18700              # required: the HTTP API and /metrics; port 0: any
//   tokens_file = /etc/xa/msgd.tokens     # required: who may call (msgd_tokens.h), mode 0600
//   table_prefix = xa_msg_                # optional: the store's tables (docs/messages.md)
//   max_body_bytes = 65536                # optional, 1 to 16777216: the largest message body
//   http_threads = 8                      # optional, 1 to 256
//   batch_size = 100                      # optional, 1 to 1000: messages a job pass takes
//   poll_interval_ms = 1000               # optional, 10 to 600000
//   confirm_timeout_ms = 30000            # optional, 10 to 86400000: pre-send to first back-query
//   check_ladder_ms = 10000, 30000, 60000 # optional: waits between back-queries, then parked
//   back_query_timeout_ms = 5000          # optional, 10 to 600000: one back-query call
//   allowed_query_prefixes = http://127.0.0.1:8080/, https://orders.example/  # optional: the
//                                         # only URLs a producer's query_url may start with
//   ack_timeout_ms = 60000                # optional, 10 to 86400000: publication to redelivery
//   redelivery_ladder_ms = 60000, 120000  # optional: waits between redeliveries (last repeats)
//   max_redeliveries = 5                  # optional, 0 to 1000: then the message is dead
//   publish_retry_ms = 1000               # optional, 10 to 3600000: after a failed publication
//   done_retention_ms = 604800000         # optional, 0 (keep for ever) to 315360000000 (10
//                                         # years): done messages deleted this long after
//
//   [rm store]                            # required: the store, in the [rm] grammar; driver
//   driver = odbc                         # odbc (MariaDB >= 10.6 or PostgreSQL, which have
//   dsn = msg_pg                          # SKIP LOCKED)
//   dialect = postgres
//   user = xa_msg
//   password_file = /etc/xa/msg_pg.pw
//
//   # or, instead of [rm store], a store on Redis (redis_message_store.h), which must run with
//   # appendonly yes, appendfsync always and maxmemory-policy noeviction; table_prefix prefixes
//   # its keys:
//   [redis store]
//   host = 127.0.0.1
//   port = 6379
//   db = 0                                # optional, 0 to 1000000
//   user = xa_msg                         # optional: an ACL user; absent: requirepass
//   password_file = /etc/xa/redis.pw      # optional (or password_env)
//   lease_ms = 30000                      # optional, 100 to 3600000, and at least twice the
//                                         # longer of the broker's confirm_timeout_ms and
//                                         # back_query_timeout_ms: how long a dead daemon's
//                                         # messages stay taken
//   lock_wait_ms = 10000                  # optional, 0 to 600000: wait for another's lease
//
//   [broker rabbitmq]                     # required: the RabbitMQ broker
//   host = 127.0.0.1
//   port = 5672
//   vhost = /
//   user = xa_msg
//   password_file = /etc/xa/rabbitmq.pw
//   confirm_timeout_ms = 10000            # optional, 10 to 600000: wait for a publisher confirm
//
//   [notifier webhooks]                   # optional: best-effort notification (notifier.h,
//                                         # docs/notifications.md); needs [rm store]
//   workers = 16                          # optional, 1 to 1024: calls at once
//   batch_size = 100                      # optional, 1 to 1000
//   connect_timeout_ms = 2000             # optional, 10 to 600000
//   call_timeout_ms = 10000               # optional, 10 to 600000: the whole call
//   max_body_bytes = 65536                # optional, 1 to 16777216: a notification's body
//   allowed_schemes = https               # optional: https, http or both
//   allowed_hosts = *.shop.example, pay.example  # optional: the host names endpoints may use
//   allowed_networks = 10.1.0.0/16        # optional: addresses allowed besides public ones
//   allow_public_addresses = yes          # optional: no allows allowed_networks only
//   breaker_failures = 5                  # optional, 1 to 1000: failures in a row that open it
//   breaker_cooldown_ms = 30000           # optional, 100 to 3600000
//
// Every error is XA_CONFIG and names the file, the line and what to change.

#ifndef XA_DAEMONS_MSGD_MSGD_CONFIG_H_
#define XA_DAEMONS_MSGD_MSGD_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "daemons/msgd/message_service.h"
#include "daemons/msgd/notifier.h"
#include "daemons/msgd/redis_store_options.h"
#include "src/base/config_file.h"
#include "xa/status.h"

namespace xa::msg {

struct BrokerConfig {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string vhost = "/";
  std::string user;
  std::string password;  // resolved; never logged
  std::chrono::milliseconds confirm_timeout{10'000};
};

struct MsgdConfig {
  std::string path;
  std::string listen;
  std::string tokens_file;
  std::string table_prefix = "xa_msg_";
  int http_threads = 8;
  std::chrono::milliseconds back_query_timeout{5'000};
  ServiceOptions service;
  internal::RmConfig store;                        // [rm store], unless...
  std::optional<RedisStoreOptions> redis_store;    // ...[redis store]
  BrokerConfig broker;
  std::optional<NotifierOptions> notifier;         // [notifier ...]: best-effort notification
};

// Parses `text` (read from `path`, used in messages); resolves the passwords.
Result<MsgdConfig> ParseMsgdConfig(const std::string& text, const std::string& path);
// Reads the file by the shared reader's rules and parses it.
Result<MsgdConfig> LoadMsgdConfig(const std::string& path);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MSGD_CONFIG_H_
