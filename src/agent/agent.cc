#include "agent/agent.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "common/log.h"
#include "common/lsn.h"
#include "common/time_format.h"
#include "ha/quorum.h"
#include "ha/slots.h"
#include "model/codec.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

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

}  // namespace

Agent::Agent(config::Config& config, dcs::Dcs& dcs, postgres::LocalPostgres& postgres,
             ha::PeerClient& peers, Clock& clock)
    : config_(config),
      dcs_(dcs),
      postgres_(postgres),
      peers_(peers),
      clock_(clock),
      callbacks_(config.scope),
      watchdog_(config.watchdog,
                config.watchdog.mode == "off"
                    ? nullptr
                    : MakeWatchdogDevice(config.watchdog.driver, config.watchdog.device)) {
  // Until the DCS says otherwise, the cached dynamic configuration (patroni.dynamic.json in the
  // data directory), else the bootstrap section, is the best guess of the cluster config.
  if (auto cached = postgres_.ReadDynamicConfigCache()) {
    dynamic_ = model::GlobalConfig(*cached);
  } else {
    dynamic_ = model::GlobalConfig(config.bootstrap.dcs);
  }
  ha_config_ = HaConfigFrom(dynamic_, config_);
  // A data directory without standby.signal was a primary's; if another node leads now, it
  // must be rewound before it can follow.
  rewind_needed_ = postgres_.DataInitialized() && !postgres_.StandbySignalPresent();
  status_.scope = config.scope;
  status_.name = config.name;
  status_.version = kAdvertisedPatroniVersion;
  status_.tags = config.tags.raw;
}

void Agent::SetConfigSource(std::function<Result<config::Config>()> source) {
  config_source_ = std::move(source);
}

Agent::~Agent() {
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
}

void Agent::RequestStop() {
  stop_ = true;
  Wake();
}

void Agent::Wake() {
  {
    std::lock_guard lock(wake_mutex_);
    ++wake_events_;
  }
  wake_.notify_all();
}

model::NodeStatus Agent::CurrentStatus() const {
  std::lock_guard lock(mutex_);
  model::NodeStatus copy = status_;
  copy.seconds_since_cycle = duration<double>(clock_.Now() - last_cycle_).count();
  return copy;
}

std::shared_ptr<const model::ClusterSnapshot> Agent::CurrentCluster() const {
  std::lock_guard lock(mutex_);
  return cluster_;
}

std::string Agent::Following() const {
  std::lock_guard lock(mutex_);
  return following_;
}

void Agent::SetFollowing(const std::string& name) {
  std::lock_guard lock(mutex_);
  following_ = name;
}

std::string Agent::LastReason() const {
  std::lock_guard lock(mutex_);
  return last_reason_;
}

void Agent::Run() {
  PGHA_LOG_INFO("pgha {} starting: member {} of cluster {}", kAdvertisedPatroniVersion,
                config_.name, config_.scope);
  dcs_.SetChangeListener([this] { Wake(); });
  StartFence();
  if (auto written = postgres_.WritePgpass(); !written.ok()) {
    PGHA_LOG_WARN("postgresql.pgpass: {}", written.error().message());
  }
  while (!stop_) {
    RunCycle();
    UpdateFence();
    UpdateWatchdog();
    WaitForNextCycle();
  }
  Shutdown();
  watchdog_.Disable();
  fence_.reset();  // PostgreSQL is stopped: nothing to guard
  postmaster_exit_.Stop();
  dcs_.SetChangeListener(nullptr);  // the DCS may outlive this agent
}

bool Agent::FailsafeConfirmedRecently() const {
  return failsafe_confirmed_at_ &&
         duration<double>(clock_.Now() - *failsafe_confirmed_at_).count() < ha_config_.ttl;
}

std::string Agent::FatalError() const {
  std::lock_guard lock(mutex_);
  return fatal_error_;
}

void Agent::WaitForNextCycle() {
  double wait = ha_config_.loop_wait;
  // While the leadership moves (no leader, or a switchover asked for now) members observe every
  // half second: health checks and peers read the status the loop published, and positions a
  // loop_wait old would hold up the handover (the primary waits for a candidate to report its
  // shutdown checkpoint) and the race (the healthiest member is chosen on them).
  {
    std::lock_guard lock(mutex_);
    if (cluster_) {
      const auto& failover = cluster_->failover;
      bool moving = cluster_->IsUnlocked() ||
                    (failover && (!failover->scheduled_at ||
                                  *failover->scheduled_at <= clock_.WallNow() + seconds(1)));
      if (moving) {
        wait = std::min(wait, kTransitionRecheckSeconds);
      }
    }
  }
  // The same while the local PostgreSQL settles (started but not yet accepting connections, a
  // replica not yet streaming): the health checks would otherwise learn it is ready a loop_wait
  // late.
  bool settling = (!last_obs_.running && postgres_.PostmasterAlive()) ||
                  (last_obs_.running && last_obs_.in_recovery &&
                   last_obs_.replication_state != "streaming" && !config_.tags.nostream);
  if (settling) {
    wait = std::min(wait, kTransitionRecheckSeconds);
  }
  for (const auto& recheck : {recheck_in_, restart_recheck_in_}) {
    if (recheck) {
      wait = std::clamp(*recheck, 0.0, wait);
    }
  }
  // Sleep until loop_wait or an event: a DCS change, the postmaster's exit, a request from the
  // API, a long action's end, or stop. Every one of them calls Wake().
  // An exit reported before now was this cycle's own doing (a demotion) or is found below (the
  // pid is gone): only one during the wait is news.
  postmaster_exited_ = false;
  uint64_t seen = 0;
  {
    std::lock_guard lock(wake_mutex_);
    seen = wake_events_;  // read before the watch is armed, so an exit from then on wakes us
  }
  if (last_obs_.running) {
    auto pid = postgres_.PostmasterPid();
    if (pid) {
      postmaster_exit_.Watch(*pid);
    } else {
      postmaster_exit_.Stop();
      return;  // it was running a moment ago: look again now
    }
  } else {
    postmaster_exit_.Stop();
  }
  std::unique_lock lock(wake_mutex_);
  bool woken = wake_.wait_for(lock, milliseconds(static_cast<int64_t>(wait * 1000)),
                              [&] { return stop_ || wake_events_ != seen; });
  if (woken && postmaster_exited_.exchange(false)) {
    std::lock_guard state(mutex_);
    if (long_action_.empty()) {
      PGHA_LOG_WARN("postmaster is gone");  // a long action stops PostgreSQL on purpose
    }
  }
}

void Agent::StartFence() {
  const auto& watchdog = config_.watchdog;
  if (watchdog.mode == "off") {
    PGHA_LOG_WARN(
        "fence: none (watchdog.mode is off): a frozen or killed agent leaves a primary "
        "taking writes after its leader lock expired");
    return;
  }
  // Watchdog devices are not driven (none exists on the machines pgha is tested on); the fence
  // process does the same job without one, and also when the whole agent is frozen.
  std::error_code ec;
  std::string program =
      (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "pgha-fence").string();
  auto fence = Fence::Start(program, config_.postgresql.data_dir);
  if (!fence.ok()) {
    PGHA_LOG_ERROR("fence: {}", fence.error().message());
    return;
  }
  fence_ = std::move(*fence);
  PGHA_LOG_INFO(
      "fence: process {} (pid {}) stops PostgreSQL if the leader lock is not renewed within "
      "ttl - min(safety_margin, ttl/4); watchdog device {} not used",
      program, fence_->pid(), watchdog.device);
}

void Agent::UpdateFence() {
  if (!fence_) {
    return;
  }
  bool primary = false;
  {
    std::lock_guard lock(mutex_);
    primary = status_.has_lock && status_.postgres_running && !status_.in_recovery;
  }
  auto pid = primary ? postgres_.PostmasterPid() : std::nullopt;
  FencePlan plan = PlanFence({.primary_running = pid.has_value(),
                              .paused = ha_config_.paused,
                              .last_renewal = last_lock_renewal_,
                              .failsafe_confirmed_at = failsafe_confirmed_at_,
                              .ttl = ha_config_.ttl,
                              .safety_margin = config_.watchdog.safety_margin,
                              .now = clock_.Now()});
  switch (plan.kind) {
    case FencePlan::Kind::kDisarm:
      fence_->Disarm();
      break;
    case FencePlan::Kind::kLeaveAsIs:
      break;
    case FencePlan::Kind::kArm:
      fence_->Arm(plan.deadline, *pid);
      break;
  }
}

double Agent::WatchdogTtl() const { return std::min(ha_config_.ttl, dynamic_.configured_ttl()); }

void Agent::UpdateWatchdog() {
  if (!watchdog_.enabled()) {
    return;
  }
  bool primary = false;
  {
    std::lock_guard lock(mutex_);
    primary = status_.has_lock && status_.postgres_running && !status_.in_recovery;
  }
  // As Patroni: only a primary that holds the lock is watched, and not while paused (the
  // operator runs things by hand then).
  if (!primary || ha_config_.paused) {
    watchdog_.Disable();
    return;
  }
  if (!watchdog_.active()) {
    (void)watchdog_.Activate(WatchdogTtl(), ha_config_.loop_wait);
    watchdog_pinged_for_ = last_lock_renewal_;
    return;
  }
  // A ping for every successful renewal (or failsafe confirmation with the DCS away): the
  // device then fires ttl - safety_margin after the last proof that this node may lead.
  auto proof = last_lock_renewal_;
  if (failsafe_confirmed_at_ && (!proof || *failsafe_confirmed_at_ > *proof)) {
    proof = failsafe_confirmed_at_;
  }
  if (proof && proof != watchdog_pinged_for_) {
    watchdog_.Keepalive(WatchdogTtl());
    watchdog_pinged_for_ = proof;
  }
}

