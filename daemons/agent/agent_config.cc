#include "daemons/agent/agent_config.h"

#include <set>
#include <string_view>
#include <utility>

#include "src/base/escape.h"
#include "src/net/socket_address.h"

namespace xa::agent {
namespace {

using internal::ConfigEntry;
using internal::ConfigFile;
using internal::ConfigSection;
using internal::QuotedForMessage;

constexpr internal::SectionKind kAgentSection{"agent", "an agent", "agent"};
const internal::ConfigGrammar kGrammar{"xa-agent", {kAgentSection, internal::kRmSection}};

constexpr std::string_view kTopLevelKeys[] = {"agent",
                                              "log_dir",
                                              "node_id",
                                              "key_file",
                                              "termination_timeout_ms",
                                              "peer_timeout_ms",
                                              "orphan_scan_interval_ms",
                                              "coordinator_node_ids",
                                              "metrics_address"};
constexpr std::string_view kAgentKeys[] = {"address", "rms"};

std::string Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t");
  return std::string(s.substr(begin, end - begin + 1));
}

// A name is one word (the file is plain text, so it is printable) of 1..max bytes.
Status CheckName(const ConfigFile& file, int line, std::string_view what, const std::string& name,
                 size_t max) {
  if (name.empty() || name.find_first_of(" \t") != std::string::npos) {
    return file.Error(line, std::string(what) + " must be one word, not " + QuotedForMessage(name));
  }
  if (name.size() > max) {
    return file.Error(line, std::string(what) + " " + QuotedForMessage(name) + " is longer than " +
                                std::to_string(max) + " bytes");
  }
  return Status::Ok();
}

// An address of the file (`entry`), refused at its line; `need_port` refuses port 0.
Result<net::SocketAddress> ReadAddress(const ConfigFile& file, const ConfigEntry& entry,
                                       bool need_port) {
  auto address = net::ParseSocketAddress(entry.value);
  if (!address.ok()) return file.Error(entry.line, address.status().message());
  if (need_port && address->port == 0) {
    return file.Error(entry.line, entry.key + " " + QuotedForMessage(entry.value) +
                                      " needs a port other than 0: peers connect to it");
  }
  return address;
}

std::string Where(const ConfigSection& section, int line) {
  return section.Label() + " (line " + std::to_string(line) + ")";
}

// The optional durations: their rule and where they go.
struct DurationSetting {
  const IntegerSetting* setting;
  std::chrono::milliseconds AgentConfig::*field;
};
constexpr DurationSetting kDurations[] = {{&kTerminationTimeoutMs,
                                           &AgentConfig::termination_timeout},
                                          {&kPeerTimeoutMs, &AgentConfig::peer_timeout},
                                          {&kOrphanScanIntervalMs,
                                           &AgentConfig::orphan_scan_interval}};

const DurationSetting* DurationOf(std::string_view key) {
  for (const DurationSetting& duration : kDurations) {
    if (key == duration.setting->key) return &duration;
  }
  return nullptr;
}

Status ReadTopLevel(const ConfigFile& file, AgentConfig& config) {
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(file.top, kTopLevelKeys));
  bool have_agent = false, have_node = false, have_coordinators = false;
  for (const ConfigEntry& entry : file.top.entries) {
    const std::string& key = entry.key;
    if (key == "agent") {
      XA_RETURN_IF_ERROR(CheckName(file, entry.line, "agent", entry.value, kMaxAgentNameSize));
      config.agent = entry.value;
      have_agent = true;
    } else if (key == "log_dir") {
      auto dir = file.Directory(entry);
      if (!dir.ok()) return dir.status();
      config.log_dir = std::move(dir).value();
    } else if (key == "node_id") {
      auto node = file.Integer(internal::kNodeId, entry);
      if (!node.ok()) return node.status();
      config.node_id = static_cast<uint32_t>(*node);
      have_node = true;
    } else if (key == "key_file") {
      if (entry.value.empty()) return file.Error(entry.line, "key_file needs a path");
      // The key's own rules (mode, owner, size) are LoadSharedKey's alone.
      auto key_loaded = net::LoadSharedKey(entry.value);
      if (!key_loaded.ok()) return file.Error(entry.line, key_loaded.status().message());
      config.key_file = entry.value;
    } else if (key == "coordinator_node_ids") {
      // A list of node ids, each by node_id's rule; at least one.
      std::string_view rest = entry.value;
      while (true) {
        const size_t comma = rest.find(',');
        ConfigEntry one = entry;
        one.value = Trim(rest.substr(0, comma));
        if (one.value.empty()) {
          return file.Error(entry.line, "coordinator_node_ids needs '<node id>, <node id>...' "
                                        "(each 0 to 4294967295), not " +
                                            QuotedForMessage(entry.value));
        }
        auto node = file.Integer(internal::kNodeId, one);
        if (!node.ok()) return node.status();
        config.coordinator_node_ids.insert(static_cast<uint32_t>(*node));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
      have_coordinators = true;
    } else if (const DurationSetting* duration = DurationOf(key)) {
      auto ms = file.Integer(*duration->setting, entry);
      if (!ms.ok()) return ms.status();
      config.*duration->field = std::chrono::milliseconds(*ms);
    } else {  // metrics_address: port 0 too (a listener then picks a free port)
      auto address = ReadAddress(file, entry, /*need_port=*/false);
      if (!address.ok()) return address.status();
      config.metrics_address = entry.value;
    }
  }
  if (!have_agent) return file.Error(0, "agent is required: this agent's name");
  if (config.log_dir.empty()) return file.Error(0, "log_dir is required");
  if (!have_node) return file.Error(0, "node_id is required");
  if (config.key_file.empty()) return file.Error(0, "key_file is required");
  if (!have_coordinators) config.coordinator_node_ids = {config.node_id};
  return Status::Ok();
}

// Where one resource manager name was listed, for the message that refuses a second listing.
struct Listing {
  const ConfigSection* section;
  int line;
};

Status ReadAgentSection(const ConfigFile& file, const ConfigSection& section, AgentConfig& config,
                        std::map<std::string, Listing>& listed,
                        std::map<std::pair<std::string, uint16_t>, const ConfigSection*>& at) {
  XA_RETURN_IF_ERROR(
      CheckName(file, section.line, "an agent name", section.name, kMaxAgentNameSize));
  XA_RETURN_IF_ERROR(file.RefuseUnknownKeys(section, kAgentKeys));
  const ConfigEntry* address = section.Find("address");
  const ConfigEntry* rms = section.Find("rms");
  if (address == nullptr) {
    return file.Error(section.line, section.Label() + " needs 'address = <IPv4>:<port>' or "
                                                      "'address = [<IPv6>]:<port>'");
  }
  auto parsed = ReadAddress(file, *address, /*need_port=*/true);
  if (!parsed.ok()) return parsed.status();
  if (auto [it, first] = at.emplace(std::make_pair(parsed->ip, parsed->port), &section); !first) {
    return file.Error(address->line,
                      section.Label() + " has the address of " + it->second->Label() + " (line " +
                          std::to_string(it->second->line) + "): each agent listens on its own");
  }
  config.address_of_agent[section.name] = address->value;
  if (rms == nullptr || Trim(rms->value).empty()) {
    return file.Error(rms == nullptr ? section.line : rms->line,
                      section.Label() + " needs 'rms = <name>, <name>...': the resource managers "
                                        "this agent stands for");
  }
  std::string_view list = rms->value;
  while (true) {
    const size_t comma = list.find(',');
    const std::string name = Trim(list.substr(0, comma));
    XA_RETURN_IF_ERROR(
        CheckName(file, rms->line, "a resource manager name in rms", name, kMaxRmNameSize));
    if (auto [it, first] = listed.emplace(name, Listing{&section, rms->line}); !first) {
      return file.Error(rms->line, "resource manager " + QuotedForMessage(name) + " is listed by " +
                                       Where(*it->second.section, it->second.line) + " and by " +
                                       Where(section, rms->line) +
                                       ": a resource manager belongs to exactly one agent");
    }
    config.agent_of_rm[name] = section.name;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return Status::Ok();
}

}  // namespace

Result<AgentConfig> ParseAgentConfig(const std::string& text, const std::string& path) {
  auto parsed = internal::ParseConfigText(text, path, kGrammar);
  if (!parsed.ok()) return parsed.status();
  const ConfigFile& file = *parsed;
  AgentConfig config;
  config.path = path;
  XA_RETURN_IF_ERROR(ReadTopLevel(file, config));

  std::map<std::string, Listing> listed;
  std::map<std::pair<std::string, uint16_t>, const ConfigSection*> at;
  for (const ConfigSection& section : file.sections) {
    if (section.kind == kAgentSection.kind) {
      XA_RETURN_IF_ERROR(ReadAgentSection(file, section, config, listed, at));
    }
  }
  if (config.address_of_agent.count(config.agent) == 0) {
    return file.Error(file.top.Find("agent")->line, "agent " + QuotedForMessage(config.agent) +
                                                        " is not in the directory: add "
                                                        "a section '[agent " +
                                                        internal::EscapeForMessage(config.agent) +
                                                        "]' with its address and rms");
  }
  if (config.peer_timeout >= config.termination_timeout) {
    const ConfigEntry* peer = file.top.Find(kPeerTimeoutMs.key);
    const ConfigEntry* termination = file.top.Find(kTerminationTimeoutMs.key);
    auto where = [](const ConfigEntry* entry, std::chrono::milliseconds value) {
      return std::to_string(value.count()) +
             (entry == nullptr ? " (the default)" : " (line " + std::to_string(entry->line) + ")");
    };
    // One of them is set, or the defaults would be refused.
    return file.Error(peer != nullptr ? peer->line : termination->line,
                      "peer_timeout_ms " + where(peer, config.peer_timeout) +
                          " must be less than termination_timeout_ms " +
                          where(termination, config.termination_timeout) +
                          ": a termination round must outlast the wait for one peer's reply");
  }

  std::set<std::string> have_section;
  for (const ConfigSection& section : file.sections) {
    if (section.kind != internal::kRmSection.kind) continue;
    XA_RETURN_IF_ERROR(
        CheckName(file, section.line, "a resource manager name", section.name, kMaxRmNameSize));
    auto owner = config.agent_of_rm.find(section.name);
    if (owner == config.agent_of_rm.end() || owner->second != config.agent) {
      return file.Error(section.line,
                        section.Label() + " is not a resource manager of agent " +
                            QuotedForMessage(config.agent) +
                            (owner == config.agent_of_rm.end()
                                 ? std::string(" (no agent lists it)")
                                 : " (agent " + QuotedForMessage(owner->second) +
                                       " stands for it)") +
                            ": this file holds the [rm] sections of its own agent only");
    }
    auto rm = internal::ReadRmSection(file, section);
    if (!rm.ok()) return rm.status();
    XA_RETURN_IF_ERROR(internal::CheckRmComplete(file, *rm));
    have_section.insert(section.name);
    config.rms.push_back(std::move(rm).value());
  }
  for (const auto& [rm, agent] : config.agent_of_rm) {
    if (agent == config.agent && have_section.count(rm) == 0) {
      return file.Error(listed.at(rm).line,
                        "resource manager " + QuotedForMessage(rm) + " of agent " +
                            QuotedForMessage(agent) + " has no section: add '[rm " +
                            internal::EscapeForMessage(rm) + "]' with its driver and settings");
    }
  }
  return config;
}

Result<AgentConfig> LoadAgentConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kGrammar.program);
  if (!text.ok()) return text.status();
  return ParseAgentConfig(*text, path);
}

}  // namespace xa::agent
