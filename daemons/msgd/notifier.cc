#include "daemons/msgd/notifier.h"

#include <algorithm>
#include <set>
#include <utility>

#include "src/base/escape.h"
#include "src/base/logging.h"
#include "src/http/http_client.h"
#include "xa/msg/webhook.h"

namespace xa::msg {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// What an attempt's failure reads as in last_error and the page: "HTTP 503: <excerpt>" or the
// caller's error.
std::string FailureText(const AttemptOutcome& outcome, AttemptVerdict verdict) {
  if (outcome.http_status == 0) return outcome.error;
  if (verdict == AttemptVerdict::kDelivered) return "";
  std::string text = "HTTP " + std::to_string(outcome.http_status);
  if (!outcome.body.empty()) {
    text += ": " + internal::EscapeForMessage(std::string_view(outcome.body).substr(0, 200));
  }
  return text;
}

class HttpEndpointCaller final : public EndpointCaller {
 public:
  explicit HttpEndpointCaller(const NotifierOptions& options) : options_(options) {}

  AttemptOutcome Call(const Endpoint& endpoint, const Notification& notification,
                      int64_t timestamp_s) override {
    AttemptOutcome outcome;
    Result<EndpointUrl> url = ParseEndpointUrl(endpoint.url);
    if (!url.ok()) {
      outcome.error = url.status().message();
      return outcome;
    }
    // Checked at every call: the policy may have changed, and a name may resolve elsewhere now.
    Result<std::string> address = ResolveEndpointUrl(*url, options_.url_policy);
    if (!address.ok()) {
      outcome.error = "not called: " + address.status().message();
      return outcome;
    }
    Result<std::shared_ptr<http::HttpClient>> client = ClientFor(*url, *address);
    if (!client.ok()) {
      outcome.error = client.status().message();
      return outcome;
    }
    std::string signatures;
    for (const std::string& text : endpoint.secrets) {
      Result<WebhookSecret> secret = WebhookSecret::Parse(text);
      if (!secret.ok()) continue;  // checked when stored; never quoted
      signatures += (signatures.empty() ? "" : " ") +
                    SignWebhook(*secret, notification.id, timestamp_s, notification.body);
    }
    http::HttpHeaders headers = {
        {std::string(kWebhookIdHeader), notification.id},
        {std::string(kWebhookTimestampHeader), std::to_string(timestamp_s)},
        {std::string(kWebhookSignatureHeader), signatures},
        {"User-Agent", "xa-msgd-notifier"},
    };
    Result<http::HttpReply> reply =
        (*client)->Post(url->target, "application/json", notification.body, headers);
    if (!reply.ok()) {
      outcome.error = reply.status().message();
      return outcome;
    }
    outcome.http_status = reply->status;
    outcome.body = std::move(reply->body);
    std::string retry_after = reply->Header("retry-after");
    int64_t seconds = 0;
    if (!retry_after.empty() && retry_after.size() <= 9 &&
        std::all_of(retry_after.begin(), retry_after.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      seconds = std::stoll(retry_after);
      outcome.retry_after = std::chrono::seconds(seconds);
    }
    return outcome;
  }

 private:
  // A client per (origin, address), so that kept-alive connections are reused; a few hundred
  // endpoints at most are live at once, and a changed address makes a new entry.
  Result<std::shared_ptr<http::HttpClient>> ClientFor(const EndpointUrl& url,
                                                      const std::string& address) {
    const std::string key = url.Origin() + " " + address;
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = clients_.find(key); it != clients_.end()) return it->second;
    http::HttpClientOptions options;
    options.base_url = url.Origin();
    options.connect_address = address;
    options.connect_timeout = options_.connect_timeout;
    options.request_timeout = options_.call_timeout;
    options.call_deadline = options_.call_timeout;
    options.max_response_bytes = kMaxExcerptSize;
    options.truncate_large_responses = true;
    options.max_connections = static_cast<size_t>(kMaxEndpointInFlight);
    Result<std::unique_ptr<http::HttpClient>> made = http::HttpClient::Make(std::move(options));
    if (!made.ok()) return made.status();
    if (clients_.size() >= 4096) clients_.clear();  // bounded: old entries are made again
    std::shared_ptr<http::HttpClient> client = std::move(made).value();
    clients_[key] = client;
    return client;
  }

