#include "daemons/msgd/sql_message_store.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <utility>

#include "daemons/msgd/message_rules.h"
#include "src/base/byte_text.h"
#include "src/base/escape.h"

namespace xa::msg {
namespace {

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool SqlMessageStore::ParseInt(const std::optional<std::string>& text, int64_t* value) {
  if (!text || text->empty()) return false;
  auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), *value);
  return error == std::errc() && end == text->data() + text->size();
}

const std::vector<std::string>& StoreTableNames() {
  static const std::vector<std::string> names = {"schema",   "message",      "event",  "audit",
                                                 "endpoint", "notification", "attempt"};
  return names;
}

std::string DropStoreTablesSql(std::string_view table_prefix) {
  std::string sql = "DROP TABLE IF EXISTS ";
  for (const std::string& name : StoreTableNames()) {
    sql += (name == "schema" ? "" : ", ") + std::string(table_prefix) + name;
  }
  return sql;
}

std::string BytesLiteral(odbc::Dialect dialect, std::string_view bytes) {
  std::string hex = internal::LowerHex(bytes);
  return dialect == odbc::Dialect::kMariaDb ? "X'" + hex + "'" : "decode('" + hex + "', 'hex')";
}

std::string InsertMessageSql(odbc::Dialect dialect, std::string_view table_prefix,
                             const Message& m) {
  auto bytes = [&](std::string_view value) { return BytesLiteral(dialect, value); };
  return "INSERT INTO " + std::string(table_prefix) +
         "message (id, producer_id, data_type, consumer_queue, body, query_url, status, "
         "resend_count, check_count, dead, created_ms, updated_ms, next_attempt_ms, "
         "last_error) VALUES ('" +
         m.id + "', " + bytes(m.producer_id) + ", " + bytes(m.data_type) + ", " +
         bytes(m.consumer_queue) + ", " + bytes(m.body) + ", " + bytes(m.query_url) + ", " +
         std::to_string(static_cast<int>(m.status)) + ", " + std::to_string(m.resend_count) +
         ", " + std::to_string(m.check_count) + ", " + (m.dead ? "1" : "0") + ", " +
         std::to_string(m.created_ms) + ", " + std::to_string(m.updated_ms) + ", " +
         std::to_string(m.next_attempt_ms) + ", " + bytes(m.last_error) + ")";
}

std::string InsertEventSql(odbc::Dialect dialect, std::string_view table_prefix,
                           const MessageEvent& event) {
  return "INSERT INTO " + std::string(table_prefix) +
         "event (message_id, at_ms, kind, detail) VALUES ('" + event.message_id + "', " +
         std::to_string(event.at_ms) + ", " +
         BytesLiteral(dialect, std::string_view(event.kind).substr(0, 64)) + ", " +
         BytesLiteral(dialect, std::string_view(event.detail).substr(0, kMaxErrorSize)) + ")";
}

SqlMessageStore::SqlMessageStore(odbc::OdbcOptions options, std::string prefix,
                                 std::unique_ptr<odbc::LocalConnection> connection)
    : options_(std::move(options)), prefix_(std::move(prefix)), connection_(std::move(connection)) {}

Result<std::unique_ptr<SqlMessageStore>> SqlMessageStore::Open(const odbc::OdbcOptions& options,
                                                               std::string table_prefix) {
  if (!IsTablePrefix(table_prefix)) {
    return Status(Code::kInval, "the store's table prefix must be 1 to 31 of [a-z0-9_], starting "
                                "with a letter or '_'");
  }
  auto connection = odbc::LocalConnection::Open(options);
  if (!connection.ok()) return connection.status().WithContext("message store");
  return std::unique_ptr<SqlMessageStore>(
      new SqlMessageStore(options, std::move(table_prefix), std::move(connection).value()));
}

Result<odbc::LocalConnection*> SqlMessageStore::Connection() {
  if (connection_ && !connection_->lost()) return connection_.get();
  connection_.reset();
  auto connection = odbc::LocalConnection::Open(options_);
  if (!connection.ok()) return connection.status().WithContext("message store");
  connection_ = std::move(connection).value();
  return connection_.get();
}

