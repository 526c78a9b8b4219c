#include "daemons/agent/agent.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>


#include "daemons/agent/message_mapping.h"
#include "src/base/logging.h"
#include "src/base/overloaded.h"
#include "src/base/retrier.h"
#include "src/base/worker_pool.h"
#include "src/testing/crash_points.h"
#include "src/three_phase/agent_messages.h"
#include "src/three_phase/participant.h"
#include "src/three_phase/termination.h"

namespace xa::agent {
namespace ts = three_phase;

namespace {

using internal::Overloaded;

constexpr const char* kComponent = "agent";
// Reply routes kept per participant: requests whose reply is still to be sent. A well-behaved
// sender has a handful at a time; the bound keeps a flood from growing memory.
constexpr size_t kMaxReplyRoutes = 256;
// Outcomes of forgotten (done) participants kept to answer late messages; the oldest go first.
constexpr size_t kMaxTombstones = 65536;

bool IsReply(const ts::OutMessage& message) {
  return std::holds_alternative<ts::Vote>(message) || std::holds_alternative<ts::Ack>(message) ||
         std::holds_alternative<ts::StateReply>(message);
}

std::string_view StateName(ts::ParticipantState state) { return ts::ParticipantStateName(state); }

// Which participant of which transaction.
struct Key {
  Xid global;
  uint32_t number = 0;
  friend bool operator<(const Key& a, const Key& b) {
    if (a.global == b.global) return a.number < b.number;
    return a.global < b.global;
  }
};

}  // namespace

// Where a reply goes: a connection (accepted or outgoing), or this agent itself.
class Channel {
 public:
  virtual ~Channel() = default;
  // Best effort: a message to a closed connection is lost (the asker asks again).
  virtual void Send(const std::string& payload) = 0;
  // The authenticated name of the other side.
  virtual const std::string& peer_name() const = 0;
  virtual std::string Describe() const = 0;
};

// Runs functions at times of the Env clock, on a thread of its own.
class TimerQueue {
 public:
  explicit TimerQueue(Clock* clock) : clock_(clock), thread_([this] { Loop(); }) {}
  ~TimerQueue() { Stop(); }

