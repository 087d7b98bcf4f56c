#include "model/cluster.h"

#include <algorithm>

#include "common/strings.h"
#include "model/codec.h"

namespace pgha::model {

using nlohmann::json;

namespace {

std::string StringField(const json& data, const char* key) {
  auto it = data.find(key);
  if (it != data.end() && it->is_string()) {
    return it->get<std::string>();
  }
  return "";
}

std::optional<uint64_t> LsnField(const json& data, const char* key) {
  auto it = data.find(key);
  if (it == data.end()) {
    return std::nullopt;
  }
  if (it->is_number_unsigned()) {
    return it->get<uint64_t>();
  }
  if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    return static_cast<uint64_t>(it->get<int64_t>());
  }
  return std::nullopt;
}

bool TagBool(const json& tags, const char* key) {
  auto it = tags.find(key);
  return it != tags.end() && JsonAsBool(*it).value_or(false);
}

}  // namespace

std::string Member::conn_url() const { return StringField(data, "conn_url"); }
std::string Member::api_url() const { return StringField(data, "api_url"); }
std::string Member::state() const { return StringField(data, "state"); }
std::string Member::role() const { return StringField(data, "role"); }
std::string Member::version() const { return StringField(data, "version"); }
std::string Member::replication_state() const { return StringField(data, "replication_state"); }

const json& Member::tags() const {
  static const json kEmpty = json::object();
  auto it = data.find("tags");
  return it != data.end() && it->is_object() ? *it : kEmpty;
}

std::optional<uint64_t> Member::xlog_location() const { return LsnField(data, "xlog_location"); }
std::optional<uint64_t> Member::receive_lsn() const { return LsnField(data, "receive_lsn"); }
std::optional<uint64_t> Member::replay_lsn() const { return LsnField(data, "replay_lsn"); }

std::optional<int64_t> Member::timeline() const {
  auto it = data.find("timeline");
  if (it != data.end() && it->is_number_integer()) {
    return it->get<int64_t>();
  }
  return std::nullopt;
}

bool Member::pending_restart() const {
  auto it = data.find("pending_restart");
  return it != data.end() && JsonAsBool(*it).value_or(false);
}

bool Member::is_paused() const {
  auto it = data.find("pause");
  return it != data.end() && JsonAsBool(*it).value_or(false);
}

bool Member::IsPrimaryRole() const {
  std::string r = role();
  return r == kRoleMaster || r == kRolePrimary;
}

bool Member::nofailover() const { return TagBool(tags(), "nofailover"); }
bool Member::noloadbalance() const { return TagBool(tags(), "noloadbalance"); }
bool Member::nosync() const { return TagBool(tags(), "nosync"); }
bool Member::nostream() const { return TagBool(tags(), "nostream"); }

int64_t Member::failover_priority() const {
  auto it = tags().find("failover_priority");
  if (it != tags().end()) {
    if (auto n = JsonAsNumber(*it)) {
      return static_cast<int64_t>(*n);
    }
  }
  return nofailover() ? 0 : 1;
}

std::string Member::replicatefrom() const { return StringField(tags(), "replicatefrom"); }

std::optional<uint64_t> Member::wal_position() const {
  if (auto x = xlog_location()) {
    return x;
  }
  auto r = receive_lsn();
  auto p = replay_lsn();
  if (r && p) {
    return std::max(*r, *p);
  }
  return r ? r : p;
}

namespace {
// Splits "postgres://user@host:port/db?x" into host and port.
std::pair<std::string, int> ParseConnUrl(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) {
    return {"", 0};
  }
  std::string rest = url.substr(start + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  if (size_t at = rest.rfind('@'); at != std::string::npos) {
    rest = rest.substr(at + 1);
  }
  std::string host;
  std::string port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) {
      return {"", 0};
    }
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') {
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) {
      port = rest.substr(colon + 1);
    }
  }
  auto p = ParseInt64(port);
  return {host, p && *p > 0 && *p < 65536 ? static_cast<int>(*p) : 5432};
}
}  // namespace

std::string Member::host() const { return ParseConnUrl(conn_url()).first; }
int Member::port() const {
  auto [host, port] = ParseConnUrl(conn_url());
  return host.empty() ? 0 : port;
}

bool SyncState::IsSyncStandby(const std::string& name) const {
  return std::find(sync_standby.begin(), sync_standby.end(), name) != sync_standby.end();
}

const Member* ClusterSnapshot::FindMember(const std::string& name) const {
  for (const auto& m : members) {
    if (m.name == name) {
      return &m;
    }
  }
  return nullptr;
}

const Member* ClusterSnapshot::LeaderMember() const {
  return leader ? FindMember(leader->name) : nullptr;
}

