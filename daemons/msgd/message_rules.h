// The rules of the reliable message service (docs/messages.md, "States"): what each request and
// each job does to a message. Pure functions of the message as the store holds it (locked) and
// the time; the daemon writes back what they return. Keeping them here, apart from the store,
// the HTTP handlers and the jobs, means one rule decides each transition, and the unit tests
// walk every path without a database.
//
// Thread safety: values and pure functions.

#ifndef XA_DAEMONS_MSGD_MESSAGE_RULES_H_
#define XA_DAEMONS_MSGD_MESSAGE_RULES_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemons/msgd/message.h"

namespace xa::msg {

// The timings of the jobs (msgd_config.h sets them).
struct MessageTimings {
  // A pending message's first back-query comes this long after its pre-send.
  std::chrono::milliseconds confirm_timeout{std::chrono::seconds(30)};
  // Then the waits between back-queries that got no answer; after the last one the message is
  // parked for an operator. At least one step.
  std::vector<std::chrono::milliseconds> check_ladder{
      std::chrono::seconds(10), std::chrono::seconds(30), std::chrono::minutes(1),
      std::chrono::minutes(2), std::chrono::minutes(5), std::chrono::minutes(10)};
  // A sent message is published again when no ack came this long after its publication, then
  // after each step of redelivery_ladder (the last step repeats); once max_redeliveries
  // publications after the first found no ack, the message is dead.
  std::chrono::milliseconds ack_timeout{std::chrono::minutes(1)};
  std::vector<std::chrono::milliseconds> redelivery_ladder{
      std::chrono::minutes(1), std::chrono::minutes(2), std::chrono::minutes(5),
      std::chrono::minutes(10), std::chrono::minutes(30)};
  int32_t max_redeliveries = 5;
  // A publication that failed (broker down, no confirm) is tried again this long after.
  std::chrono::milliseconds publish_retry{std::chrono::seconds(1)};
};

// Why `timings` cannot be used, "" when they can.
std::string MessageTimingsError(const MessageTimings& timings);

// What a request did. The HTTP API answers by it (docs/messages.md, "API").
enum class RequestResult : uint8_t {
  kChanged,   // the message moved (or was deleted): write it back
  kAlready,   // the request had been carried out before: nothing to write, answer success
  kConflict,  // the message is in a state the request cannot apply to: answer 409
  kNotFound,  // no such message: answer 404
  kForbidden,  // the message is another producer's: answer 403
};
std::string_view RequestResultName(RequestResult result) noexcept;

// The message after a request, and what to record.
struct Transition {
  RequestResult result = RequestResult::kAlready;
  // The message to write back for kChanged; nullopt for kChanged means delete it.
  std::optional<Message> after;
  std::string event;  // the history line's kind for kChanged ("confirmed", ...)
};

// The producer confirms: its business operation committed. A pending (or parked) message
// becomes ready, due for publication at once. Ready, sent or done: already confirmed.
Transition Confirm(const std::optional<Message>& current, int64_t now_ms);
// The producer cancels: its business operation failed. A pending (or parked) message is
// deleted, never delivered. A confirmed message cannot be taken back (409); an unknown id is
// kAlready: a cancel that is retried after it succeeded finds nothing, and that is its success.
Transition Cancel(const std::optional<Message>& current, int64_t now_ms);
// The consumer acknowledges: it processed the message. Sent (or ready: the ack of a redelivery
// overtaken by the job) becomes done. Pending or parked: 409 (it was never delivered).
Transition Acknowledge(const std::optional<Message>& current, int64_t now_ms);

// The answer of a producer's back-query endpoint.
enum class BackQueryAnswer : uint8_t {
  kCommitted,   // the business operation committed: confirm
  kRolledBack,  // it did not, and never will: delete
  kUnknown,     // no usable answer (unreachable, timeout, anything else): ask again later
};
std::string_view BackQueryAnswerName(BackQueryAnswer answer) noexcept;

// The status-confirmation job's step for a due pending message: confirm it, delete it, or
// schedule the next back-query on the ladder (parked after the last). `error` is what went wrong
// with a kUnknown answer.
Transition AfterBackQuery(const Message& current, BackQueryAnswer answer, std::string_view error,
                          int64_t now_ms, const MessageTimings& timings);

// What the delivery job does with a due ready or sent message before publishing it.
enum class DeliveryStep : uint8_t {
  kPublish,  // publish it (first time, or again)
  kDie,      // its redeliveries are exhausted: mark it dead
};
DeliveryStep NextDeliveryStep(const Message& due, const MessageTimings& timings);

// The message after the delivery job published it (`published`: the broker confirmed it) or
// failed to (`error`), or after it marked it dead.
Transition AfterPublish(const Message& current, bool published, std::string_view error,
                        int64_t now_ms, const MessageTimings& timings);
Transition AfterDeath(const Message& current, int64_t now_ms);

// Operator actions. Resend: a sent, done or dead message is published again now (ready again,
// dead cleared, resend count kept: without an ack it dies at its next ack timeout if its
// redeliveries were used up). Revive: a dead message is published again now (ready) with its
// redeliveries counted from zero. Kill: any message not done becomes dead. Delete: a pending or parked one
// is deleted (as a cancel); others are 409. Confirm of a parked message is Confirm().
Transition Resend(const std::optional<Message>& current, int64_t now_ms);
Transition Revive(const std::optional<Message>& current, int64_t now_ms);
Transition Kill(const std::optional<Message>& current, int64_t now_ms);
Transition OperatorDelete(const std::optional<Message>& current, int64_t now_ms);

// Why the fields of a pre-send cannot be stored ("" when they can): sizes (message.h), a queue
// name RabbitMQ accepts (1..255 bytes, no control characters), a producer id and data type of
// printable ASCII, a query URL that is "" or http(s)://host[:port]/path and starts with one of
// `allowed_query_prefixes` (when that is not empty).
std::string PreSendError(const Message& message, size_t max_body_bytes,
                         const std::vector<std::string>& allowed_query_prefixes);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MESSAGE_RULES_H_
