// Configuration from environment variables, by Patroni's rules (`PATRONI_*`, docs/configuration.md)
// and by the Spilo-style variables the seed's docker-compose sets (`SCOPE`, `ETCD3_HOSTS`,
// `PATRONI_RESTAPI_PORT`, `PGVERSION`, `POSTGRES_PASSWORD`, ...).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pgha::config {

using Environment = std::map<std::string, std::string>;

// The process environment as a map.
Environment CurrentEnvironment();

// The configuration tree that the `PATRONI_*` variables describe (only the keys they set).
// Unrecognised `PATRONI_*` names are reported in `warnings`.
nlohmann::json PatroniEnvironmentOverlay(const Environment& env,
                                         std::vector<std::string>* warnings);

// The configuration tree implied by Spilo-style variables; these are defaults that a config file
// and `PATRONI_*` variables override.
nlohmann::json SpiloEnvironmentDefaults(const Environment& env);

// Parses a list given in an environment variable: a YAML/JSON list ("['a:1','b:2']") or a
// comma-separated string ("a:1,b:2").
std::vector<std::string> ParseEnvironmentList(const std::string& value);

}  // namespace pgha::config
