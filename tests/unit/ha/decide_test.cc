// ha::Decide over tables of cluster situations: one test (at least) per reason sentence.
#include "ha/decide.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::ha {
namespace {

using std::chrono::seconds;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const MonoTime kNow = MonoTime{} + std::chrono::hours(1);

model::Member Member(const std::string& name, const std::string& role, uint64_t wal) {
  model::Member m;
  m.name = name;
  m.data = {{"role", role}, {"state", "running"}, {"xlog_location", wal}};
  return m;
}

// A running, initialised replica "pg-1" in a cluster led by `leader` ("" = no leader key).
HaInput Situation(const std::string& leader = "pg-0") {
  HaInput in;
  in.now = kNow;
  in.cluster.initialize = "7712196491986988846";
  if (!leader.empty()) {
    in.cluster.leader = model::Leader{leader, 1, 1};
  }
  in.cluster.members = {Member("pg-0", "master", 100), Member("pg-1", "replica", 100),
                        Member("pg-2", "replica", 100)};
  in.local.name = "pg-1";
  in.local.data_initialized = true;
  in.local.sysid = "7712196491986988846";
  in.local.postgres_running = true;
  in.local.in_recovery = true;
  in.local.wal_position = 100;
  in.local.timeline = 1;
  in.local.following = leader;
  return in;
}

PeerStatus Peer(const std::string& name, uint64_t wal, bool primary = false) {
  PeerStatus p;
  p.name = name;
  p.reachable = true;
  p.running = true;
  p.is_primary = primary;
  p.wal_position = wal;
  return p;
}

TEST(DecideTest, ReplicaFollowingItsLeaderDoesNothing) {
  auto d = Decide(Situation());
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "no action. I am (pg-1), a secondary, and following a leader (pg-0)");
}

TEST(DecideTest, LeaderRenewsAndPublishesStatus) {
  auto in = Situation("pg-1");
  in.local.in_recovery = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kLeaderUpkeep, ""}));
  EXPECT_EQ(d.reason, "no action. I am (pg-1), the leader with the lock");
}

TEST(DecideTest, ReplicaThatWonTheLockPromotes) {
  auto in = Situation("pg-1");
  auto d = Decide(in);
  EXPECT_THAT(d.actions,
              ElementsAre(Action{ActionKind::kUpdateLock, ""}, Action{ActionKind::kPromote, ""}));
  EXPECT_EQ(d.reason, "promoted self to leader by acquiring session lock");
}

TEST(DecideTest, ReplicaFollowsANewLeader) {
  auto in = Situation("pg-2");
  in.local.following = "pg-0";
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kFollow, "pg-2"}));
  EXPECT_EQ(d.reason, "following new leader pg-2");
}

TEST(DecideTest, ReadOnlyFormerPrimaryStopsToRewindBeforeFollowing) {
  auto in = Situation("pg-2");
  in.local.following = "";
  in.local.needs_rewind = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kDemote, "pg-2"}));
  EXPECT_EQ(d.reason, "stopping to rewind from pg-2 before following it");
}

// An async replica can be ahead of the sync standby that took over: its timeline-1 WAL goes past
// the switchpoint the leader's history records, and it must be rewound before it can follow.
TEST(DecideTest, ReplicaAheadOfTheNewTimelinesSwitchpointStopsToRewind) {
  auto in = Situation("pg-2");
  in.local.following = "pg-2";
  in.config.use_pg_rewind = true;
  in.cluster.history = {model::HistoryEntry{1, 0x507E940, "no recovery target specified", {}, {}}};
  in.local.receiver_timeline = 1;
  in.local.replayed_position = 0x507EB68;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kDemote, "pg-2"}));
  EXPECT_EQ(d.reason,
            "stopping to rewind from pg-2: replayed WAL of timeline 1 up to 0/507EB68, past "
            "0/507E940 where the leader's history ends that timeline");

  // Streaming, no receiver (leader down, just rewound), not past the switchpoint, receiving the
  // new timeline, or without pg_rewind: it follows.
  in.local.streaming = true;
  EXPECT_THAT(Decide(in).actions, ElementsAre());
  in.local.streaming = false;
  in.local.receiver_timeline = 0;
  EXPECT_THAT(Decide(in).actions, ElementsAre());
  in.local.receiver_timeline = 1;
  in.local.replayed_position = 0x507E940;
  EXPECT_THAT(Decide(in).actions, ElementsAre());
  in.local.replayed_position = 0x507EB68;
  in.local.receiver_timeline = 2;
  EXPECT_THAT(Decide(in).actions, ElementsAre());
  in.local.receiver_timeline = 1;
  in.config.use_pg_rewind = false;
  EXPECT_THAT(Decide(in).actions, ElementsAre());
}

