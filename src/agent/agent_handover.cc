// Planned handovers: the leader's side of a switchover or graceful stop, and the checks before a
// synchronous standby promotes.

#include <algorithm>
#include <functional>

#include "agent/agent.h"
#include "common/log.h"
#include "common/lsn.h"
#include "model/codec.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::milliseconds;
using std::chrono::seconds;

Status Agent::HandOver(const std::string& candidate, const model::ClusterSnapshot& cluster,
                       const model::GlobalConfig& dynamic, const ha::HaConfig& ha) {
  auto timeout = seconds(config_->postgresql.pg_ctl_timeout);
  auto handover_started = clock_.Now();
  PGHA_LOG_INFO("manual failover: handing over to {}",
                candidate.empty() ? std::string("the healthiest replica") : candidate);
  // The routers hold new write connections from now on and acknowledge; the checkpoint runs
  // meanwhile. However the handover ends, the notice is withdrawn.
  int64_t notice =
      AnnounceHandover(model::HandoverReason::kSwitchover, candidate, kRouterAcknowledgeWait);
  struct Withdrawal {
    std::function<void()> run;
    ~Withdrawal() { run(); }
  } withdrawal{[this, notice] { WithdrawHandover(notice); }};
  // Most dirty buffers are written now, while clients still run, so the shutdown checkpoint
  // (during which nobody can write) is short.
  if (auto checkpoint = postgres_.Checkpoint(); !checkpoint.ok()) {
    PGHA_LOG_WARN("checkpoint before switchover failed: {}", checkpoint.error().message());
  }
  AwaitRouters(notice, handover_started, handover_started + kRouterAcknowledgeWait);
  // A fast stop disconnects clients and refuses new ones; walsenders send everything up to the
  // shutdown checkpoint to connected replicas before the postmaster exits.
  PGHA_RETURN_IF_ERROR(postgres_.Stop("fast", timeout));
  PublishStopped();
  Callback("on_stop", false);
  uint64_t shutdown_checkpoint = postgres_.LatestCheckpointLocation();

  std::vector<model::Member> members;
  for (const auto& m : cluster.members) {
    if (m.name != config_->name) {
      members.push_back(m);
    }
  }
  ha::HaInput probe;
  probe.cluster = cluster;
  probe.local.name = config_->name;
  probe.config = ha;
  bool received = false;
  auto deadline = clock_.Now() + seconds(std::max<int64_t>(5, static_cast<int64_t>(ha.ttl)));
  while (!received && clock_.Now() < deadline) {
    probe.peers = peers_.FetchAll(members);
    received =
        shutdown_checkpoint != 0 && ha::IsFailoverPossible(probe, {candidate}, shutdown_checkpoint);
    if (!received) {
      clock_.SleepFor(milliseconds(100));
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
    MutexLock guard(lock_mutex_);
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
    MutexLock lock(mutex_);
    ++status_.metrics.handovers;
    status_.metrics.last_handover_seconds = duration<double>(clock_.Now() - started).count();
  };
  auto wait_for_leader = clock_.Now() + seconds(static_cast<int64_t>(ha.ttl));
  while (clock_.Now() < wait_for_leader) {
    auto now = dcs_.LoadCluster();
    if (now.ok() && now->leader && now->leader->name != config_->name) {
      if (const auto* leader = now->LeaderMember()) {
        PGHA_LOG_INFO("following the new leader {}", leader->name);
        auto started = StartFollowing(dynamic, *leader);
        record_handover();
        return started;
      }
    }
    clock_.SleepFor(milliseconds(100));
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
  claim.leader = config_->name;
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

}  // namespace pgha::agent
