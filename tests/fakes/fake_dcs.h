// FakeDcs: an in-memory etcd for one member's agent, with Patroni's key layout, revisions,
// TTL leases on a FakeClock, and faults a test switches on: unreachable, slow, and compares
// that fail as if another node had written first. Tests play the other members by writing keys
// (and leases) themselves.
//
// Thread-safety: every method is safe from any thread (the agent's long actions call it too).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dcs/dcs.h"
#include "fakes/fake_clock.h"

namespace pgha::testing {

class FakeDcs final : public dcs::Dcs {
 public:
  FakeDcs(const FakeClock& clock, std::string member_name);

  // --- The store, as the other members and the operator would change it.
  void Put(const std::string& key, const std::string& value, int64_t lease = 0);
  void Delete(const std::string& key);
  std::optional<std::string> Value(const std::string& key) const;
  int64_t ModRevision(const std::string& key) const;
  // A lease of another process, alive for `ttl_seconds` unless kept alive.
  int64_t GrantLease(double ttl_seconds);
  void KeepAlive(int64_t lease, double ttl_seconds);
  // When `key` is deleted, it is written again at once with `value` on `lease`: another member
  // that wins a race the instant it opens (a candidate taking the lock a handover released).
  void ReplaceWhenDeleted(const std::string& key, const std::string& value, int64_t lease);
  // A router that acknowledges every handover notice the moment it is written, as one in L4
  // mode does (pgha/routers/<router> on `lease`; model/handover_notice.h). A router that never
  // acknowledges is a plain Put of its key.
  void AcknowledgeHandoversAs(const std::string& router, int64_t lease);
  // The holder of the leader key, "" when none.
  std::string LeaderName() const;

  // --- Faults.
  // Every call fails as a DCS out of reach would (the caches of a real one are gone too).
  void SetUnreachable(bool unreachable);
  // Every call takes this long on the fake clock.
  void SetCallDelay(std::chrono::milliseconds delay);
  // The next `count` conditional writes (leader race, renewal, CAS) find another node's write.
  void FailNextCompares(int count);
  // The next `count` calls of `method` ("UpdateLeader", ...) fail as an unreachable DCS would,
  // while every other call works (the watch-fed cache still answers reads).
  void FailNextCalls(const std::string& method, int count);
  // Calls made, by method name ("UpdateLeader", ...).
  int Calls(const std::string& method) const;

  // --- dcs::Dcs
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
  Status Ping() override;
  void SetChangeListener(std::function<void()> on_change) override;
  void SetTimings(double ttl_seconds, double loop_wait_seconds,
                  double retry_timeout_seconds) override;

 private:
  struct Lease {
    MonoTime expires;
  };
  // Counts the call, applies the delay and the expiry of leases; an error when unreachable.
  Status Enter(const char* method);
  bool CompareFails();
  void PutLocked(const std::string& key, const std::string& value, int64_t lease);
  void DeleteLocked(const std::string& key);
  void ExpireLeasesLocked();
  int64_t OwnLeaseLocked();
  // A put (`value`) or a delete (nullopt), only if the key's mod_revision is `mod_revision`
  // (0: absent) when one is given.
  Result<bool> CasWrite(const char* method, const std::string& key,
                        std::optional<std::string> value, std::optional<int64_t> mod_revision);
  Status PlainPut(const char* method, const std::string& key, const std::string& value);
  void Notify(const std::string& key);

  const FakeClock& clock_;
  const std::string member_name_;
  mutable std::mutex mutex_;  // guards every member below
  std::map<std::string, model::KeyValue> keys_;
  std::map<int64_t, Lease> leases_;
  int64_t revision_ = 1;
  int64_t next_lease_ = 1000;
  int64_t own_lease_ = 0;
  double ttl_ = 30;
  bool unreachable_ = false;
  std::chrono::milliseconds call_delay_{0};
  int failing_compares_ = 0;
  std::map<std::string, int> failing_calls_;
  std::map<std::string, int> calls_;
  std::function<void()> on_change_;
  std::map<std::string, std::pair<std::string, int64_t>> replacements_;
  std::map<std::string, int64_t> acknowledging_routers_;  // name -> lease
};

}  // namespace pgha::testing
