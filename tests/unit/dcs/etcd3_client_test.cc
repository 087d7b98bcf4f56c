#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"
#include "dcs/etcd3/client.h"
#include "fakes/fake_http_transport.h"

namespace pgha::dcs::etcd3 {
namespace {

using nlohmann::json;
using pgha::testing::EtcdDiscovery;
using pgha::testing::FakeHttpTransport;
using pgha::testing::RecordedRequest;
using pgha::testing::ScriptedStream;
using ::testing::HasSubstr;

struct Fixture {
  explicit Fixture(ClientOptions options = {}) {
    if (options.hosts.empty()) {
      options.hosts = {"e1:2379", "e2:2379", "e3:2379"};
    }
    options.request_timeout = std::chrono::milliseconds(3000);
    auto owned = std::make_unique<FakeHttpTransport>();
    transport = owned.get();
    client = std::make_unique<Etcd3Client>(options, std::move(owned));
  }
  std::vector<RecordedRequest> Calls(const std::string& path) const {
    std::vector<RecordedRequest> out;
    for (const auto& r : transport->requests()) {
      if (r.path == path) {
        out.push_back(r);
      }
    }
    return out;
  }
  FakeHttpTransport* transport;
  std::unique_ptr<Etcd3Client> client;
};

const std::vector<std::string> kUrls = {"http://e1:2379", "http://e2:2379", "http://e3:2379"};

HttpResponse Ok(const json& body) { return HttpResponse{200, body.dump()}; }

TEST(Etcd3ClientTest, DiscoversPrefixAndMembers) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest&) -> Result<HttpResponse> {
    return Ok(json{{"header", {{"revision", "5"}}}});
  }));
  ASSERT_TRUE(f.client->Connect().ok());
  EXPECT_EQ(f.client->ApiPrefix(), "/v3");
  EXPECT_EQ(f.client->KnownEndpoints(), kUrls);
}

TEST(Etcd3ClientTest, ApiPrefixFollowsClusterVersion) {
  for (auto [version, prefix] : std::vector<std::pair<std::string, std::string>>{
           {"3.5.0", "/v3"}, {"3.3.0", "/v3beta"}, {"3.2.0", "/v3alpha"}}) {
    Fixture f;
    f.transport->SetHandler([version = version](const RecordedRequest& r) -> Result<HttpResponse> {
      if (r.path == "/version") {
        return Ok(json{{"etcdcluster", version}});
      }
      return Ok(json::object());
    });
    ASSERT_TRUE(f.client->Connect().ok());
    EXPECT_EQ(f.client->ApiPrefix(), prefix);
  }
  Fixture old;
  old.transport->SetHandler([](const RecordedRequest&) -> Result<HttpResponse> {
    return Ok(json{{"etcdcluster", "2.3.8"}});
  });
  auto status = old.client->Connect();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message(), HasSubstr("too old"));
}

TEST(Etcd3ClientTest, AMemberOfAFormingClusterServesItsOwnPrefix) {
  // Two of three etcd 3.4 members up: the cluster version reads 3.0.0 and /v3alpha is a 404.
  Fixture f;
  f.transport->SetHandler([](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.path == "/version") {
      return Ok(json{{"etcdserver", "3.4.23"}, {"etcdcluster", "3.0.0"}});
    }
    if (r.path.rfind("/v3/", 0) != 0) {
      return HttpResponse{404, "404 page not found"};
    }
    return Ok(json{{"header", {{"revision", "3"}}}});
  });
  ASSERT_TRUE(f.client->Connect().ok());
  EXPECT_EQ(f.client->ApiPrefix(), "/v3");
  auto range = f.client->Range("/service/pg-ha/leader");
  ASSERT_TRUE(range.ok()) << range.error().message();
  EXPECT_EQ(range->revision, 3);
}

TEST(Etcd3ClientTest, AnUndecidedClusterVersionIsRetriedNotRefused) {
  Fixture f;
  int version_calls = 0;
  f.transport->SetHandler([&version_calls](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.path == "/version") {
      return ++version_calls <= 3
                 ? Ok(json{{"etcdserver", "3.4.23"}, {"etcdcluster", "not_decided"}})
                 : Ok(json{{"etcdserver", "3.4.23"}, {"etcdcluster", "3.4.0"}});
    }
    return Ok(json::object());
  });
  auto status = f.client->Connect();
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_EQ(f.client->ApiPrefix(), "/v3");
  EXPECT_EQ(version_calls, 4);
}

