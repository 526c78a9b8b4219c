// HttpClient over cpp-httplib: a pool of httplib::Client objects, each holding one kept-alive
// connection, handed to one call at a time.

#include "src/http/http_client.h"

#include <httplib.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <thread>
#include <mutex>
#include <utility>
#include <vector>

#include "src/base/escape.h"

namespace xa::http {

using internal::EscapeForMessage;

namespace {

// "http://host[:port]" or "https://host[:port]": a scheme, a host, no path, query or user info.
bool IsBaseUrl(const std::string& url) {
  std::string_view rest(url);
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return false;
  }
  if (rest.empty()) return false;
  for (char c : rest) {
    if (c == '/' || c == '?' || c == '#' || c == '@' || c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

// The host of a base URL ("http://[::1]:80" -> "::1"), as cpp-httplib's address map keys it.
std::string HostOf(const std::string& base_url) {
  std::string_view rest(base_url);
  rest.remove_prefix(rest.find("://") + 3);
  if (rest.starts_with("[")) return std::string(rest.substr(1, rest.find(']') - 1));
  return std::string(rest.substr(0, rest.rfind(':') == std::string_view::npos ? rest.size()
                                                                               : rest.rfind(':')));
}

// Cuts calls that outlive their deadline: one thread for all of a client's calls, which shuts
// a late call's connection down (httplib::Client::stop, made for use from another thread).
class Watchdog {
 public:
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    changed_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  uint64_t Arm(std::chrono::steady_clock::time_point deadline, httplib::Client* client) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    const uint64_t token = next_token_++;
    armed_[token] = Entry{deadline, client, false};
    changed_.notify_one();
    return token;
  }

  // Whether the deadline cut the call. After it returns, the client is never touched again.
  bool Disarm(uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = armed_.find(token);
    const bool fired = it != armed_.end() && it->second.fired;
    if (it != armed_.end()) armed_.erase(it);
    return fired;
  }

 private:
  struct Entry {
    std::chrono::steady_clock::time_point deadline;
    httplib::Client* client;
    bool fired;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      auto next = std::chrono::steady_clock::time_point::max();
      const auto now = std::chrono::steady_clock::now();
      for (auto& [token, entry] : armed_) {
        if (entry.fired) continue;
        if (entry.deadline <= now) {
          entry.client->stop();  // under mu_: Disarm cannot return meanwhile
          entry.fired = true;
        } else {
          next = std::min(next, entry.deadline);
        }
      }
      if (next == std::chrono::steady_clock::time_point::max()) {
        changed_.wait(lock);
      } else {
        changed_.wait_until(lock, next);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, Entry> armed_;  // guarded by mu_
  uint64_t next_token_ = 1;          // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::thread thread_;
};

}  // namespace

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {
    for (const auto& [name, value] : options_.headers) headers_.emplace(name, value);
  }

  Result<HttpReply> Send(std::string_view method, std::string_view path,
                         std::string_view content_type, std::string body,
                         const HttpHeaders& call_headers = {}) {
    const std::string url = options_.base_url + std::string(path);
    if (path.empty() || path.front() != '/') {
      return Status(Code::kInval, "HTTP call to " + EscapeForMessage(url) +
                                      ": the path must start with '/'");
    }
    bool reused = false;
    const auto start = std::chrono::steady_clock::now();
    Result<HttpReply> reply =
        SendOnce(method, url, path, content_type, body, call_headers, &reused);
    // A connection the server had closed fails at once; a call that timed out waiting for its
    // answer is not made again (that would double the bound on the call).
    const bool at_once = std::chrono::steady_clock::now() - start < options_.request_timeout;
    if (!reply.ok() && reused && at_once && options_.retry_idempotent_on_stale_connection &&
        reply.status().message().find(kNoAnswer) != std::string::npos) {
      bool again = false;
      reply = SendOnce(method, url, path, content_type, std::move(body), call_headers, &again,
                       /*fresh=*/true);
      if (!reply.ok()) {
        return reply.status().WithContext("made again on a fresh connection after a reused one "
                                          "failed without an answer");
      }
    }
    return reply;
  }

  const std::string& base_url() const noexcept { return options_.base_url; }

 private:
  // What a failure says when the connection failed before any answer (read or write).
  static constexpr std::string_view kNoAnswer = " (no answer)";

  Result<HttpReply> SendOnce(std::string_view method, const std::string& url,
                             std::string_view path, std::string_view content_type,
                             std::string body, const HttpHeaders& call_headers, bool* reused,
                             bool fresh = false) {
    std::unique_ptr<httplib::Client> client = Take(reused, fresh);
    httplib::Request request;
    request.method = std::string(method);
    request.path = std::string(path);
    request.headers = headers_;
    for (const auto& [name, value] : call_headers) request.headers.emplace(name, value);
    if (!content_type.empty()) request.set_header("Content-Type", std::string(content_type));
    request.body = std::move(body);
    std::string received;
    bool too_large = false;
    const size_t limit = options_.max_response_bytes;
    request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
      if (received.size() + size > limit) {
        if (options_.truncate_large_responses) received.append(data, limit - received.size());
        too_large = true;
        return false;
      }
      received.append(data, size);
      return true;
    };
    httplib::Response response;
    httplib::Error error = httplib::Error::Success;
    uint64_t armed = 0;
    if (options_.call_deadline.count() > 0) {
      armed = watchdog_.Arm(std::chrono::steady_clock::now() + options_.call_deadline,
                            client.get());
    }
    bool sent = client->send(request, response, error);
    if (armed != 0 && watchdog_.Disarm(armed)) {
      client.reset();
      Give(nullptr);
      return Status(Code::kRmFail, "HTTP " + std::string(method) + " " + EscapeForMessage(url) +
                                       " failed: no whole answer within the call's deadline of " +
                                       std::to_string(options_.call_deadline.count()) + " ms");
    }
    if (!sent || too_large) {
      // The connection may be half-read: drop it rather than reuse it.
      client.reset();
      Give(nullptr);
      if (too_large && options_.truncate_large_responses) {
        HttpReply reply{response.status, std::move(received), true, HeadersOf(response)};
        return reply;
      }
      if (too_large) {
        return Status(Code::kRmFail, "HTTP " + std::string(method) + " " + EscapeForMessage(url) +
                                         ": the response body is larger than " +
                                         std::to_string(limit) + " bytes");
      }
      const bool no_answer = error == httplib::Error::Read || error == httplib::Error::Write;
      return Status(Code::kRmFail, "HTTP " + std::string(method) + " " + EscapeForMessage(url) +
                                       " failed: " +
                                       httplib::to_string(error) +
                                       (no_answer ? std::string(kNoAnswer) : std::string()));
    }
    Give(std::move(client));
    return HttpReply{response.status, std::move(received), false, HeadersOf(response)};
  }

  static HttpHeaders HeadersOf(const httplib::Response& response) {
    HttpHeaders headers;
    for (const auto& [name, value] : response.headers) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers.emplace_back(std::move(lower), value);
    }
    return headers;
  }

