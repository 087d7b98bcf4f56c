// pghactl list / topology / query on fakes: what they print for a golden cluster, how a watch
// repeats and ends, and how query picks the member, builds the connection and reports failures.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>

#include "cli/list.h"
#include "cli/query.h"
#include "fakes/compat_data.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_ctl.h"

namespace pgha::cli {
namespace {

using testing::FakeClock;
using testing::FakeTerminal;

model::ClusterSnapshot Golden(const std::string& dump = "initial-dcs.txt") {
  return model::BuildSnapshot(testing::ReadDcsDump(dump), 100);
}

// Reads the golden cluster under any name, and records the names asked for.
struct Reader {
  model::ClusterSnapshot cluster = Golden();
  std::vector<std::string> asked;
  int fail_after = -1;  // reads that succeed before the DCS becomes unreachable; -1: never
  ClusterReader Fn() {
    return [this](const std::string& scope) -> Result<model::ClusterSnapshot> {
      asked.push_back(scope);
      if (fail_after >= 0 && static_cast<int>(asked.size()) > fail_after) {
        return Error::Unavailable("etcd is unreachable");
      }
      return cluster;
    };
  }
};

// patronictl's local timestamps to whole seconds ("2026-12-01 00:00:00", its timestamp(0)) as
// "<time>": the local zone is the machine's.
std::string WithoutTimestamp(const std::string& text) {
  // (std::regex trips GCC 12's -Wmaybe-uninitialized in the ASan build.)
  const std::string shape = "dddd-dd-dd dd:dd:dd";
  auto at = [&](size_t start) {
    for (size_t i = 0; i < shape.size(); ++i) {
      char c = text[start + i];
      if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(c)) : c != shape[i]) {
        return false;
      }
    }
    return true;
  };
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (i + shape.size() <= text.size() && at(i)) {
      out += "<time>";
      i += shape.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

TEST(ListTest, PrintsWhatPatronictlListPrints) {
  Reader reader;
  FakeTerminal terminal;
  FakeClock clock;
  ASSERT_TRUE(ListMembers({}, "pg-ha", reader.Fn(), terminal, clock).ok());
  EXPECT_EQ(terminal.out(), testing::ReadCtlOutput("initial-patronictl.txt", "patronictl list"));
  EXPECT_EQ(reader.asked, std::vector<std::string>{"pg-ha"});
}

TEST(ListTest, TopologyAndExtendedMatchPatronictl) {
  Reader reader;
  FakeTerminal topology, extended;
  FakeClock clock;
  ASSERT_TRUE(ListMembers({.topology = true}, "pg-ha", reader.Fn(), topology, clock).ok());
  EXPECT_EQ(topology.out(),
            testing::ReadCtlOutput("initial-patronictl.txt", "patronictl topology"));
  ASSERT_TRUE(ListMembers({.extended = true}, "pg-ha", reader.Fn(), extended, clock).ok());
  EXPECT_EQ(extended.out(), testing::ReadCtlOutput("initial-patronictl.txt", "patronictl list -e"));
}

TEST(ListTest, APausedClusterSaysMaintenanceModeUnderTheTable) {
  auto keys = testing::ReadDcsDump("initial-dcs.txt");
  for (auto& kv : keys) {
    if (kv.key == "config") {
      auto config = nlohmann::json::parse(kv.value);
      config["pause"] = true;
      kv.value = config.dump();
    }
  }
  Reader reader;
  reader.cluster = model::BuildSnapshot(keys, 100);
  FakeTerminal pretty, json;
  FakeClock clock;
  ASSERT_TRUE(ListMembers({}, "pg-ha", reader.Fn(), pretty, clock).ok());
  EXPECT_EQ(pretty.out(), testing::ReadCtlOutput("initial-patronictl.txt", "patronictl list") +
                              " Maintenance mode: on\n");
  // Machine formats carry the table only.
  ASSERT_TRUE(ListMembers({.fmt = "json"}, "pg-ha", reader.Fn(), json, clock).ok());
  EXPECT_EQ(Count(json.out(), "Maintenance"), 0u);
}

TEST(ListTest, EveryNamedClusterIsReadInOrder) {
  Reader reader;
  FakeTerminal terminal;
  FakeClock clock;
  ASSERT_TRUE(ListMembers({.clusters = {"a", "b"}}, "pg-ha", reader.Fn(), terminal, clock).ok());
  EXPECT_EQ(reader.asked, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Count(terminal.out(), "+ Cluster: a "), 1u);
  EXPECT_EQ(Count(terminal.out(), "+ Cluster: b "), 1u);
}

TEST(ListTest, NoClusterNamedAndNoScopeIsSaidOnStderr) {
  Reader reader;
  FakeTerminal terminal;
  FakeClock clock;
  ASSERT_TRUE(ListMembers({}, "", reader.Fn(), terminal, clock).ok());
  EXPECT_EQ(terminal.err(), "Listing members: No cluster names were provided\n");
  EXPECT_EQ(terminal.out(), "");
  EXPECT_TRUE(reader.asked.empty());
}

TEST(ListTest, AnUnknownFormatIsAnError) {
  Reader reader;
  FakeTerminal terminal;
  FakeClock clock;
  auto status = ListMembers({.fmt = "xml"}, "pg-ha", reader.Fn(), terminal, clock);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("xml"), std::string::npos) << status.error().message();
}

TEST(WatchTest, CapitalWRepeatsEveryTwoSecondsUntilARoundFails) {
  Reader reader;
  reader.fail_after = 3;
  FakeTerminal terminal;
  FakeClock clock;
  clock.AdvanceOnSleep();
  auto started = clock.Now();
  auto status = ListMembers({.timestamp = true, .watch = {.w_flag = true}}, "pg-ha", reader.Fn(),
                            terminal, clock);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message(), "etcd is unreachable");
  EXPECT_EQ(reader.asked.size(), 4u);
  EXPECT_EQ(clock.Now() - started, std::chrono::seconds(6));
  // Each round clears the screen and prints a timestamp; three printed their table.
  EXPECT_EQ(Count(terminal.out(), "\033[H\033[2J"), 4u);
  EXPECT_EQ(Count(WithoutTimestamp(terminal.out()), "\033[H\033[2J<time>\n"), 4u);
  EXPECT_EQ(Count(terminal.out(), "| pg-0   |"), 3u);
}