ClusterSnapshot BuildSnapshot(const std::vector<KeyValue>& keys, int64_t revision) {
  ClusterSnapshot snapshot;
  snapshot.revision = revision;
  std::optional<uint64_t> legacy_optime;
  auto note = [&snapshot](const std::string& key, const Error& error) {
    snapshot.decode_errors.push_back(key + ": " + error.message());
  };
  for (const auto& kv : keys) {
    if (kv.key == "leader") {
      auto leader = DecodeLeader(kv.value);
      if (leader.ok()) {
        leader->mod_revision = kv.mod_revision;
        leader->lease = kv.lease;
        snapshot.leader = *leader;
      } else {
        note(kv.key, leader.error());
        // A leader key exists even if its value is odd: the lock is held. Never treat it as free.
        snapshot.leader = Leader{"", kv.mod_revision, kv.lease};
      }
    } else if (kv.key.rfind("members/", 0) == 0) {
      std::string name = kv.key.substr(8);
      if (name.empty() || name.find('/') != std::string::npos) {
        continue;
      }
      auto member = DecodeMember(name, kv.value);
      Member m;
      if (member.ok()) {
        m = *member;
      } else {
        note(kv.key, member.error());
        m.name = name;  // keep it visible, as Patroni does, with no data
      }
      m.mod_revision = kv.mod_revision;
      m.lease = kv.lease;
      snapshot.members.push_back(std::move(m));
    } else if (kv.key.rfind(kRegisteredMembersPrefix, 0) == 0) {
      std::string name = kv.key.substr(std::string_view(kRegisteredMembersPrefix).size());
      if (!name.empty() && name.find('/') == std::string::npos) {
        snapshot.registered_members.push_back(std::move(name));
      }
    } else if (kv.key == kHandoverKey) {
      auto notice = DecodeHandoverNotice(kv.value);
      if (notice.ok()) {
        snapshot.handover = *notice;
        snapshot.handover->mod_revision = kv.mod_revision;
      } else {
        note(kv.key, notice.error());
      }
    } else if (kv.key.rfind(kRoutersPrefix, 0) == 0) {
      std::string name = kv.key.substr(std::string_view(kRoutersPrefix).size());
      if (name.empty() || name.find('/') != std::string::npos) {
        continue;
      }
      if (auto router = DecodeRouterPresence(name, kv.value); router.ok()) {
        snapshot.routers.push_back(*router);
      } else {
        note(kv.key, router.error());
      }
    } else if (kv.key == "config") {
      auto config = DecodeConfig(kv.value);
      if (config.ok()) {
        snapshot.config = ClusterConfig{kv.mod_revision, *config};
      } else {
        note(kv.key, config.error());
        snapshot.config = ClusterConfig{kv.mod_revision, GlobalConfig()};
      }
    } else if (kv.key == "initialize") {
      auto sysid = DecodeInitialize(kv.value);
      snapshot.initialize = sysid.ok() ? *sysid : kv.value;
    } else if (kv.key == "status") {
      auto status = DecodeStatus(kv.value);
      if (status.ok()) {
        snapshot.status = *status;
      } else {
        note(kv.key, status.error());
      }
    } else if (kv.key == "optime/leader") {
      auto optime = DecodeLegacyOptime(kv.value);
      if (optime.ok()) {
        legacy_optime = *optime;
      } else {
        note(kv.key, optime.error());
      }
    } else if (kv.key == "history") {
      auto history = DecodeHistory(kv.value);
      if (history.ok()) {
        snapshot.history = *history;
        snapshot.has_history = true;
      } else {
        note(kv.key, history.error());
      }
    } else if (kv.key == "failover") {
      auto failover = DecodeFailover(kv.value);
      if (failover.ok()) {
        if (*failover) {
          snapshot.failover = **failover;
          snapshot.failover->mod_revision = kv.mod_revision;
        }
      } else {
        note(kv.key, failover.error());
      }
    } else if (kv.key == "sync") {
      auto sync = DecodeSync(kv.value);
      if (sync.ok()) {
        snapshot.sync = *sync;
        snapshot.sync->mod_revision = kv.mod_revision;
      } else {
        note(kv.key, sync.error());
      }
    } else if (kv.key == "failsafe") {
      auto failsafe = DecodeFailsafe(kv.value);
      if (failsafe.ok()) {
        snapshot.failsafe = *failsafe;
      } else {
        note(kv.key, failsafe.error());
      }
    }
  }
  // Patroni < 2.1 wrote only optime/leader; newer nodes prefer status.
  if (!snapshot.status.optime && legacy_optime) {
    snapshot.status.optime = legacy_optime;
  }
  std::sort(snapshot.members.begin(), snapshot.members.end(),
            [](const Member& a, const Member& b) { return a.name < b.name; });
  std::sort(snapshot.registered_members.begin(), snapshot.registered_members.end());
  std::sort(snapshot.routers.begin(), snapshot.routers.end(),
            [](const RouterPresence& a, const RouterPresence& b) { return a.name < b.name; });
  return snapshot;
}

}  // namespace pgha::model
