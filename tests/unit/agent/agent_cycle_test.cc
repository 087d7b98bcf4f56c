// The agent's cycle driven step by step on fakes (DCS, node, peers, clock): what it does to
// PostgreSQL and to the DCS in each situation, with no server and no real time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/agent.h"
#include "config/config.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_dcs.h"
#include "fakes/fake_node.h"
#include "fakes/fake_peers.h"

namespace pgha::agent {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeClock;
using testing::FakeDcs;
using testing::FakeNode;
using testing::FakeNodeState;
using testing::FakePeers;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSysid = "7000000000000000001";

json BaseTree() {
  return json::parse(R"({
    "scope": "pg-ha", "name": "pg-0",
    "restapi": {"listen": "127.0.0.1:8008", "connect_address": "127.0.0.1:8008"},
    "etcd3": {"hosts": "127.0.0.1:2379"},
    "watchdog": {"mode": "off"},
    "postgresql": {
      "listen": "127.0.0.1:5432", "connect_address": "127.0.0.1:5432",
      "data_dir": "/nonexistent/pg-0",
      "authentication": {"superuser": {"username": "postgres", "password": "pw"},
                         "replication": {"username": "replicator", "password": "rep"}}
    }
  })");
}

std::shared_ptr<const config::Config> ConfigOf(const json& tree) {
  auto config = config::ConfigFromTree(tree);
  EXPECT_TRUE(config.ok()) << config.error().message();
  return std::make_shared<const config::Config>(std::move(config).value());
}

class AgentCycleTest : public ::testing::Test {
 protected:
  AgentCycleTest() : dcs_(clock_, "pg-0") {}

  void SetUp() override {
    dcs_.Put("initialize", kSysid);
    SetDynamicConfig(json::object());
  }
  // A test that failed while it held a node operation must not leave its long action waiting.
  void TearDown() override { node_.Release(); }

  // The DCS config key: ttl 30, loop_wait 10, retry_timeout 10 and `extra`.
  void SetDynamicConfig(const json& extra) {
    json config = {{"ttl", 30}, {"loop_wait", 10}, {"retry_timeout", 10}};
    config.update(extra);
    dcs_.Put("config", config.dump());
  }

  void Start(const FakeNodeState& state, const json& tree) {
    node_.set_state(state);
    agent_ = std::make_unique<Agent>(ConfigOf(tree), dcs_, node_, peers_, clock_);
  }
  // With the test's configuration, tree_.
  void Start(const FakeNodeState& state) { Start(state, tree_); }

  // Another member, registered in the DCS under a lease that each Cycle() keeps alive, and
  // answering its REST API with `role` and `wal_position` unless made unreachable.
  void AddMember(const std::string& name, const std::string& role, uint64_t wal_position,
                 int port) {
    int64_t lease = dcs_.GrantLease(30);
    leases_[name] = lease;
    json data = {{"conn_url", "postgres://127.0.0.1:" + std::to_string(port) + "/postgres"},
                 {"api_url", "http://127.0.0.1:" + std::to_string(port + 1000) + "/patroni"},
                 {"state", "running"},
                 {"role", role},
                 {"version", "3.0.2"},
                 {"xlog_location", wal_position},
                 {"timeline", 1}};
    dcs_.Put("members/" + name, data.dump(), lease);
    ha::PeerStatus status;
    status.name = name;
    status.reachable = true;
    status.running = true;
    status.is_primary = role == "master" || role == "primary";
    status.wal_position = wal_position;
    status.timeline = 1;
    peers_.SetStatus(status);
  }

  void MakeLeader(const std::string& name) { dcs_.Put("leader", name, leases_.at(name)); }

  // The loop_wait that passes between two cycles, then a cycle.
  void Cycle() {
    clock_.Advance(seconds(10));
    for (const auto& [name, lease] : leases_) {
      dcs_.KeepAlive(lease, 30);
    }
    agent_->Step();
  }

  // Cycles until the long action started by the last one has finished, then one more.
  void CycleThroughLongAction() {
    Cycle();
    agent_->AwaitLongAction();
    Cycle();
  }

  // Runs cycles, as the loop does, until the running long action has finished: a leader renews
  // its lock meanwhile, and the long action's polls see time pass a loop_wait at a time.
  void CycleUntilLongActionEnds() {
    auto ended = std::async(std::launch::async, [this] { agent_->AwaitLongAction(); });
    while (ended.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
      Cycle();
    }
  }

  // pg-0 as the leader of a running cluster with two streaming replicas.
  void StartAsLeader() {
    AddMember("pg-1", "replica", 0x3000000, 5433);
    AddMember("pg-2", "replica", 0x3000000, 5434);
    Start(FakeNode::RunningPrimary());
    Cycle();
    Cycle();  // the first cycle that sees PostgreSQL running writes its configuration
    ASSERT_EQ(dcs_.LeaderName(), "pg-0") << agent_->LastReason();
    node_.TakeOperations();
  }

  // pg-0 as a streaming replica of the leader pg-1.
  void StartAsReplica() {
    AddMember("pg-1", "master", 0x3000000, 5433);
    MakeLeader("pg-1");
    Start(FakeNode::RunningReplica("pg-1", "127.0.0.1:5433"));
    Cycle();
    Cycle();  // the first cycle that sees PostgreSQL running writes its configuration
    node_.TakeOperations();
  }

  // pg-0 replicates from the leader pg-1 (beside pg-2 at `other_replica_position`); then pg-1
  // dies: its leader key expires and its REST API stops answering. The next Cycle() decides.
  void StartAsReplicaThenLoseTheLeader(uint64_t other_replica_position) {
    AddMember("pg-1", "master", 0x3000000, 5433);
    AddMember("pg-2", "replica", other_replica_position, 5434);
    MakeLeader("pg-1");
    Start(FakeNode::RunningReplica("pg-1", "127.0.0.1:5433"));
    Cycle();
    dcs_.Delete("leader");
    peers_.SetUnreachable("pg-1");
    node_.TakeOperations();
  }

  json MemberKey(const std::string& name) {
    auto value = dcs_.Value("members/" + name);
    return value ? json::parse(*value) : json();
  }

