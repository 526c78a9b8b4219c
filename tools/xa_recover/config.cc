#include "tools/xa_recover/config.h"

#include <map>
#include <string_view>
#include <utility>

#include "src/base/escape.h"
#include "src/net/peer_auth.h"
#include "src/net/socket_address.h"
#include "src/three_phase/agent_messages.h"
#include "xa/marker.h"

namespace xa::recover_tool {
namespace {

constexpr internal::SectionKind kAgentSection{"agent", "an agent", "agent"};
const internal::ConfigGrammar kGrammar{"xa-recover", {internal::kRmSection, kAgentSection}};
constexpr std::string_view kTopLevelKeys[] = {
    "log_dir",   "node_id",      "orphan_min_age_ms",    "agents_key_file", "agent_timeout_ms",
    "marker_rm", "marker_table", "marker_settle_wait_ms"};
constexpr std::string_view kAgentKeys[] = {"address", "rms"};

std::string Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

// One word (the file is plain text, so printable) of 1..max bytes: the names travel in the
// agents' handshake and messages, which bound them.
Status CheckName(const internal::ConfigFile& file, int line, std::string_view what,
                 const std::string& name, size_t max) {
  if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
    return file.Error(line, std::string(what) + " must be one word, not " +
                                internal::QuotedForMessage(name));
  }
  if (name.size() > max) {
    return file.Error(line, std::string(what) + " " + internal::QuotedForMessage(name) +
                                " is longer than " + std::to_string(max) + " bytes");
  }
  return Status::Ok();
}

// An [agent NAME] section: its address and the resource managers it stands for. `owner` maps
// each resource manager listed so far to its agent, across sections.
Result<AgentEntry> ReadAgentSection(const internal::ConfigFile& file,
                                    const internal::ConfigSection& section,
                                    std::map<std::string, std::string>& owner) {
  XA_RETURN_IF_ERROR(
      CheckName(file, section.line, "an agent name", section.name, net::kMaxPeerNameSize));
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(section, kAgentKeys));
  AgentEntry agent;
  agent.name = section.name;
  const internal::ConfigEntry* address = section.Find("address");
  if (address == nullptr) {
    return file.Error(section.line, section.Label() + " needs 'address = <IPv4>:<port>' or "
                                                      "'address = [<IPv6>]:<port>'");
  }
  auto parsed = net::ParseSocketAddress(address->value);
  if (!parsed.ok()) return file.Error(address->line, parsed.status().message());
  if (parsed->port == 0) {
    return file.Error(address->line, "address " + internal::QuotedForMessage(address->value) +
                                         " needs a port other than 0: the agent listens on it");
  }
  agent.address = address->value;
  const internal::ConfigEntry* rms = section.Find("rms");
  if (rms == nullptr || Trim(rms->value).empty()) {
    return file.Error(rms == nullptr ? section.line : rms->line,
                      section.Label() + " needs 'rms = <name>, <name>...': the resource managers "
                                        "this agent stands for");
  }
  std::string_view list = rms->value;
  while (true) {
    const size_t comma = list.find(',');
    std::string name = Trim(list.substr(0, comma));
    XA_RETURN_IF_ERROR(CheckName(file, rms->line, "a resource manager name in rms", name,
                                 three_phase::kMaxAgentRmNameSize));
    if (auto [it, first] = owner.emplace(name, agent.name); !first) {
      return file.Error(rms->line, "resource manager " + internal::QuotedForMessage(name) +
                                       " is listed by agents " +
                                       internal::QuotedForMessage(it->second) + " and " +
                                       internal::QuotedForMessage(agent.name) +
                                       ": a resource manager belongs to exactly one agent");
    }
    agent.rms.push_back(std::move(name));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return agent;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text, const std::string& path) {
  auto parsed = internal::ParseConfigText(text, path, kGrammar);
  if (!parsed.ok()) return parsed.status();
  const internal::ConfigFile& file = *parsed;
  Config config;
  config.path = path;
  bool have_node = false;
  // Top-level settings, then each section, in file order: the first mistake in the file is the
  // one reported.
  for (const internal::ConfigEntry& entry : file.top.entries) {
    if (entry.key == "log_dir") {
      auto dir = file.Directory(entry);
      if (!dir.ok()) return dir.status();
      config.log_dir = std::move(dir).value();
    } else if (entry.key == "node_id") {
      auto node = file.Integer(kNodeId, entry);
      if (!node.ok()) return node.status();
      config.node_id = static_cast<uint32_t>(*node);
      have_node = true;
    } else if (entry.key == "orphan_min_age_ms") {
      auto ms = file.Integer(kOrphanMinAgeMs, entry);
      if (!ms.ok()) return ms.status();
      config.orphan_min_age = std::chrono::milliseconds(*ms);
    } else if (entry.key == "agents_key_file") {
      // The key's own rules (mode, owner, size) are LoadSharedKey's, applied when it is loaded.
      if (entry.value.empty()) return file.Error(entry.line, "agents_key_file needs a path");
      config.agents_key_file = entry.value;
    } else if (entry.key == "agent_timeout_ms") {
      auto ms = file.Integer(kAgentTimeoutMs, entry);
      if (!ms.ok()) return ms.status();
      config.agent_timeout = std::chrono::milliseconds(*ms);
    } else if (entry.key == "marker_rm") {
      if (entry.value.empty()) {
        return file.Error(entry.line, "marker_rm needs the name of an [rm] section");
      }
      config.marker_rm = entry.value;
    } else if (entry.key == "marker_table") {
      // MarkerTableNameError quotes the name as it is: escaped here like all text from the file.
      if (std::string error = MarkerTableNameError(entry.value); !error.empty()) {
        return file.Error(entry.line, "marker_table: " + internal::EscapeForMessage(error) +
                                          " (write [schema.]table, e.g. xa_commit_marker)");
      }
      config.marker_table = entry.value;
    } else if (entry.key == "marker_settle_wait_ms") {
      auto ms = file.Integer(kMarkerSettleWaitMs, entry);
      if (!ms.ok()) return ms.status();
      config.marker_settle_wait = std::chrono::milliseconds(*ms);
    } else {
      return file.UnknownKey(file.top, entry, kTopLevelKeys);
    }
  }
  std::map<std::string, std::string> owner;  // resource manager -> agent
  std::map<std::string, const internal::ConfigSection*> agent_at;  // address -> section
  for (const internal::ConfigSection& section : file.sections) {
    if (section.kind == kAgentSection.kind) {
      auto agent = ReadAgentSection(file, section, owner);
      if (!agent.ok()) return agent.status();
      if (auto [it, first] = agent_at.emplace(agent->address, &section); !first) {
        return file.Error(section.Find("address")->line,
                          section.Label() + " has the address of " + it->second->Label() +
                              " (line " + std::to_string(it->second->line) +
                              "): each agent listens on its own");
      }
      config.agents.push_back(std::move(agent).value());
      continue;
    }
    auto rm = internal::ReadRmSection(file, section);
    if (!rm.ok()) return rm.status();
    config.rms.push_back(std::move(rm).value());
  }
  if (config.log_dir.empty()) return file.Error(0, "log_dir is required");
  if (!have_node) return file.Error(0, "node_id is required");
  if (config.rms.empty()) {
    return file.Error(0, "no resource manager: add a section '[rm <name>]' for each");
  }
  for (const RmConfig& rm : config.rms) {
    XA_RETURN_IF_ERROR(internal::CheckRmComplete(file, rm));
  }
  if (!config.agents.empty() && config.agents_key_file.empty()) {
    return file.Error(0, "agents_key_file is required with an [agent] section: the agents' "
                         "shared key, as in their own configuration");
  }
  if (config.agents.empty() && !config.agents_key_file.empty()) {
    return file.Error(file.top.Find("agents_key_file")->line,
                      "agents_key_file is set but no [agent] section names an agent");
  }
  if (const internal::ConfigEntry* marker = file.top.Find("marker_rm"); marker != nullptr) {
    bool configured = false;
    std::string known;
    for (const RmConfig& rm : config.rms) {
      configured = configured || rm.name == config.marker_rm;
      known += (known.empty() ? "" : ", ") + internal::QuotedForMessage(rm.name);
    }
    if (!configured) {
      return file.Error(marker->line,
                        "marker_rm names " + internal::QuotedForMessage(config.marker_rm) +
                            ", which is no [rm] section of this file (they are " + known +
                            "): name the one whose database holds the marker table");
    }
  } else {
    // The marker's other settings mean nothing without it: the first of them in the file.
    for (const internal::ConfigEntry& entry : file.top.entries) {
      if (entry.key == "marker_table" || entry.key == "marker_settle_wait_ms") {
        return file.Error(entry.line, entry.key + " needs marker_rm: the [rm] section whose "
                                                  "database holds the marker table");
      }
    }
  }
  for (const auto& [rm_name, agent] : owner) {
    bool configured = false;
    for (const RmConfig& rm : config.rms) configured = configured || rm.name == rm_name;
    if (!configured) {
      return file.Error(0, "agent " + internal::QuotedForMessage(agent) +
                               " stands for resource manager " +
                               internal::QuotedForMessage(rm_name) +
                               ", which has no [rm] section: add one (recovery scans it and "
                               "commits its branches where the agent does not hold them)");
    }
  }
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kGrammar.program);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

}  // namespace xa::recover_tool
