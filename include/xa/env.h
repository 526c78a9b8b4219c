// xa::Env: the seam through which xa does all of its file I/O and reads time.
//
// Env::Default() is the POSIX implementation, with the real clocks. Tests wrap it (EnvWrapper) to inject faults: drop
// data that was never synced (power loss), fail an fsync, fail a write with ENOSPC, tear a write
// (tests/testutil/fault_injection_env.h).
//
// Security: every file is opened with O_NOFOLLOW (a symlink planted in the log directory is
// refused) and O_CLOEXEC; new files are created with O_CREAT|O_EXCL and mode 0600, directories
// with mode 0700. An existing file is opened with O_NONBLOCK and refused unless fstat(2) says
// it is a regular file, so a FIFO or a device planted under a log file's name can never block
// the caller; the flag is cleared before any read or write. Whether an existing directory or
// file is safe to use (owner, mode) is the caller's decision, from Stat().
//
// Errors are Code::kIoError with the path, the operation and strerror(errno) in the message,
// except LockDir(), which returns Code::kBusy when another process holds the lock.
//
// Time. Env::clock() is the one place components read time from, so that a test can drive it
// by hand (tests/testutil/fake_clock.h): a retry schedule, a timeout or an orphan's age then
// happens when the test says, not when a sleep_for guesses.
//
// Thread safety: Env and Clock methods may be called from any thread. A WritableFile is used by
// one thread at a time.

#ifndef XA_ENV_H_
#define XA_ENV_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "xa/status.h"

namespace xa {

// A file being written sequentially. Append() buffers nothing in user space: the bytes are
// handed to the kernel (write(2)) before it returns, so Sync() is what makes them durable.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  WritableFile() = default;
  WritableFile(const WritableFile&) = delete;
  WritableFile& operator=(const WritableFile&) = delete;

  // Writes all of `data` at the end of the file. On failure part of `data` may have been
  // written; the file must then be treated as having a torn tail.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync(2): the data appended so far, and the file size, are on stable storage. A failed
  // Sync() must never be retried (the kernel may have dropped the dirty pages and cleared the
  // error): the caller gives up on the file.
  virtual Status Sync() = 0;
  // Closes the file. It does not sync: bytes appended since the last Sync() are not durable.
  virtual Status Close() = 0;
  // Allocates the file's blocks up to `size` bytes (fallocate(2); the file reads as zeros
  // beyond what was appended), so that later appends overwrite allocated space and their
  // fdatasync need not also commit a new file size. Optional: the default does nothing, and a
  // file system without fallocate is not an error.
  virtual Status Preallocate(uint64_t size) {
    (void)size;
    return Status::Ok();
  }
};

// Holds an exclusive lock until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

// What Env::Stat() found at a path (lstat(2)).
struct FileInfo {
  // False when nothing is at the path; every other field is then zero.
  bool exists = false;
  // A directory (not a symlink to one).
  bool is_directory = false;
  bool is_symlink = false;  // lstat(2): a symlink is reported as such, never followed
  bool is_regular = false;  // a regular file (not a FIFO, socket, device, directory or link)
  uint32_t mode = 0;        // permission bits (st_mode & 07777)
  // The owner's user id (st_uid).
  uint32_t owner_uid = 0;
  // In bytes (st_size).
  uint64_t size = 0;
};

// Two clocks, for two jobs:
//  - steady time (SteadyNow, a std::chrono::steady_clock time point) never jumps: latencies,
//    timeouts, deadlines and retry schedules of this process;
//  - wall time (WallNow, WallMicros) is what outlives the process or crosses to another one: the
//    begin time in an Xid, log timestamps, the age of an orphaned branch found by recovery. It
//    can jump (an NTP step, an operator): never measure a duration of this process with it.
//
// Waiting. WaitUntil is std::condition_variable::wait_until with the deadline read on this
// clock: the waiter wakes when `cv` is notified and `pred` holds, or when this clock reaches
// `deadline`. A fake clock wakes it when the test advances time past the deadline.
//
//   std::unique_lock<std::mutex> lock(mu_);
//   clock->WaitUntil(lock, wake_, next_retry, [&] { return stopping_ || new_work_; });
class Clock {
 public:
  // A point in steady time: durations, timeouts and deadlines of this process.
  using SteadyTime = std::chrono::steady_clock::time_point;
  // A point in wall time: what outlives the process or crosses to another one.
  using WallTime = std::chrono::system_clock::time_point;
  // As a deadline: none, wait until notified.
  static constexpr SteadyTime kNoDeadline = SteadyTime::max();

  virtual ~Clock() = default;
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;

  // The steady time now: never jumps (see above).
  virtual SteadyTime SteadyNow() = 0;
  // The wall time now: may jump (see above).
  virtual WallTime WallNow() = 0;
  // WallNow() in microseconds since the Unix epoch: the unit of Xid begin times and log
  // timestamps.
  int64_t WallMicros() {
    return std::chrono::duration_cast<std::chrono::microseconds>(WallNow().time_since_epoch())
        .count();
  }

  // Blocks the calling thread until this clock has advanced by `duration` (at once if <= 0).
  virtual void SleepFor(std::chrono::microseconds duration) = 0;

