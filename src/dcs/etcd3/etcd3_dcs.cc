#include "dcs/etcd3/etcd3_dcs.h"

#include <fmt/format.h>

#include <cmath>

#include "common/log.h"
#include "common/strings.h"

namespace pgha::dcs::etcd3 {

using std::chrono::milliseconds;

namespace {

bool IsWatchedForWakeup(const std::string& relative) {
  // Not "status": the leader rewrites its WAL position every cycle under writes, and a replica
  // has nothing to decide on it.
  return relative == "leader" || relative == "config" || relative == "failover" ||
         relative == "sync";
}

int64_t LeaseTtlSeconds(double ttl) {
  // etcd leases are whole seconds; round up so a fractional ttl is never shortened.
  return std::max<int64_t>(2, static_cast<int64_t>(std::ceil(ttl)));
}

}  // namespace

Etcd3Dcs::Etcd3Dcs(Etcd3DcsOptions options, std::shared_ptr<Etcd3Client> client)
    : options_(std::move(options)), client_(std::move(client)) {
  if (options_.use_cache) {
    cache_thread_ = std::thread([this] { CacheLoop(); });
  }
}

Etcd3Dcs::~Etcd3Dcs() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  watch_canceller_.Cancel();
  changed_.notify_all();
  if (cache_thread_.joinable()) {
    cache_thread_.join();
  }
}

void Etcd3Dcs::SetTimings(double ttl_seconds, double loop_wait_seconds,
                          double retry_timeout_seconds) {
  {
    MutexLock lock(mutex_);
    ttl_ = ttl_seconds;
    loop_wait_ = loop_wait_seconds;
  }
  // Patroni's set_retry_timeout: every later DCS call is bounded by the new value.
  client_->SetRequestTimeout(
      std::chrono::milliseconds(static_cast<int64_t>(retry_timeout_seconds * 1000)));
}

int64_t Etcd3Dcs::lease_id() const {
  MutexLock lock(mutex_);
  return lease_;
}

Result<int64_t> Etcd3Dcs::GrantLease() {
  double ttl;
  {
    MutexLock lock(mutex_);
    ttl = ttl_;
  }
  auto id = client_->LeaseGrant(LeaseTtlSeconds(ttl));
  if (!id.ok()) {
    return id.error();
  }
  MutexLock lock(mutex_);
  lease_ = *id;
  last_keepalive_ = std::chrono::steady_clock::now();
  return *id;
}

Status Etcd3Dcs::RefreshLease(bool force) {
  int64_t lease;
  bool due;
  {
    MutexLock lock(mutex_);
    lease = lease_;
    // Keepalives go out at most once per loop_wait unless the caller needs a fresh lease now.
    due = force || std::chrono::steady_clock::now() - last_keepalive_ >=
                       milliseconds(static_cast<int64_t>(loop_wait_ * 1000));
  }
  if (lease == 0) {
    auto granted = GrantLease();
    return granted.ok() ? OkStatus() : Status(granted.error());
  }
  if (!due) {
    return OkStatus();
  }
  auto ttl = client_->LeaseKeepAlive(lease);
  if (!ttl.ok() || *ttl <= 0) {
    // The watch may have been cut off as silently as this request (a partition drops packets;
    // the stream just goes quiet): until it is re-established, reads go to etcd directly, and
    // fail while etcd cannot be reached, instead of answering from a cache that went stale.
    DropCache();
  }
  if (!ttl.ok()) {
    if (ttl.error().IsNotFound()) {
      auto granted = GrantLease();
      return granted.ok() ? OkStatus() : Status(granted.error());
    }
    return ttl.error();
  }
  if (*ttl <= 0) {
    PGHA_LOG_WARN("lease {:x} expired; granting a new one", lease);
    auto granted = GrantLease();
    return granted.ok() ? OkStatus() : Status(granted.error());
  }
  MutexLock lock(mutex_);
  last_keepalive_ = std::chrono::steady_clock::now();
  return OkStatus();
}

void Etcd3Dcs::DropCache() {
  if (!options_.use_cache) {
    return;
  }
  {
    MutexLock lock(mutex_);
    cache_ready_ = false;
  }
  watch_canceller_.Interrupt();
}

Status Etcd3Dcs::ReleaseLease() {
  int64_t lease;
  {
    MutexLock lock(mutex_);
    lease = lease_;
    lease_ = 0;
    last_member_value_.clear();
  }
  if (lease == 0) {
    return OkStatus();
  }
  return client_->LeaseRevoke(lease);
}

