// What a session-mode client is told when the server under its session goes away (a crash, a
// transaction that ran past pause_timeout) while something was under way there: the router
// answers in the server's place, as PostgreSQL would have answered a transaction that failed,
// so that the client's own error handling (ROLLBACK, retry) runs and the session carries on on
// the next server. Nothing that was under way is sent again: its work is gone.
//
// - Each query in flight gets an ErrorResponse (08006, with the reason) and a ReadyForQuery.
// - Extended-protocol messages sent without their Sync yet are skipped up to the Sync, which is
//   answered, as PostgreSQL skips them after an error.
// - A session inside a transaction block stays in a failed block ('E'), which only ROLLBACK,
//   ABORT, COMMIT or END leaves (each answered "ROLLBACK", as PostgreSQL answers them there);
//   the first statement there gets the reason (08006) if nothing in flight did, anything after
//   it 25P02, PostgreSQL's "current transaction is aborted".
//
// Thread-safety: none; one session's messages come from one thread.
#pragma once

#include <string>

#include "router/pg_messages.h"
#include "router/session_state.h"

namespace pgha::router {

class LostTransaction {
 public:
  // `state`: the session as it was when its server went; `reason`: why, for the client.
  LostTransaction(const SessionState& state, const std::string& reason);

  // What the client gets now (the answers to the queries in flight).
  std::string TakeOutput();
  // A client message while the loss is still being answered; returns the bytes for the client.
  std::string OnClientMessage(const Message& message);
  // Everything is answered and the session is outside a transaction block: the next message
  // goes to a server again.
  bool over() const { return !in_block_ && !skipping_; }

 private:
  // The error for a statement in the failed block; Fail also skips up to the next Sync.
  std::string Error();
  std::string Fail();

  std::string reason_;
  bool in_block_ = false;  // the client believes it is in a (failed) transaction block
  bool skipping_ = false;  // an error was sent; extended messages are skipped up to the Sync
  bool ending_ = false;    // this extended batch parsed a statement that ends the block
  bool told_ = false;      // the client has had the error that gives the reason
  std::string output_;
};

}  // namespace pgha::router
