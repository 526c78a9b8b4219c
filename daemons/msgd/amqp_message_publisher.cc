#include "daemons/msgd/amqp_message_publisher.h"

#include <utility>
#include <vector>

namespace xa::msg {

Result<std::unique_ptr<Publisher>> AmqpMessagePublisher::Connect(
    const rabbitmq::AmqpOptions& options) {
  Result<std::unique_ptr<rabbitmq::AmqpPublisher>> publisher =
      rabbitmq::AmqpPublisher::Connect(options);
  if (!publisher.ok()) return publisher.status();
  return std::unique_ptr<Publisher>(new AmqpMessagePublisher(std::move(publisher).value()));
}

Status AmqpMessagePublisher::Publish(const Message& message) {
  return PublishBatch({message}).front();
}

std::vector<Status> AmqpMessagePublisher::PublishBatch(const std::vector<Message>& messages) {
  std::vector<Status> results(messages.size());
  std::vector<rabbitmq::AmqpPublisher::Publication> batch;
  std::vector<size_t> index;  // batch entry -> message
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& message = messages[i];
    if (declared_.count(message.consumer_queue) == 0) {
      if (Status declared = publisher_->DeclareQueue(message.consumer_queue); !declared.ok()) {
        results[i] = declared;
        continue;
      }
      declared_.insert(message.consumer_queue);
    }
    batch.push_back({message.consumer_queue, message.id, "application/octet-stream",
                     message.body,
                     {{kDataTypeHeader, message.data_type},
                      {kProducerIdHeader, message.producer_id}}});
    index.push_back(i);
  }
  std::vector<Status> published = publisher_->PublishBatch(batch);
  for (size_t k = 0; k < published.size(); ++k) results[index[k]] = std::move(published[k]);
  return results;
}

}  // namespace xa::msg