double RewindRetryDelay(int failures, double loop_wait) {
  constexpr double kLongest = 300;
  double delay = std::max(5.0, loop_wait);
  for (int i = 1; i < failures && delay < kLongest; ++i) {
    delay *= 2;
  }
  return std::min(delay, kLongest);
}

bool RewindRetryDue(MonoTime failed_at, int failures, MonoTime now, double loop_wait) {
  return now - failed_at >= duration<double>(RewindRetryDelay(failures, loop_wait));
}

Status Agent::StopForDemotion(bool immediate) {
  if (!immediate) {
    // A fast shutdown checkpoints and waits for the WAL senders, which stalls while replicas are
    // unreachable: allow it until the lock could expire, then stop at once.
    double left = ha_config_.ttl;
    if (last_lock_renewal_) {
      left -= duration<double>(clock_.Now() - *last_lock_renewal_).count();
    }
    auto fast = postgres_.Stop("fast", seconds(std::max(1, static_cast<int>(left))));
    if (fast.ok()) {
      return fast;
    }
    PGHA_LOG_WARN(
        "fast shutdown did not finish before the leader lock could expire ({}); "
        "shutting down immediately",
        fast.error().message());
  }
  return postgres_.Stop("immediate", seconds(config_.postgresql.pg_ctl_timeout));
}

void Agent::Callback(const std::string& action, bool replica) {
  callbacks_.Call(config_.postgresql.callbacks, action, replica ? "replica" : "master");
}

void Agent::AfterStart(bool replica) { NoteRole(replica ? "replica" : "master", true); }

void Agent::NoteRole(const std::string& role, bool started) {
  std::string before;
  {
    std::lock_guard lock(mutex_);
    before = callback_role_;
    callback_role_ = role;
  }
  if (!before.empty() && before != role) {
    callbacks_.Call(config_.postgresql.callbacks, "on_role_change", role);
  } else if (started) {
    callbacks_.Call(config_.postgresql.callbacks, "on_start", role);
  }
}

std::optional<model::Member> Agent::StandbyClusterSource(const model::GlobalConfig& dynamic) {
  nlohmann::json section = dynamic.standby_cluster();
  std::string host = section.value("host", std::string());
  if (host.empty()) {
    return std::nullopt;
  }
  int64_t port = 5432;
  if (auto it = section.find("port"); it != section.end()) {
    port = static_cast<int64_t>(model::JsonAsNumber(*it).value_or(5432));
  }
  model::Member source;
  source.name = model::kStandbyClusterSource;
  std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  source.data = {{"conn_url", fmt::format("postgres://{}:{}/postgres", url_host, port)}};
  return source;
}

