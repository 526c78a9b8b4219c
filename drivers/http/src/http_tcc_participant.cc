#include "xa/http/tcc_participant.h"

#include <map>
#include <string>
#include <string_view>

#include "src/base/byte_text.h"
#include "src/base/escape.h"
#include "src/http/http_client.h"

namespace xa::http {
namespace {

using internal::EscapeForMessage;
using internal::EscapeJsonString;

bool IsUtf8(std::string_view text) {
  while (!text.empty()) {
    size_t n = internal::Utf8SequenceLength(text);
    if (n == 0) return false;
    text.remove_prefix(n);
  }
  return true;
}

// "http(s)://host[:port]/path" split into its base and its path.
bool SplitUrl(const std::string& url, std::string* base, std::string* path) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return false;
  size_t slash = url.find('/', scheme + 3);
  if (slash == std::string::npos || slash == scheme + 3) return false;
  *base = url.substr(0, slash);
  *path = url.substr(slash);
  return true;
}

class HttpTccParticipant final : public TccParticipant {
 public:
  struct Endpoint {
    HttpClient* client = nullptr;
    std::string path;
  };

  TccResult Try(const TccCall& call) override { return Call(try_, "try", call); }
  TccResult Confirm(const TccCall& call) override { return Call(confirm_, "confirm", call); }
  TccResult Cancel(const TccCall& call) override { return Call(cancel_, "cancel", call); }

  std::map<std::string, std::unique_ptr<HttpClient>> clients_;  // by base URL
  Endpoint try_, confirm_, cancel_;

 private:
  static TccResult Call(const Endpoint& endpoint, std::string_view operation,
                        const TccCall& call) {
    Result<HttpReply> reply =
        endpoint.client->Post(endpoint.path, "application/json", TccRequestBody(call, operation));
    if (!reply.ok()) return TccResult::Failed(reply.status().message());
    const std::string where =
        "HTTP " + std::to_string(reply->status) + " from " + endpoint.client->base_url() +
        endpoint.path;
    if (reply->status >= 200 && reply->status < 300) return TccResult::Done();
    // What the service said, bounded and escaped: a reason for the operator, never raw bytes.
    std::string said = EscapeForMessage(reply->body.substr(0, 512));
    if (reply->status == 409 && operation == "try") {
      return TccResult::Refused(where + ": " + said);
    }
    return TccResult::Failed(where + ": " + said);
  }
};

}  // namespace

std::string TccRequestBody(const TccCall& call, std::string_view operation) {
  const std::string bqual = call.branch.bqual();
  std::string body = "{\"global_id\":\"" + EscapeJsonString(call.global.ToString()) +
                     "\",\"branch_id\":\"" + internal::LowerHex(bqual) + "\",\"participant\":\"" +
                     EscapeJsonString(call.participant) + "\",\"operation\":\"" +
                     std::string(operation) + "\",";
  if (IsUtf8(call.payload)) {
    body += "\"payload\":\"" + EscapeJsonString(call.payload) + "\"}";
  } else {
    body += "\"payload_base64\":\"" + internal::Base64Url(call.payload) + "\"}";
  }
  return body;
}

Result<std::shared_ptr<TccParticipant>> MakeTccParticipant(TccParticipantOptions options) {
  auto participant = std::make_shared<HttpTccParticipant>();
  const std::pair<const char*, const std::string*> urls[] = {
      {"try_url", &options.try_url},
      {"confirm_url", &options.confirm_url},
      {"cancel_url", &options.cancel_url}};
  HttpTccParticipant::Endpoint* endpoints[] = {&participant->try_, &participant->confirm_,
                                               &participant->cancel_};
  for (size_t i = 0; i < 3; ++i) {
    std::string base, path;
    if (!SplitUrl(*urls[i].second, &base, &path)) {
      return Status(Code::kInval, std::string("TCC participant over HTTP: ") + urls[i].first +
                                      " '" + EscapeForMessage(*urls[i].second) +
                                      "' is not http(s)://host[:port]/path");
    }
    auto& client = participant->clients_[base];
    if (client == nullptr) {
      HttpClientOptions client_options;
      client_options.base_url = base;
      client_options.connect_timeout = options.connect_timeout;
      client_options.request_timeout = options.request_timeout;
      client_options.max_response_bytes = options.max_response_bytes;
      client_options.max_connections = options.max_connections;
      client_options.headers = options.headers;
      // Every call is idempotent (a participant answers a repeat as done: the barrier).
      client_options.retry_idempotent_on_stale_connection = true;
      Result<std::unique_ptr<HttpClient>> made = HttpClient::Make(std::move(client_options));
      if (!made.ok()) {
        return made.status().WithContext(std::string("TCC participant over HTTP, ") +
                                         urls[i].first);
      }
      client = std::move(*made);
    }
    endpoints[i]->client = client.get();
    endpoints[i]->path = std::move(path);
  }
  return std::shared_ptr<TccParticipant>(std::move(participant));
}

}  // namespace xa::http
