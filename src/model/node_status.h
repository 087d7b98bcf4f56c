// NodeStatus: what the agent publishes about this node after each cycle, read by the REST API
// (GET /patroni and the health checks) and turned into the member key. A value: the agent
// replaces it whole under a mutex, readers take a copy.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pgha::model {

// What pgha measures beyond Patroni's gauges, for GET /metrics.
struct HaMetrics {
  // Upper bounds (seconds) of the DCS request-duration histogram buckets.
  static constexpr std::array<double, 12> kDcsBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,   0.25,   0.5,   1,    2.5,   5};
  uint64_t cycles = 0;
  // Promotions of this node: after the leader was lost (failover) or on request (switchover),
  // with the time from noticing it to PostgreSQL accepting writes.
  uint64_t failovers = 0;
  uint64_t switchovers = 0;
  double last_promotion_seconds = 0;
  // Planned handovers away from this node, and how long the last took (checkpoint to following).
  uint64_t handovers = 0;
  double last_handover_seconds = 0;
  // Every DCS read of the cluster and every lock renewal, by operation.
  struct Histogram {
    std::array<uint64_t, kDcsBuckets.size()> buckets{};  // cumulative counts, as Prometheus wants
    double sum = 0;
    uint64_t count = 0;
    void Observe(double seconds);
  };
  Histogram dcs_load;
  Histogram dcs_renew;
  // On the leader: ttl minus the time since the last successful renewal (how long the lock is
  // certainly still ours); absent elsewhere.
  std::optional<double> lease_margin_seconds;
};

struct NodeStatus {
  std::string scope;
  std::string name;
  std::string version;                 // the Patroni version we advertise
  std::string state = "stopped";       // Patroni's member state ("running", "starting", ...)
  std::string role = "uninitialized";  // "master" / "replica" / "uninitialized"
  bool postgres_running = false;
  bool has_lock = false;
  bool in_recovery = false;
  std::string postmaster_start_time;
  int64_t server_version = 0;
  uint64_t wal_position = 0;
  std::optional<uint64_t> received_location;
  std::optional<uint64_t> replayed_location;
  std::string replayed_timestamp;
  bool replay_paused = false;
  int64_t timeline = 0;
  std::string replication_state;
  nlohmann::json replication = nlohmann::json::array();
  // In synchronous mode, the sync key of the current leader names this replica.
  bool sync_standby = false;
  // In quorum commit mode, the leader's sync key names this replica as a voter.
  bool quorum_standby = false;
  bool failsafe_active = false;  // failsafe_mode is holding this primary / leader up
  std::string sysid;
  int64_t dcs_last_seen = 0;  // epoch seconds
  nlohmann::json tags = nlohmann::json::object();
  bool paused = false;
  // Parameters waiting for a restart: {name: {"old_value": ...}} (Patroni 4's reason shape).
  nlohmann::json pending_restart_reason = nlohmann::json::object();
  bool cluster_unlocked = false;
  double seconds_since_cycle = 0;  // for /liveness
  double ttl = 30;
  int64_t maximum_lag_on_failover = 1048576;
  std::optional<uint64_t> cluster_optime;  // from the DCS status key, for ?lag=
  // A restart scheduled through POST /restart {"schedule": ...}, as Patroni shows it (null: none).
  nlohmann::json scheduled_restart;
  int64_t failover_priority = 1;
  HaMetrics metrics;

  // The body of GET /patroni, in Patroni's shape and field order.
  nlohmann::ordered_json ToPatroniJson() const;
};

// The conditions of POST /restart, already validated: the restart happens only when they hold
// (at once, or at the scheduled time).
struct RestartConditions {
  std::string role;  // "" (any), "master" or "replica"
  bool restart_pending = false;
  std::optional<int64_t> postgres_version;  // only when running an older server_version
};
bool RestartConditionsMet(const RestartConditions& conditions, const NodeStatus& status);

}  // namespace pgha::model
