#include "daemons/agent/branch_finisher.h"

namespace xa::agent {

BranchFinisher::~BranchFinisher() = default;
PreparedBranchLister::~PreparedBranchLister() = default;

}  // namespace xa::agent
