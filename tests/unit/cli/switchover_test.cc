// pghactl switchover / failover against a fake DCS, fake members and a scripted terminal: the
// output is patronictl 3.0.2's (tests/compat/patroni-3.0.2/switchover-defaults-1-patronictl.txt),
// and every refusal patronictl makes is made before anything is asked of a member.
#include "cli/switchover.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <functional>

#include "common/time_format.h"
#include "fakes/compat_data.h"
#include "fakes/fake_ctl.h"

namespace pgha::cli {
namespace {

using nlohmann::json;
using pgha::testing::ApiCall;
using ::testing::HasSubstr;

std::string MemberValue(int port, const std::string& role, const std::string& state,
                        std::optional<int> timeline, std::optional<int64_t> lsn) {
  json v = {{"conn_url", "postgres://127.0.0.1:" + std::to_string(5432 + port) + "/postgres"},
            {"api_url", "http://127.0.0.1:" + std::to_string(8008 + port) + "/patroni"},
            {"state", state},
            {"role", role},
            {"version", "3.0.2"}};
  if (lsn) v["xlog_location"] = *lsn;
  if (timeline) v["timeline"] = *timeline;
  return v.dump();
}

// The cluster of the golden file: pg-2 leads on timeline 14.
struct Cluster : pgha::testing::CtlCluster {
  Cluster() : CtlCluster("") {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    dcs.Put("config", R"({"ttl":30,"loop_wait":10,"retry_timeout":10})");
    dcs.Put("leader", "pg-2");
    dcs.Put("members/pg-0", MemberValue(0, "replica", "running", 14, 251658400));
    dcs.Put("members/pg-1", MemberValue(1, "replica", "running", 14, 251658400));
    dcs.Put("members/pg-2", MemberValue(2, "master", "running", 14, 251658400));
  }
  // What the members do when the leader accepts a switchover to pg-1.
  void SwitchOverTo1() {
    dcs.Put("leader", "pg-1");
    dcs.Put("members/pg-1", MemberValue(1, "master", "running", 15, 251658560));
    dcs.Put("members/pg-2", MemberValue(2, "replica", "stopping", std::nullopt, std::nullopt));
  }
};

std::string ReplaceFirstTimestamp(std::string text, const std::string& with) {
  // "2026-11-25 19:53:34.02203 Successfully..." at the start of a line.
  size_t at = text.find("\n20");
  return at == std::string::npos ? text : text.replace(at + 1, 25, with);
}

TEST(SwitchoverTest, ForcedSwitchoverPrintsWhatPatronictlPrinted) {
  Cluster c;
  c.api.SetHandler([&c](const ApiCall&) -> Result<MemberResponse> {
    c.SwitchOverTo1();
    return MemberResponse{200, R"(Successfully switched over to "pg-1")"};
  });
  pgha::testing::FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kSwitchover, {.force = true});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(*exit_code, 0);
  std::string golden = pgha::testing::ReadCompatText("switchover-defaults-1-patronictl.txt");
  EXPECT_EQ(terminal.out(), ReplaceFirstTimestamp(golden, LocalTimestamp(c.clock.WallNow())));
  ASSERT_EQ(c.api.calls().size(), 1u);
  EXPECT_EQ(c.api.calls()[0].api_url, "http://127.0.0.1:8010/patroni");
  EXPECT_EQ(c.api.calls()[0].path, "/switchover");
  EXPECT_EQ(json::parse(c.api.calls()[0].body),
            (json{{"leader", "pg-2"}, {"candidate", nullptr}, {"scheduled_at", nullptr}}));
}

TEST(SwitchoverTest, LocalTimestampHasPatronictlsFiveFractionDigits) {
  ::setenv("TZ", "UTC", 1);
  ::tzset();
  auto at = ParseIsoTimestamp("2026-11-25T19:53:34.022031+00:00");
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(LocalTimestamp(*at), "2026-11-25 19:53:34.02203");
}

TEST(SwitchoverTest, PromptsTakeTheirDefaultsAndTheAnswerIsConfirmed) {
  Cluster c;
  c.api.SetHandler([](const ApiCall&) -> Result<MemberResponse> {
    return MemberResponse{200, R"(Successfully switched over to "pg-1")"};
  });
  pgha::testing::FakeTerminal terminal({"", "pg-1", "", "y"});
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kSwitchover, {});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_THAT(terminal.out(), HasSubstr("Primary [pg-2]: \n"));
  EXPECT_THAT(terminal.out(), HasSubstr("Candidate ['pg-0', 'pg-1'] []: pg-1\n"));
  EXPECT_THAT(terminal.out(), HasSubstr("When should the switchover take place (e.g. "
                                        "2026-12-01T01:00 )  [now]: \n"));
  EXPECT_THAT(terminal.out(), HasSubstr("Are you sure you want to switchover cluster pg-ha, "
                                        "demoting current leader pg-2? [y/N]: y\n"));
  ASSERT_EQ(c.api.calls().size(), 1u);
  EXPECT_EQ(json::parse(c.api.calls()[0].body)["candidate"], "pg-1");
}

