#include "src/base/trusted_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "src/base/escape.h"

namespace xa::internal {
namespace {

Status Refused(std::string message) { return Status(Code::kConfig, std::move(message)); }

std::string ModeString(mode_t mode) {
  return std::to_string((mode >> 6) & 7) + std::to_string((mode >> 3) & 7) +
         std::to_string(mode & 7);
}

}  // namespace

Result<std::string> ReadTrustedFile(const std::string& file, const TrustedFileRules& rules,
                                    const std::string& name_in) {
  const std::string name =
      name_in.empty() ? std::string(rules.what) + " " + EscapeForMessage(file) : name_in;
  int flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (rules.follow_symlink ? 0 : O_NOFOLLOW);
  int fd = ::open(file.c_str(), flags);
  if (fd < 0) {
    return Refused("cannot open " + name + ": " + std::strerror(errno) +
                   (errno == ELOOP && !rules.follow_symlink
                        ? " (a symbolic link is refused: name the file itself)"
                        : ""));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Refused("cannot stat " + name + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)                         ? "a FIFO"
                       : S_ISDIR(st.st_mode)                        ? "a directory"
                       : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                       : S_ISSOCK(st.st_mode)                       ? "a socket"
                                                                    : "not a file";
    return Refused(name + " is " + kind + ", not a regular file: name a regular file");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me && !(rules.root_may_own && st.st_uid == 0)) {
    return Refused(name + " is owned by another user (uid " + std::to_string(st.st_uid) +
                   "): it must belong to the user running " + std::string(rules.reader) +
                   " (uid " + std::to_string(me) + ")" +
                   (rules.root_may_own ? " or to root" : ""));
  }
  if (const mode_t open_to_others = st.st_mode & rules.forbidden_mode; open_to_others != 0) {
    // Say what is actually open: a secret of mode 0620 is writable, not readable, by its group.
    return Refused(name +
                   ((open_to_others & 044) != 0 ? " may be read by others"
                                                : " may be written by others") +
                   " (mode " + ModeString(st.st_mode) + "): run `chmod " +
                   std::string(rules.chmod_advice) + " " + EscapeForMessage(file) + "`");
  }
  const std::string too_large = name + " is larger than " + std::to_string(rules.max_bytes) +
                                " bytes, the most " + std::string(rules.what) +
                                " may hold: check the path";
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) > rules.max_bytes) {
    return Refused(too_large);
  }
  // A regular file: reads do not block, but clear the flag as promised for what follows.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::string contents;
  char buffer[4096];
  while (contents.size() <= rules.max_bytes) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Refused("cannot read " + name + ": " + std::strerror(errno));
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  // The file grew after fstat.
  if (contents.size() > rules.max_bytes) return Refused(too_large);
  return contents;
}

}  // namespace xa::internal
