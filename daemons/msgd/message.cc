#include "daemons/msgd/message.h"

#include <algorithm>

namespace xa::msg {

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
