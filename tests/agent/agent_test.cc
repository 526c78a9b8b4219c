// The participant agent's engine (daemons/agent/agent.h): several Agents in one process over real
// loopback TCP, each with its own DecisionLog in a temp directory and a recording fake
// BranchFinisher, and a test-side coordinator that speaks the wire messages over an
// authenticated connection.
//
// Time: every agent, and the TCP transport, run on one FakeClock, so a termination timer fires
// only when the test advances the clock, and the test advances it only once the agents are
// waiting on their timers (participants_with_timer). A round's answers therefore always arrive
// before its timeout, as the protocol assumes; the real time the tests wait is bounded by
// generous deadlines on conditions, never by a sleep that guesses.

#include "daemons/agent/agent.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemons/agent/incarnation.h"
#include "log/log_test_util.h"
#include "src/net/frame.h"
#include "src/net/peer_auth.h"
#include "src/net/transport.h"
#include "src/three_phase/agent_messages.h"
#include "testutil/fake_clock.h"
#include "testutil/status_matchers.h"

namespace xa::agent {
namespace {

namespace ts = three_phase;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using test::IsOk;
using test::StatusIs;

constexpr auto kTerminationTimeout = 1s;  // on the fake clock
constexpr auto kFinishRetryMin = 10ms;
constexpr auto kFinishRetryMax = 40ms;
constexpr auto kOrphanScanInterval = 300ms;  // on the fake clock
// Real time allowed for a condition to become true.
constexpr auto kConditionDeadline = 30s;

// Polls `condition` until it holds or the real-time deadline passes.
bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kConditionDeadline;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

// A fake database behind the agent's two seams: it records every Finish (and, as a database
// would, no longer lists a branch once finished), lists the branches the test prepared, and
// fails the calls the test says.
class RecordingFinisher final : public BranchFinisher, public PreparedBranchLister {
 public:
  struct Call {
    std::string rm_name;
    Xid branch;
    uint64_t fence_session_id = 0;
    bool read_only = false;
    bool commit = false;
    bool succeeded = false;
    Clock::SteadyTime at{};  // on the agent's clock
  };

  explicit RecordingFinisher(Clock* clock) : clock_(clock) {}

  Status Finish(const std::string& rm_name, const Xid& branch, uint64_t fence_session_id,
                bool read_only, bool commit) override {
    std::lock_guard<std::mutex> lock(mu_);
    Call call{rm_name,          branch, fence_session_id, read_only, commit, failures_left_ == 0,
              clock_->SteadyNow()};
    calls_.push_back(call);
    if (failures_left_ > 0) {
      --failures_left_;
      return Status(Code::kRmFail, "injected: the database is down");
    }
    prepared_[rm_name].erase(branch);
    return Status::Ok();
  }

  Result<std::vector<Xid>> ListPrepared(const std::string& rm_name) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (scan_failures_left_ > 0) {
      --scan_failures_left_;
      return Status(Code::kRmFail, "injected: the recover scan failed");
    }
    const std::set<Xid>& branches = prepared_[rm_name];
    return std::vector<Xid>(branches.begin(), branches.end());
  }

  // The database holds `branch` prepared (XA PREPARE ran on some session).
  void Prepare(const std::string& rm_name, const Xid& branch) {
    std::lock_guard<std::mutex> lock(mu_);
    prepared_[rm_name].insert(branch);
  }
  bool IsPrepared(const std::string& rm_name, const Xid& branch) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = prepared_.find(rm_name);
    return it != prepared_.end() && it->second.count(branch) != 0;
  }

  void FailNext(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_left_ = n;
  }
  void FailNextScans(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    scan_failures_left_ = n;
  }
  std::vector<Call> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  size_t successes() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const Call& call : calls_) n += call.succeeded ? 1 : 0;
    return n;
  }

 private:
  Clock* const clock_;
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  int failures_left_ = 0;
  int scan_failures_left_ = 0;
  std::map<std::string, std::set<Xid>> prepared_;
};

net::SharedKey Key(char fill) { return net::SharedKey::FromBytes(std::string(32, fill)).value(); }

std::string RmName(size_t i) { return "rm-" + std::to_string(i); }
std::string AgentName(size_t i) { return "agent-" + std::to_string(i); }
uint64_t FenceOf(size_t i) { return 1000 + i; }

// The test's coordinator: one authenticated connection to one agent.
class TestCoordinator {
 public:
  static std::unique_ptr<TestCoordinator> Connect(net::Transport* transport,
                                                  const net::SharedKey& key,
                                                  const std::string& address) {
    Result<std::unique_ptr<net::Connection>> connection =
        transport->Connect(address, Clock::kNoDeadline);
    EXPECT_THAT(connection, IsOk());
    if (!connection.ok()) return nullptr;
    Result<std::string> server =
        net::AuthenticateAsClient(**connection, key, "coordinator", Clock::kNoDeadline);
    EXPECT_THAT(server, IsOk());
    if (!server.ok()) return nullptr;
    return std::unique_ptr<TestCoordinator>(new TestCoordinator(std::move(*connection)));
  }

  // Sends `body` as request `id` and returns the reply with that id.
  ts::AgentMessage Request(uint64_t id, decltype(ts::AgentMessage::body) body) {
    ts::AgentMessage message;
    message.request_id = id;
    message.body = std::move(body);
    Result<std::string> payload = ts::EncodeAgentMessage(message);
    EXPECT_THAT(payload, IsOk());
    EXPECT_THAT(connection_->Send(*payload), IsOk());
    while (true) {
      // The connection is on the fake clock: a deadline would never pass. A lost reply shows as
      // the test's own timeout.
      Result<std::string> reply = connection_->Receive(Clock::kNoDeadline);
      EXPECT_THAT(reply, IsOk());
      if (!reply.ok()) return {};
      Result<ts::AgentMessage> decoded = ts::DecodeAgentMessage(*reply);
      EXPECT_THAT(decoded, IsOk());
      if (!decoded.ok()) return {};
      if (decoded->request_id == id) return *decoded;
    }
  }

