// router::TopologyWatcher with a fake etcd and fake REST answers: changes reach the proxy's
// callback, a failing ping hands the decision to the REST checks, an announced switchover holds
// writes for its bounded time. Real threads and short intervals, hence the process label.
#include "router/topology.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

namespace pgha::router {
namespace {

using std::chrono::milliseconds;

class FakeSource final : public ClusterSource {
 public:
  Result<model::ClusterSnapshot> CachedCluster() override {
    std::lock_guard lock(mutex_);
    return cluster_;
  }
  Status Ping() override {
    std::lock_guard lock(mutex_);
    if (reachable_) {
      return OkStatus();
    }
    return Error::Unavailable("etcd frozen");
  }
  MonoTime LastChangeAt() override {
    std::lock_guard lock(mutex_);
    return changed_at_;
  }
  void SetChangeListener(std::function<void()> on_change) override {
    std::lock_guard lock(mutex_);
    listener_ = std::move(on_change);
  }
  // A watch event: the new cluster, then the listener, as Etcd3Dcs does.
  void Publish(model::ClusterSnapshot cluster) {
    std::function<void()> listener;
    {
      std::lock_guard lock(mutex_);
      cluster_ = std::move(cluster);
      changed_at_ = std::chrono::steady_clock::now();
      listener = listener_;
    }
    if (listener) listener();
  }
  void SetReachable(bool reachable) {
    std::lock_guard lock(mutex_);
    reachable_ = reachable;
  }
  Status PublishRouter(const std::string& name, const std::string& value) override {
    std::function<void(const std::string&)> on_publish;
    {
      std::lock_guard lock(mutex_);
      routers_[name] = value;
      on_publish = on_publish_;
    }
    if (on_publish) on_publish(value);
    return OkStatus();
  }
  // What the router wrote last as `name`'s key; "" when nothing.
  std::string RouterKey(const std::string& name) {
    std::lock_guard lock(mutex_);
    return routers_.count(name) ? routers_[name] : "";
  }
  // Called with every value the router writes (before Start).
  void OnPublish(std::function<void(const std::string&)> on_publish) {
    std::lock_guard lock(mutex_);
    on_publish_ = std::move(on_publish);
  }

 private:
  std::mutex mutex_;  // guards the members below
  model::ClusterSnapshot cluster_;
  bool reachable_ = true;
  MonoTime changed_at_{};
  std::function<void()> listener_;
  std::map<std::string, std::string> routers_;
  std::function<void(const std::string&)> on_publish_;
};

class FakeChecker final : public MemberChecker {
 public:
  bool Answers200(const std::string& api_url, const std::string& path) override {
    std::lock_guard lock(mutex_);
    ++calls_;
    return ok_.count(api_url + path) > 0;
  }
  int calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  void Set(const std::string& url_and_path, bool ok) {
    std::lock_guard lock(mutex_);
    if (ok)
      ok_.insert(url_and_path);
    else
      ok_.erase(url_and_path);
  }

 private:
  std::mutex mutex_;  // guards ok_ and calls_
  std::set<std::string> ok_;
  int calls_ = 0;
};

model::Member Member(const std::string& name, const std::string& role, int port) {
  model::Member m;
  m.name = name;
  m.data = {{"role", role},
            {"state", "running"},
            {"conn_url", "postgres://127.0.0.1:" + std::to_string(port) + "/postgres"},
            {"api_url", "http://127.0.0.1:" + std::to_string(port + 1000) + "/patroni"}};
  return m;
}

model::ClusterSnapshot LedBy(const std::string& leader) {
  model::ClusterSnapshot c;
  c.leader = model::Leader{leader, 1, 1};
  c.members = {Member("pg-0", leader == "pg-0" ? "master" : "replica", 5432),
               Member("pg-1", leader == "pg-1" ? "master" : "replica", 5433)};
  return c;
}

class Recorder {
 public:
  void operator()(const Routes& routes) {
    std::lock_guard lock(mutex_);
    last_ = routes;
  }
  // Waits up to `timeout` for routes matching `wanted`.
  Routes Last() {
    std::lock_guard lock(mutex_);
    return last_;
  }
  bool Eventually(const std::function<bool(const Routes&)>& wanted,
                  milliseconds timeout = milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mutex_);
        if (wanted(last_)) return true;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }

