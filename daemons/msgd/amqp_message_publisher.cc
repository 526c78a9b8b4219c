#include "daemons/msgd/amqp_message_publisher.h"

#include <utility>

namespace xa::msg {

Result<std::unique_ptr<Publisher>> AmqpMessagePublisher::Connect(
    const rabbitmq::AmqpOptions& options) {
  Result<std::unique_ptr<rabbitmq::AmqpPublisher>> publisher =
      rabbitmq::AmqpPublisher::Connect(options);
  if (!publisher.ok()) return publisher.status();
  return std::unique_ptr<Publisher>(new AmqpMessagePublisher(std::move(publisher).value()));
}

Status AmqpMessagePublisher::Publish(const Message& message) {
  if (declared_.count(message.consumer_queue) == 0) {
    if (Status declared = publisher_->DeclareQueue(message.consumer_queue); !declared.ok()) {
      return declared;
    }
    declared_.insert(message.consumer_queue);
  }
  return publisher_->Publish(message.consumer_queue, message.id, "application/octet-stream",
                             message.body,
                             {{kDataTypeHeader, message.data_type},
                              {kProducerIdHeader, message.producer_id}});
}

}  // namespace xa::msg
