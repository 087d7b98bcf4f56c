// The REST API beyond the health checks: /cluster, /history and /config answer with the JSON a
// Patroni 3.0.2 cluster gave for the same DCS contents, and unsafe methods are guarded as
// Patroni's check_access guards them.
#include "api/rest_api.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/strings.h"
#include "common/time_format.h"
#include "fakes/compat_data.h"
#include "model/cluster_view.h"
#include "model/codec.h"

namespace pgha::api {
namespace {

using nlohmann::json;

ApiState StateFromDump(const std::string& dump) {
  ApiState state;
  state.node.scope = "pg-ha";
  state.cluster = std::make_shared<const model::ClusterSnapshot>(
      model::BuildSnapshot(testing::ReadDcsDump(dump), 100));
  return state;
}

Request Get(const std::string& path) {
  Request r;
  r.method = "GET";
  r.path = path;
  return r;
}

Request Unsafe(const std::string& method, const std::string& path, const std::string& body = "",
               bool with_length = true) {
  Request r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.remote_addr = "127.0.0.1";
  if (with_length) {
    r.headers["content-length"] = std::to_string(body.size());
  }
  return r;
}

struct GoldenCase {
  const char* dump;
  const char* rest;
};

class GoldenReadEndpoints : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(GoldenReadEndpoints, ClusterHistoryAndConfigMatchPatroni) {
  ApiState state = StateFromDump(GetParam().dump);
  for (const char* path : {"/cluster", "/history", "/config"}) {
    std::string golden = testing::GoldenBody(GetParam().rest, path);
    ASSERT_FALSE(golden.empty()) << path;
    Reply reply = HandleRequest(Get(path), state, {});
    EXPECT_EQ(reply.status, 200) << path;
    json ours = json::parse(reply.body);
    if (std::string(path) == "/cluster") {
      // "scope" is a Patroni 4.x addition; everything 3.0.2 sent must be identical.
      EXPECT_EQ(ours["scope"], "pg-ha");
      ours.erase("scope");
    }
    EXPECT_EQ(ours, json::parse(golden)) << path;
  }
}

INSTANTIATE_TEST_SUITE_P(Patroni302, GoldenReadEndpoints,
                         ::testing::Values(GoldenCase{"initial-dcs.txt", "initial-rest-leader.txt"},
                                           GoldenCase{"after-failover-dcs.txt",
                                                      "after-failover-rest-leader.txt"}));

TEST(RestApiTest, ClusterViewMarksPauseSyncAndUnknownLag) {
  model::ClusterSnapshot cluster;
  cluster.leader = model::Leader{"a", 1, 1};
  cluster.config = model::ClusterConfig{1, model::GlobalConfig(json{{"pause", true}})};
  cluster.sync = model::SyncState{1, "a", {"b"}, 0};
  cluster.status.optime = 1000;
  cluster.members.push_back({"a", 1, 1, {{"state", "running"}, {"role", "master"}}});
  cluster.members.push_back(
      {"b", 1, 1, {{"state", "running"}, {"xlog_location", 400}, {"tags", {{"zone", "x"}}}}});
  cluster.members.push_back({"c", 1, 1, {{"state", "starting"}}});
  model::Failover failover;
  failover.leader = "a";
  failover.candidate = "b";
  failover.scheduled_at = WallTime{};
  failover.scheduled_at_text = "2026-11-26T10:00:00+00:00";
  cluster.failover = failover;
  json view = model::ClusterAsJson(cluster);
  EXPECT_EQ(view["members"][0]["role"], "leader");
  EXPECT_FALSE(view["members"][0].contains("lag"));
  EXPECT_EQ(view["members"][1]["role"], "sync_standby");
  EXPECT_EQ(view["members"][1]["lag"], 600);
  EXPECT_EQ(view["members"][1]["tags"]["zone"], "x");
  EXPECT_EQ(view["members"][2]["lag"], "unknown");
  EXPECT_EQ(view["pause"], true);
  EXPECT_EQ(view["scheduled_switchover"],
            json({{"at", "2026-11-26T10:00:00+00:00"}, {"from", "a"}, {"to", "b"}}));
}

TEST(RestApiTest, ReadEndpointsWithoutDcsData) {
  ApiState empty;
  EXPECT_EQ(HandleRequest(Get("/cluster"), empty, {}).status, 503);
  EXPECT_EQ(HandleRequest(Get("/history"), empty, {}).body, "[]");
  EXPECT_EQ(HandleRequest(Get("/config"), empty, {}).status, 502);
  // The health checks still answer from the node's own status.
  EXPECT_EQ(HandleRequest(Get("/patroni"), empty, {}).status, 200);
  EXPECT_EQ(HandleRequest(Get("/primary"), empty, {}).status, 503);
}

AccessPolicy PasswordPolicy() {
  AccessPolicy policy;
  policy.authentication = config::BasicAuth{"admin", "s3cret"};
  return policy;
}

TEST(RestApiTest, UnsafeMethodsNeedCredentials) {
  ApiState state = StateFromDump("initial-dcs.txt");
  Request request = Unsafe("POST", "/failover", R"({"candidate": "pg-1"})");
  Reply reply = HandleRequest(request, state, PasswordPolicy());
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(reply.headers["WWW-Authenticate"], "Basic realm=\"Patroni\"");
  EXPECT_EQ(reply.content_type, "text/plain");
  EXPECT_FALSE(reply.body.empty());

  request.headers["authorization"] = "Basic " + Base64Encode("admin:wrong");
  EXPECT_EQ(HandleRequest(request, state, PasswordPolicy()).status, 401);
  request.headers["authorization"] = "Basic " + Base64Encode("admin:s3cret1");
  EXPECT_EQ(HandleRequest(request, state, PasswordPolicy()).status, 401);
  request.headers["authorization"] = "Bearer abc";
  EXPECT_EQ(HandleRequest(request, state, PasswordPolicy()).status, 401);
  request.headers["authorization"] = "Basic !!!not-base64";
  EXPECT_EQ(HandleRequest(request, state, PasswordPolicy()).status, 401);
  request.headers["authorization"] = "Basic " + Base64Encode("admin:s3cret");
  // Authorised and well-formed: on to the controller, which this test does not give.
  EXPECT_EQ(HandleRequest(request, state, PasswordPolicy()).status, 503);

  // Reads are never password-protected.
  EXPECT_EQ(HandleRequest(Get("/cluster"), state, PasswordPolicy()).status, 200);
  EXPECT_EQ(HandleRequest(Get("/primary"), state, PasswordPolicy()).status, 503);
}

TEST(RestApiTest, BodiesAreValidatedAfterAccess) {
  ApiState state;
  AccessPolicy open;
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/switchover", "{not json"), state, open).status, 400);
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/switchover", "[1,2]"), state, open).status, 400);
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/switchover", "{}"), state, open).status, 400);
  EXPECT_EQ(HandleRequest(Unsafe("PATCH", "/config", "", false), state, open).status, 411);
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/reload", "", false), state, open).status, 503);
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/restart", "\xff\xfe"), state, open).status, 400);
  // Unknown endpoints are refused before access control, as in Patroni.
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/nonsense", "{}"), state, PasswordPolicy()).status, 501);
  EXPECT_EQ(HandleRequest(Unsafe("DELETE", "/config"), state, PasswordPolicy()).status, 501);
  // Credentials are checked before the body is read.
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/switchover", "{bad"), state, PasswordPolicy()).status,
            401);
}

TEST(RestApiTest, AllowlistAndClientCertificates) {
  ApiState state = StateFromDump("initial-dcs.txt");
  AccessPolicy policy;
  policy.allowlist.push_back(*ParseNetwork("10.0.0.0/8"));
  Request request = Unsafe("POST", "/reload");
  request.remote_addr = "192.168.1.5";
  EXPECT_EQ(HandleRequest(request, state, policy).status, 403);
  request.remote_addr = "10.1.2.3";
  EXPECT_EQ(HandleRequest(request, state, policy).status, 503);
  request.remote_addr = "::ffff:10.1.2.3";
  EXPECT_EQ(HandleRequest(request, state, policy).status, 503);

  // Members of the cluster (hosts of their api_url / conn_url) are let in when asked.
  policy.allowlist_include_members = true;
  request.remote_addr = "127.0.0.1";
  EXPECT_EQ(HandleRequest(request, state, policy).status, 503);
  request.remote_addr = "127.0.0.2";
  EXPECT_EQ(HandleRequest(request, state, policy).status, 403);

  AccessPolicy certs;
  certs.require_client_cert = true;
  request.remote_addr = "127.0.0.1";
  EXPECT_EQ(HandleRequest(request, state, certs).status, 403);
  request.client_cert_verified = true;
  EXPECT_EQ(HandleRequest(request, state, certs).status, 503);
}

class FakeController : public Controller {
 public:
  Result<model::ClusterSnapshot> ReadCluster() override { return cluster; }
  Result<bool> WriteConfig(const std::string& value, int64_t mod_revision) override {
    int64_t current = cluster.config ? cluster.config->mod_revision : 0;
    if (mod_revision != current) {
      return false;
    }
    cluster.config = model::ClusterConfig{current + 1, model::GlobalConfig(json::parse(value))};
    return true;
  }
  Status RestartPostgres(std::chrono::seconds timeout) override {
    ++restarts;
    last_timeout = timeout;
    return restart_result;
  }
  Status Reinitialize(bool force, bool leader_only) override {
    forced = force;
    from_leader = leader_only;
    ++reinits;
    return reinit_result;
  }
  Result<bool> WriteFailover(const std::string& value,
                             std::optional<int64_t> mod_revision) override {
    failover_writes.push_back(value);
    if (mod_revision && (!cluster.failover || cluster.failover->mod_revision != *mod_revision)) {
      return false;
    }
    auto decoded = model::DecodeFailover(value);
    cluster.failover = decoded.ok() ? *decoded : std::nullopt;
    if (cluster.failover) {
      cluster.failover->mod_revision = 50;
    }
    if (leader_after_failover) {
      cluster.leader = model::Leader{*leader_after_failover, 60, 0};
      cluster.failover.reset();
    }
    return true;
  }
  std::vector<ha::PeerStatus> FetchStatuses(const std::vector<model::Member>& members) override {
    std::vector<ha::PeerStatus> out;
    for (const auto& m : members) {
      ha::PeerStatus peer;
      peer.name = m.name;
      peer.reachable = !unreachable.contains(m.name);
      peer.running = true;
      auto at = wal_positions.find(m.name);
      peer.wal_position = at != wal_positions.end() ? at->second : 0;
      out.push_back(peer);
    }
    return out;
  }
  Status Reload() override {
    ++reloads;
    return OkStatus();
  }
  void AcceptFailsafeLeader(const std::string& name, const std::string&, const std::string& api_url,
                            const std::map<std::string, uint64_t>& slots) override {
    failsafe_leader = name + " " + api_url;
    failsafe_slots = slots;
  }
  std::map<std::string, uint64_t> failsafe_slots;
  Status ScheduleRestart(WallTime at, const json& shown, const model::RestartConditions& c,
                         std::chrono::seconds) override {
    if (scheduled_at) {
      return Error::Conflict("Another restart is already scheduled");
    }
    scheduled_at = at;
    scheduled_shown = shown;
    scheduled_conditions = c;
    return OkStatus();
  }
  bool CancelScheduledRestart() override {
    bool had = scheduled_at.has_value();
    scheduled_at.reset();
    return had;
  }
  std::optional<WallTime> scheduled_at;
  json scheduled_shown;
  model::RestartConditions scheduled_conditions;
  WallTime Now() override { return now; }
  void Sleep(std::chrono::milliseconds) override { ++sleeps; }
  model::ClusterSnapshot cluster;
  std::vector<std::string> failover_writes;
  std::optional<std::string> leader_after_failover;  // the lock moves when the key is written
  std::set<std::string> unreachable;
  std::map<std::string, uint64_t> wal_positions;  // 0 (unknown) when not listed
  WallTime now = *ParseIsoTimestamp("2026-11-26T10:00:00+00:00");
  int sleeps = 0;
  int reloads = 0;
  std::string failsafe_leader;
  int reinits = 0;
  bool forced = false;
  bool from_leader = false;
  Status reinit_result = OkStatus();
  int restarts = 0;
  std::chrono::seconds last_timeout{0};
  Status restart_result = OkStatus();
};

TEST(RestApiTest, PatchConfigMergesValidatesAndCasWrites) {
  FakeController dcs;
  dcs.cluster = model::BuildSnapshot(testing::ReadDcsDump("initial-dcs.txt"), 100);
  int64_t revision = dcs.cluster.config->mod_revision;
  ApiState state;
  AccessPolicy open;
  Reply reply = HandleRequest(
      Unsafe("PATCH", "/config",
             R"({"pause": true, "ttl": 40, "postgresql": {"parameters": {"work_mem": "8MB",
                 "wal_keep_size": null}}})"),
      state, open, &dcs);
  ASSERT_EQ(reply.status, 200) << reply.body;
  json written = dcs.cluster.config->data.raw();
  EXPECT_EQ(json::parse(reply.body), written);
  EXPECT_EQ(written["pause"], true);
  EXPECT_EQ(written["ttl"], 40);
  EXPECT_EQ(written["loop_wait"], 10);  // untouched keys stay
  EXPECT_EQ(written["postgresql"]["parameters"]["work_mem"], "8MB");
  EXPECT_FALSE(written["postgresql"]["parameters"].contains("wal_keep_size"));  // null deletes
  EXPECT_EQ(written["postgresql"]["parameters"]["max_connections"], 100);
  EXPECT_EQ(dcs.cluster.config->mod_revision, revision + 1);

