// Keeps recovery-log/log_format.md (the grammar) and recovery-log/log_format.h (the constants and
// box diagrams) in step: the test parses the .md's tables and compares them with the header.

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "recovery-log/log_format.h"
#include "recovery-log/record_codec.h"

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

bool IsNumber(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

// Rows "| kName | 123 | ..." of every table, as the trimmed cells after the name, by name.
// (Parsed by hand: std::regex trips GCC 12's -Wmaybe-uninitialized under ASan.)
std::map<std::string, std::vector<std::string>> TableRows(const std::string& md) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream lines(md);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') continue;
    std::vector<std::string> cells;
    for (size_t at = 1, bar; (bar = line.find('|', at)) != std::string::npos; at = bar + 1) {
      cells.push_back(Trim(line.substr(at, bar - at)));
    }
    if (cells.size() < 2 || cells[0].size() < 2 || cells[0][0] != 'k' || !IsNumber(cells[1])) {
      continue;
    }
    out[cells[0]].assign(cells.begin() + 1, cells.end());
  }
  return out;
}

bool IsBandName(const std::string& name) {
  for (const RecordTypeBand& band : kRecordTypeBands) {
    if (band.name == name) return true;
  }
  return false;
}

// Rows "| kName | 123 | ..." that name a constant (not a band), with their value.
std::map<std::string, uint64_t> TableConstants(const std::string& md) {
  std::map<std::string, uint64_t> out;
  for (const auto& [name, cells] : TableRows(md)) {
    if (!IsBandName(name)) out[name] = std::stoull(cells[0]);
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
      {"kMaxSegmentFileSize", kMaxSegmentFileSize},
      {"kMaxSegmentSizeBytes", kMaxSegmentSizeBytes},
      {"kZeroType", kZeroType},
      {"kCommitDecision", static_cast<uint64_t>(RecordType::kCommitDecision)},
      {"kPreCommit", static_cast<uint64_t>(RecordType::kPreCommit)},
      {"kEnd", static_cast<uint64_t>(RecordType::kEnd)},
      {"kHeuristic", static_cast<uint64_t>(RecordType::kHeuristic)},
      {"kHeuristicCleared", static_cast<uint64_t>(RecordType::kHeuristicCleared)},
      {"kCheckpoint", static_cast<uint64_t>(RecordType::kCheckpoint)},
      {"kFirstUnassignedRecordType", kFirstUnassignedRecordType},
      {"kParticipantWait", static_cast<uint64_t>(RecordType::kParticipantWait)},
      {"kParticipantPreCommit", static_cast<uint64_t>(RecordType::kParticipantPreCommit)},
      {"kParticipantDecision", static_cast<uint64_t>(RecordType::kParticipantDecision)},
      {"kParticipantDone", static_cast<uint64_t>(RecordType::kParticipantDone)},
      {"kParticipantEndMark", kParticipantEndMark},
      {"kDecisionCoordinatorKnows", kDecisionCoordinatorKnows},
      {"kDecisionBranchFinished", kDecisionBranchFinished},
      {"kTccTry", static_cast<uint64_t>(RecordType::kTccTry)},
      {"kTccConfirm", static_cast<uint64_t>(RecordType::kTccConfirm)},
      {"kTccEndMark", kTccEndMark},
      {"kMaxTccPayloadSize", kMaxTccPayloadSize},
      {"kCheckpointEntryOverhead", kCheckpointEntryOverhead},
      {"kMaxLogicalPayloadSize", kMaxLogicalPayloadSize},
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

TEST(LogFormatDoc, EveryRecordTypeBandMatchesTheHeader) {
  std::map<std::string, std::vector<std::string>> rows =
      TableRows(ReadSourceFile("recovery-log/log_format.md"));
  for (const RecordTypeBand& band : kRecordTypeBands) {
    std::string name(band.name);
    auto it = rows.find(name);
    ASSERT_NE(it, rows.end()) << "band " << name << " is not documented in log_format.md";
    const std::vector<std::string>& cells = it->second;
    ASSERT_GE(cells.size(), 3u) << name << ": expected | band | first | last | owner |";
    EXPECT_EQ(cells[0], std::to_string(band.first)) << name << ": first type";
    EXPECT_EQ(cells[1], std::to_string(band.last)) << name << ": last type";
    EXPECT_FALSE(cells[2].empty()) << name << ": a band without an owner";
  }
  // The unassigned numbers: from kFirstUnassignedRecordType to the last one below the
  // ignorable bit.
  auto unassigned = rows.find("kFirstUnassignedRecordType");
  ASSERT_NE(unassigned, rows.end());
  ASSERT_GE(unassigned->second.size(), 2u);
  EXPECT_EQ(unassigned->second[1], std::to_string(kRecordTypeIgnorableBit - 1));
  for (const auto& [name, cells] : rows) {
    if (name.ends_with("RecordTypes")) {
      EXPECT_TRUE(IsBandName(name)) << "log_format.md documents the band " << name
                                    << ", which log_format.h does not declare";
    }
  }
}

// Every number from 1 to the unassigned ones is in exactly one band, with or without the
// ignorable bit; kZeroType and the unassigned numbers are in none (the static_asserts of
// log_format.h, checked once more at run time so that a failure names the number).
TEST(LogFormatDoc, EveryRecordTypeNumberIsInAtMostOneBand) {
  for (unsigned t = 0; t < kRecordTypeIgnorableBit; ++t) {
    int bands = 0;
    for (const RecordTypeBand& band : kRecordTypeBands) {
      if (InRecordTypeBand(static_cast<uint8_t>(t), band)) ++bands;
      // The ignorable variant of a type is in the same band.
      EXPECT_EQ(InRecordTypeBand(static_cast<uint8_t>(t), band),
                InRecordTypeBand(static_cast<uint8_t>(t | kRecordTypeIgnorableBit), band));
    }
    if (t == kZeroType || t >= kFirstUnassignedRecordType) {
      EXPECT_EQ(bands, 0) << "type " << t;
    } else {
      EXPECT_EQ(bands, 1) << "type " << t;
    }
  }
}

// A grammar line "<rule> := ..." (the rule names are padded to align their ":=").
bool HasGrammarRule(const std::string& md, const std::string& rule) {
  std::istringstream lines(md);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(rule, 0) != 0) continue;
    size_t at = line.find_first_not_of(' ', rule.size());
    if (at != rule.size() && at != std::string::npos && line.compare(at, 2, ":=") == 0) {
      return true;
    }
  }
  return false;
}

