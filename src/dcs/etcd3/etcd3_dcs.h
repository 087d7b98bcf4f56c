// Etcd3Dcs: the Dcs interface over etcd v3, writing exactly what Patroni's etcd3 module writes
// (docs/architecture.md): one lease per process shared by the member key and the leader key, the
// leader race and renewal as Patroni's transactions, CAS on mod_revision for config/failover/sync.
//
// A background thread keeps a cache of the cluster prefix (range, then watch from the next
// revision), so LoadCluster does not hit etcd in steady state, and tells its change listener when
// the leader, config, failover or sync key changes.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/mutex.h"
#include "dcs/dcs.h"
#include "dcs/etcd3/client.h"

namespace pgha::dcs::etcd3 {

struct Etcd3DcsOptions {
  std::string prefix;       // "/service/pg-ha/"
  std::string member_name;  // this node; empty for pghactl
  bool use_cache = true;    // pghactl reads directly (linearizable), as patronictl does
  // The router follows member keys too (a replica stopping, its lag), not only the keys the HA
  // loop decides on.
  bool wake_on_every_key = false;
};

class Etcd3Dcs final : public Dcs {
 public:
  Etcd3Dcs(Etcd3DcsOptions options, std::shared_ptr<Etcd3Client> client);
  ~Etcd3Dcs() override;

  Result<model::ClusterSnapshot> LoadCluster() override;
  Result<bool> AttemptToAcquireLeader() override;
  Result<bool> UpdateLeader(const model::ClusterSnapshot& cluster) override;
  Result<bool> DeleteLeader() override;
  Status TouchMember(const std::string& value) override;
  Result<bool> Initialize(bool create_new, const std::string& sysid) override;
  Status CancelInitialization() override;
  Result<bool> SetConfigValue(const std::string& value,
                              std::optional<int64_t> mod_revision) override;
  Result<bool> SetFailoverValue(const std::string& value,
                                std::optional<int64_t> mod_revision) override;
  Result<bool> DeleteFailover(std::optional<int64_t> mod_revision) override;
  Result<bool> SetSyncStateValue(const std::string& value,
                                 std::optional<int64_t> mod_revision) override;
  Result<bool> DeleteSyncState(std::optional<int64_t> mod_revision) override;
  Status SetHistoryValue(const std::string& value) override;
  Status RegisterMember(const std::string& value) override;
  Status WriteStatus(const std::string& value) override;
  Status WriteFailsafe(const std::string& value) override;
  Result<int64_t> AnnounceHandover(const std::string& value) override;
  Status WithdrawHandover() override;
  Status DeleteCluster() override;
  void SetChangeListener(std::function<void()> on_change) override;
  // Blocks until a change the listener would hear of, or `timeout`; true when woken by one.
  bool WaitForChange(std::chrono::milliseconds timeout);
  // The watch-fed cache only, never a call to etcd: Unavailable until the cache is built, and
  // while it is rebuilt after the watch broke. A frozen etcd leaves the last cache in place.
  Result<model::ClusterSnapshot> CachedCluster();
  // When the watch last delivered a change the listener heard of (steady clock).
  std::chrono::steady_clock::time_point last_change_at() const;
  Status Ping() override;
  void SetTimings(double ttl_seconds, double loop_wait_seconds,
                  double retry_timeout_seconds) override;

  // A router's pgha/routers/<name> on this process's lease (model/handover_notice.h); a put
  // only when the value changed or the key is gone from the lease.
  Status KeepRouterKey(const std::string& name, const std::string& value);

  // Revokes this process's lease, so its member key (and leader key, if held) vanish at once.
  Status ReleaseLease();
  int64_t lease_id() const;

 private:
  Status RefreshLease(bool force);
  Result<int64_t> GrantLease();
  // Puts `key` on this process's lease (granting a new one when etcd forgot it); returns the
  // put's revision and the lease used.
  Result<std::pair<int64_t, int64_t>> PutOnLease(const std::string& key, const std::string& value);
  Result<bool> CasPut(const std::string& key, const std::string& value,
                      std::optional<int64_t> mod_revision);
  Result<bool> CasDelete(const std::string& key, std::optional<int64_t> mod_revision);
  std::string Key(const std::string& relative) const { return options_.prefix + relative; }
  void CacheLoop();
  void ApplyToCache(const std::vector<KeyValue>& kvs, int64_t revision, bool replace);
  Result<model::ClusterSnapshot> ReadDirect(bool serializable);
  // Marks the cache stale and restarts the watch; reads go to etcd until it is rebuilt.
  void DropCache();
  void NotifyChange() REQUIRES(mutex_);  // also calls on_change_ with mutex_ held

  Etcd3DcsOptions options_;
  std::shared_ptr<Etcd3Client> client_;

  mutable Mutex mutex_;  // guards every member below except the thread and the canceller
  int64_t lease_ GUARDED_BY(mutex_) = 0;
  std::chrono::steady_clock::time_point last_keepalive_ GUARDED_BY(mutex_){};
  double ttl_ GUARDED_BY(mutex_) = 30;
  double loop_wait_ GUARDED_BY(mutex_) = 10;
  std::string last_member_value_ GUARDED_BY(mutex_);
  int64_t last_member_lease_ GUARDED_BY(mutex_) = 0;

  // Watch-fed cache of every key under the prefix, keyed by relative name.
  std::map<std::string, model::KeyValue> cache_ GUARDED_BY(mutex_);
  int64_t cache_revision_ GUARDED_BY(mutex_) = 0;
  bool cache_ready_ GUARDED_BY(mutex_) = false;
  uint64_t change_counter_ GUARDED_BY(mutex_) = 0;
  std::chrono::steady_clock::time_point last_change_at_ GUARDED_BY(mutex_){};
  std::function<void()> on_change_ GUARDED_BY(mutex_);
  std::condition_variable_any changed_;
  StreamCanceller watch_canceller_;
  std::thread cache_thread_;
  bool stopping_ GUARDED_BY(mutex_) = false;
};

}  // namespace pgha::dcs::etcd3