  // A value of the wrong type is refused with the key, and nothing is written.
  reply = HandleRequest(Unsafe("PATCH", "/config", R"({"loop_wait": "abc"})"), state, open, &dcs);
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(reply.body.find("loop_wait"), std::string::npos) << reply.body;
  EXPECT_EQ(dcs.cluster.config->mod_revision, revision + 1);
  // Timings that break loop_wait + 2*retry_timeout <= ttl are stored, as Patroni stores them
  // (`patronictl pause` must work whatever the timings); the agents adjust the ttl they use.
  reply = HandleRequest(Unsafe("PATCH", "/config", R"({"loop_wait": 30})"), state, open, &dcs);
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(dcs.cluster.config->data.raw()["loop_wait"], 30);
  EXPECT_EQ(dcs.cluster.config->mod_revision, revision + 2);
}

TEST(RestApiTest, PutConfigReplacesAndConflictsAre409) {
  FakeController dcs;
  ApiState state;
  AccessPolicy open;
  // PATCH needs an existing config; PUT creates one.
  EXPECT_EQ(HandleRequest(Unsafe("PATCH", "/config", R"({"ttl": 30})"), state, open, &dcs).status,
            503);
  Reply reply =
      HandleRequest(Unsafe("PUT", "/config", R"({"ttl": 30, "loop_wait": 10})"), state, open, &dcs);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(dcs.cluster.config->data.raw(), json({{"ttl", 30}, {"loop_wait", 10}}));

  // Somebody else writes between our read and our write.
  struct RacingController : FakeController {
    Result<bool> WriteConfig(const std::string&, int64_t) override { return false; }
  } racing;
  racing.cluster = dcs.cluster;
  EXPECT_EQ(
      HandleRequest(Unsafe("PATCH", "/config", R"({"ttl": 40})"), state, open, &racing).status,
      409);
  // Without a controller the node says it cannot.
  EXPECT_EQ(HandleRequest(Unsafe("PUT", "/config", R"({"ttl": 30})"), state, open).status, 503);
}

