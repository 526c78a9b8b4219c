// FaultInjectionEnv: an Env that simulates what a crash, a power loss or a failing disk does to
// the decision log (after leveldb's FaultInjectionTestEnv).
//
// It keeps, for every file created through it, how many bytes were synced, and for every
// directory, which creations and renames were not yet made durable by SyncDir. Then:
//   DropUnsyncedData()     power loss: each file loses what was appended after its last Sync,
//                          files created and renames made since the last SyncDir of their
//                          directory are undone (deletions are not undone);
//   SetFilesystemActive(false)  the machine is gone: every later mutating call fails;
//   FailSync(true)         fdatasync returns EIO (the data stays unsynced);
//   FailWritesWithNoSpace(true)  Append returns ENOSPC and writes nothing;
//   TearWriteAfter(n)      the write that crosses n more bytes writes only up to them, then the
//                          filesystem goes inactive (a crash in the middle of a write);
//   CrashAfterOps(n)       the n-th mutating call from now fails and the filesystem goes
//                          inactive: loop n over a scenario to crash at every step.
// Injected failures say "injected" in their message.
//
// Thread-safe.

#ifndef XA_TESTS_TESTUTIL_FAULT_INJECTION_ENV_H_
#define XA_TESTS_TESTUTIL_FAULT_INJECTION_ENV_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "xa/env.h"

namespace xa::test {

class FaultInjectionEnv : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target = Env::Default()) : EnvWrapper(target) {}

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Status Truncate(const std::string& path, uint64_t size) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Delete(const std::string& path) override;
  Status CreateDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;

  void DropUnsyncedData();
  void SetFilesystemActive(bool active);
  void FailSync(bool fail);
  void FailWritesWithNoSpace(bool fail);
  void TearWriteAfter(uint64_t bytes);
  void CrashAfterOps(uint64_t n);
  // Mutating calls seen so far (to size a CrashAfterOps loop).
  uint64_t mutating_ops() const;
  bool filesystem_active() const;

  // What it knows of one file created through it; the path follows renames.
  struct FileState {
    std::string path;
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  // Used by the files it hands out.
  Status BeforeAppend(FileState* file, std::string_view data, size_t* allowed);
  void AfterAppend(FileState* file, size_t written);
  Status BeforeSync(FileState* file);

 private:
  struct DirOp {
    enum Kind { kCreate, kRename } kind;
    std::string from, to;  // kCreate: `to` is the created path
  };
  // Counts a mutating call; fails it when the filesystem is (or now goes) inactive.
  Status CountOpLocked(std::string_view what);
  static std::string DirOf(const std::string& path);

  mutable std::mutex mu_;
  bool active_ = true;
  bool fail_sync_ = false;
  bool no_space_ = false;
  std::optional<uint64_t> tear_after_;
  std::optional<uint64_t> crash_after_;
  uint64_t ops_ = 0;
  std::map<std::string, std::shared_ptr<FileState>> files_;  // by current path
  std::map<std::string, std::vector<DirOp>> unsynced_dir_ops_;  // by directory
};

}  // namespace xa::test

#endif  // XA_TESTS_TESTUTIL_FAULT_INJECTION_ENV_H_
