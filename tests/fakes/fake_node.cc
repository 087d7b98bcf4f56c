#include "fakes/fake_node.h"

#include <fmt/format.h>

namespace pgha::testing {

FakeNodeState FakeNode::RunningPrimary() {
  FakeNodeState state;
  state.data_initialized = true;
  state.sysid = "7000000000000000001";
  state.running = true;
  return state;
}

FakeNodeState FakeNode::RunningReplica(const std::string& following,
                                       const std::string& following_host_port) {
  FakeNodeState state = RunningPrimary();
  state.in_recovery = true;
  state.standby_signal = true;
  state.following = following;
  state.following_host_port = following_host_port;
  return state;
}

FakeNodeState FakeNode::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

void FakeNode::set_state(const FakeNodeState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = state;
}

void FakeNode::Crash() {
  std::lock_guard<std::mutex> lock(mutex_);
  state_.running = false;
}

void FakeNode::Fail(const std::string& operation, const Error& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  failures_.insert_or_assign(operation, error);
}

void FakeNode::ClearFailures() {
  std::lock_guard<std::mutex> lock(mutex_);
  failures_.clear();
}

void FakeNode::Hold(const std::string& operation) {
  std::lock_guard<std::mutex> lock(mutex_);
  held_ = operation;
}

void FakeNode::Release() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    held_.clear();
  }
  released_.notify_all();
}

void FakeNode::WaitIfHeld(const std::string& operation, std::unique_lock<std::mutex>& lock) {
  if (held_ != operation) {
    return;
  }
  ++waiting_;
  released_.notify_all();  // AwaitHeldCall
  released_.wait(lock, [&] { return held_ != operation; });
  --waiting_;
}

bool FakeNode::AwaitHeldCall() {
  std::unique_lock<std::mutex> lock(mutex_);
  return released_.wait_for(lock, std::chrono::seconds(10), [this] { return waiting_ > 0; });
}

std::vector<std::string> FakeNode::operations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return operations_;
}

std::vector<std::string> FakeNode::TakeOperations() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(operations_, {});
}

int FakeNode::Count(const std::string& prefix) const {
  std::lock_guard<std::mutex> lock(mutex_);
  int count = 0;
  for (const auto& line : operations_) {
    count += line.rfind(prefix, 0) == 0 ? 1 : 0;
  }
  return count;
}

Status FakeNode::Record(const std::string& operation, const std::string& line) const {
  operations_.push_back(line);
  auto it = failures_.find(operation);
  if (it != failures_.end()) {
    return it->second;
  }
  return OkStatus();
}

void FakeNode::UseConfig(std::shared_ptr<const config::Config> config) {
  std::lock_guard<std::mutex> lock(mutex_);
  config_ = std::move(config);
  operations_.push_back("UseConfig");
}

bool FakeNode::DataInitialized() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.data_initialized;
}

std::string FakeNode::SystemIdentifier() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.data_initialized ? state_.sysid : "";
}

uint64_t FakeNode::LatestCheckpointLocation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.data_initialized ? state_.wal_position : 0;
}

bool FakeNode::StandbySignalPresent() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.standby_signal;
}

bool FakeNode::PostmasterAlive() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.running;
}

std::optional<pid_t> FakeNode::PostmasterPid() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.running ? std::optional<pid_t>(4242) : std::nullopt;
}

postgres::Observation FakeNode::Observe() {
  std::lock_guard<std::mutex> lock(mutex_);
  postgres::Observation obs;
  obs.running = state_.running;
  if (!state_.running) {
    return obs;
  }
  obs.in_recovery = state_.in_recovery;
  obs.wal_position = state_.wal_position;
  obs.timeline = state_.timeline;
  obs.server_version = 150010;
  obs.postmaster_start_time = "2026-12-01 00:00:00.000000+00:00";
  if (!state_.in_recovery) {
    obs.wal_senders = state_.wal_senders;
  }
  if (state_.in_recovery) {
    obs.received_location = state_.wal_position;
    obs.replayed_location = state_.wal_position;
    if (state_.streaming && !state_.following.empty()) {
      obs.replication_state = "streaming";
      obs.following_host_port = state_.following_host_port;
      obs.receiver_timeline = state_.timeline;
    } else {
      obs.replication_state = "in archive recovery";
    }
  }
  return obs;
}

Status FakeNode::Initdb() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("Initdb", "Initdb"));
  state_.data_initialized = true;
  state_.sysid = "7000000000000000001";
  state_.timeline = 1;
  return OkStatus();
}

Status FakeNode::WriteConfig(const model::GlobalConfig&, bool standby, const model::Member* leader,
                             bool) {
  std::unique_lock<std::mutex> lock(mutex_);
  WaitIfHeld("WriteConfig", lock);
  std::string line = standby ? "WriteConfig standby" : "WriteConfig primary";
  if (leader != nullptr) {
    line += " " + leader->name;
  }
  PGHA_RETURN_IF_ERROR(Record("WriteConfig", line));
  state_.standby_signal = standby;
  state_.following = leader != nullptr ? leader->name : "";
  state_.following_host_port.clear();
  if (leader != nullptr) {
    // postgres://host:port/dbname: what the walreceiver shows as its sender.
    std::string url = leader->conn_url();
    auto start = url.find("://");
    start = start == std::string::npos ? 0 : start + 3;
    state_.following_host_port = url.substr(start, url.find('/', start) - start);
  }
  return OkStatus();
}

