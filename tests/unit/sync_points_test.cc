// Sync points order threads without sleep_for (src/testing/sync_points.h).

#include "src/testing/sync_points.h"

#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace xa::sync {
// Test-only points, declared where the macros look for them.
inline constexpr Point kTestFirst{"test-first"};
inline constexpr Point kTestSecond{"test-second"};
inline constexpr Point kTestThird{"test-third"};
inline constexpr Point kTestWithCallback{"test-with-callback"};

namespace {

#if defined(XA_ENABLE_TEST_HOOKS)
constexpr bool kHooks = true;
#else
constexpr bool kHooks = false;
#endif

class SyncPointsTest : public ::testing::Test {
 protected:
  void SetUp() override { sp_.ClearAll(); }
  void TearDown() override {
    sp_.DisableProcessing();
    sp_.ClearAll();
  }

  // The order in which threads reached the places they record.
  void Record(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    order_.push_back(what);
  }
  std::vector<std::string> order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

  SyncPoints& sp_ = SyncPoints::Instance();
  std::mutex mu_;
  std::vector<std::string> order_;
};

// The dependency is what orders the threads: the thread at kTestSecond starts first, and
// without the dependency would record first.
TEST_F(SyncPointsTest, ASecondPointWaitsUntilTheFirstWasPassed) {
  sp_.LoadDependency({{kTestFirst, kTestSecond}});
  sp_.EnableProcessing();
  std::thread second([&] {
    sp_.Process(kTestSecond, nullptr);
    Record("second");
  });
  std::thread first([&] {
    Record("first");
    sp_.Process(kTestFirst, nullptr);
  });
  first.join();
  second.join();
  EXPECT_EQ(order(), (std::vector<std::string>{"first", "second"}));
  EXPECT_EQ(sp_.Hits(kTestFirst), 1u);
  EXPECT_EQ(sp_.Hits(kTestSecond), 1u);
}

// Each thread records in its point's callback, which runs after the point's waits and before
// the point counts as passed: the order of the records is the order the dependencies impose.
TEST_F(SyncPointsTest, AChainOfDependenciesRunsThreeThreadsInOrder) {
  sp_.LoadDependency({{kTestFirst, kTestSecond}, {kTestSecond, kTestThird}});
  sp_.SetCallback(kTestFirst, [&](void*) { Record("first"); });
  sp_.SetCallback(kTestSecond, [&](void*) { Record("second"); });
  sp_.SetCallback(kTestThird, [&](void*) { Record("third"); });
  sp_.EnableProcessing();
  std::vector<std::thread> threads;
  threads.emplace_back([&] { sp_.Process(kTestThird, nullptr); });
  threads.emplace_back([&] { sp_.Process(kTestSecond, nullptr); });
  threads.emplace_back([&] { sp_.Process(kTestFirst, nullptr); });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(order(), (std::vector<std::string>{"first", "second", "third"}));
}

TEST_F(SyncPointsTest, TheCallbackRunsAtThePointBeforeItCountsAsPassed) {
  sp_.LoadDependency({{kTestWithCallback, kTestSecond}});
  sp_.SetCallback(kTestWithCallback, [&](void* arg) {
    *static_cast<int*>(arg) = 42;
    Record("callback");
  });
  sp_.EnableProcessing();
  int value = 0;
  std::thread waiter([&] {
    sp_.Process(kTestSecond, nullptr);
    Record("second");
  });
  sp_.Process(kTestWithCallback, &value);
  waiter.join();
  EXPECT_EQ(value, 42);
  EXPECT_EQ(order(), (std::vector<std::string>{"callback", "second"}));
}

TEST_F(SyncPointsTest, DisabledPointsNeitherWaitNorCallBackNorCount) {
  sp_.LoadDependency({{kTestFirst, kTestSecond}});
  int calls = 0;
  sp_.SetCallback(kTestSecond, [&](void*) { ++calls; });
  sp_.Process(kTestSecond, nullptr);  // would wait forever if processed
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(sp_.Hits(kTestSecond), 0u);
}

TEST_F(SyncPointsTest, DisableProcessingReleasesAThreadThatIsWaiting) {
  sp_.LoadDependency({{kTestFirst, kTestSecond}});
  sp_.EnableProcessing();
  std::thread waiter([&] { sp_.Process(kTestSecond, nullptr); });
  // Nothing ever passes kTestFirst: only DisableProcessing can let the waiter go, whether it is
  // already waiting or arrives after.
  sp_.DisableProcessing();
  waiter.join();
  EXPECT_EQ(sp_.Hits(kTestSecond), 0u);
}

TEST_F(SyncPointsTest, ClearTraceMakesADependencyWaitAgain) {
  sp_.LoadDependency({{kTestFirst, kTestSecond}});
  sp_.EnableProcessing();
  sp_.Process(kTestFirst, nullptr);
  sp_.Process(kTestSecond, nullptr);  // kTestFirst already passed: no wait
  EXPECT_EQ(sp_.Hits(kTestSecond), 1u);
  sp_.ClearTrace();
  EXPECT_EQ(sp_.Hits(kTestFirst), 0u);
  std::thread second([&] {
    sp_.Process(kTestSecond, nullptr);
    Record("second");
  });
  Record("first");
  sp_.Process(kTestFirst, nullptr);
  second.join();
  EXPECT_EQ(order(), (std::vector<std::string>{"first", "second"}));
}

TEST_F(SyncPointsTest, TheMacroProcessesThePointOnlyInBuildsWithTestHooks) {
  sp_.EnableProcessing();
  int value = 0;
  sp_.SetCallback(kTestWithCallback, [](void* arg) { *static_cast<int*>(arg) = 7; });
  XA_TEST_SYNC_POINT(kTestFirst);
  XA_TEST_SYNC_POINT_CALLBACK(kTestWithCallback, &value);
  EXPECT_EQ(sp_.Hits(kTestFirst), kHooks ? 1u : 0u);
  EXPECT_EQ(value, kHooks ? 7 : 0);
}

TEST(SyncPointNamesTest, LibraryPointNamesAreUniqueAndNotEmpty) {
  std::set<std::string_view> names;
  for (const Point& point : AllPoints()) {
    EXPECT_FALSE(point.name.empty());
    EXPECT_TRUE(names.insert(point.name).second) << point.name;
  }
  EXPECT_EQ(names.size(), AllPoints().size());
  EXPECT_GE(names.size(), 3u);
}

}  // namespace
}  // namespace xa::sync
