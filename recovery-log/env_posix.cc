// The POSIX Env (include/xa/env.h).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "xa/env.h"

namespace xa {
namespace {

Status IoError(std::string_view op, const std::string& path, int err) {
  std::string msg(op);
  msg += " ";
  msg += path;
  msg += ": ";
  msg += std::strerror(err);
  return Status(Code::kIoError, std::move(msg));
}

Status TooLarge(const std::string& path, uint64_t size, uint64_t max_size) {
  return Status(Code::kIoError, "read " + path + ": the file holds " + std::to_string(size) +
                                    " bytes, more than the " + std::to_string(max_size) +
                                    " this reader accepts; it was not written by xa as it is "
                                    "(a file extended by hand, or another file under its name)");
}

// Opens an existing file (or creates one, with create_mode, when `flags` has O_CREAT) without
// blocking and without following a symlink, refuses anything but a regular file, and clears
// O_NONBLOCK again for the caller. Opening a FIFO for reading would otherwise block until a
// writer appears, which is for ever in a log directory. Returns the descriptor; *st (if not
// null) receives its fstat.
Result<int> OpenRegularFile(const std::string& path, int flags, mode_t create_mode,
                            struct stat* st) {
  int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, create_mode);
  if (fd < 0) return IoError("open", path, errno);
  struct stat local;
  struct stat* info = st != nullptr ? st : &local;
  if (::fstat(fd, info) != 0) {
    int err = errno;
    ::close(fd);
    return IoError("fstat", path, err);
  }
  if (!S_ISREG(info->st_mode)) {
    ::close(fd);
    return Status(Code::kIoError, "open " + path + ": not a regular file (a FIFO, socket, device "
                                  "or directory under that name); move it out of the way");
  }
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
    int err = errno;
    ::close(fd);
    return IoError("fcntl", path, err);
  }
  return fd;
}

// The pid a lock holder wrote into its pid file, for a message; empty when it cannot be read.
std::string ReadPid(const std::string& pid_file) {
  Result<int> opened = OpenRegularFile(pid_file, O_RDONLY, 0, nullptr);
  if (!opened.ok()) return "";
  char buf[32] = {};
  ssize_t n = ::pread(*opened, buf, sizeof(buf) - 1, 0);
  ::close(*opened);
  std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
  for (char c : holder) {
    if (c < '0' || c > '9') return "";  // not a pid: never echo what someone planted
  }
  return holder;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("write", path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    // Never retried, even on EINTR: after a failed fdatasync the kernel may have marked the dirty
    // pages clean, so a second call could report success for data that is gone.
    if (::fdatasync(fd_) != 0) return IoError("fdatasync", path_, errno);
    return Status::Ok();
  }

  Status Preallocate(uint64_t size) override {
    int err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (err == 0 || err == EOPNOTSUPP || err == EINVAL) return Status::Ok();
    return IoError("fallocate", path_, err);
  }

  Status Close() override {
    if (fd_ < 0) return Status::Ok();
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return IoError("close", path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_;
};

// The real clocks; condition-variable waits with the deadline on steady_clock.
class RealClock final : public Clock {
 public:
  SteadyTime SteadyNow() override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() override { return std::chrono::system_clock::now(); }
  void SleepFor(std::chrono::microseconds duration) override {
    if (duration.count() > 0) std::this_thread::sleep_for(duration);
  }
  std::cv_status WaitOnce(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          SteadyTime deadline) override {
    if (deadline == kNoDeadline) {
      cv.wait(lock);
      return std::cv_status::no_timeout;
    }
    return cv.wait_until(lock, deadline);
  }
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("create", path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  Status ReadFile(const std::string& path, std::string* contents, uint64_t max_size) override {
    contents->clear();
    struct stat st;
    Result<int> opened = OpenRegularFile(path, O_RDONLY, /*create_mode=*/0, &st);
    if (!opened.ok()) return opened.status();
    const int fd = *opened;
    if (static_cast<uint64_t>(st.st_size) > max_size) {
      ::close(fd);
      return TooLarge(path, static_cast<uint64_t>(st.st_size), max_size);
    }
    // One read buffer for the whole file: replay decodes from memory, without a syscall per
    // record. The size may change under us (a live log read by the tool): read until EOF, but
    // never past max_size.
    contents->resize(static_cast<size_t>(st.st_size) + 1);
    size_t used = 0;
    for (;;) {
      if (used == contents->size()) {
        if (used > max_size) {
          ::close(fd);
          contents->clear();
          return TooLarge(path, used, max_size);
        }
        contents->resize(static_cast<size_t>(std::min<uint64_t>(contents->size() * 2,
                                                                max_size + 1)));
      }
      ssize_t n = ::read(fd, contents->data() + used, contents->size() - used);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        contents->clear();
        return IoError("read", path, err);
      }
      if (n == 0) break;
      used += static_cast<size_t>(n);
    }
    ::close(fd);
    if (used > max_size) {
      contents->clear();
      return TooLarge(path, used, max_size);
    }
    contents->resize(used);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    Result<int> opened = OpenRegularFile(path, O_WRONLY, /*create_mode=*/0, nullptr);
    if (!opened.ok()) return opened.status();
    const int fd = *opened;
    Status s;
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      s = IoError("ftruncate", path, errno);
    } else if (::fsync(fd) != 0) {
      s = IoError("fsync", path, errno);
    }
    ::close(fd);
    return s;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return IoError("rename", from + " to " + to, errno);
    return Status::Ok();
  }

  Status Delete(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return IoError("unlink", path, errno);
    return Status::Ok();
  }

  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    FileInfo info;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return info;
      return IoError("lstat", path, errno);
    }
    info.exists = true;
    info.is_directory = S_ISDIR(st.st_mode);
    info.is_symlink = S_ISLNK(st.st_mode);
    info.is_regular = S_ISREG(st.st_mode);
    info.mode = st.st_mode & 07777;
    info.owner_uid = st.st_uid;
    info.size = static_cast<uint64_t>(st.st_size);
    return info;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return IoError("open directory", dir, errno);
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      int err = errno;
      ::close(fd);
      return IoError("fdopendir", dir, err);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return IoError("readdir", dir, err);
    return names;
  }

  Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0700) != 0) return IoError("mkdir", dir, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return IoError("open directory", dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = IoError("fsync directory", dir, errno);
    ::close(fd);
    return s;
  }

  Result<std::unique_ptr<FileLock>> LockDir(const std::string& dir,
                                            const std::string& pid_file) override {
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (dir_fd < 0) return IoError("open directory to lock", dir, errno);
    if (::flock(dir_fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(dir_fd);
      if (err != EWOULDBLOCK) return IoError("flock", dir, err);
      std::string holder = ReadPid(pid_file);
      if (holder.empty()) holder = "unknown (its pid file " + pid_file + " is missing or empty)";
      return Status(Code::kBusy, "the lock on " + dir + " is held by process " + holder +
                                     ": another process owns this decision log; stop it first "
                                     "(two owners would corrupt the log)");
    }
    auto lock = std::unique_ptr<FileLock>(new PosixFileLock(dir_fd));
    Result<int> opened = OpenRegularFile(pid_file, O_RDWR | O_CREAT, 0600, nullptr);
    if (!opened.ok()) return opened.status();  // the lock is released with `lock`
    const int fd = *opened;
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      int err = errno;
      ::close(fd);
      return IoError("write pid into", pid_file, err);
    }
    ::close(fd);
    return lock;
  }

  Clock* clock() override { return &clock_; }

 private:
  RealClock clock_;
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();  // never destroyed: usable from static destructors
  return env;
}

}  // namespace xa