  json tree_ = BaseTree();
  FakeClock clock_;
  FakeDcs dcs_;
  FakeNode node_;
  FakePeers peers_;
  std::map<std::string, int64_t> leases_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(AgentCycleTest, ARunningPrimaryWithNoLeaderTakesTheLockAndKeepsIt) {
  AddMember("pg-1", "replica", 0x2000000, 5433);
  Start(FakeNode::RunningPrimary());
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  for (int i = 0; i < 3; ++i) {
    Cycle();
  }
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_GE(dcs_.Calls("UpdateLeader"), 3);
  EXPECT_EQ(node_.Count("Stop"), 0);
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "master");
  EXPECT_TRUE(dcs_.Value("status").has_value()) << "the leader writes its position each cycle";
  EXPECT_EQ(agent_->LastReason(), "no action. I am (pg-0), the leader with the lock");
}

TEST_F(AgentCycleTest, ALeaderThatFindsAnotherHoldingTheLockStopsAtOnce) {
  StartAsLeader();
  dcs_.Delete("leader");
  MakeLeader("pg-1");
  Cycle();
  EXPECT_THAT(node_.operations(), Contains(HasSubstr("Stop")));
  EXPECT_FALSE(node_.state().running && !node_.state().in_recovery)
      << "still a primary after losing the lock";
  EXPECT_EQ(dcs_.LeaderName(), "pg-1");
}

TEST_F(AgentCycleTest, ALeaderCutOffFromTheDcsForRetryTimeoutStopsTakingWrites) {
  StartAsLeader();
  dcs_.SetUnreachable(true);
  Cycle();
  // Patroni's "offline" demotion: a fast stop, then read-only with no one to follow.
  EXPECT_THAT(node_.operations(),
              ElementsAre("Stop fast", "WriteConfig standby", "Launch replica"));
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(agent_->LastReason(), "demoting self because DCS is not accessible and I was a leader");
}

TEST_F(AgentCycleTest, ARenewalThatFailsForRetryTimeoutDemotesTheLeader) {
  StartAsLeader();
  node_.TakeOperations();
  // The cache still answers reads; only the renewal cannot reach etcd (10 s since the last).
  dcs_.FailNextCalls("UpdateLeader", 1);
  Cycle();
  // Patroni's demotion when the lock could not be updated: an immediate stop, then read-only.
  EXPECT_THAT(node_.operations(),
              ElementsAre("Stop immediate", "WriteConfig standby", "Launch replica"));
  EXPECT_TRUE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, ARenewalThatFailsWithFailsafeConfirmedKeepsThePrimary) {
  SetDynamicConfig({{"failsafe_mode", true}});
  StartAsLeader();
  Cycle();  // the failsafe key lists the members
  peers_.SetFailsafeAnswer("http://127.0.0.1:6433/patroni", true);
  peers_.SetFailsafeAnswer("http://127.0.0.1:6434/patroni", true);
  node_.TakeOperations();
  dcs_.FailNextCalls("UpdateLeader", 1);
  Cycle();
  EXPECT_EQ(node_.Count("Stop"), 0) << ::testing::PrintToString(node_.operations());
  EXPECT_FALSE(node_.state().in_recovery);
  EXPECT_EQ(peers_.failsafe_posts().size(), 2u) << "both members were asked";
}

TEST_F(AgentCycleTest, ALostLeaderRaceLeavesTheReplicaAsItIs) {
  StartAsReplicaThenLoseTheLeader(0x2000000);
  dcs_.FailNextCalls("AttemptToAcquireLeader", 1);
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(dcs_.LeaderName(), "");
  Cycle();  // the next race succeeds
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains("Promote"));
}

TEST_F(AgentCycleTest, AFailedPromotionIsTriedAgainWhileTheLockIsHeld) {
  StartAsReplicaThenLoseTheLeader(0x2000000);
  node_.Fail("Promote", Error::Unavailable("pg_ctl promote: server did not promote in time"));
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(agent_->CurrentStatus().metrics.failovers, 0u);
  node_.ClearFailures();
  Cycle();
  EXPECT_FALSE(node_.state().in_recovery) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(agent_->CurrentStatus().metrics.failovers, 1u);
}

TEST_F(AgentCycleTest, AConfigurationThatCannotBeWrittenDoesNotStartPostgres) {
  StartAsLeader();
  node_.Crash();
  node_.TakeOperations();
  node_.Fail("WriteConfig", Error::Unavailable("postgresql.conf: No space left on device"));
  Cycle();
  EXPECT_EQ(node_.Count("Start"), 0) << ::testing::PrintToString(node_.operations());
  EXPECT_FALSE(node_.state().running);
  node_.ClearFailures();
  Cycle();
  EXPECT_TRUE(node_.state().running);
  EXPECT_FALSE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, AStandbyConfigurationThatCannotBeWrittenDoesNotStartTheReplica) {
  StartAsReplica();
  node_.Crash();
  node_.TakeOperations();
  node_.Fail("WriteConfig", Error::Unavailable("postgresql.conf: No space left on device"));
  Cycle();
  EXPECT_EQ(node_.Count("Start"), 0) << ::testing::PrintToString(node_.operations());
  node_.ClearFailures();
  Cycle();
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, AStartThatFailsIsTriedAgainAtTheNextCycle) {
  StartAsLeader();
  node_.Crash();
  node_.TakeOperations();
  node_.Fail("Start", Error::Unavailable("pg_ctl: could not start server"));
  Cycle();
  EXPECT_FALSE(node_.state().running);
  node_.ClearFailures();
  Cycle();
  EXPECT_TRUE(node_.state().running) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
}

TEST_F(AgentCycleTest, AnEmptyNodeThatLosesTheInitializeRaceDoesNotBootstrap) {
  dcs_.Delete("initialize");
  Start(FakeNodeState{});
  dcs_.FailNextCompares(1);  // another node created the initialize key first
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_EQ(node_.Count("Initdb"), 0) << ::testing::PrintToString(node_.operations());
  EXPECT_FALSE(node_.state().data_initialized);
}

