// The health-check family answers as Patroni 3.0.2 did on a leader and a replica
// (tests/compat/patroni-3.0.2/initial-rest-*.txt), status code for status code.
#include "api/health.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "fakes/compat_data.h"
#include "ha/peer_client.h"

namespace pgha::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

using testing::Exchange;
using testing::ReadExchanges;

Request Req(std::string method, std::string path,
            std::multimap<std::string, std::string> query = {}) {
  Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

Request ToRequest(const Exchange& e) {
  Request r;
  r.method = e.method;
  size_t q = e.target.find('?');
  r.path = e.target.substr(0, q);
  if (q != std::string::npos) {
    std::string query = e.target.substr(q + 1);
    size_t eq = query.find('=');
    r.query.emplace(query.substr(0, eq), query.substr(eq + 1));
  }
  return r;
}

model::NodeStatus Leader() {
  model::NodeStatus s;
  s.scope = "pg-ha";
  s.name = "pg-0";
  s.version = "3.0.2";
  s.state = "running";
  s.role = "master";
  s.postgres_running = true;
  s.has_lock = true;
  s.postmaster_start_time = "2026-11-25 19:41:14.467641+00:00";
  s.server_version = 150020;
  s.wal_position = 67288520;
  s.timeline = 1;
  s.replication = json::array({{{"usename", "replicator"}, {"application_name", "pg-1"}}});
  s.sysid = "7712196491986988846";
  s.dcs_last_seen = 1795635704;
  s.cluster_optime = 67288520;
  return s;
}

model::NodeStatus Replica() {
  model::NodeStatus s = Leader();
  s.name = "pg-1";
  s.role = "replica";
  s.has_lock = false;
  s.in_recovery = true;
  s.received_location = 67288520;
  s.replayed_location = 67288520;
  s.replayed_timestamp = "2026-11-25 19:41:28.555123+00:00";
  s.replication_state = "streaming";
  s.replication = json::array();
  return s;
}

// Endpoints that belong to later work (cluster view, config, metrics).
bool NotHealthCheck(const std::string& target) {
  return target == "/cluster" || target == "/history" || target == "/config" ||
         target == "/metrics";
}

void ExpectSameCodes(const std::string& file, const model::NodeStatus& status) {
  auto exchanges = ReadExchanges(file);
  ASSERT_GT(exchanges.size(), 20u);
  for (const auto& e : exchanges) {
    if (NotHealthCheck(e.target)) {
      continue;
    }
    Reply reply = Handle(ToRequest(e), status);
    EXPECT_EQ(reply.status, e.status) << file << ": " << e.method << " " << e.target;
    if (e.method != "GET") {
      EXPECT_TRUE(reply.body.empty()) << e.method << " " << e.target << " must be status-only";
    }
  }
}

TEST(HealthTest, LeaderAnswersAsPatroniDid) {
  ExpectSameCodes("initial-rest-leader.txt", Leader());
}

TEST(HealthTest, ReplicaAnswersAsPatroniDid) {
  ExpectSameCodes("initial-rest-replica.txt", Replica());
}

TEST(HealthTest, SynchronousStandbyChecksFollowTheSyncKey) {
  auto sync = Replica();
  sync.sync_standby = true;
  auto async = Replica();
  for (const char* path : {"/sync", "/synchronous", "/read-only-sync", "/read-only-synchronous"}) {
    EXPECT_EQ(Handle(Req("GET", path), sync).status, 200) << path;
    EXPECT_EQ(Handle(Req("GET", path), async).status, 503) << path;
  }
  for (const char* path : {"/async", "/asynchronous"}) {
    EXPECT_EQ(Handle(Req("GET", path), sync).status, 503) << path;
    EXPECT_EQ(Handle(Req("GET", path), async).status, 200) << path;
  }
  EXPECT_EQ(Handle(Req("GET", "/read-only-sync"), Leader()).status, 200);
  EXPECT_EQ(Handle(Req("GET", "/sync"), Leader()).status, 503);
  EXPECT_THAT(Handle(Req("GET", "/patroni"), sync).body, HasSubstr("\"sync_standby\": true"));
  EXPECT_THAT(Handle(Req("GET", "/patroni"), async).body, Not(HasSubstr("sync_standby")));
}

std::set<std::string> Keys(const std::string& body) {
  std::set<std::string> keys;
  json parsed = json::parse(body);  // items() must not outlive the parsed value
  for (const auto& [k, v] : parsed.items()) {
    keys.insert(k);
  }
  return keys;
}

TEST(HealthTest, PatroniBodyHasPatronisFields) {
  for (const auto& [file, status] :
       {std::pair{std::string("initial-rest-leader.txt"), Leader()},
        std::pair{std::string("initial-rest-replica.txt"), Replica()}}) {
    for (const auto& e : ReadExchanges(file)) {
      if (e.method == "GET" && e.target == "/patroni") {
        Reply reply = Handle(ToRequest(e), status);
        // Every field Patroni 3.0.2 sent, plus only fields Patroni 4.x added.
        const std::set<std::string> kLaterAdditions = {"replication_state"};
        auto ours_keys = Keys(reply.body);
        for (const auto& key : Keys(e.body)) {
          EXPECT_TRUE(ours_keys.count(key)) << file << ": missing " << key;
        }
        for (const auto& key : ours_keys) {
          EXPECT_TRUE(Keys(e.body).count(key) || kLaterAdditions.count(key))
              << file << ": unexpected " << key << "\nours:   " << reply.body;
        }
        json ours = json::parse(reply.body);
        json theirs = json::parse(e.body);
        EXPECT_EQ(ours["xlog"].size(), theirs["xlog"].size());
        EXPECT_EQ(ours["role"], theirs["role"]);
        EXPECT_EQ(ours["patroni"]["version"], theirs["patroni"]["version"]);
      }
    }
  }
}

TEST(HealthTest, DeliberateDifferencesFromPatroni) {
  // PostgreSQL down under a live agent that holds the lock: Patroni 3.0.2 kept /primary at 200.
  auto down = Leader();
  down.postgres_running = false;
  down.state = "crashed";
  EXPECT_EQ(Handle(Req("OPTIONS", "/primary", {}), down).status, 503);
  EXPECT_EQ(Handle(Req("GET", "/leader", {}), down).status, 200);
  EXPECT_EQ(Handle(Req("GET", "/health", {}), down).status, 503);
}

TEST(HealthTest, ReplicaFilters) {
  auto s = Replica();
  s.cluster_optime = 67288520 + 2 * 1024 * 1024;  // 2 MB behind the leader
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"lag", "1MB"}}), s).status, 503);
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"lag", "4MB"}}), s).status, 200);
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"replication_state", "streaming"}}), s).status, 200);
  EXPECT_EQ(
      Handle(Req("GET", "/replica", {{"replication_state", "in archive recovery"}}), s).status,
      503);
  s.tags = {{"zone", "a"}, {"nofailover", true}};
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"tag_zone", "a"}}), s).status, 200);
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"tag_zone", "b"}}), s).status, 503);
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"tag_nofailover", "true"}}), s).status, 200);
  EXPECT_EQ(Handle(Req("GET", "/replica", {{"tag_missing", "x"}}), s).status, 503);
  s.tags = {{"noloadbalance", true}};
  EXPECT_EQ(Handle(Req("GET", "/replica", {}), s).status, 503);
  EXPECT_EQ(Handle(Req("GET", "/readiness", {{"lag", "1MB"}}), Replica()).status, 200);
}

