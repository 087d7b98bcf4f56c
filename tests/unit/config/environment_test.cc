#include "config/environment.h"

#include <gtest/gtest.h>

namespace pgha::config {
namespace {

using nlohmann::json;

TEST(EnvironmentTest, PatroniVariablesMapToSections) {
  std::vector<std::string> warnings;
  Environment env = {
      {"PATRONI_NAME", "pg-0"},
      {"PATRONI_SCOPE", "pg-ha"},
      {"PATRONI_NAMESPACE", "/service/"},
      {"PATRONI_RESTAPI_LISTEN", "0.0.0.0:8008"},
      {"PATRONI_RESTAPI_CONNECT_ADDRESS", "10.0.0.1:8008"},
      {"PATRONI_RESTAPI_USERNAME", "admin"},
      {"PATRONI_RESTAPI_PASSWORD", "secret"},
      {"PATRONI_RESTAPI_ALLOWLIST", "['127.0.0.1', '10.0.0.0/8']"},
      {"PATRONI_CTL_INSECURE", "true"},
      {"PATRONI_CTL_USERNAME", "ctl"},
      {"PATRONI_POSTGRESQL_LISTEN", "0.0.0.0:5432"},
      {"PATRONI_POSTGRESQL_DATA_DIR", "/data/pg"},
      {"PATRONI_POSTGRESQL_BIN_PG_CTL", "/opt/pg_ctl"},
      {"PATRONI_SUPERUSER_USERNAME", "postgres"},
      {"PATRONI_SUPERUSER_PASSWORD", "pw"},
      {"PATRONI_REPLICATION_SSLMODE", "require"},
      {"PATRONI_REWIND_USERNAME", "rewinder"},
      {"PATRONI_LOG_LEVEL", "DEBUG"},
      {"PATRONI_LOGLEVEL", "WARNING"},
      {"PATRONI_ETCD3_HOSTS", "'10.0.0.1:2379','10.0.0.2:2379'"},
      {"PATRONI_ETCD3_PROTOCOL", "https"},
      {"PATRONI_ETCD3_CACERT", "/ca.pem"},
      {"PATRONI_ETCD3_USERNAME", "root"},
      {"PATRONI_CITUS_GROUP", "0"},
      {"PATRONI_KUBERNETES_USE_ENDPOINTS", "true"},
      {"PATRONI_BOGUS", "x"},
      {"HOME", "/root"},
  };
  json tree = PatroniEnvironmentOverlay(env, &warnings);
  EXPECT_EQ(tree["name"], "pg-0");
  EXPECT_EQ(tree["scope"], "pg-ha");
  EXPECT_EQ(tree["namespace"], "/service/");
  EXPECT_EQ(tree["restapi"]["listen"], "0.0.0.0:8008");
  EXPECT_EQ(tree["restapi"]["connect_address"], "10.0.0.1:8008");
  EXPECT_EQ(tree["restapi"]["authentication"]["username"], "admin");
  EXPECT_EQ(tree["restapi"]["authentication"]["password"], "secret");
  EXPECT_EQ(tree["restapi"]["allowlist"], (json{"127.0.0.1", "10.0.0.0/8"}));
  EXPECT_EQ(tree["ctl"]["insecure"], "true");
  EXPECT_EQ(tree["ctl"]["authentication"]["username"], "ctl");
  EXPECT_EQ(tree["postgresql"]["listen"], "0.0.0.0:5432");
  EXPECT_EQ(tree["postgresql"]["data_dir"], "/data/pg");
  EXPECT_EQ(tree["postgresql"]["bin_name"]["pg_ctl"], "/opt/pg_ctl");
  EXPECT_EQ(tree["postgresql"]["authentication"]["superuser"]["username"], "postgres");
  EXPECT_EQ(tree["postgresql"]["authentication"]["replication"]["sslmode"], "require");
  EXPECT_EQ(tree["postgresql"]["authentication"]["rewind"]["username"], "rewinder");
  EXPECT_EQ(tree["etcd3"]["hosts"], (json{"10.0.0.1:2379", "10.0.0.2:2379"}));
  EXPECT_EQ(tree["etcd3"]["protocol"], "https");
  EXPECT_EQ(tree["etcd3"]["cacert"], "/ca.pem");
  EXPECT_EQ(tree["etcd3"]["username"], "root");
  EXPECT_EQ(tree["citus"]["group"], "0");
  EXPECT_EQ(tree["kubernetes"]["use_endpoints"], "true");
  EXPECT_TRUE(tree["log"].contains("level"));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("PATRONI_BOGUS"), std::string::npos);
  EXPECT_FALSE(tree.contains("home"));
}

TEST(EnvironmentTest, ListsInEveryFormPatroniAccepts) {
  EXPECT_EQ(ParseEnvironmentList("a:1,b:2"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(ParseEnvironmentList("'a:1', 'b:2'"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(ParseEnvironmentList("[\"a:1\",\"b:2\"]"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(ParseEnvironmentList("single:2379"), (std::vector<std::string>{"single:2379"}));
  EXPECT_TRUE(ParseEnvironmentList("").empty());
}

TEST(EnvironmentTest, SeedStyleVariables) {
  // The seed's docker-compose and .env.postgres.
  Environment env = {{"SCOPE", "pg-ha"},
                     {"ETCD3_HOSTS", "'etcd-1:2379','etcd-2:2379','etcd-3:2379'"},
                     {"PATRONI_NAME", "pg-1"},
                     {"PATRONI_RESTAPI_PORT", "8009"},
                     {"PGVERSION", "15"},
                     {"POSTGRES_USER", "postgres"},
                     {"POSTGRES_PASSWORD", "s3cret"},
                     {"PGUSER_STANDBY", "standby"},
                     {"PGPASSWORD_STANDBY", "repl"},
                     {"NAMESPACE", "default"}};
  json tree = SpiloEnvironmentDefaults(env);
  EXPECT_EQ(tree["scope"], "pg-ha");
  EXPECT_EQ(tree["name"], "pg-1");
  EXPECT_EQ(tree["etcd3"]["hosts"], (json{"etcd-1:2379", "etcd-2:2379", "etcd-3:2379"}));
  EXPECT_EQ(tree["restapi"]["listen"], "0.0.0.0:8009");
  EXPECT_EQ(tree["postgresql"]["bin_dir"], "/usr/lib/postgresql/15/bin");
  EXPECT_EQ(tree["postgresql"]["authentication"]["superuser"]["password"], "s3cret");
  EXPECT_EQ(tree["postgresql"]["authentication"]["replication"]["username"], "standby");
  EXPECT_FALSE(tree.contains("namespace"));  // Kubernetes' "default" is not a key namespace
}

TEST(EnvironmentTest, RestApiPortIsNotReportedAsUnknown) {
  std::vector<std::string> warnings;
  (void)PatroniEnvironmentOverlay({{"PATRONI_RESTAPI_PORT", "8008"}}, &warnings);
  EXPECT_TRUE(warnings.empty());
}

}  // namespace
}  // namespace pgha::config
