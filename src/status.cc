#include "xa/status.h"

namespace xa {

std::string_view CodeName(Code code) noexcept {
  switch (code) {
    case Code::kOk: return "XA_OK";
    case Code::kReadOnly: return "XA_RDONLY";
    case Code::kRetry: return "XA_RETRY";
    case Code::kHeuristicMixed: return "XA_HEURMIX";
    case Code::kHeuristicRollback: return "XA_HEURRB";
    case Code::kHeuristicCommit: return "XA_HEURCOM";
    case Code::kHeuristicHazard: return "XA_HEURHAZ";
    case Code::kNoMigrate: return "XA_NOMIGRATE";
    case Code::kRbRollback: return "XA_RBROLLBACK";
    case Code::kRbCommFail: return "XA_RBCOMMFAIL";
    case Code::kRbDeadlock: return "XA_RBDEADLOCK";
    case Code::kRbIntegrity: return "XA_RBINTEGRITY";
    case Code::kRbOther: return "XA_RBOTHER";
    case Code::kRbProto: return "XA_RBPROTO";
    case Code::kRbTimeout: return "XA_RBTIMEOUT";
    case Code::kRbTransient: return "XA_RBTRANSIENT";
    case Code::kAsync: return "XAER_ASYNC";
    case Code::kRmError: return "XAER_RMERR";
    case Code::kNoTa: return "XAER_NOTA";
    case Code::kInval: return "XAER_INVAL";
    case Code::kProto: return "XAER_PROTO";
    case Code::kRmFail: return "XAER_RMFAIL";
    case Code::kDupId: return "XAER_DUPID";
    case Code::kOutside: return "XAER_OUTSIDE";
    case Code::kConfig: return "XA_CONFIG";
    case Code::kIoError: return "XA_IOERROR";
    case Code::kCorruption: return "XA_CORRUPTION";
    case Code::kLogFailed: return "XA_LOGFAILED";
    case Code::kBusy: return "XA_BUSY";
    case Code::kTimeout: return "XA_TIMEOUT";
    case Code::kInternal: return "XA_INTERNAL";
    case Code::kNotSupported: return "XA_NOTSUPPORTED";
  }
  return "XA_UNKNOWN_CODE";
}

std::string Status::ToString() const {
  std::string out(CodeName(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string message(context);
  if (!message_.empty()) {
    message += ": ";
    message += message_;
  }
  return Status(code_, std::move(message));
}

}  // namespace xa
