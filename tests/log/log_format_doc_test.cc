// Keeps recovery-log/log_format.md (the grammar) and recovery-log/log_format.h (the constants and
// box diagrams) in step: the test parses the .md's tables and compares them with the header.

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "recovery-log/log_format.h"

namespace xa::internal {
namespace {

std::string ReadSourceFile(const std::string& relative) {
  std::ifstream in(std::string(XA_SOURCE_DIR) + "/" + relative);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rows "| kName | 123 | ..." of every table.
std::map<std::string, uint64_t> TableConstants(const std::string& md) {
  std::map<std::string, uint64_t> out;
  std::regex row(R"(^\|\s*(k[A-Za-z0-9]+)\s*\|\s*([0-9]+)\s*\|)");
  std::istringstream lines(md);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) out[m[1]] = std::stoull(m[2]);
  }
  return out;
}

const std::map<std::string, uint64_t>& HeaderConstants() {
  static const auto* m = new std::map<std::string, uint64_t>{
      {"kFileHeaderSize", kFileHeaderSize},
      {"kRecordHeaderSize", kRecordHeaderSize},
      {"kFormatVersion", kFormatVersion},
      {"kMaxPayloadSize", kMaxPayloadSize},
      {"kCheckpointPartSize", kCheckpointPartSize},
      {"kMaxParticipants", kMaxParticipants},
      {"kMaxRmNameSize", kMaxRmNameSize},
      {"kMaxReasonSize", kMaxReasonSize},
      {"kRecordTypeIgnorableBit", kRecordTypeIgnorableBit},
      {"kZeroType", kZeroType},
      {"kCommitDecision", static_cast<uint64_t>(RecordType::kCommitDecision)},
      {"kPreCommit", static_cast<uint64_t>(RecordType::kPreCommit)},
      {"kEnd", static_cast<uint64_t>(RecordType::kEnd)},
      {"kHeuristic", static_cast<uint64_t>(RecordType::kHeuristic)},
      {"kHeuristicCleared", static_cast<uint64_t>(RecordType::kHeuristicCleared)},
      {"kCheckpoint", static_cast<uint64_t>(RecordType::kCheckpoint)},
  };
  return *m;
}

TEST(LogFormatDoc, MarkdownExistsBesideTheHeader) {
  EXPECT_FALSE(ReadSourceFile("recovery-log/log_format.md").empty())
      << "recovery-log/log_format.md is missing: the format must be documented as a grammar";
  EXPECT_NE(ReadSourceFile("recovery-log/log_format.h").find("log_format.md"), std::string::npos);
}

TEST(LogFormatDoc, EveryConstantAndRecordTypeMatchesTheHeader) {
  std::map<std::string, uint64_t> doc = TableConstants(ReadSourceFile("recovery-log/log_format.md"));
  for (const auto& [name, value] : HeaderConstants()) {
    auto it = doc.find(name);
    ASSERT_NE(it, doc.end()) << name << " is not documented in log_format.md";
    EXPECT_EQ(it->second, value) << name << ": log_format.md says " << it->second
                                 << ", log_format.h says " << value;
  }
  for (const auto& [name, value] : doc) {
    EXPECT_TRUE(HeaderConstants().count(name))
        << "log_format.md documents " << name << " = " << value << ", which the test (and "
        << "perhaps the header) does not know";
  }
}

TEST(LogFormatDoc, MagicAndHeaderLayoutAreDocumented) {
  std::string md = ReadSourceFile("recovery-log/log_format.md");
  EXPECT_NE(md.find("\"XADLOG\\r\\n\""), std::string::npos);
  EXPECT_EQ(std::string(kMagic, kMagicSize), "XADLOG\r\n");
  std::string h = ReadSourceFile("recovery-log/log_format.h");
  // The box diagrams of the header: the record header fields in their order.
  EXPECT_NE(h.find("| crc32c | length | type | LSN | payload"), std::string::npos);
  EXPECT_NE(h.find("kFileHeaderSize = 44"), std::string::npos);
  EXPECT_NE(h.find("kRecordHeaderSize = 17"), std::string::npos);
}

}  // namespace
}  // namespace xa::internal
