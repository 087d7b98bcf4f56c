#include "api/rest_api.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "api/health.h"
#include "api/metrics.h"
#include "common/log.h"
#include "common/python_json.h"
#include "common/time_format.h"
#include "model/cluster_view.h"
#include "model/codec.h"
#include "model/global_config.h"

namespace pgha::api {

using nlohmann::json;

Reply ErrorReply(int status, const std::string& message) {
  Reply reply;
  reply.status = status;
  reply.body = message;
  reply.content_type = "text/plain";
  return reply;
}

namespace {

enum class Body { kNone, kOptional, kRequired };

// What Patroni's `if request.get(key)` sees in a JSON value: Python's truth value, so "True",
// "false" (a non-empty string) and 1 are true; false, 0, "", null, [] and {} are false.
bool PythonTruth(const json& value) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_number()) return value.get<double>() != 0;
  if (value.is_null()) return false;
  return !value.empty() && !(value.is_string() && value.get<std::string>().empty());
}

struct UnsafeEndpoint {
  const char* method;
  const char* path;
  Body body;
};

// Patroni's unsafe endpoints and whether each reads a JSON body.
constexpr UnsafeEndpoint kUnsafeEndpoints[] = {
    {"POST", "/switchover", Body::kRequired},   {"POST", "/failover", Body::kRequired},
    {"POST", "/restart", Body::kOptional},      {"POST", "/reload", Body::kNone},
    {"POST", "/reinitialize", Body::kOptional}, {"POST", "/sigterm", Body::kNone},
    {"POST", "/failsafe", Body::kRequired},     {"POST", "/citus", Body::kRequired},
    {"POST", "/mpp", Body::kRequired},          {"PATCH", "/config", Body::kRequired},
    {"PUT", "/config", Body::kRequired},        {"DELETE", "/switchover", Body::kNone},
    {"DELETE", "/restart", Body::kNone},
};

const UnsafeEndpoint* FindUnsafe(const Request& request) {
  for (const auto& endpoint : kUnsafeEndpoints) {
    if (request.method == endpoint.method && request.path == endpoint.path) {
      return &endpoint;
    }
  }
  return nullptr;
}

// Patroni's _read_json_content: the body must be a JSON object, non-empty unless optional.
std::optional<Reply> ValidateBody(const Request& request, Body body) {
  if (body == Body::kNone) {
    return std::nullopt;
  }
  if (!request.Header("content-length")) {
    if (body == Body::kOptional) {
      return std::nullopt;
    }
    return ErrorReply(411, "a JSON body with Content-Length is required");
  }
  if (request.body.empty() && body == Body::kOptional) {
    return std::nullopt;
  }
  json parsed = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return ErrorReply(400, "the body is not valid JSON");
  }
  if (!parsed.is_object() || (parsed.empty() && body == Body::kRequired)) {
    return ErrorReply(400, "the body must be a non-empty JSON object");
  }
  return std::nullopt;
}

Reply JsonReply(int status, const std::string& body) {
  Reply reply;
  reply.status = status;
  reply.body = body;
  return reply;
}

Reply HandleRead(const Request& request, const ApiState& state) {
  if (request.method == "GET") {
    if (request.path == "/cluster") {
      if (!state.cluster) {
        return ErrorReply(503, "the cluster has not been read from the DCS yet");
      }
      auto body = model::ClusterAsJson(*state.cluster);
      body["scope"] = state.node.scope;
      return JsonReply(200, PythonJsonDumps(body));
    }
    if (request.path == "/metrics") {
      Reply reply;
      reply.body = RenderMetrics(state.node);
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return reply;
    }
    if (request.path == "/history") {
      auto history = state.cluster ? model::HistoryToJson(state.cluster->history)
                                   : nlohmann::ordered_json::array();
      return JsonReply(200, PythonJsonDumps(history));
    }
    if (request.path == "/failsafe") {
      // The members the leader last listed for failsafe_mode; 502 as Patroni when there are none.
      if (!state.cluster || !state.cluster->failsafe) {
        return ErrorReply(502, "no failsafe key in the DCS");
      }
      return JsonReply(200, PythonJsonDumps(nlohmann::ordered_json(*state.cluster->failsafe)));
    }
    if (request.path == "/config") {
      if (!state.cluster || !state.cluster->config) {
        return ErrorReply(502, "the DCS has no dynamic configuration");
      }
      return JsonReply(200, PythonJsonDumps(state.cluster->config->data.raw()));
    }
  }
  return Handle(request, state.node);
}

