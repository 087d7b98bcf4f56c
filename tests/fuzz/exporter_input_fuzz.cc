// Any bytes as what pgha-exporter reads from outside: values and pg_settings rows from
// PostgreSQL, version strings, the environment (DATA_SOURCE_*), --constantLabels and
// --web.listen-address, and Prometheus' scrape-timeout header. Nothing may crash, and whatever
// is accepted renders as exposition text whose every sample line names a valid metric.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/prometheus_text.h"
#include "common/strings.h"
#include "metrics/exporter_settings.h"
#include "metrics/http/exporter_server.h"
#include "metrics/postgres_collectors.h"
#include "metrics/postgres_exporter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts = pgha::Split(input, '\n');
  while (parts.size() < 6) {
    parts.emplace_back();
  }
  using namespace pgha::metrics;
  MetricSet set;
  set.Add("value", MetricType::kGauge, parts[0], {{"v", parts[0]}}, ToSampleValue(parts[0]));
  if (auto setting = ConvertSetting(parts[1], parts[2], parts[3], parts[4])) {
    set.Add(setting->name, MetricType::kGauge, parts[5], {}, setting->value);
  }
  set.Add("static", MetricType::kUntyped, "", {{"short_version", ShortVersion(parts[0])}}, 1);
  if (auto labels = ParseConstantLabels(parts[5]); labels.ok()) {
    set.Add("constant", MetricType::kGauge, "", *labels, 1);
  }
  (void)ScrapeTimeout(parts[2], std::chrono::milliseconds(10000));
  (void)http::ParseListenAddress(parts[3]);
  std::map<std::string, std::string> env = {{"DATA_SOURCE_URI", parts[1]},
                                            {"DATA_SOURCE_USER", parts[2]},
                                            {"DATA_SOURCE_PASS", parts[3]},
                                            {"DATA_SOURCE_NAME", parts[4]}};
  (void)DataSourceFromEnvironment(
      [&](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
      },
      [](const std::string&) -> pgha::Result<std::string> { return std::string("secret\n"); });
  std::string text = set.Render();
  for (const auto& line : pgha::Split(text, '\n')) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::string name = line.substr(0, line.find_first_of("{ "));
    if (name.empty() || pgha::SanitizeMetricName(name) != name) {
      __builtin_trap();
    }
  }
  return 0;
}