TEST(DecideTest, PrimaryWithoutTheLockDemotes) {
  auto in = Situation("pg-2");
  in.local.in_recovery = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kDemote, "pg-2", true}));
  EXPECT_EQ(d.reason, "demoting self because I do not have the lock and I was a leader");
}

TEST(DecideTest, HealthiestReplicaRacesForAFreeLock) {
  auto in = Situation("");
  in.peers = {Peer("pg-2", 90)};  // pg-0 is down: not among reachable peers
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  EXPECT_EQ(d.reason, "trying to acquire the leader lock");
}

TEST(DecideTest, ReplicaBehindAPeerStaysOutOfTheRace) {
  auto in = Situation("");
  in.peers = {Peer("pg-2", 150)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason,
            "no leader lock; not the healthiest node: pg-2 has a higher WAL position "
            "(150 > 100)");
}

TEST(DecideTest, EqualWalPositionsAreDecidedByFailoverPriority) {
  auto in = Situation("");
  auto better = Peer("pg-2", 100);
  better.failover_priority = 5;
  in.peers = {better};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("higher failover_priority (5 > 1)"));
  // Equal priority: both may race; etcd's transaction picks exactly one.
  in.peers = {Peer("pg-2", 100)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

model::SyncState SyncKey(const std::string& leader, std::vector<std::string> standbys) {
  model::SyncState s;
  s.mod_revision = 3;
  s.leader = leader;
  s.sync_standby = std::move(standbys);
  return s;
}

TEST(DecideTest, InSynchronousModeOnlyTheSyncStandbyRaces) {
  auto in = Situation("");
  in.config.sync.enabled = true;
  in.cluster.sync = SyncKey("pg-0", {"pg-2"});
  in.peers = {Peer("pg-2", 90)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "no leader lock; not the healthiest node: not a synchronous standby");
  // The sync standby goes even though an asynchronous replica is further ahead.
  in.local.name = "pg-2";
  in.peers = {Peer("pg-1", 150)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  // Off: the async replica ahead wins as usual.
  in.config.sync.enabled = false;
  EXPECT_THAT(Decide(in).actions, IsEmpty());
}

TEST(DecideTest, InQuorumModeAVoterTakesOverOnlyAfterSeeingQuorumOtherVoters) {
  auto in = Situation("");
  in.config.sync.enabled = true;
  in.config.sync.quorum = true;
  in.cluster.members.push_back(Member("pg-3", "replica", 100));
  auto key = SyncKey("pg-0", {"pg-1", "pg-2", "pg-3"});
  key.quorum = 2;  // ANY 1 of three standbys: a commit may sit on any single one of them
  in.cluster.sync = key;
  in.peers = {Peer("pg-2", 90)};  // pg-0 and pg-3 are away
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason,
            "no leader lock; not the healthiest node: sees 1 of the 2 other quorum members it "
            "needs");
  // The old leader answering (as a replica, not ahead) counts as well.
  in.peers = {Peer("pg-2", 90), Peer("pg-0", 100)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  in.peers = {Peer("pg-2", 90), Peer("pg-3", 100)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  // A voter ahead rules it out; a member outside the voters neither votes nor blocks.
  in.peers = {Peer("pg-2", 90), Peer("pg-3", 101)};
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  in.cluster.sync->sync_standby = {"pg-1", "pg-2"};
  in.cluster.sync->quorum = 1;
  in.peers = {Peer("pg-3", 500)};
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  in.peers = {Peer("pg-3", 500), Peer("pg-2", 100)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  // A negative quorum (a damaged key) asks for every other voter and the old leader.
  in.cluster.sync->quorum = -1;
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  in.peers = {Peer("pg-2", 100), Peer("pg-0", 100)};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  in.cluster.sync->quorum = 1;
  // A member the key does not name never races; the key's own leader needs no votes.
  in.local.name = "pg-3";
  in.peers = {Peer("pg-2", 100), Peer("pg-1", 100)};
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  in.local.name = "pg-0";
  in.peers = {};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

TEST(DecideTest, InSynchronousModeAKeyWithoutStandbysLetsNobodyButTheLeaderTakeOver) {
  auto in = Situation("");
  in.config.sync.enabled = true;
  in.cluster.sync = SyncKey("pg-0", {});
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  // No key at all (synchronous mode just turned on): the usual race.
  in.cluster.sync.reset();
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

TEST(DecideTest, InSynchronousModeFailoverIsPossibleOnlyToASyncStandby) {
  auto in = Situation("pg-1");
  in.local.in_recovery = false;
  in.config.sync.enabled = true;
  in.cluster.sync = SyncKey("pg-1", {"pg-2"});
  in.peers = {Peer("pg-0", 100), Peer("pg-2", 100)};
  EXPECT_TRUE(IsFailoverPossible(in, {""}));
  EXPECT_FALSE(IsFailoverPossible(in, {"pg-0"}));
  in.cluster.sync = SyncKey("pg-1", {});
  EXPECT_FALSE(IsFailoverPossible(in, {""}));
}

TEST(DecideTest, InSynchronousModeASwitchoverSkipsAnAsyncReplica) {
  auto in = Situation("");
  in.config.sync.enabled = true;
  in.cluster.sync = SyncKey("pg-0", {"pg-2"});
  model::Failover failover;
  failover.leader = "pg-0";
  in.cluster.failover = failover;
  in.peers = {Peer("pg-2", 100)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("not a synchronous standby"));
}

TEST(DecideTest, NofailoverNeverRaces) {
  auto in = Situation("");
  in.local.nofailover = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "no leader lock; not the healthiest node: tagged nofailover");
}

TEST(DecideTest, NofailoverPeersDoNotBlockTheRace) {
  auto in = Situation("");
  auto ahead = Peer("pg-2", 500);
  ahead.nofailover = true;
  in.peers = {ahead};
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

TEST(DecideTest, TooMuchLagKeepsAReplicaOutOfTheRace) {
  auto in = Situation("");
  in.cluster.status.optime = 100 + 2 * 1048576;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("more than maximum_lag_on_failover (1048576)"));
}

TEST(DecideTest, AStillRunningPrimaryBlocksTheRace) {
  auto in = Situation("");
  in.peers = {Peer("pg-0", 50, /*primary=*/true)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("pg-0 is still running as primary"));
}

TEST(DecideTest, APrimaryThatIsNotHealthiestDemotes) {
  auto in = Situation("");
  in.local.in_recovery = false;
  in.local.nofailover = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kDemote, ""}));
  EXPECT_EQ(d.reason, "demoting self because I am not the healthiest node (tagged nofailover)");
}

TEST(DecideTest, PausedNodesDoNotRace) {
  auto in = Situation("");
  in.config.paused = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "PAUSE: no leader lock, not taking it while paused");
}

TEST(DecideTest, EmptyClusterStartsTheInitializeRace) {
  HaInput in;
  in.local.name = "pg-0";
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kInitializeRace, ""}));
  EXPECT_EQ(d.reason, "trying to bootstrap a new cluster");
}

