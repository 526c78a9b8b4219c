// The message store on MariaDB (10.6 or later) or PostgreSQL through an ODBC connection
// (xa::odbc::LocalConnection): the tables of docs/messages.md ("The store"), versioned by
// migrations. Strings and bytes go into SQL only as hex literals and come back as hex, ids only
// after IsMessageId accepted them, the table prefix only after it was checked: nothing a request
// carries is ever SQL text.
//
// Thread safety: none (a MessageStore is one connection).

#ifndef XA_DAEMONS_MSGD_SQL_MESSAGE_STORE_H_
#define XA_DAEMONS_MSGD_SQL_MESSAGE_STORE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/message_store.h"
#include "daemons/msgd/notification_store.h"
#include "xa/odbc/local_connection.h"

namespace xa::msg {

// The schema version this build creates and reads.
inline constexpr int kStoreSchemaVersion = 3;

// `bytes` as a literal of `dialect` (X'..' or decode('..', 'hex')): no value is ever SQL text.
std::string BytesLiteral(odbc::Dialect dialect, std::string_view bytes);
// The statements that store a new message (every field as given; its id checked by the caller)
// and a line of its history: the store's Insert and AddEvent, and a producer's transactional
// send (xa/msg/transactional_send.h) on its own XA branch, write the same rows.
std::string InsertMessageSql(odbc::Dialect dialect, std::string_view table_prefix,
                             const Message& message);
std::string InsertEventSql(odbc::Dialect dialect, std::string_view table_prefix,
                           const MessageEvent& event);

// Also the notifier's store (notification_store.h): the same connection, tables and
// transaction; its part is sql_notification_store.cc.
// The tables of the store, by the name after the prefix: "schema", "message", "event", "audit",
// "endpoint", "notification", "attempt".
const std::vector<std::string>& StoreTableNames();
// "DROP TABLE IF EXISTS <every table of the store>": for tests and operators who start over.
std::string DropStoreTablesSql(std::string_view table_prefix);

class SqlMessageStore final : public MessageStore, public NotificationStore {
 public:
  // Connects (options.dialect kMariaDb or kPostgres). `table_prefix`: [a-z_][a-z0-9_]{0,30}.
  static Result<std::unique_ptr<SqlMessageStore>> Open(const odbc::OdbcOptions& options,
                                                       std::string table_prefix = "xa_msg_");

  Status Migrate() override;
  Result<int> SchemaVersion() override;
  Status Insert(const Message& message) override;
  Result<std::optional<Message>> LockOne(std::string_view id) override;
  Result<std::optional<Message>> Get(std::string_view id) override;
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

  // NotificationStore (sql_notification_store.cc).
  Status PutEndpoint(const Endpoint& endpoint) override;
  Result<std::optional<Endpoint>> GetEndpoint(std::string_view id) override;
  Result<std::vector<Endpoint>> ListEndpoints(std::string_view after_id, int limit) override;
  Status InsertNotification(const Notification& notification) override;
  Result<std::optional<Notification>> GetNotification(std::string_view id) override;
  Result<std::optional<Notification>> LockNotification(std::string_view id) override;
  Result<std::vector<Notification>> LockDueNotifications(
      int64_t now_ms, std::span<const std::string> skip_endpoints, int limit) override;
  Status UpdateNotification(const Notification& notification) override;
  Result<std::vector<Notification>> ListNotifications(const NotificationQuery& query) override;
  Result<std::map<NotificationStatus, int64_t>> NotificationCounts() override;
  Status AddAttempt(const NotificationAttempt& attempt) override;
  Result<std::vector<NotificationAttempt>> Attempts(std::string_view notification_id,
                                                    int limit) override;

 private:
  // A whole column as a 64-bit integer: millisecond times have 13 digits, more than the
  // canonical-decimal rule of the wire formats allows.
  static bool ParseInt(const std::optional<std::string>& text, int64_t* value);
  // Schema version 3: the notifier's endpoint, notification and attempt tables.
  std::vector<std::string> NotificationTablesDdl() const;
  std::string EndpointColumns() const;
  std::string NotificationColumns() const;
  Result<std::vector<Endpoint>> Endpoints(const std::string& sql);
  Result<std::vector<Notification>> Notifications(const std::string& sql);
  Result<std::optional<Notification>> FindNotification(std::string_view id,
                                                       std::string_view lock_clause);
  // One message by id, with `lock_clause` ("" or " FOR UPDATE") after the query.
  Result<std::optional<Message>> FindOne(std::string_view id, std::string_view lock_clause);
  SqlMessageStore(odbc::OdbcOptions options, std::string prefix,
                  std::unique_ptr<odbc::LocalConnection> connection);
  bool maria() const { return options_.dialect == odbc::Dialect::kMariaDb; }
  // The connection, made again after it was lost.
  Result<odbc::LocalConnection*> Connection();
  // Runs a statement or a query; on failure rolls back (and forgets a lost connection).
  Result<int64_t> Execute(const std::string& sql);
  Result<std::vector<odbc::LocalConnection::Row>> Query(const std::string& sql);
  // Rolls back and passes `status` on, named as the store's.
  template <typename T>
  Result<T> Failed(Status status) {
    Rollback();
    return status.WithContext("message store");
  }
  std::string Bytes(std::string_view bytes) const;  // a hex literal of the dialect
  std::string HexOf(const std::string& column) const;  // the column read back as hex
  std::string Columns() const;
  Result<Message> Parse(const odbc::LocalConnection::Row& row) const;
  Result<std::vector<Message>> Messages(const std::string& sql);

  const odbc::OdbcOptions options_;
  const std::string prefix_;
  std::unique_ptr<odbc::LocalConnection> connection_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_SQL_MESSAGE_STORE_H_