  void Schedule(Clock::SteadyTime at, std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    due_.emplace(at, std::move(fn));
    changed_.notify_all();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      changed_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::multimap<Clock::SteadyTime, std::function<void()>> dropped;
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(due_);
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (due_.empty()) {
        clock_->WaitOnce(lock, changed_, Clock::kNoDeadline);
        continue;
      }
      auto first = due_.begin();
      if (clock_->SteadyNow() < first->first) {
        clock_->WaitOnce(lock, changed_, first->first);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      due_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  Clock* const clock_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::multimap<Clock::SteadyTime, std::function<void()>> due_;  // guarded by mu_
  bool stopping_ = false;                                        // guarded by mu_
  std::thread thread_;
};

// One participant: its machine and what the agent keeps beside it. Everything but the
// constants and published_state is touched on the strand only.
struct Slot {
  explicit Slot(Key k)
      : key(std::move(k)), branch(key.global.WithBranch(static_cast<uint16_t>(key.number))) {}

  const Key key;
  Xid branch;
  // The strand: the participant's inputs, run one at a time (rule e) by one pool thread at a
  // time, in the order they were posted (see internal::WorkerPool for why not asio::strand).
  std::mutex strand_mu;
  std::deque<std::function<void()>> strand_queue;  // guarded by strand_mu
  bool strand_running = false;                     // guarded by strand_mu

  std::optional<ts::ParticipantMachine> machine;
  // From CanCommit or the log's Wait record; empty when neither was seen.
  std::vector<Participant> participants;
  uint64_t fence_session_id = 0;
  bool read_only = false;
  uint64_t timer_generation = 0;  // a fired timer of an older generation is void
  uint32_t finish_failures = 0;   // consecutive failed Finish calls
  // Requests whose reply is still to be sent: (from coordinator, from number, request id).
  std::map<std::tuple<bool, uint32_t, uint64_t>, std::weak_ptr<Channel>> reply_routes;
  std::vector<uint64_t> outgoing_requests;  // this agent's request ids of its peer requests
  bool input_from_coordinator = false;      // the input being handled came from the coordinator
  bool forgotten = false;
  std::atomic<ts::ParticipantState> published_state{ts::ParticipantState::kInit};
  // The machine knows its transaction's participant list (the orphan scan reads it: an ABORT
  // without it was recorded by rule d and holds no branch the agent would finish itself).
  std::atomic<bool> published_knows_transaction{false};
  // The state last recorded, and when it became durable if it is WAIT or PRE in this run (the
  // time in that state is counted when the next record is durable).
  ts::ParticipantState timed_state = ts::ParticipantState::kInit;
  std::optional<Clock::SteadyTime> timed_since;
  // The orphan scan rolled this participant's branch back: a scan that listed the branch just
  // before must not roll it back (and count it) again.
  std::atomic<bool> orphan_rolled_back{false};
  std::atomic<bool> timer_armed{false};
};

class PeerLink;

class Agent::Impl {
 public:
  Impl(AgentOptions options, AgentDependencies deps)
      : options_(std::move(options)),
        deps_(deps),
        clock_(deps.env->clock()),
        strand_pool_(static_cast<size_t>(std::max(1, options_.strand_threads))),
        finish_pool_(static_cast<size_t>(std::max(1, options_.finish_threads))),
        timers_(clock_) {}
  ~Impl() { Stop(); }

  Status Listen(std::unique_ptr<net::Listener> given);
  void Recover();
  void StartAccepting() { accept_thread_ = std::thread([this] { AcceptLoop(); }); }
  // The next orphan scan, one interval from now (and each scan schedules the next).
  void ScheduleOrphanScan();
  void Stop();
  const std::string& address() const { return address_; }
  AgentCounters Counters() const;

  // Handles one frame's payload from `from`; false when it does not decode (the caller drops
  // the connection).
  bool HandlePayload(const std::string& payload, const std::shared_ptr<Channel>& from);
  void PeerUnreachable(const std::weak_ptr<Slot>& weak, uint32_t peer);
  void Count(const std::function<void(AgentCounters&)>& change) {
    std::lock_guard<std::mutex> lock(counters_mu_);
    change(counters_);
  }
  const AgentOptions& options() const { return options_; }
  const AgentDependencies& deps() const { return deps_; }
  Clock* clock() const { return clock_; }
  bool stopping() const { return stopping_.load(); }

 private:
  class LocalChannel;
  class ConnChannel;
  struct PendingRequest {
    std::weak_ptr<Slot> slot;
    uint32_t peer = 0;
    uint64_t machine_request_id = 0;
  };
  struct Reader {
    std::shared_ptr<net::Connection> connection;
    std::shared_ptr<std::atomic<bool>> done;
    std::thread thread;
  };

  void AcceptLoop();
  void Serve(const std::shared_ptr<net::Connection>& connection,
             const std::shared_ptr<std::atomic<bool>>& done);
  void RouteReply(uint64_t request_id, const MachineInput& input);
  void RouteRequest(const ts::AgentMessage& wire, const MachineInput& input,
                    const std::shared_ptr<Channel>& from);
  void Deliver(const std::shared_ptr<Slot>& slot, const ts::AgentMessage& wire,
               const MachineInput& input, const std::weak_ptr<Channel>& from);
  Status CheckCanCommit(const ts::CanCommitMessage& message) const;
  void SendError(const std::shared_ptr<Channel>& to, uint64_t request_id, const Status& why);
  std::shared_ptr<Slot> FindOrCreate(const Key& key);
  std::optional<std::string> AgentOfRm(const std::string& rm) const;

  // Queues `fn` on the slot's strand. An idle strand runs on a pool thread, or right here when
  // this thread is the reader of a coordinator's connection (RunsStrandsHere): that reader has
  // nothing else to do until it has answered (the coordinator sends one request at a time on a
  // connection), and running the input here spares a thread hand-off on every CanCommit and
  // PreCommit. A peer's connection carries many participants' messages at once: its reader
  // always posts, so that one slow record never holds up the others.
  template <typename Fn>
  void Post(const std::shared_ptr<Slot>& slot, Fn fn) {
    {
      std::lock_guard<std::mutex> lock(slot->strand_mu);
      slot->strand_queue.emplace_back(std::move(fn));
      if (slot->strand_running) return;  // the running drain takes it
      slot->strand_running = true;
    }
    if (t_runs_strands_here) {
      t_runs_strands_here = false;  // what this strand posts on goes to the pool
      RunStrand(*slot);
      t_runs_strands_here = true;
      return;
    }
    strand_pool_.Post([slot] { RunStrand(*slot); });
  }
  // Set on a coordinator connection's reader thread while it handles a message (see Post).
  static thread_local bool t_runs_strands_here;
  // Runs the slot's queued inputs until none is left (one pool thread per slot at a time).
  static void RunStrand(Slot& slot) {
    for (;;) {
      std::function<void()> next;
      {
        std::lock_guard<std::mutex> lock(slot.strand_mu);
        if (slot.strand_queue.empty()) {
          slot.strand_running = false;
          return;
        }
        next = std::move(slot.strand_queue.front());
        slot.strand_queue.pop_front();
      }
      next();
    }
  }
  // Strand only.
  void Execute(const std::shared_ptr<Slot>& slot, ts::Effects effects);
  Status AppendState(Slot& slot, const ts::RecordState& wanted);
  // `state` is durable: counts the time the participant spent in WAIT or PRE before it.
  void TimeStateChange(Slot& slot, ts::ParticipantState state);
  void SendFromMachine(const std::shared_ptr<Slot>& slot, const ts::Send& send);
  void SendToPeer(const std::shared_ptr<Slot>& slot, uint32_t peer, const std::string& payload,
                  bool notify_unreachable);
  void StartFinish(const std::shared_ptr<Slot>& slot, bool commit);
  void ArmTimer(const std::shared_ptr<Slot>& slot);
  void RecordHeuristic(Slot& slot, const ts::ReportHeuristicMixed& report);
  void RecordDone(const std::shared_ptr<Slot>& slot);
  // `outcome`: the decision of a participant forgotten after its done record, kept as a
  // tombstone to answer late messages about it.
  void Forget(const std::shared_ptr<Slot>& slot,
              std::optional<ts::ParticipantState> outcome = std::nullopt);
  void AnswerForgotten(const ts::AgentMessage& wire, const MachineInput& input,
                       ts::ParticipantState outcome, const std::shared_ptr<Channel>& to);
  void Publish(Slot& slot) {
    if (!slot.machine) return;
    slot.published_state.store(slot.machine->state());
    slot.published_knows_transaction.store(slot.machine->participant_count() > 0);
  }

  // The orphan scan (agent.h, "Orphan scan"): scheduled on the timers, run on the finish pool.
  void ScanForOrphans();
  // Strand only: records ABORT for an unknown participant (rule d), then rolls its branch back.
  void AbortOrphan(const std::shared_ptr<Slot>& slot, const std::string& rm_name);
  // Rolls `branch` back on the agent's own session (no fence), unless a rollback of it is
  // running or, for the participant `slot` (may be null), has finished it; a success marks
  // `slot` before the branch leaves the running set. Counted and logged.
  void RollBackOrphan(const Xid& branch, const std::string& rm_name, std::shared_ptr<Slot> slot);

  std::shared_ptr<PeerLink> LinkFor(const std::string& agent);

  const AgentOptions options_;
  const AgentDependencies deps_;
  Clock* const clock_;
  // Declared first: destroyed last, after every slot that holds one of their strands.
  internal::WorkerPool strand_pool_;
  internal::WorkerPool finish_pool_;
  TimerQueue timers_;

  std::unique_ptr<net::Listener> listener_;
  std::string address_;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;  // one Stop at a time
  bool stopped_ = false;  // guarded by stop_mu_
  std::shared_ptr<LocalChannel> local_;

  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<Slot>> slots_;       // guarded by mu_
  std::map<uint64_t, PendingRequest> pending_;       // guarded by mu_
  uint64_t next_request_id_ = 1;                     // guarded by mu_
  std::map<std::string, std::shared_ptr<PeerLink>> links_;  // guarded by mu_
  std::list<Reader> readers_;                        // guarded by mu_
  // Done participants' outcomes (see AnswerForgotten), and their order for eviction.
  std::map<Key, ts::ParticipantState> tombstones_;   // guarded by mu_
  std::deque<Key> tombstone_order_;                  // guarded by mu_
  // Branches every scan since the first of them saw prepared and unknown to this agent, with
  // the time of that first sighting. Touched by the scan only (one scan at a time: the next is
  // scheduled when one ends).
  std::map<Xid, Clock::SteadyTime> orphan_first_seen_;
  // Orphan branches whose rollback is running: a scan made meanwhile still lists them prepared,
  // and must not start a second rollback of the same branch.
  std::set<Xid> orphan_rollbacks_;  // guarded by mu_

  mutable std::mutex counters_mu_;
  AgentCounters counters_;  // guarded by counters_mu_; participants_* filled in by Counters()
};

// ---- Channels ----

class Agent::Impl::ConnChannel final : public Channel {
 public:
  ConnChannel(std::shared_ptr<net::Connection> connection, std::string name)
      : connection_(std::move(connection)), name_(std::move(name)) {}
  void Send(const std::string& payload) override {
    Status sent = connection_->Send(payload);
    if (!sent.ok()) {
      XA_LOG(kDebug, kComponent) << "reply to " << Describe() << " lost: " << sent.ToString();
    }
  }
  const std::string& peer_name() const override { return name_; }
  std::string Describe() const override {
    return "'" + name_ + "' at " + connection_->peer_address();
  }

 private:
  std::shared_ptr<net::Connection> connection_;
  std::string name_;
};

// A peer participant served by this agent: its messages go straight to the dispatcher.
class Agent::Impl::LocalChannel final : public Channel,
                                        public std::enable_shared_from_this<LocalChannel> {
 public:
  explicit LocalChannel(Impl* impl) : impl_(impl) {}
  void Send(const std::string& payload) override {
    impl_->HandlePayload(payload, shared_from_this());
  }
  const std::string& peer_name() const override { return impl_->options().name; }
  std::string Describe() const override { return "this agent"; }

 private:
  Impl* impl_;
};

// The outgoing connection to one peer agent, with its queue, worker and reader.
class PeerLink final : public Channel, public std::enable_shared_from_this<PeerLink> {
 public:
  PeerLink(Agent::Impl* impl, std::string agent, std::string address)
      : impl_(impl), agent_(std::move(agent)), address_(std::move(address)) {}
  ~PeerLink() override { Stop(); }

  void Start() { worker_ = std::thread([this] { Loop(); }); }

  void Stop() {
    std::shared_ptr<net::Connection> connection;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
      connection = connection_;
      changed_.notify_all();
    }
    if (connection) connection->Close();
    if (worker_.joinable()) worker_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      connection = connection_;
    }
    if (connection) connection->Close();
    if (reader_.joinable()) reader_.join();
  }

