// The operators' web page of xa-msgd (docs/messages.md, "The management page"): GET /ui, with
// its script and style sheet, served by the daemon's own HTTP server. The page holds no secret:
// it asks for an operator token, keeps it in the tab's sessionStorage, and calls the operator
// API (/v1/admin/...) with it, so every action is authenticated and audited as the API's are.
// With a notifier, the page also shows its notifications by state, one's attempt history and
// its resend, and the endpoints with their health, through the notifier's routes
// (notifier_http_api.h); without one (those routes answer 404) that part says so. No endpoint
// secret reaches the page: the API answers with their number only.
// It builds its DOM with textContent only (a message body or an error is never markup), and the
// daemon answers every route with a content security policy that allows the page's own script
// and style and nothing else (no inline script, no other origin, no framing).

#ifndef XA_DAEMONS_MSGD_MANAGEMENT_PAGE_H_
#define XA_DAEMONS_MSGD_MANAGEMENT_PAGE_H_

#include "src/http/http_server.h"

namespace xa::msg {

// Adds GET /ui, /ui/app.js and /ui/app.css, and the security headers of every answer.
void AddManagementPage(http::HttpServerOptions& options);

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MANAGEMENT_PAGE_H_
