// pgha: the node agent. This build knows how to read and validate a node's configuration
// (Patroni's `--validate-config`); the HA loop arrives with the agent.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "common/log.h"
#include "config/config.h"
#include "config/yaml_json.h"

namespace {
constexpr const char* kVersion = "0.1.0";
}

int main(int argc, char** argv) {
  CLI::App app{"pgha: PostgreSQL high-availability agent (Patroni-compatible)"};
  std::string config_path;
  bool validate = false;
  bool print = false;
  app.add_option("config", config_path, "patroni.yml, or a directory of YAML files");
  app.add_flag("--validate-config", validate, "check the configuration and exit");
  app.add_flag("--print-config", print, "print the effective configuration (YAML) and exit");
  app.set_version_flag("--version", std::string("pgha ") + kVersion);
  CLI11_PARSE(app, argc, argv);
  pgha::InitLogging("INFO");

  pgha::config::LoadOptions options;
  if (!config_path.empty()) {
    options.path = config_path;
  }
  options.environment = pgha::config::CurrentEnvironment();
  auto config = pgha::config::LoadConfig(options);
  if (!config.ok()) {
    std::cerr << "pgha: invalid configuration: " << config.error().message() << "\n";
    return 2;
  }
  for (const auto& warning : config->warnings) {
    std::cerr << "pgha: warning: " << warning << "\n";
  }
  if (print) {
    std::cout << pgha::config::JsonToYaml(config->raw);
    return 0;
  }
  if (validate) {
    std::cout << "configuration is valid: member " << config->name << " of cluster "
              << config->scope << ", keys under " << config->KeyPrefix() << "\n";
    return 0;
  }
  std::cerr << "pgha: running the HA loop is not part of this build yet; use --validate-config\n";
  return 2;
}
