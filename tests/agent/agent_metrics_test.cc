// xa-agent's metrics page (daemons/agent/agent_metrics.h): every counter of AgentCounters appears
// with its value, and the text is well-formed Prometheus exposition (every sample's family has
// its HELP and TYPE lines first, once).

#include "daemons/agent/agent_metrics.h"

#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace xa::agent {
namespace {

// Sample lines by "name{labels}", and the families declared, checking the order as it reads.
struct Parsed {
  std::map<std::string, std::string> samples;
  std::set<std::string> families;
};

Parsed Parse(const std::string& text) {
  Parsed parsed;
  std::set<std::string> helped;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice for " << name;
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.count(name)) << "TYPE before HELP for " << name;
      EXPECT_TRUE(parsed.families.insert(name).second) << "TYPE twice for " << name;
      const std::string type = line.substr(line.rfind(' ') + 1);
      EXPECT_TRUE(type == "counter" || type == "gauge") << line;
      continue;
    }
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    const std::string key = line.substr(0, space);
    const std::string family = key.substr(0, key.find('{'));
    EXPECT_TRUE(parsed.families.count(family)) << "sample before its TYPE: " << line;
    EXPECT_EQ(family.rfind("xa_agent_", 0), 0u) << line;
    EXPECT_TRUE(parsed.samples.emplace(key, line.substr(space + 1)).second) << "twice: " << line;
  }
  return parsed;
}

TEST(AgentMetrics, EveryCounterIsRenderedWithItsValue) {
  AgentCounters c;
  // Distinct values, so that a counter printed under another's name is caught.
  c.participants_init = 1;
  c.participants_wait = 2;
  c.participants_pre = 3;
  c.participants_commit = 4;
  c.participants_abort = 5;
  c.participants_with_timer = 6;
  c.participants_recovered = 7;
  c.terminations_committed = 8;
  c.terminations_aborted = 9;
  c.fences = 10;
  c.branches_finished = 11;
  c.finish_failures = 12;
  c.peers_dropped_authentication = 13;
  c.peers_dropped_malformed = 14;
  c.peer_unreachable = 15;
  c.refused_requests = 16;
  c.heuristics = 17;
  c.records_failed = 18;
  c.done = 12345678901234ull;
  c.orphan_scans = 19;
  c.orphan_scan_failures = 20;
  c.orphans_rolled_back = 21;
  const Parsed parsed = Parse(RenderAgentPrometheus(c));
  const std::map<std::string, std::string> expected = {
      {"xa_agent_participants{state=\"init\"}", "1"},
      {"xa_agent_participants{state=\"wait\"}", "2"},
      {"xa_agent_participants{state=\"pre\"}", "3"},
      {"xa_agent_participants{state=\"commit\"}", "4"},
      {"xa_agent_participants{state=\"abort\"}", "5"},
      {"xa_agent_participants_waiting", "6"},
      {"xa_agent_participants_recovered", "7"},
      {"xa_agent_terminations_total{outcome=\"committed\"}", "8"},
      {"xa_agent_terminations_total{outcome=\"rolled_back\"}", "9"},
      {"xa_agent_fences_total", "10"},
      {"xa_agent_branches_finished_total", "11"},
      {"xa_agent_finish_failures_total", "12"},
      {"xa_agent_peers_dropped_total{reason=\"authentication\"}", "13"},
      {"xa_agent_peers_dropped_total{reason=\"malformed\"}", "14"},
      {"xa_agent_peer_unreachable_total", "15"},
      {"xa_agent_refused_requests_total", "16"},
      {"xa_agent_heuristics_total", "17"},
      {"xa_agent_records_failed_total", "18"},
      {"xa_agent_participants_done_total", "12345678901234"},
      {"xa_agent_orphan_scans_total", "19"},
      {"xa_agent_orphan_scan_failures_total", "20"},
      {"xa_agent_orphans_rolled_back_total", "21"},
  };
  EXPECT_EQ(parsed.samples, expected);
}

}  // namespace
}  // namespace xa::agent
