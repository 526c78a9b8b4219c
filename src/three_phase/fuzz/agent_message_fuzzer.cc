// libFuzzer target: the agent message decoder on hostile bytes. Besides memory errors and
// undefined behaviour (ASan+UBSan), it checks what the format promises for any input:
//   - a refusal is XA_CORRUPTION with a message of printable ASCII (no peer bytes in logs);
//   - a message that decodes passes the encoder's rules and re-encodes to exactly the same bytes
//     (one encoding a message), and decodes again to an equal message.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/testing/fuzz_checks.h"
#include "src/three_phase/agent_messages.h"

namespace {

using xa::fuzz::Check;
using xa::fuzz::Printable;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace xa::three_phase;  // NOLINT(build/namespaces): a fuzzer's .cc, not a header
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  xa::Result<AgentMessage> message = DecodeAgentMessage(in);
  if (!message.ok()) {
    Check(message.status().code() == xa::Code::kCorruption);
    Check(Printable(message.status().message()));
    return 0;
  }
  Check(ValidateAgentMessage(*message).ok());
  xa::Result<std::string> again = EncodeAgentMessage(*message);
  Check(again.ok() && *again == in);
  xa::Result<AgentMessage> back = DecodeAgentMessage(*again);
  Check(back.ok() && *back == *message);
  return 0;
}
