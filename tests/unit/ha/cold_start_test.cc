// The cold-start rule (ha/cold_start.h) through ha::Decide: every node starts with no leader key,
// and the member that was primary last must lead again whatever the order of the starts.
#include "ha/cold_start.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::ha {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const MonoTime kNow = MonoTime{} + std::chrono::hours(1);

PeerStatus Peer(const std::string& name, int64_t timeline, uint64_t wal) {
  PeerStatus p;
  p.name = name;
  p.reachable = true;
  p.running = true;
  p.timeline = timeline;
  p.wal_position = wal;
  return p;
}

// Replica pg-1 (timeline 3, position 100) in an initialized cluster without a leader key,
// 5 s into a 10 s cold start, with pg-0..pg-2 registered.
HaInput ColdStart() {
  HaInput in;
  in.now = kNow;
  in.cold_start_until = kNow + seconds(5);
  in.cluster.initialize = "7712196491986988846";
  in.cluster.registered_members = {"pg-0", "pg-1", "pg-2"};
  in.local.name = "pg-1";
  in.local.data_initialized = true;
  in.local.sysid = "7712196491986988846";
  in.local.postgres_running = true;
  in.local.in_recovery = true;
  in.local.wal_position = 100;
  in.local.timeline = 3;
  return in;
}

bool Races(const Decision& d) {
  return d.actions == std::vector<Action>{{ActionKind::kAcquireLock, ""}};
}

TEST(ColdStartTest, WaitsForARegisteredMemberThatHasNotReported) {
  auto in = ColdStart();
  in.peers = {Peer("pg-0", 3, 50)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("cold start: waiting up to 5 s for pg-2 to report a position"));
  EXPECT_THAT(MembersNotHeardFrom(in), ElementsAre("pg-2"));
}

TEST(ColdStartTest, AnUnreachableOrStoppedMemberIsNotHeardFrom) {
  auto in = ColdStart();
  in.peers = {Peer("pg-0", 3, 50), Peer("pg-2", 3, 50)};
  in.peers[0].reachable = false;
  in.peers[1].running = false;
  EXPECT_THAT(MembersNotHeardFrom(in), ElementsAre("pg-0", "pg-2"));
  in.peers[1].nofailover = true;  // it answers and could not lead anyway
  EXPECT_THAT(MembersNotHeardFrom(in), ElementsAre("pg-0"));
}

TEST(ColdStartTest, TheMostAdvancedRacesOnceEveryoneReported) {
  auto in = ColdStart();
  in.peers = {Peer("pg-0", 3, 50), Peer("pg-2", 3, 99)};
  EXPECT_TRUE(Races(Decide(in)));
}

TEST(ColdStartTest, ALaterTimelineWinsOverAHigherPosition) {
  // pg-2 was promoted last (timeline 4) and stopped soon after; pg-1 had received more of
  // timeline 3 before that. pg-2 leads; pg-1 follows it after a rewind if it must.
  auto in = ColdStart();
  in.peers = {Peer("pg-0", 3, 50), Peer("pg-2", 4, 80)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("cold start: pg-2 is on a later timeline (4 > 3)"));

  auto pg2 = ColdStart();
  pg2.local.name = "pg-2";
  pg2.local.timeline = 4;
  pg2.local.wal_position = 80;
  pg2.peers = {Peer("pg-0", 3, 50), Peer("pg-1", 3, 100)};
  EXPECT_TRUE(Races(Decide(pg2)));
}

TEST(ColdStartTest, OnTheSameTimelineTheHigherPositionWins) {
  auto in = ColdStart();
  in.peers = {Peer("pg-0", 3, 150), Peer("pg-2", 3, 99)};
  auto d = Decide(in);
  EXPECT_THAT(d.actions, IsEmpty());
  EXPECT_THAT(d.reason, HasSubstr("pg-0 has a higher WAL position (150 > 100)"));
}

TEST(ColdStartTest, AfterTheWaitTheHealthiestOfThosePresentRaces) {
  auto in = ColdStart();
  in.now = *in.cold_start_until;
  in.peers = {Peer("pg-0", 3, 50)};
  EXPECT_FALSE(InColdStart(in));
  EXPECT_TRUE(Races(Decide(in)));
  // and the usual order applies again: position only.
  in.peers = {Peer("pg-0", 4, 50)};
  EXPECT_TRUE(Races(Decide(in)));
}

TEST(ColdStartTest, ALeaderKeyEndsTheColdStart) {
  auto in = ColdStart();
  in.cluster.leader = model::Leader{"pg-0", 1, 1};
  EXPECT_FALSE(InColdStart(in));
}

TEST(ColdStartTest, WithoutRegisteredMembersNobodyIsWaitedFor) {
  // A cluster whose members never ran pgha (moved from Patroni while stopped) has no records.
  auto in = ColdStart();
  in.cluster.registered_members.clear();
  EXPECT_TRUE(Races(Decide(in)));
}

TEST(ColdStartTest, AManualFailoverCandidateDoesNotWait) {
  auto in = ColdStart();
  in.cluster.failover = model::Failover{1, std::nullopt, std::string("pg-1"), std::nullopt, ""};
  EXPECT_TRUE(Races(Decide(in)));
}

TEST(ColdStartTest, OrderIsTimelineThenPosition) {
  EXPECT_TRUE(IsAheadOf(4, 1, 3, 1000));
  EXPECT_FALSE(IsAheadOf(3, 1000, 4, 1));
  EXPECT_TRUE(IsAheadOf(3, 101, 3, 100));
  EXPECT_FALSE(IsAheadOf(3, 100, 3, 100));
}

}  // namespace
}  // namespace pgha::ha
