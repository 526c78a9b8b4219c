// Writes seed inputs for the log fuzzers from real logs:
//   make_seeds <record-seed-dir> <replay-seed-dir>
// A log with every record kind (the 3PC participant's and the TCC coordinator's too), rotations
// and checkpoints carrying open transactions, participants and TCC transactions is written
// through DecisionLog; its segments (alone,
// truncated, bit-flipped, and the last two joined by the replay fuzzer's separator) become
// replay seeds, and its record payloads become record seeds.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "recovery-log/log_reader.h"
#include "recovery-log/record_codec.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace {

void WriteSeed(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out << bytes;
}

xa::LogRecord Decision(uint64_t i) {
  std::string g = "seed-" + std::to_string(i);
  xa::LogRecord r;
  r.type = xa::RecordType::kCommitDecision;
  r.xid = xa::Xid::Make(xa::Xid::kFormatId, g, "").value();
  r.participants = {{"mariadb", xa::Xid::Make(xa::Xid::kFormatId, g, "b1").value()},
                    {"postgres", xa::Xid::Make(xa::Xid::kFormatId, g, "b2").value()}};
  return r;
}

// The 3PC participant records of an agent: branch `number` of transaction i, of three.
xa::LogRecord Participant(xa::RecordType type, uint64_t i, uint16_t number,
                          xa::Outcome outcome = xa::Outcome::kUnknown) {
  xa::Xid global = Decision(i).xid;
  xa::LogRecord r;
  r.type = type;
  r.xid = global.WithBranch(number);
  r.outcome = outcome;
  if (type == xa::RecordType::kParticipantWait) {
    r.participants = {{"mariadb", global.WithBranch(0)},
                      {"postgres", global.WithBranch(1)},
                      {"mariadb-2", global.WithBranch(2)}};
    r.participant_number = number;
    r.fence_session_id = number == 1 ? 0 : 1000 + i;  // PostgreSQL has no fence
    r.read_only = i % 5 == 0;
  }
  return r;
}

// The TCC coordinator's record of transaction i: one to three participants, with payloads of
// text, of zeros (the first branch's bqual ends in zeros too) and none.
xa::LogRecord Tcc(xa::RecordType type, uint64_t i) {
  xa::LogRecord r;
  r.type = type;
  r.xid = xa::Xid::Make(xa::Xid::kTccFormatId, "tcc-seed-" + std::to_string(i), "").value();
  r.protocol = xa::Protocol::kTcc;
  const std::string payloads[] = {R"({"account":"a-17","amount":250})", std::string(8, '\0'), ""};
  for (uint16_t k = 0; k <= i % 3; ++k) {
    r.participants.push_back({k % 2 == 0 ? "funds" : "points", r.xid.WithBranch(k)});
    r.payloads.push_back(payloads[(i + k) % 3]);
  }
  return r;
}