Result<int64_t> SqlMessageStore::Execute(const std::string& sql) {
  Result<odbc::LocalConnection*> connection = Connection();
  if (!connection.ok()) return connection.status();
  Result<int64_t> done = (*connection)->Execute(sql);
  if (!done.ok()) return Failed<int64_t>(done.status());
  return done;
}

Result<std::vector<odbc::LocalConnection::Row>> SqlMessageStore::Query(const std::string& sql) {
  Result<odbc::LocalConnection*> connection = Connection();
  if (!connection.ok()) return connection.status();
  auto rows = (*connection)->Query(sql);
  if (!rows.ok()) return Failed<std::vector<odbc::LocalConnection::Row>>(rows.status());
  return rows;
}

std::string SqlMessageStore::Bytes(std::string_view bytes) const {
  return BytesLiteral(options_.dialect, bytes);
}

std::string SqlMessageStore::HexOf(const std::string& column) const {
  return maria() ? "HEX(" + column + ")" : "encode(" + column + ", 'hex')";
}

std::string SqlMessageStore::Columns() const {
  return "id, " + HexOf("producer_id") + ", " + HexOf("data_type") + ", " +
         HexOf("consumer_queue") + ", " + HexOf("body") + ", " + HexOf("query_url") +
         ", status, resend_count, check_count, dead, created_ms, updated_ms, next_attempt_ms, " +
         HexOf("last_error");
}

Result<Message> SqlMessageStore::Parse(const odbc::LocalConnection::Row& row) const {
  auto corrupt = [](const std::string& what) {
    return Status(Code::kCorruption, "message store: a row's " + what + " cannot be read");
  };
  if (row.size() != 14 || !row[0]) return corrupt("columns");
  Message m;
  m.id = *row[0];
  std::string* texts[] = {&m.producer_id, &m.data_type, &m.consumer_queue, &m.body,
                          &m.query_url};
  for (size_t i = 0; i < 5; ++i) {
    if (!row[i + 1] || !internal::ParseHex(*row[i + 1], texts[i])) return corrupt("text");
  }
  int64_t status = 0, resend = 0, check = 0, dead = 0;
  int64_t* numbers[] = {&status, &resend, &check, &dead, &m.created_ms, &m.updated_ms,
                        &m.next_attempt_ms};
  for (size_t i = 0; i < 7; ++i) {
    if (!ParseInt(row[i + 6], numbers[i])) {
      return corrupt("number in column " + std::to_string(i + 7) + " ('" +
                     row[i + 6].value_or("NULL") + "')");
    }
  }
  std::optional<MessageStatus> parsed = MessageStatusFromNumber(status);
  if (!parsed) return corrupt("status");
  m.status = *parsed;
  m.resend_count = static_cast<int32_t>(resend);
  m.check_count = static_cast<int32_t>(check);
  m.dead = dead != 0;
  if (row[13] && !internal::ParseHex(*row[13], &m.last_error)) return corrupt("last_error");
  return m;
}

Result<std::vector<Message>> SqlMessageStore::Messages(const std::string& sql) {
  auto rows = Query(sql);
  if (!rows.ok()) return rows.status();
  std::vector<Message> messages;
  for (const auto& row : *rows) {
    Result<Message> message = Parse(row);
    if (!message.ok()) return Failed<std::vector<Message>>(message.status());
    messages.push_back(std::move(message).value());
  }
  return messages;
}

Result<int> SqlMessageStore::SchemaVersion() {
  auto rows = Query("SELECT COALESCE(MAX(version), 0) FROM " + prefix_ + "schema");
  if (!rows.ok()) return rows.status();
  int64_t version = 0;
  if (rows->empty() || !ParseInt((*rows)[0][0], &version)) {
    return Failed<int>(Status(Code::kCorruption, "the schema table's version cannot be read"));
  }
  return static_cast<int>(version);
}

