#include "postgres/server_parameters.h"

#include <gtest/gtest.h>

#include <map>

namespace pgha::postgres {
namespace {

using nlohmann::json;

std::map<std::string, json> AsMap(const std::vector<std::pair<std::string, json>>& params) {
  std::map<std::string, json> out;
  for (const auto& [name, value] : params) {
    EXPECT_TRUE(out.emplace(name, value).second) << name << " listed twice";
  }
  return out;
}

TEST(ServerParametersTest, WalKeepSegmentsBecomesWalKeepSizeFrom13On) {
  // Patroni's acceptance suite sets wal_keep_segments: 100; PostgreSQL 15 refuses that name.
  auto on15 = AsMap(ServerParameters(json{{"wal_keep_segments", 100}}, json::object(), 15));
  EXPECT_EQ(on15.count("wal_keep_segments"), 0u);
  EXPECT_EQ(on15.at("wal_keep_size"), "1600MB");
  // wal_keep_size given wins; neither given: Patroni's default of 8 segments.
  auto both = AsMap(ServerParameters(json{{"wal_keep_segments", 100}, {"wal_keep_size", "1GB"}},
                                     json::object(), 15));
  EXPECT_EQ(both.at("wal_keep_size"), "1024MB");
  EXPECT_EQ(AsMap(ServerParameters(json::object(), json::object(), 15)).at("wal_keep_size"),
            "128MB");
  // And the reverse on 12.
  auto on12 = AsMap(ServerParameters(json{{"wal_keep_size", "1600MB"}}, json::object(), 12));
  EXPECT_EQ(on12.count("wal_keep_size"), 0u);
  EXPECT_EQ(on12.at("wal_keep_segments"), 100);
}

TEST(ServerParametersTest, ClusterWideComeFromTheDcsOnlyAndBadValuesFallBack) {
  auto params = AsMap(ServerParameters(
      json{{"max_connections", 10},
           {"max_wal_senders", 20},
           {"wal_level", "hot_standby"},
           {"wal_log_hints", "off"},
           {"work_mem", "4MB"}},
      json{{"max_wal_senders", 5}, {"work_mem", "8MB"}, {"wal_keep_segments", 3}}, 15));
  EXPECT_EQ(params.at("max_connections"), 100);  // below Patroni's bound of 25
  EXPECT_EQ(params.at("max_wal_senders"), 20);   // the local value is ignored
  EXPECT_EQ(params.at("wal_level"), "replica");  // renamed in 9.6
  EXPECT_EQ(params.at("wal_log_hints"), "on");   // pg_rewind needs it
  EXPECT_EQ(params.at("work_mem"), "8MB");       // local wins for the others
  EXPECT_EQ(params.at("wal_keep_size"), "128MB");
}

TEST(ServerParametersTest, RecoveryRaisesSettingsToWhatPgControlRecords) {
  // A backup of a primary with max_connections 101 restores only with at least 101.
  auto params = AsMap(ServerParameters(json{{"max_connections", 100}, {"max_wal_senders", 20}},
                                       json::object(), 15,
                                       {{"max_connections", 101}, {"max_wal_senders", 10}}));
  EXPECT_EQ(params.at("max_connections"), 101);
  EXPECT_EQ(params.at("max_wal_senders"), 20);  // already enough
  EXPECT_EQ(RecoveryMinimumFields().at("max_prepared_transactions"), "max_prepared_xacts setting");
}

TEST(ServerParametersTest, ClusterWideFirstThenByName) {
  auto params = ServerParameters(json{{"b", 1}, {"a", 2}}, json::object(), 15);
  ASSERT_GE(params.size(), ClusterWideDefaults().size() + 3);
  for (size_t i = 0; i < ClusterWideDefaults().size(); ++i) {
    EXPECT_EQ(params[i].first, ClusterWideDefaults()[i].first);
  }
  EXPECT_EQ(params[params.size() - 2].first, "a");
  EXPECT_EQ(params.back().first, "b");
}

}  // namespace
}  // namespace pgha::postgres
