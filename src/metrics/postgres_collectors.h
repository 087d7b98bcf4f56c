// What pgha-exporter reads from PostgreSQL: postgres_exporter 0.11's default set (the builtin
// views, pg_settings, and its `database` and `bgwriter` collectors) under the same metric names,
// label names and types, plus a few series dashboards commonly add through queries.yaml
// (pg_postmaster_start_time_seconds, pg_replication_lag, pg_replication_is_replica).
//
// A collector is SQL plus a mapping of result columns to labels and samples; it never talks to
// the network itself, so tests feed it recorded rows.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "metrics/metric_set.h"
#include "postgres/connection.h"

namespace pgha::metrics {

class QuerySource {
 public:
  virtual ~QuerySource() = default;
  virtual Result<postgres::ResultSet> Query(const std::string& sql) = 0;
};

enum class CollectorGroup {
  kDefault,    // postgres_exporter's builtin queries; off with --disable-default-metrics
  kSettings,   // pg_settings; off with --disable-settings-metrics
  kCollector,  // a named collector; off with --no-collector.<name>
};

struct Collector {
  std::string name;
  CollectorGroup group;
  // `labels` holds server="host:port" and the constant labels; every sample carries them.
  Status (*collect)(QuerySource& source, const Labels& labels, MetricSet& out);
};

const std::vector<Collector>& AllCollectors();

// A text value from PostgreSQL as a sample value, as postgres_exporter converts it: NULL and
// unreadable text are NaN, booleans 1/0, timestamps epoch seconds (the session runs with
// DateStyle ISO and TimeZone UTC).
double ToSampleValue(const std::optional<std::string>& text);

// A pg_settings row as a sample: the name gets _seconds or _bytes when PostgreSQL reports a
// unit, and the value is converted into that unit (-1, "disabled", stays -1). nullopt for an
// unknown unit or an unreadable value.
struct SettingSample {
  std::string name;
  double value;
  std::string unit;  // "", "seconds" or "bytes"
};
std::optional<SettingSample> ConvertSetting(const std::string& name, const std::string& setting,
                                            const std::string& unit, const std::string& vartype);

// "PostgreSQL 15.20 (Debian ...)" or "15.20 (Debian ...)" as "15.20.0"; "" when unreadable.
std::string ShortVersion(const std::string& version);

}  // namespace pgha::metrics
