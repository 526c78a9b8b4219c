#include "daemons/agent/branch_finisher.h"

namespace xa::agent {

BranchFinisher::~BranchFinisher() = default;

}  // namespace xa::agent
