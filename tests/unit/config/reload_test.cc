// MergeReload: what a reload applies now and what waits for a restart of pgha.
#include "config/reload.h"

#include <gtest/gtest.h>

#include "config/yaml_json.h"

namespace pgha::config {
namespace {

Config FromYaml(const std::string& yaml) {
  auto tree = YamlToJson(yaml);
  EXPECT_TRUE(tree.ok()) << tree.error().message();
  auto config = ConfigFromTree(*tree);
  EXPECT_TRUE(config.ok()) << config.error().message();
  return *config;
}

std::string Node(const std::string& name, const std::string& etcd, const std::string& api,
                 const std::string& tags, const std::string& data_dir = "/data/pg") {
  return "scope: pg-ha\nname: " + name + "\n" +                                          //
         "etcd3: {hosts: '" + etcd + "'}\n" +                                            //
         "restapi: {listen: '" + api + "', connect_address: '" + api + "'}\n" +          //
         "postgresql: {data_dir: " + data_dir + ", listen: '127.0.0.1:5432', " +         //
         "connect_address: '127.0.0.1:5432', authentication: {superuser: {username: " +  //
         "postgres, password: pw}, replication: {username: r, password: pw}}}\n" +       //
         "tags: " + tags + "\n";
}

TEST(MergeReload, AppliesTagsAndKeepsWhatNeedsARestart) {
  Config running = FromYaml(Node("pg-0", "10.0.0.1:2379", "127.0.0.1:8008", "{nofailover: false}"));
  Config fresh =
      FromYaml(Node("pg-9", "10.0.0.2:2379", "127.0.0.1:8010", "{nofailover: true}", "/elsewhere"));

  Reloaded reloaded = MergeReload(running, fresh);

  EXPECT_TRUE(reloaded.config.tags.nofailover);
  EXPECT_EQ(reloaded.config.tags.raw, fresh.tags.raw);
  EXPECT_EQ(reloaded.config.name, "pg-0");
  EXPECT_EQ(reloaded.config.postgresql.data_dir, "/data/pg");
  EXPECT_EQ(reloaded.config.etcd3.hosts, running.etcd3.hosts);
  EXPECT_EQ(reloaded.config.restapi.listen, running.restapi.listen);
  EXPECT_EQ(reloaded.config.raw["restapi"], running.raw["restapi"]);
  EXPECT_EQ(reloaded.config.raw["etcd3"], running.raw["etcd3"]);
  EXPECT_EQ(reloaded.kept,
            (std::vector<std::string>{"name", "postgresql.data_dir", "etcd3", "restapi"}));
}

TEST(MergeReload, NothingKeptWhenOnlyReloadableSettingsChanged) {
  Config running = FromYaml(Node("pg-0", "10.0.0.1:2379", "127.0.0.1:8008", "{nofailover: false}"));
  Config fresh = FromYaml(Node("pg-0", "10.0.0.1:2379", "127.0.0.1:8008", "{clonefrom: true}"));

  Reloaded reloaded = MergeReload(running, fresh);

  EXPECT_TRUE(reloaded.kept.empty());
  EXPECT_TRUE(reloaded.config.tags.clonefrom);
  EXPECT_FALSE(reloaded.config.tags.nofailover);
}

}  // namespace
}  // namespace pgha::config
