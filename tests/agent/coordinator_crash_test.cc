// Three-phase commit with the COORDINATOR killed at its named crash points: a real bank_worker
// process (tests/recovery/bank_worker.cc) moves money through two real xa-agent processes and
// kills itself at the point; the agents stay up. Then a coordinator restarted on the worker's
// decision log recovers, and every transaction must be complete everywhere or nowhere: the
// bank's invariants (total unchanged, every transfer on both databases or on neither, every
// acknowledged transfer present, nothing of the worker's node left prepared) and no record left
// open in the coordinator's log. docs/crash-matrix.md lists the points (rows T2..T8, T10).
//
// Where the worker dies after every agent pre-committed (before its commit decision, or after it:
// between the branches' commits, or once they all committed but before any agent was told
// DoCommit), the agents commit on their own within their termination timeout, before any
// recovery runs: the test checks that too. So they do where it dies with every branch prepared
// (after-all-prepared): the agents, asked during the prepares, are WAIT and abort by termination.
// Where the agents are asked only after the databases voted (--agents-after-votes), no agent
// knows the branches at that point: only the restarted coordinator's presumed abort releases
// them.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.h"
#include "tests/agent/agent_processes.h"
#include "tests/agent/bank_with_agents.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"
#include "xa/decision_log.h"
#include "xa/transaction_manager.h"

namespace xa::test {
namespace {

using namespace std::chrono_literals;

constexpr char kPrefix[] = "coordcrash";
constexpr auto kSettleLimit = 60s;

struct CoordinatorCrash {
  int number;  // names the case's tables
  const char* point;
  // The agents finish the transaction the worker died in without any recovery: every agent
  // had pre-committed (they commit) or none had (they abort on their own once they voted).
  bool agents_finish_alone;
  // The worker asks the agents once the databases voted (ask_agents_during_prepare off).
  bool agents_after_votes = false;
};

// How gtest (and so ctest's list) shows a case: by its point, not as the struct's raw bytes.
void PrintTo(const CoordinatorCrash& crash, std::ostream* out) {
  *out << crash.point << (crash.agents_after_votes ? ", agents asked after the votes" : "")
       << (crash.agents_finish_alone ? " (the agents finish alone)" : "");
}

// A case's name in ctest's list: its point, with '_' for '-'.
std::string CaseName(const ::testing::TestParamInfo<CoordinatorCrash>& crash) {
  std::string name = crash.param.point;
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return crash.param.agents_after_votes ? name + "_agents_after_votes" : name;
}

class CoordinatorCrashTest : public ::testing::TestWithParam<CoordinatorCrash> {
 protected:
  void SetUp() override {
    node_ = RandomNodeId();
    // Tables of its own for each case, so that a case that fails and leaves a branch prepared
    // (holding its locks) cannot make the next case fail too. The rest as bank_worker has it.
    prefix_ = std::string(kPrefix) + std::to_string(GetParam().number);
    ASSERT_NO_FATAL_FAILURE(StartBankAndAgents(prefix_, node_, scratch_, &bank_, &agents_));
  }

