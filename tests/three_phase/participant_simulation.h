// A deterministic simulation of 3PC: N participant machines (participant.h) and a coordinator
// written here after the design's coordinator steps, over an in-memory network, driven by a
// seeded random scheduler that delivers messages in any order, completes durable records, crashes
// and restarts processes, and fires timeouts. After every step it checks agreement and validity,
// and at every done record that a COMMIT is forgotten only while the coordinator's log holds the
// commit decision; at the end of every run, progress. Each broken variant of the machine must be
// caught.
//
// The model of time (the design's assumption "every timeout is longer than any message delay
// plus the time to handle a message and sync a record"): a timer fires only when what its owner
// waits for cannot arrive any more. Two readings, both run:
// - kWhatIsAwaited: no record is in flight at a live participant, and nothing its owner waits
//   for is in flight: an idle participant waits for the coordinator (no coordinator message to
//   it), a participant in a termination round or holding a decision waits for its peers (no
//   message to or from it), the coordinator waits for replies (no message to or from it).
//   Timers of different participants fire together, as real ones armed at the same time do.
// - kQuiescent: nothing in flight anywhere (rounds never overlap; a narrower set of runs).
// In both, a live coordinator in mid-phase holds the participants' timers back, except in the
// quarter of the runs where it may stall (alive but stuck past their timeout, the case the asked
// flag and the fence are for); its own log writes never hold timers back.
//
// Crashes: a crashed process loses its memory; a record in flight lands or not (half and half);
// the messages it had sent and that are still in flight are lost (a host crash) or each lost or
// delivered later (a process crash: the kernel may still send them), by run; messages to it are
// lost (its connections close). In some process-crash runs a message of the crashed process is
// late: it is held, holding no timer back, until a participant other than its receiver records
// a decision (or nothing else can happen), so other participants' rounds come first, as when a dead
// sender's bytes sit in a slow network path longer than the termination timeout (the case a
// MoveToPre's round identity is for). Crashes come at random steps, right after a record becomes
// durable (the sends that depend on it in flight), right after a message is handled (notably a
// backup's question answered), and, planned, for the coordinator after its m-th delivered message
// (often in mid-PreCommit). A participant restarts from what it recorded, the agent's log (nothing
// recorded, or a done record that the crash kept: a fresh INIT machine, as the agent knows nothing
// of the transaction, and the outcome it kept in memory after done is lost). The coordinator
// restarts from its decision log: a commit record → DoCommit to everyone; a pre-commit record →
// it asks the participants until it can adopt a decision (it never decides then); nothing →
// presumed abort.
//
// Shared by participant_simulation_test.cc (the rules hold) and
// participant_simulation_variants_test.cc (each broken rule is caught), which are two programs
// because the second is a check of the checker: tens of thousands of runs, labelled `model`.

#ifndef XA_TESTS_THREE_PHASE_PARTICIPANT_SIMULATION_H_
#define XA_TESTS_THREE_PHASE_PARTICIPANT_SIMULATION_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "src/three_phase/participant.h"

namespace xa::three_phase::simulation {

using State = ParticipantState;

// splitmix64: the same stream on every platform and library (std distributions are not).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t bound) { return bound == 0 ? 0 : Next() % bound; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t state_;
};

inline std::string Name(State state) { return std::string(ParticipantStateName(state)); }

// Messages the coordinator sends; a participant's messages are OutMessage; a notice that a
// message could not be delivered is Unreachable (the agent's failed connection).
using CoordinatorMessage = std::variant<CanCommit, PreCommit, DoCommit, Abort, StateQuery>;
struct Unreachable {
  uint32_t peer = 0;
};
using Payload = std::variant<OutMessage, CoordinatorMessage, Unreachable>;

inline std::string PayloadText(const Payload& payload) {
  if (const auto* out = std::get_if<OutMessage>(&payload)) return ToString(*out);
  if (const auto* unreachable = std::get_if<Unreachable>(&payload)) {
    return "notice: P" + std::to_string(unreachable->peer) + " unreachable";
  }
  const auto& message = std::get<CoordinatorMessage>(payload);
  switch (message.index()) {
    case 0:
      return "CanCommit";
    case 1:
      return "PreCommit";
    case 2:
      return "DoCommit(branch done: " +
             std::string(std::get<DoCommit>(message).branch_done ? "yes" : "no") + ")";
    case 3:
      return "Abort";
    default:
      return "StateQuery";
  }
}

// When a timer may fire (see the model of time at the top).
enum class Timing {
  kQuiescent,      // nothing in flight anywhere, no record in flight
  kWhatIsAwaited,  // what the timer's owner waits for is not in flight, no record in flight
};

struct SimulationOptions {
  uint32_t participants = 3;
  Timing timing = Timing::kQuiescent;
  BrokenRuleForTesting broken = BrokenRuleForTesting::kNone;
  int max_steps = 4000;
};

struct RunResult {
  std::string violation;  // empty: every invariant held
  std::vector<std::string> trace;
  int steps = 0;
};