  std::unique_ptr<httplib::Client> Fresh() const {
    auto client = std::make_unique<httplib::Client>(options_.base_url);
    client->set_connection_timeout(options_.connect_timeout);
    client->set_read_timeout(options_.request_timeout);
    client->set_write_timeout(options_.request_timeout);
    client->set_keep_alive(true);
    // A request goes out in more than one write (headers, then body): with Nagle's algorithm the
    // body waits for the server's delayed ACK, about 40 ms a call on Linux.
    client->set_tcp_nodelay(true);
    client->set_follow_location(false);
    if (!options_.connect_address.empty()) {
      client->set_hostname_addr_map({{HostOf(options_.base_url), options_.connect_address}});
    }
    return client;
  }

  // A free client (*reused), or a fresh one while fewer than max_connections are out; else
  // waits. `fresh`: never an idle one.
  std::unique_ptr<httplib::Client> Take(bool* reused, bool fresh) {
    std::unique_lock<std::mutex> lock(mu_);
    freed_.wait(lock, [&] { return !idle_.empty() || out_ < options_.max_connections; });
    ++out_;
    *reused = false;
    if (fresh && !idle_.empty()) idle_.pop_back();  // in its place: it may be stale too
    if (!fresh && !idle_.empty()) {
      *reused = true;
      std::unique_ptr<httplib::Client> client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
    lock.unlock();
    return Fresh();
  }

  // Returns a client taken by Take() (nullptr: it was dropped).
  void Give(std::unique_ptr<httplib::Client> client) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      --out_;
      if (client != nullptr) idle_.push_back(std::move(client));
    }
    freed_.notify_one();
  }

  const HttpClientOptions options_;
  httplib::Headers headers_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<httplib::Client>> idle_;  // guarded by mu_
  size_t out_ = 0;                                      // guarded by mu_
  Watchdog watchdog_;  // last: destroyed first, before the clients it may hold
};

Result<std::unique_ptr<HttpClient>> HttpClient::Make(HttpClientOptions options) {
  if (!IsBaseUrl(options.base_url)) {
    return Status(Code::kInval, "HTTP client: base URL '" + EscapeForMessage(options.base_url) +
                                    "' is not http://host[:port] or https://host[:port]");
  }
  if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0 ||
      options.max_response_bytes == 0 || options.max_connections == 0) {
    return Status(Code::kInval, "HTTP client for " + EscapeForMessage(options.base_url) +
                                    ": timeouts, max_response_bytes and max_connections must be "
                                    "positive");
  }
  return std::unique_ptr<HttpClient>(
      new HttpClient(std::make_unique<Impl>(std::move(options))));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<HttpReply> HttpClient::Post(std::string_view path, std::string_view content_type,
                                   std::string body) {
  return impl_->Send("POST", path, content_type, std::move(body));
}

Result<HttpReply> HttpClient::Post(std::string_view path, std::string_view content_type,
                                   std::string body, const HttpHeaders& call_headers) {
  return impl_->Send("POST", path, content_type, std::move(body), call_headers);
}

std::string HttpReply::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

Result<HttpReply> HttpClient::Get(std::string_view path) {
  return impl_->Send("GET", path, "", "");
}

Result<HttpReply> HttpClient::Delete(std::string_view path) {
  return impl_->Send("DELETE", path, "", "");
}

const std::string& HttpClient::base_url() const noexcept { return impl_->base_url(); }

}  // namespace xa::http
