// The HTTP/JSON API of xa-msgd (docs/messages.md, "API"): the routes that HttpServer serves,
// each a call of MessageService after the caller's token was checked.
//
//   POST /v1/messages/prepare   producer   {"data_type", "queue", "body", "query_url"?}
//                                          -> 200 {"id", "status": "pending"}
//   POST /v1/messages/confirm   producer   {"id"} -> 200 {"id", "status", "result"}
//   POST /v1/messages/cancel    producer   {"id"} -> 200 {"id", "result"}
//   POST /v1/messages/ack       consumer   {"id"} -> 200 {"id", "status", "result"}
//   POST /v1/admin/get          operator   {"id", "history"?} -> 200 {message..., "history": [...]}
//   POST /v1/admin/list         operator   {"status", "dead"?, "after_updated_ms"?, "after_id"?,
//                                           "limit"?} -> 200 {"messages": [...]}
//   POST /v1/admin/counts       operator   {} -> 200 {"counts": [{"status", "live", "dead",
//                                           "oldest_updated_ms"}]}
//   POST /v1/admin/{confirm,resend,revive,kill,delete}   operator   {"id"} -> 200 {...}
//   GET  /metrics               anyone     Prometheus text
//   GET  /healthz               anyone     "ok" when the store answers
//
// Answers: 400 for a body that is not the JSON asked for (naming the field), 401 without a
// known token, 403 for a token of the wrong role (or a producer touching another producer's
// message), 404 for an unknown id, 409 for a request the message's state refuses, 413 for a
// request body over max_body_bytes (the message body's own limit, checked apart, is also
// 400 naming it), 503 when the store cannot be reached now (retry). Every error body is
// {"error": "<what failed and what to do>"}; 5xx and 409 are safe to retry, and so are all the
// other calls but prepare (a retried prepare stores a second message: the producer cancels the
// one it does not use, or leaves it to the back-query).
//
// Thread safety: the handlers are thread-safe (the server runs several at once).

#ifndef XA_DAEMONS_MSGD_MSGD_HTTP_API_H_
#define XA_DAEMONS_MSGD_MSGD_HTTP_API_H_

#include <cstddef>
#include <string>

#include "daemons/msgd/message_service.h"
#include "daemons/msgd/msgd_tokens.h"
#include "src/http/http_server.h"

namespace xa::msg {

// Adds the routes above to `options` (GET routes and POST routes). `service` and `tokens` must
// outlive the server.
void AddApiRoutes(MessageService& service, const TokenTable& tokens,
                  http::HttpServerOptions& options);

// The Prometheus text of /metrics: the service's counters, and the store's counts and ages by
// status (a store that cannot be read now leaves those out and sets xa_msgd_store_up 0).
std::string RenderMetrics(MessageService& service);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MSGD_HTTP_API_H_