class Simulation {
 public:
  Simulation(uint64_t seed, const SimulationOptions& options)
      : random_(seed), options_(options), n_(options.participants) {
    for (uint32_t i = 0; i < n_; ++i) {
      participants_.push_back(ParticipantProc{});
      participants_.back().machine.emplace(i, participants_.back().incarnation, Machine());
    }
    voted_yes_.assign(n_, false);
    // Per-run parameters, so that some runs crash often and some hardly at all.
    // Crashes at random steps, and crashes right after a record becomes durable (the sends that
    // depend on it still in flight): the moments the termination rules are about. Each kind of
    // record gets its own odds, so that some runs crash at votes and others at decisions.
    crashes_left_ = static_cast<int>(random_.Below(n_ + 3));
    // Random crashes are rare (most would hit the vote phase and end in a plain abort).
    static constexpr int kCrashWeights[] = {0, 0, 1, 3};
    crash_weight_ = kCrashWeights[random_.Below(4)];
    static constexpr uint64_t kCrashAfterOdds[] = {0, 4, 2, 1};  // one in n; 0: never
    static constexpr uint64_t kCrashAfterWaitOdds[] = {0, 0, 8, 3};
    crash_after_record_odds_[0] = kCrashAfterWaitOdds[random_.Below(4)];
    crash_after_record_odds_[1] = kCrashAfterOdds[random_.Below(4)];
    crash_after_record_odds_[2] = kCrashAfterOdds[random_.Below(4)];
    coordinator_crash_after_log_odds_ = kCrashAfterOdds[random_.Below(4)];
    // Most runs crash the coordinator once, right after the m-th of its messages is delivered:
    // during CanCommit, PreCommit (some participants PRE, others WAIT) or DoCommit.
    // Half of those crash it in mid-PreCommit, the mixed WAIT/PRE states termination is for.
    if (!random_.OneIn(4)) {
      coordinator_crash_at_delivery_ = random_.OneIn(2) ? n_ + 1 + random_.Below(n_ - 1)
                                                        : 1 + random_.Below(3 * n_);
    }
    static constexpr uint64_t kCrashAfterMessageOdds[] = {0, 0, 12, 4};
    crash_after_message_odds_ = kCrashAfterMessageOdds[random_.Below(4)];
    // A participant that answers a backup's question and then crashes: the backup counted its
    // state, later rounds cannot see it.
    static constexpr uint64_t kCrashAfterAnswerOdds[] = {0, 0, 4, 2};
    crash_after_answer_odds_ = kCrashAfterAnswerOdds[random_.Below(4)];
    // A backup (or a restarted participant under rule c) that crashes right after sending its
    // MoveToPre: later rounds meet the targets it may or may not have moved.
    static constexpr uint64_t kCrashAfterPromotionOdds[] = {0, 2, 1, 1};
    crash_after_promotion_odds_ = kCrashAfterPromotionOdds[random_.Below(4)];
    // A process crash (the kernel may still send what was written) or a host crash (all lost).
    lose_on_crash_odds_ = random_.OneIn(2) ? 1 : 2;
    // In two thirds of the process-crash runs, a message of a crashed process that is not lost
    // is late, always or one time in two.
    static constexpr uint64_t kLateOnCrashOdds[] = {0, 2, 1};
    late_on_crash_odds_ = lose_on_crash_odds_ == 2 ? kLateOnCrashOdds[random_.Below(3)] : 0;
    // A quarter of the runs have a coordinator that may stall (alive but stuck) for longer than
    // the participants' timeout; in the others a live coordinator in mid-phase keeps them waiting.
    coordinator_stalls_ = random_.OneIn(4);
    // Timers that fire together (armed at about the same time) or spread out.
    timer_weight_ = random_.OneIn(2) ? 10 : 60;
    static constexpr int kRestartWeights[] = {1, 3, 10};
    restart_weight_ = kRestartWeights[random_.Below(3)];
    // Sometimes the database votes no on one branch: the coordinator must abort.
    if (random_.OneIn(8)) db_votes_no_ = static_cast<uint32_t>(random_.Below(n_));
  }

  RunResult Run() {
    Trace("run: crash budget " + std::to_string(crashes_left_) + ", crash weight " +
          std::to_string(crash_weight_) + ", coordinator crash at its delivery " +
          std::to_string(coordinator_crash_at_delivery_) + (coordinator_stalls_ ? ", stalls" : "") +
          ", timer weight " + std::to_string(timer_weight_));
    StartCoordinator();
    int step = 0;
    for (; step < options_.max_steps && result_.violation.empty(); ++step) {
      if (!Step()) break;
      CheckSafety();
    }
    result_.steps = step;
    if (result_.violation.empty()) {
      if (step >= options_.max_steps) {
        Fail("no progress: the run did not end within " + std::to_string(options_.max_steps) +
             " steps");
      } else {
        CheckProgress();
      }
    }
    return result_;
  }

