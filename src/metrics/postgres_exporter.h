// pgha-exporter's scrape: one PostgreSQL session kept between scrapes, every enabled collector
// run against it under one deadline, and the exporter's own series (pg_up, scrape durations,
// per-collector success). A server that is down, hung or slow yields pg_up 0 by the deadline;
// a scrape never waits longer.
//
// Thread-safety: Scrape may be called from several HTTP threads; scrapes run one at a time and
// a scrape that cannot start before its deadline reports pg_up 0.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/result.h"
#include "metrics/metric_set.h"
#include "metrics/postgres_collectors.h"

namespace pgha::metrics {

struct ExporterOptions {
  bool default_metrics = true;
  bool settings_metrics = true;
  std::set<std::string> disabled_collectors;  // "database", "bgwriter"
  Labels constant_labels;
  std::string version;  // for pgha_exporter_build_info
};

// A database session as the exporter uses it; PostgresSessions() makes the real ones.
class DatabaseSession {
 public:
  virtual ~DatabaseSession() = default;
  virtual Result<postgres::ResultSet> Query(const std::string& sql, MonoTime deadline) = 0;
  // False once the session cannot be used again (a timeout, a lost connection).
  virtual bool ok() const = 0;
  // "host:port", the `server` label.
  virtual std::string ServerAddress() const = 0;
};

using SessionOpener = std::function<Result<std::unique_ptr<DatabaseSession>>(MonoTime deadline)>;

// Opens libpq sessions on `data_source` (a conninfo string or URI), named pgha-exporter unless
// the data source names itself, with ISO timestamps in UTC, and statements cut off by the
// server after `statement_timeout` as well.
SessionOpener PostgresSessions(std::string data_source,
                               std::chrono::milliseconds statement_timeout);

class Exporter {
 public:
  Exporter(ExporterOptions options, SessionOpener opener);
  // The metrics text of one scrape, ready within `timeout`.
  std::string Scrape(std::chrono::milliseconds timeout);
  // Which collectors run with these options, in order.
  std::vector<std::string> EnabledCollectors() const;

 private:
  bool Enabled(const Collector& collector) const;
  // Runs the collectors; returns whether the server answered throughout.
  bool Collect(MonoTime deadline, MetricSet& out, bool* any_error) REQUIRES(mutex_);

  ExporterOptions options_;
  SessionOpener opener_;
  TimedMutex mutex_;  // one scrape at a time
  std::unique_ptr<DatabaseSession> session_ GUARDED_BY(mutex_);
  uint64_t scrapes_ GUARDED_BY(mutex_) = 0;
  bool was_up_ GUARDED_BY(mutex_) = true;
  std::string last_connect_error_ GUARDED_BY(mutex_);
};

// How long a scrape may take: the timeout Prometheus announces in the
// X-Prometheus-Scrape-Timeout-Seconds header less half a second (so that the answer arrives
// in time), never more than `maximum`, never less than 100 ms. Unreadable headers are ignored.
std::chrono::milliseconds ScrapeTimeout(const std::optional<std::string>& announced,
                                        std::chrono::milliseconds maximum);

// The process_* series every Prometheus client library exports about its own process (CPU,
// memory, file descriptors, start time), read from /proc/self.
MetricSet ProcessMetrics();

}  // namespace pgha::metrics
