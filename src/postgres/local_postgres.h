// LocalPostgres: this node's PostgreSQL, driven with its own tools (initdb, pg_ctl,
// pg_basebackup, pg_rewind, pg_controldata) and observed through libpq. The agent calls it from
// its loop and from long-action threads, never both at once for the same operation.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "common/result.h"
#include "config/config.h"
#include "model/cluster.h"
#include "model/global_config.h"
#include "model/replication_slot.h"

namespace pgha::postgres {

class Connection;

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

class LocalPostgres {
 public:
  explicit LocalPostgres(std::shared_ptr<const config::Config> config);
  // The configuration after a reload. The agent calls it between long actions, so no operation
  // of this class runs meanwhile.
  void UseConfig(std::shared_ptr<const config::Config> config);
  ~LocalPostgres();

  bool DataInitialized() const;
  // From pg_controldata; "" when the data directory is not initialised.
  std::string SystemIdentifier() const;
  // The data directory's PostgreSQL major version (15), or 0 when it has none.
  int MajorVersion() const;
  // pg_controldata's "Database cluster state" ("in production", "shut down", ...).
  std::string ControlState() const;
  // pg_controldata's "Latest checkpoint location" (after a clean stop: the shutdown checkpoint
  // that replicas must have before one of them may take over); 0 when unknown.
  uint64_t LatestCheckpointLocation() const;
  bool StandbySignalPresent() const;
  bool PostmasterAlive() const;
  // The live postmaster's pid (reaping it when it died as our child); nullopt when none runs.
  std::optional<pid_t> PostmasterPid() const;

  // Queries the running server; `running` false when it cannot be reached.
  Observation Observe();

