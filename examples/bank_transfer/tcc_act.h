// The demo's TCC act: the shop's three participant services (examples/tcc_shop: order on MariaDB,
// funds on PostgreSQL, points on MariaDB, each a process of its own behind the barrier) and
// orders placed through TCC transactions over HTTP: confirmed everywhere, or, when the funds
// refuse, cancelled everywhere; then a copy of the demo killed with the confirm decision durable
// and no Confirm sent, and the manager's recovery confirming the order on all three services.

#ifndef XA_EXAMPLES_BANK_TRANSFER_TCC_ACT_H_
#define XA_EXAMPLES_BANK_TRANSFER_TCC_ACT_H_

#include <string>
#include <vector>

namespace xa::demo {

// Runs the act in `work` (a private directory) with the service program at `service_path`;
// `self` is this program, started again as the crashing copy. Prints what happens; true when
// every order is on all three services or on none, nothing is left frozen or pending, and the
// services stopped cleanly.
bool RunTccAct(const std::string& work, const std::string& service_path, const std::string& self);

// The crashing copy (argv: --tcc-crashing-child <log_dir> <order> <funds> <points>, the
// services' addresses): one order, killed by the crash point once the confirm decision is durable.
int RunTccCrashingChild(const std::string& log_dir, const std::vector<std::string>& addresses);

}  // namespace xa::demo

#endif  // XA_EXAMPLES_BANK_TRANSFER_TCC_ACT_H_