// PATCH /config: a JSON merge patch (null deletes) on the newest config, validated, CAS-written.
// PUT /config: the body replaces the config whole.
Reply ChangeConfig(const Request& request, Controller& controller) {
  json body = json::parse(request.body, nullptr, false);
  auto cluster = controller.ReadCluster();
  if (!cluster.ok()) {
    return ErrorReply(503, "cannot read the cluster from the DCS: " + cluster.error().message());
  }
  json data;
  int64_t revision = 0;
  if (request.method == "PATCH") {
    if (!cluster->config) {
      return ErrorReply(503, "the DCS has no dynamic configuration to patch");
    }
    data = cluster->config->data.raw();
    data.merge_patch(body);
    revision = cluster->config->mod_revision;
  } else {
    data = body;
    revision = cluster->config ? cluster->config->mod_revision : 0;
  }
  if (auto valid = model::GlobalConfig::Validate(data); !valid.ok()) {
    return ErrorReply(400, valid.error().message());
  }
  if (auto adjusted = model::GlobalConfig::TimingAdjustment(data)) {
    PGHA_LOG_WARN("{} {}: {}", request.method, request.path, *adjusted);
  }
  auto written = controller.WriteConfig(data.dump(), revision);
  if (!written.ok()) {
    return ErrorReply(request.method == "PATCH" ? 503 : 502,
                      "writing the config key failed: " + written.error().message());
  }
  if (!*written) {
    return ErrorReply(409, "the config was changed while we were trying to update it");
  }
  return JsonReply(200, PythonJsonDumps(data));
}

// Patroni's "X.Y" or "X.Y.Z" as server_version_num (150006 for 15.6, 90624 for 9.6.24).
std::optional<int64_t> ParsePostgresVersion(const std::string& text) {
  std::vector<int64_t> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t dot = text.find('.', start);
    std::string part =
        text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos ||
        part.size() > 6) {
      return std::nullopt;
    }
    parts.push_back(std::stoll(part));
    if (dot == std::string::npos) {
      break;
    }
    start = dot + 1;
  }
  if (parts.size() < 2 || parts.size() > 3) {
    return std::nullopt;
  }
  if (parts[0] >= 10) {
    return parts[0] * 10000 + parts[1];
  }
  return parts[0] * 10000 + parts[1] * 100 + (parts.size() == 3 ? parts[2] : 0);
}

Reply TextReply(int status, const std::string& text) {
  Reply reply;
  reply.status = status;
  reply.body = text;
  reply.content_type = "text/plain";
  return reply;
}

// A failover request field: absent, null and "" all mean "not given" (patronictl sends null).
Result<std::string> OptionalText(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return Error::Invalid(fmt::format("{} must be a string", key));
  }
  return it->get<std::string>();
}

std::string Title(const std::string& action) {
  return std::string(1, static_cast<char>(std::toupper(action[0]))) + action.substr(1);
}

// Patroni's parse_schedule: a zone is mandatory (400), the past and the unreadable are 422.
std::optional<Reply> ParseSchedule(const std::string& text, const std::string& action, WallTime now,
                                   WallTime* at) {
  auto parsed = ParseIsoTimestamp(text);
  if (!parsed.ok()) {
    if (ParseIsoTimestamp(text + "+00:00").ok()) {
      return TextReply(400, "Timezone information is mandatory for the scheduled " + action);
    }
    return TextReply(422,
                     "Unable to parse scheduled timestamp. It should be in an unambiguous "
                     "format, e.g. ISO 8601");
  }
  if (*parsed < now) {
    return TextReply(422, "Cannot schedule " + action + " in the past");
  }
  *at = *parsed;
  return std::nullopt;
}

