#include "daemons/agent/agent_metrics.h"

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

#include "src/base/prometheus_text.h"

namespace xa::agent {

using internal::AppendPrometheusHeader;
using internal::AppendPrometheusHistogram;
using internal::AppendPrometheusSample;

std::string RenderAgentPrometheus(const AgentCounters& c) {
  std::string out;
  out.reserve(4096);
  auto one = [&out](const char* name, const char* type, const char* help, uint64_t value) {
    AppendPrometheusHeader(&out, name, type, help);
    AppendPrometheusSample(&out, name, "", static_cast<double>(value));
  };
  struct Labelled {
    const char* label_value;
    uint64_t value;
  };
  // One family whose samples differ by one label, `label`.
  auto by = [&out](const char* name, const char* type, const char* help, const char* label,
                   std::initializer_list<Labelled> samples) {
    AppendPrometheusHeader(&out, name, type, help);
    for (const Labelled& sample : samples) {
      AppendPrometheusSample(&out, name, std::string(label) + "=\"" + sample.label_value + "\"",
                             static_cast<double>(sample.value));
    }
  };

  by("xa_agent_participants", "gauge", "3PC participants held in memory, by state.", "state",
     {{"init", c.participants_init},
      {"wait", c.participants_wait},
      {"pre", c.participants_pre},
      {"commit", c.participants_commit},
      {"abort", c.participants_abort}});
  one("xa_agent_participants_waiting", "gauge",
      "Participants waiting for the coordinator or for a termination round (timer armed).",
      c.participants_with_timer);
  one("xa_agent_participants_recovered", "gauge",
      "Participants recovered from the agent's log when it started.", c.participants_recovered);

  by("xa_agent_terminations_total", "counter",
     "Decisions recorded without the coordinator (a termination round, a decision adopted from "
     "a peer, or an unknown transaction aborted), by outcome.",
     "outcome", {{"committed", c.terminations_committed}, {"rolled_back", c.terminations_aborted}});

  one("xa_agent_fences_total", "counter",
      "Branch finishes that first ended the coordinator's database session.", c.fences);
  one("xa_agent_branches_finished_total", "counter",
      "Branches the agent committed or rolled back in their databases.", c.branches_finished);
  one("xa_agent_finish_failures_total", "counter",
      "Attempts to finish a branch that failed (each is retried after a backoff).",
      c.finish_failures);

  by("xa_agent_peers_dropped_total", "counter",
     "Connections dropped, by reason: the handshake failed, or a frame did not decode.", "reason",
     {{"authentication", c.peers_dropped_authentication},
      {"malformed", c.peers_dropped_malformed}});

  one("xa_agent_peer_unreachable_total", "counter",
      "Messages to a peer agent that could not be handed to a connection.", c.peer_unreachable);
  one("xa_agent_refused_requests_total", "counter",
      "Requests answered with an error: a resource manager this agent does not serve, or a "
      "branch that does not match its transaction (directories that differ).",
      c.refused_requests);
  one("xa_agent_heuristics_total", "counter",
      "Heuristic-mixed outcomes recorded: a peer holds the other outcome (a partition healed).",
      c.heuristics);
  one("xa_agent_records_failed_total", "counter",
      "Appends to the agent's log that failed (the agent must be restarted).", c.records_failed);
  one("xa_agent_participants_done_total", "counter",
      "Participants forgotten after their done record.", c.done);

  one("xa_agent_orphan_scans_total", "counter",
      "Scans of a database for orphan branches (prepared 3PC branches the agent never voted on).",
      c.orphan_scans);
  one("xa_agent_orphan_scan_failures_total", "counter",
      "Scans of a database for orphan branches that failed (tried again at the next interval).",
      c.orphan_scan_failures);
  one("xa_agent_orphans_rolled_back_total", "counter",
      "Orphan branches the agent rolled back after recording ABORT for them.",
      c.orphans_rolled_back);

  // A histogram written as the manager's page writes its phases, one series per state.
  struct Timed {
    const char* state;
    const StateDurations* durations;
  };
  const char* const kStateSeconds = "xa_agent_state_seconds";
  AppendPrometheusHeader(&out, kStateSeconds, "histogram",
                         "Time participants spent in WAIT (voted yes, waiting for PreCommit) and "
                         "in PRE (waiting for the decision), from the state's record to the next.");
  for (const Timed& timed : {Timed{"wait", &c.time_in_wait}, Timed{"pre", &c.time_in_pre}}) {
    AppendPrometheusHistogram(&out, kStateSeconds, std::string("state=\"") + timed.state + "\"",
                              kStateDurationBoundsSeconds, timed.durations->at_most,
                              timed.durations->count, timed.durations->sum_seconds);
  }
  return out;
}

}  // namespace xa::agent