TEST_F(AgentCycleTest, AFailedCloneRemovesWhatItCopied) {
  AddMember("pg-1", "master", 0x3000000, 5433);
  MakeLeader("pg-1");
  Start(FakeNodeState{});  // an empty data directory
  node_.Fail("CreateReplica", Error::Unavailable("pg_basebackup: connection refused"));
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_THAT(node_.operations(), ElementsAre("CreateReplica pg-1", "RemoveDataDirectory"));
  EXPECT_FALSE(node_.state().data_initialized);
  node_.ClearFailures();
  CycleThroughLongAction();
  EXPECT_TRUE(node_.state().running) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, AFailoverKeyThatCannotBeClearedIsClearedAtTheNextCycle) {
  StartAsLeader();
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-9"})");
  dcs_.FailNextCalls("SetFailoverValue", 1);
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_EQ(dcs_.Value("failover"), R"({"leader": "pg-0", "member": "pg-9"})");
  Cycle();
  EXPECT_NE(dcs_.Value("failover").value_or("{}"), R"({"leader": "pg-0", "member": "pg-9"})");
  EXPECT_EQ(node_.Count("Stop"), 0);
}

TEST_F(AgentCycleTest, FailsafeKeepsTheLeaderWhenEveryMemberAccepts) {
  SetDynamicConfig({{"failsafe_mode", true}});
  StartAsLeader();
  Cycle();  // the failsafe key lists the members
  ASSERT_TRUE(dcs_.Value("failsafe").has_value());
  peers_.SetFailsafeAnswer("http://127.0.0.1:6433/patroni", true);
  peers_.SetFailsafeAnswer("http://127.0.0.1:6434/patroni", true);
  node_.TakeOperations();
  dcs_.SetUnreachable(true);
  Cycle();
  Cycle();
  EXPECT_EQ(node_.Count("Stop"), 0) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(peers_.failsafe_posts().size(), 4u);
  EXPECT_FALSE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, FailsafeDemotesTheLeaderWhenAMemberRefuses) {
  SetDynamicConfig({{"failsafe_mode", true}});
  StartAsLeader();
  Cycle();
  peers_.SetFailsafeAnswer("http://127.0.0.1:6433/patroni", true);
  peers_.SetFailsafeAnswer("http://127.0.0.1:6434/patroni", false);
  node_.TakeOperations();
  dcs_.SetUnreachable(true);
  Cycle();
  EXPECT_THAT(node_.operations(),
              ElementsAre("Stop fast", "WriteConfig standby", "Launch replica"));
  EXPECT_EQ(peers_.failsafe_posts().size(), 2u);
}

TEST_F(AgentCycleTest, ASwitchoverHandsTheLockToTheCandidateOnceItHasTheShutdownCheckpoint) {
  StartAsLeader();
  // pg-1 reports the shutdown checkpoint (the fake's position does not move on a stop), and
  // takes the lock the moment it is released.
  dcs_.ReplaceWhenDeleted("leader", "pg-1", leases_.at("pg-1"));
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-1"})");
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_EQ(dcs_.LeaderName(), "pg-1");
  EXPECT_THAT(node_.operations(),
              ElementsAre("Checkpoint", "Stop fast", "WriteConfig standby pg-1", "Start replica"));
  EXPECT_EQ(node_.state().following, "pg-1");
  EXPECT_EQ(agent_->CurrentStatus().metrics.handovers, 1u);
}

TEST_F(AgentCycleTest, ASwitchoverAbortsAndTheLeaderStartsAgainWhenNoCandidateHasTheCheckpoint) {
  StartAsLeader();
  ha::PeerStatus behind;
  behind.name = "pg-1";
  behind.reachable = true;
  behind.running = true;
  // Healthy (within maximum_lag_on_failover), but short of the shutdown checkpoint at 0x3000000.
  behind.wal_position = 0x3000000 - 0x1000;
  behind.timeline = 1;
  peers_.SetStatus(behind);
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-1"})");
  Cycle();
  CycleUntilLongActionEnds();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  // Whether a cycle ran after the restart (and created the replicas' slots again) depends on
  // when the test thread saw the handover end.
  auto operations = node_.operations();
  std::erase_if(operations, [](const std::string& op) { return op.rfind("ChangeSlots", 0) == 0; });
  EXPECT_THAT(operations,
              ElementsAre("Checkpoint", "Stop fast", "WriteConfig primary", "Start primary"));
  EXPECT_EQ(dcs_.Value("failover"), "{}") << "the failed request is dropped";
}

TEST_F(AgentCycleTest, ASwitchoverToAMemberThatIsGoneIsDroppedWithoutStopping) {
  StartAsLeader();
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-9"})");
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_EQ(node_.Count("Stop"), 0) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_NE(dcs_.Value("failover").value_or("{}"), R"({"leader": "pg-0", "member": "pg-9"})");
}

TEST_F(AgentCycleTest, AReloadAppliesTheNodesSettingsAndKeepsWhatNeedsARestart) {
  StartAsLeader();
  json changed = BaseTree();
  changed["name"] = "pg-renamed";
  changed["tags"] = {{"nofailover", true}};
  changed["postgresql"]["parameters"] = {{"work_mem", "8MB"}};
  agent_->SetConfigSource([changed] { return config::ConfigFromTree(changed); });
  ASSERT_TRUE(agent_->Reload().ok());
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("UseConfig"));
  EXPECT_THAT(node_.operations(), Contains("WriteConfig primary"));
  EXPECT_THAT(node_.operations(), Contains("Reload"));
  EXPECT_EQ(MemberKey("pg-0")["tags"].value("nofailover", false), true);
  EXPECT_FALSE(dcs_.Value("members/pg-renamed")) << "a new name needs a restart of pgha";
}

TEST_F(AgentCycleTest, AnInvalidReloadKeepsTheRunningConfiguration) {
  StartAsLeader();
  agent_->SetConfigSource(
      [] { return Result<config::Config>(Error::Invalid("ttl: not a number")); });
  ASSERT_TRUE(agent_->Reload().ok());
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains("UseConfig")));
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
}

TEST_F(AgentCycleTest, ARestartRequestRestartsTheLeaderInPlaceAndKeepsTheLock) {
  StartAsLeader();
  auto restarted =
      std::async(std::launch::async, [&] { return agent_->RestartPostgres(seconds(30)); });
  while (restarted.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
    Cycle();
    agent_->AwaitLongAction();
  }
  EXPECT_TRUE(restarted.get().ok());
  EXPECT_EQ(node_.Count("Stop fast"), 1) << ::testing::PrintToString(node_.operations());
  EXPECT_EQ(node_.Count("Start primary"), 1);
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
}

TEST_F(AgentCycleTest, ARestartThatCannotStartPostgresTellsTheCaller) {
  StartAsLeader();
  node_.Fail("Start", Error::Unavailable("pg_ctl: could not start server"));
  auto restarted =
      std::async(std::launch::async, [&] { return agent_->RestartPostgres(seconds(30)); });
  while (restarted.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
    Cycle();
    agent_->AwaitLongAction();
  }
  auto status = restarted.get();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message(), HasSubstr("could not start server"));
}

