// HttpServer: the small HTTP/1.1 server of the daemons' read-only endpoints (the Prometheus
// metrics of xa-agent; the message service's pages later). Built on cpp-httplib, Debian's
// libcpp-httplib-dev: the one HTTP stack the project serves with (it runs on plain threads and
// sockets, which the thread sanitizer follows, and brings TLS through OpenSSL when a daemon
// needs it). Callers never see cpp-httplib: this header is the whole interface.
//
//   HttpServerOptions options;
//   options.address = "127.0.0.1:19101";  // port 0: the kernel picks one (see address())
//   options.routes["/metrics"] = [&] { return HttpResponse{200, kPrometheusContentType, Render()};
//   }; Result<std::unique_ptr<HttpServer>> server = HttpServer::Start(std::move(options));
//   ... (*server)->address() ...
//   (*server)->Stop();
//
// GET (and HEAD) of the configured `routes` and POST of the configured `post_routes` are served:
// any other path is 404 and lists the paths there are, any other method on a known path is 405.
// A POST body larger than max_body_bytes is refused with 413 before its handler runs. Handlers
// run on the server's threads, several at once: they must be thread-safe.
//
// Thread safety: Start, Stop and address() may be called from any thread; Stop is idempotent
// and the destructor calls it.

#ifndef XA_SRC_HTTP_HTTP_SERVER_H_
#define XA_SRC_HTTP_HTTP_SERVER_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <utility>
#include <string_view>

#include "xa/status.h"

namespace xa::http {

// The content type of the Prometheus text exposition format, version 0.0.4.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(int status_code, std::string type, std::string text,
               std::vector<std::pair<std::string, std::string>> extra_headers = {})
      : status(status_code),
        content_type(std::move(type)),
        body(std::move(text)),
        headers(std::move(extra_headers)) {}
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Headers of this answer beside the server's response_headers (a Retry-After).
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse()>;

// What a POST handler is given.
struct HttpRequest {
  std::string path;
  std::string content_type;   // the request's Content-Type header, "" when absent
  std::string authorization;  // its Authorization header, "" when absent: a credential, never
                              // to be logged
  std::string body;           // at most HttpServerOptions::max_body_bytes
  // Every header of the request, names in lower case (a webhook's signature headers).
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of header `name` (lower case), "" when absent.
  std::string Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (key == name) return value;
    }
    return "";
  }
};
using HttpPostHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // "<IPv4 literal>:<port>" or "[<IPv6 literal>]:<port>" (src/net/socket_address.h); port 0
  // picks a free port.
  std::string address;
  // Path ("/metrics") → handler of GET; path → handler of POST. At least one route in all.
  std::map<std::string, HttpHandler> routes;
  std::map<std::string, HttpPostHandler> post_routes;
  // The largest request body read (a POST's; a GET's too, which nobody needs): a larger one is
  // answered 413 without reaching a handler, so a client cannot make the server buffer more.
  size_t max_body_bytes = 64 * 1024;
  // Threads that serve requests.
  int threads = 2;
  // A client that sends nothing (or reads nothing) for this long is dropped, so that a stuck
  // scraper cannot hold a thread for ever.
  std::chrono::milliseconds io_timeout{std::chrono::seconds(5)};
  // Headers added to every answer of a route (GET and POST): a web page's security policy.
  std::vector<std::pair<std::string, std::string>> response_headers;
};

class HttpServer {
 public:
  // Binds options.address and starts serving. XA_INVAL for a malformed address, no routes, a
  // route that does not start with '/', or threads < 1; XA_RMFAIL naming the address when it
  // cannot be bound (in use, or not an address of this machine).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);

  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Where clients connect: the actual port when the options asked for port 0.
  const std::string& address() const;
  // Stops accepting, finishes the requests in progress, and frees the port before it returns.
  // Idempotent.
  void Stop();

  class Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::http

#endif  // XA_SRC_HTTP_HTTP_SERVER_H_
