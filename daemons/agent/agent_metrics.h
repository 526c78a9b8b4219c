// The metrics page of xa-agent: its counters (Agent::counters) in the Prometheus text exposition
// format, served at /metrics on the configuration's metrics_address (main.cc). Every name starts
// with `xa_agent_`; what each counts is said in its HELP line and in AgentCounters (agent.h).

#ifndef XA_DAEMONS_AGENT_AGENT_METRICS_H_
#define XA_DAEMONS_AGENT_AGENT_METRICS_H_

#include <string>

#include "daemons/agent/agent.h"

namespace xa::agent {

std::string RenderAgentPrometheus(const AgentCounters& counters);

}  // namespace xa::agent

#endif  // XA_DAEMONS_AGENT_AGENT_METRICS_H_
