// The rules of the participant machine hold in every simulated run: agreement, validity and
// progress under crashes and reordering (the simulation is participant_simulation.h).

#include <cstdint>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "tests/three_phase/participant_simulation.h"

namespace xa::three_phase::simulation {
namespace {

// Both models of time, every size the brief names; about 2 s in all.
constexpr uint64_t kSeedsWhatIsAwaited = 5000;
constexpr uint64_t kSeedsQuiescent = 2000;

TEST(ParticipantSimulation, AgreementValidityAndProgressHoldUnderCrashesAndReordering) {
  const auto start = std::chrono::steady_clock::now();
  Budget budget;
  for (const Timing timing : {Timing::kWhatIsAwaited, Timing::kQuiescent}) {
    for (const uint32_t n : {3u, 2u, 4u}) {
      SimulationOptions options;
      options.participants = n;
      options.timing = timing;
      const uint64_t seeds = timing == Timing::kWhatIsAwaited ? kSeedsWhatIsAwaited
                                                              : kSeedsQuiescent;
      const std::string failure = RunSeeds(options, 1, seeds, budget);
      ASSERT_TRUE(failure.empty()) << failure;
    }
  }
  std::printf("simulated %llu runs, %llu steps in %.2f s\n",
              static_cast<unsigned long long>(budget.runs),
              static_cast<unsigned long long>(budget.steps), SecondsSince(start));
  EXPECT_EQ(budget.runs, 3 * (kSeedsWhatIsAwaited + kSeedsQuiescent));
}

}  // namespace
}  // namespace xa::three_phase::simulation
