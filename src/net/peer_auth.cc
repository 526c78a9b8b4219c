#include "src/net/peer_auth.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <optional>
#include <utility>

#include "src/base/escape.h"
#include "src/base/hmac_sha256.h"
#include "src/base/trusted_file.h"

namespace xa::net {

namespace {

using internal::EscapeForMessage;

std::string N(size_t n) { return std::to_string(n); }

// ---- Messages ---------------------------------------------------------------------------------

class Reader {
 public:
  Reader(std::string_view in, std::string_view kind) : in_(in), kind_(kind) {}

  bool Byte(std::string_view field, uint8_t* v) {
    if (!Need(field, 1)) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Bytes(std::string_view field, size_t n, std::string* v) {
    if (!Need(field, n)) return false;
    v->assign(in_.substr(0, n));
    in_.remove_prefix(n);
    return true;
  }
  bool Name(std::string* v) {
    uint8_t n;
    if (!Byte("name length", &n)) return false;
    if (n == 0) return Fail("name: empty (1.." + N(kMaxPeerNameSize) + " bytes allowed)");
    return Bytes("name", n, v);
  }
  bool End() {
    if (in_.empty()) return true;
    return Fail(N(in_.size()) + " bytes after the last field");
  }
  bool Fail(std::string why) {
    if (error_.empty()) error_ = std::string(kind_) + ": " + std::move(why);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  bool Need(std::string_view field, size_t n) {
    if (in_.size() >= n) return true;
    return Fail(std::string(field) + " truncated (" + N(n) + " bytes needed, " + N(in_.size()) +
                " left)");
  }

  std::string_view in_;
  std::string_view kind_;
  std::string error_;
};

Status Corrupt(std::string why) {
  return Status(Code::kCorruption, "handshake message: " + std::move(why));
}

// ---- The handshake ----------------------------------------------------------------------------

Result<std::string> RandomNonce() {
  std::string nonce(kHandshakeNonceSize, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()),
                 static_cast<int>(nonce.size())) != 1) {
    return Status(Code::kIoError,
                  "peer authentication: the random generator (RAND_bytes) failed to make a nonce");
  }
  return nonce;
}

Status CheckMyName(std::string_view name) {
  if (name.empty() || name.size() > kMaxPeerNameSize) {
    return Status(Code::kInval, "peer authentication: own name of " + N(name.size()) +
                                    " bytes (1.." + N(kMaxPeerNameSize) + " allowed)");
  }
  return Status::Ok();
}

// One side of one handshake: the connection, who we are, and how to fail.
class Side {
 public:
  Side(Connection& connection, std::string_view role, Clock::SteadyTime deadline)
      : connection_(connection), role_(role), deadline_(deadline) {}

  // Closes the connection (after a Refused with `reason`, if any) and returns `status` with the
  // context of this handshake.
  Status Fail(Status status, std::optional<RefusalReason> reason = std::nullopt) {
    if (reason) {
      HandshakeMessage refused;
      refused.kind = HandshakeKind::kRefused;
      refused.reason = *reason;
      connection_.Send(EncodeHandshakeMessage(refused)).IgnoreError();  // best effort
    }
    connection_.Close();
    return status.WithContext("peer authentication with " + connection_.peer_address() + " (as " +
                              std::string(role_) + ")");
  }

  Status Send(const HandshakeMessage& message) {
    return connection_.Send(EncodeHandshakeMessage(message));
  }

  // The next message, which must be of kind `expected`; on anything else the connection is
  // closed and the Status says what came.
  Result<HandshakeMessage> Receive(HandshakeKind expected) {
    const std::string waiting = "waiting for " + std::string(HandshakeKindName(expected));
    Result<std::string> payload = connection_.Receive(deadline_);
    if (!payload.ok()) return Fail(payload.status().WithContext(waiting));
    Result<HandshakeMessage> message = DecodeHandshakeMessage(*payload);
    if (!message.ok()) {
      return Fail(message.status().WithContext(waiting), RefusalReason::kMalformed);
    }
    if (message->kind == HandshakeKind::kRefused) {
      if (message->reason == RefusalReason::kBadProof) {
        return Fail(Status(Code::kConfig,
                           "the peer refused our proof: the two sides hold different shared keys "
                           "(make both key files copies of one file)"));
      }
      return Fail(Status(Code::kCorruption,
                         "the peer refused our handshake message as malformed (a peer of another "
                         "version or not an xa peer?)"));
    }
    if (message->kind != expected) {
      return Fail(Corrupt(waiting + ", got " + std::string(HandshakeKindName(message->kind))),
                  RefusalReason::kMalformed);
    }
    return message;
  }

  // XA_CONFIG (after a Refused) unless `proof` is `expected`, compared in constant time.
  Status CheckProof(std::string_view proof, std::string_view expected, std::string_view peer,
                    std::string_view peer_name) {
    if (internal::ConstantTimeEqual(proof, expected)) return Status::Ok();
    return Fail(Status(Code::kConfig,
                       "the " + std::string(peer) + " (calling itself '" +
                           EscapeForMessage(peer_name) +
                           "') failed authentication: its proof does not match our shared key; "
                           "the two sides hold different keys (make both key files copies of one "
                           "file) or the peer is not an xa peer"),
                RefusalReason::kBadProof);
  }

