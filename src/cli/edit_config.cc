#include "cli/edit_config.h"

#include <algorithm>

#include "common/strings.h"
#include "config/yaml_json.h"
#include "model/global_config.h"

namespace pgha::cli {
namespace {

void SetPath(nlohmann::json& config, const std::vector<std::string>& path, size_t at,
             const nlohmann::json& value, bool in_parameters) {
  if (in_parameters) {
    std::string name;
    for (size_t i = at; i < path.size(); ++i) {
      name += (i > at ? "." : "") + path[i];
    }
    if (value.is_null()) {
      config.erase(name);
    } else {
      config[name] = value;
    }
    return;
  }
  const std::string& key = path[at];
  if (at + 1 == path.size()) {
    if (value.is_null()) {
      config.erase(key);
    } else {
      config[key] = value;
    }
    return;
  }
  if (!config.contains(key) || !config[key].is_object()) {
    config[key] = nlohmann::json::object();
  }
  bool parameters = at == 1 && path[0] == "postgresql" && key == "parameters";
  SetPath(config[key], path, at + 1, value, parameters);
  if (config[key].empty()) {
    config.erase(key);
  }
}

Result<nlohmann::json> ParseYaml(const std::string& text, const std::string& what) {
  auto parsed = config::YamlToJson(text);
  if (!parsed.ok()) {
    return Error::Invalid(what + ": " + parsed.error().message());
  }
  return *parsed;
}

Status ApplyPair(nlohmann::json& config, const std::string& pair, const std::string& prefix) {
  size_t eq = pair.find('=');
  std::string key = eq == std::string::npos ? "" : std::string(Trim(pair.substr(0, eq)));
  std::vector<std::string> path = Split(prefix + key, '.');
  if (key.empty() || std::find(path.begin(), path.end(), "") != path.end()) {
    return Error::Invalid("Invalid parameter setting " + pair);
  }
  auto value = ParseYaml(pair.substr(eq + 1), pair);
  if (!value.ok()) {
    return value.error();
  }
  SetPath(config, path, 0, *value, false);
  return OkStatus();
}

}  // namespace

Result<nlohmann::json> ApplySettings(nlohmann::json config, const std::vector<std::string>& sets,
                                     const std::vector<std::string>& pg_sets) {
  for (const auto& pair : sets) {
    PGHA_RETURN_IF_ERROR(ApplyPair(config, pair, ""));
  }
  for (const auto& pair : pg_sets) {
    PGHA_RETURN_IF_ERROR(ApplyPair(config, pair, "postgresql.parameters."));
  }
  return config;
}

Result<int> EditConfig(CtlContext& ctx, const EditConfigOptions& o, const ConfigEditor& editor,
                       const ConfigDiff& diff) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  nlohmann::json before = cluster->config ? cluster->config->data.raw() : nlohmann::json::object();
  nlohmann::json after = before;
  if (o.replace_yaml) {
    auto replaced = ParseYaml(*o.replace_yaml, "--replace");
    if (!replaced.ok()) {
      return replaced.error();
    }
    after = *replaced;
  }
  if (o.apply_yaml) {
    auto patch = ParseYaml(*o.apply_yaml, "--apply");
    if (!patch.ok()) {
      return patch.error();
    }
    after.merge_patch(*patch);
  }
  auto set = ApplySettings(after, o.sets, o.pg_sets);
  if (!set.ok()) {
    return set.error();
  }
  after = *set;
  const std::string before_yaml = config::JsonToYaml(before);
  if (o.sets.empty() && o.pg_sets.empty() && !o.apply_yaml && !o.replace_yaml) {
    auto edited = editor(before_yaml);
    if (!edited.ok()) {
      return edited.error();
    }
    auto parsed = ParseYaml(*edited, "the edited configuration");
    if (!parsed.ok()) {
      return parsed.error();
    }
    after = *parsed;
  }
  if (after == before) {
    ctx.terminal.Print("Not changed\n");
    return 0;
  }
  if (!o.quiet) {
    ctx.terminal.Print(diff(before_yaml, config::JsonToYaml(after)));
  }
  if (auto valid = model::GlobalConfig::Validate(after); !valid.ok()) {
    return Error::Invalid("the new configuration is invalid: " + valid.error().message());
  }
  if (auto adjusted = model::GlobalConfig::TimingAdjustment(after)) {
    ctx.terminal.PrintError("Warning: " + *adjusted + "\n");
  }
  if (!o.force) {
    PGHA_RETURN_IF_ERROR(Confirm(ctx, "Apply these changes?", "Aborted"));
  }
  int64_t revision = cluster->config ? cluster->config->mod_revision : 0;
  auto written = ctx.dcs.SetConfigValue(after.dump(), revision);
  if (!written.ok()) {
    return Error::Unavailable("writing the config key failed: " + written.error().message());
  }
  if (!*written) {
    return Error::Conflict("Config modification aborted due to concurrent changes");
  }
  ctx.terminal.Print("Configuration changed\n");
  return 0;
}

}  // namespace pgha::cli
