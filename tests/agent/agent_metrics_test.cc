// xa-agent's metrics page (daemons/agent/agent_metrics.h): every counter of AgentCounters appears
// with its value, and the text is well-formed Prometheus exposition (every sample's family has
// its HELP and TYPE lines first, once).

#include "daemons/agent/agent_metrics.h"

#include <cstdio>
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
  std::set<std::string> histograms;
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
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      if (type == "histogram") parsed.histograms.insert(name);
      continue;
    }
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    const std::string key = line.substr(0, space);
    std::string family = key.substr(0, key.find('{'));
    // A histogram's samples are its name with _bucket, _sum or _count.
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s(suffix);
      if (family.size() > s.size() && family.compare(family.size() - s.size(), s.size(), s) == 0 &&
          parsed.histograms.count(family.substr(0, family.size() - s.size()))) {
        family.resize(family.size() - s.size());
        break;
      }
    }
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
  // Everything but the histograms (below).
  std::map<std::string, std::string> counters_and_gauges;
  for (const auto& [key, value] : parsed.samples) {
    if (key.rfind("xa_agent_state_seconds", 0) != 0) counters_and_gauges.emplace(key, value);
  }
  EXPECT_EQ(counters_and_gauges, expected);
}

TEST(AgentMetrics, TimeInWaitAndPreAreHistogramsWithCumulativeBucketsSumAndCount) {
  AgentCounters c;
  for (double seconds : {0.0005, 0.02, 0.02, 3.0, 1000.0}) c.time_in_wait.Add(seconds);
  c.time_in_pre.Add(0.004);
  const Parsed parsed = Parse(RenderAgentPrometheus(c));
  EXPECT_TRUE(parsed.histograms.count("xa_agent_state_seconds"));
  auto sample = [&](const std::string& key) {
    auto it = parsed.samples.find(key);
    EXPECT_NE(it, parsed.samples.end()) << "no sample " << key;
    return it == parsed.samples.end() ? std::string() : it->second;
  };
  const std::string wait = "xa_agent_state_seconds_bucket{state=\"wait\",le=\"";
  EXPECT_EQ(sample(wait + "0.001\"}"), "1");
  EXPECT_EQ(sample(wait + "0.025\"}"), "3");
  EXPECT_EQ(sample(wait + "2.5\"}"), "3");
  EXPECT_EQ(sample(wait + "5\"}"), "4");
  EXPECT_EQ(sample(wait + "300\"}"), "4") << "1000 s is above every bound";
  EXPECT_EQ(sample(wait + "+Inf\"}"), "5");
  EXPECT_EQ(sample("xa_agent_state_seconds_count{state=\"wait\"}"), "5");
  EXPECT_DOUBLE_EQ(std::stod(sample("xa_agent_state_seconds_sum{state=\"wait\"}")), 1003.0405);
  const std::string pre = "xa_agent_state_seconds_bucket{state=\"pre\",le=\"";
  EXPECT_EQ(sample(pre + "0.0025\"}"), "0");
  EXPECT_EQ(sample(pre + "0.005\"}"), "1");
  EXPECT_EQ(sample(pre + "+Inf\"}"), "1");
  EXPECT_EQ(sample("xa_agent_state_seconds_count{state=\"pre\"}"), "1");
  // Each series: one bucket per bound and +Inf, never decreasing.
  for (const char* state : {"wait", "pre"}) {
    double previous = 0;
    size_t buckets = 0;
    for (double bound : kStateDurationBoundsSeconds) {
      char le[32];
      std::snprintf(le, sizeof(le), "%g", bound);
      const std::string value = sample("xa_agent_state_seconds_bucket{state=\"" +
                                       std::string(state) + "\",le=\"" + le + "\"}");
      if (value.empty()) continue;
      EXPECT_GE(std::stod(value), previous) << state << " le " << le;
      previous = std::stod(value);
      ++buckets;
    }
    EXPECT_EQ(buckets, kStateDurationBoundsSeconds.size()) << state;
  }
}

}  // namespace
}  // namespace xa::agent
