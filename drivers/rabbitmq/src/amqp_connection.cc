#include "xa/rabbitmq/amqp_connection.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cstring>

#include "src/base/escape.h"

namespace xa::rabbitmq {
namespace {

constexpr amqp_channel_t kChannel = 1;

amqp_bytes_t Bytes(std::string_view text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  bytes.bytes = const_cast<char*>(text.data());
  return bytes;
}

std::string Text(amqp_bytes_t bytes) {
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

timeval TimevalOf(std::chrono::milliseconds duration) {
  if (duration.count() < 0) duration = std::chrono::milliseconds(0);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

std::string QueueError(std::string_view queue) {
  if (queue.empty() || queue.size() > 255) return "a queue name is 1 to 255 bytes";
  for (unsigned char c : queue) {
    if (c < 0x20 || c == 0x7f) return "a queue name has no control characters";
  }
  return "";
}

// What the broker said when it closed the channel or the connection, from a close method.
std::string CloseReason(const amqp_method_t& method) {
  if (method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(method.decoded);
    return "the broker closed the channel: " + std::to_string(close->reply_code) + " " +
           internal::EscapeForMessage(Text(close->reply_text));
  }
  if (method.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* close = static_cast<amqp_connection_close_t*>(method.decoded);
    return "the broker closed the connection: " + std::to_string(close->reply_code) + " " +
           internal::EscapeForMessage(Text(close->reply_text));
  }
  return "an unexpected method from the broker (" + std::to_string(method.id) + ")";
}

}  // namespace

// One connection with one channel open.
class AmqpLink {
 public:
  ~AmqpLink() {
    if (state_ == nullptr) return;
    if (!broken_) {
      amqp_channel_close(state_, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state_);
  }

  static Result<std::unique_ptr<AmqpLink>> Open(const AmqpOptions& options) {
    if (std::string error = AmqpOptionsError(options); !error.empty()) {
      return Status(Code::kInval, "AmqpOptions: " + error);
    }
    auto link = std::unique_ptr<AmqpLink>(new AmqpLink());
    link->where_ = "RabbitMQ at " + internal::EscapeForMessage(options.host) + ":" +
                   std::to_string(options.port);
    link->state_ = amqp_new_connection();
    if (link->state_ == nullptr) return Status(Code::kRmFail, "cannot allocate an AMQP connection");
    amqp_socket_t* socket = amqp_tcp_socket_new(link->state_);
    if (socket == nullptr) return link->Fail("cannot create a socket");
    timeval connect = TimevalOf(options.connect_timeout);
    int opened = amqp_socket_open_noblock(socket, options.host.c_str(), options.port, &connect);
    if (opened != AMQP_STATUS_OK) {
      return link->Fail(std::string("cannot connect: ") + amqp_error_string2(opened) +
                        "; is the broker running?");
    }
    timeval rpc = TimevalOf(options.confirm_timeout);
    amqp_set_handshake_timeout(link->state_, &rpc);
    amqp_set_rpc_timeout(link->state_, &rpc);
    amqp_rpc_reply_t login = amqp_login(
        link->state_, options.vhost.c_str(), 1, static_cast<int>(options.frame_max),
        options.heartbeat_seconds, AMQP_SASL_METHOD_PLAIN, options.user.c_str(),
        options.password.c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      return link->Fail("login as '" + internal::EscapeForMessage(options.user) + "' to vhost '" +
                        internal::EscapeForMessage(options.vhost) +
                        "' refused or failed: check the user, its password and its permissions");
    }
    amqp_channel_open(link->state_, kChannel);
    if (Status status = link->Check("opening a channel"); !status.ok()) return status;
    return link;
  }

  amqp_connection_state_t state() { return state_; }
  bool broken() const { return broken_; }
  const std::string& where() const { return where_; }

  // The status of the last RPC (queue.declare, basic.qos, ...): OK, or the error, which breaks
  // the link when the connection or the channel is gone.
  Status Check(const std::string& what) {
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
    switch (reply.reply_type) {
      case AMQP_RESPONSE_NORMAL: return Status::Ok();
      case AMQP_RESPONSE_SERVER_EXCEPTION:
        broken_ = true;  // a channel or connection close: nothing more on this link
        return Status(Code::kRmError, where_ + ": " + what + ": " + CloseReason(reply.reply));
      case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return Fail(what + ": " + amqp_error_string2(reply.library_error));
      default: return Fail(what + ": no reply");
    }
  }

  Status Fail(const std::string& what) {
    broken_ = true;
    return Status(Code::kRmFail, where_ + ": " + what);
  }

  Status Declare(std::string_view queue) {
    if (std::string error = QueueError(queue); !error.empty()) {
      return Status(Code::kInval, error);
    }
    if (broken_) return Fail("the connection was lost earlier; make a new one");
    amqp_queue_declare(state_, kChannel, Bytes(queue), /*passive=*/0, /*durable=*/1,
                       /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
    return Check("declaring queue '" + internal::EscapeForMessage(queue) + "'");
  }

 private:
  AmqpLink() = default;
  amqp_connection_state_t state_ = nullptr;
  bool broken_ = false;
  std::string where_;
};

std::string AmqpOptionsError(const AmqpOptions& options) {
  if (options.host.empty()) return "host is required";
  if (options.port < 1 || options.port > 65535) return "port must be 1 to 65535";
  if (options.vhost.empty()) return "vhost is required ('/' by default)";
  if (options.user.empty()) return "user is required";
  if (options.connect_timeout.count() <= 0 || options.confirm_timeout.count() <= 0) {
    return "timeouts must be positive";
  }
  if (options.heartbeat_seconds < 0 || options.heartbeat_seconds > 65535) {
    return "heartbeat_seconds must be 0 to 65535";
  }
  if (options.frame_max < 4096 || options.frame_max > (1u << 30)) {
    return "frame_max must be 4096 to 2^30";
  }
  return "";
}

AmqpPublisher::AmqpPublisher(std::unique_ptr<AmqpLink> link) : link_(std::move(link)) {}
AmqpPublisher::~AmqpPublisher() = default;

Result<std::unique_ptr<AmqpPublisher>> AmqpPublisher::Connect(const AmqpOptions& options) {
  auto link = AmqpLink::Open(options);
  if (!link.ok()) return link.status();
  amqp_confirm_select((*link)->state(), kChannel);
  if (Status status = (*link)->Check("switching the channel to confirm mode"); !status.ok()) {
    return status;
  }
  auto publisher = std::unique_ptr<AmqpPublisher>(new AmqpPublisher(std::move(link).value()));
  publisher->confirm_timeout_ = options.confirm_timeout;
  return publisher;
}

bool AmqpPublisher::broken() const { return link_->broken(); }

Status AmqpPublisher::DeclareQueue(std::string_view queue) { return link_->Declare(queue); }

Status AmqpPublisher::Publish(std::string_view queue, std::string_view message_id,
                              std::string_view content_type, std::string_view body,
                              const AmqpHeaders& headers) {
  return PublishBatch({Publication{queue, message_id, content_type, body, headers}}).front();
}

std::vector<Status> AmqpPublisher::PublishBatch(const std::vector<Publication>& batch) {
  std::vector<Status> results(batch.size());
  // Each publication's delivery tag once sent (0: not sent), and whether it came back
  // unroutable; `waiting` counts the sent ones not yet confirmed.
  std::vector<uint64_t> tags(batch.size(), 0);
  std::vector<bool> returned(batch.size(), false);
  size_t waiting = 0;
  auto queue_name = [](std::string_view queue) {
    return "'" + internal::EscapeForMessage(queue) + "'";
  };
  // Every publication sent and not yet confirmed ends as `status`.
  auto fail_waiting = [&](const Status& status) {
    for (size_t i = 0; i < batch.size(); ++i) {
      if (tags[i] != 0 && waiting > 0) {
        results[i] = status;
        tags[i] = 0;
      }
    }
    waiting = 0;
  };
  for (size_t i = 0; i < batch.size(); ++i) {
    const Publication& p = batch[i];
    if (std::string error = QueueError(p.queue); !error.empty()) {
      results[i] = Status(Code::kInval, error);
      continue;
    }
    if (link_->broken()) {
      results[i] = link_->Fail("the connection was lost earlier; make a new one");
      continue;
    }
    std::vector<amqp_table_entry_t> entries(p.headers.size());
    for (size_t h = 0; h < p.headers.size(); ++h) {
      entries[h].key = Bytes(p.headers[h].first);
      entries[h].value.kind = AMQP_FIELD_KIND_UTF8;
      entries[h].value.value.bytes = Bytes(p.headers[h].second);
    }
    amqp_basic_properties_t properties;
    std::memset(&properties, 0, sizeof properties);
    properties._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                        AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG;
    properties.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    properties.message_id = Bytes(p.message_id);
    properties.content_type = Bytes(p.content_type);
    properties.headers.num_entries = static_cast<int>(entries.size());
    properties.headers.entries = entries.empty() ? nullptr : entries.data();
    int sent = amqp_basic_publish(link_->state(), kChannel, amqp_empty_bytes, Bytes(p.queue),
                                  /*mandatory=*/1, /*immediate=*/0, &properties, Bytes(p.body));
    if (sent != AMQP_STATUS_OK) {
      Status lost = link_->Fail("publishing to queue " + queue_name(p.queue) + ": " +
                                amqp_error_string2(sent));
      results[i] = lost;
      fail_waiting(Status(lost.code(), lost.message() + "; an earlier publication of the batch "
                                                        "may or may not be queued"));
      continue;  // the link is broken: the rest fail above
    }
    tags[i] = next_tag_++;
    ++waiting;
  }

  const auto deadline = std::chrono::steady_clock::now() + confirm_timeout_;
  while (waiting > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    timeval wait = TimevalOf(left);
    amqp_frame_t frame;
    int got = amqp_simple_wait_frame_noblock(link_->state(), &frame, &wait);
    if (got == AMQP_STATUS_TIMEOUT) {
      // A late confirm would be taken for a later publication's: this link is done.
      link_->Fail("no confirm").IgnoreError();
      fail_waiting(Status(Code::kTimeout,
                          link_->where() + ": no confirm for a publication within " +
                              std::to_string(confirm_timeout_.count()) +
                              " ms: it may or may not be queued; publish it again"));
      break;
    }
    if (got != AMQP_STATUS_OK) {
      fail_waiting(link_->Fail(std::string("waiting for publisher confirms: ") +
                               amqp_error_string2(got) + "; it may or may not be queued"));
      break;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    const amqp_method_t& method = frame.payload.method;
    if (method.id == AMQP_BASIC_RETURN_METHOD) {
      // The content of the returned message follows: read it off the connection, and mark the
      // publication of its id.
      amqp_message_t message;
      amqp_rpc_reply_t read = amqp_read_message(link_->state(), frame.channel, &message, 0);
      if (read.reply_type != AMQP_RESPONSE_NORMAL) {
        fail_waiting(link_->Fail("reading a returned message"));
        break;
      }
      std::string_view id(static_cast<const char*>(message.properties.message_id.bytes),
                          message.properties.message_id.len);
      for (size_t i = 0; i < batch.size(); ++i) {
        if (tags[i] != 0 && !returned[i] && batch[i].message_id == id) {
          returned[i] = true;
          break;
        }
      }
      amqp_destroy_message(&message);
      continue;
    }
    if (method.id == AMQP_BASIC_ACK_METHOD || method.id == AMQP_BASIC_NACK_METHOD) {
      const bool ack = method.id == AMQP_BASIC_ACK_METHOD;
      const uint64_t confirmed =
          ack ? static_cast<amqp_basic_ack_t*>(method.decoded)->delivery_tag
              : static_cast<amqp_basic_nack_t*>(method.decoded)->delivery_tag;
      const bool multiple = ack ? static_cast<amqp_basic_ack_t*>(method.decoded)->multiple != 0
                                : static_cast<amqp_basic_nack_t*>(method.decoded)->multiple != 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (tags[i] == 0 || !(tags[i] == confirmed || (multiple && tags[i] < confirmed))) {
          continue;
        }
        const std::string queue = queue_name(batch[i].queue);
        if (!ack) {
          results[i] = Status(Code::kRmFail, link_->where() + ": the broker refused (nack) the "
                                                              "publication to queue " +
                                                 queue + "; publish it again");
        } else if (returned[i]) {
          results[i] = Status(Code::kRmError, link_->where() + ": no queue " + queue +
                                                  " took the message (unroutable): declare the "
                                                  "queue");
        } else {
          results[i] = Status::Ok();
        }
        tags[i] = 0;
        --waiting;
      }
      amqp_maybe_release_buffers(link_->state());
      continue;
    }
    if (method.id == AMQP_CHANNEL_CLOSE_METHOD || method.id == AMQP_CONNECTION_CLOSE_METHOD) {
      fail_waiting(link_->Fail(CloseReason(method)));
      break;
    }
  }
  return results;
}

AmqpConsumer::AmqpConsumer(std::unique_ptr<AmqpLink> link) : link_(std::move(link)) {}
AmqpConsumer::~AmqpConsumer() = default;

Result<std::unique_ptr<AmqpConsumer>> AmqpConsumer::Connect(const AmqpOptions& options,
                                                            std::string_view queue,
                                                            uint16_t prefetch) {
  auto link = AmqpLink::Open(options);
  if (!link.ok()) return link.status();
  if (Status declared = (*link)->Declare(queue); !declared.ok()) return declared;
  amqp_basic_qos((*link)->state(), kChannel, 0, prefetch, 0);
  if (Status status = (*link)->Check("setting the prefetch"); !status.ok()) return status;
  amqp_basic_consume((*link)->state(), kChannel, Bytes(queue), amqp_empty_bytes, /*no_local=*/0,
                     /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
  if (Status status = (*link)->Check("consuming queue '" + internal::EscapeForMessage(queue) + "'");
      !status.ok()) {
    return status;
  }
  return std::unique_ptr<AmqpConsumer>(new AmqpConsumer(std::move(link).value()));
}

bool AmqpConsumer::broken() const { return link_->broken(); }

Result<std::optional<AmqpDelivery>> AmqpConsumer::Next(std::chrono::milliseconds timeout) {
  if (link_->broken()) return link_->Fail("the connection was lost earlier; make a new one");
  amqp_maybe_release_buffers(link_->state());
  timeval wait = TimevalOf(timeout);
  amqp_envelope_t envelope;
  amqp_rpc_reply_t reply = amqp_consume_message(link_->state(), &envelope, &wait, 0);
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      reply.library_error == AMQP_STATUS_TIMEOUT) {
    return std::optional<AmqpDelivery>();
  }
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
      reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
    // A frame other than a delivery: a close means the link is gone; anything else is skipped.
    amqp_frame_t frame;
    timeval none = TimevalOf(std::chrono::milliseconds(0));
    int got = amqp_simple_wait_frame_noblock(link_->state(), &frame, &none);
    if (got == AMQP_STATUS_OK && frame.frame_type == AMQP_FRAME_METHOD &&
        (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
      return link_->Fail(CloseReason(frame.payload.method));
    }
    if (got != AMQP_STATUS_OK && got != AMQP_STATUS_TIMEOUT) {
      return link_->Fail(std::string("reading from the broker: ") + amqp_error_string2(got));
    }
    return std::optional<AmqpDelivery>();
  }
  if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
    return link_->Fail(reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                           ? std::string("receiving: ") + amqp_error_string2(reply.library_error)
                           : "receiving: " + CloseReason(reply.reply));
  }
  AmqpDelivery delivery;
  delivery.delivery_tag = envelope.delivery_tag;
  delivery.redelivered = envelope.redelivered != 0;
  const amqp_basic_properties_t& properties = envelope.message.properties;
  if (properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
    delivery.message_id = Text(properties.message_id);
  }
  if (properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) {
    delivery.content_type = Text(properties.content_type);
  }
  if (properties._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < properties.headers.num_entries; ++i) {
      const amqp_table_entry_t& entry = properties.headers.entries[i];
      if (entry.value.kind == AMQP_FIELD_KIND_UTF8 || entry.value.kind == AMQP_FIELD_KIND_BYTES) {
        delivery.headers.emplace_back(Text(entry.key), Text(entry.value.value.bytes));
      }
    }
  }
  delivery.body = Text(envelope.message.body);
  amqp_destroy_envelope(&envelope);
  return std::optional<AmqpDelivery>(std::move(delivery));
}

Status AmqpConsumer::Ack(uint64_t delivery_tag) {
  if (link_->broken()) return link_->Fail("the connection was lost earlier; make a new one");
  int sent = amqp_basic_ack(link_->state(), kChannel, delivery_tag, 0);
  if (sent != AMQP_STATUS_OK) {
    return link_->Fail(std::string("acknowledging: ") + amqp_error_string2(sent));
  }
  return Status::Ok();
}

Status AmqpConsumer::Reject(uint64_t delivery_tag, bool requeue) {
  if (link_->broken()) return link_->Fail("the connection was lost earlier; make a new one");
  int sent = amqp_basic_reject(link_->state(), kChannel, delivery_tag, requeue ? 1 : 0);
  if (sent != AMQP_STATUS_OK) {
    return link_->Fail(std::string("rejecting: ") + amqp_error_string2(sent));
  }
  return Status::Ok();
}

}  // namespace xa::rabbitmq