TEST_F(AgentCycleTest, AReinitializeOfTheLeaderIsRefused) {
  StartAsLeader();
  auto answer = std::async(std::launch::async, [&] { return agent_->Reinitialize(false); });
  while (answer.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
    Cycle();
  }
  auto status = answer.get();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.error().message(), HasSubstr("leader"));
  EXPECT_EQ(node_.Count("RemoveDataDirectory"), 0);
}

TEST_F(AgentCycleTest, AReinitializeOfAReplicaClonesItAgainFromTheLeader) {
  StartAsReplica();
  auto answer = std::async(std::launch::async, [&] { return agent_->Reinitialize(false); });
  while (answer.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
    Cycle();
  }
  EXPECT_TRUE(answer.get().ok());
  CycleThroughLongAction();  // the reinitialize, then the clone
  agent_->AwaitLongAction();
  // As Patroni: the data is thrown away, so an immediate stop.
  EXPECT_THAT(node_.operations(),
              ElementsAre("Stop immediate", "RemoveDataDirectory", "CreateReplica pg-1",
                          "WriteConfig standby pg-1", "Start replica"));
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, APostmasterCrashOfTheLeaderStartsItAgainAsPrimaryInPlace) {
  StartAsLeader();
  node_.Crash();
  Cycle();
  EXPECT_THAT(node_.operations(), ElementsAre("WriteConfig primary", "Start primary"));
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_EQ(node_.state().timeline, 1) << "crash recovery keeps the timeline";
}

TEST_F(AgentCycleTest, APostmasterCrashOfAReplicaStartsItAgainFollowingTheLeader) {
  StartAsReplica();
  node_.Crash();
  Cycle();
  EXPECT_THAT(node_.operations(), ElementsAre("WriteConfig standby pg-1", "Start replica"));
}

TEST_F(AgentCycleTest, ACloneThatFinishesAfterTheLeaderChangedFollowsTheNewLeader) {
  AddMember("pg-1", "master", 0x3000000, 5433);
  AddMember("pg-2", "replica", 0x3000000, 5434);
  MakeLeader("pg-1");
  Start(FakeNodeState{});  // an empty data directory
  node_.Hold("CreateReplica");
  Cycle();  // starts the clone from pg-1
  dcs_.Delete("leader");
  MakeLeader("pg-2");
  Cycle();  // the clone still runs
  node_.Release();
  agent_->AwaitLongAction();
  Cycle();
  Cycle();
  EXPECT_EQ(node_.state().following, "pg-2") << ::testing::PrintToString(node_.operations());
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, RequestsDuringALongActionAreRefusedWithItsName) {
  AddMember("pg-1", "master", 0x3000000, 5433);
  MakeLeader("pg-1");
  Start(FakeNodeState{});  // an empty data directory
  node_.Hold("CreateReplica");
  Cycle();  // starts the clone
  Cycle();  // publishes what runs
  EXPECT_EQ(agent_->CurrentStatus().state, "creating replica");
  auto restart = agent_->RestartPostgres(seconds(30));
  ASSERT_FALSE(restart.ok());
  EXPECT_EQ(restart.error().message(), "basebackup in progress");
  auto reinit = agent_->Reinitialize(false);
  ASSERT_FALSE(reinit.ok());
  EXPECT_EQ(reinit.error().message(), "basebackup in progress");
  node_.Release();
  agent_->AwaitLongAction();
  Cycle();  // starts the replica
  Cycle();  // publishes it
  EXPECT_EQ(agent_->CurrentStatus().state, "running")
      << ::testing::PrintToString(node_.operations());
}

TEST_F(AgentCycleTest, AReplicaPromotesWhenTheLeaderIsGoneAndItIsTheHealthiest) {
  StartAsReplicaThenLoseTheLeader(0x2000000);
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains("Promote"));
  EXPECT_FALSE(node_.state().in_recovery);
  EXPECT_EQ(agent_->CurrentStatus().metrics.failovers, 1u);
}

TEST_F(AgentCycleTest, AReplicaBehindAnotherDoesNotTakeTheLock) {
  StartAsReplicaThenLoseTheLeader(0x4000000);
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "");
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
}

TEST_F(AgentCycleTest, AnEmptyNodeOfANewClusterBootstrapsIt) {
  dcs_.Delete("initialize");
  dcs_.Delete("config");
  Start(FakeNodeState{});
  Cycle();
  agent_->AwaitLongAction();
  Cycle();
  EXPECT_EQ(dcs_.Value("initialize"), kSysid);
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains("Initdb"));
  EXPECT_THAT(node_.operations(), Contains("CreateRoles"));
  EXPECT_TRUE(node_.state().running);
  EXPECT_FALSE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, AFailedBootstrapGivesTheInitializeKeyBack) {
  dcs_.Delete("initialize");
  Start(FakeNodeState{});
  node_.Fail("Initdb", Error::Unavailable("initdb: could not create directory"));
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_FALSE(dcs_.Value("initialize").has_value());
  EXPECT_THAT(agent_->FatalError(), HasSubstr("could not create directory"));
}

TEST_F(AgentCycleTest, AStoppedReplicaStartsFollowingTheLeader) {
  AddMember("pg-1", "master", 0x3000000, 5433);
  MakeLeader("pg-1");
  FakeNodeState stopped = FakeNode::RunningReplica("pg-1", "127.0.0.1:5433");
  stopped.running = false;
  Start(stopped);
  Cycle();
  EXPECT_THAT(node_.operations(), ElementsAre("WriteConfig standby pg-1", "Start replica"));
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "replica");
}

TEST_F(AgentCycleTest, AReplicaFollowingTheOldLeaderIsPointedAtTheNewOne) {
  StartAsReplica();
  AddMember("pg-2", "master", 0x3000000, 5434);
  dcs_.Delete("leader");
  MakeLeader("pg-2");
  Cycle();
  EXPECT_THAT(node_.operations(), ElementsAre("WriteConfig standby pg-2", "Reload"));
  EXPECT_EQ(node_.state().following, "pg-2");
}