  net::Connection& connection() { return *connection_; }

 private:
  explicit TestCoordinator(std::unique_ptr<net::Connection> connection)
      : connection_(std::move(connection)) {}
  std::unique_ptr<net::Connection> connection_;
};

// One agent and what it owns: its log directory, log, finisher.
struct AgentUnderTest {
  explicit AgentUnderTest(Clock* clock) : finisher(clock) {}
  std::string name;
  std::string address;
  test::ScratchDir dir;
  std::unique_ptr<DecisionLog> log;
  RecordingFinisher finisher;
  uint64_t incarnation = 0;
  std::unique_ptr<Agent> agent;
};

class AgentTest : public ::testing::Test {
 protected:
  AgentTest()
      : env_(Env::Default(), &clock_),
        transport_(net::NewTcpTransport(&clock_)),
        key_(Key('k')),
        global_(XidGenerator(7, &clock_).Next(Protocol::kThreePhase)) {}

  ~AgentTest() override {
    for (auto& agent : agents_) {
      if (agent->agent) agent->agent->Stop();
    }
  }

  // `n` agents, agent-i serving rm-i, on addresses reserved up front so that every agent knows
  // every other's address (and a restarted agent comes back on its own).
  void StartAgents(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      auto agent = std::make_unique<AgentUnderTest>(&clock_);
      agent->name = AgentName(i);
      agent->address = ReserveAddress();
      directory_rms_[RmName(i)] = agent->name;
      directory_agents_[agent->name] = agent->address;
      agents_.push_back(std::move(agent));
    }
    for (size_t i = 0; i < n; ++i) ASSERT_NO_FATAL_FAILURE(StartAgent(i));
  }

  // A free port below the kernel's ephemeral range: port 0 would hand out a port that the
  // kernel may give, once released, to any outgoing connection as its local port (an agent's,
  // or another program's), and the agent could then not listen on it, nor a restarted agent
  // come back on it.
  std::string ReserveAddress() {
    int low = 32768;
    if (FILE* range = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
      if (std::fscanf(range, "%d", &low) != 1) low = 32768;
      std::fclose(range);
    }
    std::mt19937 random(static_cast<unsigned>(::getpid()) ^
                        static_cast<unsigned>(
                            std::chrono::steady_clock::now().time_since_epoch().count()));
    std::uniform_int_distribution<int> port(std::max(1024, low - 10000),
                                            std::max(1025, low - 1000));
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const int candidate = port(random);
      std::string address = "127.0.0.1:" + std::to_string(candidate);
      if (directory_agents_taken_.count(address) != 0 || !PortIsFree(candidate)) continue;
      directory_agents_taken_.insert(address);
      return address;
    }
    ADD_FAILURE() << "no free port below " << low;
    return "127.0.0.1:0";
  }

  // Binds a plain socket to the port and closes it: close(2) releases a listening port at once
  // (the transport's Close hands the close to its I/O thread, so an agent listening right after
  // it could find the port still taken).
  static bool PortIsFree(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool free =
        ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0 &&
        ::listen(fd, 1) == 0;
    ::close(fd);
    return free;
  }

  void StartAgent(size_t i) {
    AgentUnderTest& a = *agents_[i];
    LogOptions log_options;
    log_options.dir = a.dir.log_dir();
    log_options.env = &env_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    a.log = std::move(*log);
    Result<uint64_t> incarnation = NextIncarnation(a.dir.log_dir(), &env_);
    ASSERT_THAT(incarnation, IsOk());
    a.incarnation = *incarnation;
    AgentOptions options;
    options.name = a.name;
    options.listen_address = a.address;
    options.agent_of_rm = directory_rms_;
    options.address_of_agent = directory_agents_;
    options.termination_timeout = kTerminationTimeout;
    options.peer_timeout = 1h;  // never passes on the fake clock while a handshake runs
    options.finish_retry_min = kFinishRetryMin;
    options.finish_retry_max = kFinishRetryMax;
    AgentDependencies deps;
    deps.env = &env_;
    deps.log = a.log.get();
    deps.transport = transport_.get();
    deps.key = &key_;
    deps.finisher = &a.finisher;
    if (scan_orphans_) {
      options.orphan_scan_interval = kOrphanScanInterval;
      options.orphan_scan_nodes = {7};  // the node of the test's coordinator (global_)
      deps.lister = &a.finisher;
    }
    deps.incarnation = a.incarnation;
    Result<std::unique_ptr<Agent>> agent = Agent::Start(options, deps);
    ASSERT_THAT(agent, IsOk());
    a.agent = std::move(*agent);
    ASSERT_EQ(a.agent->address(), a.address);
  }

  // A crash as far as the peers can tell: the agent stops and its log is closed.
  void StopAgent(size_t i) {
    agents_[i]->agent->Stop();
    agents_[i]->agent.reset();
    agents_[i]->log.reset();
  }

  std::vector<Participant> Participants() const {
    std::vector<Participant> list;
    for (size_t i = 0; i < agents_.size(); ++i) {
      list.push_back(Participant{RmName(i), global_.WithBranch(static_cast<uint16_t>(i))});
    }
    return list;
  }
  Xid Branch(size_t i) const { return global_.WithBranch(static_cast<uint16_t>(i)); }

  TestCoordinator& CoordinatorTo(size_t i) {
    if (!coordinators_[i]) {
      coordinators_[i] = TestCoordinator::Connect(transport_.get(), key_, agents_[i]->address);
    }
    return *coordinators_[i];
  }

  ts::AgentMessage CanCommit(size_t i) {
    ts::CanCommitMessage message;
    message.xid = global_;
    message.participant = static_cast<uint32_t>(i);
    message.participants = Participants();
    message.fence_session_id = FenceOf(i);
    return CoordinatorTo(i).Request(next_request_id_++, message);
  }
  ts::AgentMessage PreCommit(size_t i) {
    return CoordinatorTo(i).Request(next_request_id_++,
                                    ts::PreCommitMessage{global_, static_cast<uint32_t>(i)});
  }
  ts::AgentMessage DoCommit(size_t i, bool branch_done) {
    return CoordinatorTo(i).Request(
        next_request_id_++, ts::DoCommitMessage{global_, static_cast<uint32_t>(i), branch_done});
  }
  // The coordinator's question (its recovery's), never a backup round's.
  ts::AgentMessage StateQuery(size_t i) {
    ts::StateQueryMessage message;
    message.xid = global_;
    message.participant = static_cast<uint32_t>(i);
    message.asker = ts::kCoordinatorAsker;
    return CoordinatorTo(i).Request(next_request_id_++, message);
  }

  static void ExpectVoteYes(const ts::AgentMessage& reply, size_t i) {
    const auto* vote = std::get_if<ts::VoteMessage>(&reply.body);
    ASSERT_NE(vote, nullptr) << "reply type " << ts::AgentMessageTypeName(ts::TypeOf(reply));
    EXPECT_TRUE(vote->yes);
    EXPECT_EQ(vote->participant, i);
  }
  static void ExpectAck(const ts::AgentMessage& reply, size_t i, ts::ParticipantState state) {
    const auto* ack = std::get_if<ts::AckMessage>(&reply.body);
    ASSERT_NE(ack, nullptr) << "reply type " << ts::AgentMessageTypeName(ts::TypeOf(reply));
    EXPECT_EQ(ack->state, state);
    EXPECT_EQ(ack->participant, i);
  }
  static void ExpectStateReply(const ts::AgentMessage& reply, size_t i,
                               ts::ParticipantState state) {
    const auto* answer = std::get_if<ts::StateReplyMessage>(&reply.body);
    ASSERT_NE(answer, nullptr) << "reply type " << ts::AgentMessageTypeName(ts::TypeOf(reply));
    EXPECT_EQ(answer->state, state) << ts::ParticipantStateName(answer->state);
    EXPECT_EQ(answer->participant, i);
  }

  // The participant's record in agent i's log (nullopt: none open).
  std::optional<LogRecord> OpenRecord(size_t i) const {
    LogState state = agents_[i]->log->State();
    auto it = state.open_participants.find(Branch(i));
    if (it == state.open_participants.end()) return std::nullopt;
    return it->second;
  }
  bool Decided(size_t i, Outcome outcome) const {
    std::optional<LogRecord> record = OpenRecord(i);
    return record && record->type == RecordType::kParticipantDecision &&
           record->outcome == outcome;
  }
  // Agent i's log says its COMMIT was sent by the coordinator itself.
  bool CommitTheCoordinatorKnows(size_t i) const {
    std::optional<LogRecord> record = OpenRecord(i);
    return Decided(i, Outcome::kCommitted) && record->coordinator_knows_outcome;
  }
  // Agent i's participant is done (forgotten) after it was decided with `outcome`: the log
  // closed it and the agent holds it no more.
  bool DoneAfter(size_t i) const {
    return !OpenRecord(i) && agents_[i]->agent->counters().done >= 1;
  }

  // Waits until every running agent's participant waits on its timer, then moves the clock
  // past the termination timeout: the timers fire with every answer to earlier messages in.
  void FireTerminationTimers(const std::vector<size_t>& which) {
    for (size_t i : which) {
      ASSERT_TRUE(WaitFor([&] { return agents_[i]->agent->counters().participants_with_timer >= 1; }))
          << AgentName(i) << " never armed its timer";
    }
    clock_.Advance(kTerminationTimeout + 1ms);
  }

  // No participant of any running agent waits on its timer.
  bool NoTimerArmed() const {
    for (const auto& agent : agents_) {
      if (agent->agent && agent->agent->counters().participants_with_timer != 0) return false;
    }
    return true;
  }

  // Advances the clock in small steps until `condition` holds: for retries and for confirmations
  // among decided participants, where an early timeout changes no outcome.
  bool AdvanceUntil(const std::function<bool()>& condition, std::chrono::microseconds step) {
    const auto deadline = std::chrono::steady_clock::now() + kConditionDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) return true;
      clock_.Advance(step);
      std::this_thread::sleep_for(1ms);
    }
    return condition();
  }

  void ExpectFinishedOnce(size_t i, bool commit) {
    std::vector<RecordingFinisher::Call> calls = agents_[i]->finisher.calls();
    size_t successes = 0;
    for (const RecordingFinisher::Call& call : calls) {
      EXPECT_EQ(call.rm_name, RmName(i));
      EXPECT_EQ(call.branch, Branch(i));
      EXPECT_EQ(call.fence_session_id, FenceOf(i)) << "the fence id from CanCommit";
      EXPECT_EQ(call.commit, commit);
      successes += call.succeeded ? 1 : 0;
    }
    EXPECT_EQ(successes, 1u) << AgentName(i) << " finished its branch " << successes << " times";
  }

  // Runs the timers until none is left (decided participants confirm their outcome to each
  // other, and a participant waiting only for the coordinator arms none), then a few periods
  // more: each participant in `which` still holds its COMMIT, which the coordinator never sent,
  // and is not done.
  void ExpectOnlyTheCoordinatorAwaited(const std::vector<size_t>& which) {
    auto all_committed = [&] {
      for (size_t i : which) {
        if (!Decided(i, Outcome::kCommitted)) return false;
      }
      return true;
    };
    ASSERT_TRUE(AdvanceUntil([&] { return all_committed() && NoTimerArmed(); },
                             kTerminationTimeout))
        << "a participant never decided, or keeps its timer although it awaits only the "
           "coordinator";
    for (int period = 0; period < 3; ++period) {
      clock_.Advance(kTerminationTimeout + 1ms);
      std::this_thread::sleep_for(5ms);
    }
    for (size_t i : which) {
      EXPECT_TRUE(Decided(i, Outcome::kCommitted)) << AgentName(i) << " forgot its COMMIT";
      EXPECT_FALSE(CommitTheCoordinatorKnows(i)) << AgentName(i);
      EXPECT_EQ(agents_[i]->agent->counters().done, 0u) << AgentName(i);
      EXPECT_TRUE(
          WaitFor([&] { return agents_[i]->agent->counters().participants_commit == 1; }))
          << AgentName(i);
    }
  }

  // Advances the clock one scan interval at a time until agent i has made `scans` more orphan
  // scans than now.
  void RunOrphanScans(size_t i, uint64_t scans) {
    const uint64_t target = agents_[i]->agent->counters().orphan_scans + scans;
    ASSERT_TRUE(AdvanceUntil(
        [&] { return agents_[i]->agent->counters().orphan_scans >= target; }, kOrphanScanInterval))
        << AgentName(i) << " made no orphan scan";
  }
  // Agent i's finisher calls that were the orphan scan's rollbacks (no fence: no CanCommit).
  size_t OrphanRollbacks(size_t i) const {
    size_t n = 0;
    for (const RecordingFinisher::Call& call : agents_[i]->finisher.calls()) {
      n += call.fence_session_id == 0 ? 1 : 0;
    }
    return n;
  }

  bool scan_orphans_ = false;  // agents started from now on run the orphan scan
  test::FakeClock clock_;
  test::EnvWithClock env_;
  std::unique_ptr<net::Transport> transport_;
  net::SharedKey key_;
  Xid global_;
  std::map<std::string, std::string> directory_rms_;
  std::map<std::string, std::string> directory_agents_;
  std::set<std::string> directory_agents_taken_;  // addresses handed out by ReserveAddress
  std::vector<std::unique_ptr<AgentUnderTest>> agents_;
  std::map<size_t, std::unique_ptr<TestCoordinator>> coordinators_;
  uint64_t next_request_id_ = 1;
};

