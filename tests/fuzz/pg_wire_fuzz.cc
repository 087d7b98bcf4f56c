// Any bytes as a client's first message on a router port and as a server's first messages: the
// classifiers never crash or read past the input, a complete verdict never changes when more
// bytes follow (the router acts on it), an opening's length fits what was given, and the
// session-key scanner finds the same key however the stream is cut.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "router/pg_wire.h"

using pgha::router::ClassifyServerGreeting;
using pgha::router::ClientOpening;
using pgha::router::ParseClientOpening;
using pgha::router::ServerGreeting;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto opening = ParseClientOpening(bytes);
  if (opening.kind != ClientOpening::kIncomplete && opening.kind != ClientOpening::kInvalid) {
    if (opening.length > bytes.size() || opening.length < 8) {
      std::abort();
    }
    // Deciding on a prefix must agree with deciding on everything.
    if (ParseClientOpening(bytes.substr(0, opening.length)).kind != opening.kind) {
      std::abort();
    }
  }
  auto greeting = ClassifyServerGreeting(bytes);
  if (greeting.kind != ServerGreeting::kIncomplete) {
    std::string more(bytes);
    more += "trailing bytes";
    if (ClassifyServerGreeting(more).kind != greeting.kind) {
      std::abort();
    }
  }
  if (greeting.kind == ServerGreeting::kRetryable && greeting.sqlstate.rfind("57P0", 0) != 0) {
    std::abort();
  }
  // The session-key scanner: the same verdict however the stream is cut (the first byte picks
  // the piece size).
  pgha::router::BackendKeyScanner whole;
  whole.Feed(bytes);
  pgha::router::BackendKeyScanner pieces;
  size_t piece = size > 0 ? 1 + data[0] % 7 : 1;
  for (size_t at = 0; at < size && !pieces.done(); at += piece) {
    pieces.Feed(bytes.substr(at, piece));
  }
  if (whole.done() != pieces.done() || whole.key() != pieces.key()) {
    std::abort();
  }
  (void)pgha::router::CancelRequestKey(bytes);
  return 0;
}
