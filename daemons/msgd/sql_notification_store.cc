// The notifier's part of the SQL store (notification_store.h): endpoints, notifications and
// attempts, written as sql_message_store.cc writes messages: every string as a hex literal, ids
// only after their check, nothing a request carries ever SQL text.

#include <algorithm>
#include <utility>

#include "daemons/msgd/sql_message_store.h"
#include "src/base/byte_text.h"

namespace xa::msg {
namespace {

std::string Num(int64_t value) { return std::to_string(value); }

std::string JoinSecrets(const std::vector<std::string>& secrets) {
  std::string joined;
  for (const std::string& secret : secrets) joined += (joined.empty() ? "" : " ") + secret;
  return joined;
}

std::vector<std::string> SplitSecrets(std::string_view joined) {
  std::vector<std::string> secrets;
  while (!joined.empty()) {
    size_t blank = joined.find(' ');
    secrets.emplace_back(joined.substr(0, blank));
    if (blank == std::string_view::npos) break;
    joined.remove_prefix(blank + 1);
  }
  return secrets;
}

std::optional<NotificationStatus> NotificationStatusFromNumber(int64_t number) {
  if (number < 1 || number > 3) return std::nullopt;
  return static_cast<NotificationStatus>(number);
}

}  // namespace

std::vector<std::string> SqlMessageStore::NotificationTablesDdl() const {
  const std::string& p = prefix_;
  const std::string bin = maria() ? "VARBINARY" : "BYTEA";
  auto sized = [&](size_t n) { return maria() ? bin + "(" + std::to_string(n) + ")" : bin; };
  const std::string engine = maria() ? " ENGINE=InnoDB" : "";
  std::vector<std::string> ddl = {
      "CREATE TABLE IF NOT EXISTS " + p + "endpoint (id " + sized(kMaxEndpointIdSize) +
          " NOT NULL PRIMARY KEY, url " + sized(kMaxEndpointUrlSize) + " NOT NULL, secrets " +
          sized(512) + " NOT NULL, ladder " + sized(1024) + " NOT NULL, success_body " +
          sized(kMaxSuccessBodySize) + " NULL, max_in_flight INT NOT NULL, enabled SMALLINT "
          "NOT NULL, disabled_reason " + sized(kMaxErrorSize) + " NOT NULL, created_ms BIGINT "
          "NOT NULL, updated_ms BIGINT NOT NULL)" + engine,
      "CREATE TABLE IF NOT EXISTS " + p + "notification (id CHAR(32) NOT NULL PRIMARY KEY, " +
          "endpoint_id " + sized(kMaxEndpointIdSize) + " NOT NULL, event_type " +
          sized(kMaxEventTypeSize) + " NOT NULL, body " + (maria() ? "LONGBLOB" : "BYTEA") +
          " NOT NULL, status SMALLINT NOT NULL, attempts INT NOT NULL, claims INT NOT NULL, "
          "created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, next_attempt_ms BIGINT NOT "
          "NULL, last_http_status INT NOT NULL, last_error " + sized(kMaxErrorSize) +
          " NOT NULL" +
          (maria() ? ", INDEX " + p + "notification_due (status, next_attempt_ms), INDEX " + p +
                         "notification_page (endpoint_id, created_ms, id))"
                   : ")") +
          engine,
      "CREATE TABLE IF NOT EXISTS " + p + "attempt (seq " +
          (maria() ? "BIGINT NOT NULL AUTO_INCREMENT" : "BIGINT GENERATED ALWAYS AS IDENTITY") +
          " PRIMARY KEY, notification_id CHAR(32) NOT NULL, number INT NOT NULL, started_ms "
          "BIGINT NOT NULL, latency_ms BIGINT NOT NULL, http_status INT NOT NULL, verdict " +
          sized(16) + " NOT NULL, excerpt " + sized(kMaxExcerptSize) + " NOT NULL, error " +
          sized(kMaxErrorSize) + " NOT NULL" +
          (maria() ? ", INDEX " + p + "attempt_notification (notification_id, seq))" : ")") +
          engine,
  };
  if (!maria()) {
    ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "notification_due ON " + p +
                  "notification (status, next_attempt_ms)");
    ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "notification_page ON " + p +
                  "notification (endpoint_id, created_ms, id)");
    ddl.push_back("CREATE INDEX IF NOT EXISTS " + p + "attempt_notification ON " + p +
                  "attempt (notification_id, seq)");
  }
  return ddl;
}

