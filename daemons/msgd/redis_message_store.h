// The message store on Redis (docs/messages.md, "The Redis store"): the same messages, history
// and audit as the SQL store, in keys under a prefix, for users who run Redis rather than a
// database. Standalone Redis 7 (not Cluster: the scripts touch keys they compute).
//
// Durability: a confirmed message must survive a crash of Redis, so Open() refuses a server
// without `appendonly yes`, `appendfsync always` and `maxmemory-policy noeviction`. With
// `everysec` a crash loses up to about a second of acknowledged writes (confirmed messages,
// acknowledgements), and an evicting policy drops messages when memory runs short.
//
// Transactions: calls read Redis directly; writes are kept in this object and applied at
// Commit() by one Lua script, atomically and only if every lease the transaction took is still
// its own (else kRbTimeout, nothing written). A read of a message this transaction wrote sees
// the write.
//
// Leases instead of row locks: LockOne() and LockDue() take a lease key per message
// (SET NX PX, `lease` long) that the other stores' LockOne/LockDue respect, as SKIP LOCKED
// skips a locked row; LockOne waits up to `lock_wait` for a lease another holds (then
// kRbTimeout). Commit() and Rollback() release the leases; a daemon that dies holding them
// loses them when they expire, and the messages are due again. Every call renews the
// transaction's leases once a third of `lease` has passed, so `lease` must exceed the longest
// wait between two calls of a job (one publication or one back-query): the configuration
// requires twice the longer of the broker's confirm timeout and the back-query timeout.
//
// Errors as MessageStore says; kRmFail when Redis cannot be reached (the store reconnects on the
// next call), kConfig from Open() for a server that is not durable enough.
//
// Thread safety: none (a MessageStore is one connection).

#ifndef XA_DAEMONS_MSGD_REDIS_MESSAGE_STORE_H_
#define XA_DAEMONS_MSGD_REDIS_MESSAGE_STORE_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/message_store.h"
#include "daemons/msgd/redis_store_options.h"

namespace xa::msg {

// The key layout version this build creates and reads.
inline constexpr int kRedisStoreSchemaVersion = 1;


struct RedisValue;  // a reply (redis_message_store.cc)

class RedisMessageStore final : public MessageStore {
 public:
  // Connects, authenticates, selects the database and checks the server's durability settings.
  static Result<std::unique_ptr<RedisMessageStore>> Open(const RedisStoreOptions& options);
  ~RedisMessageStore() override;

  Status Migrate() override;
  Result<int> SchemaVersion() override;
  Status Insert(const Message& message) override;
  Result<std::optional<Message>> LockOne(std::string_view id) override;
  Result<std::optional<Message>> Get(std::string_view id) override;
  // Only pending, ready and sent messages have an attempt time: kInval for another status.
  Result<std::vector<Message>> LockDue(std::span<const MessageStatus> statuses, int64_t now_ms,
                                       int limit) override;
  Status Update(const Message& message) override;
  Result<bool> Delete(std::string_view id) override;
  Result<int> PurgeDone(int64_t before_ms, int limit) override;
  Status AddEvent(const MessageEvent& event) override;
  Status AddAudit(const AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> Audit(int64_t before_seq, int limit) override;
  Result<std::vector<MessageEvent>> Events(std::string_view id, int limit) override;
  Result<std::vector<Message>> List(MessageStatus status, bool dead, int64_t after_updated_ms,
                                    std::string_view after_id, int limit) override;
  Result<std::map<MessageStatus, StatusCount>> Counts() override;
  Status Commit() override;
  void Rollback() override;

  class Connection;  // a hiredis context (redis_message_store.cc)

 private:
  RedisMessageStore(RedisStoreOptions options, std::string token);
  // Every call of the store runs through Run: the connection (made again after it was lost),
  // the transaction's leases renewed when due, then `args` (a command, or EVAL of a script:
  // Redis caches a script by its text's hash). Every error ends the transaction (Rollback)
  // before it is returned.
  Result<RedisValue> Run(const std::vector<std::string>& args);
  template <typename T>
  Result<T> Failed(Status status);
  Status RenewLeasesIfDue();
  // Takes the lease of `id` (waiting up to lock_wait for another's): the message, or nullopt
  // (and no lease) when there is none.
  Result<std::optional<Message>> Lease(std::string_view id);
  // The transaction's own version of `id`: outer nullopt when it wrote nothing to it; inner
  // nullopt when it deleted it.
  std::optional<std::optional<Message>> Written(std::string_view id) const;

  const RedisStoreOptions options_;
  const std::string token_;  // this store's lease value: random, so another store's never equals it
  std::unique_ptr<Connection> connection_;
  // The transaction: its leases, its writes in order (each one script operation's arguments),
  // and the messages it wrote (nullopt: deleted).
  std::set<std::string> leases_;
  std::chrono::steady_clock::time_point leases_renewed_;
  std::vector<std::string> writes_;
  std::map<std::string, std::optional<Message>, std::less<>> written_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_REDIS_MESSAGE_STORE_H_