TEST(WatchTest, AnIntervalIsSleptAndOneRoundWithoutWatchDoesNotClear) {
  FakeTerminal terminal;
  FakeClock clock;
  clock.AdvanceOnSleep();
  int rounds = 0;
  auto started = clock.Now();
  auto status = Watching({.interval = 0.5}, false, terminal, clock, [&]() -> Status {
    return ++rounds < 3 ? OkStatus() : Status(Error::Invalid("stop"));
  });
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(rounds, 3);
  EXPECT_EQ(clock.Now() - started, std::chrono::milliseconds(1000));
  EXPECT_EQ(terminal.out(), "");

  rounds = 0;
  ASSERT_TRUE(Watching({}, true, terminal, clock, [&]() -> Status {
                ++rounds;
                return OkStatus();
              }).ok());
  EXPECT_EQ(rounds, 1);
  EXPECT_EQ(terminal.out(), "");
}

// A member's PostgreSQL as query sees it: its recovery state, and answers or errors per SQL.
struct FakeSql {
  struct Server {
    bool in_recovery = false;
    bool reachable = true;
    bool recovery_check_fails = false;  // the role check is cancelled (statement_timeout)
  };
  std::map<std::string, Server> servers;  // by "host=... port=..." prefix of the conninfo
  std::vector<std::string> conninfos;
  std::vector<std::string> statements;

  class Session final : public SqlSession {
   public:
    Session(FakeSql& owner, Server server) : owner_(owner), server_(server) {}
    Result<postgres::ResultSet> Query(const std::string& sql) override {
      owner_.statements.push_back(sql);
      if (sql == "SELECT pg_catalog.pg_is_in_recovery()") {
        if (server_.recovery_check_fails) {
          sqlstate_ = "57014";
          return Error::Invalid("ERROR:  canceling statement due to statement timeout");
        }
        return postgres::ResultSet{{"pg_is_in_recovery"}, {{server_.in_recovery ? "t" : "f"}}};
      }
      if (sql.find("syntax error") != std::string::npos) {
        sqlstate_ = "42601";
        return Error::Invalid("ERROR:  syntax error at or near \"syntax\"");
      }
      if (sql == "lost") {
        sqlstate_.clear();
        return Error::Unavailable("server closed the connection unexpectedly\n\tThis probably...");
      }
      return postgres::ResultSet{{"n", "s"}, {{"1", std::nullopt}, {"2", "two"}}};
    }