std::string Agent::MemberState(const ha::HaInput& input) const {
  if (input.local.long_action == "bootstrap") {
    return "initializing new cluster";
  }
  if (input.local.long_action == "basebackup") {
    return "creating replica";
  }
  if (starting_) {
    return "starting";
  }
  if (input.local.postgres_running) {
    return "running";
  }
  if (input.local.long_action == "restart") {
    return "restarting";
  }
  if (!input.local.long_action.empty()) {
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
  ha_config_ = HaConfigFrom(dynamic_, config_);
  in.config = ha_config_;
  dcs_.SetTimings(ha_config_.ttl, ha_config_.loop_wait, ha_config_.retry_timeout);
  TrackColdStart(in);
  if (in.dcs_reachable && ha_config_.failsafe_mode && in.cluster.IsUnlocked()) {
    // A leader that reached every member while the DCS was away keeps its place for ttl after
    // its last call, though its key expired meanwhile (Patroni's Failsafe.update_cluster).
    std::lock_guard lock(mutex_);
    if (failsafe_leader_ && failsafe_leader_->name != config_.name &&
        duration<double>(clock_.Now() - failsafe_leader_->at).count() < ha_config_.ttl) {
      in.cluster.leader = model::Leader{failsafe_leader_->name, 0, 0};
    }
  }

  auto& local = in.local;
  local.name = config_.name;
  {
    std::lock_guard lock(mutex_);
    local.long_action = long_action_;
  }
  if (local.long_action.empty() && long_thread_.joinable()) {
    long_thread_.join();
  }
  local.data_initialized = local.long_action.empty() && postgres_.DataInitialized();
  postgres::Observation obs;
  if (local.long_action.empty() && local.data_initialized) {
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
  if (local.long_action.empty() && local.data_initialized && last_obs_.running &&
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
  local.nofailover = config_.tags.nofailover;
  local.failover_priority = config_.tags.failover_priority;
  local.replicatefrom = config_.tags.replicatefrom;
  local.clone_from_leader = clone_from_leader_;
  local.last_lock_renewal = last_lock_renewal_;
  if (!in.dcs_reachable && obs.running && !obs.in_recovery && ha_config_.failsafe_mode) {
    std::shared_ptr<const model::ClusterSnapshot> last;
    {
      std::lock_guard lock(mutex_);
      last = cluster_;
    }
    in.failsafe_confirmed = last && ConfirmFailsafe(*last);
  }
  bool holds_lock = in.cluster.leader && in.cluster.leader->name == config_.name;
  if (cluster.ok() && !holds_lock && local.long_action.empty()) {
    std::lock_guard guard(lock_mutex_);
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
  local.needs_rewind = rewind_needed_ && !leader.empty() && leader != config_.name;
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
      if (m.name != config_.name) {
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
                         config_.name)) {
    return;
  }
  nlohmann::json record = {{"api_url", ApiUrl()}, {"conn_url", ConnUrl()}};
  if (auto written = dcs_.RegisterMember(record.dump()); !written.ok()) {
    PGHA_LOG_WARN("could not register this member in the DCS: {}", written.error().message());
  }
}

void Agent::PublishStopped() {
  std::lock_guard lock(mutex_);
  status_.postgres_running = false;
  status_.state = "stopped";
}

void Agent::PublishPromoted(const postgres::Observation& obs) {
  std::lock_guard lock(mutex_);
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
  std::lock_guard lock(mutex_);
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
      (in.cluster.leader && in.cluster.leader->name == config_.name) || leads_by_failsafe;
  status_.state = MemberState(in);
  if (!in.local.data_initialized && in.local.long_action.empty()) {
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
                              in.cluster.sync->IsSyncStandby(config_.name);
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
  status_.failover_priority = config_.tags.failover_priority;
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

void Agent::RunCycle() {
  auto load_started = clock_.Now();
  auto cluster = dcs_.LoadCluster();
  {
    std::lock_guard lock(mutex_);
    status_.metrics.dcs_load.Observe(duration<double>(clock_.Now() - load_started).count());
  }
  if (!cluster.ok()) {
    PGHA_LOG_WARN("DCS is not accessible: {}", cluster.error().message());
  } else {
    // A primary kept by failsafe_mode takes no DCS action while the members confirm it, so
    // nothing else would clear the failure: a load that succeeds again is its sign that the
    // DCS is back (it then takes the leader key again). Had the load come from a stale cache,
    // the renewal that follows fails and sets the flag again.
    if (dcs_failed_ && FailsafeConfirmedRecently()) {
      PGHA_LOG_INFO("DCS is accessible again");
      dcs_failed_ = false;
    }
    std::lock_guard lock(mutex_);
    cluster_ = std::make_shared<const model::ClusterSnapshot>(*cluster);
  }
  ha::HaInput input = Observe(cluster);
  ApplyRequestedReload(input);
  EvaluateScheduledRestart(input);
  StartRequestedRestart(input);
  StartRequestedReinitialize(input);
  {
    // A restart started just now is this cycle's long action: Decide must not see its
    // stopping PostgreSQL as a crash.
    std::lock_guard lock(mutex_);
    input.local.long_action = long_action_;
  }
  std::string reason;
  // Only a cycle that changed nothing about PostgreSQL may apply new parameters: after a
  // demote, promote or follow the observation taken before it is stale.
  bool steady = true;
  // The leader race changes the cluster; decide again on the new snapshot (at most twice).
  for (int round = 0; round < 3; ++round) {
    ha::Decision decision = ha::Decide(input);
    reason = decision.reason;
    recheck_in_ = decision.recheck_in;
    bool redecide = false;
    for (const auto& action : decision.actions) {
      steady = steady && (action.kind == ha::ActionKind::kUpdateLock ||
                          action.kind == ha::ActionKind::kLeaderUpkeep);
      if (!Execute(action, input)) {
        break;
      }
      if (action.kind == ha::ActionKind::kAcquireLock) {
        redecide = true;
      }
    }
    if (!redecide) {
      break;
    }
    auto fresh = dcs_.LoadCluster();
    if (fresh.ok() && (!fresh->leader || fresh->leader->name != config_.name)) {
      // The cache may not have seen our own write yet; the lock is ours, say so.
      fresh->leader = model::Leader{config_.name, 0, 0};
    }
    input = Observe(fresh);
  }
  {
    std::lock_guard lock(mutex_);
    if (reason != last_reason_) {
      PGHA_LOG_INFO("{}", reason);
    } else {
      PGHA_LOG_DEBUG("{}", reason);
    }
    last_reason_ = reason;
    last_cycle_ = clock_.Now();
    ++status_.metrics.cycles;
  }
  // After a DCS failure this cycle, further DCS calls would each spend retry_timeout and push
  // back the next decision; a primary must get to that decision (demote) in time. So only a
  // node that is not a writable primary probes the DCS, and the member key waits.
  if (dcs_failed_) {
    bool writable_primary = last_obs_.running && !last_obs_.in_recovery;
    if (!writable_primary && dcs_.Ping().ok()) {
      PGHA_LOG_INFO("DCS is accessible again");
      dcs_failed_ = false;
    }
  }
  if (steady) {
    ApplyParameterChanges(input);
    // A replica keeps slots for the members that cascade from it (replicatefrom) and drops
    // the ones nobody wants; the query runs only when what it should keep changes (or
    // PostgreSQL restarted, as after a demotion), not every cycle.
    if (last_obs_.running && last_obs_.in_recovery && input.dcs_reachable) {
      std::string wanted = SlotsWanted(input.cluster, false);
      if (!replica_slots_synced_ || replica_slots_synced_->first != wanted ||
          replica_slots_synced_->second != last_obs_.postmaster_start_time) {
        if (SyncSlots(input.cluster, false).ok()) {
          replica_slots_synced_ = std::make_pair(wanted, last_obs_.postmaster_start_time);
        }
      }
    } else {
      replica_slots_synced_.reset();
    }
    if (last_obs_.running && last_obs_.in_recovery && !input.dcs_reachable) {
      AdvanceSlotsFromFailsafeLeader();
    }
  }
  if (input.dcs_reachable && !dcs_failed_) {
    TouchMember(input);
  }
}

std::optional<Status> Agent::AskLoop(LoopRequest& request, const std::string& what, bool force,
                                     milliseconds timeout) {
  uint64_t before = 0;
  {
    std::lock_guard lock(mutex_);
    if (request.pending || long_action_ == what) {
      return Error::Unavailable(what + " already in progress");
    }
    if (!long_action_.empty() && !force) {
      return Error::Unavailable(long_action_ + " in progress");
    }
    request.pending = true;
    before = request.answered;
  }
  Wake();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mutex_);
      if (request.answered != before) {
        return request.answer;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return std::nullopt;
}

bool Agent::Asked(const LoopRequest& request) const {
  std::lock_guard lock(mutex_);
  return request.pending && long_action_.empty();
}

void Agent::Answer(LoopRequest& request, Status status) {
  std::lock_guard lock(mutex_);
  request.pending = false;
  request.answer = std::move(status);
  ++request.answered;
}

Status Agent::RestartPostgres(std::chrono::seconds timeout) {
  auto answer = AskLoop(restart_request_, "restart", false, timeout);
  if (!answer) {
    return Error::Unavailable("restart did not finish within " + std::to_string(timeout.count()) +
                              " s; it goes on in the background");
  }
  return *answer;
}

Status Agent::Reinitialize(bool force, bool from_leader) {
  clone_from_leader_ = from_leader;
  // The loop answers within one wait slice; a long action it must wait for (force) may take
  // longer, and then the reinitialize still happens after it.
  return AskLoop(reinit_request_, "reinitialize", force, seconds(30)).value_or(OkStatus());
}

Status Agent::Reload() {
  if (!config_source_) {
    return Error::Unavailable("this agent has no configuration file to reload");
  }
  {
    std::lock_guard lock(mutex_);
    reload_request_.pending = true;
  }
  Wake();
  return OkStatus();
}

// Patroni's reload: the node's own settings (postgresql section, tags, log) take effect now;
// what identifies the node or its DCS (name, scope, namespace, etcd, restapi, bootstrap) needs
// a restart of pgha and is kept as it was, with a warning.
void Agent::ApplyRequestedReload(const ha::HaInput& in) {
  if (!Asked(reload_request_)) {
    return;
  }
  auto loaded = config_source_();
  if (!loaded.ok()) {
    PGHA_LOG_ERROR("reload: the configuration is not valid, keeping the current one: {}",
                   loaded.error().message());
    Answer(reload_request_, loaded.error());
    return;
  }
  config::Config fresh = std::move(*loaded);
  auto keep = [](const char* what, bool changed) {
    if (changed) {
      PGHA_LOG_WARN("reload: a change of {} needs a restart of pgha; keeping the old value", what);
    }
  };
  keep("name", fresh.name != config_.name);
  keep("scope", fresh.scope != config_.scope);
  keep("namespace", fresh.namespace_ != config_.namespace_);
  keep("postgresql.data_dir", fresh.postgresql.data_dir != config_.postgresql.data_dir);
  keep("etcd3",
       fresh.raw.value("etcd3", nlohmann::json()) != config_.raw.value("etcd3", nlohmann::json()));
  keep("restapi", fresh.raw.value("restapi", nlohmann::json()) !=
                      config_.raw.value("restapi", nlohmann::json()));
  fresh.name = config_.name;
  fresh.scope = config_.scope;
  fresh.namespace_ = config_.namespace_;
  fresh.postgresql.data_dir = config_.postgresql.data_dir;
  fresh.etcd3 = config_.etcd3;
  fresh.restapi = config_.restapi;
  fresh.bootstrap = config_.bootstrap;
  fresh.watchdog = config_.watchdog;
  config_ = std::move(fresh);
  {
    std::lock_guard lock(mutex_);
    status_.tags = config_.tags.raw;
  }
  SetLogLevel(config_.log.level);
  if (last_obs_.running) {
    const model::Member* target =
        last_obs_.in_recovery ? in.cluster.FindMember(Following()) : nullptr;
    auto written = postgres_.WriteConfig(dynamic_, last_obs_.in_recovery, target);
    if (written.ok()) {
      written = postgres_.Reload();
    }
    if (written.ok()) {
      Callback("on_reload", last_obs_.in_recovery);
    } else {
      PGHA_LOG_ERROR("reload: {}", written.error().message());
    }
  }
  PGHA_LOG_INFO("reload: configuration reloaded");
  Answer(reload_request_, OkStatus());
}

void Agent::StartRequestedReinitialize(const ha::HaInput& in) {
  if (!Asked(reinit_request_)) {
    return;
  }
  auto answer = [this](Status status) { Answer(reinit_request_, std::move(status)); };
  if (in.cluster.leader && in.cluster.leader->name == config_.name) {
    answer(Error::Unavailable("I am the leader, can not reinitialize"));
    return;
  }
  if (!in.cluster.LeaderMember()) {
    answer(Error::Unavailable("Cluster has no leader, can not reinitialize"));
    return;
  }
  PGHA_LOG_INFO("reinitializing: removing the data directory to clone it again from the leader");
  sysid_.clear();
  StartLongAction("reinitialize", [this]() -> Status {
    (void)postgres_.Stop("immediate", seconds(config_.postgresql.pg_ctl_timeout));
    return postgres_.RemoveDataDirectory();
  });
  answer(OkStatus());
}

void Agent::StartRequestedRestart(const ha::HaInput& in) {
  if (!Asked(restart_request_)) {
    return;
  }
  StartRestart(in, [this](Status status) { Answer(restart_request_, std::move(status)); });
}

void Agent::StartRestart(const ha::HaInput& in, std::function<void(Status)> finish) {
  // A stopped server is started (Patroni's restart is stop-if-running, then start): in
  // maintenance mode that is how an operator brings a crashed member back.
  // (A stopped server's role is its standby.signal's.)
  bool standby = in.local.in_recovery;
  std::optional<model::Member> leader;
  if (standby) {
    if (const auto* m = in.cluster.FindMember(Following())) {
      leader = *m;
    }
  }
  PGHA_LOG_INFO("restarting PostgreSQL on request");
  StartLongAction("restart", [this, finish, standby, leader, dynamic = dynamic_]() -> Status {
    auto timeout = seconds(config_.postgresql.pg_ctl_timeout);
    Status status = postgres_.Stop("fast", timeout);
    if (status.ok()) {
      PublishStopped();
      status = postgres_.WriteConfig(dynamic, standby, leader ? &*leader : nullptr);
    }
    if (status.ok()) {
      status = postgres_.Start(timeout);
    }
    if (status.ok()) {
      Callback("on_restart", standby);
    }
    finish(status);
    return status;
  });
}

Status Agent::ScheduleRestart(WallTime at, nlohmann::json shown,
                              model::RestartConditions conditions,
                              std::chrono::seconds /*timeout*/) {
  std::lock_guard lock(mutex_);
  if (scheduled_restart_) {
    return Error::Conflict("Another restart is already scheduled");
  }
  shown["postmaster_start_time"] = status_.postmaster_start_time;
  scheduled_restart_ =
      ScheduledRestart{at, std::move(shown), std::move(conditions), status_.postmaster_start_time};
  status_.scheduled_restart = scheduled_restart_->shown;
  PGHA_LOG_INFO("restart scheduled at {}", FormatIsoTimestamp(at));
  Wake();
  return OkStatus();
}

bool Agent::CancelScheduledRestart() {
  std::lock_guard lock(mutex_);
  bool had = scheduled_restart_.has_value();
  scheduled_restart_.reset();
  status_.scheduled_restart = nullptr;
  return had;
}

// Patroni's evaluate_scheduled_restart: at the time, restart if the conditions hold; drop the
// schedule once acted on, when PostgreSQL restarted meanwhile, or when it went stale.
void Agent::EvaluateScheduledRestart(const ha::HaInput& in) {
  restart_recheck_in_.reset();
  std::optional<ScheduledRestart> scheduled;
  model::NodeStatus status;
  {
    std::lock_guard lock(mutex_);
    scheduled = scheduled_restart_;
    status = status_;
  }
  if (!scheduled || in.config.paused || !in.local.long_action.empty()) {
    return;
  }
  if (!status.postmaster_start_time.empty() &&
      status.postmaster_start_time != scheduled->postmaster_start_time) {
    PGHA_LOG_INFO("PostgreSQL restarted since the restart was scheduled; dropping the schedule");
    (void)CancelScheduledRestart();
    return;
  }
  double left = 0;
  switch (ha::ScheduledActionState(scheduled->at, in.wall_now, in.config.loop_wait, &left)) {
    case ha::ScheduleState::kWait:
      return;
    case ha::ScheduleState::kStale:
      PGHA_LOG_WARN("found a stale scheduled restart ({}); dropping it",
                    FormatIsoTimestamp(scheduled->at));
      (void)CancelScheduledRestart();
      return;
    case ha::ScheduleState::kDue:
      if (left > 0) {
        restart_recheck_in_ = left;
        return;
      }
      break;
  }
  (void)CancelScheduledRestart();
  if (!model::RestartConditionsMet(scheduled->conditions, status)) {
    PGHA_LOG_INFO("scheduled restart: the conditions do not hold any more; not restarting");
    return;
  }
  PGHA_LOG_INFO("manual scheduled restart at {}", FormatIsoTimestamp(scheduled->at));
  StartRestart(in, [](const Status&) {});
}

// A change of postgresql.parameters in the DCS reaches every node: postgresql.conf is rewritten
// and reloaded; what only a restart can apply then shows as pending_restart (from pg_settings).
void Agent::ApplyParameterChanges(const ha::HaInput& in) {
  const nlohmann::json& wanted = dynamic_.postgresql_parameters();
  if (wanted == applied_parameters_ || !last_obs_.running) {
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (!long_action_.empty()) {
      return;
    }
  }
  const model::Member* target = nullptr;
  if (last_obs_.in_recovery) {
    target = in.cluster.FindMember(Following());
    if (target == nullptr) {
      return;  // not following anybody known yet; the next follow writes the file anyway
    }
  }
  auto written = postgres_.WriteConfig(dynamic_, last_obs_.in_recovery, target);
  if (written.ok() && postgres_.Reload().ok()) {
    if (!applied_parameters_.is_null()) {
      PGHA_LOG_INFO("postgresql.parameters changed in the DCS; configuration reloaded");
      Callback("on_reload", last_obs_.in_recovery);
    }
    applied_parameters_ = wanted;
  }
}

void Agent::StartLongAction(const std::string& name, std::function<Status()> work) {
  std::lock_guard lock(mutex_);
  if (!long_action_.empty()) {
    return;
  }
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
  long_action_ = name;
  long_thread_ = std::thread([this, name, work = std::move(work)] {
    Status status = work();
    if (!status.ok()) {
      PGHA_LOG_ERROR("{} failed: {}", name, status.error().message());
    } else {
      PGHA_LOG_INFO("{} finished", name);
    }
    {
      std::lock_guard inner(mutex_);
      long_action_.clear();
    }
    // A success is acted on at once; a failure waits for the next cycle, or a node that cannot
    // create its replica would try again and again without pause.
    if (status.ok()) {
      Wake();
    }
  });
}

Status Agent::StartFollowing(const model::GlobalConfig& dynamic, const model::Member& leader) {
  PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, true, &leader));
  SetFollowing(leader.name);
  PGHA_RETURN_IF_ERROR(postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout)));
  AfterStart(true);
  return OkStatus();
}

Status Agent::Bootstrap() {
  PGHA_LOG_INFO("initializing a new cluster");
  // As Patroni: give the initialize key back, keep what was made for a look (moved aside), and
  // stop; initializing again and again would hide the reason under hundreds of attempts.
  auto fail = [this](const Error& error) -> Status {
    (void)dcs_.CancelInitialization();
    (void)postgres_.Stop("immediate", seconds(30));
    auto moved = postgres_.MoveDataDirectoryAside();
    std::string fatal = "failed to bootstrap the cluster: " + error.message();
    if (moved.ok() && !moved->empty()) {
      fatal += " (the data directory was moved to " + *moved + ")";
    }
    {
      std::lock_guard lock(mutex_);
      fatal_error_ = fatal;
    }
    stop_ = true;
    Wake();
    return error;
  };
  // bootstrap.method: initdb, or a method section with a command (a restore from a backup, a
  // clone of another cluster); a method without a command means initdb, as in Patroni.
  const std::string& method = config_.bootstrap.method;
  const nlohmann::json* custom = nullptr;
  if (method != "initdb") {
    auto it = config_.bootstrap.raw.find(method);
    if (it != config_.bootstrap.raw.end() && it->is_object() && it->contains("command")) {
      custom = &*it;
    }
  }
  model::GlobalConfig dynamic(config_.bootstrap.dcs);
  if (dynamic.is_standby_cluster()) {
    return BootstrapStandbyCluster(dynamic, fail);
  }
  if (auto s = custom ? postgres_.RunCustomBootstrap(method, *custom) : postgres_.Initdb();
      !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, false, nullptr, custom != nullptr); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteBootstrapHba(); !s.ok()) {
    return fail(s.error());
  }
  if (custom) {
    bool keep = custom->contains("keep_existing_recovery_conf") &&
                model::JsonAsBool(custom->at("keep_existing_recovery_conf")).value_or(false);
    if (custom->contains("recovery_conf")) {
      if (auto s = postgres_.WriteBootstrapRecovery(custom->at("recovery_conf")); !s.ok()) {
        return fail(s.error());
      }
    } else if (!keep) {
      postgres_.RemoveRecoverySignals();
    }
  }
  starting_ = true;
  auto started = postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout));
  starting_ = false;
  if (!started.ok()) {
    return fail(started.error());
  }
  if (custom) {
    // A restored cluster replays (from its archive, to its target) before it is a primary; the
    // initialize key stays ours meanwhile, however long that takes, as in Patroni.
    PGHA_LOG_INFO("waiting for the end of recovery after the custom bootstrap");
    while (true) {
      auto obs = postgres_.Observe();
      if (obs.running && !obs.in_recovery) {
        break;
      }
      if (!postgres_.PostmasterAlive()) {
        return fail(Error::Unavailable("PostgreSQL stopped while recovering the restored data"));
      }
      if (stop_) {
        return fail(Error::Unavailable("stopped while recovering the restored data"));
      }
      std::this_thread::sleep_for(milliseconds(500));
    }
  }
  if (auto s = postgres_.CreateRoles(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.RunPostBootstrap(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.CreateBootstrapUsers(); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, false, nullptr); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.Reload(); !s.ok()) {
    return fail(s.error());
  }
  std::string sysid = postgres_.SystemIdentifier();
  auto written = dcs_.Initialize(false, sysid);
  if (!written.ok()) {
    return fail(written.error());
  }
  auto config_set = dcs_.SetConfigValue(model::EncodeConfig(dynamic), std::nullopt);
  if (!config_set.ok()) {
    return fail(config_set.error());
  }
  auto won = dcs_.AttemptToAcquireLeader();
  if (!won.ok() || !*won) {
    return fail(won.ok() ? Error::Conflict("another node took the leader lock during bootstrap")
                         : won.error());
  }
  // last_lock_renewal_ belongs to the loop thread; its first renewal sets it.
  rewind_needed_ = false;
  // The leader key is there now: health checks must not answer "initializing" meanwhile.
  PublishPromoted(postgres_.Observe());
  PGHA_LOG_INFO("initialized a new cluster (system identifier {})", sysid);
  return OkStatus();
}

