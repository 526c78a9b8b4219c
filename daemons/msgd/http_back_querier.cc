#include "daemons/msgd/http_back_querier.h"

#include <nlohmann/json.hpp>

#include <utility>

#include "src/base/escape.h"

namespace xa::msg {

Result<http::HttpClient*> HttpBackQuerier::ClientFor(const std::string& base_url) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(base_url);
  if (it != clients_.end()) return it->second.get();
  if (clients_.size() >= kMaxClients) clients_.erase(clients_.begin());
  http::HttpClientOptions options;
  options.base_url = base_url;
  options.connect_timeout = timeout_;
  options.request_timeout = timeout_;
  options.max_response_bytes = 4096;
  options.max_connections = 4;
  // The question changes nothing at the producer: asking twice is harmless.
  options.retry_idempotent_on_stale_connection = true;
  Result<std::unique_ptr<http::HttpClient>> client = http::HttpClient::Make(options);
  if (!client.ok()) return client.status();
  http::HttpClient* raw = client->get();
  clients_.emplace(base_url, std::move(client).value());
  return raw;
}

BackQuerier::Reply HttpBackQuerier::Ask(const Message& message) {
  if (message.query_url.empty()) {
    return Reply{BackQueryAnswer::kUnknown, "the producer gave no query_url: confirm, cancel or "
                                            "delete the message by hand"};
  }
  // query_url was checked at pre-send: http(s)://host[:port]/path.
  size_t path_at = message.query_url.find('/', message.query_url.find("//") + 2);
  std::string base = message.query_url.substr(0, path_at);
  std::string path = message.query_url.substr(path_at);
  Result<http::HttpClient*> client = ClientFor(base);
  if (!client.ok()) return Reply{BackQueryAnswer::kUnknown, client.status().message()};
  nlohmann::json question{{"id", message.id},
                          {"producer_id", message.producer_id},
                          {"data_type", message.data_type}};
  Result<http::HttpReply> reply = (*client)->Post(path, "application/json", question.dump());
  if (!reply.ok()) return Reply{BackQueryAnswer::kUnknown, reply.status().message()};
  if (reply->status != 200) {
    return Reply{BackQueryAnswer::kUnknown,
                 "the query endpoint answered HTTP " + std::to_string(reply->status)};
  }
  nlohmann::json answer = nlohmann::json::parse(reply->body, nullptr, false);
  if (answer.is_object()) {
    auto state = answer.find("state");
    if (state != answer.end() && state->is_string()) {
      if (*state == "committed") return Reply{BackQueryAnswer::kCommitted, ""};
      if (*state == "rolled_back") return Reply{BackQueryAnswer::kRolledBack, ""};
    }
  }
  return Reply{BackQueryAnswer::kUnknown,
               "the query endpoint answered 200 without {\"state\": \"committed\"} or "
               "{\"state\": \"rolled_back\"}: " +
                   internal::EscapeForMessage(reply->body.substr(0, 200))};
}

}  // namespace xa::msg
