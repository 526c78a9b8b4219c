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

// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong form, no surrogate,
// nothing above U+10FFFF) at the start of `text`, or 0 when it starts with none (or is empty).
size_t Utf8SequenceLength(std::string_view text);

// The inside of a JSON string (RFC 8259) holding `text`, always valid JSON and valid UTF-8:
// well-formed UTF-8 is kept as it is (so names in any script stay readable); '"' and '\\' are
// escaped; control characters (C0, DEL and C1, which terminals may act on) become \u00XX; each
// byte that is not part of well-formed UTF-8 becomes U+FFFD. No length limit.
std::string EscapeJsonString(std::string_view text);

}  // namespace xa::internal

#endif  // XA_SRC_BASE_ESCAPE_H_
