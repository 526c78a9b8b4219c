// Agent: the engine of xa-agent, the three-phase-commit participant agent
// (docs/three-phase-commit.md). It listens for the coordinator and its peer agents, keeps one
// ParticipantMachine (src/three_phase/participant.h) per participant it stands for, and carries
// out the machine's effects: durable records in its own DecisionLog, messages, the termination
// timer, and finishing the branch through a BranchFinisher. main() (configuration, signals,
// metrics endpoint) and the drivers' finisher are plugged in from outside.
//
//   Result<uint64_t> incarnation = NextIncarnation(log_dir);
//   Result<std::unique_ptr<Agent>> agent = Agent::Start(options, {env, log.get(), tcp.get(),
//                                                                 &key, &finisher, *incarnation});
//   ... (*agent)->address() ...
//   (*agent)->Stop();
//
// Threads and ordering.
//   - one accept thread, and one reader thread per accepted connection: each connection first
//     runs AuthenticateAsServer (a failure is logged with the peer's address, counted, and the
//     connection dropped), then reads frames; a frame that does not decode drops the connection
//     (logged, counted). Other connections are not affected.
//   - one strand per participant (a queue of its inputs, drained by one thread of a small pool
//     at a time): every input of a participant (a message, its timer, a peer found unreachable,
//     a record made durable, its branch finished) runs on its strand, one at a time, in order,
//     as the machine requires (rule e). A strand costs nothing while idle and many participants
//     share the pool's threads. (Not asio's strands and thread pool: they synchronise with a
//     standalone fence that the thread sanitizer cannot follow.) Records (DecisionLog::Append)
//     run on the strand: an fdatasync is short and shared by concurrent appends (group commit).
//     A message from a coordinator (a client that is no agent of the directory) whose
//     participant's strand is idle is run by the connection's reader thread itself, which has
//     nothing else to do until it answers (a coordinator sends one request at a time on a
//     connection): that spares a thread hand-off on every CanCommit and PreCommit. A peer's
//     connection carries many participants' messages, so its reader always hands them over.
//   - BranchFinisher::Finish runs on a separate pool, off the strands: fencing and phase 2 wait
//     for a database, which must not stall other transactions. Its result is posted back to the
//     participant's strand; a failure is retried after a backoff (finish_retry_min doubling up to
//     finish_retry_max), never given up.
//   - one worker thread per peer agent (with a reader of its outgoing connection): it connects
//     (Connect + AuthenticateAsClient within peer_timeout), reuses the connection, reconnects
//     after a failure, and tells the participant OnPeerUnreachable(peer) for each message it
//     could not hand to a connection.
//   - one timer thread on Env::clock(): termination timers and finish retries.
//
// Messages and the wire (daemons/agent/message_mapping.h says which number a message carries).
//   - A request (CanCommit, PreCommit, DoCommit, Abort, StateQuery, MoveToPre) goes to the
//     participant (global Xid, number) it names; the machine's reply goes back on the connection
//     that request came on (the coordinator's, or the peer's). When that connection is gone, a
//     reply to the coordinator is dropped (it asks again); one to a peer goes through this
//     agent's own connection to the peer's agent.
//   - A request to a peer (a participant's StateQuery, MoveToPre, DoCommit, Abort) goes through
//     the directory: participants[peer].rm_name -> agent_of_rm -> address_of_agent, over one
//     outgoing connection per peer agent (a peer served by this agent is delivered in-process).
//     The agent gives it a request id of its own and routes the peer's reply (StateReply, Ack),
//     on whichever connection it arrives, by that id to the participant that asked.
//   - The sender of a DoCommit or Abort is the message's `sender` field: the coordinator
//     (kCoordinatorSender), whose decision the participant records with
//     coordinator_knows_outcome, or the peer participant whose termination decided.
//   - A CanCommit naming a participant whose resource manager this agent does not serve, or
//     whose branch is not global.WithBranch(number), is answered with an Error and changes
//     nothing (a directory that differs between the coordinator and the agent).
//   - A message about a participant this agent has no record of (no CanCommit, nothing in the
//     log) goes to a new INIT machine (rule d: a StateQuery or an Abort records ABORT). An INIT
//     machine that recorded nothing is forgotten at once.
//   - A participant that recorded done is forgotten, but its outcome stays in memory (the last
//     65536 of them) to answer late messages about it: a DoCommit or Abort with Ack(outcome), a
//     StateQuery with StateReply(outcome), so that a peer whose confirmation was still in
//     flight settles instead of meeting an INIT participant. A restart forgets them. That is
//     why a COMMIT is done only once the coordinator itself sent DoCommit and the decision
//     record says so (coordinator_knows_outcome; ParticipantMachine's RecordDone): the
//     coordinator keeps its decision until every agent acknowledged that DoCommit, so an agent
//     that forgot a COMMIT and answers ABORT after a restart (rule d) is never asked by a
//     coordinator that lacks the outcome.
//
// Orphan scan (docs/three-phase-commit.md, "Orphans"; only with a PreparedBranchLister). Every
// orphan_scan_interval, on a finisher thread, the agent lists the prepared branches of each
// resource manager it serves and picks the 3PC branches (format "XAM3", a participant number in
// the bqual) made by one of its deployment's coordinators (orphan_scan_nodes: the node id in the
// Xid) that it does not hold: no participant in memory or in its log, and no outcome kept of a
// forgotten one. Branches of any other format or node are never touched (another node's 3PC
// branch belongs to another deployment, whose own agents may hold it WAIT or PRE on this same
// database), nor a participant the agent holds (its own rules finish it), except one whose
// forgotten outcome is ABORT: that branch was prepared after its participant was decided and
// finished (a coordinator that asked the agents during its prepares, stuck past their
// termination and then dead before it rolled the branch back), and it is rolled back at the first
// scan that sees it, with no record (its outcome is fixed).
//   - Such a branch becomes an orphan once the scans saw it so, without a break, for at least
//     termination_timeout (which is longer than the coordinator's vote timeout): a CanCommit
//     sent right after its XA PREPARE has arrived, or the coordinator has given up on it.
//   - An orphan's participant records ABORT first, on its strand, by rule d (as a question about
//     an unknown transaction does): from then on a late CanCommit is answered no, so no
//     coordinator can collect the votes it needs to commit. Should a CanCommit win the race to
//     the strand, the participant is no longer unknown and the scan leaves it alone.
//   - Then the branch is rolled back (BranchFinisher::Finish, no fence: no session id is known;
//     the phase-2 rules read the result), logged with its Xid and counted
//     (orphans_rolled_back). A failure is logged and counted (finish_failures) and the next scan
//     tries again: a participant that recorded ABORT without ever learning its transaction
//     (rule d, here or for a peer's question) and whose branch is still prepared is rolled back
//     at once, with no second sighting (its outcome is already fixed).
//   - A scan that fails for a resource manager is logged and counted (orphan_scan_failures) and
//     ends that resource manager's sightings: they start again at the next scan.
//
// Restart. Start() replays LogState::open_participants: each becomes
// ParticipantMachine::Recovered (WAIT, PRE, or the decision with whether the coordinator sent
// it; has_branch only with a Wait record, whose fields give the participant list, fence and
// read-only flag) with this run's incarnation, and its OnRestart() effects run at once.
//
// Logging: component "agent"; every line about a transaction carries its Xid (the branch's);
// never the key.
//
// Thread safety: Start, Stop and the accessors may be called from any thread. Stop() is
// idempotent; the destructor calls it.

