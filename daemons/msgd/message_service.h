// The engine of xa-msgd (docs/messages.md): the producers', consumers' and operators' requests,
// and the two jobs, over a message store, a broker and the producers' back-query endpoints.
// The daemon's main() plugs the real ones in (the SQL store, RabbitMQ, HTTP); the unit tests
// plug fakes that fail on demand. Every decision is a rule of message_rules.h.
//
// Requests run on the caller's thread (an HTTP worker) with a store connection from a pool:
// each locks its message's row, applies its rule, writes the result and its history line, and
// commits before it answers, so an answer the producer got is durable.
//
// The delivery job publishes due ready messages, and due sent messages again (no ack came in
// time), on its own store connection and broker connection, holding the batch's row locks
// until it commits what it did: a daemon that dies mid-batch leaves the rows as they were, due
// again, and a message may then be published twice (consumers deduplicate by message id). A
// confirm wakes it at once.
//
// The status-confirmation job asks the producers about due pending messages. It does not hold
// locks across the HTTP calls: it first claims a batch (moves the rows' next attempt past the
// calls' longest duration, and commits), then asks, then locks each message again and applies
// the answer only if the message is still pending and unclaimed by another pass (its check
// count unchanged); a confirm or cancel that came meanwhile wins.
//
// Thread safety: requests from any thread; Start() and Stop() from one.

#ifndef XA_DAEMONS_MSGD_MESSAGE_SERVICE_H_
#define XA_DAEMONS_MSGD_MESSAGE_SERVICE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "daemons/msgd/message.h"
#include "daemons/msgd/message_rules.h"
#include "daemons/msgd/message_store.h"
#include "xa/env.h"
#include "xa/status.h"

namespace xa::msg {

// Publishes a message to its consumer queue and returns once the broker confirmed it (OK) or
// not (an error: it may or may not have reached the queue). One per thread.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual Status Publish(const Message& message) = 0;
  // Publishes each of `messages` (their ids differ), and the status of each, in order: a
  // publisher that can wait for several confirms at once overrides this (one wait for the
  // batch); by default, one Publish after another.
  virtual std::vector<Status> PublishBatch(const std::vector<Message>& messages) {
    std::vector<Status> results;
    for (const Message& message : messages) results.push_back(Publish(message));
    return results;
  }
  // Whether it can publish no more (a lost connection): the job makes a new one.
  virtual bool broken() const = 0;
};

// Asks a message's producer whether the business operation behind it committed. Thread-safe.
class BackQuerier {
 public:
  virtual ~BackQuerier() = default;
  struct Reply {
    BackQueryAnswer answer = BackQueryAnswer::kUnknown;
    std::string error;  // why the answer is kUnknown
  };
  virtual Reply Ask(const Message& message) = 0;
  // The longest an Ask may take: how long the job's claim on a message lasts.
  virtual std::chrono::milliseconds max_duration() const = 0;
};

using StoreFactory = std::function<Result<std::unique_ptr<MessageStore>>()>;
using PublisherFactory = std::function<Result<std::unique_ptr<Publisher>>()>;

struct ServiceOptions {
  MessageTimings timings;
  size_t max_body_bytes = 64 * 1024;
  std::vector<std::string> allowed_query_prefixes;  // empty: any http(s) URL
  int batch_size = 100;                             // messages a job's pass takes (1..1000)
  // How often the jobs look for due messages when nothing woke them.
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
  // After a pass failed (database or broker down), the wait before the next one.
  std::chrono::milliseconds failure_pause{std::chrono::seconds(1)};
  // Done messages are deleted (with their history) this long after their acknowledgement, by
  // the purge job, in batches of batch_size once a minute (at once again after a full batch);
  // 0 keeps them for ever. Keep it longer than consumers' dedupe rows are useful to look at.
  std::chrono::milliseconds done_retention{std::chrono::hours(24 * 7)};
};

// Why `options` cannot be used, "" when they can.
std::string ServiceOptionsError(const ServiceOptions& options);

// A request's outcome: what happened, and the message after it (nullopt when deleted or
// unknown).
struct RequestOutcome {
  RequestResult result = RequestResult::kAlready;
  std::optional<Message> message;
};

// The counters behind the metrics (monotonic).
struct ServiceCounters {
  std::atomic<uint64_t> pre_sent{0};
  std::atomic<uint64_t> confirmed{0};
  std::atomic<uint64_t> cancelled{0};
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> redelivered{0};
  std::atomic<uint64_t> publish_failures{0};
  std::atomic<uint64_t> died{0};
  std::atomic<uint64_t> back_query_committed{0};
  std::atomic<uint64_t> back_query_rolled_back{0};
  std::atomic<uint64_t> back_query_unknown{0};
  std::atomic<uint64_t> parked{0};
  std::atomic<uint64_t> job_failures{0};
  std::atomic<uint64_t> purged{0};
};