std::string SqlMessageStore::EndpointColumns() const {
  return HexOf("id") + ", " + HexOf("url") + ", " + HexOf("secrets") + ", " + HexOf("ladder") +
         ", " + HexOf("success_body") +
         ", max_in_flight, enabled, " + HexOf("disabled_reason") + ", created_ms, updated_ms";
}

Result<std::vector<Endpoint>> SqlMessageStore::Endpoints(const std::string& sql) {
  auto rows = Query(sql);
  if (!rows.ok()) return rows.status();
  std::vector<Endpoint> endpoints;
  for (const auto& row : *rows) {
    auto corrupt = [&](const std::string& what) {
      return Failed<std::vector<Endpoint>>(
          Status(Code::kCorruption, "an endpoint row's " + what + " cannot be read"));
    };
    Endpoint e;
    std::string secrets, ladder, success;
    int64_t in_flight = 0, enabled = 0;
    if (row.size() != 10) return corrupt("columns");
    std::string* texts[] = {&e.id, &e.url, &secrets, &ladder};
    for (size_t i = 0; i < 4; ++i) {
      if (!row[i] || !internal::ParseHex(*row[i], texts[i])) return corrupt("text");
    }
    if (row[4]) {
      if (!internal::ParseHex(*row[4], &success)) return corrupt("success_body");
      e.success_body = success;
    }
    if (!ParseInt(row[5], &in_flight) || !ParseInt(row[6], &enabled) || !row[7] ||
        !internal::ParseHex(*row[7], &e.disabled_reason) || !ParseInt(row[8], &e.created_ms) ||
        !ParseInt(row[9], &e.updated_ms)) {
      return corrupt("numbers");
    }
    Result<RetryLadder> parsed = ParseRetryLadder(ladder);
    if (!parsed.ok()) return corrupt("ladder");
    e.ladder = std::move(parsed).value();
    e.secrets = SplitSecrets(secrets);
    e.max_in_flight = static_cast<int>(in_flight);
    e.enabled = enabled != 0;
    endpoints.push_back(std::move(e));
  }
  return endpoints;
}

Status SqlMessageStore::PutEndpoint(const Endpoint& e) {
  if (std::string error = EndpointFieldsError(e); !error.empty()) {
    return Status(Code::kInval, "endpoint: " + error);
  }
  const std::string success = e.success_body ? Bytes(*e.success_body) : "NULL";
  const std::string values =
      Bytes(e.id) + ", " + Bytes(e.url) + ", " + Bytes(JoinSecrets(e.secrets)) + ", " +
      Bytes(FormatRetryLadder(e.ladder)) + ", " + success + ", " + Num(e.max_in_flight) + ", " +
      (e.enabled ? "1" : "0") + ", " + Bytes(e.disabled_reason) + ", " + Num(e.created_ms) +
      ", " + Num(e.updated_ms);
  const std::string set = "url = " + Bytes(e.url) + ", secrets = " +
                          Bytes(JoinSecrets(e.secrets)) + ", ladder = " +
                          Bytes(FormatRetryLadder(e.ladder)) + ", success_body = " + success +
                          ", max_in_flight = " + Num(e.max_in_flight) + ", enabled = " +
                          (e.enabled ? "1" : "0") + ", disabled_reason = " +
                          Bytes(e.disabled_reason) + ", updated_ms = " + Num(e.updated_ms);
  return Execute("INSERT INTO " + prefix_ +
                 "endpoint (id, url, secrets, ladder, success_body, max_in_flight, enabled, "
                 "disabled_reason, created_ms, updated_ms) VALUES (" + values + ")" +
                 (maria() ? " ON DUPLICATE KEY UPDATE " : " ON CONFLICT (id) DO UPDATE SET ") +
                 set)
      .status();
}

