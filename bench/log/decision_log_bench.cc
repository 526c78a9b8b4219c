// Decision-log benchmark: what group commit buys, and how long a replay takes.
//
//   decision_log_bench [--benchmark_* flags]
//
// Runs in $XA_BENCH_DIR (default: ./xa-bench-log under the current directory): run it on the
// disk the log will live on, never on tmpfs. Prints Google Benchmark's table, then a summary:
//   - one write()+fdatasync() of a record-sized buffer (the unit everything is measured in);
//   - appends/s and p50/p99 append latency with one fdatasync per record
//     (LogOptions::group_commit_max_records = 1), with group commit as the manager uses it (the
//     default options), and with group commit and the adaptive gather
//     (LogOptions::group_commit_adaptive_gather), at 1, 8 and 64 concurrent appenders;
//   - records per fdatasync of each run (LogSyncStats: how many appenders one sync carried);
//   - the ratio of group commit at 64 appenders to one fdatasync per record;
//   - the time to replay a 1,000,000-record log (DecisionLog::ReadState, page cache dropped
//     for the log files first with posix_fadvise).
// Each appender alternates a commit decision (two participants) and its end record, as a
// transaction manager does, so the state stays small.

#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "xa/decision_log.h"
#include "xa/env.h"
#include "xa/xid.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string BenchDir() {
  const char* env = std::getenv("XA_BENCH_DIR");
  std::string base = env != nullptr ? env : "./xa-bench-log";
  std::filesystem::create_directories(base);
  std::filesystem::permissions(base, std::filesystem::perms::owner_all);
  return std::filesystem::absolute(base).string();
}

xa::LogRecord MakeDecision(uint64_t id) {
  std::string gtrid = "bench-gtrid-" + std::to_string(id);
  xa::LogRecord r;
  r.type = xa::RecordType::kCommitDecision;
  r.xid = xa::Xid::Make(xa::Xid::kFormatId, gtrid, "").value();
  r.protocol = xa::Protocol::kTwoPhase;
  r.participants = {
      {"mariadb-accounts", xa::Xid::Make(xa::Xid::kFormatId, gtrid, "b1").value()},
      {"pg-ledger", xa::Xid::Make(xa::Xid::kFormatId, gtrid, "b2").value()}};
  return r;
}

xa::LogRecord MakeEnd(const xa::LogRecord& decision) {
  xa::LogRecord r;
  r.type = xa::RecordType::kEnd;
  r.xid = decision.xid;
  return r;
}

struct RunResult {
  uint64_t appends = 0;
  double seconds = 0;
  xa::LogSyncStats syncs;  // the log's count at the end of the run
  std::vector<uint32_t> latencies_ns;
};

std::mutex results_mu;
// The modes, BM_Append's argument.
enum Mode { kOneSyncPerRecord = 0, kGroupCommit = 1, kGroupCommitGather = 2 };
const char* ModeName(int mode) {
  switch (mode) {
    case kOneSyncPerRecord: return "one fdatasync per record";
    case kGroupCommit: return "group commit";
    default: return "group commit + gather";
  }
}
std::map<std::pair<int, int>, RunResult> results;  // (mode, appenders) -> last run

std::unique_ptr<xa::DecisionLog> shared_log;
Clock::time_point run_start;

