// HttpServer over cpp-httplib: one listening thread (httplib's accept loop) and a pool of
// `threads` that serve the requests.

#include "src/http/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "src/base/escape.h"
#include "src/net/socket_address.h"

namespace xa::http {

using internal::EscapeForMessage;

class HttpServer::Impl {
 public:
  explicit Impl(HttpServerOptions options) : options_(std::move(options)) {}

  ~Impl() { Stop(); }

  Status Start() {
    if (options_.routes.empty() && options_.post_routes.empty()) {
      return Status(Code::kInval, "HTTP server: no routes to serve (give at least one path)");
    }
    if (options_.threads < 1) {
      return Status(Code::kInval, "HTTP server: threads must be at least 1, not " +
                                      std::to_string(options_.threads));
    }
    for (const auto& [path, handler] : options_.routes) {
      if (path.empty() || path.front() != '/' || !handler) {
        return Status(Code::kInval, "HTTP server: route '" + EscapeForMessage(path) +
                                        "' must start with '/' and have a handler");
      }
    }
    for (const auto& [path, handler] : options_.post_routes) {
      if (path.empty() || path.front() != '/' || !handler) {
        return Status(Code::kInval, "HTTP server: POST route '" + EscapeForMessage(path) +
                                        "' must start with '/' and have a handler");
      }
    }
    Result<net::SocketAddress> parsed = net::ParseSocketAddress(options_.address);
    if (!parsed.ok()) return parsed.status().WithContext("HTTP server address");

    const int threads = options_.threads;
    server_.new_task_queue = [threads] {
      return new httplib::ThreadPool(static_cast<size_t>(threads));
    };
    // SO_REUSEADDR lets a restarted daemon bind its port while old connections linger in
    // TIME_WAIT. Not httplib's default SO_REUSEPORT: with it, a second daemon configured with
    // the same address would bind it too and the kernel would share the scrapes between them.
    server_.set_socket_options([this](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listening_socket_.store(sock);
    });
    // Answers leave at once, not after the client's delayed ACK (Nagle's algorithm).
    server_.set_tcp_nodelay(true);
    server_.set_read_timeout(options_.io_timeout);
    server_.set_write_timeout(options_.io_timeout);
    // httplib closes a kept-alive connection after 5 requests by default, which a busy client
    // meets as a failed call on a connection it just reused; keep connections for long.
    server_.set_keep_alive_max_count(100000);
    server_.set_keep_alive_timeout(
        std::chrono::duration_cast<std::chrono::seconds>(options_.io_timeout).count());
    // A client that sends a larger body gets 413, not our memory.
    server_.set_payload_max_length(options_.max_body_bytes);
    std::map<std::string, std::string> allowed;  // path -> its methods, for 405's Allow
    for (const auto& [path, handler] : options_.routes) allowed[path] = "GET, HEAD";
    for (const auto& [path, handler] : options_.post_routes) {
      std::string& methods = allowed[path];
      methods = methods.empty() ? "POST" : methods + ", POST";
    }
    for (const auto& [path, methods] : allowed) {
      // Copies: httplib keeps the callbacks for the server's lifetime.
      if (auto get = options_.routes.find(path); get != options_.routes.end()) {
        HttpHandler serve = get->second;
        server_.Get(path, [serve, headers = options_.response_headers](
                              const httplib::Request&, httplib::Response& response) {
          HttpResponse answer = serve();
          response.status = answer.status;
          response.set_content(std::move(answer.body), answer.content_type.c_str());
          for (const auto& [name, value] : headers) response.set_header(name, value);
          for (const auto& [name, value] : answer.headers) response.set_header(name, value);
        });
      }
      auto not_allowed = [methods = methods](const httplib::Request&,
                                             httplib::Response& response) {
        response.status = 405;
        response.set_header("Allow", methods);
        response.set_content("only " + methods + " are served here\n",
                             "text/plain; charset=utf-8");
      };
      if (auto post = options_.post_routes.find(path); post != options_.post_routes.end()) {
        HttpPostHandler serve = post->second;
        server_.Post(path, [serve, path = path, headers = options_.response_headers](
                               const httplib::Request& request, httplib::Response& response) {
          HttpRequest served{path, request.get_header_value("Content-Type"),
                             request.get_header_value("Authorization"), request.body, {}};
          for (const auto& [name, value] : request.headers) {
            std::string lower = name;
            for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            served.headers.emplace_back(std::move(lower), value);
          }
          HttpResponse answer = serve(served);
          response.status = answer.status;
          response.set_content(std::move(answer.body), answer.content_type.c_str());
          for (const auto& [name, value] : headers) response.set_header(name, value);
          for (const auto& [name, value] : answer.headers) response.set_header(name, value);
        });
      } else {
        server_.Post(path, not_allowed);
      }
      if (options_.routes.count(path) == 0) server_.Get(path, not_allowed);
      server_.Put(path, not_allowed);
      server_.Patch(path, not_allowed);
      server_.Delete(path, not_allowed);
      server_.Options(path, not_allowed);
    }
    std::string paths;
    for (const auto& [path, methods] : allowed) paths += path + "\n";
    server_.set_error_handler([paths](const httplib::Request&, httplib::Response& response) {
      if (response.status != 404) return;
      response.set_content("not found; the paths served here are:\n" + paths,
                           "text/plain; charset=utf-8");
    });

    errno = 0;
    const int port = parsed->port == 0
                         ? server_.bind_to_any_port(parsed->ip)
                         : (server_.bind_to_port(parsed->ip, parsed->port) ? parsed->port : -1);
    if (port <= 0) {
      const int error = errno;
      return Status(Code::kRmFail,
                    "HTTP server: cannot listen on " + EscapeForMessage(options_.address) +
                        (error != 0 ? std::string(": ") + std::strerror(error) : std::string()) +
                        " (the port is in use, or the address is not one of this machine's)");
    }
    // cpp-httplib listens with a backlog of 5 (compiled into Debian's library): a burst of
    // connections (a coordinator's clients opening their pools at once) overflows it, the kernel
    // drops their handshakes' last ACK, and a client that already sent its request waits for
    // the server's SYN-ACK retransmission, seconds, or fails its call. Listening again on the
    // bound socket raises the backlog (Linux updates it in place).
    if (int sock = listening_socket_.load(); sock >= 0) ::listen(sock, SOMAXCONN);
    address_ = parsed->ipv6 ? "[" + parsed->ip + "]:" + std::to_string(port)
                            : parsed->ip + ":" + std::to_string(port);
    listener_ = std::thread([this] {
      server_.listen_after_bind();
      loop_ended_.store(true);
    });
    // httplib's stop() does nothing until the accept loop has started, so Stop() right after
    // Start() would wait for ever: return only once the loop runs (or has already ended). The
    // socket listens from bind on, so no connection is refused meanwhile.
    while (!server_.is_running() && !loop_ended_.load()) std::this_thread::yield();
    return Status::Ok();
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!listener_.joinable()) return;
    server_.stop();
    listener_.join();
  }

  const std::string& address() const { return address_; }

 private:
  HttpServerOptions options_;
  httplib::Server server_;
  std::string address_;
  std::thread listener_;
  std::atomic<bool> loop_ended_{false};
  std::atomic<int> listening_socket_{-1};  // set by the socket-options callback at bind
  std::mutex stop_mu_;
};

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  XA_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;
const std::string& HttpServer::address() const { return impl_->address(); }
void HttpServer::Stop() { impl_->Stop(); }

}  // namespace xa::http
