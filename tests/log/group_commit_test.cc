// Group commit with many appending threads (also run under TSan: label "concurrent"): unique
// contiguous LSNs, shared fdatasyncs, and no acknowledged append lost to a power loss.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "log_test_util.h"
#include "src/testing/sync_points.h"
#include "testutil/fake_clock.h"
#include "testutil/fault_injection_env.h"
#include "xa/decision_log.h"
#include "xa/env.h"

namespace xa {
namespace {

using test::Decision;
using test::End;
using test::FaultInjectionEnv;
using test::ParticipantDecision;
using test::ParticipantDone;
using test::ParticipantPreCommit;
using test::ParticipantWait;
using test::ScratchDir;
using test::TestBranch;
using test::TestXid;

// Counts fdatasyncs and makes each one last `sync_delay`, so that appenders pile up behind it
// as they would behind a slow disk.
class CountingEnv : public EnvWrapper {
 public:
  explicit CountingEnv(std::chrono::microseconds sync_delay, Env* target = Env::Default())
      : EnvWrapper(target), delay_(sync_delay) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    auto f = target()->NewWritableFile(path);
    if (!f.ok()) return f;
    return std::unique_ptr<WritableFile>(new File(this, std::move(f).value()));
  }
  uint64_t syncs() const { return syncs_.load(); }

 private:
  class File : public WritableFile {
   public:
    File(CountingEnv* env, std::unique_ptr<WritableFile> f) : env_(env), f_(std::move(f)) {}
    Status Append(std::string_view d) override { return f_->Append(d); }
    Status Sync() override {
      env_->syncs_.fetch_add(1);
      std::this_thread::sleep_for(env_->delay_);
      return f_->Sync();
    }
    Status Close() override { return f_->Close(); }

