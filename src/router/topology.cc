#include "router/topology.h"

#include <future>

#include "common/log.h"

namespace pgha::router {

using std::chrono::duration;
using std::chrono::milliseconds;

namespace {

std::string Describe(const std::optional<Backend>& backend) {
  return backend
             ? backend->member + " (" + backend->host + ":" + std::to_string(backend->port) + ")"
             : "nobody";
}

std::string Names(const std::vector<Backend>& backends) {
  std::string out;
  for (const auto& b : backends) {
    out += (out.empty() ? "" : ", ") + b.member;
  }
  return out.empty() ? "nobody" : out;
}

void LogChange(const Routes& before, const Routes& after) {
  if (before.primary != after.primary || before.no_primary_reason != after.no_primary_reason) {
    if (after.primary) {
      PGHA_LOG_INFO("write port -> {}{}", Describe(after.primary),
                    after.from_dcs ? "" : " (etcd away; its REST API vouches for it)");
    } else {
      PGHA_LOG_WARN("write port: holding new connections: {}", after.no_primary_reason);
    }
  }
  if (before.readers != after.readers) {
    PGHA_LOG_INFO("read port -> {}{}", Names(after.readers),
                  after.reads_on_primary ? " (no eligible replica; read_fallback: primary)" : "");
  }
}

bool IsActiveFailover(const model::ClusterSnapshot& cluster) {
  return cluster.failover && (cluster.failover->leader || cluster.failover->candidate);
}

}  // namespace

TopologyWatcher::TopologyWatcher(ClusterSource& source, MemberChecker& checker, const Clock& clock,
                                 std::shared_ptr<const RouterSettings> settings, ApplyRoutes apply)
    : source_(source),
      checker_(checker),
      clock_(clock),
      apply_(std::move(apply)),
      settings_(std::move(settings)) {
  status_.routes.no_primary_reason = "the cluster has not been read from etcd yet";
}

TopologyWatcher::~TopologyWatcher() { Stop(); }

void TopologyWatcher::Start() {
  source_.SetChangeListener([this] {
    // On the watch's thread, under the DCS's lock: only note it.
    MutexLock lock(mutex_);
    changed_ = true;
    wake_.notify_all();
  });
  {
    MutexLock lock(mutex_);
    changed_ = true;
  }
  decision_thread_ = std::thread([this] { DecisionLoop(); });
  etcd_thread_ = std::thread([this] { EtcdCheckLoop(); });
  member_thread_ = std::thread([this] { MemberCheckLoop(); });
}

void TopologyWatcher::Stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
    wake_.notify_all();
  }
  for (auto* thread : {&decision_thread_, &etcd_thread_, &member_thread_}) {
    if (thread->joinable()) {
      thread->join();
    }
  }
}

void TopologyWatcher::SetSettings(std::shared_ptr<const RouterSettings> settings) {
  MutexLock lock(mutex_);
  settings_ = std::move(settings);
  changed_ = true;
  wake_.notify_all();
}

void TopologyWatcher::SetAcknowledgementGate(std::function<bool()> ready) {
  MutexLock lock(mutex_);
  acknowledgement_gate_ = std::move(ready);
}

void TopologyWatcher::RecheckAcknowledgement() {
  MutexLock lock(mutex_);
  changed_ = true;
  wake_.notify_all();
}

void TopologyWatcher::RecheckMembers() {
  MutexLock lock(mutex_);
  recheck_ = true;
  wake_.notify_all();
}

TopologyStatus TopologyWatcher::Status() const {
  MutexLock lock(mutex_);
  return status_;
}

bool TopologyWatcher::Sleep(MutexLock& lock, milliseconds timeout) {
  WaitFor(lock, timeout, &changed_);
  return stopping_ || changed_;
}

void TopologyWatcher::WaitFor(MutexLock& lock, milliseconds timeout, const bool* flag) {
  (void)WaitUntil(wake_, lock, std::chrono::steady_clock::now() + timeout,
                  [&]() REQUIRES(mutex_) { return stopping_ || (flag != nullptr && *flag); });
}

void TopologyWatcher::DecisionLoop() {
  MutexLock lock(mutex_);
  MonoTime last_event_seen{};
  bool first = true;
  while (!stopping_) {
    if (!changed_) {
      // A switchover hold ends by time, not by an event: look again every interval anyway.
      Sleep(lock, settings_->check_interval);
    }
    if (stopping_) {
      break;
    }
    changed_ = false;
    auto settings = settings_;
    lock.unlock();
    auto cached = source_.CachedCluster();
    MonoTime event_at = source_.LastChangeAt();
    // Only a watch event this decision is the first to see counts towards the delay.
    bool new_event = event_at != MonoTime{} && event_at != last_event_seen;
    last_event_seen = event_at;
    lock.lock();
    MonoTime now = clock_.Now();
    if (cached.ok()) {
      cluster_ = std::move(*cached);
      status_.cluster_loaded = now;
      status_.have_cluster = true;
    }
    if (cluster_ && IsActiveFailover(*cluster_)) {
      if (!failover_seen_ || failover_seen_->first != cluster_->failover->mod_revision) {
        failover_seen_ = std::make_pair(cluster_->failover->mod_revision, now);
      }
    } else {
      failover_seen_.reset();
    }
    if (cluster_ && cluster_->handover) {
      if (!handover_seen_ || handover_seen_->first != cluster_->handover->mod_revision) {
        handover_seen_ = std::make_pair(cluster_->handover->mod_revision, now);
      }
    } else {
      handover_seen_.reset();
    }
    RoutingInput input;
    input.cluster = cluster_;
    input.dcs_reachable = dcs_reachable_ && cached.ok();
    input.now = now;
    input.wall_now = clock_.WallNow();
    if (failover_seen_) {
      input.failover_seen_at = failover_seen_->second;
    }
    if (handover_seen_) {
      input.handover_seen_at = handover_seen_->second;
    }
    auto fresh_for = 3 * settings->check_interval;
    for (const auto& [name, answer] : probes_) {
      if (now - answer.second <= fresh_for) {
        input.probes[name] = answer.first;
      }
    }
    status_.dcs_reachable = input.dcs_reachable;
    Routes routes = DecideRoutes(input, *settings);
    if (routes == status_.routes && !first) {
      WantAcknowledgement();
      continue;
    }
    Routes before = status_.routes;
    status_.routes = routes;
    ++status_.route_changes;
    if (routes.primary != before.primary) {
      ++status_.primary_changes;
    }
    lock.unlock();
    apply_(routes);
    LogChange(before, routes);
    MonoTime applied = clock_.Now();
    lock.lock();
    first = false;
    if (new_event && applied >= event_at) {
      double delay = duration<double>(applied - event_at).count();
      status_.last_apply_delay_seconds = delay;
      status_.apply_delay_sum_seconds += delay;
      ++status_.apply_delay_count;
    }
    WantAcknowledgement();
  }
}