 private:
  struct ParticipantProc {
    bool up = true;
    std::optional<ParticipantMachine> machine;
    // The agent's log.
    State durable = State::kInit;
    bool durable_has_branch = false;
    bool durable_coordinator_knows = false;  // the decision record says the coordinator sent it
    bool pending_coordinator_knows = false;  // that of the record in flight
    bool durable_branch_finished = false;    // the decision record says the branch is finished
    bool pending_branch_finished = false;    // that of the record in flight
    uint32_t durable_count = 0;
    std::optional<State> pending_record;
    bool timer = false;
    std::optional<State> finished;  // the outcome a FinishBranch applied to the branch
    bool finishing = false;         // a FinishBranch is being carried out
    uint64_t incarnation = 1;       // the agent's restart counter (ParticipantMachine)
    bool sent_move_to_pre = false;  // the last input handled sent a MoveToPre
    // RecordDone: the agent forgot the participant, and answers from the outcome it keeps in
    // memory until it restarts. The done record is lazy: a crash keeps it or loses it.
    bool done_written = false;
  };
  enum class CoordinatorPhase { kVoting, kLogging, kAwaitingAcks, kPending, kDone };
  enum class CoordinatorLog { kNothing, kPreCommit, kCommit };
  struct CoordinatorProc {
    bool up = true;
    bool restarted = false;
    CoordinatorPhase phase = CoordinatorPhase::kVoting;
    CoordinatorLog durable = CoordinatorLog::kNothing;
    std::optional<CoordinatorLog> pending_log;
    std::vector<bool> votes;
    std::vector<bool> acks;
    bool timer = false;
    uint64_t next_request = 1;
  };
  struct InFlight {
    int from;  // a participant number, or kCoordinator
    int to;
    Payload payload;
    bool late = false;  // sent by a process that crashed; held (see the top)
  };
  static constexpr int kCoordinator = -1;

  ParticipantOptions Machine() const { return ParticipantOptions{options_.broken}; }
  std::string Who(int process) const {
    return process == kCoordinator ? std::string("C") : "P" + std::to_string(process);
  }
  void Trace(const std::string& line) { result_.trace.push_back(line); }
  void Fail(const std::string& why) {
    if (result_.violation.empty()) result_.violation = why;
  }

  // ---- the coordinator (the design's coordinator steps) ----

  void CoordinatorSend(uint32_t to, CoordinatorMessage message) {
    network_.push_back(InFlight{kCoordinator, static_cast<int>(to), std::move(message)});
  }
  void CoordinatorDecides(State decision) {
    coordinator_decisions_.push_back(decision);
    coordinator_.phase = CoordinatorPhase::kDone;
    coordinator_.timer = false;
    Trace("  C decides " + Name(decision));
  }
  void CoordinatorAborts() {
    CoordinatorDecides(State::kAbort);
    for (uint32_t i = 0; i < n_; ++i) CoordinatorSend(i, Abort{0, /*branch_done=*/true});
  }

  void StartCoordinator() {
    coordinator_.votes.assign(n_, false);
    coordinator_.acks.assign(n_, false);
    for (uint32_t i = 0; i < n_; ++i) {
      if (db_votes_no_ && *db_votes_no_ == i) continue;  // XA PREPARE said no: no CanCommit
      CoordinatorSend(i, CanCommit{coordinator_.next_request++, n_});
    }
    if (db_votes_no_) {
      Trace("C: the database votes no on P" + std::to_string(*db_votes_no_));
      CoordinatorAborts();
      return;
    }
    coordinator_.timer = true;  // the vote timeout
  }

  void CoordinatorReceive(uint32_t from, const OutMessage& message) {
    CoordinatorProc& c = coordinator_;
    if (const auto* vote = std::get_if<Vote>(&message)) {
      if (c.phase != CoordinatorPhase::kVoting) return;
      if (!vote->yes) {
        CoordinatorAborts();
        return;
      }
      c.votes[from] = true;
      if (std::all_of(c.votes.begin(), c.votes.end(), [](bool v) { return v; })) {
        c.phase = CoordinatorPhase::kLogging;
        c.pending_log = CoordinatorLog::kPreCommit;
        c.timer = false;
      }
    } else if (const auto* ack = std::get_if<Ack>(&message)) {
      if (c.phase != CoordinatorPhase::kAwaitingAcks) return;
      if (ack->state != State::kPre) {
        // A refusal: the coordinator cannot collect a full set; it decides nothing.
        c.phase = CoordinatorPhase::kPending;
        c.timer = true;
        return;
      }
      c.acks[from] = true;
      if (std::all_of(c.acks.begin(), c.acks.end(), [](bool a) { return a; })) {
        c.phase = CoordinatorPhase::kLogging;
        c.pending_log = CoordinatorLog::kCommit;
        c.timer = false;
      }
    } else if (const auto* reply = std::get_if<StateReply>(&message)) {
      if (c.phase != CoordinatorPhase::kPending) return;
      if (IsDecided(reply->state)) CoordinatorDecides(reply->state);  // adopt (rule a / c)
    }
  }