TEST_F(AgentTest, NormalPathVotesAfterWaitIsDurableAndCommitsWithoutFinishing) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  for (size_t i = 0; i < 3; ++i) {
    ts::AgentMessage vote = CanCommit(i);
    ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(vote, i));
    // The yes is durable before it is sent.
    std::optional<LogRecord> wait = OpenRecord(i);
    ASSERT_TRUE(wait.has_value()) << "Vote(yes) arrived before WAIT was in the log";
    EXPECT_EQ(wait->type, RecordType::kParticipantWait);
    EXPECT_EQ(wait->participants, Participants());
    EXPECT_EQ(wait->participant_number, i);
    EXPECT_EQ(wait->fence_session_id, FenceOf(i));
  }
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(i), i, ts::ParticipantState::kPre));
    ASSERT_TRUE(OpenRecord(i).has_value());
    EXPECT_EQ(OpenRecord(i)->type, RecordType::kParticipantPreCommit);
  }
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(DoCommit(i, /*branch_done=*/true), i,
                                      ts::ParticipantState::kCommit));
    EXPECT_TRUE(Decided(i, Outcome::kCommitted));
  }
  // Done is lazy: it waits until every peer confirmed the outcome, which the participants ask
  // for at their next timeout.
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(OpenRecord(i).has_value());
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return DoneAfter(i); })) << AgentName(i) << " never wrote done";
    EXPECT_TRUE(agents_[i]->finisher.calls().empty())
        << "the coordinator finished the branch (branch_done): the agent must not";
    AgentCounters counters = agents_[i]->agent->counters();
    EXPECT_EQ(counters.terminations_committed + counters.terminations_aborted, 0u);
    EXPECT_EQ(counters.participants_commit, 0u) << "forgotten once done";
  }
}

