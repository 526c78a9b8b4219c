// The bank of examples/bank on tables of its own, with both real xa-agent processes serving its
// two resource managers: the set-up of the tests that run tests/recovery/bank_worker through 3PC
// (the coordinator crash tests and the coordinator-and-agent kill soak).

#ifndef XA_TESTS_AGENT_BANK_WITH_AGENTS_H_
#define XA_TESTS_AGENT_BANK_WITH_AGENTS_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "examples/bank/bank.h"
#include "tests/agent/agent_processes.h"
#include "tests/recovery/crash_harness.h"
#include "tests/testutil/status_matchers.h"

namespace xa::test {

// Connects the bank on the tables of `prefix` and resets its accounts, then starts the two agents
// of node `node` (files in `scratch`) for its resource managers; `before_start` may set up the
// agents first (routes through relays). Fails the test on any error (call it under
// ASSERT_NO_FATAL_FAILURE).
inline void StartBankAndAgents(const std::string& prefix, uint32_t node, const ScratchDir& scratch,
                               std::unique_ptr<bank::Bank>* bank,
                               std::unique_ptr<AgentPair>* agents,
                               const std::function<void(AgentPair&)>& before_start = {}) {
  Result<bank::BankSettings> settings = bank::SettingsFromEnvironment();
  ASSERT_THAT(settings, IsOk());
  settings->table_prefix = prefix;
  Result<std::unique_ptr<bank::Bank>> connected = bank::Bank::Connect(*settings);
  ASSERT_THAT(connected, IsOk());
  *bank = std::move(*connected);
  ASSERT_THAT((*bank)->Reset(), IsOk());
  *agents = std::make_unique<AgentPair>(node, scratch, settings->mariadb.rm_name,
                                        settings->postgres.rm_name);
  if (before_start) before_start(**agents);
  ASSERT_NO_FATAL_FAILURE((*agents)->StartBoth());
}

}  // namespace xa::test

#endif  // XA_TESTS_AGENT_BANK_WITH_AGENTS_H_