Status Agent::BootstrapStandbyCluster(const model::GlobalConfig& dynamic,
                                      const std::function<Status(const Error&)>& fail) {
  // A standby cluster starts as a copy of the remote primary, made with the methods its
  // standby_cluster section lists (basebackup from the remote by default), and its first node
  // is the standby leader.
  auto source = StandbyClusterSource(dynamic);
  if (!source) {
    return fail(Error::Invalid("bootstrap.dcs.standby_cluster: no host to replicate from"));
  }
  std::vector<std::string> methods;
  nlohmann::json listed =
      dynamic.standby_cluster().value("create_replica_methods", nlohmann::json());
  if (listed.is_array()) {
    for (const auto& m : listed) {
      if (m.is_string()) methods.push_back(m.get<std::string>());
    }
  }
  if (auto s = postgres_.CreateReplica(&*source, methods); !s.ok()) {
    return fail(s.error());
  }
  if (auto s = postgres_.WriteConfig(dynamic, true, &*source); !s.ok()) {
    return fail(s.error());
  }
  starting_ = true;
  auto started = postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout));
  starting_ = false;
  if (!started.ok()) {
    return fail(started.error());
  }
  std::string sysid = postgres_.SystemIdentifier();
  if (auto written = dcs_.Initialize(false, sysid); !written.ok()) {
    return fail(written.error());
  }
  if (auto set = dcs_.SetConfigValue(model::EncodeConfig(dynamic), std::nullopt); !set.ok()) {
    return fail(set.error());
  }
  auto won = dcs_.AttemptToAcquireLeader();
  if (!won.ok() || !*won) {
    return fail(won.ok() ? Error::Conflict("another node took the leader lock during bootstrap")
                         : won.error());
  }
  SetFollowing(model::kStandbyClusterSource);
  NoteRole("standby_leader", true);
  PGHA_LOG_INFO("initialized a standby cluster of {}:{} (system identifier {})", source->host(),
                source->port(), sysid);
  return OkStatus();
}