TEST_F(AgentCycleTest, AnOldPrimaryIsRewoundBeforeItFollows) {
  SetDynamicConfig({{"postgresql", {{"use_pg_rewind", true}}}});
  StartAsLeader();
  dcs_.Delete("leader");
  MakeLeader("pg-1");
  Cycle();  // demoted
  CycleThroughLongAction();
  EXPECT_THAT(node_.operations(), Contains("Rewind pg-1"));
  EXPECT_EQ(node_.state().following, "pg-1");
  EXPECT_TRUE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, AFailedRewindIsNotRetriedBeforeItsBackOff) {
  SetDynamicConfig({{"postgresql", {{"use_pg_rewind", true}}}});
  StartAsLeader();
  dcs_.Delete("leader");
  MakeLeader("pg-1");
  node_.Fail("Rewind", Error::Unavailable("pg_rewind: could not find common ancestor"));
  Cycle();
  CycleThroughLongAction();
  agent_->AwaitLongAction();
  int tried = node_.Count("Rewind");
  ASSERT_GE(tried, 1);
  agent_->Step();  // at once: the back-off (10 s at loop_wait 10) has not passed
  agent_->AwaitLongAction();
  EXPECT_EQ(node_.Count("Rewind"), tried);
}

TEST_F(AgentCycleTest, AFailingPrePromoteGivesTheLockBackWithoutPromoting) {
  StartAsReplicaThenLoseTheLeader(0x2000000);
  node_.Fail("RunPrePromote", Error::Unavailable("pre_promote exited with 1"));
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("RunPrePromote"));
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
  EXPECT_EQ(dcs_.LeaderName(), "");
  EXPECT_TRUE(node_.state().in_recovery);
}

// watchdog.mode: required with a device that cannot be opened: no leadership at all.
json RequiredWatchdogTree(const std::string& driver, const std::string& device) {
  json tree = BaseTree();
  tree["watchdog"] = {{"mode", "required"}, {"driver", driver}, {"device", device}};
  return tree;
}

TEST_F(AgentCycleTest, ARequiredWatchdogThatCannotBeActivatedKeepsAReplicaFromPromoting) {
  tree_ = RequiredWatchdogTree("default", "/nonexistent/watchdog");
  StartAsReplicaThenLoseTheLeader(0x2000000);
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
  EXPECT_THAT(node_.operations(), Not(Contains("RunPrePromote")));
  EXPECT_EQ(dcs_.LeaderName(), "") << "the lock taken for the promotion is given back";
  EXPECT_TRUE(node_.state().in_recovery);
}

TEST_F(AgentCycleTest, ARequiredWatchdogThatCannotBeActivatedKeepsANewClusterFromBootstrapping) {
  dcs_.Delete("initialize");
  Start(FakeNodeState{}, RequiredWatchdogTree("default", "/nonexistent/watchdog"));
  Cycle();
  agent_->AwaitLongAction();
  Cycle();
  EXPECT_FALSE(dcs_.Value("initialize").has_value());
  EXPECT_THAT(node_.operations(), Not(Contains("Initdb")));
  EXPECT_EQ(dcs_.LeaderName(), "");
}

// Patroni's test driver on a plain file: what the agent wrote to the device, in order.
class WatchdogFile {
 public:
  WatchdogFile()
      : path_(::testing::TempDir() + "pgha-agent-watchdog-" + std::to_string(::getpid())) {
    std::ofstream(path_, std::ios::trunc).flush();
  }
  ~WatchdogFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  std::string Written() const {
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string path_;
};

TEST_F(AgentCycleTest, ARequiredWatchdogIsArmedOnPromotionPingedPerRenewalAndClosedOnDemotion) {
  WatchdogFile device;
  tree_ = RequiredWatchdogTree("testing", device.path());
  StartAsReplicaThenLoseTheLeader(0x2000000);
  Cycle();
  ASSERT_EQ(dcs_.LeaderName(), "pg-0");
  ASSERT_THAT(node_.operations(), Contains("Promote"));
  // Activated before the promotion (the timeout is ttl 30 - safety_margin 5, then a ping), and
  // pinged after the cycle for the lock it took.
  EXPECT_EQ(device.Written(), "Ctimeout=25\n11");
  Cycle();
  Cycle();
  EXPECT_EQ(device.Written(), "Ctimeout=25\n1111") << "one ping per renewal";
  // Another member holds the lock now: the demoted node closes the device (magic close).
  dcs_.Delete("leader");
  MakeLeader("pg-2");
  Cycle();
  EXPECT_TRUE(node_.state().in_recovery || !node_.state().running);
  EXPECT_EQ(device.Written(), "Ctimeout=25\n1111V");
}

// pg-0 leads with pg-1 and pg-2 streaming, both shown in pg_stat_replication as `sync_state`.
FakeNodeState PrimaryWithSenders(const std::string& sync_state_1, const std::string& sync_state_2) {
  FakeNodeState state = FakeNode::RunningPrimary();
  state.wal_senders = {{"pg-1", sync_state_1, state.wal_position},
                       {"pg-2", sync_state_2, state.wal_position}};
  return state;
}

TEST_F(AgentCycleTest, SynchronousModeNamesAStandbyFirstAndPublishesItOnceItIsSynchronous) {
  SetDynamicConfig({{"synchronous_mode", true}});
  AddMember("pg-1", "replica", 0x3000000, 5433);
  AddMember("pg-2", "replica", 0x3000000, 5434);
  Start(PrimaryWithSenders("async", "async"));
  Cycle();
  Cycle();
  ASSERT_EQ(dcs_.LeaderName(), "pg-0");
  // Quoted: a name with a hyphen is not an identifier.
  EXPECT_THAT(node_.operations(), Contains("SetSynchronousStandbyNames \"pg-1\""));
  EXPECT_THAT(node_.operations(), Contains("Reload"));
  // Not yet synchronous in PostgreSQL: the key names nobody, so no replica may take over.
  auto sync = json::parse(dcs_.Value("sync").value_or("{}"));
  EXPECT_EQ(sync.value("leader", ""), "pg-0");
  EXPECT_TRUE(sync["sync_standby"].is_null()) << sync.dump();

  node_.set_state(PrimaryWithSenders("sync", "async"));
  node_.TakeOperations();
  Cycle();
  sync = json::parse(dcs_.Value("sync").value_or("{}"));
  EXPECT_EQ(sync.value("sync_standby", ""), "pg-1") << sync.dump();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("SetSynchronousStandbyNames"))));

  // The synchronous standby is gone: another takes its place, named in PostgreSQL first.
  peers_.SetUnreachable("pg-1");
  dcs_.Delete("members/pg-1");
  leases_.erase("pg-1");
  node_.set_state(PrimaryWithSenders("", "async"));
  node_.TakeOperations();
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("SetSynchronousStandbyNames \"pg-2\""));
  node_.set_state(PrimaryWithSenders("", "sync"));
  Cycle();
  sync = json::parse(dcs_.Value("sync").value_or("{}"));
  EXPECT_EQ(sync.value("sync_standby", ""), "pg-2") << sync.dump();
}

