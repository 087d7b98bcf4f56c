// pgha-exporter's settings from postgres_exporter's environment variables and flags, so that
// an existing deployment (a systemd unit, /etc/default/prometheus-postgres-exporter) works
// unchanged.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "metrics/metric_set.h"

namespace pgha::metrics {

using EnvironmentLookup = std::function<std::optional<std::string>(const std::string&)>;
using FileReader = std::function<Result<std::string>(const std::string&)>;

// DATA_SOURCE_NAME, or else postgresql://DATA_SOURCE_USER:DATA_SOURCE_PASS@DATA_SOURCE_URI
// (user and password percent-encoded; each also from a *_FILE variable naming a file whose
// content, less a trailing newline, is the value). Several comma-separated data sources are
// refused with a clear message: run one pgha-exporter per server.
Result<std::string> DataSourceFromEnvironment(const EnvironmentLookup& env,
                                              const FileReader& read_file);

// "env=prod,region=eu" as labels; a piece without '=' or with an invalid label name is an
// error. Empty text gives no labels.
Result<Labels> ParseConstantLabels(const std::string& text);

}  // namespace pgha::metrics