TEST(RestApiTest, RestartHonoursPatronisConditions) {
  FakeController node;
  ApiState state;
  state.node.has_lock = true;
  state.node.postgres_running = true;
  state.node.server_version = 150006;
  AccessPolicy open;
  auto restart = [&](const std::string& body) {
    return HandleRequest(Unsafe("POST", "/restart", body), state, open, &node);
  };
  Reply reply = restart("");
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "restarted successfully");
  EXPECT_EQ(node.restarts, 1);
  EXPECT_EQ(restart(R"({"role": "replica"})").status, 503);  // this node is the primary
  EXPECT_EQ(restart(R"({"role": "master", "timeout": 30})").status, 200);
  EXPECT_EQ(node.last_timeout, std::chrono::seconds(30));
  EXPECT_EQ(restart(R"({"restart_pending": true})").status, 503);  // nothing pending
  state.node.pending_restart_reason = {{"max_connections", {{"old_value", "100"}}}};
  EXPECT_EQ(restart(R"({"restart_pending": true})").status, 200);
  EXPECT_EQ(restart(R"({"postgres_version": "15.6"})").status, 503);  // not older than 15.6
  EXPECT_EQ(restart(R"({"postgres_version": "15.7"})").status, 200);
  EXPECT_EQ(restart(R"({"postgres_version": "9.6.24"})").status, 503);
  EXPECT_EQ(node.restarts, 4);
  // Bad filters are 400 and restart nothing.
  EXPECT_EQ(restart(R"({"role": "boss"})").status, 400);
  EXPECT_EQ(restart(R"({"postgres_version": "fifteen"})").status, 400);
  EXPECT_EQ(restart(R"({"postgres_version": "15"})").status, 400);
  EXPECT_EQ(restart(R"({"timeout": -1})").status, 400);
  EXPECT_EQ(restart(R"({"when": "now"})").body, "Unknown filter for the scheduled restart: when");
  EXPECT_EQ(node.restarts, 4);
  // restart_pending is read as Patroni reads it: the key asks for a pending restart whatever
  // its value ("True" in Patroni's acceptance suite, even false).
  state.node.pending_restart_reason = json::object();
  EXPECT_EQ(restart(R"({"restart_pending": "True"})").status, 503);  // nothing pending
  EXPECT_EQ(restart(R"({"restart_pending": false})").status, 503);
  EXPECT_EQ(node.restarts, 4);
  node.restart_result = Error::Unavailable("restart already in progress");
  reply = restart("{}");
  EXPECT_EQ(reply.status, 503);
  EXPECT_NE(reply.body.find("already in progress"), std::string::npos);
  EXPECT_EQ(HandleRequest(Unsafe("DELETE", "/restart"), state, open, &node).status, 404);
}