  void CoordinatorLogDurable() {
    CoordinatorProc& c = coordinator_;
    c.durable = *c.pending_log;
    c.pending_log.reset();
    if (c.durable == CoordinatorLog::kPreCommit) {
      Trace("  C: pre-commit durable, PreCommit to all");
      c.phase = CoordinatorPhase::kAwaitingAcks;
      for (uint32_t i = 0; i < n_; ++i) CoordinatorSend(i, PreCommit{c.next_request++});
      c.timer = true;  // the acknowledgement timeout
    } else {
      Trace("  C: commit durable, DoCommit to all");
      CoordinatorDecides(State::kCommit);
      for (uint32_t i = 0; i < n_; ++i) CoordinatorSend(i, DoCommit{0, /*branch_done=*/true});
    }
  }

  void CoordinatorTimer() {
    CoordinatorProc& c = coordinator_;
    switch (c.phase) {
      case CoordinatorPhase::kVoting:
        Trace("  C: vote timeout");
        CoordinatorAborts();
        return;
      case CoordinatorPhase::kAwaitingAcks:
        Trace("  C: acknowledgement timeout, decides nothing");
        c.phase = CoordinatorPhase::kPending;
        [[fallthrough]];
      case CoordinatorPhase::kPending:
        for (uint32_t i = 0; i < n_; ++i) {
          CoordinatorSend(i, StateQuery{c.next_request++, c.restarted, /*backup_round=*/false,
                                        RoundId{}});
        }
        c.timer = true;
        return;
      case CoordinatorPhase::kLogging:
      case CoordinatorPhase::kDone:
        c.timer = false;
        return;
    }
  }

  void CrashCoordinator() {
    CoordinatorProc& c = coordinator_;
    c.up = false;
    c.timer = false;
    if (c.pending_log) {
      if (random_.OneIn(2)) {
        c.durable = *c.pending_log;
        Trace("  C's log write landed before the crash");
        if (c.durable == CoordinatorLog::kCommit) coordinator_decisions_.push_back(State::kCommit);
      }
      c.pending_log.reset();
    }
  }

  void RestartCoordinator() {
    CoordinatorProc& c = coordinator_;
    c.up = true;
    c.restarted = true;
    c.votes.assign(n_, false);
    c.acks.assign(n_, false);
    switch (c.durable) {
      case CoordinatorLog::kCommit:
        c.phase = CoordinatorPhase::kDone;
        for (uint32_t i = 0; i < n_; ++i) CoordinatorSend(i, DoCommit{0, /*branch_done=*/false});
        return;
      case CoordinatorLog::kPreCommit:
        c.phase = CoordinatorPhase::kPending;  // rule c: ask, adopt, otherwise wait
        c.timer = true;
        return;
      case CoordinatorLog::kNothing:
        c.phase = CoordinatorPhase::kDone;  // presumed abort
        return;
    }
  }

  // ---- participants ----

  void Apply(uint32_t p, const Effects& effects) {
    ParticipantProc& proc = participants_[p];
    for (const Effect& effect : effects) {
      Trace("  P" + std::to_string(p) + ": " + ToString(effect));
      if (const auto* record = std::get_if<RecordState>(&effect)) {
        if (proc.pending_record) Fail("P" + std::to_string(p) + " asked for two records at once");
        proc.pending_record = record->state;
        proc.pending_coordinator_knows = record->coordinator_knows_outcome;
        proc.pending_branch_finished = record->branch_finished;
      } else if (const auto* send = std::get_if<Send>(&effect)) {
        if (const auto* vote = std::get_if<Vote>(&send->message); vote && vote->yes) {
          voted_yes_[p] = true;
        }
        if (std::holds_alternative<MoveToPre>(send->message)) proc.sent_move_to_pre = true;
        const int to = send->to.coordinator ? kCoordinator : static_cast<int>(send->to.number);
        network_.push_back(InFlight{static_cast<int>(p), to, send->message});
      } else if (const auto* finish = std::get_if<FinishBranch>(&effect)) {
        proc.finished = finish->commit ? State::kCommit : State::kAbort;
        proc.finishing = true;
        if (proc.durable != *proc.finished) {
          Fail("P" + std::to_string(p) + " finished its branch with " + Name(*proc.finished) +
               " before recording it");
        }
      } else if (std::holds_alternative<ArmTimer>(effect)) {
        proc.timer = true;
      } else if (std::holds_alternative<CancelTimer>(effect)) {
        proc.timer = false;
      } else if (std::holds_alternative<ReportHeuristicMixed>(effect)) {
        heuristic_reported_ = true;  // checked after agreement, which names the split better
      } else if (std::holds_alternative<RecordDone>(effect)) {
        proc.done_written = true;
        // The agent forgets the participant, and answers a later question about it ABORT
        // (rule d). A COMMIT may be forgotten only while the coordinator holds it (it keeps
        // its decision until every agent acknowledged its DoCommit; not modelled here), or a
        // coordinator recovering from its pre-commit record could adopt that ABORT.
        if (proc.durable == State::kCommit && coordinator_.durable != CoordinatorLog::kCommit) {
          Fail("P" + std::to_string(p) + " forgot its COMMIT while the coordinator holds no " +
               "commit decision (" + Decisions() + ")");
        }
      }
    }
  }