Status SqlMessageStore::Migrate() {
  const std::string p = prefix_;
  // Several daemons may start at once: one migrates, the others wait for it and then find the
  // work done. The lock comes first, before even the schema table is created: PostgreSQL's
  // CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (the loser fails on the
  // catalog's unique index). PostgreSQL: a transaction-scoped advisory lock, the whole migration
  // one transaction (its DDL is transactional); MariaDB, whose DDL commits by itself: a named
  // lock held across the statements.
  const std::string lock_name = "'xa-msgd-migrate-" + p + "'";
  if (maria()) {
    auto locked = Query("SELECT GET_LOCK(" + lock_name + ", 60)");
    if (!locked.ok()) return locked.status();
    if (locked->empty() || !(*locked)[0][0] || *(*locked)[0][0] != "1") {
      return Failed<int>(Status(Code::kRbTimeout, "another daemon has been migrating the store "
                                                  "for 60 s; try again"))
          .status();
    }
  } else {
    XA_RETURN_IF_ERROR(Query("SELECT pg_advisory_xact_lock(hashtext(" + lock_name + "))").status());
  }
  Status created = Execute("CREATE TABLE IF NOT EXISTS " + p +
                           "schema (version INT PRIMARY KEY, applied_ms BIGINT NOT NULL)" +
                           (maria() ? " ENGINE=InnoDB" : ""))
                       .status();
  if (!created.ok()) {
    if (maria()) {
      (void)Query("SELECT RELEASE_LOCK(" + lock_name + ")");
      Rollback();
    }
    return created;
  }
  auto migrate = [&]() -> Status {
    Result<int> version = SchemaVersion();
    if (!version.ok()) return version.status();
    if (*version > kStoreSchemaVersion) {
      return Status(Code::kConfig,
                    "the store's tables are at schema version " + std::to_string(*version) +
                        ", newer than this xa-msgd knows (" +
                        std::to_string(kStoreSchemaVersion) + "): run a newer xa-msgd");
    }
    const std::string bin = maria() ? "VARBINARY" : "BYTEA";
    auto sized = [&](size_t n) { return maria() ? bin + "(" + std::to_string(n) + ")" : bin; };
    std::vector<std::string> ddl = {
        "CREATE TABLE IF NOT EXISTS " + p + "message (id CHAR(32) NOT NULL PRIMARY KEY, " +
            "producer_id " + sized(kMaxProducerIdSize) + " NOT NULL, data_type " +
            sized(kMaxDataTypeSize) + " NOT NULL, consumer_queue " + sized(kMaxQueueNameSize) +
            " NOT NULL, body " + (maria() ? "LONGBLOB" : "BYTEA") + " NOT NULL, query_url " +
            sized(kMaxQueryUrlSize) + " NOT NULL, status SMALLINT NOT NULL, resend_count INT "
            "NOT NULL, check_count INT NOT NULL, dead SMALLINT NOT NULL, created_ms BIGINT NOT "
            "NULL, updated_ms BIGINT NOT NULL, next_attempt_ms BIGINT NOT NULL, last_error " +
            sized(kMaxErrorSize) + " NOT NULL" +
            (maria() ? ", INDEX " + p + "message_due (status, dead, next_attempt_ms), INDEX " + p +
                           "message_page (status, dead, updated_ms, id)) ENGINE=InnoDB"
                     : ")"),
        "CREATE TABLE IF NOT EXISTS " + p + "event (seq " +
            (maria() ? "BIGINT NOT NULL AUTO_INCREMENT" : "BIGINT GENERATED ALWAYS AS IDENTITY") +
            " PRIMARY KEY, message_id CHAR(32) NOT NULL, at_ms BIGINT NOT NULL, kind " + sized(64) +
            " NOT NULL, detail " + sized(kMaxErrorSize) + " NOT NULL" +
            (maria() ? ", INDEX " + p + "event_message (message_id, seq)) ENGINE=InnoDB" : ")"),
    };
    if (!maria()) {
      ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "message_due ON " + p +
                    "message (status, dead, next_attempt_ms)");
      ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "message_page ON " + p +
                    "message (status, dead, updated_ms, id)");
      ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "event_message ON " + p +
                    "event (message_id, seq)");
    }
    // Version 2: the operators' audit table.
    std::vector<std::string> audit_ddl = {
        "CREATE TABLE IF NOT EXISTS " + p + "audit (seq " +
            (maria() ? "BIGINT NOT NULL AUTO_INCREMENT" : "BIGINT GENERATED ALWAYS AS IDENTITY") +
            " PRIMARY KEY, at_ms BIGINT NOT NULL, operator_name " + sized(kMaxProducerIdSize) +
            " NOT NULL, action " + sized(16) + " NOT NULL, message_id CHAR(32) NOT NULL, " +
            "result " + sized(16) + " NOT NULL" + (maria() ? ") ENGINE=InnoDB" : ")"),
    };
    auto apply = [&](int to, const std::vector<std::string>& statements) -> Status {
      for (const std::string& sql : statements) XA_RETURN_IF_ERROR(Execute(sql).status());
      return Execute("INSERT INTO " + p + "schema (version, applied_ms) VALUES (" +
                     std::to_string(to) + ", " + std::to_string(WallMs()) + ")")
          .status();
    };
    if (*version < 1) XA_RETURN_IF_ERROR(apply(1, ddl));
    if (*version < 2) XA_RETURN_IF_ERROR(apply(2, audit_ddl));
    if (*version < 3) XA_RETURN_IF_ERROR(apply(3, NotificationTablesDdl()));
    return Status::Ok();
  };
  Status migrated = migrate();
  if (migrated.ok()) migrated = Commit();
  if (!migrated.ok()) Rollback();
  if (maria()) {
    (void)Query("SELECT RELEASE_LOCK(" + lock_name + ")");
    Rollback();
  }
  return migrated;
}