TEST_F(AgentCycleTest, QuorumModeMakesEveryStreamingReplicaAVoter) {
  SetDynamicConfig({{"synchronous_mode", "quorum"}});
  AddMember("pg-1", "replica", 0x3000000, 5433);
  AddMember("pg-2", "replica", 0x3000000, 5434);
  Start(PrimaryWithSenders("potential", "potential"));
  for (int i = 0; i < 3; ++i) {
    Cycle();
  }
  ASSERT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains(HasSubstr("SetSynchronousStandbyNames ANY 1")));
  node_.set_state(PrimaryWithSenders("quorum", "quorum"));
  for (int i = 0; i < 3; ++i) {
    Cycle();
  }
  auto sync = json::parse(dcs_.Value("sync").value_or("{}"));
  EXPECT_EQ(sync.value("leader", ""), "pg-0") << sync.dump();
  EXPECT_EQ(sync.value("quorum", -1), 1) << sync.dump();
  EXPECT_EQ(sync.value("sync_standby", ""), "pg-1,pg-2") << sync.dump();
}

TEST_F(AgentCycleTest, AStandbyClusterLeaderFollowsTheRemotePrimary) {
  SetDynamicConfig({{"standby_cluster", {{"host", "10.0.0.9"}, {"port", 5432}}}});
  FakeNodeState stopped = FakeNode::RunningReplica("", "");
  stopped.running = false;
  Start(stopped);
  Cycle();
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains(HasSubstr("WriteConfig standby")));
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "standby_leader");
}

TEST_F(AgentCycleTest, AGracefulStopOfTheLeaderStopsPostgresAndReleasesTheLock) {
  StartAsLeader();
  agent_->Shutdown();
  EXPECT_THAT(node_.operations(), ElementsAre("Stop fast"));
  EXPECT_EQ(dcs_.LeaderName(), "");
}

TEST_F(AgentCycleTest, AGracefulStopInMaintenanceModeLeavesPostgresAndTheLock) {
  StartAsLeader();
  SetDynamicConfig({{"pause", true}});
  Cycle();
  node_.TakeOperations();
  agent_->Shutdown();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Stop"))));
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_TRUE(node_.state().running);
  EXPECT_EQ(dcs_.Calls("AnnounceHandover"), 0) << "nothing stops: the routers are not told";
}

// The routers' notice (model/handover_notice.h), as seen from the leader.
TEST_F(AgentCycleTest, AGracefulStopOfTheLeaderWaitsForTheRoutersBeforeStopping) {
  StartAsLeader();
  dcs_.AcknowledgeHandoversAs("router-a", dcs_.GrantLease(30));
  dcs_.AcknowledgeHandoversAs("router-b", dcs_.GrantLease(30));
  clock_.AdvanceOnSleep();  // Shutdown runs on this thread: a wait would move time itself
  auto before = clock_.Now();
  agent_->Shutdown();
  EXPECT_EQ(dcs_.Calls("AnnounceHandover"), 1);
  auto acknowledged = [this](const std::string& router) {
    return json::parse(dcs_.Value(std::string(model::kRoutersPrefix) + router).value_or("{}"))
        .value("acknowledged", int64_t{0});
  };
  EXPECT_GT(acknowledged("router-a"), 0);
  EXPECT_EQ(acknowledged("router-a"), acknowledged("router-b"));
  EXPECT_LT(clock_.Now() - before, std::chrono::milliseconds(100))
      << "both acknowledged at once: no wait";
  EXPECT_THAT(node_.operations(), ElementsAre("Stop fast"));
  EXPECT_EQ(dcs_.LeaderName(), "");
  EXPECT_FALSE(dcs_.Value(model::kHandoverKey)) << "withdrawn once PostgreSQL stopped";
}

TEST_F(AgentCycleTest, AGracefulStopGoesOnWithoutARouterThatNeverAcknowledges) {
  StartAsLeader();
  dcs_.Put(std::string(model::kRoutersPrefix) + "silent",
           model::EncodeRouterPresence({"silent", 0}), dcs_.GrantLease(30));
  clock_.AdvanceOnSleep();
  auto before = clock_.Now();
  agent_->Shutdown();
  auto waited = clock_.Now() - before;
  EXPECT_GE(waited, kRouterAcknowledgeWait);
  EXPECT_LT(waited, kRouterAcknowledgeWait + std::chrono::milliseconds(100));
  EXPECT_THAT(node_.operations(), ElementsAre("Stop fast"));
  EXPECT_EQ(dcs_.LeaderName(), "");
  EXPECT_FALSE(dcs_.Value(model::kHandoverKey));
}

TEST_F(AgentCycleTest, AGracefulStopWaitsForRoutersOnlyWhileItsLockIsSafe) {
  StartAsLeader();
  dcs_.Put(std::string(model::kRoutersPrefix) + "silent",
           model::EncodeRouterPresence({"silent", 0}), dcs_.GrantLease(60));
  // The last renewal was 21 s ago: the fence fires at 25 s (ttl 30 less its margin of 5), so
  // half of the 4 s left may go to the routers.
  clock_.Advance(seconds(21));
  clock_.AdvanceOnSleep();
  auto before = clock_.Now();
  agent_->Shutdown();
  auto waited = clock_.Now() - before;
  EXPECT_GE(waited, std::chrono::milliseconds(2000));
  EXPECT_LT(waited, std::chrono::milliseconds(2100));
  EXPECT_THAT(node_.operations(), ElementsAre("Stop fast"));
}

TEST_F(AgentCycleTest, AGracefulStopOfAReplicaTellsNoRouter) {
  AddMember("pg-1", "master", 0x3000000, 5433);
  MakeLeader("pg-1");
  Start(FakeNode::RunningReplica("pg-1", "pg-1"));
  Cycle();
  agent_->Shutdown();
  EXPECT_EQ(dcs_.Calls("AnnounceHandover"), 0);
  EXPECT_THAT(node_.operations(), Contains("Stop fast"));
}

