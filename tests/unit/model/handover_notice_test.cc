// pgha/handover and pgha/routers/<name>: what the leader and the routers write, how a snapshot
// reads them, and which routers a leader still waits for.
#include "model/handover_notice.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "model/cluster.h"

namespace pgha::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(HandoverNoticeTest, RoundTrips) {
  HandoverNotice notice;
  notice.leader = "pg-0";
  notice.candidate = "pg-1";
  notice.reason = HandoverReason::kSwitchover;
  notice.wait_seconds = 6;
  std::string value = EncodeHandoverNotice(notice);
  EXPECT_EQ(value, R"({"leader":"pg-0","candidate":"pg-1","reason":"switchover","wait":6.0})");
  auto decoded = DecodeHandoverNotice(value);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(decoded->leader, "pg-0");
  EXPECT_EQ(decoded->candidate, "pg-1");
  EXPECT_EQ(decoded->reason, HandoverReason::kSwitchover);
  EXPECT_EQ(decoded->wait_seconds, 6);

  notice.candidate = "";
  notice.reason = HandoverReason::kShutdown;
  decoded = DecodeHandoverNotice(EncodeHandoverNotice(notice));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->candidate, "");
  EXPECT_EQ(decoded->reason, HandoverReason::kShutdown);
}

TEST(HandoverNoticeTest, BadValuesAreRefusedWithTheReason) {
  for (const auto& [value, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "handover notice"},
           {"[]", "not a JSON object"},
           {R"({"reason":"switchover"})", "no leader"},
           {R"({"leader":"pg-0"})", "no reason"},
           {R"({"leader":"pg-0","reason":"reboot"})", "'reboot'"},
           {R"({"leader":"pg-0","reason":"shutdown","wait":-1})", "wait"},
           {R"({"leader":"pg-0","reason":"shutdown","candidate":3})", "candidate"},
       }) {
    auto decoded = DecodeHandoverNotice(value);
    ASSERT_FALSE(decoded.ok()) << value;
    EXPECT_THAT(decoded.error().message(), HasSubstr(why)) << value;
  }
}

TEST(RouterPresenceTest, RoundTripsAndRefusesWhatIsNotACount) {
  auto decoded = DecodeRouterPresence("r1", EncodeRouterPresence({"r1", 17}));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->name, "r1");
  EXPECT_EQ(decoded->acknowledged, 17);
  EXPECT_FALSE(DecodeRouterPresence("r1", R"({"acknowledged":"17"})").ok());
  EXPECT_FALSE(DecodeRouterPresence("r1", "17").ok());
}

TEST(RouterPresenceTest, ALeaderWaitsForEveryRouterBehindItsNotice) {
  std::vector<RouterPresence> routers = {{"a", 12}, {"b", 11}, {"c", 0}, {"d", 30}};
  EXPECT_THAT(RoutersYetToAcknowledge(routers, 12), ElementsAre("b", "c"));
  EXPECT_THAT(RoutersYetToAcknowledge(routers, 0), IsEmpty());
  EXPECT_THAT(RoutersYetToAcknowledge({}, 12), IsEmpty()) << "no router: nobody to wait for";
}

TEST(HandoverNoticeTest, ASnapshotReadsTheNoticeAndTheRouters) {
  std::vector<KeyValue> keys = {
      {"pgha/handover", R"({"leader":"pg-0","reason":"shutdown","wait":6})", 40, 41, 77},
      {"pgha/routers/zeta", R"({"acknowledged":41})", 5, 42, 90},
      {"pgha/routers/alpha", R"({"acknowledged":0})", 6, 6, 91},
      {"pgha/routers/bad", "nonsense", 7, 7, 92},
      {"pgha/routers/", "x", 8, 8, 0},
      {"pgha/routers/a/b", "x", 9, 9, 0},
  };
  auto snapshot = BuildSnapshot(keys, 50);
  ASSERT_TRUE(snapshot.handover.has_value());
  EXPECT_EQ(snapshot.handover->leader, "pg-0");
  EXPECT_EQ(snapshot.handover->mod_revision, 41) << "the notice's identity";
  ASSERT_EQ(snapshot.routers.size(), 2u);
  EXPECT_EQ(snapshot.routers[0].name, "alpha");
  EXPECT_EQ(snapshot.routers[1].name, "zeta");
  EXPECT_EQ(snapshot.routers[1].acknowledged, 41);
  ASSERT_EQ(snapshot.decode_errors.size(), 1u);
  EXPECT_THAT(snapshot.decode_errors[0], HasSubstr("pgha/routers/bad"));
  EXPECT_TRUE(snapshot.members.empty());

  auto broken = BuildSnapshot({{"pgha/handover", "{", 1, 1, 0}}, 2);
  EXPECT_FALSE(broken.handover.has_value());
  EXPECT_EQ(broken.decode_errors.size(), 1u);
}

}  // namespace
}  // namespace pgha::model
