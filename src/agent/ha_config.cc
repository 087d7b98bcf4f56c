#include "agent/ha_config.h"

namespace pgha::agent {

ha::HaConfig HaConfigFrom(const model::GlobalConfig& dynamic, const config::Config& config) {
  ha::HaConfig c;
  c.ttl = dynamic.ttl();
  c.loop_wait = dynamic.loop_wait();
  c.retry_timeout = dynamic.retry_timeout();
  c.maximum_lag_on_failover = dynamic.maximum_lag_on_failover();
  c.primary_start_timeout = dynamic.primary_start_timeout();
  c.use_pg_rewind = config.postgresql.use_pg_rewind.value_or(dynamic.use_pg_rewind());
  c.paused = dynamic.is_paused();
  c.sync.enabled = dynamic.synchronous_mode() != model::SynchronousMode::kOff;
  c.sync.quorum = dynamic.synchronous_mode() == model::SynchronousMode::kQuorum;
  c.sync.strict = dynamic.synchronous_mode_strict();
  c.sync.node_count = dynamic.synchronous_node_count();
  c.sync.maximum_lag_on_syncnode = dynamic.maximum_lag_on_syncnode();
  c.failsafe_mode = dynamic.failsafe_mode();
  for (const auto& method : config.postgresql.create_replica_methods) {
    c.can_create_replica_without_leader |= config.postgresql.MethodWorksWithoutLeader(method);
  }
  c.standby_cluster = dynamic.is_standby_cluster();
  return c;
}

}  // namespace pgha::agent
