#include "metrics/exporter_settings.h"

#include "common/prometheus_text.h"
#include "common/strings.h"

namespace pgha::metrics {

namespace {

// The value of NAME, or the content of the file NAME_FILE names.
Result<std::optional<std::string>> Lookup(const std::string& name, const EnvironmentLookup& env,
                                          const FileReader& read_file) {
  if (auto value = env(name); value && !value->empty()) {
    return std::optional<std::string>(*value);
  }
  auto path = env(name + "_FILE");
  if (!path || path->empty()) {
    return std::optional<std::string>();
  }
  auto content = read_file(*path);
  if (!content.ok()) {
    return Error::Invalid(name + "_FILE: cannot read " + *path + ": " + content.error().message());
  }
  std::string value = *content;
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) {
    value.pop_back();
  }
  return std::optional<std::string>(value);
}

}  // namespace

Result<std::string> DataSourceFromEnvironment(const EnvironmentLookup& env,
                                              const FileReader& read_file) {
  auto name = Lookup("DATA_SOURCE_NAME", env, read_file);
  if (!name.ok()) {
    return name.error();
  }
  std::string data_source;
  if (*name) {
    data_source = **name;
  } else {
    auto uri = Lookup("DATA_SOURCE_URI", env, read_file);
    auto user = Lookup("DATA_SOURCE_USER", env, read_file);
    auto pass = Lookup("DATA_SOURCE_PASS", env, read_file);
    for (const auto* part : {&uri, &user, &pass}) {
      if (!part->ok()) {
        return part->error();
      }
    }
    if (!*uri) {
      return Error::Invalid(
          "no data source: set DATA_SOURCE_NAME (a libpq conninfo or postgresql:// URI), or "
          "DATA_SOURCE_URI with DATA_SOURCE_USER and DATA_SOURCE_PASS");
    }
    std::string credentials;
    if (*user) {
      credentials = PercentEncode(**user);
      if (*pass) {
        credentials += ":" + PercentEncode(**pass);
      }
      credentials += "@";
    }
    data_source = "postgresql://" + credentials + **uri;
  }
  for (const char* scheme : {",postgresql://", ",postgres://"}) {
    if (data_source.find(scheme) != std::string::npos) {
      return Error::Invalid(
          "several data sources are not supported; run one pgha-exporter per server");
    }
  }
  return data_source;
}

Result<Labels> ParseConstantLabels(const std::string& text) {
  Labels labels;
  for (const auto& piece : SplitAndTrim(text, ',')) {
    auto equals = piece.find('=');
    if (equals == std::string::npos) {
      return Error::Invalid("constant label '" + piece + "' is not name=value");
    }
    std::string name(Trim(piece.substr(0, equals)));
    std::string value(Trim(piece.substr(equals + 1)));
    if (name.empty() || SanitizeMetricName(name) != name || name.find(':') != std::string::npos ||
        name.rfind("__", 0) == 0) {
      return Error::Invalid("constant label name '" + name + "' is not a valid label name");
    }
    labels.emplace_back(name, value);
  }
  return labels;
}

}  // namespace pgha::metrics