TEST(DecideTest, NewNodeClonesFromARunningLeader) {
  auto in = Situation();
  in.local.data_initialized = false;
  in.local.postgres_running = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kCreateReplica, "pg-0"}));
  EXPECT_EQ(d.reason, "trying to bootstrap from leader 'pg-0'");
}

TEST(DecideTest, NewNodeWaitsWhileTheLeaderIsNotRunning) {
  auto in = Situation();
  in.local.data_initialized = false;
  in.cluster.members[0].data["state"] = "starting";
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "waiting for leader 'pg-0' to be running to bootstrap from it");
}

TEST(DecideTest, EmptyNodeRestoresWithoutALeaderOnlyWithANoLeaderMethod) {
  auto in = Situation("");
  in.local.data_initialized = false;
  in.local.postgres_running = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "waiting for leader to bootstrap");
  in.config.can_create_replica_without_leader = true;
  d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kCreateReplica, ""}));
  EXPECT_EQ(d.reason, "bootstrap (without leader)");
  // Not while another node initializes the cluster.
  in.cluster.initialize = "";
  d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
}

TEST(DecideTest, InFailsafeModeOnlyMembersTheFailsafeKeyListsMayTakeOver) {
  auto in = Situation("");
  in.config.failsafe_mode = true;
  in.cluster.failsafe = std::map<std::string, std::string>{{"pg-0", "http://pg-0:8008/patroni"}};
  std::string why;
  EXPECT_FALSE(IsHealthiestNode(in, &why));
  EXPECT_EQ(why, "not a member of the failsafe key");
  (*in.cluster.failsafe)["pg-1"] = "http://pg-1:8008/patroni";
  EXPECT_TRUE(IsHealthiestNode(in, &why)) << why;
  in.config.failsafe_mode = false;
  in.cluster.failsafe = std::map<std::string, std::string>{};
  EXPECT_TRUE(IsHealthiestNode(in, &why)) << why;
}

