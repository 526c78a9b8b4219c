#include "daemons/msgd/message_service.h"

#include <sys/random.h>

#include <algorithm>
#include <utility>

#include "src/base/byte_text.h"
#include "src/base/escape.h"
#include "src/base/logging.h"
#include "src/testing/crash_points.h"

namespace xa::msg {
namespace {

constexpr MessageStatus kDeliverable[] = {MessageStatus::kReady, MessageStatus::kSent};
constexpr MessageStatus kUnconfirmed[] = {MessageStatus::kPending};
// Back-queries are slow (an HTTP call each, up to the querier's max_duration): a pass claims
// few, so that the claims of a daemon that dies mid-pass expire soon.
constexpr int kMaxBackQueryBatch = 16;

Status BadId(std::string_view id) {
  return Status(Code::kInval, "message id '" + internal::EscapeForMessage(id.substr(0, 64)) +
                                  "' is not " + std::to_string(kMessageIdSize) +
                                  " lower-case hex characters");
}

}  // namespace

// A store borrowed from the pool; goes back on destruction unless it failed (a store whose
// call failed may hold a broken connection: a fresh one is made instead).
class MessageService::PooledStore {
 public:
  PooledStore(MessageService* owner, std::unique_ptr<MessageStore> store)
      : owner_(owner), store_(std::move(store)) {}
  PooledStore(PooledStore&& other) noexcept = default;
  ~PooledStore() {
    if (store_ && !failed_) owner_->Return(std::move(store_));
  }
  MessageStore* operator->() { return store_.get(); }
  MessageStore& operator*() { return *store_; }
  // Marks the store as not to be reused, and passes `status` on.
  Status Failed(Status status) {
    if (!status.ok()) {
      store_->Rollback();
      failed_ = true;
    }
    return status;
  }

 private:
  MessageService* owner_;
  std::unique_ptr<MessageStore> store_;
  bool failed_ = false;
};

std::string ServiceOptionsError(const ServiceOptions& options) {
  if (std::string error = MessageTimingsError(options.timings); !error.empty()) return error;
  if (options.max_body_bytes == 0) return "max_body_bytes must be positive";
  if (options.batch_size < 1 || options.batch_size > 1000) return "batch_size must be 1 to 1000";
  if (options.poll_interval.count() <= 0) return "poll_interval must be positive";
  if (options.failure_pause.count() <= 0) return "failure_pause must be positive";
  if (options.done_retention.count() < 0) return "done_retention must not be negative";
  return "";
}

MessageService::MessageService(ServiceOptions options, StoreFactory stores,
                               PublisherFactory publishers,
                               std::shared_ptr<BackQuerier> back_querier, Clock* clock)
    : options_(std::move(options)),
      stores_(std::move(stores)),
      publishers_(std::move(publishers)),
      back_querier_(std::move(back_querier)),
      clock_(clock) {}

MessageService::~MessageService() { Stop(); }

int64_t MessageService::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_->WallNow().time_since_epoch())
      .count();
}

Result<MessageService::PooledStore> MessageService::Borrow() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_stores_.empty()) {
      std::unique_ptr<MessageStore> store = std::move(idle_stores_.back());
      idle_stores_.pop_back();
      return PooledStore(this, std::move(store));
    }
  }
  Result<std::unique_ptr<MessageStore>> store = stores_();
  if (!store.ok()) return store.status();
  return PooledStore(this, std::move(store).value());
}

void MessageService::Return(std::unique_ptr<MessageStore> store) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  idle_stores_.push_back(std::move(store));
}

Status MessageService::Write(MessageStore& store, const std::string& id,
                             const Transition& transition, int64_t now_ms) {
  if (transition.result != RequestResult::kChanged) return Status::Ok();
  if (!transition.after) {
    Result<bool> deleted = store.Delete(id);
    return deleted.ok() ? Status::Ok() : deleted.status();
  }
  if (Status updated = store.Update(*transition.after); !updated.ok()) return updated;
  std::string detail = transition.after->last_error;
  return store.AddEvent(MessageEvent{id, now_ms, transition.event, std::move(detail)});
}

