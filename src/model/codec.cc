#include "model/codec.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/strings.h"
#include "common/time_format.h"

namespace pgha::model {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxShown = 80;  // how much of a bad value an error message quotes

std::string Shown(std::string_view value) {
  if (value.size() <= kMaxShown) {
    return std::string(value);
  }
  return std::string(value.substr(0, kMaxShown)) + "...";
}

// Python's json.dumps(separators=(',', ':')) escapes non-ASCII; so do we, byte for byte.
std::string Compact(const ordered_json& value) {
  return value.dump(-1, ' ', true, json::error_handler_t::replace);
}

std::string Compact(const json& value) {
  return value.dump(-1, ' ', true, json::error_handler_t::replace);
}

ordered_json Ordered(const json& value) {
  return ordered_json::parse(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::optional<uint64_t> AsLsn(const json& value) {
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>();
  }
  if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    return static_cast<uint64_t>(value.get<int64_t>());
  }
  if (value.is_number_float() && value.get<double>() >= 0 && value.get<double>() < 1.8e19) {
    return static_cast<uint64_t>(value.get<double>());
  }
  return std::nullopt;
}

}  // namespace

Result<json> ParseJson(std::string_view text, std::string_view what) {
  json parsed = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return Error::Invalid(fmt::format("{} is not valid JSON: '{}'", what, Shown(text)));
  }
  return parsed;
}

Result<Leader> DecodeLeader(std::string_view value) {
  // Plain string, not JSON. An empty name still means the lock exists (see BuildSnapshot).
  if (value.empty()) {
    return Error::Invalid("leader value is empty");
  }
  return Leader{std::string(value), 0, 0};
}

Result<Member> DecodeMember(const std::string& name, std::string_view value) {
  Member member;
  member.name = name;
  if (value.rfind("postgres", 0) == 0) {
    // Very old Patroni stored just the connection URL.
    member.data = json{{"conn_url", std::string(value)}};
    return member;
  }
  auto parsed = ParseJson(value, "member value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_object()) {
    return Error::Invalid(fmt::format("member value is not a JSON object: '{}'", Shown(value)));
  }
  member.data = std::move(parsed).value();
  return member;
}

Result<GlobalConfig> DecodeConfig(std::string_view value) {
  auto parsed = ParseJson(value, "config value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_object()) {
    return Error::Invalid(fmt::format("config value is not a JSON object: '{}'", Shown(value)));
  }
  return GlobalConfig(std::move(parsed).value());
}

Result<std::string> DecodeInitialize(std::string_view value) {
  std::string sysid(Trim(value));
  if (!sysid.empty() && !std::all_of(sysid.begin(), sysid.end(), ::isdigit)) {
    return Error::Invalid(
        fmt::format("initialize value '{}' is not a system identifier", Shown(value)));
  }
  return sysid;
}

