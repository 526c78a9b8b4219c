// Writes the seed corpora of the wire fuzzers: valid encodings of every agent message type (small
// and at their bounds) and of every handshake message kind, one file each.
//
//   wire_fuzz_seeds <agent message dir> <handshake dir>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "src/net/peer_auth.h"
#include "src/three_phase/agent_messages.h"

namespace {

using namespace xa::three_phase;  // NOLINT(build/namespaces): a program's .cc, not a header

void WriteSeed(const std::filesystem::path& dir, const std::string& name,
               const std::string& bytes) {
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::vector<xa::Participant> Participants(const xa::Xid& xid, size_t n, size_t name_size) {
  std::vector<xa::Participant> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(xa::Participant{std::string(name_size, static_cast<char>('a' + i % 26)),
                                  xid.WithBranch(static_cast<uint16_t>(i))});
  }
  return out;
}

std::vector<AgentMessage> AgentSeeds() {
  const xa::Xid small = *xa::Xid::Make(0x58414d33, "g1", "");
  const xa::Xid large = *xa::Xid::Make(xa::Xid::kMaxFormatId, std::string(64, 'G'), "");
  std::vector<AgentMessage> out;
  auto add = [&](uint64_t id, auto body) {
    AgentMessage m;
    m.request_id = id;
    m.body = std::move(body);
    out.push_back(std::move(m));
  };
  add(1, CanCommitMessage{small, 1, Participants(small, 3, 4), 77, false});
  add(2, CanCommitMessage{large, 99, Participants(large, 100, 200), UINT64_MAX, true});
  add(3, VoteMessage{small, 1, true, ""});
  add(4, VoteMessage{large, 255, false, std::string(kMaxAgentTextSize, 'r')});
  add(5, PreCommitMessage{small, 2});
  add(6, DoCommitMessage{small, 0, true, kCoordinatorSender});
  add(7, AbortMessage{large, 3, false, kCoordinatorSender});
  add(15, DoCommitMessage{large, 255, false, 0});  // from a peer's termination round
  add(16, AbortMessage{small, 0, true, 255});
  add(8, StateQueryMessage{small, 2, 0, false, true, 3, 1});
  add(9, StateQueryMessage{small, 2, kCoordinatorAsker, true, false});
  add(10, StateReplyMessage{small, 2, ParticipantState::kPre, false, true});
  add(11, MoveToPreMessage{small, 1, 0, 3, 1});
  add(12, AckMessage{small, 1, ParticipantState::kCommit});
  add(13, ErrorMessage{xa::Code::kNoTa, "no such transaction"});
  add(14, ErrorMessage{xa::Code::kRbTimeout, ""});
  return out;
}

std::vector<xa::net::HandshakeMessage> HandshakeSeeds() {
  using xa::net::HandshakeKind;
  using xa::net::HandshakeMessage;
  std::vector<HandshakeMessage> out(6);
  out[0].kind = HandshakeKind::kHello;
  out[0].name = "agent-a";
  out[0].nonce = std::string(xa::net::kHandshakeNonceSize, 'n');
  out[1].kind = HandshakeKind::kChallenge;
  out[1].name = std::string(xa::net::kMaxPeerNameSize, 'b');
  out[1].nonce = std::string(xa::net::kHandshakeNonceSize, 's');
  out[1].proof = std::string(xa::net::kHandshakeProofSize, 'p');
  out[2].kind = HandshakeKind::kProof;
  out[2].proof = std::string(xa::net::kHandshakeProofSize, 'q');
  out[3].kind = HandshakeKind::kWelcome;
  out[4].kind = HandshakeKind::kRefused;
  out[4].reason = xa::net::RefusalReason::kBadProof;
  out[5].kind = HandshakeKind::kRefused;
  out[5].reason = xa::net::RefusalReason::kMalformed;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <agent message dir> <handshake dir>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path agent_dir = argv[1], handshake_dir = argv[2];
  std::filesystem::create_directories(agent_dir);
  std::filesystem::create_directories(handshake_dir);
  int n = 0;
  for (const AgentMessage& m : AgentSeeds()) {
    xa::Result<std::string> bytes = EncodeAgentMessage(m);
    if (!bytes.ok()) {
      std::fprintf(stderr, "seed %d: %s\n", n, bytes.status().ToString().c_str());
      return 1;
    }
    WriteSeed(agent_dir, "seed-" + std::to_string(n++), *bytes);
  }
  n = 0;
  for (const xa::net::HandshakeMessage& m : HandshakeSeeds()) {
    WriteSeed(handshake_dir, "seed-" + std::to_string(n++), xa::net::EncodeHandshakeMessage(m));
  }
  return 0;
}
