// xa::http::MakeTccParticipant: a TCC participant (xa/tcc.h) that is a service reached over
// HTTP/JSON, in any language.
//
//   xa::http::TccParticipantOptions funds;
//   funds.try_url = "http://127.0.0.1:18081/tcc/try";
//   funds.confirm_url = "http://127.0.0.1:18081/tcc/confirm";
//   funds.cancel_url = "http://127.0.0.1:18081/tcc/cancel";
//   options.tcc.participants["funds"] = xa::http::MakeTccParticipant(funds).value();
//
// Each call is a POST of a JSON object to the operation's URL (Content-Type application/json):
//
//   {"global_id":"<the global Xid, Xid::ToString()>","branch_id":"<bqual, hex>",
//    "participant":"<the registered name>","operation":"try"|"confirm"|"cancel",
//    "payload":"<the payload>"}
//
// The payload travels as a JSON string when it is valid UTF-8; otherwise as
// "payload_base64":"<base64url, no padding>" instead, so that no byte is lost. global_id and
// branch_id are the service's barrier key (xa/tcc_barrier.h: at most 128 and 64 bytes; these are
// about 60 and 6).
//
// The answer: any 2xx is done; 409 Conflict to a Try is refused (a business reason: no funds, or
// the barrier's refusal of a Try after its Cancel); anything else, 409 to a Confirm or Cancel
// included, a connection that fails or a call that times out, is failed: a Try then cancels the
// transaction, a Confirm or Cancel is repeated until the service answers 2xx. The answer's body
// (at most max_response_bytes) is read only for the refusal's reason, escaped.
//
// Thread safety: the participant is thread-safe; up to max_connections calls per URL's server
// run at once on kept-alive connections.

#ifndef XA_HTTP_TCC_PARTICIPANT_H_
#define XA_HTTP_TCC_PARTICIPANT_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "xa/status.h"
#include "xa/tcc.h"

namespace xa::http {

struct TccParticipantOptions {
  // "http(s)://host[:port]/path" of each operation.
  std::string try_url;
  std::string confirm_url;
  std::string cancel_url;
  // Bounds of every call: to connect, and for each read and write of the request.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(2)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(5)};
  size_t max_response_bytes = 16 * 1024;
  // Calls at once to one server; a call beyond waits for a free connection.
  size_t max_connections = 8;
  // Sent with every call (an Authorization header, say). Never logged, never in an error.
  std::vector<std::pair<std::string, std::string>> headers;
};

// XA_INVAL naming the option for a URL that is not http(s)://host[:port]/path, or zero bounds.
Result<std::shared_ptr<TccParticipant>> MakeTccParticipant(TccParticipantOptions options);

// The JSON body of one call (see the file comment); exposed for the services' tests.
std::string TccRequestBody(const TccCall& call, std::string_view operation);

}  // namespace xa::http

#endif  // XA_HTTP_TCC_PARTICIPANT_H_