Result<std::optional<Endpoint>> SqlMessageStore::GetEndpoint(std::string_view id) {
  if (!IsEndpointId(id)) return Status(Code::kInval, "an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  auto found = Endpoints("SELECT " + EndpointColumns() + " FROM " + prefix_ +
                         "endpoint WHERE id = " + Bytes(id));
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<Endpoint>();
  return std::optional<Endpoint>(std::move(found->front()));
}

Result<std::vector<Endpoint>> SqlMessageStore::ListEndpoints(std::string_view after_id,
                                                             int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  if (!after_id.empty() && !IsEndpointId(after_id)) {
    return Status(Code::kInval, "after_id: an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  }
  return Endpoints("SELECT " + EndpointColumns() + " FROM " + prefix_ + "endpoint WHERE id > " +
                   Bytes(after_id) + " ORDER BY id LIMIT " + Num(limit));
}

std::string SqlMessageStore::NotificationColumns() const {
  return "id, " + HexOf("endpoint_id") + ", " + HexOf("event_type") + ", " + HexOf("body") +
         ", status, attempts, claims, created_ms, updated_ms, next_attempt_ms, "
         "last_http_status, " + HexOf("last_error");
}

Result<std::vector<Notification>> SqlMessageStore::Notifications(const std::string& sql) {
  auto rows = Query(sql);
  if (!rows.ok()) return rows.status();
  std::vector<Notification> notifications;
  for (const auto& row : *rows) {
    auto corrupt = [&](const std::string& what) {
      return Failed<std::vector<Notification>>(
          Status(Code::kCorruption, "a notification row's " + what + " cannot be read"));
    };
    if (row.size() != 12 || !row[0]) return corrupt("columns");
    Notification n;
    n.id = *row[0];
    std::string* texts[] = {&n.endpoint_id, &n.event_type, &n.body};
    for (size_t i = 0; i < 3; ++i) {
      if (!row[i + 1] || !internal::ParseHex(*row[i + 1], texts[i])) return corrupt("text");
    }
    int64_t status = 0, attempts = 0, claims = 0, last_status = 0;
    int64_t* numbers[] = {&status,       &attempts,     &claims, &n.created_ms,
                          &n.updated_ms, &n.next_attempt_ms, &last_status};
    for (size_t i = 0; i < 7; ++i) {
      if (!ParseInt(row[i + 4], numbers[i])) return corrupt("numbers");
    }
    std::optional<NotificationStatus> parsed = NotificationStatusFromNumber(status);
    if (!parsed) return corrupt("status");
    n.status = *parsed;
    n.attempts = static_cast<int32_t>(attempts);
    n.claims = static_cast<int32_t>(claims);
    n.last_http_status = static_cast<int32_t>(last_status);
    if (!row[11] || !internal::ParseHex(*row[11], &n.last_error)) return corrupt("last_error");
    notifications.push_back(std::move(n));
  }
  return notifications;
}

Status SqlMessageStore::InsertNotification(const Notification& n) {
  if (!IsMessageId(n.id)) return MessageIdError(n.id);
  if (!IsEndpointId(n.endpoint_id)) {
    return Status(Code::kInval, "an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  }
  if (n.event_type.size() > kMaxEventTypeSize) {
    return Status(Code::kInval, "event_type is longer than 128 bytes");
  }
  return Execute("INSERT INTO " + prefix_ +
                 "notification (id, endpoint_id, event_type, body, status, attempts, claims, "
                 "created_ms, updated_ms, next_attempt_ms, last_http_status, last_error) "
                 "VALUES ('" + n.id + "', " + Bytes(n.endpoint_id) + ", " + Bytes(n.event_type) +
                 ", " + Bytes(n.body) + ", " + Num(static_cast<int>(n.status)) + ", " +
                 Num(n.attempts) + ", " + Num(n.claims) + ", " + Num(n.created_ms) + ", " +
                 Num(n.updated_ms) + ", " + Num(n.next_attempt_ms) + ", " +
                 Num(n.last_http_status) + ", " +
                 Bytes(std::string_view(n.last_error).substr(0, kMaxErrorSize)) + ")")
      .status();
}

Result<std::optional<Notification>> SqlMessageStore::FindNotification(
    std::string_view id, std::string_view lock_clause) {
  if (!IsMessageId(id)) return MessageIdError(id);
  auto found = Notifications("SELECT " + NotificationColumns() + " FROM " + prefix_ +
                             "notification WHERE id = '" + std::string(id) + "'" +
                             std::string(lock_clause));
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<Notification>();
  return std::optional<Notification>(std::move(found->front()));
}

Result<std::optional<Notification>> SqlMessageStore::GetNotification(std::string_view id) {
  return FindNotification(id, "");
}

Result<std::optional<Notification>> SqlMessageStore::LockNotification(std::string_view id) {
  return FindNotification(id, " FOR UPDATE");
}

Result<std::vector<Notification>> SqlMessageStore::LockDueNotifications(
    int64_t now_ms, std::span<const std::string> skip_endpoints, int limit) {
  if (limit < 1 || limit > 1000) return LimitError();
  std::string skip;
  for (const std::string& endpoint : skip_endpoints) {
    if (!IsEndpointId(endpoint)) continue;  // no row has it
    skip += (skip.empty() ? "" : ", ") + Bytes(endpoint);
  }
  return Notifications("SELECT " + NotificationColumns() + " FROM " + prefix_ +
                       "notification WHERE status = " +
                       Num(static_cast<int>(NotificationStatus::kPending)) +
                       " AND next_attempt_ms <= " + Num(now_ms) +
                       (skip.empty() ? "" : " AND endpoint_id NOT IN (" + skip + ")") +
                       " ORDER BY next_attempt_ms LIMIT " + Num(limit) +
                       " FOR UPDATE SKIP LOCKED");
}

Status SqlMessageStore::UpdateNotification(const Notification& n) {
  if (!IsMessageId(n.id)) return MessageIdError(n.id);
  auto changed = Execute(
      "UPDATE " + prefix_ + "notification SET status = " + Num(static_cast<int>(n.status)) +
      ", attempts = " + Num(n.attempts) + ", claims = " + Num(n.claims) +
      ", updated_ms = " + Num(n.updated_ms) + ", next_attempt_ms = " + Num(n.next_attempt_ms) +
      ", last_http_status = " + Num(n.last_http_status) + ", last_error = " +
      Bytes(std::string_view(n.last_error).substr(0, kMaxErrorSize)) + " WHERE id = '" + n.id +
      "'");
  if (!changed.ok()) return changed.status();
  // MariaDB counts rows changed, not matched: an update that writes the same values is 0 there.
  if (*changed == 0) {
    auto found = FindNotification(n.id, "");
    if (!found.ok()) return found.status();
    if (!*found) return Status(Code::kNoTa, "notification store: notification " + n.id + " is gone");
  }
  return Status::Ok();
}

Result<std::vector<Notification>> SqlMessageStore::ListNotifications(
    const NotificationQuery& q) {
  if (q.limit < 1 || q.limit > 1000) return LimitError();
  if (!q.endpoint_id.empty() && !IsEndpointId(q.endpoint_id)) {
    return Status(Code::kInval, "an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  }
  if (!q.after_id.empty() && !IsMessageId(q.after_id)) return MessageIdError(q.after_id);
  const std::string after = Num(q.after_created_ms);
  return Notifications(
      "SELECT " + NotificationColumns() + " FROM " + prefix_ + "notification WHERE " +
      (q.endpoint_id.empty() ? std::string() : "endpoint_id = " + Bytes(q.endpoint_id) + " AND ") +
      "created_ms >= " + Num(q.from_ms) + " AND created_ms < " + Num(q.to_ms) +
      (q.status ? " AND status = " + Num(static_cast<int>(*q.status)) : std::string()) +
      " AND (created_ms > " + after + " OR (created_ms = " + after + " AND id > '" + q.after_id +
      "')) ORDER BY created_ms, id LIMIT " + Num(q.limit));
}

Result<std::map<NotificationStatus, int64_t>> SqlMessageStore::NotificationCounts() {
  auto rows = Query("SELECT status, COUNT(*) FROM " + prefix_ + "notification GROUP BY status");
  if (!rows.ok()) return rows.status();
  std::map<NotificationStatus, int64_t> counts;
  for (const auto& row : *rows) {
    int64_t status = 0, count = 0;
    if (row.size() != 2 || !ParseInt(row[0], &status) || !ParseInt(row[1], &count) ||
        !NotificationStatusFromNumber(status)) {
      return Failed<std::map<NotificationStatus, int64_t>>(
          Status(Code::kCorruption, "a notification count row cannot be read"));
    }
    counts[*NotificationStatusFromNumber(status)] = count;
  }
  return counts;
}

Status SqlMessageStore::AddAttempt(const NotificationAttempt& a) {
  if (!IsMessageId(a.notification_id)) return MessageIdError(a.notification_id);
  return Execute("INSERT INTO " + prefix_ +
                 "attempt (notification_id, number, started_ms, latency_ms, http_status, "
                 "verdict, excerpt, error) VALUES ('" + a.notification_id + "', " +
                 Num(a.number) + ", " + Num(a.started_ms) + ", " + Num(a.latency_ms) + ", " +
                 Num(a.http_status) + ", " + Bytes(std::string_view(a.verdict).substr(0, 16)) +
                 ", " + Bytes(std::string_view(a.excerpt).substr(0, kMaxExcerptSize)) + ", " +
                 Bytes(std::string_view(a.error).substr(0, kMaxErrorSize)) + ")")
      .status();
}

Result<std::vector<NotificationAttempt>> SqlMessageStore::Attempts(std::string_view id,
                                                                   int limit) {
  if (!IsMessageId(id)) return MessageIdError(id);
  if (limit < 1 || limit > 1000) return LimitError();
  auto rows = Query("SELECT number, started_ms, latency_ms, http_status, " + HexOf("verdict") +
                    ", " + HexOf("excerpt") + ", " + HexOf("error") + " FROM " + prefix_ +
                    "attempt WHERE notification_id = '" + std::string(id) +
                    "' ORDER BY seq DESC LIMIT " + Num(limit));
  if (!rows.ok()) return rows.status();
  std::vector<NotificationAttempt> attempts;
  for (auto it = rows->rbegin(); it != rows->rend(); ++it) {
    const auto& row = *it;
    NotificationAttempt a;
    a.notification_id = std::string(id);
    int64_t number = 0, status = 0;
    if (row.size() != 7 || !ParseInt(row[0], &number) || !ParseInt(row[1], &a.started_ms) ||
        !ParseInt(row[2], &a.latency_ms) || !ParseInt(row[3], &status) || !row[4] || !row[5] ||
        !row[6] || !internal::ParseHex(*row[4], &a.verdict) ||
        !internal::ParseHex(*row[5], &a.excerpt) || !internal::ParseHex(*row[6], &a.error)) {
      return Failed<std::vector<NotificationAttempt>>(
          Status(Code::kCorruption, "an attempt row cannot be read"));
    }
    a.number = static_cast<int32_t>(number);
    a.http_status = static_cast<int32_t>(status);
    attempts.push_back(std::move(a));
  }
  return attempts;
}

}  // namespace xa::msg
