#include "xa/msg/message_client.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "src/base/escape.h"
#include "src/http/http_client.h"
#include "xa/mysql/tcc_barrier.h"
#include "xa/odbc/tcc_barrier.h"
#include "xa/tcc_barrier.h"

namespace xa::msg {
namespace {

using Json = nlohmann::json;

constexpr char kDataTypeHeader[] = "x-data-type";
constexpr char kProducerIdHeader[] = "x-producer-id";

// The service's answer as a Status: 2xx OK; otherwise the code its docs give, with the
// service's own words.
Status StatusOfReply(std::string_view call, const http::HttpReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return Status::Ok();
  std::string said;
  Json body = Json::parse(reply.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    said = body["error"].get<std::string>();
  }
  std::string what = std::string(call) + ": xa-msgd answered HTTP " +
                     std::to_string(reply.status) +
                     (said.empty() ? "" : ": " + internal::EscapeForMessage(said));
  switch (reply.status) {
    case 400:
    case 413: return Status(Code::kInval, what);
    case 401:
    case 403: return Status(Code::kConfig, what + " (check the token and its role)");
    case 404: return Status(Code::kNoTa, what);
    case 409: return Status(Code::kProto, what);
    default: return Status(Code::kRmFail, what + "; retry");
  }
}

Result<BarrierKey> DedupeKey(std::string_view consumer, std::string_view id) {
  BarrierKey key{std::string(id), std::string(consumer)};
  if (std::string error = BarrierKeyError(key); !error.empty()) {
    return Status(Code::kInval, "dedupe: " + error);
  }
  return key;
}

Result<bool> IsFirst(Result<BarrierVerdict> verdict) {
  if (!verdict.ok()) return verdict.status();
  return *verdict == BarrierVerdict::kRun;
}

}  // namespace

class MessageClient::Impl {
 public:
  // `once`: for pre-send, which is not repeated on its own; `idempotent`: for the rest, which
  // are made again on a fresh connection when a kept-alive one turned out closed.
  Impl(std::unique_ptr<http::HttpClient> once, std::unique_ptr<http::HttpClient> idempotent)
      : once_(std::move(once)), idempotent_(std::move(idempotent)) {}
  ~Impl() {
    FlushConfirms(std::chrono::seconds(5));
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (confirmer_.joinable()) confirmer_.join();
  }

  void ConfirmAsync(std::string_view id) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued_.emplace_back(id);
      if (!confirmer_.joinable()) confirmer_ = std::thread([this] { RunConfirms(); });
    }
    changed_.notify_all();
  }
  bool FlushConfirms(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [&] { return queued_.empty() && !sending_; });
  }
  uint64_t given_up() const { return given_up_.load(); }

  Result<Json> Call(std::string_view call, std::string_view path, const Json& request) {
    http::HttpClient& http = path == "/v1/messages/prepare" ? *once_ : *idempotent_;
    Result<http::HttpReply> reply =
        http.Post(path, "application/json", request.dump(-1, ' ', false,
                                                         Json::error_handler_t::replace));
    if (!reply.ok()) return reply.status().WithContext(call);
    if (Status status = StatusOfReply(call, *reply); !status.ok()) return status;
    Json body = Json::parse(reply->body, nullptr, false);
    if (!body.is_object()) {
      return Status(Code::kRmFail, std::string(call) + ": xa-msgd answered with no JSON object");
    }
    return body;
  }

 private:
  // The confirmer thread: each queued id in order, up to 5 attempts 200 ms apart; a refusal
  // (4xx: unknown id, cancelled, another producer's) is final.
  void RunConfirms() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      changed_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
      if (queued_.empty()) return;  // stopping, nothing left
      std::string id = std::move(queued_.front());
      queued_.pop_front();
      sending_ = true;
      lock.unlock();
      bool done = false;
      for (int attempt = 0; attempt < 5 && !done; ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        Result<Json> answer = Call("confirm", "/v1/messages/confirm", Json{{"id", id}});
        done = answer.ok() || answer.status().code() != Code::kRmFail;
      }
      if (!done) given_up_.fetch_add(1);
      lock.lock();
      sending_ = false;
      changed_.notify_all();
    }
  }

  std::unique_ptr<http::HttpClient> once_;
  std::unique_ptr<http::HttpClient> idempotent_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<std::string> queued_;  // guarded by mu_
  bool sending_ = false;            // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  std::atomic<uint64_t> given_up_{0};
  std::thread confirmer_;           // started by the first ConfirmAsync
};

MessageClient::MessageClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MessageClient::~MessageClient() = default;

