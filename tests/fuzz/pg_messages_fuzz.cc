// Any bytes as a message stream to the router's session mode: the reader never crashes, never
// returns a message longer than the stream had, and returns the same messages however the
// stream is cut; the authentication parsers and the session state take any message, from
// either side.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "router/pg_messages.h"
#include "router/session_state.h"

using pgha::router::Message;
using pgha::router::MessageReader;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  MessageReader whole(4096);
  whole.Feed(bytes);
  std::vector<Message> all;
  size_t taken = 0;
  while (auto message = whole.Next()) {
    taken += 5 + message->body.size();
    all.push_back(*message);
  }
  if (taken > size) {
    std::abort();
  }
  MessageReader pieces(4096);
  std::vector<Message> cut;
  size_t piece = size > 0 ? 1 + data[0] % 5 : 1;
  for (size_t at = 0; at < size; at += piece) {
    pieces.Feed(bytes.substr(at, piece));
    while (auto message = pieces.Next()) {
      cut.push_back(*message);
    }
  }
  if (cut.size() != all.size() || whole.failed() != pieces.failed()) {
    std::abort();
  }
  pgha::router::SessionState session;
  for (size_t i = 0; i < all.size(); ++i) {
    // Even messages as the client's, odd ones as the server's.
    if (i % 2 == 0) {
      session.OnClientMessage(all[i]);
    } else {
      session.OnServerMessage(all[i]);
    }
    if (cut[i].type != all[i].type || cut[i].body != all[i].body) {
      std::abort();
    }
    if (auto request = pgha::router::ParseAuthentication(all[i])) {
      (void)pgha::router::SaslMechanisms(request->data);
    }
    (void)pgha::router::ParseSaslInitialResponse(all[i]);
    (void)pgha::router::ParseErrorResponse(all[i]);
  }
  return 0;
}