TEST(Etcd3ClientTest, ANotFoundPathMakesTheClientAskTheMemberAgain) {
  // The prefix was chosen on a 3.4 member; the request then lands on a 3.3 member of a rolling
  // upgrade, which serves /v3beta only. The write is tried again there with that prefix.
  Fixture f;
  bool first_member_down = false;
  f.transport->SetHandler([&first_member_down](const RecordedRequest& r) -> Result<HttpResponse> {
    bool old_member = r.base_url == "http://e2:2379";
    if (r.base_url == "http://e1:2379" && first_member_down) {
      return Error::Unavailable("connection refused");
    }
    if (r.path == "/version") {
      return old_member ? Ok(json{{"etcdserver", "3.3.27"}, {"etcdcluster", "3.3.0"}})
                        : Ok(json{{"etcdserver", "3.4.23"}, {"etcdcluster", "3.3.0"}});
    }
    if (old_member && r.path.rfind("/v3/", 0) == 0) {
      return HttpResponse{404, "404 page not found"};
    }
    return Ok(json{{"header", {{"revision", "8"}}}});
  });
  ASSERT_TRUE(f.client->Connect().ok());
  EXPECT_EQ(f.client->ApiPrefix(), "/v3");
  first_member_down = true;
  auto put = f.client->Put("/service/pg-ha/config", "{}");
  ASSERT_TRUE(put.ok()) << put.error().message();
  EXPECT_EQ(*put, 8);
  EXPECT_EQ(f.client->ApiPrefix(), "/v3beta");
  EXPECT_EQ(f.Calls("/v3/kv/put").size(), 2u);  // refused by e1, 404 from e2
  EXPECT_EQ(f.Calls("/v3beta/kv/put").size(), 1u);
}

TEST(Etcd3ClientTest, LeaderRaceTxnIsPatronis) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest&) -> Result<HttpResponse> {
    return Ok(json{{"header", {{"revision", "9"}}}, {"succeeded", true}});
  }));
  auto txn = f.client->Txn({Compare::CreateRevision("/service/pg-ha/leader", 0)},
                           {Op::Put("/service/pg-ha/leader", "pg-0", 7587862)});
  ASSERT_TRUE(txn.ok());
  EXPECT_TRUE(txn->succeeded);
  EXPECT_EQ(txn->revision, 9);
  auto calls = f.Calls("/v3/kv/txn");
  ASSERT_EQ(calls.size(), 1u);
  json body = json::parse(calls[0].body);
  json expected = {{"compare",
                    {{{"key", Base64Encode("/service/pg-ha/leader")},
                      {"target", "CREATE"},
                      {"create_revision", "0"}}}},
                   {"success",
                    {{{"request_put",
                       {{"key", Base64Encode("/service/pg-ha/leader")},
                        {"value", Base64Encode("pg-0")},
                        {"lease", "7587862"}}}}}}};
  EXPECT_EQ(body, expected);
}

TEST(Etcd3ClientTest, CasAndNestedTxnShapes) {
  Compare mod = Compare::ModRevision("k", 42);
  EXPECT_EQ(mod.ToJson(),
            (json{{"key", Base64Encode("k")}, {"target", "MOD"}, {"mod_revision", "42"}}));
  Compare value = Compare::Value("k", "pg-0");
  EXPECT_EQ(value.ToJson()["value"], Base64Encode("pg-0"));
  Op nested = Op::Txn({Compare::CreateRevision("k", 0)}, {Op::Put("k", "v", 1)}, {});
  json j = nested.ToJson();
  ASSERT_TRUE(j.contains("request_txn"));
  EXPECT_EQ(j["request_txn"]["compare"][0]["target"], "CREATE");
  EXPECT_FALSE(j["request_txn"].contains("failure"));
  EXPECT_EQ(Op::Delete("a", "b").ToJson()["request_delete_range"]["range_end"], Base64Encode("b"));
}