 private:
  Connection& connection_;
  std::string_view role_;
  Clock::SteadyTime deadline_;
};

}  // namespace

// ---- Shared key -------------------------------------------------------------------------------

Result<SharedKey> SharedKey::FromBytes(std::string_view bytes) {
  if (bytes.size() < kMinSharedKeySize) {
    return Status(Code::kConfig, "shared key of " + N(bytes.size()) + " bytes: at least " +
                                     N(kMinSharedKeySize) +
                                     " random bytes are needed (head -c 32 /dev/urandom)");
  }
  if (bytes.size() > kMaxSharedKeySize) {
    return Status(Code::kConfig, "shared key of " + N(bytes.size()) + " bytes: more than " +
                                     N(kMaxSharedKeySize) + " (is it the key file?)");
  }
  return SharedKey(std::string(bytes));
}

SharedKey::SharedKey(SharedKey&& other) noexcept : bytes_(std::move(other.bytes_)) {
  OPENSSL_cleanse(other.bytes_.data(), other.bytes_.size());
  other.bytes_.clear();
}

SharedKey::~SharedKey() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Result<SharedKey> LoadSharedKey(const std::string& path) {
  // The one rule for files that decide trust (src/base/trusted_file.h): a regular file, never a
  // symbolic link, owned by the user running us, nobody else may read or write it.
  static constexpr internal::TrustedFileRules kKeyFileRules{
      "the shared key file", false, false, 077, "600", kMaxSharedKeySize, "this xa process"};
  Result<std::string> bytes = internal::ReadTrustedFile(path, kKeyFileRules);
  if (!bytes.ok()) return bytes.status();
  Result<SharedKey> key = SharedKey::FromBytes(*bytes);
  const size_t size = bytes->size();
  OPENSSL_cleanse(bytes->data(), bytes->size());
  if (!key.ok()) {
    return Status(Code::kConfig,
                  "the shared key file " + EscapeForMessage(path) + " holds " + N(size) +
                      " bytes; a key is " + N(kMinSharedKeySize) + ".." + N(kMaxSharedKeySize) +
                      " bytes: make one with `head -c 32 /dev/urandom > FILE && chmod 600 FILE` "
                      "and copy it to every agent and coordinator");
  }
  return key;
}

// ---- Messages ---------------------------------------------------------------------------------

std::string_view HandshakeKindName(HandshakeKind kind) noexcept {
  switch (kind) {
    case HandshakeKind::kHello: return "Hello";
    case HandshakeKind::kChallenge: return "Challenge";
    case HandshakeKind::kProof: return "Proof";
    case HandshakeKind::kWelcome: return "Welcome";
    case HandshakeKind::kRefused: return "Refused";
  }
  return "unknown";
}

std::string EncodeHandshakeMessage(const HandshakeMessage& message) {
  std::string out;
  out.push_back(static_cast<char>(kPeerAuthVersion));
  out.push_back(static_cast<char>(message.kind));
  auto put_name = [&] {
    out.push_back(static_cast<char>(message.name.size()));
    out += message.name;
  };
  switch (message.kind) {
    case HandshakeKind::kHello:
      put_name();
      out += message.nonce;
      break;
    case HandshakeKind::kChallenge:
      put_name();
      out += message.nonce;
      out += message.proof;
      break;
    case HandshakeKind::kProof:
      out += message.proof;
      break;
    case HandshakeKind::kWelcome:
      break;
    case HandshakeKind::kRefused:
      out.push_back(static_cast<char>(message.reason));
      break;
  }
  return out;
}

Result<HandshakeMessage> DecodeHandshakeMessage(std::string_view payload) {
  if (payload.size() > kMaxHandshakeMessageSize) {
    return Corrupt(N(payload.size()) + " bytes, over the limit of " +
                   N(kMaxHandshakeMessageSize));
  }
  if (payload.size() < 2) {
    return Corrupt("header truncated (2 bytes needed, " + N(payload.size()) + " present)");
  }
  const auto version = static_cast<uint8_t>(payload[0]);
  const auto kind = static_cast<uint8_t>(payload[1]);
  if (version != kPeerAuthVersion) {
    return Corrupt("version " + N(version) + " unknown (this build speaks version " +
                   N(kPeerAuthVersion) + ")");
  }
  HandshakeMessage message;
  message.kind = static_cast<HandshakeKind>(kind);
  Reader r(payload.substr(2), HandshakeKindName(message.kind));
  bool ok = false;
  switch (message.kind) {
    case HandshakeKind::kHello:
      ok = r.Name(&message.name) && r.Bytes("nonce", kHandshakeNonceSize, &message.nonce);
      break;
    case HandshakeKind::kChallenge:
      ok = r.Name(&message.name) && r.Bytes("nonce", kHandshakeNonceSize, &message.nonce) &&
           r.Bytes("proof", kHandshakeProofSize, &message.proof);
      break;
    case HandshakeKind::kProof:
      ok = r.Bytes("proof", kHandshakeProofSize, &message.proof);
      break;
    case HandshakeKind::kWelcome:
      ok = true;
      break;
    case HandshakeKind::kRefused: {
      uint8_t reason = 0;
      ok = r.Byte("reason", &reason);
      if (ok && reason != static_cast<uint8_t>(RefusalReason::kBadProof) &&
          reason != static_cast<uint8_t>(RefusalReason::kMalformed)) {
        ok = r.Fail("reason " + N(reason) + " unknown (1..2)");
      }
      message.reason = static_cast<RefusalReason>(reason);
      break;
    }
    default:
      return Corrupt("kind " + N(kind) + " unknown (kinds are 1..5)");
  }
  if (!ok || !r.End()) return Corrupt(r.error());
  return message;
}

std::string HandshakeProof(const SharedKey& key, std::string_view label,
                           std::string_view client_nonce, std::string_view server_nonce,
                           std::string_view client_name, std::string_view server_name) {
  std::string transcript;
  transcript.reserve(label.size() + client_nonce.size() + server_nonce.size() + 2 +
                     client_name.size() + server_name.size());
  transcript += label;
  transcript += client_nonce;
  transcript += server_nonce;
  transcript.push_back(static_cast<char>(client_name.size()));
  transcript += client_name;
  transcript.push_back(static_cast<char>(server_name.size()));
  transcript += server_name;
  // "" when libcrypto fails: never equal to a real proof (32 bytes), so the handshake fails
  // closed.
  return internal::HmacSha256(key.bytes(), transcript);
}

// ---- The two sides ----------------------------------------------------------------------------

Result<std::string> AuthenticateAsClient(Connection& connection, const SharedKey& key,
                                         std::string_view my_name, Clock::SteadyTime deadline) {
  Side side(connection, "client", deadline);
  if (Status s = CheckMyName(my_name); !s.ok()) return side.Fail(std::move(s));
  Result<std::string> client_nonce = RandomNonce();
  if (!client_nonce.ok()) return side.Fail(client_nonce.status());

  HandshakeMessage hello;
  hello.kind = HandshakeKind::kHello;
  hello.name = std::string(my_name);
  hello.nonce = *client_nonce;
  if (Status s = side.Send(hello); !s.ok()) return side.Fail(std::move(s));

  Result<HandshakeMessage> challenge = side.Receive(HandshakeKind::kChallenge);
  if (!challenge.ok()) return challenge.status();
  if (challenge->nonce == *client_nonce) {
    return side.Fail(Status(Code::kConfig, "the server sent our own nonce back (a reflected "
                                           "handshake, not an xa peer)"),
                     RefusalReason::kBadProof);
  }
  const std::string expected = HandshakeProof(key, kServerProofLabel, *client_nonce,
                                              challenge->nonce, my_name, challenge->name);
  XA_RETURN_IF_ERROR(side.CheckProof(challenge->proof, expected, "server", challenge->name));

  HandshakeMessage proof;
  proof.kind = HandshakeKind::kProof;
  proof.proof = HandshakeProof(key, kClientProofLabel, *client_nonce, challenge->nonce, my_name,
                               challenge->name);
  if (Status s = side.Send(proof); !s.ok()) return side.Fail(std::move(s));

  Result<HandshakeMessage> welcome = side.Receive(HandshakeKind::kWelcome);
  if (!welcome.ok()) return welcome.status();
  return std::move(challenge->name);
}

Result<std::string> AuthenticateAsServer(Connection& connection, const SharedKey& key,
                                         std::string_view my_name, Clock::SteadyTime deadline) {
  Side side(connection, "server", deadline);
  if (Status s = CheckMyName(my_name); !s.ok()) return side.Fail(std::move(s));
  Result<HandshakeMessage> hello = side.Receive(HandshakeKind::kHello);
  if (!hello.ok()) return hello.status();
  Result<std::string> server_nonce = RandomNonce();
  if (!server_nonce.ok()) return side.Fail(server_nonce.status());

  HandshakeMessage challenge;
  challenge.kind = HandshakeKind::kChallenge;
  challenge.name = std::string(my_name);
  challenge.nonce = *server_nonce;
  challenge.proof = HandshakeProof(key, kServerProofLabel, hello->nonce, *server_nonce,
                                   hello->name, my_name);
  if (Status s = side.Send(challenge); !s.ok()) return side.Fail(std::move(s));

  Result<HandshakeMessage> proof = side.Receive(HandshakeKind::kProof);
  if (!proof.ok()) return proof.status();
  const std::string expected = HandshakeProof(key, kClientProofLabel, hello->nonce,
                                              *server_nonce, hello->name, my_name);
  XA_RETURN_IF_ERROR(side.CheckProof(proof->proof, expected, "client", hello->name));

  HandshakeMessage welcome;
  welcome.kind = HandshakeKind::kWelcome;
  if (Status s = side.Send(welcome); !s.ok()) return side.Fail(std::move(s));
  return std::move(hello->name);
}

}  // namespace xa::net