class MessageService {
 public:
  MessageService(ServiceOptions options, StoreFactory stores, PublisherFactory publishers,
                 std::shared_ptr<BackQuerier> back_querier, Clock* clock);
  ~MessageService();
  MessageService(const MessageService&) = delete;
  MessageService& operator=(const MessageService&) = delete;

  // Producer: stores a new pending message (`fields`: producer_id, data_type, consumer_queue,
  // body, query_url) and returns it with its id. kInval naming the field that cannot be stored.
  Result<Message> PreSend(Message fields);
  // `producer`: the calling producer, who may touch only its own messages (kForbidden
  // otherwise); empty for an operator.
  Result<RequestOutcome> Confirm(std::string_view id, std::string_view producer = {});
  Result<RequestOutcome> Cancel(std::string_view id, std::string_view producer = {});
  // Consumer.
  Result<RequestOutcome> Acknowledge(std::string_view id);
  // Operator: every request is written to the audit table with its result, in the transaction
  // of its change (`operator_name`: the caller's token name).
  Result<RequestOutcome> OperatorConfirm(std::string_view id, std::string_view operator_name);
  Result<RequestOutcome> Resend(std::string_view id, std::string_view operator_name);
  Result<RequestOutcome> Revive(std::string_view id, std::string_view operator_name);
  Result<RequestOutcome> Kill(std::string_view id, std::string_view operator_name);
  Result<RequestOutcome> Delete(std::string_view id, std::string_view operator_name);
  // The audit table, newest first (MessageStore::Audit).
  Result<std::vector<AuditEntry>> AuditLog(int64_t before_seq, int limit);
  Result<std::optional<Message>> Get(std::string_view id);
  Result<std::vector<MessageEvent>> History(std::string_view id, int limit);
  Result<std::vector<Message>> List(MessageStatus status, bool dead, int64_t after_updated_ms,
                                    std::string_view after_id, int limit);
  Result<std::map<MessageStatus, StatusCount>> Counts();

  // One pass of each job on the caller's thread (tests drive them with a fake clock): the
  // number of messages it handled.
  Result<int> RunDeliveryPass();
  Result<int> RunBackQueryPass();
  // Deletes done messages past their retention (ServiceOptions::done_retention), at most one
  // batch; a pass less than a minute after one that found less than a batch does nothing.
  Result<int> RunPurgePass();

  // Starts the jobs' threads; Stop() ends them (a pass in progress finishes first).
  void Start();
  void Stop();

  const ServiceCounters& counters() const noexcept { return counters_; }
  int64_t NowMs();

 private:
  class PooledStore;
  Result<PooledStore> Borrow();
  void Return(std::unique_ptr<MessageStore> store);
  // A message became deliverable: the delivery job runs now instead of after its pause.
  void WakeDelivery();
  // A producer's or an operator's confirm changed a message (committed): counts it and wakes
  // delivery, so both paths keep the same rule.
  void AfterConfirmed();
  struct OperatorAction {
    std::string_view operator_name;
    std::string_view action;
  };
  // Locks `id`, applies `rule`, writes the result (and, for an operator's request, the audit
  // entry, whatever the result); the outcome.
  Result<RequestOutcome> Apply(std::string_view id,
                               Transition (*rule)(const std::optional<Message>&, int64_t),
                               std::string_view producer = {},
                               const OperatorAction* audit = nullptr);
  // Writes a transition of `current` (locked by `store`'s transaction), without committing.
  Status Write(MessageStore& store, const std::string& id, const Transition& transition,
               int64_t now_ms);
  void RunJob(Result<int> (MessageService::*pass)(), const char* name, bool delivery);

  const ServiceOptions options_;
  const StoreFactory stores_;
  const PublisherFactory publishers_;
  const std::shared_ptr<BackQuerier> back_querier_;
  Clock* const clock_;
  ServiceCounters counters_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<MessageStore>> idle_stores_;

  // Owned by whichever thread runs the pass (one at a time per job).
  std::mutex delivery_mu_;
  std::unique_ptr<MessageStore> delivery_store_;
  std::unique_ptr<Publisher> publisher_;
  std::mutex back_query_mu_;
  std::unique_ptr<MessageStore> back_query_store_;
  std::mutex purge_mu_;
  std::unique_ptr<MessageStore> purge_store_;
  int64_t next_purge_ms_ = 0;  // guarded by purge_mu_

  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool delivery_woken_ = false;
  bool stopping_ = false;
  std::vector<std::thread> jobs_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MESSAGE_SERVICE_H_