TEST(RestApiTest, ScheduledRestartIsKeptWithItsConditionsAndCanBeDeleted) {
  FakeController node;  // its clock: 2026-11-26T10:00:00Z
  ApiState state;
  AccessPolicy open;
  auto post = [&](const std::string& body) {
    return HandleRequest(Unsafe("POST", "/restart", body), state, open, &node);
  };
  Reply reply = post(R"({"schedule": "2026-11-26T12:00:00+01:00", "role": "replica",
                          "restart_pending": true})");
  EXPECT_EQ(reply.status, 202);
  EXPECT_EQ(reply.body, "Restart scheduled");
  ASSERT_TRUE(node.scheduled_at.has_value());
  EXPECT_EQ(*node.scheduled_at, *ParseIsoTimestamp("2026-11-26T11:00:00Z"));
  EXPECT_EQ(node.scheduled_conditions.role, "replica");
  EXPECT_TRUE(node.scheduled_conditions.restart_pending);
  EXPECT_EQ(node.scheduled_shown["schedule"], "2026-11-26T11:00:00.000000+00:00");
  EXPECT_EQ(node.restarts, 0);  // nothing now

  reply = post(R"({"schedule": "2026-11-26T13:00:00+00:00"})");
  EXPECT_EQ(reply.status, 409);
  EXPECT_EQ(post(R"({"schedule": "2026-11-26T09:00:00+00:00"})").status, 422);  // the past
  EXPECT_EQ(post(R"({"schedule": "2026-11-26T13:00:00"})").status, 400);        // no zone
  EXPECT_EQ(post(R"({"schedule": "soon"})").status, 422);

  reply = HandleRequest(Unsafe("DELETE", "/restart"), state, open, &node);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "scheduled restart deleted");
  EXPECT_EQ(HandleRequest(Unsafe("DELETE", "/restart"), state, open, &node).body,
            "no restarts are scheduled");

  state.node.paused = true;
  reply = post(R"({"schedule": "2026-11-26T13:00:00+00:00"})");
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.body.find("Can't schedule restart in the paused state"), std::string::npos);
}