  const NotifierOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<http::HttpClient>> clients_;  // guarded by mu_
};

}  // namespace

std::string NotifierOptionsError(const NotifierOptions& options) {
  if (options.workers < 1 || options.workers > 1024) return "workers must be 1 to 1024";
  if (options.batch_size < 1 || options.batch_size > 1000) return "batch_size must be 1 to 1000";
  if (options.connect_timeout.count() < 10 || options.call_timeout.count() < 10 ||
      options.call_timeout > std::chrono::minutes(10)) {
    return "connect_timeout_ms and call_timeout_ms must be 10 to 600000";
  }
  if (options.url_policy.schemes.empty()) return "allowed_schemes must name http or https";
  if (options.poll_interval.count() < 1 || options.failure_pause.count() < 1) {
    return "the poll interval and failure pause must be positive";
  }
  return "";
}

std::shared_ptr<EndpointCaller> MakeHttpEndpointCaller(const NotifierOptions& options) {
  return std::make_shared<HttpEndpointCaller>(options);
}

Notifier::Notifier(NotifierOptions options, NotificationStoreFactory stores,
                   std::shared_ptr<EndpointCaller> caller, Clock* clock)
    : options_(std::move(options)),
      stores_(std::move(stores)),
      caller_(std::move(caller)),
      clock_(clock) {}

Notifier::~Notifier() { Stop(); }

int64_t Notifier::NowMs() {
  return duration_cast<milliseconds>(clock_->WallNow().time_since_epoch()).count();
}

int64_t Notifier::SteadyMs() {
  return duration_cast<milliseconds>(clock_->SteadyNow().time_since_epoch()).count();
}

Result<std::unique_ptr<NotificationStore>> Notifier::Store() {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_stores_.empty()) {
      std::unique_ptr<NotificationStore> store = std::move(idle_stores_.back());
      idle_stores_.pop_back();
      return store;
    }
  }
  return stores_();
}

void Notifier::Return(std::unique_ptr<NotificationStore> store) {
  std::lock_guard<std::mutex> lock(pool_mu_);
  idle_stores_.push_back(std::move(store));
}

template <typename Reader>
auto Notifier::Read(Reader read) -> decltype(read(std::declval<NotificationStore&>())) {
  auto made = Store();  // a failed connection is dropped, a working one goes back to the pool
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  auto found = read(*store);
  store->Rollback();
  if (found.ok()) Return(std::move(store));
  return found;
}

