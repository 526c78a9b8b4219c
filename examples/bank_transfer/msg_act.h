// The demo's message act: an order service (orders in PostgreSQL) and an accounting service
// (a ledger in MariaDB) exchange messages through xa-msgd (docs/messages.md), each a process of
// its own (examples/msg_shop). The order service is killed after an order committed and before
// its confirm: xa-msgd asks the restarted order service, which answers from its orders table,
// and the message goes out. The accounting service is killed after booking a message and before
// acknowledging it: the message comes again, the dedupe says it was booked, and it is
// acknowledged. Every order is booked exactly once.

#ifndef XA_EXAMPLES_BANK_TRANSFER_MSG_ACT_H_
#define XA_EXAMPLES_BANK_TRANSFER_MSG_ACT_H_

#include <string>

namespace xa::demo {

// Runs the act in `work` (a private directory) with the programs at `msgd_path` and
// `shop_path`. Prints what happens; true when every order committed is booked exactly once and
// every message is done.
bool RunMessagesAct(const std::string& work, const std::string& msgd_path,
                    const std::string& shop_path);

}  // namespace xa::demo

#endif  // XA_EXAMPLES_BANK_TRANSFER_MSG_ACT_H_
