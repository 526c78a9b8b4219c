// Keeps src/three_phase/agent_messages.md (the format for people) and agent_messages.h and
// participant_state.h (the constants, type and state numbers) in step: the test reads each table
// of the .md and compares it with the headers.

#include <cstdint>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "src/three_phase/agent_messages.h"
#include "src/three_phase/participant_state.h"
#include "testutil/doc_table.h"

namespace xa::three_phase {
namespace {

std::string AgentMessagesDoc() {
  return test::ReadSourceFile(XA_SOURCE_DIR, "src/three_phase/agent_messages.md");
}

// Each table is read from its own section (test::MarkdownSection): names may repeat across tables.
using test::MarkdownSection;

uint64_t Number(AgentMessageType type) { return static_cast<uint64_t>(type); }
uint64_t Number(ParticipantState state) { return static_cast<uint64_t>(state); }

TEST(AgentMessagesDocTest, MarkdownIsBesideTheHeaderAndNamedByIt) {
  EXPECT_FALSE(AgentMessagesDoc().empty())
      << "src/three_phase/agent_messages.md not found under " << XA_SOURCE_DIR;
  EXPECT_NE(test::ReadSourceFile(XA_SOURCE_DIR, "src/three_phase/agent_messages.h")
                .find("agent_messages.md"),
            std::string::npos);
}

TEST(AgentMessagesDocTest, ConstantsTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kAgentMessageVersion", kAgentMessageVersion},
      {"kAgentMessageVersionWithoutSender", kAgentMessageVersionWithoutSender},
      {"kAgentMessageHeaderSize", kAgentMessageHeaderSize},
      {"kMaxAgentParticipants", kMaxAgentParticipants},
      {"kMaxAgentRmNameSize", kMaxAgentRmNameSize},
      {"kMaxAgentTextSize", kMaxAgentTextSize},
      {"kMaxAgentMessageSize", kMaxAgentMessageSize},
      {"kCoordinatorAsker", kCoordinatorAsker},
      {"kCoordinatorSender", kCoordinatorSender},
  };
  EXPECT_EQ(test::TableConstants(MarkdownSection(AgentMessagesDoc(), "Constants")), expected);
}

TEST(AgentMessagesDocTest, MessageTypeTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kCanCommit", Number(AgentMessageType::kCanCommit)},
      {"kVote", Number(AgentMessageType::kVote)},
      {"kPreCommit", Number(AgentMessageType::kPreCommit)},
      {"kDoCommit", Number(AgentMessageType::kDoCommit)},
      {"kAbort", Number(AgentMessageType::kAbort)},
      {"kStateQuery", Number(AgentMessageType::kStateQuery)},
      {"kStateReply", Number(AgentMessageType::kStateReply)},
      {"kMoveToPre", Number(AgentMessageType::kMoveToPre)},
      {"kAck", Number(AgentMessageType::kAck)},
      {"kError", Number(AgentMessageType::kError)},
      {"kFirstUnassignedAgentMessageType", kFirstUnassignedAgentMessageType},
  };
  const std::string section = MarkdownSection(AgentMessagesDoc(), "Message types");
  EXPECT_EQ(test::TableConstants(section), expected);
  // The name column is the one AgentMessageTypeName gives (and logs show).
  for (uint8_t t = 1; t < kFirstUnassignedAgentMessageType; ++t) {
    auto type = static_cast<AgentMessageType>(t);
    EXPECT_NE(section.find(" | " + std::to_string(t) + " | " +
                           std::string(AgentMessageTypeName(type)) + " |"),
              std::string::npos)
        << "no row for type " << int{t} << " named " << AgentMessageTypeName(type);
  }
}

TEST(AgentMessagesDocTest, ParticipantStateTableMatchesTheHeader) {
  const std::map<std::string, uint64_t> expected = {
      {"kInit", Number(ParticipantState::kInit)},
      {"kWait", Number(ParticipantState::kWait)},
      {"kPre", Number(ParticipantState::kPre)},
      {"kCommit", Number(ParticipantState::kCommit)},
      {"kAbort", Number(ParticipantState::kAbort)},
  };
  const std::string section = MarkdownSection(AgentMessagesDoc(), "Participant states");
  EXPECT_EQ(test::TableConstants(section), expected);
  for (uint8_t s = 1; IsParticipantState(s); ++s) {
    auto state = static_cast<ParticipantState>(s);
    EXPECT_NE(section.find(" | " + std::to_string(s) + " | " +
                           std::string(ParticipantStateName(state)) + " |"),
              std::string::npos)
        << "no row for state " << int{s} << " named " << ParticipantStateName(state);
  }
}

}  // namespace
}  // namespace xa::three_phase
