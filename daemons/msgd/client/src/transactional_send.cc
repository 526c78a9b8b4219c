#include "xa/msg/transactional_send.h"

#include <chrono>

#include "daemons/msgd/message.h"
#include "daemons/msgd/message_rules.h"
#include "daemons/msgd/sql_message_store.h"

namespace xa::msg {

Result<std::string> SendInTransaction(odbc::OdbcResourceManager& store,
                                      std::string_view table_prefix,
                                      const TransactionalMessage& message,
                                      size_t max_body_bytes) {
  if (!IsTablePrefix(table_prefix)) {
    return Status(Code::kInval, "the store's table prefix must be 1 to 31 of [a-z0-9_], "
                                "starting with a letter or '_' (xa-msgd's table_prefix)");
  }
  Message fields;
  fields.producer_id = message.producer_id;
  fields.data_type = message.data_type;
  fields.consumer_queue = message.queue;
  fields.body = message.body;
  // The same rules as a pre-send's; there is no query endpoint to check.
  if (std::string error = PreSendError(fields, max_body_bytes, {}); !error.empty()) {
    return Status(Code::kInval, "transactional send refused: " + error);
  }
  Result<std::string> id = NewMessageId();
  if (!id.ok()) return id.status();
  // The wall clock, as the daemon's Env clock in production: due at once.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  Message ready = std::move(fields);
  ready.id = *id;
  ready.status = MessageStatus::kReady;
  ready.created_ms = now;
  ready.updated_ms = now;
  ready.next_attempt_ms = now;
  const odbc::Dialect dialect = store.dialect();
  if (dialect != odbc::Dialect::kMariaDb && dialect != odbc::Dialect::kPostgres) {
    return Status(Code::kInval, "transactional send: the store's resource manager has no "
                                "dialect yet (connect it first)");
  }
  Result<int64_t> inserted = store.Execute(InsertMessageSql(dialect, table_prefix, ready));
  if (!inserted.ok()) return inserted.status().WithContext("storing the message");
  Result<int64_t> logged = store.Execute(
      InsertEventSql(dialect, table_prefix, {ready.id, now, "confirmed in a transaction", ""}));
  if (!logged.ok()) return logged.status().WithContext("storing the message's history");
  return ready.id;
}

}  // namespace xa::msg