Result<bool> Etcd3Dcs::AttemptToAcquireLeader() {
  PGHA_RETURN_IF_ERROR(RefreshLease(true));
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto txn = client_->Txn({Compare::CreateRevision(Key("leader"), 0)},
                            {Op::Put(Key("leader"), options_.member_name, lease_id())});
    if (txn.ok()) {
      return txn->succeeded;
    }
    if (txn.error().IsNotFound() && attempt == 0) {
      // "requested lease not found": the lease expired between refresh and put.
      auto granted = GrantLease();
      if (!granted.ok()) {
        return granted.error();
      }
      continue;
    }
    return txn.error();
  }
  return false;
}

Result<bool> Etcd3Dcs::UpdateLeader(const model::ClusterSnapshot& cluster) {
  PGHA_RETURN_IF_ERROR(RefreshLease(true));
  int64_t lease = lease_id();
  if (cluster.leader && cluster.leader->name == options_.member_name &&
      cluster.leader->lease == lease) {
    return true;  // the keepalive just sent is the renewal
  }
  // The lease changed (re-granted) or the key is missing: move the key to the current lease,
  // but only if it still names us, or re-create it if nobody holds it.
  auto put = Op::Put(Key("leader"), options_.member_name, lease);
  auto recreate = Op::Txn({Compare::CreateRevision(Key("leader"), 0)}, {put}, {});
  auto txn = client_->Txn({Compare::Value(Key("leader"), options_.member_name)}, {put}, {recreate});
  if (!txn.ok()) {
    if (txn.error().IsNotFound()) {
      auto granted = GrantLease();
      if (!granted.ok()) {
        return granted.error();
      }
      return UpdateLeader(model::ClusterSnapshot{});
    }
    return txn.error();
  }
  if (txn->succeeded) {
    return true;
  }
  // Failure branch ran the nested create-if-absent; its own "succeeded" decides.
  if (txn->responses.is_array() && !txn->responses.empty()) {
    const auto& nested = txn->responses[0];
    if (nested.contains("response_txn") && nested["response_txn"].value("succeeded", false)) {
      return true;
    }
  }
  DropCache();  // our view said we held the lock: it is stale
  return false;
}

Result<bool> Etcd3Dcs::DeleteLeader() {
  auto txn = client_->Txn({Compare::Value(Key("leader"), options_.member_name)},
                          {Op::Delete(Key("leader"))});
  if (!txn.ok()) {
    return txn.error();
  }
  return txn->succeeded;
}

Status Etcd3Dcs::TouchMember(const std::string& value) {
  PGHA_RETURN_IF_ERROR(RefreshLease(false));
  int64_t lease = lease_id();
  {
    // Patroni re-puts only when the data changed or the key is not on the current lease.
    MutexLock lock(mutex_);
    auto it = cache_.find("members/" + options_.member_name);
    bool present = !options_.use_cache || !cache_ready_ ||
                   (it != cache_.end() && it->second.lease == lease && it->second.value == value);
    if (present && last_member_value_ == value && last_member_lease_ == lease) {
      return OkStatus();
    }
  }
  auto put = PutOnLease(Key("members/" + options_.member_name), value);
  if (!put.ok()) {
    return put.error();
  }
  lease = put->second;
  MutexLock lock(mutex_);
  last_member_value_ = value;
  last_member_lease_ = lease;
  return OkStatus();
}

Result<bool> Etcd3Dcs::Initialize(bool create_new, const std::string& sysid) {
  if (create_new) {
    auto txn = client_->Txn({Compare::CreateRevision(Key("initialize"), 0)},
                            {Op::Put(Key("initialize"), sysid)});
    if (!txn.ok()) {
      return txn.error();
    }
    return txn->succeeded;
  }
  auto put = client_->Put(Key("initialize"), sysid);
  if (!put.ok()) {
    return put.error();
  }
  return true;
}

Status Etcd3Dcs::CancelInitialization() {
  auto deleted = client_->DeleteRange(Key("initialize"));
  return deleted.ok() ? OkStatus() : Status(deleted.error());
}

Result<bool> Etcd3Dcs::CasPut(const std::string& key, const std::string& value,
                              std::optional<int64_t> mod_revision) {
  if (!mod_revision) {
    auto put = client_->Put(key, value);
    if (!put.ok()) {
      return put.error();
    }
    return true;
  }
  auto txn = client_->Txn({Compare::ModRevision(key, *mod_revision)}, {Op::Put(key, value)});
  if (!txn.ok()) {
    return txn.error();
  }
  return txn->succeeded;
}

Result<bool> Etcd3Dcs::CasDelete(const std::string& key, std::optional<int64_t> mod_revision) {
  if (!mod_revision) {
    auto deleted = client_->DeleteRange(key);
    if (!deleted.ok()) {
      return deleted.error();
    }
    return true;
  }
  auto txn = client_->Txn({Compare::ModRevision(key, *mod_revision)}, {Op::Delete(key)});
  if (!txn.ok()) {
    return txn.error();
  }
  return txn->succeeded;
}