bool Agent::Execute(const ha::Action& action, const ha::HaInput& in) {
  using ha::ActionKind;
  const model::Member* target =
      action.target.empty() ? nullptr : in.cluster.FindMember(action.target);
  switch (action.kind) {
    case ActionKind::kInitializeRace: {
      if (watchdog_.required() && !watchdog_.Activate(WatchdogTtl(), ha_config_.loop_wait)) {
        PGHA_LOG_ERROR("not bootstrapping: the watchdog is required and could not be activated");
        return false;
      }
      auto won = dcs_.Initialize(true, "");
      if (!won.ok() || !*won) {
        return false;
      }
      StartLongAction("bootstrap", [this] { return Bootstrap(); });
      return true;
    }
    case ActionKind::kCreateReplica: {
      if (target == nullptr && !action.target.empty()) {
        return false;  // the member to copy from is gone
      }
      clone_from_leader_ = false;
      std::optional<model::Member> source;
      if (target != nullptr) {
        source = *target;
      }
      // The thread gets its own copy of the dynamic config: the loop replaces dynamic_.
      StartLongAction("basebackup", [this, source, dynamic = dynamic_]() -> Status {
        auto created = postgres_.CreateReplica(source ? &*source : nullptr);
        if (!created.ok()) {
          (void)postgres_.RemoveDataDirectory();
          return created.error();
        }
        rewind_needed_ = false;
        if (source) {
          return StartFollowing(dynamic, *source);
        }
        // Restored with no leader to follow: a replica of nobody, replaying the archive until a
        // leader appears (the race stays with the members that know the cluster's history).
        PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, true, nullptr));
        PGHA_RETURN_IF_ERROR(postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout)));
        AfterStart(true);
        return OkStatus();
      });
      return true;
    }
    case ActionKind::kStartPrimary: {
      auto written = postgres_.WriteConfig(dynamic_, false, nullptr);
      if (!written.ok()) {
        PGHA_LOG_ERROR("{}", written.error().message());
        return false;
      }
      // pg_ctl start returns once the server accepts connections: crash recovery, same timeline.
      auto started = postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout));
      if (!started.ok()) {
        PGHA_LOG_ERROR("{}", started.error().message());
        return false;
      }
      AfterStart(false);
      return true;
    }
    case ActionKind::kStartReplica: {
      auto written = postgres_.WriteConfig(dynamic_, true, target);
      if (!written.ok()) {
        PGHA_LOG_ERROR("{}", written.error().message());
        return false;
      }
      SetFollowing(target != nullptr ? target->name : "");
      auto started = postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout));
      if (!started.ok()) {
        PGHA_LOG_ERROR("{}", started.error().message());
        return false;
      }
      AfterStart(true);
      return true;
    }
    case ActionKind::kAcquireLock: {
      auto race_started = clock_.Now();  // the race refreshes the lease first
      auto won = dcs_.AttemptToAcquireLeader();
      if (!won.ok()) {
        PGHA_LOG_WARN("leader race failed: {}", won.error().message());
        return false;
      }
      if (*won) {
        last_lock_renewal_ = race_started;
        PGHA_LOG_INFO("acquired the leader lock");
        // A data directory brought to a cluster that has no initialize key yet (a new scope for
        // an existing node): the key records its system identifier, as Patroni writes it.
        if (!in.cluster.initialize && !in.local.sysid.empty()) {
          (void)dcs_.Initialize(true, in.local.sysid);
        }
      }
      return *won;
    }
    case ActionKind::kUpdateLock: {
      std::unique_lock guard(lock_mutex_);
      if (lock_released_) {
        return false;  // handed over: the key is not ours to renew
      }
      auto renew_started = clock_.Now();
      auto renewed = dcs_.UpdateLeader(in.cluster);
      guard.unlock();
      {
        std::lock_guard lock(mutex_);
        status_.metrics.dcs_renew.Observe(duration<double>(clock_.Now() - renew_started).count());
      }
      if (!renewed.ok()) {
        PGHA_LOG_WARN("failed to update the leader lock: {}", renewed.error().message());
        dcs_failed_ = true;
        // The renewal already spent retry_timeout trying: past that, the lock may expire
        // elsewhere before we could renew it, so stop taking writes now (Patroni does the same).
        bool overdue =
            !last_lock_renewal_ || duration<double>(clock_.Now() - *last_lock_renewal_).count() >=
                                       ha_config_.retry_timeout;
        if (overdue && in.local.postgres_running && !in.local.in_recovery &&
            ConfirmFailsafe(in.cluster)) {
          PGHA_LOG_INFO(
              "continue to run as a leader because failsafe mode is enabled and all members are "
              "accessible");
        } else if (overdue && in.local.postgres_running && !in.local.in_recovery) {
          PGHA_LOG_WARN("demoting self because the leader lock could not be renewed");
          (void)Execute(ha::Action{ActionKind::kDemote, "", true}, in);
        }
        return false;
      }
      dcs_failed_ = false;
      if (!*renewed) {
        PGHA_LOG_WARN("the leader lock is held by another node now");
        return false;
      }
      // The lease runs from when etcd took the keepalive, no earlier than this.
      last_lock_renewal_ = renew_started;
      return true;
    }
    case ActionKind::kReleaseLock: {
      (void)dcs_.DeleteLeader();
      return true;
    }
    case ActionKind::kPromote: {
      // watchdog.mode: required: no primary without a watchdog that would stop it in time.
      if (watchdog_.required() && !ha_config_.paused &&
          !watchdog_.Activate(WatchdogTtl(), ha_config_.loop_wait)) {
        PGHA_LOG_ERROR("not promoting self because the watchdog could not be activated");
        (void)dcs_.DeleteLeader();
        return false;
      }
      if (auto fenced = postgres_.RunPrePromote(); !fenced.ok()) {
        PGHA_LOG_ERROR("releasing the leader key voluntarily: {}", fenced.error().message());
        (void)dcs_.DeleteLeader();
        return false;
      }
      if (!PrepareSynchronousPromotion(in)) {
        return false;
      }
      auto promoted = postgres_.Promote(seconds(config_.postgresql.pg_ctl_timeout));
      if (!promoted.ok()) {
        PGHA_LOG_ERROR("{}", promoted.error().message());
        return false;
      }
      SetFollowing("");
      rewind_needed_ = false;
      {
        std::lock_guard lock(mutex_);
        callback_role_ = "master";
        auto& m = status_.metrics;
        ++(in.cluster.failover ? m.switchovers : m.failovers);
        m.last_promotion_seconds =
            duration<double>(clock_.Now() - promotion_wanted_since_.value_or(in.now)).count();
      }
      Callback("on_role_change", false);
      // Routers send writes to the leader once its member key says it runs as primary: say so
      // now, not after the checkpoint below and the next cycle.
      PublishPromoted(postgres_.Observe());
      TouchMember(in);
      // Old primaries rewind against our control file; it shows the new timeline only after a
      // checkpoint (the promotion's own checkpoint runs in the background).
      if (auto checkpoint = postgres_.Checkpoint(); !checkpoint.ok()) {
        PGHA_LOG_WARN("checkpoint after promote failed: {}", checkpoint.error().message());
      }
      auto obs = postgres_.Observe();
      PublishPromoted(obs);
      // Replicas reconnect within a second; their slots must exist by then, not a cycle later.
      (void)SyncSlots(in.cluster, true);
      RecordHistory(in.cluster, obs.timeline);
      (void)postgres_.WriteConfig(dynamic_, false, nullptr);
      return true;
    }
    case ActionKind::kDemote: {
      // Refuse writes at once: stop the primary. Whether it needs pg_rewind and whom it
      // follows is decided on the next cycle, when it is stopped.
      if (StopForDemotion(action.immediate).ok()) {
        PublishStopped();
        Callback("on_stop", false);
      }
      rewind_needed_ = true;
      if (action.target.empty()) {
        // No new leader known (DCS unreachable): come back read-only at once. Without a source
        // of WAL a crashed primary's recovery may not reach consistency for long, so the loop
        // does not wait for it to accept connections: it watches it settle.
        auto written = postgres_.WriteConfig(dynamic_, true, nullptr);
        if (written.ok() && postgres_.Launch().ok()) {
          AfterStart(true);
        }
      }
      return false;
    }
    case ActionKind::kFollowRemote: {
      auto source = StandbyClusterSource(dynamic_);
      if (!source) {
        PGHA_LOG_ERROR("standby_cluster names no host to replicate from");
        return false;
      }
      Status done = OkStatus();
      if (in.local.postgres_running && !in.local.in_recovery) {
        // A primary told it is now a standby cluster's leader: stop, start as a standby.
        done = postgres_.Stop("fast", seconds(config_.postgresql.pg_ctl_timeout));
        if (done.ok()) {
          PublishStopped();
        }
      }
      if (done.ok()) {
        done = postgres_.WriteConfig(dynamic_, true, &*source);
      }
      bool running = in.local.postgres_running && in.local.in_recovery;
      if (done.ok()) {
        done = running ? postgres_.Reload()
                       : postgres_.Start(seconds(config_.postgresql.pg_ctl_timeout));
      }
      if (!done.ok()) {
        PGHA_LOG_ERROR("cannot follow the standby cluster's remote primary: {}",
                       done.error().message());
        return false;
      }
      SetFollowing(model::kStandbyClusterSource);
      NoteRole("standby_leader", !running);
      return true;
    }
    case ActionKind::kFollow: {
      if (target == nullptr) {
        return false;
      }
      auto written = postgres_.WriteConfig(dynamic_, true, target);
      if (!written.ok()) {
        return false;
      }
      // PostgreSQL 13+ re-reads primary_conninfo on reload: no restart needed.
      auto reloaded = postgres_.Reload();
      if (reloaded.ok()) {
        SetFollowing(target->name);
      }
      return reloaded.ok();
    }
    case ActionKind::kRewind: {
      if (target == nullptr) {
        return false;
      }
      if (auto failed_at = rewind_failed_at_.load();
          failed_at != MonoTime::duration::zero() &&
          !RewindRetryDue(MonoTime(failed_at), rewind_failures_, clock_.Now(),
                          ha_config_.loop_wait)) {
        return false;
      }
      model::Member leader = *target;
      StartLongAction(
          "rewind",
          [this, leader, dynamic = dynamic_, loop_wait = ha_config_.loop_wait]() -> Status {
            auto rewound = postgres_.Rewind(leader);
            if (!rewound.ok()) {
              if (config_.postgresql.remove_data_directory_on_rewind_failure) {
                PGHA_LOG_WARN(
                    "pg_rewind failed; removing the data directory to re-clone "
                    "(remove_data_directory_on_rewind_failure)");
                (void)postgres_.RemoveDataDirectory();
                rewind_failed_at_ = clock_.Now().time_since_epoch();
                return rewound.error();
              }
              int failures = ++rewind_failures_;
              rewind_failed_at_ = clock_.Now().time_since_epoch();
              // One line per attempt, and attempts back off: the log says what to do once per wait.
              return Error(
                  rewound.error().code(),
                  fmt::format("{} (failure {} in a row; next attempt in {:.0f} s; "
                              "`pghactl reinit {} {}` re-clones this member from the leader)",
                              rewound.error().message(), failures,
                              RewindRetryDelay(failures, loop_wait), config_.scope, config_.name));
            }
            rewind_needed_ = false;
            rewind_failures_ = 0;
            rewind_failed_at_ = MonoTime::duration::zero();
            return StartFollowing(dynamic, leader);
          });
      return true;
    }
    case ActionKind::kLeaderUpkeep: {
      if (!in.cluster.config) {
        // A cluster with no config key (a data directory brought to a new scope): the leader
        // writes what it runs with, so every member runs the same (Patroni does too).
        (void)dcs_.SetConfigValue(model::EncodeConfig(dynamic_), std::nullopt);
      }
      WriteStatusAndSlots(in);
      WriteFailsafeMembers(in);
      if (!ha_config_.standby_cluster) {  // a standby leader acknowledges no commits
        ProcessSyncReplication(in);
      }
      return true;
    }
    case ActionKind::kClearFailover: {
      // Patroni empties the key ("{}") rather than deleting it; readers treat both alike.
      if (in.cluster.failover) {
        auto emptied = dcs_.SetFailoverValue("{}", in.cluster.failover->mod_revision);
        if (!emptied.ok()) {
          PGHA_LOG_WARN("failed to clear the failover key: {}", emptied.error().message());
        }
      }
      return true;
    }
    case ActionKind::kSwitchover: {
      StartLongAction(
          "demote",
          // The loop rewrites ha_config_ every cycle: the handover works on a copy taken now.
          [this, candidate = action.target, cluster = in.cluster, dynamic = dynamic_,
           ha = ha_config_]() -> Status { return HandOver(candidate, cluster, dynamic, ha); });
      return true;
    }
  }
  return true;
}

