// Node: this node's PostgreSQL as the agent drives it. LocalPostgres is the real one (its own
// tools and libpq); the agent's unit tests use an in-memory fake (tests/fakes/fake_node.h), so
// every step of the HA loop can be tested without a server.
//
// Thread-safety: the agent calls a Node from its loop and from long-action threads, never both
// at once for the same operation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "model/cluster.h"
#include "model/global_config.h"
#include "model/replication_slot.h"

namespace pgha::postgres {

struct Observation {
  bool running = false;
  bool in_recovery = false;
  uint64_t wal_position = 0;  // primary: current; replica: max(received, replayed)
  std::optional<uint64_t> received_location;
  std::optional<uint64_t> replayed_location;
  std::string replayed_timestamp;  // "" when unknown
  bool replay_paused = false;
  int64_t timeline = 0;
  std::string postmaster_start_time;  // "2026-11-25 19:41:14.467641+00:00"
  int64_t server_version = 0;
  std::string replication_state;    // "streaming" / "in archive recovery" on replicas
  std::string following_host_port;  // the walreceiver's sender "host:port"
  int64_t receiver_timeline = 0;    // pg_stat_wal_receiver.received_tli; 0 without a receiver
  nlohmann::json replication = nlohmann::json::array();  // pg_stat_replication rows
  // The same rows for synchronous replication: the position synchronous_commit waits for
  // (flush_lsn; write_lsn or replay_lsn under remote_write / remote_apply).
  struct WalSender {
    std::string application_name;
    std::string sync_state;
    std::optional<uint64_t> position;
  };
  std::vector<WalSender> wal_senders;
  // Parameters changed in the configuration that take effect only after a restart
  // (pg_settings.pending_restart): {name: {"old_value": in effect}}; empty when none.
  nlohmann::json pending_restart = nlohmann::json::object();
};

class Node {
 public:
  virtual ~Node() = default;