// Patroni's is_failover_possible on the API side: "" when a member could take over.
std::string WhyFailoverImpossible(const model::ClusterSnapshot& cluster, const std::string& leader,
                                  const std::string& candidate, const std::string& action,
                                  Controller& controller) {
  if (!leader.empty() && (!cluster.leader || cluster.leader->name != leader)) {
    return "leader name does not match";
  }
  bool sync_mode =
      cluster.EffectiveConfig().synchronous_mode() != model::SynchronousMode::kOff && cluster.sync;
  std::vector<model::Member> members;
  if (!candidate.empty()) {
    if (action == "switchover" && sync_mode && !cluster.sync->IsSyncStandby(candidate)) {
      return "candidate name does not match with sync_standby";
    }
    if (const auto* member = cluster.FindMember(candidate)) {
      members.push_back(*member);
    } else {
      return "candidate does not exists";
    }
  } else if (sync_mode) {
    for (const auto& m : cluster.members) {
      if (cluster.sync->IsSyncStandby(m.name)) {
        members.push_back(m);
      }
    }
    if (members.empty()) {
      return action + " is not possible: can not find sync_standby";
    }
  } else {
    std::string current = cluster.leader ? cluster.leader->name : "";
    for (const auto& m : cluster.members) {
      if (m.name != current && !m.api_url().empty()) {
        members.push_back(m);
      }
    }
    if (members.empty()) {
      return action + " is not possible: cluster does not have members except leader";
    }
  }
  // Beyond Patroni (which checks only reachability and nofailover here): a candidate more than
  // maximum_lag_on_failover behind the last leader position is refused now, with the reason,
  // instead of the leader giving up on it after the caller waited.
  uint64_t optime = cluster.status.optime.value_or(0);
  auto max_lag = static_cast<uint64_t>(cluster.EffectiveConfig().maximum_lag_on_failover());
  std::string lagging;
  for (const auto& status : controller.FetchStatuses(members)) {
    if (!status.reachable || status.nofailover) {
      continue;
    }
    if (status.wal_position > 0 && optime > status.wal_position &&
        optime - status.wal_position > max_lag) {
      lagging = fmt::format(
          "{} is lagging {} bytes behind the leader, more than "
          "maximum_lag_on_failover ({})",
          status.name, optime - status.wal_position, max_lag);
      continue;
    }
    return "";
  }
  if (!candidate.empty() && !lagging.empty()) {
    return action + " is not possible: " + lagging;
  }
  return action + " is not possible: no good candidates have been found";
}

// Patroni's poll_failover_result: up to 2 * max(10, loop_wait) seconds for the lock to move.
Reply PollFailoverResult(const std::string& leader, const std::string& candidate,
                         const std::string& action, double loop_wait, Controller& controller) {
  int polls = 2 * std::max(10, static_cast<int>(loop_wait));
  std::string past = action.substr(0, action.size() - 4);  // "switch", "fail"
  for (int i = 0; i < polls; ++i) {
    controller.Sleep(std::chrono::seconds(1));
    auto cluster = controller.ReadCluster();
    if (!cluster.ok()) {
      continue;
    }
    if (cluster->leader && cluster->leader->name != leader) {
      const std::string& now = cluster->leader->name;
      if (candidate.empty() || candidate == now) {
        return TextReply(200, fmt::format("Successfully {}ed over to \"{}\"", past, now));
      }
      return TextReply(
          200, fmt::format("{}ed over to \"{}\" instead of \"{}\"", Title(past), now, candidate));
    }
    if (!cluster->failover) {
      return TextReply(503, Title(action) + " failed");
    }
  }
  return TextReply(503, Title(action) + " status unknown");
}

// POST /switchover and POST /failover, with Patroni's checks in Patroni's order.
Reply Failover(const Request& request, const std::string& action, Controller& controller) {
  json body = json::parse(request.body, nullptr, false);
  auto leader = OptionalText(body, "leader");
  auto candidate = OptionalText(body, "candidate");
  if (candidate.ok() && candidate->empty()) {
    candidate = OptionalText(body, "member");
  }
  auto scheduled = OptionalText(body, "scheduled_at");
  for (const auto* field : {&leader, &candidate, &scheduled}) {
    if (!field->ok()) {
      return TextReply(400, field->error().message());
    }
  }
  auto cluster = controller.ReadCluster();
  if (!cluster.ok()) {
    return TextReply(503, "cannot read the cluster from the DCS: " + cluster.error().message());
  }
  bool paused = cluster->EffectiveConfig().is_paused();
  if (action == "failover" && candidate->empty()) {
    return TextReply(400, "Failover could be performed only to a specific candidate");
  }
  if (action == "switchover" && leader->empty()) {
    return TextReply(400, "Switchover could be performed only from a specific leader");
  }
  std::optional<WallTime> scheduled_at;
  if (!scheduled->empty()) {
    if (leader->empty()) {
      return TextReply(400,
                       fmt::format("Scheduled {} is possible only from a specific leader", action));
    }
    if (paused) {
      return TextReply(400, fmt::format("Can't schedule {} in the paused state", action));
    }
    WallTime at;
    if (auto refused = ParseSchedule(*scheduled, action, controller.Now(), &at)) {
      return *refused;
    }
    scheduled_at = at;
  }
  if (paused && candidate->empty()) {
    return TextReply(400,
                     Title(action) + " is possible only to a specific candidate in a paused state");
  }
  if (!scheduled_at) {
    std::string why = WhyFailoverImpossible(*cluster, *leader, *candidate, action, controller);
    if (!why.empty()) {
      return TextReply(412, why);
    }
  }
  model::Failover failover;
  if (!leader->empty()) {
    failover.leader = *leader;
  }
  if (!candidate->empty()) {
    failover.candidate = *candidate;
  }
  failover.scheduled_at = scheduled_at;
  auto written = controller.WriteFailover(model::EncodeFailover(failover), std::nullopt);
  if (!written.ok() || !*written) {
    return TextReply(503, fmt::format("failed to write {} key into DCS", action));
  }
  if (scheduled_at) {
    return TextReply(202, Title(action) + " scheduled");
  }
  return PollFailoverResult(cluster->leader ? cluster->leader->name : "", *candidate, action,
                            cluster->EffectiveConfig().loop_wait(), controller);
}

