// A message of the reliable message service (xa-msgd; docs/messages.md), its states, and the
// one rule of each transition: which state a producer's, consumer's, operator's or job's request
// moves a message to. The store keeps messages; the daemon applies these rules to them, so the
// HTTP handlers, the jobs and the tests decide the same thing by calling the same function.
//
// Thread safety: values and pure functions.

#ifndef XA_DAEMONS_MSGD_MESSAGE_H_
#define XA_DAEMONS_MSGD_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xa/status.h"

namespace xa::msg {

// Persisted by number (the store's `status` column): never renumber.
enum class MessageStatus : uint8_t {
  kPending = 1,  // pre-sent: stored, waiting for the producer's confirm (or the back-query)
  kReady = 2,    // confirmed: to be published to the consumer's queue
  kSent = 3,     // published (the broker confirmed it): waiting for the consumer's ack
  kDone = 4,     // acknowledged by the consumer: finished
  kParked = 5,   // pending, and the producer's back-query never answered: an operator decides
};
// "pending", "ready", "sent", "done", "parked".
std::string_view MessageStatusName(MessageStatus status) noexcept;
std::optional<MessageStatus> MessageStatusFromNumber(int64_t number) noexcept;
std::optional<MessageStatus> MessageStatusFromName(std::string_view name) noexcept;

// Sizes the store's columns hold (docs/messages.md, "The store").
inline constexpr size_t kMessageIdSize = 32;  // 16 random bytes as lower-case hex
// Whether `id` has the form of a message id (kMessageIdSize lower-case hex characters).
bool IsMessageId(std::string_view id) noexcept;
// A new message id: 16 bytes from getrandom(2), as lower-case hex. kIoError when it fails.
Result<std::string> NewMessageId();
// Whether `prefix` may prefix a store's table names (SQL) or keys (Redis):
// [a-z_][a-z0-9_]{0,30}.
bool IsTablePrefix(std::string_view prefix);
// What every store answers for an id that is not a message id, and for a page or batch limit
// outside 1..1000 (kInval, naming the fault).
Status MessageIdError(std::string_view id);
Status LimitError();
inline constexpr size_t kMaxProducerIdSize = 64;
inline constexpr size_t kMaxDataTypeSize = 128;
inline constexpr size_t kMaxQueueNameSize = 255;
inline constexpr size_t kMaxQueryUrlSize = 1024;
inline constexpr size_t kMaxErrorSize = 1024;

struct Message {
  std::string id;  // kMessageIdSize lower-case hex characters, chosen by the service
  std::string producer_id;
  std::string data_type;       // the producer's name for the kind of message ("payment.booked")
  std::string consumer_queue;  // the RabbitMQ queue it is delivered to
  std::string body;            // bytes; at most the service's max_body_bytes
  std::string query_url;       // the producer's back-query endpoint; "" for none
  MessageStatus status = MessageStatus::kPending;
  int32_t resend_count = 0;  // publications after the first
  int32_t check_count = 0;   // back-queries made
  bool dead = false;         // redeliveries exhausted (or an operator said so): not sent again
  // Milliseconds since the Unix epoch, by the daemon's clock (the Env clock).
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  // When a job next looks at it: the back-query (pending), the publication (ready), the
  // redelivery (sent). Meaningless for done and parked messages.
  int64_t next_attempt_ms = 0;
  std::string last_error;  // the last failure a job saw, at most kMaxErrorSize bytes; "" none
};

// One line of a message's history (the store's event table).
struct MessageEvent {
  std::string message_id;
  int64_t at_ms = 0;
  std::string kind;    // "pre-sent", "confirmed", "published", "back-query", "acked", ...
  std::string detail;  // at most kMaxErrorSize bytes; never a secret
};

// One operator action (the store's audit table): who asked for what on which message, and what
// came of it. Kept apart from the history, which a deletion removes with its message.
struct AuditEntry {
  int64_t seq = 0;  // assigned by the store, increasing
  int64_t at_ms = 0;
  std::string operator_name;  // the token's name (msgd_tokens.h), at most kMaxProducerIdSize
  std::string action;         // "confirm", "resend", "revive", "kill", "delete"
  std::string message_id;
  std::string result;         // RequestResultName: "changed", "already", "conflict", ...
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MESSAGE_H_
