// The demo's three-phase-commit act: two xa-agent processes beside the databases, a 3PC
// transfer, then a coordinator killed after every agent pre-committed and before it could say
// commit: the agents notice its silence, agree among themselves and commit both branches, with
// nobody running recovery. The coordinator's next start learns the outcome from the agents.

#ifndef XA_EXAMPLES_BANK_TRANSFER_THREE_PHASE_ACT_H_
#define XA_EXAMPLES_BANK_TRANSFER_THREE_PHASE_ACT_H_

#include <string>

#include "examples/bank/bank.h"

namespace xa::demo {

// The demo's node id and what the crashing copy needs to reach the agents.
struct ThreePhaseSetup {
  uint32_t node_id = 0;
  std::string log_dir;   // the coordinator's decision log
  std::string key_file;  // the agents' shared key
  std::string mariadb_agent_address;
  std::string postgres_agent_address;
};

// Runs the act in `work` (a private directory) with the xa-agent program at `agent_path`;
// `self` is this program, started again as the crashing copy. Prints what happens; true when
// every transfer ended on both databases or on neither and the agents stopped cleanly.
bool RunThreePhaseAct(const bank::Bank& bank, const std::string& work,
                      const std::string& agent_path, const std::string& self);

// The crashing copy (argv: --three-phase-crashing-child <log_dir> <key_file> <mariadb agent>
// <postgres agent>): one 3PC transfer, killed by the crash point once every agent pre-committed.
int RunThreePhaseCrashingChild(const bank::BankSettings& settings, const ThreePhaseSetup& setup);

}  // namespace xa::demo

#endif  // XA_EXAMPLES_BANK_TRANSFER_THREE_PHASE_ACT_H_