// DELETE /switchover: only a scheduled one can be withdrawn (CAS on the key's revision).
Reply CancelScheduledSwitchover(Controller& controller) {
  auto cluster = controller.ReadCluster();
  if (!cluster.ok()) {
    return TextReply(503, "cannot read the cluster from the DCS: " + cluster.error().message());
  }
  if (!cluster->failover || !cluster->failover->scheduled_at) {
    return TextReply(404, "no switchover is scheduled");
  }
  auto written = controller.WriteFailover("{}", cluster->failover->mod_revision);
  if (!written.ok() || !*written) {
    return ErrorReply(409, "the failover key changed meanwhile");
  }
  return TextReply(200, "scheduled switchover deleted");
}

// POST /restart with Patroni's conditions: role, restart_pending, postgres_version, timeout;
// with `schedule`, the restart is kept for that time (and the conditions checked then);
// otherwise it runs on the agent's loop now and this call waits for it.
Reply Restart(const Request& request, const ApiState& state, Controller& controller) {
  json body = request.body.empty() ? json::object() : json::parse(request.body, nullptr, false);
  model::RestartConditions conditions;
  if (auto role = body.find("role"); role != body.end()) {
    std::string wanted = role->is_string() ? role->get<std::string>() : "";
    if (wanted == "master" || wanted == "primary") {
      conditions.role = "master";
    } else if (wanted == "replica") {
      conditions.role = "replica";
    } else if (wanted != "any") {
      return ErrorReply(400, "PostgreSQL role should be either primary or replica");
    }
  }
  // Patroni asks for a pending restart whenever the key is there, whatever its value.
  conditions.restart_pending = body.contains("restart_pending");
  if (auto version = body.find("postgres_version"); version != body.end()) {
    auto parsed =
        version->is_string() ? ParsePostgresVersion(version->get<std::string>()) : std::nullopt;
    if (!parsed) {
      return ErrorReply(400, "postgres_version must look like 15.6 or 9.6.24");
    }
    conditions.postgres_version = parsed;
  }
  int64_t timeout = 120;
  if (auto t = body.find("timeout"); t != body.end()) {
    if (!t->is_number() || t->get<double>() <= 0 || t->get<double>() > 86400) {
      return ErrorReply(400, "Timeout should be a positive number of seconds");
    }
    timeout = static_cast<int64_t>(std::ceil(t->get<double>()));
  }
  for (const auto& [key, value] : body.items()) {
    static const std::set<std::string> kKnown = {"role", "restart_pending", "postgres_version",
                                                 "timeout", "schedule"};
    if (!kKnown.contains(key)) {
      return ErrorReply(400, "Unknown filter for the scheduled restart: " + key);
    }
  }
  if (auto schedule = body.find("schedule"); schedule != body.end()) {
    if (state.node.paused) {
      return ErrorReply(500, "Can't schedule restart in the paused state");
    }
    WallTime at;
    if (auto refused = ParseSchedule(schedule->is_string() ? schedule->get<std::string>() : "",
                                     "restart", controller.Now(), &at)) {
      return *refused;
    }
    json shown = body;
    shown["schedule"] = FormatIsoTimestamp(at);
    auto scheduled =
        controller.ScheduleRestart(at, shown, conditions, std::chrono::seconds(timeout));
    if (!scheduled.ok()) {
      return ErrorReply(409, "Another restart is already scheduled");
    }
    return TextReply(202, "Restart scheduled");
  }
  if (!model::RestartConditionsMet(conditions, state.node)) {
    return ErrorReply(503, "restart conditions are not satisfied");
  }
  auto restarted = controller.RestartPostgres(std::chrono::seconds(timeout));
  if (!restarted.ok()) {
    return ErrorReply(503, "restart failed: " + restarted.error().message());
  }
  return TextReply(200, "restarted successfully");
}

}  // namespace

