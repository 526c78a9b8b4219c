#include "daemons/msgd/message_rules.h"

#include <algorithm>

namespace xa::msg {
namespace {

int64_t Millis(std::chrono::milliseconds duration) { return duration.count(); }

Transition Changed(Message after, std::string event) {
  return Transition{RequestResult::kChanged, std::move(after), std::move(event)};
}
Transition Deleted(std::string event) {
  return Transition{RequestResult::kChanged, std::nullopt, std::move(event)};
}
Transition Result(RequestResult result) { return Transition{result, std::nullopt, ""}; }

// Due for publication now, alive again.
// Ready, so that the delivery job publishes it now as a first publication: a due `sent`
// message means an ack timed out, and one at its last redelivery would die unpublished.
Message DueForPublication(Message message, int64_t now_ms) {
  message.status = MessageStatus::kReady;
  message.dead = false;
  message.next_attempt_ms = now_ms;
  message.updated_ms = now_ms;
  message.last_error.clear();
  return message;
}

std::string Truncated(std::string_view text) {
  return std::string(text.substr(0, kMaxErrorSize));
}

bool PrintableAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// "http(s)://host[:port]/path...": the forms the back-query's HTTP client accepts.
bool IsHttpUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  size_t slash = rest.find('/');
  return slash != std::string_view::npos && slash > 0 && PrintableAscii(url);
}

}  // namespace

std::string MessageTimingsError(const MessageTimings& timings) {
  auto positive = [](std::chrono::milliseconds d) { return d.count() > 0; };
  if (!positive(timings.confirm_timeout)) return "confirm_timeout must be positive";
  if (timings.check_ladder.empty() ||
      !std::all_of(timings.check_ladder.begin(), timings.check_ladder.end(), positive)) {
    return "check_ladder needs at least one step, each positive";
  }
  if (!positive(timings.ack_timeout)) return "ack_timeout must be positive";
  if (timings.redelivery_ladder.empty() ||
      !std::all_of(timings.redelivery_ladder.begin(), timings.redelivery_ladder.end(), positive)) {
    return "redelivery_ladder needs at least one step, each positive";
  }
  if (timings.max_redeliveries < 0) return "max_redeliveries must not be negative";
  if (!positive(timings.publish_retry)) return "publish_retry must be positive";
  return "";
}

std::string_view RequestResultName(RequestResult result) noexcept {
  switch (result) {
    case RequestResult::kChanged: return "changed";
    case RequestResult::kAlready: return "already";
    case RequestResult::kConflict: return "conflict";
    case RequestResult::kNotFound: return "not found";
    case RequestResult::kForbidden: return "forbidden";
  }
  return "?";
}

std::string_view BackQueryAnswerName(BackQueryAnswer answer) noexcept {
  switch (answer) {
    case BackQueryAnswer::kCommitted: return "committed";
    case BackQueryAnswer::kRolledBack: return "rolled back";
    case BackQueryAnswer::kUnknown: return "unknown";
  }
  return "?";
}

Transition Confirm(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  switch (current->status) {
    case MessageStatus::kPending:
    case MessageStatus::kParked: {
      Message after = DueForPublication(*current, now_ms);
      after.status = MessageStatus::kReady;
      return Changed(std::move(after), "confirmed");
    }
    case MessageStatus::kReady:
    case MessageStatus::kSent:
    case MessageStatus::kDone: return Result(RequestResult::kAlready);
  }
  return Result(RequestResult::kConflict);
}

Transition Cancel(const std::optional<Message>& current, int64_t /*now_ms*/) {
  if (!current) return Result(RequestResult::kAlready);
  if (current->status == MessageStatus::kPending || current->status == MessageStatus::kParked) {
    return Deleted("cancelled");
  }
  return Result(RequestResult::kConflict);
}

Transition Acknowledge(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  switch (current->status) {
    case MessageStatus::kReady:
    case MessageStatus::kSent: {
      Message after = *current;
      after.status = MessageStatus::kDone;
      after.dead = false;
      after.updated_ms = now_ms;
      after.last_error.clear();
      return Changed(std::move(after), "acknowledged");
    }
    case MessageStatus::kDone: return Result(RequestResult::kAlready);
    case MessageStatus::kPending:
    case MessageStatus::kParked: return Result(RequestResult::kConflict);
  }
  return Result(RequestResult::kConflict);
}

Transition AfterBackQuery(const Message& current, BackQueryAnswer answer, std::string_view error,
                          int64_t now_ms, const MessageTimings& timings) {
  Message after = current;
  after.check_count = current.check_count + 1;
  after.updated_ms = now_ms;
  switch (answer) {
    case BackQueryAnswer::kCommitted:
      after = DueForPublication(std::move(after), now_ms);
      after.status = MessageStatus::kReady;
      return Changed(std::move(after), "back-query: committed");
    case BackQueryAnswer::kRolledBack: return Deleted("back-query: rolled back");
    case BackQueryAnswer::kUnknown: break;
  }
  after.last_error = Truncated(error);
  size_t failures = static_cast<size_t>(after.check_count);
  if (failures > timings.check_ladder.size()) {
    after.status = MessageStatus::kParked;
    return Changed(std::move(after), "back-query: no answer, parked");
  }
  after.next_attempt_ms = now_ms + Millis(timings.check_ladder[failures - 1]);
  return Changed(std::move(after), "back-query: no answer");
}

