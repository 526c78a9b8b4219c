// HttpClient: the HTTP/1.1 client that xa calls services with (TCC participants over HTTP, and
// later the message service's deliveries). Built on cpp-httplib, the same stack the project
// serves with (http_server.h), so one library, its TLS through OpenSSL included, does both sides.
// Callers never see cpp-httplib: this header is the whole interface.
//
//   HttpClientOptions options;
//   options.base_url = "http://127.0.0.1:18080";
//   Result<std::unique_ptr<HttpClient>> client = HttpClient::Make(options);
//   Result<HttpReply> reply = (*client)->Post("/try", "application/json", body);
//
// Every call is bounded: connect_timeout to connect, request_timeout for each read and write, and
// at most max_response_bytes of response body (a larger body fails the call, Code::kRmFail). A
// call that could not be made or whose answer could not be read fails with Code::kRmFail,
// naming the URL and what went wrong (connection refused, timed out, ...); an answer with any
// HTTP status is a reply, not an error. Header values (credentials) never appear in an error.
//
// Connections are kept alive and reused: up to max_connections calls run at once, each on a
// connection of its own; a call beyond that waits for a free one.
//
// Thread safety: thread-safe.

#ifndef XA_SRC_HTTP_HTTP_CLIENT_H_
#define XA_SRC_HTTP_HTTP_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "xa/status.h"

namespace xa::http {

struct HttpClientOptions {
  // "http://host:port" or "https://host:port" (no path: each call names its own).
  std::string base_url;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(5)};
  size_t max_response_bytes = 64 * 1024;
  size_t max_connections = 8;
  // Sent with every request (e.g. an Authorization header). Never logged, never in an error.
  std::vector<std::pair<std::string, std::string>> headers;
  // A kept-alive connection may be closed by the server (its idle timeout, its limit of
  // requests a connection) just as a call is sent on it; the call then fails to read or write
  // without the server having answered. With this set, such a call on a reused connection is
  // made once more on a fresh one. Only for idempotent calls: the server may have received and
  // run the first one.
  bool retry_idempotent_on_stale_connection = false;
  // With this set, a response body larger than max_response_bytes is cut there
  // (HttpReply::truncated) instead of failing the call: for callers that read only an excerpt
  // of the answer (a webhook endpoint's), whatever its size.
  bool truncate_large_responses = false;
  // Connect to this address (an IP literal) instead of looking base_url's host up; the Host
  // header (and TLS's server name) stay the host's. For a caller that checked the address
  // itself (the notifier's URL policy, against SSRF): no second lookup can answer otherwise.
  std::string connect_address{};
  // When positive, a call still running this long after it started is cut (its connection shut
  // down) and fails, however the server trickles its answer: request_timeout bounds each read
  // and write, not the whole call.
  std::chrono::milliseconds call_deadline{0};
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpReply {
  int status = 0;
  std::string body;        // at most max_response_bytes
  bool truncated = false;  // the body was longer (truncate_large_responses)
  HttpHeaders headers;     // the answer's, names in lower case
  // The value of header `name` (lower case), "" when absent.
  std::string Header(std::string_view name) const;
};

class HttpClient {
 public:
  // XA_INVAL for a base_url that is not "http(s)://host[:port]", zero timeouts or limits.
  static Result<std::unique_ptr<HttpClient>> Make(HttpClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to base_url + `path` (which starts with '/').
  Result<HttpReply> Post(std::string_view path, std::string_view content_type, std::string body);
  // The same, with headers of this call beside the client's (a signature, an id). Their values
  // never appear in an error either.
  Result<HttpReply> Post(std::string_view path, std::string_view content_type, std::string body,
                         const HttpHeaders& call_headers);
  // GETs, DELETEs base_url + `path`, bounded as Post is.
  Result<HttpReply> Get(std::string_view path);
  Result<HttpReply> Delete(std::string_view path);

  const std::string& base_url() const noexcept;

  class Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::http

#endif  // XA_SRC_HTTP_HTTP_CLIENT_H_