Result<EndpointPut> Notifier::PutEndpoint(const EndpointChange& change) {
  if (!IsEndpointId(change.id)) {
    return Status(Code::kInval, "id: an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  }
  auto made = Store();  // a failed connection is dropped, a working one goes back to the pool
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  Result<std::optional<Endpoint>> existing = store->GetEndpoint(change.id);
  if (!existing.ok()) return existing.status();
  EndpointPut put;
  put.created = !existing->has_value();
  Endpoint& e = put.endpoint;
  const int64_t now = NowMs();
  if (*existing) {
    e = **existing;
  } else {
    e.id = change.id;
    e.created_ms = now;
  }
  if (change.url) e.url = *change.url;
  if (e.url.empty()) {
    store->Rollback();
    Return(std::move(store));
    return Status(Code::kInval, "url: a new endpoint needs its url");
  }
  Result<EndpointUrl> url = ParseEndpointUrl(e.url);
  Status allowed = url.ok() ? CheckEndpointUrl(*url, options_.url_policy) : url.status();
  if (!allowed.ok()) {
    store->Rollback();
    Return(std::move(store));
    return Status(Code::kInval, "url: " + allowed.message());
  }
  if (change.secrets) {
    for (const std::string& text : *change.secrets) {
      if (!WebhookSecret::Parse(text).ok()) {
        store->Rollback();
        Return(std::move(store));
        return Status(Code::kInval, "secrets: each is whsec_ followed by the base64 of 24 to 64 "
                                    "bytes");
      }
    }
    e.secrets = *change.secrets;
  } else if (put.created) {
    Result<WebhookSecret> secret = WebhookSecret::Generate();
    if (!secret.ok()) return secret.status();
    put.generated_secret = secret->ToString();
    e.secrets = {*put.generated_secret};
  }
  if (change.ladder) e.ladder = *change.ladder;
  if (change.success_body) e.success_body = *change.success_body;
  if (change.max_in_flight) e.max_in_flight = *change.max_in_flight;
  if (change.enabled) {
    if (*change.enabled && !e.enabled) e.disabled_reason.clear();
    if (!*change.enabled && e.enabled) e.disabled_reason = "disabled by an operator";
    e.enabled = *change.enabled;
  }
  e.updated_ms = now;
  if (std::string error = EndpointFieldsError(e); !error.empty()) {
    store->Rollback();
    Return(std::move(store));
    return Status(Code::kInval, error);
  }
  Status written = store->PutEndpoint(e);
  if (written.ok()) written = store->Commit();
  if (!written.ok()) return written;
  Return(std::move(store));
  XA_LOG(kInfo, "msgd") << "endpoint " << e.id << ": " << (put.created ? "created" : "changed")
                        << (e.enabled ? "" : " (disabled)");
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    StateOf(e.id).max_in_flight = e.max_in_flight;
  }
  Wake();
  return put;
}

Result<std::optional<Endpoint>> Notifier::GetEndpoint(std::string_view id) {
  return Read([&](NotificationStore& store) { return store.GetEndpoint(id); });
}

Result<std::vector<Endpoint>> Notifier::ListEndpoints(std::string_view after_id, int limit) {
  return Read([&](NotificationStore& store) { return store.ListEndpoints(after_id, limit); });
}

Notifier::EndpointState& Notifier::StateOf(const std::string& id) {
  auto it = endpoints_.find(id);
  if (it == endpoints_.end()) {
    it = endpoints_.emplace(id, EndpointState{0, 1, false, EndpointBreaker(options_.breaker)})
             .first;
  }
  return it->second;
}

bool Notifier::Held(const EndpointState& state, int64_t steady_ms, int unproven_in_flight) const {
  return state.in_flight >= state.max_in_flight || state.breaker.blocked(steady_ms) ||
         (!state.proven && unproven_in_flight >= options_.unproven_share());
}

EndpointHealth Notifier::Health(std::string_view id) {
  const int64_t steady = SteadyMs();
  std::lock_guard<std::mutex> lock(state_mu_);
  auto it = endpoints_.find(std::string(id));
  if (it == endpoints_.end()) return EndpointHealth{};
  return EndpointHealth{it->second.in_flight, it->second.breaker.open(steady),
                        it->second.breaker.consecutive_failures()};
}

Result<Notification> Notifier::Submit(std::string_view endpoint_id, std::string_view event_type,
                                      std::string body) {
  if (!IsEndpointId(endpoint_id)) {
    return Status(Code::kInval, "endpoint: an endpoint id is 1 to 64 of [A-Za-z0-9._-]");
  }
  if (event_type.empty() || event_type.size() > kMaxEventTypeSize) {
    return Status(Code::kInval, "event_type: 1 to 128 bytes");
  }
  if (body.size() > options_.max_body_bytes) {
    return Status(Code::kInval, "body: larger than the notifier's max_body_bytes (" +
                                    std::to_string(options_.max_body_bytes) + ")");
  }
  Result<std::string> id = NewMessageId();
  if (!id.ok()) return id.status();
  auto made = Store();  // a failed connection is dropped, a working one goes back to the pool
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  Result<std::optional<Endpoint>> endpoint = store->GetEndpoint(endpoint_id);
  if (!endpoint.ok()) return endpoint.status();
  if (!*endpoint || !(*endpoint)->enabled) {
    store->Rollback();
    Return(std::move(store));
    if (!*endpoint) {
      return Status(Code::kNoTa, "endpoint '" + std::string(endpoint_id) +
                                     "' does not exist: an operator registers it first");
    }
    return Status(Code::kProto, "endpoint '" + std::string(endpoint_id) + "' is disabled (" +
                                    (*endpoint)->disabled_reason +
                                    "): an operator enables it again");
  }
  Notification n;
  n.id = std::move(id).value();
  n.endpoint_id = std::string(endpoint_id);
  n.event_type = std::string(event_type);
  n.body = std::move(body);
  n.created_ms = n.updated_ms = n.next_attempt_ms = NowMs();
  Status written = store->InsertNotification(n);
  if (written.ok()) written = store->Commit();
  if (!written.ok()) return written;
  Return(std::move(store));
  ++counters_.submitted;
  XA_LOG(kDebug, "msgd") << "notification " << n.id << ": submitted for endpoint "
                         << n.endpoint_id;
  Wake();
  return n;
}

Result<std::optional<Notification>> Notifier::Get(std::string_view id) {
  return Read([&](NotificationStore& store) { return store.GetNotification(id); });
}

Result<std::vector<NotificationAttempt>> Notifier::Attempts(std::string_view id, int limit) {
  return Read([&](NotificationStore& store) { return store.Attempts(id, limit); });
}

Result<std::vector<Notification>> Notifier::List(const NotificationQuery& query) {
  return Read([&](NotificationStore& store) { return store.ListNotifications(query); });
}

Result<std::map<NotificationStatus, int64_t>> Notifier::Counts() {
  return Read([&](NotificationStore& store) { return store.NotificationCounts(); });
}

Result<RequestResult> Notifier::Resend(std::string_view id) {
  auto made = Store();  // a failed connection is dropped, a working one goes back to the pool
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  Result<std::optional<Notification>> found = store->LockNotification(id);
  if (!found.ok()) return found.status();
  auto finish = [&](RequestResult result) -> Result<RequestResult> {
    store->Rollback();
    Return(std::move(store));
    return result;
  };
  if (!*found) return finish(RequestResult::kNotFound);
  Notification n = std::move(**found);
  if (n.status == NotificationStatus::kPending) return finish(RequestResult::kAlready);
  Result<std::optional<Endpoint>> endpoint = store->GetEndpoint(n.endpoint_id);
  if (!endpoint.ok()) return endpoint.status();
  if (!*endpoint || !(*endpoint)->enabled) return finish(RequestResult::kConflict);
  n.status = NotificationStatus::kPending;
  n.attempts = 0;  // a fresh ladder; the attempts table keeps the history
  n.updated_ms = n.next_attempt_ms = NowMs();
  Status written = store->UpdateNotification(n);
  if (written.ok()) written = store->Commit();
  if (!written.ok()) return written;
  Return(std::move(store));
  XA_LOG(kInfo, "msgd") << "notification " << n.id << ": resent by an operator";
  Wake();
  return RequestResult::kChanged;
}

Result<std::vector<Notifier::Job>> Notifier::Claim(int limit) {
  std::lock_guard<std::mutex> claim_lock(claim_mu_);
  const int64_t now = NowMs();
  const int64_t steady = SteadyMs();
  std::vector<std::string> skip;
  int unproven_in_flight = 0;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    for (const auto& [id, state] : endpoints_) {
      if (!state.proven) unproven_in_flight += state.in_flight;
    }
    for (const auto& [id, state] : endpoints_) {
      if (Held(state, steady, unproven_in_flight)) skip.push_back(id);
    }
  }
  Result<std::unique_ptr<NotificationStore>> made = Store();
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  Result<std::vector<Notification>> due = store->LockDueNotifications(now, skip, limit);
  if (!due.ok()) return due.status();
  std::map<std::string, std::optional<Endpoint>> seen;
  std::vector<Job> jobs;
  std::vector<std::string> failed_ids;
  auto undo = [&] {
    std::lock_guard<std::mutex> lock(state_mu_);
    for (const Job& job : jobs) {
      EndpointState& state = StateOf(job.endpoint.id);
      --state.in_flight;
      state.breaker.Abandon();
    }
  };
  for (Notification& n : *due) {
    auto it = seen.find(n.endpoint_id);
    if (it == seen.end()) {
      Result<std::optional<Endpoint>> endpoint = store->GetEndpoint(n.endpoint_id);
      if (!endpoint.ok()) {
        undo();
        return endpoint.status();
      }
      it = seen.emplace(n.endpoint_id, std::move(endpoint).value()).first;
    }
    const std::optional<Endpoint>& endpoint = it->second;
    n.updated_ms = now;
    if (!endpoint || !endpoint->enabled) {
      // Nothing will be called: the notification fails, visible and resendable.
      n.status = NotificationStatus::kFailed;
      n.last_error = !endpoint ? "endpoint " + n.endpoint_id + " no longer exists"
                               : "endpoint disabled: " + endpoint->disabled_reason;
      Status written = store->UpdateNotification(n);
      if (!written.ok()) {
        undo();
        return written;
      }
      failed_ids.push_back(n.id);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      EndpointState& state = StateOf(n.endpoint_id);
      state.max_in_flight = endpoint->max_in_flight;
      if (Held(state, steady, unproven_in_flight) || !state.breaker.MayAttempt(steady)) continue;
      ++state.in_flight;
      if (!state.proven) ++unproven_in_flight;
    }
    ++n.claims;
    n.next_attempt_ms = now + options_.claim_duration().count();
    jobs.push_back(Job{n, *endpoint});
    Status written = store->UpdateNotification(n);
    if (!written.ok()) {
      undo();
      return written;
    }
  }
  Status committed = store->Commit();
  if (!committed.ok()) {
    undo();
    return committed;
  }
  Return(std::move(store));
  for (const std::string& id : failed_ids) {
    ++counters_.failed;
    XA_LOG(kWarning, "msgd") << "notification " << id << ": failed, its endpoint is disabled";
  }
  return jobs;
}

