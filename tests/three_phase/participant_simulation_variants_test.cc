// The simulation (participant_simulation.h) catches every broken variant of the participant's
// rules: a check of the checker, labelled `model` and left out of the sanitizer runs (tens of
// thousands of runs, whose only code beyond the rules test's is the deliberately broken rules).

#include <cstdint>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "tests/three_phase/participant_simulation.h"

namespace xa::three_phase::simulation {
namespace {

// The simulation is only worth its passes if it fails the rules the design forbids: each broken
// variant must produce a violation within the budget. The scheduler is deterministic, so the
// seed that catches each one is fixed (printed) until the machine or the scheduler changes.
constexpr uint64_t kVariantSeedBudget = 150000;

TEST(ParticipantSimulation, FindsAViolationInEveryBrokenVariant) {
  // Each variant runs where its mistake shows soonest: concurrent backups need a fourth
  // participant to split; a late MoveToPre shows soonest when rounds do not overlap.
  struct VariantCase {
    BrokenRuleForTesting broken;
    const char* name;
    uint32_t participants = 3;
    Timing timing = Timing::kWhatIsAwaited;
  };
  const VariantCase cases[] = {
      {BrokenRuleForTesting::kTextbookTimeouts, "textbook timeouts"},
      {BrokenRuleForTesting::kNoPromotionBeforeCommit, "no WAIT promotion before commit"},
      {BrokenRuleForTesting::kRestartedDecidesAlone, "restarted participant deciding alone"},
      {BrokenRuleForTesting::kEveryoneTerminates, "every participant terminating at once", 4},
      {BrokenRuleForTesting::kCountRestartedStates, "restarted states counted in rule b"},
      {BrokenRuleForTesting::kMoveToPreFromAnyRound, "MoveToPre accepted from any round", 3,
       Timing::kQuiescent},
      {BrokenRuleForTesting::kForgetsCommitWithoutTheCoordinator,
       "COMMIT forgotten before the coordinator sent it"},
  };
  for (const VariantCase& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    Budget budget;
    SimulationOptions options;
    options.participants = c.participants;
    options.broken = c.broken;
    options.timing = c.timing;
    uint64_t seed = 0;
    const std::string failure = RunSeeds(options, 1, kVariantSeedBudget, budget, &seed);
    EXPECT_FALSE(failure.empty()) << c.name << ": no violation in " << budget.runs << " runs";
    if (failure.empty()) continue;
    std::printf("%s: caught at seed %llu after %llu runs (%.2f s): %s\n", c.name,
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(budget.runs),
                SecondsSince(start), failure.substr(0, failure.find('\n')).c_str());
  }
}

}  // namespace
}  // namespace xa::three_phase::simulation
