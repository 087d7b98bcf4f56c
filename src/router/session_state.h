// What the router knows of one client session from the protocol messages going both ways, for
// the session mode: whether the session can be moved to another server right now, what must be
// set up again there, and why it can never move (it is pinned).
//
// A session is pinned by state that lives only in its server backend and cannot be rebuilt by
// replaying statements: a temporary table, LISTEN, a session-level advisory lock, a cursor
// WITH HOLD, SET SESSION AUTHORIZATION / SET ROLE, a PREPARE or a SET inside a multi-statement
// query (they cannot be replayed on their own). The SQL is matched on keywords, not parsed: a
// keyword inside a string literal may pin a session that did not need it, never the other way.
//
// Thread-safety: none; one session's messages come from one thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "router/pg_messages.h"

namespace pgha::router {

// Whether `sql` is one statement that ends a transaction block (ROLLBACK, ABORT, COMMIT, END,
// with or without WORK/TRANSACTION and a semicolon): what a client sends to leave a failed block.
bool EndsTransactionBlock(std::string_view sql);

class SessionState {
 public:
  void OnClientMessage(char type, std::string_view body);
  void OnServerMessage(char type, std::string_view body);
  void OnClientMessage(const Message& message) { OnClientMessage(message.type, message.body); }
  void OnServerMessage(const Message& message) { OnServerMessage(message.type, message.body); }
  // The server went away: what was under way there is gone (no transaction, nothing in flight);
  // the settings and prepared statements to replay stay.
  void ForgetServer();

  // 'I' idle, 'T' in a transaction block, 'E' in a failed one (the last ReadyForQuery's).
  char transaction_status() const { return transaction_status_; }
  // Between transactions with nothing in flight: the moment a session can be moved.
  bool AtRest() const {
    return transaction_status_ == 'I' && queries_in_flight_ == 0 && !in_copy_ && !unsynced_;
  }
  // Simple queries and Syncs sent and not yet answered by ReadyForQuery.
  int queries_in_flight() const { return queries_in_flight_; }
  // Extended-protocol messages (Parse, Bind, Execute, ...) sent since the last Sync.
  bool unsynced() const { return unsynced_; }
  // A COPY is under way (the server's CopyIn/Out/BothResponse, until its ReadyForQuery).
  bool in_copy() const { return in_copy_; }
  // Why the session cannot be moved at all (empty: it can).
  const std::optional<std::string>& pinned_reason() const { return pinned_reason_; }

  // Settings to replay on a new server, in order: "SET name TO value" statements as the client
  // sent them (a RESET removes the name's).
  std::vector<std::string> ReplayStatements() const;
  // Named prepared statements (Parse bodies by name) to parse again on a new server.
  const std::map<std::string, std::string>& prepared_statements() const { return prepared_; }
  // The server's ParameterStatus values.
  const std::map<std::string, std::string>& parameters() const { return parameters_; }

 private:
  void OnSql(const std::string& sql);
  void Pin(std::string reason);
  // Sets the statement replayed for `name` (empty: none).
  void ApplySetting(std::string name, std::string statement);

  char transaction_status_ = 'I';
  int queries_in_flight_ = 0;  // simple queries and Syncs not yet answered by ReadyForQuery
  bool in_copy_ = false;
  bool unsynced_ = false;
  std::optional<std::string> pinned_reason_;
  std::vector<std::pair<std::string, std::string>> settings_;  // lower-cased name, statement
  std::vector<std::pair<std::string, std::string>> pending_settings_;  // inside a block
  std::map<std::string, std::string> prepared_;
  std::map<std::string, std::string> parameters_;
};

}  // namespace pgha::router
