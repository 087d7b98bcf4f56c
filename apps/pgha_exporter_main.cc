// pgha-exporter: PostgreSQL metrics for Prometheus (postgres_exporter's job), on port 9187 with
// postgres_exporter's flags, environment variables and default metric names.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/log.h"
#include "common/strings.h"
#include "metrics/exporter_settings.h"
#include "metrics/http/exporter_server.h"
#include "metrics/postgres_exporter.h"

namespace {

constexpr const char* kVersion = "0.1.0";

std::optional<std::string> Environment(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
}

pgha::Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    return pgha::Error::NotFound("no such readable file");
  }
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pgha-exporter: PostgreSQL metrics for Prometheus (postgres_exporter-compatible)"};
  std::string listen_address = ":9187";
  std::string telemetry_path = "/metrics";
  bool disable_default = false;
  bool disable_settings = false;
  bool auto_discover = false;
  std::string query_path;
  bool dump_maps = false;
  std::string constant_labels;
  std::string exclude_databases;
  std::string include_databases;
  std::string metric_prefix = "pg";
  std::string web_config;
  std::string log_level = "info";
  std::string log_format = "logfmt";
  double scrape_timeout_seconds = 10;
  bool collector_database = true;
  bool collector_bgwriter = true;

  app.add_option("--web.listen-address", listen_address, "address to serve metrics on")
      ->envname("PG_EXPORTER_WEB_LISTEN_ADDRESS")
      ->capture_default_str();
  app.add_option("--web.telemetry-path", telemetry_path, "path under which metrics are served")
      ->envname("PG_EXPORTER_WEB_TELEMETRY_PATH")
      ->capture_default_str();
  app.add_flag("--disable-default-metrics", disable_default,
               "leave out the default metrics (pg_stat_*, pg_locks, ...)")
      ->envname("PG_EXPORTER_DISABLE_DEFAULT_METRICS");
  app.add_flag("--disable-settings-metrics", disable_settings, "leave out pg_settings_*")
      ->envname("PG_EXPORTER_DISABLE_SETTINGS_METRICS");
  app.add_flag("--collector.database,!--no-collector.database", collector_database,
               "pg_database_size_bytes (default: enabled)");
  app.add_flag("--collector.bgwriter,!--no-collector.bgwriter", collector_bgwriter,
               "pg_stat_bgwriter_* (default: enabled)");
  app.add_option("--constantLabels", constant_labels, "labels added to every series: a=b,c=d")
      ->envname("PG_EXPORTER_CONSTANT_LABELS");
  app.add_option("--scrape-timeout", scrape_timeout_seconds,
                 "longest a scrape may take, in seconds (also bounded by Prometheus' "
                 "scrape timeout)")
      ->envname("PG_EXPORTER_SCRAPE_TIMEOUT")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--log.level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log.format", log_format, "logfmt (json is not supported)")
      ->check(CLI::IsMember({"logfmt"}))
      ->capture_default_str();
  app.add_flag("--dumpmaps", dump_maps, "print the collectors that would run and exit");
  // postgres_exporter flags pgha-exporter does not implement; refused when used.
  app.add_flag("--auto-discover-databases", auto_discover, "not supported")
      ->envname("PG_EXPORTER_AUTO_DISCOVER_DATABASES");
  app.add_option("--extend.query-path", query_path, "not supported")
      ->envname("PG_EXPORTER_EXTEND_QUERY_PATH");
  app.add_option("--exclude-databases", exclude_databases, "only with auto-discovery")
      ->envname("PG_EXPORTER_EXCLUDE_DATABASES");
  app.add_option("--include-databases", include_databases, "only with auto-discovery")
      ->envname("PG_EXPORTER_INCLUDE_DATABASES");
  app.add_option("--metric-prefix", metric_prefix, "only \"pg\" is supported")
      ->envname("PG_EXPORTER_METRIC_PREFIX");
  app.add_option("--web.config.file", web_config, "not supported (TLS, basic auth)");
  app.set_version_flag("--version", std::string("pgha-exporter ") + kVersion +
                                        " (postgres_exporter 0.11 compatible)");
  CLI11_PARSE(app, argc, argv);

  auto refuse = [](const std::string& what) {
    std::cerr << "pgha-exporter: " << what << "\n";
    return 2;
  };
  if (auto_discover) {
    return refuse(
        "--auto-discover-databases is not supported: the default metrics already cover every "
        "database of the server");
  }
  if (!query_path.empty()) {
    return refuse("--extend.query-path (custom queries) is not supported");
  }
  if (!web_config.empty()) {
    return refuse("--web.config.file (TLS, basic auth) is not supported");
  }
  if (metric_prefix != "pg") {
    return refuse("--metric-prefix other than \"pg\" is not supported");
  }
  if (telemetry_path.empty() || telemetry_path.front() != '/') {
    return refuse("--web.telemetry-path must start with '/'");
  }
  auto labels = pgha::metrics::ParseConstantLabels(constant_labels);
  if (!labels.ok()) {
    return refuse(labels.error().message());
  }
  auto address = pgha::metrics::http::ParseListenAddress(listen_address);
  if (!address.ok()) {
    return refuse(address.error().message());
  }

  pgha::metrics::ExporterOptions options;
  options.default_metrics = !disable_default;
  options.settings_metrics = !disable_settings;
  if (!collector_database) {
    options.disabled_collectors.insert("database");
  }
  if (!collector_bgwriter) {
    options.disabled_collectors.insert("bgwriter");
  }
  options.constant_labels = *labels;
  options.version = kVersion;
  auto scrape_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(scrape_timeout_seconds * 1000));

  if (dump_maps) {
    pgha::metrics::Exporter exporter(options, nullptr);
    for (const auto& name : exporter.EnabledCollectors()) {
      std::cout << name << "\n";
    }
    return 0;
  }
  auto data_source = pgha::metrics::DataSourceFromEnvironment(Environment, ReadWholeFile);
  if (!data_source.ok()) {
    return refuse(data_source.error().message());
  }
  pgha::InitLogging(log_level == "warn" ? "WARNING" : pgha::ToUpper(log_level));
  if (!exclude_databases.empty() || !include_databases.empty()) {
    PGHA_LOG_WARN(
        "--exclude-databases and --include-databases apply only to auto-discovery, "
        "which pgha-exporter does not do; ignored");
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  pgha::metrics::Exporter exporter(options,
                                   pgha::metrics::PostgresSessions(*data_source, scrape_timeout));
  pgha::metrics::http::ExporterServer server(exporter, *address, telemetry_path, scrape_timeout);
  if (auto started = server.Start(); !started.ok()) {
    return refuse(started.error().message());
  }
  int received = 0;
  sigwait(&signals, &received);
  PGHA_LOG_INFO("received signal {}, stopping", received);
  server.Stop();
  return 0;
}