TEST_F(AgentTest, CoordinatorSilentAfterPreCommitReachedOneAgentAllCommitAndFinishOnce) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(1), 1, ts::ParticipantState::kPre));
  // The coordinator says nothing more.
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return agents_[i]->finisher.successes() >= 1; }))
        << AgentName(i) << " never finished its branch";
    EXPECT_TRUE(Decided(i, Outcome::kCommitted) || DoneAfter(i));
  }
  // Confirmations among the decided participants, until no timer is left: every peer holds
  // COMMIT and every branch is finished, yet none is done, since the coordinator (which holds
  // only its pre-commit) never sent the outcome.
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheCoordinatorAwaited({0, 1, 2}));
  // The coordinator's recovery adopts COMMIT and sends DoCommit: then done everywhere.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(DoCommit(i, /*branch_done=*/false), i,
                                      ts::ParticipantState::kCommit));
    EXPECT_TRUE(CommitTheCoordinatorKnows(i) || DoneAfter(i));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(AdvanceUntil([&] { return DoneAfter(i); }, kTerminationTimeout))
        << AgentName(i) << " never wrote done";
    ASSERT_NO_FATAL_FAILURE(ExpectFinishedOnce(i, /*commit=*/true));
  }
  uint64_t committed_by_termination = 0;
  for (size_t i = 0; i < 3; ++i) {
    AgentCounters counters = agents_[i]->agent->counters();
    committed_by_termination += counters.terminations_committed;
    EXPECT_EQ(counters.terminations_aborted, 0u);
    EXPECT_EQ(counters.fences, 1u);
    EXPECT_EQ(counters.branches_finished, 1u);
    EXPECT_EQ(counters.heuristics, 0u);
  }
  EXPECT_EQ(committed_by_termination, 3u);
}

