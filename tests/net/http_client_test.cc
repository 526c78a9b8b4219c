// The HTTP client (src/http/http_client.h) against servers written here from plain sockets, to
// make the faults a real server shows only now and then: a kept-alive connection the server
// closes right after its answer (as at the end of its idle timeout or of its limit of requests
// a connection), which the client's next call meets when it reuses the connection; and an
// answer of exactly chosen bytes (its headers, an oversized body), against a call's own headers.

#include "src/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xa::http {
namespace {

using ::testing::HasSubstr;

// Answers each connection's first request with 200 "ok" and "Connection: keep-alive", then
// closes the connection without answering when the next request arrives on it: the race of a
// server that ends a kept-alive connection just as the client sends on it. Counts the requests
// it answered.
class ClosingServer {
 public:
  ClosingServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    at.sin_port = 0;
    ::bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof(at));
    ::listen(listener_, 16);
    socklen_t length = sizeof(at);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &length);
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ClosingServer() {
    stop_.store(true);
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int answered() const { return answered_.load(); }

 private:
  void Serve() {
    while (!stop_.load()) {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      if (ReadRequest(fd)) {
        const std::string answer =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            "Connection: keep-alive\r\n\r\nok";
        ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        ++answered_;
        ReadRequest(fd);  // the next one is never answered
      }
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
  }

  // Reads one request (headers, then the body its Content-Length announces); false at EOF.
  static bool ReadRequest(int fd) {
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      request.append(buffer, static_cast<size_t>(n));
    }
    const size_t header_end = request.find("\r\n\r\n");
    const size_t length_at = request.find("Content-Length: ");
    const size_t length =
        length_at == std::string::npos ? 0 : std::stoul(request.substr(length_at + 16));
    while (request.size() < header_end + 4 + length) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) return false;
      request.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;
};

// Answers every request on its connection with `answer` (raw bytes), then closes it; keeps the
// last request it read.
class RawServer {
 public:
  explicit RawServer(std::string answer) : answer_(std::move(answer)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof(at));
    ::listen(listener_, 16);
    socklen_t length = sizeof(at);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &length);
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        std::string request;
        char buffer[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
          ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
          if (n <= 0) break;
          request.append(buffer, static_cast<size_t>(n));
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          last_request_ = request;
        }
        ::send(fd, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        ::shutdown(fd, SHUT_RDWR);
        ::close(fd);
      }
    });
  }
  ~RawServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  const std::string answer_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

TEST(HttpClient, ACallsOwnHeadersAreSentAndTheAnswersHeadersComeBackInLowerCase) {
  RawServer server(
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 4\r\n"
      "X-Odd-Case: yes\r\nConnection: close\r\n\r\nslow");
  HttpClientOptions options;
  options.base_url = server.base_url();
  std::unique_ptr<HttpClient> client = HttpClient::Make(options).value();
  Result<HttpReply> reply = client->Post("/hook", "application/json", "{}",
                                         {{"webhook-id", "msg_1"}, {"webhook-timestamp", "17"}});
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 429);
  EXPECT_EQ(reply->body, "slow");
  EXPECT_FALSE(reply->truncated);
  EXPECT_EQ(reply->Header("retry-after"), "30");
  EXPECT_EQ(reply->Header("x-odd-case"), "yes");
  EXPECT_EQ(reply->Header("absent"), "");
  EXPECT_THAT(server.last_request(), HasSubstr("webhook-id: msg_1\r\n"));
  EXPECT_THAT(server.last_request(), HasSubstr("webhook-timestamp: 17\r\n"));
}

TEST(HttpClient, AnOversizedAnswerFailsTheCallOrIsCutWhenTheCallerAskedForAnExcerpt) {
  const std::string big(5000, 'x');
  RawServer server("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n" +
                   big);
  HttpClientOptions options;
  options.base_url = server.base_url();
  options.max_response_bytes = 100;
  std::unique_ptr<HttpClient> strict = HttpClient::Make(options).value();
  Result<HttpReply> refused = strict->Post("/hook", "text/plain", "x");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("larger than 100 bytes"));
  options.truncate_large_responses = true;
  std::unique_ptr<HttpClient> excerpt = HttpClient::Make(options).value();
  Result<HttpReply> cut = excerpt->Post("/hook", "text/plain", "x");
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->status, 200);
  EXPECT_EQ(cut->body, big.substr(0, 100));
  EXPECT_TRUE(cut->truncated);
  // The cut connection is not reused: the next call works on a fresh one.
  Result<HttpReply> again = excerpt->Post("/hook", "text/plain", "x");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->truncated);
}