// The participant records: each in the three-phase band, each with a payload rule in the
// grammar and a line in the header's payload list, and a record-type table row that says so.
TEST(LogFormatDoc, EveryParticipantRecordIsInTheThreePhaseBandWithItsPayloadDocumented) {
  const std::string md = ReadSourceFile("recovery-log/log_format.md");
  const std::string h = ReadSourceFile("recovery-log/log_format.h");
  const std::map<std::string, std::vector<std::string>> rows = TableRows(md);
  struct Documented {
    RecordType type;
    std::string name, grammar_rule;
  };
  for (const Documented& d :
       {Documented{RecordType::kParticipantWait, "kParticipantWait", "participant_wait "},
        Documented{RecordType::kParticipantPreCommit, "kParticipantPreCommit",
                   "participant_pre_commit"},
        Documented{RecordType::kParticipantDecision, "kParticipantDecision",
                   "participant_decision"},
        Documented{RecordType::kParticipantDone, "kParticipantDone", "participant_done "}}) {
    EXPECT_TRUE(InRecordTypeBand(d.type, kThreePhaseRecordTypes)) << d.name;
    EXPECT_TRUE(IsKnownRecordType(static_cast<uint8_t>(d.type))) << d.name;
    EXPECT_EQ(static_cast<uint8_t>(d.type) & kRecordTypeIgnorableBit, 0) << d.name;
    auto row = rows.find(d.name);
    ASSERT_NE(row, rows.end()) << d.name << " has no row in log_format.md";
    ASSERT_GE(row->second.size(), 2u);
    EXPECT_FALSE(row->second[1].empty()) << d.name << ": a type without a meaning";
    EXPECT_TRUE(HasGrammarRule(md, d.grammar_rule))
        << "log_format.md has no payload rule `" << d.grammar_rule << ":=`";
    EXPECT_NE(h.find("//   " + d.name + ":"), std::string::npos)
        << "log_format.h does not lay out the payload of " << d.name;
  }
  // The vote byte of a Wait is xa::Vote's commit or read-only, as the grammar says.
  EXPECT_NE(md.find("vote (1 = commit, 2 = read-only)"), std::string::npos);
  EXPECT_EQ(static_cast<int>(Vote::kCommit), 1);
  EXPECT_EQ(static_cast<int>(Vote::kReadOnly), 2);
  // A decision: its flags (whether the coordinator holds it, whether the branch is finished),
  // then the outcome (never zero) last; the header lays it out the same way.
  EXPECT_NE(md.find("uint8 flags (bit 0 = coordinator_knows_outcome, bit 1 = branch_finished;"),
            std::string::npos);
  EXPECT_NE(h.find("u8 flags\n//                                (kDecisionCoordinatorKnows | "
                   "kDecisionBranchFinished), u8 outcome"),
            std::string::npos);
  std::string payload;
  LogRecord decision;
  decision.type = RecordType::kParticipantDecision;
  decision.xid = Xid::Make(Xid::kFormatId, "g", std::string("\0", 1)).value();
  decision.outcome = Outcome::kCommitted;
  decision.coordinator_knows_outcome = true;
  ASSERT_TRUE(EncodePayload(decision, &payload).ok());
  ASSERT_GE(payload.size(), 2u);
  EXPECT_EQ(payload[payload.size() - 2], static_cast<char>(kDecisionCoordinatorKnows));
  EXPECT_EQ(payload.back(), static_cast<char>(Outcome::kCommitted));
  decision.branch_finished = true;
  payload.clear();
  ASSERT_TRUE(EncodePayload(decision, &payload).ok());
  EXPECT_EQ(payload[payload.size() - 2],
            static_cast<char>(kDecisionCoordinatorKnows | kDecisionBranchFinished));
}