  // Waits (bounded) until nothing of the worker's node is prepared; false if something still is.
  bool WaitUntilNothingPrepared(std::chrono::seconds limit, std::string* left) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (true) {
      Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
      if (snapshot.ok() && snapshot->prepared_ours.empty()) return true;
      if (std::chrono::steady_clock::now() >= until) {
        if (snapshot.ok()) {
          for (const Xid& x : snapshot->prepared_ours) *left += " " + x.ToString();
        } else {
          *left = snapshot.status().ToString();
        }
        return false;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  // A coordinator on the worker's log, as the application restarted: recovery on open, with
  // the agents configured; then it waits for its background work and closes.
  void RestartCoordinator() {
    LogOptions log_options;
    log_options.dir = log_dir();
    log_options.node_id = node_;
    Result<std::unique_ptr<DecisionLog>> log = DecisionLog::Open(log_options);
    ASSERT_THAT(log, IsOk());
    TransactionManagerOptions options;
    options.node_id = node_;
    options.recover_on_open = true;
    bank_->RegisterFactories(options);
    agents_->ConfigureManager(options);
    Result<std::unique_ptr<TransactionManager>> manager = TransactionManager::Open(options, **log);
    ASSERT_THAT(manager, IsOk());
    // A second pass: a branch prepared with no record (the worker died before asking any agent)
    // is presumed aborted by the pass after the one that first saw it, however young.
    EXPECT_THAT((*manager)->RunRecovery(), IsOk());
    // More passes, as the manager's periodic ones would run, while a record waits for agents that
    // are still undecided (WAIT: they abort by termination, and the next pass adopts it).
    const auto until = std::chrono::steady_clock::now() + kSettleLimit;
    while (!(*log)->State().open_decisions.empty() && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(500ms);
      EXPECT_THAT((*manager)->RunRecovery(), IsOk());
    }
    EXPECT_THAT((*manager)->WaitForBackgroundCompletion(std::chrono::milliseconds(30000)), IsOk());
  }

  // The worker's command line: 20 transfers through the agents, acknowledged in `ack_file`.
  std::vector<std::string> WorkerArgv(const std::string& ack_file) const {
    std::vector<std::string> argv = {
        BankWorkerPath(), "--log-dir", log_dir(),     "--node-id", std::to_string(node_),
        "--ack-file",     ack_file,    "--transfers", "20",        "--prefix",
        prefix_};
    for (const std::string& argument : agents_->WorkerArguments()) argv.push_back(argument);
    if (GetParam().agents_after_votes) argv.push_back("--agents-after-votes");
    return argv;
  }

  // The worker's log as its files hold it.
  Result<LogState> WorkerLogState() const {
    LogOptions log_options;
    log_options.dir = log_dir();
    log_options.node_id = node_;
    return DecisionLog::ReadState(log_options);
  }

  // The Xids of the records open in the worker's log, read from its files (" <xid>" each).
  std::string OpenRecordsInLog() const {
    Result<LogState> state = WorkerLogState();
    if (!state.ok()) return " (the log cannot be read: " + state.status().ToString() + ")";
    std::string open;
    for (const auto& [xid, record] : state->open_decisions) open += " " + xid.ToString();
    return open;
  }

  std::string log_dir() const { return scratch_.File("coordinator-log"); }

  ScratchDir scratch_;
  uint32_t node_ = 0;
  std::unique_ptr<bank::Bank> bank_;
  std::unique_ptr<AgentPair> agents_;
  std::string prefix_;
};

TEST_P(CoordinatorCrashTest, EveryTransferEndsOnBothDatabasesOrNeither) {
  const CoordinatorCrash& c = GetParam();
  const std::string ack_file = scratch_.File("acks");
  const std::string output = scratch_.File("worker.out");
  const std::vector<std::string> argv = WorkerArgv(ack_file);
  // The third hit: a few transfers are acknowledged before the crash.
  const pid_t worker = Spawn(argv, {{"XA_CRASH_POINT", c.point}, {"XA_CRASH_COUNT", "3"}}, output);
  ASSERT_GT(worker, 0);
  ProcessResult died = Wait(worker, output, std::chrono::seconds(120));
  ASSERT_TRUE(died.KilledBy(SIGKILL))
      << "the worker should have died at " << c.point << "; " << died.Describe();
  ASSERT_NE(died.output.find("crash point reached"), std::string::npos) << died.Describe();

  std::string left;
  if (c.agents_finish_alone) {
    EXPECT_TRUE(WaitUntilNothingPrepared(kSettleLimit, &left))
        << "the agents did not finish the transaction without the coordinator; still prepared:"
        << left << "\nagent-mariadb:\n"
        << agents_->Output(kAgentMariaDb) << "\nagent-postgres:\n"
        << agents_->Output(kAgentPostgres);
  }
  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  left.clear();
  ASSERT_TRUE(WaitUntilNothingPrepared(kSettleLimit, &left))
      << "still prepared after the coordinator's recovery:" << left << "\nagent-mariadb:\n"
      << agents_->Output(kAgentMariaDb) << "\nagent-postgres:\n"
      << agents_->Output(kAgentPostgres);

  Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
  ASSERT_THAT(snapshot, IsOk());
  const std::set<std::string> acknowledged = ReadAcknowledged(ack_file);
  EXPECT_FALSE(acknowledged.empty()) << "no transfer was acknowledged before the crash";
  EXPECT_THAT(bank_->CheckInvariants(*snapshot, acknowledged), IsOk());

  EXPECT_EQ(OpenRecordsInLog(), "")
      << "records left open in the coordinator's log after its recovery";
  agents_->ExpectAlive(kAgentMariaDb);
  agents_->ExpectAlive(kAgentPostgres);
}

INSTANTIATE_TEST_SUITE_P(ThreePhaseCoordinator, CoordinatorCrashTest,
                         ::testing::Values(CoordinatorCrash{0, "after-all-prepared", true},
                                           CoordinatorCrash{11, "after-all-prepared", false,
                                                            /*agents_after_votes=*/true},
                                           CoordinatorCrash{10, "pre-commit-record-durable", false},
                                           CoordinatorCrash{1, "after-pre-commit-record", true},
                                           CoordinatorCrash{2, "after-all-pre-committed", true},
                                           CoordinatorCrash{3, "after-end-record", false},
                                           CoordinatorCrash{4, "after-decision-sync", true},
                                           CoordinatorCrash{5, "after-first-commit", true},
                                           CoordinatorCrash{6, "after-all-committed", true}),
                         CaseName);


// xa-recover with the agents in its configuration: the worker dies once every agent
// pre-committed (the agents then commit on their own) and leaves its pre-commit record open; the
// real xa-recover, given the agents' directory and key, plans without writing (the record stays
// open, the databases as they were), then finishes the record through the agents as the
// manager's own recovery would: it learns COMMIT, records it, tells every agent DoCommit and
// ends the record once all acknowledged. Its first resolve is killed just before that end
// record (the crash point both recovery modules pass), and the next one converges.
class XaRecoverWithAgentsTest : public CoordinatorCrashTest {
 protected:
  // The bank's xa-recover configuration (tests/recovery) plus the agents' directory and key.
  std::string WriteConfigWithAgents() {
    const std::string path = WriteBankRecoverConfig(scratch_, log_dir(), node_, 0);
    agents_->AddToRecoverConfig(path);
    return path;
  }

  size_t OpenRecords() {
    Result<LogState> state = WorkerLogState();
    EXPECT_THAT(state, IsOk());
    return state.ok() ? state->open_decisions.size() : 0;
  }
};

TEST_P(XaRecoverWithAgentsTest, XaRecoverFinishesAnOpenThreePhaseRecordThroughTheAgents) {
  const CoordinatorCrash& c = GetParam();
  const std::string ack_file = scratch_.File("acks");
  const std::string output = scratch_.File("worker.out");
  const std::vector<std::string> argv = WorkerArgv(ack_file);
  const pid_t worker = Spawn(argv, {{"XA_CRASH_POINT", c.point}, {"XA_CRASH_COUNT", "3"}}, output);
  ASSERT_GT(worker, 0);
  ProcessResult died = Wait(worker, output, std::chrono::seconds(120));
  ASSERT_TRUE(died.KilledBy(SIGKILL)) << died.Describe();
  std::string left;
  ASSERT_TRUE(WaitUntilNothingPrepared(kSettleLimit, &left))
      << "the agents did not commit on their own; still prepared:" << left;
  ASSERT_EQ(OpenRecords(), 1u) << "the worker's pre-commit record should be open";
  Result<bank::BankSnapshot> before = bank_->Snapshot(node_);
  ASSERT_THAT(before, IsOk());

  const std::string config = WriteConfigWithAgents();
  // plan asks the agents and writes nothing: the record stays open.
  ProcessResult plan = RunProcess({XaRecoverPath(), "--config", config, "plan", "--json"}, {});
  EXPECT_TRUE(plan.Exited(1)) << "plan must report work to do; " << plan.Describe();
  EXPECT_EQ(OpenRecords(), 1u) << "plan wrote to the log";

  // resolve, killed before its end record: the adopted decision is durable, not yet ended.
  ProcessResult killed =
      RunProcess({XaRecoverPath(), "--config", config, "resolve", "--json"},
                 {{"XA_CRASH_POINT", "recovery-before-end-record"}, {"XA_CRASH_COUNT", "1"}});
  EXPECT_TRUE(killed.KilledBy(SIGKILL))
      << "the 3PC recovery module should pass recovery-before-end-record; " << killed.Describe();
  ASSERT_EQ(OpenRecords(), 1u);

  ProcessResult resolved =
      RunProcess({XaRecoverPath(), "--config", config, "resolve", "--json"}, {});
  ASSERT_TRUE(resolved.Exited(0)) << resolved.Describe();
  EXPECT_NE(resolved.output.find("\"end_records_written\":1"), std::string::npos)
      << resolved.output;
  EXPECT_EQ(OpenRecords(), 0u) << "xa-recover left the 3PC record open";

  Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_TRUE(snapshot->prepared_ours.empty());
  EXPECT_EQ(snapshot->mariadb_transfers, before->mariadb_transfers)
      << "xa-recover changed a database the agents had already finished";
  EXPECT_EQ(snapshot->total(), before->total());
  EXPECT_THAT(bank_->CheckInvariants(*snapshot, ReadAcknowledged(ack_file)), IsOk());
  agents_->ExpectAlive(kAgentMariaDb);
  agents_->ExpectAlive(kAgentPostgres);
}

INSTANTIATE_TEST_SUITE_P(ThreePhaseCoordinator, XaRecoverWithAgentsTest,
                         ::testing::Values(CoordinatorCrash{7, "after-all-pre-committed", true}));

// A coordinator alive but stuck past the agents' timeout: the worker freezes (SIGSTOP, by
// XA_CRASH_ACTION=stop) at the point, and the agents terminate without it, each fencing the
// worker's MariaDB session before it finishes a branch there; then the worker goes on (SIGCONT),
// late. It cannot act against the agents' outcome: at after-pre-commit-record the agents abort
// and its PreCommit is answered ABORT (its fenced session could not commit anyway); at
// after-all-pre-committed the agents commit and its own commit finds the branches finished. The
// bank's invariants hold before it goes on and after, and a restart's recovery leaves nothing
// open in its log.
class StuckCoordinatorTest : public CoordinatorCrashTest {
 protected:
  // Waits (bounded) until `pid` is stopped by a signal; false if it ended or the time ran out.
  static bool WaitUntilStopped(pid_t pid, std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      const pid_t seen = ::waitpid(pid, &status, WUNTRACED | WNOHANG);
      if (seen == pid) return WIFSTOPPED(status);
      if (seen < 0) return false;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
};

TEST_P(StuckCoordinatorTest, AStuckCoordinatorIsFencedAndCannotActAfterTheAgentsDecided) {
  const CoordinatorCrash& c = GetParam();
  const std::string ack_file = scratch_.File("acks");
  const std::string output = scratch_.File("worker.out");
  const std::vector<std::string> argv = WorkerArgv(ack_file);
  const pid_t worker = Spawn(argv,
                             {{"XA_CRASH_POINT", c.point}, {"XA_CRASH_COUNT", "3"},
                              {"XA_CRASH_ACTION", "stop"}},
                             output);
  ASSERT_GT(worker, 0);
  if (!WaitUntilStopped(worker, 120s)) {
    ::kill(worker, SIGKILL);
    FAIL() << "the worker did not stop at " << c.point << "; "
           << Wait(worker, output, 30s).Describe();
  }

  // The agents decide without it, fencing its MariaDB session before they finish the branches.
  std::string left;
  const bool settled = WaitUntilNothingPrepared(kSettleLimit, &left);
  Result<bank::BankSnapshot> decided = bank_->Snapshot(node_);
  const std::set<std::string> acknowledged_while_stuck = ReadAcknowledged(ack_file);
  const std::string agent_log = agents_->Output(kAgentMariaDb);
  ::kill(worker, SIGCONT);
  ProcessResult finished = Wait(worker, output, 120s);
  ASSERT_TRUE(settled) << "the agents did not finish without the stuck coordinator; still "
                          "prepared:" << left << "\nagent-mariadb:\n" << agent_log;
  ASSERT_THAT(decided, IsOk());
  EXPECT_THAT(bank_->CheckInvariants(*decided, acknowledged_while_stuck), IsOk())
      << "while the coordinator was stuck";
  EXPECT_NE(agent_log.find("fenced session"), std::string::npos)
      << "the MariaDB agent finished its branch without fencing the coordinator's session:\n"
      << agent_log;

  // The coordinator went on, late, and ended normally; then a restart recovers what is open.
  EXPECT_TRUE(finished.Exited(0)) << finished.Describe();
  ASSERT_NO_FATAL_FAILURE(RestartCoordinator());
  left.clear();
  ASSERT_TRUE(WaitUntilNothingPrepared(kSettleLimit, &left))
      << "still prepared after the coordinator's recovery:" << left;
  Result<bank::BankSnapshot> snapshot = bank_->Snapshot(node_);
  ASSERT_THAT(snapshot, IsOk());
  EXPECT_THAT(bank_->CheckInvariants(*snapshot, ReadAcknowledged(ack_file)), IsOk());
  EXPECT_EQ(OpenRecordsInLog(), "") << "records left open in the coordinator's log";
  // The late coordinator read the agents' work for what it was: an "unknown Xid" on a branch
  // the agents committed is a commit of its own decision, not a heuristic for an operator.
  Result<LogState> state = WorkerLogState();
  ASSERT_THAT(state, IsOk());
  EXPECT_TRUE(state->open_heuristics.empty())
      << "the late coordinator recorded a heuristic outcome; its output:\n" << finished.output;
  agents_->ExpectAlive(kAgentMariaDb);
  agents_->ExpectAlive(kAgentPostgres);
}

INSTANTIATE_TEST_SUITE_P(ThreePhaseCoordinator, StuckCoordinatorTest,
                         ::testing::Values(CoordinatorCrash{8, "after-pre-commit-record", true},
                                           CoordinatorCrash{9, "after-all-pre-committed", true}),
                         CaseName);

}  // namespace
}  // namespace xa::test
