#include "tools/xa_recover/config.h"

#include <string_view>
#include <utility>

namespace xa::recover_tool {
namespace {

const internal::ConfigGrammar kGrammar{"xa-recover", {internal::kRmSection}};
constexpr std::string_view kTopLevelKeys[] = {"log_dir", "node_id", "orphan_min_age_ms"};

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
    } else {
      return file.UnknownKey(file.top, entry, kTopLevelKeys);
    }
  }
  for (const internal::ConfigSection& section : file.sections) {
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
  return config;
}

Result<Config> LoadConfig(const std::string& path) {
  auto text = internal::ReadConfigFile(path, kGrammar.program);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

}  // namespace xa::recover_tool
