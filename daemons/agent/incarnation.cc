#include "daemons/agent/incarnation.h"

#include <limits>
#include <memory>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace xa::agent {
namespace {

std::string Join(const std::string& dir, std::string_view name) {
  if (!dir.empty() && dir.back() == '/') return dir + std::string(name);
  return dir + "/" + std::string(name);
}

// The checksum covers the magic and the number.
uint32_t Checksum(std::string_view first_twelve) {
  return internal::crc32c::Mask(internal::crc32c::Value(first_twelve));
}

}  // namespace

std::string EncodeIncarnation(uint64_t incarnation) {
  std::string out;
  internal::PutFixed32(&out, kIncarnationMagic);
  internal::PutFixed64(&out, incarnation);
  internal::PutFixed32(&out, Checksum(out));
  return out;
}

Result<uint64_t> DecodeIncarnation(std::string_view bytes) {
  if (bytes.size() != kIncarnationFileSize) {
    return Status(Code::kCorruption, "holds " + std::to_string(bytes.size()) + " bytes, not " +
                                         std::to_string(kIncarnationFileSize));
  }
  if (internal::DecodeFixed32(bytes.data()) != kIncarnationMagic) {
    return Status(Code::kCorruption, "does not start with the magic \"XAI1\"");
  }
  if (internal::DecodeFixed32(bytes.data() + 12) != Checksum(bytes.substr(0, 12))) {
    return Status(Code::kCorruption, "fails its checksum");
  }
  return internal::DecodeFixed64(bytes.data() + 4);
}

Result<uint64_t> NextIncarnation(const std::string& dir, Env* env) {
  if (env == nullptr) env = Env::Default();
  const std::string path = Join(dir, kIncarnationFileName);
  const std::string temp = Join(dir, kIncarnationTempFileName);

  uint64_t previous = 0;
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok()) return info.status();
  if (info->exists) {
    std::string bytes;
    // Read a little more than the format's size, so that a longer file is reported as such.
    XA_RETURN_IF_ERROR(env->ReadFile(path, &bytes, 4096));
    Result<uint64_t> decoded = DecodeIncarnation(bytes);
    if (!decoded.ok()) {
      return Status(Code::kCorruption,
                    "incarnation file " + path + " is damaged: it " + decoded.status().message() +
                        ". The agent refuses to start, because reusing an incarnation could let "
                        "a stale MoveToPre of an earlier run promote a participant. Restore the "
                        "file from a backup, or write a number larger than any run used "
                        "(incarnation_format.md) before starting the agent again");
    }
    previous = *decoded;
  }
  if (previous == std::numeric_limits<uint64_t>::max()) {
    return Status(Code::kInval, "incarnation file " + path + " holds the largest number there is");
  }
  const uint64_t next = previous + 1;

  // A temp file left by a crashed call: its rename never happened.
  Result<FileInfo> temp_info = env->Stat(temp);
  if (!temp_info.ok()) return temp_info.status();
  if (temp_info->exists) XA_RETURN_IF_ERROR(env->Delete(temp));

  Result<std::unique_ptr<WritableFile>> file = env->NewWritableFile(temp);
  if (!file.ok()) return file.status();
  XA_RETURN_IF_ERROR((*file)->Append(EncodeIncarnation(next)));
  XA_RETURN_IF_ERROR((*file)->Sync());
  XA_RETURN_IF_ERROR((*file)->Close());
  XA_RETURN_IF_ERROR(env->Rename(temp, path));
  XA_RETURN_IF_ERROR(env->SyncDir(dir));
  return next;
}

}  // namespace xa::agent