TEST(HealthTest, LivenessFollowsTheLoop) {
  auto s = Leader();
  s.ttl = 30;
  s.seconds_since_cycle = 31;
  EXPECT_EQ(Handle(Req("GET", "/liveness", {}), s).status, 503);
  s.paused = true;
  EXPECT_EQ(Handle(Req("GET", "/liveness", {}), s).status, 200);
  auto r = Replica();
  r.ttl = 30;
  r.seconds_since_cycle = 45;  // replicas get 2 * ttl
  EXPECT_EQ(Handle(Req("GET", "/liveness", {}), r).status, 200);
}

TEST(HealthTest, UnknownPathsAndMethods) {
  EXPECT_EQ(Handle(Req("GET", "/nonsense", {}), Leader()).status, 503);
  EXPECT_FALSE(Handle(Req("GET", "/nonsense", {}), Leader()).body.empty());
  EXPECT_EQ(Handle(Req("POST", "/primary", {}), Leader()).status, 501);
}

TEST(PeerStatusTest, ReadsPatronisOwnBodies) {
  for (const auto& e : ReadExchanges("initial-rest-leader.txt")) {
    if (e.target == "/patroni") {
      auto peer = ha::PeerStatusFromJson("pg-0", e.body);
      EXPECT_TRUE(peer.reachable);
      EXPECT_TRUE(peer.is_primary);
      EXPECT_TRUE(peer.running);
      EXPECT_EQ(peer.wal_position, 67288520u);
      EXPECT_EQ(peer.timeline, 1);
    }
  }
  for (const auto& e : ReadExchanges("initial-rest-replica.txt")) {
    if (e.target == "/patroni") {
      auto peer = ha::PeerStatusFromJson("pg-1", e.body);
      EXPECT_FALSE(peer.is_primary);
      EXPECT_EQ(peer.wal_position, 67288520u);
    }
  }
  auto tagged = ha::PeerStatusFromJson(
      "x",
      R"({"state":"running","role":"replica","xlog":{"received_location":5,"replayed_location":9},"tags":{"nofailover":"true"}})");
  EXPECT_EQ(tagged.wal_position, 9u);
  EXPECT_TRUE(tagged.nofailover);
  EXPECT_EQ(tagged.failover_priority, 0);
  EXPECT_FALSE(ha::PeerStatusFromJson("x", "<html>").reachable);
  EXPECT_FALSE(ha::PeerStatusFromJson("x", "[1]").reachable);
}

}  // namespace
}  // namespace pgha::api