#ifndef XA_DAEMONS_AGENT_AGENT_H_
#define XA_DAEMONS_AGENT_AGENT_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "daemons/agent/branch_finisher.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/status.h"

namespace xa::agent {

struct AgentOptions {
  std::string name;            // this agent's name in the directory and in the handshake
  std::string listen_address;  // "127.0.0.1:7400"; port 0 picks one (see Agent::address)
  // The directory, the same at the coordinator and at every agent: resource manager name ->
  // agent name, and agent name -> address. This agent serves the resource managers mapped to
  // `name`.
  std::map<std::string, std::string> agent_of_rm;
  std::map<std::string, std::string> address_of_agent;
  // How long an undecided participant waits for the coordinator (or a running round waits for
  // its peers) before it runs the next step of termination.
  std::chrono::microseconds termination_timeout{std::chrono::seconds(5)};
  // Connect and handshake with a peer agent, and the handshake of an accepted connection.
  std::chrono::microseconds peer_timeout{std::chrono::seconds(1)};
  // Backoff of a failed BranchFinisher::Finish: the first retry after finish_retry_min, each
  // next one twice as late, at most finish_retry_max.
  std::chrono::microseconds finish_retry_min{std::chrono::milliseconds(100)};
  std::chrono::microseconds finish_retry_max{std::chrono::seconds(10)};
  // Threads of the participants' strands and of the branch finishers.
  int strand_threads = 2;
  int finish_threads = 2;
  // How often the orphan scan runs (see "Orphan scan"; only with deps.lister).
  std::chrono::microseconds orphan_scan_interval{std::chrono::seconds(30)};
  // The node ids of the coordinators this agent's deployment runs: the orphan scan takes only
  // their 3PC branches. Empty: it takes none.
  std::set<uint32_t> orphan_scan_nodes;
};

struct AgentDependencies {
  Env* env = nullptr;                 // the clock of every timer and deadline
  DecisionLog* log = nullptr;         // the agent's own log, opened by the caller
  net::Transport* transport = nullptr;
  const net::SharedKey* key = nullptr;
  BranchFinisher* finisher = nullptr;
  // The orphan scan's view of the databases; nullptr: no orphan scan (tests of other rules).
  PreparedBranchLister* lister = nullptr;
  uint64_t incarnation = 0;  // NextIncarnation() of the log directory: new in every run
};

// The upper bounds of the buckets of the time participants spend in WAIT and in PRE: a
// normal-path transaction leaves each within milliseconds, a terminated one after the
// termination timeout (seconds), a blocked one never.
inline constexpr std::array<double, 16> kStateDurationBoundsSeconds = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

// How long participants stayed in one state, as a Prometheus histogram wants it.
struct StateDurations {
  // at_most[i]: participants that left the state within kStateDurationBoundsSeconds[i]
  // (cumulative, as Prometheus buckets are).
  std::array<uint64_t, kStateDurationBoundsSeconds.size()> at_most{};
  uint64_t count = 0;       // participants that left the state
  double sum_seconds = 0;   // their time in it, summed