Result<std::unique_ptr<MessageClient>> MessageClient::Make(const ClientOptions& options) {
  if (options.token.empty()) return Status(Code::kInval, "ClientOptions::token is required");
  http::HttpClientOptions http;
  http.base_url = options.base_url;
  http.connect_timeout = options.connect_timeout;
  http.request_timeout = options.request_timeout;
  http.max_response_bytes = 64 * 1024;
  http.headers.emplace_back("Authorization", "Bearer " + options.token);
  Result<std::unique_ptr<http::HttpClient>> once = http::HttpClient::Make(http);
  if (!once.ok()) return once.status();
  http.retry_idempotent_on_stale_connection = true;
  Result<std::unique_ptr<http::HttpClient>> idempotent = http::HttpClient::Make(http);
  if (!idempotent.ok()) return idempotent.status();
  return std::unique_ptr<MessageClient>(new MessageClient(
      std::make_unique<Impl>(std::move(once).value(), std::move(idempotent).value())));
}

Result<std::string> MessageClient::PreSend(const PreSendRequest& request) {
  Json body{{"data_type", request.data_type},
            {"queue", request.queue},
            {"body", request.body}};
  if (!request.query_url.empty()) body["query_url"] = request.query_url;
  Result<Json> answer = impl_->Call("pre-send", "/v1/messages/prepare", body);
  if (!answer.ok()) return answer.status();
  if (!answer->contains("id") || !(*answer)["id"].is_string()) {
    return Status(Code::kRmFail, "pre-send: xa-msgd's answer has no id");
  }
  return (*answer)["id"].get<std::string>();
}

Status MessageClient::Confirm(std::string_view id) {
  Result<Json> answer = impl_->Call("confirm", "/v1/messages/confirm", Json{{"id", id}});
  return answer.ok() ? Status::Ok() : answer.status();
}

void MessageClient::ConfirmAsync(std::string_view id) { impl_->ConfirmAsync(id); }

bool MessageClient::FlushConfirms(std::chrono::milliseconds timeout) {
  return impl_->FlushConfirms(timeout);
}

uint64_t MessageClient::confirms_given_up() const { return impl_->given_up(); }

Status MessageClient::Cancel(std::string_view id) {
  Result<Json> answer = impl_->Call("cancel", "/v1/messages/cancel", Json{{"id", id}});
  return answer.ok() ? Status::Ok() : answer.status();
}

Status MessageClient::Acknowledge(std::string_view id) {
  Result<Json> answer = impl_->Call("acknowledge", "/v1/messages/ack", Json{{"id", id}});
  return answer.ok() ? Status::Ok() : answer.status();
}

MessageConsumer::MessageConsumer(std::unique_ptr<rabbitmq::AmqpConsumer> consumer,
                                 MessageClient& acks)
    : consumer_(std::move(consumer)), acks_(acks) {}
MessageConsumer::~MessageConsumer() = default;

Result<std::unique_ptr<MessageConsumer>> MessageConsumer::Connect(
    const rabbitmq::AmqpOptions& amqp, std::string_view queue, MessageClient& acks,
    uint16_t prefetch) {
  Result<std::unique_ptr<rabbitmq::AmqpConsumer>> consumer =
      rabbitmq::AmqpConsumer::Connect(amqp, queue, prefetch);
  if (!consumer.ok()) return consumer.status();
  return std::unique_ptr<MessageConsumer>(
      new MessageConsumer(std::move(consumer).value(), acks));
}

Result<std::optional<Delivery>> MessageConsumer::Next(std::chrono::milliseconds timeout) {
  Result<std::optional<rabbitmq::AmqpDelivery>> next = consumer_->Next(timeout);
  if (!next.ok()) return next.status();
  if (!*next) return std::optional<Delivery>();
  rabbitmq::AmqpDelivery& amqp = **next;
  Delivery delivery;
  delivery.id = amqp.message_id;
  delivery.body = std::move(amqp.body);
  delivery.redelivered = amqp.redelivered;
  delivery.delivery_tag = amqp.delivery_tag;
  for (const auto& [name, value] : amqp.headers) {
    if (name == kDataTypeHeader) delivery.data_type = value;
    if (name == kProducerIdHeader) delivery.producer_id = value;
  }
  return std::optional<Delivery>(std::move(delivery));
}

Status MessageConsumer::Done(const Delivery& delivery) {
  Status acknowledged = acks_.Acknowledge(delivery.id);
  if (!acknowledged.ok()) {
    consumer_->Reject(delivery.delivery_tag, /*requeue=*/true).IgnoreError();
    return acknowledged;
  }
  return consumer_->Ack(delivery.delivery_tag);
}

bool MessageConsumer::broken() const { return consumer_->broken(); }

Result<bool> FirstDelivery(SQLHDBC local_transaction, odbc::Dialect dialect,
                           std::string_view consumer, std::string_view id) {
  Result<BarrierKey> key = DedupeKey(consumer, id);
  if (!key.ok()) return key.status();
  return IsFirst(odbc::EnterBarrier(local_transaction, dialect, *key, BarrierOp::kAction));
}

Result<bool> FirstDelivery(sql::Connection& local_transaction, std::string_view consumer,
                           std::string_view id) {
  Result<BarrierKey> key = DedupeKey(consumer, id);
  if (!key.ok()) return key.status();
  return IsFirst(mysql::EnterBarrier(local_transaction, *key, BarrierOp::kAction));
}

}  // namespace xa::msg
