// router::ParseRouterSettings: the `router:` section, PGHA_ROUTER_* variables, and refusals.
#include "router/settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(RouterSettingsTest, DefaultsAreTheSeedsPorts) {
  auto s = ParseRouterSettings(nullptr, {});
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->write_listen.ToString(), "0.0.0.0:5000");
  EXPECT_EQ(s->read_listen.ToString(), "0.0.0.0:5001");
  EXPECT_EQ(s->stats_listen.ToString(), "0.0.0.0:8484");
  EXPECT_EQ(s->read_fallback, ReadFallback::kPrimary);
  EXPECT_EQ(s->on_leader_change, OnLeaderChange::kClose);
  EXPECT_EQ(s->connect_hold_timeout, milliseconds(30000));
  EXPECT_EQ(s->max_replica_lag_bytes, 1024 * 1024);
}

TEST(RouterSettingsTest, SectionThenEnvironment) {
  nlohmann::json section = {{"write_listen", "127.0.0.1:6000"},
                            {"max_replica_lag", "16MB"},
                            {"read_fallback", "reject"},
                            {"on_leader_change", "keep"},
                            {"connect_hold_timeout", 5},
                            {"check_interval", "500ms"},
                            {"maxconn", 10},
                            {"tcp_keepalive", false}};
  auto s = ParseRouterSettings(section, {{"PGHA_ROUTER_MAXCONN", "20"},
                                         {"PGHA_ROUTER_READ_LISTEN", "6001"},
                                         {"PATRONI_NAME", "ignored"}});
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->write_listen.ToString(), "127.0.0.1:6000");
  EXPECT_EQ(s->read_listen.ToString(), "0.0.0.0:6001");
  EXPECT_EQ(s->max_replica_lag_bytes, 16 * 1024 * 1024);
  EXPECT_EQ(s->read_fallback, ReadFallback::kReject);
  EXPECT_EQ(s->on_leader_change, OnLeaderChange::kKeep);
  EXPECT_EQ(s->connect_hold_timeout, milliseconds(5000));
  EXPECT_EQ(s->check_interval, milliseconds(500));
  EXPECT_EQ(s->maxconn, 20u);
  EXPECT_FALSE(s->tcp_keepalive);
}

TEST(RouterSettingsTest, BadInputIsRefusedWithTheKeyNamed) {
  struct Case {
    nlohmann::json section;
    std::map<std::string, std::string> env;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{{"write_port", "5000"}}, {}, "router.write_port: unknown setting"},
      {{{"read_fallback", "replica"}}, {}, "router.read_fallback"},
      {{{"maxconn", 0}}, {}, "router.maxconn"},
      {{{"maxconn", "many"}}, {}, "router.maxconn"},
      {{{"connect_hold_timeout", "0s"}}, {}, "longer than zero"},
      {{{"write_listen", "host:99999"}}, {}, "router.write_listen"},
      {{{"write_listen", "localhost"}}, {}, "has no port"},
      {{{"buffer_size", "1"}}, {}, "between 1kB and 16MB"},
      {{{"max_replica_lag", "-1"}}, {}, "negative"},
      {{{"tcp_keepalive", "maybe"}}, {}, "not true or false"},
      {{{"maxconn", {1, 2}}}, {}, "expected a single value"},
      {"just a string", {}, "expected a mapping"},
      {nullptr, {{"PGHA_ROUTER_NOPE", "1"}}, "PGHA_ROUTER_NOPE: not a router setting"},
      {nullptr, {{"PGHA_ROUTER_THREADS", "0"}}, "PGHA_ROUTER_THREADS"},
      {{{"write_listen", "1.2.3.4:5000"}, {"read_listen", "1.2.3.4:5000"}}, {}, "the same address"},
  };
  for (const auto& c : cases) {
    auto s = ParseRouterSettings(c.section, c.env);
    ASSERT_FALSE(s.ok()) << c.section.dump();
    EXPECT_THAT(s.error().message(), HasSubstr(c.expected)) << c.section.dump();
  }
}

}  // namespace
}  // namespace pgha::router
