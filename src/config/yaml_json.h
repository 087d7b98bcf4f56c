// YAML <-> JSON with the scalar rules of PyYAML's safe_load (YAML 1.1), which is what Patroni
// uses: plain `on`/`off`/`yes`/`no` are booleans, `~` and `null` are null, `0x1A` is an int.
// Quoted scalars always stay strings. All of pgha's configuration is handled as JSON after this.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgha::config {

// Parses one YAML document. An empty document is null. Errors carry yaml-cpp's line/column.
Result<nlohmann::json> YamlToJson(std::string_view text);

// Renders JSON as block-style YAML that YamlToJson reads back to the same value (strings that
// would change meaning are quoted).
std::string JsonToYaml(const nlohmann::json& value);

// Resolves a plain (unquoted) YAML scalar the way PyYAML's safe_load does.
nlohmann::json ResolvePlainScalar(const std::string& text);

// Recursively merges `overlay` into `base`: mappings merge key by key, anything else replaces.
void DeepMerge(nlohmann::json& base, const nlohmann::json& overlay);

}  // namespace pgha::config
