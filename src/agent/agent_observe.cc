// Observing: the DCS snapshot, local PostgreSQL and peers into ha::HaInput; the cold start;
// publishing the node status the REST API serves.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/agent.h"
#include "agent/ha_config.h"
#include "common/log.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::seconds;

std::string Agent::MemberState(const ha::HaInput& input) const {
  if (input.local.long_action == ha::LongAction::kBootstrap) {
    return "initializing new cluster";
  }
  if (input.local.long_action == ha::LongAction::kBasebackup) {
    return "creating replica";
  }
  if (starting_) {
    return "starting";
  }
  if (input.local.postgres_running) {
    return "running";
  }
  if (input.local.long_action == ha::LongAction::kRestart) {
    return "restarting";
  }
  if (input.local.long_action != ha::LongAction::kNone) {
    return "stopped";
  }
  if (rewind_failures_ > 0) {
    return "rewind failed";  // not a bare "stopped": it waits for a retry or a reinit
  }
  return input.local.crashed ? "crashed" : "stopped";
}

ha::HaInput Agent::Observe(const Result<model::ClusterSnapshot>& cluster) {
  ha::HaInput in;
  in.now = clock_.Now();
  in.wall_now = clock_.WallNow();
  in.dcs_reachable = cluster.ok() && !dcs_failed_;
  if (cluster.ok()) {
    in.cluster = *cluster;
    if (in.cluster.config) {
      if (in.cluster.config->data.raw() != dynamic_.raw() || !dynamic_cached_) {
        // Patroni's cache of the dynamic configuration, what a restart uses until the DCS
        // answers (and what tools that know Patroni look for in the data directory).
        dynamic_cached_ = postgres_.WriteDynamicConfigCache(in.cluster.config->data.raw()).ok();
        const auto& raw = in.cluster.config->data.raw();
        for (const char* key : {"max_timelines_history", "check_timeline", "primary_stop_timeout",
                                "master_stop_timeout"}) {
          if (raw.contains(key) && !dynamic_.raw().contains(key)) {
            PGHA_LOG_WARN("config key {} is not implemented by pgha and has no effect", key);
          }
        }
      }
      dynamic_ = in.cluster.config->data;
    }
  }
  ha_config_ = HaConfigFrom(dynamic_, *config_);
  in.config = ha_config_;
  dcs_.SetTimings(ha_config_.ttl, ha_config_.loop_wait, ha_config_.retry_timeout);
  TrackColdStart(in);
  if (in.dcs_reachable && ha_config_.failsafe_mode && in.cluster.IsUnlocked()) {
    // A leader that reached every member while the DCS was away keeps its place for ttl after
    // its last call, though its key expired meanwhile (Patroni's Failsafe.update_cluster).
    MutexLock lock(mutex_);
    if (failsafe_leader_ && failsafe_leader_->name != config_->name &&
        duration<double>(clock_.Now() - failsafe_leader_->at).count() < ha_config_.ttl) {
      in.cluster.leader = model::Leader{failsafe_leader_->name, 0, 0};
    }
  }

  auto& local = in.local;
  local.name = config_->name;
  {
    MutexLock lock(mutex_);
    local.long_action = long_action_;
  }
  if (local.long_action == ha::LongAction::kNone && long_thread_.joinable()) {
    long_thread_.join();
  }
  local.data_initialized =
      local.long_action == ha::LongAction::kNone && postgres_.DataInitialized();
  postgres::Observation obs;
  if (local.long_action == ha::LongAction::kNone && local.data_initialized) {
    obs = postgres_.Observe();
    // pg_controldata is a process per call; the identifier only changes when the data
    // directory is replaced, which happens in long actions (they clear the cache).
    if (sysid_.empty()) {
      sysid_ = postgres_.SystemIdentifier();
    }
    local.sysid = sysid_;
    RegisterMember(in.cluster, cluster.ok());
  } else {
    sysid_.clear();
  }
  bool was_running = last_obs_.running;
  // A primary that went down without a demotion of ours (a crash, the fence, kill -9) may hold
  // WAL the next leader never received: before it follows anyone, pg_rewind checks. (During long
  // actions nothing is observed, so only two real observations count.)
  if (local.long_action == ha::LongAction::kNone && local.data_initialized && last_obs_.running &&
      !last_obs_.in_recovery && !obs.running) {
    rewind_needed_ = true;
  }
  last_obs_ = obs;
  local.postgres_running = obs.running;
  local.in_recovery = obs.running ? obs.in_recovery : postgres_.StandbySignalPresent();
  local.wal_position = obs.wal_position;
  local.replayed_position = obs.replayed_location.value_or(0);
  local.streaming = obs.replication_state == "streaming";
  local.receiver_timeline = obs.receiver_timeline;
  local.timeline = obs.timeline;
  local.following = Following();
  local.nofailover = config_->tags.nofailover;
  local.failover_priority = config_->tags.failover_priority;
  local.replicatefrom = config_->tags.replicatefrom;
  local.clone_from_leader = clone_from_leader_;
  local.last_lock_renewal = last_lock_renewal_;
  if (!in.dcs_reachable && obs.running && !obs.in_recovery && ha_config_.failsafe_mode) {
    std::shared_ptr<const model::ClusterSnapshot> last;
    {
      MutexLock lock(mutex_);
      last = cluster_;
    }
    in.failsafe_confirmed = last && ConfirmFailsafe(*last);
  }
  bool holds_lock = in.cluster.leader && in.cluster.leader->name == config_->name;
  if (cluster.ok() && !holds_lock && local.long_action == ha::LongAction::kNone) {
    MutexLock guard(lock_mutex_);
    lock_released_ = false;
  }
  if (obs.running && !obs.in_recovery) {
    rewind_needed_ = false;  // a running primary is what others rewind to, not the other way
  }
  if (!rewind_needed_) {
    rewind_failures_ = 0;  // rewound, re-cloned or promoted: no longer "rewind failed"
  }
  if (!obs.running && holds_lock) {
    if (!down_since_) {
      down_since_ = in.now;
    }
    local.crashed = was_running;
  } else {
    down_since_.reset();
  }
  local.down_since = down_since_;
  std::string leader = in.cluster.leader ? in.cluster.leader->name : "";
  local.needs_rewind = rewind_needed_ && !leader.empty() && leader != config_->name;
  // Peers are asked only when the race or a requested failover needs them.
  bool handover_asked = holds_lock && in.cluster.failover && obs.running && !obs.in_recovery &&
                        (!in.cluster.failover->scheduled_at ||
                         *in.cluster.failover->scheduled_at <=
                             in.wall_now + seconds(static_cast<int64_t>(ha_config_.loop_wait) + 1));
  // primary_start_timeout: 0 asks a crashed primary to fail over rather than restart, if a
  // replica can take over: that needs the replicas' answers too.
  bool crashed_primary_may_yield =
      holds_lock && !obs.running && ha_config_.primary_start_timeout == 0;
  if (in.dcs_reachable &&
      (((in.cluster.IsUnlocked() || handover_asked) && obs.running) || crashed_primary_may_yield)) {
    std::vector<model::Member> others;
    for (const auto& m : in.cluster.members) {
      if (m.name != config_->name) {
        others.push_back(m);
      }
    }
    in.peers = peers_.FetchAll(others);
  }
  Publish(in, obs);
  return in;
}