DeliveryStep NextDeliveryStep(const Message& due, const MessageTimings& timings) {
  if (due.status == MessageStatus::kSent && due.resend_count >= timings.max_redeliveries) {
    return DeliveryStep::kDie;
  }
  return DeliveryStep::kPublish;
}

Transition AfterPublish(const Message& current, bool published, std::string_view error,
                        int64_t now_ms, const MessageTimings& timings) {
  Message after = current;
  after.updated_ms = now_ms;
  if (!published) {
    after.last_error = Truncated(error);
    after.next_attempt_ms = now_ms + Millis(timings.publish_retry);
    return Changed(std::move(after), "publish failed");
  }
  bool again = current.status == MessageStatus::kSent;
  if (again) ++after.resend_count;
  after.status = MessageStatus::kSent;
  after.last_error.clear();
  int64_t wait = Millis(timings.ack_timeout);
  if (after.resend_count > 0) {
    size_t step = std::min(static_cast<size_t>(after.resend_count) - 1,
                           timings.redelivery_ladder.size() - 1);
    wait = Millis(timings.redelivery_ladder[step]);
  }
  after.next_attempt_ms = now_ms + wait;
  return Changed(std::move(after), again ? "published again" : "published");
}

Transition AfterDeath(const Message& current, int64_t now_ms) {
  Message after = current;
  after.dead = true;
  after.updated_ms = now_ms;
  after.last_error = "no acknowledgement after " + std::to_string(current.resend_count + 1) +
                     " publications";
  return Changed(std::move(after), "dead: redeliveries exhausted");
}

Transition Resend(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  if (current->status == MessageStatus::kPending || current->status == MessageStatus::kParked) {
    return Result(RequestResult::kConflict);  // not confirmed: confirm it instead
  }
  return Changed(DueForPublication(*current, now_ms), "operator: resend");
}

Transition Revive(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  if (!current->dead) return Result(RequestResult::kConflict);
  Message after = DueForPublication(*current, now_ms);
  after.resend_count = 0;
  return Changed(std::move(after), "operator: revive");
}

Transition Kill(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  if (current->dead) return Result(RequestResult::kAlready);
  if (current->status == MessageStatus::kDone) return Result(RequestResult::kConflict);
  Message after = *current;
  after.dead = true;
  after.updated_ms = now_ms;
  after.last_error = "marked dead by an operator";
  return Changed(std::move(after), "operator: mark dead");
}

Transition OperatorDelete(const std::optional<Message>& current, int64_t now_ms) {
  if (!current) return Result(RequestResult::kNotFound);
  Transition cancel = Cancel(current, now_ms);
  if (cancel.result == RequestResult::kChanged) cancel.event = "operator: delete";
  return cancel;
}

std::string PreSendError(const Message& message, size_t max_body_bytes,
                         const std::vector<std::string>& allowed_query_prefixes) {
  if (message.producer_id.empty() || message.producer_id.size() > kMaxProducerIdSize ||
      !PrintableAscii(message.producer_id)) {
    return "producer_id must be 1 to " + std::to_string(kMaxProducerIdSize) +
           " printable ASCII characters without blanks";
  }
  if (message.data_type.empty() || message.data_type.size() > kMaxDataTypeSize ||
      !PrintableAscii(message.data_type)) {
    return "data_type must be 1 to " + std::to_string(kMaxDataTypeSize) +
           " printable ASCII characters without blanks";
  }
  if (message.consumer_queue.empty() || message.consumer_queue.size() > kMaxQueueNameSize ||
      !PrintableAscii(message.consumer_queue)) {
    return "queue must be 1 to " + std::to_string(kMaxQueueNameSize) +
           " printable ASCII characters without blanks";
  }
  if (message.body.size() > max_body_bytes) {
    return "body is " + std::to_string(message.body.size()) + " bytes; at most " +
           std::to_string(max_body_bytes) + " are accepted";
  }
  if (!message.query_url.empty()) {
    if (message.query_url.size() > kMaxQueryUrlSize || !IsHttpUrl(message.query_url)) {
      return "query_url must be http(s)://host[:port]/path, at most " +
             std::to_string(kMaxQueryUrlSize) + " printable ASCII characters";
    }
    if (!allowed_query_prefixes.empty() &&
        std::none_of(allowed_query_prefixes.begin(), allowed_query_prefixes.end(),
                     [&](const std::string& prefix) {
                       return message.query_url.starts_with(prefix);
                     })) {
      return "query_url is not under any of the service's allowed_query_prefixes";
    }
  }
  return "";
}

}  // namespace xa::msg
