// The exporter's scrape with fake sessions: pg_up, per-collector results, the session kept
// between scrapes and replaced after a timeout, options, and the settings from the environment.
#include "metrics/postgres_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "metrics/exporter_settings.h"
#include "metrics/http/exporter_server.h"

namespace pgha::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct FakeServer {
  int opens = 0;
  bool reachable = true;
  bool hang = false;  // every query times out (and breaks the session)
  std::vector<std::string> queries;
};

class FakeSession final : public DatabaseSession {
 public:
  explicit FakeSession(FakeServer& server) : server_(server) {}
  Result<postgres::ResultSet> Query(const std::string& sql, MonoTime) override {
    server_.queries.push_back(sql);
    if (server_.hang) {
      broken_ = true;
      return Error::Timeout("no answer from the server before the deadline");
    }
    if (sql.find("pg_stat_bgwriter") != std::string::npos) {
      return postgres::ResultSet{{"checkpoints_timed"}, {{"7"}}};
    }
    if (sql.find("version()") != std::string::npos) {
      return postgres::ResultSet{{"version", "v"}, {{"PostgreSQL 15.20", "15.20"}}};
    }
    return postgres::ResultSet{{}, {}};
  }
  bool ok() const override { return !broken_; }
  std::string ServerAddress() const override { return "10.0.0.1:5432"; }

 private:
  FakeServer& server_;
  bool broken_ = false;
};

SessionOpener Opener(FakeServer& server) {
  return [&server](MonoTime) -> Result<std::unique_ptr<DatabaseSession>> {
    ++server.opens;
    if (!server.reachable) {
      return Error::Unavailable("connection refused");
    }
    return std::unique_ptr<DatabaseSession>(new FakeSession(server));
  };
}

constexpr std::chrono::milliseconds kTimeout{1000};

TEST(ExporterTest, AReachableServerIsUpAndTheSessionIsKept) {
  FakeServer server;
  Exporter exporter({}, Opener(server));
  std::string first = exporter.Scrape(kTimeout);
  EXPECT_THAT(first, HasSubstr("\npg_up 1\n"));
  EXPECT_THAT(first, HasSubstr("pg_exporter_last_scrape_error 0\n"));
  EXPECT_THAT(first, HasSubstr("pg_scrape_collector_success{collector=\"bgwriter\"} 1\n"));
  EXPECT_THAT(first,
              HasSubstr("pg_stat_bgwriter_checkpoints_timed_total{server=\"10.0.0.1:5432\"} 7"));
  EXPECT_THAT(first, HasSubstr("process_open_fds "));
  std::string second = exporter.Scrape(kTimeout);
  EXPECT_THAT(second, HasSubstr("pg_exporter_scrapes_total 2\n"));
  EXPECT_EQ(server.opens, 1);
}