TEST_F(AgentTest, CoordinatorSilentAfterEveryoneVotedAllAbortAndRollBack) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return agents_[i]->finisher.successes() >= 1; }))
        << AgentName(i) << " never rolled its branch back";
    EXPECT_TRUE(Decided(i, Outcome::kRolledBack) || DoneAfter(i));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(AdvanceUntil([&] { return DoneAfter(i); }, kTerminationTimeout));
    ASSERT_NO_FATAL_FAILURE(ExpectFinishedOnce(i, /*commit=*/false));
    EXPECT_EQ(agents_[i]->agent->counters().terminations_committed, 0u);
  }
}

TEST_F(AgentTest, RestartedAgentFinishesWhatItsLogSaysAndAgreesWithItsPeers) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(i), i, ts::ParticipantState::kPre));
  }
  const uint64_t first_incarnation = agents_[2]->incarnation;
  coordinators_.erase(2);
  StopAgent(2);  // agent-2 is down; the coordinator is silent

  // The two others terminate without it: P0 is the backup, sees PRE, commits.
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1}));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(WaitFor([&] { return agents_[i]->finisher.successes() == 1; }))
        << AgentName(i) << " never finished its branch";
  }

  // agent-2 comes back from its log: PRE, restarted, with a new incarnation.
  ASSERT_NO_FATAL_FAILURE(StartAgent(2));
  EXPECT_GT(agents_[2]->incarnation, first_incarnation);
  EXPECT_EQ(agents_[2]->agent->counters().participants_recovered, 1u);
  ASSERT_TRUE(OpenRecord(2).has_value());
  EXPECT_EQ(OpenRecord(2)->type, RecordType::kParticipantPreCommit);
  // It adopts the peers' decision (its timer, or theirs resending it) and finishes; everyone is
  // done once the coordinator's recovery sent its DoCommit.
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheCoordinatorAwaited({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(DoCommit(i, /*branch_done=*/false), i,
                                      ts::ParticipantState::kCommit));
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(AdvanceUntil([&] { return DoneAfter(i); }, kTerminationTimeout))
        << AgentName(i) << " never wrote done";
    ASSERT_NO_FATAL_FAILURE(ExpectFinishedOnce(i, /*commit=*/true));
    EXPECT_EQ(agents_[i]->agent->counters().heuristics, 0u);
  }
}

// A participant committed by a termination round while the coordinator was silent is kept
// across a restart of its agent: the coordinator's recovery, holding only its pre-commit, asks
// it and must hear COMMIT (forgotten, it would be answered ABORT under rule d). It is forgotten
// only after the coordinator's own DoCommit, recorded before the Ack.
TEST_F(AgentTest, ACommitOfATerminationRoundSurvivesARestartUntilTheCoordinatorsDoCommit) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(1), 1, ts::ParticipantState::kPre));
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return agents_[i]->finisher.successes() >= 1; }))
        << AgentName(i) << " never finished its branch";
  }
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheCoordinatorAwaited({0, 1, 2}));

  // agent-0 restarts: its log still holds the COMMIT, without the coordinator's word.
  coordinators_.erase(0);
  StopAgent(0);
  ASSERT_NO_FATAL_FAILURE(StartAgent(0));
  EXPECT_EQ(agents_[0]->agent->counters().participants_recovered, 1u);
  ASSERT_TRUE(Decided(0, Outcome::kCommitted));
  EXPECT_FALSE(CommitTheCoordinatorKnows(0));
  // The coordinator's recovery asks: COMMIT, not the ABORT of rule d.
  ASSERT_NO_FATAL_FAILURE(ExpectStateReply(StateQuery(0), 0, ts::ParticipantState::kCommit));
  // The restarted participant finishes again (idempotent) and tells its peers again; still it
  // is not done.
  EXPECT_TRUE(WaitFor([&] { return agents_[0]->finisher.successes() >= 2; }));
  ASSERT_NO_FATAL_FAILURE(ExpectOnlyTheCoordinatorAwaited({0, 1, 2}));

  // The coordinator's DoCommit: the agent records that the coordinator holds the COMMIT before
  // it acknowledges (the log says so by the time the Ack arrives), then forgets it.
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(DoCommit(i, /*branch_done=*/false), i,
                                      ts::ParticipantState::kCommit));
    EXPECT_TRUE(CommitTheCoordinatorKnows(i) || DoneAfter(i)) << AgentName(i);
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(AdvanceUntil([&] { return DoneAfter(i); }, kTerminationTimeout))
        << AgentName(i) << " never wrote done";
    EXPECT_EQ(agents_[i]->agent->counters().heuristics, 0u);
  }
  // A late DoCommit (the coordinator's Ack was lost) is still answered COMMIT from memory.
  ASSERT_NO_FATAL_FAILURE(
      ExpectAck(DoCommit(0, /*branch_done=*/false), 0, ts::ParticipantState::kCommit));
}

