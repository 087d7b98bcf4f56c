#include "model/node_status.h"

namespace pgha::model {

nlohmann::ordered_json NodeStatus::ToPatroniJson() const {
  nlohmann::ordered_json out;
  out["state"] = state;
  if (postgres_running) {
    out["postmaster_start_time"] = postmaster_start_time;
    out["role"] = role;
    out["server_version"] = server_version;
    if (!in_recovery) {
      out["xlog"] = {{"location", wal_position}};
    } else {
      nlohmann::ordered_json xlog;
      xlog["received_location"] = received_location.value_or(0);
      xlog["replayed_location"] = replayed_location.value_or(0);
      xlog["replayed_timestamp"] = replayed_timestamp.empty()
                                       ? nlohmann::ordered_json(nullptr)
                                       : nlohmann::ordered_json(replayed_timestamp);
      xlog["paused"] = replay_paused;
      out["xlog"] = xlog;
    }
    out["timeline"] = timeline;
    if (!replication.empty()) {  // cascading replicas have walsenders too
      // In Patroni's column order (the rows come keyed, and sorted, from the query).
      nlohmann::ordered_json rows = nlohmann::ordered_json::array();
      for (const auto& row : replication) {
        nlohmann::ordered_json ordered;
        for (const char* key : {"usename", "application_name", "client_addr", "state", "sync_state",
                                "sync_priority"}) {
          if (row.contains(key)) {
            ordered[key] = nlohmann::ordered_json::parse(row.at(key).dump());
          }
        }
        for (const auto& [key, value] : row.items()) {
          if (!ordered.contains(key)) {
            ordered[key] = nlohmann::ordered_json::parse(value.dump());
          }
        }
        rows.push_back(std::move(ordered));
      }
      out["replication"] = std::move(rows);
    }
    if (in_recovery && !replication_state.empty()) {
      out["replication_state"] = replication_state;
    }
    if (in_recovery && sync_standby) {
      out["sync_standby"] = true;
    }
    if (in_recovery && quorum_standby) {
      out["quorum_standby"] = true;
    }
  } else {
    out["role"] = role;
  }
  if (cluster_unlocked) {
    out["cluster_unlocked"] = true;
  }
  if (paused) {
    out["pause"] = true;
  }
  if (failsafe_active) {
    out["failsafe_mode_is_active"] = true;
  }
  out["dcs_last_seen"] = dcs_last_seen;
  if (!tags.empty()) {
    out["tags"] = nlohmann::ordered_json::parse(tags.dump());
  }
  if (!sysid.empty()) {
    out["database_system_identifier"] = sysid;
  }
  if (!pending_restart_reason.empty()) {
    out["pending_restart"] = true;
    out["pending_restart_reason"] = nlohmann::ordered_json::parse(pending_restart_reason.dump());
  }
  if (scheduled_restart.is_object()) {
    out["scheduled_restart"] = nlohmann::ordered_json::parse(scheduled_restart.dump());
  }
  out["patroni"] = {{"version", version}, {"scope", scope}, {"name", name}};
  return out;
}

void HaMetrics::Histogram::Observe(double seconds) {
  for (size_t i = 0; i < kDcsBuckets.size(); ++i) {
    if (seconds <= kDcsBuckets[i]) {
      ++buckets[i];
    }
  }
  sum += seconds;
  ++count;
}

bool RestartConditionsMet(const RestartConditions& conditions, const NodeStatus& status) {
  bool primary = status.has_lock && status.postgres_running && !status.in_recovery;
  if (conditions.role == "master" && !primary) {
    return false;
  }
  if (conditions.role == "replica" && primary) {
    return false;
  }
  if (conditions.restart_pending && status.pending_restart_reason.empty()) {
    return false;
  }
  return !conditions.postgres_version || status.server_version < *conditions.postgres_version;
}

}  // namespace pgha::model