TEST(RestApiTest, ReinitializeStartsOrSaysWhyNot) {
  FakeController node;
  ApiState state;
  AccessPolicy open;
  Reply reply =
      HandleRequest(Unsafe("POST", "/reinitialize", R"({"force": true})"), state, open, &node);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "reinitialize started");
  EXPECT_TRUE(node.forced);
  EXPECT_FALSE(node.from_leader);
  // Patroni reads the flags by Python's truth: 1 forces, 0 does not.
  node.forced = false;
  EXPECT_EQ(
      HandleRequest(Unsafe("POST", "/reinitialize", R"({"force": 1})"), state, open, &node).status,
      200);
  EXPECT_TRUE(node.forced);
  EXPECT_EQ(
      HandleRequest(Unsafe("POST", "/reinitialize", R"({"from-leader": true})"), state, open, &node)
          .status,
      200);
  EXPECT_TRUE(node.from_leader);
  EXPECT_FALSE(node.forced);
  node.reinit_result = Error::Unavailable("I am the leader, can not reinitialize");
  reply = HandleRequest(Unsafe("POST", "/reinitialize", "", false), state, open, &node);
  EXPECT_EQ(reply.status, 503);
  EXPECT_NE(reply.body.find("I am the leader"), std::string::npos);
  EXPECT_FALSE(node.forced);
  EXPECT_EQ(node.reinits, 4);
}