TEST_F(AgentTest, UnauthenticatedConnectionAndMalformedFrameAreDroppedAndCountedWhileOthersAreServed) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  Agent& agent = *agents_[0]->agent;

  // A client with another key: the agent refuses its proof.
  {
    net::SharedKey wrong = Key('w');
    Result<std::unique_ptr<net::Connection>> connection =
        transport_->Connect(agents_[0]->address, Clock::kNoDeadline);
    ASSERT_THAT(connection, IsOk());
    EXPECT_THAT(net::AuthenticateAsClient(**connection, wrong, "intruder", Clock::kNoDeadline),
                StatusIs(Code::kConfig));
    EXPECT_TRUE(WaitFor([&] { return agent.counters().peers_dropped_authentication == 1; }));
  }
  // A peer that passes the handshake and sends bytes that are no agent message.
  {
    std::unique_ptr<TestCoordinator> sloppy =
        TestCoordinator::Connect(transport_.get(), key_, agents_[0]->address);
    ASSERT_NE(sloppy, nullptr);
    ASSERT_THAT(sloppy->connection().Send("this is not an agent message"), IsOk());
    EXPECT_TRUE(WaitFor([&] { return agent.counters().peers_dropped_malformed == 1; }));
    EXPECT_THAT(sloppy->connection().Receive(Clock::kNoDeadline), StatusIs(Code::kIoError))
        << "the agent closes the connection";
  }
  // Everyone else is still served.
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));
  AgentCounters counters = agent.counters();
  EXPECT_EQ(counters.peers_dropped_authentication, 1u);
  EXPECT_EQ(counters.peers_dropped_malformed, 1u);
}

TEST_F(AgentTest, CanCommitForAResourceManagerTheAgentDoesNotServeIsAnsweredWithAnError) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(2));
  // Participant 1 is rm-1, agent-1's; ask agent-0.
  ts::CanCommitMessage message;
  message.xid = global_;
  message.participant = 1;
  message.participants = Participants();
  ts::AgentMessage reply = CoordinatorTo(0).Request(77, message);
  const auto* error = std::get_if<ts::ErrorMessage>(&reply.body);
  ASSERT_NE(error, nullptr) << "reply type " << ts::AgentMessageTypeName(ts::TypeOf(reply));
  EXPECT_EQ(error->code, Code::kConfig);
  EXPECT_THAT(error->message, HasSubstr("rm-1"));
  EXPECT_THAT(error->message, HasSubstr("agent-0"));
  EXPECT_EQ(agents_[0]->agent->counters().refused_requests, 1u);
  EXPECT_TRUE(agents_[0]->log->State().open_participants.empty()) << "nothing recorded";
  // The connection stays usable.
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));
}

TEST_F(AgentTest, FailingBranchFinisherIsRetriedUntilTheBranchIsFinishedOnce) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(3));
  agents_[0]->finisher.FailNext(2);
  for (size_t i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  ASSERT_NO_FATAL_FAILURE(FireTerminationTimers({0, 1, 2}));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return Decided(i, Outcome::kRolledBack) || DoneAfter(i); }));
  }
  // The retries wait on the clock (10 ms, then 20 ms).
  EXPECT_TRUE(AdvanceUntil([&] { return agents_[0]->finisher.successes() == 1; },
                           kFinishRetryMin));
  EXPECT_TRUE(AdvanceUntil([&] { return DoneAfter(0); }, kTerminationTimeout));
  std::vector<RecordingFinisher::Call> calls = agents_[0]->finisher.calls();
  ASSERT_EQ(calls.size(), 3u) << "two failures, then the success; nothing after";
  EXPECT_FALSE(calls[0].succeeded);
  EXPECT_FALSE(calls[1].succeeded);
  EXPECT_TRUE(calls[2].succeeded);
  ASSERT_NO_FATAL_FAILURE(ExpectFinishedOnce(0, /*commit=*/false));
  AgentCounters counters = agents_[0]->agent->counters();
  EXPECT_EQ(counters.finish_failures, 2u);
  EXPECT_EQ(counters.branches_finished, 1u);
}

TEST_F(AgentTest, TimeInWaitAndInPreIsMeasuredFromEachRecordToTheNextOnTheAgentsClock) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));  // WAIT
  clock_.Advance(300ms);
  ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(0), 0, ts::ParticipantState::kPre));
  clock_.Advance(40ms);
  ASSERT_NO_FATAL_FAILURE(ExpectAck(DoCommit(0, /*branch_done=*/true), 0,
                                    ts::ParticipantState::kCommit));
  const AgentCounters counters = agents_[0]->agent->counters();
  EXPECT_EQ(counters.time_in_wait.count, 1u);
  EXPECT_DOUBLE_EQ(counters.time_in_wait.sum_seconds, 0.3);
  EXPECT_EQ(counters.time_in_pre.count, 1u);
  EXPECT_DOUBLE_EQ(counters.time_in_pre.sum_seconds, 0.04);
  for (size_t i = 0; i < kStateDurationBoundsSeconds.size(); ++i) {
    const double bound = kStateDurationBoundsSeconds[i];
    EXPECT_EQ(counters.time_in_wait.at_most[i], bound >= 0.3 ? 1u : 0u) << "le " << bound;
    EXPECT_EQ(counters.time_in_pre.at_most[i], bound >= 0.04 ? 1u : 0u) << "le " << bound;
  }
}

TEST_F(AgentTest, AParticipantRecoveredInWaitIsNotTimedButCountsOnceItLeavesAfterARestart) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));
  coordinators_.erase(0);
  StopAgent(0);
  ASSERT_NO_FATAL_FAILURE(StartAgent(0));
  clock_.Advance(100ms);
  // The coordinator's Abort after the restart: the WAIT it entered before is not timed.
  ts::AgentMessage ack = CoordinatorTo(0).Request(
      next_request_id_++, ts::AbortMessage{global_, 0, /*branch_done=*/true});
  ASSERT_NO_FATAL_FAILURE(ExpectAck(ack, 0, ts::ParticipantState::kAbort));
  const AgentCounters counters = agents_[0]->agent->counters();
  EXPECT_EQ(counters.time_in_wait.count, 0u);
  EXPECT_EQ(counters.time_in_pre.count, 0u);
}

