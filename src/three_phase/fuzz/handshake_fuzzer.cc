// libFuzzer target: the peer handshake's message decoder on hostile bytes (what an
// unauthenticated peer can send). Besides memory errors and undefined behaviour (ASan+UBSan), it
// checks for any input:
//   - a refusal is XA_CORRUPTION with a message of printable ASCII (no peer bytes in logs);
//   - a message that decodes has the field sizes of its kind and re-encodes to exactly the same
//     bytes; the proof over its name and nonce can be computed.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/net/peer_auth.h"
#include "src/testing/fuzz_checks.h"

namespace {

using xa::fuzz::Check;
using xa::fuzz::Printable;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::net;  // NOLINT(build/namespaces): a fuzzer's .cc, not a header
  static const SharedKey* key = new SharedKey(*SharedKey::FromBytes(std::string(32, 'k')));
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  xa::Result<HandshakeMessage> message = DecodeHandshakeMessage(in);
  if (!message.ok()) {
    Check(message.status().code() == xa::Code::kCorruption);
    Check(Printable(message.status().message()));
    return 0;
  }
  Check(in.size() <= kMaxHandshakeMessageSize);
  Check(EncodeHandshakeMessage(*message) == in);
  switch (message->kind) {
    case HandshakeKind::kHello:
    case HandshakeKind::kChallenge:
      Check(!message->name.empty() && message->name.size() <= kMaxPeerNameSize);
      Check(message->nonce.size() == kHandshakeNonceSize);
      Check(HandshakeProof(*key, kServerProofLabel, message->nonce, message->nonce,
                           message->name, message->name)
                .size() == kHandshakeProofSize);
      break;
    case HandshakeKind::kProof:
      Check(message->proof.size() == kHandshakeProofSize);
      break;
    case HandshakeKind::kWelcome:
      break;
    case HandshakeKind::kRefused:
      Check(message->reason == RefusalReason::kBadProof ||
            message->reason == RefusalReason::kMalformed);
      break;
    default:
      Check(false);
  }
  return 0;
}