  // Counts one participant that stayed `seconds` in the state.
  void Add(double seconds);
};

// A snapshot of the agent's counters (the Prometheus endpoint reads them).
struct AgentCounters {
  // Participants held in memory, by state.
  uint64_t participants_init = 0;
  uint64_t participants_wait = 0;
  uint64_t participants_pre = 0;
  uint64_t participants_commit = 0;
  uint64_t participants_abort = 0;
  // Participants whose termination timer is armed (waiting for the coordinator or a round).
  uint64_t participants_with_timer = 0;
  // Participants recovered from the log at Start.
  uint64_t participants_recovered = 0;
  // Decisions recorded without the coordinator (a termination round, a decision adopted from a
  // peer, or rule d), by outcome.
  uint64_t terminations_committed = 0;
  uint64_t terminations_aborted = 0;
  // BranchFinisher::Finish: calls with a fence session id, calls that finished the branch,
  // calls that failed (each retried).
  uint64_t fences = 0;
  uint64_t branches_finished = 0;
  uint64_t finish_failures = 0;
  // Connections dropped: the handshake failed; a frame did not decode.
  uint64_t peers_dropped_authentication = 0;
  uint64_t peers_dropped_malformed = 0;
  // Messages to a peer agent that could not be handed to a connection.
  uint64_t peer_unreachable = 0;
  // Requests answered with an Error: a participant of a resource manager this agent does not
  // serve, or a branch Xid that is not global.WithBranch(number).
  uint64_t refused_requests = 0;
  uint64_t heuristics = 0;  // heuristic-mixed outcomes recorded
  uint64_t records_failed = 0;  // appends the log refused or failed (the agent must restart)
  uint64_t done = 0;            // participants forgotten after their done record
  // The orphan scan: scans made (each resource manager once per scan), scans of a resource
  // manager that failed, orphan branches rolled back.
  uint64_t orphan_scans = 0;
  uint64_t orphan_scan_failures = 0;
  uint64_t orphans_rolled_back = 0;
  // Time from a participant's WAIT record (its PRE record) being durable to its next record
  // (PRE or a decision) being durable, on the Env clock, for participants that left the state
  // in this run. A participant recovered in WAIT or PRE is not timed: it entered the state
  // before the restart.
  StateDurations time_in_wait;
  StateDurations time_in_pre;
};

class Agent {
 public:
  // Listens on options.listen_address, recovers the log's open participants, starts serving.
  // XA_INVAL for missing dependencies or an empty name; the transport's error when it cannot
  // listen.
  // `listener`, when given, is already listening (on deps.transport) and is used instead of
  // listening on options.listen_address: a caller that must know every agent's address before
  // any agent starts (a directory of ports the kernel picked, as tests build) keeps each port
  // bound from the moment it learns it, instead of closing it and racing to bind it again.
  static Result<std::unique_ptr<Agent>> Start(AgentOptions options, AgentDependencies deps,
                                              std::unique_ptr<net::Listener> listener = nullptr);

  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Stops listening, closes every connection, stops the timers and waits for every thread
  // (a Finish in progress completes). Participants stay in the log. Idempotent.
  void Stop();

  // Where peers connect (the actual port when options asked for port 0).
  const std::string& address() const;
  AgentCounters counters() const;

  class Impl;

 private:
  explicit Agent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_AGENT_H_
