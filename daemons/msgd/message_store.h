// The message store of xa-msgd: messages and their history in a database the user chooses
// (docs/messages.md, "The store"). One MessageStore object is one connection: each thread of the
// daemon (an HTTP worker, a job) owns its own.
//
// Every call runs inside the store's current transaction, which the first call opens and
// Commit() or Rollback() ends; nothing is durable before Commit() returned OK. Row leases are
// row locks: LockDue() takes up to `limit` due rows with SELECT ... FOR UPDATE SKIP LOCKED, so
// several daemons (and several jobs of one daemon) share the work and never hold one message at
// once; the locks last until Commit() or Rollback(), and a daemon that dies holding them loses
// its connection, so the database releases them and the rows are due again.
//
// Errors: Code::kRmFail when the connection is lost (the store reconnects on the next call);
// kRbDeadlock / kRbTimeout for a deadlock or a lock wait timeout; kDupId when Insert() meets an
// existing id; kRmError for anything else the database refused. After any error the
// transaction is rolled back: start over.
//
// Thread safety: none; one thread at a time.

#ifndef XA_DAEMONS_MSGD_MESSAGE_STORE_H_
#define XA_DAEMONS_MSGD_MESSAGE_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/message.h"
#include "xa/status.h"

namespace xa::msg {

// What the operator's overview shows, per status: how many messages (dead ones counted apart)
// and when the oldest was last updated.
struct StatusCount {
  int64_t live = 0;
  int64_t dead = 0;
  std::optional<int64_t> oldest_updated_ms;  // of every message of the status, dead or not
};

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Creates or upgrades the tables to the schema this build knows (docs/messages.md): applies
  // every migration newer than the version the schema table records, each in its own
  // transaction, and commits. Several daemons may migrate at once: one wins, the others find
  // the work done. kConfig when the database holds a newer schema than this build knows.
  virtual Status Migrate() = 0;
  // The schema version the database records (0 before the first migration).
  virtual Result<int> SchemaVersion() = 0;

  // Stores a new message (every field as given). kDupId when its id exists.
  virtual Status Insert(const Message& message) = 0;
  // The message of `id`, locked against every other writer until the transaction ends;
  // nullopt when there is none.
  virtual Result<std::optional<Message>> LockOne(std::string_view id) = 0;
  // The message of `id` without a lock; nullopt when there is none.
  virtual Result<std::optional<Message>> Get(std::string_view id) = 0;
  // Locks up to `limit` (1..1000) messages that are not dead, whose status is one of
  // `statuses` and whose next_attempt_ms <= now_ms, earliest next_attempt_ms first, skipping
  // rows another transaction holds.
  virtual Result<std::vector<Message>> LockDue(std::span<const MessageStatus> statuses,
                                               int64_t now_ms, int limit) = 0;
  // Writes every field of `message` but its id and created_ms over the row of its id (locked
  // by this transaction). kNoTa when the row is gone.
  virtual Status Update(const Message& message) = 0;
  // Deletes the message of `id` and its history; false when there was none.
  virtual Result<bool> Delete(std::string_view id) = 0;
  // Deletes up to `limit` (1..1000) done messages last updated before `before_ms`, oldest
  // first, with their history (the audit table keeps its rows), skipping rows another
  // transaction holds; how many.
  virtual Result<int> PurgeDone(int64_t before_ms, int limit) = 0;

  // Appends a line to a message's history.
  virtual Status AddEvent(const MessageEvent& event) = 0;
  // Appends an operator action to the audit table (its seq is the store's).
  virtual Status AddAudit(const AuditEntry& entry) = 0;
  // The audit table, newest first: at most `limit` (1..1000) entries whose seq < before_seq.
  // The first page: before INT64_MAX.
  virtual Result<std::vector<AuditEntry>> Audit(int64_t before_seq, int limit) = 0;
  // The last `limit` (1..1000) lines of a message's history, oldest first.
  virtual Result<std::vector<MessageEvent>> Events(std::string_view id, int limit) = 0;

  // A page of the messages of `status` that are dead (or not, as `dead` says), in the order
  // (updated_ms, id): at most `limit` (1..1000) of those after (after_updated_ms, after_id).
  // The first page: after (INT64_MIN, "").
  virtual Result<std::vector<Message>> List(MessageStatus status, bool dead,
                                            int64_t after_updated_ms, std::string_view after_id,
                                            int limit) = 0;
  // Counts for every status that has a message.
  virtual Result<std::map<MessageStatus, StatusCount>> Counts() = 0;

  virtual Status Commit() = 0;
  // Ends the transaction without its changes; never fails (a lost connection has lost them).
  virtual void Rollback() = 0;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MESSAGE_STORE_H_
