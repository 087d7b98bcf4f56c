// pghactl pause / resume, restart, reinit, reload, flush, remove and version against a fake DCS,
// fake members and a scripted terminal: patronictl 3.0.2's choices, questions and messages.
#include "cli/member_actions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/pause.h"
#include "cli/remove.h"
#include "cli/version.h"
#include "fakes/fake_ctl.h"

namespace pgha::cli {
namespace {

using nlohmann::json;
using pgha::testing::ApiCall;
using pgha::testing::FakeTerminal;
using ::testing::HasSubstr;

// The cluster Patroni 3.0.2 left after a crash failover: pg-1 leads, pg-0 and pg-2 replicate.
struct Cluster : pgha::testing::CtlCluster {
  Cluster() : CtlCluster("after-failover-dcs.txt") {}
  void SetMemberField(const std::string& name, const std::string& field, const json& value) {
    json member = json::parse(*dcs.Value("members/" + name));
    member[field] = value;
    dcs.Put("members/" + name, member.dump());
  }
};

std::string Port(const ApiCall& call) { return call.api_url.substr(17, 4); }  // "8008".."8010"

TEST(PauseTest, PauseAsksTheLeaderFirstAndTheNextMemberWhenItIsDown) {
  Cluster c;
  c.api.SetHandler([](const ApiCall& call) -> Result<MemberResponse> {
    if (Port(call) == "8009") {
      return Error::Unavailable("connection refused");
    }
    return MemberResponse{200, "{}"};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = SetPaused(ctx, true, false);
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(*exit_code, 0);
  ASSERT_EQ(c.api.calls().size(), 2u);
  EXPECT_EQ(Port(c.api.calls()[0]), "8009");  // the leader, pg-1
  EXPECT_EQ(Port(c.api.calls()[1]), "8008");
  EXPECT_EQ(c.api.calls()[1].method, "PATCH");
  EXPECT_EQ(c.api.calls()[1].path, "/config");
  EXPECT_EQ(json::parse(c.api.calls()[1].body), (json{{"pause", true}}));
  EXPECT_EQ(terminal.out(), "Success: cluster management is paused\n");
  EXPECT_EQ(terminal.err(), "connection refused\nMember pg-1 is not accessible\n");
}

TEST(PauseTest, ResumingAClusterThatIsNotPausedIsRefused) {
  Cluster c;
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto result = SetPaused(ctx, false, false);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message(), "Cluster is not paused");
  EXPECT_TRUE(c.api.calls().empty());
}

TEST(PauseTest, WaitReadsTheMembersUntilEachShowsThePauseAndGivesUpInTime) {
  Cluster c;
  c.clock.AdvanceOnSleep();
  c.api.SetHandler([&c](const ApiCall&) -> Result<MemberResponse> {
    c.SetMemberField("pg-0", "pause", true);
    c.SetMemberField("pg-1", "pause", true);  // pg-2 never shows it
    return MemberResponse{200, "{}"};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto start = c.clock.Now();
  auto result = SetPaused(ctx, true, true);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message(), "members did not all report the change");
  EXPECT_THAT(terminal.out(),
              HasSubstr("'pause' request sent, waiting until it is recognized by all nodes\n"));
  EXPECT_EQ(c.clock.Now() - start, std::chrono::seconds(600 * 10));  // loop_wait 10

  c.SetMemberField("pg-2", "pause", true);
  c.dcs.Put("config", R"({"loop_wait":10})");
  FakeTerminal second;
  auto ctx2 = c.Context(second);
  auto waited = SetPaused(ctx2, true, true);
  ASSERT_TRUE(waited.ok()) << waited.error().message();
  EXPECT_THAT(second.out(), HasSubstr("Success: cluster management is paused\n"));
}

TEST(MemberActionsTest, RestartOfReplicasAsksOnceAndReportsEachMember) {
  Cluster c;
  c.api.SetHandler([](const ApiCall& call) -> Result<MemberResponse> {
    return Port(call) == "8008" ? MemberResponse{202, "restart scheduled"}
                                : MemberResponse{503, "restart failed"};
  });
  FakeTerminal terminal({"y"});
  auto ctx = c.Context(terminal);
  auto exit_code =
      RestartMembers(ctx, {.role = "replica", .scheduled = "2026-12-01T05:00:00+00:00"});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(*exit_code, 1);
  EXPECT_THAT(terminal.out(),
              HasSubstr("Are you sure you want to restart members pg-0, pg-2? [y/N]: y\n"
                        "Success: restart scheduled on member pg-0\n"
                        "Failed: restart for member pg-2, status code=503, (restart failed)\n"));
  auto calls = c.api.CallsTo("POST", "/restart");
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(json::parse(calls[0].body),
            (json{{"schedule", "2026-12-01T05:00:00.000000+00:00"}, {"role", "replica"}}));
}

TEST(MemberActionsTest, ChoosingMembersRefusesUnknownNamesEmptyChoicesAndANo) {
  struct Case {
    std::vector<std::string> names;
    std::string role;
    std::vector<std::string> answers;
    std::string error;
  };
  for (const auto& k : std::vector<Case>{
           {{"pg-7"}, "any", {}, "pg-7 is not a member of cluster"},
           {{"pg-0"}, "leader", {}, "No leader among provided members"},
           {{"pg-0"}, "any", {"n"}, "Aborted restart"},
       }) {
    Cluster c;
    FakeTerminal terminal(k.answers);
    auto ctx = c.Context(terminal);
    auto result = RestartMembers(ctx, {.members = k.names, .role = k.role});
    ASSERT_FALSE(result.ok()) << k.error;
    EXPECT_EQ(result.error().message(), k.error);
    EXPECT_TRUE(c.api.calls().empty());
  }
}

TEST(MemberActionsTest, ReinitWaitsUntilTheMemberRunsANewPostmaster) {
  Cluster c;
  c.clock.AdvanceOnSleep();
  int status_reads = 0;
  c.api.SetHandler([&status_reads](const ApiCall& call) -> Result<MemberResponse> {
    if (call.path == "/reinitialize") {
      return MemberResponse{200, "reinitialize started"};
    }
    ++status_reads;  // the old postmaster, then none while it clones, then a new one
    std::string body = status_reads == 1   ? R"({"state":"running","postmaster_start_time":"old"})"
                       : status_reads <= 4 ? R"({"state":"creating replica"})"
                                           : R"({"state":"running","postmaster_start_time":"new"})";
    return MemberResponse{200, body};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto start = c.clock.Now();
  auto exit_code = ReinitMembers(ctx, {.members = {"pg-2"}, .force = true, .wait = true});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_EQ(terminal.out(),
            "Success: reinitialize for member pg-2\n"
            "Waiting for reinitialize to complete on: pg-2\n"
            "Reinitialize is completed on: pg-2\n");
  EXPECT_EQ(c.clock.Now() - start, std::chrono::seconds(3));
  EXPECT_EQ(json::parse(c.api.CallsTo("POST", "/reinitialize").at(0).body),
            (json{{"force", true}}));
}

TEST(MemberActionsTest, ReloadSaysWhetherThereWasAnythingToApply) {
  Cluster c;
  c.api.SetHandler([](const ApiCall& call) -> Result<MemberResponse> {
    return Port(call) == "8009" ? MemberResponse{202, ""} : MemberResponse{200, ""};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = ReloadMembers(ctx, {}, "any", true);
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(terminal.out(),
            "No changes to apply on member pg-0\n"
            "Reload request received for member pg-1 and will be processed within 10 seconds\n"
            "No changes to apply on member pg-2\n");
}

TEST(MemberActionsTest, FlushOfAScheduledSwitchoverFallsBackToTheKeyWhenNoMemberAnswers) {
  Cluster c;
  FakeTerminal nothing;
  auto ctx = c.Context(nothing);
  ASSERT_TRUE(Flush(ctx, "switchover", {}, "any", true).ok());
  EXPECT_EQ(nothing.out(), "No pending scheduled switchover\n");

  c.dcs.Put("failover", R"({"leader":"pg-1","scheduled_at":"2026-12-01T05:00:00+00:00"})");
  FakeTerminal terminal;
  auto ctx2 = c.Context(terminal);
  auto exit_code = Flush(ctx2, "switchover", {}, "any", true);
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 0);
  auto calls = c.api.CallsTo("DELETE", "/switchover");
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(Port(calls[0]), "8009");  // the leader first
  EXPECT_THAT(terminal.out(), HasSubstr("Failed: member=pg-1, connection refused\n"));
  EXPECT_THAT(terminal.out(),
              HasSubstr(" Could not find any accessible member of cluster pg-ha\n"));
  EXPECT_EQ(c.dcs.Value("failover"), "{}");
}

TEST(MemberActionsTest, FlushOfRestartsSkipsMembersWithoutOne) {
  Cluster c;
  c.SetMemberField("pg-0", "scheduled_restart", json{{"schedule", "2026-12-01T05:00:00+00:00"}});
  c.api.SetHandler([](const ApiCall&) -> Result<MemberResponse> {
    return MemberResponse{200, ""};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  ASSERT_TRUE(Flush(ctx, "restart", {}, "any", true).ok());
  EXPECT_EQ(terminal.out(),
            "Success: flush scheduled restart for member pg-0\n"
            "No scheduled restart for member pg-1\n"
            "No scheduled restart for member pg-2\n");
  ASSERT_EQ(c.api.calls().size(), 1u);
  EXPECT_EQ(c.api.calls()[0].method, "DELETE");
  auto bad = Flush(ctx, "everything", {}, "any", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "flush needs a target: restart or switchover");
}

TEST(RemoveTest, EveryKeyGoesOnlyAfterThreeRightAnswers) {
  Cluster c;
  FakeTerminal wrong_leader({"pg-ha", "Yes I am aware", "pg-0"});
  auto ctx = c.Context(wrong_leader);
  auto refused = RemoveCluster(ctx);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), "You did not specify the current leader of the cluster");
  EXPECT_TRUE(c.dcs.Value("leader").has_value());

  FakeTerminal right({"pg-ha", "Yes I am aware", "pg-1"});
  auto ctx2 = c.Context(right);
  auto removed = RemoveCluster(ctx2);
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_THAT(right.out(), HasSubstr("Please confirm the cluster name to remove: pg-ha\n"
                                     "You are about to remove all information in DCS for pg-ha, "
                                     "please type: \"Yes I am aware\": Yes I am aware\n"));
  EXPECT_FALSE(c.dcs.Value("leader").has_value());
  EXPECT_FALSE(c.dcs.Value("members/pg-0").has_value());
}

TEST(VersionTest, EachMembersAgentAndPostgresVersion) {
  Cluster c;
  c.api.SetHandler([](const ApiCall& call) -> Result<MemberResponse> {
    if (Port(call) == "8010") {
      return MemberResponse{200, "not json"};
    }
    return MemberResponse{200, R"({"patroni":{"version":"3.0.2"},"server_version":150020})"};
  });
  FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  ASSERT_TRUE(PrintMemberVersions(ctx, {}).ok());
  EXPECT_EQ(terminal.out(),
            "pg-0: Patroni 3.0.2 PostgreSQL 15.20\n"
            "pg-1: Patroni 3.0.2 PostgreSQL 15.20\n"
            "pg-2: failed to get version: unreadable answer\n");
}

}  // namespace
}  // namespace pgha::cli