TEST(Etcd3ClientTest, RangeDecodesKeysValuesAndRevisions) {
  Fixture f;
  f.transport->SetHandler(
      EtcdDiscovery(kUrls, [](const RecordedRequest& r) -> Result<HttpResponse> {
        json body = json::parse(r.body);
        EXPECT_EQ(body["key"], Base64Encode("/service/pg-ha/"));
        EXPECT_EQ(body["range_end"], Base64Encode("/service/pg-ha0"));
        EXPECT_EQ(body["serializable"], true);
        return Ok(json{{"header", {{"revision", "23"}}},
                       {"kvs",
                        {{{"key", Base64Encode("/service/pg-ha/leader")},
                          {"value", Base64Encode("pg-0")},
                          {"create_revision", "8"},
                          {"mod_revision", "8"},
                          {"version", "1"},
                          {"lease", "2986627710655151365"}}}},
                       {"count", "1"}});
      }));
  auto range = f.client->RangePrefix("/service/pg-ha/", true);
  ASSERT_TRUE(range.ok()) << range.error().message();
  EXPECT_EQ(range->revision, 23);
  ASSERT_EQ(range->kvs.size(), 1u);
  EXPECT_EQ(range->kvs[0].key, "/service/pg-ha/leader");
  EXPECT_EQ(range->kvs[0].value, "pg-0");
  EXPECT_EQ(range->kvs[0].lease, 2986627710655151365LL);
}

TEST(Etcd3ClientTest, EmptyRangeHasNoKvs) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest&) -> Result<HttpResponse> {
    return Ok(json{{"header", {{"revision", "3"}}}});
  }));
  auto range = f.client->Range("missing");
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(range->kvs.empty());
}

TEST(Etcd3ClientTest, MovesToAnotherMemberWhenOneIsDown) {
  Fixture f;
  f.transport->SetHandler(
      EtcdDiscovery(kUrls, [](const RecordedRequest& r) -> Result<HttpResponse> {
        if (r.base_url == "http://e1:2379") {
          return Error::Unavailable("connection refused");
        }
        return Ok(json{{"header", {{"revision", "4"}}}});
      }));
  ASSERT_TRUE(f.client->Connect().ok());
  auto put = f.client->Put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  EXPECT_EQ(*put, 4);
  EXPECT_EQ(f.client->CurrentEndpoint(), "http://e2:2379");
  EXPECT_GE(f.client->failovers(), 1);
  // The next call goes straight to the member that works.
  size_t before = f.transport->requests().size();
  ASSERT_TRUE(f.client->Put("k", "v2").ok());
  EXPECT_EQ(f.transport->requests().size(), before + 1);
}

TEST(Etcd3ClientTest, GrpcUnavailableIsRetriedElsewhere) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.base_url == "http://e1:2379") {
      return HttpResponse{
          503,
          R"({"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14})"};
    }
    return Ok(json{{"header", {{"revision", "4"}}}, {"deleted", "2"}});
  }));
  auto deleted = f.client->DeleteRange("a", "b");
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2);
}

TEST(Etcd3ClientTest, DefiniteErrorsAreNotRetried) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest&) -> Result<HttpResponse> {
    return HttpResponse{
        400,
        R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"};
  }));
  auto put = f.client->Put("k", "v", 12345);
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(put.error().IsNotFound());
  EXPECT_THAT(put.error().message(), HasSubstr("requested lease not found"));
  EXPECT_EQ(f.Calls("/v3/kv/put").size(), 1u);
}

TEST(Etcd3ClientTest, GivesUpAtTheDeadlineWhenNoMemberAnswers) {
  Fixture f;
  f.transport->SetHandler([](const RecordedRequest&) -> Result<HttpResponse> {
    return Error::Unavailable("connection refused");
  });
  auto start = std::chrono::steady_clock::now();
  auto put = f.client->Put("k", "v");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(put.ok());
  EXPECT_TRUE(put.error().IsUnavailable());
  EXPECT_LT(elapsed, std::chrono::seconds(10));
}