TEST(DecideTest, NewNodeWaitsWhileAnotherBootstraps) {
  auto in = Situation("");
  in.cluster.initialize = "";
  in.local.data_initialized = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "waiting for leader to bootstrap");
}

TEST(DecideTest, ForeignDataDirectoryIsRefused) {
  auto in = Situation();
  in.local.sysid = "1";
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("system ID mismatch"));
}

TEST(DecideTest, LongActionRenewsTheLockIfHeld) {
  auto in = Situation("pg-1");
  in.local.long_action = LongAction::kBootstrap;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""}));
  EXPECT_EQ(d.reason, "updated leader lock during bootstrap");
  in.cluster.leader->name = "pg-0";
  in.local.long_action = LongAction::kBasebackup;
  d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "basebackup in progress");
}

TEST(DecideTest, CrashedPrimaryRestartsInPlaceWhileHoldingTheLock) {
  auto in = Situation("pg-1");
  in.local.postgres_running = false;
  in.local.in_recovery = false;
  in.local.down_since = kNow - seconds(5);
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kStartPrimary, ""}));
  EXPECT_EQ(d.reason, "starting primary after failure, holding the leader lock");
}

TEST(DecideTest, PrimaryThatDoesNotComeBackReleasesTheLock) {
  auto in = Situation("pg-1");
  in.local.postgres_running = false;
  in.local.down_since = kNow - seconds(301);
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kReleaseLock, ""}));
  EXPECT_EQ(d.reason,
            "primary did not start within primary_start_timeout; releasing the leader lock");
}

TEST(DecideTest, CrashedPrimaryFailsOverAtOnceWhenPrimaryStartTimeoutIsZero) {
  auto in = Situation("pg-1");
  in.local.postgres_running = false;
  in.local.in_recovery = false;
  in.local.down_since = kNow;
  in.config.primary_start_timeout = 0;
  // Nobody to fail over to: restart in place as before.
  in.peers = {Peer("pg-2", 100)};
  in.peers[0].nofailover = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kStartPrimary, ""}));
  // A healthy replica: give the lock up so it takes over.
  in.peers = {Peer("pg-2", 100)};
  d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kReleaseLock, ""}));
  EXPECT_EQ(d.reason, "primary crashed and primary_start_timeout is 0: failing over");
  // Paused: the operator decides; restart in place.
  in.config.paused = true;
  d = Decide(in);
  EXPECT_THAT(d.actions, Not(Contains(Action{ActionKind::kReleaseLock, ""})));
}

TEST(DecideTest, StoppedReplicaStartsFollowingTheLeader) {
  auto in = Situation();
  in.local.postgres_running = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kStartReplica, "pg-0"}));
  EXPECT_EQ(d.reason, "starting as a secondary following pg-0");
}

TEST(DecideTest, StoppedNodeWithNoLeaderStartsReadOnly) {
  auto in = Situation("");
  in.local.postgres_running = false;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kStartReplica, ""}));
  EXPECT_EQ(d.reason, "starting as a secondary");
  in.local.in_recovery = false;
  d = Decide(in);
  EXPECT_EQ(d.reason, "starting as a secondary: no leader, the race decides once running");
}

TEST(DecideTest, DivergedOldPrimaryRewindsWhenAllowed) {
  auto in = Situation("pg-2");
  in.local.postgres_running = false;
  in.local.needs_rewind = true;
  in.config.use_pg_rewind = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kRewind, "pg-2"}));
  EXPECT_EQ(d.reason, "running pg_rewind from pg-2");
  in.config.use_pg_rewind = false;
  d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("use_pg_rewind is off"));
}