TEST(ExporterTest, AnUnreachableServerIsDownWithEveryCollectorFailed) {
  FakeServer server;
  server.reachable = false;
  Exporter exporter({}, Opener(server));
  std::string text = exporter.Scrape(kTimeout);
  EXPECT_THAT(text, HasSubstr("\npg_up 0\n"));
  EXPECT_THAT(text, HasSubstr("pg_exporter_last_scrape_error 1\n"));
  EXPECT_THAT(text, HasSubstr("pg_scrape_collector_success{collector=\"database\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("server=")));
  server.reachable = true;
  EXPECT_THAT(exporter.Scrape(kTimeout), HasSubstr("\npg_up 1\n"));
}

TEST(ExporterTest, AHungServerIsDownAndTheSessionReplaced) {
  FakeServer server;
  Exporter exporter({}, Opener(server));
  ASSERT_THAT(exporter.Scrape(kTimeout), HasSubstr("\npg_up 1\n"));
  server.hang = true;
  server.queries.clear();
  std::string text = exporter.Scrape(kTimeout);
  EXPECT_THAT(text, HasSubstr("\npg_up 0\n"));
  // After the first timeout nothing more is asked of the broken session.
  EXPECT_EQ(server.queries.size(), 1u);
  EXPECT_THAT(text, HasSubstr("pg_scrape_collector_success{collector=\"settings\"} 0\n"));
  server.hang = false;
  EXPECT_THAT(exporter.Scrape(kTimeout), HasSubstr("\npg_up 1\n"));
  EXPECT_EQ(server.opens, 2);
}

TEST(ExporterTest, OptionsChooseCollectorsAndAddConstantLabels) {
  FakeServer server;
  ExporterOptions options;
  options.default_metrics = false;
  options.disabled_collectors = {"database"};
  options.constant_labels = {{"env", "prod"}};
  Exporter exporter(options, Opener(server));
  EXPECT_THAT(exporter.EnabledCollectors(), ::testing::ElementsAre("bgwriter", "settings"));
  std::string text = exporter.Scrape(kTimeout);
  EXPECT_THAT(text, HasSubstr("pg_up{env=\"prod\"} 1\n"));
  // As postgres_exporter 0.11: the named collectors' series carry no constant labels.
  EXPECT_THAT(text,
              HasSubstr("pg_stat_bgwriter_checkpoints_timed_total{server=\"10.0.0.1:5432\"} 7"));
  EXPECT_THAT(text, Not(HasSubstr("collector=\"database\"")));
  EXPECT_THAT(text, Not(HasSubstr("collector=\"locks\"")));
}

TEST(ExporterTest, ScrapeTimeoutFollowsPrometheusWithAMargin) {
  using std::chrono::milliseconds;
  EXPECT_EQ(ScrapeTimeout(std::nullopt, milliseconds(10000)), milliseconds(10000));
  EXPECT_EQ(ScrapeTimeout("10", milliseconds(30000)), milliseconds(9500));
  EXPECT_EQ(ScrapeTimeout("2.5", milliseconds(1000)), milliseconds(1000));
  EXPECT_EQ(ScrapeTimeout("0.2", milliseconds(1000)), milliseconds(100));
  EXPECT_EQ(ScrapeTimeout("soon", milliseconds(4000)), milliseconds(4000));
  EXPECT_EQ(ScrapeTimeout("-3", milliseconds(4000)), milliseconds(4000));
  EXPECT_EQ(ScrapeTimeout("1e300", milliseconds(4000)), milliseconds(4000));
}

std::optional<std::string> From(const std::map<std::string, std::string>& env,
                                const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
}

Result<std::string> NoFiles(const std::string&) { return Error::NotFound("no file"); }

TEST(ExporterSettingsTest, DataSourceNameWins) {
  std::map<std::string, std::string> env = {{"DATA_SOURCE_NAME", "host=/run/postgresql"},
                                            {"DATA_SOURCE_URI", "ignored:5432/x"}};
  auto dsn = DataSourceFromEnvironment([&](const std::string& n) { return From(env, n); }, NoFiles);
  ASSERT_TRUE(dsn.ok());
  EXPECT_EQ(*dsn, "host=/run/postgresql");
}

TEST(ExporterSettingsTest, UriUserAndPasswordFromFiles) {
  std::map<std::string, std::string> env = {{"DATA_SOURCE_URI", "db:5432/postgres?sslmode=disable"},
                                            {"DATA_SOURCE_USER", "monitor"},
                                            {"DATA_SOURCE_PASS_FILE", "/secret"}};
  auto read = [](const std::string& path) -> Result<std::string> {
    if (path == "/secret") {
      return std::string("p@ss:w/rd\n");
    }
    return Error::NotFound("no file");
  };
  auto dsn = DataSourceFromEnvironment([&](const std::string& n) { return From(env, n); }, read);
  ASSERT_TRUE(dsn.ok());
  EXPECT_EQ(*dsn, "postgresql://monitor:p%40ss%3Aw%2Frd@db:5432/postgres?sslmode=disable");
}

TEST(ExporterSettingsTest, MissingOrSeveralDataSourcesAreClearErrors) {
  std::map<std::string, std::string> env;
  auto lookup = [&](const std::string& n) { return From(env, n); };
  auto none = DataSourceFromEnvironment(lookup, NoFiles);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.error().message(), HasSubstr("DATA_SOURCE_NAME"));
  env["DATA_SOURCE_NAME"] = "postgresql://a@h1/db,postgresql://a@h2/db";
  auto several = DataSourceFromEnvironment(lookup, NoFiles);
  ASSERT_FALSE(several.ok());
  EXPECT_THAT(several.error().message(), HasSubstr("one pgha-exporter per server"));
  env = {{"DATA_SOURCE_NAME_FILE", "/missing"}};
  auto unreadable = DataSourceFromEnvironment(lookup, NoFiles);
  ASSERT_FALSE(unreadable.ok());
  EXPECT_THAT(unreadable.error().message(), HasSubstr("/missing"));
}

TEST(ExporterSettingsTest, ConstantLabels) {
  auto labels = ParseConstantLabels("env=prod, region = eu-1");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(*labels, (Labels{{"env", "prod"}, {"region", "eu-1"}}));
  EXPECT_TRUE(ParseConstantLabels("")->empty());
  EXPECT_FALSE(ParseConstantLabels("env").ok());
  EXPECT_FALSE(ParseConstantLabels("bad-name=x").ok());
  EXPECT_FALSE(ParseConstantLabels("__reserved=x").ok());
}

TEST(ExporterSettingsTest, ListenAddresses) {
  auto any = http::ParseListenAddress(":9187");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
  EXPECT_EQ(any->port, 9187);
  auto v6 = http::ParseListenAddress("[::1]:9100");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(http::ParseListenAddress("9187").ok());
  EXPECT_FALSE(http::ParseListenAddress("host:99999").ok());
  EXPECT_FALSE(http::ParseListenAddress("host:port").ok());
}

}  // namespace
}  // namespace pgha::metrics