void BM_Append(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  const int appenders = state.threads();
  std::string dir = BenchDir() + "/append-" + std::to_string(mode) + "-" +
                    std::to_string(appenders);
  if (state.thread_index() == 0) {
    std::filesystem::remove_all(dir);
    xa::LogOptions o;
    o.dir = dir;
    o.node_id = 1;
    o.group_commit_max_records = mode == kOneSyncPerRecord ? 1 : 0;
    o.group_commit_adaptive_gather = mode == kGroupCommitGather;
    auto log = xa::DecisionLog::Open(o);
    if (!log.ok()) {
      state.SkipWithError(log.status().ToString().c_str());
      return;
    }
    shared_log = std::move(log).value();
    std::lock_guard<std::mutex> lock(results_mu);
    results[{mode, appenders}] = RunResult();  // keep the last run only
  }
  // Records are built before timing: the benchmark measures the log, not the test data.
  std::vector<xa::LogRecord> records;
  for (uint64_t i = 0; i < 64; ++i) {
    records.push_back(MakeDecision(static_cast<uint64_t>(state.thread_index()) << 32 | i));
    records.push_back(MakeEnd(records.back()));
  }
  std::vector<uint32_t> latencies;
  latencies.reserve(1 << 16);
  size_t next = 0;
  if (state.thread_index() == 0) run_start = Clock::now();
  for (auto _ : state) {
    if (shared_log == nullptr) break;
    Clock::time_point t0 = Clock::now();
    xa::Result<uint64_t> lsn = shared_log->Append(records[next]);
    Clock::time_point t1 = Clock::now();
    if (!lsn.ok()) {
      state.SkipWithError(lsn.status().ToString().c_str());
      break;
    }
    latencies.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
    next = (next + 1) % records.size();
  }
  double seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
  // Every thread adds its own figures once the loop (and its end barrier) is done; thread 0
  // reset them before the loop's start barrier.
  {
    std::lock_guard<std::mutex> lock(results_mu);
    RunResult& r = results[{mode, appenders}];
    r.appends += latencies.size();
    r.seconds = std::max(r.seconds, seconds);
    r.latencies_ns.insert(r.latencies_ns.end(), latencies.begin(), latencies.end());
  }
  state.counters["appends/s"] =
      benchmark::Counter(static_cast<double>(latencies.size()), benchmark::Counter::kIsRate);
  if (state.thread_index() == 0) {
    if (shared_log != nullptr) {
      // Every thread's loop is over (the loop ends at a barrier): every append is counted.
      std::lock_guard<std::mutex> lock(results_mu);
      results[{mode, appenders}].syncs = shared_log->SyncStats();
    }
    shared_log.reset();
    std::filesystem::remove_all(dir);
  }
}
BENCHMARK(BM_Append)->Arg(kOneSyncPerRecord)->Threads(1)->Threads(64)->UseRealTime()->MinTime(1.0)
    ->ArgName("mode");
BENCHMARK(BM_Append)->Arg(kGroupCommit)->Threads(1)->Threads(8)->Threads(64)->UseRealTime()
    ->MinTime(1.0)->ArgName("mode");
BENCHMARK(BM_Append)->Arg(kGroupCommitGather)->Threads(8)->Threads(64)->UseRealTime()
    ->MinTime(1.0)->ArgName("mode");

// One record-sized write() + fdatasync() on the benchmark disk.
std::vector<uint32_t> fdatasync_ns;
void BM_RawFdatasync(benchmark::State& state) {
  std::string path = BenchDir() + "/raw-fdatasync";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  std::string record(150, 'r');
  fdatasync_ns.clear();
  for (auto _ : state) {
    Clock::time_point t0 = Clock::now();
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write/fdatasync failed");
      break;
    }
    fdatasync_ns.push_back(static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count()));
  }
  ::close(fd);
  ::unlink(path.c_str());
}
BENCHMARK(BM_RawFdatasync)->UseRealTime()->MinTime(1.0);

// Builds a log of exactly 1,000,000 records (decision/end pairs) once, without fdatasyncs.
class NoSyncEnv : public xa::EnvWrapper {
 public:
  NoSyncEnv() : EnvWrapper(xa::Env::Default()) {}
  xa::Result<std::unique_ptr<xa::WritableFile>> NewWritableFile(const std::string& p) override {
    auto f = target()->NewWritableFile(p);
    if (!f.ok()) return f;
    return std::unique_ptr<xa::WritableFile>(new File(std::move(f).value()));
  }
  xa::Status SyncDir(const std::string&) override { return xa::Status::Ok(); }

 private:
  class File : public xa::WritableFile {
   public:
    explicit File(std::unique_ptr<xa::WritableFile> f) : f_(std::move(f)) {}
    xa::Status Append(std::string_view d) override { return f_->Append(d); }
    xa::Status Sync() override { return xa::Status::Ok(); }
    xa::Status Close() override { return f_->Close(); }

   private:
    std::unique_ptr<xa::WritableFile> f_;
  };
};

constexpr uint64_t kReplayRecords = 1000000;
double replay_best_ms = 0;
uint64_t replay_bytes = 0;

