#include "api/metrics.h"

#include <fmt/format.h>

#include "common/prometheus_text.h"
#include "common/time_format.h"

namespace pgha::api {

namespace {

class Writer {
 public:
  explicit Writer(const model::NodeStatus& s)
      : labels_(fmt::format("scope=\"{}\",name=\"{}\"", EscapeLabelValue(s.scope),
                            EscapeLabelValue(s.name))) {}

  void Metric(const char* name, const char* type, const char* help, double value,
              const std::string& extra_labels = "") {
    Header(name, type, help);
    Sample(name, value, extra_labels);
  }
  void Header(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void Sample(const std::string& name, double value, const std::string& extra_labels = "") {
    out_ += fmt::format("{}{{{}{}}} {}\n", name, labels_,
                        extra_labels.empty() ? "" : "," + extra_labels, Number(value));
  }
  void Histogram(
      const char* name, const char* help,
      const std::vector<std::pair<std::string, const model::HaMetrics::Histogram*>>& series) {
    Header(name, "histogram", help);
    for (const auto& [label, h] : series) {
      for (size_t i = 0; i < model::HaMetrics::kDcsBuckets.size(); ++i) {
        Sample(std::string(name) + "_bucket", static_cast<double>(h->buckets[i]),
               fmt::format("{},le=\"{}\"", label, Number(model::HaMetrics::kDcsBuckets[i])));
      }
      Sample(std::string(name) + "_bucket", static_cast<double>(h->count), label + ",le=\"+Inf\"");
      Sample(std::string(name) + "_sum", h->sum, label);
      Sample(std::string(name) + "_count", static_cast<double>(h->count), label);
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  static std::string Number(double v) {
    if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 9e15 && v > -9e15) {
      return std::to_string(static_cast<int64_t>(v));
    }
    return fmt::format("{}", v);
  }
  std::string labels_;
  std::string out_;
};

// "2026-11-25 19:41:14.467641+00:00" as epoch seconds; 0 when absent or unreadable.
double EpochSeconds(const std::string& timestamp) {
  auto parsed = ParseIsoTimestamp(timestamp);
  if (!parsed.ok()) {
    return 0;
  }
  return std::chrono::duration<double>(parsed->time_since_epoch()).count();
}

// Patroni's version "3.0.2" as "030002".
double VersionNumber(const std::string& version) {
  int major = 0, minor = 0, patch = 0;
  if (std::sscanf(version.c_str(), "%d.%d.%d", &major, &minor, &patch) < 2) {
    return 0;
  }
  return major * 10000 + minor * 100 + patch;
}

}  // namespace

// Patroni declares xlog locations and the timeline as counters without the _total suffix;
// pgha keeps the names (dashboards and alerts query them) but declares them gauges, so that
// `promtool check metrics` accepts the output.
std::string RenderMetrics(const model::NodeStatus& s) {
  Writer w(s);
  bool primary = s.postgres_running && !s.in_recovery && s.has_lock;
  bool replica = s.postgres_running && s.in_recovery;
  w.Metric("patroni_version", "gauge", "Patroni semver without periods.", VersionNumber(s.version));
  w.Metric("patroni_postgres_running", "gauge", "Value is 1 if Postgres is running, 0 otherwise.",
           s.postgres_running ? 1 : 0);
  w.Metric("patroni_postmaster_start_time", "gauge", "Epoch seconds since Postgres started.",
           s.postgres_running ? EpochSeconds(s.postmaster_start_time) : 0);
  w.Metric("patroni_primary", "gauge", "Value is 1 if this node is the leader, 0 otherwise.",
           primary ? 1 : 0);
  w.Metric("patroni_xlog_location", "gauge",
           "Current location of the Postgres transaction log, 0 if this node is not the leader.",
           primary ? static_cast<double>(s.wal_position) : 0);
  w.Metric("patroni_standby_leader", "gauge",
           "Value is 1 if this node is the standby_leader, 0 otherwise.", 0);
  w.Metric("patroni_replica", "gauge", "Value is 1 if this node is a replica, 0 otherwise.",
           replica ? 1 : 0);
  w.Metric("patroni_sync_standby", "gauge",
           "Value is 1 if this node is a sync standby replica, 0 otherwise.",
           s.sync_standby ? 1 : 0);
  w.Metric("patroni_quorum_standby", "gauge",
           "Value is 1 if this node is a quorum standby replica, 0 otherwise.",
           s.quorum_standby ? 1 : 0);
  w.Metric("patroni_xlog_received_location", "gauge",
           "Current location of the received Postgres transaction log, 0 if this node is not a "
           "replica.",
           replica ? static_cast<double>(s.received_location.value_or(0)) : 0);
  w.Metric("patroni_xlog_replayed_location", "gauge",
           "Current location of the replayed Postgres transaction log, 0 if this node is not a "
           "replica.",
           replica ? static_cast<double>(s.replayed_location.value_or(0)) : 0);
  w.Metric("patroni_xlog_replayed_timestamp", "gauge",
           "Current timestamp of the replayed Postgres transaction log, 0 if null.",
           replica ? EpochSeconds(s.replayed_timestamp) : 0);
  w.Metric("patroni_xlog_paused", "gauge",
           "Value is 1 if the Postgres xlog is paused, 0 otherwise.",
           replica && s.replay_paused ? 1 : 0);
  w.Metric("patroni_postgres_streaming", "gauge",
           "Value is 1 if Postgres is streaming, 0 otherwise.",
           replica && s.replication_state == "streaming" ? 1 : 0);
  w.Metric("patroni_postgres_in_archive_recovery", "gauge",
           "Value is 1 if Postgres is replicating from archive, 0 otherwise.",
           replica && s.replication_state == "in archive recovery" ? 1 : 0);
  w.Metric("patroni_postgres_server_version", "gauge",
           "Version of Postgres (if running), 0 otherwise.",
           s.postgres_running ? static_cast<double>(s.server_version) : 0);
  w.Metric("patroni_cluster_unlocked", "gauge",
           "Value is 1 if the cluster is unlocked, 0 if locked.", s.cluster_unlocked ? 1 : 0);
  w.Metric("patroni_failsafe_mode_is_active", "gauge",
           "Value is 1 if failsafe mode is active, 0 if inactive.", s.failsafe_active ? 1 : 0);
  w.Metric("patroni_postgres_timeline", "gauge",
           "Postgres timeline of this node (if running), 0 otherwise.",
           s.postgres_running ? static_cast<double>(s.timeline) : 0);
  w.Metric("patroni_dcs_last_seen", "gauge",
           "Epoch timestamp when DCS was last contacted successfully by Patroni.",
           static_cast<double>(s.dcs_last_seen));
  w.Metric("patroni_pending_restart", "gauge",
           "Value is 1 if the node needs a restart, 0 otherwise.",
           s.pending_restart_reason.empty() ? 0 : 1);
  w.Metric("patroni_is_paused", "gauge", "Value is 1 if auto failover is disabled, 0 otherwise.",
           s.paused ? 1 : 0);
  w.Metric("patroni_failover_priority", "gauge",
           "Value is the priority of this node to become the new leader.",
           static_cast<double>(s.failover_priority));

  const auto& m = s.metrics;
  w.Metric("pgha_ha_cycles_total", "counter", "HA loop cycles run since pgha started.",
           static_cast<double>(m.cycles));
  w.Metric("pgha_seconds_since_last_cycle", "gauge",
           "Seconds since the HA loop last finished a cycle.", s.seconds_since_cycle);
  w.Header("pgha_promotions_total", "counter",
           "Times this node was promoted, by cause (failover: the leader was lost; switchover: "
           "an operator asked).");
  w.Sample("pgha_promotions_total", static_cast<double>(m.failovers), "kind=\"failover\"");
  w.Sample("pgha_promotions_total", static_cast<double>(m.switchovers), "kind=\"switchover\"");
  w.Metric("pgha_last_promotion_duration_seconds", "gauge",
           "Seconds from noticing the leader gone (or the switchover request) to this node "
           "accepting writes, for its last promotion.",
           m.last_promotion_seconds);
  w.Metric("pgha_handovers_total", "counter",
           "Planned switchovers away from this node (it stopped and handed the lock over).",
           static_cast<double>(m.handovers));
  w.Metric("pgha_last_handover_duration_seconds", "gauge",
           "Seconds the last handover took, from the checkpoint to following the new leader.",
           m.last_handover_seconds);
  w.Histogram(
      "pgha_dcs_request_duration_seconds",
      "Duration of the HA loop's DCS requests: reading the cluster and renewing the lock.",
      {{"operation=\"load_cluster\"", &m.dcs_load}, {"operation=\"renew_lock\"", &m.dcs_renew}});
  if (m.lease_margin_seconds) {
    w.Metric("pgha_lease_margin_seconds", "gauge",
             "On the leader: seconds the leader lock is certainly still held (ttl minus the time "
             "since the last successful renewal).",
             *m.lease_margin_seconds);
  }
  return w.Take();
}

}  // namespace pgha::api
