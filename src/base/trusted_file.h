// Reading a small file whose contents decide what a process trusts: a configuration (it names
// the hosts our credentials go to), a password, a shared key.
//
//   static constexpr TrustedFileRules kKeyRules{"the shared key file", false, false, 077, "600",
//                                               4096, "xa-agent"};
//   Result<std::string> key = ReadTrustedFile(path, kKeyRules);
//
// The file must be a regular file (a FIFO, device, directory or socket in its place is refused
// without blocking: it is opened with O_NONBLOCK, cleared once fstat has shown a regular file),
// owned by the user running the process (or root, where the rules allow), not open to others
// beyond the rules' mode, and at most max_bytes long (never more than max_bytes + 1 bytes are
// read, so a file that grows while it is read is refused too). A secret is never followed
// through a symbolic link: whoever controls the link's directory would choose the secret.
//
// Errors are Code::kConfig; the message names the file and says what to change (`chmod 600 ...`),
// never what the file holds.

#ifndef XA_SRC_BASE_TRUSTED_FILE_H_
#define XA_SRC_BASE_TRUSTED_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "xa/status.h"

namespace xa::internal {

struct TrustedFileRules {
  std::string_view what;          // "the configuration file", "password_file": for messages
  bool follow_symlink;            // a configuration may be a link; a secret never
  bool root_may_own;              // a file installed by root is as trusted as our own
  mode_t forbidden_mode;          // 022: nobody else writes it; 077: nobody else reads it either
  std::string_view chmod_advice;  // "go-w", "600"
  size_t max_bytes;
  std::string_view reader;        // the program reading it, for "must belong to the user running"
};

// Reads the whole of `file` by `rules`. `name` is how messages call the file ("password_file
// /etc/x.pw"); empty: rules.what followed by the path.
Result<std::string> ReadTrustedFile(const std::string& file, const TrustedFileRules& rules,
                                    const std::string& name = "");

}  // namespace xa::internal

#endif  // XA_SRC_BASE_TRUSTED_FILE_H_
