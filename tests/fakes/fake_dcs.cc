#include "fakes/fake_dcs.h"

#include <cmath>

#include "model/cluster.h"

namespace pgha::testing {

namespace {

std::chrono::nanoseconds Seconds(double seconds) {
  return std::chrono::nanoseconds(static_cast<int64_t>(seconds * 1e9));
}

bool WakesTheLoop(const std::string& key) {
  return key == "leader" || key == "config" || key == "failover" || key == "sync";
}

}  // namespace

FakeDcs::FakeDcs(const FakeClock& clock, std::string member_name)
    : clock_(clock), member_name_(std::move(member_name)) {}

void FakeDcs::Put(const std::string& key, const std::string& value, int64_t lease) {
  std::lock_guard<std::mutex> lock(mutex_);
  PutLocked(key, value, lease);
}

void FakeDcs::Delete(const std::string& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  DeleteLocked(key);
}

std::optional<std::string> FakeDcs::Value(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const_cast<FakeDcs*>(this)->ExpireLeasesLocked();
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    return std::nullopt;
  }
  return it->second.value;
}

int64_t FakeDcs::ModRevision(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keys_.find(key);
  return it == keys_.end() ? 0 : it->second.mod_revision;
}

int64_t FakeDcs::GrantLease(double ttl_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t id = next_lease_++;
  leases_[id] = Lease{clock_.Now() + Seconds(ttl_seconds)};
  return id;
}

void FakeDcs::KeepAlive(int64_t lease, double ttl_seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = leases_.find(lease); it != leases_.end()) {
    it->second.expires = clock_.Now() + Seconds(ttl_seconds);
  }
}

void FakeDcs::ReplaceWhenDeleted(const std::string& key, const std::string& value, int64_t lease) {
  std::lock_guard<std::mutex> lock(mutex_);
  replacements_[key] = {value, lease};
}

std::string FakeDcs::LeaderName() const { return Value("leader").value_or(""); }

void FakeDcs::SetUnreachable(bool unreachable) {
  std::lock_guard<std::mutex> lock(mutex_);
  unreachable_ = unreachable;
}

void FakeDcs::SetCallDelay(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mutex_);
  call_delay_ = delay;
}

void FakeDcs::FailNextCompares(int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  failing_compares_ = count;
}

int FakeDcs::Calls(const std::string& method) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

Status FakeDcs::Enter(const char* method) {
  ++calls_[method];
  if (call_delay_.count() > 0) {
    clock_.Advance(call_delay_);
  }
  ExpireLeasesLocked();
  if (unreachable_) {
    return Error::Unavailable("etcd: all endpoints unreachable");
  }
  if (auto failing = failing_calls_.find(method);
      failing != failing_calls_.end() && failing->second > 0) {
    --failing->second;
    return Error::Unavailable(std::string("etcd: ") + method + " did not succeed in time");
  }
  return OkStatus();
}

void FakeDcs::FailNextCalls(const std::string& method, int count) {
  std::lock_guard<std::mutex> lock(mutex_);
  failing_calls_[method] = count;
}

bool FakeDcs::CompareFails() {
  if (failing_compares_ > 0) {
    --failing_compares_;
    return true;
  }
  return false;
}

void FakeDcs::PutLocked(const std::string& key, const std::string& value, int64_t lease) {
  ++revision_;
  auto& kv = keys_[key];
  if (kv.create_revision == 0) {
    kv.create_revision = revision_;
  }
  kv.key = key;
  kv.value = value;
  kv.mod_revision = revision_;
  kv.lease = lease;
  Notify(key);
  if (key == model::kHandoverKey) {
    int64_t notice = revision_;
    for (const auto& [router, router_lease] : acknowledging_routers_) {
      PutLocked(model::kRoutersPrefix + router, model::EncodeRouterPresence({router, notice}),
                router_lease);
    }
  }
}

void FakeDcs::AcknowledgeHandoversAs(const std::string& router, int64_t lease) {
  std::lock_guard<std::mutex> lock(mutex_);
  acknowledging_routers_[router] = lease;
  PutLocked(model::kRoutersPrefix + router, model::EncodeRouterPresence({router, 0}), lease);
}

void FakeDcs::DeleteLocked(const std::string& key) {
  if (keys_.erase(key) > 0) {
    ++revision_;
    Notify(key);
    if (auto it = replacements_.find(key); it != replacements_.end()) {
      auto [value, lease] = it->second;
      replacements_.erase(it);
      PutLocked(key, value, lease);
    }
  }
}

void FakeDcs::ExpireLeasesLocked() {
  auto now = clock_.Now();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    int64_t gone = it->first;
    it = leases_.erase(it);
    std::vector<std::string> doomed;
    for (const auto& [key, kv] : keys_) {
      if (kv.lease == gone) {
        doomed.push_back(key);
      }
    }
    for (const auto& key : doomed) {
      DeleteLocked(key);
    }
  }
}

int64_t FakeDcs::OwnLeaseLocked() {
  if (own_lease_ == 0 || leases_.count(own_lease_) == 0) {
    own_lease_ = next_lease_++;
  }
  leases_[own_lease_] = Lease{clock_.Now() + Seconds(ttl_)};  // granted or kept alive
  return own_lease_;
}

void FakeDcs::Notify(const std::string& key) {
  // Called with mutex_ held: the agent's listener only counts a wake-up and never calls back.
  if (on_change_ && WakesTheLoop(key)) {
    on_change_();
  }
}

