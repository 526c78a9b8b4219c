// The crash matrix (docs/crash-matrix.md, rows C1-C10 and R2) on the real
// servers: a bank_worker process moves money between MariaDB and PostgreSQL and is killed with
// SIGKILL at a named crash point; `xa-recover resolve` then runs, and the bank invariants must
// hold: every transfer on both databases or on neither (I1), total unchanged (I2), no negative
// balance (I3), every acknowledged transfer present (I4), no prepared branch of ours left and
// the seeded foreign branches untouched (I5), and a second recovery changes nothing (I6).

#include <signal.h>

#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "examples/bank/bank.h"
#include "tests/recovery/crash_harness.h"
#include "testutil/db_env.h"
#include "xa/decision_log.h"

namespace xa::test {
namespace {

constexpr char kPrefix[] = "crash";

class CrashRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_id_ = RandomNodeId();
    log_dir_ = scratch_.File("log");
    ack_file_ = scratch_.File("acks");
    config_ = WriteBankRecoverConfig(scratch_, log_dir_, node_id_, /*orphan_min_age_ms=*/0);
    auto settings = bank::SettingsFromEnvironment();
    ASSERT_TRUE(settings.ok()) << settings.status().ToString();
    settings->table_prefix = kPrefix;
    auto bank = bank::Bank::Connect(*settings);
    ASSERT_TRUE(bank.ok()) << bank.status().ToString();
    bank_ = std::move(bank).value();
    ASSERT_TRUE(bank_->Reset().ok());
    SeedForeignBranches(kPrefix);
  }

  void TearDown() override { RemoveForeignBranches(kPrefix); }

  ProcessResult RunWorker(const std::string& crash_point, int count, int threads,
                          int transfers, uint64_t segment_size = 0) {
    std::map<std::string, std::string> env;
    if (!crash_point.empty()) {
      env["XA_CRASH_POINT"] = crash_point;
      env["XA_CRASH_COUNT"] = std::to_string(count);
    }
    std::vector<std::string> args = {BankWorkerPath(), "--log-dir", log_dir_, "--node-id",
                                     std::to_string(node_id_), "--ack-file", ack_file_,
                                     "--threads", std::to_string(threads), "--transfers",
                                     std::to_string(transfers), "--prefix", kPrefix};
    if (segment_size > 0) {
      args.push_back("--segment-size");
      args.push_back(std::to_string(segment_size));
    }
    args.insert(args.end(), worker_args_.begin(), worker_args_.end());
    return RunProcess(args, env);
  }

  ProcessResult Recover(const std::string& command,
                        const std::map<std::string, std::string>& env = {}) {
    return RunProcess({XaRecoverPath(), "--config", config_, command, "--json"}, env);
  }

  // Recovery has run: check every invariant, then that a second recovery changes nothing.
  void ExpectConvergedAndIdempotent() {
    auto snapshot = bank_->Snapshot(node_id_);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    std::set<std::string> acked = ReadAcknowledged(ack_file_);
    Status invariants = bank_->CheckInvariants(*snapshot, acked);
    EXPECT_TRUE(invariants.ok()) << invariants.ToString();
    EXPECT_EQ(CountForeignSeeds(), 2) << "a foreign prepared branch was touched";

    ProcessResult again = Recover("resolve");
    EXPECT_TRUE(again.Exited(0)) << again.Describe();
    EXPECT_NE(again.output.find("\"committed\":0,"), std::string::npos) << again.output;
    EXPECT_NE(again.output.find("\"rolled_back\":0,"), std::string::npos) << again.output;
    auto after = bank_->Snapshot(node_id_);
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->mariadb_transfers, snapshot->mariadb_transfers);
    EXPECT_EQ(after->total(), snapshot->total());
  }

  ScratchDir scratch_;
  std::vector<std::string> worker_args_;  // more arguments for every bank_worker run
  uint32_t node_id_ = 0;
  std::string log_dir_, ack_file_, config_;
  std::unique_ptr<bank::Bank> bank_;
};

struct CrashCase {
  const char* row;
  const char* point;
  int count;
  uint64_t segment_size = 0;  // small segments make the log rotate every few records (C10)
};

class CrashMatrixTest : public CrashRecoveryTest,
                        public ::testing::WithParamInterface<CrashCase> {};