TEST(DecideTest, PausedClusterDoesNotStartPostgres) {
  auto in = Situation();
  in.local.postgres_running = false;
  in.config.paused = true;
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_EQ(d.reason, "PAUSE: PostgreSQL is not running");
}

TEST(DecideTest, DcsOutageKeepsReplicasAndDemotesAnOverduePrimary) {
  auto replica = Situation();
  replica.dcs_reachable = false;
  EXPECT_EQ(Decide(replica).reason, "DCS is not accessible");
  EXPECT_THAT(Decide(replica).actions, IsEmpty());

  auto primary = Situation("pg-1");
  primary.dcs_reachable = false;
  primary.local.in_recovery = false;
  primary.config.retry_timeout = 10;
  primary.local.last_lock_renewal = kNow - seconds(3);
  auto d = Decide(primary);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""}));
  EXPECT_EQ(d.reason, "DCS is not accessible; keeping the primary until the lock could expire");
  primary.local.last_lock_renewal = kNow - seconds(10);
  d = Decide(primary);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kDemote, ""}));
  EXPECT_EQ(d.reason, "demoting self because DCS is not accessible and I was a leader");
}

// --- Manual failover and switchover (the failover key) ---

const WallTime kWallNow = WallTime{} + std::chrono::hours(24 * 365 * 56);

// pg-0 leads with the lock; the failover key asks for `candidate` (from `leader`); peers answer.
HaInput LeaderWithFailoverKey(std::optional<std::string> leader,
                              std::optional<std::string> candidate) {
  auto in = Situation("pg-0");
  in.local.name = "pg-0";
  in.local.in_recovery = false;
  in.local.following = "";
  in.wall_now = kWallNow;
  in.cluster.status.optime = 100;
  in.cluster.failover = model::Failover{7, std::move(leader), std::move(candidate), {}, ""};
  in.peers = {Peer("pg-1", 100), Peer("pg-2", 100)};
  return in;
}

TEST(ManualFailoverTest, LeaderHandsOverToAHealthyCandidate) {
  auto d = Decide(LeaderWithFailoverKey("pg-0", "pg-1"));
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kSwitchover, "pg-1"}));
  EXPECT_EQ(d.reason, "manual failover: demoting myself");
  // Without a candidate (switchover to any) and without a leader (POST /failover).
  EXPECT_THAT(
      Decide(LeaderWithFailoverKey("pg-0", std::nullopt)).actions,
      ElementsAre(Action{ActionKind::kUpdateLock, ""}, Action{ActionKind::kSwitchover, ""}));
  EXPECT_THAT(
      Decide(LeaderWithFailoverKey(std::nullopt, "pg-2")).actions,
      ElementsAre(Action{ActionKind::kUpdateLock, ""}, Action{ActionKind::kSwitchover, "pg-2"}));
}

TEST(ManualFailoverTest, LeaderRemovesAKeyItCannotHonour) {
  const std::vector<Action> clean_up = {{ActionKind::kUpdateLock, ""},
                                        {ActionKind::kLeaderUpkeep, ""},
                                        {ActionKind::kClearFailover, ""}};
  auto d = Decide(LeaderWithFailoverKey("pg-2", "pg-1"));
  EXPECT_EQ(d.actions, clean_up);
  EXPECT_THAT(d.reason, HasSubstr("leader name does not match: pg-2 != pg-0"));

  d = Decide(LeaderWithFailoverKey("pg-0", "pg-0"));
  EXPECT_EQ(d.actions, clean_up);
  EXPECT_THAT(d.reason, HasSubstr("I am already the leader"));

  auto lagging = LeaderWithFailoverKey("pg-0", "pg-1");
  lagging.cluster.status.optime = 100 + 2 * 1048576;
  lagging.config.maximum_lag_on_failover = 1048576;
  d = Decide(lagging);
  EXPECT_EQ(d.actions, clean_up);
  EXPECT_THAT(d.reason, HasSubstr("no healthy members found"));

  auto unreachable = LeaderWithFailoverKey("pg-0", "pg-1");
  unreachable.peers[0].reachable = false;
  EXPECT_EQ(Decide(unreachable).actions, clean_up);

  auto nofailover = LeaderWithFailoverKey("pg-0", "pg-1");
  nofailover.peers[0].nofailover = true;
  EXPECT_EQ(Decide(nofailover).actions, clean_up);

  auto stopped = LeaderWithFailoverKey("pg-0", std::nullopt);
  stopped.peers[0].running = false;
  stopped.peers[1].running = false;
  EXPECT_EQ(Decide(stopped).actions, clean_up);

  auto paused_any = LeaderWithFailoverKey("pg-0", std::nullopt);
  paused_any.config.paused = true;
  d = Decide(paused_any);
  EXPECT_EQ(d.actions, clean_up);
  EXPECT_THAT(d.reason, HasSubstr("only to a specific candidate in a paused state"));
}

