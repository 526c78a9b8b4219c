#include "src/three_phase/agent_messages.h"

#include <type_traits>
#include <utility>

#include "src/base/coding.h"
#include "src/base/xid_coding.h"

namespace xa::three_phase {

namespace {

using internal::Decoder;
using internal::GetXid;
using internal::PutXid;
using internal::PutFixed32;
using internal::PutFixed64;

std::string N(size_t n) { return std::to_string(n); }

// ---- Rules shared by the encoder and the decoder ---------------------------------------------

// The first rule `message` breaks, as text for a Status ("" when none): one list of rules, so a
// sender refuses exactly what its peer's decoder would.
class Validator {
 public:
  explicit Validator(std::string_view type) : type_(type) {}

  void GlobalXid(const Xid& xid) {
    if (xid.empty()) Fail("xid: empty (a gtrid of 1..64 bytes is required)");
    if (!xid.bqual().empty()) {
      Fail("xid " + xid.ToString() + ": has a branch qualifier of " + N(xid.bqual().size()) +
           " bytes; messages carry the global transaction's Xid (empty bqual)");
    }
  }
  void Number(std::string_view field, uint32_t number) {
    if (number >= kMaxAgentParticipants) {
      Fail(std::string(field) + " " + N(number) + ": out of range (participant numbers are below " +
           N(kMaxAgentParticipants) + ")");
    }
  }
  void Participants(const Xid& xid, uint32_t own_number,
                    const std::vector<Participant>& participants) {
    if (participants.size() > kMaxAgentParticipants) {
      Fail("participants: " + N(participants.size()) + " over the limit of " +
           N(kMaxAgentParticipants));
    }
    if (own_number >= participants.size()) {
      Fail("participant number " + N(own_number) + ": out of range of the participant list (" +
           N(participants.size()) + " participants)");
    }
    for (size_t i = 0; i < participants.size() && error_.empty(); ++i) {
      const Participant& p = participants[i];
      std::string at = "participant " + N(i);
      if (p.rm_name.empty() || p.rm_name.size() > kMaxAgentRmNameSize) {
        Fail(at + ": rm name of " + N(p.rm_name.size()) + " bytes (1.." +
             N(kMaxAgentRmNameSize) + " allowed)");
      }
      if (p.branch.empty() || p.branch.format_id() != xid.format_id() ||
          p.branch.gtrid() != xid.gtrid()) {
        Fail(at + ": branch Xid " + p.branch.ToString() + " is not a branch of " +
             xid.ToString() + " (same format id and gtrid required)");
      }
    }
  }
  void Text(std::string_view field, const std::string& text) {
    if (text.size() > kMaxAgentTextSize) {
      Fail(std::string(field) + ": " + N(text.size()) + " bytes over the limit of " +
           N(kMaxAgentTextSize));
    }
  }
  // A decision's sender: the coordinator, or a peer participant (never the addressee itself).
  void Sender(uint32_t participant, uint32_t sender) {
    if (sender == kCoordinatorSender) return;
    Number("sender", sender);
    if (sender == participant) {
      Fail("sender " + N(sender) + ": the addressed participant itself (a participant sends "
           "its decision only to its peers)");
    }
  }
  void State(ParticipantState state) {
    if (!IsParticipantState(static_cast<uint8_t>(state))) {
      Fail("state " + N(static_cast<uint8_t>(state)) + ": not a participant state (1..5)");
    }
  }
  void ErrorCode(Code code) {
    // CodeName's answer for a number that no Code names: the one list of the codes xa defines.
    if (code == Code::kOk || CodeName(code) == "XA_UNKNOWN_CODE") {
      Fail("code " + std::to_string(static_cast<int32_t>(code)) +
           ": not an error code that xa defines");
    }
  }

  void Fail(std::string why) {
    if (error_.empty()) error_ = std::string(type_) + ": " + std::move(why);
  }
  const std::string& error() const { return error_; }

