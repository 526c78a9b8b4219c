// TCC (Try / Confirm / Cancel): a global transaction over services that each commit locally.
//
// Every participant offers three operations on a reservation: Try reserves (freezes funds,
// holds stock), Confirm uses the reservation, Cancel releases it. A participant is registered
// with the manager by name (TransactionManagerOptions::tcc), and a transaction enlists it by that
// name with a payload, the bytes its three operations are called with:
//
//   xa::Result<xa::TccTransaction> txn = manager->BeginTcc();
//   XA_RETURN_IF_ERROR(txn->Enlist("funds", R"({"account":"a-17","amount":250})"));
//   XA_RETURN_IF_ERROR(txn->Enlist("points", R"({"account":"a-17","points":25})"));
//   xa::Result<xa::Outcome> outcome = txn->Commit();
//
// Commit():
//   1. appends a kTccTry record naming every participant and its payload, durably, before any
//      Try: no participant can be scanned for what it reserved (there is no XA RECOVER), so the
//      log is the only list of whom to cancel after a crash;
//   2. runs every Try in parallel (the manager's phase threads);
//   3. when every Try answered done within the transaction's timeout, appends the kTccConfirm
//      decision durably and runs every Confirm in parallel; otherwise (a Try refused or failed,
//      or the timeout passed) runs every Cancel, of every participant, since a Try whose answer
//      was lost may have reserved;
//   4. a Confirm or Cancel that fails in a way that may heal is repeated (the manager's
//      inline_retry, then the background retrier, forever, with its background_retry backoff);
//      once every participant is finished, an end record closes the transaction in the log.
// After a crash, recovery (the manager's passes, RunRecovery()) finishes every TCC transaction
// the log holds open: Confirm when the decision is logged, Cancel otherwise (presumed cancel).
// So a participant must make its three operations idempotent and must tolerate a Cancel with no
// Try before it and a Try that arrives after its Cancel: the participant barrier
// (xa/tcc_barrier.h) does all three inside the participant's own local transaction.
//
// The outcome (a value, never an error):
//   kCommitted                   every Try and every Confirm done
//   kCommittedCompletionPending  confirmed (the decision is durable); some Confirm is still
//                                being retried in the background
//   kRolledBack                  cancelled: a Try refused or failed, or the timeout; every Cancel
//                                is done or being retried in the background; last_status() says
//                                why
//   kHeuristicMixed, kHeuristicRollback, kHeuristicHazard
//                                a participant refused its Confirm or its Cancel for good
//                                (TccReply::kRefused): recorded as a heuristic outcome in the log
//                                for an operator (metrics, log, xa-recover), see TccOutcome
//
// Thread safety: a TccTransaction is used by one thread at a time; a participant's operations
// are called from many threads at once (different transactions, the background retrier,
// recovery) and must be thread-safe.

#ifndef XA_TCC_H_
#define XA_TCC_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "xa/protocol.h"
#include "xa/status.h"
#include "xa/transaction.h"
#include "xa/xid.h"

namespace xa {

namespace internal {
class ManagerCore;
struct TccContext;
}  // namespace internal

// The largest payload of one participant, in bytes: the payloads are written to the decision
// log with the participants before the first Try (and again with the decision).
inline constexpr size_t kMaxTccPayloadBytes = 64 * 1024;
// The most participants one TCC transaction may enlist.
inline constexpr size_t kMaxTccParticipants = 64;
// The most payload bytes of all its participants together: the log keeps them in one record
// (at most 4 MiB), and this leaves room to spare.
inline constexpr size_t kMaxTccTransactionPayloadBytes = 1024 * 1024;

// A participant's answer to one call.
enum class TccReply : uint8_t {
  kDone = 1,     // done; also the answer to a repeated call whose work is already done
  kRefused = 2,  // Try: refused for a business reason (no funds): the transaction cancels.
                 // Confirm or Cancel: will never succeed: a heuristic outcome for an operator
  kFailed = 3,   // failed in a way that may heal (unreachable, timed out, busy): a Try that
                 // failed cancels the transaction; a Confirm or Cancel is repeated
};
// "done", "refused", "failed".
std::string_view TccReplyName(TccReply reply) noexcept;

// An answer and, unless done, why: shown in last_status(), the log lines and recovery reports,
// so it must never hold a secret.
struct TccResult {
  // What the participant answered.
  TccReply reply = TccReply::kDone;
  // Why, unless done (see above).
  std::string detail;