TEST(ManualFailoverTest, PausedLeaderStillHandsOverToANamedCandidate) {
  auto in = LeaderWithFailoverKey("pg-0", "pg-1");
  in.config.paused = true;
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                              Action{ActionKind::kSwitchover, "pg-1"}));
}

TEST(ManualFailoverTest, ScheduledSwitchoverWaitsFiresAndExpires) {
  auto in = LeaderWithFailoverKey("pg-0", "pg-1");
  in.config.loop_wait = 10;
  auto& failover = *in.cluster.failover;
  failover.scheduled_at_text = "2026-11-26T12:00:00+00:00";

  failover.scheduled_at = kWallNow + seconds(3600);
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kLeaderUpkeep, ""}));
  EXPECT_EQ(d.reason, "awaiting switchover at 2026-11-26T12:00:00+00:00 (in 3600 seconds)");
  EXPECT_FALSE(d.recheck_in.has_value());

  failover.scheduled_at = kWallNow + seconds(4);
  d = Decide(in);
  EXPECT_THAT(d.reason, HasSubstr("awaiting switchover"));
  ASSERT_TRUE(d.recheck_in.has_value());
  EXPECT_DOUBLE_EQ(*d.recheck_in, 4.0);

  failover.scheduled_at = kWallNow - seconds(2);
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                              Action{ActionKind::kSwitchover, "pg-1"}));

  failover.scheduled_at = kWallNow - seconds(16);
  d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                     Action{ActionKind::kLeaderUpkeep, ""},
                                     Action{ActionKind::kClearFailover, ""}));
  EXPECT_THAT(d.reason, HasSubstr("stale switchover"));

  // While paused a scheduled switchover neither fires nor expires.
  in.config.paused = true;
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kUpdateLock, ""},
                                              Action{ActionKind::kLeaderUpkeep, ""}));
}

// After the old leader released the lock: pg-1 decides with the failover key in place.
HaInput ReplicaAfterHandover(std::optional<std::string> candidate) {
  auto in = Situation("");
  in.wall_now = kWallNow;
  in.cluster.failover = model::Failover{7, "pg-0", std::move(candidate), {}, ""};
  PeerStatus old_leader = Peer("pg-0", 100, /*primary=*/true);
  old_leader.running = false;
  in.peers = {old_leader, Peer("pg-2", 100)};
  return in;
}

TEST(ManualFailoverTest, TheNamedCandidateTakesTheLockAndTheOthersWait) {
  auto d = Decide(ReplicaAfterHandover("pg-1"));
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));

  d = Decide(ReplicaAfterHandover("pg-2"));
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("manual failover: to pg-2, i am pg-1"));

  // The named candidate is gone: the healthiest of the rest goes, lag not counted.
  auto gone = ReplicaAfterHandover("pg-2");
  gone.peers[1].reachable = false;
  gone.cluster.status.optime = 100 + 10 * 1048576;
  EXPECT_THAT(Decide(gone).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

TEST(ManualFailoverTest, SwitchoverToAnyPicksTheHealthiestButNotTheOldLeader) {
  auto behind = ReplicaAfterHandover(std::nullopt);
  behind.peers[1].wal_position = 200;  // pg-2 has more WAL
  EXPECT_THAT(Decide(behind).actions, IsEmpty());
  auto ahead = ReplicaAfterHandover(std::nullopt);
  ahead.peers[0].wal_position = 500;  // only the old leader is ahead: it does not count
  ahead.peers[0].running = true;
  EXPECT_THAT(Decide(ahead).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
}

TEST(ManualFailoverTest, NofailoverNeverTakesTheLockEvenWhenNamed) {
  auto in = ReplicaAfterHandover("pg-1");
  in.local.nofailover = true;
  EXPECT_THAT(Decide(in).actions, IsEmpty());
}

TEST(ManualFailoverTest, WhilePausedOnlyTheNamedCandidateMoves) {
  auto in = ReplicaAfterHandover("pg-1");
  in.config.paused = true;
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kAcquireLock, ""}));
  auto other = ReplicaAfterHandover("pg-2");
  other.config.paused = true;
  EXPECT_THAT(Decide(other).actions, IsEmpty());
  auto any = ReplicaAfterHandover(std::nullopt);
  any.config.paused = true;
  EXPECT_THAT(Decide(any).actions, IsEmpty());
}