TEST(NetworkTest, ParsesAndMatches) {
  auto any4 = ParseNetwork("0.0.0.0/0");
  ASSERT_TRUE(any4.ok());
  EXPECT_TRUE(any4->Contains("8.8.8.8"));
  EXPECT_FALSE(any4->Contains("::1"));
  auto odd = ParseNetwork("192.168.1.128/25");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains("192.168.1.200"));
  EXPECT_FALSE(odd->Contains("192.168.1.100"));
  auto v6 = ParseNetwork("fe80::/10");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->Contains("fe80::1"));
  EXPECT_FALSE(v6->Contains("fec0::1"));
  EXPECT_TRUE(ParseNetwork(" ::1 ")->Contains("::1"));
  EXPECT_FALSE(ParseNetwork("10.0.0.0/33").ok());
  EXPECT_FALSE(ParseNetwork("10.0.0.0/x").ok());
  EXPECT_FALSE(ParseNetwork("db.example.com").ok());
  EXPECT_FALSE(ParseNetwork("").ok());
  EXPECT_FALSE(ParseNetwork("1.2.3.4")->Contains("not an ip"));
}

}  // namespace
}  // namespace pgha::api

namespace pgha::api {
namespace {

// POST /switchover, /failover and DELETE /switchover with Patroni's texts and status codes.
class FailoverApiTest : public ::testing::Test {
 protected:
  FailoverApiTest() {
    node.cluster = model::BuildSnapshot(testing::ReadDcsDump("initial-dcs.txt"), 100);
    leader = node.cluster.leader->name;
    for (const auto& m : node.cluster.members) {
      if (m.name != leader) {
        replicas.push_back(m.name);
      }
    }
  }
  Reply Post(const std::string& path, const std::string& body) {
    return HandleRequest(Unsafe("POST", path, body), state, open, &node);
  }
  FakeController node;
  ApiState state;
  AccessPolicy open;
  std::string leader;
  std::vector<std::string> replicas;
};

TEST_F(FailoverApiTest, SwitchoverWritesTheKeyAndReportsTheNewLeader) {
  node.leader_after_failover = replicas[0];
  Reply reply = Post(
      "/switchover",
      json({{"leader", leader}, {"candidate", replicas[0]}, {"scheduled_at", nullptr}}).dump());
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "Successfully switched over to \"" + replicas[0] + "\"");
  ASSERT_EQ(node.failover_writes.size(), 1u);
  EXPECT_EQ(json::parse(node.failover_writes[0]),
            json({{"leader", leader}, {"member", replicas[0]}}));