Result<Message> MessageService::PreSend(Message fields) {
  if (std::string error =
          PreSendError(fields, options_.max_body_bytes, options_.allowed_query_prefixes);
      !error.empty()) {
    return Status(Code::kInval, "pre-send refused: " + error);
  }
  Result<std::string> id = NewMessageId();
  if (!id.ok()) return id.status();
  int64_t now = NowMs();
  Message message = std::move(fields);
  message.id = *id;
  message.status = MessageStatus::kPending;
  message.resend_count = 0;
  message.check_count = 0;
  message.dead = false;
  message.created_ms = now;
  message.updated_ms = now;
  message.next_attempt_ms = now + options_.timings.confirm_timeout.count();
  message.last_error.clear();
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Status done = (*store)->Insert(message);
  if (done.ok()) done = (*store)->AddEvent(MessageEvent{message.id, now, "pre-sent", ""});
  if (done.ok()) done = (*store)->Commit();
  if (!store->Failed(done).ok()) return done;
  XA_CRASH_POINT(kMsgdAfterPreSendCommit);
  ++counters_.pre_sent;
  XA_LOG(kDebug, "msgd") << "message " << message.id << ": pre-sent by "
                         << internal::EscapeForMessage(message.producer_id) << " for queue "
                         << internal::EscapeForMessage(message.consumer_queue);
  return message;
}

Result<RequestOutcome> MessageService::Apply(
    std::string_view id, Transition (*rule)(const std::optional<Message>&, int64_t),
    std::string_view producer, const OperatorAction* audit) {
  if (!IsMessageId(id)) return BadId(id);
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::optional<Message>> current = (*store)->LockOne(id);
  if (!current.ok()) return store->Failed(current.status());
  if (!producer.empty() && *current && (*current)->producer_id != producer) {
    (*store)->Rollback();
    return RequestOutcome{RequestResult::kForbidden, std::nullopt};
  }
  int64_t now = NowMs();
  Transition transition = rule(*current, now);
  auto audited = [&]() -> Status {
    if (audit == nullptr) return Status::Ok();
    return (*store)->AddAudit(AuditEntry{0, now, std::string(audit->operator_name),
                                         std::string(audit->action), std::string(id),
                                         std::string(RequestResultName(transition.result))});
  };
  if (transition.result != RequestResult::kChanged) {
    if (audit == nullptr) {
      (*store)->Rollback();
    } else {
      Status done = audited();
      if (done.ok()) done = (*store)->Commit();
      if (!store->Failed(done).ok()) return done;
    }
    return RequestOutcome{transition.result, std::move(*current)};
  }
  Status done = Write(**store, std::string(id), transition, now);
  if (done.ok()) done = audited();
  if (done.ok()) done = (*store)->Commit();
  if (!store->Failed(done).ok()) return done;
  XA_LOG(kDebug, "msgd") << "message " << id << ": " << transition.event;
  return RequestOutcome{transition.result, std::move(transition.after)};
}

Result<RequestOutcome> MessageService::Confirm(std::string_view id, std::string_view producer) {
  Result<RequestOutcome> outcome = Apply(id, &msg::Confirm, producer);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) {
    XA_CRASH_POINT(kMsgdAfterConfirmCommit);
    AfterConfirmed();
  }
  return outcome;
}

Result<RequestOutcome> MessageService::Cancel(std::string_view id, std::string_view producer) {
  Result<RequestOutcome> outcome = Apply(id, &msg::Cancel, producer);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) ++counters_.cancelled;
  return outcome;
}

Result<RequestOutcome> MessageService::Acknowledge(std::string_view id) {
  Result<RequestOutcome> outcome = Apply(id, &msg::Acknowledge);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) {
    XA_CRASH_POINT(kMsgdAfterAckCommit);
    ++counters_.acknowledged;
  }
  return outcome;
}

