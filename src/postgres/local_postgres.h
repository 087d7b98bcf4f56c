// LocalPostgres: the real Node (postgres/node.h, where its operations are described), driven
// with PostgreSQL's own tools (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata) and
// observed through libpq. The agent calls it from its loop and from long-action threads, never
// both at once for the same operation.
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
#include "postgres/node.h"

namespace pgha::postgres {

class Connection;

class LocalPostgres final : public Node {
 public:
  explicit LocalPostgres(std::shared_ptr<const config::Config> config);
  void UseConfig(std::shared_ptr<const config::Config> config) override;
  ~LocalPostgres() override;

  bool DataInitialized() const override;
  std::string SystemIdentifier() const override;
  // The data directory's PostgreSQL major version (15), or 0 when it has none.
  int MajorVersion() const;
  // pg_controldata's "Database cluster state" ("in production", "shut down", ...).
  std::string ControlState() const;
  uint64_t LatestCheckpointLocation() const override;
  bool StandbySignalPresent() const override;
  bool PostmasterAlive() const override;
  std::optional<pid_t> PostmasterPid() const override;

  Observation Observe() override;

  Status Initdb() override;
  Status WriteConfig(const model::GlobalConfig& dynamic, bool standby, const model::Member* leader,
                     bool will_recover = false) override;
  Status WriteBootstrapHba() override;
  Status RunCustomBootstrap(const std::string& method, const nlohmann::json& options) override;
  // A data directory a script restored or copied: its postgresql.conf becomes the base that
  // pgha's includes (unless it already has one), and a leftover promote trigger goes.
  Status AdoptRestoredDataDirectory();
  Status WriteBootstrapRecovery(const nlohmann::json& recovery_conf) override;
  void RemoveRecoverySignals() override;
  Status WriteDynamicConfigCache(const nlohmann::json& config) override;
  std::optional<nlohmann::json> ReadDynamicConfigCache() const override;
  // recovery_conf entries as postgresql.conf lines, less those pgha sets itself.
  static std::string RecoverySettings(const nlohmann::json& recovery_conf);
  Status Start(std::chrono::seconds timeout) override;
  Status Launch() override;
  Status Stop(const std::string& mode, std::chrono::seconds timeout) override;
  Status Promote(std::chrono::seconds timeout) override;
  Status RunPrePromote() override;
  Status WritePgpass() const override;
  Status Reload() override;
  void SetSynchronousStandbyNames(std::optional<std::string> value) override;
  Status Checkpoint() override;
  Status CreateRoles() override;
  Status RunPostBootstrap() override;
  Status CreateBootstrapUsers() override;
  Result<std::string> MoveDataDirectoryAside() override;
  Status Basebackup(const model::Member& leader);
  Status CreateReplica(const model::Member* source, std::vector<std::string> methods = {}) override;
  // postgresql.basebackup (a list of flags and one-key mappings, or a mapping) as
  // pg_basebackup's arguments; options that would break pgha are logged and left out.
  static std::vector<std::string> BasebackupArguments(const nlohmann::json& options);
  // Brings a crashed data directory to a consistent state in single-user mode (pg_rewind needs
  // a clean shutdown).
  Status CrashRecover();
  Status Rewind(const model::Member& leader) override;
  Status RemoveDataDirectory() override;
  Status AdvanceLogicalSlot(const model::ReplicationSlot& slot, uint64_t position) override;
  Result<std::map<std::string, std::string>> ReadLeaderSlotStates(
      const model::Member& leader, const std::vector<std::string>& names) override;
  Status InstallSlotStates(const std::map<std::string, std::string>& hex_states) override;
  Result<std::vector<model::ReplicationSlot>> ListSlots() override;
  Status ChangeSlots(const std::vector<std::string>& drop,
                     const std::vector<model::ReplicationSlot>& create) override;
  std::vector<model::HistoryEntry> TimelineHistory(int64_t timeline) const override;

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
