#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "config/yaml_json.h"

namespace pgha::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSeedLikeYaml = R"(
scope: pg-ha
namespace: /service/
name: pg-0
restapi:
  listen: 127.0.0.1:8008
  connect_address: 127.0.0.1:8008
etcd3:
  hosts: 127.0.0.1:2379,127.0.0.1:2479,127.0.0.1:2579
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_keep_size: 128MB
  initdb:
  - encoding: UTF8
  - data-checksums
postgresql:
  listen: 127.0.0.1:5432
  connect_address: 127.0.0.1:5432
  data_dir: /var/lib/pgha/pg-0
  bin_dir: /usr/lib/postgresql/15/bin
  pgpass: /tmp/pgpass0
  authentication:
    replication:
      username: replicator
      password: rep-pass
    superuser:
      username: postgres
      password: zalando
    rewind:
      username: rewind_user
      password: rewind_password
  parameters:
    unix_socket_directories: '/tmp'
  pg_hba:
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 0.0.0.0/0 scram-sha-256
tags:
  nofailover: false
  noloadbalance: false
  clonefrom: false
  nosync: false
)";

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("pgha-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& content) {
    auto file = path_ / name;
    std::ofstream(file) << content;
    return file.string();
  }
  std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

Result<Config> FromYaml(const std::string& yaml, bool for_ctl = false) {
  auto tree = YamlToJson(yaml);
  if (!tree.ok()) {
    return tree.error();
  }
  return ConfigFromTree(*tree, for_ctl);
}

std::string ErrorOf(const Result<Config>& r) {
  return r.ok() ? std::string("<ok>") : r.error().message();
}

TEST(ConfigTest, LoadsAPatroniYml) {
  TempDir dir;
  LoadOptions options;
  options.path = dir.Write("patroni.yml", kSeedLikeYaml);
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->scope, "pg-ha");
  EXPECT_EQ(config->name, "pg-0");
  EXPECT_EQ(config->namespace_, "service");
  EXPECT_EQ(config->KeyPrefix(), "/service/pg-ha/");
  EXPECT_EQ(config->restapi.listen_address.port, 8008);
  EXPECT_EQ(config->etcd3.hosts,
            (std::vector<std::string>{"127.0.0.1:2379", "127.0.0.1:2479", "127.0.0.1:2579"}));
  EXPECT_EQ(config->etcd3.protocol, "http");
  EXPECT_EQ(config->postgresql.listen_address.port, 5432);
  EXPECT_EQ(config->postgresql.data_dir, "/var/lib/pgha/pg-0");
  EXPECT_EQ(config->postgresql.config_dir, "/var/lib/pgha/pg-0");
  EXPECT_EQ(config->postgresql.replication.username, "replicator");
  ASSERT_TRUE(config->postgresql.rewind.has_value());
  EXPECT_EQ(config->postgresql.rewind->password, "rewind_password");
  EXPECT_EQ(config->postgresql.pg_hba.size(), 2u);
  EXPECT_EQ(config->postgresql.BinaryPath("pg_ctl"), "/usr/lib/postgresql/15/bin/pg_ctl");
  EXPECT_EQ(config->bootstrap.dcs["ttl"], 30);
  EXPECT_EQ(config->bootstrap.dcs["postgresql"]["parameters"]["hot_standby"], "on");
  EXPECT_EQ(config->bootstrap.initdb.size(), 2u);
  EXPECT_FALSE(config->tags.nofailover);
  EXPECT_EQ(config->tags.failover_priority, 1);
  EXPECT_TRUE(config->warnings.empty()) << config->warnings.front();
}

TEST(ConfigTest, FlagTagsAreAdvertisedOnlyWhenSet) {
  TempDir dir;
  LoadOptions options;
  options.path = dir.Write("patroni.yml", kSeedLikeYaml);
  auto base = LoadConfig(options);
  ASSERT_TRUE(base.ok());
  nlohmann::json tree = base->raw;
  tree["tags"] = {{"nofailover", false}, {"noloadbalance", true}, {"clonefrom", 0},
                  {"nosync", "false"},   {"zone", "a"},           {"empty", false}};
  auto config = ConfigFromTree(tree);
  ASSERT_TRUE(config.ok()) << config.error().message();
  // As Patroni's get_tags: false-valued flags are left out ("false" is a non-empty string).
  EXPECT_EQ(config->tags.raw,
            (nlohmann::json{
                {"noloadbalance", true}, {"nosync", "false"}, {"zone", "a"}, {"empty", false}}));
}