// The TCC records: each in the TCC band, each with a payload rule in the grammar (over the one
// tcc_participant rule) and a line in the header's payload list, and a record-type table row;
// the band's row names them as its owner's.
TEST(LogFormatDoc, EveryTccRecordIsInTheTccBandWithItsPayloadDocumented) {
  const std::string md = ReadSourceFile("recovery-log/log_format.md");
  const std::string h = ReadSourceFile("recovery-log/log_format.h");
  const std::map<std::string, std::vector<std::string>> rows = TableRows(md);
  struct Documented {
    RecordType type;
    std::string name, grammar_rule;
  };
  for (const Documented& d : {Documented{RecordType::kTccTry, "kTccTry", "tcc_try"},
                              Documented{RecordType::kTccConfirm, "kTccConfirm", "tcc_confirm"}}) {
    EXPECT_TRUE(InRecordTypeBand(d.type, kTccRecordTypes)) << d.name;
    EXPECT_TRUE(IsKnownRecordType(static_cast<uint8_t>(d.type))) << d.name;
    EXPECT_TRUE(IsTccRecordType(d.type)) << d.name;
    EXPECT_TRUE(IsCheckpointEntryType(d.type)) << d.name << ": an open transaction's record";
    EXPECT_EQ(static_cast<uint8_t>(d.type) & kRecordTypeIgnorableBit, 0) << d.name;
    auto row = rows.find(d.name);
    ASSERT_NE(row, rows.end()) << d.name << " has no row in log_format.md";
    ASSERT_GE(row->second.size(), 2u);
    EXPECT_FALSE(row->second[1].empty()) << d.name << ": a type without a meaning";
    EXPECT_TRUE(HasGrammarRule(md, d.grammar_rule))
        << "log_format.md has no payload rule `" << d.grammar_rule << ":=`";
    EXPECT_NE(h.find(d.name), std::string::npos) << d.name;
  }
  EXPECT_TRUE(HasGrammarRule(md, "tcc_participant"));
  EXPECT_NE(h.find("//   kTccTry, kTccConfirm:"), std::string::npos)
      << "log_format.h does not lay out the payload of the TCC records";
  // Every type of the TCC band that this version knows is one of the two, and the band's row
  // says which types it holds.
  for (unsigned t = kTccRecordTypes.first; t <= kTccRecordTypes.last; ++t) {
    EXPECT_EQ(IsKnownRecordType(static_cast<uint8_t>(t)), t == 48 || t == 49) << t;
  }
  auto band = rows.find("kTccRecordTypes");
  ASSERT_NE(band, rows.end());
  ASSERT_GE(band->second.size(), 3u);
  EXPECT_NE(band->second[2].find("types 48 and 49"), std::string::npos) << band->second[2];
  // The grammar's protocol number and end mark are the header's.
  EXPECT_NE(md.find("protocol = 5 (TCC)"), std::string::npos);
  EXPECT_EQ(static_cast<int>(Protocol::kTcc), 5);
  EXPECT_NE(md.find("end_mark = kTccEndMark"), std::string::npos);
  // A TCC record ends in its end mark, whatever its payloads end in.
  LogRecord r;
  r.type = RecordType::kTccTry;
  r.xid = Xid::Make(Xid::kTccFormatId, "g", "").value();
  r.protocol = Protocol::kTcc;
  r.participants = {Participant{"funds", r.xid.WithBranch(0)}};
  r.payloads = {std::string(4, '\0')};
  std::string payload;
  ASSERT_TRUE(EncodePayload(r, &payload).ok());
  EXPECT_EQ(static_cast<uint8_t>(payload.back()), kTccEndMark);
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