void Agent::TrackColdStart(ha::HaInput& in) {
  if (cold_start_over_ || !in.dcs_reachable) {
    return;
  }
  if (in.cluster.leader || (cold_start_until_ && in.now >= *cold_start_until_)) {
    cold_start_over_ = true;
    return;
  }
  if (!cold_start_until_ && in.cluster.initialize && !in.cluster.initialize->empty()) {
    cold_start_until_ =
        in.now + std::chrono::duration_cast<MonoTime::duration>(duration<double>(ha_config_.ttl));
    PGHA_LOG_INFO(
        "cold start: no leader; for up to {:.0f} s the lock waits for the registered members ({}) "
        "to report their positions",
        ha_config_.ttl, fmt::join(in.cluster.registered_members, ", "));
  }
  in.cold_start_until = cold_start_until_;
}

void Agent::RegisterMember(const model::ClusterSnapshot& cluster, bool loaded) {
  // Only a member whose data belongs to this cluster: a node still cloning, or one restored
  // from another cluster, is nobody's last primary.
  if (!loaded || !cluster.initialize || sysid_.empty() || *cluster.initialize != sysid_ ||
      std::binary_search(cluster.registered_members.begin(), cluster.registered_members.end(),
                         config_->name)) {
    return;
  }
  nlohmann::json record = {{"api_url", ApiUrl()}, {"conn_url", ConnUrl()}};
  if (auto written = dcs_.RegisterMember(record.dump()); !written.ok()) {
    PGHA_LOG_WARN("could not register this member in the DCS: {}", written.error().message());
  }
}

