// The notifier of xa-msgd (docs/notifications.md): the business system submits notifications,
// the notifier POSTs each, signed, to its endpoint's URL until the endpoint answers as agreed or
// the endpoint's ladder runs out, and records every attempt. Every decision is a rule of
// notification_rules.h; the store is notification_store.h; the HTTP exchange is an
// EndpointCaller (the real one: MakeHttpEndpointCaller).
//
// Delivery runs in two steps, so that no database lock is held across an HTTP call and no
// notification is ever in flight twice:
//
//   claim    in one transaction, lock due notifications (earliest first, skipping endpoints at
//            their concurrency limit or with an open breaker), move each one's next_attempt_ms
//            past the longest the call can take (claim_duration), count the claim, commit;
//   deliver  call the endpoint, then lock the notification again and apply the outcome only if
//            its claim count is still the one this attempt took (AfterAttempt: succeeded,
//            pending until the ladder's next step, or failed), with the attempt's row, and
//            commit.
//
// A daemon that dies between the two leaves the claim to run out: the notification is due again
// at the claim's end, never earlier, and is called again under the same webhook-id (the receiver
// deduplicates). Restarts resume every schedule where the store holds it.
//
// Fairness: the dispatcher claims no more than free workers can start at once, never more than
// an endpoint's max_in_flight for one endpoint, and for the unproven endpoints (whose last call
// failed, or not yet called) together no more than half of the workers; an endpoint whose breaker is open is skipped until
// its probe is due. Breakers and in-flight counts are per daemon.
//
// Thread safety: requests from any thread; Start() and Stop() from one.

#ifndef XA_DAEMONS_MSGD_NOTIFIER_H_
#define XA_DAEMONS_MSGD_NOTIFIER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemons/msgd/endpoint_url_policy.h"
#include "daemons/msgd/message_rules.h"
#include "daemons/msgd/notification.h"
#include "daemons/msgd/notification_rules.h"
#include "daemons/msgd/notification_store.h"
#include "xa/env.h"
#include "xa/status.h"

