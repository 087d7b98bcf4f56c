// Synchronous replication steps over recorded pg_stat_replication rows and sync keys.
#include "ha/sync_replication.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::ha {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Names = std::vector<std::string>;

model::Member Member(const std::string& name, const std::string& state = "running",
                     nlohmann::json tags = nlohmann::json::object()) {
  model::Member m;
  m.name = name;
  m.data = {{"role", "replica"}, {"state", state}, {"tags", tags}};
  return m;
}

model::ClusterSnapshot Cluster(std::optional<Names> sync_standby = std::nullopt,
                               const std::string& sync_leader = "pg-0") {
  model::ClusterSnapshot c;
  c.leader = model::Leader{"pg-0", 1, 1};
  c.members = {Member("pg-0"), Member("pg-1"), Member("pg-2")};
  if (sync_standby) {
    model::SyncState s;
    s.mod_revision = 7;
    s.leader = sync_leader;
    s.sync_standby = *sync_standby;
    c.sync = s;
  }
  return c;
}

WalSender Sender(const std::string& name, const std::string& state, uint64_t position) {
  return {name, state, position};
}

// What the leader last set synchronous_standby_names to.
SyncTracking Listing(Names names) {
  SyncTracking tracking;
  tracking.standby_names.emplace(std::move(names));
  return tracking;
}

SyncSettings On(int64_t count = 1, bool strict = false) {
  SyncSettings s;
  s.enabled = true;
  s.strict = strict;
  s.node_count = count;
  return s;
}

TEST(SyncReplicationTest, FormatsStandbyNamesAsPatroni) {
  EXPECT_EQ(FormatSynchronousStandbyNames({}), "");
  EXPECT_EQ(FormatSynchronousStandbyNames({"*"}), "*");
  EXPECT_EQ(FormatSynchronousStandbyNames({"pg_1"}), "pg_1");
  EXPECT_EQ(FormatSynchronousStandbyNames({"pg-1"}), "\"pg-1\"");
  EXPECT_EQ(FormatSynchronousStandbyNames({"a", "b\"c"}), "2 (a,\"b\"\"c\")");
}

TEST(SyncReplicationTest, SyncAllowsOnlyTheKeysMembersOnceItHasALeader) {
  EXPECT_TRUE(SyncAllows(Cluster(), "pg-2"));  // no key: anybody healthy
  auto c = Cluster(Names{"pg-1"});
  EXPECT_TRUE(SyncAllows(c, "pg-0"));
  EXPECT_TRUE(SyncAllows(c, "pg-1"));
  EXPECT_FALSE(SyncAllows(c, "pg-2"));
  EXPECT_FALSE(SyncAllows(Cluster(Names{}), "pg-1"));  // a leader, no standby: only the leader
}

TEST(SyncReplicationTest, NewStandbyIsListedFirstAndNamedInTheKeyOnlyOnceConfirmed) {
  SyncTracking tracking = Listing(Names{});
  auto cluster = Cluster(Names{});
  // Both replicas stream asynchronously; pg-2 is ahead.
  auto state = CurrentSyncState(
      cluster, {Sender("pg-1", "async", 90), Sender("pg-2", "async", 100)}, On(), 100, tracking);
  EXPECT_THAT(state.picked, ElementsAre("pg-2"));
  EXPECT_THAT(state.confirmed, IsEmpty());
  auto steps = PlanSyncReplication(cluster, "pg-0", On(), state, {});
  EXPECT_FALSE(steps.key_before);  // the key already names nobody
  ASSERT_TRUE(steps.standby_names);
  EXPECT_THAT(*steps.standby_names, ElementsAre("pg-2"));
  EXPECT_FALSE(steps.key_after);

  // PostgreSQL now lists pg-2; it reports `sync` but has not reached the position of the change.
  tracking.standby_names = Names{"pg-2"};
  tracking.position_at_change = 120;
  state = CurrentSyncState(cluster, {Sender("pg-2", "sync", 110), Sender("pg-1", "async", 90)},
                           On(), 120, tracking);
  EXPECT_THAT(state.confirmed, IsEmpty());
  steps = PlanSyncReplication(cluster, "pg-0", On(), state, {"pg-2"});
  EXPECT_FALSE(steps.standby_names);
  EXPECT_FALSE(steps.key_after);

  // Caught up: now, and only now, the key names it.
  state = CurrentSyncState(cluster, {Sender("pg-2", "sync", 120), Sender("pg-1", "async", 90)},
                           On(), 125, tracking);
  EXPECT_THAT(state.confirmed, ElementsAre("pg-2"));
  steps = PlanSyncReplication(cluster, "pg-0", On(), state, {"pg-2"});
  ASSERT_TRUE(steps.key_after);
  EXPECT_THAT(*steps.key_after, ElementsAre("pg-2"));
}

TEST(SyncReplicationTest, ADepartingStandbyLeavesTheKeyBeforeSynchronousStandbyNames) {
  SyncTracking tracking = Listing(Names{"pg-1"});
  tracking.ready = {"pg-1"};
  auto cluster = Cluster(Names{"pg-1"});
  cluster.members[1] = Member("pg-1", "stopped");  // pg-1 went away
  auto state = CurrentSyncState(cluster, {Sender("pg-2", "async", 100)}, On(), 100, tracking);
  EXPECT_THAT(state.picked, ElementsAre("pg-2"));
  auto steps = PlanSyncReplication(cluster, "pg-0", On(), state, {"pg-1"});
  ASSERT_TRUE(steps.key_before);
  EXPECT_THAT(*steps.key_before, IsEmpty());  // first: nobody may take over on pg-1's say
  ASSERT_TRUE(steps.standby_names);
  EXPECT_THAT(*steps.standby_names, ElementsAre("pg-2"));  // then: list pg-2
  EXPECT_FALSE(steps.key_after);                           // named next cycle, once confirmed
}