Status Agent::HandOver(const std::string& candidate, const model::ClusterSnapshot& cluster,
                       const model::GlobalConfig& dynamic, const ha::HaConfig& ha) {
  auto timeout = seconds(config_.postgresql.pg_ctl_timeout);
  auto handover_started = clock_.Now();
  PGHA_LOG_INFO("manual failover: handing over to {}",
                candidate.empty() ? std::string("the healthiest replica") : candidate);
  // Most dirty buffers are written now, while clients still run, so the shutdown checkpoint
  // (during which nobody can write) is short.
  if (auto checkpoint = postgres_.Checkpoint(); !checkpoint.ok()) {
    PGHA_LOG_WARN("checkpoint before switchover failed: {}", checkpoint.error().message());
  }
  // A fast stop disconnects clients and refuses new ones; walsenders send everything up to the
  // shutdown checkpoint to connected replicas before the postmaster exits.
  PGHA_RETURN_IF_ERROR(postgres_.Stop("fast", timeout));
  PublishStopped();
  Callback("on_stop", false);
  uint64_t shutdown_checkpoint = postgres_.LatestCheckpointLocation();

  std::vector<model::Member> members;
  for (const auto& m : cluster.members) {
    if (m.name != config_.name) {
      members.push_back(m);
    }
  }
  ha::HaInput probe;
  probe.cluster = cluster;
  probe.local.name = config_.name;
  probe.config = ha;
  bool received = false;
  auto deadline = clock_.Now() + seconds(std::max<int64_t>(5, static_cast<int64_t>(ha.ttl)));
  while (!received && clock_.Now() < deadline) {
    probe.peers = peers_.FetchAll(members);
    received =
        shutdown_checkpoint != 0 && ha::IsFailoverPossible(probe, {candidate}, shutdown_checkpoint);
    if (!received) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  if (!received) {
    // Handing over now would lose what the candidate lacks: stay the primary.
    PGHA_LOG_ERROR(
        "switchover aborted: no candidate received the shutdown checkpoint at {}; starting "
        "again as primary",
        Lsn(shutdown_checkpoint).ToString());
    if (cluster.failover) {
      (void)dcs_.SetFailoverValue("{}", cluster.failover->mod_revision);
    }
    PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, false, nullptr));
    PGHA_RETURN_IF_ERROR(postgres_.Start(timeout));
    AfterStart(false);
    return Error::Unavailable("no candidate received the shutdown checkpoint");
  }
  {
    std::lock_guard guard(lock_mutex_);
    lock_released_ = true;
    model::ClusterStatus status;
    status.optime = shutdown_checkpoint;
    (void)dcs_.WriteStatus(model::EncodeStatus(status));
    auto deleted = dcs_.DeleteLeader();
    PGHA_LOG_INFO("leader key {} at {}",
                  deleted.ok() && *deleted ? "released" : "could not be released",
                  Lsn(shutdown_checkpoint).ToString());
  }
  // Every replica has our last WAL or catches up on it: we rejoin without pg_rewind.
  rewind_needed_ = false;
  auto record_handover = [this, started = handover_started] {
    std::lock_guard lock(mutex_);
    ++status_.metrics.handovers;
    status_.metrics.last_handover_seconds = duration<double>(clock_.Now() - started).count();
  };
  auto wait_for_leader = clock_.Now() + seconds(static_cast<int64_t>(ha.ttl));
  while (clock_.Now() < wait_for_leader) {
    auto now = dcs_.LoadCluster();
    if (now.ok() && now->leader && now->leader->name != config_.name) {
      if (const auto* leader = now->LeaderMember()) {
        PGHA_LOG_INFO("following the new leader {}", leader->name);
        auto started = StartFollowing(dynamic, *leader);
        record_handover();
        return started;
      }
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  PGHA_LOG_WARN("no new leader yet; starting read-only until one appears");
  PGHA_RETURN_IF_ERROR(postgres_.WriteConfig(dynamic, true, nullptr));
  SetFollowing("");
  PGHA_RETURN_IF_ERROR(postgres_.Start(timeout));
  AfterStart(true);
  record_handover();
  return OkStatus();
}

bool Agent::PrepareSynchronousPromotion(const ha::HaInput& in) {
  sync_tracking_ = {};
  if (!ha_config_.sync.enabled) {
    postgres_.SetSynchronousStandbyNames(std::nullopt);
    return true;
  }
  // Patroni's order: claim the sync key for ourselves with nobody named (so no one else may
  // take over on an old claim), and make commits wait for a standby (strict) before the first
  // write can happen; the next cycles pick the standbys.
  model::SyncState claim;
  claim.leader = config_.name;
  std::optional<int64_t> revision;
  if (in.cluster.sync) {
    revision = in.cluster.sync->mod_revision;
  }
  auto written = dcs_.SetSyncStateValue(model::EncodeSync(claim, ha_config_.sync.quorum), revision);
  if (!written.ok() || !*written) {
    PGHA_LOG_WARN(
        "Postponing promotion because synchronous replication state was updated by somebody "
        "else");
    return false;
  }
  std::vector<std::string> names;
  if (ha_config_.sync.strict) {
    names = {"*"};
  }
  postgres_.SetSynchronousStandbyNames(ha::FormatSynchronousStandbyNames(names));
  sync_tracking_.standby_names = names;
  sync_tracking_.numsync = static_cast<int64_t>(names.size());
  sync_tracking_.position_at_change = in.local.wal_position;
  if (postgres_.WriteConfig(dynamic_, true, nullptr).ok()) {
    (void)postgres_.Reload();
  }
  return true;
}

void Agent::ProcessSyncReplication(const ha::HaInput& in) {
  const auto& settings = ha_config_.sync;
  bool key_present = in.cluster.sync && in.cluster.sync->leader;
  if (!settings.enabled && !key_present && !sync_tracking_.standby_names) {
    return;  // never in synchronous mode here
  }
  if (!sync_tracking_.standby_names) {
    // Just started as leader: whatever PostgreSQL lists is rewritten below; members the key
    // names count as synchronous at once.
    sync_tracking_.standby_names = std::vector<std::string>{};
    sync_tracking_.numsync = 0;
    sync_tracking_.position_at_change = in.local.wal_position;
  }
  std::vector<ha::WalSender> senders;
  for (const auto& s : last_obs_.wal_senders) {
    senders.push_back({s.application_name, s.sync_state, s.position});
  }
  if (settings.enabled && settings.quorum) {
    ProcessQuorumReplication(in, senders);
    return;
  }
  auto state =
      ha::CurrentSyncState(in.cluster, senders, settings, in.local.wal_position, sync_tracking_);
  auto steps = ha::PlanSyncReplication(in.cluster, config_.name, settings, state,
                                       *sync_tracking_.standby_names);
  if (!steps.log.empty()) {
    PGHA_LOG_INFO("{}", steps.log);
  }
  std::optional<int64_t> revision;
  if (in.cluster.sync) {
    revision = in.cluster.sync->mod_revision;
  }
  auto write_key = [&](const std::vector<std::string>& names) {
    model::SyncState value;
    value.leader = config_.name;
    value.sync_standby = names;
    auto written = dcs_.SetSyncStateValue(model::EncodeSync(value, false), revision);
    if (!written.ok() || !*written) {
      PGHA_LOG_INFO("Synchronous replication key updated by someone else");
      return false;
    }
    return true;
  };
  if (steps.delete_key) {
    auto deleted = dcs_.DeleteSyncState(revision);
    if (deleted.ok() && *deleted) {
      PGHA_LOG_INFO("Disabled synchronous replication");
    }
  }
  if (steps.key_before && !write_key(*steps.key_before)) {
    return;
  }
  if (steps.standby_names) {
    const auto& names = *steps.standby_names;
    PGHA_LOG_INFO("Assigning synchronous standby status to {}",
                  names.empty() ? "nobody" : fmt::format("{}", fmt::join(names, ",")));
    if (settings.enabled) {
      postgres_.SetSynchronousStandbyNames(ha::FormatSynchronousStandbyNames(names));
    } else {
      postgres_.SetSynchronousStandbyNames(std::nullopt);
    }
    auto written = postgres_.WriteConfig(dynamic_, false, nullptr);
    if (!written.ok() || !postgres_.Reload().ok()) {
      PGHA_LOG_WARN("could not apply synchronous_standby_names");
      sync_tracking_.standby_names.reset();  // unknown now: rewrite next cycle
      return;
    }
    sync_tracking_.standby_names = names;
    sync_tracking_.numsync = static_cast<int64_t>(names.size());
    sync_tracking_.position_at_change = in.local.wal_position;
    std::set<std::string> still;
    for (const auto& name : sync_tracking_.ready) {
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        still.insert(name);
      }
    }
    sync_tracking_.ready = std::move(still);
  }
  if (steps.key_after && !steps.key_before && write_key(*steps.key_after)) {
    PGHA_LOG_INFO("Synchronous standby status assigned to {}",
                  fmt::format("{}", fmt::join(*steps.key_after, ",")));
  }
}