Result<ClusterStatus> DecodeStatus(std::string_view value) {
  auto parsed = ParseJson(value, "status value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  ClusterStatus status;
  if (!parsed->is_object()) {
    return Error::Invalid(fmt::format("status value is not a JSON object: '{}'", Shown(value)));
  }
  if (auto it = parsed->find("optime"); it != parsed->end() && !it->is_null()) {
    status.optime = AsLsn(*it);
    if (!status.optime) {
      return Error::Invalid(fmt::format("status.optime '{}' is not a WAL position", it->dump()));
    }
  }
  if (auto it = parsed->find("slots"); it != parsed->end() && it->is_object()) {
    for (const auto& [slot, lsn] : it->items()) {
      if (auto pos = AsLsn(lsn)) {
        status.slots[slot] = *pos;
      }
    }
  }
  if (auto it = parsed->find("retain_slots"); it != parsed->end() && it->is_array()) {
    for (const auto& slot : *it) {
      if (slot.is_string()) {
        status.retain_slots.push_back(slot.get<std::string>());
      }
    }
  }
  return status;
}

Result<uint64_t> DecodeLegacyOptime(std::string_view value) {
  auto n = ParseUint64(Trim(value));
  if (!n) {
    return Error::Invalid(fmt::format("optime/leader '{}' is not an integer", Shown(value)));
  }
  return *n;
}

Result<std::vector<HistoryEntry>> DecodeHistory(std::string_view value) {
  auto parsed = ParseJson(value, "history value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_array()) {
    return Error::Invalid(fmt::format("history value is not a JSON list: '{}'", Shown(value)));
  }
  std::vector<HistoryEntry> history;
  for (const auto& line : *parsed) {
    if (!line.is_array() || line.size() < 3 || !line[0].is_number_integer() || !AsLsn(line[1])) {
      return Error::Invalid(fmt::format(
          "history line {} is not [timeline, lsn, reason, timestamp?, leader?]", line.dump()));
    }
    HistoryEntry entry;
    entry.timeline = line[0].get<int64_t>();
    entry.lsn = *AsLsn(line[1]);
    entry.reason = line[2].is_string() ? line[2].get<std::string>() : line[2].dump();
    if (line.size() > 3 && line[3].is_string()) {
      entry.timestamp = line[3].get<std::string>();
    }
    if (line.size() > 4 && line[4].is_string()) {
      entry.new_leader = line[4].get<std::string>();
    }
    history.push_back(std::move(entry));
  }
  return history;
}

Result<std::optional<Failover>> DecodeFailover(std::string_view value) {
  if (Trim(value).empty()) {
    return std::optional<Failover>();
  }
  Failover failover;
  json parsed = json::parse(value.begin(), value.end(), nullptr, false);
  if (parsed.is_discarded()) {
    // Legacy form "leader:candidate".
    auto parts = Split(value, ':');
    std::string leader(Trim(parts[0]));
    if (!leader.empty()) {
      failover.leader = leader;
    }
    if (parts.size() > 1 && !Trim(parts[1]).empty()) {
      failover.candidate = std::string(Trim(parts[1]));
    }
    return std::optional<Failover>(failover);
  }
  if (!parsed.is_object()) {
    return Error::Invalid(fmt::format("failover value is not a JSON object: '{}'", Shown(value)));
  }
  auto text = [&parsed](const char* key) -> std::optional<std::string> {
    auto it = parsed.find(key);
    if (it != parsed.end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
    return std::nullopt;
  };
  failover.leader = text("leader");
  failover.candidate = text("member");
  if (!failover.leader && !failover.candidate && !text("scheduled_at")) {
    return std::optional<Failover>();  // "{}" is what Patroni leaves after a switchover: none
  }
  if (auto at = text("scheduled_at")) {
    auto when = ParseIsoTimestamp(*at);
    if (!when.ok()) {
      return when.error().WithContext("failover.scheduled_at");
    }
    failover.scheduled_at = *when;
    failover.scheduled_at_text = *at;
  }
  return std::optional<Failover>(failover);
}

Result<SyncState> DecodeSync(std::string_view value) {
  auto parsed = ParseJson(value, "sync value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_object()) {
    return Error::Invalid(fmt::format("sync value is not a JSON object: '{}'", Shown(value)));
  }
  SyncState sync;
  if (auto it = parsed->find("leader"); it != parsed->end() && it->is_string()) {
    sync.leader = it->get<std::string>();
  }
  if (auto it = parsed->find("sync_standby"); it != parsed->end() && it->is_string()) {
    sync.sync_standby = SplitAndTrim(it->get<std::string>(), ',');
    std::sort(sync.sync_standby.begin(), sync.sync_standby.end());
  }
  if (auto it = parsed->find("quorum"); it != parsed->end() && it->is_number_integer()) {
    sync.quorum = it->get<int64_t>();
  }
  return sync;
}

Result<std::map<std::string, std::string>> DecodeFailsafe(std::string_view value) {
  auto parsed = ParseJson(value, "failsafe value");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_object()) {
    return Error::Invalid(fmt::format("failsafe value is not a JSON object: '{}'", Shown(value)));
  }
  std::map<std::string, std::string> members;
  for (const auto& [name, url] : parsed->items()) {
    if (!url.is_string()) {
      return Error::Invalid(fmt::format("failsafe.{} is not an api_url string", name));
    }
    members[name] = url.get<std::string>();
  }
  return members;
}

std::string EncodeMember(const MemberData& m) {
  ordered_json out;
  out["conn_url"] = m.conn_url;
  out["api_url"] = m.api_url;
  out["state"] = m.state;
  out["role"] = m.role;
  out["version"] = m.version;
  if (!m.proxy_url.empty()) {
    out["proxy_url"] = m.proxy_url;
  }
  if (m.tags.is_object() && !m.tags.empty()) {
    out["tags"] = Ordered(m.tags);
  }
  if (!m.replication_state.empty()) {
    out["replication_state"] = m.replication_state;
  }
  if (m.xlog_location) {
    out["xlog_location"] = *m.xlog_location;
  }
  if (m.replay_lsn) {
    out["replay_lsn"] = *m.replay_lsn;
  }
  if (m.receive_lsn) {
    out["receive_lsn"] = *m.receive_lsn;
  }
  if (m.timeline) {
    out["timeline"] = *m.timeline;
  }
  if (m.pending_restart) {
    out["pending_restart"] = true;
    if (!m.pending_restart_reason.is_null()) {
      out["pending_restart_reason"] = Ordered(m.pending_restart_reason);
    }
  }
  if (!m.scheduled_restart.is_null()) {
    out["scheduled_restart"] = Ordered(m.scheduled_restart);
  }
  if (m.pause) {
    out["pause"] = true;
  }
  if (m.checkpoint_after_promote) {
    out["checkpoint_after_promote"] = *m.checkpoint_after_promote;
  }
  return Compact(out);
}

std::string EncodeConfig(const GlobalConfig& config) { return Compact(config.raw()); }

std::string EncodeStatus(const ClusterStatus& status) {
  ordered_json out;
  out["optime"] = status.optime ? ordered_json(*status.optime) : ordered_json(nullptr);
  if (!status.slots.empty()) {
    ordered_json slots = ordered_json::object();
    for (const auto& [name, lsn] : status.slots) {
      slots[name] = lsn;
    }
    out["slots"] = slots;
  }
  if (!status.retain_slots.empty()) {
    out["retain_slots"] = status.retain_slots;
  }
  return Compact(out);
}

std::string EncodeHistory(const std::vector<HistoryEntry>& history) {
  return Compact(HistoryToJson(history));
}

ordered_json HistoryToJson(const std::vector<HistoryEntry>& history) {
  ordered_json out = ordered_json::array();
  for (const auto& entry : history) {
    ordered_json line = ordered_json::array({entry.timeline, entry.lsn, entry.reason});
    if (entry.timestamp) {
      line.push_back(*entry.timestamp);
      if (entry.new_leader) {
        line.push_back(*entry.new_leader);
      }
    }
    out.push_back(line);
  }
  return out;
}

std::string EncodeFailover(const Failover& failover) {
  ordered_json out = ordered_json::object();
  if (failover.leader) {
    out["leader"] = *failover.leader;
  }
  if (failover.candidate) {
    out["member"] = *failover.candidate;
  }
  if (failover.scheduled_at) {
    out["scheduled_at"] = failover.scheduled_at_text.empty()
                              ? FormatIsoTimestamp(*failover.scheduled_at)
                              : failover.scheduled_at_text;
  }
  return Compact(out);
}

std::string EncodeSync(const SyncState& sync, bool with_quorum) {
  ordered_json out;
  out["leader"] = sync.leader ? ordered_json(*sync.leader) : ordered_json(nullptr);
  if (sync.sync_standby.empty()) {
    out["sync_standby"] = nullptr;
  } else {
    std::vector<std::string> names = sync.sync_standby;
    std::sort(names.begin(), names.end());
    std::string joined;
    for (const auto& n : names) {
      joined += (joined.empty() ? "" : ",") + n;
    }
    out["sync_standby"] = joined;
  }
  if (with_quorum) {
    out["quorum"] = sync.quorum;
  }
  return Compact(out);
}

std::string EncodeFailsafe(const std::map<std::string, std::string>& members) {
  ordered_json out = ordered_json::object();
  for (const auto& [name, url] : members) {
    out[name] = url;
  }
  return Compact(out);
}

}  // namespace pgha::model
