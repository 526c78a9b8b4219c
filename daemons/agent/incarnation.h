// The agent's incarnation: a number that names one run of xa-agent, different in every run, so
// that a termination round's identity (participant number, incarnation, round counter: RoundId
// of src/three_phase/participant.h) is never reused after a restart. A MoveToPre that a crashed
// earlier run sent can then never be taken for one of the current run's rounds.
//
// The number lives in a small file beside the agent's log (kIncarnationFileName in the log
// directory), in the format of incarnation_format.md: magic, the number, a CRC32C. Every start
// reads it, adds one, and replaces it durably before the agent uses the new number:
//   write "INCARNATION.tmp" (created new, 0600), fsync it, rename it over "INCARNATION", fsync
//   the directory,
// all through the Env (include/xa/env.h), so a test can inject the faults of a crash.
//
// A damaged file is an error that names the file and what to do, never a silent restart from 0:
// an incarnation used twice could let a late MoveToPre of the earlier run promote a participant
// that a later round counted as WAIT (docs/three-phase-commit.md, rule b).
//
// Thread safety: one caller at a time per directory (the agent holds its log's lock, which
// covers the directory, before it calls this).

#ifndef XA_DAEMONS_AGENT_INCARNATION_H_
#define XA_DAEMONS_AGENT_INCARNATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "xa/env.h"
#include "xa/status.h"

namespace xa::agent {

inline constexpr std::string_view kIncarnationFileName = "INCARNATION";
inline constexpr std::string_view kIncarnationTempFileName = "INCARNATION.tmp";
inline constexpr uint32_t kIncarnationMagic = 0x31494158;  // "XAI1" little-endian
inline constexpr size_t kIncarnationFileSize = 16;

// The file's 16 bytes for `incarnation`.
std::string EncodeIncarnation(uint64_t incarnation);
// The number in a file's bytes; XA_CORRUPTION saying what is wrong (size, magic, checksum).
Result<uint64_t> DecodeIncarnation(std::string_view bytes);

// Reads `dir`/INCARNATION (missing: this is the first start, the previous number is 0), adds
// one, replaces the file durably and returns the new number (>= 1). Errors:
//   Code::kCorruption  the file is damaged (wrong size, magic or checksum): the message names the
//                      file and says what to do (restore it from a backup, or, if the agent's log
//                      holds no undecided participant, write a number larger than any used);
//   Code::kIoError     reading, writing, syncing or renaming failed (the message says which);
//   Code::kInval       the number would overflow.
// A temp file left by a crash during an earlier call is deleted first (the rename never
// happened, so the file still holds the last number handed out).
Result<uint64_t> NextIncarnation(const std::string& dir, Env* env = nullptr);

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_INCARNATION_H_