    std::string LastSqlState() const override { return sqlstate_; }

   private:
    FakeSql& owner_;
    Server server_;
    std::string sqlstate_;
  };

  SqlConnector Fn() {
    return [this](const std::string& conninfo) -> Result<std::unique_ptr<SqlSession>> {
      conninfos.push_back(conninfo);
      for (const auto& [address, server] : servers) {
        if (conninfo.rfind(address, 0) == 0) {
          if (!server.reachable) {
            return Error::Unavailable("connection to server failed: Connection refused");
          }
          return std::unique_ptr<SqlSession>(std::make_unique<Session>(*this, server));
        }
      }
      return Error::Unavailable("no such server");
    };
  }
};

struct QueryRun {
  Reader reader;
  FakeSql sql;
  FakeTerminal terminal;
  FakeClock clock;
  QueryRun(std::vector<std::string> answers = {}) : terminal(std::move(answers)) {
    sql.servers["host='127.0.0.1' port=5432"] = {.in_recovery = false};
    sql.servers["host='127.0.0.1' port=5433"] = {.in_recovery = true};
    sql.servers["host='127.0.0.1' port=5434"] = {.in_recovery = true};
  }
  Status Run(QueryOptions options) {
    return Query(std::move(options), "pg-ha", reader.Fn(), sql.Fn(), terminal, clock);
  }
};

TEST(QueryTest, RunsOnTheLeaderByDefaultAndPrintsTsvAsPatronictl) {
  QueryRun run;
  ASSERT_TRUE(run.Run({.command = "SELECT n, s FROM t"}).ok());
  ASSERT_EQ(run.sql.conninfos.size(), 1u);
  EXPECT_EQ(run.sql.conninfos[0],
            "host='127.0.0.1' port=5432 fallback_application_name='Patroni ctl' connect_timeout=5");
  // The leader is not asked for its recovery state: the DCS names it.
  EXPECT_EQ(run.sql.statements, std::vector<std::string>{"SELECT n, s FROM t"});
  // Python's str() of a NULL.
  EXPECT_EQ(run.terminal.out(), "n\ts\n1\tNone\n2\ttwo\n");
}

TEST(QueryTest, AMemberByNameWithUserDatabaseAndPromptedPassword) {
  QueryRun run({"se'cret"});
  ASSERT_TRUE(run.Run({.member = "pg-2",
                       .command = "SELECT 1",
                       .username = "app",
                       .dbname = "shop",
                       .password_prompt = true})
                  .ok());
  EXPECT_EQ(run.terminal.err(), "Password: ");
  ASSERT_EQ(run.sql.conninfos.size(), 1u);
  EXPECT_EQ(run.sql.conninfos[0],
            "host='127.0.0.1' port=5434 fallback_application_name='Patroni ctl' connect_timeout=5"
            " user='app' password='se\\'cret' dbname='shop'");
}

TEST(QueryTest, AReplicaRoleIsCheckedOnTheServerItself) {
  QueryRun in_recovery;
  ASSERT_TRUE(in_recovery.Run({.role = "replica", .command = "SELECT 1"}).ok());
  // The first replica of the DCS, pg-1, confirms it is one, then runs the statement.
  EXPECT_EQ(in_recovery.sql.statements,
            (std::vector<std::string>{"SELECT pg_catalog.pg_is_in_recovery()", "SELECT 1"}));
  EXPECT_EQ(in_recovery.terminal.out(), "n\ts\n1\tNone\n2\ttwo\n");

  QueryRun promoted;
  // The DCS still says pg-1 is a replica; its server answers as a primary (promoted meanwhile).
  promoted.sql.servers["host='127.0.0.1' port=5433"].in_recovery = false;
  ASSERT_TRUE(promoted.Run({.role = "replica", .command = "SELECT 1"}).ok());
  EXPECT_EQ(promoted.sql.conninfos.size(), 1u);
  EXPECT_EQ(promoted.sql.statements,
            std::vector<std::string>{"SELECT pg_catalog.pg_is_in_recovery()"});
  // One line: patronictl's timestamp, a tab, and why nothing ran.
  EXPECT_EQ(WithoutTimestamp(promoted.terminal.out()),
            "<time>\tNo connection to role=replica is available\n");
}

