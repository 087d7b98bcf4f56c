// The collectors against recorded rows: names, labels, types and value conversions as
// postgres_exporter 0.11 has them (the live comparison runs in tests/integration).
#include "metrics/postgres_collectors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace pgha::metrics {
namespace {

using ::testing::HasSubstr;

// Answers each query whose text contains a key with that key's rows.
class RecordedSource final : public QuerySource {
 public:
  std::map<std::string, postgres::ResultSet> answers;
  std::vector<std::string> asked;
  Result<postgres::ResultSet> Query(const std::string& sql) override {
    asked.push_back(sql);
    for (const auto& [key, result] : answers) {
      if (sql.find(key) != std::string::npos) {
        return result;
      }
    }
    return Error::Invalid("relation does not exist");
  }
};

const Collector& Named(const std::string& name) {
  for (const auto& collector : AllCollectors()) {
    if (collector.name == name) {
      return collector;
    }
  }
  throw std::runtime_error("no collector " + name);
}

const Labels kServer = {{"server", "127.0.0.1:5434"}};

TEST(ValueConversionTest, TextBecomesSampleValues) {
  EXPECT_EQ(ToSampleValue("42"), 42);
  EXPECT_EQ(ToSampleValue("44348.821"), 44348.821);
  EXPECT_EQ(ToSampleValue("t"), 1);
  EXPECT_EQ(ToSampleValue("f"), 0);
  EXPECT_TRUE(std::isnan(ToSampleValue(std::nullopt)));
  EXPECT_TRUE(std::isnan(ToSampleValue("0/3000060")));
  EXPECT_TRUE(std::isnan(ToSampleValue("NaN")));
  EXPECT_TRUE(std::isinf(ToSampleValue("Infinity")));
  EXPECT_DOUBLE_EQ(ToSampleValue("2026-11-25 19:41:14.5+00"), 1795635674.5);
}

TEST(SettingsTest, UnitsBecomeSecondsAndBytes) {
  auto shared_buffers = ConvertSetting("shared_buffers", "16384", "8kB", "integer");
  ASSERT_TRUE(shared_buffers);
  EXPECT_EQ(shared_buffers->name, "pg_settings_shared_buffers_bytes");
  EXPECT_EQ(shared_buffers->value, 16384.0 * 8192);
  auto timeout = ConvertSetting("statement_timeout", "1500", "ms", "integer");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(timeout->name, "pg_settings_statement_timeout_seconds");
  EXPECT_DOUBLE_EQ(timeout->value, 1.5);
  auto naptime = ConvertSetting("autovacuum_naptime", "2", "min", "integer");
  ASSERT_TRUE(naptime);
  EXPECT_EQ(naptime->value, 120);
  auto wal_segment = ConvertSetting("wal_segment_size", "16777216", "B", "integer");
  ASSERT_TRUE(wal_segment);
  EXPECT_EQ(wal_segment->name, "pg_settings_wal_segment_size_bytes");
  EXPECT_EQ(wal_segment->value, 16777216);
  auto max_wal = ConvertSetting("max_wal_size", "1024", "MB", "integer");
  ASSERT_TRUE(max_wal);
  EXPECT_EQ(max_wal->value, 1024.0 * 1048576);
  // -1 means "disabled" and is kept as it is.
  auto disabled = ConvertSetting("log_temp_files", "-1", "kB", "integer");
  ASSERT_TRUE(disabled);
  EXPECT_EQ(disabled->name, "pg_settings_log_temp_files_bytes");
  EXPECT_EQ(disabled->value, -1);
}

TEST(SettingsTest, BooleansRealsAndOddInput) {
  EXPECT_EQ(ConvertSetting("fsync", "on", "", "bool")->value, 1);
  EXPECT_EQ(ConvertSetting("jit", "off", "", "bool")->value, 0);
  EXPECT_EQ(ConvertSetting("random_page_cost", "1.1", "", "real")->value, 1.1);
  EXPECT_EQ(ConvertSetting("pg_stat_statements.max", "5000", "", "integer")->name,
            "pg_settings_pg_stat_statements_max");
  EXPECT_FALSE(ConvertSetting("odd", "1", "furlongs", "integer"));
  EXPECT_FALSE(ConvertSetting("odd", "many", "", "integer"));
  EXPECT_FALSE(ConvertSetting("odd", "maybe", "", "bool"));
}

TEST(StaticTest, ShortVersionIsSemver) {
  EXPECT_EQ(ShortVersion("15.20 (Debian 15.20-0+deb12u1)"), "15.20.0");
  EXPECT_EQ(ShortVersion("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64"), "15.20.0");
  EXPECT_EQ(ShortVersion("9.6.24"), "9.6.24");
  EXPECT_EQ(ShortVersion("16beta1"), "16.0.0");
  EXPECT_EQ(ShortVersion("devel"), "");
}

TEST(CollectorsTest, StatDatabaseKnownColumnsTypedAndNewOnesUntyped) {
  RecordedSource source;
  source.answers["pg_stat_database"] = {
      {"datid", "datname", "xact_commit", "numbackends", "session_time", "stats_reset"},
      {{"5", "postgres", "35966", "3", "774275.67", std::nullopt},
       {"0", std::nullopt, "0", "0", "0", "2026-11-25 19:41:14+00"}}};
  MetricSet out;
  ASSERT_TRUE(Named("stat_database").collect(source, kServer, out).ok());
  const auto& families = out.families();
  EXPECT_EQ(families.at("pg_stat_database_xact_commit").type, MetricType::kCounter);
  EXPECT_EQ(families.at("pg_stat_database_numbackends").type, MetricType::kGauge);
  EXPECT_EQ(families.at("pg_stat_database_session_time").type, MetricType::kUntyped);
  EXPECT_FALSE(out.Has("pg_stat_database_datid"));
  std::string text = out.Render();
  EXPECT_THAT(text, HasSubstr("pg_stat_database_xact_commit{datid=\"5\",datname=\"postgres\","
                              "server=\"127.0.0.1:5434\"} 35966\n"));
  // The shared-objects row has no database name: an empty label, as postgres_exporter's.
  EXPECT_THAT(text, HasSubstr("pg_stat_database_stats_reset{datid=\"0\",datname=\"\",server="
                              "\"127.0.0.1:5434\"} 1.795635674e+09\n"));
  EXPECT_THAT(text, HasSubstr("pg_stat_database_stats_reset{datid=\"5\",datname=\"postgres\","
                              "server=\"127.0.0.1:5434\"} NaN\n"));
}

TEST(CollectorsTest, StatReplicationLabelsAndLag) {
  RecordedSource source;
  source.answers["pg_stat_replication"] = {
      {"pid", "application_name", "client_addr", "state", "replay_lsn", "reply_time", "slot_name",
       "pg_current_wal_lsn", "pg_current_wal_lsn_bytes", "pg_wal_lsn_diff"},
      {{"6461", "pg-0", "127.0.0.1", "streaming", "0/160C6F8", "2026-11-25 19:41:14+00", "pg_0",
        "0/160C6F8", "23119608", "0"}}};
  MetricSet out;
  ASSERT_TRUE(Named("stat_replication").collect(source, kServer, out).ok());
  std::string text = out.Render();
  EXPECT_THAT(text, HasSubstr("pg_stat_replication_pg_wal_lsn_diff{application_name=\"pg-0\","
                              "client_addr=\"127.0.0.1\",server=\"127.0.0.1:5434\",slot_name="
                              "\"pg_0\",state=\"streaming\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE pg_stat_replication_reply_time untyped\n"));
  EXPECT_EQ(out.families().size(), 3u);  // lsn bytes, lag, reply_time; the rest is discarded
}

TEST(CollectorsTest, BgwriterCountersGetTotal) {
  RecordedSource source;
  source.answers["pg_stat_bgwriter"] = {
      {"checkpoints_timed", "checkpoints_req", "checkpoint_write_time", "checkpoint_sync_time",
       "buffers_checkpoint", "buffers_clean", "maxwritten_clean", "buffers_backend",
       "buffers_backend_fsync", "buffers_alloc", "stats_reset"},
      {{"0", "12", "3922", "157", "9475", "1931", "16", "35531", "0", "126415", "1795636069"}}};
  MetricSet out;
  ASSERT_TRUE(Named("bgwriter").collect(source, kServer, out).ok());
  EXPECT_EQ(out.families().size(), 11u);
  EXPECT_THAT(
      out.Render(),
      HasSubstr("# TYPE pg_stat_bgwriter_buffers_alloc_total counter\n"
                "pg_stat_bgwriter_buffers_alloc_total{server=\"127.0.0.1:5434\"} 126415\n"));
}

TEST(CollectorsTest, SettingsAndStatic) {
  RecordedSource source;
  source.answers["pg_settings"] = {
      {"name", "setting", "unit", "short_desc", "vartype"},
      {{"work_mem", "4096", "kB", "Sets the maximum memory.", "integer"},
       {"fsync", "on", "", "Forces synchronization.", "bool"},
       {"weird", "1", "parsecs", "Unknown unit.", "integer"}}};
  source.answers["version()"] = {{"version", "current_setting"},
                                 {{"PostgreSQL 15.20 (Debian)", "15.20 (Debian)"}}};
  MetricSet out;
  ASSERT_TRUE(Named("settings").collect(source, kServer, out).ok());
  ASSERT_TRUE(Named("static").collect(source, kServer, out).ok());
  std::string text = out.Render();
  EXPECT_THAT(text,
              HasSubstr("pg_settings_work_mem_bytes{server=\"127.0.0.1:5434\"} 4.194304e+06"));
  EXPECT_THAT(text, HasSubstr("pg_settings_fsync{server=\"127.0.0.1:5434\"} 1\n"));
  EXPECT_FALSE(out.Has("pg_settings_weird"));
  EXPECT_THAT(text, HasSubstr("pg_static{server=\"127.0.0.1:5434\",short_version=\"15.20.0\","
                              "version=\"PostgreSQL 15.20 (Debian)\"} 1\n"));
}

TEST(CollectorsTest, AFailedQueryIsAnErrorNotACrash) {
  RecordedSource source;  // answers nothing
  for (const auto& collector : AllCollectors()) {
    MetricSet out;
    EXPECT_FALSE(collector.collect(source, kServer, out).ok()) << collector.name;
  }
  // Fewer columns in a row than in the header, or none at all, are tolerated.
  source.answers["pg_stat_bgwriter"] = {{"checkpoints_timed"}, {{}}};
  MetricSet out;
  EXPECT_TRUE(Named("bgwriter").collect(source, kServer, out).ok());
}

TEST(MetricSetTest, RendersSortedWithDuplicatesDropped) {
  MetricSet set;
  set.Add("b_metric", MetricType::kGauge, "B", {{"z", "1"}, {"a", "2"}}, 1);
  set.Add("a_metric", MetricType::kCounter, "A\nline", {}, 2);
  set.Add("b_metric", MetricType::kGauge, "B", {{"a", "1"}, {"z", "1"}}, 3);
  set.Add("b_metric", MetricType::kGauge, "B", {{"a", "2"}, {"z", "1"}}, 4);
  EXPECT_EQ(set.Render(),
            "# HELP a_metric A\\nline\n# TYPE a_metric counter\na_metric 2\n"
            "# HELP b_metric B\n# TYPE b_metric gauge\n"
            "b_metric{a=\"1\",z=\"1\"} 3\nb_metric{a=\"2\",z=\"1\"} 1\n");
}

}  // namespace
}  // namespace pgha::metrics
