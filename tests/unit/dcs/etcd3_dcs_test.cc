#include "dcs/etcd3/etcd3_dcs.h"

#include <gtest/gtest.h>

#include "common/strings.h"
#include "fakes/fake_http_transport.h"

namespace pgha::dcs::etcd3 {
namespace {

using nlohmann::json;
using pgha::testing::EtcdDiscovery;
using pgha::testing::FakeHttpTransport;
using pgha::testing::RecordedRequest;

// A tiny in-memory etcd behind the gateway API: enough to check the DCS writes the right
// transactions with the right lease.
class MiniEtcd {
 public:
  Result<HttpResponse> Handle(const RecordedRequest& r) {
    json body = json::parse(r.body);
    if (r.path == "/v3/lease/grant") {
      ++next_lease_;
      leases_.insert(next_lease_);
      return HttpResponse{200, json{{"ID", std::to_string(next_lease_)}, {"TTL", "30"}}.dump()};
    }
    if (r.path == "/v3/lease/keepalive") {
      int64_t id = *ParseInt64(body["ID"].get<std::string>());
      ++keepalives;
      json result = {{"ID", std::to_string(id)}};
      if (leases_.count(id)) {
        result["TTL"] = "30";
      }
      return HttpResponse{200, json{{"result", result}}.dump()};
    }
    if (r.path == "/v3/kv/put") {
      ++puts;
      std::string key = *Base64Decode(body["key"].get<std::string>());
      kv_[key] = {*Base64Decode(body["value"].get<std::string>()),
                  body.contains("lease") ? *ParseInt64(body["lease"].get<std::string>()) : 0};
      return HttpResponse{200, json{{"header", {{"revision", "1"}}}}.dump()};
    }
    if (r.path == "/v3/kv/range") {
      std::string key = *Base64Decode(body["key"].get<std::string>());
      std::string end =
          body.contains("range_end") ? *Base64Decode(body["range_end"].get<std::string>()) : "";
      json kvs = json::array();
      for (const auto& [k, v] : kv_) {
        if (k == key || (!end.empty() && k >= key && k < end)) {
          kvs.push_back({{"key", Base64Encode(k)},
                         {"value", Base64Encode(v.first)},
                         {"mod_revision", "1"},
                         {"lease", std::to_string(v.second)}});
        }
      }
      return HttpResponse{200, json{{"header", {{"revision", "1"}}}, {"kvs", kvs}}.dump()};
    }
    if (r.path == "/v3/kv/txn") {
      ++txns;
      return HttpResponse{200, RunTxn(body).dump()};
    }
    return Error::Internal("unexpected " + r.path);
  }

  json RunTxn(const json& body) {
    bool ok = true;
    for (const auto& c : body["compare"]) {
      std::string key = *Base64Decode(c["key"].get<std::string>());
      bool exists = kv_.count(key) > 0;
      if (c["target"] == "CREATE") {
        ok = ok && !exists;
      } else if (c["target"] == "VALUE") {
        ok = ok && exists && kv_[key].first == *Base64Decode(c["value"].get<std::string>());
      }
    }
    json responses = json::array();
    for (const auto& op : body.value(ok ? "success" : "failure", json::array())) {
      if (op.contains("request_put")) {
        const auto& put = op["request_put"];
        int64_t lease = put.contains("lease") ? *ParseInt64(put["lease"].get<std::string>()) : 0;
        if (lease != 0 && !leases_.count(lease)) {
          return json{{"error", "lease"}};
        }
        kv_[*Base64Decode(put["key"].get<std::string>())] = {
            *Base64Decode(put["value"].get<std::string>()), lease};
        responses.push_back({{"response_put", json::object()}});
      } else if (op.contains("request_delete_range")) {
        kv_.erase(*Base64Decode(op["request_delete_range"]["key"].get<std::string>()));
        responses.push_back({{"response_delete_range", json::object()}});
      } else if (op.contains("request_txn")) {
        responses.push_back({{"response_txn", RunTxn(op["request_txn"])}});
      }
    }
    return json{{"header", {{"revision", "1"}}}, {"succeeded", ok}, {"responses", responses}};
  }

  void ExpireLease(int64_t id) {
    leases_.erase(id);
    for (auto it = kv_.begin(); it != kv_.end();) {
      it = it->second.second == id ? kv_.erase(it) : std::next(it);
    }
  }

  std::map<std::string, std::pair<std::string, int64_t>> kv_;
  int keepalives = 0;
  int puts = 0;
  int txns = 0;