  void ParticipantReceive(uint32_t p, int from, const Payload& payload) {
    ParticipantMachine& m = *participants_[p].machine;
    const Endpoint sender = from == kCoordinator
                                ? Endpoint::Coordinator()
                                : Endpoint::Participant(static_cast<uint32_t>(from));
    Effects effects;
    if (const auto* notice = std::get_if<Unreachable>(&payload)) {
      effects = m.OnPeerUnreachable(notice->peer);
    } else if (const auto* c = std::get_if<CoordinatorMessage>(&payload)) {
      effects = std::visit(
          [&](const auto& message) -> Effects {
            using T = std::decay_t<decltype(message)>;
            if constexpr (std::is_same_v<T, CanCommit>) return m.OnCanCommit(message);
            if constexpr (std::is_same_v<T, PreCommit>) return m.OnPreCommit(message);
            if constexpr (std::is_same_v<T, DoCommit>) return m.OnDoCommit(sender, message);
            if constexpr (std::is_same_v<T, Abort>) return m.OnAbort(sender, message);
            if constexpr (std::is_same_v<T, StateQuery>) return m.OnStateQuery(sender, message);
          },
          *c);
    } else {
      const auto& message = std::get<OutMessage>(payload);
      const uint32_t peer = static_cast<uint32_t>(from);
      effects = std::visit(
          [&](const auto& msg) -> Effects {
            using T = std::decay_t<decltype(msg)>;
            if constexpr (std::is_same_v<T, Vote>) return {};  // votes go to the coordinator
            if constexpr (std::is_same_v<T, Ack>) return m.OnAck(sender, msg);
            if constexpr (std::is_same_v<T, StateQuery>) return m.OnStateQuery(sender, msg);
            if constexpr (std::is_same_v<T, StateReply>) return m.OnStateReply(peer, msg);
            if constexpr (std::is_same_v<T, MoveToPre>) return m.OnMoveToPre(peer, msg);
            if constexpr (std::is_same_v<T, DoCommit>) return m.OnDoCommit(sender, msg);
            if constexpr (std::is_same_v<T, Abort>) return m.OnAbort(sender, msg);
          },
          message);
    }
    Apply(p, effects);
  }

  void RecordDurable(uint32_t p) {
    ParticipantProc& proc = participants_[p];
    const State before = proc.durable;
    const State after = *proc.pending_record;
    proc.pending_record.reset();
    LandRecord(p, before, after, proc.pending_coordinator_knows);
    Apply(p, proc.machine->OnRecorded());
  }

  void LandRecord(uint32_t p, State before, State after, bool coordinator_knows) {
    ParticipantProc& proc = participants_[p];
    // The one repeated record: a COMMIT decided without the coordinator, now from its DoCommit.
    const bool upgrade = before == State::kCommit && after == State::kCommit &&
                         coordinator_knows && !proc.durable_coordinator_knows;
    const bool legal =
        (before == State::kInit && (after == State::kWait || after == State::kAbort)) ||
        (before == State::kWait && after != State::kInit && after != State::kWait) ||
        (before == State::kPre && IsDecided(after)) || upgrade;
    if (!legal) {
      Fail("P" + std::to_string(p) + " recorded " + Name(after) + " after " + Name(before));
    }
    proc.durable = after;
    proc.durable_coordinator_knows = proc.durable_coordinator_knows || coordinator_knows;
    proc.durable_branch_finished = proc.durable_branch_finished || proc.pending_branch_finished;
    if (IsDecided(after) && !upgrade) ReleaseLateMessages(p);
    if (after == State::kWait) proc.durable_has_branch = true;
    if (proc.machine) proc.durable_count = proc.machine->participant_count();
  }

  // Releases the late messages once `decided` recorded a decision (those to `decided` stay
  // held: it decided by itself), or all of them when nothing else can happen (no `decided`).
  void ReleaseLateMessages(std::optional<uint32_t> decided) {
    for (InFlight& message : network_) {
      if (!message.late || (decided && message.to == static_cast<int>(*decided))) continue;
      message.late = false;
      Trace("  released (" +
            (decided ? "P" + std::to_string(*decided) + " decided"
                     : std::string("nothing else can happen")) +
            "): " + Who(message.from) + " -> " + Who(message.to) + " " +
            PayloadText(message.payload));
    }
  }

  void CrashParticipant(uint32_t p) {
    ParticipantProc& proc = participants_[p];
    proc.up = false;
    proc.timer = false;
    proc.finishing = false;
    proc.sent_move_to_pre = false;
    if (proc.pending_record) {
      if (random_.OneIn(2)) {
        Trace("  P" + std::to_string(p) + "'s record of " + Name(*proc.pending_record) +
              " landed before the crash");
        LandRecord(p, proc.durable, *proc.pending_record, proc.pending_coordinator_knows);
      }
      proc.pending_record.reset();
    }
    if (proc.done_written && random_.OneIn(2)) {
      // Lost: the restarted agent finishes the branch and tells its peers again.
      Trace("  P" + std::to_string(p) + "'s done record was lost in the crash");
      proc.done_written = false;
    }
    proc.machine.reset();
  }