TEST_P(CrashMatrixTest, KilledAtCrashPointRecoversToOneOutcomeEverywhere) {
  const CrashCase& c = GetParam();
  ProcessResult worker =
      RunWorker(c.point, c.count, /*threads=*/2, /*transfers=*/40, c.segment_size);
  ASSERT_TRUE(worker.KilledBy(SIGKILL))
      << c.row << ": the worker was expected to die at " << c.point << "; " << worker.Describe();

  ProcessResult plan = Recover("plan");
  EXPECT_TRUE(plan.Exited(0) || plan.Exited(1)) << plan.Describe();
  ProcessResult resolved = Recover("resolve");
  ASSERT_TRUE(resolved.Exited(0)) << c.row << ": " << resolved.Describe();
  ExpectConvergedAndIdempotent();
}

INSTANTIATE_TEST_SUITE_P(
    Matrix, CrashMatrixTest,
    ::testing::Values(CrashCase{"C1", "after-start", 3}, CrashCase{"C1", "after-end", 3},
                      CrashCase{"C2", "after-prepare", 5},
                      CrashCase{"C3", "after-first-prepare", 3},
                      CrashCase{"C4", "after-all-prepared", 3},
                      CrashCase{"C5", "after-decision-write", 3},
                      CrashCase{"C6", "after-decision-sync", 3},
                      CrashCase{"C7", "after-first-commit", 3},
                      CrashCase{"C8", "after-all-committed", 3},
                      CrashCase{"C8", "after-end-record", 3},
                      CrashCase{"C10", "rotate-before-write", 2, 2048},
                      CrashCase{"C10", "rotate-before-sync", 2, 2048},
                      CrashCase{"C10", "rotate-after-sync", 2, 2048},
                      CrashCase{"C10", "rotate-after-rename", 2, 2048},
                      CrashCase{"C10", "before-segment-delete", 2, 2048}),
    [](const ::testing::TestParamInfo<CrashCase>& param) {
      std::string name = std::string(param.param.row) + "_" + param.param.point;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

// The crash matrix of marker commit (docs/marker-commit.md, rows M1-M6), with the marker on each
// database: the worker runs every transfer as a marker-commit transaction and is killed at a
// point of the protocol; `xa-recover resolve`, configured with the marker table, settles each
// prepared branch by its marker. The bank invariants hold, and no marker row is left: recovery
// deletes the rows of what it finished, and its sweep the rows of transactions the dead worker
// finished without deleting them.
struct MarkerCrashCase {
  const char* row;
  const char* point;
  int count;
  const char* marker_on;  // "mariadb" or "postgres"
  // What recovery must have done to the branch the kill left prepared: "committed",
  // "rolled_back", "nothing" (none left prepared), or "no commit" (the marker is written
  // beside the other branch's prepare, so the kill may come before or after it).
  const char* recovery_did = "nothing";
};

void PrintTo(const MarkerCrashCase& c, std::ostream* os) {
  *os << c.row << " " << (*c.point != '\0' ? c.point : "no crash") << ", marker on "
      << c.marker_on;
}

class MarkerCrashMatrixTest : public CrashRecoveryTest,
                              public ::testing::WithParamInterface<MarkerCrashCase> {
 protected:
  void SetUp() override {
    CrashRecoveryTest::SetUp();
    UseMarkerOn(GetParam().marker_on);
  }

 public:
  void UseMarkerOn(const std::string& marker_on) {
    const bank::BankSettings& settings = bank_->settings();
    const std::string rm =
        marker_on == "mariadb" ? settings.mariadb.rm_name : settings.postgres.rm_name;
    config_ = WriteBankRecoverConfig(scratch_, log_dir_, node_id_, /*orphan_min_age_ms=*/0, rm,
                                     settings.MarkerTable());
    worker_args_ = {"--marker-on", marker_on};
  }
};

TEST_P(MarkerCrashMatrixTest, KilledAtCrashPointRecoversByTheMarker) {
  const MarkerCrashCase& c = GetParam();
  // One thread, so the kill leaves exactly one transaction behind, at the point.
  ProcessResult worker = RunWorker(c.point, c.count, /*threads=*/1, /*transfers=*/40);
  ASSERT_TRUE(worker.KilledBy(SIGKILL))
      << c.row << ": the worker was expected to die at " << c.point << "; " << worker.Describe();
  // The worker's log holds no decision: marker commit writes none.
  ProcessResult plan = Recover("plan");
  EXPECT_TRUE(plan.Exited(0) || plan.Exited(1)) << plan.Describe();
  ProcessResult resolved = Recover("resolve");
  ASSERT_TRUE(resolved.Exited(0)) << c.row << ": " << resolved.Describe();
  const std::string did = c.recovery_did;
  const bool none_committed = resolved.output.find("\"committed\":0,") != std::string::npos;
  const bool none_rolled_back = resolved.output.find("\"rolled_back\":0,") != std::string::npos;
  EXPECT_EQ(none_committed, did != "committed") << c.row << ": " << did << "; " << resolved.output;
  if (did != "no commit") {
    EXPECT_EQ(none_rolled_back, did != "rolled_back")
        << c.row << ": " << did << "; " << resolved.output;
  }
  ExpectConvergedAndIdempotent();
  auto snapshot = bank_->Snapshot(node_id_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->marker_rows, 0u) << c.row << ": marker rows left after recovery";
}

// A worker that is not killed: every transfer through marker commit, the rows deleted by the
// manager's cleaner before it exits, nothing for recovery to do.
class MarkerRunTest : public MarkerCrashMatrixTest {};

TEST_P(MarkerRunTest, UninterruptedRunLeavesNothingBehind) {
  ProcessResult worker = RunWorker("", 0, /*threads=*/2, /*transfers=*/40);
  ASSERT_TRUE(worker.Exited(0)) << worker.Describe();
  EXPECT_NE(worker.output.find(" 0 failed"), std::string::npos) << worker.output;
  ProcessResult resolved = Recover("resolve");
  ASSERT_TRUE(resolved.Exited(0)) << resolved.Describe();
  EXPECT_NE(resolved.output.find("\"committed\":0,"), std::string::npos) << resolved.output;
  EXPECT_NE(resolved.output.find("\"rolled_back\":0,"), std::string::npos) << resolved.output;
  ExpectConvergedAndIdempotent();
  auto snapshot = bank_->Snapshot(node_id_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->marker_rows, 0u);
  // Every acknowledged transfer landed (checked above); some were refused by the overdraft rule.
  EXPECT_GT(snapshot->mariadb_transfers.size(), 20u);
}

std::vector<MarkerCrashCase> MarkerCrashCases() {
  std::vector<MarkerCrashCase> cases;
  for (const char* marker_on : {"mariadb", "postgres"}) {
    cases.push_back({"M1", "after-first-prepare", 3, marker_on, "rolled_back"});
    cases.push_back({"M2", "marker-written", 3, marker_on, "no commit"});
    cases.push_back({"M3", "marker-before-commit", 3, marker_on, "rolled_back"});
    cases.push_back({"M4", "marker-after-commit", 3, marker_on, "committed"});
    // The other branch was the only prepared one: committed before the kill.
    cases.push_back({"M5", "after-first-commit", 3, marker_on, "nothing"});
    cases.push_back({"M6", "after-all-committed", 3, marker_on, "nothing"});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    Holders, MarkerRunTest,
    ::testing::Values(MarkerCrashCase{"M0", "", 0, "mariadb"},
                      MarkerCrashCase{"M0", "", 0, "postgres"}),
    [](const ::testing::TestParamInfo<MarkerCrashCase>& param) {
      return std::string(param.param.marker_on);
    });

INSTANTIATE_TEST_SUITE_P(
    Matrix, MarkerCrashMatrixTest, ::testing::ValuesIn(MarkerCrashCases()),
    [](const ::testing::TestParamInfo<MarkerCrashCase>& param) {
      std::string name = std::string(param.param.marker_on) + "_" + param.param.row + "_" +
                         param.param.point;
      for (char& ch : name) {
        if (ch == '-') ch = '_';
      }
      return name;
    });

// C9: recovery itself is killed at each of its steps, repeatedly; the next run converges.
class RecoveryCrashTest : public CrashRecoveryTest,
                          public ::testing::WithParamInterface<const char*> {};

TEST_P(RecoveryCrashTest, RecoveryKilledAtEachStepConvergesOnTheNextRun) {
  // Leave several commit decisions open: four threads, killed right after a decision is durable.
  ProcessResult worker = RunWorker("after-decision-sync", 6, /*threads=*/4, /*transfers=*/60);
  ASSERT_TRUE(worker.KilledBy(SIGKILL)) << worker.Describe();
  int kills = 0;
  for (int k = 1; k <= 3; ++k) {
    ProcessResult crashed =
        Recover("resolve", {{"XA_CRASH_POINT", GetParam()}, {"XA_CRASH_COUNT", std::to_string(k)}});
    if (crashed.KilledBy(SIGKILL)) {
      ++kills;
    } else {
      // Fewer steps of that kind than k were left to do: recovery finished.
      EXPECT_TRUE(crashed.Exited(0)) << crashed.Describe();
    }
  }
  EXPECT_GE(kills, 1) << "recovery never reached crash point " << GetParam();
  ProcessResult resolved = Recover("resolve");
  ASSERT_TRUE(resolved.Exited(0)) << resolved.Describe();
  ExpectConvergedAndIdempotent();
}

INSTANTIATE_TEST_SUITE_P(Steps, RecoveryCrashTest,
                         ::testing::Values("recovery-after-scan", "recovery-after-first-action",
                                           "recovery-after-action",
                                           "recovery-before-end-record"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           std::string name = param.param;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

// The operator's forced decision: orphans of a crash (all prepared, no decision) are committed
// by `xa-recover force commit` instead of being presumed aborted; the decision is audited in
// the log as a heuristic record, and the transfer lands on both databases.
TEST_F(CrashRecoveryTest, OperatorForcesACommitThroughTheTool) {
  ProcessResult worker = RunWorker("after-all-prepared", 3, /*threads=*/1, /*transfers=*/10);
  ASSERT_TRUE(worker.KilledBy(SIGKILL)) << worker.Describe();
  ProcessResult plan = Recover("plan");
  ASSERT_TRUE(plan.Exited(1)) << "plan must report work to do; " << plan.Describe();
  // The first branch of ours that plan would roll back: "xid":"<format>:<gtrid>:<bqual>".
  size_t action = plan.output.find("\"action\":\"rollback\"");
  ASSERT_NE(action, std::string::npos) << plan.output;
  size_t xid_at = plan.output.rfind("\"xid\":\"", action);
  ASSERT_NE(xid_at, std::string::npos);
  std::string branch = plan.output.substr(xid_at + 7, plan.output.find('"', xid_at + 7) - xid_at - 7);
  std::string global = branch.substr(0, branch.rfind(':') + 1);  // empty bqual: every branch

  ProcessResult no_reason = RunProcess({XaRecoverPath(), "--config", config_, "force", "commit",
                                        global}, {});
  EXPECT_TRUE(no_reason.Exited(2)) << no_reason.Describe();
  ProcessResult forced = RunProcess({XaRecoverPath(), "--config", config_, "force", "commit",
                                     global, "--reason", "ticket OPS-42: customer confirmed"}, {});
  ASSERT_TRUE(forced.Exited(0)) << forced.Describe();
  EXPECT_NE(forced.output.find("2 committed"), std::string::npos) << forced.output;

  LogOptions options;
  options.dir = log_dir_;
  options.node_id = node_id_;
  auto state = DecisionLog::ReadState(options);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  auto parsed = Xid::Parse(global);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(state->open_heuristics.count(*parsed), 1u);
  EXPECT_NE(state->open_heuristics[*parsed].reason.find("ticket OPS-42"), std::string::npos);

  ProcessResult resolved = Recover("resolve");
  ASSERT_TRUE(resolved.Exited(5)) << "heuristics await the operator: " << resolved.Describe();
  auto snapshot = bank_->Snapshot(node_id_);
  ASSERT_TRUE(snapshot.ok());
  Status invariants = bank_->CheckInvariants(*snapshot, ReadAcknowledged(ack_file_));
  EXPECT_TRUE(invariants.ok()) << invariants.ToString();
  EXPECT_EQ(snapshot->mariadb_transfers.count(bank::GtridHex(*parsed)), 1u);
}

// R2: a database server is killed (kill -9) while branches are prepared, then restarted.
TEST_F(CrashRecoveryTest, DatabaseKilledAfterPrepareRecoversAfterRestart) {
  for (const char* server : {"kill-mariadb", "kill-pg"}) {
    ProcessResult worker = RunWorker("after-decision-sync", 3, /*threads=*/2, /*transfers=*/40);
    ASSERT_TRUE(worker.KilledBy(SIGKILL)) << worker.Describe();
    std::string script = RequireEnv("XA_TEST_SERVERS_SCRIPT");
    ProcessResult killed = RunProcess({"/bin/bash", script, server}, {});
    ASSERT_TRUE(killed.Exited(0)) << killed.Describe();
    ProcessResult while_down = Recover("resolve");
    EXPECT_TRUE(while_down.Exited(1) || while_down.Exited(0)) << while_down.Describe();
    ProcessResult started = RunProcess({"/bin/bash", script, "start"}, {});
    ASSERT_TRUE(started.Exited(0)) << started.Describe();
    // The bank's own sessions were cut by the restart: reconnect them.
    auto bank = bank::Bank::Connect(bank_->settings());
    ASSERT_TRUE(bank.ok()) << bank.status().ToString();
    bank_ = std::move(bank).value();
    ProcessResult resolved = Recover("resolve");
    ASSERT_TRUE(resolved.Exited(0)) << server << ": " << resolved.Describe();
    ExpectConvergedAndIdempotent();
  }
}

}  // namespace
}  // namespace xa::test
