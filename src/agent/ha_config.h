// The loop's view of the settings ha::Decide reads: the DCS's dynamic configuration with this
// node's local overrides (postgresql.use_pg_rewind, create_replica_methods).
#pragma once

#include "config/config.h"
#include "ha/decide.h"
#include "model/global_config.h"

namespace pgha::agent {

ha::HaConfig HaConfigFrom(const model::GlobalConfig& dynamic, const config::Config& config);

}  // namespace pgha::agent
