// What the session mode learns of a session from its messages: when it is at rest, what to
// replay on a new server, and what pins it.
#include "router/session_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;

Message Query(const std::string& sql) { return Message{'Q', sql + std::string(1, '\0')}; }
Message Ready(char status) { return Message{'Z', std::string(1, status)}; }
Message Complete(const std::string& tag) { return Message{'C', tag + std::string(1, '\0')}; }
Message Parse(const std::string& name, const std::string& sql) {
  return Message{'P',
                 name + std::string(1, '\0') + sql + std::string(1, '\0') + std::string("\0\0", 2)};
}

// A simple query and its answers.
void RunQuery(SessionState& session, const std::string& sql, const std::string& tag, char status) {
  session.OnClientMessage(Query(sql));
  session.OnServerMessage(Complete(tag));
  session.OnServerMessage(Ready(status));
}

TEST(SessionStateTest, AtRestOnlyBetweenTransactionsWithNothingInFlight) {
  SessionState session;
  EXPECT_TRUE(session.AtRest());
  session.OnClientMessage(Query("SELECT 1"));
  EXPECT_FALSE(session.AtRest());
  session.OnServerMessage(Ready('I'));
  EXPECT_TRUE(session.AtRest());
  RunQuery(session, "BEGIN", "BEGIN", 'T');
  EXPECT_FALSE(session.AtRest());
  EXPECT_EQ(session.transaction_status(), 'T');
  RunQuery(session, "SELECT 1/0", "", 'E');
  EXPECT_EQ(session.transaction_status(), 'E');
  RunQuery(session, "ROLLBACK", "ROLLBACK", 'I');
  EXPECT_TRUE(session.AtRest());
  // COPY: not at rest until the ReadyForQuery that ends it.
  session.OnClientMessage(Query("COPY t FROM STDIN"));
  session.OnServerMessage(Message{'G', std::string(3, '\0')});
  EXPECT_FALSE(session.AtRest());
  session.OnServerMessage(Complete("COPY 3"));
  session.OnServerMessage(Ready('I'));
  EXPECT_TRUE(session.AtRest());
  EXPECT_FALSE(session.pinned_reason().has_value());
}

// Parse, Bind and Execute go before their Sync: a session between them has sent half a query,
// which a new server would never see.
TEST(SessionStateTest, AnExtendedQueryIsInFlightFromItsFirstMessageNotOnlyFromItsSync) {
  SessionState session;
  session.OnClientMessage(Parse("", "SELECT 1"));
  EXPECT_FALSE(session.AtRest());
  EXPECT_TRUE(session.unsynced());
  session.OnClientMessage(Message{'B', std::string(10, '\0')});
  session.OnClientMessage(Message{'E', std::string(5, '\0')});
  EXPECT_FALSE(session.AtRest());
  session.OnClientMessage(Message{'S', ""});
  EXPECT_FALSE(session.unsynced());
  EXPECT_EQ(session.queries_in_flight(), 1);
  EXPECT_FALSE(session.AtRest());
  session.OnServerMessage(Ready('I'));
  EXPECT_TRUE(session.AtRest());
}

TEST(SessionStateTest, OnlyAStatementThatEndsATransactionBlockEndsOne) {
  EXPECT_TRUE(EndsTransactionBlock("ROLLBACK"));
  EXPECT_TRUE(EndsTransactionBlock("  rollback ; "));
  EXPECT_TRUE(EndsTransactionBlock("ABORT"));
  EXPECT_TRUE(EndsTransactionBlock("commit work"));
  EXPECT_TRUE(EndsTransactionBlock("END TRANSACTION;"));
  EXPECT_FALSE(EndsTransactionBlock("ROLLBACK TO SAVEPOINT a"));
  EXPECT_FALSE(EndsTransactionBlock("SELECT 1; ROLLBACK"));
  EXPECT_FALSE(EndsTransactionBlock("INSERT INTO t VALUES (1)"));
  EXPECT_FALSE(EndsTransactionBlock(""));
}

TEST(SessionStateTest, SetsAreReplayedInOrderAndResetForgetsThem) {
  SessionState session;
  RunQuery(session, "SET search_path TO app, public", "SET", 'I');
  RunQuery(session, "set statement_timeout = '5s';", "SET", 'I');
  RunQuery(session, "SET SESSION application_name = 'web'", "SET", 'I');
  RunQuery(session, "SET search_path TO other", "SET", 'I');  // replaces the first
  RunQuery(session, "RESET application_name", "RESET", 'I');
  RunQuery(session, "SET LOCAL work_mem = '1MB'", "SET", 'I');  // lasts one transaction: not kept
  EXPECT_THAT(session.ReplayStatements(),
              ElementsAre("set statement_timeout = '5s'", "SET search_path TO other"));
  RunQuery(session, "RESET ALL", "RESET", 'I');
  EXPECT_THAT(session.ReplayStatements(), IsEmpty());
  EXPECT_FALSE(session.pinned_reason().has_value());
}