Result<RequestOutcome> MessageService::OperatorConfirm(std::string_view id,
                                                       std::string_view operator_name) {
  const OperatorAction audit{operator_name, "confirm"};
  Result<RequestOutcome> outcome = Apply(id, &msg::Confirm, {}, &audit);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) AfterConfirmed();
  return outcome;
}

Result<RequestOutcome> MessageService::Resend(std::string_view id,
                                              std::string_view operator_name) {
  const OperatorAction audit{operator_name, "resend"};
  Result<RequestOutcome> outcome = Apply(id, &msg::Resend, {}, &audit);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) WakeDelivery();
  return outcome;
}

Result<RequestOutcome> MessageService::Revive(std::string_view id,
                                              std::string_view operator_name) {
  const OperatorAction audit{operator_name, "revive"};
  Result<RequestOutcome> outcome = Apply(id, &msg::Revive, {}, &audit);
  if (outcome.ok() && outcome->result == RequestResult::kChanged) WakeDelivery();
  return outcome;
}

Result<RequestOutcome> MessageService::Kill(std::string_view id, std::string_view operator_name) {
  const OperatorAction audit{operator_name, "kill"};
  return Apply(id, &msg::Kill, {}, &audit);
}

Result<RequestOutcome> MessageService::Delete(std::string_view id,
                                              std::string_view operator_name) {
  const OperatorAction audit{operator_name, "delete"};
  return Apply(id, &msg::OperatorDelete, {}, &audit);
}

Result<std::vector<AuditEntry>> MessageService::AuditLog(int64_t before_seq, int limit) {
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::vector<AuditEntry>> page = (*store)->Audit(before_seq, limit);
  if (!page.ok()) return store->Failed(page.status());
  (*store)->Rollback();
  return page;
}

Result<std::optional<Message>> MessageService::Get(std::string_view id) {
  if (!IsMessageId(id)) return BadId(id);
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::optional<Message>> message = (*store)->Get(id);
  if (!message.ok()) return store->Failed(message.status());
  (*store)->Rollback();
  return message;
}

Result<std::vector<MessageEvent>> MessageService::History(std::string_view id, int limit) {
  if (!IsMessageId(id)) return BadId(id);
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::vector<MessageEvent>> events = (*store)->Events(id, limit);
  if (!events.ok()) return store->Failed(events.status());
  (*store)->Rollback();
  return events;
}

Result<std::vector<Message>> MessageService::List(MessageStatus status, bool dead,
                                                  int64_t after_updated_ms,
                                                  std::string_view after_id, int limit) {
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::vector<Message>> page =
      (*store)->List(status, dead, after_updated_ms, after_id, limit);
  if (!page.ok()) return store->Failed(page.status());
  (*store)->Rollback();
  return page;
}

Result<std::map<MessageStatus, StatusCount>> MessageService::Counts() {
  Result<PooledStore> store = Borrow();
  if (!store.ok()) return store.status();
  Result<std::map<MessageStatus, StatusCount>> counts = (*store)->Counts();
  if (!counts.ok()) return store->Failed(counts.status());
  (*store)->Rollback();
  return counts;
}