  // SteadyNow() + timeout, saturating at kNoDeadline (so a huge timeout cannot overflow).
  SteadyTime DeadlineAfter(std::chrono::microseconds timeout) {
    return AddSaturating(SteadyNow(), timeout);
  }
  // t + d, or kNoDeadline when that would not fit (d >= 0).
  static SteadyTime AddSaturating(SteadyTime t, std::chrono::microseconds d) {
    // Compared in microseconds: microseconds::max() does not fit in the clock's nanoseconds.
    if (d >= std::chrono::duration_cast<std::chrono::microseconds>(kNoDeadline - t)) {
      return kNoDeadline;
    }
    return t + d;
  }

  // Waits, with `lock` (which holds `cv`'s mutex) held on entry and on return, until `pred()`
  // is true or this clock reaches `deadline`; returns `pred()`, as
  // std::condition_variable::wait_until does. kNoDeadline waits for `pred` alone.
  template <typename Predicate>
  bool WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 SteadyTime deadline, Predicate pred) {
    while (!pred()) {
      if (WaitOnce(lock, cv, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }
  // WaitUntil(lock, cv, DeadlineAfter(timeout), pred).
  template <typename Predicate>
  bool WaitFor(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
               std::chrono::microseconds timeout, Predicate pred) {
    return WaitUntil(lock, cv, DeadlineAfter(timeout), std::move(pred));
  }

  // One wait, the primitive under WaitUntil: returns cv_status::timeout once this clock has
  // reached `deadline`, or no_timeout when `cv` was notified (or spuriously, as any condition
  // variable may). `lock` holds `cv`'s mutex on entry and on return, but may have been released
  // in between. For a loop that re-reads its state anyway (wait for the earliest retry or until
  // woken); otherwise prefer WaitUntil.
  virtual std::cv_status WaitOnce(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                                  SteadyTime deadline) = 0;
};

// The seam for all file I/O and time (see the file comment): Default() in production, an
// EnvWrapper in tests.
class Env {
 public:
  virtual ~Env() = default;

  // The POSIX Env. Never destroyed; thread-safe.
  static Env* Default();

  // Creates a new file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) for writing. Fails if it exists.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Reads the whole file (O_RDONLY|O_NOFOLLOW) into *contents, replacing what it held. Refuses
  // (Code::kIoError, naming the path) anything but a regular file, and a file larger than
  // `max_size` bytes before reading any of it: a file someone extended to 100 GiB is an error,
  // not an allocation that aborts the process. A file that grows past `max_size` while it is
  // read is refused too.
  virtual Status ReadFile(const std::string& path, std::string* contents, uint64_t max_size) = 0;
  // Shortens a file to `size` bytes and fsyncs it (used to cut a torn tail).
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  // rename(2): atomically replaces `to`, if it exists. Durable once SyncDir() of the
  // directory has returned.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // unlink(2) of a file. Durable once SyncDir() of the directory has returned.
  virtual Status Delete(const std::string& path) = 0;
  // lstat(2). A missing path is not an error: FileInfo::exists is false.
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  // Names of the entries of a directory, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // mkdir(dir, 0700). Fails if it exists.
  virtual Status CreateDir(const std::string& dir) = 0;
  // fsyncs a directory, making creations, renames and deletions in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  // Takes an exclusive, non-blocking flock(2) on the directory `dir` itself, then writes this
  // process's pid into `pid_file` (created 0600 if missing; refused unless a regular file) for
  // operators and tools to read. The lock is the directory's, not the pid file's: deleting or
  // replacing the pid file cannot release it, and it is released only when the holder closes it
  // (FileLock destroyed, or the process exits, whatever the signal). If another process (or
  // another lock of this process) holds it: Code::kBusy, naming the pid found in `pid_file`.
  virtual Result<std::unique_ptr<FileLock>> LockDir(const std::string& dir,
                                                    const std::string& pid_file) = 0;

  // The clock of everything that uses this Env. Never null; lives as long as the Env.
  virtual Clock* clock() = 0;
  // Wall clock, microseconds since the Unix epoch: clock()->WallMicros().
  int64_t NowMicros() { return clock()->WallMicros(); }
};

// Forwards every call to another Env; tests override what they need.
class EnvWrapper : public Env {
 public:
  // Forwards to `target`, which must outlive the wrapper.
  explicit EnvWrapper(Env* target) : target_(target) {}
  // The Env calls are forwarded to.
  Env* target() const noexcept { return target_; }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  Status ReadFile(const std::string& path, std::string* contents, uint64_t max_size) override {
    return target_->ReadFile(path, contents, max_size);
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    return target_->Truncate(path, size);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return target_->Rename(from, to);
  }
  Status Delete(const std::string& path) override { return target_->Delete(path); }
  Result<FileInfo> Stat(const std::string& path) override { return target_->Stat(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return target_->ListDir(dir);
  }
  Status CreateDir(const std::string& dir) override { return target_->CreateDir(dir); }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Result<std::unique_ptr<FileLock>> LockDir(const std::string& dir,
                                            const std::string& pid_file) override {
    return target_->LockDir(dir, pid_file);
  }
  Clock* clock() override { return target_->clock(); }

 private:
  Env* target_;
};

}  // namespace xa

#endif  // XA_ENV_H_
