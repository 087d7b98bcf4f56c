// NodeStatus: what the agent publishes about this node after each cycle, read by the REST API
// (GET /patroni and the health checks) and turned into the member key. A value: the agent
// replaces it whole under a mutex, readers take a copy.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pgha::agent {

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

}  // namespace pgha::agent
