#include "model/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/time_format.h"

namespace pgha::model {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(CodecTest, LeaderIsAPlainString) {
  EXPECT_EQ(DecodeLeader("pg-0")->name, "pg-0");
  EXPECT_FALSE(DecodeLeader("").ok());
}

TEST(CodecTest, Patroni4MemberWithEveryField) {
  MemberData data;
  data.conn_url = "postgres://10.0.0.2:5432/postgres";
  data.api_url = "http://10.0.0.2:8008/patroni";
  data.state = "running";
  data.role = "replica";
  data.version = "4.1.4";
  data.tags = json{{"nofailover", true}, {"replicatefrom", "pg-0"}};
  data.replication_state = "streaming";
  data.xlog_location = 100;
  data.replay_lsn = 90;
  data.receive_lsn = 100;
  data.timeline = 3;
  data.pending_restart = true;
  data.pending_restart_reason =
      json{{"max_connections", {{"old_value", "100"}, {"new_value", "200"}}}};
  data.pause = true;
  std::string encoded = EncodeMember(data);
  EXPECT_EQ(encoded.find("{\"conn_url\":"), 0u);
  auto member = DecodeMember("pg-1", encoded);
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(member->name, "pg-1");
  EXPECT_EQ(member->role(), "replica");
  EXPECT_EQ(member->version(), "4.1.4");
  EXPECT_EQ(member->replication_state(), "streaming");
  EXPECT_EQ(member->receive_lsn(), 100u);
  EXPECT_EQ(member->replay_lsn(), 90u);
  EXPECT_EQ(member->timeline(), 3);
  EXPECT_TRUE(member->pending_restart());
  EXPECT_TRUE(member->is_paused());
  EXPECT_TRUE(member->nofailover());
  EXPECT_EQ(member->failover_priority(), 0);
  EXPECT_EQ(member->replicatefrom(), "pg-0");
  EXPECT_EQ(member->host(), "10.0.0.2");
  EXPECT_EQ(member->port(), 5432);
  EXPECT_FALSE(member->IsPrimaryRole());
}

TEST(CodecTest, MemberRolesOfBothGenerations) {
  EXPECT_TRUE(DecodeMember("a", R"({"role":"master"})")->IsPrimaryRole());
  EXPECT_TRUE(DecodeMember("a", R"({"role":"primary"})")->IsPrimaryRole());
  EXPECT_FALSE(DecodeMember("a", R"({"role":"standby_leader"})")->IsPrimaryRole());
}

TEST(CodecTest, MemberWalPositionPrefersXlogThenMaxOfReceiveReplay) {
  EXPECT_EQ(DecodeMember("a", R"({"xlog_location":5,"receive_lsn":9})")->wal_position(), 5u);
  EXPECT_EQ(DecodeMember("a", R"({"receive_lsn":9,"replay_lsn":7})")->wal_position(), 9u);
  EXPECT_EQ(DecodeMember("a", R"({"replay_lsn":7})")->wal_position(), 7u);
  EXPECT_FALSE(DecodeMember("a", R"({"xlog_location":-1})")->wal_position().has_value());
  EXPECT_FALSE(DecodeMember("a", R"({"xlog_location":"12"})")->wal_position().has_value());
}

TEST(CodecTest, MemberHostsInUrls) {
  EXPECT_EQ(DecodeMember("a", R"({"conn_url":"postgres://[::1]:5433/db"})")->host(), "::1");
  EXPECT_EQ(DecodeMember("a", R"({"conn_url":"postgres://[::1]:5433/db"})")->port(), 5433);
  EXPECT_EQ(DecodeMember("a", R"({"conn_url":"postgres://u@h/db"})")->port(), 5432);
  EXPECT_EQ(DecodeMember("a", "postgres://old:5432/postgres")->host(), "old");
  EXPECT_EQ(DecodeMember("a", "{}")->port(), 0);
}

TEST(CodecTest, BadMemberValuesAreClearErrors) {
  EXPECT_THAT(DecodeMember("a", "{not json").error().message(), HasSubstr("not valid JSON"));
  EXPECT_THAT(DecodeMember("a", "[1]").error().message(), HasSubstr("not a JSON object"));
  // Wrong types inside a member are tolerated field by field.
  auto odd = DecodeMember("a", R"({"role":5,"tags":"x","timeline":"2"})");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->role(), "");
  EXPECT_TRUE(odd->tags().empty());
  EXPECT_FALSE(odd->timeline().has_value());
}

TEST(CodecTest, FailoverForms) {
  auto modern = DecodeFailover(
      R"({"leader":"pg-0","member":"pg-1","scheduled_at":"2026-11-25T21:00:00+00:00"})");
  ASSERT_TRUE(modern.ok() && modern->has_value());
  EXPECT_EQ((*modern)->leader, "pg-0");
  EXPECT_EQ((*modern)->candidate, "pg-1");
  ASSERT_TRUE((*modern)->scheduled_at.has_value());
  EXPECT_EQ(FormatIsoTimestamp(*(*modern)->scheduled_at), "2026-11-25T21:00:00.000000+00:00");

  auto legacy = DecodeFailover("pg-0: pg-2");
  ASSERT_TRUE(legacy.ok() && legacy->has_value());
  EXPECT_EQ((*legacy)->leader, "pg-0");
  EXPECT_EQ((*legacy)->candidate, "pg-2");

  EXPECT_FALSE(DecodeFailover("")->has_value());
  EXPECT_FALSE(DecodeFailover("{}")->has_value());  // what Patroni leaves after a switchover
  EXPECT_FALSE(DecodeFailover("[]").ok());
  EXPECT_THAT(DecodeFailover(R"({"member":"x","scheduled_at":"soon"})").error().message(),
              HasSubstr("scheduled_at"));

  Failover f;
  f.leader = "pg-0";
  f.candidate = "pg-1";
  EXPECT_EQ(EncodeFailover(f), R"({"leader":"pg-0","member":"pg-1"})");
}

TEST(CodecTest, SyncForms) {
  auto v3 = DecodeSync(R"({"leader":"pg-0","sync_standby":"pg-2,pg-1"})");
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->sync_standby, (std::vector<std::string>{"pg-1", "pg-2"}));
  EXPECT_TRUE(v3->IsSyncStandby("pg-2"));
  EXPECT_EQ(v3->quorum, 0);
  auto none = DecodeSync(R"({"leader":"pg-0","sync_standby":null,"quorum":0})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->sync_standby.empty());
  EXPECT_EQ(EncodeSync(*v3, false), R"({"leader":"pg-0","sync_standby":"pg-1,pg-2"})");
  EXPECT_EQ(EncodeSync(*none, true), R"({"leader":"pg-0","sync_standby":null,"quorum":0})");
  EXPECT_FALSE(DecodeSync("x").ok());
}

TEST(CodecTest, StatusWithSlots) {
  auto status =
      DecodeStatus(R"({"optime":67288520,"slots":{"pg_1":67288520},"retain_slots":["pg_1"]})");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->optime, 67288520u);
  EXPECT_EQ(status->slots.at("pg_1"), 67288520u);
  EXPECT_EQ(status->retain_slots, (std::vector<std::string>{"pg_1"}));
  EXPECT_EQ(EncodeStatus(*status),
            R"({"optime":67288520,"slots":{"pg_1":67288520},"retain_slots":["pg_1"]})");
  EXPECT_FALSE(DecodeStatus(R"({"optime":"x"})").ok());
  EXPECT_FALSE(DecodeStatus("7").ok());
  EXPECT_EQ(*DecodeLegacyOptime("67288520"), 67288520u);
  EXPECT_FALSE(DecodeLegacyOptime("abc").ok());
}

TEST(CodecTest, HistoryLinesOldAndNew) {
  auto history = DecodeHistory(
      R"([[1,100,"no recovery target specified"],[2,200,"x","2026-11-25T19:43:35.502715+00:00","pg-1"]])");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_FALSE((*history)[0].timestamp.has_value());
  EXPECT_EQ((*history)[1].new_leader, "pg-1");
  EXPECT_EQ(
      EncodeHistory(*history),
      R"([[1,100,"no recovery target specified"],[2,200,"x","2026-11-25T19:43:35.502715+00:00","pg-1"]])");
  EXPECT_EQ(EncodeHistory({}), "[]");
  EXPECT_FALSE(DecodeHistory("[[1]]").ok());
  EXPECT_FALSE(DecodeHistory(R"([["a",1,"r"]])").ok());
  EXPECT_FALSE(DecodeHistory("{}").ok());
}

TEST(CodecTest, FailsafeAndInitialize) {
  auto failsafe = DecodeFailsafe(R"({"pg-0":"http://127.0.0.1:8008/patroni"})");
  ASSERT_TRUE(failsafe.ok());
  EXPECT_EQ(EncodeFailsafe(*failsafe), R"({"pg-0":"http://127.0.0.1:8008/patroni"})");
  EXPECT_FALSE(DecodeFailsafe(R"({"pg-0":1})").ok());
  EXPECT_EQ(*DecodeInitialize("7712196491986988846"), "7712196491986988846");
  EXPECT_EQ(*DecodeInitialize(""), "");
  EXPECT_FALSE(DecodeInitialize("abc").ok());
}

TEST(CodecTest, EncodersEscapeNonAsciiAsPythonDoes) {
  MemberData data;
  data.tags = json{{"zone", "서울"}};
  EXPECT_THAT(EncodeMember(data), HasSubstr("\\uc11c\\uc6b8"));
}

TEST(CodecTest, ConfigMustBeAnObject) {
  EXPECT_TRUE(DecodeConfig(R"({"ttl":30})").ok());
  EXPECT_FALSE(DecodeConfig("[]").ok());
  EXPECT_FALSE(DecodeConfig("").ok());
  GlobalConfig config(json{{"ttl", 30}});
  EXPECT_EQ(EncodeConfig(config), R"({"ttl":30})");
}

TEST(BuildSnapshotTest, UnknownAndBadKeysNeverBreakTheSnapshot) {
  std::vector<KeyValue> keys = {
      {"leader", "pg-0", 8, 8, 77},
      {"members/pg-0", R"({"role":"master","xlog_location":10})", 2, 20, 77},
      {"members/pg-1", "garbage", 3, 21, 78},
      {"members/", "x", 3, 3, 0},
      {"members/a/b", "x", 3, 3, 0},
      {"optime/leader", "5", 4, 4, 0},
      {"failover", "[]", 5, 5, 0},
      {"sync", R"({"leader":"pg-0","sync_standby":"pg-1"})", 6, 9, 0},
      {"something_new", "whatever", 7, 7, 0},
  };
  auto snapshot = BuildSnapshot(keys, 30);
  EXPECT_EQ(snapshot.revision, 30);
  ASSERT_TRUE(snapshot.leader.has_value());
  EXPECT_EQ(snapshot.leader->lease, 77);
  EXPECT_EQ(snapshot.leader->mod_revision, 8);
  ASSERT_EQ(snapshot.members.size(), 2u);
  EXPECT_EQ(snapshot.members[1].name, "pg-1");
  EXPECT_TRUE(snapshot.members[1].data.empty());
  EXPECT_EQ(snapshot.LeaderMember()->xlog_location(), 10u);
  EXPECT_EQ(snapshot.status.optime, 5u);  // from the legacy key
  EXPECT_FALSE(snapshot.failover.has_value());
  ASSERT_TRUE(snapshot.sync.has_value());
  EXPECT_EQ(snapshot.sync->mod_revision, 9);
  ASSERT_EQ(snapshot.decode_errors.size(), 2u);
  EXPECT_THAT(snapshot.decode_errors[0], HasSubstr("members/pg-1"));
  EXPECT_THAT(snapshot.decode_errors[1], HasSubstr("failover"));
}

TEST(BuildSnapshotTest, RegisteredMembersAreListedSortedAndNotAsMembers) {
  std::vector<KeyValue> keys = {
      {"pgha/members/pg-2", R"({"api_url":"http://h:8010/patroni"})", 2, 2, 0},
      {"pgha/members/pg-0", "anything", 3, 3, 0},
      {"pgha/members/", "x", 4, 4, 0},
      {"pgha/members/a/b", "x", 5, 5, 0},
      {"members/pg-0", R"({"role":"master"})", 6, 6, 77},
  };
  auto snapshot = BuildSnapshot(keys, 10);
  EXPECT_THAT(snapshot.registered_members, ElementsAre("pg-0", "pg-2"));
  ASSERT_EQ(snapshot.members.size(), 1u);
  EXPECT_TRUE(snapshot.decode_errors.empty());
}

TEST(BuildSnapshotTest, AnOddLeaderValueStillMeansLocked) {
  auto snapshot = BuildSnapshot({{"leader", "", 1, 1, 5}}, 1);
  EXPECT_TRUE(snapshot.IsLocked());
  EXPECT_EQ(snapshot.decode_errors.size(), 1u);
}

}  // namespace
}  // namespace pgha::model
