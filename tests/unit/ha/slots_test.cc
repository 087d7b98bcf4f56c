#include "ha/slots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::ha {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

model::Member Member(const std::string& name, json tags = json::object()) {
  model::Member m;
  m.name = name;
  m.data = {{"role", "replica"}, {"state", "running"}, {"tags", std::move(tags)}};
  return m;
}

std::vector<std::string> Names(const std::map<std::string, model::ReplicationSlot>& slots) {
  std::vector<std::string> names;
  for (const auto& [name, slot] : slots) names.push_back(name);
  return names;
}

model::ClusterSnapshot Cluster(json config = json::object()) {
  model::ClusterSnapshot cluster;
  cluster.leader = model::Leader{"pg-0", 1, 1};
  cluster.config = model::ClusterConfig{1, model::GlobalConfig(std::move(config))};
  cluster.members = {Member("pg-0"), Member("pg-1", {{"replicatefrom", "pg-2"}}), Member("pg-2"),
                     Member("pg-3", {{"replicatefrom", "pg-9"}}),
                     Member("pg-4", {{"nostream", true}})};
  return cluster;
}

TEST(SlotsTest, PhysicalSlotsWhereEachMemberStreamsFrom) {
  auto cluster = Cluster();
  // The leader: members that stream from it, or whose replicatefrom names nobody.
  EXPECT_THAT(Names(DesiredSlots(cluster, "pg-0", true, false)), ElementsAre("pg_2", "pg_3"));
  EXPECT_THAT(Names(DesiredSlots(cluster, "pg-2", false, false)), ElementsAre("pg_1"));
  EXPECT_THAT(Names(DesiredSlots(cluster, "pg-1", false, false)), IsEmpty());
  // use_slots: false keeps none.
  auto off = Cluster(json{{"postgresql", {{"use_slots", false}}}});
  EXPECT_THAT(Names(DesiredSlots(off, "pg-0", true, false)), IsEmpty());
}

TEST(SlotsTest, PermanentSlotsFromTheDcsConfig) {
  // pg_0 is this node's own slot name (never created here), Bad-Name no slot name, half a
  // logical slot without its plugin.
  auto cluster = Cluster(json::parse(R"({"slots": {
      "dcs_slot_0": {"type": "logical", "database": "postgres", "plugin": "test_decoding"},
      "archiver": {"type": "physical"}, "pg_0": null, "Bad-Name": {"type": "physical"},
      "half": {"type": "logical", "database": "postgres"}}})"));
  auto leader = DesiredSlots(cluster, "pg-0", true, false);
  EXPECT_THAT(Names(leader), ElementsAre("archiver", "dcs_slot_0", "pg_2", "pg_3"));
  EXPECT_EQ(leader.at("dcs_slot_0").plugin, "test_decoding");
  // Replicas keep the logical ones (for a failover), not the physical ones; nofailover none.
  EXPECT_THAT(Names(DesiredSlots(cluster, "pg-2", false, false)),
              ElementsAre("dcs_slot_0", "pg_1"));
  EXPECT_THAT(Names(DesiredSlots(cluster, "pg-2", false, true)), ElementsAre("pg_1"));
}

TEST(SlotsTest, IgnoreSlotsMatchersNeedOnlyTheAttributesTheyName) {
  json matchers = json::parse(R"([{"name": "u0", "type": "logical", "plugin": "test_decoding"},
                                  {"database": "postgres", "plugin": "wal2json"}])");
  EXPECT_TRUE(IsIgnoredSlot(matchers, {"u0", "logical", "postgres", "test_decoding"}));
  EXPECT_FALSE(IsIgnoredSlot(matchers, {"u0", "logical", "postgres", "pgoutput"}));
  EXPECT_TRUE(IsIgnoredSlot(matchers, {"any", "logical", "postgres", "wal2json"}));
  EXPECT_FALSE(IsIgnoredSlot(matchers, {"any", "physical", "", ""}));
  EXPECT_FALSE(IsIgnoredSlot(json("not a list"), {"u0", "logical", "postgres", "test_decoding"}));
}

TEST(SlotsTest, PlanDropsUnknownKeepsIgnoredAndRecreatesTheWrongKind) {
  std::map<std::string, model::ReplicationSlot> desired = {
      {"pg_1", {"pg_1", "physical", "", ""}},
      {"dcs_slot_0", {"dcs_slot_0", "logical", "postgres", "test_decoding"}}};
  std::vector<model::ReplicationSlot> existing = {
      {"pg_1", "physical", "", ""},
      {"dummy", "logical", "postgres", "test_decoding"},
      {"kept", "logical", "postgres", "test_decoding"},
      {"dcs_slot_0", "logical", "postgres", "pgoutput"}};
  json ignore = json::parse(R"([{"name": "kept"}])");
  auto plan = PlanSlots(desired, existing, ignore, false, true);
  EXPECT_THAT(plan.drop, ElementsAre("dummy", "dcs_slot_0"));
  ASSERT_EQ(plan.create.size(), 1u);
  EXPECT_EQ(plan.create[0].plugin, "test_decoding");
  // Paused: nothing unknown is dropped.
  EXPECT_THAT(PlanSlots(desired, existing, ignore, true, true).drop, ElementsAre("dcs_slot_0"));
  // A replica cannot create a logical slot; it only drops.
  auto replica =
      PlanSlots(desired, {{"dummy", "logical", "postgres", "test_decoding"}}, ignore, false, false);
  EXPECT_THAT(replica.drop, ElementsAre("dummy"));
  ASSERT_EQ(replica.create.size(), 1u);
  EXPECT_EQ(replica.create[0].name, "pg_1");
}

TEST(SlotsTest, ReplicasCopyMissingLogicalSlotsAndAdvanceTheOnesBehind) {
  std::map<std::string, model::ReplicationSlot> desired = {
      {"pg_1", {"pg_1", "physical", "", ""}},
      {"a", {"a", "logical", "postgres", "test_decoding"}},
      {"b", {"b", "logical", "postgres", "test_decoding"}},
      {"c", {"c", "logical", "postgres", "test_decoding"}},
      {"unpublished", {"unpublished", "logical", "postgres", "test_decoding"}}};
  std::vector<model::ReplicationSlot> existing = {
      {"b", "logical", "postgres", "test_decoding", 100},
      {"c", "logical", "postgres", "test_decoding", 500}};
  auto sync = PlanLogicalSlotSync(desired, existing, {{"a", 10}, {"b", 200}, {"c", 400}});
  EXPECT_THAT(sync.copy, ElementsAre("a"));  // "unpublished": the leader has no position for it
  ASSERT_EQ(sync.advance.size(), 1u);
  EXPECT_EQ(sync.advance.at("b"), 200u);  // c is ahead already: never moved back
}

TEST(SlotsTest, SlotNamesAsPatroniDerivesThem) {
  EXPECT_EQ(model::SlotNameForMember("Pg-0.east"), "pg_0_east");
  EXPECT_EQ(model::SlotNameForMember("a b"), "au0032b");
  EXPECT_EQ(model::SlotNameForMember(std::string(70, 'x')).size(), 63u);
}

}  // namespace
}  // namespace pgha::ha
