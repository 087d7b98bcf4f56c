// The router answering in place of a server that went away under a session: the client sees a
// failed transaction, leaves it, and the session goes on.
#include "router/lost_transaction.h"

#include <gtest/gtest.h>

#include <vector>

namespace pgha::router {
namespace {

Message Query(const std::string& sql) { return Message{'Q', sql + std::string(1, '\0')}; }
Message Ready(char status) { return Message{'Z', std::string(1, status)}; }
Message Parse(const std::string& sql) {
  return Message{'P', std::string(1, '\0') + sql + std::string(1, '\0') + std::string("\0\0", 2)};
}

// The messages of `bytes`, as type and (for errors) SQLSTATE or (for ReadyForQuery) status.
std::vector<std::string> Read(const std::string& bytes) {
  MessageReader reader;
  reader.Feed(bytes);
  std::vector<std::string> out;
  while (auto message = reader.Next()) {
    if (auto error = ParseErrorResponse(*message)) {
      out.push_back("E " + error->sqlstate);
    } else if (message->type == 'Z' || message->type == 'C') {
      out.push_back(std::string(1, message->type) + " " +
                    message->body.substr(0, message->body.find('\0')));
    } else {
      out.push_back(std::string(1, message->type));
    }
  }
  EXPECT_FALSE(reader.failed());
  return out;
}

using Lines = std::vector<std::string>;

TEST(LostTransactionTest, AQueryInFlightOutsideABlockFailsAndTheSessionGoesOn) {
  SessionState state;
  state.OnClientMessage(Query("INSERT INTO t VALUES (1)"));
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(Read(lost.TakeOutput()), (Lines{"E 08006", "Z I"}));
  EXPECT_TRUE(lost.over());
}

TEST(LostTransactionTest, ABlockStaysFailedUntilTheClientRollsBack) {
  SessionState state;
  state.OnClientMessage(Query("BEGIN"));
  state.OnServerMessage(Ready('T'));
  state.OnClientMessage(Query("UPDATE t SET a = 1"));
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(Read(lost.TakeOutput()), (Lines{"E 08006", "Z E"}));
  EXPECT_FALSE(lost.over());
  EXPECT_EQ(Read(lost.OnClientMessage(Query("SELECT 1"))), (Lines{"E 25P02", "Z E"}));
  EXPECT_FALSE(lost.over());
  EXPECT_EQ(Read(lost.OnClientMessage(Query("ROLLBACK"))), (Lines{"C ROLLBACK", "Z I"}));
  EXPECT_TRUE(lost.over());
}

TEST(LostTransactionTest, AnIdleBlockFailsAtTheNextQueryAndCommitOnlyRollsBack) {
  SessionState state;
  state.OnClientMessage(Query("BEGIN"));
  state.OnServerMessage(Ready('T'));
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(lost.TakeOutput(), "");
  EXPECT_EQ(Read(lost.OnClientMessage(Query("INSERT INTO t VALUES (2)"))),
            (Lines{"E 08006", "Z E"}));
  EXPECT_EQ(Read(lost.OnClientMessage(Query("SELECT 1"))), (Lines{"E 25P02", "Z E"}));
  EXPECT_EQ(Read(lost.OnClientMessage(Query("COMMIT"))), (Lines{"C ROLLBACK", "Z I"}));
  EXPECT_TRUE(lost.over());
}

TEST(LostTransactionTest, ExtendedMessagesAreSkippedUpToTheirSyncWhichIsAnswered) {
  SessionState state;
  state.OnClientMessage(Parse("SELECT 1"));
  state.OnClientMessage(Message{'B', std::string(10, '\0')});
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(Read(lost.TakeOutput()), (Lines{"E 08006"}));
  EXPECT_FALSE(lost.over());
  EXPECT_EQ(lost.OnClientMessage(Message{'E', std::string(5, '\0')}), "");
  EXPECT_EQ(Read(lost.OnClientMessage(Message{'S', ""})), (Lines{"Z I"}));
  EXPECT_TRUE(lost.over());
}

// JDBC and others roll back with Parse/Bind/Execute/Sync, not a simple query.
TEST(LostTransactionTest, AnExtendedRollbackLeavesTheFailedBlock) {
  SessionState state;
  state.OnClientMessage(Query("BEGIN"));
  state.OnServerMessage(Ready('T'));
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(Read(lost.OnClientMessage(Parse("ROLLBACK"))), (Lines{"1"}));
  EXPECT_EQ(Read(lost.OnClientMessage(Message{'B', std::string(10, '\0')})), (Lines{"2"}));
  EXPECT_EQ(Read(lost.OnClientMessage(Message{'E', std::string(5, '\0')})), (Lines{"C ROLLBACK"}));
  EXPECT_EQ(Read(lost.OnClientMessage(Message{'S', ""})), (Lines{"Z I"}));
  EXPECT_TRUE(lost.over());
}

TEST(LostTransactionTest, AnExtendedStatementInTheFailedBlockFailsAndItsSyncSaysSo) {
  SessionState state;
  state.OnClientMessage(Query("BEGIN"));
  state.OnServerMessage(Ready('T'));
  LostTransaction lost(state, "the server went away");
  EXPECT_EQ(Read(lost.OnClientMessage(Parse("SELECT 1"))), (Lines{"E 08006"}));
  EXPECT_EQ(lost.OnClientMessage(Message{'B', std::string(10, '\0')}), "");
  EXPECT_EQ(Read(lost.OnClientMessage(Message{'S', ""})), (Lines{"Z E"}));
  EXPECT_FALSE(lost.over());
}

}  // namespace
}  // namespace pgha::router