Result<int> MessageService::RunDeliveryPass() {
  std::lock_guard<std::mutex> lock(delivery_mu_);
  if (!delivery_store_) {
    Result<std::unique_ptr<MessageStore>> store = stores_();
    if (!store.ok()) return store.status();
    delivery_store_ = std::move(store).value();
  }
  MessageStore& store = *delivery_store_;
  auto fail = [&](Status status) -> Result<int> {
    store.Rollback();
    delivery_store_.reset();
    return status;
  };
  Result<std::vector<Message>> due = store.LockDue(kDeliverable, NowMs(), options_.batch_size);
  if (!due.ok()) return fail(due.status());
  if (due->empty()) {
    store.Rollback();
    return 0;
  }
  // Every message due to be published goes in one batch: one wait for the broker's confirms.
  std::vector<Message> to_publish;
  for (const Message& message : *due) {
    if (NextDeliveryStep(message, options_.timings) != DeliveryStep::kDie) {
      to_publish.push_back(message);
    }
  }
  std::vector<Status> published;
  if (!to_publish.empty()) {
    Status no_publisher = Status(Code::kRmFail, "no broker connection");
    if (!publisher_ || publisher_->broken()) {
      publisher_.reset();
      Result<std::unique_ptr<Publisher>> made = publishers_();
      if (made.ok()) {
        publisher_ = std::move(made).value();
      } else {
        no_publisher = made.status();
      }
    }
    published = publisher_ ? publisher_->PublishBatch(to_publish)
                           : std::vector<Status>(to_publish.size(), no_publisher);
    if (std::any_of(published.begin(), published.end(), [](const Status& s) { return s.ok(); })) {
      XA_CRASH_POINT(kMsgdAfterPublish);
    }
  }
  size_t next_published = 0;
  for (const Message& message : *due) {
    int64_t now = NowMs();
    Transition transition;
    if (NextDeliveryStep(message, options_.timings) == DeliveryStep::kDie) {
      transition = AfterDeath(message, now);
      ++counters_.died;
      XA_LOG(kWarning, "msgd") << "message " << message.id << ": dead after "
                               << message.resend_count + 1
                               << " publications without an acknowledgement";
    } else {
      const Status& status = published[next_published++];
      transition = AfterPublish(message, status.ok(), status.ToString(), now, options_.timings);
      if (status.ok()) {
        ++(message.status == MessageStatus::kSent ? counters_.redelivered : counters_.published);
      } else {
        ++counters_.publish_failures;
        XA_LOG(kWarning, "msgd") << "message " << message.id << ": publish to queue "
                                 << internal::EscapeForMessage(message.consumer_queue)
                                 << " failed: " << status.ToString();
      }
    }
    if (Status written = Write(store, message.id, transition, now); !written.ok()) {
      return fail(written);
    }
  }
  if (Status committed = store.Commit(); !committed.ok()) return fail(committed);
  return static_cast<int>(due->size());
}

Result<int> MessageService::RunBackQueryPass() {
  std::lock_guard<std::mutex> lock(back_query_mu_);
  if (!back_query_store_) {
    Result<std::unique_ptr<MessageStore>> store = stores_();
    if (!store.ok()) return store.status();
    back_query_store_ = std::move(store).value();
  }
  MessageStore& store = *back_query_store_;
  auto fail = [&](Status status) -> Result<int> {
    store.Rollback();
    back_query_store_.reset();
    return status;
  };
  // Claim: push the batch's next attempt past the calls, so no other pass takes them while
  // this one asks without holding their locks.
  int64_t claimed_at = NowMs();
  int batch = std::min(options_.batch_size, kMaxBackQueryBatch);
  Result<std::vector<Message>> due = store.LockDue(kUnconfirmed, claimed_at, batch);
  if (!due.ok()) return fail(due.status());
  if (due->empty()) {
    store.Rollback();
    return 0;
  }
  int64_t claim_ms = back_querier_->max_duration().count() * batch +
                     options_.poll_interval.count();
  for (Message& message : *due) {
    Message claimed = message;
    claimed.next_attempt_ms = claimed_at + claim_ms;
    if (Status updated = store.Update(claimed); !updated.ok()) return fail(updated);
  }
  if (Status committed = store.Commit(); !committed.ok()) return fail(committed);
  XA_CRASH_POINT(kMsgdAfterBackQueryClaim);

  for (const Message& asked : *due) {
    BackQuerier::Reply reply = back_querier_->Ask(asked);
    XA_CRASH_POINT(kMsgdAfterBackQueryAnswer);
    Result<std::optional<Message>> current = store.LockOne(asked.id);
    if (!current.ok()) return fail(current.status());
    if (!*current || (*current)->status != MessageStatus::kPending ||
        (*current)->check_count != asked.check_count) {
      store.Rollback();  // confirmed, cancelled or handled meanwhile: that wins
      continue;
    }
    int64_t now = NowMs();
    Transition transition = AfterBackQuery(**current, reply.answer, reply.error, now,
                                           options_.timings);
    switch (reply.answer) {
      case BackQueryAnswer::kCommitted: ++counters_.back_query_committed; break;
      case BackQueryAnswer::kRolledBack: ++counters_.back_query_rolled_back; break;
      case BackQueryAnswer::kUnknown: ++counters_.back_query_unknown; break;
    }
    if (transition.after && transition.after->status == MessageStatus::kParked) {
      ++counters_.parked;
      XA_LOG(kWarning, "msgd") << "message " << asked.id << ": parked for an operator after "
                               << transition.after->check_count
                               << " back-queries without an answer: " << reply.error;
    } else {
      XA_LOG(kInfo, "msgd") << "message " << asked.id << ": back-query answered "
                            << BackQueryAnswerName(reply.answer)
                            << (reply.error.empty() ? "" : ": ") << reply.error;
    }
    if (Status written = Write(store, asked.id, transition, now); !written.ok()) {
      return fail(written);
    }
    if (Status committed = store.Commit(); !committed.ok()) return fail(committed);
    if (reply.answer == BackQueryAnswer::kCommitted) {
      WakeDelivery();
    }
  }
  return static_cast<int>(due->size());
}

