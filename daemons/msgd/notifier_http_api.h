// The notifier's routes in xa-msgd's HTTP/JSON API (docs/notifications.md, "API"), each a call
// of Notifier after the caller's token was checked (json_api.h: the same answers and errors as
// the message routes).
//
//   POST /v1/notifications/submit   producer   {"endpoint", "event_type", "body"}
//                                              -> 200 {"id", "status": "pending"}
//   POST /v1/notifications/get      producer, operator, merchant (its endpoint's)
//                                   {"id", "attempts"?: true} -> 200 {notification..., "attempts"}
//   POST /v1/notifications/list     producer, operator, merchant (its endpoint only)
//                                   {"endpoint"? (a merchant: its own; others: every one),
//                                    "from_ms"?, "to_ms"?, "status"?,
//                                    "after_created_ms"?, "after_id"?, "limit"?}
//                                   -> 200 {"notifications": [...], "next": {cursor} or null}
//   POST /v1/notifications/resend   operator   {"id"} -> 200 {"id", "result"}
//   POST /v1/notifications/counts   operator   {} -> 200 {"counts": {"pending": n, ...}}
//   POST /v1/endpoints/put          operator   {"id", "url"?, "secrets"?, "ladder"?,
//                                               "success_body"? (null: none), "max_in_flight"?,
//                                               "enabled"?}
//                                              -> 200 {endpoint..., "created", "secret"?}
//   POST /v1/endpoints/get          operator   {"id"} -> 200 {endpoint..., "health": {"in_flight",
//                                              "breaker_open", "consecutive_failures"}}
//   POST /v1/endpoints/list         operator   {"after_id"?, "limit"?} -> 200 {"endpoints": [...]}
//
// An endpoint's secrets never leave the daemon, but once: the one it generated for a new
// endpoint, in the answer of the put that created it. A merchant's token reads only the
// notifications of the endpoint its name names (404 for any other, as if it did not exist).
//
// Thread safety: the handlers are thread-safe.

#ifndef XA_DAEMONS_MSGD_NOTIFIER_HTTP_API_H_
#define XA_DAEMONS_MSGD_NOTIFIER_HTTP_API_H_

#include "daemons/msgd/msgd_tokens.h"
#include "daemons/msgd/notifier.h"
#include "src/http/http_server.h"

namespace xa::msg {

// Adds the routes above to `options`. `notifier` and `tokens` must outlive the server.
void AddNotifierRoutes(Notifier& notifier, const TokenTable& tokens,
                       http::HttpServerOptions& options);

// The notifier's Prometheus lines (appended to /metrics).
std::string RenderNotifierMetrics(Notifier& notifier);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_NOTIFIER_HTTP_API_H_
