#include "daemons/msgd/message.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>

#include "src/base/byte_text.h"
#include "src/base/escape.h"

namespace xa::msg {

Result<std::string> NewMessageId() {
  unsigned char bytes[kMessageIdSize / 2];
  size_t filled = 0;
  while (filled < sizeof(bytes)) {
    ssize_t got = ::getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status(Code::kIoError, "getrandom failed while choosing a message id (errno " +
                                        std::to_string(errno) + ")");
    }
    filled += static_cast<size_t>(got);
  }
  return internal::LowerHex(std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

Status MessageIdError(std::string_view id) {
  return Status(Code::kInval, "message id '" + internal::EscapeForMessage(id.substr(0, 64)) +
                                  "' is not " + std::to_string(kMessageIdSize) +
                                  " lower-case hex characters");
}

Status LimitError() { return Status(Code::kInval, "a page or batch limit must be 1 to 1000"); }

bool IsTablePrefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 31) return false;
  if (!((prefix[0] >= 'a' && prefix[0] <= 'z') || prefix[0] == '_')) return false;
  return std::all_of(prefix.begin(), prefix.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

bool IsMessageId(std::string_view id) noexcept {
  return id.size() == kMessageIdSize &&
         std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view MessageStatusName(MessageStatus status) noexcept {
  switch (status) {
    case MessageStatus::kPending: return "pending";
    case MessageStatus::kReady: return "ready";
    case MessageStatus::kSent: return "sent";
    case MessageStatus::kDone: return "done";
    case MessageStatus::kParked: return "parked";
  }
  return "?";
}

std::optional<MessageStatus> MessageStatusFromNumber(int64_t number) noexcept {
  if (number < static_cast<int64_t>(MessageStatus::kPending) ||
      number > static_cast<int64_t>(MessageStatus::kParked)) {
    return std::nullopt;
  }
  return static_cast<MessageStatus>(number);
}

std::optional<MessageStatus> MessageStatusFromName(std::string_view name) noexcept {
  for (int64_t number = 1; number <= 5; ++number) {
    MessageStatus status = static_cast<MessageStatus>(number);
    if (MessageStatusName(status) == name) return status;
  }
  return std::nullopt;
}

}  // namespace xa::msg