void Agent::ProcessQuorumReplication(const ha::HaInput& in,
                                     const std::vector<ha::WalSender>& senders) {
  ha::SettlePositionAtChange(sync_tracking_, in.now, in.local.wal_position);
  ha::QuorumNames running = ha::RunningQuorumNames(sync_tracking_);
  auto state = ha::CurrentQuorumState(in.cluster, config_.name, senders, ha_config_.sync,
                                      in.local.wal_position, sync_tracking_);
  auto steps = ha::PlanQuorumReplication(in.cluster, config_.name, ha_config_.sync, state, running);
  if (!steps.log.empty()) {
    PGHA_LOG_INFO("{}", steps.log);
  }
  std::optional<int64_t> revision;
  if (in.cluster.sync) {
    revision = in.cluster.sync->mod_revision;
  }
  auto write_key = [&](const ha::QuorumKey& key) {
    model::SyncState value;
    value.leader = config_.name;
    value.sync_standby.assign(key.voters.begin(), key.voters.end());
    value.quorum = key.quorum;
    auto written = dcs_.SetSyncStateValue(model::EncodeSync(value, true), revision);
    if (!written.ok() || !*written) {
      PGHA_LOG_INFO("Synchronous replication key updated by someone else");
      return false;
    }
    PGHA_LOG_INFO("Setting leader to {}, quorum to {} of {} ({})", config_.name, key.quorum,
                  key.voters.size(), fmt::join(key.voters, ", "));
    return true;
  };
  if (steps.key_before && !write_key(*steps.key_before)) {
    return;
  }
  if (steps.standby_names) {
    const auto& wanted = *steps.standby_names;
    PGHA_LOG_INFO("Setting synchronous replication to {} of {} ({})", wanted.numsync,
                  wanted.names.size(), fmt::join(wanted.names, ", "));
    postgres_.SetSynchronousStandbyNames(ha::FormatQuorumStandbyNames(wanted));
    auto written = postgres_.WriteConfig(dynamic_, false, nullptr);
    if (!written.ok() || !postgres_.Reload().ok()) {
      PGHA_LOG_WARN("could not apply synchronous_standby_names");
      sync_tracking_.standby_names.reset();  // unknown now: rewrite next cycle
      return;
    }
    ha::NoteStandbyNamesChanged(sync_tracking_, wanted, in.now);
  }
  if (steps.key_after && !steps.key_before) {
    (void)write_key(*steps.key_after);
  }
}

void Agent::WriteFailsafeMembers(const ha::HaInput& in) {
  if (!ha_config_.failsafe_mode) {
    return;
  }
  nlohmann::json members = nlohmann::json::object();
  for (const auto& m : in.cluster.members) {
    if (!m.api_url().empty()) {
      members[m.name] = m.api_url();
    }
  }
  members[config_.name] = ApiUrl();
  std::string value = members.dump();
  if (value == last_failsafe_written_) {
    return;
  }
  if (auto written = dcs_.WriteFailsafe(value); written.ok()) {
    last_failsafe_written_ = value;
  } else {
    PGHA_LOG_WARN("failed to write the failsafe key: {}", written.error().message());
  }
}

std::string Agent::SlotsWanted(const model::ClusterSnapshot& cluster, bool leader) const {
  std::string key;
  for (const auto& [name, slot] :
       ha::DesiredSlots(cluster, config_.name, leader, config_.tags.nofailover)) {
    key += name + ":" + slot.type + ":" + slot.database + ":" + slot.plugin + ";";
  }
  if (cluster.config) {
    key += cluster.config->data.raw().value("ignore_slots", nlohmann::json()).dump();
    key += cluster.config->data.is_paused() ? "paused" : "";
  }
  if (!leader) {  // a replica follows the leader's logical slot positions
    for (const auto& [name, position] : cluster.status.slots) {
      key += name + "@" + std::to_string(position) + ";";
    }
  }
  return key;
}

Result<std::vector<model::ReplicationSlot>> Agent::SyncSlots(const model::ClusterSnapshot& cluster,
                                                             bool leader) {
  auto existing = postgres_.ListSlots();
  if (!existing.ok()) {
    return existing.error();
  }
  nlohmann::json ignore = nlohmann::json::array();
  bool paused = false;
  if (cluster.config) {
    ignore = cluster.config->data.raw().value("ignore_slots", nlohmann::json::array());
    paused = cluster.config->data.is_paused();
  }
  auto desired = ha::DesiredSlots(cluster, config_.name, leader, config_.tags.nofailover);
  auto plan = ha::PlanSlots(desired, *existing, ignore, paused, leader);
  if (!plan.drop.empty() || !plan.create.empty()) {
    PGHA_RETURN_IF_ERROR(postgres_.ChangeSlots(plan.drop, plan.create));
  }
  if (!leader) {
    SyncLogicalSlotsFromLeader(cluster, desired, *existing);
  }
  return existing;
}