Result<int> MessageService::RunPurgePass() {
  std::lock_guard<std::mutex> lock(purge_mu_);
  if (options_.done_retention.count() == 0) return 0;
  const int64_t now = NowMs();
  if (now < next_purge_ms_) return 0;
  if (!purge_store_) {
    Result<std::unique_ptr<MessageStore>> store = stores_();
    if (!store.ok()) return store.status();
    purge_store_ = std::move(store).value();
  }
  Result<int> purged = purge_store_->PurgeDone(now - options_.done_retention.count(),
                                               options_.batch_size);
  Status done = purged.ok() ? purge_store_->Commit() : purged.status();
  if (!done.ok()) {
    purge_store_->Rollback();
    purge_store_.reset();
    return done;
  }
  counters_.purged += static_cast<uint64_t>(*purged);
  if (*purged > 0) {
    XA_LOG(kInfo, "msgd") << "purge: deleted " << *purged << " done messages older than "
                          << options_.done_retention.count() << " ms";
  }
  // A full batch: more may be due at once; otherwise look again in a minute.
  next_purge_ms_ = *purged >= options_.batch_size ? now : now + 60'000;
  return *purged;
}

void MessageService::AfterConfirmed() {
  ++counters_.confirmed;
  WakeDelivery();
}

void MessageService::WakeDelivery() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    delivery_woken_ = true;
  }
  wake_.notify_all();
}

void MessageService::RunJob(Result<int> (MessageService::*pass)(), const char* name,
                            bool delivery) {
  while (true) {
    Result<int> handled = (this->*pass)();
    std::chrono::milliseconds pause = options_.poll_interval;
    if (!handled.ok()) {
      ++counters_.job_failures;
      XA_LOG(kWarning, "msgd") << name
                               << " job: " << handled.status().ToString();
      pause = options_.failure_pause;
    } else if (*handled >= options_.batch_size) {
      pause = std::chrono::milliseconds(0);  // more may be due at once
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    if (pause.count() > 0) {
      clock_->WaitFor(lock, wake_, pause, [&] {
        return stopping_ || (delivery && delivery_woken_ && handled.ok());
      });
    }
    if (stopping_) return;
    if (delivery) delivery_woken_ = false;
  }
}

void MessageService::Start() {
  std::lock_guard<std::mutex> lock(wake_mu_);
  if (!jobs_.empty()) return;
  stopping_ = false;
  jobs_.emplace_back([this] { RunJob(&MessageService::RunDeliveryPass, "delivery", true); });
  jobs_.emplace_back(
      [this] { RunJob(&MessageService::RunBackQueryPass, "status-confirmation", false); });
  jobs_.emplace_back([this] { RunJob(&MessageService::RunPurgePass, "purge", false); });
}

void MessageService::Stop() {
  {
    std::lock_guard<std::mutex> lock(wake_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& job : jobs_) job.join();
  jobs_.clear();
}

}  // namespace xa::msg