  // A request of `slot` to participant `peer`: told OnPeerUnreachable if it cannot be sent.
  void Enqueue(std::string payload, std::weak_ptr<Slot> slot, uint32_t peer) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back(Outgoing{std::move(payload), std::move(slot), peer, true});
    changed_.notify_all();
  }
  // A reply to a request that came on this connection.
  void Send(const std::string& payload) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.push_back(Outgoing{payload, {}, 0, false});
    changed_.notify_all();
  }
  const std::string& peer_name() const override { return agent_; }
  std::string Describe() const override { return "agent '" + agent_ + "' at " + address_; }

 private:
  struct Outgoing {
    std::string payload;
    std::weak_ptr<Slot> slot;
    uint32_t peer = 0;
    bool notify = false;
  };

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::deque<Outgoing> batch;
      batch.swap(queue_);
      lock.unlock();
      SendBatch(batch);
      lock.lock();
    }
  }

  void SendBatch(std::deque<Outgoing>& batch) {
    bool retried = false;  // one reconnect per batch: a peer that breaks it twice is down
    while (!batch.empty()) {
      std::shared_ptr<net::Connection> connection = Connected();
      if (connection == nullptr) break;
      Status sent = connection->Send(batch.front().payload);
      if (sent.ok()) {
        batch.pop_front();
        continue;
      }
      XA_LOG(kInfo, kComponent) << "connection to " << Describe() << " broke: " << sent.ToString();
      Drop(connection);
      if (retried) break;
      retried = true;
    }
    for (const Outgoing& lost : batch) {
      if (lost.notify) impl_->PeerUnreachable(lost.slot, lost.peer);
    }
  }

  // The live connection, connecting (and authenticating) first when there is none; nullptr
  // when the peer cannot be reached.
  std::shared_ptr<net::Connection> Connected() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (connection_ != nullptr) return connection_;
      if (stopping_) return nullptr;
    }
    if (reader_.joinable()) reader_.join();  // the old connection's reader has ended
    Clock* clock = impl_->clock();
    const Clock::SteadyTime deadline = clock->DeadlineAfter(impl_->options().peer_timeout);
    Result<std::unique_ptr<net::Connection>> connected =
        impl_->deps().transport->Connect(address_, deadline);
    if (!connected.ok()) {
      XA_LOG(kWarning, kComponent) << "cannot reach " << Describe() << ": "
                                   << connected.status().ToString();
      return nullptr;
    }
    std::shared_ptr<net::Connection> connection(std::move(*connected));
    Result<std::string> server = net::AuthenticateAsClient(*connection, *impl_->deps().key,
                                                           impl_->options().name, deadline);
    if (!server.ok()) {
      XA_LOG(kWarning, kComponent) << "dropping the connection to " << Describe()
                                   << ": the handshake failed: " << server.status().ToString();
      if (server.status().code() != Code::kTimeout && server.status().code() != Code::kIoError) {
        impl_->Count([](AgentCounters& c) { ++c.peers_dropped_authentication; });
      }
      connection->Close();
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      connection->Close();
      return nullptr;
    }
    connection_ = connection;
    reader_ = std::thread([this, connection] { Read(connection); });
    return connection;
  }

  void Read(const std::shared_ptr<net::Connection>& connection) {
    while (true) {
      Result<std::string> payload = connection->Receive(Clock::kNoDeadline);
      if (!payload.ok()) {
        if (payload.status().code() == Code::kCorruption) {
          XA_LOG(kWarning, kComponent) << "dropping the connection to " << Describe()
                                       << ": damaged frame: " << payload.status().ToString();
          impl_->Count([](AgentCounters& c) { ++c.peers_dropped_malformed; });
        }
        break;
      }
      if (!impl_->HandlePayload(*payload, shared_from_this())) break;
    }
    Drop(connection);
  }

  void Drop(const std::shared_ptr<net::Connection>& connection) {
    connection->Close();
    std::lock_guard<std::mutex> lock(mu_);
    if (connection_ == connection) connection_.reset();
  }

  Agent::Impl* const impl_;
  const std::string agent_;
  const std::string address_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Outgoing> queue_;                    // guarded by mu_
  std::shared_ptr<net::Connection> connection_;   // guarded by mu_
  bool stopping_ = false;                         // guarded by mu_
  std::thread worker_;
  std::thread reader_;  // the worker's (and Stop's, after the worker ended)
};

// ---- Start, listen, recover, stop ----

Status Agent::Impl::Listen(std::unique_ptr<net::Listener> given) {
  local_ = std::make_shared<LocalChannel>(this);
  if (given != nullptr) {
    listener_ = std::move(given);
    address_ = listener_->address();
    return Status::Ok();
  }
  Result<std::unique_ptr<net::Listener>> listener =
      deps_.transport->Listen(options_.listen_address);
  if (!listener.ok()) {
    return listener.status().WithContext("agent '" + options_.name + "' cannot listen on " +
                                         options_.listen_address);
  }
  listener_ = std::move(*listener);
  address_ = listener_->address();
  return Status::Ok();
}

void Agent::Impl::Recover() {
  const LogState state = deps_.log->State();
  for (const auto& [branch, record] : state.open_participants) {
    const bool has_wait = !record.participants.empty();
    std::optional<uint32_t> number =
        has_wait ? std::optional<uint32_t>(record.participant_number) : ParticipantNumberOf(branch);
    if (!number) {
      XA_LOG_XID(kError, kComponent, branch)
          << "the log holds a participant whose branch Xid names no participant number; left "
             "alone (check the log with xa-log)";
      continue;
    }
    ts::ParticipantState recovered_state = ts::ParticipantState::kWait;
    if (record.type == RecordType::kParticipantPreCommit) {
      recovered_state = ts::ParticipantState::kPre;
    } else if (record.type == RecordType::kParticipantDecision) {
      recovered_state = record.outcome == Outcome::kCommitted ? ts::ParticipantState::kCommit
                                                              : ts::ParticipantState::kAbort;
    }
    std::shared_ptr<Slot> slot = FindOrCreate(Key{branch.Global(), *number});
    slot->branch = branch;
    slot->participants = record.participants;
    slot->fence_session_id = record.fence_session_id;
    slot->read_only = record.read_only;
    ts::RecoveredParticipant recovered;
    recovered.number = *number;
    recovered.participant_count = static_cast<uint32_t>(record.participants.size());
    recovered.state = recovered_state;
    recovered.has_branch = has_wait;
    recovered.incarnation = deps_.incarnation;
    recovered.coordinator_knows_outcome = record.coordinator_knows_outcome;
    recovered.branch_finished = record.branch_finished;
    slot->machine.emplace(ts::ParticipantMachine::Recovered(recovered));
    slot->timed_state = recovered_state;  // entered before the restart: not timed
    Publish(*slot);
    Count([](AgentCounters& c) { ++c.participants_recovered; });
    XA_LOG_XID(kInfo, kComponent, branch)
        << "recovered participant " << *number << " in state " << StateName(recovered_state)
        << (record.coordinator_knows_outcome ? " (sent by the coordinator)" : "")
        << " (incarnation " << deps_.incarnation << ")";
    Post(slot, [this, slot] { Execute(slot, slot->machine->OnRestart()); });
  }
}

