// What postgresql.conf gets from the two parameter sources, by Patroni's rules: the cluster-wide
// parameters (those a replica must match to replay) come from the DCS only, with Patroni's
// defaults and lower bounds; every other one from the DCS, then the local file. Names renamed
// across PostgreSQL majors are translated for the server that runs them.
//
// Pure functions; no I/O.
#pragma once

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
// hot_standby and replica likewise. The result lists the cluster-wide parameters first, then
// the others by name.
std::vector<std::pair<std::string, nlohmann::json>> ServerParameters(const nlohmann::json& dcs,
                                                                     const nlohmann::json& local,
                                                                     int major);

}  // namespace pgha::postgres