  // Done.
  static TccResult Done() { return {TccReply::kDone, {}}; }
  // Refused, because `why`.
  static TccResult Refused(std::string why) { return {TccReply::kRefused, std::move(why)}; }
  // Failed (try again later), because `why`.
  static TccResult Failed(std::string why) { return {TccReply::kFailed, std::move(why)}; }
};

// What a participant's operation is called with.
struct TccCall {
  Xid global;                    // the TCC transaction (format ID Xid::kTccFormatId)
  Xid branch;                    // this participant's branch: global.WithBranch(i)
  std::string_view participant;  // the name it is registered and enlisted under
  std::string_view payload;      // as enlisted
};

// A participant service, as the coordinator sees it. Implementations: an in-process object, or
// a remote service. Every operation must be idempotent (a repeat answers kDone), a Cancel may
// come without or before its Try (answer kDone, release nothing), and a Try after its Cancel
// must be refused (answer kRefused): xa/tcc_barrier.h does all three. Thread-safe.
class TccParticipant {
 public:
  virtual ~TccParticipant() = default;
  // Reserves what `call.payload` asks for; kRefused for a business reason (and after a Cancel of
  // the same branch), kFailed when it may work later.
  virtual TccResult Try(const TccCall& call) = 0;
  // Uses the reservation of `call.branch`; kDone again for a repeat.
  virtual TccResult Confirm(const TccCall& call) = 0;
  // Releases the reservation of `call.branch`; kDone for a repeat and for a branch whose Try
  // never ran (recording that, so that the late Try is refused).
  virtual TccResult Cancel(const TccCall& call) = 0;
};

// The TCC participants of a manager (TransactionManagerOptions::tcc), by the name transactions
// enlist them under. The same objects finish the transactions that recovery finds open after a
// restart, so register every participant that a logged transaction may name.
struct TccOptions {
  // Registered name -> participant (never null).
  std::map<std::string, std::shared_ptr<TccParticipant>> participants;
};

// The outcome of a TCC transaction one of whose participants refused its Confirm or Cancel for
// good: kHeuristicMixed when another participant finished as decided, else kHeuristicRollback
// for a refused Confirm (nothing was confirmed) and kHeuristicHazard for a refused Cancel (what
// the participant still holds is unknown). One rule for the coordinator and recovery.
Outcome TccHeuristicOutcome(bool confirm, bool another_finished_as_decided) noexcept;

// A handle on one TCC transaction, made by TransactionManager::BeginTcc(): move-only. Nothing
// runs before Commit(), so destroying an uncommitted handle calls no participant.
class TccTransaction {
 public:
  TccTransaction() noexcept;  // an empty handle
  ~TccTransaction();          // abandons an active transaction (calls nobody)
  // Takes over `other`'s transaction; `other` becomes an empty handle.
  TccTransaction(TccTransaction&& other) noexcept;
  // Abandons an active *this first (calls nobody), then takes over `other`'s transaction.
  TccTransaction& operator=(TccTransaction&& other) noexcept;
  TccTransaction(const TccTransaction&) = delete;
  TccTransaction& operator=(const TccTransaction&) = delete;

  // Adds `participant` (a name registered in TransactionManagerOptions::tcc) with `payload`.
  // Errors: XAER_PROTO (not active), XA_CONFIG (unregistered name), XAER_INVAL (payload above
  // kMaxTccPayloadBytes, all payloads together above kMaxTccTransactionPayloadBytes, or more
  // than kMaxTccParticipants), each naming what is wrong. The same
  // participant may be enlisted more than once (each enlistment is a branch of its own).
  [[nodiscard]] Status Enlist(std::string_view participant, std::string payload);

  // Runs the transaction (see the file comment) and returns its outcome; the transaction is
  // finished whatever it is. A non-OK Status means misuse (empty handle, already finished, no
  // participant enlisted).
  [[nodiscard]] Result<Outcome> Commit();

  // Ends the transaction without running it: no participant was called, so none is. XAER_PROTO
  // when it is not active.
  [[nodiscard]] Status Abandon();

  // False for an empty (default-constructed or moved-from) handle.
  bool valid() const noexcept { return context_ != nullptr; }
  // kActive until Commit() or Abandon(); then kCommitted (confirmed), kRolledBack (cancelled or
  // abandoned) or kHeuristic.
  TransactionState state() const noexcept;
  const Xid& xid() const noexcept;  // the global Xid; participant i's branch is WithBranch(i)
  // How many participants Enlist() added.
  size_t participant_count() const noexcept;
  // Why the outcome is not a plain confirm: the refused or failed Try, the timeout, a log
  // failure, the refused Confirm. OK otherwise.
  const Status& last_status() const noexcept;

 private:
  friend class internal::ManagerCore;
  TccTransaction(internal::ManagerCore* core, std::unique_ptr<internal::TccContext> context) noexcept;

  internal::ManagerCore* core_ = nullptr;
  std::unique_ptr<internal::TccContext> context_;
};

}  // namespace xa

#endif  // XA_TCC_H_
