// Dcs: the distributed configuration store as the HA loop sees it (Patroni's AbstractDCS),
// with Patroni's key layout under /<namespace>/<scope>/.
//
// Writes have three outcomes: the Result holds true when done, false when another node won (a
// compare failed), and an error when the DCS could not be reached. The HA loop handles
// "unreachable" in one place.
//
// Thread-safety: implementations are safe to call from several threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "model/cluster.h"

namespace pgha::dcs {

class Dcs {
 public:
  virtual ~Dcs() = default;

  // The whole cluster. May be served from a watch-fed cache.
  virtual Result<model::ClusterSnapshot> LoadCluster() = 0;

  // The leader race: creates `leader` = this member's name, attached to this process's lease,
  // only if no leader key exists. true: this node is now leader; false: another holds the lock.
  virtual Result<bool> AttemptToAcquireLeader() = 0;
  // Renews the lock. true: still leader; false: the lock is someone else's now.
  virtual Result<bool> UpdateLeader(const model::ClusterSnapshot& cluster) = 0;
  // Voluntary release: deletes the leader key only if it still names this member.
  virtual Result<bool> DeleteLeader() = 0;

  // Writes members/<name> under this process's lease.
  virtual Status TouchMember(const std::string& value) = 0;

  // The initialize race (create_new) or the later write of the system identifier.
  virtual Result<bool> Initialize(bool create_new, const std::string& sysid) = 0;
  virtual Status CancelInitialization() = 0;

  // CAS writes: `mod_revision` nullopt means unconditional; a value means "only if unchanged".
  virtual Result<bool> SetConfigValue(const std::string& value,
                                      std::optional<int64_t> mod_revision) = 0;
  virtual Result<bool> SetFailoverValue(const std::string& value,
                                        std::optional<int64_t> mod_revision) = 0;
  virtual Result<bool> DeleteFailover(std::optional<int64_t> mod_revision) = 0;
  virtual Result<bool> SetSyncStateValue(const std::string& value,
                                         std::optional<int64_t> mod_revision) = 0;
  virtual Result<bool> DeleteSyncState(std::optional<int64_t> mod_revision) = 0;

  virtual Status SetHistoryValue(const std::string& value) = 0;
  // Writes pgha/members/<name>, with no lease: the record that this member belongs to the
  // cluster, kept while it is down, so that a cold start knows whom to wait for.
  virtual Status RegisterMember(const std::string& value) = 0;
  virtual Status WriteStatus(const std::string& value) = 0;
  virtual Status WriteFailsafe(const std::string& value) = 0;
  // The leader's notice of a planned handover, pgha/handover, on this process's lease so that it
  // goes with the agent (model/handover_notice.h). Returns the notice's revision, its identity.
  virtual Result<int64_t> AnnounceHandover(const std::string& value) = 0;
  virtual Status WithdrawHandover() = 0;
  // Removes every key of the cluster (patronictl remove).
  virtual Status DeleteCluster() = 0;

  // A linearizable read: fails when the DCS cannot serve consistent data (no quorum), even when
  // cached reads still work.
  virtual Status Ping() = 0;

  // `on_change` is called (from the DCS's own thread; it must not block) whenever the leader,
  // config, failover or sync key changes, so the HA loop decides at once instead of at the next
  // loop_wait. Set once, before the loop starts.
  virtual void SetChangeListener(std::function<void()> on_change) = 0;

  // Timing from the dynamic configuration: the lease TTL and the per-call deadline.
  virtual void SetTimings(double ttl_seconds, double loop_wait_seconds,
                          double retry_timeout_seconds) = 0;
};

}  // namespace pgha::dcs
