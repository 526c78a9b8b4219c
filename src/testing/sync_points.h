// Named sync points: places where a test can order threads or run code of its own, without a
// sleep_for that guesses how long the other thread takes (after rocksdb's SyncPoint).
//
//   XA_TEST_SYNC_POINT(kNetConnectionClosedByPeer);
//   XA_TEST_SYNC_POINT_CALLBACK(kSomePoint, &value);   // the callback gets &value
//
// The names are constants beside the crash points (crash_points.h), so a typo fails to compile
// (tests/unit/sync_point_typo.cc proves it). Points exist only in builds configured with
// -DXA_ENABLE_TEST_HOOKS=ON; in other builds the macros compile to nothing.
//
// In a test:
//
//   auto& sp = sync::SyncPoints::Instance();
//   sp.LoadDependency({{sync::kA, sync::kB}});  // a thread reaching B waits until A was passed
//   sp.SetCallback(sync::kC, [](void* arg) { ... });
//   sp.EnableProcessing();
//   ... run the threads ...
//   sp.DisableProcessing();
//   sp.ClearAll();
//
// "A before B": a thread that reaches B waits until some thread has passed A since the
// dependency was loaded (or the last ClearTrace); once A was passed, B never waits again. Each
// point's callback runs on the thread that reaches the point, after its waits, before the point
// counts as passed. DisableProcessing() releases every waiting thread, so a test that fails
// half-way does not leave threads blocked.
//
// Adding a point: a constant below (a new, unique name), listed in AllPoints() in the .cc.
// Tests may declare test-only points of their own in namespace xa::sync.
//
// Thread-safe; the registry is one per process.

#ifndef XA_SRC_TESTING_SYNC_POINTS_H_
#define XA_SRC_TESTING_SYNC_POINTS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace xa::sync {

struct Point {
  std::string_view name;
};

// Network transport (src/net).
inline constexpr Point kNetConnectionAccepted{"net-connection-accepted"};  // listener queued it
inline constexpr Point kNetMessageQueued{"net-message-queued"};  // a frame reached the inbox
inline constexpr Point kNetConnectionClosedByPeer{"net-connection-closed-by-peer"};  // EOF read

// Decision log (recovery-log).
inline constexpr Point kLogAppendQueued{"log-append-queued"};  // an append joined the batch queue

// Three-phase coordinator (src/tm): every agent voted yes and the pre-commit record is durable;
// no PreCommit sent yet (the same moment as the crash point kAfterPreCommitRecord).
inline constexpr Point kThreePhaseBeforePreCommit{"three-phase-before-pre-commit"};
// The decision notifier (src/tm/decision_notifier.h) is about to tell one agent DoCommit: the
// transaction is committed and Commit() may have returned.
inline constexpr Point kThreePhaseBeforeDoCommit{"three-phase-before-do-commit"};
// Every point, for tests that iterate over them.
std::span<const Point> AllPoints() noexcept;

class SyncPoints {
 public:
  static SyncPoints& Instance();

  // Replaces the dependencies: for each {before, after}, a thread reaching `after` waits until
  // `before` was passed. Also clears the trace of passed points.
  void LoadDependency(std::vector<std::pair<Point, Point>> happens_before);
  // The callback of `point` (one per point; a new one replaces the old).
  void SetCallback(const Point& point, std::function<void(void*)> callback);
  void ClearCallback(const Point& point);
  // Forgets which points were passed (dependencies wait again) and the hit counts.
  void ClearTrace();
  // Dependencies, callbacks and trace.
  void ClearAll();

  // Points are processed only between EnableProcessing and DisableProcessing; elsewhere they
  // cost one relaxed atomic load.
  void EnableProcessing();
  void DisableProcessing();

  // Times `point` was passed while processing was enabled, since the last ClearTrace.
  uint64_t Hits(const Point& point) const;

  // What the macros call.
  void Process(const Point& point, void* arg);

 private:
  SyncPoints() = default;

  mutable std::mutex mu_;
  std::condition_variable passed_;  // a point was passed, or processing was disabled
  std::atomic<bool> enabled_{false};  // written under mu_; read without it on the fast path
  std::map<std::string_view, std::vector<std::string_view>> predecessors_;  // guarded by mu_
  std::map<std::string_view, std::function<void(void*)>> callbacks_;        // guarded by mu_
  std::map<std::string_view, uint64_t> hits_;                              // guarded by mu_
  std::set<std::string_view> passed_points_;                               // guarded by mu_
};

}  // namespace xa::sync

#if defined(XA_ENABLE_TEST_HOOKS)
#define XA_TEST_SYNC_POINT(point) \
  ::xa::sync::SyncPoints::Instance().Process(::xa::sync::point, nullptr)
#define XA_TEST_SYNC_POINT_CALLBACK(point, arg) \
  ::xa::sync::SyncPoints::Instance().Process(::xa::sync::point, (arg))
#else
#define XA_TEST_SYNC_POINT(point) static_cast<void>(::xa::sync::point)
#define XA_TEST_SYNC_POINT_CALLBACK(point, arg) static_cast<void>(::xa::sync::point)
#endif

#endif  // XA_SRC_TESTING_SYNC_POINTS_H_