 private:
  std::mutex mutex_;  // guards last_
  Routes last_;
};

std::function<bool(const Routes&)> PrimaryIs(const std::string& member) {
  return [member](const Routes& r) { return r.primary && r.primary->member == member; };
}

std::shared_ptr<const RouterSettings> Fast() {
  RouterSettings s;
  s.check_interval = milliseconds(50);
  s.switchover_hold = milliseconds(300);
  return std::make_shared<const RouterSettings>(s);
}

TEST(TopologyWatcherTest, AWatchEventReachesTheProxyAtOnce) {
  FakeSource source;
  FakeChecker checker;
  Recorder applied;
  source.Publish(LedBy("pg-0"));
  TopologyWatcher watcher(source, checker, SystemClock::Instance(), Fast(),
                          [&applied](const Routes& r) { applied(r); });
  watcher.Start();
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-0")));
  auto before = watcher.Status();
  source.Publish(LedBy("pg-1"));
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-1"), milliseconds(500)));
  auto status = watcher.Status();
  EXPECT_EQ(status.primary_changes, before.primary_changes + 1);
  EXPECT_GE(status.apply_delay_count, 1);
  EXPECT_LT(status.last_apply_delay_seconds, 0.5);
  EXPECT_TRUE(status.dcs_reachable);
  watcher.Stop();
}

TEST(TopologyWatcherTest, WithEtcdAwayTheRestChecksDecide) {
  FakeSource source;
  FakeChecker checker;
  Recorder applied;
  source.Publish(LedBy("pg-0"));
  checker.Set("http://127.0.0.1:6432/patroni/primary", true);
  checker.Set("http://127.0.0.1:6433/patroni/replica", true);
  TopologyWatcher watcher(source, checker, SystemClock::Instance(), Fast(),
                          [&applied](const Routes& r) { applied(r); });
  watcher.Start();
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-0")));
  source.SetReachable(false);
  ASSERT_TRUE(applied.Eventually([](const Routes& r) {
    return !r.from_dcs && r.primary && r.primary->member == "pg-0" && r.replicas.size() == 1;
  }));
  EXPECT_FALSE(watcher.Status().dcs_reachable);
  checker.Set("http://127.0.0.1:6432/patroni/primary", false);  // it demoted itself
  ASSERT_TRUE(applied.Eventually([](const Routes& r) { return !r.primary; }));
  source.SetReachable(true);
  ASSERT_TRUE(applied.Eventually([](const Routes& r) { return r.from_dcs && r.primary; }));
  watcher.Stop();
}

TEST(TopologyWatcherTest, AnAnnouncedSwitchoverHoldsWritesOnlyForItsBound) {
  FakeSource source;
  FakeChecker checker;
  Recorder applied;
  source.Publish(LedBy("pg-0"));
  TopologyWatcher watcher(source, checker, SystemClock::Instance(), Fast(),
                          [&applied](const Routes& r) { applied(r); });
  watcher.Start();
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-0")));
  auto announced = LedBy("pg-0");
  model::Failover failover;
  failover.mod_revision = 7;
  failover.leader = "pg-0";
  failover.candidate = "pg-1";
  announced.failover = failover;
  source.Publish(announced);
  ASSERT_TRUE(applied.Eventually(
      [](const Routes& r) { return !r.primary && r.no_primary_reason == "switchover in progress"; },
      milliseconds(500)));
  // The leader never acts on it: after switchover_hold (300 ms) writes go to it again.
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-0"), milliseconds(2000)));
  watcher.Stop();
}

TEST(TopologyWatcherTest, AHandoverNoticeIsAcknowledgedOnceWritesAreHeld) {
  FakeSource source;
  FakeChecker checker;
  Recorder applied;
  source.Publish(LedBy("pg-0"));
  RouterSettings settings = *Fast();
  settings.name = "router-t";
  settings.switchover_hold = milliseconds(5000);
  // What the proxy held when each acknowledgement went out.
  std::mutex seen_mutex;
  std::vector<std::pair<int64_t, bool>> acknowledged_with_primary;
  source.OnPublish([&](const std::string& value) {
    int64_t acknowledged = nlohmann::json::parse(value).value("acknowledged", int64_t{-1});
    std::lock_guard lock(seen_mutex);
    acknowledged_with_primary.emplace_back(acknowledged, applied.Last().primary.has_value());
  });
  TopologyWatcher watcher(source, checker, SystemClock::Instance(),
                          std::make_shared<const RouterSettings>(settings),
                          [&applied](const Routes& r) { applied(r); });
  watcher.Start();
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-0")));
  auto key = [&source] {
    auto value = source.RouterKey("router-t");
    return value.empty() ? int64_t{-1} : nlohmann::json::parse(value).value("acknowledged", -1);
  };
  for (int i = 0; i < 100 && key() != 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(key(), 0) << "the router's key is written before any notice";

  auto announced = LedBy("pg-0");
  model::HandoverNotice notice;
  notice.leader = "pg-0";
  notice.candidate = "pg-1";
  notice.mod_revision = 9;
  announced.handover = notice;
  source.Publish(announced);
  ASSERT_TRUE(applied.Eventually(
      [](const Routes& r) {
        return !r.primary && r.no_primary_reason == "leader pg-0 announced a switchover";
      },
      milliseconds(500)));
  for (int i = 0; i < 100 && key() != 9; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(key(), 9);
  {
    std::lock_guard lock(seen_mutex);
    for (const auto& [revision, primary] : acknowledged_with_primary) {
      if (revision == 9) {
        EXPECT_FALSE(primary) << "acknowledged while new writes still went to the old primary";
      }
    }
  }
  EXPECT_EQ(watcher.Status().handovers_acknowledged, 1);
  // The new leader: writes go to it at once, the notice of pg-0 notwithstanding.
  auto moved = LedBy("pg-1");
  moved.handover = notice;
  source.Publish(moved);
  ASSERT_TRUE(applied.Eventually(PrimaryIs("pg-1"), milliseconds(500)));
  watcher.Stop();
}

TEST(TopologyWatcherTest, ARefusedConnectionChecksTheMembersAtOnce) {
  FakeSource source;
  FakeChecker checker;
  Recorder applied;
  source.Publish(LedBy("pg-0"));
  checker.Set("http://127.0.0.1:6433/patroni/replica", true);
  RouterSettings slow;
  slow.check_interval = milliseconds(5000);
  TopologyWatcher watcher(source, checker, SystemClock::Instance(),
                          std::make_shared<const RouterSettings>(slow),
                          [&applied](const Routes& r) { applied(r); });
  watcher.Start();
  ASSERT_TRUE(applied.Eventually([](const Routes& r) { return r.replicas.size() == 1; }));
  checker.Set("http://127.0.0.1:6433/patroni/replica", false);  // pg-1 died
  watcher.RecheckMembers();  // what the proxy calls when pg-1 refuses a client
  // Well before the 5 s interval, pg-1 is out of the read port.
  EXPECT_TRUE(
      applied.Eventually([](const Routes& r) { return r.replicas.empty(); }, milliseconds(1000)));
  watcher.Stop();
}

}  // namespace
}  // namespace pgha::router