TEST(ConfigTest, DirectoryOfYamlFilesMergesInNameOrder) {
  TempDir dir;
  dir.Write("00-base.yml", kSeedLikeYaml);
  dir.Write("10-override.yaml", "name: pg-7\nrestapi:\n  listen: 127.0.0.1:9999\n");
  dir.Write("README.txt", "not yaml: [");
  LoadOptions options;
  options.path = dir.path();
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->name, "pg-7");
  EXPECT_EQ(config->restapi.listen_address.port, 9999);
  EXPECT_EQ(config->restapi.connect_address, "127.0.0.1:8008");  // kept from the base file
}

TEST(ConfigTest, EnvironmentOverridesFileAndSpiloDefaultsUnderlieIt) {
  TempDir dir;
  LoadOptions options;
  options.path = dir.Write("patroni.yml", kSeedLikeYaml);
  options.environment = {{"PATRONI_NAME", "pg-env"},
                         {"PATRONI_ETCD3_HOSTS", "10.1.1.1:2379"},
                         {"PGVERSION", "13"},  // file has bin_dir: the file wins over Spilo
                         {"PATRONI_RESTAPI_PASSWORD", "pw"},
                         {"PATRONI_RESTAPI_USERNAME", "admin"}};
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->name, "pg-env");
  EXPECT_EQ(config->etcd3.hosts, (std::vector<std::string>{"10.1.1.1:2379"}));
  EXPECT_EQ(config->postgresql.bin_dir, "/usr/lib/postgresql/15/bin");
  ASSERT_TRUE(config->restapi.authentication.has_value());
  EXPECT_EQ(config->restapi.authentication->username, "admin");
  // ctl falls back to restapi.authentication, as patronictl does.
  ASSERT_TRUE(config->ctl.authentication.has_value());
  EXPECT_EQ(config->ctl.authentication->password, "pw");
}

TEST(ConfigTest, SeedEnvironmentAloneIsAWholeConfiguration) {
  LoadOptions options;
  options.environment = {
      {"SCOPE", "pg-ha"},       {"ETCD3_HOSTS", "'127.0.0.1:2379','127.0.0.1:2479'"},
      {"PATRONI_NAME", "pg-2"}, {"PATRONI_RESTAPI_PORT", "8010"},
      {"PGVERSION", "15"},      {"PGDATA", "/data/pg-2"},
      {"PGPORT", "5434"},       {"POSTGRES_PASSWORD", "pw"}};
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->name, "pg-2");
  EXPECT_EQ(config->restapi.listen_address.port, 8010);
  EXPECT_EQ(config->postgresql.listen_address.port, 5434);
  EXPECT_EQ(config->postgresql.superuser.password, "pw");
  EXPECT_EQ(config->postgresql.BinaryPath("initdb"), "/usr/lib/postgresql/15/bin/initdb");
  EXPECT_EQ(config->etcd3.hosts.size(), 2u);
}

TEST(ConfigTest, PatroniConfigurationVariableReplacesEverythingElse) {
  LoadOptions options;
  options.environment = {{"PATRONI_CONFIGURATION", kSeedLikeYaml}, {"PATRONI_NAME", "ignored"}};
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->name, "pg-0");
}

TEST(ConfigTest, PatroniKeysPghaDoesNotActOnAreNamedAtStart) {
  std::string yaml = std::string(kSeedLikeYaml) +
                     "log:\n  dir: /var/log/pgha\ncitus:\n  group: 0\n  database: citus\n";
  auto config = FromYaml(yaml);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  std::string warnings;
  for (const auto& w : config->warnings) warnings += w + "\n";
  EXPECT_THAT(warnings, HasSubstr("log.dir is not implemented by pgha and has no effect: pgha "
                                  "logs to standard error"));
  EXPECT_THAT(warnings, HasSubstr("citus is not implemented by pgha"));
  // What pgha implements is not warned about.
  EXPECT_THAT(warnings, Not(HasSubstr("postgresql.pg_hba")));
}