Result<bool> Etcd3Dcs::SetConfigValue(const std::string& value, std::optional<int64_t> rev) {
  return CasPut(Key("config"), value, rev);
}

Result<bool> Etcd3Dcs::SetFailoverValue(const std::string& value, std::optional<int64_t> rev) {
  return CasPut(Key("failover"), value, rev);
}

Result<bool> Etcd3Dcs::DeleteFailover(std::optional<int64_t> rev) {
  return CasDelete(Key("failover"), rev);
}

Result<bool> Etcd3Dcs::SetSyncStateValue(const std::string& value, std::optional<int64_t> rev) {
  return CasPut(Key("sync"), value, rev);
}

Result<bool> Etcd3Dcs::DeleteSyncState(std::optional<int64_t> rev) {
  return CasDelete(Key("sync"), rev);
}

Status Etcd3Dcs::SetHistoryValue(const std::string& value) {
  auto put = client_->Put(Key("history"), value);
  return put.ok() ? OkStatus() : Status(put.error());
}

Result<std::pair<int64_t, int64_t>> Etcd3Dcs::PutOnLease(const std::string& key,
                                                         const std::string& value) {
  PGHA_RETURN_IF_ERROR(RefreshLease(false));
  int64_t lease = lease_id();
  auto put = client_->Put(key, value, lease);
  if (!put.ok() && put.error().IsNotFound()) {
    // The lease expired in etcd before our keepalive said so: a new one, and the put again.
    auto granted = GrantLease();
    if (!granted.ok()) {
      return granted.error();
    }
    lease = *granted;
    put = client_->Put(key, value, lease);
  }
  if (!put.ok()) {
    return put.error();
  }
  return std::make_pair(*put, lease);
}

Result<int64_t> Etcd3Dcs::AnnounceHandover(const std::string& value) {
  auto put = PutOnLease(Key(model::kHandoverKey), value);
  if (!put.ok()) {
    return put.error();
  }
  return put->first;
}

Status Etcd3Dcs::WithdrawHandover() {
  auto deleted = client_->DeleteRange(Key(model::kHandoverKey));
  return deleted.ok() ? OkStatus() : Status(deleted.error());
}

Status Etcd3Dcs::KeepRouterKey(const std::string& name, const std::string& value) {
  PGHA_RETURN_IF_ERROR(RefreshLease(false));
  int64_t lease = lease_id();
  std::string relative = std::string(model::kRoutersPrefix) + name;
  {
    // Written again only when its value changed or it is not on the current lease (expired).
    MutexLock lock(mutex_);
    auto it = cache_.find(relative);
    if (cache_ready_ && it != cache_.end() && it->second.lease == lease &&
        it->second.value == value) {
      return OkStatus();
    }
  }
  auto put = PutOnLease(Key(relative), value);
  return put.ok() ? OkStatus() : Status(put.error());
}

Status Etcd3Dcs::RegisterMember(const std::string& value) {
  auto put =
      client_->Put(Key(std::string(model::kRegisteredMembersPrefix) + options_.member_name), value);
  return put.ok() ? OkStatus() : Status(put.error());
}

Status Etcd3Dcs::WriteStatus(const std::string& value) {
  auto put = client_->Put(Key("status"), value);
  return put.ok() ? OkStatus() : Status(put.error());
}

Status Etcd3Dcs::WriteFailsafe(const std::string& value) {
  auto put = client_->Put(Key("failsafe"), value);
  return put.ok() ? OkStatus() : Status(put.error());
}

Status Etcd3Dcs::DeleteCluster() {
  auto deleted = client_->DeletePrefix(options_.prefix);
  return deleted.ok() ? OkStatus() : Status(deleted.error());
}

Result<model::ClusterSnapshot> Etcd3Dcs::ReadDirect(bool serializable) {
  auto range = client_->RangePrefix(options_.prefix, serializable);
  if (!range.ok()) {
    return range.error();
  }
  std::vector<model::KeyValue> keys;
  for (const auto& kv : range->kvs) {
    if (kv.key.rfind(options_.prefix, 0) != 0) {
      continue;
    }
    keys.push_back({kv.key.substr(options_.prefix.size()), kv.value, kv.create_revision,
                    kv.mod_revision, kv.lease});
  }
  if (options_.use_cache) {
    std::vector<KeyValue> raw = range->kvs;
    ApplyToCache(raw, range->revision, true);
  }
  return model::BuildSnapshot(keys, range->revision);
}