TEST(ManualFailoverTest, TheNewLeaderPromotesAndRemovesTheKey) {
  auto in = ReplicaAfterHandover("pg-1");
  in.cluster.leader = model::Leader{"pg-1", 2, 2};
  EXPECT_THAT(Decide(in).actions,
              ElementsAre(Action{ActionKind::kUpdateLock, ""}, Action{ActionKind::kPromote, ""},
                          Action{ActionKind::kClearFailover, ""}));
}

TEST(ManualFailoverTest, FailoverIsPossibleOnlyWhenACandidateHasTheShutdownCheckpoint) {
  auto in = LeaderWithFailoverKey("pg-0", "pg-1");
  EXPECT_TRUE(IsFailoverPossible(in, {"pg-1"}, 100));
  EXPECT_FALSE(IsFailoverPossible(in, {"pg-1"}, 101));
  in.peers[1].wal_position = 101;
  EXPECT_FALSE(IsFailoverPossible(in, {"pg-1"}, 101));
  EXPECT_TRUE(IsFailoverPossible(in, {""}, 101));
}

// --- Tags: replicatefrom (cascading) and clonefrom ---

model::Member Tagged(model::Member m, nlohmann::json tags) {
  m.data["tags"] = std::move(tags);
  return m;
}

TEST(TagsTest, ReplicatefromCascadesFromAnExistingMemberElseTheLeader) {
  auto in = Situation("pg-0");
  in.local.name = "pg-2";
  in.local.replicatefrom = "pg-1";
  EXPECT_EQ(NodeToFollow(in.cluster, "pg-2", "pg-1"), "pg-1");
  EXPECT_EQ(NodeToFollow(in.cluster, "pg-2", "pg-9"), "pg-0");  // gone: the leader
  EXPECT_EQ(NodeToFollow(in.cluster, "pg-2", "pg-2"), "pg-0");  // itself: the leader
  EXPECT_EQ(NodeToFollow(in.cluster, "pg-0", ""), "");          // the leader follows nobody

  in.local.following = "pg-0";
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kFollow, "pg-1"}));
  EXPECT_EQ(d.reason, "following pg-1 (replicatefrom) instead of the leader pg-0");
  in.local.following = "pg-1";
  EXPECT_THAT(Decide(in).actions, IsEmpty());
  in.local.postgres_running = false;
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kStartReplica, "pg-1"}));
}

TEST(TagsTest, NewReplicasCloneFromARunningClonefromMember) {
  auto in = Situation("pg-0");
  in.local.name = "pg-3";
  in.local.data_initialized = false;
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kCreateReplica, "pg-0"}));
  in.cluster.members[2] = Tagged(in.cluster.members[2], {{"clonefrom", true}});
  auto d = Decide(in);
  EXPECT_THAT(d.actions, ElementsAre(Action{ActionKind::kCreateReplica, "pg-2"}));
  EXPECT_EQ(d.reason, "trying to bootstrap from replica 'pg-2' (clonefrom)");
  in.local.clone_from_leader = true;  // reinitialize --from-leader
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kCreateReplica, "pg-0"}));
  in.local.clone_from_leader = false;
  in.cluster.members[2].data["state"] = "stopped";
  EXPECT_THAT(Decide(in).actions, ElementsAre(Action{ActionKind::kCreateReplica, "pg-0"}));
}

TEST(DecideTest, EveryActionHasAName) {
  for (int k = 0; k <= static_cast<int>(ActionKind::kClearFailover); ++k) {
    EXPECT_STRNE(ActionName(static_cast<ActionKind>(k)), "unknown");
  }
}

}  // namespace
}  // namespace pgha::ha