// A selector byte for the record fuzzers: the index of `type` in kLogicalRecordTypes (a
// checkpoint's payload gets index 0, and the fuzzers read it as a checkpoint too).
char Selector(uint8_t type) {
  const auto& types = xa::internal::kLogicalRecordTypes;
  for (size_t i = 0; i < std::size(types); ++i) {
    if (static_cast<uint8_t>(types[i]) == type) return static_cast<char>(i);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <record-seed-dir> <replay-seed-dir>\n", argv[0]);
    return 2;
  }
  std::string record_dir = argv[1], replay_dir = argv[2];
  std::filesystem::create_directories(record_dir);
  std::filesystem::create_directories(replay_dir);
  std::string log_dir = replay_dir + "/.log-under-construction";
  std::filesystem::remove_all(log_dir);

  xa::LogOptions o;
  o.dir = log_dir;
  o.node_id = 4;
  o.segment_size_bytes = 1024;
  {
    auto log = xa::DecisionLog::Open(o);
    if (!log.ok()) {
      std::fprintf(stderr, "%s\n", log.status().ToString().c_str());
      return 1;
    }
    for (uint64_t i = 0; i < 12; ++i) {
      xa::LogRecord d = Decision(i);
      if (i % 4 == 1) d.type = xa::RecordType::kPreCommit, d.protocol = xa::Protocol::kThreePhase;
      (*log)->Append(d).status().IgnoreError();
      if (i % 3 == 0) {
        xa::LogRecord h = d;
        h.type = xa::RecordType::kHeuristic;
        h.outcome = xa::Outcome::kHeuristicHazard;
        h.reason = "operator: branch b2 rolled back by hand";
        (*log)->Append(h).status().IgnoreError();
        xa::LogRecord c;
        c.type = xa::RecordType::kHeuristicCleared;
        c.xid = d.xid;
        c.reason = "reconciled";
        if (i % 2 == 0) (*log)->Append(c).status().IgnoreError();
      }
      if (i % 2 == 0) {
        xa::LogRecord e;
        e.type = xa::RecordType::kEnd;
        e.xid = d.xid;
        (*log)->Append(e).status().IgnoreError();
      }
    }
    // An agent's participants, left in every state across rotations (checkpoints carry them):
    // WAIT, PRE, decided either way (also an orphan, decided without a Wait; a commit with and
    // without the coordinator's word, and one upgraded), done (lazily and durably), and a
    // heuristic about one branch.
    using T = xa::RecordType;
    for (uint64_t i = 100; i < 112; ++i) {
      const uint16_t number = static_cast<uint16_t>(i % 3);
      const uint64_t path = i % 6;
      if (path != 5) {
        (*log)->Append(Participant(T::kParticipantWait, i, number)).status().IgnoreError();
      }
      if (path == 1 || path == 2) {
        (*log)->Append(Participant(T::kParticipantPreCommit, i, number)).status().IgnoreError();
      }
      if (path == 2 || path == 4) {
        // Path 4 hears COMMIT from the coordinator (so it may be done); path 2 decides by
        // termination, and one of them is upgraded by the coordinator's DoCommit later.
        xa::LogRecord commit =
            Participant(T::kParticipantDecision, i, number, xa::Outcome::kCommitted);
        commit.coordinator_knows_outcome = path == 4;
        (*log)->Append(commit).status().IgnoreError();
        if (i == 110) {
          commit.coordinator_knows_outcome = true;
          (*log)->Append(commit).status().IgnoreError();
        }
      }
      if (path == 3 || path == 5) {
        (*log)
            ->Append(Participant(T::kParticipantDecision, i, number, xa::Outcome::kRolledBack))
            .status()
            .IgnoreError();
      }
      if (path == 4) (*log)->AppendLazy(Participant(T::kParticipantDone, i, number)).IgnoreError();
      if (path == 3) {
        (*log)->Append(Participant(T::kParticipantDone, i, number)).status().IgnoreError();
      }
      if (i == 104) {
        xa::LogRecord h = Decision(i);
        h.type = T::kHeuristic;
        h.xid = Participant(T::kParticipantWait, i, number).xid;
        h.outcome = xa::Outcome::kHeuristicMixed;
        h.reason = "agent: peer answered rolled back after our commit";
        (*log)->Append(h).status().IgnoreError();
      }
    }
    // TCC transactions left trying (recovery cancels them) or confirmed across rotations
    // (checkpoints carry each as its newest record), and others ended after their Try (cancelled)
    // or their Confirm, durably and lazily.
    for (uint64_t i = 200; i < 212; ++i) {
      const uint64_t path = i % 4;
      (*log)->Append(Tcc(T::kTccTry, i)).status().IgnoreError();
      if (path == 1 || path == 2) (*log)->Append(Tcc(T::kTccConfirm, i)).status().IgnoreError();
      xa::LogRecord end;
      end.type = T::kEnd;
      end.xid = Tcc(T::kTccTry, i).xid;
      if (path == 2) (*log)->AppendLazy(end).IgnoreError();
      if (path == 3) (*log)->Append(end).status().IgnoreError();
    }
  }
  auto listing = xa::internal::ListLogDir(xa::Env::Default(), log_dir);
  if (!listing.ok()) return 1;
  std::vector<std::string> segments;
  for (uint64_t n : listing->segments) {
    std::string contents;
    if (!xa::Env::Default()
             ->ReadFile(xa::internal::JoinPath(log_dir, xa::internal::SegmentFileName(n)),
                        &contents, xa::internal::kMaxSegmentFileSize)
             .ok()) {
      return 1;
    }
    segments.push_back(contents);
  }
  int seeds = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const std::string& s = segments[i];
    WriteSeed(replay_dir, "segment-" + std::to_string(i), s);
    WriteSeed(replay_dir, "truncated-" + std::to_string(i), s.substr(0, s.size() * 2 / 3));
    std::string flipped = s;
    flipped[flipped.size() / 2] ^= 0x04;
    WriteSeed(replay_dir, "flipped-" + std::to_string(i), flipped);
    seeds += 3;
    if (i + 1 < segments.size()) {
      WriteSeed(replay_dir, "pair-" + std::to_string(i),
                s + "\n--segment--\n" + segments[i + 1]);
      ++seeds;
    }
    // Record seeds: the selector byte (type - 1) followed by each record's payload.
    xa::internal::SegmentReader reader(s);
    xa::internal::SegmentHeader h;
    if (!reader.ReadHeader(&h).ok()) continue;
    xa::internal::PhysicalRecord pr;
    int k = 0;
    while (reader.Next(&pr) == xa::internal::SegmentReader::Outcome::kRecord) {
      std::string seed(1, Selector(pr.type));
      seed += pr.payload;
      WriteSeed(record_dir, "record-" + std::to_string(i) + "-" + std::to_string(k++), seed);
      ++seeds;
    }
  }
  std::filesystem::remove_all(log_dir);
  std::printf("wrote %d seeds from %zu segments\n", seeds, segments.size());
  return 0;
}
