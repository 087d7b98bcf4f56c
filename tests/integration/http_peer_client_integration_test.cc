// The agent's PeerClient over HTTP against loopback servers playing the other members: what a
// member's /patroni says reaches the leader race, an unreachable or failing member counts as
// unreachable, and a failsafe POST counts only when the member answers "Accepted".
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/http_peer_client.h"
#include "support/ports.h"

namespace pgha::agent {
namespace {

// One member's REST API on an ephemeral loopback port.
class FakeMemberApi {
 public:
  explicit FakeMemberApi(const std::function<void(httplib::Server&)>& routes) {
    routes(server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 200 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~FakeMemberApi() {
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path = "/patroni") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

model::Member MemberAt(const std::string& name, const std::string& api_url) {
  model::Member member;
  member.name = name;
  member.data = {{"api_url", api_url}};
  return member;
}

api::http::ClientOptions ShortTimeouts() {
  api::http::ClientOptions options;
  options.connect_timeout = std::chrono::seconds(2);
  options.read_timeout = std::chrono::seconds(2);
  return options;
}

TEST(HttpPeerClientTest, EachMembersAnswerReachesTheRaceAndTheRestAreUnreachable) {
  FakeMemberApi replica([](httplib::Server& s) {
    s.Get("/patroni", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(
          R"({"state": "running", "role": "replica", "timeline": 3,
              "xlog": {"received_location": 5000, "replayed_location": 4000}})",
          "application/json");
    });
  });
  FakeMemberApi failing([](httplib::Server& s) {
    s.Get("/patroni", [](const httplib::Request&, httplib::Response& r) {
      r.status = 503;
      r.set_content(R"({"state": "running", "role": "replica"})", "application/json");
    });
  });
  FakeMemberApi garbled([](httplib::Server& s) {
    s.Get("/patroni", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("not json", "text/plain");
    });
  });
  int closed_port = testing::FreePort();

  HttpPeerClient client(ShortTimeouts());
  auto peers = client.FetchAll({
      MemberAt("pg-1", replica.Url()),
      MemberAt("pg-2", failing.Url()),
      MemberAt("pg-3", garbled.Url()),
      MemberAt("pg-4", "http://127.0.0.1:" + std::to_string(closed_port) + "/patroni"),
      MemberAt("pg-5", "no scheme here"),
  });
  ASSERT_EQ(peers.size(), 5u);
  EXPECT_EQ(peers[0].name, "pg-1");
  EXPECT_TRUE(peers[0].reachable);
  EXPECT_TRUE(peers[0].running);
  EXPECT_FALSE(peers[0].is_primary);
  EXPECT_EQ(peers[0].wal_position, 5000u);
  EXPECT_EQ(peers[0].timeline, 3);
  for (size_t i = 1; i < peers.size(); ++i) {
    EXPECT_EQ(peers[i].name, "pg-" + std::to_string(i + 1));
    EXPECT_FALSE(peers[i].reachable) << peers[i].name;
  }
}

TEST(HttpPeerClientTest, AMemberUrlWithoutAPathIsAskedOnPatroni) {
  FakeMemberApi member([](httplib::Server& s) {
    s.Get("/patroni", [](const httplib::Request&, httplib::Response& r) {
      r.set_content(R"({"state": "running", "role": "primary", "xlog": {"location": 77}})",
                    "application/json");
    });
  });
  HttpPeerClient client(ShortTimeouts());
  auto url = member.Url("");
  auto peers = client.FetchAll({MemberAt("pg-0", url)});
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_TRUE(peers[0].reachable);
  EXPECT_TRUE(peers[0].is_primary);
  EXPECT_EQ(peers[0].wal_position, 77u);
}

TEST(HttpPeerClientTest, AFailsafePostCountsOnlyWhenTheMemberAccepts) {
  std::string seen_body, seen_auth;
  FakeMemberApi accepting([&](httplib::Server& s) {
    s.Post("/failsafe", [&](const httplib::Request& q, httplib::Response& r) {
      seen_body = q.body;
      seen_auth = q.get_header_value("Authorization");
      r.set_content("Accepted", "text/plain");
    });
  });
  FakeMemberApi refusing([](httplib::Server& s) {
    s.Post("/failsafe", [](const httplib::Request&, httplib::Response& r) {
      r.status = 409;
      r.set_content("Accepted", "text/plain");  // the status decides, not the text alone
    });
  });
  FakeMemberApi other_answer([](httplib::Server& s) {
    s.Post("/failsafe", [](const httplib::Request&, httplib::Response& r) {
      r.set_content("something else", "text/plain");
    });
  });
  int closed_port = testing::FreePort();

  api::http::ClientOptions options = ShortTimeouts();
  options.authentication = config::BasicAuth{"admin", "secret"};
  HttpPeerClient client(options);
  auto answers = client.PostFailsafe({accepting.Url(""), refusing.Url(""), other_answer.Url(""),
                                      "http://127.0.0.1:" + std::to_string(closed_port)},
                                     R"({"name": "pg-0"})");
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[0]);
  EXPECT_FALSE(answers[1]);
  EXPECT_FALSE(answers[2]);
  EXPECT_FALSE(answers[3]);
  EXPECT_EQ(seen_body, R"({"name": "pg-0"})");
  EXPECT_EQ(seen_auth, "Basic YWRtaW46c2VjcmV0");  // admin:secret
}

}  // namespace
}  // namespace pgha::agent
