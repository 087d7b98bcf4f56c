// Leader upkeep: the fence and the watchdog, synchronous and quorum replication, the status key and
// the history.

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>

#include "agent/agent.h"
#include "common/log.h"
#include "common/time_format.h"
#include "ha/quorum.h"
#include "model/codec.h"

namespace pgha::agent {

void Agent::StartFence() {
  const auto& watchdog = config_->watchdog;
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
  auto fence = Fence::Start(program, config_->postgresql.data_dir);
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
    MutexLock lock(mutex_);
    primary = status_.has_lock && status_.postgres_running && !status_.in_recovery;
  }
  auto pid = primary ? postgres_.PostmasterPid() : std::nullopt;
  FencePlan plan = PlanFence({.primary_running = pid.has_value(),
                              .paused = ha_config_.paused,
                              .last_renewal = last_lock_renewal_,
                              .failsafe_confirmed_at = failsafe_confirmed_at_,
                              .ttl = ha_config_.ttl,
                              .safety_margin = config_->watchdog.safety_margin,
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
    MutexLock lock(mutex_);
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
  auto steps = ha::PlanSyncReplication(in.cluster, config_->name, settings, state,
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
    value.leader = config_->name;
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
  auto state = ha::CurrentQuorumState(in.cluster, config_->name, senders, ha_config_.sync,
                                      in.local.wal_position, sync_tracking_);
  auto steps =
      ha::PlanQuorumReplication(in.cluster, config_->name, ha_config_.sync, state, running);
  if (!steps.log.empty()) {
    PGHA_LOG_INFO("{}", steps.log);
  }
  std::optional<int64_t> revision;
  if (in.cluster.sync) {
    revision = in.cluster.sync->mod_revision;
  }
  auto write_key = [&](const ha::QuorumKey& key) {
    model::SyncState value;
    value.leader = config_->name;
    value.sync_standby.assign(key.voters.begin(), key.voters.end());
    value.quorum = key.quorum;
    auto written = dcs_.SetSyncStateValue(model::EncodeSync(value, true), revision);
    if (!written.ok() || !*written) {
      PGHA_LOG_INFO("Synchronous replication key updated by someone else");
      return false;
    }
    PGHA_LOG_INFO("Setting leader to {}, quorum to {} of {} ({})", config_->name, key.quorum,
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
    entries.back().new_leader = config_->name;
  }
  if (dcs_.SetHistoryValue(model::EncodeHistory(entries)).ok()) {
    last_history_timeline_ = timeline;
  }
}

}  // namespace pgha::agent
