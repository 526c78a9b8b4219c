// xa::rabbitmq: publishing to RabbitMQ with publisher confirms, and consuming with manual
// acknowledgements, on rabbitmq-c (Debian's librabbitmq-dev): the reliable message service's
// delivery (docs/messages.md).
//
// Publishing: to the default exchange with the queue's name as routing key, `mandatory` (a
// message no queue takes comes back as basic.return instead of vanishing), persistent
// (delivery mode 2: it survives a broker restart in a durable queue), with the caller's message
// id as the AMQP message-id (consumers deduplicate by it). The channel is in confirm mode, and
// Publish() returns OK only once the broker acknowledged the message (basic.ack): from then on
// the broker has it durably. rabbitmq-c 0.11 has no helper to wait for confirms; Publish reads
// the ack, nack and return frames itself against its own delivery-tag counter.
//
// What a failure means to the caller: a Publish that failed or timed out may or may not have
// reached the queue. Treat the message as not sent and publish it again later: duplicates are
// possible, and consumers deduplicate by message id. After a lost connection or a timeout the
// object is broken(): make a new one.
//
// Consuming: basic.consume without auto-ack, basic.qos prefetch; a delivery stays the
// consumer's until Ack()ed; a consumer that goes away without acking has its deliveries
// requeued by the broker and delivered again (redelivered = true).
//
// Errors: Code::kInval for bad options or a bad queue name, kRmFail for a connection that could
// not be made or was lost (or a broker nack), kRmError for what the broker refused (an unroutable
// message, a login refused), kTimeout when no confirm came in time. Messages name the broker and
// the queue; never the password.
//
// Thread safety: none; one object per thread (rabbitmq-c connections are not thread-safe).

#ifndef XA_RABBITMQ_AMQP_CONNECTION_H_
#define XA_RABBITMQ_AMQP_CONNECTION_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xa/status.h"

namespace xa::rabbitmq {

struct AmqpOptions {
  std::string host = "127.0.0.1";
  int port = 5672;
  std::string vhost = "/";
  std::string user;
  std::string password;  // never logged, never in a message
  std::chrono::milliseconds connect_timeout{5000};
  // How long Publish waits for the broker's confirm (also the bound of every other call).
  std::chrono::milliseconds confirm_timeout{10000};
  int heartbeat_seconds = 30;
  size_t frame_max = 131072;
};

// Why `options` cannot be used, "" when they can.
std::string AmqpOptionsError(const AmqpOptions& options);

using AmqpHeaders = std::vector<std::pair<std::string, std::string>>;

class AmqpLink;

class AmqpPublisher {
 public:
  static Result<std::unique_ptr<AmqpPublisher>> Connect(const AmqpOptions& options);
  ~AmqpPublisher();
  AmqpPublisher(const AmqpPublisher&) = delete;
  AmqpPublisher& operator=(const AmqpPublisher&) = delete;

  // Declares `queue` durable (not exclusive, not auto-deleted); idempotent. Names: 1 to 255
  // bytes without control characters.
  Status DeclareQueue(std::string_view queue);
  // Publishes and waits for the broker's confirm (see the file comment).
  Status Publish(std::string_view queue, std::string_view message_id,
                 std::string_view content_type, std::string_view body,
                 const AmqpHeaders& headers = {});
  // Publishes every one of `batch`, then waits for the broker's confirms of all of them: one
  // wait for the batch instead of one a message (the broker acknowledges several at once). The
  // status of each, in order, means what Publish's would; the message ids of one batch must
  // differ (a returned, unroutable message is told apart by its id). After a lost connection or
  // a timeout, every publication not yet confirmed fails and the object is broken().
  struct Publication {
    std::string_view queue;
    std::string_view message_id;
    std::string_view content_type;
    std::string_view body;
    AmqpHeaders headers;
  };
  std::vector<Status> PublishBatch(const std::vector<Publication>& batch);
  bool broken() const;

 private:
  explicit AmqpPublisher(std::unique_ptr<AmqpLink> link);
  std::unique_ptr<AmqpLink> link_;
  uint64_t next_tag_ = 1;  // the delivery tag of the next publication on the channel
  std::chrono::milliseconds confirm_timeout_{10000};
};

struct AmqpDelivery {
  uint64_t delivery_tag = 0;
  std::string message_id;
  std::string content_type;
  std::string body;
  bool redelivered = false;
  AmqpHeaders headers;  // the string-valued headers
};

class AmqpConsumer {
 public:
  // Declares `queue` durable and consumes it with `prefetch` unacknowledged deliveries at most.
  static Result<std::unique_ptr<AmqpConsumer>> Connect(const AmqpOptions& options,
                                                       std::string_view queue,
                                                       uint16_t prefetch = 16);
  ~AmqpConsumer();
  AmqpConsumer(const AmqpConsumer&) = delete;
  AmqpConsumer& operator=(const AmqpConsumer&) = delete;

  // The next delivery; nullopt when none came within `timeout`.
  Result<std::optional<AmqpDelivery>> Next(std::chrono::milliseconds timeout);
  Status Ack(uint64_t delivery_tag);
  // Gives a delivery back: requeued (delivered again) or dropped.
  Status Reject(uint64_t delivery_tag, bool requeue);
  bool broken() const;

 private:
  explicit AmqpConsumer(std::unique_ptr<AmqpLink> link);
  std::unique_ptr<AmqpLink> link_;
};

}  // namespace xa::rabbitmq

#endif  // XA_RABBITMQ_AMQP_CONNECTION_H_