   private:
    CountingEnv* env_;
    std::unique_ptr<WritableFile> f_;
  };
  std::chrono::microseconds delay_;
  std::atomic<uint64_t> syncs_{0};
};

LogOptions Options(const ScratchDir& dir, Env* env) {
  LogOptions o;
  o.dir = dir.log_dir();
  o.node_id = 3;
  o.env = env;
  return o;
}

TEST(GroupCommit, ConcurrentAppendsGetContiguousLsnsAndShareFdatasyncs) {
  ScratchDir dir;
  CountingEnv env(std::chrono::microseconds(2000));
  auto log = DecisionLog::Open(Options(dir, &env));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  uint64_t syncs_at_open = env.syncs();
  constexpr int kThreads = 16, kPerThread = 40;
  std::mutex mu;
  std::vector<uint64_t> lsns;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000 + static_cast<uint64_t>(i);
        for (const LogRecord& r : {Decision(id), End(id)}) {
          Result<uint64_t> lsn = (*log)->Append(r);
          if (!lsn.ok()) {
            failures.fetch_add(1);
            continue;
          }
          std::lock_guard<std::mutex> lock(mu);
          lsns.push_back(*lsn);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  const uint64_t appends = kThreads * kPerThread * 2;
  ASSERT_EQ(lsns.size(), appends);
  std::set<uint64_t> unique(lsns.begin(), lsns.end());
  ASSERT_EQ(unique.size(), appends);
  EXPECT_EQ(*unique.rbegin() - *unique.begin() + 1, appends);  // no gap, no reuse
  uint64_t syncs = env.syncs() - syncs_at_open;
  // While one fdatasync runs (2 ms here), the other 15 appenders queue and share the next.
  EXPECT_LT(syncs, appends / 4) << syncs << " fdatasyncs for " << appends << " appends";
  // The log's own count (what the decision-log bench prints as records per fdatasync) agrees.
  EXPECT_EQ((*log)->SyncStats().records, appends);
  EXPECT_EQ((*log)->SyncStats().syncs, syncs);
  EXPECT_TRUE((*log)->State().open_decisions.empty());
  EXPECT_EQ((*log)->State().last_lsn, *unique.rbegin());
}

TEST(GroupCommit, BatchLimitOfOneGivesOneFdatasyncPerRecord) {
  ScratchDir dir;
  CountingEnv env(std::chrono::microseconds(0));
  LogOptions o = Options(dir, &env);
  o.group_commit_max_records = 1;
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  uint64_t syncs_at_open = env.syncs();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 25; ++i) {
        EXPECT_TRUE((*log)->Append(Decision(static_cast<uint64_t>(t) * 100 + i)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(env.syncs() - syncs_at_open, 100u);
  EXPECT_EQ((*log)->SyncStats().syncs, 100u);
  EXPECT_EQ((*log)->SyncStats().records, 100u);
  EXPECT_EQ((*log)->State().open_decisions.size(), 100u);
}

// Appenders that append again as soon as their last append returned come back one by one
// after each batch. Without the adaptive gather the first of them leads at once and syncs
// almost alone while the rest queue behind it: batches alternate between 1 and 15 records
// here (8 per fdatasync). With it, that leader waits (at most half an fdatasync, 5 ms here)
// until as many appenders are queued as were waiting when the last batch ended, so nearly
// every fdatasync carries all 16.
TEST(GroupCommit, AdaptiveGatherKeepsEveryAppenderOfAClosedLoopInOneFdatasync) {
  ScratchDir dir;
  CountingEnv env(std::chrono::milliseconds(10));
  LogOptions o = Options(dir, &env);
  o.group_commit_adaptive_gather = true;
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  constexpr int kThreads = 16, kPerThread = 12;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000 + static_cast<uint64_t>(i);
        EXPECT_TRUE((*log)->Append(Decision(id)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  LogSyncStats stats = (*log)->SyncStats();
  ASSERT_EQ(stats.records, static_cast<uint64_t>(kThreads * kPerThread));
  double per_sync = static_cast<double>(stats.records) / static_cast<double>(stats.syncs);
  EXPECT_GE(per_sync, 12.0) << stats.syncs << " fdatasyncs for " << stats.records
                            << " records: the returning appenders were not gathered";

  // Alone now, an appender still gets through: the gather waits for the 16 only until half an
  // fdatasync has passed, then writes what is queued.
  ASSERT_TRUE((*log)->Append(Decision(99999)).ok());
  EXPECT_EQ((*log)->SyncStats().records, stats.records + 1);
  EXPECT_EQ((*log)->SyncStats().syncs, stats.syncs + 1);
  EXPECT_EQ((*log)->State().open_decisions.size(), static_cast<size_t>(kThreads * kPerThread + 1));
}

// The leader waits group_commit_max_delay_us on the Env's clock before it writes: every append
// that joins the queue meanwhile shares its one fdatasync. The fake clock holds the leader until
// all eight appends of a round are queued (a sync point counts them), so the batch size does not
// depend on how the machine schedules threads.
TEST(GroupCommit, OptionalDelayGathersEveryAppendQueuedWithinItIntoOneFdatasync) {
  ScratchDir dir;
  test::NoSyncEnv free_sync;  // fdatasync costs nothing: batches form only through the delay
  test::FakeClock clock;
  test::EnvWithClock timed(&free_sync, &clock);
  CountingEnv env(std::chrono::microseconds(0), &timed);
  LogOptions o = Options(dir, &env);
  o.group_commit_max_delay_us = 2000;
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  const uint64_t syncs_at_open = env.syncs();

  std::mutex mu;
  std::condition_variable queued_cv;
  int queued = 0;
  auto& sync_points = sync::SyncPoints::Instance();
  sync_points.SetCallback(sync::kLogAppendQueued, [&](void*) {
    std::lock_guard<std::mutex> lock(mu);
    ++queued;
    queued_cv.notify_all();
  });
  sync_points.EnableProcessing();

  constexpr int kRounds = 3;
  constexpr int kAppenders = 8;
  for (int round = 0; round < kRounds; ++round) {
    {
      std::lock_guard<std::mutex> lock(mu);
      queued = 0;
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kAppenders; ++t) {
      threads.emplace_back([&, t] {
        EXPECT_TRUE((*log)->Append(Decision(static_cast<uint64_t>(round * 100 + t))).ok());
      });
    }
    bool all_queued;
    {
      std::unique_lock<std::mutex> lock(mu);
      all_queued = queued_cv.wait_for(lock, std::chrono::seconds(30),
                                      [&] { return queued == kAppenders; });
    }
    // The leader sleeps on the fake clock; release it (also when the round failed, so that
    // the threads can be joined).
    EXPECT_TRUE(clock.WaitForBlocked(1)) << "round " << round << ": the leader never waited";
    clock.Advance(std::chrono::microseconds(o.group_commit_max_delay_us));
    for (auto& th : threads) th.join();
    EXPECT_TRUE(all_queued) << "round " << round << ": only " << queued << " appends queued";
    EXPECT_EQ(env.syncs() - syncs_at_open, static_cast<uint64_t>(round + 1))
        << "round " << round << ": the " << kAppenders << " appends did not share one fdatasync";
  }
  sync_points.DisableProcessing();
  sync_points.ClearAll();
  EXPECT_EQ((*log)->State().open_decisions.size(), static_cast<size_t>(kRounds * kAppenders));
}

// Eight appenders log decisions and end every other one, until the power goes. No acknowledged
// durable record may be lost. A lazy end may be lost, but not once a durable append that the
// same thread started after it has returned: that append's fdatasync covered it.
void PowerLossKeepsWhatWasPromised(int round, bool lazy_ends) {
  ScratchDir dir;
  FaultInjectionEnv env;
  LogOptions o = Options(dir, &env);
  // Rounds 0 and 1 keep every record in one segment, so every acknowledged LSN must be read
  // back; rounds 2 and 3 rotate (and delete finished segments) during the run.
  const bool rotate = round >= 2;
  if (rotate) o.segment_size_bytes = 8 << 10;
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::mutex mu;
  std::set<uint64_t> acked_decisions, acked_lsns;
  std::set<uint64_t> promised_ends;  // ends that must have survived
  std::atomic<uint64_t> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> lazy_ends_since_last_durable;
      for (uint64_t i = 0;; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000000 + i;
        Result<uint64_t> lsn = (*log)->Append(Decision(id));
        if (!lsn.ok()) return;
        {
          std::lock_guard<std::mutex> lock(mu);
          acked_decisions.insert(id);
          acked_lsns.insert(*lsn);
          promised_ends.insert(lazy_ends_since_last_durable.begin(),
                               lazy_ends_since_last_durable.end());
        }
        lazy_ends_since_last_durable.clear();
        acked.fetch_add(1);
        if (i % 2 == 1) {
          if (lazy_ends) {
            if (!(*log)->AppendLazy(End(id)).ok()) return;
            lazy_ends_since_last_durable.push_back(id);
          } else {
            lsn = (*log)->Append(End(id));
            if (!lsn.ok()) return;
            std::lock_guard<std::mutex> lock(mu);
            promised_ends.insert(id);
            acked_lsns.insert(*lsn);
          }
        }
      }
    });
  }
  while (acked.load() < 200u + 100u * static_cast<uint64_t>(round)) {
    std::this_thread::yield();
  }
  env.SetFilesystemActive(false);  // the power goes
  for (auto& th : threads) th.join();
  env.DropUnsyncedData();
  env.SetFilesystemActive(true);
  log->reset();

  if (!rotate) {
    // The old segment holds never-ended decisions, so the open keeps it: Scan reads it all.
    std::set<uint64_t> on_disk;
    auto opened = DecisionLog::Open(Options(dir, nullptr));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    ASSERT_TRUE((*opened)->Scan([&](const LogRecord& r) { on_disk.insert(r.lsn); }).ok());
    size_t missing = 0;
    for (uint64_t lsn : acked_lsns) missing += on_disk.count(lsn) == 0;
    EXPECT_EQ(missing, 0u) << "acknowledged LSNs lost in round " << round;
  }
  auto reopened = DecisionLog::Open(Options(dir, nullptr));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  LogState s = (*reopened)->State();
  size_t lost = 0;
  for (uint64_t id : acked_decisions) {
    if (promised_ends.count(id)) {
      EXPECT_FALSE(s.open_decisions.count(TestXid(id))) << "acknowledged end lost: " << id;
    } else if (id % 2 == 0 && !s.open_decisions.count(TestXid(id))) {
      ++lost;  // even ids never get an end: they must all be open
    }
  }
  EXPECT_EQ(lost, 0u) << "round " << round;
}

TEST(GroupCommit, PowerLossNeverLosesAnAcknowledgedAppend) {
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    PowerLossKeepsWhatWasPromised(round, /*lazy_ends=*/false);
  }
}

TEST(GroupCommit, PowerLossLosesALazyEndOnlyBeforeTheNextDurableAppend) {
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    PowerLossKeepsWhatWasPromised(round, /*lazy_ends=*/true);
  }
}

TEST(GroupCommit, LazyEndsTakeNoFdatasyncAndRideOnTheNextDecision) {
  ScratchDir dir;
  CountingEnv counting(std::chrono::microseconds(0));
  auto log = DecisionLog::Open(Options(dir, &counting));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  ASSERT_TRUE((*log)->Append(Decision(1)).ok());
  ASSERT_TRUE((*log)->Append(Decision(2)).ok());
  const uint64_t syncs = counting.syncs();
  for (uint64_t id : {1, 2}) {
    Status appended = (*log)->AppendLazy(End(id));
    ASSERT_TRUE(appended.ok()) << appended.ToString();
  }
  EXPECT_EQ(counting.syncs(), syncs) << "a lazy end paid for an fdatasync";
  EXPECT_TRUE((*log)->State().open_decisions.empty()) << "lazy ends apply to the state at once";
  Result<uint64_t> third = (*log)->Append(Decision(3));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(counting.syncs(), syncs + 1);
  EXPECT_EQ(*third, (*log)->State().last_lsn);

  // Only end records may be lazy: a decision must be durable before Append returns.
  Status lazy_decision = (*log)->AppendLazy(Decision(4));
  EXPECT_EQ(lazy_decision.code(), Code::kInval) << lazy_decision.ToString();
}

TEST(GroupCommit, LazyEndsAreMadeDurableByTheNextDecisionAndAtClose) {
  ScratchDir dir;
  {
    // The power goes after a lazy end that a later decision's fdatasync covered, and after one
    // that nothing covered.
    FaultInjectionEnv env;
    auto log = DecisionLog::Open(Options(dir, &env));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_TRUE((*log)->Append(Decision(1)).ok());
    ASSERT_TRUE((*log)->AppendLazy(End(1)).ok());
    ASSERT_TRUE((*log)->Append(Decision(2)).ok());
    ASSERT_TRUE((*log)->AppendLazy(End(2)).ok());
    env.SetFilesystemActive(false);
    env.DropUnsyncedData();
    env.SetFilesystemActive(true);
    log->reset();
  }
  {
    auto log = DecisionLog::Open(Options(dir, nullptr));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    LogState s = (*log)->State();
    EXPECT_FALSE(s.open_decisions.count(TestXid(1))) << "the end covered by decision 2 was lost";
    EXPECT_TRUE(s.open_decisions.count(TestXid(2))) << "an unsynced lazy end survived power loss";
  }
  {
    // A clean close syncs what is lazy: nothing is left for recovery to repeat.
    FaultInjectionEnv env;
    auto log = DecisionLog::Open(Options(dir, &env));
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    ASSERT_TRUE((*log)->AppendLazy(End(2)).ok());
    log->reset();
    env.DropUnsyncedData();
  }
  auto log = DecisionLog::Open(Options(dir, nullptr));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  EXPECT_TRUE((*log)->State().open_decisions.empty());
}

TEST(GroupCommit, LazyEndsFromManyThreadsAreAllWrittenAndRotationKeepsThem) {
  // Lazy ends racing durable decisions and rotations: every end is on disk after a clean
  // close, whoever wrote it (its own appender, or the leader of a batch in progress).
  ScratchDir dir;
  LogOptions o = Options(dir, nullptr);
  o.segment_size_bytes = 4 << 10;
  {
    auto log = DecisionLog::Open(o);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; i < 150; ++i) {
          uint64_t id = static_cast<uint64_t>(t) * 1000 + i;
          ASSERT_TRUE((*log)->Append(Decision(id)).ok());
          ASSERT_TRUE((*log)->AppendLazy(End(id)).ok());
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_TRUE((*log)->State().open_decisions.empty());
  }
  auto reopened = DecisionLog::Open(Options(dir, nullptr));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_TRUE((*reopened)->State().open_decisions.empty());
}

TEST(GroupCommit, StateAndRotationAreSafeWhileAppending) {
  ScratchDir dir;
  LogOptions o = Options(dir, nullptr);
  o.segment_size_bytes = 4 << 10;
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      LogState s = (*log)->State();
      EXPECT_LE(s.open_decisions.size(), 8u);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 60; ++i) {
        uint64_t id = static_cast<uint64_t>(t) * 1000 + i;
        EXPECT_TRUE((*log)->Append(Decision(id)).ok());
        EXPECT_TRUE((*log)->Append(End(id)).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  stop.store(true);
  reader.join();
  EXPECT_TRUE((*log)->State().open_decisions.empty());
  log->reset();
  auto reopened = DecisionLog::Open(o);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_TRUE((*reopened)->State().open_decisions.empty());
}

// --- The 3PC participant records on the group-committed path --------------------------------

// Holds every fdatasync while the gate is shut, and says when one is waiting: a batch can be
// kept "written, not yet durable" for as long as a test needs.
class GatedSyncEnv : public EnvWrapper {
 public:
  explicit GatedSyncEnv(Env* target) : EnvWrapper(target) {}
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    auto f = target()->NewWritableFile(path);
    if (!f.ok()) return f;
    return std::unique_ptr<WritableFile>(new File(this, std::move(f).value()));
  }
  void Shut() {
    std::lock_guard<std::mutex> lock(mu_);
    shut_ = true;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    shut_ = false;
    cv_.notify_all();
  }
  bool WaitForHeldSync() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return held_ > 0; });
  }

 private:
  class File : public WritableFile {
   public:
    File(GatedSyncEnv* env, std::unique_ptr<WritableFile> f) : env_(env), f_(std::move(f)) {}
    Status Append(std::string_view d) override { return f_->Append(d); }
    Status Sync() override {
      {
        std::unique_lock<std::mutex> lock(env_->mu_);
        ++env_->held_;
        env_->cv_.notify_all();
        env_->cv_.wait(lock, [&] { return !env_->shut_; });
        --env_->held_;
      }
      return f_->Sync();
    }
    Status Close() override { return f_->Close(); }

   private:
    GatedSyncEnv* env_;
    std::unique_ptr<WritableFile> f_;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  bool shut_ = false;
  int held_ = 0;
};