TEST(SwitchoverTest, ScheduledSwitchoverSendsTheTimeAndAsksAboutIt) {
  Cluster c;
  c.api.SetHandler([](const ApiCall&) -> Result<MemberResponse> {
    return MemberResponse{202, "Switchover scheduled"};
  });
  pgha::testing::FakeTerminal terminal({"y"});
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kSwitchover,
                               {.leader = "pg-2",
                                .candidate = "pg-0",
                                .scheduled = "2026-12-01T03:30",
                                .scheduled_given = true});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_THAT(
      terminal.out(),
      HasSubstr("Are you sure you want to schedule switchover of cluster pg-ha at "
                "2026-12-01T03:30:00.000000+00:00, demoting current leader pg-2? [y/N]: y"));
  EXPECT_EQ(json::parse(c.api.calls().at(0).body)["scheduled_at"],
            "2026-12-01T03:30:00.000000+00:00");
  EXPECT_THAT(terminal.out(), HasSubstr(" Switchover scheduled\n"));
}

struct Refusal {
  Handover kind;
  HandoverOptions options;
  std::vector<std::string> answers;
  std::string error;
};

TEST(SwitchoverTest, RefusesWhatPatronictlRefusesBeforeAskingAMember) {
  std::vector<Refusal> cases = {
      {Handover::kSwitchover,
       {.leader = "pg-0", .force = true},
       {},
       "Member pg-0 is not the leader of cluster pg-ha"},
      {Handover::kSwitchover,
       {.candidate = "pg-2", .force = true},
       {},
       "Switchover target and source are the same."},
      {Handover::kSwitchover,
       {.candidate = "pg-9", .force = true},
       {},
       "Member pg-9 does not exist in cluster pg-ha"},
      {Handover::kFailover,
       {.force = true},
       {},
       "Failover could be performed only to a specific candidate"},
      {Handover::kSwitchover,
       {.candidate = "pg-1", .scheduled = "tomorrow", .force = true},
       {},
       "Unable to parse scheduled timestamp (tomorrow). It should be in an unambiguous format "
       "(e.g. ISO 8601)"},
      {Handover::kSwitchover,
       {.leader = "pg-2", .candidate = "pg-1", .scheduled_given = true},
       {"n"},
       "Aborting switchover"},
      {Handover::kSwitchover, {}, {}, "Aborted!"},  // end of input at the first prompt
  };
  for (const auto& r : cases) {
    Cluster c;
    pgha::testing::FakeTerminal terminal(r.answers);
    auto ctx = c.Context(terminal);
    auto result = RunHandover(ctx, r.kind, r.options);
    ASSERT_FALSE(result.ok()) << r.error;
    EXPECT_EQ(result.error().message(), r.error);
    EXPECT_TRUE(c.api.calls().empty()) << r.error;
    EXPECT_FALSE(c.dcs.Value("failover").has_value()) << r.error;
  }
}