void Agent::Impl::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  if (listener_) listener_->Close();
  if (accept_thread_.joinable()) accept_thread_.join();
  std::list<Reader> readers;
  std::map<std::string, std::shared_ptr<PeerLink>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    readers.swap(readers_);
    links.swap(links_);
  }
  for (Reader& reader : readers) reader.connection->Close();
  for (Reader& reader : readers) {
    if (reader.thread.joinable()) reader.thread.join();
  }
  for (auto& [name, link] : links) link->Stop();
  timers_.Stop();
  strand_pool_.Stop();
  finish_pool_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();
  slots_.clear();
}

AgentCounters Agent::Impl::Counters() const {
  AgentCounters snapshot;
  {
    std::lock_guard<std::mutex> lock(counters_mu_);
    snapshot = counters_;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [key, slot] : slots_) {
    if (slot->timer_armed.load()) ++snapshot.participants_with_timer;
    switch (slot->published_state.load()) {
      case ts::ParticipantState::kInit:
        ++snapshot.participants_init;
        break;
      case ts::ParticipantState::kWait:
        ++snapshot.participants_wait;
        break;
      case ts::ParticipantState::kPre:
        ++snapshot.participants_pre;
        break;
      case ts::ParticipantState::kCommit:
        ++snapshot.participants_commit;
        break;
      case ts::ParticipantState::kAbort:
        ++snapshot.participants_abort;
        break;
    }
  }
  return snapshot;
}

// ---- Connections ----

void Agent::Impl::AcceptLoop() {
  while (true) {
    Result<std::unique_ptr<net::Connection>> accepted = listener_->Accept(Clock::kNoDeadline);
    if (!accepted.ok()) {
      if (!stopping_) {
        XA_LOG(kError, kComponent) << "agent '" << options_.name << "' stops accepting on "
                                   << address_ << ": " << accepted.status().ToString();
      }
      return;
    }
    std::shared_ptr<net::Connection> connection(std::move(*accepted));
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      connection->Close();
      return;
    }
    // Reap the readers of connections that ended.
    for (auto it = readers_.begin(); it != readers_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = readers_.erase(it);
      } else {
        ++it;
      }
    }
    readers_.push_back(Reader{connection, done, {}});
    readers_.back().thread = std::thread([this, connection, done] { Serve(connection, done); });
  }
}

void Agent::Impl::Serve(const std::shared_ptr<net::Connection>& connection,
                        const std::shared_ptr<std::atomic<bool>>& done) {
  Result<std::string> client = net::AuthenticateAsServer(
      *connection, *deps_.key, options_.name, clock_->DeadlineAfter(options_.peer_timeout));
  if (!client.ok()) {
    if (!stopping_) {
      XA_LOG(kWarning, kComponent) << "dropping the connection from " << connection->peer_address()
                                   << ": the handshake failed: " << client.status().ToString();
      Count([](AgentCounters& c) { ++c.peers_dropped_authentication; });
    }
    connection->Close();
    done->store(true);
    return;
  }
  auto channel = std::make_shared<ConnChannel>(connection, *client);
  // A coordinator (or a recovery tool) is any client that is not an agent of the directory.
  const bool from_coordinator = options_.address_of_agent.count(*client) == 0;
  while (true) {
    Result<std::string> payload = connection->Receive(Clock::kNoDeadline);
    if (!payload.ok()) {
      if (payload.status().code() == Code::kCorruption) {
        XA_LOG(kWarning, kComponent) << "dropping the connection from " << channel->Describe()
                                     << ": damaged frame: " << payload.status().ToString();
        Count([](AgentCounters& c) { ++c.peers_dropped_malformed; });
      }
      break;
    }
    t_runs_strands_here = from_coordinator;
    const bool keep = HandlePayload(*payload, channel);
    t_runs_strands_here = false;
    if (!keep) break;
  }
  connection->Close();
  done->store(true);
}

thread_local bool Agent::Impl::t_runs_strands_here = false;

// ---- Routing ----

bool Agent::Impl::HandlePayload(const std::string& payload, const std::shared_ptr<Channel>& from) {
  Result<ts::AgentMessage> wire = ts::DecodeAgentMessage(payload);
  if (!wire.ok()) {
    XA_LOG(kWarning, kComponent) << "dropping the connection of " << from->Describe()
                                 << ": malformed message: " << wire.status().ToString();
    Count([](AgentCounters& c) { ++c.peers_dropped_malformed; });
    return false;
  }
  if (const auto* error = std::get_if<ts::ErrorMessage>(&wire->body)) {
    XA_LOG(kWarning, kComponent) << from->Describe() << " answered request " << wire->request_id
                                 << " with an error: " << CodeName(error->code) << ": "
                                 << error->message;
    return true;
  }
  Result<MachineInput> input = FromWire(*wire);
  if (!input.ok()) {
    XA_LOG(kWarning, kComponent) << "ignoring a " << ts::AgentMessageTypeName(ts::TypeOf(*wire))
                                 << " from " << from->Describe() << ": "
                                 << input.status().ToString();
    return true;
  }
  if (std::holds_alternative<ts::StateReply>(input->message) ||
      std::holds_alternative<ts::Ack>(input->message)) {
    RouteReply(wire->request_id, *input);
  } else {
    RouteRequest(*wire, *input, from);
  }
  return true;
}

void Agent::Impl::RouteReply(uint64_t request_id, const MachineInput& input) {
  PendingRequest pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) {
      XA_LOG(kDebug, kComponent) << "reply to request " << request_id
                                 << ", which no participant here is waiting for: ignored";
      return;
    }
    pending = it->second;
    pending_.erase(it);
  }
  std::shared_ptr<Slot> slot = pending.slot.lock();
  if (slot == nullptr) return;
  if (input.global != slot->key.global || input.participant != pending.peer) {
    XA_LOG_XID(kWarning, kComponent, slot->branch)
        << "reply to request " << request_id << " names participant " << input.participant
        << " of " << input.global.ToString() << ", not the peer P" << pending.peer
        << " asked: ignored";
    return;
  }
  Post(slot, [this, slot, pending, input] {
    if (slot->forgotten) return;
    slot->input_from_coordinator = false;
    ts::Effects effects = std::visit(
        Overloaded{
            [&](ts::StateReply reply) {
              reply.request_id = pending.machine_request_id;
              return slot->machine->OnStateReply(pending.peer, reply);
            },
            [&](ts::Ack ack) {
              ack.request_id = pending.machine_request_id;
              return slot->machine->OnAck(ts::Endpoint::Participant(pending.peer), ack);
            },
            [](const auto&) { return ts::Effects{}; },
        },
        input.message);
    Execute(slot, std::move(effects));
  });
}

Status Agent::Impl::CheckCanCommit(const ts::CanCommitMessage& message) const {
  const Participant& own = message.participants[message.participant];
  std::optional<std::string> agent = AgentOfRm(own.rm_name);
  if (agent != options_.name) {
    return Status(Code::kConfig,
                  "participant " + std::to_string(message.participant) + " of " +
                      message.xid.ToString() + " is of resource manager '" + own.rm_name +
                      "', which agent '" + options_.name + "' does not serve (its directory " +
                      (agent ? "maps it to agent '" + *agent + "'"
                             : std::string("has no such resource manager")) +
                      "): make the coordinator's directory the same as the agents'");
  }
  if (own.branch != message.xid.WithBranch(static_cast<uint16_t>(message.participant))) {
    return Status(Code::kInval, "participant " + std::to_string(message.participant) + " of " +
                                    message.xid.ToString() + " has branch " +
                                    own.branch.ToString() +
                                    ", not the global Xid's branch of its number");
  }
  return Status::Ok();
}

