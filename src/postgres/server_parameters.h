// What postgresql.conf gets from the two parameter sources, by Patroni's rules: the cluster-wide
// parameters (those a replica must match to replay) come from the DCS only, with Patroni's
// defaults and lower bounds; every other one from the DCS, then the local file. Names renamed
// across PostgreSQL majors are translated for the server that runs them.
//
// Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace pgha::postgres {

// The cluster-wide parameters, in the order postgresql.conf lists them, with Patroni's defaults.
const std::vector<std::pair<std::string, nlohmann::json>>& ClusterWideDefaults();

// `major`: PostgreSQL's major version as server_version_num / 10000 (15), or 0 when unknown.
// A DCS value of a cluster-wide parameter below Patroni's bound (max_connections < 25, ...) is
// replaced by the default; a local one is ignored, as Patroni ignores it. wal_keep_segments
// becomes wal_keep_size (16 MB a segment) from 13 on and the reverse before; wal_level
// hot_standby and replica likewise. `at_least` raises parameters to values a server in
// recovery needs (pg_controldata's record of the primary's settings: a standby with a smaller
// max_connections refuses to start). The result lists the cluster-wide parameters first, then
// the others by name.
std::vector<std::pair<std::string, nlohmann::json>> ServerParameters(
    const nlohmann::json& dcs, const nlohmann::json& local, int major,
    const std::map<std::string, int64_t>& at_least = {});

// pg_controldata's fields that record the settings a server in recovery must at least have, as
// parameter name -> pg_controldata field name.
const std::map<std::string, std::string>& RecoveryMinimumFields();

}  // namespace pgha::postgres
