// The transactional variant of the reliable message service (docs/messages.md, "Sending inside
// an XA transaction"): the producer writes its message into xa-msgd's store as one more branch
// of its own xa::Transaction, beside its business writes. The two-phase commit makes the message
// and the business writes commit together, or neither: no pre-send before the operation, no
// confirm after it, and no back-query is ever needed. xa-msgd's delivery job finds the message
// once the transaction committed (a prepared, undecided branch's row is invisible to it or
// locked, and skipped), and delivers it as any confirmed message.
//
//   auto store = xa::odbc::OdbcResourceManager::Create(store_options);   // xa-msgd's database
//   auto txn = manager->Begin().value();
//   txn.Enlist(*orders_db);  txn.Enlist(**store);
//   orders_db->Execute("INSERT INTO orders ...");
//   auto id = xa::msg::SendInTransaction(**store, "xa_msg_",
//                                        {"orders", "order.placed", "accounting", body});
//   if (!id.ok()) { txn.Rollback(); return; }
//   txn.Commit();     // the order and its message, or neither
//
// What it costs: one more branch (a prepare and a commit on the store's database), and the
// delivery waits for the job's next pass (poll_interval_ms) instead of being woken by a confirm.
// The producer needs the store's database credentials and writes the rows itself, so xa-msgd's
// tokens do not vouch for its producer id: give such producers their own database account.
//
// Errors: Code::kInval naming the field that cannot be stored (the rules of a pre-send), or what
// the branch's statement returned (OdbcResourceManager::Execute; XA_RB* rolls the branch back).

#ifndef XA_MSG_TRANSACTIONAL_SEND_H_
#define XA_MSG_TRANSACTIONAL_SEND_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "xa/odbc/odbc_resource_manager.h"
#include "xa/status.h"

namespace xa::msg {

// A message written inside the producer's transaction.
struct TransactionalMessage {
  std::string producer_id;  // 1 to 64 printable ASCII characters: who sent it
  std::string data_type;    // "order.placed"
  std::string queue;        // the consumer's RabbitMQ queue
  std::string body;         // bytes, at most `max_body_bytes`
};

// Writes `message` as confirmed (ready) into the store's tables (`table_prefix`, xa-msgd's
// table_prefix) on `store`'s connection, which must be in an active branch of the caller's
// transaction (enlisted, between Start and End). Its id.
Result<std::string> SendInTransaction(odbc::OdbcResourceManager& store,
                                      std::string_view table_prefix,
                                      const TransactionalMessage& message,
                                      size_t max_body_bytes = 64 * 1024);

}  // namespace xa::msg

#endif  // XA_MSG_TRANSACTIONAL_SEND_H_