namespace xa::msg {

struct NotifierOptions {
  int workers = 16;     // calls at once over all endpoints (1..1024)
  int batch_size = 100; // notifications a claim takes at most (1..1000)
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  // The whole call, connect to the last byte of the answer.
  std::chrono::milliseconds call_timeout{std::chrono::seconds(10)};
  size_t max_body_bytes = 64 * 1024;  // the largest notification body accepted
  UrlPolicy url_policy;
  EndpointBreaker::Options breaker;
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
  std::chrono::milliseconds failure_pause{std::chrono::seconds(1)};
  // The workers that unproven endpoints (whose last call in this daemon failed, or that have
  // not been called yet) may hold at once, together: half, so that a hundred endpoints timing
  // out cannot take every worker while a healthy one waits.
  int unproven_share() const { return workers > 1 ? workers / 2 : 1; }
  // How long a claim lasts: the call's deadline and the time to record its outcome.
  std::chrono::milliseconds claim_duration() const {
    return call_timeout + std::chrono::seconds(10);
  }
};
// Why `options` cannot be used, "" when they can.
std::string NotifierOptionsError(const NotifierOptions& options);

// One HTTP exchange with an endpoint: the signed POST of a notification. Thread-safe.
class EndpointCaller {
 public:
  virtual ~EndpointCaller() = default;
  // `timestamp_s`: the webhook-timestamp to sign.
  virtual AttemptOutcome Call(const Endpoint& endpoint, const Notification& notification,
                              int64_t timestamp_s) = 0;
};
// The real caller: checks the URL against the policy and resolves it at every call (connecting
// to the address it checked), signs with every secret of the endpoint (webhook.h), bounds the
// call by options.call_timeout and reads at most kMaxExcerptSize bytes of the answer.
std::shared_ptr<EndpointCaller> MakeHttpEndpointCaller(const NotifierOptions& options);

using NotificationStoreFactory = std::function<Result<std::unique_ptr<NotificationStore>>()>;

// What an operator asks to change on an endpoint: absent fields stay as they are (a new
// endpoint: the defaults, and one generated secret).
struct EndpointChange {
  std::string id;
  std::optional<std::string> url;
  std::optional<std::vector<std::string>> secrets;  // "whsec_...", 1 or 2
  std::optional<RetryLadder> ladder;
  std::optional<std::optional<std::string>> success_body;  // set to nullopt: no body rule
  std::optional<int> max_in_flight;
  std::optional<bool> enabled;
};
struct EndpointPut {
  Endpoint endpoint;
  bool created = false;
  std::optional<std::string> generated_secret;  // shown once, to the operator who asked
};

// How an endpoint fares in this daemon now (breakers and in-flight counts are per daemon).
struct EndpointHealth {
  int in_flight = 0;
  bool breaker_open = false;
  int consecutive_failures = 0;
};

struct NotifierCounters {
  std::atomic<uint64_t> submitted{0};
  std::atomic<uint64_t> attempts{0};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> endpoints_gone{0};
  std::atomic<uint64_t> stale_outcomes{0};  // an attempt outlived its claim
  std::atomic<uint64_t> job_failures{0};
};

class Notifier {
 public:
  Notifier(NotifierOptions options, NotificationStoreFactory stores,
           std::shared_ptr<EndpointCaller> caller, Clock* clock);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Operator: creates or changes an endpoint (its URL checked against the policy, without a
  // lookup: the address is checked at each call). kInval naming the field.
  Result<EndpointPut> PutEndpoint(const EndpointChange& change);
  Result<std::optional<Endpoint>> GetEndpoint(std::string_view id);
  Result<std::vector<Endpoint>> ListEndpoints(std::string_view after_id, int limit);
  // This daemon's view of an endpoint (all zero for one it has not called yet).
  EndpointHealth Health(std::string_view id);

  // The business system: a new pending notification, due at once. kNoTa for an unknown
  // endpoint, kProto for a disabled one, kInval naming a field.
  Result<Notification> Submit(std::string_view endpoint_id, std::string_view event_type,
                              std::string body);
  Result<std::optional<Notification>> Get(std::string_view id);
  Result<std::vector<NotificationAttempt>> Attempts(std::string_view id, int limit);
  Result<std::vector<Notification>> List(const NotificationQuery& query);
  Result<std::map<NotificationStatus, int64_t>> Counts();
  // Operator: a failed or succeeded notification is pending again with a fresh ladder, due at
  // once (kChanged); a pending one is left to its schedule (kAlready); kConflict when its
  // endpoint is disabled (enable it first).
  Result<RequestResult> Resend(std::string_view id);

  // One claim and the attempts it took, on the caller's thread, one after another (tests drive
  // the notifier with a fake clock this way): how many attempts ran.
  Result<int> RunDeliveryPass();

  // Starts the dispatcher and the workers; Stop() ends them (attempts in progress finish).
  void Start();
  void Stop();

  const NotifierCounters& counters() const noexcept { return counters_; }
  int64_t NowMs();

 private:
  struct Job {
    Notification notification;  // as claimed
    Endpoint endpoint;
  };
  struct EndpointState {
    int in_flight = 0;
    int max_in_flight = 1;
    bool proven = false;  // its last call in this daemon delivered
    EndpointBreaker breaker;
  };
  // Whether no call to the endpoint may start now (under state_mu_): at its max_in_flight, its
  // breaker open or its probe out, or it is unproven and the unproven endpoints hold their
  // share of the workers (`unproven_in_flight` of them).
  bool Held(const EndpointState& state, int64_t steady_ms, int unproven_in_flight) const;
  // The endpoint's state in this daemon, made with the configured breaker on first use; under
  // state_mu_.
  EndpointState& StateOf(const std::string& id);
  Result<std::unique_ptr<NotificationStore>> Store();
  void Return(std::unique_ptr<NotificationStore> store);
  // Runs `read` (a read of the store: Result<T>(NotificationStore&)) on a pooled connection and
  // ends its transaction.
  template <typename Reader>
  auto Read(Reader read) -> decltype(read(std::declval<NotificationStore&>()));
  // The claim step: up to `limit` jobs, committed.
  Result<std::vector<Job>> Claim(int limit);
  // The deliver step of one claimed job.
  void Deliver(Job job);
  Status Record(const Job& job, const AttemptOutcome& outcome, AttemptVerdict verdict,
                int64_t started_ms, int64_t latency_ms);
  int64_t SteadyMs();
  void Wake();
  void RunDispatcher();
  void RunWorker();

  const NotifierOptions options_;
  const NotificationStoreFactory stores_;
  const std::shared_ptr<EndpointCaller> caller_;
  Clock* const clock_;
  NotifierCounters counters_;

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<NotificationStore>> idle_stores_;

  std::mutex claim_mu_;  // one claim at a time
  std::mutex state_mu_;
  std::map<std::string, EndpointState> endpoints_;  // guarded by state_mu_

  std::mutex mu_;
  std::condition_variable wake_;       // the dispatcher's
  std::condition_variable work_;       // the workers'
  std::deque<Job> queue_;              // guarded by mu_
  int busy_ = 0;                       // workers with a job, guarded by mu_
  bool woken_ = false;                 // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_NOTIFIER_H_