  void RestartParticipant(uint32_t p) {
    ParticipantProc& proc = participants_[p];
    proc.up = true;
    ++proc.incarnation;
    if (proc.done_written) {
      // Its log no longer holds it, nor its memory the outcome: a question about it meets rule
      // d, a decision an INIT participant. (Agreement still reads the branch's outcome.)
      Trace("  P" + std::to_string(p) + " was done: the agent restarts knowing nothing of it");
      proc.durable = State::kInit;
      proc.durable_has_branch = false;
      proc.durable_coordinator_knows = false;
      proc.durable_branch_finished = false;
      proc.durable_count = 0;
      proc.done_written = false;
    }
    if (proc.durable == State::kInit) {
      proc.machine.emplace(p, proc.incarnation, Machine());  // no record: a fresh INIT machine
      return;
    }
    proc.machine.emplace(
        ParticipantMachine::Recovered(
            RecoveredParticipant{p, proc.durable_count, proc.durable, proc.durable_has_branch,
                                 proc.incarnation, proc.durable_coordinator_knows,
                                 proc.durable_branch_finished},
            Machine()));
    Apply(p, proc.machine->OnRestart());
  }

  // ---- the scheduler ----

  // A live coordinator in the middle of a phase will still send (or time out and send).
  bool CoordinatorWorking() const {
    return coordinator_.up && (coordinator_.phase == CoordinatorPhase::kVoting ||
                               coordinator_.phase == CoordinatorPhase::kLogging ||
                               coordinator_.phase == CoordinatorPhase::kAwaitingAcks);
  }
  bool AnyRecordInFlight() const {
    for (const ParticipantProc& proc : participants_) {
      if (proc.up && proc.pending_record) return true;
    }
    return false;
  }
  // Whether `process`'s timer may fire now (see the model of time at the top).
  bool TimerMayFire(int process) const {
    if (AnyRecordInFlight()) return false;
    if (process != kCoordinator && !coordinator_stalls_ && CoordinatorWorking()) return false;
    if (options_.timing == Timing::kQuiescent) {
      return std::all_of(network_.begin(), network_.end(),
                         [](const InFlight& message) { return message.late; });
    }
    // What the owner waits for: the coordinator waits for replies (to or from it in flight); a
    // participant in a round waits for its peers' answers, a decided one for their
    // confirmations (its requests or replies to it in flight); otherwise a participant waits for
    // the coordinator (its messages to it in flight).
    const ParticipantMachine* machine = process == kCoordinator ? nullptr
                                                                : &*participants_[process].machine;
    const bool waits_for_peers = process == kCoordinator || machine->in_termination_round() ||
                                 IsDecided(machine->state());
    for (const InFlight& message : network_) {
      if (message.late) continue;
      if (message.to == process && (waits_for_peers || message.from == kCoordinator)) return false;
      if (message.from == process && waits_for_peers) return false;
    }
    return true;
  }

  struct Event {
    int weight;
    std::function<void()> run;
  };

  bool Step() {
    if (NothingButCrashes(/*ignore_late=*/true)) ReleaseLateMessages(std::nullopt);
    std::vector<Event> events;
    for (size_t i = 0; i < network_.size(); ++i) {
      if (network_[i].late) continue;
      events.push_back({10, [this, i] { Deliver(i); }});
    }
    for (uint32_t p = 0; p < n_; ++p) {
      ParticipantProc& proc = participants_[p];
      if (proc.up && proc.pending_record) {
        events.push_back({10, [this, p] {
                            Trace("P" + std::to_string(p) + " record of " +
                                  Name(*participants_[p].pending_record) + " durable");
                            RecordDurable(p);
                            MaybeCrashRightAfter(p);
                          }});
      }
    }
    for (uint32_t p = 0; p < n_; ++p) {
      if (participants_[p].up && participants_[p].finishing) {
        events.push_back({10, [this, p] {
                            Trace("P" + std::to_string(p) + " branch finished");
                            participants_[p].finishing = false;
                            Apply(p, participants_[p].machine->OnBranchFinished());
                          }});
      }
    }
    if (coordinator_.up && coordinator_.pending_log) {
      events.push_back({10, [this] {
                          Trace("C log write durable");
                          CoordinatorLogDurable();
                          if (crashes_left_ > 0 && coordinator_crash_after_log_odds_ != 0 &&
                              random_.OneIn(coordinator_crash_after_log_odds_)) {
                            Crash(kCoordinator);
                          }
                        }});
    }
    {
      for (uint32_t p = 0; p < n_; ++p) {
        if (participants_[p].up && participants_[p].timer && TimerMayFire(static_cast<int>(p))) {
          events.push_back({timer_weight_, [this, p] {
                              Trace("P" + std::to_string(p) + " timeout");
                              participants_[p].timer = false;
                              Apply(p, participants_[p].machine->OnTimer());
                              MaybeCrashAfterPromotion(p);
                            }});
        }
      }
      if (coordinator_.up && coordinator_.timer && TimerMayFire(kCoordinator)) {
        events.push_back({timer_weight_, [this] {
                            Trace("C timeout");
                            coordinator_.timer = false;
                            CoordinatorTimer();
                          }});
      }
    }
    if (crashes_left_ > 0) {
      for (uint32_t p = 0; p < n_; ++p) {
        if (participants_[p].up) events.push_back({crash_weight_, [this, p] { Crash(int(p)); }});
      }
      if (coordinator_.up) events.push_back({crash_weight_, [this] { Crash(kCoordinator); }});
    }
    for (uint32_t p = 0; p < n_; ++p) {
      if (!participants_[p].up) {
        events.push_back({restart_weight_, [this, p] {
                            Trace("P" + std::to_string(p) + " restarts");
                            RestartParticipant(p);
                          }});
      }
    }
    if (!coordinator_.up) {
      events.push_back({restart_weight_, [this] {
                          Trace("C restarts");
                          RestartCoordinator();
                        }});
    }
    // Only crashes are left: the run is over (a crash now could only be followed by a restart).
    if (NothingButCrashes()) return false;
    int total = 0;
    for (const Event& e : events) total += e.weight;
    int pick = static_cast<int>(random_.Below(static_cast<uint64_t>(total)));
    for (Event& e : events) {
      if (pick < e.weight) {
        e.run();
        return true;
      }
      pick -= e.weight;
    }
    return false;
  }