void TopologyWatcher::WantAcknowledgement() {
  // Called once the routes decided with the current notice in view are applied: a notice that
  // holds writes is acknowledged only when new writes are held.
  if (handover_seen_ && handover_seen_->first > ack_wanted_ && acknowledgement_gate_ &&
      !acknowledgement_gate_()) {
    return;  // asked again through RecheckAcknowledgement, or at the next interval
  }
  if (handover_seen_ && handover_seen_->first > ack_wanted_) {
    ack_wanted_ = handover_seen_->first;
    ack_due_ = true;
    wake_.notify_all();
  }
}

void TopologyWatcher::EtcdCheckLoop() {
  MutexLock lock(mutex_);
  while (!stopping_) {
    ack_due_ = false;
    int64_t acknowledged = ack_wanted_;
    std::string name = settings_->name;
    lock.unlock();
    auto pinged = source_.Ping();
    // This router's key, every interval: the write is skipped while the key is current, and
    // restores it when the lease was lost.
    std::optional<pgha::Status> kept;
    if (pinged.ok() && !name.empty()) {
      kept = source_.PublishRouter(name, model::EncodeRouterPresence({name, acknowledged}));
    }
    lock.lock();
    bool reachable = pinged.ok();
    if (reachable) {
      status_.last_dcs_ok = clock_.Now();
    }
    if (reachable != dcs_reachable_) {
      if (reachable) {
        PGHA_LOG_INFO("etcd answers again; routing by its keys");
      } else {
        PGHA_LOG_WARN(
            "etcd does not answer ({}); keeping the last leader and replicas only while their "
            "REST API vouches for them",
            pinged.error().message());
      }
      dcs_reachable_ = reachable;
      changed_ = true;
      wake_.notify_all();
    }
    if (kept) {
      NoteRouterKey(*kept, acknowledged);  // a failure is written again at the next round
    }
    WaitFor(lock, settings_->check_interval, &ack_due_);
  }
}

void TopologyWatcher::NoteRouterKey(const pgha::Status& kept, int64_t acknowledged) {
  if (!kept.ok()) {
    PGHA_LOG_WARN("could not write this router's key in etcd: {}", kept.error().message());
    return;
  }
  if (acknowledged != ack_written_ && acknowledged != 0) {
    ++status_.handovers_acknowledged;
    PGHA_LOG_INFO("acknowledged the leader's handover notice (revision {})", acknowledged);
  }
  ack_written_ = acknowledged;
}

void TopologyWatcher::MemberCheckLoop() {
  MutexLock lock(mutex_);
  while (!stopping_) {
    std::vector<std::pair<std::string, std::string>> targets;  // name, api_url
    std::string leader;
    if (cluster_) {
      leader = cluster_->leader ? cluster_->leader->name : "";
      for (const auto& member : cluster_->members) {
        if (!member.api_url().empty()) {
          targets.emplace_back(member.name, member.api_url());
        }
      }
    }
    lock.unlock();
    std::vector<std::future<bool>> answers;
    for (const auto& [name, url] : targets) {
      std::string path = name == leader ? "/primary" : "/replica";
      answers.push_back(std::async(
          std::launch::async, [this, url = url, path] { return checker_.Answers200(url, path); }));
    }
    std::map<std::string, ProbeAnswer> results;
    for (size_t i = 0; i < targets.size(); ++i) {
      bool ok = answers[i].get();
      ProbeAnswer answer;
      (targets[i].first == leader ? answer.primary_ok : answer.replica_ok) = ok;
      results[targets[i].first] = answer;
    }
    lock.lock();
    MonoTime now = clock_.Now();
    bool differs = false;
    for (const auto& [name, answer] : results) {
      auto it = probes_.find(name);
      differs = differs || it == probes_.end() ||
                it->second.first.primary_ok != answer.primary_ok ||
                it->second.first.replica_ok != answer.replica_ok;
      probes_[name] = {answer, now};
    }
    if (differs) {
      changed_ = true;
      wake_.notify_all();
    }
    WaitFor(lock, settings_->check_interval, &recheck_);
    recheck_ = false;
  }
}

}  // namespace pgha::router
