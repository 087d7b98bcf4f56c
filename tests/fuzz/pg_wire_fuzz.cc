// Any bytes as a client's first message on a router port and as a server's first answer: the
// classifiers never crash or read past the input, a complete verdict never changes when more
// bytes follow (the router acts on it), and an opening's length fits what was given.
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
  return 0;
}