Status SqlMessageStore::Insert(const Message& m) {
  if (!IsMessageId(m.id)) return MessageIdError(m.id);
  return Execute(InsertMessageSql(options_.dialect, prefix_, m)).status();
}

Result<std::optional<Message>> SqlMessageStore::LockOne(std::string_view id) {
  return FindOne(id, " FOR UPDATE");
}

Result<std::optional<Message>> SqlMessageStore::Get(std::string_view id) {
  return FindOne(id, "");
}

Result<std::optional<Message>> SqlMessageStore::FindOne(std::string_view id,
                                                        std::string_view lock_clause) {
  if (!IsMessageId(id)) return MessageIdError(id);
  auto found = Messages("SELECT " + Columns() + " FROM " + prefix_ + "message WHERE id = '" +
                        std::string(id) + "'" + std::string(lock_clause));
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<Message>();
  return std::optional<Message>(std::move(found->front()));
}

Result<std::vector<Message>> SqlMessageStore::LockDue(std::span<const MessageStatus> statuses,
                                                      int64_t now_ms, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  if (statuses.empty()) return std::vector<Message>();
  std::string in;
  for (MessageStatus status : statuses) {
    in += (in.empty() ? "" : ", ") + std::to_string(static_cast<int>(status));
  }
  return Messages("SELECT " + Columns() + " FROM " + prefix_ + "message WHERE status IN (" + in +
                  ") AND dead = 0 AND next_attempt_ms <= " + std::to_string(now_ms) +
                  " ORDER BY next_attempt_ms LIMIT " + std::to_string(limit) +
                  " FOR UPDATE SKIP LOCKED");
}

Status SqlMessageStore::Update(const Message& m) {
  if (!IsMessageId(m.id)) return MessageIdError(m.id);
  auto changed = Execute(
      "UPDATE " + prefix_ + "message SET producer_id = " + Bytes(m.producer_id) +
      ", data_type = " + Bytes(m.data_type) + ", consumer_queue = " + Bytes(m.consumer_queue) +
      ", body = " + Bytes(m.body) + ", query_url = " + Bytes(m.query_url) +
      ", status = " + std::to_string(static_cast<int>(m.status)) +
      ", resend_count = " + std::to_string(m.resend_count) +
      ", check_count = " + std::to_string(m.check_count) + ", dead = " + (m.dead ? "1" : "0") +
      ", updated_ms = " + std::to_string(m.updated_ms) +
      ", next_attempt_ms = " + std::to_string(m.next_attempt_ms) +
      ", last_error = " + Bytes(m.last_error) + " WHERE id = '" + m.id + "'");
  if (!changed.ok()) return changed.status();
  // MariaDB counts rows changed, not matched: an update that writes the same values is 0 there.
  if (*changed == 0) {
    auto exists = Query("SELECT COUNT(*) FROM " + prefix_ + "message WHERE id = '" + m.id + "'");
    if (!exists.ok()) return exists.status();
    if (exists->empty() || !(*exists)[0][0] || *(*exists)[0][0] == "0") {
      return Status(Code::kNoTa, "message store: message " + m.id + " is gone");
    }
  }
  return Status::Ok();
}