TEST(QueryTest, AFailedRoleCheckIsALineAndTheStatementDoesNotRun) {
  QueryRun run;
  run.sql.servers["host='127.0.0.1' port=5433"].recovery_check_fails = true;
  ASSERT_TRUE(run.Run({.role = "replica", .command = "SELECT 1"}).ok());
  EXPECT_EQ(run.sql.statements, std::vector<std::string>{"SELECT pg_catalog.pg_is_in_recovery()"});
  EXPECT_EQ(WithoutTimestamp(run.terminal.out()), "<time>\tERROR, SQLSTATE: 57014\n");
}

TEST(QueryTest, AMemberThatRefusesTheConnectionIsALine) {
  QueryRun run;
  run.sql.servers["host='127.0.0.1' port=5432"].reachable = false;
  ASSERT_TRUE(run.Run({.command = "SELECT 1"}).ok());
  EXPECT_EQ(WithoutTimestamp(run.terminal.out()),
            "<time>\tERROR, SQLSTATE: connection to server failed: Connection refused\n");
}

TEST(QueryTest, AFailedStatementIsALineWithItsSqlstate) {
  QueryRun run;
  ASSERT_TRUE(run.Run({.command = "syntax error"}).ok());
  ASSERT_TRUE(run.Run({.command = "lost"}).ok());
  // Without a SQLSTATE the message stands in, on one line.
  EXPECT_EQ(WithoutTimestamp(run.terminal.out()),
            "<time>\tERROR, SQLSTATE: 42601\n"
            "<time>\tERROR, SQLSTATE: server closed the connection unexpectedly \tThis "
            "probably...\n");
}

TEST(QueryTest, AnUnknownMemberHasNoConnection) {
  QueryRun run;
  ASSERT_TRUE(run.Run({.member = "pg-9", .command = "SELECT 1"}).ok());
  EXPECT_NE(run.terminal.out().find("\tNo connection to member pg-9 is available\n"),
            std::string::npos);
  EXPECT_TRUE(run.sql.conninfos.empty());
}

TEST(QueryTest, TheSqlComesFromAFile) {
  std::string path = ::testing::TempDir() + "pghactl_query_test.sql";
  std::ofstream(path) << "SELECT n, s FROM t";
  QueryRun run;
  ASSERT_TRUE(run.Run({.file = path, .fmt = "json"}).ok());
  std::remove(path.c_str());
  EXPECT_EQ(run.sql.statements, std::vector<std::string>{"SELECT n, s FROM t"});
  EXPECT_EQ(run.terminal.out(), "[{\"n\": \"1\", \"s\": null}, {\"n\": \"2\", \"s\": \"two\"}]\n");
}

TEST(QueryTest, WrongOptionsAreErrorsAsInPatronictl) {
  QueryRun run;
  auto both = run.Run({.role = "leader", .member = "pg-0", .command = "SELECT 1"});
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.error().message(), "--role and --member are mutually exclusive options");
  auto neither = run.Run({});
  ASSERT_FALSE(neither.ok());
  EXPECT_EQ(neither.error().message(), "You need to specify either --command or --file");
  auto two_sources = run.Run({.command = "SELECT 1", .file = "/x.sql"});
  ASSERT_FALSE(two_sources.ok());
  EXPECT_EQ(two_sources.error().message(), "--file and --command are mutually exclusive options");
  auto missing = run.Run({.file = "/nonexistent/q.sql"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "cannot read /nonexistent/q.sql");
  EXPECT_TRUE(run.sql.conninfos.empty());
  EXPECT_TRUE(run.reader.asked.empty());
}

}  // namespace
}  // namespace pgha::cli
