// pghactl edit-config, as patronictl 3.0.2: the config key is read, changed (-s / -p pairs, a
// YAML patch, a replacement, or the operator's editor), shown as a diff, validated, confirmed
// and written back with compare-and-swap. No member is asked anything.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cli/ctl.h"

namespace pgha::cli {

struct EditConfigOptions {
  std::vector<std::string> sets{};            // -s a.b=value (YAML value; null deletes)
  std::vector<std::string> pg_sets{};         // -p name=value, under postgresql.parameters
  std::optional<std::string> replace_yaml{};  // --replace: the whole configuration
  std::optional<std::string> apply_yaml{};    // --apply: a merge patch
  bool force = false;
  bool quiet = false;  // no diff
};

// The operator's editor: the current configuration as YAML in, the edited YAML out.
using ConfigEditor = std::function<Result<std::string>(const std::string& yaml)>;
// A unified diff of two YAML texts, as `diff -u` prints it.
using ConfigDiff = std::function<std::string(const std::string& before, const std::string& after)>;

// The editor runs only when no change is given on the command line.
Result<int> EditConfig(CtlContext& ctx, const EditConfigOptions& options,
                       const ConfigEditor& editor, const ConfigDiff& diff);

// patronictl's apply_config_changes: each "a.b.c=value" sets a key (the value read as YAML, a
// null deletes it and parents left empty); below postgresql.parameters the rest of the path is
// one parameter name, since parameters may contain dots.
Result<nlohmann::json> ApplySettings(nlohmann::json config, const std::vector<std::string>& sets,
                                     const std::vector<std::string>& pg_sets);

}  // namespace pgha::cli