  node.cluster = model::BuildSnapshot(testing::ReadDcsDump("initial-dcs.txt"), 100);
  node.leader_after_failover = replicas[1];
  reply = Post("/failover", json({{"candidate", replicas[0]}}).dump());
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body,
            "Failed over to \"" + replicas[1] + "\" instead of \"" + replicas[0] + "\"");
}

TEST_F(FailoverApiTest, AFailoverThatDoesNotHappenIsReported) {
  // Nobody takes the lock and the key stays: "status unknown" after 2 * max(10, loop_wait) s.
  Reply reply = Post("/switchover", json({{"leader", leader}}).dump());
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.body, "Switchover status unknown");
  EXPECT_EQ(node.sleeps, 20);
}

TEST_F(FailoverApiTest, RefusalsCarryPatronisTexts) {
  struct Case {
    std::string path;
    json body;
    int status;
    std::string text;
  };
  std::vector<Case> cases = {
      {"/failover",
       {{"leader", leader}},
       400,
       "Failover could be performed only to a specific candidate"},
      {"/switchover",
       {{"candidate", replicas[0]}},
       400,
       "Switchover could be performed only from a specific leader"},
      {"/switchover",
       {{"leader", "pg-9"}, {"candidate", replicas[0]}},
       412,
       "leader name does not match"},
      {"/switchover",
       {{"leader", leader}, {"candidate", "pg-9"}},
       412,
       "candidate does not exists"},
      {"/failover",
       {{"candidate", replicas[0]}, {"scheduled_at", "2026-11-26T12:00:00+00:00"}},
       400,
       "Scheduled failover is possible only from a specific leader"},
      {"/switchover",
       {{"leader", leader}, {"scheduled_at", "2026-11-26T12:00:00"}},
       400,
       "Timezone information is mandatory for the scheduled switchover"},
      {"/switchover",
       {{"leader", leader}, {"scheduled_at", "2026-11-26T09:00:00+00:00"}},
       422,
       "Cannot schedule switchover in the past"},
      {"/switchover",
       {{"leader", leader}, {"scheduled_at", "tomorrow-ish"}},
       422,
       "Unable to parse scheduled timestamp. It should be in an unambiguous format, e.g. ISO 8601"},
      {"/switchover", {{"leader", 5}}, 400, "leader must be a string"},
  };
  for (const auto& c : cases) {
    Reply reply = Post(c.path, c.body.dump());
    EXPECT_EQ(reply.status, c.status) << c.body.dump();
    EXPECT_EQ(reply.body, c.text) << c.body.dump();
  }
  EXPECT_TRUE(node.failover_writes.empty());

  // A named candidate too far behind the last leader position: 412 with the reason.
  node.cluster.status.optime = 100000000;
  node.wal_positions[replicas[0]] = 100000000 - 2 * 1048576;
  Reply lagging =
      Post("/switchover", json({{"leader", leader}, {"candidate", replicas[0]}}).dump());
  EXPECT_EQ(lagging.status, 412);
  EXPECT_EQ(lagging.body, "switchover is not possible: " + replicas[0] +
                              " is lagging 2097152 bytes behind the leader, more than "
                              "maximum_lag_on_failover (1048576)");
  EXPECT_TRUE(node.failover_writes.empty());

  for (const auto& name : replicas) {
    node.unreachable.insert(name);
  }
  Reply reply = Post("/switchover", json({{"leader", leader}}).dump());
  EXPECT_EQ(reply.status, 412);
  EXPECT_EQ(reply.body, "switchover is not possible: no good candidates have been found");
}

TEST_F(FailoverApiTest, PausedClustersNeedACandidateAndCannotSchedule) {
  node.cluster.config->data = model::GlobalConfig(json({{"pause", true}}));
  Reply reply = Post("/switchover", json({{"leader", leader}}).dump());
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body, "Switchover is possible only to a specific candidate in a paused state");
  reply = Post("/switchover",
               json({{"leader", leader}, {"scheduled_at", "2026-11-26T12:00:00Z"}}).dump());
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.body, "Can't schedule switchover in the paused state");
}