void Notifier::Deliver(Job job) {
  const int64_t started_ms = NowMs();
  const int64_t steady_start = SteadyMs();
  AttemptOutcome outcome = caller_->Call(job.endpoint, job.notification, started_ms / 1000);
  const int64_t latency_ms = SteadyMs() - steady_start;
  const AttemptVerdict verdict =
      ClassifyAttempt(outcome, SuccessRule{job.endpoint.success_body});
  ++counters_.attempts;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    EndpointState& state = StateOf(job.endpoint.id);
    --state.in_flight;
    state.proven = verdict == AttemptVerdict::kDelivered;
    state.breaker.Report(state.proven, SteadyMs());
  }
  Status recorded = Record(job, outcome, verdict, started_ms, latency_ms);
  if (!recorded.ok()) {
    // The claim stands: the notification is due again when it ends, and is called again.
    ++counters_.job_failures;
    XA_LOG(kWarning, "msgd") << "notification " << job.notification.id
                             << ": the outcome of attempt " << job.notification.attempts + 1
                             << " was not recorded (" << recorded.ToString()
                             << "); it is called again when its claim ends";
  }
  Wake();
}

Status Notifier::Record(const Job& job, const AttemptOutcome& outcome, AttemptVerdict verdict,
                        int64_t started_ms, int64_t latency_ms) {
  Result<std::unique_ptr<NotificationStore>> made = Store();
  if (!made.ok()) return made.status();
  std::unique_ptr<NotificationStore> store = std::move(made).value();
  const std::string& id = job.notification.id;
  Result<std::optional<Notification>> locked = store->LockNotification(id);
  if (!locked.ok()) return locked.status();
  NotificationAttempt attempt;
  attempt.notification_id = id;
  attempt.started_ms = started_ms;
  attempt.latency_ms = latency_ms;
  attempt.http_status = outcome.http_status;
  attempt.verdict = std::string(AttemptVerdictName(verdict));
  attempt.excerpt = outcome.body.substr(0, kMaxExcerptSize);
  attempt.error = outcome.error.substr(0, kMaxErrorSize);
  const bool current = *locked && (*locked)->status == NotificationStatus::kPending &&
                       (*locked)->claims == job.notification.claims;
  if (!current) {
    // The claim ran out before the call ended (or an operator resent it): another attempt owns
    // the schedule now. The history keeps what this one saw.
    attempt.number = *locked ? (*locked)->attempts : 0;
    ++counters_.stale_outcomes;
    if (*locked) XA_RETURN_IF_ERROR(store->AddAttempt(attempt));
    XA_RETURN_IF_ERROR(store->Commit());
    Return(std::move(store));
    XA_LOG(kWarning, "msgd") << "notification " << id
                             << ": an attempt ended after its claim; its outcome ("
                             << AttemptVerdictName(verdict) << ") changes nothing";
    return Status::Ok();
  }
  Notification n = std::move(**locked);
  const int64_t now = NowMs();
  ++n.attempts;
  attempt.number = n.attempts;
  NextStep next = AfterAttempt(n.attempts, verdict, outcome.retry_after, now, job.endpoint.ladder);
  n.status = next.status;
  n.next_attempt_ms = next.status == NotificationStatus::kPending ? next.next_attempt_ms : now;
  n.updated_ms = now;
  n.last_http_status = outcome.http_status;
  n.last_error = FailureText(outcome, verdict).substr(0, kMaxErrorSize);
  XA_RETURN_IF_ERROR(store->UpdateNotification(n));
  XA_RETURN_IF_ERROR(store->AddAttempt(attempt));
  if (next.disable_endpoint) {
    Result<std::optional<Endpoint>> endpoint = store->GetEndpoint(n.endpoint_id);
    if (!endpoint.ok()) return endpoint.status();
    if (*endpoint && (*endpoint)->enabled) {
      Endpoint e = std::move(**endpoint);
      e.enabled = false;
      e.disabled_reason = "the endpoint answered 410 Gone";
      e.updated_ms = now;
      XA_RETURN_IF_ERROR(store->PutEndpoint(e));
    }
  }
  XA_RETURN_IF_ERROR(store->Commit());
  Return(std::move(store));
  switch (n.status) {
    case NotificationStatus::kSucceeded:
      ++counters_.delivered;
      XA_LOG(kDebug, "msgd") << "notification " << id << ": delivered on attempt " << n.attempts;
      break;
    case NotificationStatus::kFailed:
      ++counters_.failed;
      if (next.disable_endpoint) ++counters_.endpoints_gone;
      XA_LOG(kWarning, "msgd") << "notification " << id << ": failed after attempt "
                               << n.attempts << " (" << n.last_error << ")"
                               << (next.disable_endpoint ? "; endpoint " + n.endpoint_id +
                                                               " disabled"
                                                         : std::string());
      break;
    case NotificationStatus::kPending:
      ++counters_.retries;
      XA_LOG(kDebug, "msgd") << "notification " << id << ": attempt " << n.attempts
                             << " failed (" << n.last_error << "); next in "
                             << (n.next_attempt_ms - now) << " ms";
      break;
  }
  return Status::Ok();
}

