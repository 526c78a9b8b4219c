// Escaping of untrusted text (server messages, recover-scan entries, GIDs) before it goes into a
// Status message or a log line (internal).

#ifndef XA_SRC_BASE_ESCAPE_H_
#define XA_SRC_BASE_ESCAPE_H_

#include <string>
#include <string_view>

namespace xa::internal {

// Printable ASCII kept, everything else (and the backslash) as \xNN; at most 300 bytes, then
// "...".
std::string EscapeForMessage(std::string_view text);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_ESCAPE_H_
