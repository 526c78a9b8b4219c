// Peer authentication: a mutual challenge–response handshake over a shared key, run once on a
// new Connection (transport.h) right after connect or accept, before any other message. The
// format and the reasoning are also in peer_auth.md beside this file;
// tests/three_phase/peer_auth_doc_test.cc checks that the two agree.
//
//   client                                          server
//     Hello{version, client name, client nonce}  ->
//                                                <-  Challenge{server name, server nonce,
//                                                              server proof}
//     checks the server proof
//     Proof{client proof}                        ->
//                                                    checks the client proof
//                                                <-  Welcome
//
//   server proof = HMAC-SHA256(key, kServerProofLabel | transcript)
//   client proof = HMAC-SHA256(key, kClientProofLabel | transcript)
//   transcript   = client nonce | server nonce | u8 length, client name | u8 length, server name
//
// Each side proves that it holds the key over the other side's fresh random nonce (32 bytes from
// RAND_bytes), so a recorded handshake cannot be replayed; the two directions use different
// labels, so a proof cannot be reflected back to the side that made it. Proofs are compared in
// constant time (CRYPTO_memcmp).
//
// Any failure closes the connection. A side that refuses the other's proof or message first sends
// Refused{reason} (best effort), so that both logs say why. Errors:
//   Code::kConfig      the peer's proof does not match (the two sides hold different keys, or the
//                      peer is not an xa peer), or the peer refused ours: check that both key
//                      files are copies of one file; also for a refused key file (LoadSharedKey);
//   Code::kCorruption  a handshake message that does not parse (the message names the field);
//   Code::kTimeout     the deadline passed (a silent or slow peer);
//   Code::kIoError     the connection broke or was closed by the peer;
//   Code::kInval       my_name empty or over kMaxPeerNameSize.
// Messages never hold the key or a proof. Nothing is logged here: the caller logs the Status and
// counts the dropped peer.
//
// What it does not do: frames after the handshake are neither authenticated nor encrypted, so
// an attacker on the path (who can change TCP streams) is not stopped. It keeps out programs and
// hosts that do not hold the key; the network between agents must still be trusted not to be
// actively tampered with (see docs/three-phase-commit.md, "Assumptions"). A peer's name is the
// name it claims: any holder of the key can claim any name.
//
// Thread safety: the functions may run concurrently on different connections. A SharedKey is
// immutable after it is loaded.

#ifndef XA_SRC_NET_PEER_AUTH_H_
#define XA_SRC_NET_PEER_AUTH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/net/transport.h"
#include "xa/env.h"
#include "xa/status.h"

namespace xa::net {

inline constexpr size_t kMinSharedKeySize = 32;
inline constexpr size_t kMaxSharedKeySize = 4096;

// The shared key: the bytes of a key file, all of them (a trailing newline included). Never
// printed; wiped from memory when destroyed.
class SharedKey {
 public:
  // The key `bytes`; XA_CONFIG when shorter than kMinSharedKeySize or longer than
  // kMaxSharedKeySize.
  static Result<SharedKey> FromBytes(std::string_view bytes);

  SharedKey(const SharedKey& other) : bytes_(other.bytes_) {}
  SharedKey(SharedKey&& other) noexcept;
  SharedKey& operator=(const SharedKey&) = delete;
  SharedKey& operator=(SharedKey&&) = delete;
  ~SharedKey();

  // For the HMAC only.
  std::string_view bytes() const noexcept { return bytes_; }

 private:
  explicit SharedKey(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

// Reads the key file at `path` by the rules of src/base/trusted_file.h. XA_CONFIG, saying what to
// do, when it cannot be opened, is a symbolic link or not a regular file, belongs to another
// user, can be read or written by the group or others (mode & 077), or holds fewer than
// kMinSharedKeySize or more than kMaxSharedKeySize bytes. Make one with
//   head -c 32 /dev/urandom > agent.key && chmod 600 agent.key
// and copy the same file to every agent and coordinator.
Result<SharedKey> LoadSharedKey(const std::string& path);

// Runs the client's side on `connection` (just connected). Returns the server's name.
Result<std::string> AuthenticateAsClient(Connection& connection, const SharedKey& key,
                                         std::string_view my_name, Clock::SteadyTime deadline);
// Runs the server's side on `connection` (just accepted). Returns the client's name.
Result<std::string> AuthenticateAsServer(Connection& connection, const SharedKey& key,
                                         std::string_view my_name, Clock::SteadyTime deadline);

// ---- The handshake messages (one a frame), exposed for tests, the fuzzer and the doc test ----
//
//   message    := version kind body
//   version    := u8                      ; kPeerAuthVersion
//   hello      := u8 n, byte{n} name, byte{32} nonce
//   challenge  := u8 n, byte{n} name, byte{32} nonce, byte{32} proof
//   proof      := byte{32} proof
//   welcome    := (nothing)
//   refused    := u8 reason
//   names are 1..kMaxPeerNameSize bytes; nothing may follow the last field.

inline constexpr uint8_t kPeerAuthVersion = 1;
inline constexpr size_t kHandshakeNonceSize = 32;
inline constexpr size_t kHandshakeProofSize = 32;  // HMAC-SHA256
inline constexpr size_t kMaxPeerNameSize = 255;
// Larger than any handshake message (a Challenge with the longest name: 322 bytes).
inline constexpr size_t kMaxHandshakeMessageSize = 512;
// The labels in front of the transcript; the same length, so neither is a prefix of the other.
inline constexpr std::string_view kServerProofLabel = "xa peer auth 1: server proof";
inline constexpr std::string_view kClientProofLabel = "xa peer auth 1: client proof";

enum class HandshakeKind : uint8_t {
  kHello = 1,
  kChallenge = 2,
  kProof = 3,
  kWelcome = 4,
  kRefused = 5,
};

enum class RefusalReason : uint8_t {
  kBadProof = 1,   // the proof did not match this side's key
  kMalformed = 2,  // a message that did not parse, or came out of turn
};

struct HandshakeMessage {
  HandshakeKind kind = HandshakeKind::kHello;
  std::string name;   // Hello, Challenge
  std::string nonce;  // Hello, Challenge: kHandshakeNonceSize bytes
  std::string proof;  // Challenge, Proof: kHandshakeProofSize bytes
  RefusalReason reason = RefusalReason::kMalformed;  // Refused
  friend bool operator==(const HandshakeMessage&, const HandshakeMessage&) = default;
};

std::string_view HandshakeKindName(HandshakeKind kind) noexcept;

// `message` must have the fields its kind uses, of the sizes above (the decoder refuses anything
// else).
std::string EncodeHandshakeMessage(const HandshakeMessage& message);
// XA_CORRUPTION naming the field and the limit for anything the grammar above does not allow.
Result<HandshakeMessage> DecodeHandshakeMessage(std::string_view payload);

// HMAC-SHA256(key, label | transcript): what each side proves (32 bytes).
std::string HandshakeProof(const SharedKey& key, std::string_view label,
                           std::string_view client_nonce, std::string_view server_nonce,
                           std::string_view client_name, std::string_view server_name);

}  // namespace xa::net

#endif  // XA_SRC_NET_PEER_AUTH_H_