TEST_F(AgentTest, ADecisionsSenderFieldNotItsConnectionSaysWhetherTheCoordinatorHoldsIt) {
  ASSERT_NO_FATAL_FAILURE(StartAgents(2));
  for (size_t i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(i), i, ts::ParticipantState::kPre));
  }
  // A DoCommit naming peer 1's termination as its sender, on the coordinator's connection
  // (whose name is no agent's, so a sender read from the connection would be the coordinator):
  // a COMMIT the coordinator may not hold, which the agent must keep.
  ASSERT_NO_FATAL_FAILURE(ExpectAck(
      CoordinatorTo(0).Request(next_request_id_++,
                               ts::DoCommitMessage{global_, 0, /*branch_done=*/false, 1}),
      0, ts::ParticipantState::kCommit));
  EXPECT_TRUE(Decided(0, Outcome::kCommitted));
  EXPECT_FALSE(CommitTheCoordinatorKnows(0)) << "a peer's DoCommit taken for the coordinator's";
  EXPECT_TRUE(WaitFor([&] { return agents_[0]->finisher.successes() == 1; }));
  EXPECT_EQ(agents_[0]->agent->counters().done, 0u);
  // The coordinator's own DoCommit: recorded as the coordinator's, then the participant is done.
  ASSERT_NO_FATAL_FAILURE(ExpectAck(
      CoordinatorTo(0).Request(next_request_id_++,
                               ts::DoCommitMessage{global_, 0, /*branch_done=*/true,
                                                   ts::kCoordinatorSender}),
      0, ts::ParticipantState::kCommit));
  EXPECT_TRUE(WaitFor([&] { return CommitTheCoordinatorKnows(0) || DoneAfter(0); }));
}

// ---- The orphan scan ----

TEST_F(AgentTest, OrphanScanRollsBackAnXam3BranchNoCanCommitReachedOnceSeenForATerminationTimeout) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  agents_[0]->finisher.Prepare(RmName(0), Branch(0));
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 1));
  const Clock::SteadyTime first_sighting = clock_.SteadyNow();
  EXPECT_TRUE(agents_[0]->finisher.calls().empty()) << "one sighting is not enough";
  EXPECT_FALSE(OpenRecord(0)) << "nothing recorded after one sighting";

  ASSERT_TRUE(AdvanceUntil([&] { return agents_[0]->agent->counters().orphans_rolled_back == 1; },
                           kOrphanScanInterval));
  std::vector<RecordingFinisher::Call> calls = agents_[0]->finisher.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].rm_name, RmName(0));
  EXPECT_EQ(calls[0].branch, Branch(0));
  EXPECT_EQ(calls[0].fence_session_id, 0u) << "no CanCommit: no session to fence";
  EXPECT_FALSE(calls[0].commit);
  EXPECT_GE(calls[0].at - first_sighting, kTerminationTimeout)
      << "rolled back before it was seen unknown for a termination timeout";
  // ABORT was recorded first and is kept (rule d): a late CanCommit is answered no.
  EXPECT_TRUE(Decided(0, Outcome::kRolledBack));
  ts::AgentMessage vote = CanCommit(0);
  const auto* answer = std::get_if<ts::VoteMessage>(&vote.body);
  ASSERT_NE(answer, nullptr) << "reply type " << ts::AgentMessageTypeName(ts::TypeOf(vote));
  EXPECT_FALSE(answer->yes) << "a late CanCommit after the orphan's ABORT";
  // The branch is gone: later scans do nothing more.
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 3));
  EXPECT_EQ(agents_[0]->finisher.calls().size(), 1u);
  EXPECT_EQ(agents_[0]->agent->counters().orphans_rolled_back, 1u);
}

// A coordinator that asks the agents during its prepares can be stuck past their termination
// timeout before its XA PREPARE: the agents abort, this branch's rollback finds nothing prepared,
// the participant is done and forgotten (its ABORT kept as a tombstone); then the coordinator's
// late PREPARE leaves the branch prepared and it dies. The scan rolls such a branch back at once,
// its outcome being fixed, and records nothing.
TEST_F(AgentTest, OrphanScanRollsBackAtOnceABranchPreparedAfterItsParticipantWasDecidedAbortAndForgotten) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));
  ts::AgentMessage ack = CoordinatorTo(0).Request(
      next_request_id_++, ts::AbortMessage{global_, 0, /*branch_done=*/true});
  ASSERT_NO_FATAL_FAILURE(ExpectAck(ack, 0, ts::ParticipantState::kAbort));
  ASSERT_TRUE(WaitFor([&] { return DoneAfter(0); })) << "the participant was never forgotten";
  EXPECT_TRUE(agents_[0]->finisher.calls().empty());

  agents_[0]->finisher.Prepare(RmName(0), Branch(0));  // the late prepare
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 1));
  ASSERT_TRUE(WaitFor([&] { return agents_[0]->agent->counters().orphans_rolled_back == 1; }))
      << "one sighting of a forgotten ABORT's branch is enough";
  std::vector<RecordingFinisher::Call> calls = agents_[0]->finisher.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].branch, Branch(0));
  EXPECT_FALSE(calls[0].commit);
  EXPECT_EQ(calls[0].fence_session_id, 0u);
  EXPECT_FALSE(agents_[0]->finisher.IsPrepared(RmName(0), Branch(0)));
  EXPECT_FALSE(OpenRecord(0)) << "the rollback of a forgotten ABORT records nothing";
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 3));
  EXPECT_EQ(agents_[0]->finisher.calls().size(), 1u);
}

