// The helpers every JSON route of xa-msgd's API uses (msgd_http_api.cc, the messages;
// notifier_http_api.cc, the notifications): the answer and error shapes, the body's fields, and
// the token check. One place, so that every route answers a bad request the same way.
//
// Thread safety: pure functions; Guarded's handler is as thread-safe as the handler it wraps.

#ifndef XA_DAEMONS_MSGD_JSON_API_H_
#define XA_DAEMONS_MSGD_JSON_API_H_

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemons/msgd/msgd_tokens.h"
#include "src/http/http_server.h"
#include "xa/status.h"

namespace xa::msg::json_api {

using http::HttpRequest;
using http::HttpResponse;
using Json = nlohmann::json;

inline constexpr std::string_view kJson = "application/json";

inline std::string Dump(const Json& json) {
  // Bodies came in as JSON strings, so they are UTF-8; replace rather than throw regardless.
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

inline HttpResponse Answer(int status, const Json& json) {
  return HttpResponse{status, std::string(kJson), Dump(json) + "\n"};
}
inline HttpResponse Error(int status, std::string what) {
  return Answer(status, Json{{"error", std::move(what)}});
}

inline int StatusOfError(const Status& status) {
  switch (status.code()) {
    case Code::kInval: return 400;
    case Code::kNoTa: return 404;
    default: return 503;
  }
}

// The JSON object of a request's body; nullopt (with `error` set) when it is not one.
inline std::optional<Json> ParseObject(const HttpRequest& request, HttpResponse* error) {
  Json json = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    *error = Error(400, "the request body must be a JSON object");
    return std::nullopt;
  }
  return json;
}

// The string field `name`, or nullopt (with `error`) when it is absent or not a string.
inline std::optional<std::string> StringField(const Json& json, const char* name, bool required,
                                       HttpResponse* error) {
  auto it = json.find(name);
  if (it == json.end()) {
    if (required) *error = Error(400, std::string("field \"") + name + "\" is required");
    return required ? std::nullopt : std::optional<std::string>("");
  }
  if (!it->is_string()) {
    *error = Error(400, std::string("field \"") + name + "\" must be a string");
    return std::nullopt;
  }
  return it->get<std::string>();
}

// An optional integer field in [min, max]; `fallback` when absent.
inline std::optional<int64_t> IntegerField(const Json& json, const char* name, int64_t fallback,
                                    int64_t min, int64_t max, HttpResponse* error) {
  auto it = json.find(name);
  if (it == json.end()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < min || it->get<int64_t>() > max) {
    *error = Error(400, std::string("field \"") + name + "\" must be an integer from " +
                            std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return it->get<int64_t>();
}

// An optional boolean field; `fallback` when absent.
inline std::optional<bool> BoolField(const Json& json, const char* name, bool fallback,
                              HttpResponse* error) {
  auto it = json.find(name);
  if (it == json.end()) return fallback;
  if (!it->is_boolean()) {
    *error = Error(400, std::string("field \"") + name + "\" must be true or false");
    return std::nullopt;
  }
  return it->get<bool>();
}

using Handler = std::function<HttpResponse(const Caller&, const Json&)>;

// Checks the token and its role, parses the body, and calls `handler`.
inline http::HttpPostHandler Guarded(const TokenTable& tokens, std::vector<Role> roles,
                              Handler handler) {
  return [&tokens, roles = std::move(roles), handler = std::move(handler)](
             const HttpRequest& request) -> HttpResponse {
    std::optional<Caller> caller = tokens.Authenticate(request.authorization);
    if (!caller) {
      return Error(401, "send 'Authorization: Bearer <token>' with a token of the service's "
                        "tokens file");
    }
    if (std::find(roles.begin(), roles.end(), caller->role) == roles.end()) {
      return Error(403, "a " + std::string(RoleName(caller->role)) +
                            " token may not call this endpoint");
    }
    HttpResponse error;
    std::optional<Json> body = ParseObject(request, &error);
    if (!body) return error;
    return handler(*caller, *body);
  };
}

}  // namespace xa::msg::json_api

#endif  // XA_DAEMONS_MSGD_JSON_API_H_