// The state applies a record once it is durable; a participant record must be judged against
// the records before it that are still being written, or two appends could put on disk a
// history that replay refuses (a second Wait, a PreCommit before its Wait was applied).
TEST(GroupCommit, ParticipantRecordIsJudgedAgainstTheRecordsStillBeingWritten) {
  ScratchDir dir;
  FaultInjectionEnv disk;
  GatedSyncEnv env(&disk);
  auto log = DecisionLog::Open(Options(dir, &env));
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  const Xid branch = TestBranch(1, 0);

  std::mutex mu;
  std::condition_variable queued_cv;
  int queued = 0;
  auto& sync_points = sync::SyncPoints::Instance();
  sync_points.SetCallback(sync::kLogAppendQueued, [&](void*) {
    std::lock_guard<std::mutex> lock(mu);
    ++queued;
    queued_cv.notify_all();
  });
  sync_points.EnableProcessing();
  auto wait_queued = [&](int n) {
    std::unique_lock<std::mutex> lock(mu);
    return queued_cv.wait_for(lock, std::chrono::seconds(30), [&] { return queued >= n; });
  };

  env.Shut();
  Result<uint64_t> wait_lsn = Status(Code::kInternal, "not run");
  Result<uint64_t> pre_lsn = Status(Code::kInternal, "not run");
  std::thread voter([&] { wait_lsn = (*log)->Append(ParticipantWait(1, 0, 2)); });
  EXPECT_TRUE(env.WaitForHeldSync()) << "the Wait never reached its fdatasync";
  EXPECT_FALSE((*log)->State().open_participants.contains(branch))
      << "the Wait is not durable yet, so it is not in the state";

  // Against the state alone a second Wait would pass; against the Wait being written it is a
  // second vote. Refused at once, without waiting for the fdatasync.
  Result<uint64_t> second = (*log)->Append(ParticipantWait(1, 0, 2));
  EXPECT_EQ(second.ok() ? Code::kOk : second.status().code(), Code::kProto);
  // A lazy done would be written before the Wait's batch: refused while the Wait is in flight.
  EXPECT_EQ((*log)->AppendLazy(ParticipantDone(1, 0)).code(), Code::kInval);
  // A PreCommit follows the Wait being written: accepted, and queued behind it.
  std::thread pre([&] { pre_lsn = (*log)->Append(ParticipantPreCommit(1, 0)); });
  EXPECT_TRUE(wait_queued(2)) << "the PreCommit was not queued while the Wait was in flight";
  env.Open();
  voter.join();
  pre.join();
  sync_points.DisableProcessing();
  sync_points.ClearAll();
  ASSERT_TRUE(wait_lsn.ok()) << wait_lsn.status().ToString();
  ASSERT_TRUE(pre_lsn.ok()) << pre_lsn.status().ToString();
  EXPECT_GT(*pre_lsn, *wait_lsn);
  LogState live = (*log)->State();
  ASSERT_TRUE(live.open_participants.contains(branch));
  EXPECT_EQ(live.open_participants.at(branch).type, RecordType::kParticipantPreCommit);
  EXPECT_EQ(live.open_participants.at(branch).lsn, *pre_lsn);

  // Both were durable when Append returned: a power loss now keeps them.
  disk.SetFilesystemActive(false);
  disk.DropUnsyncedData();
  disk.SetFilesystemActive(true);
  log->reset();
  auto reopened = DecisionLog::Open(Options(dir, nullptr));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->State().open_participants, live.open_participants);
}

