#include "api/health.h"

#include "common/python_json.h"
#include "common/strings.h"
#include "common/units.h"
#include "model/global_config.h"

namespace pgha::api {

namespace {

bool IsPrimary(const model::NodeStatus& s) {
  return s.has_lock && s.postgres_running && !s.in_recovery;
}

std::optional<std::string> QueryValue(const Request& r, const std::string& key) {
  auto it = r.query.find(key);
  if (it == r.query.end()) {
    return std::nullopt;
  }
  return it->second;
}

// Replay lag against the best known primary position (the DCS status key), as Patroni computes
// it for ?lag=.
uint64_t ReplayLag(const model::NodeStatus& s) {
  uint64_t primary = std::max(s.cluster_optime.value_or(0), s.received_location.value_or(0));
  uint64_t replayed = s.replayed_location.value_or(0);
  return primary > replayed ? primary - replayed : 0;
}

bool TagsMatch(const Request& r, const model::NodeStatus& s) {
  for (const auto& [key, value] : r.query) {
    if (key.rfind("tag_", 0) != 0) {
      continue;
    }
    std::string tag = key.substr(4);
    auto it = s.tags.find(tag);
    if (it == s.tags.end()) {
      return false;
    }
    std::string actual = it->is_string()    ? it->get<std::string>()
                         : it->is_boolean() ? (it->get<bool>() ? "true" : "false")
                                            : it->dump();
    if (ToLower(actual) != ToLower(value)) {
      return false;
    }
  }
  return true;
}

bool HealthyReplica(const Request& r, const model::NodeStatus& s) {
  // A standby leader is in recovery too, but it is its cluster's leader, not a replica.
  if (!s.postgres_running || !s.in_recovery || s.state != "running" || s.role == "standby_leader") {
    return false;
  }
  if (auto it = s.tags.find("noloadbalance");
      it != s.tags.end() && model::JsonAsBool(*it).value_or(false)) {
    return false;
  }
  if (auto lag = QueryValue(r, "lag")) {
    auto max_lag = ParseSizeBytes(*lag);
    if (max_lag.ok() && ReplayLag(s) > static_cast<uint64_t>(*max_lag)) {
      return false;
    }
  }
  if (auto state = QueryValue(r, "replication_state")) {
    if (*state != s.replication_state) {
      return false;
    }
  }
  return TagsMatch(r, s);
}

int StatusFor(const Request& r, const model::NodeStatus& s) {
  const std::string& p = r.path;
  if (p == "/patroni") {
    return 200;
  }
  if (p == "/" || p == "/primary" || p == "/master" || p == "/read-write") {
    return IsPrimary(s) ? 200 : 503;
  }
  if (p == "/leader") {
    return s.has_lock ? 200 : 503;
  }
  if (p == "/standby-leader" || p == "/standby_leader") {
    return s.role == "standby_leader" && s.postgres_running && s.state == "running" ? 200 : 503;
  }
  if (p == "/replica") {
    return HealthyReplica(r, s) ? 200 : 503;
  }
  if (p == "/read-only") {
    return IsPrimary(s) || HealthyReplica(r, s) ? 200 : 503;
  }
  if (p == "/asynchronous" || p == "/async") {
    return !s.sync_standby && !s.quorum_standby && HealthyReplica(r, s) ? 200 : 503;
  }
  if (p == "/synchronous" || p == "/sync") {
    return s.sync_standby && HealthyReplica(r, s) ? 200 : 503;
  }
  if (p == "/quorum") {
    return s.quorum_standby && HealthyReplica(r, s) ? 200 : 503;
  }
  if (p == "/read-only-sync" || p == "/read-only-synchronous") {
    return IsPrimary(s) || (s.sync_standby && HealthyReplica(r, s)) ? 200 : 503;
  }
  if (p == "/read-only-quorum") {
    return IsPrimary(s) || (s.quorum_standby && HealthyReplica(r, s)) ? 200 : 503;
  }
  if (p == "/health") {
    return s.postgres_running && s.state == "running" ? 200 : 503;
  }
  if (p == "/liveness") {
    double limit = s.has_lock ? s.ttl : 2 * s.ttl;
    return s.paused || s.seconds_since_cycle <= limit ? 200 : 503;
  }
  if (p == "/readiness") {
    if (IsPrimary(s)) {
      return 200;
    }
    if (!s.postgres_running || !s.in_recovery || s.replication_state != "streaming") {
      return 503;
    }
    int64_t max_lag = s.maximum_lag_on_failover;
    if (auto lag = QueryValue(r, "lag")) {
      if (auto parsed = ParseSizeBytes(*lag); parsed.ok()) {
        max_lag = *parsed;
      }
    }
    return ReplayLag(s) <= static_cast<uint64_t>(max_lag) ? 200 : 503;
  }
  return 503;
}

}  // namespace

Reply Handle(const Request& request, const model::NodeStatus& status) {
  Reply reply;
  if (request.method != "GET" && request.method != "HEAD" && request.method != "OPTIONS") {
    reply.status = 501;
    reply.body = "{\"error\": \"unsupported method " + request.method + "\"}";
    return reply;
  }
  reply.status = StatusFor(request, status);
  bool status_only =
      request.method != "GET" || request.path == "/liveness" || request.path == "/readiness";
  if (!status_only) {
    reply.body = PythonJsonDumps(status.ToPatroniJson());
  }
  return reply;
}

}  // namespace pgha::api