TEST(HttpClient, AnIdempotentCallOnAConnectionTheServerClosedIsMadeAgainOnAFreshOne) {
  ClosingServer server;
  HttpClientOptions options;
  options.base_url = server.base_url();
  options.request_timeout = std::chrono::seconds(5);
  options.retry_idempotent_on_stale_connection = true;
  std::unique_ptr<HttpClient> client = HttpClient::Make(options).value();
  for (int i = 0; i < 5; ++i) {
    Result<HttpReply> reply = client->Post("/confirm", "application/json", "{}");
    ASSERT_TRUE(reply.ok()) << i << ": " << reply.status().ToString();
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, "ok");
  }
  EXPECT_EQ(server.answered(), 5);
}

TEST(HttpClient, WithoutTheOptionTheCallOnAClosedConnectionFailsNamingTheUrl) {
  ClosingServer server;
  HttpClientOptions options;
  options.base_url = server.base_url();
  std::unique_ptr<HttpClient> client = HttpClient::Make(options).value();
  ASSERT_TRUE(client->Post("/try", "application/json", "{}").ok());
  Result<HttpReply> second = client->Post("/try", "application/json", "{}");
  ASSERT_FALSE(second.ok()) << "the closed connection was not reused?";
  EXPECT_THAT(second.status().message(), HasSubstr(server.base_url() + "/try"));
  EXPECT_THAT(second.status().message(), HasSubstr("no answer"));
  EXPECT_EQ(server.answered(), 1);
}

// Accepts one connection and trickles an answer's header a byte every 100 ms, for ever (until
// destroyed): each read finishes well within any read timeout, the whole answer never does.
class TricklingServer {
 public:
  TricklingServer() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof(at));
    ::listen(listener_, 4);
    socklen_t length = sizeof(at);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &length);
    port_ = ntohs(at.sin_port);
    thread_ = std::thread([this] {
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      const std::string header = "HTTP/1.1 200 OK\r\nX-Slow: ";
      for (size_t i = 0; !stop_.load(); ++i) {
        const char c = i < header.size() ? header[i] : 'a';
        if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      ::close(fd);
    });
  }
  ~TricklingServer() {
    stop_.store(true);
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  uint16_t port() const { return port_; }

 private:
  int listener_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HttpClient, ACallDeadlineCutsAServerThatTricklesItsAnswer) {
  TricklingServer server;
  HttpClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(server.port());
  options.request_timeout = std::chrono::seconds(2);  // each byte comes well within it
  options.call_deadline = std::chrono::milliseconds(600);
  std::unique_ptr<HttpClient> client = HttpClient::Make(options).value();
  const auto start = std::chrono::steady_clock::now();
  Result<HttpReply> reply = client->Post("/hook", "application/json", "{}");
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply.ok()) << "a trickled answer was read whole?";
  EXPECT_EQ(reply.status().code(), Code::kRmFail);
  EXPECT_THAT(reply.status().message(), HasSubstr("deadline of 600 ms"));
  EXPECT_GE(took, std::chrono::milliseconds(600));
  EXPECT_LT(took, std::chrono::milliseconds(1900)) << "the call outlived its deadline";
}

TEST(HttpClient, AConnectAddressIsCalledInsteadOfTheHostsLookupWithTheHostHeaderKept) {
  RawServer server("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  const std::string port = server.base_url().substr(server.base_url().rfind(':') + 1);
  HttpClientOptions options;
  // A name that resolves nowhere: only the pinned address can make the call succeed.
  options.base_url = "http://merchant.invalid:" + port;
  options.connect_address = "127.0.0.1";
  std::unique_ptr<HttpClient> client = HttpClient::Make(options).value();
  Result<HttpReply> reply = client->Post("/hook", "application/json", "{}");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->status, 204);
  EXPECT_THAT(server.last_request(), HasSubstr("Host: merchant.invalid:" + port + "\r\n"));
}

}  // namespace
}  // namespace xa::http