TEST(SwitchoverTest, NoLeaderNoCandidatesAndPausedSchedulesAreRefused) {
  struct Case {
    std::function<void(Cluster&)> arrange;
    HandoverOptions options;
    std::string error;
  };
  std::vector<Case> cases = {
      {[](Cluster& c) { c.dcs.Delete("leader"); }, {.force = true}, "This cluster has no leader"},
      {[](Cluster& c) {
         for (std::string name : {"members/pg-0", "members/pg-1"}) {
           json tagged = json::parse(*c.dcs.Value(name));
           tagged["tags"] = {{"nofailover", true}};
           c.dcs.Put(name, tagged.dump());
         }
       },
       {.force = true},
       "No candidates found to switchover to"},
      {[](Cluster& c) {
         c.dcs.Put("config", R"({"ttl":30,"loop_wait":10,"retry_timeout":10,"pause":true})");
       },
       {.candidate = "pg-1",
        .scheduled = "2026-12-01T03:30",
        .scheduled_given = true,
        .force = true},
       "Can't schedule switchover in the paused state"},
  };
  for (const auto& k : cases) {
    Cluster c;
    k.arrange(c);
    pgha::testing::FakeTerminal terminal;
    auto ctx = c.Context(terminal);
    auto result = RunHandover(ctx, Handover::kSwitchover, k.options);
    ASSERT_FALSE(result.ok()) << k.error;
    EXPECT_EQ(result.error().message(), k.error);
    EXPECT_TRUE(c.api.calls().empty()) << k.error;
  }
}

TEST(SwitchoverTest, AFailoverWithoutALeaderGoesToTheCandidate) {
  Cluster c;
  c.dcs.Delete("leader");
  c.api.SetHandler([](const ApiCall&) -> Result<MemberResponse> {
    return MemberResponse{200, R"(Successfully failed over to "pg-0")"};
  });
  pgha::testing::FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kFailover, {.candidate = "pg-0", .force = true});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  ASSERT_EQ(c.api.calls().size(), 1u);
  EXPECT_EQ(c.api.calls()[0].api_url, "http://127.0.0.1:8008/patroni");
  EXPECT_EQ(c.api.calls()[0].path, "/failover");
  EXPECT_EQ(json::parse(c.api.calls()[0].body),
            (json{{"leader", nullptr}, {"candidate", "pg-0"}, {"scheduled_at", nullptr}}));
}

TEST(SwitchoverTest, ARefusalByTheLeaderIsPrintedWithExitStatusOne) {
  Cluster c;
  c.api.SetHandler([](const ApiCall&) -> Result<MemberResponse> {
    return MemberResponse{412, "candidate name does not match with sync_standby"};
  });
  pgha::testing::FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kSwitchover, {.candidate = "pg-1", .force = true});
  ASSERT_TRUE(exit_code.ok());
  EXPECT_EQ(*exit_code, 1);
  EXPECT_THAT(terminal.out(), HasSubstr("Switchover failed, details: 412, candidate name does "
                                        "not match with sync_standby\n"));
  EXPECT_FALSE(c.dcs.Value("failover").has_value());
}

TEST(SwitchoverTest, WithoutAnAnsweringMemberTheFailoverKeyIsWritten) {
  Cluster c;  // no handler: every member refuses the connection
  pgha::testing::FakeTerminal terminal;
  auto ctx = c.Context(terminal);
  auto exit_code = RunHandover(ctx, Handover::kSwitchover, {.candidate = "pg-1", .force = true});
  ASSERT_TRUE(exit_code.ok()) << exit_code.error().message();
  EXPECT_EQ(*exit_code, 0);
  EXPECT_THAT(terminal.out(),
              HasSubstr(" Could not switchover using Patroni api, falling back to DCS\n"));
  ASSERT_TRUE(c.dcs.Value("failover").has_value());
  EXPECT_EQ(json::parse(*c.dcs.Value("failover")), (json{{"leader", "pg-2"}, {"member", "pg-1"}}));
}

}  // namespace
}  // namespace pgha::cli