Result<bool> SqlMessageStore::Delete(std::string_view id) {
  if (!IsMessageId(id)) return MessageIdError(id);
  auto events = Execute("DELETE FROM " + prefix_ + "event WHERE message_id = '" + std::string(id) +
                        "'");
  if (!events.ok()) return events.status();
  auto deleted = Execute("DELETE FROM " + prefix_ + "message WHERE id = '" + std::string(id) + "'");
  if (!deleted.ok()) return deleted.status();
  return *deleted > 0;
}

Result<int> SqlMessageStore::PurgeDone(int64_t before_ms, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  auto rows = Query("SELECT id FROM " + prefix_ + "message WHERE status = " +
                    std::to_string(static_cast<int>(MessageStatus::kDone)) +
                    " AND dead = 0 AND updated_ms < " + std::to_string(before_ms) +
                    " ORDER BY updated_ms LIMIT " + std::to_string(limit) +
                    " FOR UPDATE SKIP LOCKED");
  if (!rows.ok()) return rows.status();
  std::string ids;
  for (const auto& row : *rows) {
    if (row.empty() || !row[0] || !IsMessageId(*row[0])) {
      return Failed<int>(Status(Code::kCorruption, "a message id cannot be read"));
    }
    ids += (ids.empty() ? "'" : ", '") + *row[0] + "'";
  }
  if (ids.empty()) return 0;
  auto events = Execute("DELETE FROM " + prefix_ + "event WHERE message_id IN (" + ids + ")");
  if (!events.ok()) return events.status();
  auto deleted = Execute("DELETE FROM " + prefix_ + "message WHERE id IN (" + ids + ")");
  if (!deleted.ok()) return deleted.status();
  return static_cast<int>(*deleted);
}

Status SqlMessageStore::AddEvent(const MessageEvent& event) {
  if (!IsMessageId(event.message_id)) return MessageIdError(event.message_id);
  return Execute(InsertEventSql(options_.dialect, prefix_, event)).status();
}

Status SqlMessageStore::AddAudit(const AuditEntry& entry) {
  if (!IsMessageId(entry.message_id)) return MessageIdError(entry.message_id);
  return Execute("INSERT INTO " + prefix_ +
                 "audit (at_ms, operator_name, action, message_id, result) VALUES (" +
                 std::to_string(entry.at_ms) + ", " +
                 Bytes(std::string_view(entry.operator_name).substr(0, kMaxProducerIdSize)) + ", " +
                 Bytes(std::string_view(entry.action).substr(0, 16)) + ", '" + entry.message_id +
                 "', " + Bytes(std::string_view(entry.result).substr(0, 16)) + ")")
      .status();
}

Result<std::vector<AuditEntry>> SqlMessageStore::Audit(int64_t before_seq, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  auto rows = Query("SELECT seq, at_ms, " + HexOf("operator_name") + ", " + HexOf("action") +
                    ", message_id, " + HexOf("result") + " FROM " + prefix_ +
                    "audit WHERE seq < " + std::to_string(before_seq) +
                    " ORDER BY seq DESC LIMIT " + std::to_string(limit));
  if (!rows.ok()) return rows.status();
  std::vector<AuditEntry> page;
  for (const auto& row : *rows) {
    AuditEntry entry;
    if (row.size() != 6 || !ParseInt(row[0], &entry.seq) || !ParseInt(row[1], &entry.at_ms) ||
        !row[2] || !row[3] || !row[4] || !row[5] ||
        !internal::ParseHex(*row[2], &entry.operator_name) ||
        !internal::ParseHex(*row[3], &entry.action) || !internal::ParseHex(*row[5], &entry.result)) {
      return Failed<std::vector<AuditEntry>>(
          Status(Code::kCorruption, "an audit row cannot be read"));
    }
    entry.message_id = *row[4];
    page.push_back(std::move(entry));
  }
  return page;
}