 private:
  std::string_view type_;
  std::string error_;
};

void Check(Validator& v, const CanCommitMessage& m) {
  v.GlobalXid(m.xid);
  v.Participants(m.xid, m.participant, m.participants);
}
void Check(Validator& v, const VoteMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.Text("reason", m.reason);
}
void Check(Validator& v, const PreCommitMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
}
void Check(Validator& v, const DoCommitMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.Sender(m.participant, m.sender);
}
void Check(Validator& v, const AbortMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.Sender(m.participant, m.sender);
}
void Check(Validator& v, const StateQueryMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  if (m.asker == kCoordinatorAsker) {
    if (m.backup_round) v.Fail("asker: the coordinator never runs a backup round");
    if (m.round_incarnation != 0 || m.round_counter != 0) {
      v.Fail("round: the coordinator runs no termination round (both must be 0)");
    }
  } else {
    v.Number("asker", m.asker);
  }
}
void Check(Validator& v, const StateReplyMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.State(m.state);
}
void Check(Validator& v, const MoveToPreMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.Number("asker", m.asker);
  if (m.round_counter == 0) v.Fail("round counter 0: a termination round counts from 1");
}
void Check(Validator& v, const AckMessage& m) {
  v.GlobalXid(m.xid);
  v.Number("participant number", m.participant);
  v.State(m.state);
}
void Check(Validator& v, const ErrorMessage& m) {
  v.ErrorCode(m.code);
  v.Text("message", m.message);
}

std::string FirstViolation(const AgentMessage& message) {
  Validator v(AgentMessageTypeName(TypeOf(message)));
  std::visit([&](const auto& body) { Check(v, body); }, message.body);
  return v.error();
}

// ---- Encoding ---------------------------------------------------------------------------------

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutBool(std::string* out, bool v) { PutU8(out, v ? 1 : 0); }

// The lengths were checked by the Validator (gtrid, bqual and rm name fit in a byte).
void PutText(std::string* out, const std::string& text) {
  PutFixed32(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}
void PutHead(std::string* out, const Xid& xid, uint32_t participant) {
  PutXid(out, xid);
  PutFixed32(out, participant);
}

void EncodeBody(std::string* out, const CanCommitMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutFixed32(out, static_cast<uint32_t>(m.participants.size()));
  for (const Participant& p : m.participants) {
    PutU8(out, static_cast<uint8_t>(p.rm_name.size()));
    out->append(p.rm_name);
    PutXid(out, p.branch);
  }
  PutFixed64(out, m.fence_session_id);
  PutBool(out, m.read_only);
}
void EncodeBody(std::string* out, const VoteMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutBool(out, m.yes);
  PutText(out, m.reason);
}
void EncodeBody(std::string* out, const PreCommitMessage& m) { PutHead(out, m.xid, m.participant); }
void EncodeBody(std::string* out, const DoCommitMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutBool(out, m.branch_done);
  PutFixed32(out, m.sender);
}
void EncodeBody(std::string* out, const AbortMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutBool(out, m.branch_done);
  PutFixed32(out, m.sender);
}
void EncodeBody(std::string* out, const StateQueryMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutFixed32(out, m.asker);
  PutBool(out, m.asker_restarted);
  PutBool(out, m.backup_round);
  PutFixed64(out, m.round_incarnation);
  PutFixed64(out, m.round_counter);
}
void EncodeBody(std::string* out, const StateReplyMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutU8(out, static_cast<uint8_t>(m.state));
  PutBool(out, m.restarted);
  PutBool(out, m.undecided_never_restarted);
}
void EncodeBody(std::string* out, const MoveToPreMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutFixed32(out, m.asker);
  PutFixed64(out, m.round_incarnation);
  PutFixed64(out, m.round_counter);
}
void EncodeBody(std::string* out, const AckMessage& m) {
  PutHead(out, m.xid, m.participant);
  PutU8(out, static_cast<uint8_t>(m.state));
}
void EncodeBody(std::string* out, const ErrorMessage& m) {
  PutFixed32(out, static_cast<uint32_t>(static_cast<int32_t>(m.code)));
  PutText(out, m.message);
}

// ---- Decoding ---------------------------------------------------------------------------------

// Reads the fields of one message in order; the first failure is kept with the field's name.
class Reader {
 public:
  Reader(std::string_view in, std::string_view type) : in_(in), type_(type) {}

  bool U8(std::string_view field, uint8_t* v) { return Need(field, 1) && in_.GetU8(v); }
  bool Fixed32(std::string_view field, uint32_t* v) {
    return Need(field, 4) && in_.GetFixed32(v);
  }
  bool Fixed64(std::string_view field, uint64_t* v) {
    return Need(field, 8) && in_.GetFixed64(v);
  }
  bool Bytes(std::string_view field, size_t n, std::string* v) {
    std::string_view bytes;
    if (!Need(field, n) || !in_.GetBytes(n, &bytes)) return false;
    v->assign(bytes);
    return true;
  }
  bool Bool(std::string_view field, bool* v) {
    uint8_t byte;
    if (!U8(field, &byte)) return false;
    if (byte > 1) return Fail(std::string(field) + ": " + N(byte) + " is not a bool (0 or 1)");
    *v = byte == 1;
    return true;
  }
  bool State(std::string_view field, ParticipantState* v) {
    uint8_t byte;
    if (!U8(field, &byte)) return false;
    if (!IsParticipantState(byte)) {
      return Fail(std::string(field) + ": " + N(byte) + " is not a participant state (1..5)");
    }
    *v = static_cast<ParticipantState>(byte);
    return true;
  }
  bool Text(std::string_view field, std::string* v) {
    uint32_t n;
    if (!Fixed32(std::string(field) + " length", &n)) return false;
    if (n > kMaxAgentTextSize) {
      return Fail(std::string(field) + ": length " + N(n) + " over the limit of " +
                  N(kMaxAgentTextSize));
    }
    return Bytes(field, n, v);
  }
  bool XidField(std::string_view field, Xid* v) {
    Status read = GetXid(&in_, std::string(field), v);
    if (!read.ok()) return Fail(read.message());
    return true;
  }
  bool Number(uint32_t* v) { return Fixed32("participant number", v); }

  bool End() {
    if (in_.empty()) return true;
    return Fail(N(in_.remaining()) + " bytes after the last field");
  }

  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::string(type_) + ": " + std::move(why);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool Need(std::string_view field, size_t n) {
    if (in_.remaining() >= n) return true;
    return Fail(std::string(field) + " truncated (" + N(n) + " bytes needed, " +
                N(in_.remaining()) + " left)");
  }

  Decoder in_;
  std::string_view type_;
  std::string error_;
};

bool DecodeBody(Reader& r, CanCommitMessage* m) {
  uint32_t count;
  if (!r.XidField("xid", &m->xid) || !r.Number(&m->participant) ||
      !r.Fixed32("participant count", &count)) {
    return false;
  }
  if (count > kMaxAgentParticipants) {
    return r.Fail("participant count " + N(count) + " over the limit of " +
                  N(kMaxAgentParticipants));
  }
  m->participants.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    Participant& p = m->participants[i];
    std::string at = "participant " + N(i);
    uint8_t name_size;
    if (!r.U8(at + " rm name length", &name_size) ||
        !r.Bytes(at + " rm name", name_size, &p.rm_name) ||
        !r.XidField(at + " branch xid", &p.branch)) {
      return false;
    }
  }
  return r.Fixed64("fence session id", &m->fence_session_id) &&
         r.Bool("read only", &m->read_only);
}
bool DecodeBody(Reader& r, VoteMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) && r.Bool("yes", &m->yes) &&
         r.Text("reason", &m->reason);
}
bool DecodeBody(Reader& r, PreCommitMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant);
}
bool DecodeBody(Reader& r, DoCommitMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) &&
         r.Bool("branch done", &m->branch_done) && r.Fixed32("sender", &m->sender);
}
bool DecodeBody(Reader& r, AbortMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) &&
         r.Bool("branch done", &m->branch_done) && r.Fixed32("sender", &m->sender);
}
bool DecodeBody(Reader& r, StateQueryMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) &&
         r.Fixed32("asker", &m->asker) && r.Bool("asker restarted", &m->asker_restarted) &&
         r.Bool("backup round", &m->backup_round) &&
         r.Fixed64("round incarnation", &m->round_incarnation) &&
         r.Fixed64("round counter", &m->round_counter);
}
bool DecodeBody(Reader& r, StateReplyMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) && r.State("state", &m->state) &&
         r.Bool("restarted", &m->restarted) &&
         r.Bool("undecided and never restarted", &m->undecided_never_restarted);
}
bool DecodeBody(Reader& r, MoveToPreMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) &&
         r.Fixed32("asker", &m->asker) &&
         r.Fixed64("round incarnation", &m->round_incarnation) &&
         r.Fixed64("round counter", &m->round_counter);
}
bool DecodeBody(Reader& r, AckMessage* m) {
  return r.XidField("xid", &m->xid) && r.Number(&m->participant) && r.State("state", &m->state);
}
bool DecodeBody(Reader& r, ErrorMessage* m) {
  uint32_t code;
  if (!r.Fixed32("code", &code)) return false;
  m->code = static_cast<Code>(static_cast<int32_t>(code));
  return r.Text("message", &m->message);
}