  // Runs initdb with bootstrap.initdb options.
  Status Initdb();
  // Writes postgresql.conf and pg_hba.conf (and standby.signal when `standby`), following
  // `leader` (a member of the cluster) when given.
  // `will_recover`: the server will replay WAL as a primary-to-be (a restore), so like a
  // standby it gets at least the settings pg_control records.
  Status WriteConfig(const model::GlobalConfig& dynamic, bool standby, const model::Member* leader,
                     bool will_recover = false);
  // During bootstrap only: a pg_hba.conf that lets the local superuser in without a password,
  // until the roles exist.
  Status WriteBootstrapHba();
  // bootstrap.method other than initdb: runs bootstrap.<method>.command (with --scope and
  // --datadir unless no_params), which must leave a data directory, and adopts it.
  Status RunCustomBootstrap(const std::string& method, const nlohmann::json& options);
  // A data directory a script restored or copied: its postgresql.conf becomes the base that
  // pgha's includes (unless it already has one), and a leftover promote trigger goes.
  Status AdoptRestoredDataDirectory();
  // Appends a custom bootstrap's recovery_conf to postgresql.conf and writes recovery.signal, so
  // PostgreSQL recovers (from restore_command, to a target) before it becomes the primary.
  Status WriteBootstrapRecovery(const nlohmann::json& recovery_conf);
  void RemoveRecoverySignals();
  // patroni.dynamic.json in the data directory: Patroni's cache of the DCS config. Writing
  // fails quietly without a data directory; reading gives nullopt without a valid file.
  Status WriteDynamicConfigCache(const nlohmann::json& config);
  std::optional<nlohmann::json> ReadDynamicConfigCache() const;
  // recovery_conf entries as postgresql.conf lines, less those pgha sets itself.
  static std::string RecoverySettings(const nlohmann::json& recovery_conf);
  // Waits until PostgreSQL accepts connections (up to `timeout`)...
  Status Start(std::chrono::seconds timeout);
  // ...or only until the postmaster is launched: a replica that must replay WAL it has no source
  // for (a demoted primary while the DCS is away) may not accept connections for a long time.
  Status Launch();
  Status Stop(const std::string& mode, std::chrono::seconds timeout);
  Status Promote(std::chrono::seconds timeout);
  // postgresql.pre_promote (Patroni's fencing hook, run after winning the lock and before the
  // promotion): an error when it fails, and the node must then not promote.
  Status RunPrePromote();
  // postgresql.pgpass: the file Patroni keeps for libpq and the tools, one line a user
  // (superuser, replication, rewind) for any host; nothing when the key is unset.
  Status WritePgpass() const;
  Status Reload();
  // The synchronous_standby_names the next WriteConfig writes on a primary (the leader's sync
  // replication sets it); nullopt: whatever the configuration says.
  void SetSynchronousStandbyNames(std::optional<std::string> value);
  // A checkpoint, so the control file shows the new timeline after a promotion.
  Status Checkpoint();
  // After initdb on the bootstrap leader: superuser password, replication and rewind roles.
  Status CreateRoles();
  // bootstrap.post_bootstrap (or post_init): the script, with the superuser's URL as its last
  // argument, as Patroni runs it; an error when it fails.
  Status RunPostBootstrap();
  // bootstrap.users (Patroni's deprecated way to create roles at bootstrap), with their options.
  Status CreateBootstrapUsers();
  // Renames a non-empty data directory to <data_dir>_<UTC time> (Patroni's name) and returns
  // the new path; "" when there was nothing to move.
  Result<std::string> MoveDataDirectoryAside();
  Status Basebackup(const model::Member& leader);
  // postgresql.create_replica_methods in order until one works (Patroni's create_replica):
  // basebackup from `source`, or a method's script; with no `source` (no leader) only methods
  // marked no_leader are tried. The new data directory is adopted as after a custom bootstrap.
  // `methods`, when not empty, replaces create_replica_methods (a standby cluster's own list).
  Status CreateReplica(const model::Member* source, std::vector<std::string> methods = {});
  // postgresql.basebackup (a list of flags and one-key mappings, or a mapping) as
  // pg_basebackup's arguments; options that would break pgha are logged and left out.
  static std::vector<std::string> BasebackupArguments(const nlohmann::json& options);
  // Brings a crashed data directory to a consistent state in single-user mode (pg_rewind needs
  // a clean shutdown).
  Status CrashRecover();
  Status Rewind(const model::Member& leader);
  Status RemoveDataDirectory();
  // pg_replication_slot_advance of a logical slot to `position`, from its database.
  Status AdvanceLogicalSlot(const model::ReplicationSlot& slot, uint64_t position);
  // The state files of the leader's logical slots `names` (hex), read over SQL.
  Result<std::map<std::string, std::string>> ReadLeaderSlotStates(
      const model::Member& leader, const std::vector<std::string>& names);
  // Writes slot state files into pg_replslot (PostgreSQL stopped): copies of the leader's.
  Status InstallSlotStates(const std::map<std::string, std::string>& hex_states);
  // pg_replication_slots, temporary slots left out.
  Result<std::vector<model::ReplicationSlot>> ListSlots();
  // Drops the slots named in `drop` (one still in use is left for the next cycle) and creates
  // `create`'s (a logical one over a connection to its database).
  Status ChangeSlots(const std::vector<std::string>& drop,
                     const std::vector<model::ReplicationSlot>& create);
  // Entries of pg_wal/<timeline>.history: (parent timeline, switch LSN, reason).
  std::vector<model::HistoryEntry> TimelineHistory(int64_t timeline) const;

  std::string LocalConninfo() const;
  // The superuser's postgres:// URL for this node, without the password.
  std::string LocalUrl() const;
  std::string ReplicationConninfo(const model::Member& leader) const;
  // Where a connection's password goes: in the conninfo (a file or a libpq call), or in
  // PGPASSWORD for a tool whose command line every local user can read.
  enum class PasswordIn { kConninfo, kEnvironment };
  // How this node reaches another member as `user`: its host and port, the user's libpq options
  // (sslmode, sslcert, ..., channel_binding; sslmode=prefer unless set), the password as
  // `password_in` says, and `dbname` when not empty. Every connection pgha makes to another
  // member is built here.
  std::string MemberConninfo(const model::Member& member, const config::PgUser& user,
                             const std::string& dbname, PasswordIn password_in) const;

 private:
  std::string Bin(const std::string& program) const;
  Status RunReplicaMethod(const std::string& method, const model::Member* source);
  std::string ControlData(const std::string& field) const;
  std::map<std::string, std::string> ControlDataFields() const;
  std::string SocketDirectory() const;
  Result<std::unique_ptr<Connection>> Connect();
  void WaitForOrphanedBackends(std::chrono::milliseconds limit) const;
  Status RunPgCtlStart(const std::vector<std::string>& wait_options,
                       std::chrono::seconds tool_timeout);

  std::shared_ptr<const config::Config> config_;
  Mutex connection_mutex_;
  std::optional<std::string> synchronous_standby_names_ GUARDED_BY(connection_mutex_);
  std::unique_ptr<Connection> connection_ GUARDED_BY(connection_mutex_);
};

}  // namespace pgha::postgres