void Agent::Impl::SendError(const std::shared_ptr<Channel>& to, uint64_t request_id,
                            const Status& why) {
  ts::AgentMessage reply;
  reply.request_id = request_id;
  std::string text = why.message().substr(0, ts::kMaxAgentTextSize);
  reply.body = ts::ErrorMessage{why.code(), std::move(text)};
  Result<std::string> payload = ts::EncodeAgentMessage(reply);
  if (payload.ok()) to->Send(*payload);
}

void Agent::Impl::RouteRequest(const ts::AgentMessage& wire, const MachineInput& input,
                               const std::shared_ptr<Channel>& from) {
  if (const auto* can_commit = std::get_if<ts::CanCommitMessage>(&wire.body)) {
    Status allowed = CheckCanCommit(*can_commit);
    if (!allowed.ok()) {
      XA_LOG_XID(kWarning, kComponent, can_commit->participants[can_commit->participant].branch)
          << "refusing the CanCommit of " << from->Describe() << ": " << allowed.ToString();
      Count([](AgentCounters& c) { ++c.refused_requests; });
      SendError(from, wire.request_id, allowed);
      return;
    }
  }
  const Key key{input.global, input.participant};
  std::optional<ts::ParticipantState> forgotten_outcome;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.count(key) == 0) {
      auto tombstone = tombstones_.find(key);
      if (tombstone != tombstones_.end()) forgotten_outcome = tombstone->second;
    }
  }
  if (forgotten_outcome) {
    AnswerForgotten(wire, input, *forgotten_outcome, from);
    return;
  }
  std::shared_ptr<Slot> slot = FindOrCreate(key);
  if (slot == nullptr) return;  // stopping
  std::weak_ptr<Channel> channel = from;
  Post(slot, [this, slot, wire, input, channel] { Deliver(slot, wire, input, channel); });
}

void Agent::Impl::Deliver(const std::shared_ptr<Slot>& slot, const ts::AgentMessage& wire,
                          const MachineInput& input, const std::weak_ptr<Channel>& from) {
  std::shared_ptr<Channel> channel = from.lock();
  if (slot->forgotten) {
    // Forgotten after this message was routed to it: route again (to a new participant).
    if (channel) RouteRequest(wire, input, channel);
    return;
  }
  if (const auto* can_commit = std::get_if<ts::CanCommitMessage>(&wire.body)) {
    if (slot->participants.empty()) {
      slot->participants = can_commit->participants;
      slot->fence_session_id = can_commit->fence_session_id;
      slot->read_only = can_commit->read_only;
    }
  }
  // The wire names the sender of the requests whose sender matters (FromWire): StateQuery,
  // MoveToPre, DoCommit, Abort. CanCommit and PreCommit come from the coordinator only.
  const ts::Endpoint sender = input.asker.value_or(ts::Endpoint::Coordinator());
  if (channel) {
    if (slot->reply_routes.size() >= kMaxReplyRoutes) {
      slot->reply_routes.erase(slot->reply_routes.begin());
    }
    slot->reply_routes[{sender.coordinator, sender.number, wire.request_id}] = channel;
  }
  slot->input_from_coordinator = sender.coordinator;
  ts::ParticipantMachine& machine = *slot->machine;
  ts::Effects effects = std::visit(
      Overloaded{
          [&](const ts::CanCommit& m) { return machine.OnCanCommit(m); },
          [&](const ts::PreCommit& m) { return machine.OnPreCommit(m); },
          [&](const ts::DoCommit& m) { return machine.OnDoCommit(sender, m); },
          [&](const ts::Abort& m) { return machine.OnAbort(sender, m); },
          [&](const ts::StateQuery& m) { return machine.OnStateQuery(sender, m); },
          [&](const ts::MoveToPre& m) {
            return sender.coordinator ? ts::Effects{} : machine.OnMoveToPre(sender.number, m);
          },
          [](const auto&) { return ts::Effects{}; },
      },
      input.message);
  Execute(slot, std::move(effects));
  // A participant that recorded nothing holds nothing: forget it at once.
  if (!slot->forgotten && slot->machine->state() == ts::ParticipantState::kInit &&
      !slot->machine->awaiting_record()) {
    Forget(slot);
  }
}

std::shared_ptr<Slot> Agent::Impl::FindOrCreate(const Key& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (it != slots_.end()) return it->second;
  if (stopping_) return nullptr;
  auto slot = std::make_shared<Slot>(key);
  slot->machine.emplace(key.number, deps_.incarnation);
  slots_.emplace(key, slot);
  return slot;
}

std::optional<std::string> Agent::Impl::AgentOfRm(const std::string& rm) const {
  auto it = options_.agent_of_rm.find(rm);
  if (it == options_.agent_of_rm.end()) return std::nullopt;
  return it->second;
}

// ---- Effects (on the participant's strand) ----

void Agent::Impl::Execute(const std::shared_ptr<Slot>& slot, ts::Effects effects) {
  std::deque<ts::Effect> todo(effects.begin(), effects.end());
  while (!todo.empty() && !slot->forgotten) {
    ts::Effect effect = std::move(todo.front());
    todo.pop_front();
    XA_LOG_XID(kTrace, kComponent, slot->branch)
        << "P" << slot->key.number << ": " << ts::ToString(effect);
    std::visit(
        Overloaded{
            [&](const ts::RecordState& record) {
              Status appended = AppendState(*slot, record);
              if (!appended.ok()) {
                XA_LOG_XID(kError, kComponent, slot->branch)
                    << "cannot record " << StateName(record.state) << " for participant "
                    << slot->key.number << ": " << appended.ToString()
                    << "; the participant waits until the agent is restarted";
                Count([](AgentCounters& c) { ++c.records_failed; });
                todo.clear();
                return;
              }
              TimeStateChange(*slot, record.state);
              if (ts::IsDecided(record.state) && !slot->input_from_coordinator) {
                const bool commit = record.state == ts::ParticipantState::kCommit;
                Count([&](AgentCounters& c) {
                  ++(commit ? c.terminations_committed : c.terminations_aborted);
                });
              }
              ts::Effects more = slot->machine->OnRecorded();
              todo.insert(todo.end(), more.begin(), more.end());
            },
            [&](const ts::Send& send) { SendFromMachine(slot, send); },
            [&](const ts::FinishBranch& finish) { StartFinish(slot, finish.commit); },
            [&](const ts::ArmTimer&) { ArmTimer(slot); },
            [&](const ts::CancelTimer&) {
              ++slot->timer_generation;
              slot->timer_armed = false;
            },
            [&](const ts::ReportHeuristicMixed& report) { RecordHeuristic(*slot, report); },
            [&](const ts::RecordDone&) { RecordDone(slot); },
        },
        effect);
  }
  Publish(*slot);
}

Status Agent::Impl::AppendState(Slot& slot, const ts::RecordState& wanted) {
  const ts::ParticipantState state = wanted.state;
  LogRecord record;
  record.xid = slot.branch;
  switch (state) {
    case ts::ParticipantState::kWait:
      record.type = RecordType::kParticipantWait;
      record.participants = slot.participants;
      record.participant_number = static_cast<uint16_t>(slot.key.number);
      record.fence_session_id = slot.fence_session_id;
      record.read_only = slot.read_only;
      break;
    case ts::ParticipantState::kPre:
      record.type = RecordType::kParticipantPreCommit;
      break;
    case ts::ParticipantState::kCommit:
    case ts::ParticipantState::kAbort:
      record.type = RecordType::kParticipantDecision;
      record.outcome = state == ts::ParticipantState::kCommit ? Outcome::kCommitted
                                                              : Outcome::kRolledBack;
      record.coordinator_knows_outcome = wanted.coordinator_knows_outcome;
      record.branch_finished = wanted.branch_finished;
      break;
    case ts::ParticipantState::kInit:
      return Status(Code::kInternal, "the machine asked to record INIT");
  }
  Result<uint64_t> lsn = deps_.log->Append(record);
  if (!lsn.ok()) return lsn.status();
  if (state == ts::ParticipantState::kWait) XA_CRASH_POINT(kAgentAfterWaitRecord);
  if (state == ts::ParticipantState::kPre) XA_CRASH_POINT(kAgentAfterPreRecord);
  if (ts::IsDecided(state)) XA_CRASH_POINT(kAgentAfterDecisionRecord);
  XA_LOG_XID(kDebug, kComponent, slot.branch)
      << "participant " << slot.key.number << " recorded " << StateName(state)
      << (record.coordinator_knows_outcome ? " (sent by the coordinator)" : "") << " at lsn "
      << *lsn;
  return Status::Ok();
}