// The body of `type` default-constructed in `message`; false for a number no type has.
bool EmplaceBody(uint8_t type, AgentMessage* message) {
  switch (static_cast<AgentMessageType>(type)) {
    case AgentMessageType::kCanCommit: message->body.emplace<CanCommitMessage>(); return true;
    case AgentMessageType::kVote: message->body.emplace<VoteMessage>(); return true;
    case AgentMessageType::kPreCommit: message->body.emplace<PreCommitMessage>(); return true;
    case AgentMessageType::kDoCommit: message->body.emplace<DoCommitMessage>(); return true;
    case AgentMessageType::kAbort: message->body.emplace<AbortMessage>(); return true;
    case AgentMessageType::kStateQuery: message->body.emplace<StateQueryMessage>(); return true;
    case AgentMessageType::kStateReply: message->body.emplace<StateReplyMessage>(); return true;
    case AgentMessageType::kMoveToPre: message->body.emplace<MoveToPreMessage>(); return true;
    case AgentMessageType::kAck: message->body.emplace<AckMessage>(); return true;
    case AgentMessageType::kError: message->body.emplace<ErrorMessage>(); return true;
  }
  return false;
}

Status Corrupt(std::string why) {
  return Status(Code::kCorruption, "agent message: " + std::move(why));
}

}  // namespace