TEST(SessionStateTest, ASetInsideATransactionCountsOnlyIfItCommits) {
  SessionState session;
  RunQuery(session, "BEGIN", "BEGIN", 'T');
  RunQuery(session, "SET work_mem = '8MB'", "SET", 'T');
  RunQuery(session, "ROLLBACK", "ROLLBACK", 'I');
  EXPECT_THAT(session.ReplayStatements(), IsEmpty());
  RunQuery(session, "BEGIN", "BEGIN", 'T');
  RunQuery(session, "SET work_mem = '16MB'", "SET", 'T');
  RunQuery(session, "COMMIT", "COMMIT", 'I');
  EXPECT_THAT(session.ReplayStatements(), ElementsAre("SET work_mem = '16MB'"));
}

TEST(SessionStateTest, NamedPreparedStatementsAreKeptUntilClosed) {
  SessionState session;
  session.OnClientMessage(Parse("get_user", "SELECT * FROM users WHERE id = $1"));
  session.OnClientMessage(Parse("", "SELECT 1"));  // unnamed: not kept
  session.OnClientMessage(Parse("other", "SELECT 2"));
  session.OnClientMessage(Message{'S', ""});
  EXPECT_FALSE(session.AtRest());
  session.OnServerMessage(Ready('I'));
  EXPECT_TRUE(session.AtRest());
  EXPECT_EQ(session.prepared_statements().size(), 2u);
  EXPECT_EQ(session.prepared_statements().count("get_user"), 1u);
  session.OnClientMessage(Message{'C', std::string("Sother\0", 7)});
  RunQuery(session, "DEALLOCATE get_user", "DEALLOCATE", 'I');
  EXPECT_THAT(session.prepared_statements(), IsEmpty());
}

TEST(SessionStateTest, StateThatLivesOnlyInTheBackendPinsTheSession) {
  struct Case {
    const char* sql;
    const char* reason;
  };
  for (const Case& c : std::vector<Case>{
           {"CREATE TEMP TABLE t (id int)", "a temporary table"},
           {"create temporary table t as select 1", "a temporary table"},
           {"SELECT * INTO TEMP t FROM x", "a temporary table"},
           {"LISTEN jobs", "LISTEN"},
           {"SELECT pg_advisory_lock(42)", "a session-level advisory lock"},
           {"select pg_try_advisory_lock(1, 2)", "a session-level advisory lock"},
           {"DECLARE c CURSOR WITH HOLD FOR SELECT 1", "a cursor WITH HOLD"},
           {"SET SESSION AUTHORIZATION bob", "SET SESSION AUTHORIZATION or SET ROLE"},
           {"SET ROLE admin", "SET SESSION AUTHORIZATION or SET ROLE"},
           {"PREPARE q AS SELECT 1", "a PREPARE statement"},
           {"SELECT 1; SET work_mem = '1MB'", "a SET inside a multi-statement query"},
       }) {
    SessionState session;
    RunQuery(session, c.sql, "X", 'I');
    EXPECT_THAT(session.pinned_reason(), Optional(std::string(c.reason))) << c.sql;
  }
  // Transaction-level locks and a quoted semicolon do not pin.
  SessionState session;
  RunQuery(session, "SELECT pg_advisory_xact_lock(42)", "SELECT 1", 'I');
  RunQuery(session, "SET application_name = 'a;b'", "SET", 'I');
  EXPECT_FALSE(session.pinned_reason().has_value());
  EXPECT_THAT(session.ReplayStatements(), ElementsAre("SET application_name = 'a;b'"));
}

TEST(SessionStateTest, ParameterStatusIsKept) {
  SessionState session;
  session.OnServerMessage(Message{'S', std::string("TimeZone\0UTC\0", 13)});
  session.OnServerMessage(Message{'S', std::string("TimeZone\0Europe/Paris\0", 22)});
  EXPECT_EQ(session.parameters().at("TimeZone"), "Europe/Paris");
  // Malformed bodies are taken as far as they go, never read past.
  session.OnServerMessage(Message{'S', ""});
  session.OnClientMessage(Message{'P', ""});
  session.OnClientMessage(Message{'C', ""});
  session.OnServerMessage(Message{'Z', ""});
}

}  // namespace
}  // namespace pgha::router
