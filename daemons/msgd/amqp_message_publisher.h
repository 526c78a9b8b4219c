// The delivery job's publisher on RabbitMQ (xa/rabbitmq/amqp_connection.h): each message goes
// to the default exchange with its consumer queue as routing key, persistent, mandatory, with
// the message id as the AMQP message-id (consumers deduplicate by it) and the headers
// x-data-type and x-producer-id; Publish returns once the broker confirmed it, PublishBatch
// once it confirmed the whole batch. Queues are declared durable the first time this publisher
// sends to them.
//
// Thread safety: none; one per thread (the delivery job's).

#ifndef XA_DAEMONS_MSGD_AMQP_MESSAGE_PUBLISHER_H_
#define XA_DAEMONS_MSGD_AMQP_MESSAGE_PUBLISHER_H_

#include <memory>
#include <set>
#include <string>

#include "daemons/msgd/message_service.h"
#include "xa/rabbitmq/amqp_connection.h"

namespace xa::msg {

inline constexpr char kDataTypeHeader[] = "x-data-type";
inline constexpr char kProducerIdHeader[] = "x-producer-id";

class AmqpMessagePublisher final : public Publisher {
 public:
  static Result<std::unique_ptr<Publisher>> Connect(const rabbitmq::AmqpOptions& options);
  Status Publish(const Message& message) override;
  // One wait for the broker's confirms of the whole batch.
  std::vector<Status> PublishBatch(const std::vector<Message>& messages) override;
  bool broken() const override { return publisher_->broken(); }

 private:
  explicit AmqpMessagePublisher(std::unique_ptr<rabbitmq::AmqpPublisher> publisher)
      : publisher_(std::move(publisher)) {}
  std::unique_ptr<rabbitmq::AmqpPublisher> publisher_;
  std::set<std::string> declared_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_AMQP_MESSAGE_PUBLISHER_H_
