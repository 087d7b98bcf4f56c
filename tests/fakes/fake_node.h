// FakeNode: a PostgreSQL node in memory for the agent's unit tests. It keeps what a real one
// would show (data directory, running, role, timeline, position, whom it follows), records every
// operation as a line ("Stop fast", "WriteConfig standby pg-0", ...), and fails an operation a
// test names. Crash() is the postmaster dying on its own.
//
// Thread-safety: every method is safe from any thread (long actions call it too).
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "postgres/node.h"

namespace pgha::testing {

struct FakeNodeState {
  bool data_initialized = false;
  std::string sysid;
  bool running = false;
  bool in_recovery = false;
  bool standby_signal = false;
  bool streaming = true;            // a running replica that follows someone streams from it
  std::string following;            // the member named by the last standby configuration
  std::string following_host_port;  // its conn_url's host:port, as the walreceiver shows it
  uint64_t wal_position = 0x3000000;
  int64_t timeline = 1;
  // What a primary shows in pg_stat_replication for synchronous replication.
  std::vector<postgres::Observation::WalSender> wal_senders{};
};

class FakeNode final : public postgres::Node {
 public:
  FakeNode() = default;
  // A node whose data directory is a primary's (running or not) or a replica's.
  static FakeNodeState RunningPrimary();
  static FakeNodeState RunningReplica(const std::string& following,
                                      const std::string& following_host_port);

  FakeNodeState state() const;
  void set_state(const FakeNodeState& state);
  // The postmaster dies (a crash or kill -9): the data directory stays as it was.
  void Crash();
  // `operation` ("Start", "Rewind", ...) fails with `error` until cleared.
  void Fail(const std::string& operation, const Error& error);
  void ClearFailures();
  // The next call of `operation` waits, before it does or records anything, until Release:
  // a long action that a test lets finish when it chooses.
  void Hold(const std::string& operation);
  void Release();
  // Waits (10 s at most) until a call is waiting on the hold; false if none came.
  bool AwaitHeldCall();
  // Every operation so far, oldest first; Take empties the record.
  std::vector<std::string> operations() const;
  std::vector<std::string> TakeOperations();
  // How many recorded operations start with `prefix`.
  int Count(const std::string& prefix) const;

  void UseConfig(std::shared_ptr<const config::Config> config) override;
  bool DataInitialized() const override;
  std::string SystemIdentifier() const override;
  uint64_t LatestCheckpointLocation() const override;
  bool StandbySignalPresent() const override;
  bool PostmasterAlive() const override;
  std::optional<pid_t> PostmasterPid() const override;
  postgres::Observation Observe() override;
  Status Initdb() override;
  Status WriteConfig(const model::GlobalConfig& dynamic, bool standby, const model::Member* leader,
                     bool will_recover = false) override;
  Status WriteBootstrapHba() override;
  Status RunCustomBootstrap(const std::string& method, const nlohmann::json& options) override;
  Status WriteBootstrapRecovery(const nlohmann::json& recovery_conf) override;
  void RemoveRecoverySignals() override;
  Status WriteDynamicConfigCache(const nlohmann::json& config) override;
  std::optional<nlohmann::json> ReadDynamicConfigCache() const override;
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
  Status CreateReplica(const model::Member* source, std::vector<std::string> methods = {}) override;
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

 private:
  // Records `line`; the failure set for `operation`, if any.
  Status Record(const std::string& operation, const std::string& line) const;

  // Waits while `operation` is held; called with `lock` on mutex_.
  void WaitIfHeld(const std::string& operation, std::unique_lock<std::mutex>& lock);

  mutable std::mutex mutex_;  // guards every member below
  std::condition_variable released_;
  std::string held_;
  int waiting_ = 0;  // calls waiting on the hold
  FakeNodeState state_;
  std::map<std::string, Error> failures_;
  mutable std::vector<std::string> operations_;
  std::shared_ptr<const config::Config> config_;
};

}  // namespace pgha::testing