  bool NothingButCrashes(bool ignore_late = false) const {
    for (const InFlight& message : network_) {
      if (!ignore_late || !message.late) return false;
    }
    for (const ParticipantProc& proc : participants_) {
      if (!proc.up || proc.pending_record || proc.timer || proc.finishing) return false;
    }
    return coordinator_.up && !coordinator_.pending_log && !coordinator_.timer;
  }

  // Whether `p` just sent a MoveToPre (and forget it).
  bool JustPromoted(uint32_t p) { return std::exchange(participants_[p].sent_move_to_pre, false); }

  void MaybeCrashAfterPromotion(uint32_t p) {
    if (JustPromoted(p) && crashes_left_ > 0 && participants_[p].up &&
        crash_after_promotion_odds_ != 0 && random_.OneIn(crash_after_promotion_odds_)) {
      Crash(static_cast<int>(p));
    }
  }

  void MaybeCrashRightAfter(uint32_t p) {
    // Crashes right after a record are the interesting ones: the state is durable and the sends
    // that depend on it are in flight.
    if (participants_[p].sent_move_to_pre) {
      MaybeCrashAfterPromotion(p);
      return;
    }
    const State recorded = participants_[p].durable;
    const uint64_t odds = crash_after_record_odds_[recorded == State::kWait  ? 0
                                                   : recorded == State::kPre ? 1
                                                                             : 2];
    if (crashes_left_ > 0 && participants_[p].up && odds != 0 && random_.OneIn(odds)) {
      Crash(static_cast<int>(p));
    }
  }

  void Crash(int process) {
    --crashes_left_;
    Trace(Who(process) + " crashes");
    std::vector<InFlight> kept;
    for (InFlight& message : network_) {
      if (message.to == process) continue;  // its connections close
      if (message.from == process && random_.OneIn(lose_on_crash_odds_)) {
        Trace("  lost: " + Who(message.from) + " -> " + Who(message.to) + " " +
              PayloadText(message.payload));
        continue;
      }
      if (message.from == process && late_on_crash_odds_ != 0 &&
          random_.OneIn(late_on_crash_odds_)) {
        Trace("  late: " + Who(message.from) + " -> " + Who(message.to) + " " +
              PayloadText(message.payload));
        message.late = true;
      }
      kept.push_back(std::move(message));
    }
    network_ = std::move(kept);
    if (process == kCoordinator) {
      CrashCoordinator();
    } else {
      CrashParticipant(static_cast<uint32_t>(process));
    }
  }

  void Deliver(size_t index) {
    InFlight message = std::move(network_[index]);
    network_.erase(network_.begin() + static_cast<std::ptrdiff_t>(index));
    Trace(Who(message.from) + " -> " + Who(message.to) + ": " + PayloadText(message.payload));
    const bool to_up = message.to == kCoordinator ? coordinator_.up : participants_[message.to].up;
    if (!to_up) {
      // The sender's agent sees the connection fail (the coordinator's timeouts cover its own).
      if (message.from != kCoordinator && !std::holds_alternative<Unreachable>(message.payload) &&
          message.to != kCoordinator) {
        network_.push_back(
            InFlight{message.to, message.from, Unreachable{static_cast<uint32_t>(message.to)}});
      }
      Trace("  dropped: " + Who(message.to) + " is down");
      return;
    }
    if (message.from == kCoordinator &&
        ++coordinator_deliveries_ == coordinator_crash_at_delivery_ && coordinator_.up) {
      ParticipantReceive(static_cast<uint32_t>(message.to), message.from, message.payload);
      ++crashes_left_;  // planned, beside the random budget
      Crash(kCoordinator);
      return;
    }
    if (message.to == kCoordinator) {
      if (const auto* out = std::get_if<OutMessage>(&message.payload)) {
        CoordinatorReceive(static_cast<uint32_t>(message.from), *out);
      }
      return;
    }
    ParticipantReceive(static_cast<uint32_t>(message.to), message.from, message.payload);
    // A crash right after handling a message: its answer (if any) may be lost or arrive.
    const auto* out = std::get_if<OutMessage>(&message.payload);
    const bool backup_question = out != nullptr && std::holds_alternative<StateQuery>(*out) &&
                                 std::get<StateQuery>(*out).backup_round;
    const uint64_t odds = JustPromoted(static_cast<uint32_t>(message.to))
                              ? crash_after_promotion_odds_
                          : backup_question ? crash_after_answer_odds_
                                            : crash_after_message_odds_;
    if (crashes_left_ > 0 && odds != 0 && random_.OneIn(odds)) {
      Crash(message.to);
    }
  }