  // The configuration after a reload. The agent calls it between long actions, so no operation
  // of this class runs meanwhile.
  virtual void UseConfig(std::shared_ptr<const config::Config> config) = 0;
  virtual bool DataInitialized() const = 0;
  // From pg_controldata; "" when the data directory is not initialised.
  virtual std::string SystemIdentifier() const = 0;
  // pg_controldata's "Latest checkpoint location" (after a clean stop: the shutdown checkpoint
  // that replicas must have before one of them may take over); 0 when unknown.
  virtual uint64_t LatestCheckpointLocation() const = 0;
  virtual bool StandbySignalPresent() const = 0;
  virtual bool PostmasterAlive() const = 0;
  // The live postmaster's pid (reaping it when it died as our child); nullopt when none runs.
  virtual std::optional<pid_t> PostmasterPid() const = 0;
  // Queries the running server; `running` false when it cannot be reached.
  virtual Observation Observe() = 0;
  // Runs initdb with bootstrap.initdb options.
  virtual Status Initdb() = 0;
  // Writes postgresql.conf and pg_hba.conf (and standby.signal when `standby`), following
  // `leader` (a member of the cluster) when given.
  // `will_recover`: the server will replay WAL as a primary-to-be (a restore), so like a
  // standby it gets at least the settings pg_control records.
  virtual Status WriteConfig(const model::GlobalConfig& dynamic, bool standby,
                             const model::Member* leader, bool will_recover = false) = 0;
  // During bootstrap only: a pg_hba.conf that lets the local superuser in without a password,
  // until the roles exist.
  virtual Status WriteBootstrapHba() = 0;
  // bootstrap.method other than initdb: runs bootstrap.<method>.command (with --scope and
  // --datadir unless no_params), which must leave a data directory, and adopts it.
  virtual Status RunCustomBootstrap(const std::string& method, const nlohmann::json& options) = 0;
  // Appends a custom bootstrap's recovery_conf to postgresql.conf and writes recovery.signal, so
  // PostgreSQL recovers (from restore_command, to a target) before it becomes the primary.
  virtual Status WriteBootstrapRecovery(const nlohmann::json& recovery_conf) = 0;
  virtual void RemoveRecoverySignals() = 0;
  // patroni.dynamic.json in the data directory: Patroni's cache of the DCS config. Writing
  // fails quietly without a data directory; reading gives nullopt without a valid file.
  virtual Status WriteDynamicConfigCache(const nlohmann::json& config) = 0;
  virtual std::optional<nlohmann::json> ReadDynamicConfigCache() const = 0;
  // Waits until PostgreSQL accepts connections (up to `timeout`)...
  virtual Status Start(std::chrono::seconds timeout) = 0;
  // ...or only until the postmaster is launched: a replica that must replay WAL it has no source
  // for (a demoted primary while the DCS is away) may not accept connections for a long time.
  virtual Status Launch() = 0;
  virtual Status Stop(const std::string& mode, std::chrono::seconds timeout) = 0;
  virtual Status Promote(std::chrono::seconds timeout) = 0;
  // postgresql.pre_promote (Patroni's fencing hook, run after winning the lock and before the
  // promotion): an error when it fails, and the node must then not promote.
  virtual Status RunPrePromote() = 0;
  // postgresql.pgpass: the file Patroni keeps for libpq and the tools, one line a user
  // (superuser, replication, rewind) for any host; nothing when the key is unset.
  virtual Status WritePgpass() const = 0;
  virtual Status Reload() = 0;
  // The synchronous_standby_names the next WriteConfig writes on a primary (the leader's sync
  // replication sets it); nullopt: whatever the configuration says.
  virtual void SetSynchronousStandbyNames(std::optional<std::string> value) = 0;
  // A checkpoint, so the control file shows the new timeline after a promotion.
  virtual Status Checkpoint() = 0;
  // After initdb on the bootstrap leader: superuser password, replication and rewind roles.
  virtual Status CreateRoles() = 0;
  // bootstrap.post_bootstrap (or post_init): the script, with the superuser's URL as its last
  // argument, as Patroni runs it; an error when it fails.
  virtual Status RunPostBootstrap() = 0;
  // bootstrap.users (Patroni's deprecated way to create roles at bootstrap), with their options.
  virtual Status CreateBootstrapUsers() = 0;
  // Renames a non-empty data directory to <data_dir>_<UTC time> (Patroni's name) and returns
  // the new path; "" when there was nothing to move.
  virtual Result<std::string> MoveDataDirectoryAside() = 0;
  // postgresql.create_replica_methods in order until one works (Patroni's create_replica):
  // basebackup from `source`, or a method's script; with no `source` (no leader) only methods
  // marked no_leader are tried. The new data directory is adopted as after a custom bootstrap.
  // `methods`, when not empty, replaces create_replica_methods (a standby cluster's own list).
  virtual Status CreateReplica(const model::Member* source,
                               std::vector<std::string> methods = {}) = 0;
  virtual Status Rewind(const model::Member& leader) = 0;
  virtual Status RemoveDataDirectory() = 0;
  // pg_replication_slot_advance of a logical slot to `position`, from its database.
  virtual Status AdvanceLogicalSlot(const model::ReplicationSlot& slot, uint64_t position) = 0;
  // The state files of the leader's logical slots `names` (hex), read over SQL.
  virtual Result<std::map<std::string, std::string>> ReadLeaderSlotStates(
      const model::Member& leader, const std::vector<std::string>& names) = 0;
  // Writes slot state files into pg_replslot (PostgreSQL stopped): copies of the leader's.
  virtual Status InstallSlotStates(const std::map<std::string, std::string>& hex_states) = 0;
  // pg_replication_slots, temporary slots left out.
  virtual Result<std::vector<model::ReplicationSlot>> ListSlots() = 0;
  // Drops the slots named in `drop` (one still in use is left for the next cycle) and creates
  // `create`'s (a logical one over a connection to its database).
  virtual Status ChangeSlots(const std::vector<std::string>& drop,
                             const std::vector<model::ReplicationSlot>& create) = 0;
  // Entries of pg_wal/<timeline>.history: (parent timeline, switch LSN, reason).
  virtual std::vector<model::HistoryEntry> TimelineHistory(int64_t timeline) const = 0;
};

}  // namespace pgha::postgres