void Agent::SyncLogicalSlotsFromLeader(const model::ClusterSnapshot& cluster,
                                       const std::map<std::string, model::ReplicationSlot>& desired,
                                       const std::vector<model::ReplicationSlot>& existing) {
  auto sync = ha::PlanLogicalSlotSync(desired, existing, cluster.status.slots);
  for (const auto& [name, position] : sync.advance) {
    if (auto advanced = postgres_.AdvanceLogicalSlot(desired.at(name), position); !advanced.ok()) {
      PGHA_LOG_WARN("cannot advance logical slot '{}': {}", name, advanced.error().message());
    }
  }
  const auto* leader = cluster.LeaderMember();
  if (sync.copy.empty() || leader == nullptr || leader->name == config_.name) {
    return;
  }
  // The copy needs PostgreSQL stopped for a moment (Patroni does the same): a long action.
  model::Member source = *leader;
  std::vector<std::string> names = sync.copy;
  StartLongAction("copy logical slots", [this, source, names]() -> Status {
    auto states = postgres_.ReadLeaderSlotStates(source, names);
    if (!states.ok()) {
      return states.error();
    }
    if (states->empty()) {
      return OkStatus();
    }
    auto timeout = seconds(config_.postgresql.pg_ctl_timeout);
    PGHA_RETURN_IF_ERROR(postgres_.Stop("fast", timeout));
    PublishStopped();
    Status installed = postgres_.InstallSlotStates(*states);
    PGHA_RETURN_IF_ERROR(postgres_.Start(timeout));
    return installed;
  });
}

std::map<std::string, uint64_t> Agent::LogicalSlotPositions(
    const model::ClusterSnapshot& cluster, const std::vector<model::ReplicationSlot>& slots) const {
  // What replicas advance their copies to: the leader's permanent logical slots' positions.
  auto desired = ha::DesiredSlots(cluster, config_.name, true, config_.tags.nofailover);
  std::map<std::string, uint64_t> positions;
  for (const auto& slot : slots) {
    auto wanted = desired.find(slot.name);
    if (wanted != desired.end() && wanted->second.type == "logical" && slot.confirmed_flush) {
      positions[slot.name] = *slot.confirmed_flush;
    }
  }
  return positions;
}

void Agent::WriteStatusAndSlots(const ha::HaInput& in) {
  auto slots = SyncSlots(in.cluster, true);
  model::ClusterStatus status;
  status.optime = in.local.wal_position;
  if (slots.ok()) {
    status.slots = LogicalSlotPositions(in.cluster, *slots);
  }
  std::string value = model::EncodeStatus(status);
  if (value != last_status_written_) {
    auto written = dcs_.WriteStatus(value);
    if (!written.ok()) {
      PGHA_LOG_WARN("failed to write the status key: {}", written.error().message());
      dcs_failed_ = true;
      return;
    }
    last_status_written_ = value;
  }
  if (in.local.timeline > 1 && last_history_timeline_ != in.local.timeline) {
    RecordHistory(in.cluster, in.local.timeline);
  }
}

void Agent::RecordHistory(const model::ClusterSnapshot& cluster, int64_t timeline) {
  if (timeline <= 1) {
    return;
  }
  auto entries = postgres_.TimelineHistory(timeline);
  if (entries.empty()) {
    return;
  }
  // Keep what the DCS already says about older switches (timestamps, leaders); add ours.
  for (auto& entry : entries) {
    for (const auto& known : cluster.history) {
      if (known.timeline == entry.timeline) {
        entry.timestamp = known.timestamp;
        entry.new_leader = known.new_leader;
      }
    }
  }
  if (!entries.back().timestamp) {
    entries.back().timestamp = FormatIsoTimestamp(clock_.WallNow());
    entries.back().new_leader = config_.name;
  }
  if (dcs_.SetHistoryValue(model::EncodeHistory(entries)).ok()) {
    last_history_timeline_ = timeline;
  }
}

std::string Agent::ConnUrl() const {
  return "postgres://" + config_.postgresql.connect_address + "/" + config_.postgresql.database;
}

std::string Agent::ApiUrl() const {
  return (config_.restapi.certfile.empty() ? "http://" : "https://") +
         config_.restapi.connect_address + "/patroni";
}

bool Agent::ConfirmFailsafe(const model::ClusterSnapshot& last) {
  if (!ha_config_.failsafe_mode || !last.failsafe || !last.failsafe->count(config_.name)) {
    return false;
  }
  auto asked = clock_.Now();
  std::vector<std::string> urls;
  for (const auto& [name, url] : *last.failsafe) {
    if (name != config_.name) {
      urls.push_back(url);
    }
  }
  nlohmann::json body = {{"name", config_.name}, {"conn_url", ConnUrl()}, {"api_url", ApiUrl()}};
  // The positions of the permanent logical slots, so replicas keep their copies in step while
  // the DCS (which carries them in the status key) is away.
  if (auto slots = postgres_.ListSlots(); slots.ok()) {
    if (auto positions = LogicalSlotPositions(last, *slots); !positions.empty()) {
      body["slots"] = positions;
    }
  }
  bool all = true;
  auto answers = peers_.PostFailsafe(urls, body.dump());
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) {
      PGHA_LOG_WARN("failsafe: {} did not accept us as the leader", urls[i]);
      all = false;
    }
  }
  if (all) {
    // Every member took us for the leader for ttl from now: none of them will race before.
    failsafe_confirmed_at_ = asked;
    std::lock_guard lock(mutex_);
    status_.failsafe_active = true;
  }
  return all;
}

void Agent::AcceptFailsafeLeader(const std::string& name, const std::string& conn_url,
                                 const std::string& api_url,
                                 const std::map<std::string, uint64_t>& slots) {
  std::lock_guard lock(mutex_);
  failsafe_leader_ = FailsafeLeader{name, conn_url, api_url, clock_.Now(), slots};
  status_.failsafe_active = true;
}

void Agent::AdvanceSlotsFromFailsafeLeader() {
  std::map<std::string, uint64_t> positions;
  {
    std::lock_guard lock(mutex_);
    if (!failsafe_leader_ ||
        clock_.Now() - failsafe_leader_->at > duration<double>(ha_config_.ttl)) {
      return;
    }
    positions = failsafe_leader_->slots;
  }
  auto cluster = CurrentCluster();
  auto existing =
      positions.empty() || !cluster
          ? Result<std::vector<model::ReplicationSlot>>(std::vector<model::ReplicationSlot>{})
          : postgres_.ListSlots();
  if (!cluster || !existing.ok()) {
    return;
  }
  auto desired = ha::DesiredSlots(*cluster, config_.name, false, config_.tags.nofailover);
  for (const auto& [name, position] :
       ha::PlanLogicalSlotSync(desired, *existing, positions).advance) {
    if (auto advanced = postgres_.AdvanceLogicalSlot(desired.at(name), position); !advanced.ok()) {
      PGHA_LOG_WARN("cannot advance logical slot '{}': {}", name, advanced.error().message());
    }
  }
}

void Agent::TouchMember(const ha::HaInput& in) {
  model::NodeStatus status = CurrentStatus();
  model::MemberData data;
  data.conn_url = ConnUrl();
  data.api_url = ApiUrl();
  data.state = status.state;
  data.role = status.role;
  data.version = kAdvertisedPatroniVersion;
  data.tags = config_.tags.raw;
  if (status.postgres_running) {
    if (status.in_recovery) {
      data.xlog_location =
          std::max(status.received_location.value_or(0), status.replayed_location.value_or(0));
      data.replication_state = status.replication_state;
    } else {
      data.xlog_location = status.wal_position;
    }
    data.timeline = status.timeline;
  }
  data.pause = in.config.paused;
  data.scheduled_restart = status.scheduled_restart;
  if (!status.pending_restart_reason.empty()) {
    data.pending_restart = true;
    data.pending_restart_reason = status.pending_restart_reason;
  }
  auto touched = dcs_.TouchMember(model::EncodeMember(data));
  if (!touched.ok()) {
    PGHA_LOG_WARN("failed to update the member key: {}", touched.error().message());
    dcs_failed_ = true;
  }
}

void Agent::Shutdown() {
  PGHA_LOG_INFO("shutting down");
  // Long actions are not interruptible; wait for them rather than leave half a data dir.
  // Only this (the loop) thread starts or joins them.
  if (long_thread_.joinable()) {
    long_thread_.join();
  }
  auto cluster = dcs_.LoadCluster();
  bool paused =
      cluster.ok() && cluster->config ? cluster->config->data.is_paused() : dynamic_.is_paused();
  if (paused) {
    // Patroni's rule: in maintenance mode the operator owns PostgreSQL; stopping the agent
    // (to upgrade it, say) leaves the server and the leader key as they are.
    PGHA_LOG_INFO("leader key is not deleted and PostgreSQL is not stopped: the cluster is paused");
    return;
  }
  bool leader = cluster.ok() && cluster->leader && cluster->leader->name == config_.name;
  auto stopped = postgres_.Stop("fast", seconds(config_.postgresql.pg_ctl_timeout));
  if (!stopped.ok()) {
    PGHA_LOG_ERROR("{}", stopped.error().message());
  } else if (last_obs_.running) {
    Callback("on_stop", last_obs_.in_recovery);
  }
  if (leader && stopped.ok()) {
    // PostgreSQL is down: nothing can be written here any more, so the lock can go at once.
    auto deleted = dcs_.DeleteLeader();
    PGHA_LOG_INFO("leader key {}", deleted.ok() && *deleted ? "deleted" : "could not be deleted");
  }
}

}  // namespace pgha::agent