TEST(ConfigTest, PrePromoteAndBeforeStopAreRead) {
  std::string yaml = kSeedLikeYaml;
  yaml.replace(yaml.find("\npostgresql:\n") + 1, 12,
               "postgresql:\n  pre_promote: /bin/fence.sh\n  before_stop: 'echo bye'\n");
  auto config = FromYaml(yaml);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_EQ(config->postgresql.pre_promote, "/bin/fence.sh");
  EXPECT_EQ(config->postgresql.before_stop, "echo bye");
}

TEST(ConfigTest, TimingRuleViolationIsAcceptedWithAWarningNamingTheRule) {
  // Patroni starts with ttl: 20, loop_wait: 2, retry_timeout: 10 (its acceptance suite does).
  std::string yaml = kSeedLikeYaml;
  yaml.replace(yaml.find("ttl: 30"), 7, "ttl: 25");
  auto config = FromYaml(yaml);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  std::string warnings;
  for (const auto& w : config->warnings) warnings += w + "\n";
  EXPECT_THAT(warnings, HasSubstr("loop_wait + 2*retry_timeout <= ttl"));
  EXPECT_THAT(warnings, HasSubstr("bootstrap.dcs: ttl=25"));
}

TEST(ConfigTest, SubSecondTimingsAreAccepted) {
  std::string yaml = kSeedLikeYaml;
  yaml.replace(yaml.find("ttl: 30"), 7, "ttl: 2");
  yaml.replace(yaml.find("loop_wait: 10"), 13, "loop_wait: 0.5");
  yaml.replace(yaml.find("retry_timeout: 10"), 17, "retry_timeout: 0.7");
  auto config = FromYaml(yaml);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
}

TEST(ConfigTest, BadValuesNameKeyValueAndRule) {
  struct Case {
    std::string from, to, expected;
  };
  std::vector<Case> cases = {
      {"ttl: 30", "ttl: thirty", "bootstrap.dcs.ttl: '\"thirty\"' is not a number"},
      {"ttl: 30", "ttl: 1", "bootstrap.dcs.ttl: 1 is below the minimum of 2"},
      {"listen: 127.0.0.1:8008", "listen: 127.0.0.1:99999", "restapi.listen"},
      {"listen: 127.0.0.1:5432", "listen: localhost:abc", "postgresql.listen"},
      {"maximum_lag_on_failover: 1048576", "maximum_lag_on_failover: lots",
       "maximum_lag_on_failover"},
      {"nofailover: false", "nofailover: maybe", "tags.nofailover: expected true or false"},
      {"  - encoding: UTF8", "  - [1, 2]", "bootstrap.initdb"},
      {"hosts: 127.0.0.1:2379,127.0.0.1:2479,127.0.0.1:2579", "hosts: {a: 1}", "etcd3.hosts"},
      {"data_dir: /var/lib/pgha/pg-0", "data_dir: ", "postgresql.data_dir: required"},
  };
  for (const auto& c : cases) {
    std::string yaml = kSeedLikeYaml;
    auto pos = yaml.find(c.from);
    ASSERT_NE(pos, std::string::npos) << c.from;
    yaml.replace(pos, c.from.size(), c.to);
    auto config = FromYaml(yaml);
    EXPECT_FALSE(config.ok()) << c.to;
    EXPECT_THAT(ErrorOf(config), HasSubstr(c.expected)) << c.to;
  }
}

TEST(ConfigTest, MissingEssentialsAreNamed) {
  EXPECT_THAT(ErrorOf(FromYaml("name: a\n")), HasSubstr("scope: required"));
  EXPECT_THAT(ErrorOf(FromYaml("scope: s\n")), HasSubstr("name: required"));
  EXPECT_THAT(ErrorOf(FromYaml("scope: s\nname: a\n")), HasSubstr("etcd3: required"));
  EXPECT_THAT(ErrorOf(FromYaml("scope: s\nname: a\netcd3: {hosts: 'h:1'}\n")),
              HasSubstr("restapi.listen: required"));
  EXPECT_THAT(ErrorOf(FromYaml("- a\n- b\n")), HasSubstr("top level must be a mapping"));
  EXPECT_THAT(ErrorOf(FromYaml("scope: s\nname: a\netcd:\n  host: h:2379\n")),
              HasSubstr("etcd3 DCS only"));
}