Status FakeNode::WriteBootstrapHba() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("WriteBootstrapHba", "WriteBootstrapHba");
}

Status FakeNode::RunCustomBootstrap(const std::string& method, const nlohmann::json&) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("RunCustomBootstrap", "RunCustomBootstrap " + method));
  state_.data_initialized = true;
  state_.sysid = "7000000000000000001";
  return OkStatus();
}

Status FakeNode::WriteBootstrapRecovery(const nlohmann::json&) {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("WriteBootstrapRecovery", "WriteBootstrapRecovery");
}

void FakeNode::RemoveRecoverySignals() {
  std::lock_guard<std::mutex> lock(mutex_);
  (void)Record("RemoveRecoverySignals", "RemoveRecoverySignals");
}

Status FakeNode::WriteDynamicConfigCache(const nlohmann::json&) { return OkStatus(); }

std::optional<nlohmann::json> FakeNode::ReadDynamicConfigCache() const { return std::nullopt; }

Status FakeNode::Start(std::chrono::seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("Start", state_.standby_signal ? "Start replica" : "Start primary"));
  state_.running = true;
  state_.in_recovery = state_.standby_signal;
  return OkStatus();
}

Status FakeNode::Launch() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(
      Record("Launch", state_.standby_signal ? "Launch replica" : "Launch primary"));
  state_.running = true;
  state_.in_recovery = state_.standby_signal;
  return OkStatus();
}

Status FakeNode::Stop(const std::string& mode, std::chrono::seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  WaitIfHeld("Stop", lock);
  PGHA_RETURN_IF_ERROR(Record("Stop", "Stop " + mode));
  state_.running = false;
  return OkStatus();
}

Status FakeNode::Promote(std::chrono::seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("Promote", "Promote"));
  state_.in_recovery = false;
  state_.standby_signal = false;
  state_.following.clear();
  state_.following_host_port.clear();
  ++state_.timeline;
  return OkStatus();
}

Status FakeNode::RunPrePromote() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("RunPrePromote", "RunPrePromote");
}

Status FakeNode::WritePgpass() const { return OkStatus(); }

Status FakeNode::Reload() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("Reload", "Reload");
}

void FakeNode::SetSynchronousStandbyNames(std::optional<std::string> value) {
  std::lock_guard<std::mutex> lock(mutex_);
  operations_.push_back("SetSynchronousStandbyNames " + value.value_or("<config>"));
}

Status FakeNode::Checkpoint() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("Checkpoint", "Checkpoint");
}

Status FakeNode::CreateRoles() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("CreateRoles", "CreateRoles");
}

Status FakeNode::RunPostBootstrap() {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("RunPostBootstrap", "RunPostBootstrap");
}

Status FakeNode::CreateBootstrapUsers() { return OkStatus(); }

Result<std::string> FakeNode::MoveDataDirectoryAside() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("MoveDataDirectoryAside", "MoveDataDirectoryAside"));
  bool had = state_.data_initialized;
  state_ = FakeNodeState{};
  return had ? std::string("/data_2026-12-01-00-00-00") : std::string();
}

Status FakeNode::CreateReplica(const model::Member* source, std::vector<std::string>) {
  std::unique_lock<std::mutex> lock(mutex_);
  WaitIfHeld("CreateReplica", lock);
  PGHA_RETURN_IF_ERROR(Record(
      "CreateReplica", "CreateReplica " + (source != nullptr ? source->name : "<no leader>")));
  state_.data_initialized = true;
  state_.sysid = "7000000000000000001";
  state_.standby_signal = true;
  return OkStatus();
}

Status FakeNode::Rewind(const model::Member& leader) {
  std::unique_lock<std::mutex> lock(mutex_);
  WaitIfHeld("Rewind", lock);
  return Record("Rewind", "Rewind " + leader.name);
}

Status FakeNode::RemoveDataDirectory() {
  std::lock_guard<std::mutex> lock(mutex_);
  PGHA_RETURN_IF_ERROR(Record("RemoveDataDirectory", "RemoveDataDirectory"));
  state_ = FakeNodeState{};
  return OkStatus();
}

Status FakeNode::AdvanceLogicalSlot(const model::ReplicationSlot& slot, uint64_t) {
  std::lock_guard<std::mutex> lock(mutex_);
  return Record("AdvanceLogicalSlot", "AdvanceLogicalSlot " + slot.name);
}

Result<std::map<std::string, std::string>> FakeNode::ReadLeaderSlotStates(
    const model::Member&, const std::vector<std::string>&) {
  return std::map<std::string, std::string>{};
}

Status FakeNode::InstallSlotStates(const std::map<std::string, std::string>&) { return OkStatus(); }

Result<std::vector<model::ReplicationSlot>> FakeNode::ListSlots() {
  return std::vector<model::ReplicationSlot>{};
}

Status FakeNode::ChangeSlots(const std::vector<std::string>& drop,
                             const std::vector<model::ReplicationSlot>& create) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string line = "ChangeSlots";
  for (const auto& name : drop) {
    line += " -" + name;
  }
  for (const auto& slot : create) {
    line += " +" + slot.name;
  }
  return Record("ChangeSlots", line);
}

std::vector<model::HistoryEntry> FakeNode::TimelineHistory(int64_t) const { return {}; }

}  // namespace pgha::testing
