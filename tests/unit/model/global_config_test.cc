#include "model/global_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::model {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

TEST(GlobalConfigTest, DefaultsArePatronis) {
  GlobalConfig config;
  EXPECT_EQ(config.ttl(), 30);
  EXPECT_EQ(config.loop_wait(), 10);
  EXPECT_EQ(config.retry_timeout(), 10);
  EXPECT_EQ(config.maximum_lag_on_failover(), 1048576);
  EXPECT_EQ(config.primary_start_timeout(), 300);
  EXPECT_EQ(config.synchronous_mode(), SynchronousMode::kOff);
  EXPECT_FALSE(config.is_paused());
  EXPECT_TRUE(config.use_slots());
  EXPECT_FALSE(config.use_pg_rewind());
}

TEST(GlobalConfigTest, ReadsValuesInEveryFormPatroniWrites) {
  GlobalConfig config(json{{"ttl", "20"},
                           {"loop_wait", 1},
                           {"retry_timeout", 4.5},
                           {"maximum_lag_on_failover", "32MB"},
                           {"synchronous_mode", "quorum"},
                           {"synchronous_node_count", 2},
                           {"pause", "on"},
                           {"failsafe_mode", true},
                           {"master_start_timeout", 60},
                           {"postgresql",
                            {{"use_pg_rewind", "yes"},
                             {"use_slots", false},
                             {"parameters", {{"max_connections", 200}}}}},
                           {"standby_cluster", {{"host", "x"}}}});
  EXPECT_EQ(config.ttl(), 20);
  EXPECT_EQ(config.retry_timeout(), 4.5);
  EXPECT_EQ(config.maximum_lag_on_failover(), 32LL << 20);
  EXPECT_EQ(config.synchronous_mode(), SynchronousMode::kQuorum);
  EXPECT_EQ(config.synchronous_node_count(), 2);
  EXPECT_TRUE(config.is_paused());
  EXPECT_TRUE(config.failsafe_mode());
  EXPECT_EQ(config.primary_start_timeout(), 60);
  EXPECT_TRUE(config.use_pg_rewind());
  EXPECT_FALSE(config.use_slots());
  EXPECT_EQ(config.postgresql_parameters()["max_connections"], 200);
  EXPECT_TRUE(config.is_standby_cluster());
}

TEST(GlobalConfigTest, GarbageFromTheDcsFallsBackInsteadOfStallingTheLoop) {
  GlobalConfig config(json{{"ttl", "abc"},
                           {"loop_wait", -3},
                           {"retry_timeout", nullptr},
                           {"synchronous_mode", json::array()},
                           {"postgresql", "x"}});
  EXPECT_EQ(config.loop_wait(), kMinLoopWait);
  EXPECT_EQ(config.retry_timeout(), 10);
  EXPECT_EQ(config.ttl(), 30);
  EXPECT_EQ(config.synchronous_mode(), SynchronousMode::kOff);
  EXPECT_TRUE(config.postgresql_parameters().empty());
  // A ttl that breaks the rule is raised to what the rule needs, as Patroni adjusts it.
  GlobalConfig tight(json{{"ttl", 10}, {"loop_wait", 10}, {"retry_timeout", 10}});
  EXPECT_EQ(tight.ttl(), 30);
  // Not an object at all.
  EXPECT_EQ(GlobalConfig(json::array()).ttl(), 30);
}

TEST(GlobalConfigTest, ValidateNamesKeyValueAndRule) {
  EXPECT_TRUE(GlobalConfig::Validate(json::object()).ok());
  EXPECT_TRUE(
      GlobalConfig::Validate(json{{"ttl", 2}, {"loop_wait", 0.5}, {"retry_timeout", 0.7}}).ok());
  // Patroni accepts timings that break loop_wait + 2*retry_timeout <= ttl; so does pgha, and
  // says which ttl it runs with.
  json tight{{"ttl", 20}, {"loop_wait", 10}, {"retry_timeout", 10}};
  EXPECT_TRUE(GlobalConfig::Validate(tight).ok());
  auto adjusted = GlobalConfig::TimingAdjustment(tight, "bootstrap.dcs");
  ASSERT_TRUE(adjusted.has_value());
  EXPECT_THAT(*adjusted, HasSubstr("bootstrap.dcs: ttl=20"));
  EXPECT_THAT(*adjusted, HasSubstr("loop_wait + 2*retry_timeout <= ttl (30 > 20)"));
  EXPECT_THAT(*adjusted, HasSubstr("held for ttl=30 instead"));
  EXPECT_FALSE(GlobalConfig::TimingAdjustment(json{{"ttl", 30}}).has_value());
  EXPECT_FALSE(GlobalConfig::TimingAdjustment(json::array()).has_value());
  auto below = GlobalConfig::Validate(json{{"loop_wait", 0}}, "bootstrap.dcs");
  ASSERT_FALSE(below.ok());
  EXPECT_THAT(below.error().message(), HasSubstr("bootstrap.dcs.loop_wait: 0 is below"));
  EXPECT_FALSE(GlobalConfig::Validate(json{{"synchronous_mode", "sometimes"}}).ok());
  EXPECT_FALSE(GlobalConfig::Validate(json{{"pause", "perhaps"}}).ok());
  EXPECT_FALSE(GlobalConfig::Validate(json{{"synchronous_node_count", 0}}).ok());
  EXPECT_FALSE(GlobalConfig::Validate(json{{"postgresql", 1}}).ok());
  EXPECT_FALSE(GlobalConfig::Validate(json("text")).ok());
}

TEST(GlobalConfigTest, JsonAsBoolAndNumber) {
  EXPECT_EQ(JsonAsBool(json("OFF")), false);
  EXPECT_EQ(JsonAsBool(json(1)), true);
  EXPECT_FALSE(JsonAsBool(json(2)).has_value());
  EXPECT_FALSE(JsonAsBool(json::object()).has_value());
  EXPECT_EQ(JsonAsNumber(json("2.5")), 2.5);
  EXPECT_FALSE(JsonAsNumber(json("x")).has_value());
}

}  // namespace
}  // namespace pgha::model
