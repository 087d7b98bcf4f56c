// The cluster as the DCS shows it: one immutable snapshot per HA cycle (Patroni's `Cluster`).
// Built from the keys under /<namespace>/<scope>/ by BuildSnapshot; each value decoded by the
// codecs in codec.h. A value that does not decode is reported in `decode_errors`, never thrown.
//
// Thread-safety: immutable values.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "model/global_config.h"
#include "model/handover_notice.h"

namespace pgha::model {

// A member's role as written in its key. Patroni 3.x writes "master", 4.x "primary".
inline constexpr const char* kRoleMaster = "master";
inline constexpr const char* kRolePrimary = "primary";
inline constexpr const char* kRoleReplica = "replica";
inline constexpr const char* kRoleStandbyLeader = "standby_leader";

struct Member {
  std::string name;
  int64_t mod_revision = 0;
  int64_t lease = 0;
  nlohmann::json data = nlohmann::json::object();  // everything the member key holds

  std::string conn_url() const;
  std::string api_url() const;
  std::string state() const;
  std::string role() const;
  std::string version() const;
  const nlohmann::json& tags() const;
  std::optional<uint64_t> xlog_location() const;
  std::optional<uint64_t> receive_lsn() const;
  std::optional<uint64_t> replay_lsn() const;
  std::optional<int64_t> timeline() const;
  std::string replication_state() const;
  bool pending_restart() const;
  bool is_paused() const;

  bool IsPrimaryRole() const;  // "master" or "primary"
  bool nofailover() const;
  int64_t failover_priority() const;
  bool noloadbalance() const;
  bool nosync() const;
  bool nostream() const;  // Patroni 4's tag: no streaming, archive recovery only
  std::string replicatefrom() const;
  // The highest WAL position the member reports: xlog_location, else max(receive, replay).
  std::optional<uint64_t> wal_position() const;
  // Host and port of conn_url ("postgres://host:port/db"); empty / 0 when absent.
  std::string host() const;
  int port() const;
};

struct Leader {
  std::string name;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct Failover {
  int64_t mod_revision = 0;
  std::optional<std::string> leader;
  std::optional<std::string> candidate;  // "member" in the key
  std::optional<WallTime> scheduled_at;
  std::string scheduled_at_text;  // as written, for display
};

struct SyncState {
  int64_t mod_revision = 0;
  std::optional<std::string> leader;
  std::vector<std::string> sync_standby;  // sorted
  int64_t quorum = 0;
  bool IsSyncStandby(const std::string& name) const;
};

struct HistoryEntry {
  int64_t timeline = 0;
  uint64_t lsn = 0;
  std::string reason;
  std::optional<std::string> timestamp;
  std::optional<std::string> new_leader;
};

struct ClusterStatus {
  std::optional<uint64_t> optime;  // last known leader WAL position
  std::map<std::string, uint64_t> slots;
  std::vector<std::string> retain_slots;
};

// pgha's own keys live below pgha/ under the cluster prefix; Patroni reads only the keys it
// knows and ignores them. pgha/members/<name> (no lease) records every member that ever ran with
// the cluster's data, so that a cold start can wait for all of them.
inline constexpr const char* kRegisteredMembersPrefix = "pgha/members/";

// The name under which a standby cluster's leader follows the remote primary
// (standby_cluster.host/port): not a member of this cluster.
inline constexpr const char* kStandbyClusterSource = "(standby_cluster)";

struct ClusterConfig {
  int64_t mod_revision = 0;
  GlobalConfig data;
};

struct ClusterSnapshot {
  int64_t revision = 0;                   // the DCS revision this snapshot was read at
  std::optional<std::string> initialize;  // sysid; "" while a node is initialising
  std::optional<ClusterConfig> config;
  std::optional<Leader> leader;
  std::vector<Member> members;  // sorted by name
  std::optional<Failover> failover;
  std::optional<SyncState> sync;
  std::vector<HistoryEntry> history;
  bool has_history = false;
  ClusterStatus status;
  std::optional<std::map<std::string, std::string>> failsafe;
  std::vector<std::string> registered_members;  // pgha/members/*, sorted
  std::optional<HandoverNotice> handover;       // pgha/handover
  std::vector<RouterPresence> routers;          // pgha/routers/*, sorted by name
  std::vector<std::string> decode_errors;  // "members/pg-1: ..." for values that did not decode

  const Member* FindMember(const std::string& name) const;
  bool IsLocked() const { return leader.has_value(); }
  bool IsUnlocked() const { return !leader.has_value(); }
  // The leader's member entry, when it has one.
  const Member* LeaderMember() const;
  GlobalConfig EffectiveConfig() const { return config ? config->data : GlobalConfig(); }
};

// One key/value below the cluster prefix; `key` is relative ("leader", "members/pg-0").
struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

// Builds a snapshot from the keys below the cluster prefix. Unknown keys are ignored, as Patroni
// ignores them; values that fail to decode are listed in decode_errors.
ClusterSnapshot BuildSnapshot(const std::vector<KeyValue>& keys, int64_t revision);

}  // namespace pgha::model