TEST(Etcd3ClientTest, LeaseCalls) {
  Fixture f;
  f.transport->SetHandler(
      EtcdDiscovery(kUrls, [](const RecordedRequest& r) -> Result<HttpResponse> {
        if (r.path == "/v3/lease/grant") {
          EXPECT_EQ(json::parse(r.body)["TTL"], "30");
          return Ok(json{{"ID", "7587862"}, {"TTL", "30"}});
        }
        if (r.path == "/v3/lease/keepalive") {
          if (json::parse(r.body)["ID"] == "7587862") {
            return Ok(json{{"result", {{"ID", "7587862"}, {"TTL", "30"}}}});
          }
          return Ok(json{{"result", {{"ID", "1"}}}});  // no TTL: the lease is gone
        }
        if (r.path == "/v3/lease/revoke") {
          return HttpResponse{400,
                              R"({"message":"etcdserver: requested lease not found","code":5})"};
        }
        return Error::Internal("unexpected " + r.path);
      }));
  auto id = f.client->LeaseGrant(30);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 7587862);
  EXPECT_EQ(*f.client->LeaseKeepAlive(7587862), 30);
  EXPECT_EQ(*f.client->LeaseKeepAlive(1), 0);
  EXPECT_TRUE(f.client->LeaseRevoke(1).ok());  // already gone counts as revoked
}

TEST(Etcd3ClientTest, AuthenticatesAndRenewsAnExpiredToken) {
  ClientOptions options;
  options.username = "root";
  options.password = "pw";
  Fixture f(options);
  int tokens_issued = 0;
  f.transport->SetHandler(EtcdDiscovery(kUrls, [&](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.path == "/v3/auth/authenticate") {
      json body = json::parse(r.body);
      if (body["password"] != "pw") {
        return HttpResponse{
            400,
            R"({"message":"etcdserver: authentication failed, invalid user ID or password","code":3})"};
      }
      ++tokens_issued;
      return Ok(json{{"token", "tok" + std::to_string(tokens_issued)}});
    }
    auto it = r.headers.find("Authorization");
    if (it == r.headers.end() || it->second != "tok" + std::to_string(tokens_issued) ||
        tokens_issued < 2) {
      return HttpResponse{401, R"({"message":"etcdserver: invalid auth token","code":16})"};
    }
    return Ok(json{{"header", {{"revision", "2"}}}});
  }));
  auto put = f.client->Put("k", "v");
  ASSERT_TRUE(put.ok()) << put.error().message();
  EXPECT_EQ(tokens_issued, 2);

  ClientOptions wrong = options;
  wrong.password = "nope";
  Fixture g(wrong);
  g.transport->SetHandler(EtcdDiscovery(kUrls, [](const RecordedRequest& r) -> Result<HttpResponse> {
    if (r.path == "/v3/auth/authenticate") {
      return HttpResponse{
          400,
          R"({"message":"etcdserver: authentication failed, invalid user ID or password","code":3})"};
    }
    return Ok(json::object());
  }));
  auto status = g.client->Connect();
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.error().IsPermissionDenied());
  EXPECT_THAT(status.error().message(), HasSubstr("authentication as 'root' failed"));
}

std::string WatchMessage(
    int64_t revision,
    const std::vector<std::tuple<std::string, std::string, int64_t, bool>>& events) {
  json result = {{"header", {{"revision", std::to_string(revision)}}}};
  json list = json::array();
  for (const auto& [key, value, mod, is_delete] : events) {
    json e = {{"kv", {{"key", Base64Encode(key)}, {"mod_revision", std::to_string(mod)}}}};
    if (is_delete) {
      e["type"] = "DELETE";
    } else {
      e["kv"]["value"] = Base64Encode(value);
    }
    list.push_back(e);
  }
  result["events"] = list;
  return json{{"result", result}}.dump() + "\n";
}

