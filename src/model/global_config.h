// The cluster-wide dynamic configuration: the DCS `config` key, first written from
// `bootstrap.dcs`. Kept as the JSON Patroni wrote, so keys pgha does not know survive a
// round-trip; typed accessors apply Patroni's defaults.
//
// Thread-safety: immutable value.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace pgha::model {

enum class SynchronousMode { kOff, kOn, kQuorum };

// Lower bounds pgha accepts. They are below Patroni's (ttl 20, loop_wait 1, retry_timeout 3)
// on purpose: etcd's lease floor is 2 s, and pgha supports sub-second loop_wait.
inline constexpr double kMinTtl = 2.0;
inline constexpr double kMinLoopWait = 0.1;
inline constexpr double kMinRetryTimeout = 0.5;

class GlobalConfig {
 public:
  GlobalConfig() : raw_(nlohmann::json::object()) {}
  explicit GlobalConfig(nlohmann::json raw);

  // Checks the value as a user-supplied dynamic configuration: types and bounds. `path`
  // prefixes key names in errors ("bootstrap.dcs"). Errors name the key, the bad value and the
  // rule. Timings that break `loop_wait + 2*retry_timeout <= ttl` are accepted, as Patroni
  // accepts them: the accessors adjust, and TimingAdjustment says how.
  static Status Validate(const nlohmann::json& value, const std::string& path = "");

  // When the value's timings break `loop_wait + 2*retry_timeout <= ttl`, the sentence a log or
  // a command prints about the ttl pgha will run with instead; nullopt when they keep the rule.
  static std::optional<std::string> TimingAdjustment(const nlohmann::json& value,
                                                     const std::string& path = "");

  const nlohmann::json& raw() const { return raw_; }

  // Seconds; fractions allowed for loop_wait and retry_timeout (a pgha extension).
  double ttl() const;
  // The ttl as configured, before ttl() raises it to loop_wait + 2*retry_timeout: what Patroni
  // uses, and what a watchdog counts from (firing earlier than the lock can expire is safe).
  double configured_ttl() const { return std::max(kMinTtl, NumberOr("ttl", 30)); }
  double loop_wait() const;
  double retry_timeout() const;
  int64_t maximum_lag_on_failover() const;
  int64_t maximum_lag_on_syncnode() const;  // -1 = disabled
  int64_t primary_start_timeout() const;
  int64_t primary_stop_timeout() const;
  SynchronousMode synchronous_mode() const;
  bool synchronous_mode_strict() const;
  int64_t synchronous_node_count() const;
  bool failsafe_mode() const;
  bool check_timeline() const;
  bool is_paused() const;
  bool use_pg_rewind() const;
  bool use_slots() const;
  int64_t max_timelines_history() const;
  bool is_standby_cluster() const;
  // The standby_cluster section ({} when none): host, port, primary_slot_name,
  // restore_command, archive_cleanup_command, recovery_min_apply_delay, create_replica_methods.
  nlohmann::json standby_cluster() const;
  const nlohmann::json& postgresql_parameters() const;

 private:
  double NumberOr(const char* key, double fallback) const;
  bool BoolOr(const nlohmann::json& object, const char* key, bool fallback) const;

  nlohmann::json raw_;
};

// Reads a JSON value as a boolean the way Patroni's configuration does: true/false, "on"/"off",
// "yes"/"no", "true"/"false", 1/0. Returns nullopt for anything else.
std::optional<bool> JsonAsBool(const nlohmann::json& value);
// A JSON number, or a string holding one ("30"), as a double.
std::optional<double> JsonAsNumber(const nlohmann::json& value);

}  // namespace pgha::model