  // ---- invariants ----

  void CheckSafety() {
    bool commit = false;
    bool abort = false;
    auto note = [&](State s) {
      commit = commit || s == State::kCommit;
      abort = abort || s == State::kAbort;
    };
    for (const ParticipantProc& proc : participants_) {
      if (IsDecided(proc.durable)) note(proc.durable);
      if (proc.finished) note(*proc.finished);
    }
    for (State s : coordinator_decisions_) note(s);
    if (coordinator_.durable == CoordinatorLog::kCommit) note(State::kCommit);
    if (commit && abort) Fail("agreement: COMMIT and ABORT both decided (" + Decisions() + ")");
    if (heuristic_reported_) Fail("heuristic-mixed reported without a partition");
    if (commit && !std::all_of(voted_yes_.begin(), voted_yes_.end(), [](bool v) { return v; })) {
      Fail("validity: COMMIT without every participant voting yes (" + Decisions() + ")");
    }
  }

  // Every participant that voted yes ends decided. One still INIT never recorded anything: it
  // holds no branch the protocol must finish (presumed abort; the agent's orphan scan rolls back
  // a branch prepared for it), and a commit is impossible without its vote.
  void CheckProgress() {
    for (uint32_t p = 0; p < n_; ++p) {
      if (IsUndecided(participants_[p].durable)) {
        Fail("progress: P" + std::to_string(p) + " ended undecided (" + Decisions() + ")");
      }
    }
  }

  std::string Decisions() const {
    std::ostringstream out;
    for (uint32_t p = 0; p < n_; ++p) {
      out << "P" << p << "=" << Name(participants_[p].durable)
          << (participants_[p].up ? "" : "(down)") << " ";
    }
    out << "C=";
    for (State s : coordinator_decisions_) out << Name(s) << ",";
    out << (coordinator_.durable == CoordinatorLog::kCommit      ? "log:commit"
            : coordinator_.durable == CoordinatorLog::kPreCommit ? "log:pre-commit"
                                                                 : "log:nothing");
    return out.str();
  }

  Random random_;
  SimulationOptions options_;
  uint32_t n_;
  std::vector<ParticipantProc> participants_;
  CoordinatorProc coordinator_;
  std::vector<InFlight> network_;
  std::vector<bool> voted_yes_;
  std::vector<State> coordinator_decisions_;
  std::optional<uint32_t> db_votes_no_;
  int crashes_left_ = 0;
  int crash_weight_ = 1;
  uint64_t crash_after_record_odds_[3] = {};  // after WAIT, after PRE, after a decision
  uint64_t coordinator_crash_after_log_odds_ = 0;
  int restart_weight_ = 3;
  uint64_t crash_after_message_odds_ = 0;
  uint64_t crash_after_answer_odds_ = 0;
  uint64_t crash_after_promotion_odds_ = 0;
  uint64_t lose_on_crash_odds_ = 2;
  uint64_t late_on_crash_odds_ = 0;             // 0: no message of a crashed process is late
  uint64_t coordinator_crash_at_delivery_ = 0;  // 0: none planned
  uint64_t coordinator_deliveries_ = 0;
  bool coordinator_stalls_ = false;
  int timer_weight_ = 10;
  bool heuristic_reported_ = false;
  RunResult result_;
};

inline std::string Report(uint64_t seed, const SimulationOptions& options, const RunResult& result) {
  std::ostringstream out;
  out << "seed " << seed << " (" << options.participants << " participants): " << result.violation
      << "\ntrace (" << result.trace.size() << " lines):\n";
  for (const std::string& line : result.trace) out << "  " << line << "\n";
  return out.str();
}

struct Budget {
  uint64_t runs = 0;
  uint64_t steps = 0;
};

// Runs seeds first..first+count-1 and returns the first failing run's report ("" if none).
inline std::string RunSeeds(const SimulationOptions& options, uint64_t first, uint64_t count,
                     Budget& budget, uint64_t* failing_seed = nullptr) {
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const RunResult result = Simulation(seed, options).Run();
    ++budget.runs;
    budget.steps += static_cast<uint64_t>(result.steps);
    if (!result.violation.empty()) {
      if (failing_seed != nullptr) *failing_seed = seed;
      return Report(seed, options, result);
    }
  }
  return "";
}

inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace xa::three_phase::simulation

#endif  // XA_TESTS_THREE_PHASE_PARTICIPANT_SIMULATION_H_
