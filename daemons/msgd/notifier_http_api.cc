#include "daemons/msgd/notifier_http_api.h"

#include <limits>
#include <string>
#include <utility>

#include "daemons/msgd/json_api.h"
#include "src/base/prometheus_text.h"

namespace xa::msg {
namespace {

using http::HttpResponse;
using json_api::Answer;
using json_api::BoolField;
using json_api::Error;
using json_api::Guarded;
using json_api::IntegerField;
using json_api::Json;
using json_api::StringField;

constexpr int64_t kMinMs = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max();

HttpResponse Failure(const Status& status) {
  switch (status.code()) {
    case Code::kInval: return Error(400, status.message());
    case Code::kNoTa: return Error(404, status.message());
    case Code::kProto: return Error(409, status.message());
    default: return Error(503, status.message());
  }
}

Json NotificationJson(const Notification& n) {
  return Json{{"id", n.id},
              {"endpoint", n.endpoint_id},
              {"event_type", n.event_type},
              {"body", n.body},
              {"status", NotificationStatusName(n.status)},
              {"attempts", n.attempts},
              {"created_ms", n.created_ms},
              {"updated_ms", n.updated_ms},
              {"next_attempt_ms", n.next_attempt_ms},
              {"last_http_status", n.last_http_status},
              {"last_error", n.last_error}};
}

// Everything but the secrets (how many there are is all an operator sees), and this daemon's
// view of its health.
Json EndpointJson(const Endpoint& e, const EndpointHealth& health) {
  Json json{{"id", e.id},
            {"url", e.url},
            {"secrets", e.secrets.size()},
            {"ladder_ms", Json::array()},
            {"success_body", e.success_body ? Json(*e.success_body) : Json(nullptr)},
            {"max_in_flight", e.max_in_flight},
            {"enabled", e.enabled},
            {"disabled_reason", e.disabled_reason},
            {"created_ms", e.created_ms},
            {"updated_ms", e.updated_ms}};
  for (std::chrono::milliseconds step : e.ladder) json["ladder_ms"].push_back(step.count());
  json["health"] = Json{{"in_flight", health.in_flight},
                        {"breaker_open", health.breaker_open},
                        {"consecutive_failures", health.consecutive_failures}};
  return json;
}

std::optional<NotificationStatus> NotificationStatusFromName(std::string_view name) {
  for (NotificationStatus status : {NotificationStatus::kPending, NotificationStatus::kSucceeded,
                                    NotificationStatus::kFailed}) {
    if (NotificationStatusName(status) == name) return status;
  }
  return std::nullopt;
}

// Whether `caller` may read the notifications of `endpoint_id`: a merchant only its own.
bool MayRead(const Caller& caller, std::string_view endpoint_id) {
  return caller.role != Role::kMerchant || caller.name == endpoint_id;
}

}  // namespace

void AddNotifierRoutes(Notifier& notifier, const TokenTable& tokens,
                       http::HttpServerOptions& options) {
  auto& post = options.post_routes;
  const std::vector<Role> operators{Role::kOperator};
  const std::vector<Role> readers{Role::kProducer, Role::kOperator, Role::kMerchant};

  post["/v1/notifications/submit"] =
      Guarded(tokens, {Role::kProducer}, [&notifier](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> endpoint = StringField(body, "endpoint", true, &error);
        if (!endpoint) return error;
        std::optional<std::string> event_type = StringField(body, "event_type", true, &error);
        if (!event_type) return error;
        std::optional<std::string> text = StringField(body, "body", true, &error);
        if (!text) return error;
        Result<Notification> stored = notifier.Submit(*endpoint, *event_type, std::move(*text));
        if (!stored.ok()) return Failure(stored.status());
        return Answer(200, Json{{"id", stored->id}, {"status", "pending"}});
      });

  post["/v1/notifications/get"] =
      Guarded(tokens, readers, [&notifier](const Caller& caller, const Json& body) {
        HttpResponse error;
        std::optional<std::string> id = StringField(body, "id", true, &error);
        if (!id) return error;
        std::optional<bool> with_attempts = BoolField(body, "attempts", false, &error);
        if (!with_attempts) return error;
        Result<std::optional<Notification>> found = notifier.Get(*id);
        if (!found.ok()) return Failure(found.status());
        if (!*found || !MayRead(caller, (*found)->endpoint_id)) {
          return Error(404, "no notification with this id");
        }
        Json json = NotificationJson(**found);
        if (*with_attempts) {
          Result<std::vector<NotificationAttempt>> attempts = notifier.Attempts(*id, 1000);
          if (!attempts.ok()) return Failure(attempts.status());
          json["attempt_history"] = Json::array();
          for (const NotificationAttempt& a : *attempts) {
            json["attempt_history"].push_back(Json{{"number", a.number},
                                                   {"started_ms", a.started_ms},
                                                   {"latency_ms", a.latency_ms},
                                                   {"http_status", a.http_status},
                                                   {"verdict", a.verdict},
                                                   {"excerpt", a.excerpt},
                                                   {"error", a.error}});
          }
        }
        return Answer(200, json);
      });

  post["/v1/notifications/list"] =
      Guarded(tokens, readers, [&notifier](const Caller& caller, const Json& body) {
        HttpResponse error;
        NotificationQuery query;
        // A merchant's own endpoint by default; every endpoint's for the others by default.
        std::optional<std::string> endpoint =
            caller.role == Role::kMerchant && !body.contains("endpoint")
                ? std::optional<std::string>(caller.name)
                : StringField(body, "endpoint", false, &error);
        if (!endpoint) return error;
        if (!MayRead(caller, *endpoint)) {
          return Error(403, "a merchant token reads its own endpoint's notifications only");
        }
        query.endpoint_id = *endpoint;
        std::optional<int64_t> from = IntegerField(body, "from_ms", 0, 0, kMaxMs, &error);
        std::optional<int64_t> to =
            from ? IntegerField(body, "to_ms", kMaxMs, 0, kMaxMs, &error) : std::nullopt;
        std::optional<int64_t> after_created =
            to ? IntegerField(body, "after_created_ms", kMinMs, kMinMs, kMaxMs, &error)
               : std::nullopt;
        std::optional<std::string> after_id =
            after_created ? StringField(body, "after_id", false, &error) : std::nullopt;
        std::optional<int64_t> limit =
            after_id ? IntegerField(body, "limit", 100, 1, 1000, &error) : std::nullopt;
        std::optional<std::string> status_name =
            limit ? StringField(body, "status", false, &error) : std::nullopt;
        if (!status_name) return error;
        if (!status_name->empty()) {
          query.status = NotificationStatusFromName(*status_name);
          if (!query.status) return Error(400, "status must be pending, succeeded or failed");
        }
        query.from_ms = *from;
        query.to_ms = *to;
        query.after_created_ms = *after_created;
        query.after_id = *after_id;
        query.limit = static_cast<int>(*limit);
        Result<std::vector<Notification>> page = notifier.List(query);
        if (!page.ok()) return Failure(page.status());
        Json json{{"notifications", Json::array()}, {"next", nullptr}};
        for (const Notification& n : *page) json["notifications"].push_back(NotificationJson(n));
        if (static_cast<int>(page->size()) == query.limit) {
          json["next"] = Json{{"after_created_ms", page->back().created_ms},
                              {"after_id", page->back().id}};
        }
        return Answer(200, json);
      });

  post["/v1/notifications/resend"] =
      Guarded(tokens, operators, [&notifier](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> id = StringField(body, "id", true, &error);
        if (!id) return error;
        Result<RequestResult> result = notifier.Resend(*id);
        if (!result.ok()) return Failure(result.status());
        Json json{{"id", *id}, {"result", RequestResultName(*result)}};
        switch (*result) {
          case RequestResult::kNotFound: return Error(404, "no notification with this id");
          case RequestResult::kConflict:
            return Error(409, "the notification's endpoint is disabled or gone: enable it first");
          default: return Answer(200, json);
        }
      });

  post["/v1/notifications/counts"] =
      Guarded(tokens, operators, [&notifier](const Caller&, const Json&) {
        Result<std::map<NotificationStatus, int64_t>> counts = notifier.Counts();
        if (!counts.ok()) return Failure(counts.status());
        Json json{{"counts", Json::object()}};
        for (const auto& [status, count] : *counts) {
          json["counts"][std::string(NotificationStatusName(status))] = count;
        }
        return Answer(200, json);
      });

  post["/v1/endpoints/put"] =
      Guarded(tokens, operators, [&notifier](const Caller&, const Json& body) {
        HttpResponse error;
        EndpointChange change;
        std::optional<std::string> id = StringField(body, "id", true, &error);
        if (!id) return error;
        change.id = *id;
        if (body.contains("url")) {
          std::optional<std::string> url = StringField(body, "url", true, &error);
          if (!url) return error;
          change.url = *url;
        }
        if (auto it = body.find("secrets"); it != body.end()) {
          if (!it->is_array()) return Error(400, "field \"secrets\" must be an array of strings");
          std::vector<std::string> secrets;
          for (const Json& secret : *it) {
            if (!secret.is_string()) {
              return Error(400, "field \"secrets\" must be an array of strings");
            }
            secrets.push_back(secret.get<std::string>());
          }
          change.secrets = std::move(secrets);
        }
        if (body.contains("ladder")) {
          std::optional<std::string> text = StringField(body, "ladder", true, &error);
          if (!text) return error;
          Result<RetryLadder> ladder = ParseRetryLadder(*text);
          if (!ladder.ok()) return Error(400, "ladder: " + ladder.status().message());
          change.ladder = std::move(ladder).value();
        }
        if (auto it = body.find("success_body"); it != body.end()) {
          if (it->is_null()) {
            change.success_body = std::optional<std::string>();
          } else if (it->is_string()) {
            change.success_body = std::optional<std::string>(it->get<std::string>());
          } else {
            return Error(400, "field \"success_body\" must be a string or null");
          }
        }
        if (body.contains("max_in_flight")) {
          std::optional<int64_t> limit =
              IntegerField(body, "max_in_flight", 4, 1, kMaxEndpointInFlight, &error);
          if (!limit) return error;
          change.max_in_flight = static_cast<int>(*limit);
        }
        if (body.contains("enabled")) {
          std::optional<bool> enabled = BoolField(body, "enabled", true, &error);
          if (!enabled) return error;
          change.enabled = *enabled;
        }
        Result<EndpointPut> put = notifier.PutEndpoint(change);
        if (!put.ok()) return Failure(put.status());
        Json json = EndpointJson(put->endpoint, notifier.Health(put->endpoint.id));
        json["created"] = put->created;
        if (put->generated_secret) json["secret"] = *put->generated_secret;
        return Answer(200, json);
      });

  post["/v1/endpoints/get"] =
      Guarded(tokens, operators, [&notifier](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> id = StringField(body, "id", true, &error);
        if (!id) return error;
        Result<std::optional<Endpoint>> found = notifier.GetEndpoint(*id);
        if (!found.ok()) return Failure(found.status());
        if (!*found) return Error(404, "no endpoint with this id");
        return Answer(200, EndpointJson(**found, notifier.Health((*found)->id)));
      });

  post["/v1/endpoints/list"] =
      Guarded(tokens, operators, [&notifier](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> after_id = StringField(body, "after_id", false, &error);
        std::optional<int64_t> limit =
            after_id ? IntegerField(body, "limit", 100, 1, 1000, &error) : std::nullopt;
        if (!limit) return error;
        Result<std::vector<Endpoint>> page =
            notifier.ListEndpoints(*after_id, static_cast<int>(*limit));
        if (!page.ok()) return Failure(page.status());
        Json json{{"endpoints", Json::array()}};
        for (const Endpoint& e : *page) {
          json["endpoints"].push_back(EndpointJson(e, notifier.Health(e.id)));
        }
        return Answer(200, json);
      });
}

std::string RenderNotifierMetrics(Notifier& notifier) {
  std::string out;
  const NotifierCounters& c = notifier.counters();
  struct CounterLine {
    const char* name;
    const char* help;
    const std::atomic<uint64_t>& value;
  };
  const CounterLine counters[] = {
      {"xa_msgd_notifications_submitted_total", "Notifications submitted.", c.submitted},
      {"xa_msgd_notification_attempts_total", "Calls to endpoints.", c.attempts},
      {"xa_msgd_notifications_delivered_total", "Notifications their endpoint accepted.",
       c.delivered},
      {"xa_msgd_notification_retries_total", "Attempts that failed with a step left.",
       c.retries},
      {"xa_msgd_notifications_failed_total", "Notifications that failed (ladder out, or gone).",
       c.failed},
      {"xa_msgd_endpoints_gone_total", "Endpoints disabled by a 410 Gone.", c.endpoints_gone},
      {"xa_msgd_notification_stale_outcomes_total", "Attempts that outlived their claim.",
       c.stale_outcomes},
      {"xa_msgd_notifier_failures_total", "Claims and records that failed (store down).",
       c.job_failures},
  };
  for (const CounterLine& line : counters) {
    internal::AppendPrometheusHeader(&out, line.name, "counter", line.help);
    internal::AppendPrometheusSample(&out, line.name, "", static_cast<double>(line.value.load()));
  }
  Result<std::map<NotificationStatus, int64_t>> counts = notifier.Counts();
  if (!counts.ok()) return out;
  internal::AppendPrometheusHeader(&out, "xa_msgd_notifications", "gauge",
                                   "Notifications in the store, by status.");
  for (const auto& [status, count] : *counts) {
    internal::AppendPrometheusSample(
        &out, "xa_msgd_notifications",
        "status=\"" + std::string(NotificationStatusName(status)) + "\"",
        static_cast<double>(count));
  }
  return out;
}

}  // namespace xa::msg