std::string_view AgentMessageTypeName(AgentMessageType type) noexcept {
  switch (type) {
    case AgentMessageType::kCanCommit: return "CanCommit";
    case AgentMessageType::kVote: return "Vote";
    case AgentMessageType::kPreCommit: return "PreCommit";
    case AgentMessageType::kDoCommit: return "DoCommit";
    case AgentMessageType::kAbort: return "Abort";
    case AgentMessageType::kStateQuery: return "StateQuery";
    case AgentMessageType::kStateReply: return "StateReply";
    case AgentMessageType::kMoveToPre: return "MoveToPre";
    case AgentMessageType::kAck: return "Ack";
    case AgentMessageType::kError: return "Error";
  }
  return "unknown";
}

AgentMessageType TypeOf(const AgentMessage& message) noexcept {
  return std::visit([](const auto& body) { return std::decay_t<decltype(body)>::kType; },
                    message.body);
}

Status ValidateAgentMessage(const AgentMessage& message) {
  std::string violation = FirstViolation(message);
  if (violation.empty()) return Status::Ok();
  return Status(Code::kInval, "agent message " + violation);
}

Result<std::string> EncodeAgentMessage(const AgentMessage& message) {
  XA_RETURN_IF_ERROR(ValidateAgentMessage(message));
  std::string out;
  PutU8(&out, kAgentMessageVersion);
  PutU8(&out, static_cast<uint8_t>(TypeOf(message)));
  PutFixed64(&out, message.request_id);
  std::visit([&](const auto& body) { EncodeBody(&out, body); }, message.body);
  if (out.size() > kMaxAgentMessageSize) {
    return Status(Code::kInval, "agent message " +
                                    std::string(AgentMessageTypeName(TypeOf(message))) +
                                    ": encodes to " + N(out.size()) +
                                    " bytes, over the limit of " + N(kMaxAgentMessageSize) +
                                    " (fewer participants, or shorter names and text)");
  }
  return out;
}

Result<AgentMessage> DecodeAgentMessage(std::string_view payload) {
  if (payload.size() > kMaxAgentMessageSize) {
    return Corrupt(N(payload.size()) + " bytes, over the limit of " + N(kMaxAgentMessageSize));
  }
  if (payload.size() < kAgentMessageHeaderSize) {
    return Corrupt("header truncated (" + N(kAgentMessageHeaderSize) + " bytes needed, " +
                   N(payload.size()) + " present)");
  }
  const auto version = static_cast<uint8_t>(payload[0]);
  const auto type = static_cast<uint8_t>(payload[1]);
  if (version == kAgentMessageVersionWithoutSender) {
    return Corrupt("version " + N(version) + ", the format before DoCommit and Abort named their "
                   "sender, is no longer spoken (this build speaks version " +
                   N(kAgentMessageVersion) + "): upgrade every agent and coordinator together");
  }
  if (version != kAgentMessageVersion) {
    return Corrupt("version " + N(version) + " unknown (this build speaks version " +
                   N(kAgentMessageVersion) + ")");
  }
  AgentMessage message;
  if (!EmplaceBody(type, &message)) {
    return Corrupt("type " + N(type) + " unknown (types are 1.." +
                   N(kFirstUnassignedAgentMessageType - 1) + ")");
  }
  message.request_id = internal::DecodeFixed64(payload.data() + 2);
  Reader reader(payload.substr(kAgentMessageHeaderSize),
                AgentMessageTypeName(static_cast<AgentMessageType>(type)));
  bool ok = std::visit([&](auto& body) { return DecodeBody(reader, &body); }, message.body) &&
            reader.End();
  if (!ok) return Corrupt(reader.error());
  std::string violation = FirstViolation(message);
  if (!violation.empty()) return Corrupt(violation);
  return message;
}

}  // namespace xa::three_phase
