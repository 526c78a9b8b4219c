// Named crash points: places where a test build can kill its own process with SIGKILL, to prove
// that recovery brings every transaction to one outcome whatever the moment of the crash.
//
//   XA_CRASH_POINT(kAfterDecisionSync);
//
// The names are constants, so a typo fails to compile. Points exist only in builds configured
// with -DXA_ENABLE_TEST_HOOKS=ON; in other builds the macro compiles to nothing.
//
// Arming, from the environment of the process to kill:
//   XA_CRASH_POINT=<name>   e.g. XA_CRASH_POINT=after-decision-sync
//   XA_CRASH_COUNT=<k>      die at the k-th hit of that point (default 1)
//   XA_CRASH_ACTION=stop    freeze there instead (SIGSTOP), as a process stuck in a long pause
//                           would; it goes on from the point once sent SIGCONT. Default: kill.
// The process sends itself SIGKILL: no destructor, no flush, no atexit handler runs, as in a
// power cut of the process (the kernel keeps what was written, like a process crash).
//
// Which row of the crash matrix each point realises, and the tests that arm it:
// docs/crash-matrix.md.

#ifndef XA_SRC_TESTING_CRASH_POINTS_H_
#define XA_SRC_TESTING_CRASH_POINTS_H_

#include <span>
#include <string_view>