TEST(SyncReplicationTest, CurrentSyncStandbyStaysAheadOfAFasterAsyncReplica) {
  SyncTracking tracking = Listing(Names{"pg-1"});
  auto cluster = Cluster(Names{"pg-1"});
  auto state = CurrentSyncState(
      cluster, {Sender("pg-2", "async", 200), Sender("pg-1", "sync", 150)}, On(), 200, tracking);
  EXPECT_THAT(state.picked, ElementsAre("pg-1"));
  EXPECT_THAT(state.confirmed, ElementsAre("pg-1"));  // the key names it: ready at once
  auto steps = PlanSyncReplication(cluster, "pg-0", On(), state, {"pg-1"});
  EXPECT_FALSE(steps.key_before);
  EXPECT_FALSE(steps.standby_names);
  EXPECT_FALSE(steps.key_after);
  EXPECT_EQ(steps.log, "");
}

TEST(SyncReplicationTest, LaggingSyncStandbyIsSwappedWhenMaximumLagOnSyncnodeIsSet) {
  SyncTracking tracking = Listing(Names{"pg-1"});
  auto settings = On();
  settings.maximum_lag_on_syncnode = 50;
  auto state = CurrentSyncState(Cluster(Names{"pg-1"}),
                                {Sender("pg-1", "sync", 100), Sender("pg-2", "async", 200)},
                                settings, 200, tracking);
  EXPECT_THAT(state.picked, ElementsAre("pg-2"));
}

TEST(SyncReplicationTest, NosyncAndStoppedMembersAreNeverPicked) {
  SyncTracking tracking = Listing(Names{});
  auto cluster = Cluster(Names{});
  cluster.members[1] = Member("pg-1", "running", {{"nosync", true}});
  cluster.members[2] = Member("pg-2", "stopped");
  auto state = CurrentSyncState(
      cluster, {Sender("pg-1", "async", 100), Sender("pg-2", "async", 100)}, On(2), 100, tracking);
  EXPECT_THAT(state.picked, IsEmpty());
}

TEST(SyncReplicationTest, StrictModeWithoutStandbysListsAny) {
  SyncTracking tracking = Listing(Names{});
  auto cluster = Cluster(Names{});
  auto state = CurrentSyncState(cluster, {}, On(1, true), 100, tracking);
  auto steps = PlanSyncReplication(cluster, "pg-0", On(1, true), state, {});
  ASSERT_TRUE(steps.standby_names);
  EXPECT_THAT(*steps.standby_names, ElementsAre("*"));
  // Non-strict: nothing listed, commits go on without a standby.
  steps = PlanSyncReplication(cluster, "pg-0", On(), state, {});
  EXPECT_FALSE(steps.standby_names);
}

TEST(SyncReplicationTest, TwoSyncStandbysWithSynchronousNodeCount2) {
  SyncTracking tracking = Listing(Names{"pg-1", "pg-2"});
  auto cluster = Cluster(Names{"pg-1"});
  auto state = CurrentSyncState(cluster, {Sender("pg-1", "sync", 100), Sender("pg-2", "sync", 100)},
                                On(2), 100, tracking);
  EXPECT_THAT(state.picked, ElementsAre("pg-1", "pg-2"));
  EXPECT_THAT(state.confirmed, ElementsAre("pg-1", "pg-2"));
  auto steps = PlanSyncReplication(cluster, "pg-0", On(2), state, {"pg-1", "pg-2"});
  EXPECT_FALSE(steps.key_before);
  ASSERT_TRUE(steps.key_after);
  EXPECT_THAT(*steps.key_after, ElementsAre("pg-1", "pg-2"));
}

TEST(SyncReplicationTest, AKeyWrittenByAnotherLeaderIsTakenOverEmptyFirst) {
  SyncTracking tracking = Listing(Names{});
  auto cluster = Cluster(Names{"pg-0"}, "pg-1");  // the old leader's key
  auto state = CurrentSyncState(cluster, {Sender("pg-1", "async", 100)}, On(), 100, tracking);
  auto steps = PlanSyncReplication(cluster, "pg-0", On(), state, {});
  ASSERT_TRUE(steps.key_before);
  EXPECT_THAT(*steps.key_before, IsEmpty());
}

TEST(SyncReplicationTest, SynchronousModeOffDeletesTheKeyAndClearsTheNames) {
  auto cluster = Cluster(Names{"pg-1"});
  auto steps = PlanSyncReplication(cluster, "pg-0", SyncSettings{}, {}, {"pg-1"});
  EXPECT_TRUE(steps.delete_key);
  ASSERT_TRUE(steps.standby_names);
  EXPECT_THAT(*steps.standby_names, IsEmpty());
  steps = PlanSyncReplication(Cluster(), "pg-0", SyncSettings{}, {}, {});
  EXPECT_FALSE(steps.delete_key);
  EXPECT_FALSE(steps.standby_names);
}

}  // namespace
}  // namespace pgha::ha
