#include "testutil/fault_injection_env.h"

#include <algorithm>

namespace xa::test {
namespace {

Status Injected(std::string_view what) {
  return Status(Code::kIoError, "injected fault: " + std::string(what));
}

class FaultInjectionFile final : public WritableFile {
 public:
  FaultInjectionFile(FaultInjectionEnv* env, std::shared_ptr<FaultInjectionEnv::FileState> state,
                     std::unique_ptr<WritableFile> f)
      : env_(env), state_(std::move(state)), file_(std::move(f)) {}

  Status Append(std::string_view data) override {
    size_t allowed = data.size();
    Status fault = env_->BeforeAppend(state_.get(), data, &allowed);
    if (allowed > 0) {
      Status s = file_->Append(data.substr(0, allowed));
      if (!s.ok()) return s;
      env_->AfterAppend(state_.get(), allowed);
    }
    return fault;
  }
  Status Sync() override {
    XA_RETURN_IF_ERROR(env_->BeforeSync(state_.get()));
    return file_->Sync();
  }
  Status Close() override { return file_->Close(); }

 private:
  FaultInjectionEnv* env_;
  std::shared_ptr<FaultInjectionEnv::FileState> state_;
  std::unique_ptr<WritableFile> file_;
};

}  // namespace

std::string FaultInjectionEnv::DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

Status FaultInjectionEnv::CountOpLocked(std::string_view what) {
  ++ops_;
  if (crash_after_) {
    if (--*crash_after_ == 0) {
      crash_after_.reset();
      active_ = false;
      return Injected(std::string("crash at ") + std::string(what));
    }
  }
  if (!active_) return Injected(std::string("filesystem inactive (") + std::string(what) + ")");
  return Status::Ok();
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("create " + path));
  }
  Result<std::unique_ptr<WritableFile>> f = target()->NewWritableFile(path);
  if (!f.ok()) return f;
  std::lock_guard<std::mutex> lock(mu_);
  auto state = std::make_shared<FileState>();
  state->path = path;
  files_[path] = state;
  unsynced_dir_ops_[DirOf(path)].push_back(DirOp{DirOp::kCreate, "", path});
  return std::unique_ptr<WritableFile>(new FaultInjectionFile(this, state, std::move(f).value()));
}

Status FaultInjectionEnv::BeforeAppend(FileState* file, std::string_view data,
                                       size_t* allowed) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& path = file->path;
  Status s = CountOpLocked("append to " + path);
  if (!s.ok()) {
    *allowed = 0;
    return s;
  }
  if (no_space_) {
    *allowed = 0;
    return Status(Code::kIoError, "injected fault: write " + path + ": No space left on device");
  }
  if (tear_after_) {
    if (data.size() > *tear_after_) {
      *allowed = static_cast<size_t>(*tear_after_);
      tear_after_.reset();
      active_ = false;
      return Injected("write torn after " + std::to_string(*allowed) + " bytes");
    }
    *tear_after_ -= data.size();
  }
  *allowed = data.size();
  return Status::Ok();
}

void FaultInjectionEnv::AfterAppend(FileState* file, size_t written) {
  std::lock_guard<std::mutex> lock(mu_);
  file->size += written;
}

Status FaultInjectionEnv::BeforeSync(FileState* file) {
  std::lock_guard<std::mutex> lock(mu_);
  XA_RETURN_IF_ERROR(CountOpLocked("fdatasync " + file->path));
  if (fail_sync_) {
    return Status(Code::kIoError,
                  "injected fault: fdatasync " + file->path + ": Input/output error");
  }
  file->synced = file->size;
  return Status::Ok();
}

Status FaultInjectionEnv::Truncate(const std::string& path, uint64_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("truncate " + path));
  }
  XA_RETURN_IF_ERROR(target()->Truncate(path, size));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = files_.find(path); it != files_.end()) {
    it->second->size = it->second->synced = size;  // Truncate fsyncs
  }
  return Status::Ok();
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("rename " + from));
  }
  XA_RETURN_IF_ERROR(target()->Rename(from, to));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = files_.find(from); it != files_.end()) {
    it->second->path = to;
    files_[to] = it->second;
    files_.erase(from);
  }
  unsynced_dir_ops_[DirOf(to)].push_back(DirOp{DirOp::kRename, from, to});
  return Status::Ok();
}

Status FaultInjectionEnv::Delete(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("delete " + path));
  }
  XA_RETURN_IF_ERROR(target()->Delete(path));
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(path);
  return Status::Ok();
}

Status FaultInjectionEnv::CreateDir(const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("mkdir " + dir));
  }
  return target()->CreateDir(dir);
}

Status FaultInjectionEnv::SyncDir(const std::string& dir) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    XA_RETURN_IF_ERROR(CountOpLocked("fsync directory " + dir));
  }
  XA_RETURN_IF_ERROR(target()->SyncDir(dir));
  std::lock_guard<std::mutex> lock(mu_);
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  unsynced_dir_ops_.erase(d);
  return Status::Ok();
}

void FaultInjectionEnv::DropUnsyncedData() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [path, file] : files_) {
    if (file->size != file->synced) {
      target()->Truncate(path, file->synced).IgnoreError();
      file->size = file->synced;
    }
  }
  for (auto& [dir, ops] : unsynced_dir_ops_) {
    for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
      if (it->kind == DirOp::kCreate) {
        target()->Delete(it->to).IgnoreError();  // may be renamed or deleted already
        files_.erase(it->to);
      } else if (target()->Rename(it->to, it->from).ok()) {
        if (auto f = files_.find(it->to); f != files_.end()) {
          f->second->path = it->from;
          files_[it->from] = f->second;
          files_.erase(it->to);
        }
      }
    }
  }
  unsynced_dir_ops_.clear();
}

void FaultInjectionEnv::SetFilesystemActive(bool active) {
  std::lock_guard<std::mutex> lock(mu_);
  active_ = active;
}
void FaultInjectionEnv::FailSync(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_sync_ = fail;
}
void FaultInjectionEnv::FailWritesWithNoSpace(bool fail) {
  std::lock_guard<std::mutex> lock(mu_);
  no_space_ = fail;
}
void FaultInjectionEnv::TearWriteAfter(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  tear_after_ = bytes;
}
void FaultInjectionEnv::CrashAfterOps(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_after_ = n;
}
uint64_t FaultInjectionEnv::mutating_ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}
bool FaultInjectionEnv::filesystem_active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_;
}

}  // namespace xa::test