namespace xa::crash {

struct Point {
  std::string_view name;
};

// Coordinator (2PC).
inline constexpr Point kAfterStart{"after-start"};             // a branch started
inline constexpr Point kAfterEnd{"after-end"};                 // a branch ended, not prepared
inline constexpr Point kAfterPrepare{"after-prepare"};         // a branch prepared (any)
inline constexpr Point kAfterFirstPrepare{"after-first-prepare"};  // one branch prepared
inline constexpr Point kAfterAllPrepared{"after-all-prepared"};    // before the decision
inline constexpr Point kAfterDecisionWrite{"after-decision-write"};  // written, not synced
inline constexpr Point kAfterDecisionSync{"after-decision-sync"};    // durable, no commit yet
inline constexpr Point kAfterFirstCommit{"after-first-commit"};      // one branch committed
inline constexpr Point kAfterAllCommitted{"after-all-committed"};    // before the end record
inline constexpr Point kAfterEndRecord{"after-end-record"};

// Coordinator (3PC), beyond the 2PC points its shared steps pass.
// kPreCommit durable while the agents' votes may still be in flight (it is appended beside the
// CanCommit round): each agent has WAIT or nothing, so every path ends in an abort.
inline constexpr Point kPreCommitRecordDurable{"pre-commit-record-durable"};
// kPreCommit durable, no PreCommit sent: the agents are in WAIT and abort by termination.
inline constexpr Point kAfterPreCommitRecord{"after-pre-commit-record"};
// Every agent acknowledged PRE, no commit decision: the agents commit by termination.
inline constexpr Point kAfterAllPreCommitted{"after-all-pre-committed"};

// Coordinator (marker commit), beyond the 2PC points its shared steps pass.
// The marker row written in the marker branch, not committed; the other branches may be
// preparing: no one can commit, so every path ends in an abort.
inline constexpr Point kMarkerWritten{"marker-written"};
// Every other branch prepared, the marker branch ended and not committed: the decision not made.
inline constexpr Point kMarkerBeforeCommit{"marker-before-commit"};
// The marker branch committed (the decision), no prepared branch committed yet.
inline constexpr Point kMarkerAfterCommit{"marker-after-commit"};

// Coordinator (TCC, xa/tcc.h).
// The kTccTry record durable, no Try made: recovery cancels every participant (empty
// compensations), and a Try that arrives late is refused by the participant's barrier.
inline constexpr Point kTccAfterTryRecord{"tcc-after-try-record"};
// One Try answered done, the others perhaps not made: recovery cancels all.
inline constexpr Point kTccAfterFirstTry{"tcc-after-first-try"};
// Every Try done, no decision: recovery cancels all.
inline constexpr Point kTccAfterAllTried{"tcc-after-all-tried"};
// The kTccConfirm decision durable, no Confirm made: recovery confirms all.
inline constexpr Point kTccAfterConfirmRecord{"tcc-after-confirm-record"};
// One Confirm done, the others perhaps not: recovery confirms all (the done one again).
inline constexpr Point kTccAfterFirstConfirm{"tcc-after-first-confirm"};
// Cancelling: one Cancel done, the others perhaps not: recovery cancels all.
inline constexpr Point kTccAfterFirstCancel{"tcc-after-first-cancel"};

// Coordinator (sagas, xa/saga.h); kTccAfterTryRecord is passed too, once the steps are logged.
// The first action done, the others not run: recovery compensates every step, in reverse.
inline constexpr Point kSagaAfterFirstAction{"saga-after-first-action"};
// An action failed for good; the first compensation (of the failing step) done.
inline constexpr Point kSagaAfterFirstCompensation{"saga-after-first-compensation"};

// Recovery.
inline constexpr Point kRecoveryAfterScan{"recovery-after-scan"};
inline constexpr Point kRecoveryAfterFirstAction{"recovery-after-first-action"};
inline constexpr Point kRecoveryAfterAction{"recovery-after-action"};  // after every action
inline constexpr Point kRecoveryBeforeEndRecord{"recovery-before-end-record"};

// Decision-log segment rotation and deletion.
inline constexpr Point kRotateBeforeWrite{"rotate-before-write"};
inline constexpr Point kRotateBeforeSync{"rotate-before-sync"};
inline constexpr Point kRotateAfterSync{"rotate-after-sync"};
inline constexpr Point kRotateAfterRename{"rotate-after-rename"};
inline constexpr Point kBeforeSegmentDelete{"before-segment-delete"};

// Agent (3PC participant, daemons/agent): a participant's record is durable, or its branch
// finished, and what depends on it has not happened yet.
inline constexpr Point kAgentAfterWaitRecord{"agent-after-wait-record"};  // vote not sent
inline constexpr Point kAgentAfterPreRecord{"agent-after-pre-record"};    // Ack(PRE) not sent
// COMMIT or ABORT durable: the branch not finished, no Ack sent, done not recorded.
inline constexpr Point kAgentAfterDecisionRecord{"agent-after-decision-record"};
// The agent's own finish: the coordinator's session fenced (nothing to fence on PostgreSQL),
// the branch not committed or rolled back yet.
inline constexpr Point kAgentAfterFence{"agent-after-fence"};
// The agent's own finish ended (committed, rolled back, or found done): done not recorded.
inline constexpr Point kAgentAfterBranchFinished{"agent-after-branch-finished"};

// The reliable message service (daemons/msgd, docs/messages.md): a step's result committed in
// the store (or published to the broker) and what follows it not done yet.
// A pre-send stored, its answer not sent: the producer never learns the id and runs nothing;
// the back-query finds no committed operation and the message is deleted, never delivered.
inline constexpr Point kMsgdAfterPreSendCommit{"msgd-after-pre-send-commit"};
// A confirm committed, its answer not sent: the producer's retried confirm finds it done.
inline constexpr Point kMsgdAfterConfirmCommit{"msgd-after-confirm-commit"};
// A delivery pass published a message (the broker confirmed it), its `sent` not committed: the
// message is still ready and is published again (the consumer's dedupe absorbs the copy).
inline constexpr Point kMsgdAfterPublish{"msgd-after-publish"};
// A back-query pass claimed its messages and committed the claim, asked nobody yet: the claims
// expire and the messages are asked about again.
inline constexpr Point kMsgdAfterBackQueryClaim{"msgd-after-back-query-claim"};
// A back-query answered, its answer not applied: asked again after the claim expires.
inline constexpr Point kMsgdAfterBackQueryAnswer{"msgd-after-back-query-answer"};
// An acknowledgement committed, its answer not sent: the consumer's retried ack finds it done.
inline constexpr Point kMsgdAfterAckCommit{"msgd-after-ack-commit"};

// Every point, for tests that iterate over them and for `--list`.
std::span<const Point> AllPoints() noexcept;

// Counts a hit and kills the process if this point is armed and the count is reached.
void Hit(const Point& point) noexcept;

}  // namespace xa::crash

#if defined(XA_ENABLE_TEST_HOOKS)
#define XA_CRASH_POINT(point) ::xa::crash::Hit(::xa::crash::point)
#else
#define XA_CRASH_POINT(point) static_cast<void>(::xa::crash::point)
#endif

#endif  // XA_SRC_TESTING_CRASH_POINTS_H_
