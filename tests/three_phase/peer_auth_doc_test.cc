// Keeps src/net/peer_auth.md (the handshake for people) and src/net/peer_auth.h (the constants,
// kinds, reasons and labels) in step: the test reads each table of the .md and compares it with
// the header.

#include <cstdint>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "src/net/peer_auth.h"
#include "testutil/doc_table.h"

namespace xa::net {
namespace {

std::string PeerAuthDoc() { return test::ReadSourceFile(XA_SOURCE_DIR, "src/net/peer_auth.md"); }

using test::MarkdownSection;

TEST(PeerAuthDocTest, MarkdownIsBesideTheHeaderAndNamedByIt) {
  EXPECT_FALSE(PeerAuthDoc().empty()) << "src/net/peer_auth.md not found under " << XA_SOURCE_DIR;
  EXPECT_NE(test::ReadSourceFile(XA_SOURCE_DIR, "src/net/peer_auth.h").find("peer_auth.md"),
            std::string::npos);
}

TEST(PeerAuthDocTest, ConstantsTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kPeerAuthVersion", kPeerAuthVersion},
      {"kHandshakeNonceSize", kHandshakeNonceSize},
      {"kHandshakeProofSize", kHandshakeProofSize},
      {"kMaxPeerNameSize", kMaxPeerNameSize},
      {"kMaxHandshakeMessageSize", kMaxHandshakeMessageSize},
      {"kMinSharedKeySize", kMinSharedKeySize},
      {"kMaxSharedKeySize", kMaxSharedKeySize},
  };
  EXPECT_EQ(test::TableConstants(MarkdownSection(PeerAuthDoc(), "Constants")), expected);
}

TEST(PeerAuthDocTest, KindTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kHello", static_cast<uint64_t>(HandshakeKind::kHello)},
      {"kChallenge", static_cast<uint64_t>(HandshakeKind::kChallenge)},
      {"kProof", static_cast<uint64_t>(HandshakeKind::kProof)},
      {"kWelcome", static_cast<uint64_t>(HandshakeKind::kWelcome)},
      {"kRefused", static_cast<uint64_t>(HandshakeKind::kRefused)},
  };
  const std::string section = MarkdownSection(PeerAuthDoc(), "Kinds");
  EXPECT_EQ(test::TableConstants(section), expected);
  for (const auto& [name, value] : expected) {
    std::string kind_name(HandshakeKindName(static_cast<HandshakeKind>(value)));
    EXPECT_NE(section.find("| " + std::to_string(value) + " | " + kind_name + " |"),
              std::string::npos)
        << name << " is not named " << kind_name;
  }
}

TEST(PeerAuthDocTest, RefusalReasonTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kBadProof", static_cast<uint64_t>(RefusalReason::kBadProof)},
      {"kMalformed", static_cast<uint64_t>(RefusalReason::kMalformed)},
  };
  EXPECT_EQ(test::TableConstants(MarkdownSection(PeerAuthDoc(), "Refusal reasons")), expected);
}

TEST(PeerAuthDocTest, LabelsAreTheHeadersTextAndOfOneLength) {
  const std::string md = PeerAuthDoc();
  EXPECT_NE(md.find("| kServerProofLabel | `" + std::string(kServerProofLabel) + "` |"),
            std::string::npos);
  EXPECT_NE(md.find("| kClientProofLabel | `" + std::string(kClientProofLabel) + "` |"),
            std::string::npos);
  EXPECT_EQ(kServerProofLabel.size(), kClientProofLabel.size());
  EXPECT_NE(kServerProofLabel, kClientProofLabel);
  EXPECT_NE(md.find("(" + std::to_string(kServerProofLabel.size()) + " bytes each"),
            std::string::npos);
}

}  // namespace
}  // namespace xa::net
