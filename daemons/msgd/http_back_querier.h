// The status-confirmation job's question to a producer (docs/messages.md, "Back-query"):
//
//   POST <query_url>   Content-Type: application/json
//   {"id": "<message id>", "producer_id": "...", "data_type": "..."}
//
// answered 200 with {"state": "committed"} (the business operation committed: deliver the
// message) or {"state": "rolled_back"} (it did not and never will: drop it). Anything else (no
// connection, a timeout, another status, another body) is no answer: the job asks again later,
// on its ladder. One HTTP client per producer base URL, kept alive (at most kMaxClients; the
// oldest are dropped beyond).
//
// Thread safety: thread-safe.

#ifndef XA_DAEMONS_MSGD_HTTP_BACK_QUERIER_H_
#define XA_DAEMONS_MSGD_HTTP_BACK_QUERIER_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "daemons/msgd/message_service.h"
#include "src/http/http_client.h"

namespace xa::msg {

class HttpBackQuerier final : public BackQuerier {
 public:
  static constexpr size_t kMaxClients = 256;
  // `timeout`: connect and each read or write of one call.
  explicit HttpBackQuerier(std::chrono::milliseconds timeout) : timeout_(timeout) {}
  Reply Ask(const Message& message) override;
  std::chrono::milliseconds max_duration() const override { return timeout_ * 3; }

 private:
  Result<http::HttpClient*> ClientFor(const std::string& base_url);
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<http::HttpClient>> clients_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_HTTP_BACK_QUERIER_H_
