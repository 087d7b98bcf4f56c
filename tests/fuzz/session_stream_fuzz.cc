// Any sequence of client and server messages through what the session mode reads of a session
// (session_state.h), with the server lost at any point (lost_transaction.h): nothing crashes,
// everything the router answers in the server's place is whole, well-framed messages, and every
// query in flight at the loss gets its ReadyForQuery.
//
// Input: frames of [direction][type][length: 2 bytes][body], direction 0 = client, 1 = server,
// 2 = the server goes away (type, length and body then unused).
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "router/lost_transaction.h"
#include "router/pg_messages.h"
#include "router/session_state.h"

using pgha::router::LostTransaction;
using pgha::router::Message;
using pgha::router::MessageReader;
using pgha::router::SessionState;

namespace {

// The number of ReadyForQuery messages in `bytes`; aborts unless they are whole messages.
int CheckAnswer(const std::string& bytes) {
  MessageReader reader;
  reader.Feed(bytes);
  size_t seen = 0;
  int ready = 0;
  while (auto message = reader.Next()) {
    seen += 5 + message->body.size();
    ready += message->type == 'Z' ? 1 : 0;
  }
  if (reader.failed() || seen != bytes.size()) {
    std::abort();
  }
  return ready;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  SessionState state;
  std::optional<LostTransaction> lost;
  size_t at = 0;
  while (at + 4 <= size) {
    uint8_t direction = data[at] % 3;
    Message message{static_cast<char>(data[at + 1]), ""};
    size_t length = static_cast<size_t>(data[at + 2]) << 8 | data[at + 3];
    at += 4;
    length = std::min(length, size - at);
    message.body.assign(reinterpret_cast<const char*>(data + at), length);
    at += length;
    if (direction == 2) {
      if (!lost) {
        int in_flight = state.queries_in_flight();
        lost.emplace(state, "fuzz");
        if (CheckAnswer(lost->TakeOutput()) != in_flight) {
          std::abort();  // every query in flight is answered
        }
        state.ForgetServer();
        if (!state.AtRest()) {
          std::abort();  // nothing is under way on a server that is gone
        }
      }
      continue;
    }
    if (direction == 0 && lost) {
      CheckAnswer(lost->OnClientMessage(message));
      if (lost->over()) {
        lost.reset();
      }
      continue;
    }
    if (direction == 0) {
      state.OnClientMessage(message);
    } else if (!lost) {
      state.OnServerMessage(message);
    }
  }
  (void)state.ReplayStatements();
  (void)state.AtRest();
  return 0;
}