TEST(ConfigTest, UnknownKeysWarnButDoNotFail) {
  std::string yaml =
      std::string(kSeedLikeYaml) + "restapi_typo: 1\nwatchdog:\n  mode: off\n  devize: /dev/x\n";
  auto config = FromYaml(yaml);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_EQ(config->watchdog.mode, "off");  // YAML's `off` is false; it still means off
  ASSERT_EQ(config->warnings.size(), 2u);
  EXPECT_THAT(config->warnings[0], HasSubstr("'restapi_typo'"));
  EXPECT_THAT(config->warnings[1], HasSubstr("'watchdog.devize'"));
}

TEST(ConfigTest, CtlModeNeedsOnlyScopeAndDcs) {
  auto config = FromYaml("scope: pg-ha\netcd3:\n  host: 127.0.0.1:2379\n", /*for_ctl=*/true);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_EQ(config->etcd3.hosts, (std::vector<std::string>{"127.0.0.1:2379"}));
}

TEST(ConfigTest, CtlModeAcceptsAnEmptyConfiguration) {
  // pghactl --dcs-url etcd3://host:2379 list pg-ha needs no file at all.
  auto config = FromYaml("{}", /*for_ctl=*/true);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_TRUE(config->scope.empty());
  EXPECT_TRUE(config->etcd3.hosts.empty());
  EXPECT_FALSE(FromYaml("{}").ok());
}

TEST(ConfigTest, EtcdUrlsAndProtocolAreNormalised) {
  auto config =
      FromYaml("scope: s\netcd3:\n  hosts: ['https://e1:2379/', 'e2']\n", /*for_ctl=*/true);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_EQ(config->etcd3.protocol, "https");
  EXPECT_EQ(config->etcd3.hosts, (std::vector<std::string>{"e1:2379", "e2:2379"}));
}

TEST(ConfigTest, MissingFileIsAClearError) {
  LoadOptions options;
  options.path = "/nonexistent/patroni.yml";
  auto config = LoadConfig(options);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.error().IsNotFound());
  EXPECT_THAT(config.error().message(), HasSubstr("/nonexistent/patroni.yml"));
}

TEST(ConfigTest, HostPortForms) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:8008", 1)->ToString(), "127.0.0.1:8008");
  EXPECT_EQ(ParseHostPort("[::1]:8008", 1)->host, "::1");
  EXPECT_EQ(ParseHostPort(":8008", 1)->host, "0.0.0.0");
  EXPECT_EQ(ParseHostPort("8008", 1)->port, 8008);
  EXPECT_EQ(ParseHostPort("host", 2379)->port, 2379);
  EXPECT_FALSE(ParseHostPort("host:0", 1).ok());
  EXPECT_FALSE(ParseHostPort("[::1", 1).ok());
  EXPECT_FALSE(ParseHostPort("", 0).ok());
}

TEST(ConfigTest, NofailoverWithPriorityContradicts) {
  std::string yaml = kSeedLikeYaml;
  yaml.replace(yaml.find("nofailover: false"), 17, "nofailover: true\n  failover_priority: 3");
  EXPECT_THAT(ErrorOf(FromYaml(yaml)), HasSubstr("failover_priority"));
}

TEST(ConfigTest, TheSampleInDeployIsValid) {
  LoadOptions options;
  options.path = std::string(PGHA_SOURCE_DIR) + "/deploy/patroni.yml";
  auto config = LoadConfig(options);
  ASSERT_TRUE(config.ok()) << ErrorOf(config);
  EXPECT_TRUE(config->warnings.empty());
  EXPECT_EQ(config->etcd3.hosts.size(), 3u);
}

}  // namespace
}  // namespace pgha::config