Result<model::ClusterSnapshot> Etcd3Dcs::CachedCluster() {
  MutexLock lock(mutex_);
  if (!options_.use_cache || !cache_ready_) {
    return Error::Unavailable("no current copy of " + options_.prefix + " from etcd");
  }
  std::vector<model::KeyValue> keys;
  keys.reserve(cache_.size());
  for (const auto& [name, kv] : cache_) {
    keys.push_back(kv);
  }
  return model::BuildSnapshot(keys, cache_revision_);
}

std::chrono::steady_clock::time_point Etcd3Dcs::last_change_at() const {
  MutexLock lock(mutex_);
  return last_change_at_;
}

Result<model::ClusterSnapshot> Etcd3Dcs::LoadCluster() {
  if (auto cached = CachedCluster(); cached.ok()) {
    return cached;
  }
  // Daemons tolerate stale reads (serializable), as Patroni's do; pghactl reads linearizably.
  return ReadDirect(options_.use_cache);
}

void Etcd3Dcs::NotifyChange() {
  ++change_counter_;
  last_change_at_ = std::chrono::steady_clock::now();
  changed_.notify_all();
  if (on_change_) {
    on_change_();
  }
}

void Etcd3Dcs::SetChangeListener(std::function<void()> on_change) {
  MutexLock lock(mutex_);
  on_change_ = std::move(on_change);
}

void Etcd3Dcs::ApplyToCache(const std::vector<KeyValue>& kvs, int64_t revision, bool replace) {
  MutexLock lock(mutex_);
  if (replace) {
    if (revision < cache_revision_) {
      return;  // an older read must not roll the cache back
    }
    std::map<std::string, model::KeyValue> fresh;
    for (const auto& kv : kvs) {
      if (kv.key.rfind(options_.prefix, 0) == 0) {
        std::string rel = kv.key.substr(options_.prefix.size());
        fresh[rel] = {rel, kv.value, kv.create_revision, kv.mod_revision, kv.lease};
      }
    }
    cache_ = std::move(fresh);
    cache_revision_ = revision;
    NotifyChange();
  }
}

void Etcd3Dcs::CacheLoop() {
  while (true) {
    {
      MutexLock lock(mutex_);
      if (stopping_) {
        return;
      }
    }
    auto range = client_->RangePrefix(options_.prefix, true);
    if (!range.ok()) {
      {
        MutexLock lock(mutex_);
        cache_ready_ = false;
      }
      MutexLock lock(mutex_);
      (void)WaitUntil(changed_, lock, std::chrono::steady_clock::now() + milliseconds(500),
                      [&]() REQUIRES(mutex_) { return stopping_; });
      continue;
    }
    ApplyToCache(range->kvs, range->revision, true);
    {
      MutexLock lock(mutex_);
      cache_ready_ = true;
    }
    WatchOptions watch;
    watch.key = options_.prefix;
    watch.range_end = PrefixRangeEnd(options_.prefix);
    watch.start_revision = range->revision + 1;
    bool compacted = false;
    auto status = client_->Watch(
        watch,
        [this, &compacted](const WatchBatch& batch) {
          MutexLock lock(mutex_);
          if (stopping_) {
            return false;
          }
          if (batch.compacted) {
            compacted = true;
            return false;
          }
          bool wake = false;
          for (const auto& event : batch.events) {
            if (event.kv.key.rfind(options_.prefix, 0) != 0) {
              continue;
            }
            std::string rel = event.kv.key.substr(options_.prefix.size());
            if (event.type == WatchEvent::Type::kDelete) {
              cache_.erase(rel);
            } else {
              cache_[rel] = {rel, event.kv.value, event.kv.create_revision, event.kv.mod_revision,
                             event.kv.lease};
            }
            cache_revision_ = std::max(cache_revision_, event.kv.mod_revision);
            wake = wake || options_.wake_on_every_key || IsWatchedForWakeup(rel);
          }
          if (wake) {
            NotifyChange();
          }
          return true;
        },
        &watch_canceller_);
    (void)status;
    if (compacted) {
      PGHA_LOG_INFO("etcd history was compacted past the cache; re-reading {}", options_.prefix);
    }
  }
}

Status Etcd3Dcs::Ping() {
  auto range = client_->Range(Key("leader"));
  return range.ok() ? OkStatus() : Status(range.error());
}

bool Etcd3Dcs::WaitForChange(milliseconds timeout) {
  MutexLock lock(mutex_);
  uint64_t seen = change_counter_;
  (void)WaitUntil(changed_, lock, std::chrono::steady_clock::now() + timeout,
                  [&]() REQUIRES(mutex_) { return stopping_ || change_counter_ != seen; });
  return change_counter_ != seen && !stopping_;
}

}  // namespace pgha::dcs::etcd3
