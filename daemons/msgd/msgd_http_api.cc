#include "daemons/msgd/msgd_http_api.h"

#include <functional>
#include <limits>
#include <string_view>
#include <utility>

#include "daemons/msgd/json_api.h"
#include "src/base/prometheus_text.h"

namespace xa::msg {
namespace {

using json_api::Answer;
using json_api::BoolField;
using json_api::Error;
using json_api::Guarded;
using json_api::Handler;
using json_api::IntegerField;
using json_api::Json;
using json_api::StatusOfError;
using json_api::StringField;

using http::HttpRequest;
using http::HttpResponse;

Json MessageJson(const Message& message, bool with_body) {
  Json json{{"id", message.id},
            {"producer_id", message.producer_id},
            {"data_type", message.data_type},
            {"queue", message.consumer_queue},
            {"status", MessageStatusName(message.status)},
            {"dead", message.dead},
            {"resend_count", message.resend_count},
            {"check_count", message.check_count},
            {"created_ms", message.created_ms},
            {"updated_ms", message.updated_ms},
            {"next_attempt_ms", message.next_attempt_ms},
            {"query_url", message.query_url},
            {"last_error", message.last_error}};
  if (with_body) json["body"] = message.body;
  return json;
}

HttpResponse OutcomeAnswer(const Result<RequestOutcome>& outcome, std::string_view id) {
  if (!outcome.ok()) return Error(StatusOfError(outcome.status()), outcome.status().message());
  Json json{{"id", id}, {"result", RequestResultName(outcome->result)}};
  if (outcome->message) {
    json["status"] = MessageStatusName(outcome->message->status);
    json["dead"] = outcome->message->dead;
  }
  switch (outcome->result) {
    case RequestResult::kChanged:
    case RequestResult::kAlready: return Answer(200, json);
    case RequestResult::kNotFound:
      json["error"] = "no message with this id (never pre-sent, cancelled, or deleted)";
      return Answer(404, json);
    case RequestResult::kForbidden:
      return Error(403, "the message belongs to another producer");
    case RequestResult::kConflict:
      json["error"] = "the message's state does not allow this request";
      return Answer(409, json);
  }
  return Error(500, "unknown outcome");
}

// {"id"} → one request of the service.
http::HttpPostHandler IdRequest(
    const TokenTable& tokens, std::vector<Role> roles,
    std::function<Result<RequestOutcome>(const Caller&, const std::string&)> call) {
  return Guarded(tokens, std::move(roles),
                 [call = std::move(call)](const Caller& caller, const Json& body) {
                   HttpResponse error;
                   std::optional<std::string> id = StringField(body, "id", true, &error);
                   if (!id) return error;
                   return OutcomeAnswer(call(caller, *id), *id);
                 });
}

// The producer's own name, or "" for an operator (who may touch any message).
std::string ProducerScope(const Caller& caller) {
  return caller.role == Role::kProducer ? caller.name : std::string();
}

}  // namespace

void AddApiRoutes(MessageService& service, const TokenTable& tokens,
                  http::HttpServerOptions& options) {
  auto& post = options.post_routes;
  const std::vector<Role> producers{Role::kProducer, Role::kOperator};
  const std::vector<Role> operators{Role::kOperator};

  post["/v1/messages/prepare"] = Guarded(
      tokens, {Role::kProducer}, [&service](const Caller& caller, const Json& body) {
        HttpResponse error;
        Message fields;
        fields.producer_id = caller.name;
        std::optional<std::string> data_type = StringField(body, "data_type", true, &error);
        if (!data_type) return error;
        std::optional<std::string> queue = StringField(body, "queue", true, &error);
        if (!queue) return error;
        std::optional<std::string> text = StringField(body, "body", true, &error);
        if (!text) return error;
        std::optional<std::string> query_url = StringField(body, "query_url", false, &error);
        if (!query_url) return error;
        fields.data_type = std::move(*data_type);
        fields.consumer_queue = std::move(*queue);
        fields.body = std::move(*text);
        fields.query_url = std::move(*query_url);
        Result<Message> stored = service.PreSend(std::move(fields));
        if (!stored.ok()) return Error(StatusOfError(stored.status()), stored.status().message());
        return Answer(200, Json{{"id", stored->id}, {"status", "pending"}});
      });
  post["/v1/messages/confirm"] =
      IdRequest(tokens, producers, [&service](const Caller& caller, const std::string& id) {
        return service.Confirm(id, ProducerScope(caller));
      });
  post["/v1/messages/cancel"] =
      IdRequest(tokens, producers, [&service](const Caller& caller, const std::string& id) {
        return service.Cancel(id, ProducerScope(caller));
      });
  post["/v1/messages/ack"] = IdRequest(
      tokens, {Role::kConsumer, Role::kOperator},
      [&service](const Caller&, const std::string& id) { return service.Acknowledge(id); });

  post["/v1/admin/confirm"] = IdRequest(
      tokens, operators, [&service](const Caller& caller, const std::string& id) {
        return service.OperatorConfirm(id, caller.name);
      });
  post["/v1/admin/resend"] = IdRequest(
      tokens, operators, [&service](const Caller& caller, const std::string& id) {
        return service.Resend(id, caller.name);
      });
  post["/v1/admin/revive"] = IdRequest(
      tokens, operators, [&service](const Caller& caller, const std::string& id) {
        return service.Revive(id, caller.name);
      });
  post["/v1/admin/kill"] = IdRequest(
      tokens, operators, [&service](const Caller& caller, const std::string& id) {
        return service.Kill(id, caller.name);
      });
  post["/v1/admin/delete"] = IdRequest(
      tokens, operators, [&service](const Caller& caller, const std::string& id) {
        return service.Delete(id, caller.name);
      });

  post["/v1/admin/get"] =
      Guarded(tokens, operators, [&service](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> id = StringField(body, "id", true, &error);
        if (!id) return error;
        Result<std::optional<Message>> message = service.Get(*id);
        if (!message.ok()) {
          return Error(StatusOfError(message.status()), message.status().message());
        }
        if (!*message) return Error(404, "no message with this id");
        Json json = MessageJson(**message, true);
        Result<std::vector<MessageEvent>> history = service.History(*id, 1000);
        if (!history.ok()) {
          return Error(StatusOfError(history.status()), history.status().message());
        }
        json["history"] = Json::array();
        for (const MessageEvent& event : *history) {
          json["history"].push_back(
              Json{{"at_ms", event.at_ms}, {"kind", event.kind}, {"detail", event.detail}});
        }
        return Answer(200, json);
      });
  post["/v1/admin/list"] =
      Guarded(tokens, operators, [&service](const Caller&, const Json& body) {
        HttpResponse error;
        std::optional<std::string> status_name = StringField(body, "status", true, &error);
        if (!status_name) return error;
        std::optional<MessageStatus> status = MessageStatusFromName(*status_name);
        if (!status) {
          return Error(400, "status must be pending, ready, sent, done or parked");
        }
        constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
        constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
        std::optional<bool> dead = BoolField(body, "dead", false, &error);
        std::optional<int64_t> after_updated_ms =
            dead ? IntegerField(body, "after_updated_ms", kMin, kMin, kMax, &error) : std::nullopt;
        std::optional<std::string> after_id =
            after_updated_ms ? StringField(body, "after_id", false, &error) : std::nullopt;
        std::optional<int64_t> limit =
            after_id ? IntegerField(body, "limit", 100, 1, 1000, &error) : std::nullopt;
        if (!limit) return error;
        Result<std::vector<Message>> page = service.List(*status, *dead, *after_updated_ms,
                                                         *after_id, static_cast<int>(*limit));
        if (!page.ok()) return Error(StatusOfError(page.status()), page.status().message());
        Json json{{"messages", Json::array()}};
        for (const Message& message : *page) json["messages"].push_back(MessageJson(message, false));
        return Answer(200, json);
      });
  post["/v1/admin/audit"] =
      Guarded(tokens, operators, [&service](const Caller&, const Json& body) {
        constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
        HttpResponse error;
        std::optional<int64_t> before_seq = IntegerField(body, "before_seq", kMax, 1, kMax, &error);
        std::optional<int64_t> limit =
            before_seq ? IntegerField(body, "limit", 100, 1, 1000, &error) : std::nullopt;
        if (!limit) return error;
        Result<std::vector<AuditEntry>> page =
            service.AuditLog(*before_seq, static_cast<int>(*limit));
        if (!page.ok()) return Error(StatusOfError(page.status()), page.status().message());
        Json json{{"entries", Json::array()}};
        for (const AuditEntry& entry : *page) {
          json["entries"].push_back(Json{{"seq", entry.seq},
                                         {"at_ms", entry.at_ms},
                                         {"operator", entry.operator_name},
                                         {"action", entry.action},
                                         {"id", entry.message_id},
                                         {"result", entry.result}});
        }
        return Answer(200, json);
      });
  post["/v1/admin/counts"] =
      Guarded(tokens, operators, [&service](const Caller&, const Json&) {
        Result<std::map<MessageStatus, StatusCount>> counts = service.Counts();
        if (!counts.ok()) return Error(StatusOfError(counts.status()), counts.status().message());
        Json json{{"counts", Json::array()}};
        for (const auto& [status, count] : *counts) {
          Json one{{"status", MessageStatusName(status)}, {"live", count.live},
                   {"dead", count.dead}};
          if (count.oldest_updated_ms) one["oldest_updated_ms"] = *count.oldest_updated_ms;
          json["counts"].push_back(one);
        }
        return Answer(200, json);
      });

  options.routes["/metrics"] = [&service] {
    return HttpResponse{200, std::string(http::kPrometheusContentType), RenderMetrics(service)};
  };
  options.routes["/healthz"] = [&service] {
    Result<std::map<MessageStatus, StatusCount>> counts = service.Counts();
    if (!counts.ok()) return HttpResponse{503, "text/plain; charset=utf-8", "store down\n"};
    return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"};
  };
}

std::string RenderMetrics(MessageService& service) {
  std::string out;
  const ServiceCounters& c = service.counters();
  struct CounterLine {
    const char* name;
    const char* help;
    const std::atomic<uint64_t>& value;
  };
  const CounterLine counters[] = {
      {"xa_msgd_pre_sent_total", "Messages pre-sent by producers.", c.pre_sent},
      {"xa_msgd_confirmed_total", "Messages confirmed by their producers.", c.confirmed},
      {"xa_msgd_cancelled_total", "Messages cancelled by their producers.", c.cancelled},
      {"xa_msgd_acknowledged_total", "Messages acknowledged by consumers.", c.acknowledged},
      {"xa_msgd_published_total", "First publications the broker confirmed.", c.published},
      {"xa_msgd_redeliveries_total", "Publications again after no acknowledgement came.",
       c.redelivered},
      {"xa_msgd_publish_failures_total", "Publications the broker did not confirm.",
       c.publish_failures},
      {"xa_msgd_dead_total", "Messages that died after their last redelivery.", c.died},
      {"xa_msgd_parked_total", "Messages parked after their last unanswered back-query.",
       c.parked},
      {"xa_msgd_job_failures_total", "Job passes that failed (store or broker down).",
       c.job_failures},
      {"xa_msgd_purged_total", "Done messages deleted after their retention.", c.purged},
  };
  for (const CounterLine& line : counters) {
    internal::AppendPrometheusHeader(&out, line.name, "counter", line.help);
    internal::AppendPrometheusSample(&out, line.name, "", static_cast<double>(line.value.load()));
  }
  internal::AppendPrometheusHeader(&out, "xa_msgd_back_queries_total", "counter",
                                   "Back-queries to producers, by answer.");
  internal::AppendPrometheusSample(&out, "xa_msgd_back_queries_total", "answer=\"committed\"",
                                   static_cast<double>(c.back_query_committed.load()));
  internal::AppendPrometheusSample(&out, "xa_msgd_back_queries_total", "answer=\"rolled_back\"",
                                   static_cast<double>(c.back_query_rolled_back.load()));
  internal::AppendPrometheusSample(&out, "xa_msgd_back_queries_total", "answer=\"unknown\"",
                                   static_cast<double>(c.back_query_unknown.load()));

  Result<std::map<MessageStatus, StatusCount>> counts = service.Counts();
  internal::AppendPrometheusHeader(&out, "xa_msgd_store_up", "gauge",
                                   "1 when the store answered this scrape.");
  internal::AppendPrometheusSample(&out, "xa_msgd_store_up", "", counts.ok() ? 1 : 0);
  if (!counts.ok()) return out;
  internal::AppendPrometheusHeader(&out, "xa_msgd_messages", "gauge",
                                   "Messages in the store, by status and dead flag.");
  for (const auto& [status, count] : *counts) {
    std::string label = "status=\"" + std::string(MessageStatusName(status)) + "\"";
    internal::AppendPrometheusSample(&out, "xa_msgd_messages", label + ",dead=\"false\"",
                                     static_cast<double>(count.live));
    internal::AppendPrometheusSample(&out, "xa_msgd_messages", label + ",dead=\"true\"",
                                     static_cast<double>(count.dead));
  }
  internal::AppendPrometheusHeader(&out, "xa_msgd_oldest_age_seconds", "gauge",
                                   "Age of the longest-unchanged message, by status.");
  int64_t now = service.NowMs();
  for (const auto& [status, count] : *counts) {
    if (!count.oldest_updated_ms) continue;
    internal::AppendPrometheusSample(
        &out, "xa_msgd_oldest_age_seconds",
        "status=\"" + std::string(MessageStatusName(status)) + "\"",
        static_cast<double>(now - *count.oldest_updated_ms) / 1000.0);
  }
  return out;
}

}  // namespace xa::msg