// POST /failsafe (Patroni's failsafe_mode): the leader, cut off from the DCS, asks whether this
// member still takes it for the leader. "Accepted" and the member remembers it for ttl.
Reply AcceptFailsafe(const Request& request, const ApiState& state, Controller* controller) {
  bool enabled = state.cluster && state.cluster->EffectiveConfig().failsafe_mode();
  if (!enabled || controller == nullptr) {
    return ErrorReply(502, "failsafe_mode is not enabled");
  }
  json body = json::parse(request.body, nullptr, false);
  if (!body.is_object()) {
    return ErrorReply(400, "the body must be a JSON object");
  }
  for (const char* field : {"name", "conn_url", "api_url"}) {
    auto it = body.find(field);
    if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
      return ErrorReply(400, fmt::format("{} must be a non-empty string", field));
    }
  }
  const auto& node = state.node;
  if (node.state == "running" && node.postgres_running && !node.in_recovery) {
    return TextReply(500, "Running as a leader");
  }
  // Patroni's leader sends its permanent logical slots' positions too; anything else in
  // "slots" is ignored rather than refused, as a newer leader may send more.
  std::map<std::string, uint64_t> slots;
  if (auto it = body.find("slots"); it != body.end() && it->is_object()) {
    for (const auto& [name, position] : it->items()) {
      if (position.is_number_unsigned()) {
        slots[name] = position.get<uint64_t>();
      }
    }
  }
  controller->AcceptFailsafeLeader(body["name"], body["conn_url"], body["api_url"], slots);
  return TextReply(200, "Accepted");
}

Reply HandleRequest(const Request& request, const ApiState& state, const AccessPolicy& policy,
                    Controller* controller) {
  if (request.method == "GET" || request.method == "HEAD" || request.method == "OPTIONS") {
    return HandleRead(request, state);
  }
  const UnsafeEndpoint* endpoint = FindUnsafe(request);
  if (endpoint == nullptr) {
    return ErrorReply(501, fmt::format("unsupported method {} {}", request.method, request.path));
  }
  if (auto denied = CheckAccess(request, policy, state.cluster.get())) {
    return *denied;
  }
  if (auto invalid = ValidateBody(request, endpoint->body)) {
    return *invalid;
  }
  if (request.method == "DELETE" && request.path == "/restart") {
    if (controller != nullptr && controller->CancelScheduledRestart()) {
      return TextReply(200, "scheduled restart deleted");
    }
    return TextReply(404, "no restarts are scheduled");
  }
  if (request.method == "POST" && request.path == "/restart") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot restart PostgreSQL");
    }
    return Restart(request, state, *controller);
  }
  if (request.method == "POST" && request.path == "/reinitialize") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot reinitialize");
    }
    json body = request.body.empty() ? json::object() : json::parse(request.body, nullptr, false);
    bool flags[2] = {false, false};
    const char* names[2] = {"force", "from-leader"};
    for (int i = 0; i < 2; ++i) {
      auto it = body.find(names[i]);
      flags[i] = it != body.end() && PythonTruth(*it);
    }
    auto started = controller->Reinitialize(flags[0], flags[1]);
    if (!started.ok()) {
      return ErrorReply(503, started.error().message());
    }
    Reply reply;
    reply.body = "reinitialize started";
    reply.content_type = "text/plain";
    return reply;
  }
  if (request.path == "/config") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot change the configuration");
    }
    return ChangeConfig(request, *controller);
  }
  if (request.path == "/switchover" || request.path == "/failover") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot change the leader");
    }
    if (request.method == "DELETE") {
      return CancelScheduledSwitchover(*controller);
    }
    return Failover(request, request.path.substr(1), *controller);
  }
  if (request.path == "/reload") {
    if (controller == nullptr) {
      return ErrorReply(503, "this node cannot reload");
    }
    auto reloaded = controller->Reload();
    if (!reloaded.ok()) {
      return ErrorReply(503, "reload failed: " + reloaded.error().message());
    }
    return TextReply(202, "reload scheduled");
  }
  if (request.path == "/failsafe") {
    return AcceptFailsafe(request, state, controller);
  }
  // The rest (sigterm, citus, mpp): an authorised, well-formed request is told so
  // rather than silently ignored.
  return ErrorReply(501, fmt::format("{} {} is not implemented in this version of pgha",
                                     request.method, request.path));
}

}  // namespace pgha::api
