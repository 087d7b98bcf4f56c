#include "config/yaml_json.h"

#include <gtest/gtest.h>

namespace pgha::config {
namespace {

using nlohmann::json;

TEST(YamlJsonTest, PlainScalarsFollowPyYamlSafeLoad) {
  EXPECT_EQ(ResolvePlainScalar("on"), json(true));
  EXPECT_EQ(ResolvePlainScalar("Off"), json(false));
  EXPECT_EQ(ResolvePlainScalar("yes"), json(true));
  EXPECT_EQ(ResolvePlainScalar("NO"), json(false));
  EXPECT_EQ(ResolvePlainScalar("~"), json(nullptr));
  EXPECT_EQ(ResolvePlainScalar("null"), json(nullptr));
  EXPECT_EQ(ResolvePlainScalar("30"), json(30));
  EXPECT_EQ(ResolvePlainScalar("-7"), json(-7));
  EXPECT_EQ(ResolvePlainScalar("0x1A"), json(26));
  EXPECT_EQ(ResolvePlainScalar("0755"), json(493));  // YAML 1.1 octal
  EXPECT_EQ(ResolvePlainScalar("1_000"), json(1000));
  EXPECT_EQ(ResolvePlainScalar("0.5"), json(0.5));
  EXPECT_EQ(ResolvePlainScalar("128MB"), json("128MB"));
  EXPECT_EQ(ResolvePlainScalar("hot_standby"), json("hot_standby"));
  EXPECT_EQ(ResolvePlainScalar("127.0.0.1:5432"), json("127.0.0.1:5432"));
  EXPECT_EQ(ResolvePlainScalar("99999999999999999999999"), json("99999999999999999999999"));
}

TEST(YamlJsonTest, QuotedScalarsStayStrings) {
  auto parsed = YamlToJson("a: 'on'\nb: \"30\"\nc: on\nd: 30\n");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["a"], json("on"));
  EXPECT_EQ((*parsed)["b"], json("30"));
  EXPECT_EQ((*parsed)["c"], json(true));
  EXPECT_EQ((*parsed)["d"], json(30));
}

TEST(YamlJsonTest, NestedStructures) {
  auto parsed = YamlToJson(R"(
bootstrap:
  dcs:
    ttl: 30
    postgresql:
      parameters:
        wal_level: replica
  initdb:
  - encoding: UTF8
  - data-checksums
empty:
)");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ((*parsed)["bootstrap"]["dcs"]["ttl"], 30);
  EXPECT_EQ((*parsed)["bootstrap"]["initdb"][0]["encoding"], "UTF8");
  EXPECT_EQ((*parsed)["bootstrap"]["initdb"][1], "data-checksums");
  EXPECT_TRUE((*parsed)["empty"].is_null());
}

TEST(YamlJsonTest, ErrorsCarryLineAndColumn) {
  auto parsed = YamlToJson("a: [1, 2\nb: 3\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_TRUE(parsed.error().IsInvalid());
  EXPECT_NE(parsed.error().message().find("line"), std::string::npos);
}

TEST(YamlJsonTest, RefusesAbsurdNesting) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  auto parsed = YamlToJson(deep);
  EXPECT_FALSE(parsed.ok());
}

TEST(YamlJsonTest, JsonToYamlReadsBackTheSame) {
  json value = {{"scope", "pg-ha"},
                {"tricky", {"on", "30", "", "a: b", "- x", "#c", "null", "0x10"}},
                {"n", 5},
                {"f", 0.25},
                {"b", false},
                {"nothing", nullptr},
                {"empty_map", json::object()},
                {"empty_list", json::array()},
                {"nested", {{"list", {{{"k", "v"}}, 1}}}}};
  auto back = YamlToJson(JsonToYaml(value));
  ASSERT_TRUE(back.ok()) << JsonToYaml(value);
  EXPECT_EQ(*back, value) << JsonToYaml(value);
}

TEST(YamlJsonTest, DeepMerge) {
  json base = {{"a", {{"x", 1}, {"y", 2}}}, {"b", 1}};
  DeepMerge(base, json{{"a", {{"y", 3}, {"z", 4}}}, {"b", {{"now", "map"}}}});
  EXPECT_EQ(base, (json{{"a", {{"x", 1}, {"y", 3}, {"z", 4}}}, {"b", {{"now", "map"}}}}));
}

}  // namespace
}  // namespace pgha::config
