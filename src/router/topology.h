// Keeps the router's Routes current. Three threads, so that no slow call delays another:
//  - the decision thread wakes on every change etcd's watch delivers (and every check_interval),
//    reads the watch-fed cache (never etcd itself), decides and hands changed Routes to `apply`;
//  - the etcd check pings etcd linearizably every check_interval, so a frozen or partitioned etcd
//    (whose cache would look fine) is noticed, and keeps this router's key, through which it
//    acknowledges a leader's handover notice once the routes that hold writes are applied;
//  - the member checks ask every member's REST API (/primary of the leader, /replica of the
//    others) every check_interval.
//
// Thread-safety: Start/Stop from one thread; Status and SetSettings from any.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/result.h"
#include "model/cluster.h"
#include "router/routing.h"
#include "router/settings.h"

namespace pgha::router {

// etcd as the router reads it.
class ClusterSource {
 public:
  virtual ~ClusterSource() = default;
  // The watch-fed copy; an error while there is none. Must not block on etcd.
  virtual Result<model::ClusterSnapshot> CachedCluster() = 0;
  // A linearizable read: fails when etcd cannot serve consistent data.
  virtual Status Ping() = 0;
  // When the watch last delivered a change (for the event-to-applied delay).
  virtual MonoTime LastChangeAt() = 0;
  // Called from the watch's thread on every change; must not block.
  virtual void SetChangeListener(std::function<void()> on_change) = 0;
  // Keeps this router's key, pgha/routers/<name>, at `value` (model/handover_notice.h).
  virtual Status PublishRouter(const std::string& name, const std::string& value) = 0;
};

// A member's REST API, as HAProxy's checks ask it.
class MemberChecker {
 public:
  virtual ~MemberChecker() = default;
  // true when `path` ("/primary", "/replica") of the member's api_url answers 200.
  virtual bool Answers200(const std::string& api_url, const std::string& path) = 0;
};

struct TopologyStatus {
  Routes routes;
  bool dcs_reachable = false;
  bool have_cluster = false;
  std::optional<MonoTime> last_dcs_ok;     // the last successful ping
  std::optional<MonoTime> cluster_loaded;  // when the cache last gave a snapshot
  int64_t route_changes = 0;
  int64_t primary_changes = 0;          // re-targets of the write port
  double last_apply_delay_seconds = 0;  // watch event -> routes applied, the last change
  double apply_delay_sum_seconds = 0;
  int64_t apply_delay_count = 0;
  int64_t handovers_acknowledged = 0;  // leaders' handover notices acknowledged in etcd
};

class TopologyWatcher {
 public:
  using ApplyRoutes = std::function<void(const Routes&)>;
  TopologyWatcher(ClusterSource& source, MemberChecker& checker, const Clock& clock,
                  std::shared_ptr<const RouterSettings> settings, ApplyRoutes apply);
  ~TopologyWatcher();
  TopologyWatcher(const TopologyWatcher&) = delete;
  TopologyWatcher& operator=(const TopologyWatcher&) = delete;

  void Start();
  void Stop();
  void SetSettings(std::shared_ptr<const RouterSettings> settings);
  // A member refused a connection: check every member now rather than at the next interval, so
  // a dead replica leaves the read port at once. Cheap to call often; never blocks.
  void RecheckMembers();
  // A handover notice is acknowledged only once `ready` says so as well (the session mode's
  // sessions have finished their transactions); it is asked under this watcher's lock, so it
  // must not call back. RecheckAcknowledgement asks again now.
  void SetAcknowledgementGate(std::function<bool()> ready);
  void RecheckAcknowledgement();
  TopologyStatus Status() const;

 private:
  void DecisionLoop();
  void EtcdCheckLoop();
  void MemberCheckLoop();
  // Marks the handover notice in view for acknowledgement (the routes for it are applied).
  void WantAcknowledgement() REQUIRES(mutex_);
  // Counts and logs what writing this router's key with `acknowledged` gave (the etcd thread).
  void NoteRouterKey(const pgha::Status& kept, int64_t acknowledged) REQUIRES(mutex_);
  // Waits on wake_ for up to `timeout`, or until stopping.
  bool Sleep(MutexLock& lock, std::chrono::milliseconds timeout) REQUIRES(mutex_);
  // Waits on wake_ for up to `timeout`, or until stopping or `*flag`.
  void WaitFor(MutexLock& lock, std::chrono::milliseconds timeout, const bool* flag)
      REQUIRES(mutex_);

  ClusterSource& source_;
  MemberChecker& checker_;
  const Clock& clock_;
  const ApplyRoutes apply_;

  mutable Mutex mutex_;
  std::condition_variable_any wake_;
  std::shared_ptr<const RouterSettings> settings_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  // Something the decision thread has not looked at yet.
  bool changed_ GUARDED_BY(mutex_) = false;
  bool recheck_ GUARDED_BY(mutex_) = false;  // the member checks should run now
  // Until a ping says otherwise: the cache decides first.
  bool dcs_reachable_ GUARDED_BY(mutex_) = true;
  std::optional<model::ClusterSnapshot> cluster_ GUARDED_BY(mutex_);
  std::map<std::string, std::pair<ProbeAnswer, MonoTime>> probes_ GUARDED_BY(mutex_);
  // The failover key's revision, and when it was first seen.
  std::optional<std::pair<int64_t, MonoTime>> failover_seen_ GUARDED_BY(mutex_);
  // The handover notice's revision, and when it was first seen.
  std::optional<std::pair<int64_t, MonoTime>> handover_seen_ GUARDED_BY(mutex_);
  // The newest notice whose routes are applied (to acknowledge), and the one acknowledged.
  int64_t ack_wanted_ GUARDED_BY(mutex_) = 0;
  int64_t ack_written_ GUARDED_BY(mutex_) = -1;
  bool ack_due_ GUARDED_BY(mutex_) = false;  // wakes the etcd thread to write it now
  TopologyStatus status_ GUARDED_BY(mutex_);
  std::function<bool()> acknowledgement_gate_ GUARDED_BY(mutex_);

  std::thread decision_thread_, etcd_thread_, member_thread_;
};

}  // namespace pgha::router