void Agent::Impl::TimeStateChange(Slot& slot, ts::ParticipantState state) {
  if (state == slot.timed_state) return;  // a decision recorded again (the coordinator's)
  const Clock::SteadyTime now = clock_->SteadyNow();
  if (slot.timed_since) {
    const double seconds = std::chrono::duration<double>(now - *slot.timed_since).count();
    const bool was_wait = slot.timed_state == ts::ParticipantState::kWait;
    Count([&](AgentCounters& c) { (was_wait ? c.time_in_wait : c.time_in_pre).Add(seconds); });
  }
  slot.timed_state = state;
  slot.timed_since.reset();
  if (state == ts::ParticipantState::kWait || state == ts::ParticipantState::kPre) {
    slot.timed_since = now;
  }
}

void Agent::Impl::SendFromMachine(const std::shared_ptr<Slot>& slot, const ts::Send& send) {
  ts::AgentMessage wire = ToWire(send, slot->key.global, slot->key.number);
  if (IsReply(send.message)) {
    std::shared_ptr<Channel> channel;
    auto route = slot->reply_routes.find({send.to.coordinator, send.to.number, wire.request_id});
    if (route != slot->reply_routes.end()) {
      channel = route->second.lock();
      slot->reply_routes.erase(route);
    }
    Result<std::string> payload = ts::EncodeAgentMessage(wire);
    if (!payload.ok()) {
      XA_LOG_XID(kError, kComponent, slot->branch)
          << "cannot encode " << ts::ToString(send.message) << ": " << payload.status().ToString();
      return;
    }
    if (channel) {
      channel->Send(*payload);
    } else if (send.to.coordinator) {
      XA_LOG_XID(kDebug, kComponent, slot->branch)
          << ts::ToString(send.message)
          << " to the coordinator dropped: its connection is gone (it asks again)";
    } else {
      SendToPeer(slot, send.to.number, *payload, /*notify_unreachable=*/false);
    }
    return;
  }
  if (send.to.coordinator) {
    XA_LOG_XID(kWarning, kComponent, slot->branch)
        << "the machine sent a request (" << ts::ToString(send.message)
        << ") to the coordinator, which takes none: dropped";
    return;
  }
  // A request to a peer: under a request id of this agent, which routes the reply back here.
  const uint64_t machine_request_id = wire.request_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wire.request_id = next_request_id_++;
    pending_[wire.request_id] = PendingRequest{slot, send.to.number, machine_request_id};
  }
  slot->outgoing_requests.push_back(wire.request_id);
  Result<std::string> payload = ts::EncodeAgentMessage(wire);
  if (!payload.ok()) {
    XA_LOG_XID(kError, kComponent, slot->branch)
        << "cannot encode " << ts::ToString(send.message) << ": " << payload.status().ToString();
    return;
  }
  SendToPeer(slot, send.to.number, *payload, /*notify_unreachable=*/true);
}

void Agent::Impl::SendToPeer(const std::shared_ptr<Slot>& slot, uint32_t peer,
                             const std::string& payload, bool notify_unreachable) {
  std::optional<std::string> agent;
  if (peer < slot->participants.size()) agent = AgentOfRm(slot->participants[peer].rm_name);
  if (!agent) {
    XA_LOG_XID(kError, kComponent, slot->branch)
        << "participant " << peer << " of the transaction has no agent in the directory"
        << (peer < slot->participants.size()
                ? " (resource manager '" + slot->participants[peer].rm_name + "')"
                : std::string(" (no participant list)"))
        << ": message not sent";
    if (notify_unreachable) PeerUnreachable(slot, peer);
    return;
  }
  if (*agent == options_.name) {
    local_->Send(payload);
    return;
  }
  std::shared_ptr<PeerLink> link = LinkFor(*agent);
  if (link == nullptr) {
    if (notify_unreachable) PeerUnreachable(slot, peer);
    return;
  }
  if (notify_unreachable) {
    link->Enqueue(payload, slot, peer);
  } else {
    link->Send(payload);
  }
}

std::shared_ptr<PeerLink> Agent::Impl::LinkFor(const std::string& agent) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return nullptr;
  auto it = links_.find(agent);
  if (it != links_.end()) return it->second;
  auto address = options_.address_of_agent.find(agent);
  if (address == options_.address_of_agent.end()) {
    XA_LOG(kError, kComponent) << "agent '" << agent
                               << "' has no address in the directory: its participants are "
                                  "unreachable";
    return nullptr;
  }
  auto link = std::make_shared<PeerLink>(this, agent, address->second);
  link->Start();
  links_.emplace(agent, link);
  return link;
}

void Agent::Impl::PeerUnreachable(const std::weak_ptr<Slot>& weak, uint32_t peer) {
  Count([](AgentCounters& c) { ++c.peer_unreachable; });
  std::shared_ptr<Slot> slot = weak.lock();
  if (slot == nullptr) return;
  Post(slot, [this, slot, peer] {
    if (slot->forgotten) return;
    slot->input_from_coordinator = false;
    Execute(slot, slot->machine->OnPeerUnreachable(peer));
  });
}

void Agent::Impl::StartFinish(const std::shared_ptr<Slot>& slot, bool commit) {
  if (slot->key.number >= slot->participants.size()) {
    XA_LOG_XID(kError, kComponent, slot->branch)
        << "asked to finish a branch whose resource manager is unknown (no participant list): "
           "left prepared";
    return;
  }
  const std::string rm = slot->participants[slot->key.number].rm_name;
  finish_pool_.Post([this, slot, commit, rm, branch = slot->branch,
                            fence = slot->fence_session_id, read_only = slot->read_only] {
    if (fence != 0) Count([](AgentCounters& c) { ++c.fences; });
    Status finished = deps_.finisher->Finish(rm, branch, fence, read_only, commit);
    Post(slot, [this, slot, commit, finished] {
      if (slot->forgotten) return;
      if (finished.ok()) {
        XA_CRASH_POINT(kAgentAfterBranchFinished);
        slot->finish_failures = 0;
        Count([](AgentCounters& c) { ++c.branches_finished; });
        XA_LOG_XID(kInfo, kComponent, slot->branch)
            << "participant " << slot->key.number << ": branch "
            << (commit ? "committed" : "rolled back") << " by the agent";
        slot->input_from_coordinator = false;
        Execute(slot, slot->machine->OnBranchFinished());
        return;
      }
      ++slot->finish_failures;
      Count([](AgentCounters& c) { ++c.finish_failures; });
      const std::chrono::microseconds wait = internal::BackoffDelay(
          options_.finish_retry_min, 2.0, options_.finish_retry_max, slot->finish_failures);
      XA_LOG_XID(kWarning, kComponent, slot->branch)
          << "participant " << slot->key.number << ": "
          << (commit ? "committing" : "rolling back") << " the branch failed (attempt "
          << slot->finish_failures << "), trying again in " << wait.count()
          << " us: " << finished.ToString();
      timers_.Schedule(clock_->DeadlineAfter(wait), [this, slot, commit] {
        Post(slot, [this, slot, commit] {
          if (!slot->forgotten) StartFinish(slot, commit);
        });
      });
    });
  });
}