TEST(Etcd3ClientTest, WatchReassemblesSplitMessagesAndResumesAfterTheLastRevision) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(
      kUrls, [](const RecordedRequest&) -> Result<HttpResponse> { return Ok(json::object()); }));
  int streams = 0;
  std::vector<int64_t> start_revisions;
  f.transport->SetStreamHandler([&](const RecordedRequest& r) {
    json create = json::parse(r.body)["create_request"];
    start_revisions.push_back(create.contains("start_revision")
                                  ? *ParseInt64(create["start_revision"].get<std::string>())
                                  : 0);
    ++streams;
    ScriptedStream stream;
    if (streams == 1) {
      std::string created = R"({"result":{"header":{"revision":"10"},"created":true}})"
                            "\n";
      std::string two = WatchMessage(11, {{"a", "1", 11, false}}) +
                        WatchMessage(12, {{"b", "2", 12, false}, {"a", "", 12, true}});
      // Split mid-message, as TCP may.
      stream.pieces = {created, two.substr(0, 17), two.substr(17, 40), two.substr(57)};
    } else if (streams == 2) {
      stream.status = Error::Unavailable("connection refused");  // that member died
    } else {
      stream.pieces = {WatchMessage(13, {{"c", "3", 13, false}})};
    }
    return stream;
  });
  std::vector<std::string> seen;
  StreamCanceller canceller;
  WatchOptions options;
  options.key = "a";
  options.range_end = "z";
  options.start_revision = 11;
  auto status = f.client->Watch(
      options,
      [&](const WatchBatch& batch) {
        for (const auto& e : batch.events) {
          seen.push_back((e.type == WatchEvent::Type::kDelete ? "-" : "+") + e.kv.key + "@" +
                         std::to_string(e.kv.mod_revision));
        }
        return seen.size() < 4;
      },
      &canceller);
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"+a@11", "+b@12", "-a@12", "+c@13"}));
  ASSERT_GE(start_revisions.size(), 3u);
  EXPECT_EQ(start_revisions[0], 11);
  EXPECT_EQ(start_revisions[1], 13);  // resumes after the last event delivered
  EXPECT_EQ(start_revisions[2], 13);
}

// Etcd3Dcs drops its cache when a keepalive fails, and interrupts the watch so that the cache is
// read again: a watch that resumed on its own would leave the cache marked stale for good.
TEST(Etcd3ClientTest, AnInterruptedWatchReturnsToItsCallerInsteadOfResuming) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(
      kUrls, [](const RecordedRequest&) -> Result<HttpResponse> { return Ok(json::object()); }));
  StreamCanceller canceller;
  int streams = 0;
  f.transport->SetStreamHandler([&](const RecordedRequest&) {
    ++streams;
    ScriptedStream stream;
    if (streams == 1) {
      canceller.Interrupt();  // the cache was dropped while this stream ran; it was aborted
    } else {
      canceller.Cancel();  // a resumed watch: end the test
    }
    stream.status = Error::Unavailable("aborted");
    return stream;
  });
  auto status = f.client->Watch(
      WatchOptions{"a", "b", 5, std::chrono::seconds(1)}, [](const WatchBatch&) { return true; },
      &canceller);
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(streams, 1) << "the watch resumed instead of returning";
  EXPECT_FALSE(canceller.cancelled());
  EXPECT_FALSE(canceller.TakeInterrupt()) << "the interrupt was taken once";
}

TEST(Etcd3ClientTest, WatchReportsCompaction) {
  Fixture f;
  f.transport->SetHandler(EtcdDiscovery(
      kUrls, [](const RecordedRequest&) -> Result<HttpResponse> { return Ok(json::object()); }));
  f.transport->SetStreamHandler([](const RecordedRequest&) {
    ScriptedStream stream;
    stream.pieces = {
        R"({"result":{"header":{"revision":"50"},"compact_revision":"40","canceled":true}})"
        "\n"};
    return stream;
  });
  bool compacted = false;
  StreamCanceller canceller;
  auto status = f.client->Watch(
      WatchOptions{"a", "b", 5, std::chrono::seconds(1)},
      [&](const WatchBatch& batch) {
        compacted = batch.compacted && batch.compact_revision == 40;
        return true;
      },
      &canceller);
  EXPECT_TRUE(status.ok());
  EXPECT_TRUE(compacted);
}

TEST(Etcd3ClientTest, ParseWatchResponseRejectsGarbage) {
  EXPECT_FALSE(ParseWatchResponse(json::array()).ok());
  EXPECT_FALSE(ParseWatchResponse(json{{"nothing", 1}}).ok());
  EXPECT_FALSE(
      ParseWatchResponse(json{{"result", {{"events", {{{"kv", {{"key", "!!"}}}}}}}}}).ok());
  auto error =
      ParseWatchResponse(json{{"error", {{"grpc_code", 7}, {"message", "permission denied"}}}});
  ASSERT_FALSE(error.ok());
  EXPECT_TRUE(error.error().IsPermissionDenied());
  auto canceled =
      ParseWatchResponse(json{{"result", {{"canceled", true}, {"cancel_reason", "x"}}}});
  ASSERT_FALSE(canceled.ok());
  EXPECT_THAT(canceled.error().message(), HasSubstr("x"));
}

}  // namespace
}  // namespace pgha::dcs::etcd3