TEST_F(FailoverApiTest, ScheduledSwitchoverIsKeptAndCanBeWithdrawn) {
  EXPECT_EQ(HandleRequest(Unsafe("DELETE", "/switchover"), state, open, &node).body,
            "no switchover is scheduled");
  Reply reply =
      Post("/switchover",
           json({{"leader", leader}, {"scheduled_at", "2026-11-26T12:30:00+01:00"}}).dump());
  EXPECT_EQ(reply.status, 202);
  EXPECT_EQ(reply.body, "Switchover scheduled");
  ASSERT_TRUE(node.cluster.failover && node.cluster.failover->scheduled_at);
  EXPECT_EQ(*node.cluster.failover->scheduled_at, *ParseIsoTimestamp("2026-11-26T11:30:00Z"));
  EXPECT_EQ(node.sleeps, 0);  // no waiting for a scheduled one

  reply = HandleRequest(Unsafe("DELETE", "/switchover"), state, open, &node);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "scheduled switchover deleted");
  EXPECT_FALSE(node.cluster.failover.has_value());
  EXPECT_EQ(HandleRequest(Unsafe("DELETE", "/switchover"), state, open, &node).status, 404);
}

TEST_F(FailoverApiTest, ReloadIsAccepted) {
  Reply reply = HandleRequest(Unsafe("POST", "/reload"), state, open, &node);
  EXPECT_EQ(reply.status, 202);
  EXPECT_EQ(reply.body, "reload scheduled");
  EXPECT_EQ(node.reloads, 1);
}

TEST(RestApiTest, FailsafeAsPatroni) {
  FakeController node;
  AccessPolicy open;
  auto snapshot = model::BuildSnapshot(testing::ReadDcsDump("initial-dcs.txt"), 100);
  ApiState state;
  state.node.state = "running";
  state.node.postgres_running = true;
  state.node.in_recovery = true;
  state.cluster = std::make_shared<const model::ClusterSnapshot>(snapshot);
  const std::string call =
      R"({"name": "pg-0", "conn_url": "postgres://10.0.0.1:5432/postgres",
          "api_url": "http://10.0.0.1:8008/patroni"})";
  // failsafe_mode off: 502, as Patroni.
  EXPECT_EQ(HandleRequest(Unsafe("POST", "/failsafe", call), state, open, &node).status, 502);
  EXPECT_EQ(HandleRequest(Get("/failsafe"), state, open).status, 502);

  auto config = snapshot.config->data.raw();
  config["failsafe_mode"] = true;
  snapshot.config->data = model::GlobalConfig(config);
  snapshot.failsafe = std::map<std::string, std::string>{{"pg-0", "http://10.0.0.1:8008/patroni"},
                                                         {"pg-1", "http://10.0.0.2:8008/patroni"}};
  state.cluster = std::make_shared<const model::ClusterSnapshot>(snapshot);
  Reply reply = HandleRequest(Unsafe("POST", "/failsafe", call), state, open, &node);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "Accepted");
  EXPECT_EQ(node.failsafe_leader, "pg-0 http://10.0.0.1:8008/patroni");
  reply = HandleRequest(Get("/failsafe"), state, open);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(json::parse(reply.body)["pg-1"], "http://10.0.0.2:8008/patroni");
  // A running primary is nobody's follower.
  state.node.in_recovery = false;
  reply = HandleRequest(Unsafe("POST", "/failsafe", call), state, open, &node);
  EXPECT_EQ(reply.status, 500);
  EXPECT_EQ(reply.body, "Running as a leader");
  // Garbage is refused, not remembered.
  state.node.in_recovery = true;
  node.failsafe_leader.clear();
  for (const char* bad :
       {"[1]", R"({"name": "pg-0"})", R"({"name": 1, "conn_url": "x", "api_url": "y"})"}) {
    EXPECT_EQ(HandleRequest(Unsafe("POST", "/failsafe", bad), state, open, &node).status, 400)
        << bad;
  }
  EXPECT_EQ(node.failsafe_leader, "");
}

}  // namespace
}  // namespace pgha::api