void Agent::Impl::ArmTimer(const std::shared_ptr<Slot>& slot) {
  const uint64_t generation = ++slot->timer_generation;
  slot->timer_armed = true;
  timers_.Schedule(clock_->DeadlineAfter(options_.termination_timeout), [this, slot, generation] {
    Post(slot, [this, slot, generation] {
      if (slot->forgotten || slot->timer_generation != generation) return;
      slot->timer_armed = false;
      slot->input_from_coordinator = false;
      Execute(slot, slot->machine->OnTimer());
    });
  });
}

void Agent::Impl::RecordHeuristic(Slot& slot, const ts::ReportHeuristicMixed& report) {
  LogRecord record;
  record.type = RecordType::kHeuristic;
  record.xid = slot.branch;
  record.outcome = Outcome::kHeuristicMixed;
  if (slot.key.number < slot.participants.size()) {
    record.participants.push_back(slot.participants[slot.key.number]);
  }
  if (!report.peer.coordinator && report.peer.number < slot.participants.size()) {
    record.participants.push_back(slot.participants[report.peer.number]);
  }
  record.reason = "agent '" + options_.name + "': participant " +
                  std::to_string(slot.key.number) + " holds " +
                  std::string(StateName(report.own)) + ", " + ts::ToString(report.peer) +
                  " holds " + std::string(StateName(report.peer_state)) +
                  " (a partition split the outcome)";
  Count([](AgentCounters& c) { ++c.heuristics; });
  XA_LOG_XID(kError, kComponent, slot.branch) << "heuristic-mixed outcome: " << record.reason;
  Result<uint64_t> lsn = deps_.log->Append(record);
  if (!lsn.ok()) {
    XA_LOG_XID(kError, kComponent, slot.branch)
        << "cannot record the heuristic outcome: " << lsn.status().ToString();
    Count([](AgentCounters& c) { ++c.records_failed; });
  }
}

void Agent::Impl::RecordDone(const std::shared_ptr<Slot>& slot) {
  // In this order, so that what an observer sees is always consistent: forgotten (its late
  // messages answered from the tombstone), then counted done, then the done record. Counters()
  // reads the counters before the participants, so a snapshot that counts it done never still
  // lists it by its state; and its open record leaves the log only once it is counted done.
  // Forgetting before the lazy record is harmless: a crash in between only makes the restarted
  // agent confirm the outcome again.
  Forget(slot, slot->machine->state());
  Count([](AgentCounters& c) { ++c.done; });
  LogRecord record;
  record.type = RecordType::kParticipantDone;
  record.xid = slot->branch;
  Status appended = deps_.log->AppendLazy(record);
  if (!appended.ok()) {
    // Harmless to lose (the agent finishes and tells its peers again after a restart), but
    // say so.
    XA_LOG_XID(kWarning, kComponent, slot->branch)
        << "cannot record participant " << slot->key.number << " done: " << appended.ToString();
  }
}

// A participant forgotten after its done record still answers late messages with its outcome:
// a peer whose confirmation was in flight, or that asks again, must not meet an INIT
// participant (rule d would record ABORT, and a DoCommit would be answered INIT for ever).
void Agent::Impl::AnswerForgotten(const ts::AgentMessage& wire, const MachineInput& input,
                                  ts::ParticipantState outcome,
                                  const std::shared_ptr<Channel>& to) {
  ts::OutMessage reply = ts::Ack{wire.request_id, outcome};
  if (std::holds_alternative<ts::CanCommit>(input.message)) {
    reply = ts::Vote{wire.request_id, outcome == ts::ParticipantState::kCommit};
  } else if (std::holds_alternative<ts::StateQuery>(input.message)) {
    reply = ts::StateReply{wire.request_id, outcome, false, false};
  }
  // The machine's sender does not matter: a reply names its sender (this participant).
  ts::AgentMessage answer = ToWire(ts::Send{ts::Endpoint::Coordinator(), reply}, input.global,
                                   input.participant);
  Result<std::string> payload = ts::EncodeAgentMessage(answer);
  if (payload.ok()) to->Send(*payload);
}

void Agent::Impl::Forget(const std::shared_ptr<Slot>& slot,
                         std::optional<ts::ParticipantState> outcome) {
  slot->forgotten = true;
  ++slot->timer_generation;
  slot->timer_armed = false;
  slot->reply_routes.clear();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(slot->key);
  if (it != slots_.end() && it->second == slot) slots_.erase(it);
  for (uint64_t id : slot->outgoing_requests) pending_.erase(id);
  slot->outgoing_requests.clear();
  if (outcome && tombstones_.emplace(slot->key, *outcome).second) {
    tombstone_order_.push_back(slot->key);
    if (tombstone_order_.size() > kMaxTombstones) {
      tombstones_.erase(tombstone_order_.front());
      tombstone_order_.pop_front();
    }
  }
}

// ---- Orphan scan ----

void Agent::Impl::ScheduleOrphanScan() {
  timers_.Schedule(clock_->DeadlineAfter(options_.orphan_scan_interval), [this] {
    finish_pool_.Post([this] {
      ScanForOrphans();
      ScheduleOrphanScan();
    });
  });
}

