// Who may call xa-msgd: the tokens file (docs/messages.md, "Authentication").
//
//   # role      name            token (at least 32 printable ASCII characters, no blank)
//   producer    order-service   6c1f0a...
//   consumer    accounting      9b77e2...
//   operator    alice           d04a5c...
//   merchant    shop-42         77a0c3...
//
// One caller a line; '#' starts a comment line; blank lines ignored. A producer pre-sends,
// confirms and cancels messages, and only its own: a message's producer_id is the name of the
// token that pre-sent it. A consumer acknowledges. An operator does everything, the operator
// API included. A merchant reads the notifications of the endpoint its name names, and
// only those (docs/notifications.md). Names are 1 to 64 printable ASCII characters; no token or name twice.
//
// The file is a secret: a regular file of mode 0600 or 0400 owned by the running user (never a
// link), read by src/base/trusted_file.h's rules. A token never appears in a message or a log
// line; requests carry it as "Authorization: Bearer <token>", compared in constant time.
//
// Thread safety: immutable once loaded.

#ifndef XA_DAEMONS_MSGD_MSGD_TOKENS_H_
#define XA_DAEMONS_MSGD_MSGD_TOKENS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa::msg {

enum class Role : uint8_t { kProducer, kConsumer, kOperator, kMerchant };
// "producer", "consumer", "operator", "merchant".
std::string_view RoleName(Role role) noexcept;

struct Caller {
  Role role = Role::kProducer;
  std::string name;
};

inline constexpr size_t kMinTokenSize = 32;
inline constexpr size_t kMaxTokenSize = 256;

class TokenTable {
 public:
  // Parses the file's text; `path` names it in messages (kConfig with the line).
  static Result<TokenTable> Parse(std::string_view text, const std::string& path);
  // Reads the file by the secret rules above, then parses it.
  static Result<TokenTable> Load(const std::string& path);

  // The caller an Authorization header value ("Bearer <token>") names; nullopt for none.
  std::optional<Caller> Authenticate(std::string_view authorization) const;
  size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Caller caller;
    std::string token;
  };
  std::vector<Entry> entries_;
};

}  // namespace xa::msg

#endif  // XA_DAEMONS_MSGD_MSGD_TOKENS_H_