void Agent::PublishStopped() {
  MutexLock lock(mutex_);
  status_.postgres_running = false;
  status_.state = "stopped";
}

void Agent::PublishPromoted(const postgres::Observation& obs) {
  MutexLock lock(mutex_);
  status_.postgres_running = obs.running;
  status_.in_recovery = obs.in_recovery;
  status_.has_lock = true;
  if (obs.running && !obs.in_recovery) {
    status_.role = "master";
    status_.state = "running";
  }
  status_.wal_position = obs.wal_position;
  status_.timeline = obs.timeline;
}

void Agent::Publish(const ha::HaInput& in, const postgres::Observation& obs) {
  MutexLock lock(mutex_);
  status_.postgres_running = obs.running;
  status_.in_recovery = obs.in_recovery;
  auto recent = [&](std::optional<MonoTime> at) {
    return at && duration<double>(in.now - *at).count() < in.config.ttl;
  };
  // With the DCS away, a primary that every member confirmed over POST /failsafe within ttl
  // still leads (Patroni extends its leader expiry the same way), so /primary and /leader keep
  // answering 200 and the load balancer keeps sending writes: that is what failsafe_mode is for.
  bool leads_by_failsafe =
      !in.dcs_reachable && obs.running && !obs.in_recovery && FailsafeConfirmedRecently();
  status_.has_lock =
      (in.cluster.leader && in.cluster.leader->name == config_->name) || leads_by_failsafe;
  status_.state = MemberState(in);
  if (!in.local.data_initialized && in.local.long_action == ha::LongAction::kNone) {
    status_.role = "uninitialized";
  } else if (obs.running) {
    status_.role = obs.in_recovery ? "replica" : "master";
  } else {
    status_.role =
        in.local.in_recovery ? "replica" : (in.local.data_initialized ? "master" : "uninitialized");
  }
  if (status_.has_lock && status_.role == "replica" && in.config.standby_cluster) {
    status_.role = "standby_leader";
  }
  status_.postmaster_start_time = obs.postmaster_start_time;
  status_.server_version = obs.server_version;
  status_.wal_position = obs.wal_position;
  status_.received_location = obs.received_location;
  status_.replayed_location = obs.replayed_location;
  status_.replayed_timestamp = obs.replayed_timestamp;
  status_.replay_paused = obs.replay_paused;
  status_.timeline = obs.timeline;
  status_.replication_state = obs.replication_state;
  status_.replication = obs.replication;
  bool named_by_leaders_key = in.config.sync.enabled && obs.in_recovery && in.cluster.leader &&
                              in.cluster.sync &&
                              in.cluster.sync->leader == in.cluster.leader->name &&
                              in.cluster.sync->IsSyncStandby(config_->name);
  status_.sync_standby = named_by_leaders_key && !in.config.sync.quorum;
  status_.quorum_standby = named_by_leaders_key && in.config.sync.quorum;
  status_.sysid = in.local.sysid;
  status_.failsafe_active =
      leads_by_failsafe || (failsafe_leader_ && recent(failsafe_leader_->at) && in.cluster.leader &&
                            in.cluster.leader->mod_revision == 0);
  status_.paused = in.config.paused;
  status_.pending_restart_reason = obs.running ? obs.pending_restart : nlohmann::json::object();
  status_.cluster_unlocked = in.dcs_reachable && in.cluster.IsUnlocked();
  status_.ttl = in.config.ttl;
  status_.maximum_lag_on_failover = in.config.maximum_lag_on_failover;
  status_.cluster_optime = in.cluster.status.optime;
  status_.failover_priority = config_->tags.failover_priority;
  if (status_.has_lock && last_lock_renewal_) {
    status_.metrics.lease_margin_seconds =
        in.config.ttl - duration<double>(in.now - *last_lock_renewal_).count();
  } else {
    status_.metrics.lease_margin_seconds.reset();
  }
  // When this replica first saw the leader gone or a switchover asked, for the promotion time.
  bool promotion_pending = in.cluster.IsUnlocked() || in.cluster.failover.has_value();
  if (!promotion_pending) {
    promotion_wanted_since_.reset();
  } else if (!promotion_wanted_since_) {
    promotion_wanted_since_ = in.now;
  }
  if (in.dcs_reachable) {
    status_.dcs_last_seen =
        std::chrono::duration_cast<seconds>(clock_.WallNow().time_since_epoch()).count();
  }
}

}  // namespace pgha::agent