Result<model::ClusterSnapshot> FakeDcs::LoadCluster() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("LoadCluster"));
  std::vector<model::KeyValue> keys;
  for (const auto& [key, kv] : keys_) {
    keys.push_back(kv);
  }
  return model::BuildSnapshot(keys, revision_);
}

Result<bool> FakeDcs::AttemptToAcquireLeader() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("AttemptToAcquireLeader"));
  int64_t lease = OwnLeaseLocked();
  if (CompareFails() || keys_.count("leader") != 0) {
    return false;
  }
  PutLocked("leader", member_name_, lease);
  return true;
}

Result<bool> FakeDcs::UpdateLeader(const model::ClusterSnapshot&) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("UpdateLeader"));
  int64_t lease = OwnLeaseLocked();
  if (CompareFails()) {
    return false;
  }
  auto it = keys_.find("leader");
  if (it != keys_.end() && it->second.value != member_name_) {
    return false;
  }
  if (it == keys_.end() || it->second.lease != lease) {
    PutLocked("leader", member_name_, lease);  // as etcd3: re-created on the current lease
  }
  return true;
}

Result<bool> FakeDcs::DeleteLeader() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("DeleteLeader"));
  auto it = keys_.find("leader");
  if (it == keys_.end() || it->second.value != member_name_) {
    return false;
  }
  DeleteLocked("leader");
  return true;
}

Status FakeDcs::TouchMember(const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("TouchMember"));
  PutLocked("members/" + member_name_, value, OwnLeaseLocked());
  return OkStatus();
}

Result<bool> FakeDcs::Initialize(bool create_new, const std::string& sysid) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("Initialize"));
  if (create_new && (CompareFails() || keys_.count("initialize") != 0)) {
    return false;
  }
  PutLocked("initialize", sysid, 0);
  return true;
}

Status FakeDcs::CancelInitialization() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("CancelInitialization"));
  DeleteLocked("initialize");
  return OkStatus();
}

Result<bool> FakeDcs::CasWrite(const char* method, const std::string& key,
                               std::optional<std::string> value,
                               std::optional<int64_t> mod_revision) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter(method));
  if (mod_revision) {
    auto it = keys_.find(key);
    int64_t current = it == keys_.end() ? 0 : it->second.mod_revision;
    if (CompareFails() || current != *mod_revision) {
      return false;
    }
  }
  if (value) {
    PutLocked(key, *value, 0);
  } else {
    DeleteLocked(key);
  }
  return true;
}

Status FakeDcs::PlainPut(const char* method, const std::string& key, const std::string& value) {
  auto put = CasWrite(method, key, value, std::nullopt);
  return put.ok() ? OkStatus() : Status(put.error());
}

Result<bool> FakeDcs::SetConfigValue(const std::string& value, std::optional<int64_t> rev) {
  return CasWrite("SetConfigValue", "config", value, rev);
}

Result<bool> FakeDcs::SetFailoverValue(const std::string& value, std::optional<int64_t> rev) {
  return CasWrite("SetFailoverValue", "failover", value, rev);
}

Result<bool> FakeDcs::DeleteFailover(std::optional<int64_t> rev) {
  return CasWrite("DeleteFailover", "failover", std::nullopt, rev);
}

Result<bool> FakeDcs::SetSyncStateValue(const std::string& value, std::optional<int64_t> rev) {
  return CasWrite("SetSyncStateValue", "sync", value, rev);
}

Result<bool> FakeDcs::DeleteSyncState(std::optional<int64_t> rev) {
  return CasWrite("DeleteSyncState", "sync", std::nullopt, rev);
}

Status FakeDcs::SetHistoryValue(const std::string& value) {
  return PlainPut("SetHistoryValue", "history", value);
}

Status FakeDcs::RegisterMember(const std::string& value) {
  return PlainPut("RegisterMember", std::string(model::kRegisteredMembersPrefix) + member_name_,
                  value);
}

Status FakeDcs::WriteStatus(const std::string& value) {
  return PlainPut("WriteStatus", "status", value);
}

Status FakeDcs::WriteFailsafe(const std::string& value) {
  return PlainPut("WriteFailsafe", "failsafe", value);
}

Result<int64_t> FakeDcs::AnnounceHandover(const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("AnnounceHandover"));
  PutLocked(model::kHandoverKey, value, OwnLeaseLocked());
  return keys_[model::kHandoverKey].mod_revision;
}

Status FakeDcs::WithdrawHandover() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("WithdrawHandover"));
  DeleteLocked(model::kHandoverKey);
  return OkStatus();
}

Status FakeDcs::DeleteCluster() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Enter("DeleteCluster"));
  std::vector<std::string> all;
  for (const auto& [key, kv] : keys_) {
    all.push_back(key);
  }
  for (const auto& key : all) {
    DeleteLocked(key);
  }
  return OkStatus();
}

Status FakeDcs::Ping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Enter("Ping");
}

void FakeDcs::SetChangeListener(std::function<void()> on_change) {
  std::lock_guard<std::mutex> lock(mutex_);
  on_change_ = std::move(on_change);
}

void FakeDcs::SetTimings(double ttl_seconds, double, double) {
  std::lock_guard<std::mutex> lock(mutex_);
  ttl_ = ttl_seconds;
}

}  // namespace pgha::testing