Result<std::vector<MessageEvent>> SqlMessageStore::Events(std::string_view id, int limit) {
  if (!IsMessageId(id)) return MessageIdError(id);
  if (limit < 1 || limit > 1000) return LimitError();
  auto rows = Query("SELECT at_ms, " + HexOf("kind") + ", " + HexOf("detail") + " FROM " +
                    prefix_ + "event WHERE message_id = '" + std::string(id) +
                    "' ORDER BY seq DESC LIMIT " + std::to_string(limit));
  if (!rows.ok()) return rows.status();
  std::vector<MessageEvent> events;
  for (auto it = rows->rbegin(); it != rows->rend(); ++it) {
    MessageEvent event;
    event.message_id = std::string(id);
    if (it->size() != 3 || !ParseInt((*it)[0], &event.at_ms) || !(*it)[1] || !(*it)[2] ||
        !internal::ParseHex(*(*it)[1], &event.kind) ||
        !internal::ParseHex(*(*it)[2], &event.detail)) {
      return Failed<std::vector<MessageEvent>>(
          Status(Code::kCorruption, "an event row cannot be read"));
    }
    events.push_back(std::move(event));
  }
  return events;
}

Result<std::vector<Message>> SqlMessageStore::List(MessageStatus status, bool dead,
                                                   int64_t after_updated_ms,
                                                   std::string_view after_id, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  if (!after_id.empty() && !IsMessageId(after_id)) return MessageIdError(after_id);
  const std::string after = std::to_string(after_updated_ms);
  return Messages("SELECT " + Columns() + " FROM " + prefix_ + "message WHERE status = " +
                  std::to_string(static_cast<int>(status)) + " AND dead = " + (dead ? "1" : "0") +
                  " AND (updated_ms > " + after + " OR (updated_ms = " + after + " AND id > '" +
                  std::string(after_id) + "')) ORDER BY updated_ms, id LIMIT " +
                  std::to_string(limit));
}

Result<std::map<MessageStatus, StatusCount>> SqlMessageStore::Counts() {
  auto rows = Query("SELECT status, dead, COUNT(*), MIN(updated_ms) FROM " + prefix_ +
                    "message GROUP BY status, dead");
  if (!rows.ok()) return rows.status();
  std::map<MessageStatus, StatusCount> counts;
  for (const auto& row : *rows) {
    int64_t status = 0, dead = 0, count = 0, oldest = 0;
    if (row.size() != 4 || !ParseInt(row[0], &status) || !ParseInt(row[1], &dead) ||
        !ParseInt(row[2], &count) || !ParseInt(row[3], &oldest) ||
        !MessageStatusFromNumber(status)) {
      return Failed<std::map<MessageStatus, StatusCount>>(
          Status(Code::kCorruption, "a count row cannot be read"));
    }
    StatusCount& c = counts[*MessageStatusFromNumber(status)];
    (dead != 0 ? c.dead : c.live) += count;
    if (!c.oldest_updated_ms || oldest < *c.oldest_updated_ms) c.oldest_updated_ms = oldest;
  }
  return counts;
}

Status SqlMessageStore::Commit() {
  if (!connection_ || connection_->lost()) {
    return Status(Code::kRmFail, "message store: the connection was lost; the transaction is "
                                 "gone");
  }
  Status committed = connection_->Commit();
  if (!committed.ok()) {
    Rollback();
    return committed.WithContext("message store");
  }
  return committed;
}

void SqlMessageStore::Rollback() {
  if (connection_ && !connection_->lost()) connection_->Rollback();
}

}  // namespace xa::msg
