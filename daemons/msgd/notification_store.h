// The notifier's part of the message store (docs/notifications.md, "The store"): endpoints,
// notifications and their attempts, in the same database and the same transaction as the
// messages. One object is one connection, used by one thread at a time; the transaction rules,
// the errors and the row leases are MessageStore's (message_store.h): every call runs in the
// current transaction, Commit() makes it durable, LockDue's rows stay locked until it ends.
//
// Thread safety: none; one thread at a time.

#ifndef XA_DAEMONS_MSGD_NOTIFICATION_STORE_H_
#define XA_DAEMONS_MSGD_NOTIFICATION_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/notification.h"
#include "xa/status.h"

namespace xa::msg {

// What a merchant's reconciliation asks for: one endpoint's notifications created in
// [from_ms, to_ms), in the order (created_ms, id), after the cursor. An operator's view may ask
// for every endpoint's (endpoint_id empty).
struct NotificationQuery {
  std::string endpoint_id;  // "" for every endpoint
  int64_t from_ms = 0;
  int64_t to_ms = INT64_MAX;
  std::optional<NotificationStatus> status;  // only these, when set
  int64_t after_created_ms = INT64_MIN;      // the cursor: the last row of the previous page
  std::string after_id;                      // "" on the first page
  int limit = 100;                           // 1..1000
};

class NotificationStore {
 public:
  virtual ~NotificationStore() = default;

  // Creates or replaces the endpoint of endpoint.id (every field as given).
  virtual Status PutEndpoint(const Endpoint& endpoint) = 0;
  virtual Result<std::optional<Endpoint>> GetEndpoint(std::string_view id) = 0;
  // Endpoints in id order after `after_id` ("" first), at most `limit` (1..1000).
  virtual Result<std::vector<Endpoint>> ListEndpoints(std::string_view after_id, int limit) = 0;

  // Stores a new notification. kDupId when its id exists.
  virtual Status InsertNotification(const Notification& notification) = 0;
  virtual Result<std::optional<Notification>> GetNotification(std::string_view id) = 0;
  // The notification of `id`, locked until the transaction ends; nullopt when there is none.
  virtual Result<std::optional<Notification>> LockNotification(std::string_view id) = 0;
  // Locks up to `limit` (1..1000) pending notifications due at `now_ms` whose endpoint is not
  // one of `skip_endpoints`, earliest due first, skipping rows another transaction holds.
  virtual Result<std::vector<Notification>> LockDueNotifications(
      int64_t now_ms, std::span<const std::string> skip_endpoints, int limit) = 0;
  // Writes every field but id, endpoint_id, event_type, body and created_ms over the row of its
  // id (locked by this transaction). kNoTa when the row is gone.
  virtual Status UpdateNotification(const Notification& notification) = 0;
  // A page of one endpoint's notifications (NotificationQuery).
  virtual Result<std::vector<Notification>> ListNotifications(const NotificationQuery& query) = 0;
  // How many notifications there are of each status.
  virtual Result<std::map<NotificationStatus, int64_t>> NotificationCounts() = 0;

  virtual Status AddAttempt(const NotificationAttempt& attempt) = 0;
  // The last `limit` (1..1000) attempts of a notification, oldest first.
  virtual Result<std::vector<NotificationAttempt>> Attempts(std::string_view notification_id,
                                                            int limit) = 0;

  virtual Status Commit() = 0;
  virtual void Rollback() = 0;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_NOTIFICATION_STORE_H_
