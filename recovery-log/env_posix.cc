// The POSIX Env (include/xa/env.h).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

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

  Status ReadFile(const std::string& path, std::string* contents) override {
    contents->clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return IoError("fstat", path, err);
    }
    // One read buffer for the whole file: replay decodes from memory, without a syscall per
    // record. The size may change under us (a live log read by the tool): read until EOF.
    contents->resize(static_cast<size_t>(st.st_size) + 1);
    size_t used = 0;
    for (;;) {
      if (used == contents->size()) contents->resize(contents->size() * 2);
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
    contents->resize(used);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return IoError("open", path, errno);
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
    info.mode = st.st_mode & 07777;
    info.owner_uid = st.st_uid;
    info.size = static_cast<uint64_t>(st.st_size);
    return info;
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return IoError("open directory", dir, errno);
    Status s;
    if (::fsync(fd) != 0) s = IoError("fsync directory", dir, errno);
    ::close(fd);
    return s;
  }

  Result<std::unique_ptr<FileLock>> Lock(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("open lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err != EWOULDBLOCK) {
        ::close(fd);
        return IoError("flock", path, err);
      }
      char buf[32] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      if (holder.empty()) holder = "unknown (it has not written its pid yet)";
      return Status(Code::kBusy, "lock " + path + " is held by process " + holder +
                                     ": another process owns this decision log; stop it first "
                                     "(two owners would corrupt the log)");
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      int err = errno;
      ::flock(fd, LOCK_UN);
      ::close(fd);
      return IoError("write pid into", path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
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
