// Any bytes as a patroni.yml: the loader returns a Config or an error, never crashes.
#include <cstdint>
#include <string>

#include "config/config.h"
#include "config/yaml_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto tree = pgha::config::YamlToJson(text);
  if (!tree.ok()) {
    return 0;
  }
  auto config = pgha::config::ConfigFromTree(*tree, false);
  auto ctl = pgha::config::ConfigFromTree(*tree, true);
  if (config.ok()) {
    // Whatever loads must render back to YAML that loads to the same tree.
    auto again = pgha::config::YamlToJson(pgha::config::JsonToYaml(config->raw));
    if (!again.ok() || *again != config->raw) {
      __builtin_trap();
    }
  }
  (void)ctl;
  return 0;
}
