// BranchFinisher: how the agent finishes a branch itself, in its database, when the participant
// machine says FinishBranch (termination without the coordinator, or a restarted agent finishing
// what its log says). The daemon plugs in one built on the drivers (its own connections); tests
// plug in a recording fake.
//
// Finish(rm_name, branch, fence_session_id, read_only, commit):
//   1. fence, when fence_session_id != 0: end the application's MariaDB session that prepared
//      the branch (ResourceManager::FenceSession: KILL CONNECTION, then wait until the session
//      has left the process list), so that the branch detaches and a stuck coordinator can no
//      longer act on it (docs/three-phase-commit.md, "Acting on a decision: the fence");
//   2. commit (commit = true) or roll back the branch through the phase-2 rules of
//      src/completion/branch_outcome.h: "unknown Xid" after the fence means the branch is
//      already finished. A read-only branch needs no phase-2 call (it still fences: the
//      coordinator's session must not act after the agents decided).
// OK: the branch is finished (now, or it already was). Any error: it may not be, try again
// later; the agent retries with backoff on the participant's timer, logging each failure with
// the branch Xid, and never gives up on its own (a decided branch left prepared holds its
// locks).
//
// Thread safety: Finish may be called from several threads at once, for different branches
// (never twice at once for one branch). It may block (database I/O): the agent calls it off the
// participant's strand.

#ifndef XA_DAEMONS_AGENT_BRANCH_FINISHER_H_
#define XA_DAEMONS_AGENT_BRANCH_FINISHER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "xa/status.h"
#include "xa/xid.h"

namespace xa::agent {

class BranchFinisher {
 public:
  virtual ~BranchFinisher();
  BranchFinisher() = default;
  BranchFinisher(const BranchFinisher&) = delete;
  BranchFinisher& operator=(const BranchFinisher&) = delete;

  virtual Status Finish(const std::string& rm_name, const Xid& branch, uint64_t fence_session_id,
                        bool read_only, bool commit) = 0;
};

// PreparedBranchLister: how the agent's orphan scan (agent.h, "Orphan scan") reads which
// branches its database holds prepared: XA RECOVER (pg_prepared_xacts) through the resource
// manager. The daemon plugs in RmBranchFinisher, which implements both; tests plug in a fake
// that lists what they say and fails when they say.
//
// ListPrepared(rm_name): every prepared branch of `rm_name` that parses as an Xid, whoever made
// it (the agent picks its own). An error: the scan could not be made (the database is down);
// the agent tries again at its next scan.
//
// Thread safety: called from one thread at a time (one scan at a time), beside Finish calls.
class PreparedBranchLister {
 public:
  virtual ~PreparedBranchLister();
  PreparedBranchLister() = default;
  PreparedBranchLister(const PreparedBranchLister&) = delete;
  PreparedBranchLister& operator=(const PreparedBranchLister&) = delete;

  virtual Result<std::vector<Xid>> ListPrepared(const std::string& rm_name) = 0;
};

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_BRANCH_FINISHER_H_