// Many agents' participants moving through their states on many threads, until the power goes:
// each participant is found in the state of its last acknowledged record, or a later one (a
// record whose fdatasync completed just before the power went may not have been acknowledged).
TEST(GroupCommit, PowerLossNeverLosesAnAcknowledgedParticipantState) {
  ScratchDir dir;
  FaultInjectionEnv env;
  LogOptions o = Options(dir, &env);
  o.segment_size_bytes = 8 << 10;  // rotations carry participants in checkpoints
  auto log = DecisionLog::Open(o);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::mutex mu;
  std::map<Xid, int> acked_rank;  // 1 wait, 2 pre-commit, 3 decided
  std::atomic<uint64_t> acked{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0;; ++i) {
        const uint64_t id = static_cast<uint64_t>(t) * 1000000 + i;
        const uint16_t number = static_cast<uint16_t>(i % 2);
        const LogRecord steps[] = {ParticipantWait(id, number, 2), ParticipantPreCommit(id, number),
                                   ParticipantDecision(id, Outcome::kCommitted, number)};
        const int last_step = static_cast<int>(i % 3);  // stop in WAIT, PRE or decided
        for (int step = 0; step <= last_step; ++step) {
          if (!(*log)->Append(steps[step]).ok()) return;
          std::lock_guard<std::mutex> lock(mu);
          acked_rank[TestBranch(id, number)] = step + 1;
        }
        acked.fetch_add(1);
      }
    });
  }
  while (acked.load() < 300u) std::this_thread::yield();
  env.SetFilesystemActive(false);  // the power goes
  for (auto& th : threads) th.join();
  env.DropUnsyncedData();
  env.SetFilesystemActive(true);
  log->reset();

  auto reopened = DecisionLog::Open(Options(dir, nullptr));
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  const LogState s = (*reopened)->State();
  auto rank = [](const LogRecord& r) {
    switch (r.type) {
      case RecordType::kParticipantWait:
        return 1;
      case RecordType::kParticipantPreCommit:
        return 2;
      case RecordType::kParticipantDecision:
        return 3;
      default:
        return 0;
    }
  };
  size_t lost = 0;
  for (const auto& [branch, want] : acked_rank) {
    auto it = s.open_participants.find(branch);
    if (it == s.open_participants.end() || rank(it->second) < want) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << acked_rank.size() << " acknowledged participants";
  EXPECT_GE(acked_rank.size(), 300u);
}

}  // namespace
}  // namespace xa