TEST_F(AgentTest, OrphanScanNeverTouchesABranchItsLogNamesNorABranchOfAnotherFormat) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  // Its own participant (WAIT, then ABORT by its termination round, whose finishes all fail so
  // that the branch stays listed); a 2PC branch; an XAM3 Xid that is no participant's branch.
  agents_[0]->finisher.FailNext(1'000'000);
  agents_[0]->finisher.Prepare(RmName(0), Branch(0));
  ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(0), 0));
  const Xid two_phase = XidGenerator(7, &clock_).Next(Protocol::kTwoPhase).WithBranch(0);
  const Xid not_a_participant = XidGenerator(7, &clock_).Next(Protocol::kThreePhase);
  agents_[0]->finisher.Prepare(RmName(0), two_phase);
  agents_[0]->finisher.Prepare(RmName(0), not_a_participant);
  // Scans over five termination timeouts.
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 5 * (kTerminationTimeout / kOrphanScanInterval + 1)));
  EXPECT_EQ(OrphanRollbacks(0), 0u);
  for (const RecordingFinisher::Call& call : agents_[0]->finisher.calls()) {
    EXPECT_EQ(call.branch, Branch(0)) << "the scan touched " << call.branch.ToString();
    EXPECT_EQ(call.fence_session_id, FenceOf(0)) << "only its own rules finish it";
  }
  EXPECT_EQ(agents_[0]->agent->counters().orphans_rolled_back, 0u);
  EXPECT_TRUE(agents_[0]->finisher.IsPrepared(RmName(0), two_phase));
  EXPECT_TRUE(agents_[0]->finisher.IsPrepared(RmName(0), not_a_participant));
}

// Two deployments may share a database, each with its own coordinators and agents: a 3PC branch
// of another node is another deployment's, possibly WAIT or PRE at its own agents, and rolling
// it back could split that transaction. The scan leaves it however long it stays prepared.
TEST_F(AgentTest, OrphanScanNeverTouchesAThreePhaseBranchOfAnotherDeploymentsNode) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  const Xid others = XidGenerator(8, &clock_).Next(Protocol::kThreePhase).WithBranch(0);
  const Xid ours = XidGenerator(7, &clock_).Next(Protocol::kThreePhase).WithBranch(0);
  agents_[0]->finisher.Prepare(RmName(0), others);
  agents_[0]->finisher.Prepare(RmName(0), ours);
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 5 * (kTerminationTimeout / kOrphanScanInterval + 1)));
  EXPECT_TRUE(agents_[0]->finisher.IsPrepared(RmName(0), others))
      << "the scan rolled back a branch of node 8, which this deployment does not run";
  EXPECT_FALSE(agents_[0]->finisher.IsPrepared(RmName(0), ours))
      << "the scan should still roll back its own deployment's orphan (the test's control)";
  EXPECT_EQ(agents_[0]->agent->counters().orphans_rolled_back, 1u);
}

TEST_F(AgentTest, OrphanScanLeavesABranchWhoseCanCommitArrivesBetweenTwoSightings) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(2));
  agents_[0]->finisher.Prepare(RmName(0), Branch(0));
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 1));  // first sighting: unknown
  // The CanCommit was in flight: it arrives now, and the normal path follows.
  for (size_t i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(ExpectVoteYes(CanCommit(i), i));
  for (size_t i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(ExpectAck(PreCommit(i), i, ts::ParticipantState::kPre));
  // The coordinator falls silent: the agents' termination commits; the scan never rolls back.
  ASSERT_TRUE(AdvanceUntil([&] { return Decided(0, Outcome::kCommitted); }, kOrphanScanInterval));
  ASSERT_NO_FATAL_FAILURE(RunOrphanScans(0, 2 * (kTerminationTimeout / kOrphanScanInterval + 1)));
  EXPECT_EQ(OrphanRollbacks(0), 0u);
  for (const RecordingFinisher::Call& call : agents_[0]->finisher.calls()) {
    EXPECT_TRUE(call.commit) << "the branch was rolled back";
  }
  EXPECT_EQ(agents_[0]->agent->counters().orphans_rolled_back, 0u);
}

TEST_F(AgentTest, FailedOrphanScansAndRollbacksAreCountedAndTriedAgainAtTheNextScan) {
  scan_orphans_ = true;
  ASSERT_NO_FATAL_FAILURE(StartAgents(1));
  agents_[0]->finisher.Prepare(RmName(0), Branch(0));
  agents_[0]->finisher.FailNextScans(2);
  agents_[0]->finisher.FailNext(1);
  ASSERT_TRUE(AdvanceUntil([&] { return agents_[0]->agent->counters().orphans_rolled_back == 1; },
                           kOrphanScanInterval));
  AgentCounters counters = agents_[0]->agent->counters();
  EXPECT_EQ(counters.orphan_scan_failures, 2u);
  EXPECT_EQ(counters.finish_failures, 1u);
  std::vector<RecordingFinisher::Call> calls = agents_[0]->finisher.calls();
  ASSERT_EQ(calls.size(), 2u) << "the failed rollback, then the next scan's";
  EXPECT_FALSE(calls[0].succeeded);
  EXPECT_TRUE(calls[1].succeeded);
  EXPECT_EQ(calls[1].branch, Branch(0));
  EXPECT_FALSE(agents_[0]->finisher.IsPrepared(RmName(0), Branch(0)));
  EXPECT_TRUE(Decided(0, Outcome::kRolledBack));
}

}  // namespace
}  // namespace xa::agent
