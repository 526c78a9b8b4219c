#include "src/testing/crash_points.h"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <string>

namespace xa::crash {
namespace {

constexpr std::array kAll = {
    kAfterStart,           kAfterEnd,
    kAfterPrepare,         kAfterFirstPrepare,
    kAfterAllPrepared,     kAfterDecisionWrite,
    kAfterDecisionSync,    kAfterFirstCommit,
    kAfterAllCommitted,    kAfterEndRecord,
    kPreCommitRecordDurable, kAfterPreCommitRecord, kAfterAllPreCommitted,
    kMarkerWritten,        kMarkerBeforeCommit,   kMarkerAfterCommit,
    kTccAfterTryRecord,    kTccAfterFirstTry,     kTccAfterAllTried,
    kTccAfterConfirmRecord, kTccAfterFirstConfirm, kTccAfterFirstCancel,
    kSagaAfterFirstAction, kSagaAfterFirstCompensation,
    kRecoveryAfterScan,    kRecoveryAfterFirstAction,
    kRecoveryAfterAction,  kRecoveryBeforeEndRecord,
    kRotateBeforeWrite,    kRotateBeforeSync,
    kRotateAfterSync,      kRotateAfterRename,
    kBeforeSegmentDelete,  kAgentAfterWaitRecord,
    kAgentAfterPreRecord,  kAgentAfterDecisionRecord,
    kAgentAfterFence,      kAgentAfterBranchFinished,
    kMsgdAfterPreSendCommit, kMsgdAfterConfirmCommit, kMsgdAfterPublish,
    kMsgdAfterBackQueryClaim, kMsgdAfterBackQueryAnswer, kMsgdAfterAckCommit,
};

struct Armed {
  std::string name;
  long count = 1;
  bool stop = false;  // XA_CRASH_ACTION=stop: freeze instead of dying
  std::atomic<long> hits{0};
};

Armed& TheArmed() {
  static Armed* armed = [] {
    auto* a = new Armed;  // leaked on purpose: read from any thread until the process dies
    if (const char* name = std::getenv("XA_CRASH_POINT")) a->name = name;
    if (const char* count = std::getenv("XA_CRASH_COUNT")) {
      long k = std::strtol(count, nullptr, 10);
      if (k > 0) a->count = k;
    }
    if (const char* action = std::getenv("XA_CRASH_ACTION")) {
      a->stop = std::string(action) == "stop";
    }
    return a;
  }();
  return *armed;
}

}  // namespace

std::span<const Point> AllPoints() noexcept { return kAll; }

void Hit(const Point& point) noexcept {
  Armed& armed = TheArmed();
  if (armed.name.empty() || armed.name != point.name) return;
  if (armed.hits.fetch_add(1) + 1 == armed.count) {
    if (armed.stop) {
      static constexpr char kStopping[] = "xa: crash point reached, stopping the process\n";
      ssize_t ignored = ::write(2, kStopping, sizeof(kStopping) - 1);
      static_cast<void>(ignored);
      ::kill(::getpid(), SIGSTOP);
      return;  // sent SIGCONT: go on from the point, late
    }
    static constexpr char kMessage[] = "xa: crash point reached, killing the process\n";
    ssize_t ignored = ::write(2, kMessage, sizeof(kMessage) - 1);
    static_cast<void>(ignored);
    ::kill(::getpid(), SIGKILL);
    ::_exit(137);  // not reached
  }
}

}  // namespace xa::crash
