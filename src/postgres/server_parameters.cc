#include "postgres/server_parameters.h"

#include <functional>
#include <map>
#include <optional>

#include "common/units.h"
#include "model/global_config.h"

namespace pgha::postgres {

using nlohmann::json;

namespace {

std::optional<double> Number(const json& value) { return model::JsonAsNumber(value); }

// Patroni's checks of DCS values for the cluster-wide parameters; a value that fails is
// replaced by the default rather than refused, so a bad edit cannot stop a node.
bool AtLeast(const json& value, double bound) {
  auto n = Number(value);
  return n && *n >= bound;
}

const std::map<std::string, std::function<bool(const json&)>>& Checks() {
  static const std::map<std::string, std::function<bool(const json&)>> checks = {
      {"max_connections", [](const json& v) { return AtLeast(v, 25); }},
      {"max_wal_senders", [](const json& v) { return AtLeast(v, 3); }},
      {"max_prepared_transactions", [](const json& v) { return AtLeast(v, 0); }},
      {"max_locks_per_transaction", [](const json& v) { return AtLeast(v, 32); }},
      {"max_replication_slots", [](const json& v) { return AtLeast(v, 4); }},
      {"max_worker_processes", [](const json& v) { return AtLeast(v, 2); }},
      {"track_commit_timestamp", [](const json& v) { return model::JsonAsBool(v).has_value(); }},
      {"wal_level",
       [](const json& v) {
         if (!v.is_string()) return false;
         std::string s = v.get<std::string>();
         return s == "hot_standby" || s == "replica" || s == "logical";
       }},
      // wal_log_hints is pgha's and Patroni's to set: pg_rewind needs it.
      {"wal_log_hints", [](const json&) { return false; }},
  };
  return checks;
}

// Megabytes in a wal_keep_size value ("1GB", "128MB", 512 = MB).
std::optional<double> Megabytes(const json& value) {
  if (value.is_number()) {
    return value.get<double>();
  }
  if (value.is_string()) {
    auto megabytes = ParseInt(value.get<std::string>(), "MB");
    if (megabytes.ok()) {
      return static_cast<double>(*megabytes);
    }
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::pair<std::string, json>>& ClusterWideDefaults() {
  static const std::vector<std::pair<std::string, json>> defaults = {
      {"max_connections", 100},          {"max_wal_senders", 10},
      {"max_prepared_transactions", 0},  {"max_locks_per_transaction", 64},
      {"track_commit_timestamp", "off"}, {"max_replication_slots", 10},
      {"max_worker_processes", 8},       {"wal_log_hints", "on"},
      {"wal_level", "replica"},
  };
  return defaults;
}

const std::map<std::string, std::string>& RecoveryMinimumFields() {
  static const std::map<std::string, std::string> fields = {
      {"max_connections", "max_connections setting"},
      {"max_worker_processes", "max_worker_processes setting"},
      {"max_wal_senders", "max_wal_senders setting"},
      {"max_prepared_transactions", "max_prepared_xacts setting"},
      {"max_locks_per_transaction", "max_locks_per_xact setting"},
  };
  return fields;
}

std::vector<std::pair<std::string, json>> ServerParameters(
    const json& dcs, const json& local, int major, const std::map<std::string, int64_t>& at_least) {
  const json& from_dcs = dcs.is_object() ? dcs : json::object();
  const json& from_file = local.is_object() ? local : json::object();
  std::vector<std::pair<std::string, json>> out;
  std::map<std::string, json> rest;
  for (const auto& [name, fallback] : ClusterWideDefaults()) {
    json value = fallback;
    if (auto it = from_dcs.find(name); it != from_dcs.end()) {
      auto check = Checks().find(name);
      if (check == Checks().end() || check->second(*it)) {
        value = *it;
      }
    }
    if (name == "wal_level" && value.is_string()) {
      std::string level = value.get<std::string>();
      if (level == "hot_standby" && (major == 0 || major >= 10)) {
        value = "replica";  // 9.6 renamed it
      } else if (level == "replica" && major != 0 && major < 10) {
        value = "hot_standby";
      }
    }
    if (auto floor = at_least.find(name); floor != at_least.end()) {
      auto n = Number(value);
      if (!n || *n < static_cast<double>(floor->second)) {
        value = floor->second;
      }
    }
    out.emplace_back(name, value);
  }
  auto cluster_wide = [](const std::string& name) {
    for (const auto& [known, fallback] : ClusterWideDefaults()) {
      if (known == name) return true;
    }
    return name == "wal_keep_segments" || name == "wal_keep_size";
  };
  for (const auto& [name, value] : from_dcs.items()) {
    if (!cluster_wide(name)) rest[name] = value;
  }
  for (const auto& [name, value] : from_file.items()) {
    if (!cluster_wide(name)) rest[name] = value;  // local parameters win, but not these
  }
  // wal_keep_segments (before 13) and wal_keep_size (13 on), from whichever the DCS has, at
  // 16 MB a segment (the usual segment size; the user should set the right one anyway).
  std::optional<double> keep_segments;
  if (auto it = from_dcs.find("wal_keep_segments"); it != from_dcs.end() && AtLeast(*it, 1)) {
    keep_segments = *Number(*it);
  }
  std::optional<double> keep_megabytes;
  if (auto it = from_dcs.find("wal_keep_size"); it != from_dcs.end()) {
    if (auto mb = Megabytes(*it); mb && *mb >= 16) keep_megabytes = *mb;
  }
  if (major == 0 || major >= 13) {
    double mb = keep_megabytes ? *keep_megabytes : (keep_segments ? *keep_segments : 8) * 16;
    out.emplace_back("wal_keep_size", std::to_string(static_cast<int64_t>(mb)) + "MB");
  } else {
    double segments = keep_segments ? *keep_segments
                                    : static_cast<double>(static_cast<int64_t>(
                                          ((keep_megabytes ? *keep_megabytes : 128) + 8) / 16));
    out.emplace_back("wal_keep_segments", static_cast<int64_t>(segments));
  }
  for (auto& [name, value] : rest) {
    out.emplace_back(name, std::move(value));
  }
  return out;
}

}  // namespace pgha::postgres
