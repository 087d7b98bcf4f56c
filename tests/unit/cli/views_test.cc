// pghactl prints what patronictl 3.0.2 printed for the same DCS contents
// (tests/compat/patroni-3.0.2/*-patronictl.txt), character for character.
#include "cli/views.h"

#include <gtest/gtest.h>

#include <sstream>

#include "config/yaml_json.h"
#include "fakes/compat_data.h"

namespace pgha::cli {
namespace {

using nlohmann::json;

model::ClusterSnapshot Snapshot(const std::string& dump) {
  return model::BuildSnapshot(testing::ReadDcsDump(dump), 100);
}

std::string Render(const Table& table, const std::string& fmt) {
  auto text = RenderTable(table, fmt);
  EXPECT_TRUE(text.ok()) << fmt;
  return text.ok() ? *text : "";
}

struct Case {
  const char* dump;
  const char* ctl;
};

class GoldenCtl : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenCtl, ListAndHistoryMatchPatronictl) {
  auto cluster = Snapshot(GetParam().dump);
  std::string file = GetParam().ctl;
  EXPECT_EQ(Render(MembersTable(cluster, "pg-ha", false, false), "pretty"),
            testing::ReadCtlOutput(file, "patronictl list"));
  EXPECT_EQ(Render(MembersTable(cluster, "pg-ha", false, false), "json"),
            testing::ReadCtlOutput(file, "patronictl list -f json"));
  EXPECT_EQ(Render(MembersTable(cluster, "pg-ha", true, false), "pretty"),
            testing::ReadCtlOutput(file, "patronictl list -e"));
  EXPECT_EQ(Render(HistoryTable(cluster), "pretty"),
            testing::ReadCtlOutput(file, "patronictl history"));
  EXPECT_EQ(Render(HistoryTable(cluster), "json"),
            testing::ReadCtlOutput(file, "patronictl history -f json"));
  EXPECT_EQ(config::JsonToYaml(cluster.config->data.raw()) + "\n",
            testing::ReadCtlOutput(file, "patronictl show-config"));
}

INSTANTIATE_TEST_SUITE_P(Patroni302, GoldenCtl,
                         ::testing::Values(Case{"initial-dcs.txt", "initial-patronictl.txt"},
                                           Case{"after-failover-dcs.txt",
                                                "after-failover-patronictl.txt"}));

TEST(ViewsTest, TopologyMatchesPatronictl) {
  auto cluster = Snapshot("initial-dcs.txt");
  EXPECT_EQ(Render(MembersTable(cluster, "pg-ha", false, true), "topology"),
            testing::ReadCtlOutput("initial-patronictl.txt", "patronictl topology"));
}

TEST(ViewsTest, TopologyFollowsReplicatefromAndSurvivesCycles) {
  model::ClusterSnapshot cluster;
  cluster.leader = model::Leader{"a", 1, 1};
  cluster.members.push_back({"a", 1, 1, {{"conn_url", "postgres://h1:5432/postgres"}}});
  cluster.members.push_back(
      {"b",
       1,
       1,
       {{"conn_url", "postgres://h2:5432/postgres"}, {"tags", {{"replicatefrom", "c"}}}}});
  cluster.members.push_back(
      {"c",
       1,
       1,
       {{"conn_url", "postgres://h3:5432/postgres"}, {"tags", {{"replicatefrom", "b"}}}}});
  Table table = MembersTable(cluster, "x", false, true);
  // b and c replicate from each other: neither reaches the leader, so both are dropped rather
  // than looping, exactly as patronictl's tree walk leaves them out.
  ASSERT_EQ(table.rows.size(), 1u);
  EXPECT_EQ(table.rows[0][1], "a");
  cluster.members[2].data["tags"] = json::object();
  table = MembersTable(cluster, "x", false, true);
  ASSERT_EQ(table.rows.size(), 3u);
  EXPECT_EQ(table.rows[1][1], "+ c");
  EXPECT_EQ(table.rows[2][1], "  + b");
  // Standard port and distinct hosts: Host is printed without the port.
  EXPECT_EQ(table.rows[0][2], "h1");
}

TEST(ViewsTest, ExtendedColumnsTagsAndServiceInfo) {
  model::ClusterSnapshot cluster;
  cluster.leader = model::Leader{"a", 1, 1};
  cluster.config = model::ClusterConfig{1, model::GlobalConfig(json{{"pause", true}})};
  cluster.members.push_back({"a",
                             1,
                             1,
                             {{"conn_url", "postgres://h:5432/postgres"},
                              {"state", "running"},
                              {"pending_restart", true},
                              {"tags", {{"nofailover", true}, {"zone", "eu"}}}}});
  cluster.members.push_back(
      {"b",
       1,
       1,
       {{"conn_url", "postgres://h:5433/postgres"},
        {"state", "running"},
        {"scheduled_restart",
         {{"schedule", "2026-12-01T10:00:00+00:00"}, {"postgres_version", "15.5"}}}}});
  Table table = MembersTable(cluster, "pg-ha", false, false);
  ASSERT_EQ(table.columns.size(), 10u);  // pending / scheduled / tags appear because used
  std::string pretty = Render(table, "pretty");
  std::vector<std::string> lines;
  std::istringstream in(pretty);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  // top, header, rule, a (two lines: tags as YAML), rule between rows, b, bottom.
  ASSERT_EQ(lines.size(), 8u) << pretty;
  EXPECT_EQ(lines[0].rfind("+ Cluster: pg-ha -", 0), 0u);
  EXPECT_NE(lines[3].find("| a      | h:5432 | Leader  | running |    |           | *  "),
            std::string::npos)
      << lines[3];
  EXPECT_NE(lines[3].find("| nofailover: true |"), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("| zone: eu         |"), std::string::npos) << lines[4];
  EXPECT_EQ(lines[5], lines[2]);  // hrules=ALL once a cell spans lines
  EXPECT_NE(lines[6].find("|   unknown |"), std::string::npos) << lines[6];
  EXPECT_NE(lines[6].find("2026-12-01T10:00:00+00:00 if version < 15.5"), std::string::npos);
  for (const auto& line : lines) {
    EXPECT_EQ(line.size(), lines[0].size()) << line;
  }
  std::string tsv = Render(table, "tsv");
  EXPECT_EQ(tsv.substr(0, tsv.find('\n')),
            "Cluster\tMember\tHost\tRole\tState\tTL\tLag in MB\tPending restart\t"
            "Scheduled restart\tTags");
  EXPECT_NE(tsv.find("\t{nofailover: true, zone: eu}\n"), std::string::npos) << tsv;
  EXPECT_EQ(ServiceInfo(cluster), std::vector<std::string>{"Maintenance mode: on"});
  json parsed = json::parse(Render(table, "json"));
  EXPECT_EQ(parsed[0]["Tags"]["zone"], "eu");
  EXPECT_FALSE(parsed[0].contains("TL"));  // empty cells are left out
  EXPECT_FALSE(RenderTable(table, "xml").ok());
}

TEST(ViewsTest, SelectMemberByRole) {
  auto cluster = Snapshot("after-failover-dcs.txt");
  ASSERT_NE(SelectMember(cluster, "leader", ""), nullptr);
  EXPECT_EQ(SelectMember(cluster, "primary", "")->name, "pg-1");
  EXPECT_EQ(SelectMember(cluster, "standby-leader", ""), nullptr);
  EXPECT_EQ(SelectMember(cluster, "replica", "")->name, "pg-0");
  EXPECT_EQ(SelectMember(cluster, "any", "pg-2")->name, "pg-2");
  EXPECT_EQ(SelectMember(cluster, "replica", "pg-1"), nullptr);
  cluster.leader.reset();
  EXPECT_EQ(SelectMember(cluster, "leader", ""), nullptr);
}

TEST(ViewsTest, DsnOfTheLeaderAMemberOrARole) {
  auto cluster = Snapshot("after-failover-dcs.txt");
  const model::Member* leader = SelectMember(cluster, "leader", "");
  ASSERT_NE(leader, nullptr);
  auto expected = "host=" + leader->host() + " port=" + std::to_string(leader->port());
  EXPECT_EQ(Dsn(cluster, "", "").value(), expected);
  EXPECT_EQ(Dsn(cluster, "primary", "").value(), expected);
  const model::Member* pg2 = SelectMember(cluster, "any", "pg-2");
  ASSERT_NE(pg2, nullptr);
  EXPECT_EQ(Dsn(cluster, "", "pg-2").value(),
            "host=" + pg2->host() + " port=" + std::to_string(pg2->port()));
  EXPECT_EQ(Dsn(cluster, "replica", "pg-2").error().message(),
            "--role and --member are mutually exclusive options");
  EXPECT_EQ(Dsn(cluster, "", "pg-9").error().message(), "Can not find a suitable member");
  cluster.leader.reset();
  EXPECT_FALSE(Dsn(cluster, "", "").ok());
}

TEST(ViewsTest, ShowConfigPrintsTheConfigKeyAsYaml) {
  auto cluster = Snapshot("after-failover-dcs.txt");
  ASSERT_TRUE(cluster.config.has_value());
  auto text = ShowConfig(cluster);
  ASSERT_TRUE(text.ok()) << text.error().message();
  auto back = config::YamlToJson(*text);
  ASSERT_TRUE(back.ok()) << *text;
  EXPECT_EQ(*back, cluster.config->data.raw());
  cluster.config.reset();
  EXPECT_EQ(ShowConfig(cluster).error().message(),
            "the cluster has no dynamic configuration in the DCS");
}

}  // namespace
}  // namespace pgha::cli
