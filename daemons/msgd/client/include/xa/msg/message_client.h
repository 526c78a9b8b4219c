// The C++ client of xa-msgd, the reliable message service (docs/messages.md).
//
// A producer:
//   xa::msg::ClientOptions options{"http://127.0.0.1:18700", token};
//   auto client = xa::msg::MessageClient::Make(options).value();
//   auto id = client->PreSend({"payment.booked", "accounting", body, query_url});
//   if (!id.ok()) return;                       // not stored: do not run the business operation
//   bool committed = RunBusinessOperation();    // its own local transaction
//   committed ? client->Confirm(*id) : client->Cancel(*id);
//   // A Confirm or Cancel that fails (or is never sent: the producer died) is settled by the
//   // service's back-query to query_url, which the producer answers from its own database.
//
// A consumer:
//   auto consumer = xa::msg::MessageConsumer::Connect(amqp, "accounting", *client).value();
//   while (auto delivery = consumer->Next(1s); delivery.ok()) {
//     if (!*delivery) continue;
//     // In the consumer's own local transaction: the dedupe row and the business work.
//     auto first = xa::msg::FirstDelivery(dbc, xa::odbc::Dialect::kPostgres, "accounting",
//                                         (*delivery)->id);
//     if (first.ok() && *first) Book(dbc, (*delivery)->body);
//     if (!first.ok() || !Commit(dbc)) { Rollback(dbc); continue; }   // redelivered later
//     consumer->Done(**delivery);       // acknowledges to the service, then to RabbitMQ
//   }
//
// Delivery is at least once: a message may arrive again (a redelivery after a lost ack, a
// publication repeated after a crash). FirstDelivery makes the effect exactly once: it writes
// the message id into the consumer's dedupe table inside the consumer's transaction (the
// participant barrier's table, xa/tcc_barrier.h, with the message id as global id, the
// consumer's name as branch id and the operation kAction), so the business work commits with
// the record that it was done, or neither does.
//
// Errors: Code::kInval for a request the service refused as malformed (the message names the
// field), kNoTa for an unknown id, kProto for a request the message's state refuses (a cancel
// after a confirm), kConfig for a token the service does not know or a role it refuses,
// kRmFail when the service could not be reached or answered 5xx (retry: every call but
// PreSend is safe to repeat).
//
// Thread safety: MessageClient is thread-safe; MessageConsumer is one thread's.

#ifndef XA_MSG_MESSAGE_CLIENT_H_
#define XA_MSG_MESSAGE_CLIENT_H_

#include <sql.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "xa/odbc/odbc_resource_manager.h"
#include "xa/rabbitmq/amqp_connection.h"
#include "xa/status.h"

namespace sql {
class Connection;
}

namespace xa::msg {

struct ClientOptions {
  std::string base_url;  // "http://host:port" of xa-msgd
  std::string token;     // the caller's token (a producer's, a consumer's); never logged
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
};

struct PreSendRequest {
  std::string data_type;  // "payment.booked"
  std::string queue;      // the consumer's RabbitMQ queue
  std::string body;       // UTF-8 text (JSON, typically)
  std::string query_url;  // the producer's back-query endpoint (docs/messages.md)
};

class MessageClient {
 public:
  static Result<std::unique_ptr<MessageClient>> Make(const ClientOptions& options);
  ~MessageClient();
  MessageClient(const MessageClient&) = delete;
  MessageClient& operator=(const MessageClient&) = delete;

  // Stores the message as pending; its id.
  Result<std::string> PreSend(const PreSendRequest& request);
  // OK when confirmed now or before.
  Status Confirm(std::string_view id);
  // Asynchronous confirm: queues the confirm for the client's own thread and returns at once,
  // so the producer's request does not wait a round trip to xa-msgd after its business
  // operation committed. The thread sends the confirms in order, each tried up to 5 times 200
  // ms apart (a 4xx answer is final). The trade-off: the producer learns nothing of the
  // outcome, and a confirm that never got through (xa-msgd down for a second or more, or the
  // producer gone with confirms still queued) leaves the message pending until its back-query
  // (confirm_timeout_ms later) finds the operation committed: later, never lost, provided the
  // query endpoint answers from the producer's database. Use it where delivery latency may
  // stretch now and then and the producer's own latency may not.
  void ConfirmAsync(std::string_view id);
  // Waits up to `timeout` until every ConfirmAsync so far was sent (or given up); true when
  // none is left queued. The destructor flushes for up to 5 s.
  bool FlushConfirms(std::chrono::milliseconds timeout);
  // Asynchronous confirms given up after their attempts (the back-query settles them).
  uint64_t confirms_given_up() const;
  // OK when cancelled now or before (or never stored); kProto once it was confirmed.
  Status Cancel(std::string_view id);
  // The consumer's acknowledgement: OK when done now or before.
  Status Acknowledge(std::string_view id);

  class Impl;

 private:
  explicit MessageClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A message as a consumer receives it from RabbitMQ.
struct Delivery {
  std::string id;  // the service's message id (the AMQP message-id)
  std::string data_type;
  std::string producer_id;
  std::string body;
  bool redelivered = false;  // RabbitMQ's flag: may have been seen before
  uint64_t delivery_tag = 0;
};

class MessageConsumer {
 public:
  // Consumes `queue` with manual acknowledgement; `acks` (which must outlive the consumer)
  // carries the acknowledgements to the service.
  static Result<std::unique_ptr<MessageConsumer>> Connect(const rabbitmq::AmqpOptions& amqp,
                                                          std::string_view queue,
                                                          MessageClient& acks,
                                                          uint16_t prefetch = 16);
  ~MessageConsumer();
  // The next message, nullopt when none came within `timeout`.
  Result<std::optional<Delivery>> Next(std::chrono::milliseconds timeout);
  // After the consumer's transaction committed: acknowledges to the service (which stops the
  // redeliveries), then to RabbitMQ. If the service cannot be reached the RabbitMQ delivery is
  // requeued and the error returned: the message comes again and FirstDelivery says false.
  Status Done(const Delivery& delivery);
  bool broken() const;

 private:
  MessageConsumer(std::unique_ptr<rabbitmq::AmqpConsumer> consumer, MessageClient& acks);
  std::unique_ptr<rabbitmq::AmqpConsumer> consumer_;
  MessageClient& acks_;
};

// Whether this is the first delivery of message `id` to `consumer` (1..64 bytes) whose
// transaction commits: true once, false for every later delivery. Call it inside the
// consumer's local transaction (autocommit off) and commit the business work with it. The
// table is the barrier's (xa/tcc_barrier.h; created by the drivers' CreateBarrierTable, purged
// by their PurgeBarrier after BarrierOptions::retention: keep that longer than the service's
// whole redelivery ladder).
Result<bool> FirstDelivery(SQLHDBC local_transaction, odbc::Dialect dialect,
                           std::string_view consumer, std::string_view id);
Result<bool> FirstDelivery(sql::Connection& local_transaction, std::string_view consumer,
                           std::string_view id);

}  // namespace xa::msg

#endif  // XA_MSG_MESSAGE_CLIENT_H_