Result<int> Notifier::RunDeliveryPass() {
  Result<std::vector<Job>> jobs = Claim(options_.batch_size);
  if (!jobs.ok()) return jobs.status();
  for (Job& job : *jobs) Deliver(std::move(job));
  return static_cast<int>(jobs->size());
}

void Notifier::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  wake_.notify_one();
}

void Notifier::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { RunWorker(); });
  threads_.emplace_back([this] { RunDispatcher(); });
}

void Notifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  work_.notify_all();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  // Claimed jobs nobody started: their claims run out and they are due again then.
  std::deque<Job> unstarted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    unstarted.swap(queue_);
  }
  std::lock_guard<std::mutex> lock(state_mu_);
  for (const Job& job : unstarted) {
    EndpointState& state = StateOf(job.endpoint.id);
    --state.in_flight;
    state.breaker.Abandon();
  }
}

void Notifier::RunDispatcher() {
  while (true) {
    int free = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Claim only what free workers start at once: a claim waiting in a queue would run out.
      wake_.wait(lock, [&] {
        return stopping_ || options_.workers - busy_ - static_cast<int>(queue_.size()) > 0;
      });
      if (stopping_) return;
      free = options_.workers - busy_ - static_cast<int>(queue_.size());
      woken_ = false;
    }
    Result<std::vector<Job>> jobs = Claim(std::min(free, options_.batch_size));
    std::chrono::milliseconds pause = options_.poll_interval;
    if (!jobs.ok()) {
      ++counters_.job_failures;
      XA_LOG(kWarning, "msgd") << "notifier: claiming due notifications failed: "
                               << jobs.status().ToString();
      pause = options_.failure_pause;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (jobs.ok()) {
      for (Job& job : *jobs) queue_.push_back(std::move(job));
      work_.notify_all();
      if (static_cast<int>(jobs->size()) >= std::min(free, options_.batch_size)) {
        pause = milliseconds(0);  // more may be due at once
      }
    }
    if (pause.count() > 0) {
      clock_->WaitFor(lock, wake_, pause, [&] { return stopping_ || (woken_ && jobs.ok()); });
    }
    if (stopping_) return;
  }
}

void Notifier::RunWorker() {
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    Deliver(std::move(job));
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    wake_.notify_one();
  }
}

}  // namespace xa::msg