void Agent::Impl::ScanForOrphans() {
  // What a branch is to this agent when the scan finds it prepared.
  // kForgottenAbort: decided ABORT, finished and forgotten, and yet prepared: a late XA PREPARE
  // (a coordinator that asked the agents during its prepares and was stuck past their
  // termination, then died before it could roll the branch back). Its outcome is fixed, so it
  // is rolled back at once, without a record.
  enum class Known { kHeld, kUnknown, kAbortedUnknown, kForgottenAbort };
  auto known = [this](const Key& key) {
    std::lock_guard<std::mutex> lock(mu_);
    auto tombstone = tombstones_.find(key);
    if (tombstone != tombstones_.end()) {
      return tombstone->second == ts::ParticipantState::kAbort ? Known::kForgottenAbort
                                                               : Known::kHeld;
    }
    if (orphan_rollbacks_.count(key.global.WithBranch(static_cast<uint16_t>(key.number))) != 0) {
      return Known::kHeld;  // its rollback is running
    }
    auto it = slots_.find(key);
    if (it == slots_.end()) return Known::kUnknown;
    const Slot& slot = *it->second;
    if (slot.orphan_rolled_back.load()) return Known::kHeld;
    return slot.published_state.load() == ts::ParticipantState::kAbort &&
                   !slot.published_knows_transaction.load()
               ? Known::kAbortedUnknown
               : Known::kHeld;
  };
  const Clock::SteadyTime now = clock_->SteadyNow();
  std::map<Xid, Clock::SteadyTime> still_unknown;
  std::vector<std::pair<Key, std::string>> orphans;  // (participant, resource manager)
  std::vector<std::pair<Xid, std::string>> forgotten_aborts;  // (branch, resource manager)
  for (const auto& [rm_name, agent] : options_.agent_of_rm) {
    if (agent != options_.name || stopping_) continue;
    Result<std::vector<Xid>> prepared = deps_.lister->ListPrepared(rm_name);
    if (!prepared.ok()) {
      XA_LOG(kWarning, kComponent) << "orphan scan of '" << rm_name << "' failed (tried again in "
                                   << options_.orphan_scan_interval.count()
                                   << " us): " << prepared.status().ToString();
      Count([](AgentCounters& c) { ++c.orphan_scan_failures; });
      continue;
    }
    Count([](AgentCounters& c) { ++c.orphan_scans; });
    for (const Xid& branch : *prepared) {
      if (branch.format_id() != Xid::kThreePhaseFormatId) continue;  // not 3PC: not ours
      // Another deployment's coordinator made it: its own agents finish it, whatever its state.
      const std::optional<uint32_t> node = branch.NodeId();
      if (!node || options_.orphan_scan_nodes.count(*node) == 0) continue;
      std::optional<uint32_t> number = ParticipantNumberOf(branch);
      if (!number) continue;  // no participant of any 3PC transaction
      const Key key{branch.Global(), *number};
      switch (known(key)) {
        case Known::kHeld:
          break;
        case Known::kAbortedUnknown:
          orphans.emplace_back(key, rm_name);
          break;
        case Known::kForgottenAbort:
          forgotten_aborts.emplace_back(branch, rm_name);
          break;
        case Known::kUnknown: {
          auto seen = orphan_first_seen_.find(branch);
          const Clock::SteadyTime first = seen == orphan_first_seen_.end() ? now : seen->second;
          still_unknown.emplace(branch, first);
          if (now - first >= options_.termination_timeout) {
            orphans.emplace_back(key, rm_name);
          } else if (seen == orphan_first_seen_.end()) {
            XA_LOG_XID(kInfo, kComponent, branch)
                << "orphan scan: prepared on '" << rm_name
                << "' and unknown to this agent; rolled back if still so in "
                << options_.termination_timeout.count() << " us";
          }
          break;
        }
      }
    }
  }
  // Only sightings without a break count: a branch this scan did not see unknown starts over.
  orphan_first_seen_ = std::move(still_unknown);
  for (const auto& [branch, rm_name] : forgotten_aborts) {
    XA_LOG_XID(kInfo, kComponent, branch)
        << "orphan branch on '" << rm_name << "': prepared after its participant was decided "
        << "ABORT and forgotten (a late prepare); rolling it back";
    RollBackOrphan(branch, rm_name, nullptr);
  }
  for (const auto& [key, rm_name] : orphans) {
    orphan_first_seen_.erase(key.global.WithBranch(static_cast<uint16_t>(key.number)));
    std::shared_ptr<Slot> slot = FindOrCreate(key);
    if (slot == nullptr) return;  // stopping
    Post(slot, [this, slot, rm = rm_name] { AbortOrphan(slot, rm); });
  }
}

void Agent::Impl::AbortOrphan(const std::shared_ptr<Slot>& slot, const std::string& rm_name) {
  if (slot->forgotten) return;
  ts::ParticipantMachine& machine = *slot->machine;
  if (machine.state() == ts::ParticipantState::kInit && !machine.awaiting_record()) {
    // Rule d, as for a question about a transaction this agent has no record of: ABORT durable
    // first, so that a CanCommit arriving later is answered no. (Its StateReply goes to no one.)
    slot->input_from_coordinator = false;
    Execute(slot, machine.OnStateQuery(ts::Endpoint::Coordinator(), ts::StateQuery{}));
    if (slot->forgotten) return;
  }
  if (machine.state() == ts::ParticipantState::kInit) {
    if (!machine.awaiting_record()) Forget(slot);  // nothing recorded, nothing held
    return;
  }
  if (machine.state() != ts::ParticipantState::kAbort || machine.participant_count() > 0) {
    // A CanCommit (or the log) got here first: the participant's own rules finish the branch.
    XA_LOG_XID(kDebug, kComponent, slot->branch)
        << "orphan scan: participant " << slot->key.number << " is "
        << StateName(machine.state()) << " now; left to its own rules";
    return;
  }
  XA_LOG_XID(kInfo, kComponent, slot->branch)
      << "orphan branch on '" << rm_name << "': prepared, and no CanCommit ever reached this "
      << "agent; ABORT recorded, rolling it back";
  RollBackOrphan(slot->branch, rm_name, slot);
}

void Agent::Impl::RollBackOrphan(const Xid& branch, const std::string& rm_name,
                                 std::shared_ptr<Slot> slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Another scan's rollback of it is running or has finished it.
    if ((slot != nullptr && slot->orphan_rolled_back.load()) ||
        !orphan_rollbacks_.insert(branch).second) {
      return;
    }
  }
  finish_pool_.Post([this, branch, rm_name, slot = std::move(slot)] {
    Status result = deps_.finisher->Finish(rm_name, branch, /*fence_session_id=*/0,
                                           /*read_only=*/false, /*commit=*/false);
    {
      // Marked before it leaves the running set: a scan never sees it neither.
      std::lock_guard<std::mutex> lock(mu_);
      if (result.ok() && slot != nullptr) slot->orphan_rolled_back.store(true);
      orphan_rollbacks_.erase(branch);
    }
    if (result.ok()) {
      Count([](AgentCounters& c) { ++c.orphans_rolled_back; });
      XA_LOG_XID(kInfo, kComponent, branch)
          << "orphan branch on '" << rm_name << "' rolled back by the agent";
      return;
    }
    Count([](AgentCounters& c) { ++c.finish_failures; });
    XA_LOG_XID(kWarning, kComponent, branch)
        << "rolling back the orphan branch on '" << rm_name
        << "' failed (the next orphan scan tries again): " << result.ToString();
  });
}

// ---- Agent ----

void StateDurations::Add(double seconds) {
  for (size_t i = 0; i < kStateDurationBoundsSeconds.size(); ++i) {
    if (seconds <= kStateDurationBoundsSeconds[i]) ++at_most[i];
  }
  ++count;
  sum_seconds += seconds;
}

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options, AgentDependencies deps,
                                            std::unique_ptr<net::Listener> listener) {
  if (deps.env == nullptr || deps.log == nullptr || deps.transport == nullptr ||
      deps.key == nullptr || deps.finisher == nullptr) {
    return Status(Code::kInval, "Agent::Start needs an env, a log, a transport, a key and a "
                                "branch finisher");
  }
  if (options.name.empty()) return Status(Code::kInval, "the agent needs a name");
  if (options.termination_timeout <= std::chrono::microseconds::zero() ||
      options.peer_timeout <= std::chrono::microseconds::zero() ||
      options.finish_retry_min <= std::chrono::microseconds::zero() ||
      options.finish_retry_max < options.finish_retry_min ||
      (deps.lister != nullptr &&
       options.orphan_scan_interval <= std::chrono::microseconds::zero())) {
    return Status(Code::kInval, "the agent's timeouts (and, with a lister, its orphan scan "
                                "interval) must be positive and finish_retry_max at least "
                                "finish_retry_min");
  }
  auto impl = std::make_unique<Impl>(std::move(options), deps);
  XA_RETURN_IF_ERROR(impl->Listen(std::move(listener)));
  impl->Recover();
  impl->StartAccepting();
  if (deps.lister != nullptr) impl->ScheduleOrphanScan();
  XA_LOG(kInfo, kComponent) << "agent '" << impl->options().name << "' listening on "
                            << impl->address() << " (incarnation " << deps.incarnation << ")";
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() { Stop(); }
void Agent::Stop() { impl_->Stop(); }
const std::string& Agent::address() const { return impl_->address(); }
AgentCounters Agent::counters() const { return impl_->Counters(); }

}  // namespace xa::agent
