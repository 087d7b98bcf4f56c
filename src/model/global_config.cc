#include "model/global_config.h"

#include <fmt/format.h>

#include "common/strings.h"
#include "common/units.h"

namespace pgha::model {

using nlohmann::json;

std::optional<bool> JsonAsBool(const json& value) {
  if (value.is_boolean()) {
    return value.get<bool>();
  }
  if (value.is_number_integer()) {
    auto n = value.get<int64_t>();
    if (n == 0 || n == 1) {
      return n == 1;
    }
    return std::nullopt;
  }
  if (value.is_string()) {
    std::string s = ToLower(Trim(value.get<std::string>()));
    if (s == "on" || s == "true" || s == "yes" || s == "1" || s == "y") {
      return true;
    }
    if (s == "off" || s == "false" || s == "no" || s == "0" || s == "n") {
      return false;
    }
  }
  return std::nullopt;
}

std::optional<double> JsonAsNumber(const json& value) {
  if (value.is_number()) {
    return value.get<double>();
  }
  if (value.is_string()) {
    auto parsed = ParseReal(value.get<std::string>());
    if (parsed.ok()) {
      return *parsed;
    }
  }
  return std::nullopt;
}

GlobalConfig::GlobalConfig(json raw) : raw_(raw.is_object() ? std::move(raw) : json::object()) {}

double GlobalConfig::NumberOr(const char* key, double fallback) const {
  auto it = raw_.find(key);
  if (it == raw_.end()) {
    return fallback;
  }
  return JsonAsNumber(*it).value_or(fallback);
}

bool GlobalConfig::BoolOr(const json& object, const char* key, bool fallback) const {
  if (!object.is_object()) {
    return fallback;
  }
  auto it = object.find(key);
  if (it == object.end()) {
    return fallback;
  }
  return JsonAsBool(*it).value_or(fallback);
}

// Patroni adjusts timings that break its rules rather than refusing a DCS value another node
// wrote; the accessors do the same so a bad `config` key can never stall the HA loop.
double GlobalConfig::loop_wait() const {
  double v = NumberOr("loop_wait", 10);
  return v < kMinLoopWait ? kMinLoopWait : v;
}

double GlobalConfig::retry_timeout() const {
  double v = NumberOr("retry_timeout", 10);
  return v < kMinRetryTimeout ? kMinRetryTimeout : v;
}

double GlobalConfig::ttl() const {
  double v = NumberOr("ttl", 30);
  double floor = std::max(kMinTtl, loop_wait() + 2 * retry_timeout());
  return v < floor ? floor : v;
}

int64_t GlobalConfig::maximum_lag_on_failover() const {
  auto it = raw_.find("maximum_lag_on_failover");
  if (it != raw_.end()) {
    if (it->is_number()) {
      return it->get<int64_t>();
    }
    if (it->is_string()) {
      auto parsed = ParseSizeBytes(it->get<std::string>());
      if (parsed.ok()) {
        return *parsed;
      }
    }
  }
  return 1048576;
}

int64_t GlobalConfig::maximum_lag_on_syncnode() const {
  return static_cast<int64_t>(NumberOr("maximum_lag_on_syncnode", -1));
}

int64_t GlobalConfig::primary_start_timeout() const {
  return static_cast<int64_t>(
      NumberOr("primary_start_timeout", NumberOr("master_start_timeout", 300)));
}

int64_t GlobalConfig::primary_stop_timeout() const {
  return static_cast<int64_t>(NumberOr("primary_stop_timeout", NumberOr("master_stop_timeout", 0)));
}

SynchronousMode GlobalConfig::synchronous_mode() const {
  auto it = raw_.find("synchronous_mode");
  if (it == raw_.end()) {
    return SynchronousMode::kOff;
  }
  if (it->is_string() && ToLower(it->get<std::string>()) == "quorum") {
    return SynchronousMode::kQuorum;
  }
  return JsonAsBool(*it).value_or(false) ? SynchronousMode::kOn : SynchronousMode::kOff;
}

bool GlobalConfig::synchronous_mode_strict() const {
  return BoolOr(raw_, "synchronous_mode_strict", false);
}

int64_t GlobalConfig::synchronous_node_count() const {
  double v = NumberOr("synchronous_node_count", 1);
  return v < 1 ? 1 : static_cast<int64_t>(v);
}

bool GlobalConfig::failsafe_mode() const { return BoolOr(raw_, "failsafe_mode", false); }
bool GlobalConfig::check_timeline() const { return BoolOr(raw_, "check_timeline", false); }
bool GlobalConfig::is_paused() const { return BoolOr(raw_, "pause", false); }

bool GlobalConfig::use_pg_rewind() const {
  auto it = raw_.find("postgresql");
  return it != raw_.end() && BoolOr(*it, "use_pg_rewind", false);
}

bool GlobalConfig::use_slots() const {
  auto it = raw_.find("postgresql");
  return it == raw_.end() || BoolOr(*it, "use_slots", true);
}

int64_t GlobalConfig::max_timelines_history() const {
  return static_cast<int64_t>(NumberOr("max_timelines_history", 0));
}

bool GlobalConfig::is_standby_cluster() const {
  auto it = raw_.find("standby_cluster");
  return it != raw_.end() && it->is_object() && !it->empty();
}

json GlobalConfig::standby_cluster() const {
  return is_standby_cluster() ? raw_.at("standby_cluster") : json::object();
}

const json& GlobalConfig::postgresql_parameters() const {
  static const json kEmpty = json::object();
  auto pg = raw_.find("postgresql");
  if (pg == raw_.end() || !pg->is_object()) {
    return kEmpty;
  }
  auto params = pg->find("parameters");
  if (params == pg->end() || !params->is_object()) {
    return kEmpty;
  }
  return *params;
}

namespace {

std::string KeyName(const std::string& path, const char* key) {
  return path.empty() ? std::string(key) : path + "." + key;
}

Result<double> RequireNumber(const json& value, const std::string& path, const char* key,
                             double minimum, double fallback) {
  auto it = value.find(key);
  if (it == value.end()) {
    return fallback;
  }
  auto number = JsonAsNumber(*it);
  if (!number) {
    return Error::Invalid(fmt::format("{}: '{}' is not a number", KeyName(path, key), it->dump()));
  }
  if (*number < minimum) {
    return Error::Invalid(
        fmt::format("{}: {} is below the minimum of {}", KeyName(path, key), *number, minimum));
  }
  return *number;
}

}  // namespace

Status GlobalConfig::Validate(const json& value, const std::string& path) {
  if (!value.is_object()) {
    return Error::Invalid(fmt::format("{}: must be a mapping, got '{}'",
                                      path.empty() ? "config" : path, value.dump()));
  }
  auto ttl = RequireNumber(value, path, "ttl", kMinTtl, 30);
  if (!ttl.ok()) {
    return ttl.error();
  }
  auto loop_wait = RequireNumber(value, path, "loop_wait", kMinLoopWait, 10);
  if (!loop_wait.ok()) {
    return loop_wait.error();
  }
  auto retry_timeout = RequireNumber(value, path, "retry_timeout", kMinRetryTimeout, 10);
  if (!retry_timeout.ok()) {
    return retry_timeout.error();
  }
  if (auto it = value.find("maximum_lag_on_failover"); it != value.end()) {
    bool ok =
        it->is_number_integer() || (it->is_string() && ParseSizeBytes(it->get<std::string>()).ok());
    if (!ok) {
      return Error::Invalid(fmt::format("{}: '{}' is not a size in bytes (e.g. 1048576 or 1MB)",
                                        KeyName(path, "maximum_lag_on_failover"), it->dump()));
    }
  }
  if (auto it = value.find("synchronous_mode"); it != value.end()) {
    bool ok = JsonAsBool(*it).has_value() ||
              (it->is_string() && ToLower(it->get<std::string>()) == "quorum");
    if (!ok) {
      return Error::Invalid(fmt::format("{}: '{}' must be on, off or quorum",
                                        KeyName(path, "synchronous_mode"), it->dump()));
    }
  }
  for (const char* key : {"synchronous_mode_strict", "failsafe_mode", "pause", "check_timeline"}) {
    if (auto it = value.find(key); it != value.end() && !it->is_null() && !JsonAsBool(*it)) {
      return Error::Invalid(
          fmt::format("{}: '{}' is not a boolean", KeyName(path, key), it->dump()));
    }
  }
  if (auto it = value.find("synchronous_node_count"); it != value.end()) {
    auto n = JsonAsNumber(*it);
    if (!n || *n < 1) {
      return Error::Invalid(fmt::format("{}: '{}' must be an integer >= 1",
                                        KeyName(path, "synchronous_node_count"), it->dump()));
    }
  }
  if (auto it = value.find("postgresql"); it != value.end() && !it->is_object()) {
    return Error::Invalid(
        fmt::format("{}: must be a mapping, got '{}'", KeyName(path, "postgresql"), it->dump()));
  }
  return OkStatus();
}

std::optional<std::string> GlobalConfig::TimingAdjustment(const json& value,
                                                          const std::string& path) {
  if (!value.is_object()) {
    return std::nullopt;
  }
  GlobalConfig config(value);
  double asked = config.NumberOr("ttl", 30);
  if (config.ttl() <= asked) {
    return std::nullopt;
  }
  return fmt::format(
      "{}: ttl={}, loop_wait={}, retry_timeout={} break the rule loop_wait + 2*retry_timeout <= "
      "ttl ({} > {}); the leader lock is held for ttl={} instead",
      path.empty() ? "config" : path, asked, config.loop_wait(), config.retry_timeout(),
      config.loop_wait() + 2 * config.retry_timeout(), asked, config.ttl());
}

}  // namespace pgha::model
