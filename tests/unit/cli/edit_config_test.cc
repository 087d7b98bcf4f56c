// pghactl edit-config against a fake DCS and a scripted terminal: patronictl 3.0.2's key paths,
// deletions and parameter names with dots; the diff, the confirmation and the compare-and-swap.
#include "cli/edit_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_ctl.h"

namespace pgha::cli {
namespace {

using nlohmann::json;
using pgha::testing::FakeTerminal;
using ::testing::HasSubstr;

TEST(ApplySettingsTest, PathsDeletionsAndDottedParameterNames) {
  json config = {{"ttl", 30},
                 {"postgresql", {{"use_slots", true}, {"parameters", {{"work_mem", "4MB"}}}}}};
  auto changed = ApplySettings(config,
                               {"loop_wait=5", "ttl=null", "postgresql.use_slots=null",
                                "synchronous_node_count= 2", "tags.a.b=x"},
                               {"auto_explain.log_min_duration=10", "work_mem=null"});
  ASSERT_TRUE(changed.ok()) << changed.error().message();
  EXPECT_EQ(*changed,
            (json{{"loop_wait", 5},
                  {"synchronous_node_count", 2},
                  {"tags", {{"a", {{"b", "x"}}}}},
                  {"postgresql", {{"parameters", {{"auto_explain.log_min_duration", 10}}}}}}));
  for (const std::string bad : {"loop_wait", "", "a..b=1", "=1", "a.=1", ".a=1"}) {
    auto refused = ApplySettings(config, {bad}, {});
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().message(), "Invalid parameter setting " + bad);
  }
  auto unparsable = ApplySettings(config, {"ttl=[1"}, {});
  ASSERT_FALSE(unparsable.ok());
  EXPECT_THAT(unparsable.error().message(), HasSubstr("ttl=[1: "));
}

struct Cluster : pgha::testing::CtlCluster {
  Cluster() : CtlCluster("initial-dcs.txt") {}
  json Config() const { return json::parse(*dcs.Value("config")); }
};

ConfigEditor NoEditor() {
  return [](const std::string&) -> Result<std::string> {
    ADD_FAILURE() << "the editor was opened";
    return Error::Internal("no editor");
  };
}

ConfigDiff RecordingDiff(int* calls) {
  return [calls](const std::string& before, const std::string& after) {
    ++*calls;
    return "--- before\n+++ after\n" + std::to_string(before.size()) + " -> " +
           std::to_string(after.size()) + "\n";
  };
}

TEST(EditConfigTest, AChangeIsShownConfirmedAndWrittenOverTheRevisionItWasReadAt) {
  Cluster c;
  int diffs = 0;
  FakeTerminal terminal({"y"});
  auto ctx = c.Context(terminal);
  auto exit_code = EditConfig(ctx, {.sets = {"loop_wait=5"}, .pg_sets = {"max_connections=200"}},
                              NoEditor(), RecordingDiff(&diffs));
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(diffs, 1);
  EXPECT_THAT(terminal.out(), HasSubstr("--- before\n+++ after\n"));
  EXPECT_THAT(terminal.out(), HasSubstr("Apply these changes? [y/N]: y\nConfiguration changed\n"));
  EXPECT_EQ(c.Config()["loop_wait"], 5);
  EXPECT_EQ(c.Config()["postgresql"]["parameters"]["max_connections"], 200);
  EXPECT_EQ(c.Config()["ttl"], 30);  // the rest kept
}

TEST(EditConfigTest, NothingChangedWritesNothing) {
  Cluster c;
  int64_t revision = c.dcs.ModRevision("config");
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = EditConfig(ctx, {.sets = {"ttl=30"}, .force = true}, NoEditor(),
                              [](const std::string&, const std::string&) { return ""; });
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(terminal.out(), "Not changed\n");
  EXPECT_EQ(c.dcs.ModRevision("config"), revision);
}

TEST(EditConfigTest, AnInvalidResultAConcurrentWriteAndANoAreRefused) {
  {
    Cluster c;
    std::string before = *c.dcs.Value("config");
    FakeTerminal terminal;
    auto ctx = c.Context(terminal);
    auto result = EditConfig(ctx, {.sets = {"loop_wait=soon"}, .force = true, .quiet = true},
                             NoEditor(), nullptr);
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(result.error().message(), HasSubstr("the new configuration is invalid: "));
    EXPECT_EQ(*c.dcs.Value("config"), before);
  }
  {
    Cluster c;
    c.dcs.FailNextCompares(1);  // another operator wrote the key after it was read
    FakeTerminal terminal;
    auto ctx = c.Context(terminal);
    auto result = EditConfig(ctx, {.sets = {"loop_wait=5"}, .force = true, .quiet = true},
                             NoEditor(), nullptr);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message(), "Config modification aborted due to concurrent changes");
    EXPECT_EQ(c.Config()["loop_wait"], 10);
  }
  {
    Cluster c;
    FakeTerminal terminal({"n"});
    auto ctx = c.Context(terminal);
    auto result = EditConfig(ctx, {.sets = {"loop_wait=5"}, .quiet = true}, NoEditor(), nullptr);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().message(), "Aborted");
    EXPECT_EQ(c.Config()["loop_wait"], 10);
  }
}

TEST(EditConfigTest, ReplaceApplyAndTheEditor) {
  Cluster c;
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  ASSERT_TRUE(EditConfig(ctx,
                         {.replace_yaml = "ttl: 40\nloop_wait: 10\n",
                          .apply_yaml = "retry_timeout: 15\n",
                          .force = true,
                          .quiet = true},
                         NoEditor(), nullptr)
                  .ok());
  EXPECT_EQ(c.Config(), (json{{"ttl", 40}, {"loop_wait", 10}, {"retry_timeout", 15}}));

  std::string shown;
  auto editor = [&shown](const std::string& yaml) -> Result<std::string> {
    shown = yaml;
    return yaml + "maximum_lag_on_failover: 0\n";
  };
  ASSERT_TRUE(EditConfig(ctx, {.force = true, .quiet = true}, editor, nullptr).ok());
  EXPECT_THAT(shown, HasSubstr("ttl: 40\n"));
  EXPECT_EQ(c.Config()["maximum_lag_on_failover"], 0);
}

}  // namespace
}  // namespace pgha::cli