TEST_F(AgentCycleTest, ASwitchoverTellsTheRoutersBeforeItReleasesTheLock) {
  StartAsLeader();
  dcs_.AcknowledgeHandoversAs("router-a", dcs_.GrantLease(30));
  dcs_.ReplaceWhenDeleted("leader", "pg-1", leases_.at("pg-1"));
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-1"})");
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_EQ(dcs_.LeaderName(), "pg-1");
  auto router =
      json::parse(dcs_.Value(std::string(model::kRoutersPrefix) + "router-a").value_or("{}"));
  int64_t notice = router.value("acknowledged", int64_t{0});
  EXPECT_GT(notice, 0);
  EXPECT_LT(notice, dcs_.ModRevision("leader")) << "the notice came before the lock moved";
  EXPECT_FALSE(dcs_.Value(model::kHandoverKey)) << "withdrawn after the handover";
  EXPECT_THAT(node_.operations(),
              ElementsAre("Checkpoint", "Stop fast", "WriteConfig standby pg-1", "Start replica"));
}

TEST_F(AgentCycleTest, InMaintenanceModeACrashedPrimaryIsLeftAsItIs) {
  StartAsLeader();
  SetDynamicConfig({{"pause", true}});
  Cycle();
  node_.TakeOperations();
  node_.Crash();
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Start"))));
  EXPECT_EQ(dcs_.LeaderName(), "pg-0") << "Patroni keeps the lock while paused";
}

// The execute step's remaining branches: each situation that reaches it, and what it leaves.
TEST_F(AgentCycleTest, AnEmptyNodeIsRestoredWithoutALeaderWhenAMethodNeedsNone) {
  tree_["postgresql"]["create_replica_methods"] = {"restore", "basebackup"};
  tree_["postgresql"]["restore"] = {{"command", "/bin/true"}, {"no_leader", true}};
  Start(FakeNodeState{});
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_THAT(node_.operations(),
              ElementsAre("CreateReplica <no leader>", "WriteConfig standby", "Start replica"));
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery) << "a restored node replays; it does not lead";
  EXPECT_EQ(dcs_.LeaderName(), "");
}

TEST_F(AgentCycleTest, APrimaryBroughtToANewScopeRecordsItsSystemIdentifierWithTheLock) {
  dcs_.Delete("initialize");
  Start(FakeNode::RunningPrimary());
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0") << agent_->LastReason();
  EXPECT_EQ(dcs_.Value("initialize"), FakeNode::RunningPrimary().sysid);
}

TEST_F(AgentCycleTest, ACrashedLeaderWithPrimaryStartTimeoutZeroReleasesTheLockInsteadOfStarting) {
  SetDynamicConfig({{"primary_start_timeout", 0}});
  StartAsLeader();
  node_.Crash();
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "") << agent_->LastReason();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Start"))));
}

TEST_F(AgentCycleTest, ASynchronousPromotionWaitsWhileTheSyncKeyCannotBeClaimed) {
  SetDynamicConfig({{"synchronous_mode", true}});
  dcs_.Put("sync", R"({"leader": "pg-1", "sync_standby": "pg-0"})");
  StartAsReplicaThenLoseTheLeader(0x2000000);
  dcs_.FailNextCalls("SetSyncStateValue", 1);
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains("Promote"))) << agent_->LastReason();
  EXPECT_TRUE(node_.state().in_recovery);
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("Promote")) << agent_->LastReason();
  EXPECT_EQ(json::parse(dcs_.Value("sync").value_or("{}")).value("leader", ""), "pg-0");
}

TEST_F(AgentCycleTest, ACheckpointThatFailsAfterThePromotionLeavesTheNewPrimaryInCharge) {
  StartAsReplicaThenLoseTheLeader(0x2000000);
  node_.Fail("Checkpoint", Error::Unavailable("checkpoint: server closed the connection"));
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("Promote"));
  EXPECT_THAT(node_.operations(), Contains("WriteConfig primary"))
      << "what follows the checkpoint still runs";
  EXPECT_FALSE(node_.state().in_recovery);
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "master");
}

TEST_F(AgentCycleTest, APrimaryToldItLeadsAStandbyClusterStartsAgainAsAStandby) {
  StartAsLeader();
  SetDynamicConfig({{"standby_cluster", {{"host", "10.0.0.9"}, {"port", 5432}}}});
  Cycle();
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("Stop fast"));
  EXPECT_THAT(node_.operations(), Contains(HasSubstr("WriteConfig standby")));
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "standby_leader");
}

TEST_F(AgentCycleTest, ARunningStandbyLeaderIsReloadedNotRestartedToFollowTheRemotePrimary) {
  SetDynamicConfig({{"standby_cluster", {{"host", "10.0.0.9"}, {"port", 5432}}}});
  Start(FakeNode::RunningReplica("", ""));
  Cycle();
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains("Reload"));
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Stop"))));
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Start"))));
}

TEST_F(AgentCycleTest, AStandbyLeaderThatCannotStartIsTriedAgain) {
  SetDynamicConfig({{"standby_cluster", {{"host", "10.0.0.9"}, {"port", 5432}}}});
  FakeNodeState stopped = FakeNode::RunningReplica("", "");
  stopped.running = false;
  Start(stopped);
  node_.Fail("Start", Error::Unavailable("pg_ctl: could not start server"));
  Cycle();
  Cycle();
  EXPECT_FALSE(node_.state().running);
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "replica") << "not a standby leader yet";
  node_.ClearFailures();
  Cycle();
  EXPECT_TRUE(node_.state().running) << ::testing::PrintToString(node_.operations());
  Cycle();  // the member key shows the role from the cycle after the start
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "standby_leader");
}

TEST_F(AgentCycleTest,
       AReplicaThatCannotWriteTheNewLeadersConfigurationKeepsFollowingAndTriesAgain) {
  StartAsReplica();
  AddMember("pg-2", "master", 0x3000000, 5434);
  dcs_.Delete("leader");
  MakeLeader("pg-2");
  node_.Fail("WriteConfig", Error::Unavailable("could not write postgresql.conf: disk full"));
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains("Reload")));
  EXPECT_EQ(node_.state().following, "pg-1");
  node_.ClearFailures();
  Cycle();
  EXPECT_EQ(node_.state().following, "pg-2");
}