void DropCache(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void BM_Replay1M(benchmark::State& state) {
  std::string dir = BenchDir() + "/replay-1m";
  std::filesystem::remove_all(dir);
  NoSyncEnv env;
  xa::LogOptions o;
  o.dir = dir;
  o.node_id = 1;
  o.env = &env;
  // One segment, so nothing rotates away: the 1,000,000 records take about 89 MB, under the
  // largest segment the log allows (256 MiB; Open refuses more).
  o.segment_size_bytes = 256ull << 20;
  {
    auto log = xa::DecisionLog::Open(o);
    if (!log.ok()) {
      state.SkipWithError(log.status().ToString().c_str());
      return;
    }
    // Open wrote one checkpoint record; 999,999 more: decisions and their ends, the last
    // decision left open.
    for (uint64_t i = 0; i < kReplayRecords - 1; ++i) {
      xa::LogRecord d = MakeDecision(i / 2);
      if (!(*log)->Append(i % 2 == 0 ? d : MakeEnd(d)).ok()) {
        state.SkipWithError("append failed");
        return;
      }
    }
  }
  replay_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".xalog") replay_bytes += e.file_size();
  }
  o.env = nullptr;
  replay_best_ms = 1e18;
  for (auto _ : state) {
    state.PauseTiming();
    DropCache(dir);
    state.ResumeTiming();
    Clock::time_point t0 = Clock::now();
    xa::Result<xa::LogState> s = xa::DecisionLog::ReadState(o);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!s.ok() || s->open_decisions.size() != 1 || s->last_lsn != kReplayRecords) {
      state.SkipWithError("replay did not find the expected state");
      break;
    }
    replay_best_ms = std::min(replay_best_ms, ms);
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Replay1M)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();

double Percentile(std::vector<uint32_t> v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k] / 1000.0;
}

std::string FileSystemOf(const std::string& dir) {
  struct statfs fs;
  if (::statfs(dir.c_str(), &fs) != 0) return "unknown file system";
  switch (static_cast<unsigned long>(fs.f_type)) {  // NOLINT(runtime/int)
    case 0xEF53: return "ext2/3/4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs: NOT A DISK, the figures mean nothing";
    default: return "file system type " + std::to_string(fs.f_type);
  }
}

double RecordsPerSync(const RunResult& r) {
  return r.syncs.syncs > 0
             ? static_cast<double>(r.syncs.records) / static_cast<double>(r.syncs.syncs)
             : 0;
}

void PrintSummary() {
  double sync_p50 = Percentile(fdatasync_ns, 0.5);
  std::string dir = BenchDir();
  std::printf("\nDecision log in %s (%s), records of ~150 bytes (2 participants)\n", dir.c_str(),
              FileSystemOf(dir).c_str());
  std::printf("one write()+fdatasync(): p50 %.1f us, p99 %.1f us (%zu samples)\n\n", sync_p50,
              Percentile(fdatasync_ns, 0.99), fdatasync_ns.size());
  std::printf("%-26s %9s %12s %10s %10s %12s %12s\n", "mode", "appenders", "appends/s",
              "p50 us", "p99 us", "p99/fsync", "records/sync");
  double per_record_1 = 0;
  for (const auto& [key, r] : results) {
    double rate = r.seconds > 0 ? static_cast<double>(r.appends) / r.seconds : 0;
    double p99 = Percentile(r.latencies_ns, 0.99);
    std::printf("%-26s %9d %12.0f %10.1f %10.1f %12.2f %12.1f\n", ModeName(key.first),
                key.second, rate, Percentile(r.latencies_ns, 0.5), p99,
                sync_p50 > 0 ? p99 / sync_p50 : 0, RecordsPerSync(r));
    if (key.first == kOneSyncPerRecord && key.second == 1) per_record_1 = rate;
  }
  for (int mode : {kGroupCommit, kGroupCommitGather}) {
    auto it = results.find({mode, 64});
    if (it == results.end()) continue;
    const RunResult& r = it->second;
    double rate = r.seconds > 0 ? static_cast<double>(r.appends) / r.seconds : 0;
    std::printf("\n%s @64:\n", ModeName(mode));
    std::printf("  ratio to one fdatasync per record: %.1f   (target >= 50)\n",
                per_record_1 > 0 ? rate / per_record_1 : 0);
    std::printf("  records per fdatasync: %.1f of 64 waiting at most   (target >= 48)\n",
                RecordsPerSync(r));
    std::printf("  p99 append latency / one fdatasync: %.2f   (target <= 3)\n",
                sync_p50 > 0 ? Percentile(r.latencies_ns, 0.99) / sync_p50 : 0);
  }
  std::printf("replay of %llu records (%.1f MB, cold page cache): %.0f ms   (target < 2000)\n",
              static_cast<unsigned long long>(kReplayRecords),  // NOLINT(runtime/int)
              static_cast<double>(replay_bytes) / 1e6, replay_best_ms);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  PrintSummary();
  return 0;
}
