// Keeps recovery-log/log_format.md (the grammar) and recovery-log/log_format.h (the constants and
// box diagrams) in step: the test parses the .md's tables and compares them with the header.

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
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

std::string Trim(std::string s) {
  size_t b = s.find_first_not_of(' ');
  size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Rows "| kName | 123 | ..." of every table. (Parsed by hand: std::regex trips GCC 12's
// -Wmaybe-uninitialized under ASan.)
std::map<std::string, uint64_t> TableConstants(const std::string& md) {
  std::map<std::string, uint64_t> out;
  std::istringstream lines(md);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') continue;
    size_t second = line.find('|', 1);
    if (second == std::string::npos) continue;
    size_t third = line.find('|', second + 1);
    if (third == std::string::npos) continue;
    std::string name = Trim(line.substr(1, second - 1));
    std::string value = Trim(line.substr(second + 1, third - second - 1));
    if (name.size() < 2 || name[0] != 'k' || value.empty() ||
        value.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    out[name] = std::stoull(value);
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