 private:
  int64_t next_lease_ = 100;
  std::set<int64_t> leases_;
};

struct Fixture {
  explicit Fixture(const std::string& name) {
    auto owned = std::make_unique<FakeHttpTransport>();
    owned->SetHandler(EtcdDiscovery({"http://e1:2379"},
                                    [this](const RecordedRequest& r) { return etcd.Handle(r); }));
    ClientOptions options;
    options.hosts = {"e1:2379"};
    auto client = std::make_shared<Etcd3Client>(options, std::move(owned));
    dcs = std::make_unique<Etcd3Dcs>(Etcd3DcsOptions{"/service/pg-ha/", name, false}, client);
    dcs->SetTimings(30, 10, 10);
  }
  MiniEtcd etcd;
  std::unique_ptr<Etcd3Dcs> dcs;
};

TEST(Etcd3DcsTest, LeaderRaceAndMemberShareOneLease) {
  Fixture f("pg-0");
  ASSERT_TRUE(f.dcs->TouchMember(R"({"role":"replica"})").ok());
  auto won = f.dcs->AttemptToAcquireLeader();
  ASSERT_TRUE(won.ok());
  EXPECT_TRUE(*won);
  auto& kv = f.etcd.kv_;
  EXPECT_EQ(kv["/service/pg-ha/leader"].first, "pg-0");
  EXPECT_EQ(kv["/service/pg-ha/leader"].second, f.dcs->lease_id());
  EXPECT_EQ(kv["/service/pg-ha/members/pg-0"].second, f.dcs->lease_id());
}

TEST(Etcd3DcsTest, SecondCandidateLosesTheRace) {
  Fixture f("pg-1");
  f.etcd.kv_["/service/pg-ha/leader"] = {"pg-0", 5};
  auto won = f.dcs->AttemptToAcquireLeader();
  ASSERT_TRUE(won.ok());
  EXPECT_FALSE(*won);
  EXPECT_EQ(f.etcd.kv_["/service/pg-ha/leader"].first, "pg-0");
}

TEST(Etcd3DcsTest, RenewalIsAKeepaliveWhenTheKeyIsOnOurLease) {
  Fixture f("pg-0");
  ASSERT_TRUE(*f.dcs->AttemptToAcquireLeader());
  auto snapshot = f.dcs->LoadCluster();
  ASSERT_TRUE(snapshot.ok());
  int txns = f.etcd.txns;
  int keepalives = f.etcd.keepalives;
  auto renewed = f.dcs->UpdateLeader(*snapshot);
  ASSERT_TRUE(renewed.ok());
  EXPECT_TRUE(*renewed);
  EXPECT_EQ(f.etcd.txns, txns);  // no write
  EXPECT_EQ(f.etcd.keepalives, keepalives + 1);
}

TEST(Etcd3DcsTest, RenewalMovesTheKeyToANewLeaseAfterExpiry) {
  Fixture f("pg-0");
  ASSERT_TRUE(*f.dcs->AttemptToAcquireLeader());
  auto snapshot = *f.dcs->LoadCluster();
  int64_t old_lease = f.dcs->lease_id();
  f.etcd.ExpireLease(old_lease);
  auto renewed = f.dcs->UpdateLeader(snapshot);
  ASSERT_TRUE(renewed.ok());
  EXPECT_TRUE(*renewed);  // nobody took it meanwhile: re-created under the new lease
  EXPECT_NE(f.dcs->lease_id(), old_lease);
  EXPECT_EQ(f.etcd.kv_["/service/pg-ha/leader"].second, f.dcs->lease_id());
}

TEST(Etcd3DcsTest, RenewalFailsWhenAnotherNodeHoldsTheLock) {
  Fixture f("pg-0");
  ASSERT_TRUE(*f.dcs->AttemptToAcquireLeader());
  auto snapshot = *f.dcs->LoadCluster();
  f.etcd.ExpireLease(f.dcs->lease_id());
  f.etcd.kv_["/service/pg-ha/leader"] = {"pg-1", 999};
  auto renewed = f.dcs->UpdateLeader(snapshot);
  ASSERT_TRUE(renewed.ok());
  EXPECT_FALSE(*renewed);
  EXPECT_EQ(f.etcd.kv_["/service/pg-ha/leader"].first, "pg-1");
}

TEST(Etcd3DcsTest, DeleteLeaderOnlyIfStillOurs) {
  Fixture f("pg-0");
  f.etcd.kv_["/service/pg-ha/leader"] = {"pg-1", 0};
  EXPECT_FALSE(*f.dcs->DeleteLeader());
  EXPECT_TRUE(f.etcd.kv_.count("/service/pg-ha/leader"));
  f.etcd.kv_["/service/pg-ha/leader"] = {"pg-0", 0};
  EXPECT_TRUE(*f.dcs->DeleteLeader());
  EXPECT_FALSE(f.etcd.kv_.count("/service/pg-ha/leader"));
}

TEST(Etcd3DcsTest, InitializeRaceIsCreateOnlyThenPlainPut) {
  Fixture f("pg-0");
  EXPECT_TRUE(*f.dcs->Initialize(true, ""));
  EXPECT_FALSE(*f.dcs->Initialize(true, ""));
  EXPECT_TRUE(*f.dcs->Initialize(false, "7712196491986988846"));
  EXPECT_EQ(f.etcd.kv_["/service/pg-ha/initialize"].first, "7712196491986988846");
}

}  // namespace
}  // namespace pgha::dcs::etcd3