TEST_F(AgentCycleTest, ALeaderKeyWithoutAMemberKeyIsNotFollowed) {
  StartAsReplica();
  dcs_.Delete("leader");
  dcs_.Put("leader", "pg-9");  // a leader whose member key is gone: no address to follow
  Cycle();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("WriteConfig"))));
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, AnOldPrimaryDoesNotRewindFromALeaderWithoutAMemberKey) {
  SetDynamicConfig({{"postgresql", {{"use_pg_rewind", true}}}});
  StartAsLeader();
  dcs_.Delete("leader");
  MakeLeader("pg-1");
  Cycle();  // demoted: it must rewind before it follows pg-1
  dcs_.Delete("leader");
  dcs_.Put("leader", "pg-9");
  node_.TakeOperations();
  Cycle();
  agent_->AwaitLongAction();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("Rewind"))));
}

TEST_F(AgentCycleTest, AFailedRewindRemovesTheDataDirectoryWhenConfiguredAndTheNodeIsClonedAgain) {
  tree_["postgresql"]["remove_data_directory_on_rewind_failure"] = true;
  SetDynamicConfig({{"postgresql", {{"use_pg_rewind", true}}}});
  StartAsLeader();
  dcs_.Delete("leader");
  MakeLeader("pg-1");
  node_.Fail("Rewind", Error::Unavailable("pg_rewind: could not find common ancestor"));
  Cycle();  // demoted
  CycleThroughLongAction();
  agent_->AwaitLongAction();
  node_.ClearFailures();
  CycleThroughLongAction();
  agent_->AwaitLongAction();
  Cycle();
  auto ops = node_.operations();
  auto rewind = std::find(ops.begin(), ops.end(), "Rewind pg-1");
  auto removed = std::find(rewind, ops.end(), "RemoveDataDirectory");
  auto cloned = std::find(removed, ops.end(), "CreateReplica pg-1");
  EXPECT_NE(cloned, ops.end()) << "rewind, remove, clone in that order: "
                               << ::testing::PrintToString(ops);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "Rewind pg-1"), 1) << "no second rewind";
  EXPECT_TRUE(node_.state().running);
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, AStaleViewOfTheLockAfterTheHandoverReleasedItIsNotRenewed) {
  StartAsLeader();
  dcs_.ReplaceWhenDeleted("leader", "pg-1", leases_.at("pg-1"));
  dcs_.Put("failover", R"({"leader": "pg-0", "member": "pg-1"})");
  // The handover stops once it released the lock and found the new leader, before following it.
  node_.Hold("WriteConfig");
  Cycle();
  ASSERT_TRUE(node_.AwaitHeldCall());
  ASSERT_EQ(dcs_.LeaderName(), "pg-1");
  // A cycle that still reads the key as ours (a cache behind etcd): it must not renew.
  dcs_.Put("leader", "pg-0");
  int renewals = dcs_.Calls("UpdateLeader");
  agent_->Step();
  EXPECT_EQ(dcs_.Calls("UpdateLeader"), renewals) << agent_->LastReason();
  node_.Release();
  agent_->AwaitLongAction();
  EXPECT_EQ(node_.state().following, "pg-1");
}

TEST_F(AgentCycleTest, AStandbyClusterFedByItsArchiveAloneHasAStandbyLeader) {
  SetDynamicConfig({{"standby_cluster", {{"restore_command", "cp /archive/%f %p"}}}});
  FakeNodeState stopped = FakeNode::RunningReplica("", "");
  stopped.running = false;
  Start(stopped);
  Cycle();
  Cycle();
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0");
  EXPECT_THAT(node_.operations(), Contains("WriteConfig standby (standby_cluster)"));
  EXPECT_TRUE(node_.state().running);
  EXPECT_TRUE(node_.state().in_recovery);
  EXPECT_EQ(MemberKey("pg-0").value("role", ""), "standby_leader");
}

TEST_F(AgentCycleTest, AStandbyClusterSectionWithNothingToFollowConfiguresNothing) {
  SetDynamicConfig({{"standby_cluster", {{"primary_slot_name", "standby"}}}});
  Start(FakeNode::RunningReplica("", ""));
  Cycle();
  Cycle();
  EXPECT_EQ(dcs_.LeaderName(), "pg-0") << agent_->LastReason();
  EXPECT_THAT(node_.operations(), Not(Contains(HasSubstr("WriteConfig"))));
  EXPECT_THAT(node_.operations(), Not(Contains("Promote")));
  EXPECT_TRUE(node_.state().in_recovery) << "never a primary in a standby cluster";
}

TEST_F(AgentCycleTest, AStandbyLeaderThatCannotReloadIsTriedAgain) {
  SetDynamicConfig({{"standby_cluster", {{"host", "10.0.0.9"}, {"port", 5432}}}});
  Start(FakeNode::RunningReplica("", ""));
  node_.Fail("Reload", Error::Unavailable("pg_ctl reload: server not running"));
  Cycle();
  Cycle();
  const std::string follow = "WriteConfig standby (standby_cluster)";
  int written = node_.Count(follow);
  EXPECT_GE(written, 2) << "tried at each cycle while the reload fails";
  node_.ClearFailures();
  Cycle();
  EXPECT_EQ(node_.Count(follow), written + 1);
  Cycle();
  EXPECT_EQ(node_.Count(follow), written + 1) << "following: nothing more to do";
}

TEST_F(AgentCycleTest, TheLeaderWritesTheConfigKeyWhenTheClusterHasNone) {
  StartAsLeader();
  dcs_.Delete("config");
  Cycle();
  ASSERT_TRUE(dcs_.Value("config").has_value());
  EXPECT_EQ(json::parse(*dcs_.Value("config")).value("ttl", 0), 30);
}

TEST_F(AgentCycleTest, ADemotionWhoseFastStopFailsStopsImmediately) {
  StartAsLeader();
  dcs_.SetUnreachable(true);
  node_.Fail("Stop", Error::Timeout("pg_ctl: server does not shut down"));
  Cycle();
  EXPECT_THAT(node_.operations(), Contains("Stop fast"));
  EXPECT_THAT(node_.operations(), Contains("Stop immediate"))
      << "past the lock's time a fast stop gives way to an immediate one";
}

}  // namespace
}  // namespace pgha::agent
